/* api_main.c: `ember --api-sock PATH` and `ember --config-file FILE`: the
 * command line, the libuv loop, and the process's end (see api_main.h).
 *
 * The main thread runs the loop: the API socket, the 60 s metrics timer,
 * SIGTERM/SIGINT, and the async that the vCPU thread signals when the guest
 * ends. Then metrics are flushed a last time, pending responses are written
 * (so the client of InstanceStart gets its 204 even from a guest that ends at
 * once), the socket file is removed and the process exits with the guest's
 * status.
 */
#include "api-socket/api_main.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "api-socket/api_http.h"
#include "api-socket/api_log.h"
#include "api-socket/api_metrics.h"
#include "api-socket/api_request_log.h"
#include "api-socket/api_router.h"
#include "api-socket/api_server.h"
#include "api-socket/api_vmm.h"
#include "common/parse_num.h"
#include "monitor/exit_codes.h"
#include "monitor/vm_config.h"

#ifndef EMBER_VERSION
#define EMBER_VERSION "0.0.0"
#endif

#define DEFAULT_API_SOCK    "/run/ember.socket"
#define DEFAULT_INSTANCE_ID "anonymous-instance"
#define METRICS_PERIOD_MS   60000
#define MAX_PAYLOAD_LIMIT   (64u << 20)
#define EXIT_DRAIN_MS       1000

struct options {
    const char *api_sock;
    const char *id;
    const char *config_file;
    bool no_api;
    const char *log_path;
    const char *level;
    bool show_level;
    bool show_log_origin;
    const char *metrics_path;
    bool boot_timer;
    size_t max_payload;
    const char *metadata;   /* --metadata FILE */
    size_t mmds_size_limit; /* --mmds-size-limit; 0: the payload limit */
    bool no_seccomp;
    unsigned prebuild_mem_mib; /* --prebuild-mem: guest RAM of the VM built ahead (0: none) */
    bool has_start_time, has_start_cpu_time;
    uint64_t start_time_us, start_time_cpu_us, parent_cpu_time_us;
    const char *module;                  /* --module: the logger's module filter */
    const struct api_restored *restored; /* api_main_restored() */
};

struct runtime {
    uv_loop_t *loop;
    struct api_router router;
    struct api_vmm vmm;
    struct api_server *server;
    uv_timer_t metrics_timer;
    uv_timer_t exit_timer;
    uv_signal_t sigterm, sigint;
    bool exiting;
    int exit_status;
};

static struct runtime rt;

static const char usage[] =
    "usage: ember --api-sock PATH [options]\n"
    "       ember --config-file FILE [--no-api] [options]\n"
    "       ember run [options] GUEST [ARGS...]   (see `ember run --help`)\n"
    "\n"
    "Serves Firecracker's HTTP API on a Unix socket, or boots the microVM\n"
    "described by a Firecracker config file.\n"
    "\n"
    "  --api-sock PATH                 API socket (default " DEFAULT_API_SOCK ")\n"
    "  --id ID                         instance id in logs and GET / (default\n"
    "                                  " DEFAULT_INSTANCE_ID ")\n"
    "  --config-file FILE              build and start the microVM from FILE\n"
    "  --no-api                        with --config-file: serve no API socket\n"
    "  --log-path PATH                 log to this file or named pipe\n"
    "  --level LEVEL                   Error, Warning, Info (default), Debug, Trace, Off\n"
    "  --show-level                    write the level on each log line\n"
    "  --show-log-origin               write file:line on each log line\n"
    "  --metrics-path PATH             write metrics to this file or named pipe\n"
    "  --boot-timer                    log the guest's boot time\n"
    "  --http-api-max-payload-size N   largest request body (default 51200)\n"
    "  --metadata FILE                 the MMDS data store's first contents (JSON)\n"
    "  --mmds-size-limit N             largest MMDS data store (default: the payload size)\n"
    "  --no-seccomp                    run without system-call filters (debugging)\n"
    "  --prebuild-mem MIB              build the KVM VM for a guest of MIB MiB while\n"
    "                                  waiting for the first request (default 128,\n"
    "                                  Firecracker's default size; 0: do not)\n"
    "  --start-time-us US              CLOCK_MONOTONIC time the launcher started ember\n"
    "  --start-time-cpu-us US          the process's CPU time when the launcher exec'd ember\n"
    "  --parent-cpu-time-us US         CPU time the launcher's parent spent\n"
    "  --module MODULE                 log only lines from files under MODULE\n"
    "  --version                       print the version and exit\n";

static uint64_t mono_us(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int arg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int arg_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "ember: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage);
    return EMBER_EXIT_ARG_PARSING;
}

/* Firecracker's rule for the instance id: 1-64 of [A-Za-z0-9-]. */
static bool instance_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return true;
}

/* Arguments parsing errors, in Firecracker's words (its utils/arg_parser.rs),
 * then ember's detail. */
#define ARG_ERR    "Arguments parsing error: "
#define UNEXPECTED "Found argument '%s' which wasn't expected, or isn't valid in this context."

/* Flags Firecracker removed: refused as it refuses them, with a hint. */
static const char *const removed[][2] = {
    {"seccomp-level", "removed in Firecracker v1.0: filters are on unless --no-seccomp"},
    {"vmm-no-api", "removed in Firecracker v0.20: use --no-api with --config-file"},
    {"node", "a jailer flag Firecracker removed"},
    {"extra-args", "a jailer flag Firecracker removed"},
};

/* Returns -1 to go on, or an exit status (0 for --help/--version). */
static int parse_args(int argc, char **argv, struct options *o)
{
    static const char *const with_value[] = {
        "api-sock",
        "id",
        "config-file",
        "log-path",
        "level",
        "module",
        "metrics-path",
        "http-api-max-payload-size",
        "mmds-size-limit",
        "start-time-us",
        "start-time-cpu-us",
        "parent-cpu-time-us",
        "metadata",
        "seccomp-filter",
        "prebuild-mem",
        NULL,
    };
    static const char *const flags[] = {
        "help",       "h",          "version",    "no-api", "show-level", "show-log-origin",
        "boot-timer", "no-seccomp", "enable-pci", NULL,
    };
    char seen[64][40];
    int nseen = 0;

    o->max_payload = API_HTTP_DEFAULT_MAX_BODY;
    o->prebuild_mem_mib = 128; /* Firecracker's default mem_size_mib */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        char name[40];
        const char *eq;
        bool takes = false, known = false;

        if (strncmp(a, "--", 2) != 0)
            return arg_error(ARG_ERR UNEXPECTED, a);
        a += 2;
        eq = strchr(a, '=');
        snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
        for (int k = 0; with_value[k]; k++)
            if (strcmp(name, with_value[k]) == 0)
                takes = known = true;
        for (int k = 0; flags[k]; k++)
            if (strcmp(name, flags[k]) == 0)
                known = true;
        if (!known) {
            for (size_t k = 0; k < sizeof(removed) / sizeof(removed[0]); k++)
                if (strcmp(name, removed[k][0]) == 0)
                    return arg_error(ARG_ERR UNEXPECTED " (--%s: %s)", name, name, removed[k][1]);
            return arg_error(ARG_ERR UNEXPECTED, name);
        }
        for (int k = 0; k < nseen; k++)
            if (strcmp(seen[k], name) == 0)
                return arg_error(ARG_ERR "The argument '%s' was provided more than once.", name);
        if (nseen < 64)
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", name);
        if (takes) {
            /* As Firecracker: the next word is the value unless it is a flag. */
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                val = argv[++i];
            else
                return arg_error(ARG_ERR "The argument '%s' requires a value, but none was "
                                         "supplied.",
                                 name);
        } else if (eq) {
            return arg_error("--%s takes no value", name);
        }

        if (strcmp(name, "help") == 0 || strcmp(name, "h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(name, "version") == 0) {
            printf("ember v%s\n", EMBER_VERSION);
            return 0;
        } else if (strcmp(name, "api-sock") == 0) {
            o->api_sock = val;
        } else if (strcmp(name, "id") == 0) {
            if (!instance_id_valid(val))
                return arg_error("invalid --id '%s': 1 to 64 characters of A-Z, a-z, 0-9 and -",
                                 val);
            o->id = val;
        } else if (strcmp(name, "config-file") == 0) {
            o->config_file = val;
        } else if (strcmp(name, "no-api") == 0) {
            o->no_api = true;
        } else if (strcmp(name, "log-path") == 0) {
            o->log_path = val;
        } else if (strcmp(name, "level") == 0) {
            enum api_log_level l;
            if (api_log_level_parse(val, &l) < 0)
                return arg_error("invalid --level '%s': Error, Warning, Info, Debug, Trace or "
                                 "Off",
                                 val);
            o->level = val;
        } else if (strcmp(name, "module") == 0) {
            o->module = val;
        } else if (strcmp(name, "show-level") == 0) {
            o->show_level = true;
        } else if (strcmp(name, "show-log-origin") == 0) {
            o->show_log_origin = true;
        } else if (strcmp(name, "metrics-path") == 0) {
            o->metrics_path = val;
        } else if (strcmp(name, "boot-timer") == 0) {
            o->boot_timer = true;
        } else if (strcmp(name, "http-api-max-payload-size") == 0) {
            uint64_t v;
            if (parse_u64(val, UINT64_MAX, &v) < 0 || v == 0 || v > MAX_PAYLOAD_LIMIT)
                return arg_error("invalid --http-api-max-payload-size '%s': a number of bytes "
                                 "from 1 to 67108864",
                                 val);
            o->max_payload = (size_t)v;
        } else if (strcmp(name, "metadata") == 0) {
            o->metadata = val;
        } else if (strcmp(name, "mmds-size-limit") == 0) {
            uint64_t v;
            if (parse_u64(val, UINT64_MAX, &v) < 0 || v == 0 || v > MAX_PAYLOAD_LIMIT)
                return arg_error("invalid --mmds-size-limit '%s': a number of bytes from 1 to "
                                 "67108864",
                                 val);
            o->mmds_size_limit = (size_t)v;
        } else if (strcmp(name, "prebuild-mem") == 0) {
            uint64_t v;
            if (parse_u64(val, UINT64_MAX, &v) < 0 ||
                (v && (v < VM_MEM_MIB_MIN || v > VM_MEM_MIB_MAX)))
                return arg_error("invalid --prebuild-mem '%s': 0, or a MiB count from %u to %u",
                                 val, VM_MEM_MIB_MIN, VM_MEM_MIB_MAX);
            o->prebuild_mem_mib = (unsigned)v;
        } else if (strcmp(name, "no-seccomp") == 0) {
            o->no_seccomp = true;
        } else if (strcmp(name, "seccomp-filter") == 0) {
            return arg_error("--seccomp-filter: ember builds its own system-call filters and "
                             "reads no filter file (--no-seccomp turns them off)");
        } else if (strcmp(name, "enable-pci") == 0) {
            return arg_error("--enable-pci: ember does not offer PCI: its devices are "
                             "virtio-mmio");
        } else if (strcmp(name, "start-time-us") == 0) {
            if (parse_u64(val, UINT64_MAX, &o->start_time_us) < 0)
                return arg_error("invalid --start-time-us '%s'", val);
            o->has_start_time = true;
        } else if (strcmp(name, "start-time-cpu-us") == 0) {
            if (parse_u64(val, UINT64_MAX, &o->start_time_cpu_us) < 0)
                return arg_error("invalid --start-time-cpu-us '%s'", val);
            o->has_start_cpu_time = true;
        } else if (strcmp(name, "parent-cpu-time-us") == 0) {
            if (parse_u64(val, UINT64_MAX, &o->parent_cpu_time_us) < 0)
                return arg_error("invalid --parent-cpu-time-us '%s'", val);
        }
    }
    if (o->no_api && !o->config_file)
        return arg_error(ARG_ERR "Argument 'config-file' required, but not found. (--no-api "
                                 "needs --config-file)");
    if (o->no_api && o->api_sock)
        return arg_error("%s", "--no-api and --api-sock exclude each other");
    if (!o->id)
        o->id = DEFAULT_INSTANCE_ID;
    if (!o->api_sock)
        o->api_sock = DEFAULT_API_SOCK;
    return -1;
}

/* ---- the end of the process ---- */

/* Firecracker's last log line (its main.rs), with ember's name. */
static void log_exit(int status)
{
    if (status == 0)
        API_INFO("ember exiting successfully. exit_code=0");
    else
        API_ERROR("ember exiting with error. exit_code=%d", status);
}

static void finish(void *arg)
{
    struct api_err e;
    (void)arg;

    if (api_metrics_configured() && api_metrics_flush(&e) < 0)
        API_WARN("last metrics flush: %s", e.msg);
    if (rt.server)
        api_server_stop(rt.server);
    log_exit(rt.exit_status);
    fflush(stdout);
    fflush(stderr);
    exit(rt.exit_status);
}

static void on_exit_timer(uv_timer_t *t)
{
    (void)t;
    API_WARN("exiting with responses still unwritten");
    finish(NULL);
}

static void begin_exit(int status)
{
    if (rt.exiting)
        return;
    rt.exiting = true;
    rt.exit_status = status;
    uv_timer_stop(&rt.metrics_timer);
    if (!rt.server) {
        finish(NULL);
        return;
    }
    uv_timer_start(&rt.exit_timer, on_exit_timer, EXIT_DRAIN_MS, 0);
    api_server_on_drained(rt.server, finish, NULL);
}

static void on_guest_exit(struct api_vmm *v, int status)
{
    (void)v;
    API_INFO("guest exited with status %d", status);
    begin_exit(status);
}

static void on_signal(uv_signal_t *h, int signo)
{
    (void)h;
    api_metrics_add(signo == SIGTERM ? API_M_SIGNAL_SIGTERM : API_M_SIGNAL_SIGINT, 1);
    API_INFO("received %s, exiting", signo == SIGTERM ? "SIGTERM" : "SIGINT");
    begin_exit(128 + signo);
}

static void on_sigpipe(int signo)
{
    (void)signo;
    /* A client went away mid-write: the write fails with EPIPE instead. */
    api_metrics_add(API_M_SIGNAL_SIGPIPE, 1);
}

static void on_metrics_timer(uv_timer_t *t)
{
    struct api_err e;
    (void)t;
    if (api_metrics_configured() && api_metrics_flush(&e) < 0)
        API_WARN("periodic metrics flush: %s", e.msg);
}

static void on_request(void *ctx, const struct api_request *req, struct api_response *resp)
{
    (void)ctx;
    api_log_request(req);
    api_router_handle(&rt.router, req, resp);
    if (resp->deprecation)
        API_WARN("%s", resp->deprecation);
    api_log_response(resp);
}

/* ---- start-up ---- */

static int configure_outputs(const struct options *o)
{
    struct api_err e;

    if (o->log_path || o->level || o->show_level || o->show_log_origin || o->module) {
        struct api_logger_cfg *c = &rt.router.res.logger;
        c->set = true;
        c->level = API_LOG_INFO;
        if (o->level)
            api_log_level_parse(o->level, &c->level);
        c->show_level = o->show_level;
        c->show_log_origin = o->show_log_origin;
        c->log_path = o->log_path ? strdup(o->log_path) : NULL;
        c->module = o->module ? strdup(o->module) : NULL;
        if (api_log_configure(c, &e) < 0) {
            fprintf(stderr, "ember: %s\n", e.msg);
            return EMBER_EXIT_GENERIC;
        }
    }
    if (o->metrics_path) {
        struct api_metrics_cfg *c = &rt.router.res.metrics;
        c->set = true;
        c->metrics_path = strdup(o->metrics_path);
        if (!c->metrics_path || api_metrics_configure(c, o->id, &e) < 0) {
            fprintf(stderr, "ember: %s\n", c->metrics_path ? e.msg : "out of memory");
            return EMBER_EXIT_GENERIC;
        }
    }
    return 0;
}

/* --metadata FILE: the metadata service's contents before the first request,
 * with Firecracker's messages (its tests look for them in the log). */
static int load_metadata(const struct options *o)
{
    json_error_t jerr;
    struct api_err e;
    json_t *data;
    FILE *f;
    int rc;

    if (!o->metadata)
        return 0;
    f = fopen(o->metadata, "re");
    if (!f) {
        int err = errno;
        API_ERROR("Unable to open or read from the mmds content file: %s: %s (os error %d)",
                  o->metadata, strerror(err), err);
        fprintf(stderr, "ember: Unable to open or read from the mmds content file: %s: %s\n",
                o->metadata, strerror(err));
        return EMBER_EXIT_BAD_CONFIG;
    }
    data = json_loadf(f, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    if (!data) {
        API_ERROR("MMDS error: metadata provided not valid json: %s (line %d, column %d)",
                  jerr.text, jerr.line, jerr.column);
        fprintf(stderr, "ember: --metadata %s: MMDS error: metadata provided not valid json: %s\n",
                o->metadata, jerr.text);
        return EMBER_EXIT_BAD_CONFIG;
    }
    rc = api_mmds_put(&rt.router.res.mmds, data, &e);
    json_decref(data);
    if (rc < 0) {
        API_ERROR("Populating MMDS from file failed: %s", e.msg);
        fprintf(stderr, "ember: --metadata %s: Populating MMDS from file failed: %s\n", o->metadata,
                e.msg);
        return EMBER_EXIT_BAD_CONFIG;
    }
    API_INFO("Successfully added metadata to mmds from file");
    return 0;
}

static int start_from_config_file(const char *path)
{
    json_error_t jerr;
    struct api_err e;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);

    if (!root) {
        fprintf(stderr, "ember: config file %s: %s (line %d, column %d)\n", path, jerr.text,
                jerr.line, jerr.column);
        return EMBER_EXIT_BAD_CONFIG;
    }
    if (api_router_apply_config(&rt.router, root, &e) < 0) {
        json_decref(root);
        /* Firecracker's words, which its tooling greps the log for. */
        API_ERROR("Configuration for VMM from one single json failed: %s", e.msg);
        fprintf(stderr, "ember: config file %s: %s\n", path, e.msg);
        return EMBER_EXIT_BAD_CONFIG;
    }
    json_decref(root);
    if (api_vmm_ops.start(&rt.vmm, &rt.router.res, &e) < 0) {
        API_ERROR("Could not Start MicroVM from one single json: %s", e.msg);
        fprintf(stderr, "ember: %s\n", e.msg);
        return rt.vmm.create_status ? rt.vmm.create_status : EMBER_EXIT_BAD_CONFIG;
    }
    rt.router.state = API_VM_RUNNING;
    API_INFO("Successfully started microvm that was configured from one single json");
    return 0;
}

/* The restore server's load (api_main_restored): PUT /snapshot/load with
 * resume_vm, as if a client had sent it. */
static int load_restored(const struct api_restored *r)
{
    struct api_snapshot_load sl = {
        .snapshot_path = r->state_path,
        .mem_file_path = r->mem_path,
        .resume_vm = true,
        .vsock_uds_path = r->vsock_uds_path,
    };
    struct api_err e;

    rt.vmm.prepared = r->prepared;
    if (api_vmm_ops.snapshot_load(&rt.vmm, &sl, &rt.router.res, &e) < 0) {
        API_ERROR("Load snapshot from the restore server: %s", e.msg);
        snprintf(r->err, r->errlen, "%s", e.msg);
        return rt.vmm.create_status ? rt.vmm.create_status : EMBER_EXIT_BAD_CONFIG;
    }
    rt.router.state = API_VM_RUNNING;
    if (r->started)
        r->started(r->arg);
    return 0;
}

static int run(const struct options *opts, uint64_t t_entry)
{
    struct options o = *opts;
    struct sigaction sa;
    struct api_err e;
    int rc;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigpipe;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGPIPE, &sa, NULL);

    api_log_init(o.id);
    api_log_set_thread_name("main");
    api_http_global_init();
    rt.loop = uv_default_loop();
    api_router_init(&rt.router, o.id, &api_vmm_ops, &rt.vmm);
    if (api_vmm_init(&rt.vmm, rt.loop, o.id, o.boot_timer, o.no_seccomp, on_guest_exit) < 0) {
        fprintf(stderr, "ember: cannot set up the event loop\n");
        return EMBER_EXIT_GENERIC;
    }
    uv_timer_init(rt.loop, &rt.metrics_timer);
    uv_timer_init(rt.loop, &rt.exit_timer);
    uv_signal_init(rt.loop, &rt.sigterm);
    uv_signal_init(rt.loop, &rt.sigint);
    uv_signal_start(&rt.sigterm, on_signal, SIGTERM);
    uv_signal_start(&rt.sigint, on_signal, SIGINT);

    rc = configure_outputs(&o);
    if (rc)
        return rc;
    API_INFO("Running ember v%s", EMBER_VERSION);
    /* Firecracker's default limit for the data store is the API's. */
    api_mmds_set_limit(&rt.router.res.mmds, o.mmds_size_limit ? o.mmds_size_limit : o.max_payload);
    rc = load_metadata(&o);
    if (rc)
        return rc;
    if (o.no_seccomp)
        API_WARN("--no-seccomp: the microVM will run without system-call filters");
    uv_timer_start(&rt.metrics_timer, on_metrics_timer, METRICS_PERIOD_MS, METRICS_PERIOD_MS);

    /* The socket first, as Firecracker does: the config file's VM starts
     * with the main loop's seccomp filter, which allows no bind(). */
    if (!o.no_api) {
        if (api_server_start(rt.loop, o.api_sock, o.max_payload, on_request, NULL, &rt.server, &e) <
            0) {
            fprintf(stderr, "ember: %s\n", e.msg);
            API_ERROR("%s", e.msg);
            return EMBER_EXIT_GENERIC;
        }
        api_metrics_store(API_M_PROCESS_STARTUP_TIME_US,
                          mono_us(CLOCK_MONOTONIC) -
                              (o.has_start_time ? o.start_time_us : t_entry));
        /* Firecracker's arithmetic: the launcher passes the process's CPU
         * clock at exec (which goes on across exec) and its parent's time. */
        uint64_t cpu = mono_us(CLOCK_PROCESS_CPUTIME_ID);
        if (o.has_start_cpu_time)
            cpu = cpu > o.start_time_cpu_us ? cpu - o.start_time_cpu_us : 0;
        api_metrics_store(API_M_PROCESS_STARTUP_TIME_CPU_US, cpu + o.parent_cpu_time_us);
        API_INFO("Listening on API socket (\"%s\").", o.api_sock);
        /* The KVM VM while the first request is on its way (a config file
         * starts its VM at once: nothing to overlap). */
        if (!o.config_file && !o.restored)
            api_vmm_prebuild(&rt.vmm, o.prebuild_mem_mib);
    }
    if (o.restored) {
        rc = load_restored(o.restored);
        if (rc) {
            if (rt.server)
                api_server_stop(rt.server);
            return rc;
        }
    }
    if (o.config_file) {
        rc = start_from_config_file(o.config_file);
        if (rc) {
            if (rt.server)
                api_server_stop(rt.server);
            return rc;
        }
    }
    uv_run(rt.loop, UV_RUN_DEFAULT);
    /* Only begin_exit() ends the process; the loop cannot run dry. */
    return EMBER_EXIT_UNEXPECTED;
}

int api_main_restored(const struct api_restored *r)
{
    struct options o;

    memset(&o, 0, sizeof(o));
    o.api_sock = r->api_sock;
    o.id = r->id ? r->id : DEFAULT_INSTANCE_ID;
    o.max_payload = API_HTTP_DEFAULT_MAX_BODY;
    o.no_seccomp = r->no_seccomp;
    o.restored = r;
    return run(&o, mono_us(CLOCK_MONOTONIC));
}

int api_main(int argc, char **argv)
{
    uint64_t t_entry = mono_us(CLOCK_MONOTONIC);
    struct options o;
    int rc;

    memset(&o, 0, sizeof(o));
    rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    rc = run(&o, t_entry);
    log_exit(rc);
    return rc;
}
