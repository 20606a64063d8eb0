/* net_hostile.c: a guest that breaks the virtio-net queue rules on purpose
 * (net_raw.h), one way after another, and checks that the device answers
 * each with DEVICE_NEEDS_RESET and works again after a reset:
 *   rx_readable  a receive chain with a device-readable buffer
 *   rx_tiny      a 4-byte receive buffer with MRG_RXBUF (less than a header)
 *   tx_writable  a transmit chain with a device-writable buffer
 *   tx_short     a transmit chain shorter than the virtio-net header
 *   tx_loop      a transmit chain whose descriptors form a loop
 *   tx_outside   a transmit buffer outside guest RAM
 * For each it prints "net-hostile: CASE: needs reset" (or "...: NOT reset");
 * at the end "net-hostile: done" and exits 0. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "net_raw.h"

static struct nr v;

static int wait_reset(void)
{
    uint64_t until = ember_monotonic_ns() + 3000000000ull;

    while (ember_monotonic_ns() < until)
        if (nr_needs_reset(&v))
            return 1;
    return 0;
}

static void run(const char *name)
{
    uint64_t want = NR_FEAT_VERSION_1;
    int rx = strncmp(name, "rx_", 3) == 0;

    if (strcmp(name, "rx_tiny") == 0)
        want |= NR_FEAT_MRG_RXBUF;
    if (nr_negotiate(&v, want) != 0) {
        printf("net-hostile: %s: FEATURES_OK refused\n", name);
        return;
    }
    nr_start(&v, 0);
    struct nr_ring *q = &v.q[rx ? 0 : 1];
    if (strcmp(name, "rx_readable") == 0) {
        q->desc[0] = (struct nr_desc){(uintptr_t)v.rx[0], 64, 0, 0};
    } else if (strcmp(name, "rx_tiny") == 0) {
        q->desc[0] = (struct nr_desc){(uintptr_t)v.rx[0], 4, NR_F_WRITE, 0};
    } else if (strcmp(name, "tx_writable") == 0) {
        q->desc[0] = (struct nr_desc){(uintptr_t)v.tx[0], 64, NR_F_WRITE, 0};
    } else if (strcmp(name, "tx_short") == 0) {
        q->desc[0] = (struct nr_desc){(uintptr_t)v.tx[0], 6, 0, 0};
    } else if (strcmp(name, "tx_loop") == 0) {
        q->desc[0] = (struct nr_desc){(uintptr_t)v.tx[0], 64, NR_F_NEXT, 1};
        q->desc[1] = (struct nr_desc){(uintptr_t)v.tx[1], 64, NR_F_NEXT, 0};
    } else if (strcmp(name, "tx_outside") == 0) {
        q->desc[0] = (struct nr_desc){0x7ff000000000ull, 64, 0, 0};
    }
    nr_offer(&v, rx ? 0 : 1, 0);
    nr_notify(&v, rx ? 0 : 1);
    /* A receive chain is looked at when a frame comes or on the kick. */
    printf("net-hostile: %s: %s\n", name, wait_reset() ? "needs reset" : "NOT reset");
    fflush(stdout);
}

int main(void)
{
    static const char *const cases[] = {"rx_readable", "rx_tiny", "tx_writable",
                                        "tx_short",    "tx_loop", "tx_outside"};

    if (nr_find(&v) != 0) {
        printf("net-hostile: no virtio-net device\n");
        return 2;
    }
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run(cases[i]);
    /* After a reset the device is fresh again. */
    if (nr_negotiate(&v, NR_FEAT_VERSION_1) != 0 || nr_needs_reset(&v)) {
        printf("net-hostile: still broken after reset\n");
        return 3;
    }
    printf("net-hostile: done\n");
    return 0;
}
