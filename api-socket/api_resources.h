/* api_resources.h: the microVM's configuration as the API sees it.
 *
 * One struct holds what PUT/PATCH requests and the config file have set:
 * machine config, boot source, drives, network interfaces, vsock, logger,
 * metrics and serial. Each resource has one decoder that validates a JSON
 * body completely before it changes anything (a failed update leaves the
 * resource as it was), and one encoder for GET. The HTTP router and the
 * config-file reader both call these, so both accept exactly the same bodies.
 * Turning the result into a struct vm_config happens in api_vmm.c.
 */
#ifndef EMBER_API_RESOURCES_H
#define EMBER_API_RESOURCES_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "api-socket/api_json.h"
#include "api-socket/api_mmds.h"

/* Resource ids: [A-Za-z0-9_]{1,64}, as Firecracker's. */
#define API_ID_MAX 64
/* Virtio devices a guest can have: ember/abi.h's EMBER_MAX_DEVICES. */
#define API_MAX_DEVICES     16
#define API_MEM_MIB_DEFAULT 128u
#define API_VCPU_MAX_SPEC   32u /* the spec's range; ember runs one vCPU */

enum api_log_level {
    API_LOG_OFF,
    API_LOG_ERROR,
    API_LOG_WARNING,
    API_LOG_INFO,
    API_LOG_DEBUG,
    API_LOG_TRACE,
};

struct api_token_bucket {
    bool set;
    bool has_one_time_burst;
    uint64_t size;
    uint64_t refill_time; /* ms */
    uint64_t one_time_burst;
};

struct api_rate_limiter {
    bool set;
    struct api_token_bucket bandwidth;
    struct api_token_bucket ops;
};

struct api_machine {
    uint32_t vcpu_count;
    /* Any size Firecracker accepts (1 MiB and up); InstanceStart refuses
     * what ember cannot honour (VM_MEM_MIB_MIN to VM_MEM_MIB_MAX). */
    uint64_t mem_size_mib;
    bool track_dirty_pages; /* KVM's dirty log, for Diff snapshots */
};

struct api_boot_source {
    char *kernel_image_path; /* NULL: not configured */
    char *boot_args;         /* NULL: none */
};

enum api_cache_type { API_CACHE_UNSAFE, API_CACHE_WRITEBACK };
enum api_io_engine { API_IO_SYNC, API_IO_ASYNC };

struct api_drive {
    char id[API_ID_MAX + 1];
    char *path_on_host;
    char *partuuid; /* NULL: none */
    bool is_root_device;
    bool is_read_only;
    enum api_cache_type cache_type;
    enum api_io_engine io_engine;
    struct api_rate_limiter rate_limiter;
};

struct api_net {
    char id[API_ID_MAX + 1];
    char host_dev_name[16]; /* IFNAMSIZ */
    char guest_mac[18];     /* "" : none */
    uint32_t mtu;           /* 0: not advertised */
    struct api_rate_limiter rx_rate_limiter;
    struct api_rate_limiter tx_rate_limiter;
};

struct api_vsock {
    bool set;
    uint32_t guest_cid;
    char *uds_path;
    char *vsock_id; /* deprecated in the spec; kept for GET */
    /* ember extension "ember_buffer_bytes": the device's budget for guest
     * data not taken by host sockets (0: the default). */
    uint64_t buffer_bytes;
};

struct api_logger_cfg {
    bool set;
    char *log_path; /* NULL: stderr */
    enum api_log_level level;
    bool show_level;
    bool show_log_origin;
    char *module; /* NULL: no filter */
};

struct api_metrics_cfg {
    bool set;
    char *metrics_path;
    bool emit_id;
    json_t *properties; /* object of strings, or NULL */
};

struct api_serial {
    bool set;
    char *serial_out_path; /* NULL: the guest console stays on stdout */
};

struct api_resources {
    struct api_machine machine;
    struct api_boot_source boot;
    struct api_drive drives[API_MAX_DEVICES];
    unsigned ndrives;
    struct api_net nets[API_MAX_DEVICES];
    unsigned nnets;
    struct api_vsock vsock;
    struct api_mmds mmds; /* the metadata service: configuration and store */
    struct api_logger_cfg logger;
    struct api_metrics_cfg metrics;
    struct api_serial serial;
};

void api_resources_init(struct api_resources *r);
void api_resources_release(struct api_resources *r);

/* Checks an id against [A-Za-z0-9_]{1,64}; what names the kind ("drive"). */
int api_id_check(const char *what, const char *id, struct api_err *e);

/* Decoders: body is a JSON object. path_id is the {id} of the URL, or NULL
 * when the body comes from the config file. Return 0 or -1 with e set. */
int api_put_machine_config(struct api_resources *r, const json_t *body, struct api_err *e);
int api_patch_machine_config(struct api_resources *r, const json_t *body, struct api_err *e);
int api_put_boot_source(struct api_resources *r, const json_t *body, struct api_err *e);
int api_put_drive(struct api_resources *r, const char *path_id, const json_t *body,
                  struct api_err *e);
/* PATCH /drives/{id} (post-boot): decoded and checked first, so that the
 * live device can be updated before the stored configuration is. */
struct api_drive_update {
    const char *id;   /* the stored drive's id */
    const char *path; /* new path_on_host (borrowed from the body), or NULL */
    bool has_rate_limiter;
    struct api_rate_limiter rate_limiter;
};
int api_decode_drive_update(struct api_resources *r, const char *path_id, const json_t *body,
                            struct api_drive_update *u, struct api_err *e);
int api_apply_drive_update(struct api_resources *r, const struct api_drive_update *u,
                           struct api_err *e);
int api_put_net(struct api_resources *r, const char *path_id, const json_t *body,
                struct api_err *e);
int api_patch_net(struct api_resources *r, const char *path_id, const json_t *body,
                  struct api_err *e);
/* PATCH /network-interfaces/{id} after boot: decoded and checked first, the
 * live device updated, then the stored configuration. */
struct api_net_update {
    const char *id; /* the stored interface's id */
    bool has_rx, has_tx;
    struct api_rate_limiter rx, tx;
};
int api_decode_net_update(struct api_resources *r, const char *path_id, const json_t *body,
                          struct api_net_update *u, struct api_err *e);
int api_apply_net_update(struct api_resources *r, const struct api_net_update *u,
                         struct api_err *e);
int api_put_vsock(struct api_resources *r, const json_t *body, struct api_err *e);
int api_put_serial(struct api_resources *r, const json_t *body, struct api_err *e);
/* Logger and metrics are decoded into a fresh cfg (the caller opens the
 * output, then stores it with api_*_cfg_replace). */
int api_decode_logger(const json_t *body, struct api_logger_cfg *out, struct api_err *e);
int api_decode_metrics(const json_t *body, struct api_metrics_cfg *out, struct api_err *e);
void api_logger_cfg_release(struct api_logger_cfg *c);
void api_metrics_cfg_release(struct api_metrics_cfg *c);
/* Parses a level name, case-insensitive ("info", "Warning"...): 0 or -1. */
int api_log_level_parse(const char *s, enum api_log_level *out);
const char *api_log_level_name(enum api_log_level l);

/* Encoders for GET /machine-config and GET /vm/config (new references). */
json_t *api_machine_config_json(const struct api_resources *r);
json_t *api_vm_config_json(const struct api_resources *r);

#endif
