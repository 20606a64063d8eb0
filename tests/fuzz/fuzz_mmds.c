/* fuzz_mmds.c: the metadata service's guest side (mmds/mmds_stack.c and
 * mmds_http.c over mmds_store.c): frames a hostile guest sends to the MMDS
 * address. The input is a sequence of records:
 *
 *   0  a raw frame: le16 length, the bytes (Ethernet on), through the
 *      interceptor's wants() and, if it wants it, input();
 *   1  a TCP segment from a template, to get past the address checks:
 *      port (one of 4), flags, signed seq and ack offsets from what this
 *      harness tracks as in-window, le16 payload length, the payload;
 *   2  the answers drained: count; every frame is checked (no larger than
 *      an Ethernet frame) and, for TCP, the harness learns the server's
 *      sequence numbers; a count of 128 or more first runs the
 *      retransmission timers as if (count - 127) seconds had passed;
 *   3  the store switched between V1 and V2.
 *
 * Invariants after every record: no memory error (ASan), every output frame
 * within 1514 bytes, the store's document still the one it was given. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mmds/mmds_stack.h"

#define DOC "{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\",\"n\":{\"a\":\"b\"}}},\"x\":[1,2]}"

static const uint8_t guest_mac[6] = {6, 0, 0, 0, 0, 2}, mmds_mac[6] = {6, 1, 0x23, 0x45, 0x67, 1};
static const uint8_t guest_ip[4] = {10, 0, 0, 2};

struct port_state {
    uint32_t my_seq, their_seq;
};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void feed(struct net_intercept *ic, const uint8_t *f, size_t n)
{
    size_t head = n < 64 ? n : 64;

    if (ic->wants(ic->ctx, f, head))
        ic->input(ic->ctx, f, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t frame[NET_FRAME_MAX], out[NET_FRAME_MAX];
    static const uint16_t ports[4] = {40000, 40001, 40002, 40003};
    struct port_state ps[4] = {{0, 0}};
    struct mmds_store store;
    uint32_t ip;
    json_t *doc = json_loads(DOC, 0, NULL);
    char err[128];

    mmds_store_init(&store, MMDS_SIZE_LIMIT_DEFAULT);
    if (!doc || mmds_store_put(&store, doc, err, sizeof(err)) != 0)
        abort();
    inet_pton(AF_INET, MMDS_IPV4_DEFAULT, &ip);
    struct mmds_stack *s = mmds_stack_create(&store, ip);
    if (!s)
        abort();
    struct net_intercept ic = mmds_stack_intercept(s);

    size_t i = 0;
    while (i < size) {
        uint8_t op = data[i++] % 4;
        if (op == 0) {
            if (i + 2 > size)
                break;
            size_t n = (size_t)data[i] | (size_t)data[i + 1] << 8;
            i += 2;
            if (n > size - i)
                n = size - i;
            if (n > sizeof(frame))
                n = sizeof(frame);
            memcpy(frame, data + i, n);
            i += n;
            feed(&ic, frame, n);
        } else if (op == 1) {
            if (i + 5 > size)
                break;
            unsigned p = data[i] % 4;
            uint8_t flags = data[i + 1];
            int8_t dseq = (int8_t)data[i + 2], dack = (int8_t)data[i + 3];
            size_t n = data[i + 4];
            i += 5;
            if (n > size - i)
                n = size - i;
            uint8_t *e = frame, *iph = e + 14, *t = iph + 20;
            memset(frame, 0, 54);
            memcpy(e, mmds_mac, 6);
            memcpy(e + 6, guest_mac, 6);
            put16(e + 12, 0x0800);
            iph[0] = 0x45;
            put16(iph + 2, (uint16_t)(40 + n));
            iph[8] = 64;
            iph[9] = 6;
            memcpy(iph + 12, guest_ip, 4);
            memcpy(iph + 16, &ip, 4);
            put16(t, ports[p]);
            put16(t + 2, 80);
            put32(t + 4, ps[p].my_seq + (uint32_t)(int32_t)dseq);
            put32(t + 8, ps[p].their_seq + (uint32_t)(int32_t)dack);
            t[12] = 5 << 4;
            t[13] = flags;
            put16(t + 14, 65535);
            memcpy(t + 20, data + i, n);
            i += n;
            if (flags & 0x02)
                ps[p].my_seq += 1;
            ps[p].my_seq += (uint32_t)n + ((flags & 0x01) ? 1u : 0u);
            feed(&ic, frame, 54 + n);
        } else if (op == 2) {
            if (i >= size)
                break;
            unsigned k = data[i++];
            if (k >= 128) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
                mmds_stack_timers(s, now + (uint64_t)(k - 127) * 1000000000u);
                k -= 96;
            }
            for (unsigned j = 0; j < k; j++) {
                size_t n = ic.output(ic.ctx, out, sizeof(out));
                if (!n)
                    break;
                if (n > 1514)
                    abort();
                if (n >= 54 && out[12] == 8 && out[13] == 0 && out[23] == 6) {
                    const uint8_t *t = out + 34;
                    uint16_t dport = (uint16_t)(t[2] << 8 | t[3]);
                    for (unsigned p = 0; p < 4; p++)
                        if (ports[p] == dport) {
                            size_t len = n - 34 - (size_t)(t[12] >> 4) * 4;
                            ps[p].their_seq =
                                get32(t + 4) + (uint32_t)len + ((t[13] & 0x03) ? 1u : 0u);
                            if (t[13] & 0x12)
                                ps[p].my_seq = get32(t + 8);
                        }
                }
            }
        } else {
            store.version = store.version == MMDS_V1 ? MMDS_V2 : MMDS_V1;
        }
    }
    /* The guest changed nothing in the store. */
    json_t *now = mmds_store_get(&store);
    if (!json_equal(now, doc))
        abort();
    json_decref(now);
    json_decref(doc);
    mmds_stack_destroy(s);
    mmds_store_release(&store);
    return 0;
}
