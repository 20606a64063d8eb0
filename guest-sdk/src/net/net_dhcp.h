/* net_dhcp.h: the stack's DHCP client (RFC 2131, options of RFC 2132; see
 * net_dhcp.c). Pure C like the rest of the stack, tested on the host
 * (tests/unit/test_net_dhcp.c, tests/fuzz/fuzz_dhcp.c).
 */
#ifndef EMBER_NET_DHCP_H
#define EMBER_NET_DHCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/net_stack.h"

#define DHCP_SERVER_PORT 67u
#define DHCP_CLIENT_PORT 68u

/* Message types (RFC 2132 §9.6). */
#define DHCPDISCOVER 1u
#define DHCPOFFER    2u
#define DHCPREQUEST  3u
#define DHCPACK      5u
#define DHCPNAK      6u

/* What a server's reply says, once parsed and checked. Addresses in
 * network order, times in seconds (0xffffffff: infinite). */
struct net_dhcp_msg {
    uint8_t type;
    uint32_t xid;
    uint8_t chaddr[6];
    uint32_t yiaddr, server_id, netmask, router, dns[2];
    uint32_t lease_s, t1_s, t2_s;
    bool has_netmask, has_lease, has_t1, has_t2;
    char domain[64]; /* option 15 when it is a valid DNS name, else "" */
};

/* Parses a BOOTREPLY (the UDP payload). NULL when it is well formed, else
 * a message naming what is wrong ("DHCP: ..."); nothing is read outside
 * p[0..len). Only OFFER, ACK and NAK are accepted. */
const char *net_dhcp_parse(const uint8_t *p, size_t len, struct net_dhcp_msg *m);

enum net_dhcp_state {
    DHCP_SELECTING,  /* DISCOVER sent, waiting for an OFFER */
    DHCP_REQUESTING, /* REQUEST for an offer sent, waiting for the ACK */
    DHCP_BOUND,
    DHCP_RENEWING,  /* past T1: REQUEST unicast to the server */
    DHCP_REBINDING, /* past T2: REQUEST broadcast to any server */
};

struct net_dhcp {
    enum net_dhcp_state state;
    uint32_t xid;
    uint32_t offered, server_id;      /* the offer being requested, the lease's server */
    uint32_t lease_s;                 /* of the lease held */
    uint64_t t_begin;                 /* this exchange's start (the "secs" field) */
    uint64_t t_next;                  /* next retransmission or state change */
    uint64_t t1, t2, t_expire;        /* absolute; UINT64_MAX = never */
    unsigned tries;                   /* transmissions of the current message */
    uint32_t cfg_gateway, cfg_dns[2]; /* from ip=, used when the lease has none */
    char hostname[65];
    char domain[64]; /* the lease's DNS search domain, "" = none */
    /* Counters and the last complaint (what a hostile or broken server
     * sent), for ember_net_info() and tests. */
    uint64_t sent, acks, naks, ignored, bad;
    const char *last_error;
};

/* Starts the client on ns (the interface's address is cleared until a
 * lease gives one) and sends the first DISCOVER. hostname may be empty.
 * 0, or -ENOMEM. */
int net_dhcp_start(struct net_stack *ns, const char *hostname);
/* A lease is held (BOUND, RENEWING or REBINDING). */
bool net_dhcp_bound(const struct net_stack *ns);
/* A datagram to the client port (net_udp.c). */
void net_dhcp_input(struct net_stack *ns, const uint8_t *p, uint32_t len);
/* Retransmissions and lease times (net_stack.c); the next time due. */
uint64_t net_dhcp_timers(struct net_stack *ns, uint64_t now);

#endif
