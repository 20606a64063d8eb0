/* api_router.h: one HTTP request in, one response out.
 *
 * The router maps (method, path, body) to a resource handler, enforces
 * Firecracker's rules (pre-boot-only and post-boot-only operations,
 * InstanceStart once, path id == body id) and answers 204, 200 with JSON, or
 * 400 with {"fault_message": ...}. It does no I/O of its own: anything with a
 * side effect on the host (starting the VM, pausing it, opening log and
 * metrics outputs) goes through struct api_vmm_ops, so the fuzz target and
 * the unit tests drive the router with stubs. It runs on the API thread and
 * never waits for the guest.
 */
#ifndef EMBER_API_ROUTER_H
#define EMBER_API_ROUTER_H

#include <stddef.h>

#include "api-socket/api_json.h"
#include "api-socket/api_metrics.h"
#include "api-socket/api_resources.h"

struct api_request {
    enum api_method method;
    const char *method_name; /* for messages: "DELETE" */
    const char *path;        /* without the query string */
    const char *body;
    size_t body_len;
};

struct api_response {
    int status; /* 200, 204 or 400 */
    char *body; /* malloc'd JSON text, NULL for 204 */
    size_t body_len;
    /* Firecracker's deprecation notice when the request used a deprecated
     * field (a static string, or NULL): the answer carries "Deprecation:
     * true" and the notice is logged as a warning. */
    const char *deprecation;
};

/* PUT /snapshot/create and /snapshot/load bodies (Firecracker's
 * SnapshotCreateParams, SnapshotLoadParams); strings borrowed from the
 * request's JSON. */
struct api_snapshot_create {
    const char *snapshot_path, *mem_file_path;
    bool diff;
};

#define API_NET_OVERRIDES_MAX 8
struct api_snapshot_load {
    const char *snapshot_path, *mem_file_path;
    bool mem_uffd; /* mem_backend Uffd: mem_file_path is the page-fault handler's socket */
    bool track_dirty_pages, resume_vm;
    bool clock_realtime;        /* KVM_CLOCK_REALTIME on KVM_SET_CLOCK (Firecracker's) */
    const char *vsock_uds_path; /* vsock_override, or NULL */
    unsigned nnet_overrides;
    struct {
        const char *iface_id, *host_dev_name;
    } net_overrides[API_NET_OVERRIDES_MAX];
};

enum api_vm_state { API_VM_NOT_STARTED, API_VM_RUNNING, API_VM_PAUSED };

/* Side effects; each returns 0 or -1 with e set. */
struct api_vmm_ops {
    /* Builds the VM from res and starts the guest; must not wait for it. */
    int (*start)(void *ctx, const struct api_resources *res, struct api_err *e);
    int (*pause)(void *ctx, struct api_err *e);
    int (*resume)(void *ctx, struct api_err *e);
    int (*ctrl_alt_del)(void *ctx, struct api_err *e);
    /* PATCH /drives after boot: applies u to the live device. */
    int (*update_drive)(void *ctx, const struct api_drive_update *u, struct api_err *e);
    /* PATCH /network-interfaces after boot: new limiters on the live device. */
    int (*update_net)(void *ctx, const struct api_net_update *u, struct api_err *e);
    int (*configure_logger)(void *ctx, const struct api_logger_cfg *cfg, struct api_err *e);
    int (*configure_metrics)(void *ctx, const struct api_metrics_cfg *cfg, struct api_err *e);
    int (*flush_metrics)(void *ctx, struct api_err *e);
    /* PUT /snapshot/create, the VM paused; PUT /snapshot/load, before boot
     * (the VM then exists, paused unless resume_vm). Optional: without
     * them the endpoints answer that ember does not offer snapshots. */
    int (*snapshot_create)(void *ctx, const struct api_snapshot_create *sc, struct api_err *e);
    /* On success res describes the restored VM (Firecracker's GET /vm/config
     * after a load), and PATCH /drives and /network-interfaces find its
     * devices there. */
    int (*snapshot_load)(void *ctx, const struct api_snapshot_load *sl, struct api_resources *res,
                         struct api_err *e);
};

struct api_router {
    struct api_resources res;
    enum api_vm_state state;
    const char *instance_id;
    const struct api_vmm_ops *ops;
    void *ctx;
};

/* Longest path the router looks at (api_http.h's URL limit). */
#define API_PATH_MAX 2049

#define API_MSG_AFTER_BOOT  "The requested operation is not supported after starting the microVM."
#define API_MSG_BEFORE_BOOT "The requested operation is not supported before starting the microVM."

void api_router_init(struct api_router *r, const char *instance_id, const struct api_vmm_ops *ops,
                     void *ctx);
void api_router_release(struct api_router *r);
/* Handles one request; resp->body must be freed by the caller. */
void api_router_handle(struct api_router *r, const struct api_request *req,
                       struct api_response *resp);
/* Fills resp with a 400 and {"fault_message": msg} (msg made valid UTF-8). */
void api_response_fault(struct api_response *resp, const char *msg);
const char *api_vm_state_name(enum api_vm_state s);

/* Applies a Firecracker config file (the object of GET /vm/config, kebab-case
 * keys) to r->res through the same decoders and ops as the API. Does not
 * start the VM. Returns 0 or -1 with e naming the section. */
int api_router_apply_config(struct api_router *r, const json_t *root, struct api_err *e);

#endif
