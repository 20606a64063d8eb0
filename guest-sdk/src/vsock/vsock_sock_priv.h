/* vsock_sock_priv.h: the inside of the SDK's AF_VSOCK sockets, shared by
 * their three files (the face sys_socket.c uses is vsock_sock.h):
 *  - vsock_proto.c: the protocol: socket memory, port and connection tables,
 *    packets to and from the device, credit, timers;
 *  - vsock_sock.c: the socket calls (bind, listen, accept, connect, recv,
 *    send, shutdown, close, poll) and waiting;
 *  - vsock_sockopt.c: socket options and ioctls.
 * Not a public header.
 */
#ifndef EMBER_VSOCK_SOCK_PRIV_H
#define EMBER_VSOCK_SOCK_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vsock/vsock_dev.h"

#define VSK_BUF_DEFAULT        (256u * 1024u) /* Linux's default buf_alloc */
#define VSK_BUF_MIN            128u
#define VSK_BUF_MAX            (64u << 20)
#define VSK_CONNECT_TIMEOUT_NS (2ull * 1000000000ull) /* Linux: 2 s */
#define VSK_CLOSE_TIMEOUT_NS   (2ull * 1000000000ull) /* the host's shutdown timeout */
#define VSK_SOMAXCONN          4096u
#define VSK_EPHEMERAL_FIRST    49152u
#define VSK_HASH               32u /* 256 bytes of the write-hot page (ember.ld) */
#define VSK_RING_CACHE         16u
#define VSK_RING_MIN           (16u * 1024u)
#define VSK_RST_OWED           64u
#define NO_DEADLINE            UINT64_MAX

/* SO_* numbers at SOL_SOCKET on x86-64 Linux. */
#define SO_RCVTIMEO_OLD_ 20
#define SO_SNDTIMEO_OLD_ 21
#define SO_RCVTIMEO_NEW_ 66
#define SO_SNDTIMEO_NEW_ 67
#define SIOCINQ_         0x541b /* FIONREAD */
#define SIOCOUTQ_        0x5411 /* TIOCOUTQ */

enum vsk_state {
    VS_INIT,       /* new, maybe bound */
    VS_LISTEN,     /* listen() called */
    VS_CONNECTING, /* REQUEST sent, waiting for RESPONSE */
    VS_CONNECTED,  /* established */
    VS_CLOSED,     /* was connected; the peer reset it (or both shut down) */
    VS_ZOMBIE,     /* closed by the application, waiting for the peer's RST */
};

/* Control packets owed. */
enum {
    OWE_RESPONSE = 1u << 0,
    OWE_CREDIT = 1u << 1,
    OWE_SHUTDOWN = 1u << 2,
    OWE_RST = 1u << 3,
};

struct vsk {
    struct vsk *all_prev, *all_next; /* every live socket */
    struct vsk *hnext;               /* hash chain, when hashed */
    struct vsk *qnext;               /* accept queue of the parent */
    struct vsk *parent;              /* listener, until accepted */
    struct vsk *pend_next;           /* sockets with control packets owed */
    enum vsk_state state;
    bool hashed, owns_port, nonblock, in_pend, credit_asked;
    uint8_t shut;      /* local shutdown: VSOCK_SHUTDOWN_RCV / _SEND */
    uint8_t peer_shut; /* the peer's, from its SHUTDOWN (or RST: both) */
    uint8_t shut_sent; /* SHUTDOWN flags already sent */
    uint8_t owed;      /* OWE_* */
    int err;           /* SO_ERROR */
    uint32_t bound_cid, local_port, peer_port;
    uint64_t peer_cid;
    uint64_t deadline; /* connect or close timeout; NO_DEADLINE */
    /* receive */
    uint8_t *rbuf;
    uint32_t buf_alloc, rcap, rhead, rlen;
    uint32_t rx_cnt, fwd_cnt, fwd_told;
    /* send */
    uint32_t tx_cnt, peer_buf_alloc, peer_fwd_cnt;
    /* listener */
    struct vsk *aq_head, *aq_tail;
    uint32_t aq_len, backlog;
    /* options */
    uint64_t rcvtimeo_ns, sndtimeo_ns, connect_timeout_ns;
    uint64_t buf_min, buf_max;
    int opt_reuseaddr, opt_keepalive, opt_rcvbuf, opt_sndbuf, opt_rcvlowat, opt_priority;
    int opt_linger_on, opt_linger_s, opt_reuseport, opt_oobinline;
};

struct iov_cursor {
    const struct iovec *iov;
    size_t n, i, off;
};

/* ---- vsock_proto.c ----------------------------------------------------- */

struct vsk *vsk_sock_alloc(void);
void vsk_ring_put(uint8_t *p, uint32_t cap);
void vsk_ring_reserve(void);
void vsk_hash_add(struct vsk *s);
void vsk_hash_del(struct vsk *s);
struct vsk *vsk_lookup(uint32_t local, uint64_t peer_cid, uint32_t peer);
bool vsk_port_taken(uint32_t port);
uint32_t vsk_ephemeral_port(void);
void vsk_set_deadline(struct vsk *s, uint64_t t);
void vsk_sock_free(struct vsk *s);
void vsk_copy_from_iov(void *dst, void *arg, uint32_t n);
void vsk_hdr_for(struct vsk *s, struct vsock_hdr *h, uint16_t op, uint32_t flags, uint32_t len);
int vsk_send_ctl(struct vsk *s, uint16_t op, uint32_t flags);
void vsk_ctl(struct vsk *s, unsigned what);
void vsk_conn_reset(struct vsk *s, int err);

#endif
