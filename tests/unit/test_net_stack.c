/* test_net_stack.c: the guest SDK's TCP/IP stack (guest-sdk/src/net/) on the
 * host: two stacks wired back to back through a fake link that can lose,
 * reorder and duplicate frames, a fake clock that jumps to the next timer
 * when the link is idle, and checks of what arrives (bytes compared, states,
 * errnos). Offload modes: software checksums, and device checksum + TSO
 * where the link finishes partial checksums and carries 64 KiB frames (as
 * a tap with TUNSETOFFLOAD does between two virtio-net guests).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest-sdk/src/net/net_config.h"
#include "guest-sdk/src/net/net_stack.h"

/* ---- platform hooks ---------------------------------------------------------- */

static uint64_t clock_ns = 1000000000ull;
static uint64_t rng = 88172645463325252ull;

uint64_t net_now_ns(void)
{
    return clock_ns;
}

static uint32_t prng(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

uint32_t net_random32(void)
{
    return prng();
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

/* ---- the fake link ------------------------------------------------------------- */

struct frame {
    struct frame *next;
    int to; /* 0 = A, 1 = B */
    uint32_t len;
    uint8_t data[];
};

struct link {
    struct net_if nif[2];
    struct net_stack st[2];
    struct frame *q;
    unsigned loss_pct, reorder_pct, dup_pct;
    unsigned tx_room; /* 0 = unlimited */
    unsigned inflight[2];
    uint64_t delivered, lost, max_frame;
    bool corrupt;          /* flip a bit in some frames (checksums must catch it) */
    bool batch;            /* each pass is a receive pass (net_rx_begin/end), as the driver's */
    uint64_t pure_acks[2]; /* TCP frames without data or SYN/FIN/RST sent by A, B */
};

static struct link L;

static void finish_csum(uint8_t *d, uint32_t len, const struct net_frame *f)
{
    if (!(f->flags & NET_TX_F_CSUM))
        return;
    uint32_t start = f->csum_start;
    cr_assert_lt(start + f->csum_offset + 2, len + 1);
    /* The field holds the pseudo-header sum; the rest is summed over the
     * L4 segment (virtio 1.2 §5.1.6.2). */
    uint16_t c = net_csum_fold(net_csum_add(0, d + start, len - start));
    net_put16(d + start + f->csum_offset, c);
}

static int link_tx(struct net_if *nif, const struct net_frame *f)
{
    int from = nif == &L.nif[0] ? 0 : 1;
    if (L.tx_room && L.inflight[from] >= L.tx_room)
        return -EAGAIN;
    cr_assert(f->gso_type == NET_GSO_NONE || (nif->offload & NET_OFF_TSO4));
    cr_assert(f->len <= 65535 + 14);
    struct frame *fr = malloc(sizeof(*fr) + f->len);
    uint32_t off = 0;
    for (unsigned i = 0; i < f->nseg; i++) {
        memcpy(fr->data + off, f->seg[i].p, f->seg[i].len);
        off += f->seg[i].len;
    }
    cr_assert_eq(off, f->len);
    fr->len = off;
    fr->to = !from;
    fr->next = NULL;
    if (off > L.max_frame)
        L.max_frame = off;
    finish_csum(fr->data, fr->len, f);
    if (!(nif->offload & NET_OFF_TSO4))
        cr_assert_leq(fr->len, 1514u, "a frame larger than the MTU without TSO");
    L.inflight[from]++;
    if (fr->len >= 54 && fr->data[23] == 6) {
        const uint8_t *t = fr->data + 34;
        if (fr->len == 34u + (t[12] >> 4) * 4u && !(t[13] & 0x07))
            L.pure_acks[from]++;
    }
    if (getenv("NET_TRACE") && fr->len >= 54 && fr->data[23] == 6) {
        const uint8_t *t = fr->data + 34;
        fprintf(stderr, "%c> seq %u ack %u flags %02x win %u len %u\n", 'A' + from,
                net_get32(t + 4), net_get32(t + 8), t[13], net_get16(t + 14),
                fr->len - 34 - (t[12] >> 4) * 4);
    }
    /* Reordering: put it before the last queued frame now and then. */
    struct frame **t = &L.q;
    while (*t && (*t)->next)
        t = &(*t)->next;
    if (*t && prng() % 100 < L.reorder_pct) {
        fr->next = *t;
        *t = fr;
    } else {
        while (*t)
            t = &(*t)->next;
        *t = fr;
    }
    return 0;
}

static unsigned link_room(struct net_if *nif)
{
    int from = nif == &L.nif[0] ? 0 : 1;
    return L.tx_room ? L.tx_room - L.inflight[from] : 64;
}

static void link_init(unsigned offload)
{
    memset(&L, 0, sizeof(L));
    for (int i = 0; i < 2; i++) {
        struct net_if *n = &L.nif[i];
        uint8_t mac[6] = {0x02, 0, 0, 0, 0, (uint8_t)(i + 1)};
        memcpy(n->mac, mac, 6);
        n->mtu = 1500;
        n->offload = offload;
        n->addr = net_htonl(0x0a000001u + (uint32_t)i);
        n->netmask = net_htonl(0xffffff00u);
        n->tx = link_tx;
        n->tx_room = link_room;
        net_stack_init(&L.st[i], n);
    }
}

/* Delivers what is queued (one pass), runs timers; true if anything
 * happened. */
static bool link_step(void)
{
    bool any = false;
    struct frame *q = L.q;
    L.q = NULL;
    L.inflight[0] = L.inflight[1] = 0;
    if (L.batch) {
        net_rx_begin(&L.st[0]);
        net_rx_begin(&L.st[1]);
    }
    while (q) {
        struct frame *n = q->next;
        any = true;
        if (prng() % 100 < L.loss_pct) {
            L.lost++;
        } else {
            if (L.corrupt && q->len > 40 && prng() % 4 == 0)
                q->data[14 + prng() % (q->len - 14)] ^= (uint8_t)(1u << (prng() % 8));
            bool dup = prng() % 100 < L.dup_pct;
            L.delivered++;
            net_input(&L.st[q->to], q->data, q->len, 0);
            if (dup)
                net_input(&L.st[q->to], q->data, q->len, 0);
        }
        free(q);
        q = n;
    }
    if (L.batch) {
        net_rx_end(&L.st[0]);
        net_rx_end(&L.st[1]);
    }
    for (int i = 0; i < 2; i++) {
        net_tcp_resume(&L.st[i]);
        if (net_next_timer(&L.st[i]) <= clock_ns || net_loopback_pending(&L.st[i])) {
            net_timers(&L.st[i]);
            any = true;
        }
    }
    return any || L.q;
}

/* Runs until nothing moves; then the clock jumps to the next timer, for
 * at most span in all. */
static void link_run(uint64_t span)
{
    uint64_t end = clock_ns + span;
    for (int guard = 0; guard < 1000000; guard++) {
        if (link_step())
            continue;
        uint64_t t = net_next_timer(&L.st[0]);
        if (net_next_timer(&L.st[1]) < t)
            t = net_next_timer(&L.st[1]);
        if (t == UINT64_MAX || t > end)
            return;
        clock_ns = t > clock_ns ? t : clock_ns + 1;
    }
    for (int i = 0; i < 2; i++)
        fprintf(stderr, "stack %d: next timer %lld (now %llu), tx %llu rx %llu\n", i,
                (long long)(net_next_timer(&L.st[i]) - clock_ns), (unsigned long long)clock_ns,
                (unsigned long long)L.st[i].stats.tx_frames,
                (unsigned long long)L.st[i].stats.rx_frames);
    cr_assert_fail("the link never went quiet");
}

/* ---- helpers --------------------------------------------------------------------- */

static struct tcp_pcb *listen_on(int side, uint16_t port)
{
    struct tcp_pcb *l = tcp_new(&L.st[side]);
    cr_assert_not_null(l);
    cr_assert_eq(tcp_bind(l, 0, net_htons(port)), 0);
    cr_assert_eq(tcp_listen(l, 16), 0);
    return l;
}

static void connect_pair(struct tcp_pcb **c, struct tcp_pcb **s, uint16_t port)
{
    struct tcp_pcb *l = listen_on(1, port);
    *c = tcp_new(&L.st[0]);
    cr_assert_eq(tcp_connect(*c, L.nif[1].addr, net_htons(port)), 0);
    for (int i = 0; i < 1000 && !(*s = tcp_accept(l)); i++)
        link_run(2000000000ull);
    cr_assert_not_null(*s, "no connection to accept");
    cr_assert_eq((*c)->state, TCPS_ESTABLISHED);
    tcp_close(l, false);
}

/* Moves n bytes of a pattern from a to b, reading as it goes; returns
 * when all arrived and compares them. */
static void transfer(struct tcp_pcb *a, struct tcp_pcb *b, size_t n, uint64_t max_jump)
{
    uint8_t *src = malloc(n), *dst = malloc(n);
    for (size_t i = 0; i < n; i++)
        src[i] = (uint8_t)(i * 7 + (i >> 11));
    size_t sent = 0, got = 0;
    for (int rounds = 0; got < n && rounds < 2000000; rounds++) {
        if (sent < n) {
            struct iovec iov = {src + sent, n - sent};
            long r = tcp_send(a, &iov, 1, false);
            cr_assert(r > 0 || r == -EAGAIN, "tcp_send: %ld", r);
            if (r > 0)
                sent += (size_t)r;
        }
        bool moved = link_step();
        struct iovec in = {dst + got, n - got};
        long r = tcp_recv(b, &in, 1, false);
        cr_assert(r > 0 || r == -EAGAIN, "tcp_recv: %ld (got %zu of %zu)", r, got, n);
        if (r > 0)
            got += (size_t)r;
        else if (!moved) {
            uint64_t t = net_next_timer(&L.st[0]);
            if (net_next_timer(&L.st[1]) < t)
                t = net_next_timer(&L.st[1]);
            cr_assert(t != UINT64_MAX && t <= clock_ns + max_jump, "stuck at %zu of %zu", got, n);
            clock_ns = t > clock_ns ? t : clock_ns + 1;
        }
    }
    cr_assert_eq(got, n);
    cr_assert(memcmp(src, dst, n) == 0, "the bytes differ");
    free(src);
    free(dst);
}

static void close_both(struct tcp_pcb *c, struct tcp_pcb *s)
{
    tcp_close(c, false);
    link_run(1000000000ull);
    struct iovec in = {NULL, 0};
    uint8_t b;
    in.iov_base = &b;
    in.iov_len = 1;
    cr_assert_eq(tcp_recv(s, &in, 1, false), 0, "no end of stream");
    tcp_close(s, false);
    link_run(120000000000ull); /* TIME_WAIT passes */
    cr_assert_null(L.st[0].tcp, "a connection was left behind on A");
    cr_assert_null(L.st[1].tcp, "a connection was left behind on B");
}

/* ---- tests --------------------------------------------------------------------------- */

Test(net_stack, checksum_rfc1071)
{
    /* RFC 1071 §3's example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2. */
    const uint8_t b[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    cr_assert_eq(net_csum_fold(net_csum_add(0, b, 8)), (uint16_t)~0xddf2);
    uint8_t big[1001];
    uint32_t ref = 0;
    for (int i = 0; i < 1001; i++)
        big[i] = (uint8_t)(i * 13);
    for (int i = 0; i + 1 < 1001; i += 2)
        ref += (uint32_t)(big[i] << 8 | big[i + 1]);
    ref += (uint32_t)big[1000] << 8;
    cr_assert_eq(net_csum_fold(net_csum_add(0, big, 1001)), net_csum_fold(ref));
}

Test(net_stack, tcp_transfer_software_checksums)
{
    link_init(0);
    struct tcp_pcb *c, *s;
    connect_pair(&c, &s, 80);
    transfer(c, s, 3u << 20, 1000000000ull);
    transfer(s, c, 1u << 20, 1000000000ull);
    cr_assert_leq(L.max_frame, 1514u);
    close_both(c, s);
}

Test(net_stack, tcp_transfer_tso_and_checksum_offload)
{
    link_init(NET_OFF_TX_CSUM | NET_OFF_TSO4);
    struct tcp_pcb *c, *s;
    connect_pair(&c, &s, 8080);
    transfer(c, s, 16u << 20, 1000000000ull);
    cr_assert_gt(L.max_frame, 60000u, "TSO never sent a large frame");
    close_both(c, s);
}

Test(net_stack, tcp_survives_loss_reorder_duplicates)
{
    link_init(0);
    struct tcp_pcb *c, *s;
    connect_pair(&c, &s, 81);
    L.loss_pct = 5;
    L.reorder_pct = 10;
    L.dup_pct = 3;
    transfer(c, s, 2u << 20, 200000000000ull);
    transfer(s, c, 512u << 10, 200000000000ull);
    cr_assert_gt(L.lost, 0u);
    cr_assert_gt(L.st[0].stats.tcp_rexmt + L.st[0].stats.tcp_fast_rexmt, 0u);
    cr_assert_gt(L.st[1].stats.tcp_ooo, 0u);
    L.loss_pct = L.reorder_pct = L.dup_pct = 0;
    close_both(c, s);
}

Test(net_stack, tcp_loss_with_tso)
{
    link_init(NET_OFF_TX_CSUM | NET_OFF_TSO4);
    struct tcp_pcb *c, *s;
    connect_pair(&c, &s, 82);
    L.loss_pct = 3;
    L.reorder_pct = 5;
    transfer(c, s, 4u << 20, 200000000000ull);
    L.loss_pct = L.reorder_pct = 0;
    close_both(c, s);
}

/* In a receive pass (the driver's batch), the in-order data of the pass is
 * acknowledged once at its end, not every second segment: far fewer pure
 * ACKs for the same bulk transfer, which still arrives intact, and loss
 * and reordering are still recovered from (duplicate ACKs go at once). */
Test(net_stack, tcp_acks_once_per_receive_pass)
{
    struct tcp_pcb *c, *s;
    uint64_t per_segment, per_pass;

    link_init(0);
    connect_pair(&c, &s, 5001);
    L.pure_acks[1] = 0;
    transfer(c, s, 4u << 20, 1000000000ull);
    per_segment = L.pure_acks[1];
    close_both(c, s);

    link_init(0);
    L.batch = true;
    connect_pair(&c, &s, 5002);
    L.pure_acks[1] = 0;
    transfer(c, s, 4u << 20, 1000000000ull);
    per_pass = L.pure_acks[1];
    close_both(c, s);
    cr_assert_gt(per_segment, 0);
    cr_assert_lt(per_pass * 4, per_segment, "%llu pure ACKs per pass vs %llu per segment",
                 (unsigned long long)per_pass, (unsigned long long)per_segment);

    link_init(0);
    L.batch = true;
    L.loss_pct = 3;
    L.reorder_pct = 10;
    connect_pair(&c, &s, 5003);
    transfer(c, s, 1u << 20, 130000000000ull);
    L.loss_pct = L.reorder_pct = 0;
    close_both(c, s);
}

Test(net_stack, tcp_corrupted_frames_are_dropped)
{
    link_init(0);
    struct tcp_pcb *c, *s;
    connect_pair(&c, &s, 83);
    L.corrupt = true;
    transfer(c, s, 1u << 20, 200000000000ull);
    L.corrupt = false;
    cr_assert_gt(L.st[1].stats.rx_drop_bad + L.st[0].stats.rx_drop_bad, 0u);
    close_both(c, s);
}

Test(net_stack, tcp_small_buffers_and_zero_window)
{
    link_init(0);
    struct tcp_pcb *l = listen_on(1, 84);
    tcp_set_bufsize(l, true, 4096);
    struct tcp_pcb *c = tcp_new(&L.st[0]), *s = NULL;
    tcp_set_bufsize(c, false, 8192);
    cr_assert_eq(tcp_connect(c, L.nif[1].addr, net_htons(84)), 0);
    link_run(2000000000ull);
    s = tcp_accept(l);
    cr_assert_not_null(s);
    tcp_close(l, false);
    /* Fill B's window while B does not read: A must stop, then probe. */
    uint8_t buf[100000];
    memset(buf, 'x', sizeof(buf));
    struct iovec iov = {buf, sizeof(buf)};
    long r = tcp_send(c, &iov, 1, false);
    cr_assert_eq(r, 8192);
    link_run(30000000000ull);
    /* Window scale 7: the last 128-byte unit may stay unadvertised. */
    cr_assert_geq(tcp_inq(s), 4096u - 128u, "B holds what its window allowed, not %u", tcp_inq(s));
    cr_assert_gt(L.st[0].stats.tx_frames, 8u, "zero-window probes");
    /* B reads: the window opens, the rest of the 8 KiB follows. */
    size_t got = 0;
    for (int i = 0; i < 100000 && got < 8192; i++) {
        struct iovec in = {buf, sizeof(buf)};
        long n = tcp_recv(s, &in, 1, false);
        cr_assert(n > 0 || n == -EAGAIN);
        if (n > 0) {
            for (long k = 0; k < n; k++)
                cr_assert_eq(buf[k], 'x');
            got += (size_t)n;
        } else {
            link_run(10000000000ull);
        }
    }
    cr_assert_eq(got, 8192u);
    transfer(c, s, 300000, 200000000000ull);
    close_both(c, s);
}

Test(net_stack, tcp_refused_and_reset)
{
    link_init(0);
    struct tcp_pcb *c = tcp_new(&L.st[0]);
    cr_assert_eq(tcp_connect(c, L.nif[1].addr, net_htons(9)), 0);
    link_run(1000000000ull);
    cr_assert_eq(c->state, TCPS_CLOSED);
    cr_assert(tcp_poll(c) & POLLERR);
    uint8_t b;
    struct iovec in = {&b, 1};
    cr_assert_eq(tcp_recv(c, &in, 1, false), -ECONNREFUSED);
    tcp_close(c, false);

    /* Close with unread data resets the peer. */
    struct tcp_pcb *s;
    connect_pair(&c, &s, 85);
    struct iovec out = {"hello", 5};
    cr_assert_eq(tcp_send(c, &out, 1, false), 5);
    link_run(1000000000ull);
    tcp_close(s, false);
    link_run(1000000000ull);
    cr_assert_eq(tcp_recv(c, &in, 1, false), -ECONNRESET);
    tcp_close(c, false);
    link_run(1000000000ull);
    cr_assert_null(L.st[0].tcp);
    cr_assert_null(L.st[1].tcp);
}

Test(net_stack, tcp_connect_timeout_and_keepalive)
{
    link_init(0);
    struct tcp_pcb *c = tcp_new(&L.st[0]);
    L.loss_pct = 100;
    cr_assert_eq(tcp_connect(c, L.nif[1].addr, net_htons(86)), 0);
    link_run(1000000000000ull);
    cr_assert_eq(c->state, TCPS_CLOSED);
    uint8_t b;
    struct iovec in = {&b, 1};
    cr_assert_eq(tcp_recv(c, &in, 1, false), -ETIMEDOUT);
    tcp_close(c, false);

    L.loss_pct = 0;
    struct tcp_pcb *s;
    connect_pair(&c, &s, 87);
    c->keep_idle_s = 10;
    c->keep_intvl_s = 1;
    c->keep_cnt = 3;
    tcp_set_keepalive(c, true);
    link_run(20000000000ull); /* probes answered: still up */
    cr_assert_eq(c->state, TCPS_ESTABLISHED);
    L.loss_pct = 100; /* the peer is gone */
    link_run(100000000000ull);
    cr_assert_eq(c->state, TCPS_CLOSED);
    cr_assert_eq(tcp_recv(c, &in, 1, false), -ETIMEDOUT);
    tcp_close(c, false);
    tcp_close(s, true);
}

Test(net_stack, tcp_many_connections_and_half_close)
{
    link_init(NET_OFF_TX_CSUM | NET_OFF_TSO4);
    struct tcp_pcb *l = listen_on(1, 88);
    for (int i = 0; i < 50; i++) {
        struct tcp_pcb *c = tcp_new(&L.st[0]), *s;
        cr_assert_eq(tcp_connect(c, L.nif[1].addr, net_htons(88)), 0);
        link_run(1000000000ull);
        cr_assert_not_null(s = tcp_accept(l));
        struct iovec q = {"GET / HTTP/1.0\r\n\r\n", 18};
        cr_assert_eq(tcp_send(c, &q, 1, false), 18);
        cr_assert_eq(tcp_shutdown(c, false, true), 0);
        link_run(1000000000ull);
        char buf[64];
        struct iovec in = {buf, sizeof(buf)};
        cr_assert_eq(tcp_recv(s, &in, 1, false), 18);
        cr_assert_eq(tcp_recv(s, &in, 1, false), 0); /* half-closed */
        cr_assert(tcp_poll(s) & POLLRDHUP);
        struct iovec a = {"HTTP/1.0 200 OK\r\n\r\nbody", 23};
        cr_assert_eq(tcp_send(s, &a, 1, false), 23); /* the other half still works */
        tcp_close(s, false);
        link_run(1000000000ull);
        cr_assert_eq(tcp_recv(c, &in, 1, false), 23);
        cr_assert_eq(tcp_recv(c, &in, 1, false), 0);
        tcp_close(c, false);
    }
    tcp_close(l, false);
    link_run(120000000000ull);
    cr_assert_null(L.st[0].tcp);
    cr_assert_null(L.st[1].tcp);
}

Test(net_stack, tcp_listener_backlog_and_port_rules)
{
    link_init(0);
    struct tcp_pcb *l = listen_on(1, 89);
    struct tcp_pcb *x = tcp_new(&L.st[1]);
    cr_assert_eq(tcp_bind(x, 0, net_htons(89)), -EADDRINUSE);
    x->reuse = true;
    cr_assert_eq(tcp_bind(x, 0, net_htons(89)), -EADDRINUSE, "REUSEADDR never shares a listener");
    cr_assert_eq(tcp_bind(x, net_htonl(0x0a0000fe), net_htons(90)), -EADDRNOTAVAIL);
    tcp_close(x, false);
    tcp_close(l, false);
}

Test(net_stack, udp_echo_and_port_unreachable)
{
    link_init(0);
    struct udp_pcb *a = udp_new(&L.st[0]), *b = udp_new(&L.st[1]);
    cr_assert_eq(udp_bind(b, 0, net_htons(7)), 0);
    struct iovec m = {"ping!", 5};
    cr_assert_eq(udp_sendto(a, L.nif[1].addr, net_htons(7), &m, 1), 5);
    link_run(1000000000ull);
    char buf[16];
    struct iovec in = {buf, sizeof(buf)};
    uint32_t addr, full;
    uint16_t port;
    cr_assert_eq(udp_recvfrom(b, &in, 1, false, &addr, &port, &full), 5);
    cr_assert_eq(addr, L.nif[0].addr);
    cr_assert_eq(memcmp(buf, "ping!", 5), 0);
    cr_assert_eq(udp_sendto(b, addr, port, &m, 1), 5);
    link_run(1000000000ull);
    cr_assert_eq(udp_recvfrom(a, &in, 1, false, NULL, NULL, NULL), 5);
    cr_assert_eq(udp_recvfrom(a, &in, 1, false, NULL, NULL, NULL), -EAGAIN);
    /* A connected socket learns of a closed port (ICMP port unreachable). */
    cr_assert_eq(udp_connect(a, L.nif[1].addr, net_htons(9)), 0);
    cr_assert_eq(udp_sendto(a, 0, 0, &m, 1), 5);
    link_run(1000000000ull);
    cr_assert_eq(a->err, ECONNREFUSED);
    /* Oversized datagrams are refused, not fragmented. */
    static char big[2000];
    struct iovec bi = {big, sizeof(big)};
    cr_assert_eq(udp_sendto(a, L.nif[1].addr, net_htons(7), &bi, 1), -EMSGSIZE);
    udp_close(a);
    udp_close(b);
}

Test(net_stack, icmp_echo_reply)
{
    link_init(0);
    /* An echo request from A's MAC to B, built by hand. */
    uint8_t f[14 + 20 + 8 + 32];
    memset(f, 0, sizeof(f));
    memcpy(f, L.nif[1].mac, 6);
    memcpy(f + 6, L.nif[0].mac, 6);
    net_put16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    net_ip_header(&L.st[0], ip, L.nif[0].addr, L.nif[1].addr, 1, 20 + 8 + 32);
    uint8_t *ic = ip + 20;
    ic[0] = 8;
    net_put16(ic + 4, 0x1234);
    net_put16(ic + 6, 1);
    for (int i = 0; i < 32; i++)
        ic[8 + i] = (uint8_t)i;
    net_put16(ic + 2, net_csum_fold(net_csum_add(0, ic, 40)));
    net_input(&L.st[1], f, sizeof(f), 0);
    link_run(2000000000ull); /* B asks for A's MAC first */
    cr_assert_eq(L.st[0].stats.rx_drop_bad, 0u);
    /* A has no ICMP socket: the reply arrived and was counted as
     * delivered to the stack without errors; check it directly instead. */
    cr_assert_geq(L.st[1].stats.tx_frames, 2u, "an ARP request and the echo reply");
}

Test(net_stack, garbage_frames_never_crash)
{
    link_init(NET_OFF_TX_CSUM | NET_OFF_TSO4);
    struct tcp_pcb *l = listen_on(1, 80);
    struct udp_pcb *u = udp_new(&L.st[1]);
    udp_bind(u, 0, net_htons(53));
    uint8_t f[2000];
    for (int i = 0; i < 200000; i++) {
        uint32_t len = prng() % sizeof(f);
        for (uint32_t k = 0; k < len; k++)
            f[k] = (uint8_t)prng();
        /* Often a plausible header so deeper layers are reached. */
        if (len > 60 && i % 2) {
            memcpy(f, L.nif[1].mac, 6);
            net_put16(f + 12, i % 4 == 1 ? 0x0800 : 0x0806);
            f[14] = 0x45;
            net_put16(f + 16, (uint16_t)(len - 14 - prng() % 8));
            f[14 + 6] &= 0x40;
            f[14 + 7] = 0;
            f[14 + 9] = (uint8_t)(i % 3 == 0 ? 6 : i % 3 == 1 ? 17 : 1);
            memcpy(f + 14 + 16, &L.nif[1].addr, 4);
            net_put16(f + 14 + 10, 0);
            net_put16(f + 14 + 10, net_csum_fold(net_csum_add(0, f + 14, 20)));
            if (f[14 + 9] == 6) {
                net_put16(f + 34 + 2, 80);
                net_put16(f + 34 + 2, net_htons(80));
            }
        }
        net_input(&L.st[1], f, len, i % 5 == 0 ? NET_RX_CSUM_OK : 0);
        if (i % 1000 == 0)
            link_run(1000000000ull);
    }
    link_run(300000000000ull);
    udp_close(u);
    tcp_close(l, false);
}

Test(net_config, ip_argument)
{
    struct net_config c;
    cr_assert_eq(net_config_parse_ip("ip=172.16.0.2::172.16.0.1:255.255.255.0::eth0:off", &c), 0);
    cr_assert_eq(c.addr, net_htonl(0xac100002));
    cr_assert_eq(c.gateway, net_htonl(0xac100001));
    cr_assert_eq(c.netmask, net_htonl(0xffffff00));
    cr_assert_eq(c.dns[0], 0u);
    cr_assert_eq(c.dhcp, false);
    cr_assert_eq(net_config_parse_ip("ip=10.0.0.2::10.0.0.1:255.255.0.0::eth0:off:10.0.0.53", &c),
                 0);
    cr_assert_eq(c.dns[0], net_htonl(0x0a000035));
    cr_assert_eq(
        net_config_parse_ip("ip=10.0.0.2::10.0.0.1:255.255.0.0::eth0:off:1.1.1.1:8.8.8.8", &c), 0);
    cr_assert_eq(c.dns[1], net_htonl(0x08080808));
    cr_assert_eq(net_config_parse_ip("ip=dhcp", &c), 0);
    cr_assert(c.dhcp);
    cr_assert_eq(net_config_parse_ip("ip=::::::dhcp", &c), 0);
    cr_assert(c.dhcp);
    cr_assert_eq(net_config_parse_ip("ip=10.0.0.300::10.0.0.1:255.0.0.0::eth0:off", &c), -EINVAL);
    cr_assert_eq(net_config_parse_ip("ip=10.0.0.2::10.0.0.1:255.0.255.0::eth0:off", &c), -EINVAL);
    cr_assert_eq(net_config_parse_ip("ip=10.0.0.2", &c), 0);
    cr_assert_eq(c.netmask, net_htonl(0xff000000), "class A default mask");

    char buf[256];
    c.dns[0] = net_htonl(0x0a000035);
    c.dns[1] = 0;
    net_config_resolv_conf(&c, buf, sizeof(buf));
    cr_assert_str_eq(buf, "nameserver 10.0.0.53\n");
}
