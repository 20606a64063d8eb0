/* net_tcp.c: TCP (RFC 9293).
 *
 * Connections: active and passive open (a listener keeps its embryonic
 * children and an accept queue bounded by the backlog), the full state
 * machine through FIN/RST and TIME_WAIT (2 MSL = 60 s, as Linux), RST and
 * SYN in a synchronized state checked as RFC 5961 asks (exact sequence
 * number, else a challenge ACK).
 *
 * Sending: the application's bytes go into a ring (SO_SNDBUF) and stay
 * there until acknowledged, so retransmissions read the ring again and no
 * segment is ever allocated. Segments are MSS-sized, or up to 64 KiB with
 * the device's TSO (virtio gso_size = MSS). Nagle (unless TCP_NODELAY),
 * sender silly-window avoidance, zero-window probes (persist timer).
 * Retransmission timeout per RFC 6298 (SRTT/RTTVAR, Karn's rule, back-off
 * doubling, 200 ms minimum as Linux, 120 s maximum), congestion control per
 * RFC 5681 with an initial window of 10 segments (RFC 6928), fast
 * retransmit and NewReno recovery (RFC 6582).
 *
 * Receiving: a ring (SO_RCVBUF) whose free part is the advertised window
 * (window scale 7, RFC 7323); out-of-order segments are written at their
 * place in the ring and remembered as at most NET_OOO_MAX ranges (reported
 * in SACK blocks, RFC 2018, when the peer allows), so a filled hole costs
 * no copy. Delayed ACKs (every second full segment at once, else within
 * 40 ms), immediate ACKs for out-of-order data, window updates when the
 * application frees a good part of the ring. Keep-alive (SO_KEEPALIVE,
 * TCP_KEEPIDLE/INTVL/CNT with Linux's defaults).
 *
 * Every header is validated (offset within the segment, option lengths
 * within the header, checksum unless the device vouches for it) before
 * anything is used.
 */
#include <errno.h>
#include <poll.h>

#ifndef POLLRDHUP
#define POLLRDHUP 0x2000 /* Linux's, without _GNU_SOURCE */
#endif

#include "net/net_stack.h"

#define IPPROTO_TCP 6u

#define TH_FIN 0x01u
#define TH_SYN 0x02u
#define TH_RST 0x04u
#define TH_PSH 0x08u
#define TH_ACK 0x10u

#define SEQ_LT(a, b)  ((int32_t)((a) - (b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((a) - (b)) <= 0)
#define SEQ_GT(a, b)  ((int32_t)((a) - (b)) > 0)
#define SEQ_GEQ(a, b) ((int32_t)((a) - (b)) >= 0)

#define MS              1000000ull
#define TCP_BUF_DEFAULT (256u * 1024u)
#define TCP_BUF_MIN     4096u
#define TCP_BUF_MAX     (8u * 1024u * 1024u)
#define TCP_RCV_SHIFT   7u   /* RFC 7323: windows up to 8 MiB */
#define TCP_MSS_DEFAULT 536u /* RFC 9293 §3.7.1 */
#define RTO_INIT_US     1000000ull
#define RTO_MIN_US      200000ull
#define RTO_MAX_US      120000000ull
#define DELACK_NS       (40 * MS)
#define TWO_MSL_NS      (60000 * MS)
#define FIN_TIMEOUT_NS  (60000 * MS) /* orphaned FIN_WAIT_2, Linux's tcp_fin_timeout */
#define SYN_RETRIES     6u           /* Linux: ~127 s to give up a connect */
#define DATA_RETRIES    15u          /* Linux's tcp_retries2 */
#define KEEP_IDLE_S     7200u
#define KEEP_INTVL_S    75u
#define KEEP_CNT        9u
#define SOMAXCONN       4096u
#define CWND_MAX        (1u << 30)

/* ---- helpers ------------------------------------------------------------------ */

static uint32_t min32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

static uint32_t rcv_room(const struct tcp_pcb *p)
{
    return p->rbuf ? p->rcap - p->rlen : p->rcvbuf;
}

static bool alloc_bufs(struct tcp_pcb *p)
{
    if (!p->rbuf) {
        p->rbuf = net_zalloc(p->rcvbuf);
        if (!p->rbuf)
            return false;
        p->rcap = p->rcvbuf;
    }
    if (!p->sbuf) {
        p->sbuf = net_zalloc(p->sndbuf);
        if (!p->sbuf)
            return false;
        p->scap = p->sndbuf;
    }
    return true;
}

static void free_bufs(struct tcp_pcb *p)
{
    if (p->rbuf)
        net_free(p->rbuf, p->rcap);
    if (p->sbuf)
        net_free(p->sbuf, p->scap);
    p->rbuf = p->sbuf = NULL;
    p->rlen = p->slen = 0;
}

static void unlink_pcb(struct tcp_pcb *p)
{
    for (struct tcp_pcb **pp = &p->ns->tcp; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

static void accq_remove(struct tcp_pcb *l, struct tcp_pcb *c)
{
    struct tcp_pcb *prev = NULL;
    for (struct tcp_pcb *q = l->accq_head; q; prev = q, q = q->accq_next) {
        if (q != c)
            continue;
        if (prev)
            prev->accq_next = q->accq_next;
        else
            l->accq_head = q->accq_next;
        if (l->accq_tail == q)
            l->accq_tail = prev;
        l->naccq--;
        return;
    }
}

static void pcb_free(struct tcp_pcb *p)
{
    if (p->parent) {
        accq_remove(p->parent, p);
        p->parent->nchild--;
    }
    unlink_pcb(p);
    free_bufs(p);
    net_free(p, sizeof(*p));
}

/* Now CLOSED: freed if nobody holds it, else kept for the socket to see. */
static void set_closed(struct tcp_pcb *p)
{
    p->state = TCPS_CLOSED;
    p->t_rexmt = p->t_delack = p->t_keep = p->t_persist = p->t_2msl = 0;
    if (p->orphan || (p->parent && !p->accepted))
        pcb_free(p);
    else
        free_bufs(p);
}

static void set_rto(struct tcp_pcb *p)
{
    uint64_t rto =
        p->srtt_us ? p->srtt_us + (p->rttvar_us * 4 > 1000 ? p->rttvar_us * 4 : 1000) : RTO_INIT_US;
    if (rto < RTO_MIN_US)
        rto = RTO_MIN_US;
    for (unsigned i = 0; i < p->backoff && rto < RTO_MAX_US; i++)
        rto *= 2;
    p->rto_us = rto > RTO_MAX_US ? RTO_MAX_US : rto;
}

/* RFC 6298 §2. */
static void rtt_sample(struct tcp_pcb *p, uint64_t r_us)
{
    if (!p->srtt_us) {
        p->srtt_us = r_us ? r_us : 1;
        p->rttvar_us = r_us / 2;
    } else {
        uint64_t d = p->srtt_us > r_us ? p->srtt_us - r_us : r_us - p->srtt_us;
        p->rttvar_us = (3 * p->rttvar_us + d) / 4;
        p->srtt_us = (7 * p->srtt_us + r_us) / 8;
        if (!p->srtt_us)
            p->srtt_us = 1;
    }
    set_rto(p);
}

/* ---- segments out --------------------------------------------------------------- */

/* Sends one segment: flags, sequence number seq, len bytes of the send ring
 * from seq on. */
static int xmit(struct tcp_pcb *p, uint32_t seq, uint32_t len, unsigned flags)
{
    struct net_stack *ns = p->ns;
    uint8_t hdr[NET_HDR_ROOM];
    uint8_t *th = hdr + NET_ETH_HLEN + NET_IP_HLEN;
    uint32_t hl = NET_TCP_HLEN;
    uint8_t *o = th + NET_TCP_HLEN;

    if (flags & TH_SYN) {
        uint16_t mss = (uint16_t)(ns->nif->mtu - NET_IP_HLEN - NET_TCP_HLEN);
        o[0] = 2;
        o[1] = 4;
        net_put16(o + 2, mss);
        o += 4;
        /* A SYN-ACK offers scaling and SACK only if the SYN did. */
        if (p->state == TCPS_SYN_SENT || p->ws_ok) {
            o[0] = 1;
            o[1] = 3;
            o[2] = 3;
            o[3] = TCP_RCV_SHIFT;
            o += 4;
        }
        if (p->state == TCPS_SYN_SENT || p->sack_ok) {
            o[0] = 1;
            o[1] = 1;
            o[2] = 4;
            o[3] = 2;
            o += 4;
        }
    } else if (p->sack_ok && p->nooo && (flags & TH_ACK)) {
        /* RFC 2018 §4: the most recent block first; up to 4 fit in 40
         * bytes. */
        unsigned n = p->nooo < 4 ? p->nooo : 4;
        o[0] = 1;
        o[1] = 1;
        o[2] = 5;
        o[3] = (uint8_t)(2 + 8 * n);
        o += 4;
        for (unsigned i = 0; i < n; i++) {
            net_put32(o, p->ooo[p->nooo - 1 - i].start);
            net_put32(o + 4, p->ooo[p->nooo - 1 - i].end);
            o += 8;
        }
    }
    hl = (uint32_t)(o - th);
    net_copy(th, &p->lport, 2);
    net_copy(th + 2, &p->rport, 2);
    net_put32(th + 4, seq);
    net_put32(th + 8, (flags & TH_ACK) ? p->rcv_nxt : 0);
    th[12] = (uint8_t)((hl / 4) << 4);
    th[13] = (uint8_t)flags;
    uint32_t room = rcv_room(p), wnd;
    if (flags & TH_SYN)
        wnd = min32(room, 65535); /* never scaled (RFC 7323 §2.2) */
    else
        wnd = min32(room >> p->rcv_shift, 65535);
    net_put16(th + 14, (uint16_t)wnd);
    th[16] = th[17] = th[18] = th[19] = 0;
    p->rcv_adv = p->rcv_nxt + (flags & TH_SYN ? wnd : wnd << p->rcv_shift);

    struct net_frame f = {.seg = {{hdr, NET_ETH_HLEN + NET_IP_HLEN + hl}}, .nseg = 1};
    if (len) {
        uint32_t off = seq - p->sbase;
        uint32_t at = (p->shead + off) % p->scap;
        uint32_t first = min32(len, p->scap - at);
        f.seg[1].p = p->sbuf + at;
        f.seg[1].len = first;
        f.nseg = 2;
        if (first < len) {
            f.seg[2].p = p->sbuf;
            f.seg[2].len = len - first;
            f.nseg = 3;
        }
    }
    int r =
        net_ip_output(ns, p->laddr, p->raddr, IPPROTO_TCP, &f, hl, 16, len > p->mss ? p->mss : 0);
    if (r == 0 && (flags & TH_ACK)) {
        p->ack_now = false;
        p->ack_soon = false;
        p->t_delack = 0;
        p->unacked_bytes = 0;
    }
    if (flags & TH_RST)
        ns->stats.tcp_rst_sent++;
    return r;
}

/* A reset answering a segment nobody wants (RFC 9293 §3.10.7.1). */
static void send_rst(struct net_stack *ns, uint32_t src, uint32_t dst, const uint8_t *th,
                     uint32_t seglen)
{
    struct tcp_pcb t = {0};
    t.ns = ns;
    t.laddr = dst;
    t.raddr = src;
    net_copy(&t.lport, th + 2, 2);
    net_copy(&t.rport, th, 2);
    t.state = TCPS_CLOSED;
    if (th[13] & TH_ACK) {
        xmit(&t, net_get32(th + 8), 0, TH_RST);
    } else {
        t.rcv_nxt = net_get32(th + 4) + seglen;
        xmit(&t, 0, 0, TH_RST | TH_ACK);
    }
}

static uint32_t gso_max(const struct tcp_pcb *p)
{
    if (!(p->ns->nif->offload & NET_OFF_TSO4) && !net_ip_is_local(p->ns, p->raddr))
        return p->mss;
    uint32_t room = NET_GSO_MAX - NET_IP_HLEN - 60;
    return room / p->mss * p->mss;
}

static bool tx_room(struct tcp_pcb *p)
{
    struct net_if *n = p->ns->nif;
    if (net_ip_is_local(p->ns, p->raddr) || !n->tx_room || n->tx_room(n) > 0)
        return true;
    p->ns->tx_blocked = true;
    return false;
}

static bool can_send_data(const struct tcp_pcb *p)
{
    return p->state == TCPS_ESTABLISHED || p->state == TCPS_CLOSE_WAIT ||
           p->state == TCPS_FIN_WAIT_1 || p->state == TCPS_CLOSING || p->state == TCPS_LAST_ACK;
}

void tcp_output(struct tcp_pcb *p)
{
    struct net_stack *ns = p->ns;
    uint64_t now = net_now_ns();
    bool sent = false, held = false;

    if (can_send_data(p) && p->sbuf) {
        for (;;) {
            uint32_t off = p->snd_nxt - p->sbase;
            if (off > p->slen || !tx_room(p))
                break; /* the FIN is out, or the device is full */
            uint32_t avail = p->slen - off;
            uint32_t wnd = min32(p->snd_wnd, p->cwnd);
            uint32_t inflight = p->snd_nxt - p->snd_una;
            uint32_t usable = wnd > inflight ? wnd - inflight : 0;
            uint32_t len = min32(min32(avail, usable), gso_max(p));
            bool fin = p->fin_queued && len == avail;
            if (len == 0 && !fin)
                break;
            if (len < p->mss && !fin) {
                if (len < avail) {
                    /* Window-limited: no silly segments (RFC 9293
                     * §3.8.6.2.1), until the override timeout (the
                     * persist timer) says so. */
                    if (len < p->snd_wnd_max / 2 && !p->force) {
                        held = true;
                        break;
                    }
                } else if (!p->nodelay && inflight > 0) {
                    break; /* Nagle (RFC 896) */
                }
            }
            unsigned flags = TH_ACK | (fin ? TH_FIN : 0) | (len && len == avail ? TH_PSH : 0);
            if (xmit(p, p->snd_nxt, len, flags) != 0)
                break;
            if (len && !p->rtt_timing && p->snd_nxt == p->snd_max) {
                p->rtt_timing = true;
                p->rtt_seq = p->snd_nxt + len;
                p->rtt_start = now;
            }
            p->snd_nxt += len + (fin ? 1 : 0);
            if (SEQ_GT(p->snd_nxt, p->snd_max))
                p->snd_max = p->snd_nxt;
            if (!p->t_rexmt) {
                p->t_rexmt = now + p->rto_us * 1000;
                net_timer_at(ns, p->t_rexmt);
            }
            sent = true;
            if (fin)
                break;
        }
        /* A zero window with data waiting and nothing in flight: probe
         * (RFC 9293 §3.8.6.1). */
        if ((p->snd_wnd == 0 || held) && p->slen > p->snd_nxt - p->sbase &&
            p->snd_nxt == p->snd_una && !p->t_rexmt && !p->t_persist) {
            p->t_persist = now + p->rto_us * 1000;
            net_timer_at(ns, p->t_persist);
        }
    }
    if (!sent && p->ack_now && p->state != TCPS_CLOSED && p->state != TCPS_LISTEN &&
        p->state != TCPS_SYN_SENT)
        xmit(p, p->snd_nxt, 0, TH_ACK);
}

void net_tcp_resume(struct net_stack *ns)
{
    if (!ns->tx_blocked)
        return;
    ns->tx_blocked = false;
    for (struct tcp_pcb *p = ns->tcp; p && !ns->tx_blocked; p = p->next)
        if (can_send_data(p) && p->sbuf && p->snd_nxt - p->sbase <= p->slen)
            tcp_output(p);
}

void net_rx_end(struct net_stack *ns)
{
    ns->rx_batch = false;
    if (!ns->acks_due)
        return;
    ns->acks_due = false;
    for (struct tcp_pcb *p = ns->tcp; p; p = p->next)
        if (p->ack_soon) {
            p->ack_soon = false;
            p->ack_now = true;
            tcp_output(p);
        }
}

/* One segment at snd_una again (fast retransmit, NewReno partial ACK). */
static void rexmt_one(struct tcp_pcb *p)
{
    uint32_t off = p->snd_una - p->sbase;
    uint32_t len = off <= p->slen ? min32(p->mss, p->slen - off) : 0;
    bool fin = p->fin_queued && off + len == p->slen && off <= p->slen;
    if (len || fin)
        xmit(p, p->snd_una, len, TH_ACK | (fin ? TH_FIN : 0));
    p->rtt_timing = false; /* Karn */
}

/* ---- open and close ----------------------------------------------------------- */

struct tcp_pcb *tcp_new(struct net_stack *ns)
{
    struct tcp_pcb *p = net_zalloc(sizeof(*p));

    if (!p)
        return NULL;
    p->ns = ns;
    p->state = TCPS_CLOSED;
    p->rcvbuf = TCP_BUF_DEFAULT;
    p->sndbuf = TCP_BUF_DEFAULT;
    p->rto_us = RTO_INIT_US;
    p->keep_idle_s = KEEP_IDLE_S;
    p->keep_intvl_s = KEEP_INTVL_S;
    p->keep_cnt = KEEP_CNT;
    p->mss = TCP_MSS_DEFAULT;
    p->next = ns->tcp;
    ns->tcp = p;
    return p;
}

bool net_port_in_use(struct net_stack *ns, int proto, uint32_t addr, uint16_t port, bool reuse)
{
    if (proto == (int)IPPROTO_TCP) {
        for (struct tcp_pcb *p = ns->tcp; p; p = p->next) {
            if (p->lport != port || (addr && p->laddr && p->laddr != addr))
                continue;
            /* SO_REUSEADDR: anything but a listener (Linux's rule). */
            if (reuse && p->state != TCPS_LISTEN && (p->reuse || p->state == TCPS_TIME_WAIT))
                continue;
            if (p->state == TCPS_CLOSED && !p->lport)
                continue;
            return true;
        }
        return false;
    }
    for (struct udp_pcb *u = ns->udp; u; u = u->next)
        if (u->lport == port && (!addr || !u->laddr || u->laddr == addr) && !(reuse && u->reuse))
            return true;
    return false;
}

static uint16_t ephemeral(struct net_stack *ns)
{
    for (unsigned i = 0; i < 60999 - 32768 + 1; i++) {
        uint16_t port = ns->next_port++;
        if (ns->next_port > 60999 || ns->next_port < 32768)
            ns->next_port = 32768;
        if (port >= 32768 && port <= 60999 &&
            !net_port_in_use(ns, IPPROTO_TCP, 0, net_htons(port), false))
            return net_htons(port);
    }
    return 0;
}

int tcp_bind(struct tcp_pcb *p, uint32_t addr, uint16_t port)
{
    if (p->lport || p->state != TCPS_CLOSED)
        return -EINVAL;
    if (addr && !net_ip_is_local(p->ns, addr))
        return -EADDRNOTAVAIL;
    if (!port) {
        if (!(port = ephemeral(p->ns)))
            return -EADDRINUSE;
    } else if (net_port_in_use(p->ns, IPPROTO_TCP, addr, port, p->reuse)) {
        return -EADDRINUSE;
    }
    p->laddr = addr;
    p->lport = port;
    return 0;
}

int tcp_listen(struct tcp_pcb *p, int backlog)
{
    if (p->state != TCPS_CLOSED && p->state != TCPS_LISTEN)
        return -EINVAL;
    if (!p->lport) {
        int r = tcp_bind(p, 0, 0);
        if (r)
            return r;
    }
    /* Linux: the backlog is capped by somaxconn; 0 still admits one. */
    unsigned b = backlog < 0 || (unsigned)backlog > SOMAXCONN ? SOMAXCONN : (unsigned)backlog;
    p->backlog = b ? b : 1;
    p->state = TCPS_LISTEN;
    return 0;
}

struct tcp_pcb *tcp_accept(struct tcp_pcb *l)
{
    struct tcp_pcb *c = l->accq_head;

    if (!c)
        return NULL;
    accq_remove(l, c);
    l->nchild--;
    c->parent = NULL;
    c->accepted = true;
    return c;
}

static void init_send(struct tcp_pcb *p)
{
    p->iss = net_random32();
    p->snd_una = p->iss;
    p->snd_nxt = p->iss + 1;
    p->snd_max = p->snd_nxt;
    p->sbase = p->iss + 1;
    p->ssthresh = CWND_MAX;
}

int tcp_connect(struct tcp_pcb *p, uint32_t addr, uint16_t port)
{
    struct net_stack *ns = p->ns;

    if (p->state == TCPS_SYN_SENT)
        return -EALREADY;
    if (p->state != TCPS_CLOSED)
        return p->state == TCPS_LISTEN ? -EINVAL : -EISCONN;
    if (!addr || !port || addr == 0xffffffffu)
        return addr ? -ECONNREFUSED : -ENETUNREACH;
    bool local = net_ip_is_local(ns, addr);
    if (!local && !net_ip_route(ns, addr))
        return -ENETUNREACH;
    if (!p->laddr)
        p->laddr = local ? addr : ns->nif->addr;
    if (!p->laddr)
        return -ENETUNREACH;
    if (!p->lport && !(p->lport = ephemeral(ns)))
        return -EADDRNOTAVAIL;
    if (!alloc_bufs(p))
        return -ENOMEM;
    p->raddr = addr;
    p->rport = port;
    p->err = 0;
    init_send(p);
    p->rcv_shift = TCP_RCV_SHIFT; /* until the SYN-ACK says otherwise */
    p->state = TCPS_SYN_SENT;
    p->retries = 0;
    p->backoff = 0;
    set_rto(p);
    xmit(p, p->iss, 0, TH_SYN);
    p->t_rexmt = net_now_ns() + p->rto_us * 1000;
    net_timer_at(ns, p->t_rexmt);
    return 0;
}

static void enter_time_wait(struct tcp_pcb *p)
{
    p->state = TCPS_TIME_WAIT;
    p->t_rexmt = p->t_persist = p->t_keep = p->t_delack = 0;
    p->t_2msl = net_now_ns() + TWO_MSL_NS;
    net_timer_at(p->ns, p->t_2msl);
    if (p->orphan)
        free_bufs(p);
}

int tcp_shutdown(struct tcp_pcb *p, bool rd, bool wr)
{
    if (p->state == TCPS_LISTEN || p->state == TCPS_CLOSED || p->state == TCPS_SYN_SENT) {
        if (p->state == TCPS_SYN_SENT && wr)
            set_closed(p);
        return p->state == TCPS_LISTEN && rd && !wr ? 0 : (p->state == TCPS_CLOSED ? -ENOTCONN : 0);
    }
    if (rd) {
        p->rd_shut = true;
        if (p->rbuf) {
            p->rhead = (p->rhead + p->rlen) % p->rcap;
            p->rlen = 0;
        }
    }
    if (wr && !p->fin_queued) {
        p->fin_queued = true;
        if (p->state == TCPS_ESTABLISHED || p->state == TCPS_SYN_RCVD)
            p->state = TCPS_FIN_WAIT_1;
        else if (p->state == TCPS_CLOSE_WAIT)
            p->state = TCPS_LAST_ACK;
        tcp_output(p);
    }
    return 0;
}

void tcp_close(struct tcp_pcb *p, bool abort)
{
    if (p->state == TCPS_LISTEN) {
        /* Children nobody accepted are reset and freed. */
        for (struct tcp_pcb *c = p->ns->tcp, *n; c; c = n) {
            n = c->next;
            if (c->parent == p) {
                if (c->state != TCPS_SYN_RCVD)
                    xmit(c, c->snd_nxt, 0, TH_RST | TH_ACK);
                pcb_free(c);
            }
        }
        pcb_free(p);
        return;
    }
    p->orphan = true;
    if (p->state == TCPS_CLOSED || p->state == TCPS_SYN_SENT) {
        pcb_free(p);
        return;
    }
    if (p->state == TCPS_TIME_WAIT) {
        free_bufs(p);
        return;
    }
    /* Unread data is lost: tell the peer with a reset (RFC 2525 §2.17). */
    if (abort || (p->rbuf && p->rlen)) {
        xmit(p, p->snd_nxt, 0, TH_RST | TH_ACK);
        pcb_free(p);
        return;
    }
    tcp_shutdown(p, false, true);
    if (p->state == TCPS_FIN_WAIT_2 && !p->t_2msl) {
        p->t_2msl = net_now_ns() + FIN_TIMEOUT_NS;
        net_timer_at(p->ns, p->t_2msl);
    }
}

static void abort_err(struct tcp_pcb *p, int err)
{
    p->err = err;
    set_closed(p);
}

/* ---- application data ------------------------------------------------------------ */

long tcp_send(struct tcp_pcb *p, const struct iovec *iov, int iovcnt, bool more)
{
    (void)more;
    if (p->err && p->state == TCPS_CLOSED) {
        int e = p->err;
        p->err = 0;
        return -e;
    }
    if (p->state == TCPS_SYN_SENT || p->state == TCPS_SYN_RCVD)
        return -EAGAIN;
    if (p->fin_queued || (p->state == TCPS_CLOSED && p->rport))
        return -EPIPE;
    if (!can_send_data(p))
        return -ENOTCONN;
    uint32_t room = p->scap - p->slen;
    if (!room)
        return -EAGAIN;
    uint32_t done = 0;
    for (int i = 0; i < iovcnt && done < room; i++) {
        const uint8_t *b = iov[i].iov_base;
        uint32_t n = (uint32_t)(iov[i].iov_len < room - done ? iov[i].iov_len : room - done);
        while (n) {
            uint32_t at = (p->shead + p->slen) % p->scap;
            uint32_t k = min32(n, p->scap - at);
            net_copy(p->sbuf + at, b, k);
            p->slen += k;
            b += k;
            n -= k;
            done += k;
        }
    }
    if (done == 0 && iovcnt > 0) {
        bool any = false;
        for (int i = 0; i < iovcnt; i++)
            any |= iov[i].iov_len != 0;
        if (any)
            return -EAGAIN;
    }
    tcp_output(p);
    return done;
}

/* Sends a window update if the application freed enough of the ring that
 * the peer would otherwise stall (RFC 9293 §3.8.6.2.2). */
/* After the application read: a window update when the window grew by half
 * the buffer, or by two segments while the peer may send less than half
 * the buffer (RFC 9293 §3.8.6.2.2's receiver-side silly window avoidance,
 * and no update the peer does not need: while it has more than half the
 * buffer to fill, the ACKs of its data carry the window). */
static void window_update(struct tcp_pcb *p)
{
    if (p->state == TCPS_CLOSED || p->state == TCPS_LISTEN || p->state == TCPS_SYN_SENT)
        return;
    uint32_t edge = p->rcv_nxt + ((rcv_room(p) >> p->rcv_shift) << p->rcv_shift);
    uint32_t grow = edge - p->rcv_adv;
    uint32_t left = SEQ_GT(p->rcv_adv, p->rcv_nxt) ? p->rcv_adv - p->rcv_nxt : 0;
    if (SEQ_GT(edge, p->rcv_adv) &&
        (grow >= p->rcap / 2 || (grow >= 2u * p->mss && left < p->rcap / 2))) {
        p->ack_now = true;
        tcp_output(p);
    }
}

long tcp_recv(struct tcp_pcb *p, const struct iovec *iov, int iovcnt, bool peek)
{
    if (p->rd_shut)
        return 0;
    uint32_t n = 0;
    if (p->rbuf && p->rlen) {
        uint32_t at = p->rhead;
        for (int i = 0; i < iovcnt && n < p->rlen; i++) {
            uint8_t *b = iov[i].iov_base;
            uint32_t want = (uint32_t)(iov[i].iov_len < p->rlen - n ? iov[i].iov_len : p->rlen - n);
            while (want) {
                uint32_t k = min32(want, p->rcap - at);
                net_copy(b, p->rbuf + at, k);
                at = (at + k) % p->rcap;
                b += k;
                want -= k;
                n += k;
            }
        }
        if (!peek && n) {
            p->rhead = at;
            p->rlen -= n;
            window_update(p);
        }
        return n;
    }
    if (p->fin_rcvd)
        return 0;
    if (p->err) {
        int e = p->err;
        p->err = 0;
        return -e;
    }
    if (p->state == TCPS_CLOSED)
        return p->rport ? 0 : -ENOTCONN;
    if (p->state == TCPS_LISTEN)
        return -ENOTCONN;
    bool empty = true;
    for (int i = 0; i < iovcnt; i++)
        empty &= iov[i].iov_len == 0;
    return empty ? 0 : -EAGAIN;
}

unsigned tcp_poll(const struct tcp_pcb *p)
{
    unsigned ev = 0;

    if (p->state == TCPS_LISTEN)
        return p->accq_head ? POLLIN : 0;
    if (p->err)
        ev |= POLLERR;
    if (p->state == TCPS_CLOSED) {
        ev |= POLLHUP | POLLOUT | POLLIN;
        return ev;
    }
    if (p->state == TCPS_SYN_SENT || p->state == TCPS_SYN_RCVD)
        return ev;
    if ((p->rbuf && p->rlen) || p->fin_rcvd || p->rd_shut)
        ev |= POLLIN;
    if (p->fin_rcvd)
        ev |= POLLRDHUP;
    if (p->fin_rcvd && p->fin_queued)
        ev |= POLLHUP;
    if (can_send_data(p) && !p->fin_queued && p->sbuf && p->scap - p->slen >= p->scap / 4)
        ev |= POLLOUT;
    if (p->fin_queued)
        ev |= POLLOUT; /* a write would not block: it fails with EPIPE */
    return ev;
}

void tcp_set_keepalive(struct tcp_pcb *p, bool on)
{
    p->keepalive = on;
    p->t_keep = 0;
    if (on && (p->state == TCPS_ESTABLISHED || p->state == TCPS_CLOSE_WAIT)) {
        uint64_t now = net_now_ns();
        if (!p->last_rx)
            p->last_rx = now;
        p->keep_probes = 0;
        p->t_keep = p->last_rx + (uint64_t)p->keep_idle_s * 1000 * MS;
        net_timer_at(p->ns, p->t_keep);
    }
}

int tcp_set_bufsize(struct tcp_pcb *p, bool rcv, uint32_t bytes)
{
    if (bytes < TCP_BUF_MIN)
        bytes = TCP_BUF_MIN;
    if (bytes > TCP_BUF_MAX)
        bytes = TCP_BUF_MAX;
    bytes = (bytes + 4095u) & ~4095u;
    /* Rings exist once the connection does; their size is fixed then. */
    if (rcv && !p->rbuf)
        p->rcvbuf = bytes;
    else if (!rcv && !p->sbuf)
        p->sndbuf = bytes;
    return 0;
}

uint32_t tcp_inq(const struct tcp_pcb *p)
{
    return p->rbuf ? p->rlen : 0;
}

uint32_t tcp_outq(const struct tcp_pcb *p)
{
    return p->slen;
}

/* ---- segments in ------------------------------------------------------------------- */

struct seg {
    uint32_t seq, ack, len;
    unsigned flags;
    uint16_t wnd;
    uint8_t *data;
    /* options */
    uint16_t mss;
    int ws; /* -1: absent */
    bool sack_perm;
};

static bool parse_options(const uint8_t *o, uint32_t n, struct seg *s)
{
    s->mss = 0;
    s->ws = -1;
    s->sack_perm = false;
    for (uint32_t i = 0; i < n;) {
        uint8_t kind = o[i];
        if (kind == 0)
            break;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= n || o[i + 1] < 2 || i + o[i + 1] > n)
            return false;
        uint8_t l = o[i + 1];
        if (kind == 2 && l == 4)
            s->mss = net_get16(o + i + 2);
        else if (kind == 3 && l == 3)
            s->ws = o[i + 2] > 14 ? 14 : o[i + 2]; /* RFC 7323 §2.3 */
        else if (kind == 4 && l == 2)
            s->sack_perm = true;
        i += l;
    }
    return true;
}

static struct tcp_pcb *demux(struct net_stack *ns, uint32_t src, uint16_t sport, uint32_t dst,
                             uint16_t dport, struct tcp_pcb **listener)
{
    *listener = NULL;
    for (struct tcp_pcb *p = ns->tcp; p; p = p->next) {
        if (p->lport != dport)
            continue;
        if (p->state == TCPS_LISTEN) {
            if (!p->laddr || p->laddr == dst)
                if (!*listener || p->laddr)
                    *listener = p;
            continue;
        }
        if (p->state != TCPS_CLOSED && p->rport == sport && p->raddr == src && p->laddr == dst)
            return p;
    }
    return NULL;
}

/* Options of a SYN that apply to the connection (RFC 9293 §3.7.1, RFC 7323
 * §1.3: scaling only if both sides offer it). */
static void syn_options(struct tcp_pcb *p, const struct seg *s)
{
    uint32_t own = p->ns->nif->mtu - NET_IP_HLEN - NET_TCP_HLEN;
    p->peer_mss = s->mss ? s->mss : TCP_MSS_DEFAULT;
    p->mss = (uint16_t)min32(own, p->peer_mss);
    if (p->mss < 64)
        p->mss = 64; /* nobody sensible asks for less; keeps the arithmetic sane */
    p->ws_ok = s->ws >= 0;
    p->snd_shift = p->ws_ok ? (uint8_t)s->ws : 0;
    p->rcv_shift = p->ws_ok ? TCP_RCV_SHIFT : 0;
    p->sack_ok = s->sack_perm;
    p->cwnd = 10u * p->mss; /* RFC 6928 */
}

static void keep_arm(struct tcp_pcb *p, uint64_t now)
{
    p->last_rx = now;
    p->keep_probes = 0;
    if (p->keepalive && !p->t_keep) {
        p->t_keep = now + (uint64_t)p->keep_idle_s * 1000 * MS;
        net_timer_at(p->ns, p->t_keep);
    }
}

static void listen_input(struct tcp_pcb *l, uint32_t src, uint32_t dst, const uint8_t *th,
                         struct seg *s)
{
    struct net_stack *ns = l->ns;

    if (s->flags & TH_RST)
        return;
    if (s->flags & TH_ACK) {
        send_rst(ns, src, dst, th, s->len);
        return;
    }
    if (!(s->flags & TH_SYN))
        return;
    if (l->nchild >= l->backlog) {
        ns->stats.rx_drop_other++; /* the peer retries its SYN */
        return;
    }
    struct tcp_pcb *c = tcp_new(ns);
    if (!c)
        return;
    c->laddr = dst;
    c->raddr = src;
    c->lport = l->lport;
    net_copy(&c->rport, th, 2);
    c->rcvbuf = l->rcvbuf;
    c->sndbuf = l->sndbuf;
    c->nodelay = l->nodelay;
    c->keepalive = l->keepalive;
    c->keep_idle_s = l->keep_idle_s;
    c->keep_intvl_s = l->keep_intvl_s;
    c->keep_cnt = l->keep_cnt;
    c->parent = l;
    l->nchild++;
    if (!alloc_bufs(c)) {
        pcb_free(c);
        return;
    }
    c->irs = s->seq;
    c->rcv_nxt = s->seq + 1;
    syn_options(c, s);
    init_send(c);
    c->snd_wnd = s->wnd; /* a SYN's window is never scaled */
    c->snd_wnd_max = c->snd_wnd;
    c->snd_wl1 = s->seq;
    c->snd_wl2 = c->iss;
    c->state = TCPS_SYN_RCVD;
    set_rto(c);
    xmit(c, c->iss, 0, TH_SYN | TH_ACK);
    c->t_rexmt = net_now_ns() + c->rto_us * 1000;
    net_timer_at(ns, c->t_rexmt);
}

static void syn_sent_input(struct tcp_pcb *p, uint32_t src, uint32_t dst, const uint8_t *th,
                           struct seg *s)
{
    bool ack_ok = false;

    if (s->flags & TH_ACK) {
        if (SEQ_LEQ(s->ack, p->iss) || SEQ_GT(s->ack, p->snd_max)) {
            if (!(s->flags & TH_RST))
                send_rst(p->ns, src, dst, th, s->len);
            return;
        }
        ack_ok = true;
    }
    if (s->flags & TH_RST) {
        if (ack_ok)
            abort_err(p, ECONNREFUSED);
        return;
    }
    if (!(s->flags & TH_SYN))
        return;
    p->irs = s->seq;
    p->rcv_nxt = s->seq + 1;
    syn_options(p, s);
    p->snd_wnd = s->wnd;
    p->snd_wnd_max = p->snd_wnd;
    p->snd_wl1 = s->seq;
    p->snd_wl2 = s->ack;
    if (ack_ok) {
        if (p->retries == 0)
            rtt_sample(p, (net_now_ns() - (p->t_rexmt - p->rto_us * 1000)) / 1000);
        p->snd_una = s->ack;
        p->retries = 0;
        p->backoff = 0;
        set_rto(p);
        p->t_rexmt = 0;
        p->state = TCPS_ESTABLISHED;
        keep_arm(p, net_now_ns());
        p->ack_now = true;
        tcp_output(p);
    } else {
        /* Simultaneous open (RFC 9293 §3.5). */
        p->state = TCPS_SYN_RCVD;
        xmit(p, p->iss, 0, TH_SYN | TH_ACK);
    }
}

/* Data (and FIN) in window, already trimmed to it: into the ring. */
static void take_data(struct tcp_pcb *p, struct seg *s, bool fin)
{
    uint32_t room = rcv_room(p);
    uint32_t off = s->seq - p->rcv_nxt;
    uint32_t len = s->len;

    if (off > room)
        return;
    if (len > room - off) {
        len = room - off;
        fin = false;
    }
    if (len && p->rbuf) {
        uint32_t at = (p->rhead + p->rlen + off) % p->rcap;
        uint32_t k = min32(len, p->rcap - at);
        net_copy(p->rbuf + at, s->data, k);
        if (k < len)
            net_copy(p->rbuf, s->data + k, len - k);
    } else if (len) {
        return;
    }
    if (off == 0) {
        bool had_ooo = p->nooo != 0;
        p->rcv_nxt += len;
        p->rlen += len;
        p->unacked_bytes += len;
        /* Ranges that now touch the in-order data join it. */
        for (bool again = true; again;) {
            again = false;
            for (unsigned i = 0; i < p->nooo; i++) {
                if (SEQ_LEQ(p->ooo[i].start, p->rcv_nxt)) {
                    if (SEQ_GT(p->ooo[i].end, p->rcv_nxt)) {
                        p->rlen += p->ooo[i].end - p->rcv_nxt;
                        p->rcv_nxt = p->ooo[i].end;
                    }
                    p->ooo[i] = p->ooo[--p->nooo];
                    again = true;
                    break;
                }
            }
        }
        if (had_ooo)
            p->ack_now = true;
        if (p->fin_pending && p->rcv_nxt == p->fin_seq) {
            fin = true;
            p->fin_pending = false;
        }
    } else {
        p->ns->stats.tcp_ooo++;
        p->ack_now = true; /* a duplicate ACK: the sender's fast retransmit */
        if (fin) {
            p->fin_pending = true;
            p->fin_seq = s->seq + len;
            fin = false;
        }
        if (len) {
            uint32_t st = s->seq, en = s->seq + len;
            /* Merge with overlapping or adjacent ranges; the merged range
             * goes last (the most recent, for SACK). */
            for (unsigned i = 0; i < p->nooo;) {
                if (SEQ_LEQ(p->ooo[i].start, en) && SEQ_GEQ(p->ooo[i].end, st)) {
                    if (SEQ_LT(p->ooo[i].start, st))
                        st = p->ooo[i].start;
                    if (SEQ_GT(p->ooo[i].end, en))
                        en = p->ooo[i].end;
                    p->ooo[i] = p->ooo[--p->nooo];
                } else {
                    i++;
                }
            }
            if (p->nooo < NET_OOO_MAX) {
                p->ooo[p->nooo].start = st;
                p->ooo[p->nooo].end = en;
                p->nooo++;
            } /* else forgotten: the peer sends it again */
        }
    }
    if (fin) {
        p->rcv_nxt++;
        p->fin_rcvd = true;
        p->ack_now = true;
    }
}

/* The ACK field of a segment in a synchronized state (RFC 9293 §3.10.7.4,
 * fifth check). false: the segment is to be dropped. */
static bool ack_input(struct tcp_pcb *p, struct seg *s)
{
    uint64_t now = net_now_ns();

    if (SEQ_GT(s->ack, p->snd_max)) {
        p->ack_now = true; /* acknowledges something not yet sent */
        return false;
    }
    bool win_changed = false;
    if (SEQ_LT(p->snd_wl1, s->seq) || (p->snd_wl1 == s->seq && SEQ_LEQ(p->snd_wl2, s->ack))) {
        uint32_t w = (uint32_t)s->wnd << p->snd_shift;
        win_changed = w != p->snd_wnd;
        p->snd_wnd = w;
        if (w > p->snd_wnd_max)
            p->snd_wnd_max = w;
        p->snd_wl1 = s->seq;
        p->snd_wl2 = s->ack;
        if (w)
            p->t_persist = 0;
    }
    if (SEQ_LT(s->ack, p->snd_una))
        return true; /* old: ignored */
    if (s->ack == p->snd_una) {
        bool dup = s->len == 0 && !(s->flags & (TH_SYN | TH_FIN)) && !win_changed &&
                   p->snd_max != p->snd_una;
        if (!dup)
            return true;
        p->dupacks++;
        if (p->in_recovery) {
            p->cwnd = min32(p->cwnd + p->mss, CWND_MAX); /* RFC 6582 §3.2 step 4 */
        } else if (p->dupacks == 3 && SEQ_GEQ(s->ack, p->recover)) {
            uint32_t flight = p->snd_max - p->snd_una;
            p->ssthresh = flight / 2 > 2u * p->mss ? flight / 2 : 2u * p->mss;
            p->recover = p->snd_max;
            p->cwnd = p->ssthresh + 3u * p->mss;
            p->in_recovery = true;
            p->ns->stats.tcp_fast_rexmt++;
            rexmt_one(p);
            p->t_rexmt = now + p->rto_us * 1000;
            net_timer_at(p->ns, p->t_rexmt);
        }
        return true;
    }

    /* New data acknowledged. */
    uint32_t acked = s->ack - p->snd_una;
    if (p->rtt_timing && SEQ_GEQ(s->ack, p->rtt_seq)) {
        p->rtt_timing = false;
        rtt_sample(p, (now - p->rtt_start) / 1000);
    }
    uint32_t dacked = s->ack - p->sbase;
    if (dacked > p->slen)
        dacked = p->slen; /* the FIN's sequence number */
    if (p->scap)
        p->shead = (p->shead + dacked) % p->scap;
    p->slen -= dacked;
    p->sbase += dacked;
    p->snd_una = s->ack;
    if (SEQ_LT(p->snd_nxt, p->snd_una))
        p->snd_nxt = p->snd_una;
    p->retries = 0;
    if (p->backoff) {
        p->backoff = 0;
        set_rto(p);
    }
    if (p->in_recovery) {
        if (SEQ_GEQ(s->ack, p->recover)) {
            /* Full acknowledgment (RFC 6582 §3.2 step 3). */
            uint32_t flight = p->snd_max - p->snd_una;
            p->cwnd = min32(p->ssthresh, flight + p->mss);
            p->in_recovery = false;
            p->dupacks = 0;
        } else {
            /* Partial: the next hole goes now, the window deflates. */
            rexmt_one(p);
            p->cwnd = p->cwnd > acked ? p->cwnd - acked + p->mss : p->mss;
        }
    } else {
        p->dupacks = 0;
        if (p->cwnd < p->ssthresh) {
            p->cwnd = min32(p->cwnd + acked, CWND_MAX); /* slow start */
        } else {
            p->bytes_acked += acked; /* congestion avoidance, RFC 5681 §3.1 */
            if (p->bytes_acked >= p->cwnd) {
                p->bytes_acked -= p->cwnd;
                p->cwnd = min32(p->cwnd + p->mss, CWND_MAX);
            }
        }
    }
    if (p->snd_una == p->snd_max) {
        p->t_rexmt = 0;
    } else {
        p->t_rexmt = now + p->rto_us * 1000;
        net_timer_at(p->ns, p->t_rexmt);
    }
    return true;
}

static bool fin_acked(const struct tcp_pcb *p)
{
    return p->fin_queued && p->slen == 0 && p->snd_una == p->sbase + 1;
}

void net_tcp_input(struct net_stack *ns, uint32_t src, uint32_t dst, uint8_t *th, uint32_t len,
                   bool csum_ok)
{
    if (len < NET_TCP_HLEN) {
        ns->stats.rx_drop_bad++;
        return;
    }
    uint32_t hl = (uint32_t)(th[12] >> 4) * 4u;
    if (hl < NET_TCP_HLEN || hl > len) {
        ns->stats.rx_drop_bad++;
        return;
    }
    if (!csum_ok &&
        net_csum_fold(net_csum_add(net_csum_pseudo(src, dst, IPPROTO_TCP, len), th, len))) {
        ns->stats.rx_drop_bad++;
        return;
    }
    struct seg s;
    if (!parse_options(th + NET_TCP_HLEN, hl - NET_TCP_HLEN, &s)) {
        ns->stats.rx_drop_bad++;
        return;
    }
    s.seq = net_get32(th + 4);
    s.ack = net_get32(th + 8);
    s.flags = th[13] & 0x3f;
    s.wnd = net_get16(th + 14);
    s.data = th + hl;
    s.len = len - hl;
    uint16_t sport, dport;
    net_copy(&sport, th, 2);
    net_copy(&dport, th + 2, 2);
    uint32_t seglen = s.len + ((s.flags & TH_SYN) ? 1 : 0) + ((s.flags & TH_FIN) ? 1 : 0);

    /* Broadcast/multicast sources were refused by IP; ports 0 are nobody. */
    if (!sport || !dport) {
        ns->stats.rx_drop_bad++;
        return;
    }
    struct tcp_pcb *l, *p = demux(ns, src, sport, dst, dport, &l);
    if (!p) {
        if (l) {
            listen_input(l, src, dst, th, &s);
        } else if (!(s.flags & TH_RST)) {
            ns->stats.rx_drop_other++;
            send_rst(ns, src, dst, th, seglen);
        }
        return;
    }
    uint64_t now = net_now_ns();
    if (p->state == TCPS_SYN_SENT) {
        syn_sent_input(p, src, dst, th, &s);
        return;
    }

    /* First check: the sequence number (RFC 9293 §3.10.7.4). */
    uint32_t wnd = rcv_room(p);
    uint32_t seq0 = s.seq;
    bool ok;
    if (seglen == 0)
        ok = wnd == 0 ? s.seq == p->rcv_nxt
                      : SEQ_GEQ(s.seq, p->rcv_nxt) && SEQ_LT(s.seq, p->rcv_nxt + wnd);
    else
        ok = wnd != 0 && ((SEQ_GEQ(s.seq, p->rcv_nxt) && SEQ_LT(s.seq, p->rcv_nxt + wnd)) ||
                          (SEQ_GEQ(s.seq + seglen - 1, p->rcv_nxt) &&
                           SEQ_LT(s.seq + seglen - 1, p->rcv_nxt + wnd)));
    /* A retransmitted FIN (or keep-alive) just below the window still gets
     * its ACK, below. */
    if (!ok) {
        if (!(s.flags & TH_RST)) {
            p->ack_now = true;
            tcp_output(p);
        }
        return;
    }
    bool fin = (s.flags & TH_FIN) != 0;
    if (SEQ_LT(s.seq, p->rcv_nxt)) {
        uint32_t d = p->rcv_nxt - s.seq;
        if (s.flags & TH_SYN) {
            s.flags &= ~TH_SYN;
            d--;
            s.seq++;
        }
        if (d > s.len)
            d = s.len;
        s.data += d;
        s.len -= d;
        s.seq += d;
    }
    if (SEQ_GT(s.seq + s.len, p->rcv_nxt + wnd)) {
        s.len = p->rcv_nxt + wnd - s.seq;
        fin = false;
    }

    /* Second: RST (RFC 5961 §3.2). */
    if (s.flags & TH_RST) {
        if (seq0 != p->rcv_nxt) {
            p->ack_now = true; /* challenge ACK */
            tcp_output(p);
            return;
        }
        if (p->state == TCPS_SYN_RCVD || p->state == TCPS_CLOSING || p->state == TCPS_LAST_ACK ||
            p->state == TCPS_TIME_WAIT)
            set_closed(p);
        else
            abort_err(p, ECONNRESET);
        return;
    }
    /* Fourth: SYN in a synchronized state (RFC 5961 §4.2). */
    if (s.flags & TH_SYN) {
        p->ack_now = true;
        tcp_output(p);
        return;
    }
    if (!(s.flags & TH_ACK))
        return;
    keep_arm(p, now);

    if (p->state == TCPS_SYN_RCVD) {
        if (!SEQ_GT(s.ack, p->snd_una) || SEQ_GT(s.ack, p->snd_max)) {
            send_rst(ns, src, dst, th, seglen);
            return;
        }
        if (p->retries == 0)
            rtt_sample(p, (now - (p->t_rexmt - p->rto_us * 1000)) / 1000);
        p->retries = 0;
        p->backoff = 0;
        set_rto(p);
        p->snd_una = s.ack;
        p->t_rexmt = 0;
        p->snd_wnd = (uint32_t)s.wnd << p->snd_shift;
        p->snd_wnd_max = p->snd_wnd;
        p->snd_wl1 = s.seq;
        p->snd_wl2 = s.ack;
        p->state = TCPS_ESTABLISHED;
        struct tcp_pcb *l2 = p->parent;
        if (l2) {
            p->accq_next = NULL;
            if (l2->accq_tail)
                l2->accq_tail->accq_next = p;
            else
                l2->accq_head = p;
            l2->accq_tail = p;
            l2->naccq++;
        }
    }
    if (!ack_input(p, &s)) {
        tcp_output(p);
        return;
    }
    switch (p->state) {
    case TCPS_FIN_WAIT_1:
        if (fin_acked(p)) {
            p->state = TCPS_FIN_WAIT_2;
            if (p->orphan) {
                p->t_2msl = now + FIN_TIMEOUT_NS;
                net_timer_at(ns, p->t_2msl);
            }
        }
        break;
    case TCPS_CLOSING:
        if (fin_acked(p))
            enter_time_wait(p);
        break;
    case TCPS_LAST_ACK:
        if (fin_acked(p)) {
            set_closed(p);
            return;
        }
        break;
    case TCPS_TIME_WAIT:
        if (fin) {
            p->ack_now = true;
            p->t_2msl = now + TWO_MSL_NS;
        }
        tcp_output(p);
        return;
    default:
        break;
    }

    /* Data and FIN. */
    if (p->state == TCPS_ESTABLISHED || p->state == TCPS_FIN_WAIT_1 ||
        p->state == TCPS_FIN_WAIT_2) {
        if (s.len && (p->orphan || p->rd_shut) && !p->fin_rcvd) {
            /* Nobody will read it: Linux resets. */
            xmit(p, p->snd_nxt, 0, TH_RST | TH_ACK);
            if (p->orphan) {
                set_closed(p);
                return;
            }
            abort_err(p, ECONNRESET);
            return;
        }
        if (s.len || fin)
            take_data(p, &s, fin);
        if (p->fin_rcvd) {
            if (p->state == TCPS_ESTABLISHED) {
                p->state = TCPS_CLOSE_WAIT;
            } else if (p->state == TCPS_FIN_WAIT_1) {
                if (fin_acked(p))
                    enter_time_wait(p);
                else
                    p->state = TCPS_CLOSING;
            } else if (p->state == TCPS_FIN_WAIT_2) {
                enter_time_wait(p);
            }
        }
        if (s.len && !p->ack_now) {
            /* Delayed ACK (RFC 9293 §3.8.6.3): every second full-sized
             * segment's worth at once, else within DELACK_NS. "At once"
             * is the end of the driver's receive pass (net_rx_end): the
             * frames of one pass arrived together (a 64 KiB segment each
             * with GUEST_TSO4), and one ACK for all of them tells the
             * sender the same as one per frame, for a fraction of the
             * frames, the host's work on them and ours. Out-of-order data,
             * a filled hole and a FIN are still acknowledged at once
             * (ack_now above): duplicate ACKs drive fast retransmit. */
            if (p->unacked_bytes >= 2u * p->mss) {
                if (ns->rx_batch) {
                    p->ack_soon = true;
                    ns->acks_due = true;
                } else {
                    p->ack_now = true;
                }
            } else if (!p->t_delack) {
                p->t_delack = now + DELACK_NS;
                net_timer_at(ns, p->t_delack);
            }
        }
    }
    tcp_output(p);
}

void net_tcp_icmp_error(struct net_stack *ns, uint32_t dst, uint16_t dport, uint16_t sport, int err)
{
    for (struct tcp_pcb *p = ns->tcp; p; p = p->next)
        if (p->lport == sport && p->raddr == dst && p->rport == dport) {
            /* Hard for a connect in progress, soft otherwise (RFC 1122
             * §4.2.3.9). */
            if (p->state == TCPS_SYN_SENT)
                abort_err(p, err);
            return;
        }
}

/* ---- timers ----------------------------------------------------------------------- */

static void rexmt_timeout(struct tcp_pcb *p, uint64_t now)
{
    struct net_stack *ns = p->ns;

    p->t_rexmt = 0;
    p->retries++;
    if (p->state == TCPS_SYN_SENT || p->state == TCPS_SYN_RCVD) {
        if (p->retries > SYN_RETRIES) {
            abort_err(p, ETIMEDOUT);
            return;
        }
        p->backoff++;
        set_rto(p);
        ns->stats.tcp_rexmt++;
        xmit(p, p->iss, 0, p->state == TCPS_SYN_SENT ? TH_SYN : TH_SYN | TH_ACK);
        p->t_rexmt = now + p->rto_us * 1000;
        net_timer_at(ns, p->t_rexmt);
        return;
    }
    if (p->retries > DATA_RETRIES) {
        xmit(p, p->snd_nxt, 0, TH_RST | TH_ACK);
        abort_err(p, ETIMEDOUT);
        return;
    }
    ns->stats.tcp_rexmt++;
    if (p->backoff == 0) {
        uint32_t flight = p->snd_max - p->snd_una;
        p->ssthresh = flight / 2 > 2u * p->mss ? flight / 2 : 2u * p->mss;
    }
    p->cwnd = p->mss; /* RFC 5681 §3.1: loss window */
    p->in_recovery = false;
    p->dupacks = 0;
    p->recover = p->snd_max;
    p->snd_nxt = p->snd_una; /* go back */
    p->rtt_timing = false;
    p->backoff++;
    set_rto(p);
    p->t_rexmt = now + p->rto_us * 1000;
    net_timer_at(ns, p->t_rexmt);
    uint32_t wnd = p->snd_wnd;
    if (p->snd_wnd == 0)
        p->snd_wnd = 1; /* what is in flight may still be acknowledged */
    tcp_output(p);
    p->snd_wnd = wnd;
}

static void pcb_timers(struct tcp_pcb *p, uint64_t now)
{
    struct net_stack *ns = p->ns;

    if (p->t_2msl && p->t_2msl <= now) {
        p->t_2msl = 0;
        if (p->state == TCPS_TIME_WAIT || p->state == TCPS_FIN_WAIT_2) {
            set_closed(p);
            return;
        }
    }
    if (p->t_rexmt && p->t_rexmt <= now) {
        rexmt_timeout(p, now);
        if (p->state == TCPS_CLOSED)
            return;
    }
    if (p->t_persist && p->t_persist <= now) {
        p->t_persist = 0;
        if (p->snd_wnd != 0) {
            /* Held back by silly-window avoidance for too long: send
             * what the window takes. */
            p->force = true;
            tcp_output(p);
            p->force = false;
        } else if (p->slen > p->snd_nxt - p->sbase) {
            /* A probe below the window draws an ACK with the window. */
            xmit(p, p->snd_una - 1, 0, TH_ACK);
            if (p->backoff < 8)
                p->backoff++;
            set_rto(p);
            p->t_persist = now + p->rto_us * 1000;
        }
    }
    if (p->t_delack && p->t_delack <= now) {
        p->t_delack = 0;
        p->ack_now = true;
        tcp_output(p);
    }
    if (p->t_keep && p->t_keep <= now) {
        p->t_keep = 0;
        if (p->keepalive && (p->state == TCPS_ESTABLISHED || p->state == TCPS_CLOSE_WAIT)) {
            uint64_t idle_end = p->last_rx + (uint64_t)p->keep_idle_s * 1000 * MS;
            if (p->keep_probes == 0 && idle_end > now) {
                p->t_keep = idle_end;
            } else if (p->keep_probes >= p->keep_cnt) {
                xmit(p, p->snd_nxt, 0, TH_RST | TH_ACK);
                abort_err(p, ETIMEDOUT);
                return;
            } else {
                xmit(p, p->snd_una - 1, 0, TH_ACK); /* RFC 1122 §4.2.3.6 */
                p->keep_probes++;
                p->t_keep = now + (uint64_t)p->keep_intvl_s * 1000 * MS;
            }
        }
    }
    (void)ns;
}

uint64_t net_tcp_timers(struct net_stack *ns, uint64_t now)
{
    uint64_t next = UINT64_MAX;
    for (struct tcp_pcb *p = ns->tcp, *n; p; p = n) {
        n = p->next;
        pcb_timers(p, now);
    }
    /* pcb_timers may have freed any pcb: walk again for the next time. */
    for (struct tcp_pcb *p = ns->tcp; p; p = p->next) {
        uint64_t t[] = {p->t_rexmt, p->t_delack, p->t_keep, p->t_persist, p->t_2msl};
        for (unsigned i = 0; i < 5; i++)
            if (t[i] && t[i] < next)
                next = t[i];
    }
    return next;
}
