/* net_config.h: the interface's configuration from Linux's ip= boot
 * argument (see net_config.c), and the resolver configuration it implies.
 * Pure C, tested on the host.
 */
#ifndef EMBER_NET_CONFIG_H
#define EMBER_NET_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct net_config {
    uint32_t addr, netmask, gateway, dns[2]; /* network byte order; 0 = none */
    char hostname[65];
    char domain[64]; /* the DNS search domain (DHCP option 15); "" = none */
    bool dhcp;       /* no address given, or autoconf dhcp/on/any */
};

/* Parses one "ip=..." word (Documentation/admin-guide/nfs/nfsroot.rst):
 * ip=<client>:<server>:<gateway>:<netmask>:<hostname>:<device>:<autoconf>:
 *    <dns0>:<dns1>:<ntp0>, or ip=dhcp|on|any|off|none. 0 or -EINVAL (a
 * malformed address or netmask). */
int net_config_parse_ip(const char *word, struct net_config *c);

/* "nameserver A.B.C.D\n" per DNS server and "search DOMAIN\n" for a
 * domain, what musl's resolver reads from /etc/resolv.conf; NUL-terminated,
 * truncated to len. Returns the length it needs (without the NUL). */
size_t net_config_resolv_conf(const struct net_config *c, char *buf, size_t len);

/* Dotted quad to network order; false if s[0..n) is not one. */
bool net_config_parse_addr(const char *s, size_t n, uint32_t *out);

#endif
