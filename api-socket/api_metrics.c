/* api_metrics.c: counters and their JSON-lines output (see api_metrics.h). */
#include "api-socket/api_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "api-socket/api_output.h"
#include "api-socket/api_resources.h"

struct metric_def {
    const char *group;
    const char *name;
    bool gauge;
};

/* Group and field names follow Firecracker's metrics where a counterpart
 * exists, so dashboards built for it find them. */
static const struct metric_def defs[API_M_COUNT] = {
    [API_M_PROCESS_STARTUP_TIME_US] = {"api_server", "process_startup_time_us", true},
    [API_M_PROCESS_STARTUP_TIME_CPU_US] = {"api_server", "process_startup_time_cpu_us", true},
    [API_M_CONNECTIONS] = {"api_server", "connections", false},
    [API_M_HTTP_ERRORS] = {"api_server", "http_errors", false},
    [API_M_SYNC_RESPONSE_FAILS] = {"api_server", "sync_response_fails", false},
    [API_M_VCPU_EXIT_IO_IN] = {"vcpu", "exit_io_in", false},
    [API_M_VCPU_EXIT_IO_OUT] = {"vcpu", "exit_io_out", false},
    [API_M_VCPU_EXIT_MMIO_READ] = {"vcpu", "exit_mmio_read", false},
    [API_M_VCPU_EXIT_MMIO_WRITE] = {"vcpu", "exit_mmio_write", false},
    [API_M_VCPU_EXIT_HLT] = {"vcpu", "exit_hlt", false},
    [API_M_VCPU_EXIT_SHUTDOWN] = {"vcpu", "exit_shutdown", false},
    [API_M_VCPU_EXIT_OTHER] = {"vcpu", "exit_other", false},
    [API_M_VCPU_FAILURES] = {"vcpu", "failures", false},
    [API_M_BOOT_TIME_US] = {"vmm", "boot_time_us", true},
    [API_M_INSTANCE_START_US] = {"vmm", "instance_start_us", true},
    [API_M_PAUSES] = {"vmm", "pauses", false},
    [API_M_RESUMES] = {"vmm", "resumes", false},
    [API_M_BLOCK_READ_BYTES] = {"block", "read_bytes", false},
    [API_M_BLOCK_WRITE_BYTES] = {"block", "write_bytes", false},
    [API_M_BLOCK_READ_COUNT] = {"block", "read_count", false},
    [API_M_BLOCK_WRITE_COUNT] = {"block", "write_count", false},
    [API_M_BLOCK_FLUSH_COUNT] = {"block", "flush_count", false},
    [API_M_BLOCK_FAILURES] = {"block", "failures", false},
    [API_M_NET_RX_BYTES] = {"net", "rx_bytes_count", false},
    [API_M_NET_TX_BYTES] = {"net", "tx_bytes_count", false},
    [API_M_NET_RX_PACKETS] = {"net", "rx_packets_count", false},
    [API_M_NET_TX_PACKETS] = {"net", "tx_packets_count", false},
    [API_M_NET_FAILURES] = {"net", "failures", false},
    [API_M_VSOCK_RX_BYTES] = {"vsock", "rx_bytes_count", false},
    [API_M_VSOCK_TX_BYTES] = {"vsock", "tx_bytes_count", false},
    [API_M_VSOCK_CONNS_ADDED] = {"vsock", "conns_added", false},
    [API_M_VSOCK_CONNS_REMOVED] = {"vsock", "conns_removed", false},
    [API_M_VSOCK_FAILURES] = {"vsock", "failures", false},
    [API_M_VSOCK_TX_BUFFERED] = {"vsock", "tx_buffered_bytes", true},
    [API_M_VSOCK_TX_BUFFERED_PEAK] = {"vsock", "tx_buffered_bytes_peak", true},
    [API_M_VSOCK_CREDIT_LIMITED] = {"vsock", "tx_credit_limited", false},
    [API_M_SECCOMP_FAULTS] = {"seccomp", "num_faults", false},
    [API_M_SIGNAL_SIGBUS] = {"signals", "sigbus", false},
    [API_M_SIGNAL_SIGSEGV] = {"signals", "sigsegv", false},
    [API_M_SIGNAL_SIGXFSZ] = {"signals", "sigxfsz", false},
    [API_M_SIGNAL_SIGXCPU] = {"signals", "sigxcpu", false},
    [API_M_SIGNAL_SIGPIPE] = {"signals", "sigpipe", false},
    [API_M_SIGNAL_SIGHUP] = {"signals", "sighup", false},
    [API_M_SIGNAL_SIGILL] = {"signals", "sigill", false},
    [API_M_SIGNAL_SIGTERM] = {"signals", "sigterm", false},
    [API_M_SIGNAL_SIGINT] = {"signals", "sigint", false},
    [API_M_LOG_MISSED] = {"logger", "missed_log_count", false},
    [API_M_METRICS_MISSED] = {"logger", "missed_metrics_count", false},
};

#define M_GET   (1u << API_GET)
#define M_PUT   (1u << API_PUT)
#define M_PATCH (1u << API_PATCH)

/* Request counters: <group>.<name>_count and <name>_fails, for the methods
 * that exist on that resource. */
static const struct {
    const char *name;
    unsigned methods;
} resources[API_R_COUNT] = {
    [API_R_INSTANCE_INFO] = {"instance_info", M_GET},
    [API_R_VERSION] = {"vmm_version", M_GET},
    [API_R_VM_CONFIG] = {"vm_config", M_GET},
    [API_R_MACHINE_CFG] = {"machine_cfg", M_GET | M_PUT | M_PATCH},
    [API_R_BOOT_SOURCE] = {"boot_source", M_PUT},
    [API_R_DRIVE] = {"drive", M_PUT | M_PATCH},
    [API_R_NETWORK] = {"network", M_PUT | M_PATCH},
    [API_R_VSOCK] = {"vsock", M_PUT},
    [API_R_ACTIONS] = {"actions", M_PUT},
    [API_R_LOGGER] = {"logger", M_PUT},
    [API_R_METRICS] = {"metrics", M_PUT},
    [API_R_SERIAL] = {"serial", M_PUT},
    [API_R_VM] = {"vm", M_PATCH},
    [API_R_UNSUPPORTED] = {"unsupported", M_GET | M_PUT | M_PATCH},
    [API_R_INVALID] = {"invalid", M_GET | M_PUT | M_PATCH},
};
static const char *const method_groups[3] = {"get_api_requests", "put_api_requests",
                                             "patch_api_requests"};

static _Atomic uint64_t values[API_M_COUNT];
static _Atomic uint64_t req_count[3][API_R_COUNT];
static _Atomic uint64_t req_fails[3][API_R_COUNT];

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int out_fd = -1;
static json_t *properties;
static char *emit_id;
static void (*sampler)(void *);
static void *sampler_arg;

void api_metrics_set_sampler(void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&lock);
    sampler = fn;
    sampler_arg = arg;
    pthread_mutex_unlock(&lock);
}

void api_metrics_add(enum api_metric m, uint64_t n)
{
    if ((unsigned)m < API_M_COUNT)
        atomic_fetch_add_explicit(&values[m], n, memory_order_relaxed);
}

void api_metrics_store(enum api_metric m, uint64_t v)
{
    if ((unsigned)m < API_M_COUNT)
        atomic_store_explicit(&values[m], v, memory_order_relaxed);
}

uint64_t api_metrics_peek(enum api_metric m)
{
    if ((unsigned)m < API_M_COUNT)
        return atomic_load_explicit(&values[m], memory_order_relaxed);
    return 0;
}

void api_metrics_request(enum api_method method, enum api_resource res, bool failed)
{
    if ((unsigned)method > API_PATCH || (unsigned)res >= API_R_COUNT)
        method = API_GET, res = API_R_INVALID;
    atomic_fetch_add_explicit(&req_count[method][res], 1, memory_order_relaxed);
    if (failed)
        atomic_fetch_add_explicit(&req_fails[method][res], 1, memory_order_relaxed);
}

static uint64_t take(_Atomic uint64_t *v, bool gauge)
{
    if (gauge)
        return atomic_load_explicit(v, memory_order_relaxed);
    return atomic_exchange_explicit(v, 0, memory_order_relaxed);
}

static json_t *group(json_t *root, const char *name)
{
    json_t *g = json_object_get(root, name);
    if (!g) {
        g = json_object();
        json_object_set_new(root, name, g);
    }
    return g;
}

/* Called with lock held (or before any thread exists). */
static char *take_line_locked(void)
{
    struct timespec ts;
    json_t *root = json_object();
    char key[64], *text;

    if (!root)
        return NULL;
    if (sampler)
        sampler(sampler_arg);
    clock_gettime(CLOCK_REALTIME, &ts);
    json_object_set_new(root, "utc_timestamp_ms",
                        json_integer((json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
    if (emit_id)
        json_object_set_new(root, "id", json_string(emit_id));
    if (properties)
        json_object_set(root, "properties", properties);
    for (int m = 0; m < 3; m++) {
        json_t *g = group(root, method_groups[m]);
        for (int r = 0; r < API_R_COUNT; r++) {
            if (!(resources[r].methods & (1u << m)))
                continue;
            snprintf(key, sizeof(key), "%s_count", resources[r].name);
            json_object_set_new(g, key, json_integer((json_int_t)take(&req_count[m][r], false)));
            snprintf(key, sizeof(key), "%s_fails", resources[r].name);
            json_object_set_new(g, key, json_integer((json_int_t)take(&req_fails[m][r], false)));
        }
    }
    for (int i = 0; i < API_M_COUNT; i++)
        json_object_set_new(group(root, defs[i].group), defs[i].name,
                            json_integer((json_int_t)take(&values[i], defs[i].gauge)));
    text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}

char *api_metrics_take_line(void)
{
    char *s;
    pthread_mutex_lock(&lock);
    s = take_line_locked();
    pthread_mutex_unlock(&lock);
    return s;
}

static int flush_locked(struct api_err *e)
{
    char *line;
    size_t n;
    int rc;

    if (out_fd < 0)
        return api_errf(e, "metrics are not configured (PUT /metrics first)");
    line = take_line_locked();
    if (!line)
        return api_errf(e, "out of memory");
    n = strlen(line);
    line[n] = '\n'; /* json_dumps leaves room: the NUL becomes the newline */
    rc = api_output_write(out_fd, line, n + 1);
    free(line);
    if (rc < 0) {
        api_metrics_add(API_M_METRICS_MISSED, 1);
        return api_errf(e, "metrics line dropped: the metrics output is full or gone");
    }
    return 0;
}

int api_metrics_flush(struct api_err *e)
{
    int rc;
    pthread_mutex_lock(&lock);
    rc = flush_locked(e);
    pthread_mutex_unlock(&lock);
    return rc;
}

bool api_metrics_configured(void)
{
    bool r;
    pthread_mutex_lock(&lock);
    r = out_fd >= 0;
    pthread_mutex_unlock(&lock);
    return r;
}

int api_metrics_configure(const struct api_metrics_cfg *cfg, const char *instance_id,
                          struct api_err *e)
{
    int fd, rc = 0;

    pthread_mutex_lock(&lock);
    if (out_fd >= 0) {
        pthread_mutex_unlock(&lock);
        return api_errf(e, "Reinitialization of metrics not allowed.");
    }
    fd = api_output_open("metrics", cfg->metrics_path, e);
    if (fd < 0) {
        pthread_mutex_unlock(&lock);
        return -1;
    }
    out_fd = fd;
    properties = cfg->properties ? json_deep_copy(cfg->properties) : NULL;
    emit_id = cfg->emit_id && instance_id ? strdup(instance_id) : NULL;
    /* The first line marks the start; a failed write is counted, not fatal. */
    struct api_err ignored;
    (void)flush_locked(&ignored);
    pthread_mutex_unlock(&lock);
    return rc;
}
