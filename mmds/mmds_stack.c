/* mmds_stack.c: ARP (RFC 826), IPv4 (RFC 791) and a small TCP (RFC 9293)
 * server for the metadata service (see mmds_stack.h). */
#include "mmds/mmds_stack.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mmds/mmds_http.h"

#define QUEUE_MAX   64u   /* answers waiting for the guest's receive buffers */
#define FRAME_MAX   1514u /* what a guest's 1526-byte buffer holds */
#define MSS_DEFAULT 536u  /* RFC 9293 §3.7.1, when the SYN names none */
#define MSS_MAX     1460u
#define OUT_MAX     (256u * 1024u) /* answered but unacknowledged bytes */
#define WINDOW      65535u
#define HTTP_PORT   80u
/* Retransmission (RFC 6298 in spirit: the link is the host's memory, so
 * no RTT is measured; a fixed start, doubled per try). */
#define RTO_MIN_NS (200u * 1000000ull)
#define RTO_MAX_NS (10u * 1000000000ull)
#define RTO_TRIES  8u

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10

/* Firecracker's MMDS MAC, so guests that pin it keep working. */
static const uint8_t mmds_mac[6] = {0x06, 0x01, 0x23, 0x45, 0x67, 0x01};

struct conn {
    uint8_t peer_mac[6];
    uint32_t peer_ip; /* network order */
    uint16_t peer_port;
    bool established, fin_rcvd, fin_sent, close_after;
    uint32_t iss, snd_una, snd_nxt, rcv_nxt, fin_seq;
    uint32_t peer_wnd;
    uint16_t mss;
    uint8_t *out; /* bytes from sequence out_seq on */
    size_t out_len;
    uint32_t out_seq;
    uint64_t last_use;
    uint64_t rto_at; /* retransmission due (CLOCK_MONOTONIC ns), 0 = off */
    unsigned rto_tries;
    struct mmds_http http;
};

struct frame {
    uint16_t len;
    uint8_t data[FRAME_MAX];
};

struct mmds_stack {
    struct mmds_store *store;
    uint32_t ip; /* network order */
    uint16_t ip_id;
    struct conn *conns[MMDS_CONNS_MAX];
    struct frame *queue; /* ring */
    unsigned head, count;
    struct mmds_stats stats;
    void (*arm)(void *ctx);
    void *arm_ctx;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
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

/* Sequence-space comparisons (RFC 9293 §3.4). */
static bool seq_lt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

static bool seq_le(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) <= 0;
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t sum)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += get16(p + i);
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

static uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* A slot at the tail of the queue, or NULL when it is full. */
static struct frame *enqueue(struct mmds_stack *s)
{
    if (s->count == QUEUE_MAX) {
        s->stats.tx_errors++;
        return NULL;
    }
    struct frame *f = &s->queue[(s->head + s->count) % QUEUE_MAX];
    s->count++;
    return f;
}

static bool queue_room(const struct mmds_stack *s)
{
    return s->count < QUEUE_MAX;
}

/* ---- ARP ---------------------------------------------------------------- */

static void arp_input(struct mmds_stack *s, const uint8_t *f, size_t len)
{
    const uint8_t *a = f + 14;
    struct frame *out;

    /* Ethernet/IPv4 request (RFC 826) for the MMDS address. */
    if (len < 42 || get16(a) != 1 || get16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4 ||
        get16(a + 6) != 1 || memcmp(a + 24, &s->ip, 4) != 0)
        return;
    out = enqueue(s);
    if (!out)
        return;
    uint8_t *o = out->data, *r = o + 14;
    memcpy(o, a + 8, 6);
    memcpy(o + 6, mmds_mac, 6);
    put16(o + 12, 0x0806);
    put16(r, 1);
    put16(r + 2, 0x0800);
    r[4] = 6;
    r[5] = 4;
    put16(r + 6, 2);
    memcpy(r + 8, mmds_mac, 6);
    memcpy(r + 14, &s->ip, 4);
    memcpy(r + 18, a + 8, 10); /* the asker's MAC and address */
    out->len = 42;
}

/* ---- TCP output ------------------------------------------------------------ */

/* Queues one segment to the peer of c (or to the given peer for a RST
 * without a connection). False when the queue is full. */
static bool emit(struct mmds_stack *s, const uint8_t mac[6], uint32_t ip, uint16_t port,
                 uint32_t seq, uint32_t ack, uint8_t flags, const uint8_t *data, size_t n,
                 bool mss_option)
{
    struct frame *f = enqueue(s);
    size_t thl = mss_option ? 24 : 20, tot = 20 + thl + n;

    if (!f)
        return false;
    uint8_t *e = f->data, *iph = e + 14, *t = iph + 20;
    memcpy(e, mac, 6);
    memcpy(e + 6, mmds_mac, 6);
    put16(e + 12, 0x0800);
    iph[0] = 0x45;
    iph[1] = 0;
    put16(iph + 2, (uint16_t)tot);
    put16(iph + 4, s->ip_id++);
    put16(iph + 6, 0x4000); /* DF */
    iph[8] = 64;
    iph[9] = 6;
    put16(iph + 10, 0);
    memcpy(iph + 12, &s->ip, 4);
    memcpy(iph + 16, &ip, 4);
    put16(iph + 10, fold(sum16(iph, 20, 0)));
    put16(t, HTTP_PORT);
    put16(t + 2, port);
    put32(t + 4, seq);
    put32(t + 8, ack);
    t[12] = (uint8_t)((thl / 4) << 4);
    t[13] = flags;
    put16(t + 14, WINDOW);
    put16(t + 16, 0);
    put16(t + 18, 0);
    if (mss_option) {
        t[20] = 2;
        t[21] = 4;
        put16(t + 22, MSS_MAX);
    }
    if (n)
        memcpy(t + thl, data, n);
    /* RFC 9293 §3.1: over the pseudo-header, header and data. */
    uint32_t ps = sum16(iph + 12, 8, 0) + 6u + (uint32_t)(thl + n);
    put16(t + 16, fold(sum16(t, thl + n, ps)));
    f->len = (uint16_t)(14 + tot);
    return true;
}

static bool c_emit(struct mmds_stack *s, struct conn *c, uint32_t seq, uint8_t flags,
                   const uint8_t *data, size_t n)
{
    return emit(s, c->peer_mac, c->peer_ip, c->peer_port, seq, c->rcv_nxt, flags, data, n,
                flags & TCP_SYN);
}

static uint64_t rto_ns(const struct conn *c)
{
    unsigned sh = c->rto_tries < 6 ? c->rto_tries : 6;
    uint64_t t = RTO_MIN_NS << sh;
    return t < RTO_MAX_NS ? t : RTO_MAX_NS;
}

/* Answer bytes wait for a window the guest closed. */
static bool window_stalled(const struct conn *c)
{
    return c->established && c->peer_wnd == 0 &&
           seq_lt(c->snd_nxt, c->out_seq + (uint32_t)c->out_len);
}

/* The retransmission timer runs while anything sent (the SYN-ACK, data,
 * the FIN) is unacknowledged, and as the persist timer while the guest's
 * window is closed on bytes to send. */
static void rto_check(struct mmds_stack *s, struct conn *c)
{
    if (c->snd_una == c->snd_nxt && !window_stalled(c)) {
        c->rto_at = 0;
        return;
    }
    if (c->rto_at)
        return;
    c->rto_at = now_ns() + rto_ns(c);
    if (s->arm)
        s->arm(s->arm_ctx);
}

static void pump_inner(struct mmds_stack *s, struct conn *c);

/* Sends what the window and the queue allow, then the FIN when it is due. */
static void pump(struct mmds_stack *s, struct conn *c)
{
    pump_inner(s, c);
    rto_check(s, c);
}

static void pump_inner(struct mmds_stack *s, struct conn *c)
{
    if (!c->established)
        return;
    uint32_t end = c->out_seq + (uint32_t)c->out_len;
    while (seq_lt(c->snd_nxt, end) && queue_room(s)) {
        uint32_t in_flight = c->snd_nxt - c->snd_una;
        if (in_flight >= c->peer_wnd)
            break;
        size_t off = c->snd_nxt - c->out_seq, n = end - c->snd_nxt;
        if (n > c->mss)
            n = c->mss;
        if (n > c->peer_wnd - in_flight)
            n = c->peer_wnd - in_flight;
        c_emit(s, c, c->snd_nxt, TCP_ACK | TCP_PSH, c->out + off, n);
        c->snd_nxt += (uint32_t)n;
    }
    if (c->snd_nxt == end && !c->fin_sent && (c->close_after || c->fin_rcvd) && queue_room(s)) {
        c->fin_seq = end;
        c_emit(s, c, end, TCP_FIN | TCP_ACK, NULL, 0);
        c->fin_sent = true;
        c->snd_nxt = end + 1;
    }
}

static void conn_free(struct mmds_stack *s, unsigned i)
{
    s->stats.connections_destroyed++;
    free(s->conns[i]->out);
    free(s->conns[i]);
    s->conns[i] = NULL;
}

/* Appends an answer to the bytes to send. */
static void queue_answer(struct mmds_stack *s, struct conn *c, char *resp, size_t len)
{
    uint8_t *n;

    if (!resp)
        return;
    n = c->out_len + len <= OUT_MAX ? realloc(c->out, c->out_len + len) : NULL;
    if (n) {
        memcpy(n + c->out_len, resp, len);
        c->out = n;
        c->out_len += len;
        s->stats.tx_count++;
    } else {
        s->stats.tx_errors++;
        c->close_after = true; /* cannot answer: end the connection */
    }
    free(resp);
}

/* ---- TCP input ------------------------------------------------------------- */

static void rst_for(struct mmds_stack *s, const uint8_t *mac, uint32_t ip, uint16_t port,
                    const uint8_t *t, size_t paylen)
{
    uint8_t flags = t[13];
    uint32_t seq = get32(t + 4), ack = get32(t + 8);

    if (flags & TCP_RST)
        return;
    /* RFC 9293 §3.10.7.1 */
    if (flags & TCP_ACK)
        emit(s, mac, ip, port, ack, 0, TCP_RST, NULL, 0, false);
    else
        emit(s, mac, ip, port, 0,
             seq + (uint32_t)paylen + ((flags & TCP_SYN) ? 1u : 0u) + ((flags & TCP_FIN) ? 1u : 0u),
             TCP_RST | TCP_ACK, NULL, 0, false);
}

static uint16_t syn_mss(const uint8_t *t, size_t thl)
{
    for (size_t i = 20; i < thl;) {
        uint8_t kind = t[i];
        if (kind == 0)
            break;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= thl || t[i + 1] < 2 || i + t[i + 1] > thl)
            break;
        if (kind == 2 && t[i + 1] == 4)
            return get16(t + i + 2);
        i += t[i + 1];
    }
    return MSS_DEFAULT;
}

static void new_conn(struct mmds_stack *s, const uint8_t *mac, uint32_t ip, uint16_t port,
                     const uint8_t *t, size_t thl)
{
    unsigned slot = MMDS_CONNS_MAX, oldest = 0;

    for (unsigned i = 0; i < MMDS_CONNS_MAX; i++) {
        if (!s->conns[i]) {
            slot = i;
            break;
        }
        if (s->conns[i]->last_use < s->conns[oldest]->last_use)
            oldest = i;
    }
    if (slot == MMDS_CONNS_MAX) {
        conn_free(s, oldest);
        slot = oldest;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        s->stats.rx_accepted_err++;
        return;
    }
    s->conns[slot] = c;
    s->stats.connections_created++;
    memcpy(c->peer_mac, mac, 6);
    c->peer_ip = ip;
    c->peer_port = port;
    c->iss = (uint32_t)(now_ns() >> 6) * 2654435761u;
    c->snd_una = c->iss;
    c->snd_nxt = c->iss + 1;
    c->out_seq = c->iss + 1;
    c->rcv_nxt = get32(t + 4) + 1;
    c->peer_wnd = get16(t + 14);
    uint16_t mss = syn_mss(t, thl);
    c->mss = mss < 64 ? 64 : mss > MSS_MAX ? MSS_MAX : mss;
    c->last_use = now_ns();
    mmds_http_init(&c->http);
    c_emit(s, c, c->iss, TCP_SYN | TCP_ACK, NULL, 0);
    rto_check(s, c);
}

static void tcp_input(struct mmds_stack *s, const uint8_t *f, const uint8_t *iph, size_t ihl,
                      size_t tot)
{
    const uint8_t *t = iph + ihl;
    size_t tlen = tot - ihl, thl;
    uint32_t ip;

    if (tlen < 20) {
        s->stats.rx_bad_eth++;
        return;
    }
    thl = (size_t)(t[12] >> 4) * 4;
    if (thl < 20 || thl > tlen) {
        s->stats.rx_bad_eth++;
        return;
    }
    memcpy(&ip, iph + 12, 4);
    uint16_t sport = get16(t), dport = get16(t + 2);
    uint8_t flags = t[13];
    uint32_t seq = get32(t + 4), ack = get32(t + 8);
    const uint8_t *data = t + thl;
    size_t n = tlen - thl;
    unsigned i;
    struct conn *c = NULL;

    for (i = 0; i < MMDS_CONNS_MAX; i++)
        if (s->conns[i] && s->conns[i]->peer_ip == ip && s->conns[i]->peer_port == sport) {
            c = s->conns[i];
            break;
        }
    if (!c) {
        if (dport == HTTP_PORT && (flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN) {
            new_conn(s, f + 6, ip, sport, t, thl);
        } else {
            s->stats.rx_accepted_unusual++;
            rst_for(s, f + 6, ip, sport, t, n);
        }
        return;
    }
    c->last_use = now_ns();
    if (flags & TCP_RST) {
        conn_free(s, i);
        return;
    }
    if (flags & TCP_SYN) {
        /* Our SYN-ACK was lost: again. */
        if (!c->established && seq + 1 == c->rcv_nxt)
            c_emit(s, c, c->iss, TCP_SYN | TCP_ACK, NULL, 0);
        return;
    }
    if (!(flags & TCP_ACK))
        return;
    c->peer_wnd = get16(t + 14);
    if (!c->established) {
        if (ack != c->iss + 1) {
            rst_for(s, f + 6, ip, sport, t, n);
            return;
        }
        c->established = true;
        c->snd_una = ack;
        c->rto_tries = 0;
    }
    bool advanced = false;
    if (seq_lt(c->snd_una, ack) && seq_le(ack, c->snd_nxt)) {
        uint32_t acked_data = ack - c->out_seq;
        if (c->fin_sent && ack == c->fin_seq + 1)
            acked_data--;
        if (acked_data > c->out_len)
            acked_data = (uint32_t)c->out_len;
        if (acked_data)
            memmove(c->out, c->out + acked_data, c->out_len - acked_data);
        c->out_len -= acked_data;
        c->out_seq += acked_data;
        c->snd_una = ack;
        advanced = true;
        c->rto_at = 0; /* progress: the timer starts over */
        c->rto_tries = 0;
    }
    bool ack_now = false;
    if (n || (flags & TCP_FIN)) {
        if (seq_lt(seq, c->rcv_nxt) && seq_lt(c->rcv_nxt, seq + (uint32_t)n)) {
            /* A repeat that carries new bytes too: keep the new ones. */
            uint32_t skip = c->rcv_nxt - seq;
            data += skip;
            n -= skip;
            seq = c->rcv_nxt;
        }
        if (seq != c->rcv_nxt) {
            /* Out of order or a repeat: say where we are, and resend what
             * the guest may have missed. */
            s->stats.rx_accepted_unusual++;
            c_emit(s, c, c->snd_nxt, TCP_ACK, NULL, 0);
            c->snd_nxt = c->snd_una;
            if (c->fin_sent && seq_le(c->snd_nxt, c->fin_seq))
                c->fin_sent = false;
            pump(s, c);
            return;
        }
        if (n && !c->fin_rcvd && c->out_len < OUT_MAX) {
            size_t off = 0;
            while (off < n) {
                char *resp;
                size_t rlen;
                bool close;
                size_t used = mmds_http_feed(&c->http, s->store, data + off, n - off, now_ns(),
                                             &resp, &rlen, &close);
                s->stats.rx_no_token += c->http.no_token;
                s->stats.rx_invalid_token += c->http.bad_token;
                queue_answer(s, c, resp, rlen);
                if (close) {
                    c->close_after = true;
                    off = n;
                    break;
                }
                if (!used && !resp)
                    break;
                off += used;
            }
            c->rcv_nxt += (uint32_t)n;
            s->stats.rx_count++;
            ack_now = true;
        } else if (n) {
            s->stats.rx_accepted_err++;
            return; /* no room: not acknowledged, the guest sends it again */
        }
        if (flags & TCP_FIN) {
            c->rcv_nxt++;
            c->fin_rcvd = true;
            ack_now = true;
        }
    } else if (!advanced && seq_lt(c->snd_una, c->snd_nxt)) {
        /* A duplicate acknowledgement with data outstanding: go back. */
        c->snd_nxt = c->snd_una;
        if (c->fin_sent && seq_le(c->snd_nxt, c->fin_seq))
            c->fin_sent = false;
    }
    rto_check(s, c);
    if (c->fin_sent && c->snd_una == c->fin_seq + 1 && c->fin_rcvd) {
        if (ack_now)
            c_emit(s, c, c->snd_nxt, TCP_ACK, NULL, 0);
        conn_free(s, i);
        return;
    }
    uint32_t before = s->count;
    pump(s, c);
    if (ack_now && s->count == before)
        c_emit(s, c, c->snd_nxt, TCP_ACK, NULL, 0);
}

/* ---- the interceptor ------------------------------------------------------- */

static bool st_wants(void *ctx, const uint8_t *f, size_t len)
{
    struct mmds_stack *s = ctx;

    if (len < 14)
        return false;
    uint16_t type = get16(f + 12);
    if (type == 0x0806)
        return len >= 42 && memcmp(f + 14 + 24, &s->ip, 4) == 0;
    if (type == 0x0800)
        return len >= 34 && memcmp(f + 14 + 16, &s->ip, 4) == 0;
    return false;
}

static void st_input(void *ctx, const uint8_t *f, size_t len)
{
    struct mmds_stack *s = ctx;

    s->stats.rx_accepted++;
    if (len < 14) {
        s->stats.rx_bad_eth++;
        return;
    }
    uint16_t type = get16(f + 12);
    if (type == 0x0806) {
        arp_input(s, f, len);
        return;
    }
    const uint8_t *iph = f + 14;
    if (type != 0x0800 || len < 34) {
        s->stats.rx_bad_eth++;
        return;
    }
    size_t ihl = (size_t)(iph[0] & 15) * 4, tot = get16(iph + 2);
    if ((iph[0] >> 4) != 4 || ihl < 20 || tot < ihl || 14 + tot > len) {
        s->stats.rx_bad_eth++;
        return;
    }
    if ((get16(iph + 6) & 0x3fff) || iph[9] != 6) {
        s->stats.rx_accepted_unusual++; /* fragments, not TCP: not a metadata request */
        return;
    }
    tcp_input(s, f, iph, ihl, tot);
}

static size_t st_output(void *ctx, uint8_t *buf, size_t cap)
{
    struct mmds_stack *s = ctx;
    size_t n;

    if (!s->count) {
        for (unsigned i = 0; i < MMDS_CONNS_MAX; i++)
            if (s->conns[i])
                pump(s, s->conns[i]);
        if (!s->count)
            return 0;
    }
    struct frame *f = &s->queue[s->head];
    n = f->len <= cap ? f->len : 0;
    memcpy(buf, f->data, n);
    s->head = (s->head + 1) % QUEUE_MAX;
    s->count--;
    if (n) {
        s->stats.tx_frames++;
        s->stats.tx_bytes += n;
    } else {
        s->stats.tx_errors++;
    }
    return n;
}

struct mmds_stack *mmds_stack_create(struct mmds_store *store, uint32_t ipv4)
{
    struct mmds_stack *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->queue = calloc(QUEUE_MAX, sizeof(*s->queue));
    if (!s->queue) {
        free(s);
        return NULL;
    }
    s->store = store;
    s->ip = ipv4;
    return s;
}

void mmds_stack_destroy(struct mmds_stack *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < MMDS_CONNS_MAX; i++)
        if (s->conns[i])
            conn_free(s, i);
    free(s->queue);
    free(s);
}

struct net_intercept mmds_stack_intercept(struct mmds_stack *s)
{
    return (struct net_intercept){
        .ctx = s, .wants = st_wants, .input = st_input, .output = st_output};
}

void mmds_stack_get_stats(const struct mmds_stack *s, struct mmds_stats *out)
{
    *out = s->stats;
}

void mmds_stack_set_timer_hook(struct mmds_stack *s, void (*arm)(void *ctx), void *ctx)
{
    s->arm = arm;
    s->arm_ctx = ctx;
}

uint64_t mmds_stack_next_timer(const struct mmds_stack *s)
{
    uint64_t t = UINT64_MAX;
    for (unsigned i = 0; i < MMDS_CONNS_MAX; i++)
        if (s->conns[i] && s->conns[i]->rto_at && s->conns[i]->rto_at < t)
            t = s->conns[i]->rto_at;
    return t;
}

uint64_t mmds_stack_timers(struct mmds_stack *s, uint64_t now)
{
    for (unsigned i = 0; i < MMDS_CONNS_MAX; i++) {
        struct conn *c = s->conns[i];
        if (!c || !c->rto_at || now < c->rto_at)
            continue;
        if (++c->rto_tries > RTO_TRIES) {
            conn_free(s, i); /* the guest is gone or stuck: forget it */
            continue;
        }
        /* Go back to the first unacknowledged byte (or the SYN-ACK). */
        if (!c->established) {
            c_emit(s, c, c->iss, TCP_SYN | TCP_ACK, NULL, 0);
        } else {
            c->snd_nxt = c->snd_una;
            if (c->fin_sent && seq_le(c->snd_nxt, c->fin_seq))
                c->fin_sent = false;
            if (window_stalled(c)) {
                /* A zero window: probe it with one byte (RFC 9293
                 * §3.8.6.1), so a lost window update cannot stall. */
                if (c_emit(s, c, c->snd_nxt, TCP_ACK, c->out + (c->snd_nxt - c->out_seq), 1))
                    c->snd_nxt++;
            } else {
                pump_inner(s, c);
            }
        }
        c->rto_at = now + rto_ns(c);
    }
    return mmds_stack_next_timer(s);
}
