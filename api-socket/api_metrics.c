/* api_metrics.c: counters and their JSON-lines output (see api_metrics.h). */
#include "api-socket/api_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
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

/* Where each of ember's counters goes: a field of one of Firecracker's
 * groups, or of ember's own group. */
static const struct metric_def defs[API_M_COUNT] = {
    [API_M_PROCESS_STARTUP_TIME_US] = {"api_server", "process_startup_time_us", true},
    [API_M_PROCESS_STARTUP_TIME_CPU_US] = {"api_server", "process_startup_time_cpu_us", true},
    [API_M_DEPRECATED_API_CALLS] = {"deprecated_api", "deprecated_http_api_calls", false},
    [API_M_LATENCY_PAUSE_VM] = {"latencies_us", "pause_vm", true},
    [API_M_LATENCY_RESUME_VM] = {"latencies_us", "resume_vm", true},
    [API_M_LATENCY_VMM_PAUSE_VM] = {"latencies_us", "vmm_pause_vm", true},
    [API_M_LATENCY_VMM_RESUME_VM] = {"latencies_us", "vmm_resume_vm", true},
    [API_M_LOG_MISSED] = {"logger", "missed_log_count", false},
    [API_M_METRICS_MISSED] = {"logger", "missed_metrics_count", false},
    [API_M_METRICS_FAILS] = {"logger", "metrics_fails", false},
    [API_M_SECCOMP_FAULTS] = {"seccomp", "num_faults", false},
    [API_M_VCPU_EXIT_IO_IN] = {"vcpu", "exit_io_in", false},
    [API_M_VCPU_EXIT_IO_OUT] = {"vcpu", "exit_io_out", false},
    [API_M_VCPU_EXIT_MMIO_READ] = {"vcpu", "exit_mmio_read", false},
    [API_M_VCPU_EXIT_MMIO_WRITE] = {"vcpu", "exit_mmio_write", false},
    [API_M_VCPU_FAILURES] = {"vcpu", "failures", false},
    [API_M_SIGNAL_SIGBUS] = {"signals", "sigbus", false},
    [API_M_SIGNAL_SIGSEGV] = {"signals", "sigsegv", false},
    [API_M_SIGNAL_SIGXFSZ] = {"signals", "sigxfsz", false},
    [API_M_SIGNAL_SIGXCPU] = {"signals", "sigxcpu", false},
    [API_M_SIGNAL_SIGPIPE] = {"signals", "sigpipe", false},
    [API_M_SIGNAL_SIGHUP] = {"signals", "sighup", false},
    [API_M_SIGNAL_SIGILL] = {"signals", "sigill", false},
    [API_M_VSOCK_RX_BYTES] = {"vsock", "rx_bytes_count", false},
    [API_M_VSOCK_TX_BYTES] = {"vsock", "tx_bytes_count", false},
    [API_M_VSOCK_RX_PACKETS] = {"vsock", "rx_packets_count", false},
    [API_M_VSOCK_TX_PACKETS] = {"vsock", "tx_packets_count", false},
    [API_M_VSOCK_CONNS_ADDED] = {"vsock", "conns_added", false},
    [API_M_VSOCK_CONNS_KILLED] = {"vsock", "conns_killed", false},
    [API_M_VSOCK_CONNS_REMOVED] = {"vsock", "conns_removed", false},
    [API_M_CONNECTIONS] = {"ember", "api_connections", false},
    [API_M_CONNECTIONS_REFUSED] = {"ember", "api_connections_refused", false},
    [API_M_HTTP_ERRORS] = {"ember", "api_http_errors", false},
    [API_M_SYNC_RESPONSE_FAILS] = {"ember", "api_sync_response_fails", false},
    [API_M_VCPU_EXIT_HLT] = {"ember", "vcpu_exit_hlt", false},
    [API_M_VCPU_EXIT_SHUTDOWN] = {"ember", "vcpu_exit_shutdown", false},
    [API_M_VCPU_EXIT_OTHER] = {"ember", "vcpu_exit_other", false},
    [API_M_BOOT_TIME_US] = {"ember", "boot_time_us", true},
    [API_M_INSTANCE_START_US] = {"ember", "instance_start_us", true},
    [API_M_PAUSES] = {"ember", "pauses", false},
    [API_M_RESUMES] = {"ember", "resumes", false},
    [API_M_VSOCK_FAILURES] = {"ember", "vsock_failures", false},
    [API_M_VSOCK_TX_BUFFERED] = {"ember", "vsock_tx_buffered_bytes", true},
    [API_M_VSOCK_TX_BUFFERED_PEAK] = {"ember", "vsock_tx_buffered_bytes_peak", true},
    [API_M_VSOCK_CREDIT_LIMITED] = {"ember", "vsock_tx_credit_limited", false},
    [API_M_SIGNAL_SIGTERM] = {"ember", "signals_sigterm", false},
    [API_M_SIGNAL_SIGINT] = {"ember", "signals_sigint", false},
    [API_M_MMDS_rx_accepted] = {"mmds", "rx_accepted", false},
    [API_M_MMDS_rx_accepted_err] = {"mmds", "rx_accepted_err", false},
    [API_M_MMDS_rx_accepted_unusual] = {"mmds", "rx_accepted_unusual", false},
    [API_M_MMDS_rx_bad_eth] = {"mmds", "rx_bad_eth", false},
    [API_M_MMDS_rx_invalid_token] = {"mmds", "rx_invalid_token", false},
    [API_M_MMDS_rx_no_token] = {"mmds", "rx_no_token", false},
    [API_M_MMDS_rx_count] = {"mmds", "rx_count", false},
    [API_M_MMDS_tx_bytes] = {"mmds", "tx_bytes", false},
    [API_M_MMDS_tx_count] = {"mmds", "tx_count", false},
    [API_M_MMDS_tx_errors] = {"mmds", "tx_errors", false},
    [API_M_MMDS_tx_frames] = {"mmds", "tx_frames", false},
    [API_M_MMDS_connections_created] = {"mmds", "connections_created", false},
    [API_M_MMDS_connections_destroyed] = {"mmds", "connections_destroyed", false},
};

/* Firecracker's groups and fields, in its order (logger/metrics.rs and the
 * device metrics; the list its fcmetrics.py validator requires). A field
 * ending in "_agg" is a latency aggregate, written {"min_us": 0, "max_us":
 * 0, "sum_us": 0}. "block" and "net" are written with the devices. */
static const char *const f_api_server[] = {"process_startup_time_us", "process_startup_time_cpu_us",
                                           NULL};
static const char *const f_balloon[] = {"activate_fails",
                                        "inflate_count",
                                        "stats_updates_count",
                                        "stats_update_fails",
                                        "deflate_count",
                                        "event_fails",
                                        "free_page_report_count",
                                        "free_page_report_freed",
                                        "free_page_report_fails",
                                        "free_page_hint_count",
                                        "free_page_hint_freed",
                                        "free_page_hint_fails",
                                        NULL};
static const char *const f_deprecated[] = {"deprecated_http_api_calls", NULL};
static const char *const f_i8042[] = {"error_count", "missed_read_count", "missed_write_count",
                                      "read_count",  "reset_count",       "write_count",
                                      NULL};
static const char *const f_uart[] = {
    "error_count", "flush_count", "missed_read_count",          "missed_write_count",
    "read_count",  "write_count", "rate_limiter_dropped_bytes", NULL};
static const char *const f_latencies[] = {"full_create_snapshot",
                                          "diff_create_snapshot",
                                          "load_snapshot",
                                          "pause_vm",
                                          "resume_vm",
                                          "vmm_full_create_snapshot",
                                          "vmm_diff_create_snapshot",
                                          "vmm_load_snapshot",
                                          "vmm_pause_vm",
                                          "vmm_resume_vm",
                                          NULL};
static const char *const f_logger[] = {"missed_metrics_count", "metrics_fails", "missed_log_count",
                                       "rate_limited_log_count", NULL};
static const char *const f_mmds[] = {"rx_accepted",
                                     "rx_accepted_err",
                                     "rx_accepted_unusual",
                                     "rx_bad_eth",
                                     "rx_invalid_token",
                                     "rx_no_token",
                                     "rx_count",
                                     "tx_bytes",
                                     "tx_count",
                                     "tx_errors",
                                     "tx_frames",
                                     "connections_created",
                                     "connections_destroyed",
                                     NULL};
static const char *const f_seccomp[] = {"num_faults", NULL};
static const char *const f_vcpu[] = {"exit_io_in",
                                     "exit_io_out",
                                     "exit_mmio_read",
                                     "exit_mmio_write",
                                     "failures",
                                     "kvmclock_ctrl_fails",
                                     "exit_io_in_agg",
                                     "exit_io_out_agg",
                                     "exit_mmio_read_agg",
                                     "exit_mmio_write_agg",
                                     NULL};
static const char *const f_vmm[] = {"panic_count", NULL};
static const char *const f_signals[] = {"sigbus",  "sigsegv", "sigxfsz", "sigxcpu",
                                        "sigpipe", "sighup",  "sigill",  NULL};
static const char *const f_vsock[] = {"activate_fails",
                                      "cfg_fails",
                                      "rx_queue_event_fails",
                                      "tx_queue_event_fails",
                                      "ev_queue_event_fails",
                                      "muxer_event_fails",
                                      "conn_event_fails",
                                      "rx_queue_event_count",
                                      "tx_queue_event_count",
                                      "rx_bytes_count",
                                      "tx_bytes_count",
                                      "rx_packets_count",
                                      "tx_packets_count",
                                      "conns_added",
                                      "conns_killed",
                                      "conns_removed",
                                      "killq_resync",
                                      "tx_flush_fails",
                                      "tx_write_fails",
                                      "rx_read_fails",
                                      NULL};
static const char *const f_entropy[] = {
    "activate_fails",           "entropy_event_fails",
    "entropy_event_count",      "entropy_bytes",
    "host_rng_fails",           "entropy_rate_limiter_throttled",
    "rate_limiter_event_count", NULL};
static const char *const f_pmem[] = {"activate_fails",
                                     "cfg_fails",
                                     "event_fails",
                                     "queue_event_count",
                                     "rate_limiter_throttled_events",
                                     "rate_limiter_event_count",
                                     NULL};
static const char *const f_interrupts[] = {"triggers", "config_updates", NULL};
static const char *const f_memory_hotplug[] = {"activate_fails",
                                               "queue_event_fails",
                                               "queue_event_count",
                                               "plug_count",
                                               "plug_bytes",
                                               "plug_fails",
                                               "plug_agg",
                                               "unplug_count",
                                               "unplug_bytes",
                                               "unplug_fails",
                                               "unplug_discard_fails",
                                               "unplug_agg",
                                               "state_count",
                                               "state_fails",
                                               "state_agg",
                                               "unplug_all_count",
                                               "unplug_all_fails",
                                               "unplug_all_agg",
                                               NULL};

enum group_kind { G_FIELDS, G_BLOCK, G_NET, G_GET, G_PUT, G_PATCH };

static const struct {
    const char *name;
    enum group_kind kind;
    const char *const *fields;
} fc_groups[] = {
    {"api_server", G_FIELDS, f_api_server},
    {"balloon", G_FIELDS, f_balloon},
    {"block", G_BLOCK, NULL},
    {"deprecated_api", G_FIELDS, f_deprecated},
    {"get_api_requests", G_GET, NULL},
    {"i8042", G_FIELDS, f_i8042},
    {"uart", G_FIELDS, f_uart},
    {"latencies_us", G_FIELDS, f_latencies},
    {"logger", G_FIELDS, f_logger},
    {"mmds", G_FIELDS, f_mmds},
    {"net", G_NET, NULL},
    {"patch_api_requests", G_PATCH, NULL},
    {"put_api_requests", G_PUT, NULL},
    {"seccomp", G_FIELDS, f_seccomp},
    {"vcpu", G_FIELDS, f_vcpu},
    {"vmm", G_FIELDS, f_vmm},
    {"signals", G_FIELDS, f_signals},
    {"vsock", G_FIELDS, f_vsock},
    {"entropy", G_FIELDS, f_entropy},
    {"pmem", G_FIELDS, f_pmem},
    {"interrupts", G_FIELDS, f_interrupts},
    {"memory_hotplug", G_FIELDS, f_memory_hotplug},
};

#define M_GET   (1u << API_GET)
#define M_PUT   (1u << API_PUT)
#define M_PATCH (1u << API_PATCH)

/* Request counters: the resource's name, and the methods for which
 * Firecracker has <name>_count (and, for PUT and PATCH, <name>_fails).
 * Every other (method, resource) pair, and GET failures, are counted in
 * the "ember" group as <get|put|patch>_<name>_count and _fails. */
static const struct {
    const char *name;
    unsigned fc_methods;
} resources[API_R_COUNT] = {
    [API_R_INSTANCE_INFO] = {"instance_info", M_GET},
    [API_R_VERSION] = {"vmm_version", M_GET},
    [API_R_VM_CONFIG] = {"vm_config", 0},
    [API_R_MACHINE_CFG] = {"machine_cfg", M_GET | M_PUT | M_PATCH},
    [API_R_BOOT_SOURCE] = {"boot_source", M_PUT},
    [API_R_DRIVE] = {"drive", M_PUT | M_PATCH},
    [API_R_NETWORK] = {"network", M_PUT | M_PATCH},
    [API_R_VSOCK] = {"vsock", M_PUT},
    [API_R_ACTIONS] = {"actions", M_PUT},
    [API_R_LOGGER] = {"logger", M_PUT},
    [API_R_METRICS] = {"metrics", M_PUT},
    [API_R_SERIAL] = {"serial", M_PUT},
    [API_R_VM] = {"vm", 0},
    [API_R_MMDS] = {"mmds", M_GET | M_PUT | M_PATCH},
    [API_R_CPU_CFG] = {"cpu_cfg", M_PUT},
    [API_R_PMEM] = {"pmem", M_PUT | M_PATCH},
    [API_R_HOTPLUG_MEMORY] = {"hotplug_memory", M_GET | M_PUT | M_PATCH},
    [API_R_BALLOON] = {"balloon", 0},
    [API_R_ENTROPY] = {"entropy", 0},
    [API_R_SNAPSHOT] = {"snapshot", 0},
    [API_R_UNSUPPORTED] = {"unsupported", 0},
    [API_R_INVALID] = {"invalid", 0},
};
/* Firecracker's order of the request counters in each group. */
static const enum api_resource get_order[] = {API_R_INSTANCE_INFO, API_R_MACHINE_CFG, API_R_MMDS,
                                              API_R_VERSION, API_R_HOTPLUG_MEMORY};
static const enum api_resource put_order[] = {
    API_R_ACTIONS, API_R_BOOT_SOURCE, API_R_DRIVE,         API_R_LOGGER, API_R_MACHINE_CFG,
    API_R_CPU_CFG, API_R_METRICS,     API_R_NETWORK,       API_R_MMDS,   API_R_VSOCK,
    API_R_PMEM,    API_R_SERIAL,      API_R_HOTPLUG_MEMORY};
static const enum api_resource patch_order[] = {
    API_R_DRIVE, API_R_NETWORK, API_R_MACHINE_CFG, API_R_MMDS, API_R_HOTPLUG_MEMORY, API_R_PMEM};
static const char *const method_names[3] = {"get", "put", "patch"};

/* Per-device counters: running totals and what the last line reported. */
static const char *const block_fields[] = {
#define API_BLOCK_NAME(name) #name,
    API_BLOCK_COUNTERS(API_BLOCK_NAME)
#undef API_BLOCK_NAME
};
static const char *const net_fields[] = {
#define NET_METRICS_NAME(name) #name,
    NET_METRICS_COUNTERS(NET_METRICS_NAME)
#undef NET_METRICS_NAME
};
#define N_BLOCK (sizeof(block_fields) / sizeof(block_fields[0]))
#define N_NET   (sizeof(net_fields) / sizeof(net_fields[0]))

struct blk_dev {
    char id[API_ID_MAX + 1];
    union {
        struct api_block_metrics m;
        uint64_t v[N_BLOCK];
    } now;
    uint64_t sent[N_BLOCK];
};
struct net_dev {
    char id[API_ID_MAX + 1];
    union {
        struct net_metrics m;
        uint64_t v[N_NET];
    } now;
    uint64_t sent[N_NET];
};
static struct blk_dev *blk_devs[API_METRICS_DEVICES];
static struct net_dev *net_devs[API_METRICS_DEVICES];

_Static_assert(sizeof(struct api_block_metrics) == N_BLOCK * sizeof(uint64_t),
               "api_block_metrics is its counters");
_Static_assert(sizeof(struct net_metrics) == N_NET * sizeof(uint64_t),
               "net_metrics is its counters");

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

static bool id_ok(const char *id)
{
    return id && id[0] && strlen(id) <= API_ID_MAX;
}

struct api_block_metrics *api_metrics_block(const char *drive_id)
{
    int free_slot = -1;

    if (!id_ok(drive_id))
        return NULL;
    for (int i = 0; i < API_METRICS_DEVICES; i++) {
        if (blk_devs[i] && strcmp(blk_devs[i]->id, drive_id) == 0)
            return &blk_devs[i]->now.m;
        if (!blk_devs[i] && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0 || !(blk_devs[free_slot] = calloc(1, sizeof(struct blk_dev))))
        return NULL;
    snprintf(blk_devs[free_slot]->id, sizeof(blk_devs[free_slot]->id), "%s", drive_id);
    return &blk_devs[free_slot]->now.m;
}

struct net_metrics *api_metrics_net(const char *iface_id)
{
    int free_slot = -1;

    if (!id_ok(iface_id))
        return NULL;
    for (int i = 0; i < API_METRICS_DEVICES; i++) {
        if (net_devs[i] && strcmp(net_devs[i]->id, iface_id) == 0)
            return &net_devs[i]->now.m;
        if (!net_devs[i] && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0 || !(net_devs[free_slot] = calloc(1, sizeof(struct net_dev))))
        return NULL;
    snprintf(net_devs[free_slot]->id, sizeof(net_devs[free_slot]->id), "%s", iface_id);
    return &net_devs[free_slot]->now.m;
}

static uint64_t take(_Atomic uint64_t *v, bool gauge)
{
    if (gauge)
        return atomic_load_explicit(v, memory_order_relaxed);
    return atomic_exchange_explicit(v, 0, memory_order_relaxed);
}

static json_t *zero_agg(void)
{
    return json_pack("{s:i, s:i, s:i}", "min_us", 0, "max_us", 0, "sum_us", 0);
}

static bool is_agg(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, "_agg") == 0;
}

static json_t *zero_group(const char *const *fields)
{
    json_t *g = json_object();
    for (int i = 0; fields[i]; i++)
        json_object_set_new(g, fields[i], is_agg(fields[i]) ? zero_agg() : json_integer(0));
    return g;
}

/* One device group from its running totals (deltas since the last line),
 * summed into agg. agg_at is where Firecracker puts its latency aggregate. */
static json_t *device_group(const char *const *names, size_t n, const uint64_t *now, uint64_t *sent,
                            uint64_t *sum, const char *agg_name, size_t agg_at,
                            const char *agg2_name, size_t agg2_at)
{
    json_t *g = json_object();
    for (size_t i = 0; i < n; i++) {
        uint64_t d = now[i] - sent[i];
        if (agg_name && i == agg_at)
            json_object_set_new(g, agg_name, zero_agg());
        if (agg2_name && i == agg2_at)
            json_object_set_new(g, agg2_name, zero_agg());
        sent[i] = now[i];
        sum[i] += d;
        json_object_set_new(g, names[i], json_integer((json_int_t)d));
    }
    if (agg_name && agg_at >= n)
        json_object_set_new(g, agg_name, zero_agg());
    if (agg2_name && agg2_at >= n)
        json_object_set_new(g, agg2_name, zero_agg());
    return g;
}

static void add_block_groups(json_t *root)
{
    uint64_t sum[N_BLOCK] = {0}, none[N_BLOCK] = {0};
    char key[API_ID_MAX + 16];

    for (int i = 0; i < API_METRICS_DEVICES; i++) {
        struct blk_dev *d = blk_devs[i];
        if (!d)
            continue;
        snprintf(key, sizeof(key), "block_%s", d->id);
        json_object_set_new(root, key,
                            device_group(block_fields, N_BLOCK, d->now.v, d->sent, sum, "read_agg",
                                         N_BLOCK, "write_agg", N_BLOCK + 1));
    }
    json_object_set_new(root, "block",
                        device_group(block_fields, N_BLOCK, sum, none, none, "read_agg", N_BLOCK,
                                     "write_agg", N_BLOCK + 1));
}

static void add_net_groups(json_t *root)
{
    uint64_t sum[N_NET] = {0}, none[N_NET] = {0};
    char key[API_ID_MAX + 16];
    size_t tap_agg_at = 15; /* after tap_write_fails, as in Firecracker */

    for (int i = 0; i < API_METRICS_DEVICES; i++) {
        struct net_dev *d = net_devs[i];
        if (!d)
            continue;
        snprintf(key, sizeof(key), "net_%s", d->id);
        json_object_set_new(root, key,
                            device_group(net_fields, N_NET, d->now.v, d->sent, sum, "tap_write_agg",
                                         tap_agg_at, NULL, 0));
    }
    json_object_set_new(
        root, "net",
        device_group(net_fields, N_NET, sum, none, none, "tap_write_agg", tap_agg_at, NULL, 0));
}

static void add_requests(json_t *root, int m, const enum api_resource *order, size_t n)
{
    json_t *g = json_object();
    char key[64];

    for (size_t i = 0; i < n; i++) {
        enum api_resource r = order[i];
        snprintf(key, sizeof(key), "%s_count", resources[r].name);
        json_object_set_new(g, key, json_integer((json_int_t)take(&req_count[m][r], false)));
        if (m != API_GET) {
            snprintf(key, sizeof(key), "%s_fails", resources[r].name);
            json_object_set_new(g, key, json_integer((json_int_t)take(&req_fails[m][r], false)));
        }
    }
    json_object_set_new(root,
                        m == API_GET   ? "get_api_requests"
                        : m == API_PUT ? "put_api_requests"
                                       : "patch_api_requests",
                        g);
}

/* ember's own group: its counters, then the request counters Firecracker
 * has no field for. */
static json_t *ember_group(void)
{
    json_t *g = json_object();
    char key[80];

    for (int i = 0; i < API_M_COUNT; i++)
        if (strcmp(defs[i].group, "ember") == 0)
            json_object_set_new(g, defs[i].name,
                                json_integer((json_int_t)take(&values[i], defs[i].gauge)));
    for (int m = 0; m < 3; m++)
        for (int r = 0; r < API_R_COUNT; r++) {
            bool fc = resources[r].fc_methods & (1u << m);
            if (!fc) {
                snprintf(key, sizeof(key), "%s_%s_count", method_names[m], resources[r].name);
                json_object_set_new(g, key,
                                    json_integer((json_int_t)take(&req_count[m][r], false)));
            }
            if (!fc || m == API_GET) {
                snprintf(key, sizeof(key), "%s_%s_fails", method_names[m], resources[r].name);
                json_object_set_new(g, key,
                                    json_integer((json_int_t)take(&req_fails[m][r], false)));
            }
        }
    return g;
}

/* Called with lock held (or before any thread exists). */
static char *take_line_locked(void)
{
    struct timespec ts;
    json_t *root = json_object();
    char *text;

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
    for (size_t i = 0; i < sizeof(fc_groups) / sizeof(fc_groups[0]); i++) {
        switch (fc_groups[i].kind) {
        case G_FIELDS:
            json_object_set_new(root, fc_groups[i].name, zero_group(fc_groups[i].fields));
            break;
        case G_BLOCK:
            add_block_groups(root);
            break;
        case G_NET:
            add_net_groups(root);
            break;
        case G_GET:
            add_requests(root, API_GET, get_order, sizeof(get_order) / sizeof(get_order[0]));
            break;
        case G_PUT:
            add_requests(root, API_PUT, put_order, sizeof(put_order) / sizeof(put_order[0]));
            break;
        case G_PATCH:
            add_requests(root, API_PATCH, patch_order,
                         sizeof(patch_order) / sizeof(patch_order[0]));
            break;
        }
    }
    /* ember's values for Firecracker's fields replace the zeros in place. */
    for (int i = 0; i < API_M_COUNT; i++)
        if (strcmp(defs[i].group, "ember") != 0)
            json_object_set_new(json_object_get(root, defs[i].group), defs[i].name,
                                json_integer((json_int_t)take(&values[i], defs[i].gauge)));
    json_object_set_new(root, "ember", ember_group());
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
        api_metrics_add(API_M_METRICS_FAILS, 1);
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
