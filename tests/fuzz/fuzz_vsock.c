/* fuzz_vsock.c: the vsock device's TX path (packets, credit, connections)
 * and its transport, driven by a fuzzed guest driver. The input is a
 * sequence of records, each an action of the guest:
 *
 *   0-2  a TX packet: flags, le16 length, the bytes (header and payload, as
 *        the guest wrote them); flag 1 fixes the CIDs and the type so that
 *        the fuzzer reaches past the address checks, flag 2 splits header
 *        and payload over two descriptors;
 *   3    RX buffers offered: count, size;
 *   4    a transport register write: register, le32 value;
 *   5    a device reset and set-up again;
 *   6    the host peers: pending connections accepted; then, by the next
 *        byte, all of them closed (later writes find the peer gone) or
 *        written to (data for the guest);
 *   7    a well-formed packet from a template: op, ports from a small set,
 *        credit fields, payload length.
 *
 * A host listener serves ports 5000 and 5001 (connections are accepted
 * only by action 6: until then data the peer does not read is buffered).
 * The device runs on a real libuv loop, as in ember, run without blocking
 * after every action (host sockets polled, closed connections freed).
 * Invariants checked after every action: no memory error (ASan), counters
 * that add up (buffered bytes within what the device may hold). */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "virtio/mmio.h" /* before the Linux header, which defines VIRTIO_MMIO_CONFIG too */
#include "virtio/vsock_device.h"

#include <linux/virtio_mmio.h>

#define RAM       (1u << 20)
#define QN        16u
#define RINGS     0x1000u  /* queue q at RINGS + q * 0x1000: desc, avail +0x400, used +0x800 */
#define RX_BUFS   0x10000u /* 16 x 4 KiB */
#define TX_BUFS   0x40000u /* 16 x 16 KiB */
#define TX_BUF_SZ 0x4000u
#define GUEST_CID 3u
#define HDR       44u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct guest_mem mem;
static struct vsock *dev;
static struct virtio_mmio *t;
static char uds[96]; /* leaves room for "_5000" in sun_path */
static int peers[2] = {-1, -1};
static int kept[8], nkept;
static uv_loop_t loop;
static uint16_t avail_idx[3];

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void cleanup(void)
{
    char path[128];

    uv_walk(&loop, close_handle, NULL); /* vsock.h: handles first */
    uv_run(&loop, UV_RUN_DEFAULT);
    vsock_destroy(dev);
    for (int i = 0; i < 2; i++) {
        if (peers[i] >= 0)
            close(peers[i]);
        snprintf(path, sizeof(path), "%s_%d", uds, 5000 + i);
        unlink(path);
    }
}

static void wr(uint32_t off, uint32_t v)
{
    virtio_mmio_write(t, off, &v, 4);
}

static void *gpa(uint64_t a, uint64_t len)
{
    return guest_mem_slice(&mem, a, len);
}

static void notify(unsigned q)
{
    pthread_mutex_lock(&t->lock);
    t->ops->queue_notify(t->dev, t, q);
    pthread_mutex_unlock(&t->lock);
}

/* A driver's initialisation (virtio 1.2 §3.1.1), queues of QN. */
static void bring_up(void)
{
    wr(VIRTIO_MMIO_STATUS, 0);
    memset(mem.host, 0, RAM);
    memset(avail_idx, 0, sizeof(avail_idx));
    wr(VIRTIO_MMIO_STATUS, 1);
    wr(VIRTIO_MMIO_STATUS, 3);
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
    wr(VIRTIO_MMIO_STATUS, 11);
    for (unsigned q = 0; q < 3; q++) {
        uint32_t base = RINGS + q * 0x1000u;
        wr(VIRTIO_MMIO_QUEUE_SEL, q);
        wr(VIRTIO_MMIO_QUEUE_NUM, QN);
        wr(VIRTIO_MMIO_QUEUE_DESC_LOW, base);
        wr(VIRTIO_MMIO_QUEUE_AVAIL_LOW, base + 0x400u);
        wr(VIRTIO_MMIO_QUEUE_USED_LOW, base + 0x800u);
        wr(VIRTIO_MMIO_QUEUE_READY, 1);
    }
    wr(VIRTIO_MMIO_STATUS, 15);
}

static void set_desc(unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    uint8_t *d = gpa(RINGS + q * 0x1000u + 16u * i, 16);

    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
}

static void offer(unsigned q, uint16_t head)
{
    uint16_t *avail = gpa(RINGS + q * 0x1000u + 0x400u, 4 + 2 * QN);

    avail[2 + avail_idx[q] % QN] = head;
    avail_idx[q]++;
    __atomic_store_n(&avail[1], avail_idx[q], __ATOMIC_RELEASE);
}

/* One TX packet of len bytes (at most a buffer), maybe split. */
static void tx(const uint8_t *pkt, uint32_t len, unsigned flags)
{
    unsigned slot = (avail_idx[1] * 2u) % QN; /* two descriptors per packet */
    uint64_t buf = TX_BUFS + (uint64_t)(slot / 2) * TX_BUF_SZ;
    uint8_t *p = gpa(buf, TX_BUF_SZ);

    if (len > TX_BUF_SZ)
        len = TX_BUF_SZ;
    memcpy(p, pkt, len);
    if ((flags & 1) && len >= HDR) {
        uint64_t src = GUEST_CID, dst = VSOCK_HOST_CID;
        uint16_t type = 1;
        memcpy(p, &src, 8);
        memcpy(p + 8, &dst, 8);
        memcpy(p + 28, &type, 2);
    }
    if ((flags & 2) && len > HDR) {
        set_desc(1, slot, buf, HDR, 1 /* NEXT */, (uint16_t)(slot + 1));
        set_desc(1, slot + 1, buf + HDR, len - HDR, 0, 0);
    } else {
        set_desc(1, slot, buf, len, 0, 0);
    }
    offer(1, (uint16_t)slot);
    notify(1);
}

static void rx_offer(unsigned n, uint32_t size)
{
    if (size > 0x1000u)
        size = 0x1000u;
    for (unsigned i = 0; i < n; i++) {
        unsigned slot = avail_idx[0] % QN;
        set_desc(0, slot, RX_BUFS + slot * 0x1000u, size, 2 /* WRITE */, 0);
        offer(0, (uint16_t)slot);
    }
    notify(0);
}

/* Accepts what is pending (kept, up to 8: the rest closed); then closes
 * every kept peer, or writes len bytes to each. */
static void host_peers(bool close_all, size_t len)
{
    static const char data[4096];

    for (int i = 0; i < 2; i++) {
        int fd;
        while ((fd = accept4(peers[i], NULL, NULL, SOCK_NONBLOCK)) >= 0) {
            if (nkept < 8)
                kept[nkept++] = fd;
            else
                close(fd);
        }
    }
    for (int i = 0; i < nkept; i++) {
        if (!close_all && write(kept[i], data, len) < 0 && errno != EAGAIN)
            (void)0; /* the device hung up: fine */
    }
    if (close_all) {
        while (nkept)
            close(kept[--nkept]);
    }
}

static void template_packet(const uint8_t *r, size_t n)
{
    static const uint32_t ports[] = {5000, 5001, 6000, 1u << 30};
    uint8_t pkt[HDR + 4096] = {0};
    uint64_t src = GUEST_CID, dst = VSOCK_HOST_CID;
    uint32_t src_port = 1000 + (r[1] & 3), dst_port = ports[(r[1] >> 2) & 3];
    uint32_t len = n > 3 ? (uint32_t)(r[2] | r[3] << 8) % 4096 : 0;
    uint32_t flags = r[1] >> 4, buf_alloc = n > 5 ? (uint32_t)(r[4] | r[5] << 8) << 4 : 65536;
    uint32_t fwd_cnt = n > 6 ? (uint32_t)r[6] << 8 : 0;
    uint16_t type = 1, op = (uint16_t)(r[0] >> 3) % 8;

    if (op != 5)
        len = 0; /* only RW carries data */
    memcpy(pkt, &src, 8);
    memcpy(pkt + 8, &dst, 8);
    memcpy(pkt + 16, &src_port, 4);
    memcpy(pkt + 20, &dst_port, 4);
    memcpy(pkt + 24, &len, 4);
    memcpy(pkt + 28, &type, 2);
    memcpy(pkt + 30, &op, 2);
    memcpy(pkt + 32, &flags, 4);
    memcpy(pkt + 36, &buf_alloc, 4);
    memcpy(pkt + 40, &fwd_cnt, 4);
    memset(pkt + HDR, 'x', len);
    tx(pkt, HDR + len, r[0] & 2 ? 2 : 0);
}

static int init(void)
{
    /* A small budget, so that inputs reach it. */
    struct vsock_config cfg = {
        .guest_cid = GUEST_CID, .connect_timeout_ms = 1000, .buffer_bytes = 64 * 1024};
    char err[256];

    signal(SIGPIPE, SIG_IGN); /* as ember does: a peer gone is an error return */
    if (guest_mem_map(&mem, RAM) != 0)
        return -1;
    snprintf(uds, sizeof(uds), "/tmp/ember-fuzz-vsock-%d.sock", getpid());
    unlink(uds);
    cfg.uds_path = uds;
    dev = vsock_create(&cfg, &mem, 0xd0000000, 5, err, sizeof(err));
    if (!dev) {
        fprintf(stderr, "fuzz_vsock: %s\n", err);
        return -1;
    }
    t = vsock_transport(dev);
    if (uv_loop_init(&loop) != 0 || vsock_attach(dev, &loop) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%d", uds, 5000 + i);
        unlink(sa.sun_path);
        peers[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (peers[i] < 0 || bind(peers[i], (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            listen(peers[i], 4096) != 0) {
            perror(sa.sun_path);
            return -1;
        }
    }
    atexit(cleanup);
    return 0;
}

/* What the device may hold, whatever the guest did. */
static void check(void)
{
    struct vsock_stats st;
    const struct vsock_config *cfg = vsock_get_config(dev);

    vsock_get_stats(dev, &st);
    if (st.tx_buffered_bytes > st.tx_granted_bytes || st.tx_granted_bytes > cfg->buffer_bytes ||
        st.tx_buffered_peak > cfg->buffer_bytes || st.conns_active > cfg->max_conns) {
        fprintf(stderr, "fuzz_vsock: %lu bytes buffered, %lu granted (budget %lu), %lu conns\n",
                (unsigned long)st.tx_buffered_bytes, (unsigned long)st.tx_granted_bytes,
                (unsigned long)cfg->buffer_bytes, (unsigned long)st.conns_active);
        abort();
    }
}

static const uint32_t regs[] = {
    VIRTIO_MMIO_STATUS,          VIRTIO_MMIO_QUEUE_SEL,        VIRTIO_MMIO_QUEUE_NUM,
    VIRTIO_MMIO_QUEUE_READY,     VIRTIO_MMIO_QUEUE_DESC_LOW,   VIRTIO_MMIO_QUEUE_AVAIL_LOW,
    VIRTIO_MMIO_QUEUE_USED_LOW,  VIRTIO_MMIO_DRIVER_FEATURES,  VIRTIO_MMIO_DRIVER_FEATURES_SEL,
    VIRTIO_MMIO_INTERRUPT_ACK,   VIRTIO_MMIO_QUEUE_NOTIFY,     VIRTIO_MMIO_QUEUE_DESC_HIGH,
    VIRTIO_MMIO_QUEUE_USED_HIGH, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, VIRTIO_MMIO_DEVICE_FEATURES_SEL,
    VIRTIO_MMIO_CONFIG,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t at = 0;

    if (!dev && init() != 0)
        abort();
    bring_up();
    rx_offer(QN / 2, 0x1000u);
    while (at < size) {
        const uint8_t *r = data + at;
        size_t left = size - at;
        switch (r[0] % 8) {
        case 0:
        case 1:
        case 2: {
            if (left < 4)
                goto out;
            uint32_t len = (uint32_t)(r[2] | r[3] << 8);
            if (len > left - 4)
                len = (uint32_t)(left - 4);
            tx(r + 4, len, r[1]);
            at += 4 + len;
            break;
        }
        case 3:
            if (left < 3)
                goto out;
            rx_offer(1u + r[1] % QN, 32u + r[2] * 16u);
            at += 3;
            break;
        case 4: {
            uint32_t v;
            if (left < 6)
                goto out;
            memcpy(&v, r + 2, 4);
            wr(regs[r[1] % (sizeof(regs) / sizeof(regs[0]))], v);
            at += 6;
            break;
        }
        case 5:
            bring_up();
            rx_offer(QN / 2, 0x1000u);
            at++;
            break;
        case 6:
            if (left < 2)
                goto out;
            host_peers(r[1] & 1, (size_t)(r[1] >> 1) * 32u);
            at += 2;
            break;
        default:
            if (left < 7)
                goto out;
            template_packet(r, left);
            at += 7;
            break;
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        check();
    }
out:
    wr(VIRTIO_MMIO_STATUS, 0); /* drops every connection (on the loop) */
    host_peers(true, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    check();
    return 0;
}
