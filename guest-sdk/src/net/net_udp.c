/* net_udp.c: UDP (RFC 768): sockets' endpoints, datagrams in to a receive
 * queue bounded by SO_RCVBUF bytes (further datagrams are dropped and
 * counted, as Linux does), datagrams out with the checksum always on.
 *
 * Demultiplexing prefers a connected endpoint matching all four fields,
 * then one bound to the exact local address, then a wildcard one. A
 * datagram for no endpoint gets ICMP port unreachable (RFC 1122 §4.1.3.1),
 * unless it was a broadcast.
 */
#include <errno.h>

#include "net/net_dhcp.h"
#include "net/net_stack.h"

#define IPPROTO_UDP     17u
#define UDP_RCVBUF_DEF  (212992u) /* Linux's net.core.rmem_default */
#define UDP_PAYLOAD_MAX (NET_GSO_MAX - NET_IP_HLEN - NET_UDP_HLEN)

struct udp_dgram {
    struct udp_dgram *next;
    uint32_t addr;
    uint16_t port;
    uint32_t len, size;
    uint8_t data[];
};

struct udp_pcb *udp_new(struct net_stack *ns)
{
    struct udp_pcb *u = net_zalloc(sizeof(*u));

    if (!u)
        return NULL;
    u->ns = ns;
    u->rcvbuf = UDP_RCVBUF_DEF;
    u->next = ns->udp;
    ns->udp = u;
    return u;
}

static uint16_t ephemeral(struct net_stack *ns)
{
    for (unsigned i = 0; i < 60999 - 32768 + 1; i++) {
        uint16_t p = ns->next_port++;
        if (ns->next_port > 60999 || ns->next_port < 32768)
            ns->next_port = 32768;
        if (p >= 32768 && p <= 60999 && !net_port_in_use(ns, IPPROTO_UDP, 0, net_htons(p), false))
            return net_htons(p);
    }
    return 0;
}

int udp_bind(struct udp_pcb *u, uint32_t addr, uint16_t port)
{
    if (u->lport)
        return -EINVAL;
    if (addr && !net_ip_is_local(u->ns, addr) && addr != 0xffffffffu)
        return -EADDRNOTAVAIL;
    if (!port) {
        if (!(port = ephemeral(u->ns)))
            return -EADDRINUSE;
    } else if (net_port_in_use(u->ns, IPPROTO_UDP, addr, port, u->reuse)) {
        return -EADDRINUSE;
    }
    u->laddr = addr;
    u->lport = port;
    return 0;
}

int udp_connect(struct udp_pcb *u, uint32_t addr, uint16_t port)
{
    if (!addr) {
        u->raddr = 0;
        u->rport = 0;
        return 0;
    }
    if (!port)
        return -EINVAL; /* Linux connects, but nothing can be sent to port 0 */
    if (!net_ip_is_local(u->ns, addr) && !net_ip_route(u->ns, addr))
        return -ENETUNREACH;
    if (!u->lport) {
        int r = udp_bind(u, 0, 0);
        if (r)
            return r;
    }
    u->raddr = addr;
    u->rport = port;
    return 0;
}

long udp_sendto(struct udp_pcb *u, uint32_t addr, uint16_t port, const struct iovec *iov,
                int iovcnt)
{
    struct net_stack *ns = u->ns;
    if (!addr) {
        if (!u->raddr)
            return -EDESTADDRREQ;
        addr = u->raddr;
        port = u->rport;
    }
    if (!port)
        return -EINVAL;
    if (addr == 0xffffffffu && !u->broadcast)
        return -EACCES;
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++) {
        len += iov[i].iov_len;
        if (len > UDP_PAYLOAD_MAX)
            return -EMSGSIZE;
    }
    /* No IP fragmentation: a datagram fits one frame. */
    if (len + NET_IP_HLEN + NET_UDP_HLEN > ns->nif->mtu && !net_ip_is_local(ns, addr))
        return -EMSGSIZE;
    if (!u->lport) {
        int r = udp_bind(u, 0, 0);
        if (r)
            return r;
    }
    uint32_t src = u->laddr && u->laddr != 0xffffffffu ? u->laddr : 0;
    if (!src && net_ip_is_local(ns, addr))
        src = ns->nif->addr ? ns->nif->addr : addr;
    uint8_t *buf = net_zalloc(NET_HDR_ROOM + len);
    if (!buf)
        return -ENOBUFS;
    uint8_t *uh = buf + NET_ETH_HLEN + NET_IP_HLEN;
    uint8_t *d = uh + NET_UDP_HLEN;
    for (int i = 0; i < iovcnt; i++) {
        net_copy(d, iov[i].iov_base, iov[i].iov_len);
        d += iov[i].iov_len;
    }
    net_copy(uh, &u->lport, 2);
    net_copy(uh + 2, &port, 2);
    net_put16(uh + 4, (uint16_t)(NET_UDP_HLEN + len));
    struct net_frame f = {
        .seg = {{buf, (uint32_t)(NET_ETH_HLEN + NET_IP_HLEN + NET_UDP_HLEN + len)}}, .nseg = 1};
    int r = net_ip_output(ns, src, addr, IPPROTO_UDP, &f, NET_UDP_HLEN, 6, 0);
    net_free(buf, NET_HDR_ROOM + len);
    if (r == -EAGAIN)
        r = -ENOBUFS;
    return r < 0 ? r : (long)len;
}

static struct udp_pcb *demux(struct net_stack *ns, uint32_t src, uint16_t sport, uint32_t dst,
                             uint16_t dport)
{
    struct udp_pcb *best = NULL;
    int best_score = -1;
    for (struct udp_pcb *u = ns->udp; u; u = u->next) {
        if (u->lport != dport)
            continue;
        int score = 0;
        if (u->laddr) {
            if (u->laddr != dst && !(u->laddr == 0xffffffffu))
                continue;
            score += 1;
        }
        if (u->raddr) {
            if (u->raddr != src || u->rport != sport)
                continue;
            score += 2;
        }
        if (score > best_score) {
            best = u;
            best_score = score;
        }
    }
    return best;
}

void net_udp_input(struct net_stack *ns, uint32_t src, uint32_t dst, uint8_t *p, uint32_t len,
                   bool csum_ok, const uint8_t *iph, uint32_t iplen)
{
    if (len < NET_UDP_HLEN) {
        ns->stats.rx_drop_bad++;
        return;
    }
    uint32_t ulen = net_get16(p + 4);
    if (ulen < NET_UDP_HLEN || ulen > len) {
        ns->stats.rx_drop_bad++;
        return;
    }
    if (!csum_ok && net_get16(p + 6) != 0 &&
        net_csum_fold(net_csum_add(net_csum_pseudo(src, dst, IPPROTO_UDP, ulen), p, ulen))) {
        ns->stats.rx_drop_bad++;
        return;
    }
    uint16_t sport, dport;
    net_copy(&sport, p, 2);
    net_copy(&dport, p + 2, 2);
    if (ns->dhcp && dport == net_htons(DHCP_CLIENT_PORT)) {
        net_dhcp_input(ns, p + NET_UDP_HLEN, ulen - NET_UDP_HLEN);
        return;
    }
    struct udp_pcb *u = demux(ns, src, sport, dst, dport);
    if (!u) {
        ns->stats.rx_drop_other++;
        const struct net_if *n = ns->nif;
        bool bcast = dst == 0xffffffffu || (n->netmask && dst == (n->addr | ~n->netmask));
        if (!bcast)
            net_icmp_unreach(ns, 3, iph, iplen);
        return;
    }
    uint32_t dlen = ulen - NET_UDP_HLEN;
    if (u->rbytes + dlen > u->rcvbuf) {
        ns->stats.rx_drop_other++;
        return;
    }
    uint32_t size = (uint32_t)sizeof(struct udp_dgram) + dlen;
    struct udp_dgram *g = net_zalloc(size);
    if (!g) {
        ns->stats.rx_drop_other++;
        return;
    }
    g->addr = src;
    g->port = sport;
    g->len = dlen;
    g->size = size;
    net_copy(g->data, p + NET_UDP_HLEN, dlen);
    if (u->rq_tail)
        u->rq_tail->next = g;
    else
        u->rq_head = g;
    u->rq_tail = g;
    u->rq_count++;
    u->rbytes += dlen;
}

void net_udp_icmp_error(struct net_stack *ns, uint32_t dst, uint16_t dport, uint16_t sport, int err)
{
    /* Linux reports ICMP errors on connected UDP sockets only. */
    for (struct udp_pcb *u = ns->udp; u; u = u->next)
        if (u->lport == sport && u->raddr == dst && u->rport == dport)
            u->err = err;
}

bool udp_readable(const struct udp_pcb *u)
{
    return u->rq_head != NULL;
}

uint32_t udp_next_len(const struct udp_pcb *u)
{
    return u->rq_head ? u->rq_head->len : 0;
}

long udp_recvfrom(struct udp_pcb *u, const struct iovec *iov, int iovcnt, bool peek, uint32_t *addr,
                  uint16_t *port, uint32_t *full)
{
    struct udp_dgram *g = u->rq_head;

    if (!g)
        return -EAGAIN;
    uint32_t off = 0;
    for (int i = 0; i < iovcnt && off < g->len; i++) {
        uint32_t n = g->len - off < iov[i].iov_len ? g->len - off : (uint32_t)iov[i].iov_len;
        net_copy(iov[i].iov_base, g->data + off, n);
        off += n;
    }
    if (addr)
        *addr = g->addr;
    if (port)
        *port = g->port;
    if (full)
        *full = g->len;
    if (!peek) {
        u->rq_head = g->next;
        if (!u->rq_head)
            u->rq_tail = NULL;
        u->rq_count--;
        u->rbytes -= g->len;
        net_free(g, g->size);
    }
    return off;
}

void udp_close(struct udp_pcb *u)
{
    struct net_stack *ns = u->ns;
    for (struct udp_pcb **pp = &ns->udp; *pp; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            break;
        }
    while (u->rq_head) {
        struct udp_dgram *g = u->rq_head;
        u->rq_head = g->next;
        net_free(g, g->size);
    }
    net_free(u, sizeof(*u));
}
