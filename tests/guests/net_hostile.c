/* net_hostile.c: a guest that breaks the virtio-net queue rules on purpose
 * (net_raw.h), one way after another, and checks that the device answers
 * each with DEVICE_NEEDS_RESET and works again after a reset:
 *   rx_readable  a receive chain with a device-readable buffer
 *   rx_tiny      a 4-byte receive buffer with MRG_RXBUF (less than a header)
 *   tx_writable  a transmit chain with a device-writable buffer
 *   tx_short     a transmit chain shorter than the virtio-net header
 *   tx_loop      a transmit chain whose descriptors form a loop
 *   tx_outside   a transmit buffer outside guest RAM
 * For each it prints "net-hostile: CASE: needs reset" (or "...: NOT reset").
 * Then one that is legal but outlandish:
 *   rx_huge      with MRG_RXBUF, one receive chain of 256 indirect
 *                descriptors that all name the same 16 MiB: 4 GiB of
 *                buffer, whose length does not fit the used ring's 32 bits.
 *                A frame (the test broadcasts) must arrive in it with
 *                num_buffers 1 and its own length: "net-hostile: rx_huge:
 *                delivered N" (or "...: bad ...").
 * At the end "net-hostile: done" and exits 0. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "net_raw.h"

static struct nr v;

#define NR_FEAT_INDIRECT (1ull << 28)
#define NR_F_INDIRECT    4u
#define HUGE_SEGS        256u
#define HUGE_LEN         (16u << 20)
static uint8_t huge[HUGE_LEN] __attribute__((aligned(4096)));
static struct nr_desc huge_table[HUGE_SEGS] __attribute__((aligned(16)));

static void rx_huge(void)
{
    if (nr_negotiate(&v, NR_FEAT_VERSION_1 | NR_FEAT_MRG_RXBUF | NR_FEAT_INDIRECT) != 0 ||
        !(v.features & NR_FEAT_INDIRECT)) {
        printf("net-hostile: rx_huge: FEATURES_OK refused\n");
        return;
    }
    nr_start(&v, 0);
    for (unsigned i = 0; i < HUGE_SEGS; i++)
        huge_table[i] = (struct nr_desc){(uintptr_t)huge, HUGE_LEN,
                                         NR_F_WRITE | (i + 1 < HUGE_SEGS ? NR_F_NEXT : 0),
                                         (uint16_t)(i + 1 < HUGE_SEGS ? i + 1 : 0)};
    v.q[0].desc[0] =
        (struct nr_desc){(uintptr_t)huge_table, (uint32_t)sizeof(huge_table), NR_F_INDIRECT, 0};
    nr_offer(&v, 0, 0);
    nr_notify(&v, 0);
    uint64_t until = ember_monotonic_ns() + 3000000000ull;
    while (nr_used_idx(&v.q[0]) == 0 && !nr_needs_reset(&v) && ember_monotonic_ns() < until)
        ;
    if (nr_used_idx(&v.q[0]) == 0) {
        printf("net-hostile: rx_huge: bad: nothing delivered%s\n",
               nr_needs_reset(&v) ? " (needs reset)" : "");
        return;
    }
    uint32_t id, len;
    memcpy(&id, v.q[0].used + 4, 4);
    memcpy(&len, v.q[0].used + 8, 4);
    struct nr_hdr h;
    memcpy(&h, huge, sizeof(h));
    if (id != 0 || h.num_buffers != 1 || len < NR_HDR + 14 || len > 65562)
        printf("net-hostile: rx_huge: bad: id %u len %u num_buffers %u\n", id, len, h.num_buffers);
    else
        printf("net-hostile: rx_huge: delivered %u\n", len);
    fflush(stdout);
}

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
    rx_huge();
    /* After a reset the device is fresh again. */
    if (nr_negotiate(&v, NR_FEAT_VERSION_1) != 0 || nr_needs_reset(&v)) {
        printf("net-hostile: still broken after reset\n");
        return 3;
    }
    printf("net-hostile: done\n");
    return 0;
}
