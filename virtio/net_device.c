/* net_device.c: virtio-net over a tap, receive and transmit on the main loop
 * (see net_device.h). */
#include "virtio/net_device.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include "virtio/net_tap.h"

#define RXQ 0u
#define TXQ 1u
#define HDR NET_TAP_VNET_HDR
#define BUF (HDR + NET_FRAME_MAX)
/* Work per turn of the loop, so that one busy guest cannot hold it. */
#define TX_BATCH 256u
#define RX_BATCH 256u
/* rx_direct: at most this many guest buffer segments for one frame (the
 * tap's readv takes up to IOV_MAX, 1024). */
#define RX_IOV_MAX 1024u

struct net {
    struct virtio_mmio t;
    struct net_config cfg;
    const struct guest_mem *mem;
    int tap;
    bool tap_gone;
    uint32_t mtu;
    uint64_t offload_features; /* what TUNSETOFFLOAD was last given */
    bool offload_valid;
    struct rate_limiter rx_rl, tx_rl;
    struct net_stats stats;
    struct net_intercept ic;
    bool has_ic;

    /* The frame read but not yet delivered: header + frame, rx_len bytes. */
    uint8_t *rx_buf;
    size_t rx_len;
    bool rx_pending, rx_paid;
    uint8_t *tx_buf;                 /* an intercepted frame */
    struct iovec rx_iov[RX_IOV_MAX]; /* rx_direct: the receive chains' buffers */
    struct vq_chain first, cur;
    struct {
        uint16_t head;
        uint32_t len;
    } used[VQ_SIZE_MAX];

    uv_loop_t *loop;
    uv_poll_t rx_kick, tx_kick, tap_poll;
    int tap_events; /* what tap_poll watches */
    uv_timer_t rx_timer, tx_timer;
    uv_idle_t tx_more;
    bool rx_waiting, tx_waiting, tx_blocked;
    bool attached;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int net_parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char end;

    if (strlen(s) != 17 ||
        sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &end) != 6)
        return -1;
    for (int i = 0; i < 6; i++) {
        if (s[3 * i + 2] != (i == 5 ? '\0' : ':'))
            return -1;
        mac[i] = (uint8_t)v[i];
    }
    return 0;
}

/* ---- transport ops -------------------------------------------------------- */

static uint64_t net_features(void *dev)
{
    struct net *n = dev;
    uint64_t f = (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |
                 (1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6) |
                 (1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_HOST_TSO6) |
                 (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_MTU) |
                 (1ull << VIRTIO_NET_F_STATUS) | (1ull << VIRTIO_RING_F_EVENT_IDX) |
                 (1ull << VIRTIO_RING_F_INDIRECT_DESC);

    if (n->cfg.has_mac)
        f |= 1ull << VIRTIO_NET_F_MAC;
    return f;
}

/* virtio 1.2 §5.1.4: mac, status, max_virtqueue_pairs, mtu. */
struct net_cfg_space {
    uint8_t mac[6];
    uint16_t status;
    uint16_t max_virtqueue_pairs;
    uint16_t mtu;
} __attribute__((packed));

static void net_config_read(void *dev, uint32_t off, void *data, uint32_t len)
{
    struct net *n = dev;
    struct net_cfg_space c;

    memset(&c, 0, sizeof(c));
    if (n->cfg.has_mac)
        memcpy(c.mac, n->cfg.mac, 6);
    c.status = n->tap_gone ? 0 : VIRTIO_NET_S_LINK_UP;
    c.max_virtqueue_pairs = 1;
    c.mtu = (uint16_t)n->mtu;
    memcpy(data, (uint8_t *)&c + off, len);
}

static void net_config_write(void *dev, uint32_t off, const void *data, uint32_t len)
{
    struct net *n = dev;

    /* The MAC is writable only through VIRTIO_NET_F_CTRL_MAC_ADDR, not
     * offered (virtio 1.2 §5.1.4.2); anything else is read-only. */
    (void)off;
    (void)data;
    (void)len;
    n->stats.cfg_fails++;
}

static void tx_process(struct net *n);
static void rx_process(struct net *n);

static void net_notify(void *dev, struct virtio_mmio *t, unsigned q)
{
    (void)t;
    if (q == RXQ)
        rx_process(dev);
    else
        tx_process(dev);
}

/* vCPU thread, lock held: forget what belongs to the old driver: the frame
 * held for its receive buffers, a transmit refused by the tap (its chain is
 * gone with the queue) and the limiters' waits. The loop handles are left
 * alone (not this thread's): a limiter timer still pending finds the flag
 * already clear and only runs a pass, which consults the limiter again (its
 * buckets are the host's policy and stay as they are: a reset refills
 * nothing); the tap watch is corrected by the next pass (tap_watch). */
static void net_reset(void *dev)
{
    struct net *n = dev;

    n->rx_pending = false;
    n->rx_paid = false;
    n->rx_waiting = false;
    n->tx_waiting = false;
    n->tx_blocked = false;
    n->offload_valid = false;
}

static const struct virtio_dev_ops net_ops = {
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .nqueues = 2,
    .features = net_features,
    .config_size = sizeof(struct net_cfg_space),
    .config_read = net_config_read,
    .config_write = net_config_write,
    .queue_notify = net_notify,
    .reset = net_reset,
};

/* ---- main-loop helpers -------------------------------------------------- */

static bool live(const struct net *n, unsigned q)
{
    return (n->t.status & VIRTIO_CONFIG_S_DRIVER_OK) &&
           !(n->t.status & VIRTIO_CONFIG_S_NEEDS_RESET) && n->t.queues[q].ready &&
           !n->t.queues[q].broken;
}

static void tap_cb(uv_poll_t *p, int status, int events);

/* Watches the tap for what is wanted now: readable while receive buffers
 * may be there and nothing waits, writable while a write was refused. */
static void tap_watch(struct net *n)
{
    int want = 0;

    if (!n->attached || n->tap_gone)
        want = 0;
    else {
        if (live(n, RXQ) && !n->rx_pending && !n->rx_waiting)
            want |= UV_READABLE;
        if (n->tx_blocked)
            want |= UV_WRITABLE;
    }
    if (want == n->tap_events)
        return;
    if (want)
        uv_poll_start(&n->tap_poll, want, tap_cb);
    else
        uv_poll_stop(&n->tap_poll);
    n->tap_events = want;
}

/* The negotiated receive offloads go to the tap before it is read again. */
static void sync_offload(struct net *n)
{
    uint64_t f = n->t.drv_features;
    int rc;

    if (n->offload_valid && n->offload_features == f)
        return;
    rc = net_tap_set_offload(n->tap, f);
    if (rc != 0 && !n->tap_gone) {
        n->stats.activate_fails++;
        fprintf(stderr, "ember: %s: TUNSETOFFLOAD on %s: %s\n", n->t.label, n->cfg.host_dev_name,
                strerror(-rc));
    }
    n->offload_features = f;
    n->offload_valid = true;
}

/* The tap went away (deleted, or the device detached): one log line, the
 * link goes down, and from now on every frame is a counted drop. */
static void tap_lost(struct net *n, const char *op, int err)
{
    if (n->tap_gone)
        return;
    n->tap_gone = true;
    fprintf(stderr, "ember: %s: tap %s: %s: %s; link down, frames dropped\n", n->t.label,
            n->cfg.host_dev_name, op, strerror(err));
    if (n->t.status & VIRTIO_CONFIG_S_DRIVER_OK)
        virtio_mmio_config_changed(&n->t);
}

static bool tap_gone_errno(int e)
{
    return e == EBADFD || e == EIO || e == ENODEV || e == ENXIO || e == EBADF;
}

/* ---- receive (tap -> guest) -------------------------------------------- */

enum rx_result { RX_DONE, RX_NO_BUFFERS, RX_BROKEN, RX_DROP };

/* Takes the next receive chain into c: RX_DONE, RX_NO_BUFFERS or RX_BROKEN. */
static enum rx_result rx_pop(struct net *n, struct vq_chain *c, bool mrg)
{
    struct vq *vq = &n->t.queues[RXQ];
    char why[160];
    enum vq_result r = vq_pop(vq, n->mem, c, why, sizeof(why));

    if (r == VQ_EMPTY) {
        /* Ask for a kick, then look again (see vq_update_avail_event). */
        vq_update_avail_event(vq, n->mem);
        r = vq_pop(vq, n->mem, c, why, sizeof(why));
    }
    if (r == VQ_EMPTY)
        return RX_NO_BUFFERS;
    if (r == VQ_BROKEN) {
        virtio_mmio_fail(&n->t, RXQ, why);
        return RX_BROKEN;
    }
    /* virtio 1.2 §5.1.6.3.1: receive buffers are device-writable, and with
     * merged buffers each holds at least the header. */
    if (c->readable) {
        virtio_mmio_fail(&n->t, RXQ, "device-readable buffer in a receive chain");
        return RX_BROKEN;
    }
    if (c->writable < HDR && mrg) {
        virtio_mmio_fail(&n->t, RXQ, "receive buffer smaller than the virtio-net header");
        return RX_BROKEN;
    }
    return RX_DONE;
}

/* Copies the pending frame into the guest's receive buffers. */
static enum rx_result rx_deliver(struct net *n)
{
    struct vq *vq = &n->t.queues[RXQ];
    bool mrg = virtio_mmio_has(&n->t, VIRTIO_NET_F_MRG_RXBUF);
    uint64_t off = 0, total = n->rx_len;
    uint16_t k = 0;

    while (off < total) {
        struct vq_chain *c = k == 0 ? &n->first : &n->cur;
        enum rx_result r = rx_pop(n, c, mrg);
        if (r == RX_BROKEN)
            return r;
        if (r == RX_NO_BUFFERS) {
            vq->last_avail = (uint16_t)(vq->last_avail - k); /* take them again later */
            return r;
        }
        uint64_t take = total - off < c->writable ? total - off : c->writable;
        if (!mrg && take < total) {
            /* One chain per frame without MRG_RXBUF (§5.1.6.3.2): too small
             * for this one. The buffer stays with us for the next frame. */
            vq->last_avail--;
            n->stats.rx_partial_writes++;
            return RX_DROP;
        }
        vq_chain_copy(c, true, 0, n->rx_buf + off, take);
        n->used[k].head = c->head;
        n->used[k].len = (uint32_t)take;
        k++;
        off += take;
        if (off < total && k == vq->size) {
            vq->last_avail = (uint16_t)(vq->last_avail - k);
            n->stats.rx_partial_writes++;
            return RX_DROP; /* a ring of tiny buffers cannot hold it */
        }
    }
    /* num_buffers (§5.1.6.4): 1 without MRG_RXBUF. */
    uint16_t nb = k;
    vq_chain_copy(&n->first, true, 10, &nb, sizeof(nb));
    for (uint16_t i = 0; i < k; i++)
        vq_fill(vq, n->mem, i, n->used[i].head, n->used[i].len);
    vq_publish(vq, n->mem, k);
    return RX_DONE;
}

/* Checks the tap's header (hdr, HDR bytes, rewritten in place) against what
 * the driver negotiated: a frame queued before the offloads changed may
 * carry what it cannot take. */
static bool rx_header_ok(struct net *n, uint8_t *hdr)
{
    struct virtio_net_hdr_v1 h;

    memcpy(&h, hdr, sizeof(h));
    if (!virtio_mmio_has(&n->t, VIRTIO_NET_F_GUEST_CSUM)) {
        if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
            return false;
        h.flags = 0; /* §5.1.6.4.1: flags zero without GUEST_CSUM */
    }
    switch (h.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
    case VIRTIO_NET_HDR_GSO_NONE:
        break;
    case VIRTIO_NET_HDR_GSO_TCPV4:
        if (!virtio_mmio_has(&n->t, VIRTIO_NET_F_GUEST_TSO4))
            return false;
        break;
    case VIRTIO_NET_HDR_GSO_TCPV6:
        if (!virtio_mmio_has(&n->t, VIRTIO_NET_F_GUEST_TSO6))
            return false;
        break;
    default:
        return false;
    }
    if ((h.gso_type & VIRTIO_NET_HDR_GSO_ECN) && !virtio_mmio_has(&n->t, VIRTIO_NET_F_GUEST_ECN))
        return false;
    h.num_buffers = 1;
    memcpy(hdr, &h, sizeof(h));
    return true;
}

/* Copies n bytes at offset off of iov[0..cnt) out (to_iov false) or in. */
static void iov_copy(const struct iovec *iov, int cnt, size_t off, void *data, size_t n,
                     bool to_iov)
{
    uint8_t *d = data;

    for (int i = 0; i < cnt && n; i++) {
        if (off >= iov[i].iov_len) {
            off -= iov[i].iov_len;
            continue;
        }
        size_t k = iov[i].iov_len - off < n ? iov[i].iov_len - off : n;
        if (to_iov)
            memcpy((uint8_t *)iov[i].iov_base + off, d, k);
        else
            memcpy(d, (uint8_t *)iov[i].iov_base + off, k);
        d += k;
        n -= k;
        off = 0;
    }
}

/* Fetches the next frame into rx_buf: from the interceptor first, then the
 * tap. False when there is none. */
static bool ic_fetch(struct net *n)
{
    if (n->has_ic) {
        size_t len = n->ic.output(n->ic.ctx, n->rx_buf + HDR, NET_FRAME_MAX);
        if (len) {
            memset(n->rx_buf, 0, HDR); /* complete, checksummed, no GSO */
            n->rx_len = HDR + len;
            return true;
        }
    }
    return false;
}

static bool rx_fetch(struct net *n)
{
    if (ic_fetch(n))
        return true;
    if (n->tap_gone)
        return false;
    for (;;) {
        ssize_t r = read(n->tap, n->rx_buf, BUF);
        if (r < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            if (e == EAGAIN)
                return false;
            n->stats.tap_read_fails++;
            if (tap_gone_errno(e))
                tap_lost(n, "read", e);
            return false;
        }
        if ((size_t)r < HDR + ETH_HLEN || !rx_header_ok(n, n->rx_buf)) {
            n->stats.rx_fails++;
            continue;
        }
        n->rx_len = (size_t)r;
        return true;
    }
}

enum rxd_result { RXD_DONE, RXD_EMPTY, RXD_BROKEN, RXD_COPY };

/* With MRG_RXBUF, no receive limiter and enough receive buffers posted for
 * the largest frame: the tap's next frame is read straight into the guest's
 * buffers (one copy, the kernel's, instead of two; a 64 KiB segment costs
 * the main loop one memcpy less). The chains are taken first, the unused
 * ones given back (last_avail), the header checked and num_buffers set in
 * guest memory. The header is read back from guest memory: the guest may
 * have changed it since the tap wrote it, which only garbles its own
 * frame; what is checked is the local copy, and what is written back is
 * that copy. RXD_DONE: one frame delivered (*bytes: its length without
 * the header); RXD_EMPTY: the tap has none (or went away); RXD_BROKEN: the
 * queue broke; RXD_COPY: take the copying path for this frame (too few
 * buffers now, or too many segments). Lock held. */
static enum rxd_result rx_direct(struct net *n, uint64_t *bytes)
{
    struct vq *vq = &n->t.queues[RXQ];
    uint64_t room = 0;
    uint16_t k = 0;
    int niov = 0;

    while (room < BUF) {
        if (k == vq->size) {
            vq->last_avail = (uint16_t)(vq->last_avail - k);
            return RXD_COPY;
        }
        enum rx_result r = rx_pop(n, &n->cur, true);
        if (r == RX_BROKEN) {
            vq->last_avail = (uint16_t)(vq->last_avail - k);
            return RXD_BROKEN;
        }
        if (r == RX_NO_BUFFERS || n->cur.nsegs > RX_IOV_MAX - (unsigned)niov) {
            vq->last_avail = (uint16_t)(vq->last_avail - k - (r == RX_NO_BUFFERS ? 0 : 1));
            return RXD_COPY;
        }
        niov += vq_chain_iov(&n->cur, true, 0, n->cur.writable, n->rx_iov + niov,
                             (int)(RX_IOV_MAX - (unsigned)niov));
        n->used[k].head = n->cur.head;
        /* A chain may repeat guest memory and claim more than 4 GiB: its
         * used length is capped (it never holds more than one frame). */
        n->used[k].len = n->cur.writable > UINT32_MAX ? UINT32_MAX : (uint32_t)n->cur.writable;
        room += n->cur.writable;
        k++;
    }
    for (;;) {
        ssize_t r = readv(n->tap, n->rx_iov, niov);
        if (r < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            vq->last_avail = (uint16_t)(vq->last_avail - k);
            if (e != EAGAIN) {
                n->stats.tap_read_fails++;
                if (tap_gone_errno(e))
                    tap_lost(n, "read", e);
            }
            return RXD_EMPTY;
        }
        uint8_t h[HDR];
        iov_copy(n->rx_iov, niov, 0, h, HDR, false);
        if ((size_t)r < HDR + ETH_HLEN || !rx_header_ok(n, h)) {
            n->stats.rx_fails++;
            continue; /* the same buffers for the next frame */
        }
        /* The buffers it filled, the last one partly (§5.1.6.4). */
        uint64_t left = (uint64_t)r;
        uint16_t nb = 0;
        while (left && nb < k) {
            if (n->used[nb].len > left)
                n->used[nb].len = (uint32_t)left;
            left -= n->used[nb].len;
            nb++;
        }
        memcpy(h + 10, &nb, sizeof(nb)); /* num_buffers */
        iov_copy(n->rx_iov, niov, 0, h, HDR, true);
        vq->last_avail = (uint16_t)(vq->last_avail - (k - nb));
        for (uint16_t i = 0; i < nb; i++)
            vq_fill(vq, n->mem, i, n->used[i].head, n->used[i].len);
        vq_publish(vq, n->mem, nb);
        *bytes = (uint64_t)r - HDR;
        return RXD_DONE;
    }
}

static void rx_timer_cb(uv_timer_t *t)
{
    struct net *n = t->data;

    pthread_mutex_lock(&n->t.lock);
    n->rx_waiting = false;
    n->stats.rx_event_rate_limiter_count++;
    rx_process(n);
    pthread_mutex_unlock(&n->t.lock);
}

/* Moves frames to the guest until the tap is drained, the guest has no more
 * buffers or the limiter says wait. Lock held. */
static void rx_process(struct net *n)
{
    unsigned done = 0;

    if (!n->attached)
        return;
    if (!live(n, RXQ) || n->rx_waiting) {
        tap_watch(n);
        return;
    }
    sync_offload(n);
    bool direct = virtio_mmio_has(&n->t, VIRTIO_NET_F_MRG_RXBUF) && !rate_limiter_active(&n->rx_rl);
    while (done < RX_BATCH) {
        if (!n->rx_pending && ic_fetch(n)) {
            n->rx_pending = true; /* the interceptor's answer: the copying path */
            n->rx_paid = false;
        }
        if (!n->rx_pending && direct && !n->tap_gone) {
            uint64_t bytes = 0;
            enum rxd_result d = rx_direct(n, &bytes);
            if (d == RXD_EMPTY || d == RXD_BROKEN)
                break;
            if (d == RXD_DONE) {
                n->stats.rx_bytes_count += bytes;
                n->stats.rx_packets_count++;
                n->stats.rx_count++;
                done++;
                continue;
            }
        }
        if (!n->rx_pending) {
            if (!rx_fetch(n))
                break;
            n->rx_pending = true;
            n->rx_paid = false;
        }
        uint64_t bytes = n->rx_len - HDR;
        if (!n->rx_paid) {
            if (!rate_limiter_consume(&n->rx_rl, bytes, now_ns())) {
                uint64_t wait = rate_limiter_wait_ns(&n->rx_rl, bytes, now_ns());
                n->stats.rx_rate_limiter_throttled++;
                n->rx_waiting = true;
                uv_timer_start(&n->rx_timer, rx_timer_cb, (wait + 999999) / 1000000, 0);
                break;
            }
            n->rx_paid = true;
        }
        enum rx_result r = rx_deliver(n);
        if (r == RX_NO_BUFFERS) {
            n->stats.no_rx_avail_buffer++;
            break;
        }
        if (r == RX_BROKEN)
            break;
        n->rx_pending = false;
        if (r == RX_DROP) {
            n->stats.rx_fails++;
            continue;
        }
        n->stats.rx_bytes_count += bytes;
        n->stats.rx_packets_count++;
        n->stats.rx_count++;
        done++;
    }
    if (done)
        virtio_mmio_notify_used(&n->t, RXQ);
    tap_watch(n);
}

/* ---- transmit (guest -> tap) ------------------------------------------- */

static void tx_timer_cb(uv_timer_t *t)
{
    struct net *n = t->data;

    pthread_mutex_lock(&n->t.lock);
    n->tx_waiting = false;
    n->stats.tx_rate_limiter_event_count++;
    tx_process(n);
    pthread_mutex_unlock(&n->t.lock);
}

static void tx_more_cb(uv_idle_t *h)
{
    struct net *n = h->data;

    uv_idle_stop(h);
    pthread_mutex_lock(&n->t.lock);
    tx_process(n);
    pthread_mutex_unlock(&n->t.lock);
}

enum tx_result { TX_SENT, TX_DROPPED, TX_AGAIN, TX_STOP };

/* Sends one chain: TX_SENT or TX_DROPPED (returned to the guest), TX_AGAIN
 * (left on the ring: tap full) or TX_STOP (the queue broke). */
static enum tx_result tx_one(struct net *n, struct vq_chain *c)
{
    uint8_t head[64];
    struct iovec iov[VQ_SEGS_MAX];
    uint64_t len;
    size_t hl;

    /* virtio 1.2 §5.1.6.2: header then frame, all device-readable. */
    if (c->writable) {
        virtio_mmio_fail(&n->t, TXQ, "device-writable buffer in a transmit chain");
        return TX_STOP;
    }
    if (c->readable < HDR) {
        virtio_mmio_fail(&n->t, TXQ, "transmit chain shorter than the virtio-net header");
        return TX_STOP;
    }
    len = c->readable - HDR;
    if (len < ETH_HLEN || len > NET_FRAME_MAX) {
        n->stats.tx_malformed_frames++;
        return TX_DROPPED;
    }
    hl = len < sizeof(head) ? (size_t)len : sizeof(head);
    vq_chain_copy(c, false, HDR, head, hl);
    if (n->cfg.has_mac && memcmp(head + 6, n->cfg.mac, 6) != 0)
        n->stats.tx_spoofed_mac_count++;
    if (n->has_ic && n->ic.wants(n->ic.ctx, head, hl)) {
        vq_chain_copy(c, false, HDR, n->tx_buf, len);
        n->ic.input(n->ic.ctx, n->tx_buf, (size_t)len);
        return TX_SENT;
    }
    if (n->tap_gone) {
        n->stats.tap_write_fails++;
        n->stats.tx_fails++;
        return TX_DROPPED;
    }
    int niov = vq_chain_iov(c, false, 0, c->readable, iov, VQ_SEGS_MAX);
    for (;;) {
        ssize_t w = writev(n->tap, iov, niov);
        if (w >= 0)
            break;
        int e = errno;
        if (e == EINTR)
            continue;
        if (e == EAGAIN)
            return TX_AGAIN;
        n->stats.tap_write_fails++;
        n->stats.tx_fails++;
        if (tap_gone_errno(e))
            tap_lost(n, "write", e);
        return TX_DROPPED; /* e.g. EINVAL: a header the tap refused */
    }
    return TX_SENT;
}

/* Sends what the guest queued, at most TX_BATCH frames per turn. Lock held. */
static void tx_process(struct net *n)
{
    struct vq *vq = &n->t.queues[TXQ];
    char why[160];
    unsigned done = 0;
    bool pushed = false;

    if (!n->attached || !live(n, TXQ) || n->tx_waiting || n->tx_blocked)
        return;
    sync_offload(n);
    for (;;) {
        if (done == TX_BATCH) {
            /* More may be queued: come back after the loop's other work. */
            n->stats.tx_remaining_reqs_count++;
            uv_idle_start(&n->tx_more, tx_more_cb);
            break;
        }
        enum vq_result r = vq_pop(vq, n->mem, &n->cur, why, sizeof(why));
        if (r == VQ_EMPTY) {
            vq_update_avail_event(vq, n->mem);
            r = vq_pop(vq, n->mem, &n->cur, why, sizeof(why));
        }
        if (r == VQ_EMPTY)
            break;
        if (r == VQ_BROKEN) {
            virtio_mmio_fail(&n->t, TXQ, why);
            break;
        }
        uint64_t bytes = n->cur.readable > HDR ? n->cur.readable - HDR : 0;
        if (!rate_limiter_consume(&n->tx_rl, bytes, now_ns())) {
            uint64_t wait = rate_limiter_wait_ns(&n->tx_rl, bytes, now_ns());
            vq->last_avail--; /* take it again when the limiter allows */
            n->stats.tx_rate_limiter_throttled++;
            n->tx_waiting = true;
            uv_timer_start(&n->tx_timer, tx_timer_cb, (wait + 999999) / 1000000, 0);
            break;
        }
        enum tx_result res = tx_one(n, &n->cur);
        if (res == TX_STOP)
            break;
        if (res == TX_AGAIN) {
            vq->last_avail--;
            n->tx_blocked = true;
            n->stats.tx_partial_reads++;
            break;
        }
        vq_push(vq, n->mem, n->cur.head, 0);
        pushed = true;
        done++;
        if (res == TX_SENT) {
            n->stats.tx_bytes_count += bytes;
            n->stats.tx_packets_count++;
            n->stats.tx_count++;
        }
    }
    if (pushed)
        virtio_mmio_notify_used(&n->t, TXQ);
    tap_watch(n);
    /* An intercepted request may have produced answers. */
    if (n->has_ic && !n->rx_pending)
        rx_process(n);
}

/* ---- main-loop plumbing -------------------------------------------------- */

static void drain(int fd)
{
    uint64_t v;

    while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
        ;
}

static void rx_kick_cb(uv_poll_t *p, int status, int events)
{
    struct net *n = p->data;

    (void)events;
    if (status < 0) {
        n->stats.event_fails++;
        return;
    }
    drain(n->t.notify_fd[RXQ]);
    pthread_mutex_lock(&n->t.lock);
    n->stats.rx_queue_event_count++;
    rx_process(n);
    pthread_mutex_unlock(&n->t.lock);
}

static void tx_kick_cb(uv_poll_t *p, int status, int events)
{
    struct net *n = p->data;

    (void)events;
    if (status < 0) {
        n->stats.event_fails++;
        return;
    }
    drain(n->t.notify_fd[TXQ]);
    pthread_mutex_lock(&n->t.lock);
    n->stats.tx_queue_event_count++;
    tx_process(n);
    pthread_mutex_unlock(&n->t.lock);
}

static void tap_cb(uv_poll_t *p, int status, int events)
{
    struct net *n = p->data;

    pthread_mutex_lock(&n->t.lock);
    if (status < 0) {
        /* An error on the tap (libuv stopped watching it): a read says
         * which; a deleted tap answers EBADFD. */
        uint8_t probe[1];
        n->stats.event_fails++;
        if (read(n->tap, probe, 0) < 0 && errno != EAGAIN)
            tap_lost(n, "read", errno);
        else
            tap_lost(n, "poll", -status);
        n->tap_events = 0;
        tap_watch(n);
        pthread_mutex_unlock(&n->t.lock);
        return;
    }
    if (events & UV_WRITABLE) {
        n->tx_blocked = false;
        tx_process(n);
    }
    if (events & UV_READABLE) {
        n->stats.rx_tap_event_count++;
        rx_process(n);
    }
    tap_watch(n);
    pthread_mutex_unlock(&n->t.lock);
}

struct net *net_create(const struct net_config *cfg, const struct guest_mem *mem, uint64_t base,
                       uint32_t gsi, char *err, size_t errlen)
{
    struct net *n = calloc(1, sizeof(*n));
    char label[96], why[200];

    if (!n) {
        snprintf(err, errlen, "network interface \"%s\": out of memory", cfg->id);
        return NULL;
    }
    n->cfg = *cfg;
    n->mem = mem;
    n->rx_buf = malloc(BUF);
    n->tx_buf = malloc(BUF);
    n->tap = net_tap_open(cfg->host_dev_name, &n->mtu, why, sizeof(why));
    if (!n->rx_buf || !n->tx_buf || n->tap < 0) {
        snprintf(err, errlen, "network interface \"%s\": %s", cfg->id,
                 n->tap < 0 ? why : "out of memory");
        goto err;
    }
    if (cfg->mtu)
        n->mtu = cfg->mtu;
    snprintf(label, sizeof(label), "virtio-net \"%s\"", cfg->id);
    if (virtio_mmio_init(&n->t, &net_ops, n, label, mem, base, gsi) != 0) {
        snprintf(err, errlen, "network interface \"%s\": %s", cfg->id, strerror(errno));
        goto err;
    }
    rate_limiter_init(&n->rx_rl, &cfg->rx_rate_limiter, now_ns());
    rate_limiter_init(&n->tx_rl, &cfg->tx_rate_limiter, now_ns());
    return n;
err:
    net_destroy(n);
    return NULL;
}

int net_attach(struct net *n, uv_loop_t *loop)
{
    n->loop = loop;
    if (uv_poll_init(loop, &n->rx_kick, n->t.notify_fd[RXQ]) != 0 ||
        uv_poll_init(loop, &n->tx_kick, n->t.notify_fd[TXQ]) != 0 ||
        uv_poll_init(loop, &n->tap_poll, n->tap) != 0 || uv_timer_init(loop, &n->rx_timer) != 0 ||
        uv_timer_init(loop, &n->tx_timer) != 0 || uv_idle_init(loop, &n->tx_more) != 0)
        return -1;
    n->rx_kick.data = n->tx_kick.data = n->tap_poll.data = n;
    n->rx_timer.data = n->tx_timer.data = n->tx_more.data = n;
    if (uv_poll_start(&n->rx_kick, UV_READABLE, rx_kick_cb) != 0 ||
        uv_poll_start(&n->tx_kick, UV_READABLE, tx_kick_cb) != 0)
        return -1;
    n->attached = true;
    return 0;
}

void net_destroy(struct net *n)
{
    if (!n)
        return;
    if (n->tap >= 0)
        close(n->tap);
    if (n->t.ops)
        virtio_mmio_destroy(&n->t);
    free(n->rx_buf);
    free(n->tx_buf);
    free(n);
}

struct virtio_mmio *net_transport(struct net *n)
{
    return &n->t;
}

const struct net_config *net_get_config(const struct net *n)
{
    return &n->cfg;
}

void net_get_stats(struct net *n, struct net_stats *out)
{
    pthread_mutex_lock(&n->t.lock);
    *out = n->stats;
    pthread_mutex_unlock(&n->t.lock);
}

void net_update_limiters(struct net *n, const struct rate_limiter_config *rx,
                         const struct rate_limiter_config *tx)
{
    pthread_mutex_lock(&n->t.lock);
    if (rx) {
        n->cfg.rx_rate_limiter = *rx;
        rate_limiter_init(&n->rx_rl, rx, now_ns());
        if (n->attached)
            uv_timer_stop(&n->rx_timer);
        n->rx_waiting = false;
        rx_process(n);
    }
    if (tx) {
        n->cfg.tx_rate_limiter = *tx;
        rate_limiter_init(&n->tx_rl, tx, now_ns());
        if (n->attached)
            uv_timer_stop(&n->tx_timer);
        n->tx_waiting = false;
        tx_process(n);
    }
    pthread_mutex_unlock(&n->t.lock);
}

void net_set_intercept(struct net *n, const struct net_intercept *ic)
{
    n->ic = *ic;
    n->has_ic = true;
}

void net_intercept_ready(struct net *n)
{
    pthread_mutex_lock(&n->t.lock);
    rx_process(n);
    pthread_mutex_unlock(&n->t.lock);
}
