/* vsock_queue_reset.c: a guest that changes the RX queue under the device
 * while the device holds one of its chains (issue 10), through raw MMIO
 * (vsock_raw.h). Twice, each time after ordinary traffic from the host
 * (tests/integration/test_vsock_vm.c connects with "CONNECT 5000" and sends
 * "hello" when the guest prints "queue reset: ready"):
 *   live:    DRIVER_OK set; STATUS written without it, RX QueueReady 0,
 *            QueueNum 0, and a TX packet that is owed an RST. The device
 *            must need a reset (one log line) and ignore the rest.
 *   init:    DRIVER_OK never set (the device serves queues anyway); RX
 *            QueueReady 0 and QueueNum 0 are then legal, the same TX packet
 *            follows. The device must drop the chain it held, not push it.
 * Then a reset and a round trip show the monitor and the device carry on.
 * Output: "queue reset: <case>: ..." lines, "queue reset: recovered";
 * exit 0. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "vsock_raw.h"

#define PORT        5000u
#define NOBODY_PORT 7777u /* nothing listens on <uds>_7777: an RST is owed */

static struct vr v;

/* Waits for a packet with op; other packets are handed back. */
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

/* The host connects and sends "hello"; the device fills one RX chain with
 * it and, finding the socket empty, keeps the next chain it took. */
static int ordinary_traffic(const char *what)
{
    struct vr_hdr h, *p;

    printf("queue reset: ready\n");
    fflush(stdout);
    p = wait_op(VR_OP_REQUEST, 20000000000ull);
    if (!p || p->dst_port != PORT) {
        printf("queue reset: %s: no CONNECT from the host\n", what);
        return -1;
    }
    uint32_t host_port = p->src_port;
    vr_hdr_init(&v, &h, PORT, host_port, VR_OP_RESPONSE, 65536, 0);
    vr_send(&v, &h, NULL);
    p = wait_op(VR_OP_RW, 20000000000ull);
    if (!p || p->len != 5 || memcmp(p + 1, "hello", 5) != 0) {
        printf("queue reset: %s: no data from the host\n", what);
        return -1;
    }
    return 0;
}

/* RX QueueReady 0 and QueueNum 0, then a packet the device must answer. */
static void pull_rx_queue(void)
{
    struct vr_hdr h;

    vr_wr(&v, VR_REG_QUEUE_SEL, 0);
    vr_wr(&v, VR_REG_QUEUE_READY, 0);
    vr_wr(&v, VR_REG_QUEUE_NUM, 0);
    vr_hdr_init(&v, &h, 4000, NOBODY_PORT, VR_OP_REQUEST, 65536, 0);
    vr_send(&v, &h, NULL);
}

static int live_case(void)
{
    vr_setup(&v, VR_BUF);
    if (ordinary_traffic("live") != 0)
        return 1;
    vr_wr(&v, VR_REG_STATUS, VR_S_ACK | VR_S_DRIVER | VR_S_FEATURES_OK);
    pull_rx_queue();
    uint64_t deadline = ember_monotonic_ns() + 2000000000ull;
    while (ember_monotonic_ns() < deadline)
        if (vr_needs_reset(&v)) {
            printf("queue reset: live: needs reset\n");
            return 0;
        }
    printf("queue reset: live: device did NOT ask for reset\n");
    return 1;
}

static int init_case(void)
{
    vr_setup_status(&v, VR_BUF, 0);
    if (ordinary_traffic("init") != 0)
        return 1;
    pull_rx_queue();
    /* The TX buffer coming back shows the device took the packet; the RST
     * it owes has nowhere to go. */
    uint64_t deadline = ember_monotonic_ns() + 2000000000ull;
    while (ember_monotonic_ns() < deadline) {
        vr_tx_reclaim(&v);
        if (v.ntx_free == VR_QSZ)
            break;
    }
    if (v.ntx_free != VR_QSZ || vr_needs_reset(&v)) {
        printf("queue reset: init: TX not consumed (%u free), status 0x%x\n", v.ntx_free,
               vr_rd(&v, VR_REG_STATUS));
        return 1;
    }
    printf("queue reset: init: survived\n");
    return 0;
}

int main(void)
{
    int bad = 0;
    struct vr_hdr h;

    if (vr_find(&v) != 0) {
        printf("queue reset: no vsock device\n");
        return 2;
    }
    bad |= live_case();
    bad |= init_case();

    vr_setup(&v, VR_BUF);
    vr_hdr_init(&v, &h, 4001, NOBODY_PORT, VR_OP_REQUEST, 65536, 0);
    vr_send(&v, &h, NULL);
    struct vr_hdr *rst = wait_op(VR_OP_RST, 2000000000ull);
    if (rst && rst->dst_port == 4001 && !vr_needs_reset(&v)) {
        printf("queue reset: recovered\n");
    } else {
        printf("queue reset: did not recover\n");
        bad = 1;
    }
    vr_wr(&v, VR_REG_STATUS, 0);
    return bad;
}
