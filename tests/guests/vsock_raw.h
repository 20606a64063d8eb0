/* vsock_raw.h: just enough of a virtio-vsock driver, over raw MMIO and
 * polling (no interrupts), for the test guests vsock_echo_raw.c and
 * vsock_hostile.c. Not the SDK's driver: these guests exist to test the
 * host side before (and independently of) the SDK's AF_VSOCK sockets.
 *
 * Every queue has VR_QSZ descriptors; descriptor i of RX and TX always
 * points at buffer i, so a used id is a buffer index. */
#ifndef VSOCK_RAW_H
#define VSOCK_RAW_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <ember/guest.h>

#define VR_REG_MAGIC            0x000
#define VR_REG_VERSION          0x004
#define VR_REG_DEVICE_ID        0x008
#define VR_REG_DRV_FEATURES     0x020
#define VR_REG_DRV_FEATURES_SEL 0x024
#define VR_REG_QUEUE_SEL        0x030
#define VR_REG_QUEUE_NUM        0x038
#define VR_REG_QUEUE_READY      0x044
#define VR_REG_QUEUE_NOTIFY     0x050
#define VR_REG_STATUS           0x070
#define VR_REG_DESC_LO          0x080
#define VR_REG_DESC_HI          0x084
#define VR_REG_AVAIL_LO         0x090
#define VR_REG_AVAIL_HI         0x094
#define VR_REG_USED_LO          0x0a0
#define VR_REG_USED_HI          0x0a4
#define VR_REG_CONFIG           0x100
#define VR_S_ACK                1u
#define VR_S_DRIVER             2u
#define VR_S_DRIVER_OK          4u
#define VR_S_FEATURES_OK        8u
#define VR_S_NEEDS_RESET        64u
#define VR_F_NEXT               1u
#define VR_F_WRITE              2u

#define VR_QSZ     32u
#define VR_PAYLOAD 16384u
#define VR_HDR     44u
#define VR_BUF     (VR_HDR + VR_PAYLOAD)

/* virtio 1.2 §5.10.6 */
#define VR_OP_REQUEST        1
#define VR_OP_RESPONSE       2
#define VR_OP_RST            3
#define VR_OP_SHUTDOWN       4
#define VR_OP_RW             5
#define VR_OP_CREDIT_UPDATE  6
#define VR_OP_CREDIT_REQUEST 7
#define VR_SHUT_RCV          1u
#define VR_SHUT_SEND         2u

struct vr_hdr {
    uint64_t src_cid, dst_cid;
    uint32_t src_port, dst_port, len;
    uint16_t type, op;
    uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

struct vr_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

struct vr_ring {
    struct vr_desc desc[VR_QSZ] __attribute__((aligned(4096)));
    uint16_t avail[3 + VR_QSZ] __attribute__((aligned(4096)));
    uint8_t used[6 + 8 * VR_QSZ] __attribute__((aligned(4096)));
    uint16_t used_seen;
};

struct vr {
    volatile uint32_t *regs;
    uint64_t cid;
    struct vr_ring q[3];
    uint8_t rx[VR_QSZ][VR_BUF] __attribute__((aligned(64)));
    uint8_t tx[VR_QSZ][VR_BUF] __attribute__((aligned(64)));
    uint8_t ev[VR_QSZ][8];
    uint32_t tx_free[VR_QSZ];
    uint32_t ntx_free;
};

static inline uint32_t vr_rd(struct vr *v, unsigned off)
{
    return v->regs[off / 4];
}

static inline void vr_wr(struct vr *v, unsigned off, uint32_t val)
{
    v->regs[off / 4] = val;
}

static inline uint16_t vr_used_idx(struct vr_ring *r)
{
    return __atomic_load_n((uint16_t *)(r->used + 2), __ATOMIC_ACQUIRE);
}

/* Offers descriptor head on queue q (without notifying). */
static inline void vr_offer(struct vr *v, unsigned q, uint16_t head)
{
    struct vr_ring *r = &v->q[q];
    uint16_t idx = r->avail[1];

    r->avail[2 + idx % VR_QSZ] = head;
    __atomic_store_n(&r->avail[1], (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

static inline void vr_notify(struct vr *v, unsigned q)
{
    vr_wr(v, VR_REG_QUEUE_NOTIFY, q);
}

static inline int vr_find(struct vr *v)
{
    const struct ember_boot_info *bi = ember_boot_info();

    for (uint32_t i = 0; i < bi->ndevices; i++) {
        volatile uint32_t *regs = (volatile uint32_t *)(uintptr_t)bi->devices[i].mmio_base;
        if (regs[VR_REG_MAGIC / 4] == 0x74726976 && regs[VR_REG_VERSION / 4] == 2 &&
            regs[VR_REG_DEVICE_ID / 4] == 19) {
            v->regs = regs;
            return 0;
        }
    }
    return -1;
}

/* Resets the device and brings it up with VERSION_1 only; rx_len is the size
 * of each posted RX buffer (0: post none). driver_ok 0 leaves the device in
 * FEATURES_OK, queues live but DRIVER_OK never said. */
static inline void vr_setup_status(struct vr *v, uint32_t rx_len, int driver_ok)
{
    vr_wr(v, VR_REG_STATUS, 0);
    memset(v->q, 0, sizeof(v->q));
    vr_wr(v, VR_REG_STATUS, VR_S_ACK | VR_S_DRIVER);
    vr_wr(v, VR_REG_DRV_FEATURES_SEL, 1);
    vr_wr(v, VR_REG_DRV_FEATURES, 1); /* VIRTIO_F_VERSION_1 */
    vr_wr(v, VR_REG_DRV_FEATURES_SEL, 0);
    vr_wr(v, VR_REG_DRV_FEATURES, 0);
    vr_wr(v, VR_REG_STATUS, VR_S_ACK | VR_S_DRIVER | VR_S_FEATURES_OK);
    for (unsigned q = 0; q < 3; q++) {
        uint64_t d = (uintptr_t)v->q[q].desc, a = (uintptr_t)v->q[q].avail,
                 u = (uintptr_t)v->q[q].used;
        vr_wr(v, VR_REG_QUEUE_SEL, q);
        vr_wr(v, VR_REG_QUEUE_NUM, VR_QSZ);
        vr_wr(v, VR_REG_DESC_LO, (uint32_t)d);
        vr_wr(v, VR_REG_DESC_HI, (uint32_t)(d >> 32));
        vr_wr(v, VR_REG_AVAIL_LO, (uint32_t)a);
        vr_wr(v, VR_REG_AVAIL_HI, (uint32_t)(a >> 32));
        vr_wr(v, VR_REG_USED_LO, (uint32_t)u);
        vr_wr(v, VR_REG_USED_HI, (uint32_t)(u >> 32));
        vr_wr(v, VR_REG_QUEUE_READY, 1);
    }
    if (driver_ok)
        vr_wr(v, VR_REG_STATUS, VR_S_ACK | VR_S_DRIVER | VR_S_FEATURES_OK | VR_S_DRIVER_OK);
    v->cid = vr_rd(v, VR_REG_CONFIG) | ((uint64_t)vr_rd(v, VR_REG_CONFIG + 4) << 32);
    v->ntx_free = VR_QSZ;
    for (uint32_t i = 0; i < VR_QSZ; i++) {
        v->tx_free[i] = i;
        v->q[1].desc[i] = (struct vr_desc){(uintptr_t)v->tx[i], 0, 0, 0};
        v->q[2].desc[i] = (struct vr_desc){(uintptr_t)v->ev[i], 8, VR_F_WRITE, 0};
        vr_offer(v, 2, (uint16_t)i);
    }
    if (rx_len) {
        for (uint32_t i = 0; i < VR_QSZ; i++) {
            v->q[0].desc[i] = (struct vr_desc){(uintptr_t)v->rx[i], rx_len, VR_F_WRITE, 0};
            vr_offer(v, 0, (uint16_t)i);
        }
        vr_notify(v, 0);
    }
}

static inline void vr_setup(struct vr *v, uint32_t rx_len)
{
    vr_setup_status(v, rx_len, 1);
}

static inline int vr_needs_reset(struct vr *v)
{
    return (vr_rd(v, VR_REG_STATUS) & VR_S_NEEDS_RESET) != 0;
}

/* Takes back TX buffers the device has consumed. */
static inline void vr_tx_reclaim(struct vr *v)
{
    struct vr_ring *r = &v->q[1];

    while (r->used_seen != vr_used_idx(r)) {
        uint32_t id;
        memcpy(&id, r->used + 4 + 8 * (r->used_seen % VR_QSZ), 4);
        if (id < VR_QSZ)
            v->tx_free[v->ntx_free++] = id;
        r->used_seen++;
    }
}

/* A free TX buffer to fill (waits up to ~2 s; NULL if none came or the
 * device needs a reset). */
static inline uint8_t *vr_tx_begin(struct vr *v, uint32_t *slot)
{
    uint64_t start = ember_monotonic_ns(), check = start + 1000000ull;

    for (;;) {
        vr_tx_reclaim(v);
        if (v->ntx_free)
            break;
        uint64_t now = ember_monotonic_ns();
        if (now > start + 2000000000ull)
            return NULL;
        if (now > check) { /* a register read is a VM exit: once a millisecond */
            check = now + 1000000ull;
            if (vr_needs_reset(v))
                return NULL;
        }
    }
    *slot = v->tx_free[--v->ntx_free];
    return v->tx[*slot];
}

/* Offers the filled buffer (total bytes: header and payload) and notifies. */
static inline void vr_tx_commit(struct vr *v, uint32_t slot, uint32_t total)
{
    v->q[1].desc[slot].len = total;
    vr_offer(v, 1, (uint16_t)slot);
    vr_notify(v, 1);
}

/* Sends total bytes of pkt as one TX buffer (may be malformed on purpose). */
static inline int vr_tx_raw(struct vr *v, const void *pkt, uint32_t total)
{
    uint32_t slot;
    uint8_t *buf = vr_tx_begin(v, &slot);

    if (!buf)
        return -1;
    if (total > VR_BUF)
        total = VR_BUF;
    memcpy(buf, pkt, total);
    vr_tx_commit(v, slot, total);
    return 0;
}

/* Sends header h and h->len bytes of payload (at most VR_PAYLOAD). */
static inline int vr_send(struct vr *v, const struct vr_hdr *h, const void *payload)
{
    uint32_t slot, n = h->len <= VR_PAYLOAD ? h->len : 0;
    uint8_t *buf = vr_tx_begin(v, &slot);

    if (!buf)
        return -1;
    memcpy(buf, h, VR_HDR);
    if (n && payload)
        memcpy(buf + VR_HDR, payload, n);
    vr_tx_commit(v, slot, VR_HDR + n);
    return 0;
}

/* Returns the next received packet (NULL if none yet) and its buffer index;
 * hand the index back with vr_rx_done(). */
static inline struct vr_hdr *vr_rx_next(struct vr *v, uint32_t *id, uint32_t *len)
{
    struct vr_ring *r = &v->q[0];

    if (r->used_seen == vr_used_idx(r))
        return NULL;
    memcpy(id, r->used + 4 + 8 * (r->used_seen % VR_QSZ), 4);
    memcpy(len, r->used + 8 + 8 * (r->used_seen % VR_QSZ), 4);
    r->used_seen++;
    if (*id >= VR_QSZ)
        return NULL;
    return (struct vr_hdr *)v->rx[*id];
}

static inline void vr_rx_done(struct vr *v, uint32_t id)
{
    vr_offer(v, 0, (uint16_t)id);
}

/* Waits (bounded) for the next received packet. */
static inline struct vr_hdr *vr_rx_wait(struct vr *v, uint32_t *id, uint32_t *len,
                                        uint64_t timeout_ns)
{
    uint64_t deadline = ember_monotonic_ns() + timeout_ns;
    struct vr_hdr *h;

    while (!(h = vr_rx_next(v, id, len))) {
        if (ember_monotonic_ns() > deadline || vr_needs_reset(v))
            return NULL;
    }
    return h;
}

static inline void vr_hdr_init(struct vr *v, struct vr_hdr *h, uint32_t src_port, uint32_t dst_port,
                               uint16_t op, uint32_t buf_alloc, uint32_t fwd_cnt)
{
    memset(h, 0, sizeof(*h));
    h->src_cid = v->cid;
    h->dst_cid = 2;
    h->src_port = src_port;
    h->dst_port = dst_port;
    h->type = 1;
    h->op = op;
    h->buf_alloc = buf_alloc;
    h->fwd_cnt = fwd_cnt;
}

#endif
