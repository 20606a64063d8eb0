/* fuzz_dhcp.c: the guest SDK's DHCP client (guest-sdk/src/net/net_dhcp.c):
 * replies a hostile server sends. The input's first byte picks what the
 * rest (a BOOTREPLY, the UDP payload) goes through:
 *
 *   0  net_dhcp_parse() alone;
 *   1  the client in SELECTING, the reply's xid and chaddr patched to the
 *      client's (past the "not for us" check), then a second reply the
 *      same way if the first one moved it to REQUESTING;
 *   2  as 1, then the clock jumped through T1, T2 and the lease's end.
 *
 * Invariants: no memory error (ASan), nothing read outside the input, and
 * a bound client's address is a unicast host address. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest-sdk/src/net/net_dhcp.h"
#include "guest-sdk/src/net/net_stack.h"

static uint64_t clock_ns = 1000000000ull;
static uint64_t rng = 0x243f6a8885a308d3ull;

uint64_t net_now_ns(void)
{
    return clock_ns;
}

uint32_t net_random32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

/* Every allocation is on a list, so one run's leftovers (frames queued
 * behind an ARP request, the client) are freed at its end. */
struct alloc {
    struct alloc *prev, *next;
    max_align_t data[];
};
static struct alloc live = {&live, &live};

void *net_zalloc(size_t len)
{
    struct alloc *a = calloc(1, sizeof(*a) + len);
    if (!a)
        return NULL;
    a->next = live.next;
    a->prev = &live;
    live.next->prev = a;
    live.next = a;
    return a->data;
}

void net_free(void *p, size_t len)
{
    (void)len;
    if (!p)
        return;
    struct alloc *a = (struct alloc *)((char *)p - offsetof(struct alloc, data));
    a->prev->next = a->next;
    a->next->prev = a->prev;
    free(a);
}

static void free_all(void)
{
    while (live.next != &live)
        net_free(live.next->data, 0);
}

static int tx(struct net_if *n, const struct net_frame *f)
{
    (void)n;
    if (f->len > 1514)
        abort();
    return 0;
}

static unsigned room(struct net_if *n)
{
    (void)n;
    return 64;
}

static void feed(struct net_stack *ns, const uint8_t *data, size_t size)
{
    uint8_t *b = malloc(size ? size : 1);
    memcpy(b, data, size);
    if (size >= 34) {
        net_put32(b + 4, ns->dhcp->xid);
        memcpy(b + 28, ns->nif->mac, 6);
    }
    net_dhcp_input(ns, b, (uint32_t)size);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0] % 3;
    data++;
    size--;
    if (mode == 0) {
        struct net_dhcp_msg m;
        (void)net_dhcp_parse(data, size, &m);
        return 0;
    }
    struct net_if nif = {.mac = {2, 0, 0, 0, 0, 9}, .mtu = 1500, .tx = tx, .tx_room = room};
    struct net_stack ns;
    net_stack_init(&ns, &nif);
    clock_ns = 1000000000ull;
    if (net_dhcp_start(&ns, "fuzz") != 0)
        return 0;
    feed(&ns, data, size);
    if (ns.dhcp->state == DHCP_REQUESTING) {
        uint8_t *b = malloc(size);
        memcpy(b, data, size);
        /* The same reply as an ACK when it carries option 53 first. */
        if (size > 243 && b[240] == 53 && b[241] == 1)
            b[242] = DHCPACK;
        feed(&ns, b, size);
        free(b);
    }
    if (net_dhcp_bound(&ns)) {
        uint32_t h = __builtin_bswap32(nif.addr);
        if (h == 0 || (h >> 24) == 127 || (h >> 24) >= 224)
            abort();
    }
    if (mode == 2)
        for (int i = 0; i < 40; i++) {
            clock_ns += 600ull * 1000000000ull;
            net_timers(&ns);
        }
    free_all();
    return 0;
}
