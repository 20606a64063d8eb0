/* mmds_stack.h: the guest's way to the metadata service, a minimal ARP,
 * IPv4 and TCP responder inside the virtio-net device's transmit path (as
 * Firecracker's "dumbo" stack).
 *
 * The device hands it every frame for the MMDS address (ARP for it, IPv4
 * to it) instead of sending it to the tap; it answers ARP with its own MAC,
 * serves HTTP (mmds_http.h) on TCP port 80, answers other TCP with RST and
 * drops the rest. Its answers wait in a bounded queue of frames until the
 * device has receive buffers to put them in. At most MMDS_CONNS_MAX TCP
 * connections at once (the oldest goes when a new one comes); a lost
 * segment is sent again when the guest's next segment shows it missing.
 * Every size is bounded: the connections, the request bytes, the queue.
 */
#ifndef EMBER_MMDS_STACK_H
#define EMBER_MMDS_STACK_H

#include <stdint.h>

#include "mmds/mmds_store.h"
#include "virtio/net_device.h"

#define MMDS_IPV4_DEFAULT "169.254.169.254"
#define MMDS_CONNS_MAX    16u

struct mmds_stack;

/* ipv4 in network byte order. */
struct mmds_stack *mmds_stack_create(struct mmds_store *store, uint32_t ipv4);
void mmds_stack_destroy(struct mmds_stack *s);
/* The interceptor to give the device (net_set_intercept). */
struct net_intercept mmds_stack_intercept(struct mmds_stack *s);

#endif
