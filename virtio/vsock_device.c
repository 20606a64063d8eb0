/* vsock_device.c: virtio-vsock bridged to host Unix sockets, Firecracker's
 * hybrid model (see vsock_device.h; packet format and rules: virtio 1.2
 * §5.10.6). This file is the device: its queues, the transport callbacks,
 * the main-loop plumbing, creation and teardown; vsock_priv.h lists the
 * other three files.
 *
 * Everything here runs on the main loop with the transport lock held, except
 * the transport callbacks (config read, reset) that arrive on the vCPU thread:
 * reset only raises a flag and wakes the loop, which then drops every
 * connection. A connection lives until its uv handles have closed; `dead`
 * marks one that is on its way out, so a pointer taken earlier in the same
 * callback stays safe to look at.
 *
 * Memory a guest can make the host hold: guest data the host sockets have
 * not taken yet, at most cfg.buffer_bytes over all connections (the credit
 * the device gives, see vsock_conn.c), a bounded ring of RSTs owed to the
 * guest, and at most max_conns connections. Host data is never buffered: it
 * is read straight into the guest's RX buffers.
 */
#include "virtio/vsock_device.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>

#include "common/errmsg.h"
#include "virtio/vsock_priv.h"

void vsock_queue_broken(struct vsock *v, unsigned q, const char *why)
{
    virtio_mmio_fail(&v->t, q, why);
    /* No packet can reach the guest any more: hang up on every host peer
     * rather than leave it waiting for a driver reset. */
    vsock_kill_all(v);
}

/* The RX chain to fill next, or NULL when the guest has given none (then
 * rx_starved is set until the guest notifies RX). */
struct vq_chain *vsock_rx_get(struct vsock *v)
{
    struct vq *vq = &v->t.queues[Q_RX];
    char why[160];
    enum vq_result r;

    if (v->rx_held && v->rx.epoch == vq->epoch)
        return &v->rx;
    v->rx_held = false; /* taken before the queue stopped: forgotten */
    if (!vq_usable(vq)) {
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
        vsock_queue_broken(v, Q_RX, why);
        return NULL;
    }
    /* RX buffers are device-writable only and hold a header and some data
     * (virtio 1.2 §5.10.6.1); a header-only buffer could never carry data. */
    if (v->rx.readable || v->rx.writable <= HDR) {
        snprintf(why, sizeof(why), "RX buffer of %lu writable bytes%s (at least %u needed)",
                 (unsigned long)v->rx.writable, v->rx.readable ? " and readable ones" : "",
                 HDR + 1);
        vsock_queue_broken(v, Q_RX, why);
        return NULL;
    }
    v->rx_held = true;
    return &v->rx;
}

/* Completes the held RX chain with header h and len payload bytes already in
 * place after it. */
void vsock_rx_put(struct vsock *v, const struct virtio_vsock_hdr *h, uint32_t len)
{
    vq_chain_copy(&v->rx, true, 0, (void *)h, HDR);
    vq_push_chain(&v->t.queues[Q_RX], v->mem, &v->rx, HDR + len);
    v->rx_held = false;
    v->rx_pushed = true;
    v->stats.rx_packets++;
    v->stats.rx_bytes += len;
}

/* End of every main-loop callback: flush what is owed, raise interrupts. */
void vsock_finish(struct vsock *v)
{
    vsock_rx_flush(v);
    if (v->rx_pushed) {
        v->rx_pushed = false;
        virtio_mmio_notify_used(&v->t, Q_RX);
    }
    if (v->tx_pushed) {
        v->tx_pushed = false;
        virtio_mmio_notify_used(&v->t, Q_TX);
    }
}

void vsock_apply_reset(struct vsock *v)
{
    if (!v->reset_pending)
        return;
    v->reset_pending = false;
    vsock_kill_all(v);
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
            vsock_queue_broken(v, Q_TX, why);
            return;
        }
        if (!vsock_tx_packet(v, &v->tx))
            return;
        vq_push_chain(vq, v->mem, &v->tx, 0);
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
    vsock_rx_flush(v);
    if (was && !v->rx_starved) {
        struct conn *c, *next;
        for (c = TAILQ_FIRST(&v->conns); c; c = next) {
            next = TAILQ_NEXT(c, all);
            vsock_conn_update_poll(c);
        }
    }
}

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
    vsock_apply_reset(v);
    if (q == Q_TX)
        process_tx(v);
    else if (q == Q_RX)
        rx_refilled(v);
    vsock_finish(v);
}

void vsock_transport_reset(struct vsock *v)
{
    struct vq *vq = &v->t.queues[Q_EVENT];
    struct virtio_vsock_event ev = {.id = VIRTIO_VSOCK_EVENT_TRANSPORT_RESET};
    char why[160];

    pthread_mutex_lock(&v->t.lock);
    vsock_kill_all(v);
    if (vq->ready && !vq->broken) {
        enum vq_result r = vq_pop(vq, v->mem, &v->rx, why, sizeof(why));
        if (r == VQ_BROKEN) {
            vsock_queue_broken(v, Q_EVENT, why);
        } else if (r == VQ_CHAIN) {
            /* Event buffers are device-writable (virtio 1.2 §5.10.6.7). */
            uint32_t n = v->rx.writable >= sizeof(ev) && !v->rx.readable ? sizeof(ev) : 0;
            if (n)
                vq_chain_copy(&v->rx, true, 0, &ev, sizeof(ev));
            vq_push(vq, v->mem, v->rx.head, n);
            virtio_mmio_notify_used(&v->t, Q_EVENT);
        }
        /* No event buffer: the driver gave none, so it has no connections
         * to drop either. */
    }
    pthread_mutex_unlock(&v->t.lock);
}

/* vCPU thread, lock held: the loop drops the connections (it owns them). */
static void vsock_reset(void *dev)
{
    struct vsock *v = dev;

    v->reset_pending = true;
    if (v->attached)
        uv_async_send(&v->wake);
    else
        vsock_apply_reset(v);
}

/* vCPU thread, lock held: queue q stopped (mmio.h). The RX chain held from
 * it is forgotten (its ring may be gone: never pushed, never written). If
 * the transport broke the queue, no packet can flow until the driver
 * resets the device: the loop hangs up on every host peer, as a reset
 * would. */
static void vsock_queue_stop(void *dev, unsigned q)
{
    struct vsock *v = dev;

    if (q == Q_RX)
        v->rx_held = false;
    if (v->t.queues[q].broken)
        vsock_reset(v);
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
    .queue_stop = vsock_queue_stop,
};

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
    if (q != Q_EVENT) /* event buffers wait for a TRANSPORT_RESET (after a restore) */
        vsock_notify(v, &v->t, q);
    pthread_mutex_unlock(&v->t.lock);
}

static void wake_cb(uv_async_t *a)
{
    struct vsock *v = a->data;

    pthread_mutex_lock(&v->t.lock);
    vsock_apply_reset(v);
    pthread_mutex_unlock(&v->t.lock);
}

struct vsock *vsock_create(const struct vsock_config *cfg, const struct guest_mem *mem,
                           uint64_t base, uint32_t gsi, char *err, size_t errlen)
{
    struct vsock *v = calloc(1, sizeof(*v));

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
    if (!v->cfg.buffer_bytes)
        v->cfg.buffer_bytes = VSOCK_BUFFER_BYTES_DEFAULT;
    if (v->cfg.buffer_bytes < VSOCK_BUFFER_BYTES_MIN ||
        v->cfg.buffer_bytes > VSOCK_BUFFER_BYTES_MAX) {
        errmsg(-1, err, errlen, "vsock: buffer of %lu bytes out of range (%u to %llu)",
               (unsigned long)v->cfg.buffer_bytes, VSOCK_BUFFER_BYTES_MIN,
               (unsigned long long)VSOCK_BUFFER_BYTES_MAX);
        free(v->cfg.uds_path);
        free(v);
        return NULL;
    }
    v->mem = mem;
    v->next_port = LOCAL_PORT0;
    TAILQ_INIT(&v->conns);
    TAILQ_INIT(&v->pend);
    TAILQ_INIT(&v->starved);
    for (unsigned b = 0; b < NBUCKETS; b++)
        LIST_INIT(&v->hash[b]);
    /* Room for an RST per connection and then some: legitimate churn never
     * drops one; a flood of bad packets does, and is counted. The ring is
     * allocated by the first RST (vsock_rst_push): an idle VM never owes
     * one, and 8 KiB zeroed here would stay private in each of them. */
    v->rst_cap = v->cfg.max_conns + 64;
    if (!v->cfg.uds_path) {
        errmsg(-1, err, errlen, "vsock: out of memory");
        goto err;
    }
    if (virtio_mmio_init(&v->t, &vsock_ops, v, "virtio-vsock", mem, base, gsi) != 0) {
        errmsg(-1, err, errlen, "vsock: %s", strerror(errno));
        goto err;
    }
    if (vsock_bridge_listen(v, err, errlen) != 0)
        goto err;
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
    return uv_poll_start(&v->listen_poll, UV_READABLE, vsock_bridge_accept_cb) != 0 ? -1 : 0;
}

void vsock_destroy(struct vsock *v)
{
    if (!v)
        return;
    /* The loop's handles are closed by now (see vsock_device.h): free directly. */
    v->attached = false;
    struct conn *c;
    while ((c = TAILQ_FIRST(&v->conns))) {
        TAILQ_REMOVE(&v->conns, c, all);
        close(c->fd);
        free(c->buf);
        free(c);
    }
    vsock_bridge_close(v);
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
