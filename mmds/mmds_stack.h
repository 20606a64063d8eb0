/* mmds_stack.h: the guest's way to the metadata service, a minimal ARP,
 * IPv4 and TCP responder inside the virtio-net device's transmit path (as
 * Firecracker's "dumbo" stack).
 *
 * The device hands it every frame for the MMDS address (ARP for it, IPv4
 * to it) instead of sending it to the tap; it answers ARP with its own MAC,
 * serves HTTP (mmds_http.h) on TCP port 80, answers other TCP with RST and
 * drops the rest. Its answers wait in a bounded queue of frames until the
 * device has receive buffers to put them in. At most MMDS_CONNS_MAX TCP
 * connections at once (the oldest goes when a new one comes). A lost
 * segment is sent again when the guest's next segment shows it missing, or
 * when its retransmission timer runs out (200 ms, doubled per try up to
 * 10 s; after 8 tries the connection is dropped; a closed window is probed
 * with one byte on the same schedule): the owner drives the
 * timer (mmds_stack_set_timer_hook, mmds_stack_timers). Every size is
 * bounded: the connections, the request bytes, the queue.
 */
#ifndef EMBER_MMDS_STACK_H
#define EMBER_MMDS_STACK_H

#include <stdint.h>

#include "mmds/mmds_store.h"
#include "virtio/net_device.h"

#define MMDS_IPV4_DEFAULT "169.254.169.254"
#define MMDS_CONNS_MAX    16u

struct mmds_stack;

/* Counters, as Firecracker's "mmds" metrics group names them:
 *  rx_accepted           frames the device gave the responder
 *  rx_accepted_err       frames it could not handle (no memory, no room)
 *  rx_accepted_unusual   frames it did not expect (not port 80, not TCP,
 *                        a fragment, out of order, for no connection)
 *  rx_bad_eth            frames too short or with a broken IPv4/TCP header
 *  rx_invalid_token      V2 GETs with an invalid or expired token
 *  rx_no_token           V2 GETs without a token
 *  rx_count              segments whose request bytes were taken
 *  tx_bytes, tx_frames   frames handed to the guest, and their bytes
 *  tx_count              HTTP responses queued
 *  tx_errors             answers dropped (queue full, too large)
 *  connections_created, connections_destroyed */
#define MMDS_STATS(X)                                                                              \
    X(rx_accepted)                                                                                 \
    X(rx_accepted_err)                                                                             \
    X(rx_accepted_unusual)                                                                         \
    X(rx_bad_eth)                                                                                  \
    X(rx_invalid_token)                                                                            \
    X(rx_no_token)                                                                                 \
    X(rx_count)                                                                                    \
    X(tx_bytes)                                                                                    \
    X(tx_count)                                                                                    \
    X(tx_errors)                                                                                   \
    X(tx_frames)                                                                                   \
    X(connections_created)                                                                         \
    X(connections_destroyed)
struct mmds_stats {
#define MMDS_STAT_FIELD(n) uint64_t n;
    MMDS_STATS(MMDS_STAT_FIELD)
#undef MMDS_STAT_FIELD
};

/* ipv4 in network byte order. */
struct mmds_stack *mmds_stack_create(struct mmds_store *store, uint32_t ipv4);
void mmds_stack_destroy(struct mmds_stack *s);
/* The interceptor to give the device (net_set_intercept). */
struct net_intercept mmds_stack_intercept(struct mmds_stack *s);
void mmds_stack_get_stats(const struct mmds_stack *s, struct mmds_stats *out);

/* Retransmission timers. arm(ctx) is called when a timer starts (from
 * input or output): the owner then asks mmds_stack_next_timer() when to
 * call mmds_stack_timers(). */
void mmds_stack_set_timer_hook(struct mmds_stack *s, void (*arm)(void *ctx), void *ctx);
/* CLOCK_MONOTONIC ns of the next timer, UINT64_MAX for none. */
uint64_t mmds_stack_next_timer(const struct mmds_stack *s);
/* Runs the timers due at now_ns (CLOCK_MONOTONIC): segments to send again
 * are queued (the owner tells the device: net_intercept_ready). Returns
 * mmds_stack_next_timer(). */
uint64_t mmds_stack_timers(struct mmds_stack *s, uint64_t now_ns);

#endif
