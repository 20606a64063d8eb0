/* net_echo_raw.c: a guest on virtio-net through raw MMIO and polling
 * (net_raw.h) that answers ARP for its address, ICMP echo (so that the
 * host's `ping` works across the tap) and UDP echo on port 7. A UDP datagram
 * "quit" to port 7 is answered "bye" and ends the guest, which prints
 * "net-echo: arp A icmp I udp U" and exits 0. A datagram "flood N" is
 * answered with N datagrams of 64 bytes ("flood I"), sent as fast as the
 * device takes them (a transmit flood, for the rate limiter). A datagram
 * "reset" ends a flood where it is (frames still queued) and resets the
 * device, sets it up again and goes on echoing: it prints "net-echo: reset"
 * (a guest that resets its device mid-traffic keeps working).
 *
 * Usage: net_echo_raw IP [mrg] [csum] [gcsum] [small]
 *   mrg    negotiate MRG_RXBUF and post 1 KiB receive buffers, so that a
 *          large frame arrives in several buffers (num_buffers)
 *   csum   negotiate CSUM and send UDP answers with a partial checksum for
 *          the host to complete (VIRTIO_NET_HDR_F_NEEDS_CSUM)
 *   gcsum  negotiate GUEST_CSUM: the host may hand over frames whose
 *          checksum is still to be done (NEEDS_CSUM); they are counted
 *          ("partial N" on the last line) and answered as any other
 *   small  post 256-byte receive buffers without MRG_RXBUF: larger frames
 *          cannot be delivered and are dropped by the device
 * The MAC is the device's (VIRTIO_NET_F_MAC), else 06:00:00:00:00:01. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_raw.h"

static struct nr v;
static uint8_t scratch[NR_QSZ * NR_BUF];
static uint8_t ip[4];
static unsigned n_arp, n_icmp, n_udp, n_partial;
static int csum_offload, done, reset_asked;
static uint8_t flood_frame[64 + 42];
static unsigned flood_left, flood_sent;

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

static void put16(uint8_t *p, uint16_t x)
{
    p[0] = (uint8_t)(x >> 8);
    p[1] = (uint8_t)x;
}

/* Sends frame (len bytes, no header) with header h. */
static void send_frame(const uint8_t *frame, uint32_t len, const struct nr_hdr *h)
{
    uint32_t slot;
    uint8_t *buf = nr_tx_begin(&v, &slot);

    if (!buf || len > NR_BUF - NR_HDR)
        return;
    if (h)
        memcpy(buf, h, NR_HDR);
    memcpy(buf + NR_HDR, frame, len);
    nr_tx_commit(&v, slot, NR_HDR + len);
}

static void arp(uint8_t *f, uint32_t len)
{
    uint8_t *a = f + 14;

    if (len < 42 || be16(a) != 1 || be16(a + 2) != 0x0800 || be16(a + 6) != 1 ||
        memcmp(a + 24, ip, 4) != 0)
        return;
    /* Request for us: answer in place (RFC 826). */
    memcpy(f, a + 8, 6);
    memcpy(f + 6, v.mac, 6);
    put16(a + 6, 2);
    memcpy(a + 18, a + 8, 10); /* target = the asker */
    memcpy(a + 8, v.mac, 6);
    memcpy(a + 14, ip, 4);
    send_frame(f, 42, NULL);
    n_arp++;
}

static void ipv4(uint8_t *f, uint32_t len)
{
    uint8_t *iph = f + 14, tmp[6];
    unsigned ihl = (iph[0] & 15u) * 4u;
    uint32_t tot;

    if (len < 34 || (iph[0] >> 4) != 4 || ihl < 20 || memcmp(iph + 16, ip, 4) != 0)
        return;
    tot = be16(iph + 2);
    if (tot < ihl || 14 + tot > len)
        return;
    uint8_t *l4 = iph + ihl;
    uint32_t l4len = tot - ihl;
    /* Back to the sender: swap MACs and addresses. */
    memcpy(tmp, f, 6);
    memcpy(f, f + 6, 6);
    memcpy(f + 6, tmp, 6);
    memcpy(tmp, iph + 12, 4);
    memcpy(iph + 12, iph + 16, 4);
    memcpy(iph + 16, tmp, 4);
    iph[8] = 64;
    if (iph[9] == 1 && l4len >= 8 && l4[0] == 8) { /* ICMP echo request (RFC 792) */
        l4[0] = 0;
        put16(l4 + 2, 0);
        put16(l4 + 2, nr_csum(l4, l4len, 0));
        n_icmp++;
    } else if (iph[9] == 17 && l4len >= 8 && be16(l4 + 2) == 7) { /* UDP echo (RFC 862) */
        uint16_t sport = be16(l4);
        uint32_t dlen = l4len - 8;
        if (dlen > 6 && dlen < 16 && memcmp(l4 + 8, "flood ", 6) == 0) {
            char num[16] = {0};
            memcpy(num, l4 + 14, dlen - 6);
            flood_left = (unsigned)strtoul(num, NULL, 10);
            flood_sent = 0;
            /* The template: this frame's addresses, 64 bytes of data. */
            put16(l4, 7);
            put16(l4 + 2, sport);
            put16(l4 + 4, 8 + 64);
            put16(l4 + 6, 0);
            put16(iph + 2, (uint16_t)(ihl + 8 + 64));
            put16(iph + 10, 0);
            put16(iph + 10, nr_csum(iph, ihl, 0));
            memcpy(flood_frame, f, 14 + ihl + 8);
            n_udp++;
            return;
        }
        if (dlen == 5 && memcmp(l4 + 8, "reset", 5) == 0) {
            reset_asked = 1;
            n_udp++;
            return;
        }
        if (dlen == 4 && memcmp(l4 + 8, "quit", 4) == 0) {
            memcpy(l4 + 8, "bye", 3);
            dlen = 3;
            l4len = 11;
            tot = ihl + l4len;
            put16(iph + 2, (uint16_t)tot);
            done = 1;
        }
        put16(l4, 7);
        put16(l4 + 2, sport);
        put16(l4 + 4, (uint16_t)l4len);
        put16(l4 + 6, 0);
        n_udp++;
        /* The pseudo-header sum (RFC 768) */
        uint32_t ps = (uint32_t)be16(iph + 12) + be16(iph + 14) + be16(iph + 16) + be16(iph + 18) +
                      17u + l4len;
        put16(iph + 10, 0);
        put16(iph + 10, nr_csum(iph, ihl, 0));
        if (csum_offload && (v.features & NR_FEAT_CSUM)) {
            /* virtio 1.2 §5.1.6.2: the device completes the checksum from
             * csum_start, stored at csum_start + csum_offset; what is there
             * now is the folded pseudo-header sum. */
            struct nr_hdr h = {.flags = 1, .csum_start = (uint16_t)(14 + ihl), .csum_offset = 6};
            uint16_t partial = (uint16_t)~nr_csum("", 0, ps);
            put16(l4 + 6, partial);
            send_frame(f, 14 + tot, &h);
            return;
        }
        uint16_t c = nr_csum(l4, l4len, ps);
        put16(l4 + 6, c ? c : 0xffff);
        send_frame(f, 14 + tot, NULL);
        return;
    } else {
        return;
    }
    put16(iph + 10, 0);
    put16(iph + 10, nr_csum(iph, ihl, 0));
    send_frame(f, 14 + tot, NULL);
}

int main(int argc, char **argv)
{
    static const uint8_t default_mac[6] = {6, 0, 0, 0, 0, 1};
    uint64_t want = NR_FEAT_VERSION_1 | NR_FEAT_MAC | NR_FEAT_STATUS;
    uint32_t rx_len = NR_BUF;

    if (argc < 2 || parse_ip(argv[1], ip) != 0) {
        printf("usage: net_echo_raw IP [mrg] [csum] [small]\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "mrg") == 0) {
            want |= NR_FEAT_MRG_RXBUF;
            rx_len = 1024;
        } else if (strcmp(argv[i], "csum") == 0) {
            want |= NR_FEAT_CSUM;
            csum_offload = 1;
        } else if (strcmp(argv[i], "gcsum") == 0) {
            want |= NR_FEAT_GUEST_CSUM;
        } else if (strcmp(argv[i], "small") == 0) {
            rx_len = 256;
        }
    }
    if (nr_find(&v) != 0) {
        printf("net-echo: no virtio-net device\n");
        return 2;
    }
    memcpy(v.mac, default_mac, 6);
    if (nr_negotiate(&v, want) != 0) {
        printf("net-echo: FEATURES_OK refused\n");
        return 3;
    }
    nr_start(&v, rx_len);
    uint64_t features = v.features;
    printf("net-echo: up, mac %02x:%02x:%02x:%02x:%02x:%02x, features 0x%llx\n", v.mac[0], v.mac[1],
           v.mac[2], v.mac[3], v.mac[4], v.mac[5], (unsigned long long)v.features);
    fflush(stdout);
    uint64_t next_check = 0;
    while (!done) {
        uint32_t len, nb;
        uint8_t *buf;
        int any = 0;
        while (!done && (buf = nr_rx_next(&v, scratch, &len, &nb)) != NULL) {
            if (len >= NR_HDR + 14) {
                uint8_t *f = buf + NR_HDR;
                if (((struct nr_hdr *)buf)->flags & 1) /* NEEDS_CSUM: the echo recomputes it */
                    n_partial++;
                uint32_t flen = len - NR_HDR;
                uint16_t type = be16(f + 12);
                if (type == 0x0806)
                    arp(f, flen);
                else if (type == 0x0800)
                    ipv4(f, flen);
            }
            nr_rx_done(&v, buf, nb);
            any = 1;
        }
        if (any)
            nr_notify(&v, 0);
        if (reset_asked) {
            /* Mid-flood: transmit frames are still on the ring. */
            reset_asked = 0;
            flood_left = 0;
            if (nr_negotiate(&v, want) != 0 || v.features != features) {
                printf("net-echo: FEATURES_OK refused after the reset\n");
                return 3;
            }
            nr_start(&v, rx_len);
            printf("net-echo: reset\n");
            fflush(stdout);
        }
        while (flood_left) {
            uint8_t *payload = flood_frame + 42;
            memset(payload, 0, 64);
            snprintf((char *)payload, 64, "flood %u", flood_sent);
            send_frame(flood_frame, 42 + 64, NULL);
            flood_sent++;
            flood_left--;
            if (flood_sent % 16 == 0)
                break; /* look at the receive queue now and then */
        }
        if (ember_monotonic_ns() >= next_check) {
            next_check = ember_monotonic_ns() + 100000000ull;
            if (nr_needs_reset(&v)) {
                printf("net-echo: device needs reset\n");
                return 4;
            }
        }
    }
    /* Let the last answer leave before the VM ends. */
    uint64_t until = ember_monotonic_ns() + 200000000ull;
    while (v.ntx_free < NR_QSZ && ember_monotonic_ns() < until)
        nr_tx_reclaim(&v);
    printf("net-echo: arp %u icmp %u udp %u partial %u\n", n_arp, n_icmp, n_udp, n_partial);
    return 0;
}
