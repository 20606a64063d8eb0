/* net_dhcp.c: the DHCP client (RFC 2131; options of RFC 2132) that
 * configures the interface when ip= gives no address (or says dhcp/on/any).
 *
 * States as in RFC 2131 §4.4 (figure 5), without INIT-REBOOT: SELECTING
 * (DISCOVER broadcast, the first OFFER taken), REQUESTING (REQUEST
 * broadcast naming the offer and its server), BOUND, RENEWING at T1
 * (REQUEST unicast to the server), REBINDING at T2 (REQUEST broadcast),
 * and back to SELECTING when the lease expires or a server NAKs.
 * Retransmission (§4.1): 4 s, 8 s, 16 s ... at most 64 s, each randomized
 * by ±1 s; a REQUEST unanswered after 4 tries starts over; in RENEWING and
 * REBINDING half the time left to T2 (or to the end of the lease), at
 * least 60 s (§4.4.5). T1 and T2 default to 1/2 and 7/8 of the lease.
 * The address is not probed with ARP before use (§2.2's SHOULD): a guest
 * behind a monitor's tap shares its link with the host alone. Nor does
 * the first DISCOVER wait 1-10 s (§4.4.1's SHOULD, against a whole LAN
 * rebooting at once): a microVM's start is the latency users pay for.
 *
 * Replies are hostile input: net_dhcp_parse() checks the fixed header, the
 * magic cookie, every option's length against the message's end and the
 * lengths the options must have, option overload (52: more options in
 * "file" and "sname"), and that an offered address is a unicast host
 * address and a subnet mask a run of ones. A reply that fails gets counted
 * and its reason kept (last_error); one for another transaction or another
 * MAC is ignored.
 *
 * The client is one allocation hung on the stack (ns->dhcp); net_udp.c
 * hands it what arrives on port 68, net_stack.c runs its timer. The wait
 * for the first lease is the platform's (net_sock.c).
 */
#include <errno.h>

#include "net/net_dhcp.h"

#define IPPROTO_UDP 17u
#define MSG_MIN     300u /* BOOTP's size, which some servers want */
#define MSG_ROOM    (NET_ETH_HLEN + NET_IP_HLEN + NET_UDP_HLEN + MSG_MIN)
#define COOKIE      0x63825363u /* RFC 2131 §3 */
#define OPTS        240u        /* the fixed header and the cookie */
#define FLAG_BCAST  0x8000u
#define SEC         1000000000ull
#define INFINITE    0xffffffffu
#define REQ_TRIES   4u

/* Option codes (RFC 2132). */
#define OPT_PAD       0u
#define OPT_NETMASK   1u
#define OPT_ROUTER    3u
#define OPT_DNS       6u
#define OPT_HOSTNAME  12u
#define OPT_DOMAIN    15u
#define OPT_REQ_ADDR  50u
#define OPT_LEASE     51u
#define OPT_OVERLOAD  52u
#define OPT_MSG_TYPE  53u
#define OPT_SERVER_ID 54u
#define OPT_PARAMS    55u
#define OPT_MAX_SIZE  57u
#define OPT_T1        58u
#define OPT_T2        59u
#define OPT_CLIENT_ID 61u
#define OPT_END       255u

/* ---- parsing ---------------------------------------------------------------- */

static bool unicast_host(uint32_t a)
{
    uint32_t h = net_ntohl(a);
    uint8_t top = (uint8_t)(h >> 24);
    return h != 0 && top != 0 && top != 127 && top < 224;
}

/* A DNS name (RFC 1035 §2.3.1 letters, digits, '-', '.', and '_' as seen
 * in practice): what may go into resolv.conf's "search" line. Anything
 * else (a space, a newline that would add a line) is not taken. */
static bool domain_ok(const uint8_t *v, size_t n)
{
    if (n == 0 || n > 63 || v[0] == '.' || v[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = v[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_';
        if (!ok)
            return false;
    }
    return true;
}

static bool mask_ok(uint32_t m)
{
    uint32_t inv = ~net_ntohl(m);
    return m != 0 && (inv & (inv + 1)) == 0;
}

/* One options area: p[0..len). overload gets option 52's value (only in
 * the main area). */
static const char *parse_opts(const uint8_t *p, size_t len, struct net_dhcp_msg *m,
                              uint8_t *overload)
{
    size_t i = 0;
    while (i < len) {
        uint8_t code = p[i++];
        if (code == OPT_PAD)
            continue;
        if (code == OPT_END)
            return NULL;
        if (i >= len)
            return "DHCP: an option has no length byte";
        size_t n = p[i++];
        if (n > len - i)
            return "DHCP: an option runs past the end of the message";
        const uint8_t *v = p + i;
        i += n;
        switch (code) {
        case OPT_MSG_TYPE:
            if (n != 1)
                return "DHCP: option 53 (message type) is not 1 byte";
            m->type = v[0];
            break;
        case OPT_SERVER_ID:
            if (n != 4)
                return "DHCP: option 54 (server identifier) is not 4 bytes";
            net_copy(&m->server_id, v, 4);
            break;
        case OPT_NETMASK:
            if (n != 4)
                return "DHCP: option 1 (subnet mask) is not 4 bytes";
            net_copy(&m->netmask, v, 4);
            if (!mask_ok(m->netmask))
                return "DHCP: option 1 (subnet mask) is not a run of ones";
            m->has_netmask = true;
            break;
        case OPT_ROUTER:
            if (n == 0 || n % 4)
                return "DHCP: option 3 (router) is not a list of addresses";
            for (size_t k = 0; k < n && !m->router; k += 4)
                net_copy(&m->router, v + k, 4);
            break;
        case OPT_DNS:
            if (n == 0 || n % 4)
                return "DHCP: option 6 (DNS servers) is not a list of addresses";
            for (size_t k = 0; k < n; k += 4) {
                uint32_t a;
                net_copy(&a, v + k, 4);
                if (!a || a == m->dns[0] || a == m->dns[1])
                    continue;
                if (!m->dns[0])
                    m->dns[0] = a;
                else if (!m->dns[1])
                    m->dns[1] = a;
            }
            break;
        case OPT_LEASE:
        case OPT_T1:
        case OPT_T2:
            if (n != 4)
                return code == OPT_LEASE ? "DHCP: option 51 (lease time) is not 4 bytes"
                       : code == OPT_T1  ? "DHCP: option 58 (renewal time) is not 4 bytes"
                                         : "DHCP: option 59 (rebinding time) is not 4 bytes";
            if (code == OPT_LEASE) {
                m->lease_s = net_get32(v);
                m->has_lease = true;
            } else if (code == OPT_T1) {
                m->t1_s = net_get32(v);
                m->has_t1 = true;
            } else {
                m->t2_s = net_get32(v);
                m->has_t2 = true;
            }
            break;
        case OPT_DOMAIN: {
            size_t k = n;
            while (k && v[k - 1] == 0)
                k--; /* some servers count a terminating NUL */
            if (domain_ok(v, k)) {
                net_copy(m->domain, v, k);
                m->domain[k] = '\0';
            } else {
                m->domain[0] = '\0';
            }
            break;
        }
        case OPT_OVERLOAD:
            if (n != 1)
                return "DHCP: option 52 (overload) is not 1 byte";
            if (v[0] < 1 || v[0] > 3)
                return "DHCP: option 52 (overload) is not 1, 2 or 3";
            if (overload)
                *overload = v[0];
            break;
        default:
            break; /* not asked for */
        }
    }
    return NULL; /* no END: the message's end ends the options */
}

const char *net_dhcp_parse(const uint8_t *p, size_t len, struct net_dhcp_msg *m)
{
    __builtin_memset(m, 0, sizeof(*m));
    if (len < OPTS)
        return "DHCP: message shorter than 240 bytes";
    if (p[0] != 2)
        return "DHCP: not a BOOTREPLY";
    if (p[1] != 1 || p[2] != 6)
        return "DHCP: hardware address is not Ethernet";
    if (net_get32(p + 236) != COOKIE)
        return "DHCP: no magic cookie";
    m->xid = net_get32(p + 4);
    net_copy(&m->yiaddr, p + 16, 4);
    net_copy(m->chaddr, p + 28, 6);
    uint8_t overload = 0;
    const char *e = parse_opts(p + OPTS, len - OPTS, m, &overload);
    if (!e && (overload & 1))
        e = parse_opts(p + 108, 128, m, NULL); /* "file" */
    if (!e && (overload & 2))
        e = parse_opts(p + 44, 64, m, NULL); /* "sname" */
    if (e)
        return e;
    if (!m->type)
        return "DHCP: no message type (option 53)";
    if (m->type != DHCPOFFER && m->type != DHCPACK && m->type != DHCPNAK)
        return "DHCP: not an OFFER, ACK or NAK";
    if (m->type == DHCPNAK)
        return NULL;
    if (!m->server_id)
        return "DHCP: no server identifier (option 54)";
    if (!unicast_host(m->yiaddr))
        return "DHCP: offered address is not a unicast host address";
    if (m->has_lease && m->lease_s == 0)
        return "DHCP: option 51 (lease time) is 0";
    return NULL;
}

/* ---- the client ------------------------------------------------------------ */

static uint64_t rand_ns(uint64_t span)
{
    return span ? (uint64_t)net_random32() % span : 0;
}

/* §4.1: 4 s doubled per try up to 64 s, ±1 s. */
static uint64_t backoff(unsigned tries)
{
    unsigned sh = tries < 4 ? tries : 4;
    return (4 * SEC << sh) - SEC + rand_ns(2 * SEC);
}

static void put_opt(uint8_t **o, uint8_t code, const void *v, size_t n)
{
    (*o)[0] = code;
    (*o)[1] = (uint8_t)n;
    net_copy(*o + 2, v, n);
    *o += 2 + n;
}

static void send_msg(struct net_stack *ns, struct net_dhcp *d, uint8_t type, uint64_t now)
{
    uint8_t buf[MSG_ROOM + 64];
    __builtin_memset(buf, 0, sizeof(buf));
    uint8_t *uh = buf + NET_ETH_HLEN + NET_IP_HLEN;
    uint8_t *b = uh + NET_UDP_HLEN;
    const struct net_if *nif = ns->nif;

    b[0] = 1; /* BOOTREQUEST */
    b[1] = 1; /* Ethernet */
    b[2] = 6;
    net_put32(b + 4, d->xid);
    uint64_t secs = (now - d->t_begin) / SEC;
    net_put16(b + 8, (uint16_t)(secs > 0xffff ? 0xffff : secs));
    /* Without an address, ask for broadcast replies (§4.1): a server need
     * not find a way to reach an unconfigured MAC. */
    net_put16(b + 10, nif->addr ? 0 : FLAG_BCAST);
    if (d->state == DHCP_RENEWING || d->state == DHCP_REBINDING)
        net_copy(b + 12, &nif->addr, 4); /* ciaddr */
    net_copy(b + 28, nif->mac, 6);
    net_put32(b + 236, COOKIE);

    uint8_t *o = b + OPTS;
    put_opt(&o, OPT_MSG_TYPE, &type, 1);
    uint8_t cid[7] = {1};
    net_copy(cid + 1, nif->mac, 6);
    put_opt(&o, OPT_CLIENT_ID, cid, sizeof(cid));
    uint8_t max[2];
    net_put16(max, (uint16_t)(nif->mtu - NET_IP_HLEN - NET_UDP_HLEN));
    put_opt(&o, OPT_MAX_SIZE, max, 2);
    if (type == DHCPREQUEST && d->state == DHCP_REQUESTING) {
        put_opt(&o, OPT_REQ_ADDR, &d->offered, 4);
        put_opt(&o, OPT_SERVER_ID, &d->server_id, 4);
    }
    static const uint8_t params[] = {OPT_NETMASK, OPT_ROUTER, OPT_DNS, OPT_DOMAIN,
                                     OPT_LEASE,   OPT_T1,     OPT_T2};
    put_opt(&o, OPT_PARAMS, params, sizeof(params));
    size_t hn = 0;
    while (hn < sizeof(d->hostname) - 1 && d->hostname[hn])
        hn++;
    if (hn)
        put_opt(&o, OPT_HOSTNAME, d->hostname, hn);
    *o++ = OPT_END;
    uint32_t blen = (uint32_t)(o - b) < MSG_MIN ? MSG_MIN : (uint32_t)(o - b);

    uint16_t sport = net_htons(DHCP_CLIENT_PORT), dport = net_htons(DHCP_SERVER_PORT);
    net_copy(uh, &sport, 2);
    net_copy(uh + 2, &dport, 2);
    net_put16(uh + 4, (uint16_t)(NET_UDP_HLEN + blen));
    uint32_t dst = d->state == DHCP_RENEWING ? d->server_id : 0xffffffffu;
    struct net_frame f = {
        .seg = {{buf, NET_ETH_HLEN + NET_IP_HLEN + NET_UDP_HLEN + blen}},
        .nseg = 1,
    };
    d->tries++;
    if (net_ip_output(ns, 0, dst, IPPROTO_UDP, &f, NET_UDP_HLEN, 6, 0) == 0)
        d->sent++;
}

static void unconfigure(struct net_stack *ns)
{
    struct net_if *nif = ns->nif;
    nif->addr = nif->netmask = nif->gateway = 0;
    nif->dns[0] = nif->dns[1] = 0;
    if (ns->dhcp)
        ns->dhcp->domain[0] = '\0';
}

/* SELECTING from scratch: a new transaction, a DISCOVER now. */
static void discover(struct net_stack *ns, struct net_dhcp *d, uint64_t now)
{
    d->state = DHCP_SELECTING;
    d->xid = net_random32();
    d->t_begin = now;
    d->tries = 0;
    d->offered = d->server_id = 0;
    send_msg(ns, d, DHCPDISCOVER, now);
    d->t_next = now + backoff(0);
}

int net_dhcp_start(struct net_stack *ns, const char *hostname)
{
    struct net_dhcp *d = ns->dhcp;
    if (!d) {
        if (!(d = net_zalloc(sizeof(*d))))
            return -ENOMEM;
        ns->dhcp = d;
    }
    struct net_if *nif = ns->nif;
    d->cfg_gateway = nif->gateway;
    d->cfg_dns[0] = nif->dns[0];
    d->cfg_dns[1] = nif->dns[1];
    size_t k = 0;
    while (hostname && hostname[k] && k < sizeof(d->hostname) - 1) {
        d->hostname[k] = hostname[k];
        k++;
    }
    d->hostname[k] = '\0';
    unconfigure(ns);
    discover(ns, d, net_now_ns());
    net_timer_at(ns, d->t_next);
    return 0;
}

bool net_dhcp_bound(const struct net_stack *ns)
{
    const struct net_dhcp *d = ns->dhcp;
    return d && d->state >= DHCP_BOUND;
}

static uint64_t at(uint64_t base, uint32_t s)
{
    return s == INFINITE ? UINT64_MAX : base + (uint64_t)s * SEC;
}

static void bind_lease(struct net_stack *ns, struct net_dhcp *d, const struct net_dhcp_msg *m,
                       uint64_t now)
{
    struct net_if *nif = ns->nif;
    nif->addr = m->yiaddr;
    if (m->has_netmask) {
        nif->netmask = m->netmask;
    } else {
        uint32_t a = net_ntohl(m->yiaddr) >> 24;
        nif->netmask = net_htonl(a < 128 ? 0xff000000u : a < 192 ? 0xffff0000u : 0xffffff00u);
    }
    nif->gateway = m->router ? m->router : d->cfg_gateway;
    nif->dns[0] = m->dns[0] ? m->dns[0] : d->cfg_dns[0];
    nif->dns[1] = m->dns[0] ? m->dns[1] : d->cfg_dns[1];
    d->server_id = m->server_id;
    net_copy(d->domain, m->domain, sizeof(d->domain));

    /* Lease times count from the request (§4.4.1), here the exchange's
     * start: never later than the server's view. */
    uint32_t lease = m->has_lease ? m->lease_s : INFINITE;
    uint32_t t1 = lease == INFINITE ? INFINITE : lease / 2;
    uint32_t t2 = lease == INFINITE ? INFINITE : (uint32_t)((uint64_t)lease * 7 / 8);
    if (m->has_t1 && m->t1_s <= lease)
        t1 = m->t1_s;
    if (m->has_t2 && m->t2_s <= lease)
        t2 = m->t2_s;
    if (t1 > t2)
        t1 = t2;
    d->lease_s = lease;
    d->t1 = at(d->t_begin, t1);
    d->t2 = at(d->t_begin, t2);
    d->t_expire = at(d->t_begin, lease);
    d->state = DHCP_BOUND;
    d->tries = 0;
    d->acks++;
    d->t_next = d->t1 > now ? d->t1 : now;
}

/* RENEWING/REBINDING: the next try at half the time left to end (at
 * least 60 s), never past end. */
static uint64_t half_way(uint64_t now, uint64_t end)
{
    if (end == UINT64_MAX)
        return now + 64 * SEC; /* T1 given with an infinite lease */
    uint64_t t = now + (end > now ? (end - now) / 2 : 0);
    if (t < now + 60 * SEC)
        t = now + 60 * SEC;
    return t < end ? t : end;
}

void net_dhcp_input(struct net_stack *ns, const uint8_t *p, uint32_t len)
{
    struct net_dhcp *d = ns->dhcp;
    struct net_dhcp_msg m;
    const char *e = net_dhcp_parse(p, len, &m);
    if (e) {
        d->bad++;
        d->last_error = e;
        ns->stats.rx_drop_bad++;
        return;
    }
    if (m.xid != d->xid || __builtin_memcmp(m.chaddr, ns->nif->mac, 6) != 0) {
        d->ignored++; /* another client's, or an old transaction's */
        return;
    }
    uint64_t now = net_now_ns();
    switch (d->state) {
    case DHCP_SELECTING:
        if (m.type != DHCPOFFER)
            break;
        d->offered = m.yiaddr;
        d->server_id = m.server_id;
        d->state = DHCP_REQUESTING;
        d->tries = 0;
        send_msg(ns, d, DHCPREQUEST, now);
        d->t_next = now + backoff(0);
        net_timer_at(ns, d->t_next);
        return;
    case DHCP_REQUESTING:
    case DHCP_RENEWING:
    case DHCP_REBINDING:
        if (m.type == DHCPACK && (d->state != DHCP_REQUESTING || m.server_id == d->server_id)) {
            bind_lease(ns, d, &m, now);
            net_timer_at(ns, d->t_next);
            return;
        }
        if (m.type == DHCPNAK) {
            d->naks++;
            unconfigure(ns);
            discover(ns, d, now);
            net_timer_at(ns, d->t_next);
            return;
        }
        break;
    case DHCP_BOUND:
        break;
    }
    d->ignored++;
}

uint64_t net_dhcp_timers(struct net_stack *ns, uint64_t now)
{
    struct net_dhcp *d = ns->dhcp;
    if (now < d->t_next)
        return d->t_next;
    switch (d->state) {
    case DHCP_SELECTING:
        send_msg(ns, d, DHCPDISCOVER, now);
        d->t_next = now + backoff(d->tries - 1);
        break;
    case DHCP_REQUESTING:
        if (d->tries >= REQ_TRIES) {
            discover(ns, d, now);
            break;
        }
        send_msg(ns, d, DHCPREQUEST, now);
        d->t_next = now + backoff(d->tries - 1);
        break;
    case DHCP_BOUND:
    case DHCP_RENEWING:
    case DHCP_REBINDING:
        if (now >= d->t_expire) {
            unconfigure(ns); /* the lease is gone: start over */
            discover(ns, d, now);
            break;
        }
        if (d->state != DHCP_REBINDING && now >= d->t2) {
            d->state = DHCP_REBINDING;
            d->xid = net_random32();
            d->t_begin = now;
            d->tries = 0;
        } else if (d->state == DHCP_BOUND) {
            d->state = DHCP_RENEWING;
            d->xid = net_random32();
            d->t_begin = now;
            d->tries = 0;
        }
        send_msg(ns, d, DHCPREQUEST, now);
        d->t_next = half_way(now, d->state == DHCP_RENEWING ? d->t2 : d->t_expire);
        break;
    }
    return d->t_next;
}
