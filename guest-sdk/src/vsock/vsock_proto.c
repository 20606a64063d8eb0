/* vsock_proto.c: the protocol side of the SDK's AF_VSOCK sockets
 * (vsock_sock_priv.h): socket memory and receive rings, the port and
 * connection tables, packets to and from the virtio-vsock driver, credit and
 * timers, on top of the virtio-vsock driver (vsock_dev.c). What follows is
 * the design of all three files.
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
#include "vsock/vsock_sock_priv.h"

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

struct vsk *vsk_sock_alloc(void)
{
    /* The first two sockets (a function's listener and its first
     * connection) live in the write-hot data page (ember.ld, .data.warm),
     * not in a slab page of their own. */
    static struct vsk first[2];
    static bool first_given;
    if (!free_socks && !first_given) {
        first_given = true;
        first[1].hnext = NULL;
        first[0].hnext = &first[1];
        free_socks = &first[0];
    }
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

void vsk_ring_put(uint8_t *p, uint32_t cap)
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

/* Puts a VSK_RING_MIN ring in the cache if it has none (a failure leaves
 * the mapping to the first data, as before). */
void vsk_ring_reserve(void)
{
    for (unsigned i = 0; i < nring_cache; i++)
        if (ring_cache[i].cap == VSK_RING_MIN)
            return;
    if (nring_cache < VSK_RING_CACHE) {
        uint8_t *p = pages(VSK_RING_MIN);
        if (p)
            vsk_ring_put(p, VSK_RING_MIN);
    }
}

/* ---- tables ----------------------------------------------------------------- */

static unsigned bucket(uint32_t local, uint32_t peer)
{
    return (local * 2654435761u ^ peer * 40503u) % VSK_HASH;
}

void vsk_hash_add(struct vsk *s)
{
    unsigned b = bucket(s->local_port, s->peer_port);
    s->hnext = hash[b];
    hash[b] = s;
    s->hashed = true;
}

void vsk_hash_del(struct vsk *s)
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

struct vsk *vsk_lookup(uint32_t local, uint64_t peer_cid, uint32_t peer)
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

bool vsk_port_taken(uint32_t port)
{
    for (struct vsk *s = all_head.all_next; s != &all_head; s = s->all_next)
        if (s->owns_port && s->local_port == port)
            return true;
    return false;
}

uint32_t vsk_ephemeral_port(void)
{
    for (uint32_t tries = 0; tries < 100000; tries++) {
        uint32_t p = next_ephemeral++;
        if (next_ephemeral == VMADDR_PORT_ANY)
            next_ephemeral = LAST_RESERVED_PORT + 1;
        if (!vsk_port_taken(p))
            return p;
    }
    return VMADDR_PORT_ANY;
}

void vsk_set_deadline(struct vsk *s, uint64_t t)
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

void vsk_sock_free(struct vsk *s)
{
    vsk_hash_del(s);
    pend_del(s);
    vsk_set_deadline(s, NO_DEADLINE);
    vsk_ring_put(s->rbuf, s->rcap);
    s->all_prev->all_next = s->all_next;
    s->all_next->all_prev = s->all_prev;
    s->hnext = free_socks;
    free_socks = s;
}

/* ---- packets ---------------------------------------------------------------- */

void vsk_copy_from_iov(void *dst, void *arg, uint32_t n)
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

void vsk_hdr_for(struct vsk *s, struct vsock_hdr *h, uint16_t op, uint32_t flags, uint32_t len)
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

int vsk_send_ctl(struct vsk *s, uint16_t op, uint32_t flags)
{
    struct vsock_hdr h;

    vsk_hdr_for(s, &h, op, flags, 0);
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
void vsk_ctl(struct vsk *s, unsigned what)
{
    uint16_t op = what == OWE_RESPONSE ? VSOCK_OP_RESPONSE
                  : what == OWE_CREDIT ? VSOCK_OP_CREDIT_UPDATE
                  : what == OWE_RST    ? VSOCK_OP_RST
                                       : VSOCK_OP_SHUTDOWN;
    if (s->owed || vsk_send_ctl(s, op, what == OWE_SHUTDOWN ? s->shut_sent : 0) != 0)
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
            if (vsk_send_ctl(s, op, bit == OWE_SHUTDOWN ? s->shut_sent : 0) != 0)
                return;
            s->owed &= (uint8_t)~bit;
        }
        pend_head = s->pend_next;
        s->in_pend = false;
        if (s->state == VS_ZOMBIE && !s->hashed)
            vsk_sock_free(s); /* its final RST went out */
    }
}

/* The connection is over for the peer: no packet will come for it any
 * more. Data already received stays readable. */
static void conn_done(struct vsk *s, int err)
{
    vsk_hash_del(s);
    vsk_set_deadline(s, NO_DEADLINE);
    s->peer_shut = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
    if (err && !s->err)
        s->err = err;
    if (s->state == VS_ZOMBIE) {
        if (!s->in_pend)
            vsk_sock_free(s);
        return;
    }
    s->state = VS_CLOSED;
}

/* Ends the connection with an RST to the peer. */
void vsk_conn_reset(struct vsk *s, int err)
{
    if (s->hashed)
        vsk_ctl(s, OWE_RST);
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
    vsk_ring_put(s->rbuf, s->rcap);
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
        vsk_conn_reset(s, EPROTO); /* beyond the credit we gave */
        return;
    }
    if (!ring_room(s, len)) {
        vsk_conn_reset(s, ENOMEM);
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

    if (!l || l->aq_len > l->backlog || !(c = vsk_sock_alloc())) {
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
    vsk_hash_add(c);
    if (l->aq_tail)
        l->aq_tail->qnext = c;
    else
        l->aq_head = c;
    l->aq_tail = c;
    l->aq_len++;
    vsk_ctl(c, OWE_RESPONSE);
}

void vsock_sock_rx(const struct vsock_hdr *h, const uint8_t *payload)
{
    if (h->type != VSOCK_TYPE_STREAM || h->dst_cid != vsock_dev_cid()) {
        if (h->op != VSOCK_OP_RST)
            rst_reply(h);
        return;
    }
    struct vsk *s = vsk_lookup(h->dst_port, h->src_cid, h->src_port);
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
            vsk_set_deadline(s, NO_DEADLINE);
        } else if (h->op == VSOCK_OP_RST) {
            vsk_hash_del(s);
            vsk_set_deadline(s, NO_DEADLINE);
            s->state = VS_INIT;
            s->err = ECONNRESET;
        } else {
            vsk_ctl(s, OWE_RST);
            vsk_hash_del(s);
            vsk_set_deadline(s, NO_DEADLINE);
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
        vsk_ctl(s, OWE_CREDIT);
        break;
    case VSOCK_OP_SHUTDOWN:
        s->peer_shut |= (uint8_t)(h->flags & (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND));
        /* Both ways shut and nothing left to read: done (Linux resets). */
        if (s->peer_shut == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND) &&
            (s->rlen == 0 || s->state == VS_ZOMBIE))
            vsk_conn_reset(s, 0);
        break;
    case VSOCK_OP_RST:
        conn_done(s, 0);
        break;
    default: /* REQUEST or RESPONSE on a live connection */
        vsk_conn_reset(s, EPROTO);
        break;
    }
}

void vsock_sock_transport_reset(void)
{
    for (struct vsk *s = all_head.all_next, *n; s != &all_head; s = n) {
        n = s->all_next;
        if (s->state == VS_CONNECTING) {
            vsk_hash_del(s);
            vsk_set_deadline(s, NO_DEADLINE);
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
            vsk_ctl(s, OWE_RST);
            vsk_hash_del(s);
            vsk_set_deadline(s, NO_DEADLINE);
            s->state = VS_INIT;
            s->err = ETIMEDOUT;
        } else if (s->state == VS_ZOMBIE) {
            vsk_conn_reset(s, 0);
        } else {
            vsk_set_deadline(s, NO_DEADLINE);
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
