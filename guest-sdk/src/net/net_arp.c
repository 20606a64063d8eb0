/* net_arp.c: ARP for IPv4 over Ethernet (RFC 826), with a small cache.
 *
 * NET_ARP_SLOTS entries; a resolved entry is trusted for ARP_REACHABLE_NS,
 * then goes stale: its MAC stays in use, and the next datagram to it sends
 * a request (ARP_TRIES of them before the entry is dropped), so an idle
 * cache costs no timers (Linux's neighbour states, simplified). A datagram to an
 * unresolved next hop is copied onto the entry's pending queue (at most
 * ARP_PENDING_MAX per entry: TCP retransmits what is dropped) and the
 * request repeated every ARP_RETRY_NS, ARP_TRIES times, after which the
 * pending datagrams are dropped and counted. Requests for our address are
 * answered; any valid ARP packet from a host we have an entry for updates
 * it (RFC 826 "merge"), so a peer that talks to us first is learnt for
 * free.
 */
#include <errno.h>

#include "net/net_stack.h"

#define ARP_INCOMPLETE   1u
#define ARP_REACHABLE    2u
#define ARP_STALE        3u             /* MAC still used; the next use asks again */
#define ARP_PROBE        4u             /* MAC still used, asking */
#define ARP_REACHABLE_NS 60000000000ull /* 60 s */
#define ARP_RETRY_NS     1000000000ull  /* 1 s */
#define ARP_TRIES        3u
#define ARP_PENDING_MAX  4u
#define ARP_PKT_LEN      28u
#define ARP_OP_REQUEST   1u
#define ARP_OP_REPLY     2u
#define ETH_P_ARP        0x0806u

struct net_arp_pending {
    struct net_arp_pending *next;
    struct net_frame f; /* one segment: data */
    uint32_t size;
    uint8_t data[];
};

static void pending_drop(struct net_stack *ns, struct net_arp_entry *e)
{
    struct net_arp_pending *p = e->pending;
    while (p) {
        struct net_arp_pending *n = p->next;
        ns->stats.tx_drop++;
        net_free(p, p->size);
        p = n;
    }
    e->pending = NULL;
    e->npending = 0;
}

static void send_arp(struct net_stack *ns, unsigned op, const uint8_t *tha, uint32_t tip)
{
    uint8_t b[NET_ETH_HLEN + ARP_PKT_LEN];
    uint8_t *a = b + NET_ETH_HLEN;

    if (op == ARP_OP_REQUEST)
        __builtin_memset(b, 0xff, 6);
    else
        net_copy(b, tha, 6);
    net_copy(b + 6, ns->nif->mac, 6);
    net_put16(b + 12, ETH_P_ARP);
    net_put16(a, 1);          /* htype Ethernet */
    net_put16(a + 2, 0x0800); /* ptype IPv4 */
    a[4] = 6;
    a[5] = 4;
    net_put16(a + 6, (uint16_t)op);
    net_copy(a + 8, ns->nif->mac, 6);
    net_copy(a + 14, &ns->nif->addr, 4);
    if (op == ARP_OP_REQUEST)
        __builtin_memset(a + 18, 0, 6);
    else
        net_copy(a + 18, tha, 6);
    net_copy(a + 24, &tip, 4);
    struct net_frame f = {.seg = {{b, sizeof(b)}}, .nseg = 1, .len = sizeof(b)};
    net_eth_xmit(ns, &f);
}

static struct net_arp_entry *lookup(struct net_stack *ns, uint32_t ip)
{
    for (unsigned i = 0; i < NET_ARP_SLOTS; i++)
        if (ns->arp[i].ip == ip)
            return &ns->arp[i];
    return NULL;
}

/* A slot for a new entry: a free one, else the resolved one expiring
 * first, else the oldest incomplete one. */
static struct net_arp_entry *slot(struct net_stack *ns)
{
    struct net_arp_entry *best = NULL;
    for (unsigned i = 0; i < NET_ARP_SLOTS; i++) {
        struct net_arp_entry *e = &ns->arp[i];
        if (!e->ip)
            return e;
        if (!best || (e->state == ARP_REACHABLE && best->state != ARP_REACHABLE) ||
            (e->state == best->state && e->expires < best->expires))
            best = e;
    }
    pending_drop(ns, best);
    __builtin_memset(best, 0, sizeof(*best));
    return best;
}

static void flush_pending(struct net_stack *ns, struct net_arp_entry *e)
{
    struct net_arp_pending *p = e->pending;
    e->pending = NULL;
    e->npending = 0;
    while (p) {
        struct net_arp_pending *n = p->next;
        net_copy(p->data, e->mac, 6);
        p->f.seg[0].p = p->data;
        net_eth_xmit(ns, &p->f);
        net_free(p, p->size);
        p = n;
    }
}

void net_arp_input(struct net_stack *ns, const uint8_t *a, uint32_t len)
{
    if (len < ARP_PKT_LEN || net_get16(a) != 1 || net_get16(a + 2) != 0x0800 || a[4] != 6 ||
        a[5] != 4) {
        ns->stats.rx_drop_bad++;
        return;
    }
    unsigned op = net_get16(a + 6);
    uint32_t sip, tip;
    net_copy(&sip, a + 14, 4);
    net_copy(&tip, a + 24, 4);
    const uint8_t *sha = a + 8;
    /* A sender MAC that is multicast/broadcast or an unspecified sender
     * address teaches nothing (RFC 5227 probes have sip 0). */
    bool learnable = sip != 0 && sip != 0xffffffffu && !(sha[0] & 1);
    struct net_arp_entry *e = learnable ? lookup(ns, sip) : NULL;
    if (e) {
        net_copy(e->mac, sha, 6);
        e->state = ARP_REACHABLE;
        e->tries = 0;
        e->expires = net_now_ns() + ARP_REACHABLE_NS;
        net_timer_at(ns, e->expires);
        flush_pending(ns, e);
    }
    if (!ns->nif->addr || tip != ns->nif->addr)
        return;
    if (learnable && !e) {
        e = slot(ns);
        e->ip = sip;
        net_copy(e->mac, sha, 6);
        e->state = ARP_REACHABLE;
        e->expires = net_now_ns() + ARP_REACHABLE_NS;
        net_timer_at(ns, e->expires);
    }
    if (op == ARP_OP_REQUEST && learnable)
        send_arp(ns, ARP_OP_REPLY, sha, sip);
}

const uint8_t *net_arp_resolve(struct net_stack *ns, uint32_t ip, const struct net_frame *f,
                               int *err)
{
    struct net_arp_entry *e = lookup(ns, ip);
    uint64_t now = net_now_ns();

    *err = 0;
    if (e && e->state == ARP_STALE) {
        e->state = ARP_PROBE;
        e->tries = 1;
        e->expires = now + ARP_RETRY_NS;
        net_timer_at(ns, e->expires);
        send_arp(ns, ARP_OP_REQUEST, NULL, ip);
    }
    if (e && e->state != ARP_INCOMPLETE)
        return e->mac;
    if (!e) {
        e = slot(ns);
        e->ip = ip;
        e->state = ARP_INCOMPLETE;
        e->tries = 1;
        e->expires = now + ARP_RETRY_NS;
        net_timer_at(ns, e->expires);
        send_arp(ns, ARP_OP_REQUEST, NULL, ip);
    }
    if (e->npending >= ARP_PENDING_MAX) {
        ns->stats.tx_drop++;
        *err = -EAGAIN;
        return NULL;
    }
    uint32_t size = (uint32_t)sizeof(struct net_arp_pending) + f->len;
    struct net_arp_pending *p = net_zalloc(size);
    if (!p) {
        ns->stats.tx_drop++;
        *err = -ENOBUFS;
        return NULL;
    }
    p->size = size;
    p->f = *f;
    uint32_t off = 0;
    for (unsigned i = 0; i < f->nseg; i++) {
        net_copy(p->data + off, f->seg[i].p, f->seg[i].len);
        off += f->seg[i].len;
    }
    p->f.nseg = 1;
    p->f.seg[0].len = off;
    p->f.len = off;
    struct net_arp_pending **t = &e->pending;
    while (*t)
        t = &(*t)->next;
    *t = p;
    e->npending++;
    return NULL;
}

uint64_t net_arp_timers(struct net_stack *ns, uint64_t now)
{
    uint64_t next = UINT64_MAX;
    for (unsigned i = 0; i < NET_ARP_SLOTS; i++) {
        struct net_arp_entry *e = &ns->arp[i];
        if (!e->ip)
            continue;
        if (e->state == ARP_STALE)
            continue;
        if (e->expires <= now) {
            if (e->state == ARP_REACHABLE) {
                e->state = ARP_STALE;
                continue;
            }
            if (e->tries >= ARP_TRIES) {
                pending_drop(ns, e);
                __builtin_memset(e, 0, sizeof(*e));
                continue;
            }
            e->tries++;
            e->expires = now + ARP_RETRY_NS;
            send_arp(ns, ARP_OP_REQUEST, NULL, e->ip);
        }
        if (e->expires < next)
            next = e->expires;
    }
    return next;
}
