/* vsock_flood.c: a guest that makes the device hold as much of its data as
 * it can (issue 10), through raw MMIO (vsock_raw.h): N connections (argv[1],
 * default 1023) to host port 5000, whose peer accepts nothing and reads
 * nothing, each sent all the credit the device gives it. It prints
 * "flood: N conns open, B bytes sent" once no connection has credit left,
 * then waits for the host to connect to port 6000 (the sign it has
 * measured), and exits 0. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsock_raw.h"

#define PORT      5000u
#define GO_PORT   6000u
#define PORT0     20000u
#define CONNS_MAX 1023u

static struct vr v;
static uint8_t payload[VR_PAYLOAD];

struct conn {
    uint32_t buf_alloc, fwd_cnt, sent;
    uint8_t state; /* 0 asked, 1 open, 2 refused */
};

static struct conn conns[CONNS_MAX];
static uint32_t n;

static uint32_t credit(const struct conn *c)
{
    uint32_t in_flight = c->sent - c->fwd_cnt;

    return in_flight > c->buf_alloc ? 0 : c->buf_alloc - in_flight;
}

/* Takes in what the device sent; true if anything came. Returns 2 when the
 * host connected to GO_PORT. */
static int poll_rx(uint64_t timeout_ns)
{
    uint32_t id, len;
    int got = 0;
    struct vr_hdr *h = vr_rx_wait(&v, &id, &len, timeout_ns);

    while (h) {
        uint32_t i = h->dst_port - PORT0;
        got = 1;
        if (h->op == VR_OP_REQUEST && h->dst_port == GO_PORT) {
            vr_rx_done(&v, id);
            vr_notify(&v, 0);
            return 2;
        }
        if (i < n) {
            struct conn *c = &conns[i];
            c->buf_alloc = h->buf_alloc;
            c->fwd_cnt = h->fwd_cnt;
            if (h->op == VR_OP_RESPONSE)
                c->state = 1;
            else if (h->op == VR_OP_RST)
                c->state = 2;
        }
        vr_rx_done(&v, id);
        h = vr_rx_next(&v, &id, &len);
    }
    vr_notify(&v, 0);
    return got;
}

int main(int argc, char **argv)
{
    struct vr_hdr h;
    uint64_t total = 0;
    uint32_t open = 0;

    n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : CONNS_MAX;
    if (n > CONNS_MAX)
        n = CONNS_MAX;
    if (vr_find(&v) != 0) {
        printf("flood: no vsock device\n");
        return 2;
    }
    vr_setup(&v, VR_BUF);
    for (uint32_t i = 0; i < n; i++) {
        vr_hdr_init(&v, &h, PORT0 + i, PORT, VR_OP_REQUEST, 65536, 0);
        if (vr_send(&v, &h, NULL) != 0) {
            printf("flood: TX stalled at connection %u\n", i);
            return 1;
        }
        poll_rx(0);
    }
    /* Every connection answered (RESPONSE or RST), bounded. */
    for (uint64_t deadline = ember_monotonic_ns() + 10000000000ull;
         ember_monotonic_ns() < deadline;) {
        uint32_t asked = 0;
        for (uint32_t i = 0; i < n; i++)
            asked += conns[i].state == 0;
        if (!asked)
            break;
        poll_rx(1000000);
    }
    /* Send all the credit there is, until none comes for 0.5 s. */
    for (uint64_t quiet = ember_monotonic_ns() + 500000000ull; ember_monotonic_ns() < quiet;) {
        int sent = 0;
        for (uint32_t i = 0; i < n; i++) {
            struct conn *c = &conns[i];
            uint32_t k = credit(c);
            if (c->state != 1 || k == 0)
                continue;
            if (k > VR_PAYLOAD)
                k = VR_PAYLOAD;
            vr_hdr_init(&v, &h, PORT0 + i, PORT, VR_OP_RW, 65536, 0);
            h.len = k;
            if (vr_send(&v, &h, payload) != 0)
                break;
            c->sent += k;
            total += k;
            sent = 1;
        }
        if (poll_rx(sent ? 0 : 1000000) || sent)
            quiet = ember_monotonic_ns() + 500000000ull;
    }
    for (uint32_t i = 0; i < n; i++)
        open += conns[i].state == 1;
    printf("flood: %u conns open, %lu bytes sent\n", open, (unsigned long)total);
    fflush(stdout);
    for (uint64_t deadline = ember_monotonic_ns() + 60000000000ull;
         ember_monotonic_ns() < deadline;)
        if (poll_rx(100000000) == 2)
            break;
    vr_wr(&v, VR_REG_STATUS, 0);
    return 0;
}
