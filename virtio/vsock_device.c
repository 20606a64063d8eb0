/* vsock.c: virtio-vsock bridged to host Unix sockets, Firecracker's hybrid
 * model (see vsock.h; packet format and rules: virtio 1.2 §5.10.6).
 *
 * Everything here runs on the main loop with the transport lock held, except
 * the transport callbacks (config read, reset) that arrive on the vCPU thread:
 * reset only raises a flag and wakes the loop, which then drops every
 * connection. A connection lives until its uv handles have closed; `dead`
 * marks one that is on its way out, so a pointer taken earlier in the same
 * callback stays safe to look at.
 *
 * Memory a guest can make the host hold: per connection at most buf_alloc
 * bytes of guest data the host socket has not taken yet (guaranteed by the
 * credit check), a bounded ring of RSTs owed to the guest, and at most
 * max_conns connections. Host data is never buffered: it is read straight
 * into the guest's RX buffers.
 */
#include "virtio/vsock_device.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>

#include "common/errmsg.h"

#define HDR              ((uint32_t)sizeof(struct virtio_vsock_hdr)) /* 44 bytes */
#define Q_RX             0u
#define Q_TX             1u
#define Q_EVENT          2u
#define NBUCKETS         256u
#define CONNECT_LINE_MAX 32u                /* "CONNECT 4294967295\n" fits */
#define LOCAL_PORT0      (1u << 30)         /* host ends of host-initiated connections */
#define TX_BUDGET        (2u * VQ_SIZE_MAX) /* chains per TX callback before yielding */
#define READS_MAX        16u                /* packets per connection per readable event */

/* Control packets owed to the guest, per connection, in the order sent. */
enum {
    P_REQUEST = 1u << 0,
    P_RESPONSE = 1u << 1,
    P_CREDIT_UPDATE = 1u << 2,
    P_CREDIT_REQUEST = 1u << 3,
    P_SHUTDOWN = 1u << 4,
};

enum conn_state {
    C_HANDSHAKE, /* host connected, reading its CONNECT line */
    C_REQUEST,   /* REQUEST owed or sent to the guest, waiting for RESPONSE */
    C_OPEN,      /* established */
    C_CLOSING,   /* waiting for the guest's RST, or for a flush, bounded by a timer */
};

struct link {
    struct link *prev, *next;
};

struct conn {
    struct vsock *v;
    struct conn *hnext; /* hash chain */
    struct link all;    /* every live connection */
    struct link pend;   /* connections with control packets owed */
    int fd;
    uv_poll_t poll;
    uv_timer_t timer;
    int closing; /* uv handles still closing */
    int events;  /* what poll watches now */
    bool dead;
    enum conn_state state;
    uint32_t local_port, peer_port;
    unsigned pending;
    uint32_t shutdown_flags; /* of the SHUTDOWN owed */
    char line[CONNECT_LINE_MAX];
    unsigned line_len;
    /* host -> guest */
    uint32_t peer_buf_alloc, peer_fwd_cnt, to_guest;
    bool credit_requested;
    /* guest -> host */
    uint32_t from_guest, fwd_cnt, fwd_told;
    uint8_t *buf; /* ring of buf_alloc bytes, allocated on first use */
    uint32_t buf_head, buf_len;
    bool guest_shut_send, guest_shut_rcv, host_eof, host_gone, shut_wr;
};

struct rst {
    uint32_t local_port, peer_port;
};

struct vsock {
    struct virtio_mmio t;
    struct vsock_config cfg;
    const struct guest_mem *mem;
    int listen_fd;
    bool listening; /* uds_path is ours to unlink */
    struct vsock_stats stats;

    uv_loop_t *loop;
    bool attached;
    uv_poll_t listen_poll, notify_poll[3];
    uv_async_t wake;
    bool reset_pending;

    struct conn *hash[NBUCKETS];
    struct link conns, pend;
    uint32_t nconns, next_port;
    struct rst *rsts; /* ring of RSTs owed for connections already gone */
    uint32_t rst_head, nrst, rst_cap;

    struct vq_chain rx; /* an RX chain taken but not filled yet */
    bool rx_held, rx_starved, rx_pushed, tx_pushed;
    struct vq_chain tx;
};

/* ---- small helpers --------------------------------------------------------- */

static void link_init(struct link *l)
{
    l->prev = l->next = l;
}

static bool link_linked(const struct link *l)
{
    return l->next != l;
}

static void link_add_tail(struct link *head, struct link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

static void link_del(struct link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    link_init(l);
}

#define CONN_OF(l, member) ((struct conn *)((char *)(l)-offsetof(struct conn, member)))

static unsigned bucket(uint32_t local, uint32_t peer)
{
    return (local * 2654435761u ^ peer * 40503u) % NBUCKETS;
}

static struct conn *lookup(struct vsock *v, uint32_t local, uint32_t peer)
{
    for (struct conn *c = v->hash[bucket(local, peer)]; c; c = c->hnext)
        if (c->local_port == local && c->peer_port == peer)
            return c;
    return NULL;
}

/* Bytes we may still send the guest on c (virtio 1.2 §5.10.6.3). The guest's
 * own figures; if they do not add up, it gets nothing. */
static uint32_t peer_credit(const struct conn *c)
{
    uint32_t in_flight = c->to_guest - c->peer_fwd_cnt;

    return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* recv() through recvmsg: the main thread's seccomp filter allows the
 * socket calls the API server needs, recvmsg and sendmsg among them. */
static ssize_t sock_recv(int fd, void *buf, size_t len, int flags)
{
    struct iovec iov = {buf, len};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

    return recvmsg(fd, &m, flags | MSG_DONTWAIT);
}

/* ---- RX: packets to the guest ------------------------------------------- */

static void kill_all(struct vsock *v);

static void queue_broken(struct vsock *v, unsigned q, const char *why)
{
    virtio_mmio_fail(&v->t, q, why);
    /* No packet can reach the guest any more: hang up on every host peer
     * rather than leave it waiting for a driver reset. */
    kill_all(v);
}

/* The RX chain to fill next, or NULL when the guest has given none (then
 * rx_starved is set until the guest notifies RX). */
static struct vq_chain *rx_get(struct vsock *v)
{
    struct vq *vq = &v->t.queues[Q_RX];
    char why[160];
    enum vq_result r;

    if (v->rx_held)
        return &v->rx;
    if (!vq->ready || vq->broken) {
        v->rx_starved = true;
        return NULL;
    }
    r = vq_pop(vq, v->mem, &v->rx, why, sizeof(why));
    if (r == VQ_EMPTY) {
        /* Ask for a notification, then look once more: the guest may have
         * added a buffer before it could see the request. */
        vq_update_avail_event(vq, v->mem);
        r = vq_pop(vq, v->mem, &v->rx, why, sizeof(why));
    }
    if (r == VQ_EMPTY) {
        v->rx_starved = true;
        return NULL;
    }
    if (r == VQ_BROKEN) {
        queue_broken(v, Q_RX, why);
        return NULL;
    }
    /* RX buffers are device-writable only and hold a header and some data
     * (virtio 1.2 §5.10.6.1); a header-only buffer could never carry data. */
    if (v->rx.readable || v->rx.writable <= HDR) {
        snprintf(why, sizeof(why), "RX buffer of %lu writable bytes%s (at least %u needed)",
                 (unsigned long)v->rx.writable, v->rx.readable ? " and readable ones" : "",
                 HDR + 1);
        queue_broken(v, Q_RX, why);
        return NULL;
    }
    v->rx_held = true;
    return &v->rx;
}

/* Completes the held RX chain with header h and len payload bytes already in
 * place after it. */
static void rx_put(struct vsock *v, const struct virtio_vsock_hdr *h, uint32_t len)
{
    vq_chain_copy(&v->rx, true, 0, (void *)h, HDR);
    vq_push(&v->t.queues[Q_RX], v->mem, v->rx.head, HDR + len);
    v->rx_held = false;
    v->rx_pushed = true;
    v->stats.rx_packets++;
    v->stats.rx_bytes += len;
}

static void fill_hdr(struct vsock *v, struct virtio_vsock_hdr *h, uint32_t local, uint32_t peer,
                     uint16_t op, uint32_t flags, uint32_t len)
{
    memset(h, 0, sizeof(*h));
    h->src_cid = htole64(VSOCK_HOST_CID);
    h->dst_cid = htole64(v->cfg.guest_cid);
    h->src_port = htole32(local);
    h->dst_port = htole32(peer);
    h->len = htole32(len);
    h->type = htole16(VIRTIO_VSOCK_TYPE_STREAM);
    h->op = htole16(op);
    h->flags = htole32(flags);
}

static void conn_hdr(struct conn *c, struct virtio_vsock_hdr *h, uint16_t op, uint32_t flags,
                     uint32_t len)
{
    fill_hdr(c->v, h, c->local_port, c->peer_port, op, flags, len);
    h->buf_alloc = htole32(c->v->cfg.buf_alloc);
    h->fwd_cnt = htole32(c->fwd_cnt);
    c->fwd_told = c->fwd_cnt;
}

static void rst_push(struct vsock *v, uint32_t local, uint32_t peer)
{
    if (v->nrst == v->rst_cap) {
        v->stats.rst_dropped++;
        return;
    }
    v->rsts[(v->rst_head + v->nrst) % v->rst_cap] = (struct rst){local, peer};
    v->nrst++;
}

static void owe(struct conn *c, unsigned what)
{
    c->pending |= what;
    if (!link_linked(&c->pend))
        link_add_tail(&c->v->pend, &c->pend);
}

/* Sends c's owed control packets. False if the guest ran out of RX buffers. */
static bool send_controls(struct conn *c)
{
    struct vsock *v = c->v;
    struct virtio_vsock_hdr h;

    while (c->pending) {
        unsigned bit = c->pending & -c->pending;
        if (!rx_get(v))
            return false;
        switch (bit) {
        case P_REQUEST:
            conn_hdr(c, &h, VIRTIO_VSOCK_OP_REQUEST, 0, 0);
            break;
        case P_RESPONSE:
            conn_hdr(c, &h, VIRTIO_VSOCK_OP_RESPONSE, 0, 0);
            break;
        case P_CREDIT_UPDATE:
            conn_hdr(c, &h, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 0);
            break;
        case P_CREDIT_REQUEST:
            conn_hdr(c, &h, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0, 0);
            break;
        default:
            conn_hdr(c, &h, VIRTIO_VSOCK_OP_SHUTDOWN, c->shutdown_flags, 0);
            break;
        }
        rx_put(v, &h, 0);
        c->pending &= ~bit;
    }
    return true;
}

static void conn_update_poll(struct conn *c);

/* Delivers what the guest is owed: RSTs first, then control packets. */
static void rx_flush(struct vsock *v)
{
    struct virtio_vsock_hdr h;

    while (v->nrst) {
        if (!rx_get(v))
            return;
        struct rst r = v->rsts[v->rst_head];
        fill_hdr(v, &h, r.local_port, r.peer_port, VIRTIO_VSOCK_OP_RST, 0, 0);
        rx_put(v, &h, 0);
        v->rst_head = (v->rst_head + 1) % v->rst_cap;
        v->nrst--;
        v->stats.resets_sent++;
    }
    while (link_linked(&v->pend)) {
        struct conn *c = CONN_OF(v->pend.next, pend);
        if (!send_controls(c))
            return;
        link_del(&c->pend);
        conn_update_poll(c); /* a RESPONSE sent may open the data path */
    }
}

/* End of every main-loop callback: flush what is owed, raise interrupts. */
static void finish(struct vsock *v)
{
    rx_flush(v);
    if (v->rx_pushed) {
        v->rx_pushed = false;
        virtio_mmio_notify_used(&v->t, Q_RX);
    }
    if (v->tx_pushed) {
        v->tx_pushed = false;
        virtio_mmio_notify_used(&v->t, Q_TX);
    }
}

/* ---- connections ------------------------------------------------------------ */

static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;

    if (--c->closing > 0)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    free(c);
}

static void hash_del(struct vsock *v, struct conn *c)
{
    struct conn **pp = &v->hash[bucket(c->local_port, c->peer_port)];

    for (; *pp; pp = &(*pp)->hnext) {
        if (*pp == c) {
            *pp = c->hnext;
            return;
        }
    }
}

/* Ends c: closes the host socket, and owes the guest an RST if it knows the
 * connection and rst is set. */
static void conn_kill(struct conn *c, bool rst)
{
    struct vsock *v = c->v;

    if (c->dead)
        return;
    c->dead = true;
    if (rst && c->state != C_HANDSHAKE)
        rst_push(v, c->local_port, c->peer_port);
    if (c->state != C_HANDSHAKE)
        hash_del(v, c);
    link_del(&c->all);
    if (link_linked(&c->pend))
        link_del(&c->pend);
    v->nconns--;
    v->stats.conns_active = v->nconns;
    v->stats.tx_buffered_bytes -= c->buf_len;
    if (v->attached) {
        c->closing = 2;
        uv_close((uv_handle_t *)&c->poll, conn_closed);
        uv_close((uv_handle_t *)&c->timer, conn_closed);
    } else {
        close(c->fd);
        free(c->buf);
        free(c);
    }
}

static void kill_all(struct vsock *v)
{
    while (link_linked(&v->conns))
        conn_kill(CONN_OF(v->conns.next, all), false);
}

static void conn_poll_cb(uv_poll_t *p, int status, int events);
static void apply_reset(struct vsock *v);

static bool conn_may_read(const struct conn *c)
{
    return !c->dead && c->state == C_OPEN && !(c->pending & P_RESPONSE) && !c->host_eof &&
           !c->host_gone && !c->guest_shut_rcv && !c->v->rx_starved && peer_credit(c) > 0;
}

static void conn_update_poll(struct conn *c)
{
    int ev = 0;

    if (c->dead || !c->v->attached)
        return;
    if (c->state == C_HANDSHAKE || conn_may_read(c))
        ev |= UV_READABLE;
    if (c->buf_len && !c->host_gone)
        ev |= UV_WRITABLE;
    if (ev == c->events)
        return;
    c->events = ev;
    if (ev)
        uv_poll_start(&c->poll, ev, conn_poll_cb);
    else
        uv_poll_stop(&c->poll);
}

static void conn_timer_cb(uv_timer_t *t);

static void conn_start_timer(struct conn *c, uint32_t ms)
{
    if (c->v->attached)
        uv_timer_start(&c->timer, conn_timer_cb, ms, 0);
}

static void conn_stop_timer(struct conn *c)
{
    if (c->v->attached)
        uv_timer_stop(&c->timer);
}

static struct conn *conn_new(struct vsock *v, int fd, enum conn_state state)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->v = v;
    c->fd = fd;
    c->state = state;
    link_init(&c->all);
    link_init(&c->pend);
    if (v->attached) {
        uv_poll_init(v->loop, &c->poll, fd);
        uv_timer_init(v->loop, &c->timer);
        c->poll.data = c;
        c->timer.data = c;
    }
    link_add_tail(&v->conns, &c->all);
    v->nconns++;
    v->stats.conns_active = v->nconns;
    return c;
}

static void conn_hash(struct conn *c)
{
    unsigned b = bucket(c->local_port, c->peer_port);

    c->hnext = c->v->hash[b];
    c->v->hash[b] = c;
}

/* The host end stopped for good: tell the guest we will neither send nor
 * receive, and wait (bounded) for its RST. */
static void conn_host_gone(struct conn *c)
{
    struct vsock *v = c->v;

    if (c->dead || c->host_gone)
        return;
    c->host_gone = true;
    /* Guest data the host will never read counts as forwarded, so the
     * guest's credit stays consistent until the RST. */
    c->fwd_cnt += c->buf_len;
    v->stats.tx_buffered_bytes -= c->buf_len;
    c->buf_len = 0;
    if (c->state != C_OPEN) {
        conn_kill(c, true);
        return;
    }
    c->state = C_CLOSING;
    c->shutdown_flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
    owe(c, P_SHUTDOWN);
    conn_start_timer(c, v->cfg.shutdown_timeout_ms);
    conn_update_poll(c);
}

/* After a flush or a guest SHUTDOWN: pass the guest's end-of-stream on, and
 * end the connection once nothing can flow either way. */
static void conn_check_done(struct conn *c)
{
    if (c->dead || c->buf_len)
        return;
    if (c->guest_shut_send && !c->shut_wr && !c->host_gone) {
        shutdown(c->fd, SHUT_WR);
        c->shut_wr = true;
    }
    if (c->guest_shut_send && (c->guest_shut_rcv || c->host_eof || c->host_gone))
        conn_kill(c, true);
}

/* Tell the guest about freed buffer space before it runs dry. */
static void maybe_credit_update(struct conn *c)
{
    uint32_t unacked = c->from_guest - c->fwd_told;

    if (c->fwd_cnt != c->fwd_told && c->v->cfg.buf_alloc - unacked < c->v->cfg.buf_alloc / 2)
        owe(c, P_CREDIT_UPDATE);
}

/* Writes the buffered guest data to the host socket. */
static void conn_flush(struct conn *c)
{
    struct vsock *v = c->v;
    uint32_t cap = v->cfg.buf_alloc;

    while (c->buf_len) {
        struct iovec iov[2];
        uint32_t first = cap - c->buf_head < c->buf_len ? cap - c->buf_head : c->buf_len;
        int n = 1;
        iov[0] = (struct iovec){c->buf + c->buf_head, first};
        if (first < c->buf_len) {
            iov[1] = (struct iovec){c->buf, c->buf_len - first};
            n = 2;
        }
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w <= 0) {
            conn_host_gone(c);
            return;
        }
        c->buf_head = (c->buf_head + (uint32_t)w) % cap;
        c->buf_len -= (uint32_t)w;
        c->fwd_cnt += (uint32_t)w;
        v->stats.tx_buffered_bytes -= (uint64_t)w;
    }
    if (!c->buf_len)
        c->buf_head = 0;
    maybe_credit_update(c);
    conn_check_done(c);
    conn_update_poll(c);
}

/* Guest payload [off, off + len) of chain ch for the host socket: written
 * straight through when nothing is queued, the rest buffered. The credit
 * check already made sure it fits in buf_alloc. */
static void conn_from_guest(struct conn *c, const struct vq_chain *ch, uint64_t off, uint32_t len)
{
    struct vsock *v = c->v;
    struct iovec iov[VQ_SEGS_MAX];
    uint32_t done = 0, cap = v->cfg.buf_alloc;

    c->from_guest += len;
    v->stats.tx_bytes += len;
    if (c->host_gone || c->state != C_OPEN) {
        c->fwd_cnt += len; /* nobody to take it */
        return;
    }
    if (!c->buf_len && len) {
        int n = vq_chain_iov(ch, false, off, len, iov, VQ_SEGS_MAX);
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w;
        do
            w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (w < 0 && errno == EINTR);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            c->fwd_cnt += len;
            conn_host_gone(c);
            return;
        }
        done = w > 0 ? (uint32_t)w : 0;
        c->fwd_cnt += done;
    }
    if (done < len) {
        uint32_t rest = len - done;
        if (!c->buf)
            c->buf = malloc(cap);
        if (!c->buf || c->buf_len + rest > cap) {
            conn_kill(c, true); /* cannot happen after the credit check */
            return;
        }
        for (uint32_t k = 0; k < rest;) {
            uint32_t at = (c->buf_head + c->buf_len) % cap;
            uint32_t room = cap - at < rest - k ? cap - at : rest - k;
            vq_chain_copy(ch, false, off + done + k, c->buf + at, room);
            c->buf_len += room;
            k += room;
        }
        v->stats.tx_buffered_bytes += rest;
    }
    maybe_credit_update(c);
    conn_update_poll(c);
}

/* Reads host data into RX chains while the guest has buffers and credit. */
static void conn_to_guest(struct conn *c)
{
    struct vsock *v = c->v;
    struct iovec iov[VQ_SEGS_MAX];
    struct virtio_vsock_hdr h;

    for (unsigned i = 0; i < READS_MAX && conn_may_read(c); i++) {
        struct vq_chain *ch = rx_get(v);
        if (!ch)
            break;
        uint64_t room = ch->writable - HDR;
        uint32_t want = peer_credit(c);
        if (want > room)
            want = (uint32_t)room;
        if (want > VSOCK_PKT_PAYLOAD_MAX)
            want = VSOCK_PKT_PAYLOAD_MAX;
        int n = vq_chain_iov(ch, true, HDR, want, iov, VQ_SEGS_MAX);
        ssize_t r = readv(c->fd, iov, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (r < 0) {
            conn_host_gone(c);
            break;
        }
        if (r == 0) {
            /* End of the host's stream: the guest reads EOF. Whether the host
             * still reads shows when the guest writes (EPIPE: host gone). */
            c->host_eof = true;
            c->shutdown_flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
            owe(c, P_SHUTDOWN);
            conn_check_done(c);
            break;
        }
        conn_hdr(c, &h, VIRTIO_VSOCK_OP_RW, 0, (uint32_t)r);
        rx_put(v, &h, (uint32_t)r);
        c->to_guest += (uint32_t)r;
        c->credit_requested = false;
    }
    if (!c->dead && c->state == C_OPEN && peer_credit(c) == 0 && !c->credit_requested &&
        !c->host_eof && !c->host_gone) {
        /* virtio 1.2 §5.10.6.3: ask rather than wait for an update that a
         * quiet guest might never send. */
        c->credit_requested = true;
        owe(c, P_CREDIT_REQUEST);
    }
    conn_update_poll(c);
}

/* The host's `CONNECT <port>\n`, strictly: decimal port, no sign, no spaces. */
static int parse_connect(const char *line, unsigned len, uint32_t *port)
{
    uint64_t p = 0;
    unsigned i = 8;

    if (len < 10 || memcmp(line, "CONNECT ", 8) != 0 || line[len - 1] != '\n')
        return -1;
    for (; i < len - 1; i++) {
        if (line[i] < '0' || line[i] > '9' || i - 8 >= 10)
            return -1;
        p = p * 10 + (uint64_t)(line[i] - '0');
    }
    if (p > UINT32_MAX)
        return -1;
    *port = (uint32_t)p;
    return 0;
}

/* Reads the CONNECT line without consuming a byte past its newline: what
 * follows is already stream data for the guest. */
static void conn_handshake(struct conn *c)
{
    struct vsock *v = c->v;
    char peek[CONNECT_LINE_MAX];
    uint32_t port;
    ssize_t n = sock_recv(c->fd, peek, CONNECT_LINE_MAX - c->line_len, MSG_PEEK);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_kill(c, false);
        return;
    }
    char *nl = memchr(peek, '\n', (size_t)n);
    size_t take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;
    if (sock_recv(c->fd, c->line + c->line_len, take, 0) != (ssize_t)take) {
        conn_kill(c, false);
        return;
    }
    c->line_len += (unsigned)take;
    if (!nl) {
        if (c->line_len == CONNECT_LINE_MAX)
            conn_kill(c, false); /* no newline where one must be */
        return;
    }
    if (parse_connect(c->line, c->line_len, &port) != 0) {
        conn_kill(c, false);
        return;
    }
    c->peer_port = port;
    for (;;) {
        c->local_port = v->next_port++;
        if (v->next_port == 0)
            v->next_port = LOCAL_PORT0;
        if (!lookup(v, c->local_port, port))
            break;
    }
    conn_hash(c);
    c->state = C_REQUEST;
    owe(c, P_REQUEST);
    conn_update_poll(c);
}

static void conn_poll_cb(uv_poll_t *p, int status, int events)
{
    struct conn *c = p->data;
    struct vsock *v = c->v;

    pthread_mutex_lock(&v->t.lock);
    apply_reset(v);
    if (c->dead)
        goto out;
    if (status < 0) {
        conn_host_gone(c);
        goto out;
    }
    if (c->state == C_HANDSHAKE) {
        conn_handshake(c);
        goto out;
    }
    if (events & UV_WRITABLE)
        conn_flush(c);
    if ((events & UV_READABLE) && !c->dead)
        conn_to_guest(c);
    else
        conn_update_poll(c);
out:
    finish(v);
    pthread_mutex_unlock(&v->t.lock);
}

static void conn_timer_cb(uv_timer_t *t)
{
    struct conn *c = t->data;
    struct vsock *v = c->v;

    pthread_mutex_lock(&v->t.lock);
    apply_reset(v);
    if (!c->dead) {
        v->stats.conns_timed_out++;
        conn_kill(c, true);
    }
    finish(v);
    pthread_mutex_unlock(&v->t.lock);
}

/* ---- TX: packets from the guest ---------------------------------------- */

/* A guest REQUEST to the host: connect to <uds_path>_<port>. */
static void guest_connect(struct vsock *v, uint32_t local, uint32_t peer, uint32_t buf_alloc,
                          uint32_t fwd_cnt)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct conn *c;
    int fd;

    if (v->nconns >= v->cfg.max_conns) {
        v->stats.conns_over_limit++;
        rst_push(v, local, peer);
        return;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", v->cfg.uds_path, local);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0)
            close(fd);
        v->stats.conns_refused++;
        rst_push(v, local, peer);
        return;
    }
    c = conn_new(v, fd, C_OPEN);
    if (!c) {
        close(fd);
        rst_push(v, local, peer);
        return;
    }
    c->local_port = local;
    c->peer_port = peer;
    c->peer_buf_alloc = buf_alloc;
    c->peer_fwd_cnt = fwd_cnt;
    conn_hash(c);
    v->stats.conns_guest++;
    owe(c, P_RESPONSE);
}

static void guest_response(struct conn *c)
{
    char ok[32];
    int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);

    if (c->state != C_REQUEST) {
        c->v->stats.malformed++;
        conn_kill(c, true);
        return;
    }
    conn_stop_timer(c);
    /* A fresh socket takes a few bytes; if not, the host is gone. */
    struct iovec iov = {ok, (size_t)n};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
        conn_kill(c, true);
        return;
    }
    c->state = C_OPEN;
    c->v->stats.conns_host++;
    conn_update_poll(c);
}

static void guest_shutdown(struct conn *c, uint32_t flags)
{
    struct vsock *v = c->v;

    if (flags & VIRTIO_VSOCK_SHUTDOWN_SEND)
        c->guest_shut_send = true;
    if (flags & VIRTIO_VSOCK_SHUTDOWN_RCV)
        c->guest_shut_rcv = true;
    conn_check_done(c);
    if (!c->dead && c->guest_shut_send && c->guest_shut_rcv && c->state == C_OPEN) {
        /* Data still queued for the host: flush it, bounded in time. */
        c->state = C_CLOSING;
        conn_start_timer(c, v->cfg.shutdown_timeout_ms);
    }
    conn_update_poll(c);
}

/* One TX chain. Returns false if the queue broke. */
static bool tx_packet(struct vsock *v, const struct vq_chain *ch)
{
    struct virtio_vsock_hdr h;
    struct conn *c;

    if (ch->readable < HDR) {
        char why[96];
        snprintf(why, sizeof(why), "TX packet of %lu bytes, shorter than its %u-byte header",
                 (unsigned long)ch->readable, HDR);
        queue_broken(v, Q_TX, why);
        return false;
    }
    vq_chain_copy(ch, false, 0, &h, HDR); /* one fetch; only the copy is used */
    uint64_t src_cid = le64toh(h.src_cid), dst_cid = le64toh(h.dst_cid);
    uint32_t src_port = le32toh(h.src_port), dst_port = le32toh(h.dst_port);
    uint32_t len = le32toh(h.len), flags = le32toh(h.flags);
    uint16_t type = le16toh(h.type), op = le16toh(h.op);

    v->stats.tx_packets++;
    c = lookup(v, dst_port, src_port);
    if (src_cid != v->cfg.guest_cid || dst_cid != VSOCK_HOST_CID ||
        type != VIRTIO_VSOCK_TYPE_STREAM || len > ch->readable - HDR ||
        len > VSOCK_PKT_PAYLOAD_MAX || op == VIRTIO_VSOCK_OP_INVALID ||
        op > VIRTIO_VSOCK_OP_CREDIT_REQUEST || (len && op != VIRTIO_VSOCK_OP_RW)) {
        v->stats.malformed++;
        if (c)
            conn_kill(c, true);
        else if (op != VIRTIO_VSOCK_OP_RST)
            rst_push(v, dst_port, src_port);
        return true;
    }
    if (!c) {
        if (op == VIRTIO_VSOCK_OP_REQUEST)
            guest_connect(v, dst_port, src_port, le32toh(h.buf_alloc), le32toh(h.fwd_cnt));
        else if (op != VIRTIO_VSOCK_OP_RST)
            rst_push(v, dst_port, src_port);
        return true;
    }
    /* Every packet carries the guest's receive credit. */
    c->peer_buf_alloc = le32toh(h.buf_alloc);
    c->peer_fwd_cnt = le32toh(h.fwd_cnt);
    if (peer_credit(c))
        c->credit_requested = false;
    switch (op) {
    case VIRTIO_VSOCK_OP_RESPONSE:
        guest_response(c);
        break;
    case VIRTIO_VSOCK_OP_RST:
        v->stats.resets_received++;
        if (c->state == C_REQUEST)
            v->stats.conns_refused++;
        conn_kill(c, false);
        break;
    case VIRTIO_VSOCK_OP_SHUTDOWN:
        if (c->state == C_REQUEST) {
            v->stats.malformed++;
            conn_kill(c, true);
            break;
        }
        guest_shutdown(c, flags);
        break;
    case VIRTIO_VSOCK_OP_RW:
        if (c->state == C_REQUEST || c->guest_shut_send) {
            v->stats.malformed++;
            conn_kill(c, true);
            break;
        }
        if ((uint64_t)(c->from_guest - c->fwd_told) + len > v->cfg.buf_alloc) {
            v->stats.credit_violations++;
            conn_kill(c, true);
            break;
        }
        conn_from_guest(c, ch, HDR, len);
        break;
    case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
        conn_update_poll(c); /* more credit may restart reading */
        break;
    case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        owe(c, P_CREDIT_UPDATE);
        conn_update_poll(c);
        break;
    default: /* REQUEST on a live connection */
        v->stats.malformed++;
        conn_kill(c, true);
        break;
    }
    return true;
}

static void apply_reset(struct vsock *v)
{
    if (!v->reset_pending)
        return;
    v->reset_pending = false;
    kill_all(v);
    v->nrst = 0;
    v->rst_head = 0;
    v->rx_held = false;
    v->rx_starved = false;
    v->rx_pushed = v->tx_pushed = false;
}

static void process_tx(struct vsock *v)
{
    struct vq *vq = &v->t.queues[Q_TX];
    char why[160];
    unsigned n = 0;

    for (; n < TX_BUDGET; n++) {
        enum vq_result r = vq_pop(vq, v->mem, &v->tx, why, sizeof(why));
        if (r == VQ_EMPTY && vq->ready) {
            /* Ask for a notification, then look once more (a chain added
             * before the guest could see the request would be missed). */
            vq_update_avail_event(vq, v->mem);
            r = vq_pop(vq, v->mem, &v->tx, why, sizeof(why));
        }
        if (r == VQ_EMPTY)
            break;
        if (r == VQ_BROKEN) {
            queue_broken(v, Q_TX, why);
            return;
        }
        if (!tx_packet(v, &v->tx))
            return;
        vq_push(vq, v->mem, v->tx.head, 0);
        v->tx_pushed = true;
    }
    if (n == TX_BUDGET) {
        /* More may be waiting: let other work run, then come back. */
        uint64_t one = 1;
        if (write(v->t.notify_fd[Q_TX], &one, sizeof(one)) < 0)
            (void)0;
    }
}

static void rx_refilled(struct vsock *v)
{
    bool was = v->rx_starved;

    v->rx_starved = false;
    rx_flush(v);
    if (was && !v->rx_starved) {
        for (struct link *l = v->conns.next; l != &v->conns;) {
            struct conn *c = CONN_OF(l, all);
            l = l->next;
            conn_update_poll(c);
        }
    }
}

/* ---- transport ops ----------------------------------------------------------- */

static uint64_t vsock_features(void *dev)
{
    (void)dev;
    return (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_RING_F_INDIRECT_DESC);
}

static void vsock_config_read(void *dev, uint32_t off, void *data, uint32_t len)
{
    struct vsock *v = dev;
    struct virtio_vsock_config c = {.guest_cid = htole64(v->cfg.guest_cid)};

    memcpy(data, (uint8_t *)&c + off, len);
}

static void vsock_notify(void *dev, struct virtio_mmio *t, unsigned q)
{
    struct vsock *v = dev;

    (void)t;
    apply_reset(v);
    if (q == Q_TX)
        process_tx(v);
    else if (q == Q_RX)
        rx_refilled(v);
    finish(v);
}

/* vCPU thread, lock held: the loop drops the connections (it owns them). */
static void vsock_reset(void *dev)
{
    struct vsock *v = dev;

    v->reset_pending = true;
    if (v->attached)
        uv_async_send(&v->wake);
    else
        apply_reset(v);
}

static const struct virtio_dev_ops vsock_ops = {
    .name = "virtio-vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .nqueues = 3,
    .features = vsock_features,
    .config_size = sizeof(struct virtio_vsock_config),
    .config_read = vsock_config_read,
    .queue_notify = vsock_notify,
    .reset = vsock_reset,
};

/* ---- main-loop plumbing -------------------------------------------------- */

static void drain(int fd)
{
    uint64_t x;

    while (read(fd, &x, sizeof(x)) == (ssize_t)sizeof(x))
        ;
}

static void notify_cb(uv_poll_t *p, int status, int events)
{
    struct vsock *v = p->data;
    unsigned q = (unsigned)(p - v->notify_poll);

    (void)events;
    if (status < 0)
        return;
    drain(v->t.notify_fd[q]);
    pthread_mutex_lock(&v->t.lock);
    if (q != Q_EVENT) /* event buffers wait for TRANSPORT_RESET, which we never send */
        vsock_notify(v, &v->t, q);
    pthread_mutex_unlock(&v->t.lock);
}

static void wake_cb(uv_async_t *a)
{
    struct vsock *v = a->data;

    pthread_mutex_lock(&v->t.lock);
    apply_reset(v);
    pthread_mutex_unlock(&v->t.lock);
}

static void accept_cb(uv_poll_t *p, int status, int events)
{
    struct vsock *v = p->data;

    (void)events;
    if (status < 0)
        return;
    pthread_mutex_lock(&v->t.lock);
    apply_reset(v);
    for (int i = 0; i < 16; i++) {
        int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        if (v->nconns >= v->cfg.max_conns) {
            v->stats.conns_over_limit++;
            close(fd);
            continue;
        }
        struct conn *c = conn_new(v, fd, C_HANDSHAKE);
        if (!c) {
            close(fd);
            continue;
        }
        conn_start_timer(c, v->cfg.connect_timeout_ms);
        conn_update_poll(c);
    }
    finish(v);
    pthread_mutex_unlock(&v->t.lock);
}

/* Whether the socket file at sa is a leftover: a Unix socket that nothing
 * listens on any more (connect is refused). A live one, or anything that is
 * not a socket, is never touched. */
static bool stale_socket(const struct sockaddr_un *sa)
{
    struct stat st;
    int fd, rc;

    if (lstat(sa->sun_path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return false;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    close(fd);
    return rc != 0 && errno == ECONNREFUSED;
}

/* Whether fd is already bound to sa (the first bind succeeded). */
static bool stat_is_ours(int fd, const struct sockaddr_un *sa)
{
    struct sockaddr_un got;
    socklen_t len = sizeof(got);

    return getsockname(fd, (struct sockaddr *)&got, &len) == 0 && len > sizeof(sa_family_t) &&
           strcmp(got.sun_path, sa->sun_path) == 0;
}

struct vsock *vsock_create(const struct vsock_config *cfg, const struct guest_mem *mem,
                           uint64_t base, uint32_t gsi, char *err, size_t errlen)
{
    struct vsock *v = calloc(1, sizeof(*v));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    if (!v) {
        errmsg(-1, err, errlen, "vsock: out of memory");
        return NULL;
    }
    v->listen_fd = -1;
    v->cfg = *cfg;
    v->cfg.uds_path = cfg->uds_path ? strdup(cfg->uds_path) : NULL;
    if (!v->cfg.max_conns)
        v->cfg.max_conns = VSOCK_MAX_CONNS_DEFAULT;
    if (!v->cfg.buf_alloc)
        v->cfg.buf_alloc = VSOCK_BUF_ALLOC_DEFAULT;
    if (!v->cfg.connect_timeout_ms)
        v->cfg.connect_timeout_ms = VSOCK_CONNECT_TIMEOUT_MS_DEFAULT;
    if (!v->cfg.shutdown_timeout_ms)
        v->cfg.shutdown_timeout_ms = VSOCK_SHUTDOWN_TIMEOUT_MS_DEFAULT;
    v->mem = mem;
    v->next_port = LOCAL_PORT0;
    link_init(&v->conns);
    link_init(&v->pend);
    /* Room for an RST per connection and then some: legitimate churn never
     * drops one; a flood of bad packets does, and is counted. */
    v->rst_cap = v->cfg.max_conns + 64;
    v->rsts = calloc(v->rst_cap, sizeof(*v->rsts));
    if (!v->cfg.uds_path || !v->rsts) {
        errmsg(-1, err, errlen, "vsock: out of memory");
        goto err;
    }
    /* <uds_path>_<port> must fit too. */
    if (strlen(cfg->uds_path) + 11 >= sizeof(sa.sun_path)) {
        errmsg(-1, err, errlen, "vsock: %s: path too long for a Unix socket (at most %zu bytes)",
               cfg->uds_path, sizeof(sa.sun_path) - 12);
        goto err;
    }
    if (virtio_mmio_init(&v->t, &vsock_ops, v, "virtio-vsock", mem, base, gsi) != 0) {
        errmsg(-1, err, errlen, "vsock: %s", strerror(errno));
        goto err;
    }
    memcpy(sa.sun_path, cfg->uds_path, strlen(cfg->uds_path) + 1);
    v->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (v->listen_fd >= 0 && bind(v->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
        errno == EADDRINUSE && stale_socket(&sa))
        unlink(cfg->uds_path); /* left by a monitor that was killed: take it over */
    if (v->listen_fd < 0 || (!stat_is_ours(v->listen_fd, &sa) &&
                             bind(v->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)) {
        errmsg(-1, err, errlen, "vsock: %s: %s", cfg->uds_path, strerror(errno));
        goto err;
    }
    v->listening = true;
    if (listen(v->listen_fd, 128) != 0) {
        errmsg(-1, err, errlen, "vsock: %s: %s", cfg->uds_path, strerror(errno));
        goto err;
    }
    return v;
err:
    vsock_destroy(v);
    return NULL;
}

int vsock_attach(struct vsock *v, uv_loop_t *loop)
{
    v->loop = loop;
    if (uv_async_init(loop, &v->wake, wake_cb) != 0 ||
        uv_poll_init(loop, &v->listen_poll, v->listen_fd) != 0)
        return -1;
    v->wake.data = v;
    v->listen_poll.data = v;
    for (unsigned q = 0; q < 3; q++) {
        if (uv_poll_init(loop, &v->notify_poll[q], v->t.notify_fd[q]) != 0)
            return -1;
        v->notify_poll[q].data = v;
        if (uv_poll_start(&v->notify_poll[q], UV_READABLE, notify_cb) != 0)
            return -1;
    }
    v->attached = true;
    return uv_poll_start(&v->listen_poll, UV_READABLE, accept_cb) != 0 ? -1 : 0;
}

void vsock_destroy(struct vsock *v)
{
    if (!v)
        return;
    /* The loop's handles are closed by now (see vsock.h): free directly. */
    v->attached = false;
    while (link_linked(&v->conns)) {
        struct conn *c = CONN_OF(v->conns.next, all);
        link_del(&c->all);
        close(c->fd);
        free(c->buf);
        free(c);
    }
    if (v->listen_fd >= 0)
        close(v->listen_fd);
    if (v->listening)
        unlink(v->cfg.uds_path);
    if (v->t.ops)
        virtio_mmio_destroy(&v->t);
    free(v->rsts);
    free(v->cfg.uds_path);
    free(v);
}

struct virtio_mmio *vsock_transport(struct vsock *v)
{
    return &v->t;
}

const struct vsock_config *vsock_get_config(const struct vsock *v)
{
    return &v->cfg;
}

void vsock_get_stats(struct vsock *v, struct vsock_stats *out)
{
    pthread_mutex_lock(&v->t.lock);
    *out = v->stats;
    pthread_mutex_unlock(&v->t.lock);
}
