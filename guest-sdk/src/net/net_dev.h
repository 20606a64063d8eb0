/* net_dev.h: the virtio-net driver (virtio 1.2 §5.1) and the guest's one
 * network stack above it (see net_dev.c). Not a public header.
 */
#ifndef EMBER_NET_DEV_H
#define EMBER_NET_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "net/net_config.h"
#include "net/net_stack.h"

/* Probes and sets up the device and the stack on first call (the first
 * AF_INET socket): features, queues, MAC and MTU from config space, the
 * ip= boot argument, else DHCP. 0, -ENODEV (no virtio-net device) or
 * -errno; the result is remembered. */
int net_dev_start(void);
/* The stack (valid after net_dev_start() == 0). */
struct net_stack *net_dev_stack(void);
const struct net_config *net_dev_config(void);

/* Processes what the device has done (received frames into the stack,
 * used TX slots reclaimed), runs due timers and notifies the device of
 * queued frames. Cheap when nothing is new. */
void net_dev_poll(void);
/* Runs fn(arg) on the stack's own 64 KiB stack (directly when already on
 * it): every entry from the system-call path goes through here. */
long net_call(long (*fn)(void *), void *arg);

/* Notifies the device of frames queued since the last call. */
void net_dev_flush(void);

/* Waits until ready(arg) is true or the monotonic clock reaches deadline_ns
 * (UINT64_MAX: none), polling the device and running the stack's timers
 * meanwhile: spins first, then sleeps until an interrupt or the next timer.
 * Returns ready(arg). */
bool net_dev_wait(bool (*ready)(void *), void *arg, uint64_t deadline_ns);
/* Device interrupts on (before poll() sleeps) or off. */
void net_dev_arm(bool on);

#endif
