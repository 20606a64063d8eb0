/* net_mmds_raw.c: a guest that asks the metadata service (MMDS) over
 * virtio-net with the smallest TCP client that works (net_raw.h): it finds
 * the MMDS MAC with ARP, then sends each request on a connection of its own
 * ("Connection: close") and prints what came back:
 *   mmds[I] status: HTTP/1.1 200 OK
 *   mmds[I] body: <the body>
 *   mmds[I] end
 * A request is "METHOD PATH" followed by "|Header: value" parts; "{token}"
 * in it becomes the body of the previous answer (a V2 session token).
 *
 * Usage: net_mmds_raw GUEST_IP MMDS_IP REQUEST... ; exits 0 when every
 * request got an answer, 5 when one did not. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_raw.h"

static struct nr v;
static uint8_t scratch[NR_QSZ * NR_BUF];
static uint8_t my_ip[4], mmds_ip[4], mmds_mac[6];
static char answer[65536], prev_body[4096];
static size_t answer_len;

static int parse_ip(const char *s, uint8_t out[4])
{
    unsigned a, b, c, d;

    if (sscanf(s, "%u.%u.%u.%u", &a, &b, &c, &d) != 4 || a > 255 || b > 255 || c > 255 || d > 255)
        return -1;
    out[0] = (uint8_t)a, out[1] = (uint8_t)b, out[2] = (uint8_t)c, out[3] = (uint8_t)d;
    return 0;
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t x)
{
    p[0] = (uint8_t)(x >> 8);
    p[1] = (uint8_t)x;
}

static void put32(uint8_t *p, uint32_t x)
{
    put16(p, (uint16_t)(x >> 16));
    put16(p + 2, (uint16_t)x);
}

static void send_frame(const uint8_t *f, uint32_t len)
{
    uint32_t slot;
    uint8_t *buf = nr_tx_begin(&v, &slot);

    if (!buf)
        return;
    memcpy(buf + NR_HDR, f, len);
    nr_tx_commit(&v, slot, NR_HDR + len);
}

/* Calls fn on every received frame until it returns nonzero or timeout. */
static int poll_rx(int (*fn)(const uint8_t *f, uint32_t len), uint64_t timeout_ns)
{
    uint64_t until = ember_monotonic_ns() + timeout_ns;

    while (ember_monotonic_ns() < until) {
        uint32_t len, nb;
        uint8_t *buf;
        int got = 0, any = 0;
        while ((buf = nr_rx_next(&v, scratch, &len, &nb)) != NULL) {
            if (len >= NR_HDR + 14)
                got |= fn(buf + NR_HDR, len - NR_HDR);
            nr_rx_done(&v, buf, nb);
            any = 1;
        }
        if (any)
            nr_notify(&v, 0);
        if (got)
            return got;
    }
    return 0;
}

static int arp_reply(const uint8_t *f, uint32_t len)
{
    const uint8_t *a = f + 14;

    if (len < 42 || be16(f + 12) != 0x0806 || be16(a + 6) != 2 || memcmp(a + 14, mmds_ip, 4))
        return 0;
    memcpy(mmds_mac, a + 8, 6);
    return 1;
}

static int arp_resolve(void)
{
    uint8_t f[42];

    memset(f, 0xff, 6);
    memcpy(f + 6, v.mac, 6);
    put16(f + 12, 0x0806);
    put16(f + 14, 1);
    put16(f + 16, 0x0800);
    f[18] = 6;
    f[19] = 4;
    put16(f + 20, 1);
    memcpy(f + 22, v.mac, 6);
    memcpy(f + 28, my_ip, 4);
    memset(f + 32, 0, 6);
    memcpy(f + 38, mmds_ip, 4);
    for (int i = 0; i < 10; i++) {
        send_frame(f, sizeof(f));
        if (poll_rx(arp_reply, 300000000ull))
            return 0;
    }
    return -1;
}

/* ---- the TCP client ---- */

static uint16_t my_port = 40000;
static uint32_t snd_nxt, rcv_nxt;
static int syn_acked, fin_seen;

static uint32_t csum_add(const uint8_t *p, size_t n, uint32_t sum)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += be16(p + i);
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void tcp_send(uint32_t seq, uint8_t flags, const void *data, size_t n)
{
    static uint8_t f[1514];
    uint8_t *ip = f + 14, *t = ip + 20;
    size_t tot = 40 + n;

    memcpy(f, mmds_mac, 6);
    memcpy(f + 6, v.mac, 6);
    put16(f + 12, 0x0800);
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)tot);
    ip[8] = 64;
    ip[9] = 6;
    memcpy(ip + 12, my_ip, 4);
    memcpy(ip + 16, mmds_ip, 4);
    put16(ip + 10, csum_fold(csum_add(ip, 20, 0)));
    memset(t, 0, 20);
    put16(t, my_port);
    put16(t + 2, 80);
    put32(t + 4, seq);
    put32(t + 8, rcv_nxt);
    t[12] = 5 << 4;
    t[13] = flags;
    put16(t + 14, 65535);
    memcpy(t + 20, data, n);
    uint32_t ps = csum_add(ip + 12, 8, 0) + 6u + (uint32_t)(20 + n);
    put16(t + 16, csum_fold(csum_add(t, 20 + n, ps)));
    send_frame(f, (uint32_t)(14 + tot));
}

/* Takes one segment of our connection: 1 when it moved things on. */
static int tcp_rx(const uint8_t *f, uint32_t len)
{
    const uint8_t *ip = f + 14, *t;
    size_t ihl, tot, thl, n;

    if (len < 54 || be16(f + 12) != 0x0800 || ip[9] != 6 || memcmp(ip + 12, mmds_ip, 4))
        return 0;
    ihl = (size_t)(ip[0] & 15) * 4;
    tot = be16(ip + 2);
    if (tot > len - 14 || tot < ihl + 20)
        return 0;
    t = ip + ihl;
    if (be16(t) != 80 || be16(t + 2) != my_port)
        return 0;
    thl = (size_t)(t[12] >> 4) * 4;
    if (thl < 20 || ihl + thl > tot)
        return 0;
    n = tot - ihl - thl;
    uint8_t flags = t[13];
    uint32_t seq = be32(t + 4), ack = be32(t + 8);
    if (flags & 0x04) {
        printf("net-mmds: connection reset\n");
        fin_seen = 1;
        return 1;
    }
    if (!syn_acked) {
        if ((flags & 0x12) == 0x12 && ack == snd_nxt) {
            rcv_nxt = seq + 1;
            syn_acked = 1;
            return 1;
        }
        return 0;
    }
    if ((flags & 0x10) && (int32_t)(ack - snd_nxt) > 0)
        return 0;
    if (seq != rcv_nxt) {
        tcp_send(snd_nxt, 0x10, NULL, 0); /* where we are */
        return 0;
    }
    if (n && answer_len + n < sizeof(answer)) {
        memcpy(answer + answer_len, t + thl, n);
        answer_len += n;
    }
    rcv_nxt += (uint32_t)n;
    if (flags & 0x01) {
        rcv_nxt++;
        fin_seen = 1;
    }
    if (n || (flags & 0x01))
        tcp_send(snd_nxt, 0x10, NULL, 0);
    return 1;
}

/* One request on a connection of its own; 0 when an answer came. */
static int request(const char *spec)
{
    char req[4096], line[2048];
    const char *bar = strchr(spec, '|');
    size_t n = 0;

    snprintf(line, sizeof(line), "%.*s", bar ? (int)(bar - spec) : (int)strlen(spec), spec);
    n += (size_t)snprintf(req + n, sizeof(req) - n, "%s HTTP/1.1\r\nHost: %u.%u.%u.%u\r\n", line,
                          mmds_ip[0], mmds_ip[1], mmds_ip[2], mmds_ip[3]);
    while (bar) {
        const char *next = strchr(bar + 1, '|');
        int len = next ? (int)(next - bar - 1) : (int)strlen(bar + 1);
        char hdr[2048];
        snprintf(hdr, sizeof(hdr), "%.*s", len, bar + 1);
        char *tok = strstr(hdr, "{token}");
        if (tok) {
            char tail[2048];
            snprintf(tail, sizeof(tail), "%s", tok + 7);
            snprintf(tok, sizeof(hdr) - (size_t)(tok - hdr), "%s%s", prev_body, tail);
        }
        n += (size_t)snprintf(req + n, sizeof(req) - n, "%s\r\n", hdr);
        bar = next;
    }
    n += (size_t)snprintf(req + n, sizeof(req) - n, "Connection: close\r\n\r\n");

    my_port++;
    syn_acked = fin_seen = 0;
    answer_len = 0;
    uint32_t iss = 1000u * my_port;
    for (int i = 0; i < 20 && !syn_acked; i++) {
        snd_nxt = iss;
        tcp_send(snd_nxt, 0x02, NULL, 0);
        snd_nxt = iss + 1;
        poll_rx(tcp_rx, 200000000ull);
    }
    if (!syn_acked)
        return -1;
    tcp_send(snd_nxt, 0x10, NULL, 0);
    tcp_send(snd_nxt, 0x18, req, n);
    uint32_t data_seq = snd_nxt;
    snd_nxt += (uint32_t)n;
    for (int i = 0; i < 100 && !fin_seen; i++) {
        if (!poll_rx(tcp_rx, 200000000ull) && answer_len == 0)
            tcp_send(data_seq, 0x18, req, n); /* nothing yet: again */
    }
    if (!fin_seen)
        return -1;
    tcp_send(snd_nxt, 0x11, NULL, 0);
    snd_nxt++;
    return 0;
}

int main(int argc, char **argv)
{
    static const uint8_t default_mac[6] = {6, 0, 0, 0, 0, 1};

    if (argc < 4 || parse_ip(argv[1], my_ip) || parse_ip(argv[2], mmds_ip)) {
        printf("usage: net_mmds_raw GUEST_IP MMDS_IP REQUEST...\n");
        return 2;
    }
    if (nr_find(&v) != 0) {
        printf("net-mmds: no virtio-net device\n");
        return 2;
    }
    memcpy(v.mac, default_mac, 6);
    if (nr_negotiate(&v, NR_FEAT_VERSION_1 | NR_FEAT_MAC) != 0) {
        printf("net-mmds: FEATURES_OK refused\n");
        return 3;
    }
    nr_start(&v, NR_BUF);
    if (arp_resolve() != 0) {
        printf("net-mmds: no ARP answer for the MMDS address\n");
        return 5;
    }
    printf("net-mmds: MMDS at %02x:%02x:%02x:%02x:%02x:%02x\n", mmds_mac[0], mmds_mac[1],
           mmds_mac[2], mmds_mac[3], mmds_mac[4], mmds_mac[5]);
    for (int i = 3; i < argc; i++) {
        if (request(argv[i]) != 0) {
            printf("mmds[%d] no answer\n", i - 3);
            return 5;
        }
        answer[answer_len] = '\0';
        char *eol = strstr(answer, "\r\n"), *body = strstr(answer, "\r\n\r\n");
        if (eol)
            *eol = '\0';
        printf("mmds[%d] status: %s\n", i - 3, answer);
        snprintf(prev_body, sizeof(prev_body), "%s", body ? body + 4 : "");
        printf("mmds[%d] body: %s\nmmds[%d] end\n", i - 3, prev_body, i - 3);
    }
    fflush(stdout);
    return 0;
}
