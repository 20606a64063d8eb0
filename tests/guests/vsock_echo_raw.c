/* vsock_echo_raw.c: a guest that answers host vsock connections on one port
 * and echoes every byte back, through raw MMIO and polling (vsock_raw.h).
 * It is the host side's end-to-end partner until the SDK has AF_VSOCK
 * sockets: a byte echo is also a valid ember/faas.h echo function (the
 * response header is the request header, status 0 = OK).
 *
 * Usage: vsock_echo_raw [PORT [CONNS]]: serves until CONNS connections
 * (default 1) have ended, then prints "vsock-echo: served N connections, B
 * bytes" and exits 0. Up to 64 connections at once, each with 64 KiB of
 * receive buffer (what it advertises as buf_alloc), with credit respected
 * both ways and a graceful close (SHUTDOWN, then the device's RST). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsock_raw.h"

#define MAXC     64u
#define PEND_CAP (64u * 1024u)

struct conn {
    int used, host_shut, closing, credit_asked;
    uint32_t host_port;
    uint32_t host_buf_alloc, host_fwd_cnt, tx_cnt; /* our sending credit */
    uint32_t fwd_cnt;                              /* bytes we took off pend */
    uint32_t head, len;
    uint8_t pend[PEND_CAP];
};

static struct vr v;
static struct conn conns[MAXC];
static uint32_t port = 1024, served, want = 1;
static uint64_t echoed;

static struct conn *find(uint32_t host_port)
{
    for (unsigned i = 0; i < MAXC; i++)
        if (conns[i].used && conns[i].host_port == host_port)
            return &conns[i];
    return NULL;
}

static void reply(uint32_t host_port, uint16_t op, uint32_t flags, const struct conn *c)
{
    struct vr_hdr h;

    vr_hdr_init(&v, &h, port, host_port, op, PEND_CAP, c ? c->fwd_cnt : 0);
    h.flags = flags;
    vr_send(&v, &h, NULL);
}

static void end(struct conn *c)
{
    c->used = 0;
    served++;
}

static void handle(const struct vr_hdr *h, uint32_t total)
{
    const uint8_t *payload = (const uint8_t *)h + VR_HDR;
    struct conn *c;

    if (h->dst_cid != v.cid || h->type != 1)
        return;
    if (h->dst_port != port) {
        if (h->op != VR_OP_RST) { /* nothing listens there */
            struct vr_hdr r;
            vr_hdr_init(&v, &r, h->dst_port, h->src_port, VR_OP_RST, 0, 0);
            vr_send(&v, &r, NULL);
        }
        return;
    }
    c = find(h->src_port);
    if (h->op == VR_OP_REQUEST) {
        if (c)
            return;
        for (unsigned i = 0; i < MAXC && !c; i++)
            if (!conns[i].used)
                c = &conns[i];
        if (!c) {
            reply(h->src_port, VR_OP_RST, 0, NULL);
            return;
        }
        memset(c, 0, sizeof(*c) - PEND_CAP);
        c->used = 1;
        c->host_port = h->src_port;
        c->host_buf_alloc = h->buf_alloc;
        c->host_fwd_cnt = h->fwd_cnt;
        reply(h->src_port, VR_OP_RESPONSE, 0, c);
        return;
    }
    if (!c) {
        if (h->op != VR_OP_RST)
            reply(h->src_port, VR_OP_RST, 0, NULL);
        return;
    }
    c->host_buf_alloc = h->buf_alloc;
    c->host_fwd_cnt = h->fwd_cnt;
    switch (h->op) {
    case VR_OP_RW:
        if (h->len > total - VR_HDR || h->len > PEND_CAP - c->len) {
            printf("vsock-echo: host sent %u bytes beyond its credit\n", h->len);
            reply(c->host_port, VR_OP_RST, 0, c);
            end(c);
            return;
        }
        for (uint32_t k = 0; k < h->len;) {
            uint32_t at = (c->head + c->len) % PEND_CAP;
            uint32_t n = PEND_CAP - at < h->len - k ? PEND_CAP - at : h->len - k;
            memcpy(c->pend + at, payload + k, n);
            c->len += n;
            k += n;
        }
        break;
    case VR_OP_CREDIT_REQUEST:
        reply(c->host_port, VR_OP_CREDIT_UPDATE, 0, c);
        break;
    case VR_OP_CREDIT_UPDATE:
        c->credit_asked = 0;
        break;
    case VR_OP_SHUTDOWN:
        c->host_shut = 1;
        break;
    case VR_OP_RST:
        end(c);
        break;
    default:
        break;
    }
}

/* Echoes what the host's credit allows; closes after the host's SHUTDOWN. */
static void pump(struct conn *c)
{
    while (c->len) {
        uint32_t in_flight = c->tx_cnt - c->host_fwd_cnt;
        uint32_t credit = in_flight > c->host_buf_alloc ? 0 : c->host_buf_alloc - in_flight;
        if (!credit) {
            if (!c->credit_asked) {
                c->credit_asked = 1;
                reply(c->host_port, VR_OP_CREDIT_REQUEST, 0, c);
            }
            return;
        }
        uint32_t n = c->len < credit ? c->len : credit;
        if (n > VR_PAYLOAD)
            n = VR_PAYLOAD;
        if (n > PEND_CAP - c->head)
            n = PEND_CAP - c->head;
        uint32_t slot;
        uint8_t *buf = vr_tx_begin(&v, &slot);
        if (!buf)
            return;
        c->fwd_cnt += n;
        struct vr_hdr h;
        vr_hdr_init(&v, &h, port, c->host_port, VR_OP_RW, PEND_CAP, c->fwd_cnt);
        h.len = n;
        memcpy(buf, &h, VR_HDR);
        memcpy(buf + VR_HDR, c->pend + c->head, n);
        vr_tx_commit(&v, slot, VR_HDR + n);
        c->head = (c->head + n) % PEND_CAP;
        c->len -= n;
        c->tx_cnt += n;
        echoed += n;
    }
    if (c->host_shut && !c->closing) {
        c->closing = 1;
        reply(c->host_port, VR_OP_SHUTDOWN, VR_SHUT_RCV | VR_SHUT_SEND, c);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        port = (uint32_t)strtoul(argv[1], NULL, 10);
    if (argc > 2)
        want = (uint32_t)strtoul(argv[2], NULL, 10);
    if (vr_find(&v) != 0) {
        printf("vsock-echo: no vsock device\n");
        return 2;
    }
    vr_setup(&v, VR_BUF);
    printf("vsock-echo: cid %lu, port %u\n", (unsigned long)v.cid, port);
    fflush(stdout);
    uint64_t next_check = 0;
    while (served < want) {
        uint32_t id, len;
        struct vr_hdr *h;
        int any = 0;
        while ((h = vr_rx_next(&v, &id, &len)) != NULL) {
            if (len >= VR_HDR)
                handle(h, len);
            vr_rx_done(&v, id);
            any = 1;
        }
        if (any)
            vr_notify(&v, 0);
        for (unsigned i = 0; i < MAXC; i++)
            if (conns[i].used)
                pump(&conns[i]);
        /* Reading the status register is a VM exit: not on every turn. */
        if (ember_monotonic_ns() >= next_check) {
            next_check = ember_monotonic_ns() + 100000000ull;
            if (vr_needs_reset(&v)) {
                printf("vsock-echo: device needs reset\n");
                return 3;
            }
        }
    }
    printf("vsock-echo: served %u connections, %lu bytes\n", served, (unsigned long)echoed);
    return 0;
}
