/* vsock_sock.c: AF_VSOCK stream sockets (see vsock_sock.h) on top of the
 * virtio-vsock driver (vsock_dev.c).
 *
 * One guest, one vCPU, no threads: nothing here needs a lock. Work happens
 * when the application calls in: every call first lets the driver deliver
 * what the device has done (vsock_dev_poll -> vsock_sock_rx), then looks at
 * the socket. Blocking calls wait through vsock_dev_wait (spin, then sleep
 * until an interrupt), bounded by SO_RCVTIMEO/SO_SNDTIMEO and the connect
 * timeout.
 *
 * Receive side: each connection has a ring, allocated on its first data,
 * VSK_RING_MIN bytes and doubled up to buf_alloc while data waits in it
 * (rings of closed sockets are kept for reuse). Payload is copied into it out of the RX buffer,
 * which goes straight back to the device. The peer may send at most buf_alloc - (rx_cnt - fwd_cnt)
 * bytes (virtio 1.2 §5.10.6.3); we tell it fwd_cnt in every packet and send a CREDIT_UPDATE once
 * half the buffer was consumed without the peer hearing of it, or when it asks (CREDIT_REQUEST). A
 * peer that sends beyond its credit is reset. Send side: at most the peer's credit, in packets of
 * up to VSOCK_TX_PAYLOAD_MAX bytes; a writer with no credit asks for it (CREDIT_REQUEST) and waits.
 *
 * Closing follows Linux: close() of a live connection sends SHUTDOWN
 * (both directions) and keeps the connection until the peer's RST, at most
 * VSK_CLOSE_TIMEOUT_NS; a peer that shuts down both directions gets an RST
 * once its data has been read.
 *
 * Control packets that find the TX queue full (RESPONSE, CREDIT_UPDATE,
 * SHUTDOWN, RST) are owed and sent on the next poll.
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

#define VSK_BUF_DEFAULT        (256u * 1024u) /* Linux's default buf_alloc */
#define VSK_BUF_MIN            128u
#define VSK_BUF_MAX            (64u << 20)
#define VSK_CONNECT_TIMEOUT_NS (2ull * 1000000000ull) /* Linux: 2 s */
#define VSK_CLOSE_TIMEOUT_NS   (2ull * 1000000000ull) /* the host's shutdown timeout */
#define VSK_SOMAXCONN          4096u
#define VSK_EPHEMERAL_FIRST    49152u
#define VSK_HASH               256u
#define VSK_RING_CACHE         16u
#define VSK_RING_MIN           (16u * 1024u)
#define VSK_RST_OWED           64u
#define NO_DEADLINE            UINT64_MAX

/* SO_* numbers at SOL_SOCKET on x86-64 Linux. */
#define SO_RCVTIMEO_OLD_ 20
#define SO_SNDTIMEO_OLD_ 21
#define SO_RCVTIMEO_NEW_ 66
#define SO_SNDTIMEO_NEW_ 67
#define SIOCINQ_         0x541b /* FIONREAD */
#define SIOCOUTQ_        0x5411 /* TIOCOUTQ */

enum vsk_state {
    VS_INIT,       /* new, maybe bound */
    VS_LISTEN,     /* listen() called */
    VS_CONNECTING, /* REQUEST sent, waiting for RESPONSE */
    VS_CONNECTED,  /* established */
    VS_CLOSED,     /* was connected; the peer reset it (or both shut down) */
    VS_ZOMBIE,     /* closed by the application, waiting for the peer's RST */
};

/* Control packets owed. */
enum {
    OWE_RESPONSE = 1u << 0,
    OWE_CREDIT = 1u << 1,
    OWE_SHUTDOWN = 1u << 2,
    OWE_RST = 1u << 3,
};

struct vsk {
    struct vsk *all_prev, *all_next; /* every live socket */
    struct vsk *hnext;               /* hash chain, when hashed */
    struct vsk *qnext;               /* accept queue of the parent */
    struct vsk *parent;              /* listener, until accepted */
    struct vsk *pend_next;           /* sockets with control packets owed */
    enum vsk_state state;
    bool hashed, owns_port, nonblock, in_pend, credit_asked;
    uint8_t shut;      /* local shutdown: VSOCK_SHUTDOWN_RCV / _SEND */
    uint8_t peer_shut; /* the peer's, from its SHUTDOWN (or RST: both) */
    uint8_t shut_sent; /* SHUTDOWN flags already sent */
    uint8_t owed;      /* OWE_* */
    int err;           /* SO_ERROR */
    uint32_t bound_cid, local_port, peer_port;
    uint64_t peer_cid;
    uint64_t deadline; /* connect or close timeout; NO_DEADLINE */
    /* receive */
    uint8_t *rbuf;
    uint32_t buf_alloc, rcap, rhead, rlen;
    uint32_t rx_cnt, fwd_cnt, fwd_told;
    /* send */
    uint32_t tx_cnt, peer_buf_alloc, peer_fwd_cnt;
    /* listener */
    struct vsk *aq_head, *aq_tail;
    uint32_t aq_len, backlog;
    /* options */
    uint64_t rcvtimeo_ns, sndtimeo_ns, connect_timeout_ns;
    uint64_t buf_min, buf_max;
    int opt_reuseaddr, opt_keepalive, opt_rcvbuf, opt_sndbuf, opt_rcvlowat, opt_priority;
    int opt_linger_on, opt_linger_s, opt_reuseport, opt_oobinline;
};

static struct vsk all_head = {.all_prev = &all_head, .all_next = &all_head};
static struct vsk *hash[VSK_HASH];
static struct vsk *free_socks;
static struct vsk *pend_head;
static uint32_t next_ephemeral = VSK_EPHEMERAL_FIRST;
static unsigned ntimed;                 /* sockets with a deadline */
static uint64_t earliest = NO_DEADLINE; /* no deadline passes before this */
static struct {
    void *p;
    uint32_t cap;
} ring_cache[VSK_RING_CACHE];
static unsigned nring_cache;
static struct {
    uint64_t cid;
    uint32_t local, peer;
} rst_owed[VSK_RST_OWED];
static unsigned nrst_owed;

/* ---- memory ----------------------------------------------------------------- */

static void *pages(size_t len)
{
    long p = ember_sys_mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p < 0 ? NULL : (void *)p;
}

static struct vsk *sock_alloc(void)
{
    if (!free_socks) {
        struct vsk *slab = pages(PAGE_SIZE);
        if (!slab)
            return NULL;
        for (size_t i = 0; i < PAGE_SIZE / sizeof(*slab); i++) {
            slab[i].hnext = free_socks;
            free_socks = &slab[i];
        }
    }
    struct vsk *s = free_socks;
    free_socks = s->hnext;
    sdk_memset(s, 0, sizeof(*s));
    s->all_next = &all_head;
    s->all_prev = all_head.all_prev;
    all_head.all_prev->all_next = s;
    all_head.all_prev = s;
    s->buf_alloc = VSK_BUF_DEFAULT;
    s->buf_min = VSK_BUF_MIN;
    s->buf_max = VSK_BUF_DEFAULT;
    s->bound_cid = VMADDR_CID_ANY;
    s->local_port = VMADDR_PORT_ANY;
    s->deadline = NO_DEADLINE;
    s->connect_timeout_ns = VSK_CONNECT_TIMEOUT_NS;
    s->opt_rcvbuf = s->opt_sndbuf = 212992; /* Linux's default */
    s->opt_rcvlowat = 1;
    return s;
}

/* Rings are page-rounded; a closed socket's ring is kept for the next one
 * (no zeroing, no fresh pages to touch). */
static uint8_t *ring_get(uint32_t cap)
{
    for (unsigned i = 0; i < nring_cache; i++) {
        if (ring_cache[i].cap == cap) {
            void *p = ring_cache[i].p;
            ring_cache[i] = ring_cache[--nring_cache];
            return p;
        }
    }
    return pages(cap);
}

static void ring_put(uint8_t *p, uint32_t cap)
{
    if (!p)
        return;
    if (nring_cache < VSK_RING_CACHE) {
        ring_cache[nring_cache].p = p;
        ring_cache[nring_cache].cap = cap;
        nring_cache++;
        return;
    }
    ember_sys_munmap((uintptr_t)p, cap);
}

/* ---- tables ----------------------------------------------------------------- */

static unsigned bucket(uint32_t local, uint32_t peer)
{
    return (local * 2654435761u ^ peer * 40503u) % VSK_HASH;
}

static void hash_add(struct vsk *s)
{
    unsigned b = bucket(s->local_port, s->peer_port);
    s->hnext = hash[b];
    hash[b] = s;
    s->hashed = true;
}

static void hash_del(struct vsk *s)
{
    if (!s->hashed)
        return;
    for (struct vsk **pp = &hash[bucket(s->local_port, s->peer_port)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == s) {
            *pp = s->hnext;
            break;
        }
    }
    s->hashed = false;
}

static struct vsk *lookup(uint32_t local, uint64_t peer_cid, uint32_t peer)
{
    for (struct vsk *s = hash[bucket(local, peer)]; s; s = s->hnext)
        if (s->local_port == local && s->peer_port == peer && s->peer_cid == peer_cid)
            return s;
    return NULL;
}

static struct vsk *find_listener(uint32_t port)
{
    for (struct vsk *s = all_head.all_next; s != &all_head; s = s->all_next)
        if (s->state == VS_LISTEN && s->local_port == port)
            return s;
    return NULL;
}

static bool port_taken(uint32_t port)
{
    for (struct vsk *s = all_head.all_next; s != &all_head; s = s->all_next)
        if (s->owns_port && s->local_port == port)
            return true;
    return false;
}

static uint32_t ephemeral_port(void)
{
    for (uint32_t tries = 0; tries < 100000; tries++) {
        uint32_t p = next_ephemeral++;
        if (next_ephemeral == VMADDR_PORT_ANY)
            next_ephemeral = LAST_RESERVED_PORT + 1;
        if (!port_taken(p))
            return p;
    }
    return VMADDR_PORT_ANY;
}

static void set_deadline(struct vsk *s, uint64_t t)
{
    if (s->deadline == NO_DEADLINE && t != NO_DEADLINE)
        ntimed++;
    else if (s->deadline != NO_DEADLINE && t == NO_DEADLINE)
        ntimed--;
    s->deadline = t;
    if (t < earliest)
        earliest = t;
}

static void pend_del(struct vsk *s)
{
    if (!s->in_pend)
        return;
    for (struct vsk **pp = &pend_head; *pp; pp = &(*pp)->pend_next) {
        if (*pp == s) {
            *pp = s->pend_next;
            break;
        }
    }
    s->in_pend = false;
}

static void sock_free(struct vsk *s)
{
    hash_del(s);
    pend_del(s);
    set_deadline(s, NO_DEADLINE);
    ring_put(s->rbuf, s->rcap);
    s->all_prev->all_next = s->all_next;
    s->all_next->all_prev = s->all_prev;
    s->hnext = free_socks;
    free_socks = s;
}

/* ---- packets ---------------------------------------------------------------- */

struct iov_cursor {
    const struct iovec *iov;
    size_t n, i, off;
};

static void copy_from_iov(void *dst, void *arg, uint32_t n)
{
    struct iov_cursor *c = arg;
    uint8_t *d = dst;

    while (n) {
        const struct iovec *v = &c->iov[c->i];
        size_t take = v->iov_len - c->off;
        if (take > n)
            take = n;
        sdk_memcpy(d, (const uint8_t *)v->iov_base + c->off, take);
        d += take;
        n -= (uint32_t)take;
        c->off += take;
        if (c->off == v->iov_len) {
            c->i++;
            c->off = 0;
        }
    }
}

static void hdr_for(struct vsk *s, struct vsock_hdr *h, uint16_t op, uint32_t flags, uint32_t len)
{
    sdk_memset(h, 0, sizeof(*h));
    h->src_port = s->local_port;
    h->dst_port = s->peer_port;
    h->dst_cid = s->peer_cid;
    h->op = op;
    h->flags = flags;
    h->len = len;
    h->buf_alloc = s->buf_alloc;
    h->fwd_cnt = s->fwd_cnt;
}

static int send_ctl(struct vsk *s, uint16_t op, uint32_t flags)
{
    struct vsock_hdr h;

    hdr_for(s, &h, op, flags, 0);
    int r = vsock_dev_send(&h, NULL, NULL);
    if (r == 0)
        s->fwd_told = s->fwd_cnt;
    return r;
}

static void owe(struct vsk *s, unsigned what)
{
    s->owed |= (uint8_t)what;
    if (!s->in_pend) {
        s->pend_next = pend_head;
        pend_head = s;
        s->in_pend = true;
    }
}

/* Sends a control packet now, or owes it. */
static void ctl(struct vsk *s, unsigned what)
{
    uint16_t op = what == OWE_RESPONSE ? VSOCK_OP_RESPONSE
                  : what == OWE_CREDIT ? VSOCK_OP_CREDIT_UPDATE
                  : what == OWE_RST    ? VSOCK_OP_RST
                                       : VSOCK_OP_SHUTDOWN;
    if (s->owed || send_ctl(s, op, what == OWE_SHUTDOWN ? s->shut_sent : 0) != 0)
        owe(s, what);
}

static void rst_reply(const struct vsock_hdr *h)
{
    struct vsock_hdr r;

    sdk_memset(&r, 0, sizeof(r));
    r.src_port = h->dst_port;
    r.dst_port = h->src_port;
    r.dst_cid = h->src_cid;
    r.op = VSOCK_OP_RST;
    if (vsock_dev_send(&r, NULL, NULL) == 0)
        return;
    if (nrst_owed < VSK_RST_OWED) { /* else dropped: the peer times out */
        rst_owed[nrst_owed].cid = h->src_cid;
        rst_owed[nrst_owed].local = h->dst_port;
        rst_owed[nrst_owed].peer = h->src_port;
        nrst_owed++;
    }
}

/* Sends what is owed, oldest RSTs first. */
static void flush_owed(void)
{
    while (nrst_owed) {
        struct vsock_hdr r;
        sdk_memset(&r, 0, sizeof(r));
        r.src_port = rst_owed[0].local;
        r.dst_port = rst_owed[0].peer;
        r.dst_cid = rst_owed[0].cid;
        r.op = VSOCK_OP_RST;
        if (vsock_dev_send(&r, NULL, NULL) != 0)
            return;
        nrst_owed--;
        for (unsigned i = 0; i < nrst_owed; i++)
            rst_owed[i] = rst_owed[i + 1];
    }
    while (pend_head) {
        struct vsk *s = pend_head;
        while (s->owed) {
            unsigned bit = s->owed & -s->owed;
            uint16_t op = bit == OWE_RESPONSE ? VSOCK_OP_RESPONSE
                          : bit == OWE_CREDIT ? VSOCK_OP_CREDIT_UPDATE
                          : bit == OWE_RST    ? VSOCK_OP_RST
                                              : VSOCK_OP_SHUTDOWN;
            if (send_ctl(s, op, bit == OWE_SHUTDOWN ? s->shut_sent : 0) != 0)
                return;
            s->owed &= (uint8_t)~bit;
        }
        pend_head = s->pend_next;
        s->in_pend = false;
        if (s->state == VS_ZOMBIE && !s->hashed)
            sock_free(s); /* its final RST went out */
    }
}

/* The connection is over for the peer: no packet will come for it any
 * more. Data already received stays readable. */
static void conn_done(struct vsk *s, int err)
{
    hash_del(s);
    set_deadline(s, NO_DEADLINE);
    s->peer_shut = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
    if (err && !s->err)
        s->err = err;
    if (s->state == VS_ZOMBIE) {
        if (!s->in_pend)
            sock_free(s);
        return;
    }
    s->state = VS_CLOSED;
}

/* Ends the connection with an RST to the peer. */
static void conn_reset(struct vsk *s, int err)
{
    if (s->hashed)
        ctl(s, OWE_RST);
    conn_done(s, err);
}

/* ---- receiving -------------------------------------------------------------- */

/* Makes room for len more bytes: the ring starts small and doubles up to
 * buf_alloc (rounded to pages) as data waits in it, so an idle or
 * promptly-read connection holds little memory. */
static bool ring_room(struct vsk *s, uint32_t len)
{
    uint32_t need = s->rlen + len;
    if (need <= s->rcap)
        return true;
    uint32_t max = (uint32_t)ALIGN_UP(s->buf_alloc, PAGE_SIZE);
    uint32_t cap = s->rcap ? s->rcap : VSK_RING_MIN;
    while (cap < need && cap < max)
        cap = cap > max / 2 ? max : cap * 2;
    if (cap < need)
        return false; /* cannot happen: the credit check bounds need */
    uint8_t *n = ring_get(cap);
    if (!n)
        return false;
    uint32_t first = s->rcap - s->rhead < s->rlen ? s->rcap - s->rhead : s->rlen;
    if (s->rlen) {
        sdk_memcpy(n, s->rbuf + s->rhead, first);
        sdk_memcpy(n + first, s->rbuf, s->rlen - first);
    }
    ring_put(s->rbuf, s->rcap);
    s->rbuf = n;
    s->rcap = cap;
    s->rhead = 0;
    return true;
}

static void rx_data(struct vsk *s, const uint8_t *p, uint32_t len)
{
    if (s->shut & VSOCK_SHUTDOWN_RCV || s->state == VS_ZOMBIE) {
        /* Nobody will read it: consumed at once (Linux drops it too). */
        s->rx_cnt += len;
        s->fwd_cnt += len;
        return;
    }
    if ((uint64_t)(s->rx_cnt - s->fwd_cnt) + len > s->buf_alloc) {
        conn_reset(s, EPROTO); /* beyond the credit we gave */
        return;
    }
    if (!ring_room(s, len)) {
        conn_reset(s, ENOMEM);
        return;
    }
    uint32_t at = s->rhead + s->rlen;
    if (at >= s->rcap)
        at -= s->rcap;
    uint32_t first = s->rcap - at < len ? s->rcap - at : len;
    sdk_memcpy(s->rbuf + at, p, first);
    if (first < len)
        sdk_memcpy(s->rbuf, p + first, len - first);
    s->rlen += len;
    s->rx_cnt += len;
}

static void rx_request(const struct vsock_hdr *h)
{
    struct vsk *l = find_listener(h->dst_port);
    struct vsk *c;

    if (!l || l->aq_len > l->backlog || !(c = sock_alloc())) {
        rst_reply(h);
        return;
    }
    c->state = VS_CONNECTED;
    c->local_port = h->dst_port;
    c->bound_cid = (uint32_t)vsock_dev_cid();
    c->peer_cid = h->src_cid;
    c->peer_port = h->src_port;
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    c->buf_alloc = l->buf_alloc;
    c->buf_min = l->buf_min;
    c->buf_max = l->buf_max;
    c->rcvtimeo_ns = l->rcvtimeo_ns;
    c->sndtimeo_ns = l->sndtimeo_ns;
    c->parent = l;
    hash_add(c);
    if (l->aq_tail)
        l->aq_tail->qnext = c;
    else
        l->aq_head = c;
    l->aq_tail = c;
    l->aq_len++;
    ctl(c, OWE_RESPONSE);
}

void vsock_sock_rx(const struct vsock_hdr *h, const uint8_t *payload)
{
    if (h->type != VSOCK_TYPE_STREAM || h->dst_cid != vsock_dev_cid()) {
        if (h->op != VSOCK_OP_RST)
            rst_reply(h);
        return;
    }
    struct vsk *s = lookup(h->dst_port, h->src_cid, h->src_port);
    if (!s) {
        if (h->op == VSOCK_OP_REQUEST)
            rx_request(h);
        else if (h->op != VSOCK_OP_RST)
            rst_reply(h);
        return;
    }
    /* Every packet carries the peer's receive credit. */
    s->peer_buf_alloc = h->buf_alloc;
    s->peer_fwd_cnt = h->fwd_cnt;
    if (s->tx_cnt - s->peer_fwd_cnt < s->peer_buf_alloc)
        s->credit_asked = false;

    if (s->state == VS_CONNECTING) {
        if (h->op == VSOCK_OP_RESPONSE) {
            s->state = VS_CONNECTED;
            set_deadline(s, NO_DEADLINE);
        } else if (h->op == VSOCK_OP_RST) {
            hash_del(s);
            set_deadline(s, NO_DEADLINE);
            s->state = VS_INIT;
            s->err = ECONNRESET;
        } else {
            ctl(s, OWE_RST);
            hash_del(s);
            set_deadline(s, NO_DEADLINE);
            s->state = VS_INIT;
            s->err = EPROTO;
        }
        return;
    }
    switch (h->op) {
    case VSOCK_OP_RW:
        rx_data(s, payload, h->len);
        break;
    case VSOCK_OP_CREDIT_UPDATE:
        break;
    case VSOCK_OP_CREDIT_REQUEST:
        ctl(s, OWE_CREDIT);
        break;
    case VSOCK_OP_SHUTDOWN:
        s->peer_shut |= (uint8_t)(h->flags & (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND));
        /* Both ways shut and nothing left to read: done (Linux resets). */
        if (s->peer_shut == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND) &&
            (s->rlen == 0 || s->state == VS_ZOMBIE))
            conn_reset(s, 0);
        break;
    case VSOCK_OP_RST:
        conn_done(s, 0);
        break;
    default: /* REQUEST or RESPONSE on a live connection */
        conn_reset(s, EPROTO);
        break;
    }
}

void vsock_sock_transport_reset(void)
{
    for (struct vsk *s = all_head.all_next, *n; s != &all_head; s = n) {
        n = s->all_next;
        if (s->state == VS_CONNECTING) {
            hash_del(s);
            set_deadline(s, NO_DEADLINE);
            s->state = VS_INIT;
            s->err = ECONNRESET;
        } else if (s->hashed) {
            s->owed = 0;
            pend_del(s);
            conn_done(s, ECONNRESET);
        }
    }
    nrst_owed = 0;
}

/* Connect and close timeouts. */
/* Connect and close timeouts. Cheap until the earliest deadline: poll()
 * calls this for every socket it watches, every time it looks. */
static void timers(void)
{
    if (!ntimed || ember_monotonic_ns() < earliest)
        return;
    uint64_t now = ember_monotonic_ns();
    for (struct vsk *s = all_head.all_next, *n; s != &all_head; s = n) {
        n = s->all_next;
        if (s->deadline > now)
            continue;
        if (s->state == VS_CONNECTING) {
            ctl(s, OWE_RST);
            hash_del(s);
            set_deadline(s, NO_DEADLINE);
            s->state = VS_INIT;
            s->err = ETIMEDOUT;
        } else if (s->state == VS_ZOMBIE) {
            conn_reset(s, 0);
        } else {
            set_deadline(s, NO_DEADLINE);
        }
    }
    earliest = vsk_next_deadline();
}

void vsk_service(void)
{
    vsock_dev_poll();
    if (nrst_owed || pend_head)
        flush_owed();
    timers();
}

uint64_t vsk_next_deadline(void)
{
    uint64_t t = NO_DEADLINE;
    if (!ntimed)
        return t;
    for (struct vsk *s = all_head.all_next; s != &all_head; s = s->all_next)
        if (s->deadline < t)
            t = s->deadline;
    return t;
}

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
    struct vsk *s = sock_alloc();
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
        port = ephemeral_port();
        if (port == VMADDR_PORT_ANY)
            return -EADDRNOTAVAIL;
    } else if (port_taken(port)) {
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
            uint32_t port = ephemeral_port();
            if (port == VMADDR_PORT_ANY)
                return -EADDRNOTAVAIL;
            s->local_port = port;
            s->owns_port = true;
        }
        if (lookup(s->local_port, a->svm_cid, a->svm_port))
            return -EADDRINUSE;
        s->err = 0;
        s->peer_cid = a->svm_cid;
        s->peer_port = a->svm_port;
        s->rx_cnt = s->fwd_cnt = s->fwd_told = s->tx_cnt = 0;
        s->peer_buf_alloc = s->peer_fwd_cnt = 0;
        s->shut = s->peer_shut = s->shut_sent = 0;
        s->state = VS_CONNECTING;
        hash_add(s);
        set_deadline(s, deadline_after(s->connect_timeout_ns));
        if (send_ctl(s, VSOCK_OP_REQUEST, 0) != 0) {
            /* TX full: wait for one slot (bounded by the connect timeout). */
            struct vsock_hdr h;
            hdr_for(s, &h, VSOCK_OP_REQUEST, 0, 0);
            while (vsock_dev_send(&h, NULL, NULL) != 0) {
                if (ember_monotonic_ns() >= s->deadline) {
                    hash_del(s);
                    set_deadline(s, NO_DEADLINE);
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
        ctl(s, OWE_CREDIT);
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
                conn_reset(s, 0);
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
            if (n == 0 && !s->credit_asked && send_ctl(s, VSOCK_OP_CREDIT_REQUEST, 0) == 0)
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
        hdr_for(s, &h, VSOCK_OP_RW, 0, n);
        if (vsock_dev_send(&h, copy_from_iov, &cur) != 0)
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
        ctl(s, OWE_SHUTDOWN);
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
            conn_reset(c, 0); /* frees c, or does once its RST is out */
        }
        s->aq_tail = NULL;
        s->aq_len = 0;
        sock_free(s);
        return;
    case VS_CONNECTING:
        ctl(s, OWE_RST);
        hash_del(s);
        s->state = VS_ZOMBIE;
        if (!s->in_pend)
            sock_free(s);
        return;
    case VS_CONNECTED:
        if (s->peer_shut == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)) {
            s->state = VS_ZOMBIE;
            conn_reset(s, 0);
            return;
        }
        s->state = VS_ZOMBIE;
        s->shut = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
        if (s->shut_sent != s->shut) {
            s->shut_sent = s->shut;
            ctl(s, OWE_SHUTDOWN);
        }
        set_deadline(s, ember_monotonic_ns() + VSK_CLOSE_TIMEOUT_NS);
        return;
    default:
        s->state = VS_ZOMBIE;
        if (!s->in_pend && !s->hashed)
            sock_free(s);
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

/* ---- options ------------------------------------------------------------------ */

static long get_int(const void *val, uint32_t len, int *out)
{
    if (len < sizeof(int))
        return -EINVAL;
    *out = *(const int *)val;
    return 0;
}

static long get_timeval_ns(const void *val, uint32_t len, uint64_t *ns)
{
    const struct timeval *tv = val;
    if (len < sizeof(*tv))
        return -EINVAL;
    if (tv->tv_usec < 0 || tv->tv_usec >= 1000000)
        return -EDOM;
    if (tv->tv_sec < 0) {
        *ns = 1; /* Linux: a negative timeout is "do not wait" */
        return 0;
    }
    uint64_t s = (uint64_t)tv->tv_sec;
    *ns =
        s > UINT64_MAX / 1000000000ull - 1 ? 0 : s * 1000000000ull + (uint64_t)tv->tv_usec * 1000u;
    return 0;
}

static void put_timeval(void *val, uint64_t ns)
{
    struct timeval *tv = val;
    tv->tv_sec = (time_t)(ns / 1000000000ull);
    tv->tv_usec = (suseconds_t)(ns % 1000000000ull / 1000u);
}

static void set_buf_alloc(struct vsk *s, uint64_t v)
{
    if (v > VSK_BUF_MAX)
        v = VSK_BUF_MAX;
    if (v > s->buf_max)
        s->buf_max = v;
    if (v < s->buf_min)
        s->buf_min = v;
    /* A ring in use keeps its size; Linux resizes, but a peer already sent
     * against the old figure. */
    if (s->rlen || v == s->buf_alloc)
        return;
    ring_put(s->rbuf, s->rcap);
    s->rbuf = NULL;
    s->rcap = 0;
    s->buf_alloc = (uint32_t)v;
    if (s->state == VS_CONNECTED)
        ctl(s, OWE_CREDIT);
}

long vsk_setsockopt(struct vsk *s, int level, int name, const void *val, uint32_t len)
{
    int v = 0;
    long r;

    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_RCVTIMEO_OLD_:
        case SO_RCVTIMEO_NEW_:
            return get_timeval_ns(val, len, &s->rcvtimeo_ns);
        case SO_SNDTIMEO_OLD_:
        case SO_SNDTIMEO_NEW_:
            return get_timeval_ns(val, len, &s->sndtimeo_ns);
        case SO_LINGER: {
            const struct linger *l = val;
            if (len < sizeof(*l))
                return -EINVAL;
            s->opt_linger_on = l->l_onoff;
            s->opt_linger_s = l->l_linger;
            return 0;
        }
        default:
            break;
        }
        if ((r = get_int(val, len, &v)) != 0)
            return r;
        switch (name) {
        case SO_REUSEADDR:
            s->opt_reuseaddr = !!v;
            return 0;
        case SO_REUSEPORT:
            s->opt_reuseport = !!v;
            return 0;
        case SO_KEEPALIVE:
            s->opt_keepalive = !!v;
            return 0;
        case SO_OOBINLINE:
            s->opt_oobinline = !!v;
            return 0;
        case SO_RCVBUF:
        case SO_SNDBUF: {
            /* Linux doubles the value (bookkeeping overhead), minimum 2304. */
            long d = v < 0 ? 0 : (long)v * 2;
            if (d > 0x7fffffffL)
                d = 0x7fffffff;
            if (d < 2304)
                d = 2304;
            *(name == SO_RCVBUF ? &s->opt_rcvbuf : &s->opt_sndbuf) = (int)d;
            return 0;
        }
        case SO_RCVLOWAT:
            s->opt_rcvlowat = v < 1 ? 1 : v;
            return 0;
        case SO_PRIORITY:
            s->opt_priority = v;
            return 0;
        case SO_DEBUG:
        case SO_DONTROUTE:
        case SO_BROADCAST:
        case SO_PASSCRED:
        case SO_TIMESTAMP:
        case SO_SNDLOWAT:
        case SO_BUSY_POLL:
        case SO_MARK:
            return 0; /* accepted, nothing to do */
        default:
            return -ENOPROTOOPT;
        }
    }
    if (level != AF_VSOCK)
        return -ENOPROTOOPT; /* as Linux: vsock has no TCP options */
    switch (name) {
    case SO_VM_SOCKETS_BUFFER_SIZE:
    case SO_VM_SOCKETS_BUFFER_MIN_SIZE:
    case SO_VM_SOCKETS_BUFFER_MAX_SIZE: {
        if (len != sizeof(uint64_t))
            return -EINVAL;
        uint64_t x = *(const uint64_t *)val;
        if (name == SO_VM_SOCKETS_BUFFER_SIZE) {
            set_buf_alloc(s, x);
        } else if (name == SO_VM_SOCKETS_BUFFER_MIN_SIZE) {
            s->buf_min = x;
            if (s->buf_alloc < x)
                set_buf_alloc(s, x);
        } else {
            s->buf_max = x;
            if (s->buf_alloc > x)
                set_buf_alloc(s, x);
        }
        return 0;
    }
    case SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD:
    case SO_VM_SOCKETS_CONNECT_TIMEOUT_NEW: {
        uint64_t ns;
        if ((r = get_timeval_ns(val, len, &ns)) != 0)
            return r;
        if (ns == 0)
            return -ERANGE;
        s->connect_timeout_ns = ns;
        return 0;
    }
    default:
        return -ENOPROTOOPT;
    }
}

long vsk_getsockopt(struct vsk *s, int level, int name, void *val, uint32_t *len)
{
    union {
        int i;
        uint64_t u64;
        struct linger l;
        struct timeval tv;
    } o;
    uint32_t size = sizeof(int);

    sdk_memset(&o, 0, sizeof(o));
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_TYPE:
            o.i = SOCK_STREAM;
            break;
        case SO_DOMAIN:
            o.i = AF_VSOCK;
            break;
        case SO_PROTOCOL:
            o.i = 0;
            break;
        case SO_ERROR:
            vsk_service();
            o.i = s->err;
            s->err = 0;
            break;
        case SO_ACCEPTCONN:
            o.i = s->state == VS_LISTEN;
            break;
        case SO_REUSEADDR:
            o.i = s->opt_reuseaddr;
            break;
        case SO_REUSEPORT:
            o.i = s->opt_reuseport;
            break;
        case SO_KEEPALIVE:
            o.i = s->opt_keepalive;
            break;
        case SO_OOBINLINE:
            o.i = s->opt_oobinline;
            break;
        case SO_RCVBUF:
            o.i = s->opt_rcvbuf;
            break;
        case SO_SNDBUF:
            o.i = s->opt_sndbuf;
            break;
        case SO_RCVLOWAT:
            o.i = s->opt_rcvlowat;
            break;
        case SO_SNDLOWAT:
            o.i = 1;
            break;
        case SO_PRIORITY:
            o.i = s->opt_priority;
            break;
        case SO_LINGER:
            o.l.l_onoff = s->opt_linger_on;
            o.l.l_linger = s->opt_linger_s;
            size = sizeof(o.l);
            break;
        case SO_RCVTIMEO_OLD_:
        case SO_RCVTIMEO_NEW_:
        case SO_SNDTIMEO_OLD_:
        case SO_SNDTIMEO_NEW_:
            put_timeval(&o.tv, name == SO_RCVTIMEO_OLD_ || name == SO_RCVTIMEO_NEW_
                                   ? s->rcvtimeo_ns
                                   : s->sndtimeo_ns);
            size = sizeof(o.tv);
            break;
        default:
            return -ENOPROTOOPT;
        }
    } else if (level == AF_VSOCK) {
        switch (name) {
        case SO_VM_SOCKETS_BUFFER_SIZE:
            o.u64 = s->buf_alloc;
            break;
        case SO_VM_SOCKETS_BUFFER_MIN_SIZE:
            o.u64 = s->buf_min;
            break;
        case SO_VM_SOCKETS_BUFFER_MAX_SIZE:
            o.u64 = s->buf_max;
            break;
        case SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD:
        case SO_VM_SOCKETS_CONNECT_TIMEOUT_NEW:
            put_timeval(&o.tv, s->connect_timeout_ns);
            size = sizeof(o.tv);
            break;
        default:
            return -ENOPROTOOPT;
        }
        if (size == sizeof(int)) {
            size = sizeof(uint64_t);
            if (*len < size)
                return -EINVAL; /* Linux wants the whole u64 */
        }
    } else {
        return -ENOPROTOOPT;
    }
    if (*len > size)
        *len = size;
    sdk_memcpy(val, &o, *len);
    return 0;
}

long vsk_ioctl(struct vsk *s, unsigned long req, void *arg)
{
    switch (req) {
    case SIOCINQ_:
        vsk_service();
        if (s->state != VS_CONNECTED && s->state != VS_CLOSED)
            return -EINVAL;
        *(int *)arg = (int)s->rlen;
        return 0;
    case SIOCOUTQ_:
        vsk_service();
        if (s->state != VS_CONNECTED && s->state != VS_CLOSED)
            return -EINVAL;
        *(int *)arg = (int)(s->tx_cnt - s->peer_fwd_cnt);
        return 0;
    case FIONBIO:
        s->nonblock = *(const int *)arg != 0;
        return 0;
    case IOCTL_VM_SOCKETS_GET_LOCAL_CID:
        *(unsigned *)arg = (unsigned)vsock_dev_cid();
        return 0;
    default:
        return -ENOTTY;
    }
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
