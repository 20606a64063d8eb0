/* net_device.h: virtio-net (virtio 1.2 §5.1) backed by a host tap device.
 *
 * One receive and one transmit queue. Offered features: VERSION_1, CSUM and
 * GUEST_CSUM, HOST_TSO4/6 and GUEST_TSO4/6 (the tap does the real work, see
 * net_tap.h), MRG_RXBUF, MAC (when a guest MAC is configured), MTU, STATUS,
 * EVENT_IDX and INDIRECT_DESC. All tap I/O runs on the main loop: frames the
 * guest queues for transmission go straight from guest memory to the tap
 * (writev); a received frame is read straight into the guest's receive
 * buffers (readv, num_buffers) when MRG_RXBUF is on, no receive limiter is
 * set and buffers for the largest frame are posted, else into one bounce
 * buffer per device and copied into as many receive buffers as it needs
 * (the metadata service's answers always take that path). The tap is
 * polled only while the guest has receive buffers; with none, one frame
 * waits and the tap is left alone until the guest kicks the receive queue.
 * Transmission is bounded per turn of the loop and throttled by the
 * Firecracker rate limiters; nothing the guest does grows host memory. A
 * frame for the metadata service (MMDS) never reaches the tap: an
 * interceptor (struct net_intercept) takes it and supplies the answers.
 */
#ifndef EMBER_VIRTIO_NET_DEVICE_H
#define EMBER_VIRTIO_NET_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/guest_mem.h"
#include "virtio/mmio.h"
#include "virtio/rate_limiter.h"

#define NET_ID_MAX 64u
/* Largest frame either way without its virtio-net header: a 64 KiB GSO
 * segment plus the Ethernet header (what Linux's virtio-net and the tap
 * hand over at most). */
#define NET_FRAME_MAX 65550u

struct net_config {
    char id[NET_ID_MAX + 1]; /* iface_id: [A-Za-z0-9_]{1,64} */
    char host_dev_name[16];  /* the tap, IFNAMSIZ */
    bool has_mac;
    uint8_t mac[6];
    uint32_t mtu; /* 0: the tap's own MTU */
    struct rate_limiter_config rx_rate_limiter;
    struct rate_limiter_config tx_rate_limiter;
};

/* Firecracker's net metrics, by their names there. */
#define NET_STATS(X)                                                                               \
    X(activate_fails)                                                                              \
    X(cfg_fails)                                                                                   \
    X(mac_address_updates)                                                                         \
    X(no_rx_avail_buffer)                                                                          \
    X(no_tx_avail_buffer)                                                                          \
    X(event_fails)                                                                                 \
    X(rx_queue_event_count)                                                                        \
    X(rx_event_rate_limiter_count)                                                                 \
    X(rx_partial_writes)                                                                           \
    X(rx_rate_limiter_throttled)                                                                   \
    X(rx_tap_event_count)                                                                          \
    X(rx_bytes_count)                                                                              \
    X(rx_packets_count)                                                                            \
    X(rx_fails)                                                                                    \
    X(rx_count)                                                                                    \
    X(tap_read_fails)                                                                              \
    X(tap_write_fails)                                                                             \
    X(tx_bytes_count)                                                                              \
    X(tx_malformed_frames)                                                                         \
    X(tx_fails)                                                                                    \
    X(tx_count)                                                                                    \
    X(tx_packets_count)                                                                            \
    X(tx_partial_reads)                                                                            \
    X(tx_queue_event_count)                                                                        \
    X(tx_rate_limiter_event_count)                                                                 \
    X(tx_rate_limiter_throttled)                                                                   \
    X(tx_spoofed_mac_count)                                                                        \
    X(tx_remaining_reqs_count)

struct net_stats {
#define NET_STAT_FIELD(name) uint64_t name;
    NET_STATS(NET_STAT_FIELD)
#undef NET_STAT_FIELD
};

/* Takes frames off the transmit path before they reach the tap (MMDS). */
struct net_intercept {
    void *ctx;
    /* Whether the frame (without virtio-net header; only the first `len`
     * bytes, at most 64, are given) is for the interceptor. */
    bool (*wants)(void *ctx, const uint8_t *head, size_t len);
    /* Takes a whole frame the guest sent. */
    void (*input)(void *ctx, const uint8_t *frame, size_t len);
    /* Writes the next frame for the guest into buf (cap bytes); returns its
     * length, 0 when there is none. */
    size_t (*output)(void *ctx, uint8_t *buf, size_t cap);
};

struct net;
struct uv_loop_s;

/* Opens the tap (errors name the interface and the tap). */
struct net *net_create(const struct net_config *cfg, const struct guest_mem *mem, uint64_t base,
                       uint32_t gsi, char *err, size_t errlen);
/* Starts serving on the main loop. */
int net_attach(struct net *n, struct uv_loop_s *loop);
void net_destroy(struct net *n);
struct virtio_mmio *net_transport(struct net *n);
const struct net_config *net_get_config(const struct net *n);
/* A copy of the counters (main loop). */
void net_get_stats(struct net *n, struct net_stats *out);
/* After boot (PATCH /network-interfaces): new limiters; NULL keeps one.
 * Main loop only. */
void net_update_limiters(struct net *n, const struct rate_limiter_config *rx,
                         const struct rate_limiter_config *tx);
/* Installs the MMDS interceptor (before net_attach). */
void net_set_intercept(struct net *n, const struct net_intercept *ic);
/* The interceptor has output for the guest: deliver it (main loop). */
void net_intercept_ready(struct net *n);
/* Parses "06:00:AC:10:00:02" into mac; 0 or -1. */
int net_parse_mac(const char *s, uint8_t mac[6]);

#endif
