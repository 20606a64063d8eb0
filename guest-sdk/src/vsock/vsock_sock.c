/* vsock_sock.c: AF_VSOCK stream sockets (see vsock_sock.h): the socket
 * calls and waiting in them. The protocol underneath is vsock_proto.c,
 * options vsock_sockopt.c (vsock_sock_priv.h).
 *
 * One guest, one vCPU, no threads: nothing here needs a lock. Every call
 * first lets the driver deliver what the device has done (vsk_service), then
 * looks at the socket. Blocking calls wait through vsock_dev_wait (spin,
 * then sleep until an interrupt), bounded by SO_RCVTIMEO/SO_SNDTIMEO and the
 * connect timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>

#include <ember/vsock.h>

#include "sdk.h"
#include "vsock/vsock_dev.h"
#include "vsock/vsock_sock.h"
#include "vsock/vsock_sock_priv.h"

/* ---- waiting ---------------------------------------------------------------- */

static uint64_t deadline_after(uint64_t ns)
{
    if (ns == 0)
        return NO_DEADLINE;
    uint64_t now = ember_monotonic_ns();
    return ns > NO_DEADLINE - now ? NO_DEADLINE : now + ns;
}

struct wait_arg {
    struct vsk *s;
    bool (*cond)(struct vsk *);
};

static bool wait_ready(void *p)
{
    struct wait_arg *w = p;
    vsk_service();
    return w->cond(w->s);
}

/* Waits for cond(s) until deadline; true if it holds. */
static bool wait_for(struct vsk *s, bool (*cond)(struct vsk *), uint64_t deadline)
{
    struct wait_arg w = {s, cond};
    for (;;) {
        if (wait_ready(&w))
            return true;
        uint64_t t = vsk_next_deadline();
        if (t > deadline)
            t = deadline;
        if (vsock_dev_wait(wait_ready, &w, t))
            return true;
        if (ember_monotonic_ns() >= deadline)
            return wait_ready(&w);
    }
}

/* ---- the socket calls ----------------------------------------------------- */

long vsk_create(int type, int protocol, struct vsk **out)
{
    int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (base <= 0 || base > SOCK_PACKET)
        return -EINVAL;
    if (base != SOCK_STREAM)
        return -ESOCKTNOSUPPORT;
    if (protocol != 0 && protocol != PF_VSOCK)
        return -EPROTONOSUPPORT;
    int r = vsock_dev_start();
    if (r == -ENODEV)
        return -EAFNOSUPPORT; /* as Linux without a vsock transport */
    if (r)
        return r;
    struct vsk *s = vsk_sock_alloc();
    if (!s)
        return -ENOMEM;
    s->nonblock = (type & SOCK_NONBLOCK) != 0;
    *out = s;
    return 0;
}

static long check_addr(const struct sockaddr_vm *a)
{
    if (a->svm_family != AF_VSOCK)
        return -EAFNOSUPPORT;
    if (a->svm_zero[0] || a->svm_zero[1] || a->svm_zero[2])
        return -EINVAL;
    return 0;
}

long vsk_bind(struct vsk *s, const struct sockaddr_vm *a)
{
    long r = check_addr(a);
    if (r)
        return r;
    if (s->owns_port || s->state != VS_INIT)
        return -EINVAL;
    if (a->svm_cid != VMADDR_CID_ANY && a->svm_cid != vsock_dev_cid())
        return -EADDRNOTAVAIL;
    uint32_t port = a->svm_port;
    if (port == VMADDR_PORT_ANY) {
        port = vsk_ephemeral_port();
        if (port == VMADDR_PORT_ANY)
            return -EADDRNOTAVAIL;
    } else if (vsk_port_taken(port)) {
        return -EADDRINUSE;
    }
    s->bound_cid = a->svm_cid;
    s->local_port = port;
    s->owns_port = true;
    return 0;
}

long vsk_listen(struct vsk *s, int backlog)
{
    if (s->state != VS_INIT && s->state != VS_LISTEN)
        return -EINVAL;
    if (!s->owns_port)
        return -EINVAL; /* Linux: vsock does not bind on listen() */
    s->backlog = (unsigned)backlog > VSK_SOMAXCONN ? VSK_SOMAXCONN : (uint32_t)backlog;
    s->state = VS_LISTEN;
    /* The first connection's ring is mapped now: a function snapshotted
     * while listening then takes it from the cache after each restore
     * instead of mapping it (which writes the heap's bitmaps, one more
     * copied page per restored VM). */
    vsk_ring_reserve();
    return 0;
}

static bool has_child(struct vsk *s)
{
    return s->aq_head != NULL || s->state != VS_LISTEN;
}

long vsk_accept(struct vsk *s, int flags, struct vsk **child, struct sockaddr_vm *peer)
{
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
        return -EINVAL;
    if (s->state != VS_LISTEN)
        return -EINVAL;
    vsk_service();
    if (!s->aq_head) {
        if (s->nonblock)
            return -EAGAIN;
        if (!wait_for(s, has_child, deadline_after(s->rcvtimeo_ns)))
            return -EAGAIN;
        if (s->state != VS_LISTEN)
            return -EINVAL;
    }
    struct vsk *c = s->aq_head;
    s->aq_head = c->qnext;
    if (!s->aq_head)
        s->aq_tail = NULL;
    s->aq_len--;
    c->qnext = NULL;
    c->parent = NULL;
    c->nonblock = (flags & SOCK_NONBLOCK) != 0;
    if (peer) {
        sdk_memset(peer, 0, sizeof(*peer));
        peer->svm_family = AF_VSOCK;
        peer->svm_cid = (unsigned)c->peer_cid;
        peer->svm_port = c->peer_port;
    }
    *child = c;
    return 0;
}

void vsk_unaccept(struct vsk *l, struct vsk *c)
{
    c->parent = l;
    c->qnext = l->aq_head;
    l->aq_head = c;
    if (!l->aq_tail)
        l->aq_tail = c;
    l->aq_len++;
}

static bool not_connecting(struct vsk *s)
{
    return s->state != VS_CONNECTING;
}

long vsk_connect(struct vsk *s, const struct sockaddr_vm *a)
{
    long r = check_addr(a);

    switch (s->state) {
    case VS_CONNECTED:
    case VS_CLOSED:
        return -EISCONN;
    case VS_ZOMBIE:
    case VS_LISTEN:
        return -EINVAL;
    case VS_CONNECTING:
        if (s->nonblock)
            return -EALREADY;
        break;
    case VS_INIT:
        if (r)
            return r;
        if (a->svm_cid != VMADDR_CID_HOST)
            return -ENODEV; /* Linux: no transport reaches that CID */
        if (!s->owns_port) {
            uint32_t port = vsk_ephemeral_port();
            if (port == VMADDR_PORT_ANY)
                return -EADDRNOTAVAIL;
            s->local_port = port;
            s->owns_port = true;
        }
        if (vsk_lookup(s->local_port, a->svm_cid, a->svm_port))
            return -EADDRINUSE;
        s->err = 0;
        s->peer_cid = a->svm_cid;
        s->peer_port = a->svm_port;
        s->rx_cnt = s->fwd_cnt = s->fwd_told = s->tx_cnt = 0;
        s->peer_buf_alloc = s->peer_fwd_cnt = 0;
        s->shut = s->peer_shut = s->shut_sent = 0;
        s->state = VS_CONNECTING;
        vsk_hash_add(s);
        vsk_set_deadline(s, deadline_after(s->connect_timeout_ns));
        if (vsk_send_ctl(s, VSOCK_OP_REQUEST, 0) != 0) {
            /* TX full: wait for one slot (bounded by the connect timeout). */
            struct vsock_hdr h;
            vsk_hdr_for(s, &h, VSOCK_OP_REQUEST, 0, 0);
            while (vsock_dev_send(&h, NULL, NULL) != 0) {
                if (ember_monotonic_ns() >= s->deadline) {
                    vsk_hash_del(s);
                    vsk_set_deadline(s, NO_DEADLINE);
                    s->state = VS_INIT;
                    return -ETIMEDOUT;
                }
                vsk_service();
            }
        }
        if (s->nonblock)
            return -EINPROGRESS;
        break;
    }
    wait_for(s, not_connecting, NO_DEADLINE); /* the connect timer ends it */
    if (s->state == VS_CONNECTED)
        return 0;
    int e = s->err ? s->err : ECONNREFUSED;
    s->err = 0;
    return -e;
}

static uint32_t iov_total(const struct iovec *iov, size_t n, long *err)
{
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++) {
        t += iov[i].iov_len;
        if (t > 0x7ffff000u) {
            *err = -EINVAL;
            return 0;
        }
    }
    *err = 0;
    return (uint32_t)t;
}

static bool readable(struct vsk *s)
{
    return s->rlen > 0 || (s->peer_shut & VSOCK_SHUTDOWN_SEND) || s->state != VS_CONNECTED ||
           s->err;
}

/* The peer's view of our buffer is stale by half of it: tell it. */
static void maybe_credit_update(struct vsk *s)
{
    if (s->state == VS_CONNECTED && s->fwd_cnt - s->fwd_told >= s->buf_alloc / 2 &&
        !(s->peer_shut & VSOCK_SHUTDOWN_SEND))
        vsk_ctl(s, OWE_CREDIT);
}

long vsk_recv(struct vsk *s, const struct iovec *iov, size_t iovcnt, int flags)
{
    long err;
    uint32_t want = iov_total(iov, iovcnt, &err);
    uint32_t got = 0;

    if (err)
        return err;
    if (flags & (MSG_OOB | MSG_ERRQUEUE))
        return -EOPNOTSUPP;
    if (s->state != VS_CONNECTED && !(s->state == VS_CLOSED))
        return -ENOTCONN;
    if (s->shut & VSOCK_SHUTDOWN_RCV)
        return 0;
    if (want == 0)
        return 0;
    bool nonblock = s->nonblock || (flags & MSG_DONTWAIT);
    uint64_t deadline = NO_DEADLINE;
    size_t vi = 0, voff = 0;
    for (;;) {
        vsk_service();
        if (s->rlen) {
            uint32_t n = s->rlen < want - got ? s->rlen : want - got;
            uint32_t at = s->rhead, left = n;
            while (left) {
                size_t room = iov[vi].iov_len - voff;
                uint32_t chunk = s->rcap - at < left ? s->rcap - at : left;
                if (chunk > room)
                    chunk = (uint32_t)room;
                sdk_memcpy((uint8_t *)iov[vi].iov_base + voff, s->rbuf + at, chunk);
                voff += chunk;
                if (voff == iov[vi].iov_len) {
                    vi++;
                    voff = 0;
                }
                at += chunk;
                if (at == s->rcap)
                    at = 0;
                left -= chunk;
            }
            got += n;
            if (flags & MSG_PEEK)
                return got;
            s->rlen -= n;
            s->rhead = s->rlen ? at : 0; /* empty: start over at the first page */
            s->fwd_cnt += n;
            maybe_credit_update(s);
            if (s->rlen == 0 && s->peer_shut == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND) &&
                s->hashed)
                vsk_conn_reset(s, 0);
            if (got == want || !(flags & MSG_WAITALL))
                return got;
        }
        if (s->err && !got) {
            int e = s->err;
            s->err = 0;
            return -e;
        }
        if ((s->peer_shut & VSOCK_SHUTDOWN_SEND) || s->state != VS_CONNECTED)
            return got;
        if (nonblock)
            return got ? (long)got : -EAGAIN;
        if (deadline == NO_DEADLINE)
            deadline = deadline_after(s->rcvtimeo_ns);
        if (!wait_for(s, readable, deadline))
            return got ? (long)got : -EAGAIN;
    }
}

static uint32_t credit(const struct vsk *s)
{
    uint32_t in_flight = s->tx_cnt - s->peer_fwd_cnt;
    return in_flight >= s->peer_buf_alloc ? 0 : s->peer_buf_alloc - in_flight;
}

static bool writable(struct vsk *s)
{
    return (credit(s) > 0 && vsock_dev_tx_room() > 0) || s->state != VS_CONNECTED ||
           (s->peer_shut & VSOCK_SHUTDOWN_RCV) || (s->shut & VSOCK_SHUTDOWN_SEND);
}

long vsk_send(struct vsk *s, const struct iovec *iov, size_t iovcnt, int flags)
{
    long err;
    uint32_t total = iov_total(iov, iovcnt, &err);
    uint32_t sent = 0;
    struct iov_cursor cur = {iov, iovcnt, 0, 0};

    if (err)
        return err;
    if (flags & MSG_OOB)
        return -EOPNOTSUPP;
    if ((s->shut & VSOCK_SHUTDOWN_SEND) || (s->peer_shut & VSOCK_SHUTDOWN_RCV))
        return -EPIPE;
    if (s->state != VS_CONNECTED)
        return -ENOTCONN;
    bool nonblock = s->nonblock || (flags & MSG_DONTWAIT);
    uint64_t deadline = NO_DEADLINE;
    vsk_service();
    while (sent < total) {
        if ((s->shut & VSOCK_SHUTDOWN_SEND) || (s->peer_shut & VSOCK_SHUTDOWN_RCV) ||
            s->state != VS_CONNECTED)
            return sent ? (long)sent : -EPIPE;
        uint32_t n = credit(s);
        if (n == 0 || vsock_dev_tx_room() == 0) {
            if (n == 0 && !s->credit_asked && vsk_send_ctl(s, VSOCK_OP_CREDIT_REQUEST, 0) == 0)
                s->credit_asked = true;
            if (nonblock)
                return sent ? (long)sent : -EAGAIN;
            if (deadline == NO_DEADLINE)
                deadline = deadline_after(s->sndtimeo_ns);
            if (!wait_for(s, writable, deadline))
                return sent ? (long)sent : -EAGAIN;
            continue;
        }
        if (n > total - sent)
            n = total - sent;
        if (n > VSOCK_TX_PAYLOAD_MAX)
            n = VSOCK_TX_PAYLOAD_MAX;
        struct vsock_hdr h;
        vsk_hdr_for(s, &h, VSOCK_OP_RW, 0, n);
        if (vsock_dev_send(&h, vsk_copy_from_iov, &cur) != 0)
            continue; /* cannot happen: room was checked */
        s->fwd_told = s->fwd_cnt;
        s->tx_cnt += n;
        sent += n;
    }
    return (long)sent;
}

long vsk_shutdown(struct vsk *s, int how)
{
    if (how < SHUT_RD || how > SHUT_RDWR)
        return -EINVAL;
    if (s->state != VS_CONNECTED && s->state != VS_CLOSED)
        return -ENOTCONN;
    uint8_t f = 0;
    if (how == SHUT_RD || how == SHUT_RDWR)
        f |= VSOCK_SHUTDOWN_RCV;
    if (how == SHUT_WR || how == SHUT_RDWR)
        f |= VSOCK_SHUTDOWN_SEND;
    s->shut |= f;
    if (s->hashed && (s->shut_sent | f) != s->shut_sent) {
        s->shut_sent |= f;
        vsk_ctl(s, OWE_SHUTDOWN);
    }
    return 0;
}

void vsk_close(struct vsk *s)
{
    vsk_service();
    switch (s->state) {
    case VS_LISTEN:
        while (s->aq_head) {
            struct vsk *c = s->aq_head;
            s->aq_head = c->qnext;
            c->parent = NULL;
            c->state = VS_ZOMBIE;
            vsk_conn_reset(c, 0); /* frees c, or does once its RST is out */
        }
        s->aq_tail = NULL;
        s->aq_len = 0;
        vsk_sock_free(s);
        return;
    case VS_CONNECTING:
        vsk_ctl(s, OWE_RST);
        vsk_hash_del(s);
        s->state = VS_ZOMBIE;
        if (!s->in_pend)
            vsk_sock_free(s);
        return;
    case VS_CONNECTED:
        if (s->peer_shut == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)) {
            s->state = VS_ZOMBIE;
            vsk_conn_reset(s, 0);
            return;
        }
        s->state = VS_ZOMBIE;
        s->shut = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
        if (s->shut_sent != s->shut) {
            s->shut_sent = s->shut;
            vsk_ctl(s, OWE_SHUTDOWN);
        }
        vsk_set_deadline(s, ember_monotonic_ns() + VSK_CLOSE_TIMEOUT_NS);
        return;
    default:
        s->state = VS_ZOMBIE;
        if (!s->in_pend && !s->hashed)
            vsk_sock_free(s);
        return;
    }
}

long vsk_getname(struct vsk *s, bool peer, struct sockaddr_vm *out)
{
    sdk_memset(out, 0, sizeof(*out));
    out->svm_family = AF_VSOCK;
    if (peer) {
        if (s->state != VS_CONNECTED && s->state != VS_CLOSED)
            return -ENOTCONN;
        out->svm_cid = (unsigned)s->peer_cid;
        out->svm_port = s->peer_port;
        return 0;
    }
    out->svm_cid = s->state == VS_CONNECTED || s->state == VS_CLOSED ? (unsigned)vsock_dev_cid()
                                                                     : s->bound_cid;
    out->svm_port = s->local_port;
    return 0;
}

unsigned vsk_poll(struct vsk *s)
{
    unsigned m = 0;

    if (s->err)
        m |= POLLERR;
    if (s->shut == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND) ||
        ((s->shut & VSOCK_SHUTDOWN_SEND) && (s->peer_shut & VSOCK_SHUTDOWN_SEND)))
        m |= POLLHUP;
    if ((s->shut & VSOCK_SHUTDOWN_RCV) || (s->peer_shut & VSOCK_SHUTDOWN_SEND))
        m |= POLLRDHUP | POLLIN | POLLRDNORM;
    switch (s->state) {
    case VS_LISTEN:
        if (s->aq_head)
            m |= POLLIN | POLLRDNORM;
        break;
    case VS_CONNECTED:
        if (s->rlen)
            m |= POLLIN | POLLRDNORM;
        if (!(s->shut & VSOCK_SHUTDOWN_SEND) && credit(s) > 0 && vsock_dev_tx_room() > 0)
            m |= POLLOUT | POLLWRNORM;
        break;
    case VS_CLOSED:
        if (s->rlen)
            m |= POLLIN | POLLRDNORM;
        if (!(s->shut & VSOCK_SHUTDOWN_SEND))
            m |= POLLOUT | POLLWRNORM; /* writing then fails with EPIPE */
        break;
    case VS_INIT:
        if (!(s->shut & VSOCK_SHUTDOWN_SEND))
            m |= POLLOUT | POLLWRNORM; /* as Linux for a closed socket */
        break;
    default:
        break;
    }
    return m;
}

bool vsk_nonblock(const struct vsk *s)
{
    return s->nonblock;
}

void vsk_set_nonblock(struct vsk *s, bool on)
{
    s->nonblock = on;
}
