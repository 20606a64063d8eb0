/* test_vsock.c: the vsock device's packet, credit and connection logic,
 * driven in-process: this file is the guest driver (rings in a fake guest
 * memory, notifications through the transport's eventfds) and the host
 * peers (Unix sockets), and it turns the device's libuv loop by hand. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>

#include "virtio/vsock_device.h"

/* Register offsets (virtio 1.2 §4.2.2); mmio.h has the config offset. */
#include <linux/virtio_mmio.h>

#define MEM     (8u << 20)
#define QSZ     16u
#define RING(q) (0x10000u + (q)*0x4000u)
#define RXBUF   0x100000u /* QSZ buffers of RXSZ */
#define RXSZ    0x1000u
#define TXBUF   0x200000u /* QSZ buffers of TXSZ */
#define TXSZ    0x20000u
#define CID     3u
#define HDR     ((uint32_t)sizeof(struct virtio_vsock_hdr))

static struct guest_mem mem;
static struct vsock *vs;
static struct virtio_mmio *t;
static uv_loop_t loop;
static char uds[108];
static uint16_t rx_seen, tx_next;

static void *gpa(uint64_t a, uint64_t len)
{
    void *p = guest_mem_slice(&mem, a, len);

    cr_assert_not_null(p);
    return p;
}

static void reg(unsigned off, uint32_t v)
{
    virtio_mmio_write(t, off, &v, 4);
}

static uint32_t reg_read(unsigned off)
{
    uint32_t v;

    virtio_mmio_read(t, off, &v, 4);
    return v;
}

/* Turns the device's loop for about ms milliseconds. */
static void spin(int ms)
{
    struct timespec ts = {0, 1000000};

    for (int i = 0; i < ms; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        nanosleep(&ts, NULL);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
}

static void kick(unsigned q)
{
    uint64_t one = 1;

    cr_assert_eq(write(t->notify_fd[q], &one, 8), 8);
    spin(2);
}

static uint16_t *avail(unsigned q)
{
    return gpa(RING(q) + 0x1000, 6 + 2 * QSZ);
}

static uint8_t *used(unsigned q)
{
    return gpa(RING(q) + 0x2000, 6 + 8 * QSZ);
}

static struct vring_desc *desc(unsigned q, unsigned i)
{
    return gpa(RING(q) + 16 * i, 16);
}

static void offer(unsigned q, uint16_t head)
{
    uint16_t *a = avail(q);

    a[2 + a[1] % QSZ] = head;
    __atomic_store_n(&a[1], (uint16_t)(a[1] + 1), __ATOMIC_RELEASE);
}

/* Posts n RX buffers (of len bytes each) and notifies. */
static void rx_post(unsigned n, uint32_t len)
{
    static unsigned next;

    for (unsigned i = 0; i < n; i++, next++) {
        unsigned d = next % QSZ;
        *desc(0, d) = (struct vring_desc){RXBUF + d * RXSZ, len, VRING_DESC_F_WRITE, 0};
        offer(0, (uint16_t)d);
    }
    kick(0);
}

/* The next packet the device put on RX; false if none. */
static bool rx_take(struct virtio_vsock_hdr *h, void *payload)
{
    uint8_t *u = used(0);
    uint32_t id, len;

    if (*(uint16_t *)(u + 2) == rx_seen)
        return false;
    memcpy(&id, u + 4 + 8 * (rx_seen % QSZ), 4);
    memcpy(&len, u + 8 + 8 * (rx_seen % QSZ), 4);
    rx_seen++;
    cr_assert(len >= HDR && id < QSZ);
    memcpy(h, gpa(RXBUF + id * RXSZ, HDR), HDR);
    cr_assert_eq(h->len, len - HDR);
    if (payload && h->len)
        memcpy(payload, gpa(RXBUF + id * RXSZ + HDR, h->len), h->len);
    return true;
}

static void rx_expect(struct virtio_vsock_hdr *h, uint16_t op)
{
    cr_assert(rx_take(h, NULL), "no packet on RX (wanted op %u)", op);
    cr_assert_eq(h->op, op, "op %u, wanted %u", h->op, op);
}

static struct virtio_vsock_hdr pkt(uint32_t src_port, uint32_t dst_port, uint16_t op, uint32_t len)
{
    return (struct virtio_vsock_hdr){
        .src_cid = CID,
        .dst_cid = 2,
        .src_port = src_port,
        .dst_port = dst_port,
        .len = len,
        .type = VIRTIO_VSOCK_TYPE_STREAM,
        .op = op,
        .buf_alloc = 65536,
    };
}

/* Sends a packet of total bytes (header + payload, or less) on TX. */
static void tx_raw(const struct virtio_vsock_hdr *h, const void *payload, uint32_t plen,
                   uint32_t total)
{
    unsigned d = tx_next++ % QSZ;
    uint8_t *buf = gpa(TXBUF + d * TXSZ, TXSZ);

    memcpy(buf, h, HDR);
    if (plen)
        memcpy(buf + HDR, payload, plen);
    *desc(1, d) = (struct vring_desc){TXBUF + d * TXSZ, total, 0, 0};
    offer(1, (uint16_t)d);
    kick(1);
}

static void tx(const struct virtio_vsock_hdr *h, const void *payload)
{
    tx_raw(h, payload, h->len, HDR + h->len);
}

static void start(const struct vsock_config *extra)
{
    struct vsock_config cfg = {.guest_cid = CID, .uds_path = uds};
    char err[256];

    if (extra) {
        cfg.max_conns = extra->max_conns;
        cfg.buf_alloc = extra->buf_alloc;
        cfg.connect_timeout_ms = extra->connect_timeout_ms;
        cfg.buffer_bytes = extra->buffer_bytes;
    }
    snprintf(uds, sizeof(uds), "/tmp/ember-unit-vsock-%d.sock", getpid());
    unlink(uds);
    cr_assert_eq(guest_mem_map(&mem, MEM), 0);
    vs = vsock_create(&cfg, &mem, 0xd0000000u, 5, err, sizeof(err));
    cr_assert_not_null(vs, "%s", err);
    t = vsock_transport(vs);
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(vsock_attach(vs, &loop), 0);
    rx_seen = tx_next = 0;

    reg(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    reg(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    reg(VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
    reg(VIRTIO_MMIO_STATUS,
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    for (unsigned q = 0; q < 3; q++) {
        reg(VIRTIO_MMIO_QUEUE_SEL, q);
        reg(VIRTIO_MMIO_QUEUE_NUM, QSZ);
        reg(VIRTIO_MMIO_QUEUE_DESC_LOW, RING(q));
        reg(VIRTIO_MMIO_QUEUE_AVAIL_LOW, RING(q) + 0x1000);
        reg(VIRTIO_MMIO_QUEUE_USED_LOW, RING(q) + 0x2000);
        reg(VIRTIO_MMIO_QUEUE_READY, 1);
    }
    reg(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                                VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void stop(void)
{
    uv_walk(&loop, close_handle, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    vsock_destroy(vs);
    uv_loop_close(&loop);
    guest_mem_unmap(&mem);
}

static struct vsock_stats stats(void)
{
    struct vsock_stats s;

    vsock_get_stats(vs, &s);
    return s;
}

static int host_connect(const char *path, const char *line)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

    memcpy(sa.sun_path, path, strlen(path) + 1);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
    if (line)
        cr_assert_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
    spin(3);
    return fd;
}

/* Reads what the host socket has: bytes, 0 at EOF, -1 if nothing yet. */
static ssize_t host_read(int fd, void *buf, size_t n)
{
    ssize_t r = read(fd, buf, n);

    return r < 0 && errno == EAGAIN ? -1 : r;
}

/* The device closed the host socket: EOF, or a reset if it left data unread. */
static bool host_closed(int fd)
{
    char b;
    ssize_t r = read(fd, &b, 1);

    return r == 0 || (r < 0 && errno == ECONNRESET);
}

/* A host-initiated connection to guest port 52, answered. Returns the host
 * fd; *local gets the host end's port. */
static int established(uint32_t *local, uint32_t guest_buf_alloc)
{
    struct virtio_vsock_hdr h, r;
    char ok[32] = {0};
    int fd = host_connect(uds, "CONNECT 52\n");

    rx_expect(&h, VIRTIO_VSOCK_OP_REQUEST);
    cr_expect_eq(h.src_cid, 2);
    cr_expect_eq(h.dst_cid, CID);
    cr_expect_eq(h.dst_port, 52);
    cr_expect_eq(h.type, VIRTIO_VSOCK_TYPE_STREAM);
    *local = h.src_port;
    r = pkt(52, h.src_port, VIRTIO_VSOCK_OP_RESPONSE, 0);
    r.buf_alloc = guest_buf_alloc;
    tx(&r, NULL);
    cr_assert_gt(host_read(fd, ok, sizeof(ok) - 1), 0);
    char want[32];
    snprintf(want, sizeof(want), "OK %u\n", *local);
    cr_expect_str_eq(ok, want);
    return fd;
}

TestSuite(vsock_dev, .timeout = 30);

Test(vsock_dev, config_space_and_identity)
{
    uint64_t cid = 0;

    start(NULL);
    cr_expect_eq(reg_read(VIRTIO_MMIO_DEVICE_ID), 19);
    virtio_mmio_read(t, VIRTIO_MMIO_CONFIG, &cid, 8);
    cr_expect_eq(cid, CID);
    stop();
}

Test(vsock_dev, host_connect_handshake_and_data)
{
    struct virtio_vsock_hdr h;
    char buf[64] = {0};
    uint32_t local;

    start(NULL);
    rx_post(8, RXSZ);
    int fd = established(&local, 65536);
    cr_expect_eq(local, 1u << 30);
    /* host -> guest */
    cr_assert_eq(write(fd, "hello", 5), 5);
    spin(3);
    cr_assert(rx_take(&h, buf));
    cr_expect_eq(h.op, VIRTIO_VSOCK_OP_RW);
    cr_expect_eq(h.len, 5);
    cr_expect(memcmp(buf, "hello", 5) == 0);
    cr_expect_eq(h.buf_alloc, VSOCK_BUF_ALLOC_DEFAULT);
    /* guest -> host */
    struct virtio_vsock_hdr w = pkt(52, local, VIRTIO_VSOCK_OP_RW, 6);
    tx(&w, "world!");
    memset(buf, 0, sizeof(buf));
    cr_expect_eq(host_read(fd, buf, sizeof(buf)), 6);
    cr_expect_str_eq(buf, "world!");
    cr_expect_eq(stats().conns_host, 1);
    /* host closes: the guest reads EOF (SHUTDOWN SEND); the guest closes
     * fully: the device answers RST. */
    close(fd);
    spin(3);
    rx_expect(&h, VIRTIO_VSOCK_OP_SHUTDOWN);
    cr_expect_eq(h.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
    w = pkt(52, local, VIRTIO_VSOCK_OP_SHUTDOWN, 0);
    w.flags = VIRTIO_VSOCK_SHUTDOWN_SEND | VIRTIO_VSOCK_SHUTDOWN_RCV;
    tx(&w, NULL);
    rx_expect(&h, VIRTIO_VSOCK_OP_RST);
    cr_expect_eq(stats().conns_active, 0);
    stop();
}

Test(vsock_dev, guest_credit_limits_what_the_host_sends)
{
    struct virtio_vsock_hdr h;
    char buf[RXSZ];
    uint32_t local;

    start(NULL);
    rx_post(8, RXSZ);
    int fd = established(&local, 10); /* the guest has room for 10 bytes */
    cr_assert_eq(write(fd, "0123456789abcdefghij", 20), 20);
    spin(3);
    cr_assert(rx_take(&h, buf));
    cr_expect_eq(h.op, VIRTIO_VSOCK_OP_RW);
    cr_expect_eq(h.len, 10);
    rx_expect(&h, VIRTIO_VSOCK_OP_CREDIT_REQUEST); /* out of credit: ask */
    cr_expect(!rx_take(&h, NULL), "sent beyond the guest's credit");
    /* The guest consumed 10 bytes. */
    struct virtio_vsock_hdr u = pkt(52, local, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
    u.buf_alloc = 10;
    u.fwd_cnt = 10;
    tx(&u, NULL);
    spin(3);
    cr_assert(rx_take(&h, buf));
    cr_expect_eq(h.len, 10);
    cr_expect(memcmp(buf, "abcdefghij", 10) == 0);
    close(fd);
    stop();
}

Test(vsock_dev, guest_beyond_its_credit_is_reset)
{
    static uint8_t data[4096];
    struct virtio_vsock_hdr h;
    uint32_t local;
    struct vsock_config c = {.buf_alloc = 4096};
    char buf[16];

    start(&c);
    rx_post(1, RXSZ);
    int fd = established(&local, 65536);
    /* No RX buffers now: the device cannot tell the guest about new credit,
     * so the guest's credit is 4096 bytes in all. */
    struct virtio_vsock_hdr w = pkt(52, local, VIRTIO_VSOCK_OP_RW, 4096);
    tx(&w, data);
    cr_expect_eq(stats().credit_violations, 0);
    w.len = 1;
    tx(&w, data);
    cr_expect_eq(stats().credit_violations, 1);
    /* The host sees the data that was within credit, then EOF. */
    size_t got = 0;
    ssize_t n;
    while ((n = host_read(fd, data, sizeof(data))) > 0)
        got += (size_t)n;
    cr_expect_eq(got, 4096);
    cr_expect_eq(n, 0);
    rx_post(4, RXSZ);
    rx_expect(&h, VIRTIO_VSOCK_OP_RST);
    cr_expect_eq(h.dst_port, 52);
    (void)buf;
    close(fd);
    stop();
}

Test(vsock_dev, host_buffering_is_bounded_by_buf_alloc)
{
    static uint8_t data[16384], sink[65536];
    struct virtio_vsock_hdr h;
    uint32_t local, fwd_seen = 0;
    uint64_t sent = 0, max_buffered = 0;
    struct vsock_config c = {.buf_alloc = 65536};

    start(&c);
    rx_post(QSZ, RXSZ);
    int fd = established(&local, 65536);
    /* A well-behaved guest pushes while the host reads nothing: it may send
     * only what credit allows, and the device holds at most buf_alloc. */
    for (int round = 0; round < 200; round++) {
        while (rx_take(&h, NULL)) {
            fwd_seen = h.fwd_cnt;
            rx_post(1, RXSZ);
        }
        uint32_t credit = 65536 - (uint32_t)(sent - fwd_seen);
        if (credit == 0)
            break;
        struct virtio_vsock_hdr w =
            pkt(52, local, VIRTIO_VSOCK_OP_RW, credit < sizeof(data) ? credit : sizeof(data));
        tx(&w, data);
        sent += w.len;
        struct vsock_stats s = stats();
        if (s.tx_buffered_bytes > max_buffered)
            max_buffered = s.tx_buffered_bytes;
    }
    cr_expect_gt(sent, 65536, "the host socket took nothing?");
    cr_expect_leq(max_buffered, 65536);
    cr_expect_eq(stats().credit_violations, 0);
    /* Now the host reads everything. */
    uint64_t got = 0;
    for (int i = 0; i < 2000 && got < sent; i++) {
        ssize_t n = host_read(fd, sink, sizeof(sink));
        if (n > 0)
            got += (uint64_t)n;
        else
            spin(1);
    }
    cr_expect_eq(got, sent);
    cr_expect_eq(stats().tx_buffered_bytes, 0);
    close(fd);
    stop();
}

Test(vsock_dev, malformed_packets_get_rst)
{
    struct virtio_vsock_hdr h, w;

    start(NULL);
    rx_post(QSZ, RXSZ);
    w = pkt(1000, 52, VIRTIO_VSOCK_OP_REQUEST, 0);
    w.type = VIRTIO_VSOCK_TYPE_SEQPACKET; /* not offered */
    tx(&w, NULL);
    rx_expect(&h, VIRTIO_VSOCK_OP_RST);
    cr_expect_eq(h.dst_port, 1000);
    cr_expect_eq(h.src_port, 52);

    w = pkt(1000, 52, VIRTIO_VSOCK_OP_RW, 100);
    tx_raw(&w, "x", 1, HDR + 1); /* len beyond the chain */
    rx_expect(&h, VIRTIO_VSOCK_OP_RST);

    w = pkt(1000, 52, 99, 0); /* unknown op */
    tx(&w, NULL);
    rx_expect(&h, VIRTIO_VSOCK_OP_RST);

    w = pkt(1000, 52, VIRTIO_VSOCK_OP_REQUEST, 0);
    w.src_cid = 7; /* not the guest's CID */
    tx(&w, NULL);
    rx_expect(&h, VIRTIO_VSOCK_OP_RST);

    w = pkt(1000, 52, VIRTIO_VSOCK_OP_RST, 0); /* RST to nothing: no answer */
    tx(&w, NULL);
    cr_expect(!rx_take(&h, NULL));
    cr_expect_eq(stats().malformed, 4);
    cr_expect_eq(reg_read(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);

    /* A chain shorter than a header is a broken driver. */
    tx_raw(&w, NULL, 0, 20);
    cr_expect_neq(reg_read(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
    stop();
}

Test(vsock_dev, guest_connects_to_host_listener)
{
    struct virtio_vsock_hdr h, w;
    char path[128], buf[16] = {0};
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    start(NULL);
    rx_post(QSZ, RXSZ);
    w = pkt(2000, 5555, VIRTIO_VSOCK_OP_REQUEST, 0);
    tx(&w, NULL);
    rx_expect(&h, VIRTIO_VSOCK_OP_RST); /* nothing listens at <uds>_5555 */
    cr_expect_eq(stats().conns_refused, 1);

    snprintf(path, sizeof(path), "%s_5555", uds);
    unlink(path);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(l, 4), 0);
    tx(&w, NULL);
    rx_expect(&h, VIRTIO_VSOCK_OP_RESPONSE);
    cr_expect_eq(h.src_port, 5555);
    cr_expect_eq(h.dst_port, 2000);
    int fd = accept(l, NULL, NULL);
    cr_assert_geq(fd, 0);
    w = pkt(2000, 5555, VIRTIO_VSOCK_OP_RW, 3);
    tx(&w, "abc");
    cr_expect_eq(read(fd, buf, sizeof(buf)), 3);
    cr_expect_str_eq(buf, "abc");
    cr_expect_eq(stats().conns_guest, 1);
    close(fd);
    close(l);
    unlink(path);
    stop();
}

Test(vsock_dev, connection_limit)
{
    struct vsock_config c = {.max_conns = 2};
    char b;

    start(&c);
    int a = host_connect(uds, NULL), d = host_connect(uds, NULL), e = host_connect(uds, NULL);
    cr_expect_eq(host_read(a, &b, 1), -1);
    cr_expect_eq(host_read(d, &b, 1), -1);
    cr_expect_eq(host_read(e, &b, 1), 0); /* turned away */
    cr_expect_eq(stats().conns_over_limit, 1);
    close(a);
    close(d);
    close(e);
    stop();
}

Test(vsock_dev, connect_timeout_and_bad_connect_lines)
{
    struct vsock_config c = {.connect_timeout_ms = 50};
    struct virtio_vsock_hdr h;
    char b;

    start(&c);
    rx_post(QSZ, RXSZ);
    int fd = host_connect(uds, "CONNECT 52\n");
    rx_expect(&h, VIRTIO_VSOCK_OP_REQUEST);
    spin(80); /* the guest never answers */
    cr_expect_eq(host_read(fd, &b, 1), 0);
    rx_expect(&h, VIRTIO_VSOCK_OP_RST);
    cr_expect_eq(stats().conns_timed_out, 1);
    close(fd);

    static const char *bad[] = {
        "CONNECT\n",    "CONNECT x\n",   "CONNECT 4294967296\n",
        "connect 52\n", "CONNECT 52 \n", "CONNECT 00000000000000000000000000052\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fd = host_connect(uds, bad[i]);
        cr_expect(host_closed(fd), "\"%s\" was accepted", bad[i]);
        close(fd);
    }
    cr_expect(!rx_take(&h, NULL), "a bad CONNECT reached the guest");
    stop();
}

Test(vsock_dev, host_data_waits_for_rx_buffers)
{
    struct virtio_vsock_hdr h;
    char buf[RXSZ];
    uint32_t local;

    start(NULL);
    rx_post(1, RXSZ);
    int fd = established(&local, 65536);
    cr_assert_eq(write(fd, "later", 5), 5);
    spin(5);
    cr_expect(!rx_take(&h, NULL));
    rx_post(1, RXSZ);
    cr_assert(rx_take(&h, buf));
    cr_expect_eq(h.len, 5);
    close(fd);
    stop();
}

Test(vsock_dev, broken_rx_buffers_and_driver_reset)
{
    char b;

    start(NULL);
    int fd = host_connect(uds, "CONNECT 52\n");
    rx_post(1, HDR); /* no room for data */
    cr_expect_neq(reg_read(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
    cr_expect_eq(host_read(fd, &b, 1), 0, "host left hanging by a broken device");
    close(fd);
    fd = host_connect(uds, "CONNECT 52\n");
    reg(VIRTIO_MMIO_STATUS, 0); /* driver reset drops every connection */
    spin(3);
    cr_expect_eq(host_read(fd, &b, 1), 0);
    cr_expect_eq(stats().conns_active, 0);
    close(fd);
    stop();
}

/* Issue 10: many connections to a host peer that reads nothing. Whatever
 * the guest does, the device holds at most the per-VM budget (the credit it
 * gives shrinks), and once the peer reads, everything arrives. */
Test(vsock_dev, budget_bounds_what_all_connections_hold)
{
    enum { N = 8, BUDGET = 128 * 1024 };
    static uint8_t data[16384], sink[65536];
    /* 16 connections at most: a floor of 4 KiB each, a pool of 64 KiB. */
    struct vsock_config c = {.max_conns = 16, .buf_alloc = 256 * 1024, .buffer_bytes = BUDGET};
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct virtio_vsock_hdr h, w;
    uint32_t buf_alloc[N] = {0}, fwd[N] = {0};
    uint64_t sent[N] = {0}, total = 0, peak = 0;
    char path[128];

    start(&c);
    rx_post(QSZ, RXSZ);
    snprintf(path, sizeof(path), "%s_5555", uds);
    unlink(path);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(l, N), 0); /* never accepted until the end */
    for (uint32_t i = 0; i < N; i++) {
        w = pkt(3000 + i, 5555, VIRTIO_VSOCK_OP_REQUEST, 0);
        tx(&w, NULL);
    }
    /* Send all the credit there is, reading every header the device sends,
     * until none comes for a few rounds. */
    for (int idle = 0, round = 0; idle < 20 && round < 5000; round++) {
        bool any = false;
        while (rx_take(&h, NULL)) {
            uint32_t i = h.dst_port - 3000;
            cr_assert_lt(i, N);
            cr_expect_neq(h.op, VIRTIO_VSOCK_OP_RST, "connection %u reset", i);
            buf_alloc[i] = h.buf_alloc;
            fwd[i] = h.fwd_cnt;
            rx_post(1, RXSZ);
            any = true;
        }
        for (uint32_t i = 0; i < N; i++) {
            uint32_t credit = buf_alloc[i] - (uint32_t)(sent[i] - fwd[i]);
            if (!buf_alloc[i] || !credit)
                continue;
            w = pkt(3000 + i, 5555, VIRTIO_VSOCK_OP_RW,
                    credit < sizeof(data) ? credit : sizeof(data));
            tx(&w, data);
            sent[i] += w.len;
            total += w.len;
            any = true;
        }
        struct vsock_stats st = stats();
        cr_assert_leq(st.tx_granted_bytes, BUDGET, "granted %lu",
                      (unsigned long)st.tx_granted_bytes);
        cr_assert_leq(st.tx_buffered_bytes, st.tx_granted_bytes);
        if (st.tx_buffered_bytes > peak)
            peak = st.tx_buffered_bytes;
        idle = any ? 0 : idle + 1;
        if (!any)
            spin(1);
    }
    struct vsock_stats st = stats();
    cr_expect_eq(st.credit_violations, 0);
    cr_expect_gt(st.credit_limited, 0, "the budget never cut a grant");
    cr_expect_leq(st.tx_buffered_peak, BUDGET);
    /* The test reached the budget: the kernel took what it would, the
     * device held the rest up to the budget. */
    cr_expect_geq(peak, BUDGET / 2, "peak %lu: the device hardly buffered", (unsigned long)peak);
    cr_expect_gt(total, (uint64_t)N * 65536);

    /* The peer reads: every byte arrives, the budget comes back, and the
     * guest is given credit again. */
    int fds[N];
    uint64_t got = 0;
    for (uint32_t i = 0; i < N; i++) {
        spin(1);
        fds[i] = accept(l, NULL, NULL);
        cr_assert_geq(fds[i], 0);
        fcntl(fds[i], F_SETFL, O_NONBLOCK);
    }
    for (int i = 0; i < 5000 && got < total; i++) {
        bool any = false;
        for (uint32_t k = 0; k < N; k++) {
            ssize_t n = host_read(fds[k], sink, sizeof(sink));
            if (n > 0) {
                got += (uint64_t)n;
                any = true;
            }
        }
        while (rx_take(&h, NULL))
            rx_post(1, RXSZ);
        if (!any)
            spin(1);
    }
    cr_expect_eq(got, total);
    cr_expect_eq(stats().tx_buffered_bytes, 0);
    for (uint32_t i = 0; i < N; i++)
        close(fds[i]);
    close(l);
    unlink(path);
    stop();
}

/* Any chain layout is one buffer (virtio 1.2 §2.7.4): the header may have
 * a descriptor of its own in a packed header area (the SDK's RX chains) or
 * be split across descriptors, and the payload follows across the rest. */
Test(vsock_dev, rx_chains_of_any_layout)
{
    enum { HDRS = 0x80000u, PAY = 0x90000u };
    struct virtio_vsock_hdr h, r;
    char ok[32] = {0}, got[64] = {0};
    static const char msg[] = "split across descriptors";

    start(NULL);
    /* chain 0 (descriptors 0, 1): header alone, then 4 KiB of payload */
    *desc(0, 0) = (struct vring_desc){HDRS, HDR, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1};
    *desc(0, 1) = (struct vring_desc){PAY, 0x1000, VRING_DESC_F_WRITE, 0};
    /* chain 1 (2, 3, 4): 20 header bytes, the header's 24 others and 4 of
     * payload, then the rest of the payload */
    *desc(0, 2) = (struct vring_desc){HDRS + HDR, 20, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3};
    *desc(0, 3) =
        (struct vring_desc){HDRS + 0x100, HDR - 20 + 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 4};
    *desc(0, 4) = (struct vring_desc){PAY + 0x1000, 0x1000, VRING_DESC_F_WRITE, 0};
    offer(0, 0);
    offer(0, 2);
    kick(0);
    int fd = host_connect(uds, "CONNECT 52\n");
    uint8_t *u = used(0);
    cr_assert_eq(*(uint16_t *)(u + 2), 1, "the REQUEST is on RX");
    uint32_t id, len;
    memcpy(&id, u + 4, 4);
    memcpy(&len, u + 8, 4);
    cr_expect_eq(id, 0);
    cr_expect_eq(len, HDR);
    memcpy(&h, gpa(HDRS, HDR), HDR);
    cr_assert_eq(h.op, VIRTIO_VSOCK_OP_REQUEST);
    cr_expect_eq(h.dst_port, 52);
    r = pkt(52, h.src_port, VIRTIO_VSOCK_OP_RESPONSE, 0);
    tx(&r, NULL);
    cr_assert_gt(host_read(fd, ok, sizeof(ok) - 1), 0);
    cr_assert_eq(write(fd, msg, sizeof(msg) - 1), (ssize_t)sizeof(msg) - 1);
    spin(3);
    cr_assert_eq(*(uint16_t *)(u + 2), 2, "the data is on RX");
    memcpy(&id, u + 12, 4);
    memcpy(&len, u + 16, 4);
    cr_expect_eq(id, 2);
    cr_expect_eq(len, HDR + sizeof(msg) - 1);
    uint8_t raw[HDR];
    memcpy(raw, gpa(HDRS + HDR, 20), 20);
    memcpy(raw + 20, gpa(HDRS + 0x100, HDR - 20), HDR - 20);
    memcpy(&h, raw, HDR);
    cr_expect_eq(h.op, VIRTIO_VSOCK_OP_RW);
    cr_expect_eq(h.len, sizeof(msg) - 1);
    memcpy(got, gpa(HDRS + 0x100 + HDR - 20, 4), 4);
    memcpy(got + 4, gpa(PAY + 0x1000, sizeof(msg) - 1 - 4), sizeof(msg) - 1 - 4);
    cr_expect_str_eq(got, msg);
    close(fd);
    stop();
}
