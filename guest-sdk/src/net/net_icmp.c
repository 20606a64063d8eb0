/* net_icmp.c: ICMP for IPv4 (RFC 792): echo requests answered (so the host
 * can ping the guest), destination-unreachable errors passed to UDP and TCP
 * (RFC 1122 §4.1.3.3, §4.2.3.9) and sent for closed UDP ports and unknown
 * protocols. Errors are never sent about errors or broadcasts.
 */
#include <errno.h>

#include "net/net_stack.h"

#define ICMP_ECHOREPLY 0u
#define ICMP_UNREACH   3u
#define ICMP_ECHO      8u
#define ICMP_TIMXCEED  11u
#define IPPROTO_ICMP   1u
#define IPPROTO_TCP    6u
#define IPPROTO_UDP    17u
#define ICMP_ECHO_MAX  (NET_ETH_MTU - NET_IP_HLEN)

static int unreach_errno(uint8_t code)
{
    switch (code) {
    case 2: /* protocol */
    case 3: /* port */
        return ECONNREFUSED;
    case 4: /* fragmentation needed: we send with DF and fitting sizes */
        return EMSGSIZE;
    case 0: /* net */
    case 6:
    case 9:
    case 11:
        return ENETUNREACH;
    default:
        return EHOSTUNREACH;
    }
}

void net_icmp_input(struct net_stack *ns, uint32_t src, uint32_t dst, uint8_t *p, uint32_t len,
                    const uint8_t *iph, uint32_t ihl)
{
    (void)iph;
    (void)ihl;
    if (len < 8 || net_csum_fold(net_csum_add(0, p, len))) {
        ns->stats.rx_drop_bad++;
        return;
    }
    if (p[0] == ICMP_ECHO && p[1] == 0) {
        if (len > ICMP_ECHO_MAX) {
            ns->stats.rx_drop_other++;
            return;
        }
        uint8_t b[NET_ETH_HLEN + NET_IP_HLEN + 8];
        uint8_t *ic = b + NET_ETH_HLEN + NET_IP_HLEN;
        net_copy(ic, p, 8);
        ic[0] = ICMP_ECHOREPLY;
        ic[2] = ic[3] = 0;
        /* The checksum covers header and data; the data is sent from the
         * request's buffer as it is. */
        uint32_t s = net_csum_add(net_csum_add(0, ic, 8), p + 8, len - 8);
        net_put16(ic + 2, net_csum_fold(s));
        struct net_frame f = {.seg = {{b, sizeof(b)}, {p + 8, len - 8}}, .nseg = len > 8 ? 2 : 1};
        f.len = (uint32_t)sizeof(b) + len - 8;
        net_ip_header(ns, b + NET_ETH_HLEN, dst, src, IPPROTO_ICMP, f.len - NET_ETH_HLEN);
        uint32_t nh = net_ip_route(ns, src);
        if (nh && !net_ip_is_local(ns, src))
            net_eth_output_ip(ns, nh, &f);
        return;
    }
    if ((p[0] == ICMP_UNREACH || p[0] == ICMP_TIMXCEED) && len >= 8 + NET_IP_HLEN + 8) {
        /* The offending datagram's header and first 8 bytes. */
        const uint8_t *oip = p + 8;
        uint32_t oihl = (oip[0] & 15u) * 4u;
        if ((oip[0] >> 4) != 4 || oihl < NET_IP_HLEN || len < 8 + oihl + 8)
            return;
        uint32_t odst, osrc;
        net_copy(&osrc, oip + 12, 4);
        net_copy(&odst, oip + 16, 4);
        if (osrc != ns->nif->addr)
            return;
        const uint8_t *ol4 = oip + oihl;
        uint16_t sport, dport;
        net_copy(&sport, ol4, 2);
        net_copy(&dport, ol4 + 2, 2);
        int err = p[0] == ICMP_UNREACH ? unreach_errno(p[1]) : EHOSTUNREACH;
        if (oip[9] == IPPROTO_UDP)
            net_udp_icmp_error(ns, odst, dport, sport, err);
        else if (oip[9] == IPPROTO_TCP)
            net_tcp_icmp_error(ns, odst, dport, sport, err);
    }
}

void net_icmp_unreach(struct net_stack *ns, uint8_t code, const uint8_t *iph, uint32_t len)
{
    uint32_t src;
    uint32_t ihl = (iph[0] & 15u) * 4u;

    net_copy(&src, iph + 12, 4);
    if (iph[9] == IPPROTO_ICMP || src == 0 || net_ip_is_local(ns, src))
        return;
    uint32_t quote = ihl + 8 < len ? ihl + 8 : len;
    uint8_t b[NET_ETH_HLEN + NET_IP_HLEN + 8 + 60 + 8];
    uint8_t *ic = b + NET_ETH_HLEN + NET_IP_HLEN;
    __builtin_memset(ic, 0, 8);
    ic[0] = ICMP_UNREACH;
    ic[1] = code;
    net_copy(ic + 8, iph, quote);
    net_put16(ic + 2, net_csum_fold(net_csum_add(0, ic, 8 + quote)));
    uint32_t tot = NET_IP_HLEN + 8 + quote;
    net_ip_header(ns, b + NET_ETH_HLEN, ns->nif->addr, src, IPPROTO_ICMP, tot);
    struct net_frame f = {.seg = {{b, NET_ETH_HLEN + tot}}, .nseg = 1, .len = NET_ETH_HLEN + tot};
    uint32_t nh = net_ip_route(ns, src);
    if (nh)
        net_eth_output_ip(ns, nh, &f);
}
