/* ember/wait.h: waiting for a device inside an SDK guest.
 *
 * Drivers (virtio-blk, vsock) wait for completions with ember_wait(): it
 * first spins at CPL3 on a readiness test (a completion usually lands within
 * microseconds of the request), then sleeps in `hlt` until an interrupt and
 * tests again after every wake-up. The spin budget trades host CPU for
 * latency: on our kvm_pvm machines a wake-up from `hlt` through irqfd, IOAPIC
 * and LAPIC takes ~170-190 us, a spinning waiter sees a completion within a
 * few microseconds of the device writing it. In a function restored from a
 * snapshot (the FaaS runtime's ember_faas_ready) the budget adapts between 0
 * and the ceiling, as KVM's halt polling does: waits that a longer spin
 * would have caught raise it, waits longer than the ceiling (an idle
 * function waiting for its next request) bring it back to 0. Elsewhere it
 * is the ceiling.
 */
#ifndef EMBER_WAIT_H
#define EMBER_WAIT_H

#include <stdbool.h>
#include <stdint.h>

#define EMBER_WAIT_FOREVER UINT64_MAX

/* Returns when ready(arg) is true or timeout_ns have passed (then ready()
 * was false at the last test). ready() runs at CPL3, possibly many times. */
void ember_wait(bool (*ready)(void *), void *arg, uint64_t timeout_ns);

/* The ceiling of the spin budget in nanoseconds (default
 * EMBER_WAIT_SPIN_DEFAULT_NS); 0 sleeps at once, always. Returns the
 * previous ceiling. */
#define EMBER_WAIT_SPIN_DEFAULT_NS 200000u
uint64_t ember_wait_set_spin_ns(uint64_t ns);

/* Counters since boot. */
struct ember_wait_stats {
    uint64_t waits;     /* calls that had to wait at all */
    uint64_t spin_hits; /* ... ended during the spin */
    uint64_t hlts;      /* hlt instructions executed (wake-ups) */
    uint64_t timeouts;  /* calls that returned on the timeout */
    uint64_t irqs;      /* interrupts taken */
    uint64_t spin_ns;   /* the spin budget now (the ceiling, or adaptive: 0 to it) */
};
void ember_wait_stats(struct ember_wait_stats *s);

#endif /* EMBER_WAIT_H */
