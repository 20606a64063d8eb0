/* net_stack.h: the SDK's TCP/IP stack (Ethernet, ARP, IPv4, ICMP, UDP, TCP).
 *
 * The stack is pure C: it touches no device, no clock and no allocator of
 * its own. A platform gives it an interface (struct net_if: a transmit
 * function, offloads, addresses) and four hooks (net_now_ns, net_random32,
 * net_zalloc, net_free); the guest's are net_dev.c (virtio-net) and
 * net_sock.c, a host unit test's are a fake link that wires two stacks back
 * to back (tests/unit/test_net_stack.c). Everything lives in one struct
 * net_stack, so a test can run several in one process.
 *
 * Nothing runs by itself: the platform hands received frames to
 * net_input(), calls net_timers() when net_next_timer() has passed, and
 * calls the socket-facing functions (tcp_*, udp_*). Every function returns
 * having done all it can without waiting. Addresses and ports are kept in
 * network byte order (as in struct sockaddr_in), sequence numbers in host
 * order.
 */
#ifndef EMBER_NET_STACK_H
#define EMBER_NET_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define NET_ETH_HLEN  14u
#define NET_ETH_MTU   1500u
#define NET_IP_HLEN   20u
#define NET_TCP_HLEN  20u
#define NET_UDP_HLEN  8u
#define NET_HDR_ROOM  (NET_ETH_HLEN + 60u + 60u) /* eth + largest IP + largest TCP header */
#define NET_GSO_MAX   65535u                     /* largest IP datagram, TSO included */
#define NET_TX_SEGS   4u
#define NET_ARP_SLOTS 16u
#define NET_OOO_MAX   8u /* out-of-order ranges a TCP connection remembers */

/* ---- platform hooks ------------------------------------------------------ */

uint64_t net_now_ns(void);
uint32_t net_random32(void);
void *net_zalloc(size_t len); /* zeroed, or NULL */
void net_free(void *p, size_t len);

/* ---- byte order and checksums ---------------------------------------------- */

static inline uint16_t net_htons(uint16_t v)
{
    return __builtin_bswap16(v);
}
static inline uint32_t net_htonl(uint32_t v)
{
    return __builtin_bswap32(v);
}
#define net_ntohs net_htons
#define net_ntohl net_htonl

static inline uint16_t net_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t net_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void net_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void net_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* RFC 1071 one's-complement sums: add bytes (any alignment, any length;
 * an odd length must be the last piece), fold to 16 bits. */
uint32_t net_csum_add(uint32_t sum, const void *p, size_t len);
uint16_t net_csum_fold(uint32_t sum);
/* The TCP/UDP pseudo-header's sum (RFC 9293 §3.1), not folded. */
uint32_t net_csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint32_t len);

static inline void net_copy(void *d, const void *s, size_t n)
{
    __builtin_memcpy(d, s, n);
}

/* ---- the interface --------------------------------------------------------- */

/* A frame to transmit: pieces gathered in order, plus what virtio_net_hdr
 * (virtio 1.2 §5.1.6.2) says about it. */
struct net_seg {
    const void *p;
    uint32_t len;
};
#define NET_TX_F_CSUM 1u /* checksum at csum_start + csum_offset is partial */
#define NET_GSO_NONE  0u
#define NET_GSO_TCPV4 1u
struct net_frame {
    struct net_seg seg[NET_TX_SEGS];
    unsigned nseg;
    uint32_t len;
    uint8_t flags, gso_type;
    uint16_t hdr_len, gso_size, csum_start, csum_offset;
};

/* Offloads the interface has (from the negotiated virtio features). */
#define NET_OFF_TX_CSUM 1u /* the device completes checksums (VIRTIO_NET_F_CSUM) */
#define NET_OFF_TSO4    2u /* the device segments TCPv4 (VIRTIO_NET_F_HOST_TSO4) */

/* net_input() flags. */
#define NET_RX_CSUM_OK 1u /* L4 checksum known good (DATA_VALID or NEEDS_CSUM) */

struct net_if {
    uint8_t mac[6];
    uint16_t mtu;
    unsigned offload;
    /* Addresses (network order); addr 0 = not configured. */
    uint32_t addr, netmask, gateway, dns[2];
    /* Queues a frame for the device; 0, or -EAGAIN when no room. The frame
     * is copied: its pieces may be reused once this returns. */
    int (*tx)(struct net_if *nif, const struct net_frame *f);
    /* Frames tx() can take right now. */
    unsigned (*tx_room)(struct net_if *nif);
    void *priv;
};

struct net_stats {
    uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes;
    uint64_t rx_drop_bad;   /* malformed or bad checksum */
    uint64_t rx_drop_other; /* not for us, unsupported, no room */
    uint64_t tx_drop;       /* device full, no route, ARP gave up */
    uint64_t tcp_rexmt, tcp_fast_rexmt, tcp_rst_sent, tcp_ooo;
};

/* ---- ARP (net_arp.c) ------------------------------------------------------- */

struct net_arp_pending;
struct net_arp_entry {
    uint32_t ip; /* 0 = free */
    uint8_t mac[6];
    uint8_t state; /* ARP_INCOMPLETE, ARP_REACHABLE */
    uint8_t tries;
    uint64_t expires; /* REACHABLE: time to ask again; INCOMPLETE: next request */
    struct net_arp_pending *pending;
    unsigned npending;
};

/* ---- the stack --------------------------------------------------------------- */

struct tcp_pcb;
struct udp_pcb;
struct net_dhcp;

struct net_stack {
    struct net_if *nif;
    struct net_stats stats;
    struct net_arp_entry arp[NET_ARP_SLOTS];
    struct tcp_pcb *tcp; /* every TCP connection and listener */
    struct udp_pcb *udp;
    uint16_t ip_id;
    bool tx_blocked; /* TCP output stopped for want of device room */
    /* Inside a receive pass (net_rx_begin/net_rx_end): the ACKs that
     * in-order data calls for wait for its end, one per connection. */
    bool rx_batch, acks_due;
    uint16_t next_port;  /* ephemeral port hint (host order) */
    uint64_t next_timer; /* no timer is due before this */
    /* Frames to this stack's own addresses, delivered at the next
     * net_timers()/net_poll_loopback(). */
    struct net_loop_frame *loop_head, *loop_tail;
    struct net_dhcp *dhcp; /* the DHCP client (net_dhcp.c), NULL when not running */
};

void net_stack_init(struct net_stack *ns, struct net_if *nif);
/* A received Ethernet frame (the buffer may be modified). */
void net_input(struct net_stack *ns, uint8_t *frame, uint32_t len, unsigned flags);
/* Runs what is due (timers, loopback frames); returns the next time
 * anything is due (UINT64_MAX: nothing). */
uint64_t net_timers(struct net_stack *ns);
static inline uint64_t net_next_timer(const struct net_stack *ns)
{
    return ns->next_timer;
}
static inline void net_timer_at(struct net_stack *ns, uint64_t t)
{
    if (t < ns->next_timer)
        ns->next_timer = t;
}
/* Loopback frames waiting (to this host's own address or 127/8). */
static inline bool net_loopback_pending(const struct net_stack *ns)
{
    return ns->loop_head != 0;
}

/* ---- layers, inside the stack ---------------------------------------------- */

/* net_eth.c: sends an IP datagram whose frame starts with NET_ETH_HLEN bytes
 * of room in seg[0] to next hop nh (ARP as needed). 0 or -errno. */
int net_eth_output_ip(struct net_stack *ns, uint32_t nh, struct net_frame *f);
/* Raw Ethernet frame out (dst, type filled in by the caller). */
int net_eth_xmit(struct net_stack *ns, struct net_frame *f);

/* net_arp.c */
void net_arp_input(struct net_stack *ns, const uint8_t *pkt, uint32_t len);
/* The MAC for ip, or NULL after queueing a copy of f (and asking). */
const uint8_t *net_arp_resolve(struct net_stack *ns, uint32_t ip, const struct net_frame *f,
                               int *err);
uint64_t net_arp_timers(struct net_stack *ns, uint64_t now);

/* net_ip.c */
void net_ip_input(struct net_stack *ns, uint8_t *pkt, uint32_t len, unsigned flags, bool l2_bcast);
/* Sends an IP datagram: seg[0] of f holds NET_ETH_HLEN + NET_IP_HLEN bytes of
 * room and then the L4 header (l4_hlen bytes), further segments the
 * payload. The IP header is filled in here; the L4 checksum at l4_csum_off
 * (from the L4 header's start) is finished here (in software, or left
 * partial for the device). src 0 = the interface's address. */
int net_ip_output(struct net_stack *ns, uint32_t src, uint32_t dst, uint8_t proto,
                  struct net_frame *f, uint32_t l4_hlen, uint32_t l4_csum_off, uint16_t gso_mss);
/* A 20-byte IPv4 header with DF, TTL 64 and its checksum. */
void net_ip_header(struct net_stack *ns, uint8_t *ip, uint32_t src, uint32_t dst, uint8_t proto,
                   uint32_t tot);
/* net_stack.c: a frame to this host itself, delivered by net_timers(). */
int net_loopback_queue(struct net_stack *ns, const struct net_frame *f);
bool net_ip_is_local(const struct net_stack *ns, uint32_t ip);
/* Next hop for dst, 0 if there is no route. */
uint32_t net_ip_route(const struct net_stack *ns, uint32_t dst);

/* net_icmp.c */
void net_icmp_input(struct net_stack *ns, uint32_t src, uint32_t dst, uint8_t *pkt, uint32_t len,
                    const uint8_t *iph, uint32_t ihl);
/* Destination unreachable (type 3) for the datagram at iph. */
void net_icmp_unreach(struct net_stack *ns, uint8_t code, const uint8_t *iph, uint32_t len);

/* net_udp.c / net_tcp.c inputs: pkt is the L4 header, len its datagram
 * length, csum_ok the L4 checksum need not be checked. */
void net_udp_input(struct net_stack *ns, uint32_t src, uint32_t dst, uint8_t *pkt, uint32_t len,
                   bool csum_ok, const uint8_t *iph, uint32_t iplen);
void net_tcp_input(struct net_stack *ns, uint32_t src, uint32_t dst, uint8_t *pkt, uint32_t len,
                   bool csum_ok);
void net_udp_icmp_error(struct net_stack *ns, uint32_t dst, uint16_t dport, uint16_t sport,
                        int err);
void net_tcp_icmp_error(struct net_stack *ns, uint32_t dst, uint16_t dport, uint16_t sport,
                        int err);
uint64_t net_tcp_timers(struct net_stack *ns, uint64_t now);
/* The device has room again: connections that stopped sending go on. */
void net_tcp_resume(struct net_stack *ns);
/* A receive pass (the driver's batch of frames) begins / ends: the end
 * sends the ACKs it put off (see net_tcp.c). */
static inline void net_rx_begin(struct net_stack *ns)
{
    ns->rx_batch = true;
}
void net_rx_end(struct net_stack *ns);
bool net_port_in_use(struct net_stack *ns, int proto, uint32_t addr, uint16_t port, bool reuse);

/* ---- UDP (net_udp.c) --------------------------------------------------------- */

struct udp_dgram;
struct udp_pcb {
    struct udp_pcb *next;
    struct net_stack *ns;
    uint32_t laddr, raddr; /* raddr != 0: connected */
    uint16_t lport, rport;
    bool reuse, broadcast;
    int err; /* pending asynchronous error (ICMP), for SO_ERROR / next call */
    uint32_t rcvbuf, rbytes;
    struct udp_dgram *rq_head, *rq_tail;
    unsigned rq_count;
};

struct udp_pcb *udp_new(struct net_stack *ns);
int udp_bind(struct udp_pcb *u, uint32_t addr, uint16_t port);
int udp_connect(struct udp_pcb *u, uint32_t addr, uint16_t port); /* addr 0: disconnect */
/* Sends one datagram of the iovec's bytes to (addr, port), or the connected
 * peer when addr is 0. Bytes sent or -errno. */
long udp_sendto(struct udp_pcb *u, uint32_t addr, uint16_t port, const struct iovec *iov,
                int iovcnt);
/* The next datagram into iov (truncated: *full gets its real length);
 * -EAGAIN when none waits. */
long udp_recvfrom(struct udp_pcb *u, const struct iovec *iov, int iovcnt, bool peek, uint32_t *addr,
                  uint16_t *port, uint32_t *full);
bool udp_readable(const struct udp_pcb *u);
uint32_t udp_next_len(const struct udp_pcb *u);
void udp_close(struct udp_pcb *u);

/* ---- TCP (net_tcp.c) --------------------------------------------------------- */

enum tcp_state {
    TCPS_CLOSED,
    TCPS_LISTEN,
    TCPS_SYN_SENT,
    TCPS_SYN_RCVD,
    TCPS_ESTABLISHED,
    TCPS_FIN_WAIT_1,
    TCPS_FIN_WAIT_2,
    TCPS_CLOSE_WAIT,
    TCPS_CLOSING,
    TCPS_LAST_ACK,
    TCPS_TIME_WAIT,
};

struct tcp_ooo {
    uint32_t start, end; /* [start, end) in sequence space */
};

struct tcp_pcb {
    struct tcp_pcb *next;
    struct net_stack *ns;
    enum tcp_state state;
    uint32_t laddr, raddr;
    uint16_t lport, rport;
    bool orphan;     /* the application closed it: free once CLOSED */
    bool reuse;      /* SO_REUSEADDR */
    bool nodelay;    /* TCP_NODELAY */
    bool keepalive;  /* SO_KEEPALIVE */
    bool ack_now;    /* send an ACK at the next output */
    bool ack_soon;   /* an ACK due at the end of the receive pass */
    bool rd_shut;    /* SHUT_RD */
    bool fin_queued; /* SHUT_WR or close: FIN after the data */
    bool fin_rcvd;   /* the peer's FIN was taken in order */
    bool sack_ok, ws_ok;
    bool force; /* persist timer: send a small window-limited segment */
    int err;    /* SO_ERROR: ECONNRESET, ETIMEDOUT, ECONNREFUSED ... */

    /* Send side (RFC 9293 §3.3.1). The ring holds the bytes from sbase on
     * (unacknowledged, then unsent). */
    uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd, snd_wnd_max, snd_wl1, snd_wl2;
    uint32_t sbase;
    uint8_t *sbuf;
    uint32_t scap, shead, slen, sndbuf;
    uint8_t snd_shift; /* the peer's window scale */
    uint16_t mss;      /* largest segment we send */
    uint16_t peer_mss;

    /* Receive side. The ring holds rlen in-order bytes from rhead on, then
     * room where out-of-order segments land at their offsets. */
    uint32_t irs, rcv_nxt, rcv_adv; /* rcv_adv: right edge last advertised */
    uint8_t *rbuf;
    uint32_t rcap, rhead, rlen, rcvbuf;
    uint8_t rcv_shift;
    struct tcp_ooo ooo[NET_OOO_MAX];
    unsigned nooo;
    bool fin_pending; /* FIN seen beyond a hole, at fin_seq */
    uint32_t fin_seq;
    uint32_t unacked_bytes; /* received since our last ACK (delayed ACK) */

    /* Congestion control (RFC 5681, NewReno RFC 6582). */
    uint32_t cwnd, ssthresh, recover, bytes_acked;
    unsigned dupacks;
    bool in_recovery;

    /* Round-trip time (RFC 6298), microseconds. */
    uint64_t srtt_us, rttvar_us, rto_us;
    uint32_t rtt_seq;
    uint64_t rtt_start;
    bool rtt_timing;
    unsigned backoff, retries;

    /* Timers: absolute net_now_ns() times, 0 = off. */
    uint64_t t_rexmt, t_delack, t_keep, t_persist, t_2msl;
    uint64_t last_rx;
    uint32_t keep_idle_s, keep_intvl_s, keep_cnt, keep_probes;

    /* Listener: embryonic and ready children; child: its listener. */
    struct tcp_pcb *parent, *accq_next;
    struct tcp_pcb *accq_head, *accq_tail;
    unsigned backlog, nchild, naccq;
    bool accepted;
};

struct tcp_pcb *tcp_new(struct net_stack *ns);
int tcp_bind(struct tcp_pcb *p, uint32_t addr, uint16_t port);
int tcp_listen(struct tcp_pcb *p, int backlog);
/* An established child from the accept queue, or NULL. */
struct tcp_pcb *tcp_accept(struct tcp_pcb *l);
/* Sends the SYN: 0, or -errno (-ENETUNREACH, -EADDRNOTAVAIL, -ENOMEM). */
int tcp_connect(struct tcp_pcb *p, uint32_t addr, uint16_t port);
/* Copies up to the send buffer's room; bytes taken (> 0), -EAGAIN when it
 * is full, -EPIPE / -errno when the connection cannot send. */
long tcp_send(struct tcp_pcb *p, const struct iovec *iov, int iovcnt, bool more);
/* Bytes read (> 0), 0 at end of stream, -EAGAIN when nothing waits, or
 * -errno (a reset). */
long tcp_recv(struct tcp_pcb *p, const struct iovec *iov, int iovcnt, bool peek);
int tcp_shutdown(struct tcp_pcb *p, bool rd, bool wr);
/* The application is done with p: FIN (or RST when unread data is
 * dropped, or abort), then p is freed by the stack. */
void tcp_close(struct tcp_pcb *p, bool abort);
/* poll(2) bits for p (POLLIN, POLLOUT, POLLHUP, POLLRDHUP, POLLERR). */
unsigned tcp_poll(const struct tcp_pcb *p);
/* Sends pending ACKs / window updates and data that can go now. */
void tcp_output(struct tcp_pcb *p);
/* SO_KEEPALIVE (the idle time counts from the last segment received). */
void tcp_set_keepalive(struct tcp_pcb *p, bool on);
int tcp_set_bufsize(struct tcp_pcb *p, bool rcv, uint32_t bytes);
uint32_t tcp_inq(const struct tcp_pcb *p);
uint32_t tcp_outq(const struct tcp_pcb *p);

#endif /* EMBER_NET_STACK_H */
