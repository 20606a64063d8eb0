/* vsock_hostile.c: a guest that breaks the vsock rules on purpose, through
 * raw MMIO (vsock_raw.h). The host test connects once ("CONNECT 5000") when
 * the guest prints "hostile: ready"; the guest then sends past its credit,
 * sends malformed packets, floods TX while it gives no RX buffers, and breaks
 * the TX and RX chains. Expected output, one line per case:
 *   "hostile: credit lie: reset", "hostile: <case>: rst",
 *   "hostile: flood: N rsts, bounded", "hostile: <case>: needs reset",
 *   "hostile: recovered"; exit 0. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "vsock_raw.h"

#define LIE_PORT  5000u
#define BUF_ALLOC (256u * 1024u) /* the device's, VSOCK_BUF_ALLOC_DEFAULT */

static struct vr v;
static uint8_t junk[VR_PAYLOAD];

/* Waits for a packet with op; other packets are dropped. */
static struct vr_hdr *wait_op(uint16_t op, uint64_t timeout_ns)
{
    uint64_t deadline = ember_monotonic_ns() + timeout_ns;
    uint32_t id, len;

    while (ember_monotonic_ns() < deadline) {
        struct vr_hdr *h = vr_rx_wait(&v, &id, &len, deadline - ember_monotonic_ns());
        if (!h)
            return NULL;
        vr_rx_done(&v, id);
        vr_notify(&v, 0);
        if (h->op == op)
            return h;
    }
    return NULL;
}

static void post_rx(unsigned n)
{
    static unsigned next;

    for (unsigned i = 0; i < n; i++, next++)
        vr_offer(&v, 0, (uint16_t)(next % VR_QSZ));
    vr_notify(&v, 0);
}

static int credit_lie(void)
{
    struct vr_hdr h, *req;
    uint32_t host_port, id, len;

    post_rx(1); /* one buffer: the REQUEST; then the device can tell us nothing */
    printf("hostile: ready\n");
    fflush(stdout);
    /* Not handed back: the device must have no RX buffer to tell us of
     * new credit with. */
    req = vr_rx_wait(&v, &id, &len, 20000000000ull);
    if (!req || req->op != VR_OP_REQUEST || req->dst_port != LIE_PORT) {
        printf("hostile: credit lie: no CONNECT from the host\n");
        return 1;
    }
    host_port = req->src_port;
    vr_hdr_init(&v, &h, LIE_PORT, host_port, VR_OP_RESPONSE, 65536, 0);
    vr_send(&v, &h, NULL);
    /* 256 KiB is all the credit the device gave; send 320 KiB. */
    for (uint32_t sent = 0; sent < BUF_ALLOC + 64 * 1024; sent += VR_PAYLOAD) {
        vr_hdr_init(&v, &h, LIE_PORT, host_port, VR_OP_RW, 65536, 0);
        h.len = VR_PAYLOAD;
        if (vr_send(&v, &h, junk) != 0)
            break;
    }
    vr_rx_done(&v, id);
    post_rx(VR_QSZ - 2);
    struct vr_hdr *rst = wait_op(VR_OP_RST, 2000000000ull);
    if (rst && rst->dst_port == LIE_PORT) {
        printf("hostile: credit lie: reset\n");
        return 0;
    }
    printf("hostile: credit lie: NOT reset\n");
    return 1;
}

static int expect_rst(const char *what, const struct vr_hdr *h, uint32_t total)
{
    uint8_t pkt[VR_HDR + 16] = {0};

    memcpy(pkt, h, VR_HDR);
    vr_tx_raw(&v, pkt, total);
    if (wait_op(VR_OP_RST, 2000000000ull)) {
        printf("hostile: %s: rst\n", what);
        return 0;
    }
    printf("hostile: %s: no RST\n", what);
    return 1;
}

static int malformed(void)
{
    struct vr_hdr h;
    int bad = 0;

    vr_hdr_init(&v, &h, 100, 200, VR_OP_REQUEST, 65536, 0);
    h.type = 2;
    bad |= expect_rst("bad type", &h, VR_HDR);
    vr_hdr_init(&v, &h, 100, 200, VR_OP_RW, 65536, 0);
    h.len = 4096;
    bad |= expect_rst("len beyond the chain", &h, VR_HDR + 16);
    vr_hdr_init(&v, &h, 100, 200, 42, 65536, 0);
    bad |= expect_rst("unknown op", &h, VR_HDR);
    vr_hdr_init(&v, &h, 100, 200, VR_OP_RW, 65536, 0);
    h.src_cid = 1234;
    bad |= expect_rst("wrong src_cid", &h, VR_HDR);
    return bad;
}

/* 20,000 packets for connections that do not exist, with no RX buffers:
 * each is owed an RST, but the device keeps only a bounded number. */
static int flood(void)
{
    struct vr_hdr h;
    uint32_t id, len, rsts = 0;

    vr_setup(&v, 0);
    for (uint32_t i = 0; i < 20000; i++) {
        vr_hdr_init(&v, &h, 3000 + i, 4000, VR_OP_RW, 65536, 0);
        if (vr_send(&v, &h, NULL) != 0) {
            printf("hostile: flood: TX stalled at %u\n", i);
            return 1;
        }
    }
    for (uint32_t i = 0; i < VR_QSZ; i++)
        v.q[0].desc[i] = (struct vr_desc){(uintptr_t)v.rx[i], VR_BUF, VR_F_WRITE, 0};
    post_rx(VR_QSZ);
    for (;;) {
        struct vr_hdr *p = vr_rx_wait(&v, &id, &len, 300000000ull);
        if (!p)
            break;
        rsts += p->op == VR_OP_RST;
        vr_rx_done(&v, id);
        vr_notify(&v, 0);
    }
    printf("hostile: flood: %u rsts, %s\n", rsts, rsts > 0 && rsts < 20000 ? "bounded" : "?");
    return !(rsts > 0 && rsts < 20000);
}

static int expect_reset(const char *what)
{
    uint64_t deadline = ember_monotonic_ns() + 2000000000ull;

    while (ember_monotonic_ns() < deadline)
        if (vr_needs_reset(&v)) {
            printf("hostile: %s: needs reset\n", what);
            return 0;
        }
    printf("hostile: %s: device did NOT ask for reset\n", what);
    return 1;
}

int main(void)
{
    int bad = 0;

    if (vr_find(&v) != 0) {
        printf("hostile: no vsock device\n");
        return 2;
    }
    vr_setup(&v, 0);
    for (uint32_t i = 0; i < VR_QSZ; i++)
        v.q[0].desc[i] = (struct vr_desc){(uintptr_t)v.rx[i], VR_BUF, VR_F_WRITE, 0};
    bad |= credit_lie();
    bad |= malformed();
    bad |= flood();

    vr_setup(&v, VR_BUF);
    struct vr_hdr h;
    vr_hdr_init(&v, &h, 1, 2, VR_OP_RW, 0, 0);
    vr_tx_raw(&v, &h, 20); /* shorter than a header */
    bad |= expect_reset("short header");

    vr_setup(&v, 0);
    v.q[0].desc[0] = (struct vr_desc){(uintptr_t)v.rx[0], VR_HDR, VR_F_WRITE, 0};
    vr_offer(&v, 0, 0);
    vr_notify(&v, 0);
    vr_hdr_init(&v, &h, 1, 2, VR_OP_RW, 0, 0); /* owed an RST: the device takes RX */
    vr_send(&v, &h, NULL);
    bad |= expect_reset("RX buffer without room for data");

    vr_setup(&v, VR_BUF);
    vr_hdr_init(&v, &h, 7, 8, VR_OP_CREDIT_REQUEST, 0, 0);
    vr_send(&v, &h, NULL);
    if (wait_op(VR_OP_RST, 2000000000ull) && !vr_needs_reset(&v)) {
        printf("hostile: recovered\n");
    } else {
        printf("hostile: did not recover\n");
        bad = 1;
    }
    vr_wr(&v, VR_REG_STATUS, 0);
    return bad;
}
