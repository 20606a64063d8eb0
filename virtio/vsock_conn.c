/* vsock_conn.c: the connections of the virtio-vsock device (vsock_priv.h):
 * their state machine (handshake, request, open, closing), credit-based flow
 * control both ways (virtio 1.2 §5.10.6.3), and the data path between the
 * guest's queues and the host socket.
 *
 * A connection lives until its uv handles have closed; `dead` marks one that
 * is on its way out, so a pointer taken earlier in the same callback stays
 * safe to look at. Host data is never buffered: it is read straight into RX
 * buffers. Guest data the host socket cannot take yet is held in a buffer of
 * exactly what waits (freed when empty), and the credit bounds it:
 *
 * The per-VM budget (cfg.buffer_bytes). What a connection can make us hold
 * is limit - fwd_cnt: the bytes the guest may still send (limit - from_guest,
 * its credit) plus those it sent that the host has not taken (from_guest -
 * fwd_cnt, buffered). The sum over all connections, v->granted, never
 * exceeds the budget: every header we send tells the guest a buf_alloc
 * (vsock_conn_grant) no larger than what fits, so the guest stops sending
 * (virtio 1.2 §5.10.6.3) instead of the host filling up. Half the budget is
 * a floor per connection (for max_conns of them), half a shared pool (see
 * floor_bytes). Credit once given
 * is never taken back (the guest may already be using it): limit only
 * grows. When a connection's data drains or it ends, the budget it held
 * goes to connections that were cut short, oldest first, with a
 * CREDIT_UPDATE each.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#include <linux/virtio_vsock.h>

#include "virtio/vsock_priv.h"

static void conn_poll_cb(uv_poll_t *p, int status, int events);
static void conn_timer_cb(uv_timer_t *t);

static unsigned bucket(uint32_t local, uint32_t peer)
{
    return (local * 2654435761u ^ peer * 40503u) % NBUCKETS;
}

struct conn *vsock_lookup(struct vsock *v, uint32_t local, uint32_t peer)
{
    struct conn *c;

    LIST_FOREACH(c, &v->hash[bucket(local, peer)], hlink)
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

/* The buffered bytes and the peak, as the metrics show them. */
static void buffered(struct vsock *v, int64_t delta)
{
    v->stats.tx_buffered_bytes += (uint64_t)delta;
    if (v->stats.tx_buffered_bytes > v->stats.tx_buffered_peak)
        v->stats.tx_buffered_peak = v->stats.tx_buffered_bytes;
}

/* Every connection may always make us hold `floor` bytes, reserved for
 * max_conns of them (half the budget); the other half is a pool that
 * connections draw on beyond their floor. So a connection opened when the
 * pool is taken (say, by idle connections given full credit earlier) still
 * gets credit, and the sum never passes the budget. */
static uint64_t floor_bytes(const struct vsock *v)
{
    return v->cfg.buffer_bytes / (2ull * v->cfg.max_conns);
}

static uint64_t pool_bytes(const struct vsock *v)
{
    return v->cfg.buffer_bytes - floor_bytes(v) * v->cfg.max_conns;
}

static uint64_t beyond_floor(const struct vsock *v, uint64_t held)
{
    return held > floor_bytes(v) ? held - floor_bytes(v) : 0;
}

/* c may now make us hold `now` bytes instead of `old`. */
static void set_held(struct conn *c, uint64_t old, uint64_t now)
{
    struct vsock *v = c->v;

    v->granted += now - old;
    v->pool_used += beyond_floor(v, now) - beyond_floor(v, old);
    v->stats.tx_granted_bytes = v->granted;
}

/* What a connection aims at: its floor and its share of the pool (so that a
 * few cannot take it all when many are open), at least 4 KiB of pool. */
static uint64_t fair_share(const struct vsock *v)
{
    uint64_t share = pool_bytes(v) / (v->nconns ? v->nconns : 1);

    if (share < 4096)
        share = pool_bytes(v) < 4096 ? pool_bytes(v) : 4096;
    return floor_bytes(v) + share;
}

static void starve(struct conn *c, bool on)
{
    if (on == c->starved)
        return;
    c->starved = on;
    if (on)
        TAILQ_INSERT_TAIL(&c->v->starved, c, starve);
    else
        TAILQ_REMOVE(&c->v->starved, c, starve);
}

uint32_t vsock_conn_grant(struct conn *c)
{
    struct vsock *v = c->v;
    uint64_t held = (uint32_t)(c->limit - c->fwd_cnt); /* already counted */
    uint64_t fl = floor_bytes(v), fair = fair_share(v);
    uint64_t room = (held > fl ? held : fl) + (pool_bytes(v) - v->pool_used);
    uint64_t target = held > fair ? held : fair, a;

    if (target > v->cfg.buf_alloc)
        target = v->cfg.buf_alloc;
    a = target < room ? target : room;
    if (a < held)
        a = held; /* never less than what was given */
    set_held(c, held, a);
    c->limit = c->fwd_cnt + (uint32_t)a;
    c->granted_alloc = (uint32_t)a;
    /* Cut short by the budget (not by the fair share): more when some
     * comes free. */
    if (a < target && !c->starved && !c->dead)
        v->stats.credit_limited++;
    starve(c, a < target && !c->dead);
    return (uint32_t)a;
}

/* Pool came free: connections that were cut short get a CREDIT_UPDATE,
 * oldest first, one per free share (their grant is worked out when it is
 * sent). */
static void budget_freed(struct vsock *v)
{
    uint64_t free_bytes = pool_bytes(v) - v->pool_used, share = fair_share(v) - floor_bytes(v);
    struct conn *c;

    while (share && free_bytes >= share && (c = TAILQ_FIRST(&v->starved))) {
        starve(c, false);
        vsock_owe(c, P_CREDIT_UPDATE);
        free_bytes -= share;
    }
}

/* n more bytes of c's stream have gone to the host (or nowhere): they no
 * longer count against the budget. */
static void forwarded(struct conn *c, uint32_t n)
{
    uint64_t held = (uint32_t)(c->limit - c->fwd_cnt);

    if (!n)
        return;
    c->fwd_cnt += n;
    set_held(c, held, held - n);
    budget_freed(c->v);
}

void vsock_conn_hash(struct conn *c)
{
    LIST_INSERT_HEAD(&c->v->hash[bucket(c->local_port, c->peer_port)], c, hlink);
}

void vsock_owe(struct conn *c, unsigned what)
{
    c->pending |= what;
    if (!c->owed) {
        TAILQ_INSERT_TAIL(&c->v->pend, c, pend);
        c->owed = true;
    }
}

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

/* Ends c: closes the host socket, and owes the guest an RST if it knows the
 * connection and rst is set. */
void vsock_conn_kill(struct conn *c, bool rst)
{
    struct vsock *v = c->v;

    if (c->dead)
        return;
    c->dead = true;
    if (rst && c->state != C_HANDSHAKE)
        vsock_rst_push(v, c->local_port, c->peer_port);
    if (c->state != C_HANDSHAKE)
        LIST_REMOVE(c, hlink); /* hashed when it left the handshake */
    TAILQ_REMOVE(&v->conns, c, all);
    if (c->owed) {
        TAILQ_REMOVE(&v->pend, c, pend);
        c->owed = false;
    }
    v->nconns--;
    v->stats.conns_active = v->nconns;
    buffered(v, -(int64_t)c->buf_len);
    starve(c, false);
    set_held(c, (uint32_t)(c->limit - c->fwd_cnt), 0);
    c->limit = c->fwd_cnt;
    budget_freed(v);
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

void vsock_kill_all(struct vsock *v)
{
    while (!TAILQ_EMPTY(&v->conns))
        vsock_conn_kill(TAILQ_FIRST(&v->conns), false);
}

static bool conn_may_read(const struct conn *c)
{
    return !c->dead && c->state == C_OPEN && !(c->pending & P_RESPONSE) && !c->host_eof &&
           !c->host_gone && !c->guest_shut_rcv && !c->v->rx_starved && peer_credit(c) > 0;
}

void vsock_conn_update_poll(struct conn *c)
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

void vsock_conn_start_timer(struct conn *c, uint32_t ms)
{
    if (c->v->attached)
        uv_timer_start(&c->timer, conn_timer_cb, ms, 0);
}

static void conn_stop_timer(struct conn *c)
{
    if (c->v->attached)
        uv_timer_stop(&c->timer);
}

struct conn *vsock_conn_new(struct vsock *v, int fd, enum conn_state state)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->v = v;
    c->fd = fd;
    c->state = state;
    if (v->attached) {
        uv_poll_init(v->loop, &c->poll, fd);
        uv_timer_init(v->loop, &c->timer);
        c->poll.data = c;
        c->timer.data = c;
    }
    TAILQ_INSERT_TAIL(&v->conns, c, all);
    v->nconns++;
    v->stats.conns_active = v->nconns;
    return c;
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
    buffered(v, -(int64_t)c->buf_len);
    forwarded(c, c->buf_len);
    c->buf_len = c->buf_cap = 0;
    free(c->buf);
    c->buf = NULL;
    if (c->state != C_OPEN) {
        vsock_conn_kill(c, true);
        return;
    }
    c->state = C_CLOSING;
    c->shutdown_flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
    vsock_owe(c, P_SHUTDOWN);
    vsock_conn_start_timer(c, v->cfg.shutdown_timeout_ms);
    vsock_conn_update_poll(c);
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
        vsock_conn_kill(c, true);
}

/* Tell the guest about freed buffer space before it runs dry: once less
 * than half of the credit last given is left. */
static void maybe_credit_update(struct conn *c)
{
    uint32_t left = c->limit - c->from_guest;

    if (c->fwd_cnt != c->fwd_told && left < c->granted_alloc / 2 + 1)
        vsock_owe(c, P_CREDIT_UPDATE);
}

/* Gives c's buffer room for cap bytes. Not realloc(): for large blocks it
 * calls mremap, which the seccomp filter does not allow (and need not). */
static bool buf_resize(struct conn *c, uint32_t cap)
{
    uint8_t *p = malloc(cap);

    if (!p)
        return false;
    if (c->buf_len)
        memcpy(p, c->buf, c->buf_len);
    free(c->buf);
    c->buf = p;
    c->buf_cap = cap;
    return true;
}

/* Drops the first n buffered bytes (the host took them). The rest moves to
 * the front, and the buffer shrinks when it is mostly empty (freed when
 * empty), so that the memory held follows the bytes held. */
static void buf_consume(struct conn *c, uint32_t n)
{
    c->buf_len -= n;
    buffered(c->v, -(int64_t)n);
    if (!c->buf_len) {
        free(c->buf);
        c->buf = NULL;
        c->buf_cap = 0;
        return;
    }
    memmove(c->buf, c->buf + n, c->buf_len);
    if (c->buf_cap > 2 * c->buf_len + 4096)
        buf_resize(c, c->buf_len); /* if it fails, the larger one stays */
}

/* Writes the buffered guest data to the host socket. */
static void conn_flush(struct conn *c)
{
    while (c->buf_len) {
        struct iovec iov = {c->buf, c->buf_len};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w <= 0) {
            conn_host_gone(c);
            return;
        }
        buf_consume(c, (uint32_t)w);
        forwarded(c, (uint32_t)w);
    }
    maybe_credit_update(c);
    conn_check_done(c);
    vsock_conn_update_poll(c);
}

/* Guest payload [off, off + len) of chain ch for the host socket: written
 * straight through when nothing is queued, the rest buffered. The credit
 * check already made sure it is within the budget. */
static void conn_from_guest(struct conn *c, const struct vq_chain *ch, uint64_t off, uint32_t len)
{
    struct vsock *v = c->v;
    struct iovec iov[VQ_SEGS_MAX];
    uint32_t done = 0;

    c->from_guest += len;
    v->stats.tx_bytes += len;
    if (c->host_gone || c->state != C_OPEN) {
        forwarded(c, len); /* nobody to take it */
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
            forwarded(c, len);
            conn_host_gone(c);
            return;
        }
        done = w > 0 ? (uint32_t)w : 0;
        forwarded(c, done);
    }
    if (done < len) {
        uint32_t rest = len - done;
        /* Doubling (amortised copies), but never past what c may make us
         * hold: the memory stays within the budget. */
        if (c->buf_len + rest > c->buf_cap) {
            uint32_t need = c->buf_len + rest, cap = c->buf_cap * 2;
            uint32_t most = c->limit - c->fwd_cnt;
            if (cap > most)
                cap = most;
            if (cap < need)
                cap = need;
            if (!buf_resize(c, cap)) {
                forwarded(c, rest);
                vsock_conn_kill(c, true);
                return;
            }
        }
        vq_chain_copy(ch, false, off + done, c->buf + c->buf_len, rest);
        c->buf_len += rest;
        buffered(v, rest);
    }
    maybe_credit_update(c);
    vsock_conn_update_poll(c);
}

/* Reads host data into RX chains while the guest has buffers and credit. */
static void conn_to_guest(struct conn *c)
{
    struct vsock *v = c->v;
    struct iovec iov[VQ_SEGS_MAX];
    struct virtio_vsock_hdr h;

    for (unsigned i = 0; i < READS_MAX && conn_may_read(c); i++) {
        struct vq_chain *ch = vsock_rx_get(v);
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
            vsock_owe(c, P_SHUTDOWN);
            conn_check_done(c);
            break;
        }
        vsock_conn_hdr(c, &h, VIRTIO_VSOCK_OP_RW, 0, (uint32_t)r);
        vsock_rx_put(v, &h, (uint32_t)r);
        c->to_guest += (uint32_t)r;
        c->credit_requested = false;
    }
    if (!c->dead && c->state == C_OPEN && peer_credit(c) == 0 && !c->credit_requested &&
        !c->host_eof && !c->host_gone) {
        /* virtio 1.2 §5.10.6.3: ask rather than wait for an update that a
         * quiet guest might never send. */
        c->credit_requested = true;
        vsock_owe(c, P_CREDIT_REQUEST);
    }
    vsock_conn_update_poll(c);
}

static void conn_poll_cb(uv_poll_t *p, int status, int events)
{
    struct conn *c = p->data;
    struct vsock *v = c->v;

    pthread_mutex_lock(&v->t.lock);
    vsock_apply_reset(v);
    if (c->dead)
        goto out;
    if (status < 0) {
        conn_host_gone(c);
        goto out;
    }
    if (c->state == C_HANDSHAKE) {
        vsock_bridge_handshake(c);
        goto out;
    }
    if (events & UV_WRITABLE)
        conn_flush(c);
    if ((events & UV_READABLE) && !c->dead)
        conn_to_guest(c);
    else
        vsock_conn_update_poll(c);
out:
    vsock_finish(v);
    pthread_mutex_unlock(&v->t.lock);
}

static void conn_timer_cb(uv_timer_t *t)
{
    struct conn *c = t->data;
    struct vsock *v = c->v;

    pthread_mutex_lock(&v->t.lock);
    vsock_apply_reset(v);
    if (!c->dead) {
        v->stats.conns_timed_out++;
        vsock_conn_kill(c, true);
    }
    vsock_finish(v);
    pthread_mutex_unlock(&v->t.lock);
}

/* A guest REQUEST to the host: connect to <uds_path>_<port>. */
void vsock_guest_connect(struct vsock *v, uint32_t local, uint32_t peer, uint32_t buf_alloc,
                         uint32_t fwd_cnt)
{
    struct conn *c;
    int fd;

    if (v->nconns >= v->cfg.max_conns) {
        v->stats.conns_over_limit++;
        vsock_rst_push(v, local, peer);
        return;
    }
    fd = vsock_bridge_connect(v, local);
    if (fd < 0) {
        v->stats.conns_refused++;
        vsock_rst_push(v, local, peer);
        return;
    }
    c = vsock_conn_new(v, fd, C_OPEN);
    if (!c) {
        close(fd);
        vsock_rst_push(v, local, peer);
        return;
    }
    c->local_port = local;
    c->peer_port = peer;
    c->peer_buf_alloc = buf_alloc;
    c->peer_fwd_cnt = fwd_cnt;
    vsock_conn_hash(c);
    v->stats.conns_guest++;
    vsock_owe(c, P_RESPONSE);
}

static void guest_response(struct conn *c)
{
    if (c->state != C_REQUEST) {
        c->v->stats.malformed++;
        vsock_conn_kill(c, true);
        return;
    }
    conn_stop_timer(c);
    if (!vsock_bridge_send_ok(c)) {
        vsock_conn_kill(c, true);
        return;
    }
    c->state = C_OPEN;
    c->v->stats.conns_host++;
    vsock_conn_update_poll(c);
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
        vsock_conn_start_timer(c, v->cfg.shutdown_timeout_ms);
    }
    vsock_conn_update_poll(c);
}

/* A TX packet on c, already checked against its header (vsock_packet.c):
 * what it means depends on the state c is in. */
void vsock_conn_packet(struct conn *c, const struct virtio_vsock_hdr *h, const struct vq_chain *ch)
{
    struct vsock *v = c->v;
    uint32_t len = le32toh(h->len), flags = le32toh(h->flags);
    uint16_t op = le16toh(h->op);

    /* Every packet carries the guest's receive credit. */
    c->peer_buf_alloc = le32toh(h->buf_alloc);
    c->peer_fwd_cnt = le32toh(h->fwd_cnt);
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
        vsock_conn_kill(c, false);
        break;
    case VIRTIO_VSOCK_OP_SHUTDOWN:
        if (c->state == C_REQUEST) {
            v->stats.malformed++;
            vsock_conn_kill(c, true);
            break;
        }
        guest_shutdown(c, flags);
        break;
    case VIRTIO_VSOCK_OP_RW:
        if (c->state == C_REQUEST || c->guest_shut_send) {
            v->stats.malformed++;
            vsock_conn_kill(c, true);
            break;
        }
        /* Beyond the credit we gave (virtio 1.2 §5.10.6.3): limit is the
         * most it may have sent, and it never shrinks. */
        if ((uint32_t)(c->limit - c->from_guest) < len) {
            v->stats.credit_violations++;
            vsock_conn_kill(c, true);
            break;
        }
        conn_from_guest(c, ch, HDR, len);
        break;
    case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
        vsock_conn_update_poll(c); /* more credit may restart reading */
        break;
    case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        vsock_owe(c, P_CREDIT_UPDATE);
        vsock_conn_update_poll(c);
        break;
    default: /* REQUEST on a live connection */
        v->stats.malformed++;
        vsock_conn_kill(c, true);
        break;
    }
}
