/* vsock_packet.c: virtio-vsock packets (virtio 1.2 §5.10.6): the 44-byte
 * header the device writes for every packet to the guest, the RSTs and
 * control packets owed and their delivery, and the checks every TX packet
 * passes before a connection sees it (vsock_priv.h).
 *
 * A TX header is copied out of guest memory once and only the copy is used.
 * A packet that is not for us or not well formed costs its connection (RST),
 * never the device; a chain too short for a header breaks the TX queue.
 */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_vsock.h>

#include "virtio/vsock_priv.h"

static void fill_hdr(struct vsock *v, struct virtio_vsock_hdr *h, uint32_t local, uint32_t peer,
                     uint16_t op, uint32_t flags, uint32_t len)
{
    memset(h, 0, sizeof(*h));
    h->src_cid = htole64(VSOCK_HOST_CID);
    h->dst_cid = htole64(v->cfg.guest_cid);
    h->src_port = htole32(local);
    h->dst_port = htole32(peer);
    h->len = htole32(len);
    h->type = htole16(VIRTIO_VSOCK_TYPE_STREAM);
    h->op = htole16(op);
    h->flags = htole32(flags);
}

void vsock_conn_hdr(struct conn *c, struct virtio_vsock_hdr *h, uint16_t op, uint32_t flags,
                    uint32_t len)
{
    fill_hdr(c->v, h, c->local_port, c->peer_port, op, flags, len);
    h->buf_alloc = htole32(vsock_conn_grant(c));
    h->fwd_cnt = htole32(c->fwd_cnt);
    c->fwd_told = c->fwd_cnt;
}

void vsock_rst_push(struct vsock *v, uint32_t local, uint32_t peer)
{
    if (!v->rsts)
        v->rsts = malloc((size_t)v->rst_cap * sizeof(*v->rsts));
    if (!v->rsts || v->nrst == v->rst_cap) {
        v->stats.rst_dropped++;
        return;
    }
    v->rsts[(v->rst_head + v->nrst) % v->rst_cap] = (struct rst){local, peer};
    v->nrst++;
}

/* Sends c's owed control packets. False if the guest ran out of RX buffers. */
static bool send_controls(struct conn *c)
{
    struct vsock *v = c->v;
    struct virtio_vsock_hdr h;

    while (c->pending) {
        unsigned bit = c->pending & -c->pending;
        if (!vsock_rx_get(v))
            return false;
        switch (bit) {
        case P_REQUEST:
            vsock_conn_hdr(c, &h, VIRTIO_VSOCK_OP_REQUEST, 0, 0);
            break;
        case P_RESPONSE:
            vsock_conn_hdr(c, &h, VIRTIO_VSOCK_OP_RESPONSE, 0, 0);
            break;
        case P_CREDIT_UPDATE:
            vsock_conn_hdr(c, &h, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 0);
            break;
        case P_CREDIT_REQUEST:
            vsock_conn_hdr(c, &h, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0, 0);
            break;
        default:
            vsock_conn_hdr(c, &h, VIRTIO_VSOCK_OP_SHUTDOWN, c->shutdown_flags, 0);
            break;
        }
        vsock_rx_put(v, &h, 0);
        c->pending &= ~bit;
    }
    return true;
}

/* Delivers what the guest is owed: RSTs first, then control packets. */
void vsock_rx_flush(struct vsock *v)
{
    struct virtio_vsock_hdr h;

    while (v->nrst) {
        if (!vsock_rx_get(v))
            return;
        struct rst r = v->rsts[v->rst_head];
        fill_hdr(v, &h, r.local_port, r.peer_port, VIRTIO_VSOCK_OP_RST, 0, 0);
        vsock_rx_put(v, &h, 0);
        v->rst_head = (v->rst_head + 1) % v->rst_cap;
        v->nrst--;
        v->stats.resets_sent++;
    }
    struct conn *c;
    while ((c = TAILQ_FIRST(&v->pend))) {
        if (!send_controls(c))
            return;
        TAILQ_REMOVE(&v->pend, c, pend);
        c->owed = false;
        vsock_conn_update_poll(c); /* a RESPONSE sent may open the data path */
    }
}

/* One TX chain. Returns false if the queue broke. */
bool vsock_tx_packet(struct vsock *v, const struct vq_chain *ch)
{
    struct virtio_vsock_hdr h;
    struct conn *c;

    if (ch->readable < HDR) {
        char why[96];
        snprintf(why, sizeof(why), "TX packet of %lu bytes, shorter than its %u-byte header",
                 (unsigned long)ch->readable, HDR);
        vsock_queue_broken(v, Q_TX, why);
        return false;
    }
    vq_chain_copy(ch, false, 0, &h, HDR); /* one fetch; only the copy is used */
    uint64_t src_cid = le64toh(h.src_cid), dst_cid = le64toh(h.dst_cid);
    uint32_t src_port = le32toh(h.src_port), dst_port = le32toh(h.dst_port);
    uint32_t len = le32toh(h.len);
    uint16_t type = le16toh(h.type), op = le16toh(h.op);

    v->stats.tx_packets++;
    c = vsock_lookup(v, dst_port, src_port);
    if (src_cid != v->cfg.guest_cid || dst_cid != VSOCK_HOST_CID ||
        type != VIRTIO_VSOCK_TYPE_STREAM || len > ch->readable - HDR ||
        len > VSOCK_PKT_PAYLOAD_MAX || op == VIRTIO_VSOCK_OP_INVALID ||
        op > VIRTIO_VSOCK_OP_CREDIT_REQUEST || (len && op != VIRTIO_VSOCK_OP_RW)) {
        v->stats.malformed++;
        if (c)
            vsock_conn_kill(c, true);
        else if (op != VIRTIO_VSOCK_OP_RST)
            vsock_rst_push(v, dst_port, src_port);
        return true;
    }
    if (!c) {
        if (op == VIRTIO_VSOCK_OP_REQUEST)
            vsock_guest_connect(v, dst_port, src_port, le32toh(h.buf_alloc), le32toh(h.fwd_cnt));
        else if (op != VIRTIO_VSOCK_OP_RST)
            vsock_rst_push(v, dst_port, src_port);
        return true;
    }
    vsock_conn_packet(c, &h, ch);
    return true;
}
