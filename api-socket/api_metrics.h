/* api_metrics.h: ember's metrics, flushed as one JSON object per line.
 *
 * Counters are process-wide and may be bumped from any thread (relaxed
 * atomics: a vCPU exit costs one locked add, no lock, no call into the API).
 * Each flush writes what happened since the previous flush (deltas) and
 * resets the counters; gauges (API_M_*_US stores) are written as they are.
 * Flushes happen when metrics are configured, every 60 s, on the
 * FlushMetrics action and at exit (Firecracker's rules).
 *
 * Other parts of ember bump their counters with api_metrics_add(); the names
 * in the JSON are in the table in api_metrics.c.
 */
#ifndef EMBER_API_METRICS_H
#define EMBER_API_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "api-socket/api_json.h"

struct api_metrics_cfg;

enum api_metric {
    /* api_server */
    API_M_PROCESS_STARTUP_TIME_US,     /* gauge: exec (or --start-time-us) to socket ready */
    API_M_PROCESS_STARTUP_TIME_CPU_US, /* gauge: CPU time spent until socket ready */
    API_M_CONNECTIONS,
    API_M_HTTP_ERRORS, /* malformed HTTP, oversized requests */
    API_M_SYNC_RESPONSE_FAILS,
    /* vcpu: one per exit kind, bumped by the vCPU loop */
    API_M_VCPU_EXIT_IO_IN,
    API_M_VCPU_EXIT_IO_OUT,
    API_M_VCPU_EXIT_MMIO_READ,
    API_M_VCPU_EXIT_MMIO_WRITE,
    API_M_VCPU_EXIT_HLT,
    API_M_VCPU_EXIT_SHUTDOWN,
    API_M_VCPU_EXIT_OTHER,
    API_M_VCPU_FAILURES,
    /* vmm */
    API_M_BOOT_TIME_US,      /* gauge: InstanceStart to the guest's boot-timer write */
    API_M_INSTANCE_START_US, /* gauge: time spent in vm_create for InstanceStart */
    API_M_PAUSES,
    API_M_RESUMES,
    /* block, net, vsock: bumped by the device models */
    API_M_BLOCK_READ_BYTES,
    API_M_BLOCK_WRITE_BYTES,
    API_M_BLOCK_READ_COUNT,
    API_M_BLOCK_WRITE_COUNT,
    API_M_BLOCK_FLUSH_COUNT,
    API_M_BLOCK_FAILURES,
    API_M_NET_RX_BYTES,
    API_M_NET_TX_BYTES,
    API_M_NET_RX_PACKETS,
    API_M_NET_TX_PACKETS,
    API_M_NET_FAILURES,
    API_M_VSOCK_RX_BYTES,
    API_M_VSOCK_TX_BYTES,
    API_M_VSOCK_CONNS_ADDED,
    API_M_VSOCK_CONNS_REMOVED,
    API_M_VSOCK_FAILURES,
    API_M_VSOCK_TX_BUFFERED,      /* gauge: guest data held for host sockets */
    API_M_VSOCK_TX_BUFFERED_PEAK, /* gauge: the most it has been (<= the budget) */
    API_M_VSOCK_CREDIT_LIMITED,   /* credit grants cut short by the budget */
    /* seccomp and signals */
    API_M_SECCOMP_FAULTS,
    API_M_SIGNAL_SIGBUS,
    API_M_SIGNAL_SIGSEGV,
    API_M_SIGNAL_SIGXFSZ,
    API_M_SIGNAL_SIGXCPU,
    API_M_SIGNAL_SIGPIPE,
    API_M_SIGNAL_SIGHUP,
    API_M_SIGNAL_SIGILL,
    API_M_SIGNAL_SIGTERM,
    API_M_SIGNAL_SIGINT,
    /* logger */
    API_M_LOG_MISSED,
    API_M_METRICS_MISSED,
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
    API_R_UNSUPPORTED, /* endpoints ember does not offer */
    API_R_INVALID,     /* unknown path or method */
    API_R_COUNT
};

void api_metrics_add(enum api_metric m, uint64_t n);
void api_metrics_store(enum api_metric m, uint64_t v);
uint64_t api_metrics_peek(enum api_metric m);
void api_metrics_request(enum api_method method, enum api_resource res, bool failed);
/* fn(arg) is called before each flush, on the flushing thread, to pull
 * counters kept elsewhere (device statistics) in with api_metrics_add(). */
void api_metrics_set_sampler(void (*fn)(void *), void *arg);

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
