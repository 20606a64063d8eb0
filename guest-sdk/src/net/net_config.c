/* net_config.c: Linux's ip= boot argument, the way Firecracker users pass a
 * guest its address (ip=CLIENT::GATEWAY:NETMASK::eth0:off[:DNS0[:DNS1]]),
 * and the /etc/resolv.conf text for the DNS servers it names.
 *
 * Rules from Linux's ipconfig.c: fields may be empty; no client address
 * (or autoconf dhcp/on/any/both, or ip=dhcp) means DHCP; no netmask means
 * the address class's default. Anything that is not a dotted quad where
 * one is expected, or a netmask that is not a run of ones, is -EINVAL.
 */
#include <errno.h>

#include "net/net_config.h"
#include "net/net_stack.h"

bool net_config_parse_addr(const char *s, size_t n, uint32_t *out)
{
    uint32_t v = 0;
    unsigned parts = 0;
    size_t i = 0;

    while (parts < 4) {
        unsigned x = 0, digits = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 4) {
            x = x * 10 + (unsigned)(s[i] - '0');
            i++;
            digits++;
        }
        if (!digits || x > 255)
            return false;
        v = v << 8 | x;
        parts++;
        if (parts < 4) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
    }
    if (i != n)
        return false;
    *out = net_htonl(v);
    return true;
}

static bool eq(const char *s, size_t n, const char *lit)
{
    size_t k = 0;
    while (k < n && lit[k] && s[k] == lit[k])
        k++;
    return k == n && !lit[k];
}

static bool is_dhcp_word(const char *s, size_t n)
{
    return eq(s, n, "dhcp") || eq(s, n, "on") || eq(s, n, "any") || eq(s, n, "both");
}

int net_config_parse_ip(const char *w, struct net_config *c)
{
    __builtin_memset(c, 0, sizeof(*c));
    if (w[0] == 'i' && w[1] == 'p' && w[2] == '=')
        w += 3;
    const char *f[10];
    size_t fl[10];
    unsigned nf = 0;
    const char *p = w;
    for (;;) {
        const char *e = p;
        while (*e && *e != ':')
            e++;
        if (nf < 10) {
            f[nf] = p;
            fl[nf] = (size_t)(e - p);
            nf++;
        }
        if (!*e)
            break;
        p = e + 1;
    }
    for (unsigned i = nf; i < 10; i++) {
        f[i] = "";
        fl[i] = 0;
    }
    if (nf == 1 &&
        (is_dhcp_word(f[0], fl[0]) || eq(f[0], fl[0], "off") || eq(f[0], fl[0], "none"))) {
        c->dhcp = is_dhcp_word(f[0], fl[0]);
        return 0;
    }
    uint32_t *addrs[] = {&c->addr, NULL, &c->gateway, &c->netmask};
    for (unsigned i = 0; i < 4; i++) {
        uint32_t v;
        if (!fl[i])
            continue;
        if (!net_config_parse_addr(f[i], fl[i], &v))
            return -EINVAL;
        if (addrs[i])
            *addrs[i] = v;
    }
    for (unsigned i = 0; i < 2; i++) {
        if (fl[7 + i] && !net_config_parse_addr(f[7 + i], fl[7 + i], &c->dns[i]))
            return -EINVAL;
    }
    size_t hn = fl[4] < sizeof(c->hostname) - 1 ? fl[4] : sizeof(c->hostname) - 1;
    __builtin_memcpy(c->hostname, f[4], hn);
    c->hostname[hn] = '\0';
    uint32_t inv = ~net_ntohl(c->netmask);
    if (c->netmask && (inv & (inv + 1)) != 0) /* ones, then zeros */
        return -EINVAL;
    if (c->addr && !c->netmask) {
        uint32_t a = net_ntohl(c->addr) >> 24;
        c->netmask = net_htonl(a < 128 ? 0xff000000u : a < 192 ? 0xffff0000u : 0xffffff00u);
    }
    c->dhcp = !c->addr || is_dhcp_word(f[6], fl[6]);
    return 0;
}

static size_t put_addr(char *b, uint32_t a)
{
    uint32_t h = net_ntohl(a);
    size_t n = 0;
    for (int i = 3; i >= 0; i--) {
        unsigned x = (h >> (8 * i)) & 0xff;
        if (x >= 100)
            b[n++] = (char)('0' + x / 100);
        if (x >= 10)
            b[n++] = (char)('0' + x / 10 % 10);
        b[n++] = (char)('0' + x % 10);
        if (i)
            b[n++] = '.';
    }
    return n;
}

size_t net_config_resolv_conf(const struct net_config *c, char *buf, size_t len)
{
    char tmp[2 * 32 + 8 + sizeof(c->domain)];
    size_t n = 0;
    for (unsigned i = 0; i < 2; i++) {
        if (!c->dns[i])
            continue;
        __builtin_memcpy(tmp + n, "nameserver ", 11);
        n += 11;
        n += put_addr(tmp + n, c->dns[i]);
        tmp[n++] = '\n';
    }
    size_t dl = 0;
    while (dl < sizeof(c->domain) - 1 && c->domain[dl])
        dl++;
    if (dl) {
        __builtin_memcpy(tmp + n, "search ", 7);
        n += 7;
        __builtin_memcpy(tmp + n, c->domain, dl);
        n += dl;
        tmp[n++] = '\n';
    }
    if (len) {
        size_t k = n < len - 1 ? n : len - 1;
        __builtin_memcpy(buf, tmp, k);
        buf[k] = '\0';
    }
    return n;
}
