/* net_stack.c: the stack as a whole (see net_stack.h): set-up, the timer
 * pass, loopback delivery and the Internet checksum (RFC 1071).
 */
#include <errno.h>

#include "net/net_dhcp.h"
#include "net/net_stack.h"

struct net_loop_frame {
    struct net_loop_frame *next;
    uint32_t len;
    uint8_t data[];
};

void net_stack_init(struct net_stack *ns, struct net_if *nif)
{
    __builtin_memset(ns, 0, sizeof(*ns));
    ns->nif = nif;
    ns->ip_id = (uint16_t)net_random32();
    /* Linux's ephemeral range is 32768-60999; start somewhere in it. */
    ns->next_port = (uint16_t)(32768 + net_random32() % (60999 - 32768 + 1));
    ns->next_timer = UINT64_MAX;
}

uint32_t net_csum_add(uint32_t sum, const void *p, size_t len)
{
    const uint8_t *b = p;
    uint64_t s = sum;

    while (len >= 8) {
        uint64_t w;
        __builtin_memcpy(&w, b, 8);
        /* Sums of 16-bit big-endian words: add little-endian 32-bit halves
         * and swap at the end is equivalent; here add the byte-swapped
         * halves so the result is in network order arithmetic. */
        s += __builtin_bswap32((uint32_t)w) + (uint64_t)__builtin_bswap32((uint32_t)(w >> 32));
        b += 8;
        len -= 8;
    }
    while (len >= 2) {
        s += (uint32_t)(b[0] << 8 | b[1]);
        b += 2;
        len -= 2;
    }
    if (len)
        s += (uint32_t)b[0] << 8;
    while (s >> 32)
        s = (s & 0xffffffffu) + (s >> 32);
    s = (s & 0xffffffffu);
    /* Keep it within 32 bits with room for more additions. */
    s = (s & 0xffff) + (s >> 16);
    return (uint32_t)s;
}

uint16_t net_csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

uint32_t net_csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint32_t len)
{
    uint8_t ph[12];

    __builtin_memcpy(ph, &src, 4);
    __builtin_memcpy(ph + 4, &dst, 4);
    ph[8] = 0;
    ph[9] = proto;
    net_put16(ph + 10, (uint16_t)len);
    return net_csum_add(0, ph, sizeof(ph));
}

/* A frame to ourselves: linearized and queued, delivered by net_timers()
 * so the sender's call stack unwinds first. */
int net_loopback_queue(struct net_stack *ns, const struct net_frame *f)
{
    struct net_loop_frame *l = net_zalloc(sizeof(*l) + f->len);

    if (!l)
        return -ENOBUFS;
    uint32_t off = 0;
    for (unsigned i = 0; i < f->nseg; i++) {
        net_copy(l->data + off, f->seg[i].p, f->seg[i].len);
        off += f->seg[i].len;
    }
    l->len = off;
    if (ns->loop_tail)
        ns->loop_tail->next = l;
    else
        ns->loop_head = l;
    ns->loop_tail = l;
    ns->next_timer = 0;
    return 0;
}

static void loopback_run(struct net_stack *ns)
{
    /* Only what is queued now: replies go out at the next pass. */
    struct net_loop_frame *l = ns->loop_head;
    ns->loop_head = ns->loop_tail = NULL;
    while (l) {
        struct net_loop_frame *n = l->next;
        /* Past the Ethernet header; the checksums were never finished. */
        if (l->len > NET_ETH_HLEN)
            net_ip_input(ns, l->data + NET_ETH_HLEN, l->len - NET_ETH_HLEN, NET_RX_CSUM_OK, false);
        net_free(l, sizeof(*l) + l->len);
        l = n;
    }
}

uint64_t net_timers(struct net_stack *ns)
{
    uint64_t now = net_now_ns();

    if (ns->loop_head)
        loopback_run(ns);
    if (now < ns->next_timer && !ns->loop_head)
        return ns->next_timer;
    ns->next_timer = UINT64_MAX;
    uint64_t a = net_arp_timers(ns, now);
    uint64_t t = net_tcp_timers(ns, now);
    if (a < ns->next_timer)
        ns->next_timer = a;
    if (t < ns->next_timer)
        ns->next_timer = t;
    if (ns->dhcp) {
        uint64_t d = net_dhcp_timers(ns, now);
        if (d < ns->next_timer)
            ns->next_timer = d;
    }
    if (ns->loop_head)
        ns->next_timer = 0;
    return ns->next_timer;
}
