/* net_ip.c: IPv4 (RFC 791): datagrams in to ICMP, UDP and TCP; datagrams out
 * to the next hop, with header checksum and the L4 checksum finished in
 * software or left to the device (virtio 1.2 §5.1.6.2, NEEDS_CSUM), and
 * TCP segmentation left to it when it offers TSO.
 *
 * Every field of a received header is checked before use: version 4, a
 * header length of 20-60 bytes within the frame, a total length within the
 * frame (the rest is Ethernet padding), the header checksum, a destination
 * that is ours (or broadcast). Fragments are dropped (the stack sends
 * with DF and an MSS that fits the MTU; nothing it talks to needs
 * reassembly), as are options we do not need (they are skipped).
 */
#include <errno.h>

#include "net/net_stack.h"

#define IP_DF        0x4000u
#define IP_MF        0x2000u
#define IP_OFFMASK   0x1fffu
#define IP_TTL       64u
#define IPPROTO_ICMP 1u
#define IPPROTO_TCP  6u
#define IPPROTO_UDP  17u

static bool is_loopback(uint32_t ip)
{
    return (net_ntohl(ip) >> 24) == 127;
}

bool net_ip_is_local(const struct net_stack *ns, uint32_t ip)
{
    return is_loopback(ip) || (ns->nif->addr && ip == ns->nif->addr);
}

uint32_t net_ip_route(const struct net_stack *ns, uint32_t dst)
{
    const struct net_if *n = ns->nif;

    if (dst == 0xffffffffu)
        return dst;
    if (n->addr && n->netmask && (dst & n->netmask) == (n->addr & n->netmask))
        return dst;
    if (n->gateway)
        return n->gateway;
    /* No netmask and no gateway (a point-to-point set-up): on link. */
    return n->addr && !n->netmask ? dst : 0;
}

void net_ip_input(struct net_stack *ns, uint8_t *p, uint32_t len, unsigned flags, bool l2_bcast)
{
    if (len < NET_IP_HLEN || (p[0] >> 4) != 4) {
        ns->stats.rx_drop_bad++;
        return;
    }
    uint32_t ihl = (p[0] & 15u) * 4u, tot = net_get16(p + 2);
    if (ihl < NET_IP_HLEN || tot < ihl || tot > len || net_csum_fold(net_csum_add(0, p, ihl))) {
        ns->stats.rx_drop_bad++;
        return;
    }
    uint16_t frag = net_get16(p + 6);
    if (frag & (IP_MF | IP_OFFMASK)) {
        ns->stats.rx_drop_other++; /* no reassembly */
        return;
    }
    uint32_t src, dst;
    net_copy(&src, p + 12, 4);
    net_copy(&dst, p + 16, 4);
    const struct net_if *n = ns->nif;
    bool bcast = dst == 0xffffffffu || (n->netmask && dst == (n->addr | ~n->netmask));
    bool mine = net_ip_is_local(ns, dst) || bcast || (!n->addr && !l2_bcast);
    /* A broadcast or multicast source is never a peer (RFC 1122 §3.2.1.3). */
    if (!mine || src == 0xffffffffu || (net_ntohl(src) >> 28) == 14) {
        ns->stats.rx_drop_other++;
        return;
    }
    uint8_t *l4 = p + ihl;
    uint32_t l4len = tot - ihl;
    bool csum_ok = (flags & NET_RX_CSUM_OK) != 0;
    switch (p[9]) {
    case IPPROTO_ICMP:
        if (!bcast)
            net_icmp_input(ns, src, dst, l4, l4len, p, ihl);
        break;
    case IPPROTO_UDP:
        net_udp_input(ns, src, dst, l4, l4len, csum_ok, p, tot);
        break;
    case IPPROTO_TCP:
        if (!bcast)
            net_tcp_input(ns, src, dst, l4, l4len, csum_ok);
        break;
    default:
        ns->stats.rx_drop_other++;
        if (!bcast)
            net_icmp_unreach(ns, 2, p, tot); /* protocol unreachable */
        break;
    }
}

void net_ip_header(struct net_stack *ns, uint8_t *ip, uint32_t src, uint32_t dst, uint8_t proto,
                   uint32_t tot)
{
    ip[0] = 0x45; /* version 4, 20-byte header */
    ip[1] = 0;
    net_put16(ip + 2, (uint16_t)tot);
    net_put16(ip + 4, ns->ip_id++);
    net_put16(ip + 6, IP_DF);
    ip[8] = IP_TTL;
    ip[9] = proto;
    ip[10] = ip[11] = 0;
    net_copy(ip + 12, &src, 4);
    net_copy(ip + 16, &dst, 4);
    net_put16(ip + 10, net_csum_fold(net_csum_add(0, ip, NET_IP_HLEN)));
}

int net_ip_output(struct net_stack *ns, uint32_t src, uint32_t dst, uint8_t proto,
                  struct net_frame *f, uint32_t l4_hlen, uint32_t l4_csum_off, uint16_t gso_mss)
{
    struct net_if *n = ns->nif;
    uint8_t *ip = (uint8_t *)f->seg[0].p + NET_ETH_HLEN;
    uint8_t *l4 = ip + NET_IP_HLEN;
    bool local = net_ip_is_local(ns, dst);

    if (!src)
        src = n->addr;
    f->len = 0;
    for (unsigned i = 0; i < f->nseg; i++)
        f->len += f->seg[i].len;
    uint32_t tot = f->len - NET_ETH_HLEN;
    if (tot > NET_GSO_MAX)
        return -EMSGSIZE;
    uint32_t nh = local ? dst : net_ip_route(ns, dst);
    if (!nh) {
        ns->stats.tx_drop++;
        return -ENETUNREACH;
    }
    net_ip_header(ns, ip, src, dst, proto, tot);

    /* L4 checksum: the pseudo-header's sum in the field and the device (or
     * the loopback, which never checks) does the rest; else all of it. */
    uint32_t l4len = tot - NET_IP_HLEN;
    uint32_t ph = net_csum_pseudo(src, dst, proto, l4len);
    bool gso = gso_mss && l4len - l4_hlen > gso_mss;
    f->flags = 0;
    f->gso_type = NET_GSO_NONE;
    f->gso_size = 0;
    f->hdr_len = 0;
    if (local || (n->offload & NET_OFF_TX_CSUM)) {
        uint16_t fold = (uint16_t)~net_csum_fold(ph);
        net_put16(l4 + l4_csum_off, fold);
        f->flags = NET_TX_F_CSUM;
        f->csum_start = (uint16_t)(NET_ETH_HLEN + NET_IP_HLEN);
        f->csum_offset = (uint16_t)l4_csum_off;
    } else {
        net_put16(l4 + l4_csum_off, 0);
        uint32_t s = ph;
        /* seg[0] from the L4 header on, then the rest; only the last piece
         * may have an odd length, so odd pieces in the middle are summed
         * byte-swapped (RFC 1071 §2(B)). */
        uint32_t off0 = NET_ETH_HLEN + NET_IP_HLEN;
        bool odd = false;
        for (unsigned i = 0; i < f->nseg; i++) {
            const uint8_t *b = (const uint8_t *)f->seg[i].p + (i == 0 ? off0 : 0);
            uint32_t l = f->seg[i].len - (i == 0 ? off0 : 0);
            uint32_t part = net_csum_add(0, b, l);
            if (odd)
                part = (uint32_t)__builtin_bswap16((uint16_t)net_csum_fold(part) ^ 0xffff);
            s += part;
            if (l & 1)
                odd = !odd;
        }
        uint16_t c = net_csum_fold(s);
        if (proto == IPPROTO_UDP && c == 0)
            c = 0xffff; /* RFC 768: 0 means "no checksum" */
        net_put16(l4 + l4_csum_off, c);
    }
    if (gso) {
        if (!local && !(n->offload & NET_OFF_TSO4))
            return -EMSGSIZE; /* the TCP layer never asks for this */
        f->gso_type = NET_GSO_TCPV4;
        f->gso_size = gso_mss;
        f->hdr_len = (uint16_t)(NET_ETH_HLEN + NET_IP_HLEN + l4_hlen);
    }
    if (local)
        return net_loopback_queue(ns, f);
    return net_eth_output_ip(ns, nh, f);
}
