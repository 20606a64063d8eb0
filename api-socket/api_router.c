/* api_router.c: routing and the pre-boot/post-boot rules (see api_router.h).
 *
 * The route table lists every path of firecracker-api.yaml. Paths ember does
 * not offer carry the name of the missing feature and answer 400 with it.
 */
#include "api-socket/api_router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api-socket/api_log.h"

#ifndef EMBER_VERSION
#define EMBER_VERSION "0.0.0"
#endif

#define M_GET   (1u << API_GET)
#define M_PUT   (1u << API_PUT)
#define M_PATCH (1u << API_PATCH)

enum rule { ANY, PRE_BOOT, POST_BOOT };

struct ctx {
    struct api_router *r;
    const struct api_request *req;
    const char *id; /* the {id} of the path, or NULL */
    json_t *body;   /* parsed body of PUT/PATCH */
    struct api_response *resp;
    struct api_err e;
};

/* Returns 0 (204 unless it set a 200 body) or -1 with c->e set. */
typedef int (*handler_fn)(struct ctx *c);

struct route {
    const char *path; /* exact, or a prefix ending in '/' when has_id */
    bool has_id;
    unsigned methods;        /* M_* the specification defines */
    const char *unsupported; /* feature ember does not offer, or NULL */
    enum api_resource res;
    handler_fn get, put, patch;
    enum rule put_rule, patch_rule;
};

/* ---- responses ---- */

/* Replaces bytes that are not valid UTF-8 (a truncated message, a path from
 * the wire) with '?', so that the fault message can always be encoded. */
static void utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = *p < 0x80             ? 0
                : (*p & 0xe0) == 0xc0 ? 1
                : (*p & 0xf0) == 0xe0 ? 2
                : (*p & 0xf8) == 0xf0 ? 3
                                      : -1;
        int i;
        if (n < 0 || (n == 1 && *p < 0xc2) || (n == 3 && *p > 0xf4)) {
            *p++ = '?';
            continue;
        }
        for (i = 1; i <= n; i++)
            if ((p[i] & 0xc0) != 0x80)
                break;
        if (i <= n) {
            *p++ = '?';
            continue;
        }
        /* Overlong 3-byte forms, UTF-16 surrogates, > U+10FFFF. */
        if ((n == 2 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0))) ||
            (n == 3 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)))) {
            *p++ = '?';
            continue;
        }
        p += n + 1;
    }
}

static void set_json(struct api_response *resp, int status, json_t *v)
{
    resp->status = status;
    resp->body = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    resp->body_len = resp->body ? strlen(resp->body) : 0;
    json_decref(v);
    if (!resp->body && status == 200)
        api_response_fault(resp, "out of memory");
}

void api_response_fault(struct api_response *resp, const char *msg)
{
    char buf[API_ERR_MAX];

    snprintf(buf, sizeof(buf), "%s", msg);
    utf8_sanitize(buf);
    free(resp->body);
    resp->status = 400;
    json_t *v = json_pack("{s:s}", "fault_message", buf);
    resp->body = v ? json_dumps(v, JSON_COMPACT) : NULL;
    resp->body_len = resp->body ? strlen(resp->body) : 0;
    json_decref(v);
}

const char *api_vm_state_name(enum api_vm_state s)
{
    switch (s) {
    case API_VM_RUNNING:
        return "Running";
    case API_VM_PAUSED:
        return "Paused";
    case API_VM_NOT_STARTED:
        break;
    }
    return "Not started";
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- handlers ---- */

static int get_instance_info(struct ctx *c)
{
    set_json(c->resp, 200,
             json_pack("{s:s, s:s, s:s, s:s}", "app_name", "ember", "id", c->r->instance_id,
                       "state", api_vm_state_name(c->r->state), "vmm_version", EMBER_VERSION));
    return 0;
}

static int get_version(struct ctx *c)
{
    set_json(c->resp, 200, json_pack("{s:s}", "firecracker_version", EMBER_VERSION));
    return 0;
}

static int get_vm_config(struct ctx *c)
{
    set_json(c->resp, 200, api_vm_config_json(&c->r->res));
    return 0;
}

static int get_machine_config(struct ctx *c)
{
    set_json(c->resp, 200, api_machine_config_json(&c->r->res));
    return 0;
}

/* Firecracker marks requests that use a deprecated field (its
 * request/machine_configuration.rs and vsock.rs), whatever their outcome. */
static void deprecated_field(struct ctx *c, const char *field, const char *msg)
{
    json_t *v = json_object_get(c->body, field);
    if (v && !json_is_null(v)) {
        c->resp->deprecation = msg;
        api_metrics_add(API_M_DEPRECATED_API_CALLS, 1);
    }
}

static int put_machine_config(struct ctx *c)
{
    deprecated_field(c, "cpu_template", "PUT /machine-config: cpu_template field is deprecated.");
    return api_put_machine_config(&c->r->res, c->body, &c->e);
}

static int patch_machine_config(struct ctx *c)
{
    deprecated_field(c, "cpu_template", "PATCH /machine-config: cpu_template field is deprecated.");
    return api_patch_machine_config(&c->r->res, c->body, &c->e);
}

static int put_boot_source(struct ctx *c)
{
    return api_put_boot_source(&c->r->res, c->body, &c->e);
}

static int put_drive(struct ctx *c)
{
    return api_put_drive(&c->r->res, c->id, c->body, &c->e);
}

static int patch_drive(struct ctx *c)
{
    struct api_drive_update u;

    if (api_decode_drive_update(&c->r->res, c->id, c->body, &u, &c->e) < 0 ||
        c->r->ops->update_drive(c->r->ctx, &u, &c->e) < 0)
        return -1;
    return api_apply_drive_update(&c->r->res, &u, &c->e);
}

static int put_net(struct ctx *c)
{
    return api_put_net(&c->r->res, c->id, c->body, &c->e);
}

static int patch_net(struct ctx *c)
{
    struct api_net_update u;

    if (api_decode_net_update(&c->r->res, c->id, c->body, &u, &c->e) < 0 ||
        (c->r->ops->update_net && c->r->ops->update_net(c->r->ctx, &u, &c->e) < 0))
        return -1;
    return api_apply_net_update(&c->r->res, &u, &c->e);
}

static int get_mmds(struct ctx *c)
{
    json_t *v = api_mmds_get(&c->r->res.mmds);

    if (!v)
        return api_errf(&c->e, "out of memory");
    set_json(c->resp, 200, v);
    return 0;
}

static int put_mmds(struct ctx *c)
{
    return api_mmds_put(&c->r->res.mmds, c->body, &c->e);
}

static int patch_mmds(struct ctx *c)
{
    return api_mmds_patch(&c->r->res.mmds, c->body, &c->e);
}

static int put_mmds_config(struct ctx *c)
{
    return api_mmds_put_config(&c->r->res.mmds, &c->r->res, c->body, &c->e);
}

static int put_vsock(struct ctx *c)
{
    deprecated_field(c, "vsock_id", "PUT /vsock: vsock_id field is deprecated.");
    return api_put_vsock(&c->r->res, c->body, &c->e);
}

static int put_serial(struct ctx *c)
{
    return api_put_serial(&c->r->res, c->body, &c->e);
}

static int apply_logger(struct api_router *r, const json_t *body, struct api_err *e)
{
    struct api_logger_cfg cfg;

    if (api_decode_logger(body, &cfg, e) < 0)
        return -1;
    if (r->ops->configure_logger(r->ctx, &cfg, e) < 0) {
        api_logger_cfg_release(&cfg);
        return -1;
    }
    api_logger_cfg_release(&r->res.logger);
    r->res.logger = cfg;
    return 0;
}

static int apply_metrics(struct api_router *r, const json_t *body, struct api_err *e)
{
    struct api_metrics_cfg cfg;

    if (api_decode_metrics(body, &cfg, e) < 0)
        return -1;
    if (r->res.metrics.set || r->ops->configure_metrics(r->ctx, &cfg, e) < 0) {
        char why[API_ERR_MAX];
        snprintf(why, sizeof(why), "%s",
                 r->res.metrics.set ? "Reinitialization of metrics not allowed." : e->msg);
        /* Firecracker's words (vmm_config/metrics.rs), then the reason. */
        api_errf(e, "Metrics error: Cannot initialize the metrics system due to bad user input: %s",
                 why);
        api_metrics_cfg_release(&cfg);
        return -1;
    }
    r->res.metrics = cfg;
    return 0;
}

static int put_logger(struct ctx *c)
{
    return apply_logger(c->r, c->body, &c->e);
}

static int put_metrics(struct ctx *c)
{
    return apply_metrics(c->r, c->body, &c->e);
}

static int patch_vm(struct ctx *c)
{
    static const char *const fields[] = {"state", NULL};
    static const char *const states[] = {"Paused", "Resumed", NULL};
    int idx;

    if (api_json_only_fields(c->body, "", fields, &c->e) < 0 ||
        api_json_enum(c->body, "", "state", true, states, &idx, &c->e) < 0)
        return -1;
    if (c->r->state == API_VM_NOT_STARTED)
        return api_errf(&c->e, API_MSG_BEFORE_BOOT);
    uint64_t t0 = now_us(), us;
    if (idx == 0 && c->r->state == API_VM_RUNNING) {
        if (c->r->ops->pause(c->r->ctx, &c->e) < 0)
            return -1;
        c->r->state = API_VM_PAUSED;
        us = now_us() - t0;
        api_metrics_add(API_M_PAUSES, 1);
        api_metrics_store(API_M_LATENCY_PAUSE_VM, us);
        api_metrics_store(API_M_LATENCY_VMM_PAUSE_VM, us);
        /* Firecracker's words (api_server/mod.rs). */
        API_INFO("'pause vm' API request took %llu us.", (unsigned long long)us);
    } else if (idx == 1 && c->r->state == API_VM_PAUSED) {
        if (c->r->ops->resume(c->r->ctx, &c->e) < 0)
            return -1;
        c->r->state = API_VM_RUNNING;
        us = now_us() - t0;
        api_metrics_add(API_M_RESUMES, 1);
        api_metrics_store(API_M_LATENCY_RESUME_VM, us);
        api_metrics_store(API_M_LATENCY_VMM_RESUME_VM, us);
        API_INFO("'resume vm' API request took %llu us.", (unsigned long long)us);
    }
    return 0;
}

static int put_snapshot_create(struct ctx *c)
{
    static const char *const fields[] = {"snapshot_path", "mem_file_path", "snapshot_type", NULL};
    static const char *const types[] = {"Full", "Diff", NULL};
    struct api_snapshot_create sc = {0};
    int type = 0;

    if (api_json_only_fields(c->body, "", fields, &c->e) < 0 ||
        api_json_string(c->body, "", "snapshot_path", true, &sc.snapshot_path, &c->e) < 0 ||
        api_json_string(c->body, "", "mem_file_path", true, &sc.mem_file_path, &c->e) < 0 ||
        api_json_enum(c->body, "", "snapshot_type", false, types, &type, &c->e) < 0)
        return -1;
    if (!c->r->ops->snapshot_create)
        return api_errf(&c->e, "ember does not offer snapshots");
    if (c->r->state == API_VM_NOT_STARTED)
        return api_errf(&c->e, API_MSG_BEFORE_BOOT);
    /* Firecracker snapshots a paused microVM only. */
    if (c->r->state != API_VM_PAUSED)
        return api_errf(&c->e, "Create snapshot error: the microVM must be paused first "
                               "(PATCH /vm {\"state\": \"Paused\"})");
    sc.diff = type == 1;
    uint64_t t0 = now_us();
    if (c->r->ops->snapshot_create(c->r->ctx, &sc, &c->e) < 0)
        return -1;
    API_INFO("'create snapshot' API request took %llu us.", (unsigned long long)(now_us() - t0));
    return 0;
}

static int put_snapshot_load(struct ctx *c)
{
    static const char *const fields[] = {"snapshot_path",
                                         "mem_file_path",
                                         "mem_backend",
                                         "enable_diff_snapshots",
                                         "track_dirty_pages",
                                         "resume_vm",
                                         "network_overrides",
                                         "vsock_override",
                                         "clock_realtime",
                                         "huge_pages",
                                         NULL};
    static const char *const backend_fields[] = {"backend_type", "backend_path", NULL};
    static const char *const backends[] = {"File", "Uffd", NULL};
    static const char *const ov_fields[] = {"iface_id", "host_dev_name", NULL};
    static const char *const vs_fields[] = {"uds_path", NULL};
    /* Firecracker's: Snapshot (the default) takes the snapshot's own, which
     * for ember is always None. */
    static const char *const huge_pages[] = {"Snapshot", "None", "Transparent", "2M", NULL};
    struct api_snapshot_load sl = {0};
    struct api_resources *res = &c->r->res;
    json_t *backend = NULL, *vs = NULL;
    bool diff = false;
    int r, kind = 0, huge = 0;

    if (api_json_only_fields(c->body, "", fields, &c->e) < 0 ||
        api_json_string(c->body, "", "snapshot_path", true, &sl.snapshot_path, &c->e) < 0 ||
        (r = api_json_string(c->body, "", "mem_file_path", false, &sl.mem_file_path, &c->e)) < 0 ||
        api_json_object(c->body, "", "mem_backend", false, &backend, &c->e) < 0 ||
        api_json_bool(c->body, "", "enable_diff_snapshots", false, &diff, &c->e) < 0 ||
        api_json_bool(c->body, "", "track_dirty_pages", false, &sl.track_dirty_pages, &c->e) < 0 ||
        api_json_bool(c->body, "", "resume_vm", false, &sl.resume_vm, &c->e) < 0 ||
        api_json_bool(c->body, "", "clock_realtime", false, &sl.clock_realtime, &c->e) < 0 ||
        api_json_enum(c->body, "", "huge_pages", false, huge_pages, &huge, &c->e) < 0 ||
        api_json_object(c->body, "", "vsock_override", false, &vs, &c->e) < 0)
        return -1;
    if (huge > 1)
        return api_errf(&c->e, "Load snapshot error: field \"huge_pages\": ember does not offer "
                               "huge pages (guest memory is mapped in 4 KiB pages)");
    sl.track_dirty_pages |= diff;
    if ((r > 0) == (backend != NULL))
        return api_errf(&c->e, "Load snapshot error: exactly one of mem_file_path and "
                               "mem_backend must be given");
    if (backend) {
        if (api_json_only_fields(backend, "mem_backend", backend_fields, &c->e) < 0 ||
            api_json_enum(backend, "mem_backend", "backend_type", true, backends, &kind, &c->e) <
                0 ||
            api_json_string(backend, "mem_backend", "backend_path", true, &sl.mem_file_path,
                            &c->e) < 0)
            return -1;
        sl.mem_uffd = kind == 1;
    }
    if (vs &&
        (api_json_only_fields(vs, "vsock_override", vs_fields, &c->e) < 0 ||
         api_json_string(vs, "vsock_override", "uds_path", true, &sl.vsock_uds_path, &c->e) < 0))
        return -1;
    json_t *ovs = json_object_get(c->body, "network_overrides");
    if (ovs) {
        size_t i;
        json_t *ov;
        if (!json_is_array(ovs) || json_array_size(ovs) > API_NET_OVERRIDES_MAX)
            return api_errf(&c->e,
                            "field \"network_overrides\": an array of at most %u objects expected",
                            API_NET_OVERRIDES_MAX);
        json_array_foreach(ovs, i, ov)
        {
            if (!json_is_object(ov))
                return api_errf(&c->e, "field \"network_overrides\": objects expected");
            if (api_json_only_fields(ov, "network_overrides[]", ov_fields, &c->e) < 0 ||
                api_json_string(ov, "network_overrides[]", "iface_id", true,
                                &sl.net_overrides[i].iface_id, &c->e) < 0 ||
                api_json_string(ov, "network_overrides[]", "host_dev_name", true,
                                &sl.net_overrides[i].host_dev_name, &c->e) < 0)
                return -1;
            sl.nnet_overrides = (unsigned)i + 1;
        }
    }
    if (!c->r->ops->snapshot_load)
        return api_errf(&c->e, "ember does not offer snapshots");
    if (c->r->state != API_VM_NOT_STARTED)
        return api_errf(&c->e, API_MSG_AFTER_BOOT);
    /* Firecracker's rule (and words): a snapshot brings its own machine. */
    if (res->boot.kernel_image_path || res->ndrives || res->nnets || res->vsock.set)
        return api_errf(&c->e, "Loading a microVM snapshot not allowed after configuring "
                               "boot-specific resources.");
    uint64_t t0 = now_us();
    if (c->r->ops->snapshot_load(c->r->ctx, &sl, res, &c->e) < 0)
        return -1;
    c->r->state = sl.resume_vm ? API_VM_RUNNING : API_VM_PAUSED;
    API_INFO("'load snapshot' API request took %llu us.", (unsigned long long)(now_us() - t0));
    return 0;
}

static int put_actions(struct ctx *c)
{
    static const char *const fields[] = {"action_type", NULL};
    static const char *const actions[] = {"FlushMetrics", "InstanceStart", "SendCtrlAltDel", NULL};
    struct api_router *r = c->r;
    int idx;

    if (api_json_only_fields(c->body, "", fields, &c->e) < 0 ||
        api_json_enum(c->body, "", "action_type", true, actions, &idx, &c->e) < 0)
        return -1;
    switch (idx) {
    case 0:
        /* Firecracker flushes on request only once the microVM runs. */
        if (r->state == API_VM_NOT_STARTED)
            return api_errf(&c->e, API_MSG_BEFORE_BOOT);
        if (r->ops->flush_metrics(r->ctx, &c->e) < 0)
            return -1;
        break;
    case 1:
        if (r->state != API_VM_NOT_STARTED)
            return api_errf(&c->e, API_MSG_AFTER_BOOT);
        if (!r->res.boot.kernel_image_path)
            return api_errf(&c->e, "Start microvm error: Cannot start microvm without kernel "
                                   "configuration. (PUT /boot-source first)");
        if (r->ops->start(r->ctx, &r->res, &c->e) < 0)
            return -1;
        r->state = API_VM_RUNNING;
        break;
    default:
        if (r->state == API_VM_NOT_STARTED)
            return api_errf(&c->e, API_MSG_BEFORE_BOOT);
        if (r->ops->ctrl_alt_del(r->ctx, &c->e) < 0)
            return -1;
        break;
    }
    return 0;
}

/* ---- the route table: every path of the specification ---- */

#define NOT_OFFERED(p, id, m, what, r)                                                             \
    {                                                                                              \
        .path = (p), .has_id = (id), .methods = (m), .unsupported = (what), .res = (r)             \
    }

static const struct route routes[] = {
    {.path = "/", .methods = M_GET, .res = API_R_INSTANCE_INFO, .get = get_instance_info},
    {.path = "/version", .methods = M_GET, .res = API_R_VERSION, .get = get_version},
    {.path = "/vm/config", .methods = M_GET, .res = API_R_VM_CONFIG, .get = get_vm_config},
    {.path = "/machine-config",
     .methods = M_GET | M_PUT | M_PATCH,
     .res = API_R_MACHINE_CFG,
     .get = get_machine_config,
     .put = put_machine_config,
     .patch = patch_machine_config,
     .put_rule = PRE_BOOT,
     .patch_rule = PRE_BOOT},
    {.path = "/boot-source",
     .methods = M_PUT,
     .res = API_R_BOOT_SOURCE,
     .put = put_boot_source,
     .put_rule = PRE_BOOT},
    {.path = "/drives/",
     .has_id = true,
     .methods = M_PUT | M_PATCH,
     .res = API_R_DRIVE,
     .put = put_drive,
     .patch = patch_drive,
     .put_rule = PRE_BOOT,
     .patch_rule = POST_BOOT},
    {.path = "/network-interfaces/",
     .has_id = true,
     .methods = M_PUT | M_PATCH,
     .res = API_R_NETWORK,
     .put = put_net,
     .patch = patch_net,
     .put_rule = PRE_BOOT,
     .patch_rule = POST_BOOT},
    {.path = "/vsock",
     .methods = M_PUT,
     .res = API_R_VSOCK,
     .put = put_vsock,
     .put_rule = PRE_BOOT},
    /* Each action has its own rule. */
    {.path = "/actions", .methods = M_PUT, .res = API_R_ACTIONS, .put = put_actions},
    {.path = "/logger",
     .methods = M_PUT,
     .res = API_R_LOGGER,
     .put = put_logger,
     .put_rule = PRE_BOOT},
    {.path = "/metrics",
     .methods = M_PUT,
     .res = API_R_METRICS,
     .put = put_metrics,
     .put_rule = PRE_BOOT},
    {.path = "/serial",
     .methods = M_PUT,
     .res = API_R_SERIAL,
     .put = put_serial,
     .put_rule = PRE_BOOT},
    /* The data store is the host's to change at any time; its
     * configuration only before boot. */
    {.path = "/mmds",
     .methods = M_GET | M_PUT | M_PATCH,
     .res = API_R_MMDS,
     .get = get_mmds,
     .put = put_mmds,
     .patch = patch_mmds},
    {.path = "/mmds/config",
     .methods = M_PUT,
     .res = API_R_MMDS,
     .put = put_mmds_config,
     .put_rule = PRE_BOOT},
    /* PATCH /vm checks the state itself, after decoding the body. */
    {.path = "/vm", .methods = M_PATCH, .res = API_R_VM, .patch = patch_vm},
    NOT_OFFERED("/balloon", false, M_GET | M_PUT | M_PATCH, "the balloon device", API_R_BALLOON),
    NOT_OFFERED("/balloon/statistics", false, M_GET | M_PATCH, "the balloon device", API_R_BALLOON),
    NOT_OFFERED("/balloon/hinting/start", false, M_PATCH, "the balloon device", API_R_BALLOON),
    NOT_OFFERED("/balloon/hinting/status", false, M_GET, "the balloon device", API_R_BALLOON),
    NOT_OFFERED("/balloon/hinting/stop", false, M_PATCH, "the balloon device", API_R_BALLOON),
    NOT_OFFERED("/cpu-config", false, M_PUT, "custom CPU templates", API_R_CPU_CFG),
    NOT_OFFERED("/pmem/", true, M_PUT | M_PATCH, "virtio-pmem devices", API_R_PMEM),
    NOT_OFFERED("/hotplug/memory", false, M_GET | M_PUT | M_PATCH, "memory hotplug",
                API_R_HOTPLUG_MEMORY),
    NOT_OFFERED("/entropy", false, M_PUT, "the entropy device", API_R_ENTROPY),
    /* The snapshot endpoints check the state themselves (paused, pre-boot). */
    {.path = "/snapshot/create",
     .methods = M_PUT,
     .res = API_R_SNAPSHOT,
     .put = put_snapshot_create},
    {.path = "/snapshot/load", .methods = M_PUT, .res = API_R_SNAPSHOT, .put = put_snapshot_load},
};

/* path has no trailing '/' (see api_router_handle): "/drives" names the
 * drive with an empty id, as Firecracker's "/drives/" does. */
static const struct route *find_route(const char *path, const char **id)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *rt = &routes[i];
        if (rt->has_id) {
            size_t n = strlen(rt->path);
            if (strncmp(path, rt->path, n) == 0 && !strchr(path + n, '/')) {
                *id = path + n;
                return rt;
            }
            if (strncmp(path, rt->path, n - 1) == 0 && path[n - 1] == '\0') {
                *id = path + n - 1;
                return rt;
            }
        } else if (strcmp(path, rt->path) == 0) {
            *id = NULL;
            return rt;
        }
    }
    return NULL;
}

void api_router_init(struct api_router *r, const char *instance_id, const struct api_vmm_ops *ops,
                     void *ctx)
{
    memset(r, 0, sizeof(*r));
    api_resources_init(&r->res);
    r->state = API_VM_NOT_STARTED;
    r->instance_id = instance_id;
    r->ops = ops;
    r->ctx = ctx;
}

void api_router_release(struct api_router *r)
{
    api_resources_release(&r->res);
}

static void invalid(struct api_response *resp, const struct api_request *req)
{
    char msg[API_ERR_MAX];
    snprintf(msg, sizeof(msg), "Invalid request method and/or path: %.16s %.200s.",
             req->method_name, req->path);
    api_response_fault(resp, msg);
}

void api_router_handle(struct api_router *r, const struct api_request *req,
                       struct api_response *resp)
{
    struct ctx c = {.r = r, .req = req, .resp = resp};
    const struct route *rt;
    handler_fn fn = NULL;
    enum rule rule = ANY;
    int rc;

    /* A trailing slash names the same resource, and leading slashes are
     * one, as Firecracker splits paths ("/machine-config/" is
     * "/machine-config"). */
    char path[API_PATH_MAX];
    const char *p = req->path;
    size_t n;
    while (p[0] == '/' && p[1] == '/')
        p++;
    n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        n--;
    if (n >= sizeof(path))
        n = sizeof(path) - 1;
    memcpy(path, p, n);
    path[n] = '\0';

    memset(resp, 0, sizeof(*resp));
    /* Firecracker looks at the body before the path (parsed_request.rs):
     * a GET has none, a PUT or PATCH must have one. */
    if (req->method == API_GET && req->body_len > 0) {
        api_metrics_request(req->method, API_R_INVALID, true);
        api_response_fault(resp, "GET request cannot have a body.");
        return;
    }
    if ((req->method == API_PUT || req->method == API_PATCH) && req->body_len == 0) {
        api_metrics_request(req->method, API_R_INVALID, true);
        api_response_fault(resp,
                           req->method == API_PUT ? "Empty PUT request." : "Empty PATCH request.");
        return;
    }
    rt = find_route(path, &c.id);
    if (!rt || req->method > API_PATCH || !(rt->methods & (1u << req->method))) {
        api_metrics_request(req->method, API_R_INVALID, true);
        invalid(resp, req);
        return;
    }
    if (rt->unsupported) {
        char msg[API_ERR_MAX];
        api_metrics_request(req->method, rt->res, true);
        snprintf(msg, sizeof(msg), "ember does not offer %s (%s %.200s).", rt->unsupported,
                 req->method_name, req->path);
        api_response_fault(resp, msg);
        return;
    }
    switch (req->method) {
    case API_GET:
        fn = rt->get;
        break;
    case API_PUT:
        fn = rt->put;
        rule = rt->put_rule;
        break;
    default:
        fn = rt->patch;
        rule = rt->patch_rule;
        break;
    }
    if (req->method != API_GET) {
        /* Firecracker decodes the body before it looks at the VM's state. */
        c.body = api_json_parse_object(req->body, req->body_len, &c.e);
        if (!c.body) {
            rc = -1;
            goto out;
        }
    }
    if (rule == PRE_BOOT && r->state != API_VM_NOT_STARTED)
        rc = api_errf(&c.e, API_MSG_AFTER_BOOT);
    else if (rule == POST_BOOT && r->state == API_VM_NOT_STARTED)
        rc = api_errf(&c.e, API_MSG_BEFORE_BOOT);
    else
        rc = fn(&c);
out:
    json_decref(c.body);
    if (rc < 0)
        api_response_fault(resp, c.e.msg);
    else if (resp->status == 0)
        resp->status = 204; /* a successful PUT/PATCH has no body */
    api_metrics_request(req->method, rt->res, resp->status >= 400);
    if (resp->status >= 400)
        API_DEBUG("%s %s: 400 %s", req->method_name, req->path, c.e.msg);
}

/* ---- config file ---- */

int api_router_apply_config(struct api_router *r, const json_t *root, struct api_err *e)
{
    /* Firecracker's VmmConfig keys, and ember's "serial" (Firecracker skips
     * it). Other keys are ignored as serde ignores them, with a warning. */
    static const char *const known[] = {
        "machine-config", "boot-source",    "drives",      "network-interfaces",
        "vsock",          "logger",         "metrics",     "serial",
        "balloon",        "cpu-config",     "mmds-config", "entropy",
        "pmem",           "memory-hotplug", NULL,
    };
    /* Sections ember does not offer: null (or an empty list) is accepted,
     * anything else is refused. */
    static const char *const unsupported[][2] = {
        {"balloon", "the balloon device"},    {"cpu-config", "custom CPU templates"},
        {"entropy", "the entropy device"},    {"pmem", "virtio-pmem devices"},
        {"memory-hotplug", "memory hotplug"},
    };
    const char *key;
    struct api_err inner;
    json_t *v;
    size_t i;

    if (!json_is_object(root))
        return api_errf(e, "the configuration must be a JSON object");
    api_json_forget_position();
    json_object_foreach((json_t *)root, key, v)
    {
        for (i = 0; known[i]; i++)
            if (strcmp(known[i], key) == 0)
                break;
        if (!known[i])
            API_WARN("config file: ignoring the unknown key \"%.64s\"", key);
    }
    for (i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        v = json_object_get(root, unsupported[i][0]);
        if (!v || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0))
            continue;
        return api_errf(e, "\"%s\": ember does not offer %s", unsupported[i][0], unsupported[i][1]);
    }

#define SECTION(key, call)                                                                         \
    do {                                                                                           \
        v = json_object_get(root, key);                                                            \
        if (v && !json_is_null(v)) {                                                               \
            if (!json_is_object(v))                                                                \
                return api_errf(e, "\"%s\" must be an object", key);                               \
            if ((call) < 0)                                                                        \
                return api_errf(e, "\"%s\": %s", key, inner.msg);                                  \
        }                                                                                          \
    } while (0)

    SECTION("logger", apply_logger(r, v, &inner));
    SECTION("metrics", apply_metrics(r, v, &inner));
    SECTION("machine-config", api_put_machine_config(&r->res, v, &inner));
    SECTION("boot-source", api_put_boot_source(&r->res, v, &inner));
    SECTION("vsock", api_put_vsock(&r->res, v, &inner));
    SECTION("serial", api_put_serial(&r->res, v, &inner));
#undef SECTION

    static const char *const lists[] = {"drives", "network-interfaces"};
    for (int l = 0; l < 2; l++) {
        json_t *arr = json_object_get(root, lists[l]), *item;
        if (!arr || json_is_null(arr))
            continue;
        if (!json_is_array(arr))
            return api_errf(e, "\"%s\" must be an array", lists[l]);
        json_array_foreach(arr, i, item)
        {
            int rc;
            if (!json_is_object(item))
                return api_errf(e, "\"%s\"[%zu] must be an object", lists[l], i);
            rc = l == 0 ? api_put_drive(&r->res, NULL, item, &inner)
                        : api_put_net(&r->res, NULL, item, &inner);
            if (rc < 0)
                return api_errf(e, "\"%s\"[%zu]: %s", lists[l], i, inner.msg);
        }
    }
    /* After the interfaces it names. */
    v = json_object_get(root, "mmds-config");
    if (v && !json_is_null(v)) {
        if (!json_is_object(v))
            return api_errf(e, "\"mmds-config\" must be an object");
        if (api_mmds_put_config(&r->res.mmds, &r->res, v, &inner) < 0)
            return api_errf(e, "\"mmds-config\": %s", inner.msg);
    }
    if (!r->res.boot.kernel_image_path)
        return api_errf(e, "\"boot-source\" is missing: the config file must name the guest "
                           "to boot");
    return 0;
}
