/* test_mmds_stack.c: the metadata service's guest-side TCP responder
 * (mmds/mmds_stack.c) driven frame by frame through its interceptor: a
 * lost answer is sent again when its retransmission timer runs out (with
 * back-off, and the connection dropped after the last try), the timer hook
 * fires, and the counters behind Firecracker's "mmds" metrics count what
 * happened.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "mmds/mmds_stack.h"

#define MS 1000000ull

static const uint8_t guest_mac[6] = {6, 0, 0, 0, 0, 2};
static const uint8_t guest_ip[4] = {10, 0, 0, 2};

static struct mmds_store store;
static struct mmds_stack *st;
static struct net_intercept ic;
static uint32_t mmds_ip;
static unsigned armed;
static uint16_t sport = 40000; /* the guest's port */
static uint16_t wnd = 65535;   /* the window the guest advertises */

struct seg {
    uint32_t seq, ack;
    uint8_t flags;
    size_t len;
    char data[1600];
};

static uint64_t mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_arm(void *ctx)
{
    (void)ctx;
    armed++;
}

static void setup(void)
{
    json_error_t je;
    json_t *doc = json_loads("{\"latest\":{\"meta-data\":{\"id\":\"i-1\"}}}", 0, &je);
    char err[128];
    mmds_store_init(&store, MMDS_SIZE_LIMIT_DEFAULT);
    cr_assert_eq(mmds_store_put(&store, doc, err, sizeof(err)), 0);
    json_decref(doc);
    inet_pton(AF_INET, MMDS_IPV4_DEFAULT, &mmds_ip);
    st = mmds_stack_create(&store, mmds_ip);
    cr_assert_not_null(st);
    ic = mmds_stack_intercept(st);
    armed = 0;
    sport = 40000;
    wnd = 65535;
    mmds_stack_set_timer_hook(st, on_arm, NULL);
}

static void teardown(void)
{
    mmds_stack_destroy(st);
    mmds_store_release(&store);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void send_frame(const uint8_t *f, size_t n)
{
    cr_assert(ic.wants(ic.ctx, f, n < 64 ? n : 64), "the responder wants a frame for its address");
    ic.input(ic.ctx, f, n);
}

/* A TCP segment from the guest's port sport to dport. */
static void send_seg(uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, const char *data)
{
    uint8_t f[1600] = {0};
    size_t n = data ? strlen(data) : 0;
    uint8_t *iph = f + 14, *t = iph + 20;
    memcpy(f, "\x06\x01\x23\x45\x67\x01", 6);
    memcpy(f + 6, guest_mac, 6);
    put16(f + 12, 0x0800);
    iph[0] = 0x45;
    put16(iph + 2, (uint16_t)(40 + n));
    iph[8] = 64;
    iph[9] = 6;
    memcpy(iph + 12, guest_ip, 4);
    memcpy(iph + 16, &mmds_ip, 4);
    put16(t, sport);
    put16(t + 2, dport);
    put32(t + 4, seq);
    put32(t + 8, ack);
    t[12] = 5 << 4;
    t[13] = flags;
    put16(t + 14, wnd);
    if (n)
        memcpy(t + 20, data, n);
    send_frame(f, 54 + n);
}

/* The next segment the responder has for the guest; false when none. */
static bool recv_seg(struct seg *s)
{
    uint8_t f[1600];
    size_t n = ic.output(ic.ctx, f, sizeof(f));
    if (!n)
        return false;
    cr_assert_geq(n, 54u);
    const uint8_t *t = f + 34;
    size_t thl = (size_t)(t[12] >> 4) * 4;
    s->seq = get32(t + 4);
    s->ack = get32(t + 8);
    s->flags = t[13];
    s->len = n - 34 - thl;
    memcpy(s->data, t + thl, s->len);
    s->data[s->len] = '\0';
    return true;
}

#define SYN 0x02
#define ACK 0x10
#define PSH 0x08
#define FIN 0x01
#define RST 0x04

static uint32_t iss_guest = 1000;

/* Handshake, then a GET whose answer is returned in *answer (not ACKed). */
static void get_unacked(const char *req, struct seg *answer, uint32_t *srv_next)
{
    struct seg s;
    send_seg(80, iss_guest, 0, SYN, NULL);
    cr_assert(recv_seg(&s));
    cr_assert_eq(s.flags, SYN | ACK);
    uint32_t srv = s.seq + 1;
    send_seg(80, iss_guest + 1, srv, ACK, NULL);
    send_seg(80, iss_guest + 1, srv, ACK | PSH, req);
    bool got = false;
    while (recv_seg(&s))
        if (s.len) {
            *answer = s;
            got = true;
        }
    cr_assert(got, "an answer");
    cr_assert_eq(answer->seq, srv);
    *srv_next = srv + (uint32_t)answer->len;
}

Test(mmds_stack, lost_answer_is_sent_again_by_the_timer, .init = setup, .fini = teardown)
{
    struct seg a, b;
    uint32_t next;
    cr_assert_eq(mmds_stack_next_timer(st), UINT64_MAX, "no timer before any connection");
    get_unacked("GET /latest/meta-data/id HTTP/1.1\r\nHost: x\r\n\r\n", &a, &next);
    cr_assert(strstr(a.data, "200") && strstr(a.data, "i-1"), "the answer: %s", a.data);
    cr_assert_geq(armed, 1u, "the timer hook fired");
    /* The answer is "lost": nothing more comes by itself. */
    cr_assert(!recv_seg(&b));
    uint64_t t0 = mmds_stack_next_timer(st);
    cr_assert_neq(t0, UINT64_MAX, "a retransmission timer runs");
    uint64_t now = mono();
    cr_assert_leq(t0, now + 200 * MS + MS, "first timeout 200 ms");
    /* Before it is due: nothing. */
    mmds_stack_timers(st, t0 - 1);
    cr_assert(!recv_seg(&b));
    uint64_t t1 = mmds_stack_timers(st, t0);
    cr_assert(recv_seg(&b), "the answer again");
    cr_assert_eq(b.seq, a.seq);
    cr_assert_eq(b.len, a.len);
    cr_assert_str_eq(b.data, a.data);
    cr_assert_geq(t1 - t0, 399 * MS, "doubled: 400 ms (got %llu ms)",
                  (unsigned long long)((t1 - t0) / MS));
    /* The guest ACKs it: the timer stops. */
    send_seg(80, iss_guest + 1 + 46, next, ACK, NULL);
    cr_assert_eq(mmds_stack_next_timer(st), UINT64_MAX, "all acknowledged: no timer");
    struct mmds_stats ms;
    mmds_stack_get_stats(st, &ms);
    cr_assert_eq(ms.connections_created, 1u);
    cr_assert_eq(ms.tx_count, 1u, "one response");
    cr_assert_eq(ms.rx_count, 1u, "one request segment");
    cr_assert_geq(ms.tx_frames, 3u, "SYN-ACK, answer, its repeat");
    cr_assert_gt(ms.tx_bytes, 2 * a.len);
    cr_assert_eq(ms.rx_accepted, 4u, "SYN, ACK, request, ACK");
}

Test(mmds_stack, lost_syn_ack_and_giving_up, .init = setup, .fini = teardown)
{
    struct seg s;
    send_seg(80, 5000, 0, SYN, NULL);
    cr_assert(recv_seg(&s));
    uint32_t iss = s.seq;
    uint64_t t = mmds_stack_next_timer(st);
    cr_assert_neq(t, UINT64_MAX);
    t = mmds_stack_timers(st, t);
    cr_assert(recv_seg(&s), "the SYN-ACK again");
    cr_assert_eq(s.flags, SYN | ACK);
    cr_assert_eq(s.seq, iss);
    /* The guest never answers: after the last try the connection goes. */
    unsigned sent = 1;
    for (int i = 0; i < 20 && t != UINT64_MAX; i++) {
        t = mmds_stack_timers(st, t);
        while (recv_seg(&s))
            sent++;
    }
    cr_assert_eq(t, UINT64_MAX, "no timer once the connection is dropped");
    cr_assert_eq(sent, 8u, "8 tries in all");
    struct mmds_stats ms;
    mmds_stack_get_stats(st, &ms);
    cr_assert_eq(ms.connections_created, 1u);
    cr_assert_eq(ms.connections_destroyed, 1u);
    /* A segment for the dropped connection gets a reset. */
    send_seg(80, 5001, iss + 1, ACK, NULL);
    cr_assert(recv_seg(&s));
    cr_assert(s.flags & RST);
}

Test(mmds_stack, counters_for_tokens_and_odd_frames, .init = setup, .fini = teardown)
{
    struct seg a, s;
    uint32_t next;
    store.version = MMDS_V2;
    get_unacked("GET /latest/meta-data/id HTTP/1.1\r\nHost: x\r\n\r\n", &a, &next);
    cr_assert(strstr(a.data, "401"), "no token: %s", a.data);
    send_seg(80, iss_guest + 1 + 46, next, ACK | PSH,
             "GET /latest/meta-data/id HTTP/1.1\r\nX-metadata-token: nope\r\n\r\n");
    while (recv_seg(&s))
        ;
    /* Not port 80; a UDP datagram; a broken IPv4 header. */
    sport = 40001;
    send_seg(81, 1, 0, SYN, NULL);
    while (recv_seg(&s))
        ;
    uint8_t f[64] = {0};
    memcpy(f, "\x06\x01\x23\x45\x67\x01", 6);
    put16(f + 12, 0x0800);
    f[14] = 0x45;
    put16(f + 16, 28);
    f[23] = 17;
    memcpy(f + 30, &mmds_ip, 4);
    send_frame(f, 60);
    f[14] = 0x4f; /* a 60-byte header in a 46-byte datagram */
    send_frame(f, 60);
    struct mmds_stats ms;
    mmds_stack_get_stats(st, &ms);
    cr_assert_eq(ms.rx_no_token, 1u);
    cr_assert_eq(ms.rx_invalid_token, 1u);
    cr_assert_eq(ms.tx_count, 2u);
    cr_assert_eq(ms.rx_accepted_unusual, 2u, "port 81 and UDP (got %llu)",
                 (unsigned long long)ms.rx_accepted_unusual);
    cr_assert_eq(ms.rx_bad_eth, 1u);
    cr_assert_eq(ms.rx_accepted, 7u, "SYN, ACK, 2 requests, port 81, UDP, broken");
}

Test(mmds_stack, closed_window_is_probed, .init = setup, .fini = teardown)
{
    struct seg s;
    send_seg(80, iss_guest, 0, SYN, NULL);
    cr_assert(recv_seg(&s));
    uint32_t srv = s.seq + 1;
    wnd = 0; /* the guest's buffer is full from here on */
    send_seg(80, iss_guest + 1, srv, ACK, NULL);
    send_seg(80, iss_guest + 1, srv, ACK | PSH, "GET /latest/meta-data/id HTTP/1.1\r\n\r\n");
    size_t data = 0;
    while (recv_seg(&s))
        data += s.len;
    cr_assert_eq(data, 0u, "nothing into a closed window");
    uint64_t t = mmds_stack_next_timer(st);
    cr_assert_neq(t, UINT64_MAX, "the persist timer runs");
    /* The guest's window update is lost; the probe finds the window open. */
    mmds_stack_timers(st, t);
    cr_assert(recv_seg(&s), "a window probe");
    cr_assert_eq(s.len, 1u);
    cr_assert_eq(s.seq, srv);
    wnd = 65535;
    send_seg(80, iss_guest + 1 + 37, srv + 1, ACK, NULL);
    char all[2048] = {s.data[0]};
    size_t n = 1;
    while (recv_seg(&s)) {
        cr_assert_eq(s.seq, srv + n);
        memcpy(all + n, s.data, s.len);
        n += s.len;
    }
    all[n] = '\0';
    cr_assert(strncmp(all, "HTTP/1.1 200", 12) == 0 && strstr(all, "i-1"), "the answer: %s", all);
}
