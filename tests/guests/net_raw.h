/* net_raw.h: just enough of a virtio-net driver (virtio 1.2 §5.1), over raw
 * MMIO and polling, for the test guests net_echo_raw.c and net_hostile.c.
 * Not the SDK's driver: these guests test the host's device on their own.
 *
 * Receive queue 0 and transmit queue 1 have NR_QSZ descriptors each;
 * descriptor i always points at buffer i, so a used id is a buffer index.
 * Every frame starts with the 12-byte struct virtio_net_hdr_v1. */
#ifndef NET_RAW_H
#define NET_RAW_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <ember/guest.h>

#define NR_REG_MAGIC            0x000
#define NR_REG_VERSION          0x004
#define NR_REG_DEVICE_ID        0x008
#define NR_REG_DEV_FEATURES     0x010
#define NR_REG_DEV_FEATURES_SEL 0x014
#define NR_REG_DRV_FEATURES     0x020
#define NR_REG_DRV_FEATURES_SEL 0x024
#define NR_REG_QUEUE_SEL        0x030
#define NR_REG_QUEUE_NUM        0x038
#define NR_REG_QUEUE_READY      0x044
#define NR_REG_QUEUE_NOTIFY     0x050
#define NR_REG_STATUS           0x070
#define NR_REG_DESC_LO          0x080
#define NR_REG_DESC_HI          0x084
#define NR_REG_AVAIL_LO         0x090
#define NR_REG_AVAIL_HI         0x094
#define NR_REG_USED_LO          0x0a0
#define NR_REG_USED_HI          0x0a4
#define NR_REG_CONFIG           0x100
#define NR_S_ACK                1u
#define NR_S_DRIVER             2u
#define NR_S_DRIVER_OK          4u
#define NR_S_FEATURES_OK        8u
#define NR_S_NEEDS_RESET        64u
#define NR_F_NEXT               1u
#define NR_F_WRITE              2u

/* virtio 1.2 §5.1.3 */
#define NR_FEAT_CSUM       (1ull << 0)
#define NR_FEAT_GUEST_CSUM (1ull << 1)
#define NR_FEAT_MAC        (1ull << 5)
#define NR_FEAT_MRG_RXBUF  (1ull << 15)
#define NR_FEAT_STATUS     (1ull << 16)
#define NR_FEAT_VERSION_1  (1ull << 32)

#define NR_QSZ 32u
#define NR_HDR 12u
#define NR_BUF 2048u /* a 1514-byte frame and its header */

struct nr_hdr {
    uint8_t flags, gso_type;
    uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
} __attribute__((packed));

struct nr_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

struct nr_ring {
    struct nr_desc desc[NR_QSZ] __attribute__((aligned(4096)));
    uint16_t avail[3 + NR_QSZ] __attribute__((aligned(4096)));
    uint8_t used[6 + 8 * NR_QSZ] __attribute__((aligned(4096)));
    uint16_t used_seen;
};

struct nr {
    volatile uint32_t *regs;
    uint64_t features; /* negotiated */
    uint8_t mac[6];
    uint32_t rx_len; /* bytes per receive buffer */
    struct nr_ring q[2];
    uint8_t rx[NR_QSZ][NR_BUF] __attribute__((aligned(64)));
    uint8_t tx[NR_QSZ][NR_BUF] __attribute__((aligned(64)));
    uint32_t tx_free[NR_QSZ];
    uint32_t ntx_free;
};

static inline uint32_t nr_rd(struct nr *v, unsigned off)
{
    return v->regs[off / 4];
}

static inline void nr_wr(struct nr *v, unsigned off, uint32_t val)
{
    v->regs[off / 4] = val;
}

static inline uint16_t nr_used_idx(struct nr_ring *r)
{
    return __atomic_load_n((uint16_t *)(r->used + 2), __ATOMIC_ACQUIRE);
}

static inline void nr_offer(struct nr *v, unsigned q, uint16_t head)
{
    struct nr_ring *r = &v->q[q];
    uint16_t idx = r->avail[1];

    r->avail[2 + idx % NR_QSZ] = head;
    __atomic_store_n(&r->avail[1], (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

static inline void nr_notify(struct nr *v, unsigned q)
{
    nr_wr(v, NR_REG_QUEUE_NOTIFY, q);
}

static inline int nr_find(struct nr *v)
{
    const struct ember_boot_info *bi = ember_boot_info();

    for (uint32_t i = 0; i < bi->ndevices; i++) {
        volatile uint32_t *regs = (volatile uint32_t *)(uintptr_t)bi->devices[i].mmio_base;
        if (regs[NR_REG_MAGIC / 4] == 0x74726976 && regs[NR_REG_VERSION / 4] == 2 &&
            regs[NR_REG_DEVICE_ID / 4] == 1) {
            v->regs = regs;
            return 0;
        }
    }
    return -1;
}

static inline uint64_t nr_device_features(struct nr *v)
{
    nr_wr(v, NR_REG_DEV_FEATURES_SEL, 0);
    uint64_t lo = nr_rd(v, NR_REG_DEV_FEATURES);
    nr_wr(v, NR_REG_DEV_FEATURES_SEL, 1);
    return lo | ((uint64_t)nr_rd(v, NR_REG_DEV_FEATURES) << 32);
}

/* Resets the device, negotiates want & offered; the queues are set up but
 * not yet live (nr_start). Returns 0, or -1 if FEATURES_OK did not hold. */
static inline int nr_negotiate(struct nr *v, uint64_t want)
{
    nr_wr(v, NR_REG_STATUS, 0);
    memset(v->q, 0, sizeof(v->q));
    nr_wr(v, NR_REG_STATUS, NR_S_ACK | NR_S_DRIVER);
    v->features = nr_device_features(v) & want;
    nr_wr(v, NR_REG_DRV_FEATURES_SEL, 1);
    nr_wr(v, NR_REG_DRV_FEATURES, (uint32_t)(v->features >> 32));
    nr_wr(v, NR_REG_DRV_FEATURES_SEL, 0);
    nr_wr(v, NR_REG_DRV_FEATURES, (uint32_t)v->features);
    nr_wr(v, NR_REG_STATUS, NR_S_ACK | NR_S_DRIVER | NR_S_FEATURES_OK);
    if (!(nr_rd(v, NR_REG_STATUS) & NR_S_FEATURES_OK))
        return -1;
    for (unsigned q = 0; q < 2; q++) {
        uint64_t d = (uintptr_t)v->q[q].desc, a = (uintptr_t)v->q[q].avail,
                 u = (uintptr_t)v->q[q].used;
        v->q[q].avail[0] = 1; /* VRING_AVAIL_F_NO_INTERRUPT: this guest polls */
        nr_wr(v, NR_REG_QUEUE_SEL, q);
        nr_wr(v, NR_REG_QUEUE_NUM, NR_QSZ);
        nr_wr(v, NR_REG_DESC_LO, (uint32_t)d);
        nr_wr(v, NR_REG_DESC_HI, (uint32_t)(d >> 32));
        nr_wr(v, NR_REG_AVAIL_LO, (uint32_t)a);
        nr_wr(v, NR_REG_AVAIL_HI, (uint32_t)(a >> 32));
        nr_wr(v, NR_REG_USED_LO, (uint32_t)u);
        nr_wr(v, NR_REG_USED_HI, (uint32_t)(u >> 32));
        nr_wr(v, NR_REG_QUEUE_READY, 1);
    }
    if (v->features & NR_FEAT_MAC)
        for (unsigned i = 0; i < 6; i++)
            v->mac[i] = ((volatile uint8_t *)v->regs)[NR_REG_CONFIG + i];
    return 0;
}

/* DRIVER_OK, then rx_len-byte receive buffers posted (0: none). */
static inline void nr_start(struct nr *v, uint32_t rx_len)
{
    nr_wr(v, NR_REG_STATUS, NR_S_ACK | NR_S_DRIVER | NR_S_FEATURES_OK | NR_S_DRIVER_OK);
    v->ntx_free = NR_QSZ;
    v->rx_len = rx_len;
    for (uint32_t i = 0; i < NR_QSZ; i++) {
        v->tx_free[i] = i;
        v->q[1].desc[i] = (struct nr_desc){(uintptr_t)v->tx[i], 0, 0, 0};
    }
    if (rx_len) {
        for (uint32_t i = 0; i < NR_QSZ; i++) {
            v->q[0].desc[i] = (struct nr_desc){(uintptr_t)v->rx[i], rx_len, NR_F_WRITE, 0};
            nr_offer(v, 0, (uint16_t)i);
        }
        nr_notify(v, 0);
    }
}

static inline int nr_needs_reset(struct nr *v)
{
    return (nr_rd(v, NR_REG_STATUS) & NR_S_NEEDS_RESET) != 0;
}

static inline void nr_tx_reclaim(struct nr *v)
{
    struct nr_ring *r = &v->q[1];

    while (r->used_seen != nr_used_idx(r)) {
        uint32_t id;
        memcpy(&id, r->used + 4 + 8 * (r->used_seen % NR_QSZ), 4);
        if (id < NR_QSZ)
            v->tx_free[v->ntx_free++] = id;
        r->used_seen++;
    }
}

/* A free transmit buffer (header zeroed), or NULL after ~2 s without one. */
static inline uint8_t *nr_tx_begin(struct nr *v, uint32_t *slot)
{
    uint64_t start = ember_monotonic_ns();

    for (;;) {
        nr_tx_reclaim(v);
        if (v->ntx_free)
            break;
        if (ember_monotonic_ns() > start + 2000000000ull)
            return NULL;
    }
    *slot = v->tx_free[--v->ntx_free];
    memset(v->tx[*slot], 0, NR_HDR);
    return v->tx[*slot];
}

/* Offers the filled buffer (total bytes: header and frame) and notifies. */
static inline void nr_tx_commit(struct nr *v, uint32_t slot, uint32_t total)
{
    v->q[1].desc[slot].len = total;
    nr_offer(v, 1, (uint16_t)slot);
    nr_notify(v, 1);
}

/* The next received frame (header first, its total length in *len), or
 * NULL. With MRG_RXBUF a frame that spans num_buffers buffers is gathered
 * into scratch (NR_QSZ * rx_len bytes); hand the buffers back with
 * nr_rx_done(n) where n is what *nbufs says. */
static inline uint8_t *nr_rx_next(struct nr *v, uint8_t *scratch, uint32_t *len, uint32_t *nbufs)
{
    struct nr_ring *r = &v->q[0];
    uint16_t avail = (uint16_t)(nr_used_idx(r) - r->used_seen);
    uint32_t id, l;

    if (!avail)
        return NULL;
    memcpy(&id, r->used + 4 + 8 * (r->used_seen % NR_QSZ), 4);
    memcpy(&l, r->used + 8 + 8 * (r->used_seen % NR_QSZ), 4);
    if (id >= NR_QSZ)
        return NULL;
    struct nr_hdr *h = (struct nr_hdr *)v->rx[id];
    uint32_t nb = (v->features & NR_FEAT_MRG_RXBUF) ? h->num_buffers : 1;
    if (nb == 0 || nb > NR_QSZ || nb > avail) {
        printf("net-raw: num_buffers %u with %u used buffers\n", nb, avail);
        *nbufs = 1;
        *len = 0;
        r->used_seen++;
        return v->rx[id];
    }
    *nbufs = nb;
    if (nb == 1) {
        *len = l;
        r->used_seen++;
        return v->rx[id];
    }
    uint32_t total = 0;
    for (uint32_t k = 0; k < nb; k++) {
        memcpy(&id, r->used + 4 + 8 * (r->used_seen % NR_QSZ), 4);
        memcpy(&l, r->used + 8 + 8 * (r->used_seen % NR_QSZ), 4);
        r->used_seen++;
        if (id < NR_QSZ && l <= v->rx_len) {
            memcpy(scratch + total, v->rx[id], l);
            total += l;
        }
        nr_offer(v, 0, (uint16_t)id); /* copied out: the buffer goes back now */
    }
    *nbufs = 0; /* already handed back */
    *len = total;
    return scratch;
}

/* Hands back the single buffer of the frame nr_rx_next returned. */
static inline void nr_rx_done(struct nr *v, const uint8_t *frame, uint32_t nbufs)
{
    if (nbufs == 1)
        nr_offer(v, 0, (uint16_t)((frame - &v->rx[0][0]) / NR_BUF));
}

static inline uint16_t nr_csum(const void *data, size_t len, uint32_t sum)
{
    const uint8_t *p = data;

    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

#endif
