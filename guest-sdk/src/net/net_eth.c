/* net_eth.c: Ethernet II framing (IEEE 802.3 with EtherType): received
 * frames to ARP or IPv4, IP datagrams out to a next hop's MAC.
 *
 * Frames come from the device; anything shorter than a header, for another
 * MAC, or of another EtherType is counted and dropped.
 */
#include <errno.h>

#include "net/net_stack.h"

#define ETH_P_IP  0x0800u
#define ETH_P_ARP 0x0806u

static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

void net_input(struct net_stack *ns, uint8_t *frame, uint32_t len, unsigned flags)
{
    ns->stats.rx_frames++;
    ns->stats.rx_bytes += len;
    if (len < NET_ETH_HLEN) {
        ns->stats.rx_drop_bad++;
        return;
    }
    bool is_bcast = __builtin_memcmp(frame, bcast, 6) == 0;
    if (!is_bcast && __builtin_memcmp(frame, ns->nif->mac, 6) != 0 && !(frame[0] & 1)) {
        ns->stats.rx_drop_other++;
        return;
    }
    uint16_t type = net_get16(frame + 12);
    if (type == ETH_P_IP)
        net_ip_input(ns, frame + NET_ETH_HLEN, len - NET_ETH_HLEN, flags,
                     is_bcast || (frame[0] & 1));
    else if (type == ETH_P_ARP)
        net_arp_input(ns, frame + NET_ETH_HLEN, len - NET_ETH_HLEN);
    else
        ns->stats.rx_drop_other++;
}

int net_eth_xmit(struct net_stack *ns, struct net_frame *f)
{
    int r = ns->nif->tx(ns->nif, f);

    if (r) {
        ns->stats.tx_drop++;
        return r;
    }
    ns->stats.tx_frames++;
    ns->stats.tx_bytes += f->len;
    return 0;
}

int net_eth_output_ip(struct net_stack *ns, uint32_t nh, struct net_frame *f)
{
    uint8_t *eh = (uint8_t *)f->seg[0].p;
    const uint8_t *mac;
    int err = 0;

    net_copy(eh + 6, ns->nif->mac, 6);
    net_put16(eh + 12, ETH_P_IP);
    if (nh == 0xffffffffu || (ns->nif->netmask && nh == (ns->nif->addr | ~ns->nif->netmask))) {
        mac = bcast;
    } else if ((mac = net_arp_resolve(ns, nh, f, &err)) == NULL) {
        return err; /* queued behind the ARP request (0), or dropped */
    }
    net_copy(eh, mac, 6);
    return net_eth_xmit(ns, f);
}
