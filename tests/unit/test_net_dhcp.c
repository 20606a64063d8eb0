/* test_net_dhcp.c: the guest SDK's DHCP client (guest-sdk/src/net/net_dhcp.c)
 * on the host: a stack whose link is a fake DHCP server written here, a
 * fake clock driven by the stack's own timer, and the parser's rejections
 * with their exact messages. The real server (dnsmasq) is the integration
 * suite's (tests/integration/net_dns_suite.sh).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest-sdk/src/net/net_config.h"
#include "guest-sdk/src/net/net_dhcp.h"
#include "guest-sdk/src/net/net_stack.h"

#define SEC 1000000000ull

static uint64_t clock_ns = 1000 * SEC;
static uint64_t rng = 88172645463325252ull;

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

void *net_zalloc(size_t len)
{
    return calloc(1, len);
}

void net_free(void *p, size_t len)
{
    (void)len;
    free(p);
}

/* ---- what the client sent -------------------------------------------------- */

struct sent {
    uint64_t at;
    uint8_t dst_mac[6];
    uint32_t src, dst; /* IP, network order */
    uint8_t type;      /* option 53 */
    uint32_t xid, ciaddr, req_addr, server_id;
    uint16_t flags, secs;
    char hostname[65];
};

static struct sent sent[64];
static unsigned nsent;
static uint32_t arp_asked; /* an ARP request waiting for the server's answer */
static struct net_if nif;
static struct net_stack ns;

static void opt_walk(const uint8_t *o, size_t n, struct sent *s)
{
    size_t i = 0;
    while (i + 1 < n && o[i] != 255) {
        if (o[i] == 0) {
            i++;
            continue;
        }
        uint8_t c = o[i], l = o[i + 1];
        const uint8_t *v = o + i + 2;
        cr_assert_leq(i + 2 + l, n, "the client's option %u runs past its message", c);
        if (c == 53)
            s->type = v[0];
        else if (c == 50)
            memcpy(&s->req_addr, v, 4);
        else if (c == 54)
            memcpy(&s->server_id, v, 4);
        else if (c == 12)
            memcpy(s->hostname, v, l < 64 ? l : 64);
        i += 2u + l;
    }
}

static int fake_tx(struct net_if *n, const struct net_frame *f)
{
    (void)n;
    uint8_t d[2048];
    uint32_t off = 0;
    for (unsigned i = 0; i < f->nseg; i++) {
        memcpy(d + off, f->seg[i].p, f->seg[i].len);
        off += f->seg[i].len;
    }
    if (net_get16(d + 12) == 0x0806) { /* renewing unicasts: ARP for the server first */
        cr_assert_eq(net_get16(d + 20), 1, "an ARP request");
        memcpy(&arp_asked, d + 38, 4);
        return 0;
    }
    cr_assert_geq(off, 14u + 20 + 8 + 300, "DHCP messages are at least 300 bytes");
    cr_assert_eq(net_get16(d + 12), 0x0800);
    cr_assert_eq(d[14 + 9], 17, "DHCP goes over UDP");
    cr_assert_eq(net_get16(d + 34), 68);
    cr_assert_eq(net_get16(d + 36), 67);
    cr_assert_lt(nsent, 64u);
    struct sent *s = &sent[nsent++];
    memset(s, 0, sizeof(*s));
    s->at = clock_ns;
    memcpy(s->dst_mac, d, 6);
    memcpy(&s->src, d + 26, 4);
    memcpy(&s->dst, d + 30, 4);
    const uint8_t *b = d + 42;
    cr_assert_eq(b[0], 1, "a BOOTREQUEST");
    s->xid = net_get32(b + 4);
    s->secs = net_get16(b + 8);
    s->flags = net_get16(b + 10);
    memcpy(&s->ciaddr, b + 12, 4);
    cr_assert(memcmp(b + 28, nif.mac, 6) == 0, "chaddr is the interface's MAC");
    cr_assert_eq(net_get32(b + 236), 0x63825363u);
    opt_walk(b + 240, off - 42 - 240, s);
    return 0;
}

static unsigned fake_room(struct net_if *n)
{
    (void)n;
    return 64;
}

static uint32_t ip4(unsigned a, unsigned b, unsigned c, unsigned d)
{
    return net_htonl((uint32_t)(a << 24 | b << 16 | c << 8 | d));
}

#define SERVER ip4(10, 9, 0, 1)
#define YIADDR ip4(10, 9, 0, 77)

static void setup(void)
{
    memset(&nif, 0, sizeof(nif));
    memcpy(nif.mac, "\x02\x00\x00\x00\x00\x42", 6);
    nif.mtu = 1500;
    nif.tx = fake_tx;
    nif.tx_room = fake_room;
    net_stack_init(&ns, &nif);
    nsent = 0;
    arp_asked = 0;
    clock_ns = 1000 * SEC;
}

/* ---- the server's replies ---------------------------------------------------- */

struct reply {
    uint8_t op, htype, hlen;
    uint32_t xid, yiaddr;
    uint8_t chaddr[6];
    uint8_t opts[400];
    size_t nopts;
    uint8_t file[128], sname[64];
    bool no_cookie;
    uint32_t ip_dst; /* 0: broadcast */
};

static void put(struct reply *r, uint8_t code, const void *v, size_t n)
{
    r->opts[r->nopts++] = code;
    r->opts[r->nopts++] = (uint8_t)n;
    memcpy(r->opts + r->nopts, v, n);
    r->nopts += n;
}

static void put32(struct reply *r, uint8_t code, uint32_t host_order)
{
    uint8_t v[4];
    net_put32(v, host_order);
    put(r, code, v, 4);
}

static void put_addr(struct reply *r, uint8_t code, uint32_t a)
{
    put(r, code, &a, 4);
}

/* A well-formed reply of type t to the client's message s. */
static struct reply answer(const struct sent *s, uint8_t t)
{
    struct reply r = {.op = 2, .htype = 1, .hlen = 6, .xid = s->xid, .yiaddr = YIADDR};
    memcpy(r.chaddr, nif.mac, 6);
    put(&r, 53, &t, 1);
    put_addr(&r, 54, SERVER);
    if (t != DHCPNAK) {
        put_addr(&r, 1, ip4(255, 255, 255, 0));
        uint8_t routers[8];
        uint32_t g = ip4(10, 9, 0, 1), g2 = ip4(10, 9, 0, 2);
        memcpy(routers, &g, 4);
        memcpy(routers + 4, &g2, 4);
        put(&r, 3, routers, 8);
        uint8_t dns[12];
        uint32_t d1 = ip4(10, 9, 0, 53), d2 = ip4(10, 9, 0, 54), d3 = ip4(10, 9, 0, 55);
        memcpy(dns, &d1, 4);
        memcpy(dns + 4, &d2, 4);
        memcpy(dns + 8, &d3, 4);
        put(&r, 6, dns, 12);
        put32(&r, 51, 3600);
    }
    return r;
}

static size_t bootp(const struct reply *r, uint8_t *b)
{
    memset(b, 0, 240);
    b[0] = r->op;
    b[1] = r->htype;
    b[2] = r->hlen;
    net_put32(b + 4, r->xid);
    memcpy(b + 16, &r->yiaddr, 4);
    memcpy(b + 28, r->chaddr, 6);
    memcpy(b + 44, r->sname, 64);
    memcpy(b + 108, r->file, 128);
    if (!r->no_cookie)
        net_put32(b + 236, 0x63825363u);
    memcpy(b + 240, r->opts, r->nopts);
    size_t n = 240 + r->nopts;
    b[n++] = 255;
    return n;
}

/* The reply as a frame from the server, into the stack. */
static void deliver_raw(const uint8_t *payload, size_t plen, uint32_t ip_dst)
{
    uint8_t f[2048];
    memset(f, 0xff, 6);
    memcpy(f + 6, "\x02\x00\x00\x00\x00\x01", 6);
    net_put16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    net_put16(ip + 2, (uint16_t)(20 + 8 + plen));
    ip[8] = 64;
    ip[9] = 17;
    uint32_t src = SERVER, dst = ip_dst ? ip_dst : 0xffffffffu;
    memcpy(ip + 12, &src, 4);
    memcpy(ip + 16, &dst, 4);
    net_put16(ip + 10, net_csum_fold(net_csum_add(0, ip, 20)));
    uint8_t *uh = ip + 20;
    net_put16(uh, 67);
    net_put16(uh + 2, 68);
    net_put16(uh + 4, (uint16_t)(8 + plen));
    net_put16(uh + 6, 0); /* no checksum (RFC 768) */
    memcpy(uh + 8, payload, plen);
    net_input(&ns, f, (uint32_t)(42 + plen), 0);
}

static void deliver(const struct reply *r)
{
    uint8_t b[1024];
    size_t n = bootp(r, b);
    deliver_raw(b, n, r->ip_dst);
}

/* The server answers an ARP request for its address. */
static void arp_answer(void)
{
    if (!arp_asked)
        return;
    cr_assert_eq(arp_asked, SERVER);
    arp_asked = 0;
    uint8_t f[60] = {0};
    memcpy(f, nif.mac, 6);
    memcpy(f + 6, "\x02\x00\x00\x00\x00\x01", 6);
    net_put16(f + 12, 0x0806);
    uint8_t *a = f + 14;
    net_put16(a, 1);
    net_put16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    net_put16(a + 6, 2);
    memcpy(a + 8, "\x02\x00\x00\x00\x00\x01", 6);
    uint32_t s = SERVER;
    memcpy(a + 14, &s, 4);
    memcpy(a + 18, nif.mac, 6);
    memcpy(a + 24, &nif.addr, 4);
    net_input(&ns, f, sizeof(f), 0);
}

/* Runs the stack's timers up to time t (jumping from one to the next). */
static void run_until(uint64_t t)
{
    for (;;) {
        uint64_t next = net_timers(&ns);
        arp_answer();
        if (next > t)
            break;
        if (next > clock_ns)
            clock_ns = next;
    }
    clock_ns = t;
    net_timers(&ns);
}

static const struct sent *last(void)
{
    cr_assert_gt(nsent, 0u);
    return &sent[nsent - 1];
}

static void bind_once(void)
{
    cr_assert_eq(net_dhcp_start(&ns, "fn-1"), 0);
    cr_assert_eq(last()->type, DHCPDISCOVER);
    struct reply r = answer(last(), DHCPOFFER);
    deliver(&r);
    cr_assert_eq(last()->type, DHCPREQUEST);
    r = answer(last(), DHCPACK);
    deliver(&r);
    cr_assert(net_dhcp_bound(&ns));
}

/* ---- the exchange ---------------------------------------------------------------- */

Test(net_dhcp, discover_offer_request_ack_configures_the_interface, .init = setup)
{
    nif.addr = ip4(192, 168, 1, 5); /* whatever was there is cleared */
    cr_assert_eq(net_dhcp_start(&ns, "fn-1"), 0);
    cr_assert_eq(nif.addr, 0u);
    cr_assert_eq(nsent, 1u);
    const struct sent *d = last();
    cr_assert_eq(d->type, DHCPDISCOVER);
    cr_assert_eq(d->src, 0u, "DISCOVER comes from 0.0.0.0");
    cr_assert_eq(d->dst, 0xffffffffu);
    cr_assert(memcmp(d->dst_mac, "\xff\xff\xff\xff\xff\xff", 6) == 0);
    cr_assert_eq(d->flags, 0x8000, "an unconfigured client asks for broadcast replies");
    cr_assert_str_eq(d->hostname, "fn-1");
    cr_assert(!net_dhcp_bound(&ns));

    struct reply r = answer(d, DHCPOFFER);
    deliver(&r);
    cr_assert_eq(nsent, 2u);
    const struct sent *q = last();
    cr_assert_eq(q->type, DHCPREQUEST);
    cr_assert_eq(q->xid, d->xid, "REQUEST carries the offer's xid");
    cr_assert_eq(q->req_addr, YIADDR);
    cr_assert_eq(q->server_id, SERVER);
    cr_assert_eq(q->dst, 0xffffffffu);
    cr_assert_eq(q->ciaddr, 0u);
    cr_assert_eq(nif.addr, 0u, "an offer alone configures nothing");

    r = answer(q, DHCPACK);
    deliver(&r);
    cr_assert(net_dhcp_bound(&ns));
    cr_assert_eq(nif.addr, YIADDR);
    cr_assert_eq(nif.netmask, ip4(255, 255, 255, 0));
    cr_assert_eq(nif.gateway, ip4(10, 9, 0, 1), "the first router");
    cr_assert_eq(nif.dns[0], ip4(10, 9, 0, 53));
    cr_assert_eq(nif.dns[1], ip4(10, 9, 0, 54));
    struct net_config c = {.dns = {nif.dns[0], nif.dns[1]}};
    char text[128];
    net_config_resolv_conf(&c, text, sizeof(text));
    cr_assert_str_eq(text, "nameserver 10.9.0.53\nnameserver 10.9.0.54\n");
    cr_assert_str_eq(ns.dhcp->domain, "", "no option 15: no search domain");
    cr_assert_eq(ns.dhcp->acks, 1u);
}

Test(net_dhcp, lost_discovers_are_retransmitted_with_backoff, .init = setup)
{
    cr_assert_eq(net_dhcp_start(&ns, ""), 0);
    run_until(clock_ns + 60 * SEC); /* the server hears nothing */
    cr_assert_geq(nsent, 4u);
    for (unsigned i = 0; i < nsent; i++)
        cr_assert_eq(sent[i].type, DHCPDISCOVER);
    /* 4 s, 8 s, 16 s, 32 s (§4.1), each ±1 s. */
    uint64_t want[] = {4, 8, 16, 32};
    for (unsigned i = 0; i < 3; i++) {
        uint64_t gap = sent[i + 1].at - sent[i].at;
        cr_assert(gap >= (want[i] - 1) * SEC && gap <= (want[i] + 1) * SEC,
                  "retransmission %u after %llu ms", i + 1, (unsigned long long)(gap / 1000000));
    }
    cr_assert_eq(sent[3].xid, sent[0].xid, "one transaction");
    cr_assert_geq(sent[3].secs, 27u, "secs counts from the first DISCOVER");
    cr_assert_str_eq(sent[0].hostname, "", "no hostname option without a hostname");
    /* The gaps stop growing at 64 s. */
    run_until(clock_ns + 600 * SEC);
    for (unsigned i = 5; i < nsent; i++)
        cr_assert_leq(sent[i].at - sent[i - 1].at, 65 * SEC);
    /* And a late answer still binds. */
    struct reply r = answer(last(), DHCPOFFER);
    deliver(&r);
    r = answer(last(), DHCPACK);
    deliver(&r);
    cr_assert(net_dhcp_bound(&ns));
}

Test(net_dhcp, unanswered_request_starts_over, .init = setup)
{
    cr_assert_eq(net_dhcp_start(&ns, ""), 0);
    struct reply r = answer(last(), DHCPOFFER);
    uint32_t xid = last()->xid;
    deliver(&r);
    run_until(clock_ns + 120 * SEC);
    unsigned requests = 0;
    for (unsigned i = 1; i < nsent && sent[i].type == DHCPREQUEST; i++)
        requests++;
    cr_assert_eq(requests, 4u, "REQUEST tried 4 times");
    cr_assert_eq(sent[5].type, DHCPDISCOVER, "then a new DISCOVER");
    cr_assert_neq(sent[5].xid, xid, "in a new transaction");
}

Test(net_dhcp, nak_drops_the_lease_and_starts_over, .init = setup)
{
    bind_once();
    run_until(clock_ns + 1800 * SEC + 1); /* T1: renewing */
    const struct sent *q = last();
    cr_assert_eq(q->type, DHCPREQUEST);
    struct reply r = answer(q, DHCPNAK);
    deliver(&r);
    cr_assert(!net_dhcp_bound(&ns));
    cr_assert_eq(nif.addr, 0u);
    cr_assert_eq(last()->type, DHCPDISCOVER);
    cr_assert_eq(ns.dhcp->naks, 1u);
}

Test(net_dhcp, renewal_rebinding_and_expiry, .init = setup)
{
    uint64_t t0 = clock_ns;
    bind_once();
    unsigned n = nsent;
    run_until(t0 + 1799 * SEC);
    cr_assert_eq(nsent, n, "nothing before T1 (half of the 3600 s lease)");
    run_until(t0 + 1801 * SEC);
    cr_assert_eq(nsent, n + 1);
    const struct sent *q = last();
    cr_assert_eq(q->type, DHCPREQUEST);
    cr_assert_eq(q->dst, SERVER, "RENEWING unicasts to the server");
    cr_assert_eq(q->src, YIADDR);
    cr_assert_eq(q->ciaddr, YIADDR);
    cr_assert_eq(q->req_addr, 0u, "no requested-address option when renewing");
    cr_assert_eq(q->server_id, 0u, "no server identifier when renewing");
    cr_assert_eq(q->flags, 0);
    /* Unanswered: retries toward T2 (7/8 = 3150 s), then broadcast. */
    run_until(t0 + 3149 * SEC);
    cr_assert_gt(nsent, n + 1, "renewal retransmitted");
    for (unsigned i = n; i < nsent; i++)
        cr_assert_eq(sent[i].dst, SERVER);
    run_until(t0 + 3151 * SEC);
    q = last();
    cr_assert_eq(q->dst, 0xffffffffu, "REBINDING broadcasts");
    cr_assert_eq(q->ciaddr, YIADDR);
    cr_assert(net_dhcp_bound(&ns), "still bound until the lease ends");
    /* An ACK while rebinding renews the lease from now on. */
    struct reply r = answer(q, DHCPACK);
    deliver(&r);
    cr_assert_eq(ns.dhcp->state, DHCP_BOUND);
    uint64_t t1 = clock_ns;
    run_until(t1 + 1799 * SEC);
    n = nsent;
    /* Nobody answers any more: the lease ends, the address goes. */
    run_until(t1 + 3601 * SEC);
    cr_assert_gt(nsent, n);
    cr_assert_eq(nif.addr, 0u, "the expired lease's address is gone");
    cr_assert(!net_dhcp_bound(&ns));
    cr_assert_eq(last()->type, DHCPDISCOVER);
}

Test(net_dhcp, server_times_and_infinite_leases, .init = setup)
{
    cr_assert_eq(net_dhcp_start(&ns, ""), 0);
    struct reply r = answer(last(), DHCPOFFER);
    deliver(&r);
    r = answer(last(), DHCPACK);
    put32(&r, 58, 100); /* T1 */
    put32(&r, 59, 200); /* T2 */
    deliver(&r);
    unsigned n = nsent;
    run_until(clock_ns + 101 * SEC);
    cr_assert_eq(nsent, n + 1, "renewal at the server's T1");
    setup();
    cr_assert_eq(net_dhcp_start(&ns, ""), 0);
    r = answer(last(), DHCPOFFER);
    deliver(&r);
    r = answer(last(), DHCPACK);
    r.nopts -= 6; /* drop option 51 */
    put32(&r, 51, 0xffffffffu);
    deliver(&r);
    cr_assert(net_dhcp_bound(&ns));
    n = nsent;
    run_until(clock_ns + 100000 * SEC);
    cr_assert_eq(nsent, n, "an infinite lease is never renewed");
}

Test(net_dhcp, replies_for_others_are_ignored, .init = setup)
{
    cr_assert_eq(net_dhcp_start(&ns, ""), 0);
    struct reply r = answer(last(), DHCPOFFER);
    r.xid ^= 1;
    deliver(&r);
    r = answer(last(), DHCPOFFER);
    r.chaddr[5] ^= 1;
    deliver(&r);
    r = answer(last(), DHCPACK); /* an ACK while selecting */
    deliver(&r);
    cr_assert_eq(nsent, 1u, "no REQUEST");
    cr_assert_eq(ns.dhcp->ignored, 3u);
    cr_assert(!net_dhcp_bound(&ns));
    /* An ACK from another server than the one requested. */
    r = answer(last(), DHCPOFFER);
    deliver(&r);
    r = answer(last(), DHCPACK);
    memcpy(r.opts + 5, "\x0a\x09\x00\x63", 4); /* option 54's value */
    deliver(&r);
    cr_assert(!net_dhcp_bound(&ns));
    /* Without the client running, port 68 is an ordinary port. */
    setup();
    deliver(&r);
    cr_assert_eq(ns.stats.rx_drop_other, 1u);
}

Test(net_dhcp, options_in_file_and_sname_by_overload, .init = setup)
{
    cr_assert_eq(net_dhcp_start(&ns, ""), 0);
    struct reply r = {.op = 2, .htype = 1, .hlen = 6, .xid = last()->xid, .yiaddr = YIADDR};
    memcpy(r.chaddr, nif.mac, 6);
    uint8_t t = DHCPOFFER, ov = 3;
    put(&r, 53, &t, 1);
    put(&r, 52, &ov, 1);
    uint32_t s = SERVER;
    memcpy(r.file, "\x36\x04", 2); /* 54 in "file" */
    memcpy(r.file + 2, &s, 4);
    r.file[6] = 255;
    memcpy(r.sname, "\x06\x04\x0a\x09\x00\x35\xff", 7); /* 6 in "sname" */
    deliver(&r);
    cr_assert_eq(last()->type, DHCPREQUEST);
    cr_assert_eq(last()->server_id, SERVER);
    r.opts[2] = DHCPACK;
    r.xid = last()->xid;
    deliver(&r);
    cr_assert(net_dhcp_bound(&ns));
    cr_assert_eq(nif.dns[0], ip4(10, 9, 0, 53));
    cr_assert_eq(nif.netmask, ip4(255, 0, 0, 0), "no subnet mask: the class's");
    cr_assert_eq(nif.gateway, 0u);
}

Test(net_dhcp, ip_argument_servers_stay_when_the_lease_has_none, .init = setup)
{
    nif.dns[0] = ip4(1, 1, 1, 1);
    nif.gateway = ip4(10, 9, 0, 254);
    cr_assert_eq(net_dhcp_start(&ns, ""), 0);
    cr_assert_eq(nif.gateway, 0u, "no route without an address");
    struct reply r = {.op = 2, .htype = 1, .hlen = 6, .xid = last()->xid, .yiaddr = YIADDR};
    memcpy(r.chaddr, nif.mac, 6);
    uint8_t t = DHCPOFFER;
    put(&r, 53, &t, 1);
    put_addr(&r, 54, SERVER);
    deliver(&r);
    r.opts[2] = DHCPACK;
    r.xid = last()->xid;
    deliver(&r);
    cr_assert(net_dhcp_bound(&ns));
    cr_assert_eq(nif.dns[0], ip4(1, 1, 1, 1));
    cr_assert_eq(nif.gateway, ip4(10, 9, 0, 254));
}

/* ---- hostile replies ----------------------------------------------------------- */

static const char *parse_reply(const struct reply *r)
{
    uint8_t b[1024];
    size_t n = bootp(r, b);
    struct net_dhcp_msg m;
    return net_dhcp_parse(b, n, &m);
}

static struct reply base(void)
{
    struct sent s = {.xid = 7};
    memcpy(nif.mac, "\x02\x00\x00\x00\x00\x42", 6);
    return answer(&s, DHCPOFFER);
}

#define REJECTS(r, msg)                                                                            \
    do {                                                                                           \
        const char *e_ = parse_reply(&(r));                                                        \
        cr_assert(e_ != NULL, "accepted, want \"%s\"", msg);                                       \
        cr_assert_str_eq(e_, msg);                                                                 \
    } while (0)

Test(net_dhcp_parse, well_formed_offer)
{
    struct reply r = base();
    uint8_t b[1024];
    size_t n = bootp(&r, b);
    struct net_dhcp_msg m;
    cr_assert_null(net_dhcp_parse(b, n, &m));
    cr_assert_eq(m.type, DHCPOFFER);
    cr_assert_eq(m.xid, 7u);
    cr_assert_eq(m.yiaddr, YIADDR);
    cr_assert_eq(m.server_id, SERVER);
    cr_assert_eq(m.lease_s, 3600u);
    cr_assert_eq(m.dns[1], ip4(10, 9, 0, 54));
    /* Without END the message's end ends the options. */
    cr_assert_null(net_dhcp_parse(b, n - 1, &m));
}

Test(net_dhcp_parse, rejections_name_the_fault)
{
    uint8_t b[1024] = {2, 1, 6};
    struct net_dhcp_msg m;
    cr_assert_str_eq(net_dhcp_parse(b, 239, &m), "DHCP: message shorter than 240 bytes");
    cr_assert_str_eq(net_dhcp_parse(b, 0, &m), "DHCP: message shorter than 240 bytes");

    struct reply r = base();
    r.op = 1;
    REJECTS(r, "DHCP: not a BOOTREPLY");
    r = base();
    r.hlen = 16;
    REJECTS(r, "DHCP: hardware address is not Ethernet");
    r = base();
    r.no_cookie = true;
    REJECTS(r, "DHCP: no magic cookie");

    r = base();
    size_t n = bootp(&r, b);
    b[n - 1] = 6; /* END replaced by an option code, then the message ends */
    cr_assert_str_eq(net_dhcp_parse(b, n, &m), "DHCP: an option has no length byte");
    b[n++] = 200; /* ... and a length far past the end */
    b[n++] = 1;
    cr_assert_str_eq(net_dhcp_parse(b, n, &m), "DHCP: an option runs past the end of the message");

    struct {
        uint8_t code, len;
        const char *msg;
    } bad_len[] = {
        {53, 2, "DHCP: option 53 (message type) is not 1 byte"},
        {54, 3, "DHCP: option 54 (server identifier) is not 4 bytes"},
        {1, 5, "DHCP: option 1 (subnet mask) is not 4 bytes"},
        {3, 6, "DHCP: option 3 (router) is not a list of addresses"},
        {3, 0, "DHCP: option 3 (router) is not a list of addresses"},
        {6, 2, "DHCP: option 6 (DNS servers) is not a list of addresses"},
        {51, 8, "DHCP: option 51 (lease time) is not 4 bytes"},
        {58, 1, "DHCP: option 58 (renewal time) is not 4 bytes"},
        {59, 0, "DHCP: option 59 (rebinding time) is not 4 bytes"},
        {52, 2, "DHCP: option 52 (overload) is not 1 byte"},
    };
    for (size_t i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++) {
        r = base();
        uint8_t v[16] = {1, 1, 1, 1, 1, 1, 1, 1};
        put(&r, bad_len[i].code, v, bad_len[i].len);
        REJECTS(r, bad_len[i].msg);
    }
    r = base();
    uint8_t four = 4;
    put(&r, 52, &four, 1);
    REJECTS(r, "DHCP: option 52 (overload) is not 1, 2 or 3");
    r = base();
    put_addr(&r, 1, ip4(255, 0, 255, 0));
    REJECTS(r, "DHCP: option 1 (subnet mask) is not a run of ones");
    r = base();
    put_addr(&r, 1, 0);
    REJECTS(r, "DHCP: option 1 (subnet mask) is not a run of ones");

    r = base();
    memmove(r.opts, r.opts + 3, r.nopts - 3); /* drop option 53 */
    r.nopts -= 3;
    REJECTS(r, "DHCP: no message type (option 53)");
    r = base();
    r.opts[2] = DHCPREQUEST;
    REJECTS(r, "DHCP: not an OFFER, ACK or NAK");
    r = base();
    memmove(r.opts + 3, r.opts + 9, r.nopts - 9); /* drop option 54 */
    r.nopts -= 6;
    REJECTS(r, "DHCP: no server identifier (option 54)");
    uint32_t bad_addr[] = {0, 0xffffffffu, ip4(127, 0, 0, 1), ip4(224, 0, 0, 1), ip4(0, 1, 2, 3)};
    for (size_t i = 0; i < 5; i++) {
        r = base();
        r.yiaddr = bad_addr[i];
        REJECTS(r, "DHCP: offered address is not a unicast host address");
    }
    r = base();
    put32(&r, 51, 0);
    REJECTS(r, "DHCP: option 51 (lease time) is 0");
    /* An overloaded "file" with a bad option is checked too. */
    r = base();
    uint8_t one = 1;
    put(&r, 52, &one, 1);
    r.file[0] = 53;
    r.file[1] = 9;
    REJECTS(r, "DHCP: option 53 (message type) is not 1 byte");
    r.file[1] = 127; /* past the 128-byte field */
    REJECTS(r, "DHCP: an option runs past the end of the message");
}

Test(net_dhcp, bad_replies_are_counted_not_taken, .init = setup)
{
    cr_assert_eq(net_dhcp_start(&ns, ""), 0);
    struct reply r = answer(last(), DHCPOFFER);
    r.yiaddr = 0xffffffffu;
    deliver(&r);
    cr_assert_eq(nsent, 1u);
    cr_assert_eq(ns.dhcp->bad, 1u);
    cr_assert_str_eq(ns.dhcp->last_error, "DHCP: offered address is not a unicast host address");
    /* Every truncation of a good reply, and random bytes, parse or fail
     * cleanly (ASan checks the reads). */
    r = answer(last(), DHCPOFFER);
    uint8_t b[1024];
    size_t n = bootp(&r, b);
    for (size_t k = 0; k < n; k++) {
        uint8_t *copy = malloc(k ? k : 1);
        memcpy(copy, b, k);
        struct net_dhcp_msg m;
        const char *e = net_dhcp_parse(copy, k, &m);
        cr_assert(k >= 240 || e != NULL);
        free(copy);
    }
    for (unsigned i = 0; i < 2000; i++) {
        memcpy(b, (uint8_t[]){2, 1, 6}, 3);
        for (size_t k = 240; k < 400; k++)
            b[k] = (uint8_t)net_random32();
        net_put32(b + 236, 0x63825363u);
        struct net_dhcp_msg m;
        (void)net_dhcp_parse(b, 240 + net_random32() % 160, &m);
    }
}

Test(net_dhcp, search_domain_option_15, .init = setup)
{
    struct {
        const char *value;
        size_t len;
        const char *want;
    } cases[] = {
        {"corp.example", 12, "corp.example"},
        {"corp.example\0", 13, "corp.example"}, /* a counted NUL */
        {"evil\nnameserver 6.6.6.6", 24, ""},   /* a second line: not taken */
        {"has space", 9, ""},
        {".lead", 5, ""},
        {"x", 0, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        setup();
        cr_assert_eq(net_dhcp_start(&ns, ""), 0);
        struct reply r = answer(last(), DHCPOFFER);
        deliver(&r);
        r = answer(last(), DHCPACK);
        put(&r, 15, cases[i].value, cases[i].len);
        deliver(&r);
        cr_assert(net_dhcp_bound(&ns), "case %zu binds", i);
        cr_assert_str_eq(ns.dhcp->domain, cases[i].want, "case %zu", i);
        struct net_config c = {.dns = {nif.dns[0], 0}};
        memcpy(c.domain, ns.dhcp->domain, sizeof(c.domain));
        char text[160];
        net_config_resolv_conf(&c, text, sizeof(text));
        char want[160];
        snprintf(want, sizeof(want), "nameserver 10.9.0.53\n%s%s%s",
                 *cases[i].want ? "search " : "", cases[i].want, *cases[i].want ? "\n" : "");
        cr_assert_str_eq(text, want, "case %zu", i);
    }
}
