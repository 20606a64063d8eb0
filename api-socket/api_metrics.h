/* api_metrics.h: ember's metrics, flushed as one JSON object per line.
 *
 * The line has Firecracker's shape (its logger/metrics.rs; checked by
 * tests/api/fc_metrics_check.py, written from its tests/host_tools/
 * fcmetrics.py): every group and counter its tooling requires, in its
 * order, with 0 for what ember cannot count; per-device groups
 * "block_<drive_id>" and "net_<iface_id>" with "block" and "net" their sums;
 * and ember's own counters in one group of their own, "ember", which a
 * strict validator skips by name (README.md lists them).
 *
 * Counters are process-wide and may be bumped from any thread (relaxed
 * atomics: a vCPU exit costs one locked add, no lock, no call into the API).
 * Each flush writes what happened since the previous flush (deltas) and
 * resets the counters; gauges (api_metrics_store) are written as they are.
 * Flushes happen when metrics are configured, every 60 s, on the
 * FlushMetrics action and at exit (Firecracker's rules).
 */
#ifndef EMBER_API_METRICS_H
#define EMBER_API_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "api-socket/api_json.h"
#include "virtio/net_metrics.h"

struct api_metrics_cfg;

enum api_metric {
    /* Firecracker's groups. api_server: */
    API_M_PROCESS_STARTUP_TIME_US,     /* gauge: exec (or --start-time-us) to socket ready */
    API_M_PROCESS_STARTUP_TIME_CPU_US, /* gauge: CPU time spent until socket ready */
    /* deprecated_api */
    API_M_DEPRECATED_API_CALLS,
    /* latencies_us (gauges, the last one measured) */
    API_M_LATENCY_PAUSE_VM,
    API_M_LATENCY_RESUME_VM,
    API_M_LATENCY_VMM_PAUSE_VM,
    API_M_LATENCY_VMM_RESUME_VM,
    /* logger */
    API_M_LOG_MISSED,
    API_M_METRICS_MISSED,
    API_M_METRICS_FAILS,
    /* seccomp */
    API_M_SECCOMP_FAULTS,
    /* vcpu: one per exit kind, bumped by the vCPU loop */
    API_M_VCPU_EXIT_IO_IN,
    API_M_VCPU_EXIT_IO_OUT,
    API_M_VCPU_EXIT_MMIO_READ,
    API_M_VCPU_EXIT_MMIO_WRITE,
    API_M_VCPU_FAILURES,
    /* signals */
    API_M_SIGNAL_SIGBUS,
    API_M_SIGNAL_SIGSEGV,
    API_M_SIGNAL_SIGXFSZ,
    API_M_SIGNAL_SIGXCPU,
    API_M_SIGNAL_SIGPIPE,
    API_M_SIGNAL_SIGHUP,
    API_M_SIGNAL_SIGILL,
    /* vsock */
    API_M_VSOCK_RX_BYTES,
    API_M_VSOCK_TX_BYTES,
    API_M_VSOCK_RX_PACKETS,
    API_M_VSOCK_TX_PACKETS,
    API_M_VSOCK_CONNS_ADDED,
    API_M_VSOCK_CONNS_KILLED,
    API_M_VSOCK_CONNS_REMOVED,
    /* ember's own group, "ember" */
    API_M_CONNECTIONS,         /* API connections accepted */
    API_M_CONNECTIONS_REFUSED, /* answered 503: over the connection limit */
    API_M_HTTP_ERRORS,         /* malformed HTTP, oversized requests */
    API_M_SYNC_RESPONSE_FAILS, /* answers that could not be written */
    API_M_VCPU_EXIT_HLT,
    API_M_VCPU_EXIT_SHUTDOWN,
    API_M_VCPU_EXIT_OTHER,
    API_M_BOOT_TIME_US,      /* gauge: InstanceStart to the guest's boot-timer write */
    API_M_INSTANCE_START_US, /* gauge: time spent in vm_create for InstanceStart */
    API_M_PAUSES,
    API_M_RESUMES,
    API_M_VSOCK_FAILURES,
    API_M_VSOCK_TX_BUFFERED,      /* gauge: guest data held for host sockets */
    API_M_VSOCK_TX_BUFFERED_PEAK, /* gauge: the most it has been (<= the budget) */
    API_M_VSOCK_CREDIT_LIMITED,   /* credit grants cut short by the budget */
    API_M_SIGNAL_SIGTERM,
    API_M_SIGNAL_SIGINT,
    /* Firecracker's "mmds" group (mmds_stack.h says what each counts). */
    API_M_MMDS_rx_accepted,
    API_M_MMDS_rx_accepted_err,
    API_M_MMDS_rx_accepted_unusual,
    API_M_MMDS_rx_bad_eth,
    API_M_MMDS_rx_invalid_token,
    API_M_MMDS_rx_no_token,
    API_M_MMDS_rx_count,
    API_M_MMDS_tx_bytes,
    API_M_MMDS_tx_count,
    API_M_MMDS_tx_errors,
    API_M_MMDS_tx_frames,
    API_M_MMDS_connections_created,
    API_M_MMDS_connections_destroyed,
    API_M_COUNT
};

/* The methods and resources of the request counters (get_api_requests...). */
enum api_method { API_GET, API_PUT, API_PATCH, API_METHOD_OTHER };
enum api_resource {
    API_R_INSTANCE_INFO,
    API_R_VERSION,
    API_R_VM_CONFIG,
    API_R_MACHINE_CFG,
    API_R_BOOT_SOURCE,
    API_R_DRIVE,
    API_R_NETWORK,
    API_R_VSOCK,
    API_R_ACTIONS,
    API_R_LOGGER,
    API_R_METRICS,
    API_R_SERIAL,
    API_R_VM,
    API_R_MMDS,
    API_R_CPU_CFG,
    API_R_PMEM,
    API_R_HOTPLUG_MEMORY,
    API_R_BALLOON,
    API_R_ENTROPY,
    API_R_SNAPSHOT,
    API_R_UNSUPPORTED, /* other endpoints ember does not offer */
    API_R_INVALID,     /* unknown path or method, bad body framing */
    API_R_COUNT
};

/* Firecracker's per-drive counters ("block_<drive_id>"), filled by the
 * metrics sampler from the block devices; the latency aggregates read_agg
 * and write_agg are written as 0. */
#define API_BLOCK_COUNTERS(X)                                                                      \
    X(activate_fails)                                                                              \
    X(cfg_fails)                                                                                   \
    X(no_avail_buffer)                                                                             \
    X(event_fails)                                                                                 \
    X(execute_fails)                                                                               \
    X(invalid_reqs_count)                                                                          \
    X(flush_count)                                                                                 \
    X(queue_event_count)                                                                           \
    X(rate_limiter_event_count)                                                                    \
    X(update_count)                                                                                \
    X(update_fails)                                                                                \
    X(read_bytes)                                                                                  \
    X(write_bytes)                                                                                 \
    X(read_count)                                                                                  \
    X(write_count)                                                                                 \
    X(rate_limiter_throttled_events)                                                               \
    X(io_engine_throttled_events)                                                                  \
    X(remaining_reqs_count)

struct api_block_metrics {
#define API_BLOCK_FIELD(name) uint64_t name;
    API_BLOCK_COUNTERS(API_BLOCK_FIELD)
#undef API_BLOCK_FIELD
};

void api_metrics_add(enum api_metric m, uint64_t n);
void api_metrics_store(enum api_metric m, uint64_t v);
uint64_t api_metrics_peek(enum api_metric m);
void api_metrics_request(enum api_method method, enum api_resource res, bool failed);
/* fn(arg) is called before each flush, on the flushing thread, to pull
 * counters kept elsewhere (device statistics) in with api_metrics_add(). */
void api_metrics_set_sampler(void (*fn)(void *), void *arg);

/* The running totals of one drive or interface, created on first use (PUT
 * /drives, PUT /network-interfaces) and kept for the life of the process, as
 * Firecracker keeps them. NULL for an invalid id or past API_METRICS_DEVICES.
 * Main loop thread only (the devices and the flushes run there). */
#define API_METRICS_DEVICES 16
struct api_block_metrics *api_metrics_block(const char *drive_id);
struct net_metrics *api_metrics_net(const char *iface_id);

/* Opens the output and writes the first line. Fails if already configured
 * ("Reinitialization of metrics not allowed", as Firecracker). The instance
 * id is used when cfg->emit_id. */
int api_metrics_configure(const struct api_metrics_cfg *cfg, const char *instance_id,
                          struct api_err *e);
bool api_metrics_configured(void);
/* Writes one line. Returns 0, or -1 with e set (not configured, write failed). */
int api_metrics_flush(struct api_err *e);
/* The JSON line a flush would write, without the newline, with the counters
 * reset. Returns malloc'd text or NULL. Exposed for tests. */
char *api_metrics_take_line(void);

#endif
