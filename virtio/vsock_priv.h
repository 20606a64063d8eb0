/* vsock_priv.h: the inside of the virtio-vsock device, shared by its four
 * files (the public face is vsock_device.h):
 *  - vsock_device.c: the device, its queues and the transport callbacks;
 *  - vsock_packet.c: packets, the 44-byte header both ways (virtio 1.2
 *    §5.10.6), the checks on every TX packet, RSTs and control packets owed;
 *  - vsock_conn.c: the connection state machine, credit, the data path;
 *  - vsock_bridge.c: the host's Unix sockets (listener, CONNECT handshake,
 *    <uds_path>_<port> for guest-initiated connections).
 * Everything here runs with the transport lock held (t.lock).
 */
#ifndef EMBER_VIRTIO_VSOCK_PRIV_H
#define EMBER_VIRTIO_VSOCK_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>

#include <linux/virtio_vsock.h>

#include "virtio/mmio.h"
#include "virtio/queue.h"
#include "virtio/vsock_device.h"

#define HDR              ((uint32_t)sizeof(struct virtio_vsock_hdr)) /* 44 bytes */
#define Q_RX             0u
#define Q_TX             1u
#define Q_EVENT          2u
#define NBUCKETS         256u
#define CONNECT_LINE_MAX 32u                /* "CONNECT 4294967295\n" fits */
#define LOCAL_PORT0      (1u << 30)         /* host ends of host-initiated connections */
#define TX_BUDGET        (2u * VQ_SIZE_MAX) /* chains per TX callback before yielding */
#define READS_MAX        16u                /* packets per connection per readable event */

/* Control packets owed to the guest, per connection, in the order sent. */
enum {
    P_REQUEST = 1u << 0,
    P_RESPONSE = 1u << 1,
    P_CREDIT_UPDATE = 1u << 2,
    P_CREDIT_REQUEST = 1u << 3,
    P_SHUTDOWN = 1u << 4,
};

enum conn_state {
    C_HANDSHAKE, /* host connected, reading its CONNECT line */
    C_REQUEST,   /* REQUEST owed or sent to the guest, waiting for RESPONSE */
    C_OPEN,      /* established */
    C_CLOSING,   /* waiting for the guest's RST, or for a flush, bounded by a timer */
};

struct conn {
    struct vsock *v;
    LIST_ENTRY(conn) hlink; /* hash chain, once the ports are known */
    TAILQ_ENTRY(conn) all;  /* every live connection */
    TAILQ_ENTRY(conn) pend; /* connections with control packets owed */
    bool owed;              /* on the pend list */
    int fd;
    uv_poll_t poll;
    uv_timer_t timer;
    int closing; /* uv handles still closing */
    int events;  /* what poll watches now */
    bool dead;
    enum conn_state state;
    uint32_t local_port, peer_port;
    unsigned pending;
    uint32_t shutdown_flags; /* of the SHUTDOWN owed */
    char line[CONNECT_LINE_MAX];
    unsigned line_len;
    /* host -> guest */
    uint32_t peer_buf_alloc, peer_fwd_cnt, to_guest;
    bool credit_requested;
    /* guest -> host. limit: the most the guest may have sent (fwd_cnt +
     * buf_alloc as last told, never lowered); limit - fwd_cnt is what this
     * connection may make us hold, counted in vsock.granted. */
    uint32_t from_guest, fwd_cnt, fwd_told, limit, granted_alloc;
    bool starved; /* on vsock.starved: its credit was cut short */
    TAILQ_ENTRY(conn) starve;
    uint8_t *buf; /* buf_len bytes for the host socket, from buf[0]; NULL when empty */
    uint32_t buf_len, buf_cap;
    bool guest_shut_send, guest_shut_rcv, host_eof, host_gone, shut_wr;
};

struct rst {
    uint32_t local_port, peer_port;
};

struct vsock {
    struct virtio_mmio t;
    struct vsock_config cfg;
    const struct guest_mem *mem;
    int listen_fd;
    bool listening; /* uds_path is ours to unlink */
    struct vsock_stats stats;

    uv_loop_t *loop;
    bool attached;
    uv_poll_t listen_poll, notify_poll[3];
    uv_async_t wake;
    bool reset_pending;

    LIST_HEAD(vsock_bucket, conn) hash[NBUCKETS];
    TAILQ_HEAD(vsock_conns, conn) conns;     /* every live connection */
    struct vsock_conns pend;                 /* those with control packets owed */
    TAILQ_HEAD(vsock_starved, conn) starved; /* credit cut by the budget, oldest first */
    uint64_t granted;                        /* sum of limit - fwd_cnt: <= cfg.buffer_bytes */
    uint64_t pool_used;                      /* the part of it beyond each floor */
    uint32_t nconns, next_port;
    struct rst *rsts; /* ring of RSTs owed for connections already gone; NULL until the first */
    uint32_t rst_head, nrst, rst_cap;

    struct vq_chain rx; /* an RX chain taken but not filled yet */
    bool rx_held, rx_starved, rx_pushed, tx_pushed;
    struct vq_chain tx;
};

/* ---- vsock_device.c: queues ---------------------------------------------- */

/* Puts queue q into NEEDS_RESET and hangs up on every host peer. */
void vsock_queue_broken(struct vsock *v, unsigned q, const char *why);
/* The RX chain to fill next, or NULL when the guest has given none (then
 * rx_starved is set until the guest notifies RX). */
struct vq_chain *vsock_rx_get(struct vsock *v);
/* Completes the held RX chain with header h and len payload bytes. */
void vsock_rx_put(struct vsock *v, const struct virtio_vsock_hdr *h, uint32_t len);
/* End of every main-loop callback: flush what is owed, raise interrupts. */
void vsock_finish(struct vsock *v);
/* Drops every connection if the driver reset the device. */
void vsock_apply_reset(struct vsock *v);

/* ---- vsock_packet.c: packets --------------------------------------------- */

/* Header of a packet on connection c (with our credit figures: see
 * vsock_conn_grant). */
void vsock_conn_hdr(struct conn *c, struct virtio_vsock_hdr *h, uint16_t op, uint32_t flags,
                    uint32_t len);
/* Owes the guest an RST for (local, peer); bounded, drops are counted. */
void vsock_rst_push(struct vsock *v, uint32_t local, uint32_t peer);
/* Delivers what the guest is owed: RSTs first, then control packets. */
void vsock_rx_flush(struct vsock *v);
/* One TX chain. Returns false if the queue broke. */
bool vsock_tx_packet(struct vsock *v, const struct vq_chain *ch);

/* ---- vsock_conn.c: connections ------------------------------------------- */

struct conn *vsock_lookup(struct vsock *v, uint32_t local, uint32_t peer);
/* The buf_alloc to tell the guest on c now, within the budget; raises c's
 * limit to fwd_cnt + that. */
uint32_t vsock_conn_grant(struct conn *c);
struct conn *vsock_conn_new(struct vsock *v, int fd, enum conn_state state);
/* Enters c into the hash once its ports are known. */
void vsock_conn_hash(struct conn *c);
/* Ends c (see vsock_conn.c). */
void vsock_conn_kill(struct conn *c, bool rst);
void vsock_kill_all(struct vsock *v);
/* Owes the guest the control packets in what (P_*). */
void vsock_owe(struct conn *c, unsigned what);
/* Watches c's host socket for what c can do now. */
void vsock_conn_update_poll(struct conn *c);
void vsock_conn_start_timer(struct conn *c, uint32_t ms);
/* A guest REQUEST to the host (no connection on these ports yet). */
void vsock_guest_connect(struct vsock *v, uint32_t local, uint32_t peer, uint32_t buf_alloc,
                         uint32_t fwd_cnt);
/* A valid TX packet h (payload in ch after the header) on connection c. */
void vsock_conn_packet(struct conn *c, const struct virtio_vsock_hdr *h, const struct vq_chain *ch);

/* ---- vsock_bridge.c: host Unix sockets ------------------------------------ */

/* Binds and listens on cfg.uds_path (taking over a stale socket file). */
int vsock_bridge_listen(struct vsock *v, char *err, size_t errlen);
/* Closes the listener and removes uds_path if it is ours. */
void vsock_bridge_close(struct vsock *v);
/* The listener's libuv callback: accepts host connections. */
void vsock_bridge_accept_cb(uv_poll_t *p, int status, int events);
/* Reads a host connection's CONNECT line (state C_HANDSHAKE). */
void vsock_bridge_handshake(struct conn *c);
/* Connects to <uds_path>_<port>: a non-blocking socket, or -1. */
int vsock_bridge_connect(struct vsock *v, uint32_t port);
/* Writes `OK <local_port>\n` to the host socket of c. False if it is gone. */
bool vsock_bridge_send_ok(struct conn *c);

#endif
