/* ember/net.h: the guest SDK's network interface (virtio-net and the SDK's
 * TCP/IP stack), beyond the BSD socket API.
 *
 * The interface is set up by the first AF_INET socket() (or by the first
 * call here, or the first read of /etc/resolv.conf), from Linux's ip= boot
 * argument:
 *   ip=CLIENT::GATEWAY:NETMASK::eth0:off[:DNS0[:DNS1]]
 * or, without a client address, by DHCP (that first call waits for the
 * lease, at most 30 s).
 */
#ifndef EMBER_NET_H
#define EMBER_NET_H

#include <stddef.h>
#include <stdint.h>

struct ember_net_info {
    uint8_t mac[6];
    uint16_t mtu;
    uint32_t addr, netmask, gateway, dns[2]; /* network byte order */
    uint32_t offload;                        /* 1: checksum offload, 2: TSO */
    uint64_t rx_frames, tx_frames, rx_drop, tx_drop, tcp_rexmt;
};

/* The interface's state and counters: 0, or -ENODEV without a device. */
int ember_net_info(struct ember_net_info *out);

/* The text of /etc/resolv.conf for the DNS servers of ip= or of the DHCP
 * lease ("nameserver A.B.C.D\n" each), NUL-terminated and truncated to len; returns its full
 * length (0: no DNS server, or no device). */
size_t ember_net_resolv_conf(char *buf, size_t len);

#endif
