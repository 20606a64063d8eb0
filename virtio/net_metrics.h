/* net_metrics.h: the counters of one virtio-net interface, named as
 * Firecracker names them (its devices/virtio/net/metrics.rs), so that a
 * metrics line carries the "net_<iface_id>" group its tooling expects.
 *
 * The device increments the fields it has a meaning for (a plain ++ or +=:
 * the device and the metrics flush both run on the main loop thread) and
 * leaves the others at 0. Fields are running totals; the metrics writer
 * turns them into per-line deltas and sums every interface into "net".
 * With the API, api_metrics_net(iface_id) (api-socket/api_metrics.h) hands
 * out the struct for an interface; without it (`ember run`) the device
 * keeps a private one. NET_METRICS_COUNTERS lists the fields in
 * Firecracker's order; the latency aggregate tap_write_agg is written as 0.
 */
#ifndef EMBER_VIRTIO_NET_METRICS_H
#define EMBER_VIRTIO_NET_METRICS_H

#include <stdint.h>

#define NET_METRICS_COUNTERS(X)                                                                    \
    X(activate_fails)                                                                              \
    X(cfg_fails)                                                                                   \
    X(no_rx_avail_buffer)                                                                          \
    X(no_tx_avail_buffer)                                                                          \
    X(event_fails)                                                                                 \
    X(rx_queue_event_count)                                                                        \
    X(rx_event_rate_limiter_count)                                                                 \
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
    X(tx_queue_event_count)                                                                        \
    X(tx_rate_limiter_event_count)                                                                 \
    X(tx_rate_limiter_throttled)                                                                   \
    X(tx_spoofed_mac_count)                                                                        \
    X(tx_remaining_reqs_count)

struct net_metrics {
#define NET_METRICS_FIELD(name) uint64_t name;
    NET_METRICS_COUNTERS(NET_METRICS_FIELD)
#undef NET_METRICS_FIELD
};

#endif
