/* api_resources.c: decoding, validating and encoding the microVM's resources.
 *
 * Each decoder reads the whole body into a local copy, checks it, and only
 * then replaces the stored resource: "if any of the parameters has an
 * incorrect value, the whole update fails" (Firecracker API, PUT
 * /machine-config). What ember does not offer gets a message saying so,
 * instead of being accepted and silently ignored.
 */
#include "api-socket/api_resources.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api-socket/api_metrics.h"
#include "monitor/vm_config.h"

#define TOKEN_MAX ((uint64_t)INT64_MAX)

/* The defaults, without the MMDS store (released resources own nothing). */
static void defaults(struct api_resources *r)
{
    memset(r, 0, sizeof(*r));
    r->machine.vcpu_count = 1;
    r->machine.mem_size_mib = API_MEM_MIB_DEFAULT;
}

void api_resources_init(struct api_resources *r)
{
    defaults(r);
    /* Without memory for the store every MMDS request says so. */
    (void)api_mmds_init(&r->mmds, MMDS_SIZE_LIMIT_DEFAULT);
}

static void drive_release(struct api_drive *d)
{
    free(d->path_on_host);
    free(d->partuuid);
    memset(d, 0, sizeof(*d));
}

static void vsock_release(struct api_vsock *v)
{
    free(v->uds_path);
    free(v->vsock_id);
    memset(v, 0, sizeof(*v));
}

void api_logger_cfg_release(struct api_logger_cfg *c)
{
    free(c->log_path);
    free(c->module);
    memset(c, 0, sizeof(*c));
}

void api_metrics_cfg_release(struct api_metrics_cfg *c)
{
    free(c->metrics_path);
    json_decref(c->properties);
    memset(c, 0, sizeof(*c));
}

void api_resources_release(struct api_resources *r)
{
    free(r->boot.kernel_image_path);
    free(r->boot.boot_args);
    for (unsigned i = 0; i < r->ndrives; i++)
        drive_release(&r->drives[i]);
    vsock_release(&r->vsock);
    api_logger_cfg_release(&r->logger);
    api_metrics_cfg_release(&r->metrics);
    free(r->serial.serial_out_path);
    api_mmds_release(&r->mmds);
    defaults(r);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int api_id_check(const char *what, const char *id, struct api_err *e)
{
    size_t n = strlen(id);
    bool ok = n >= 1 && n <= API_ID_MAX;

    for (size_t i = 0; ok && i < n; i++) {
        char c = id[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    }
    /* Firecracker's texts (parsed_request.rs, checked_id), then ember's rule. */
    if (n == 0)
        return api_errf(e, "The ID cannot be empty.");
    if (!ok)
        return api_errf(e,
                        "API Resource IDs can only contain alphanumeric characters and "
                        "underscores. (invalid %s id \"%.80s\": an id is 1 to 64 characters of "
                        "A-Z, a-z, 0-9 and _)",
                        what, id);
    return 0;
}

/* The id in the body must name the same resource as the id in the path. */
static int body_id(const json_t *body, const char *key, const char *what, const char *path_id,
                   const char **out, struct api_err *e)
{
    if (api_json_string(body, "", key, true, out, e) < 0)
        return -1;
    if (api_id_check(what, *out, e) < 0)
        return -1;
    if (path_id && strcmp(path_id, *out) != 0)
        return api_errf(e,
                        "The id from the path does not match the id from the body! (\"%s\" in "
                        "the path, %s \"%s\" in the body)",
                        path_id, key, *out);
    return 0;
}

/* A host file the device will use: must exist and be a file or block device.
 * stat() comes first, so that a request never makes ember open a character
 * device or a FIFO (opening some devices has side effects). The message has
 * Firecracker's words: lead names the operation ("Unable to create the
 * virtio block device: "), tail is what Firecracker appends after the path. */
static int check_host_file(const char *lead, const char *tail, const char *id, const char *path,
                           bool writable, struct api_err *e)
{
    struct stat st;
    int fd, err;

    if (!path[0]) {
        err = ENOENT;
        goto fail;
    }
    if (stat(path, &st) < 0) {
        err = errno;
        goto fail;
    }
    if (!(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
        return api_errf(e,
                        "Drive config error: %sError manipulating the backing file: not a "
                        "regular file or block device %.200s%s (drive \"%s\")",
                        lead, path, tail, id);
    fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        err = errno;
        goto fail;
    }
    close(fd);
    return 0;
fail:
    return api_errf(e,
                    "Drive config error: %sError manipulating the backing file: %s (os error %d) "
                    "%.200s%s (drive \"%s\"%s)",
                    lead, strerror(err), err, path, tail, id,
                    path[0] ? "" : ": path_on_host is empty");
}

#define DRIVE_CREATE     "Unable to create the virtio block device: "
#define DRIVE_PATCH      "Unable to patch the block device: "
#define DRIVE_PATCH_TAIL " Please verify the request arguments."

static unsigned device_count(const struct api_resources *r)
{
    return r->ndrives + r->nnets + (r->vsock.set ? 1u : 0u);
}

static int device_room(const struct api_resources *r, const char *what, const char *id,
                       struct api_err *e)
{
    if (device_count(r) >= API_MAX_DEVICES)
        return api_errf(e, "cannot add %s \"%s\": a microVM has at most %d devices", what, id,
                        API_MAX_DEVICES);
    return 0;
}

/* ---- machine-config ---- */

static const char *const machine_fields[] = {
    "vcpu_count", "mem_size_mib", "smt", "track_dirty_pages", "cpu_template", "huge_pages", NULL,
};
static const char *const cpu_templates[] = {"C3", "T2", "T2S", "T2CL", "T2A", "V1N1", "None", NULL};
static const char *const huge_pages_values[] = {"None", "Transparent", "2M", NULL};

/* Firecracker's MachineConfigError texts (vmm_config/machine_config.rs). */
#define MSG_VCPU_COUNT                                                                             \
    "Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be "  \
    "1 or an even number if SMT is enabled."
#define MSG_MEM_SIZE                                                                               \
    "Machine config error: The memory size (MiB) is either 0, or not a multiple of the "           \
    "configured page size."

static int decode_machine(struct api_machine *m, const json_t *body, bool required,
                          struct api_err *e)
{
    uint64_t v;
    bool b;
    int idx, r;

    if (api_json_only_fields(body, "", machine_fields, e) < 0)
        return -1;
    uint64_t mem = 0;
    int rm;

    /* Types and presence first, then values, in the order of Firecracker's
     * deserializer. vcpu_count is a u8 there; any memory size is taken
     * here, and InstanceStart says whether ember can give the guest that
     * much (api_vm_config_from). */
    r = api_json_uint(body, "", "vcpu_count", required, 0, UINT8_MAX, &v, e);
    if (r < 0)
        return -1;
    rm = api_json_uint(body, "", "mem_size_mib", required, 0, INT64_MAX, &mem, e);
    if (rm < 0)
        return -1;
    if (r > 0) {
        if (v == 0 || v > API_VCPU_MAX_SPEC)
            return api_errf(e, MSG_VCPU_COUNT);
        if (v != 1)
            return api_errf(e, "Machine config error: field \"vcpu_count\" must be 1: ember runs "
                               "single-vCPU microVMs");
        m->vcpu_count = (uint32_t)v;
    }
    if (rm > 0) {
        if (mem == 0)
            return api_errf(e, MSG_MEM_SIZE);
        m->mem_size_mib = mem;
    }
    r = api_json_bool(body, "", "smt", false, &b, e);
    if (r < 0)
        return -1;
    if (r > 0 && b)
        return api_errf(e, "Machine config error: field \"smt\": ember does not offer "
                           "simultaneous multithreading");
    r = api_json_bool(body, "", "track_dirty_pages", false, &b, e);
    if (r < 0)
        return -1;
    if (r > 0)
        m->track_dirty_pages = b; /* for Diff snapshots */
    r = api_json_enum(body, "", "cpu_template", false, cpu_templates, &idx, e);
    if (r < 0)
        return -1;
    if (r > 0 && strcmp(cpu_templates[idx], "None") != 0)
        return api_errf(e, "Machine config error: field \"cpu_template\": ember does not offer "
                           "CPU templates");
    r = api_json_enum(body, "", "huge_pages", false, huge_pages_values, &idx, e);
    if (r < 0)
        return -1;
    if (r > 0 && idx != 0)
        return api_errf(e, "Machine config error: field \"huge_pages\": ember does not offer "
                           "huge pages");
    return 0;
}

int api_put_machine_config(struct api_resources *r, const json_t *body, struct api_err *e)
{
    /* PUT resets what it does not name to the defaults. */
    struct api_machine m = {.vcpu_count = 1, .mem_size_mib = API_MEM_MIB_DEFAULT};
    if (decode_machine(&m, body, true, e) < 0)
        return -1;
    r->machine = m;
    return 0;
}

int api_patch_machine_config(struct api_resources *r, const json_t *body, struct api_err *e)
{
    struct api_machine m = r->machine;
    bool any = false;

    if (decode_machine(&m, body, false, e) < 0)
        return -1;
    /* A PATCH that names nothing is refused, as Firecracker does. */
    for (int i = 0; machine_fields[i]; i++) {
        json_t *v = json_object_get(body, machine_fields[i]);
        if (v && !json_is_null(v))
            any = true;
    }
    if (!any)
        return api_errf(e, "Empty PATCH request.");
    r->machine = m;
    return 0;
}

json_t *api_machine_config_json(const struct api_resources *r)
{
    return json_pack("{s:I, s:I, s:b, s:b, s:s}", "vcpu_count", (json_int_t)r->machine.vcpu_count,
                     "mem_size_mib", (json_int_t)r->machine.mem_size_mib, "smt", 0,
                     "track_dirty_pages", r->machine.track_dirty_pages, "huge_pages", "None");
}

/* ---- boot-source ---- */

#define BOOT_OPEN_ERR "Boot source error: The kernel file cannot be opened: "

static int open_err(struct api_err *e, int err, const char *path)
{
    return api_errf(e, BOOT_OPEN_ERR "%s (os error %d): %.200s", strerror(err), err, path);
}

static const char *const boot_fields[] = {"kernel_image_path", "boot_args", "initrd_path", NULL};

int api_put_boot_source(struct api_resources *r, const json_t *body, struct api_err *e)
{
    const char *kernel = NULL, *args = NULL, *initrd = NULL;
    char *k, *a;
    struct stat st;
    int fd, rc;

    if (api_json_only_fields(body, "", boot_fields, e) < 0)
        return -1;
    if (api_json_string(body, "", "kernel_image_path", true, &kernel, e) < 0)
        return -1;
    if (api_json_string(body, "", "boot_args", false, &args, e) < 0)
        return -1;
    rc = api_json_string(body, "", "initrd_path", false, &initrd, e);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return api_errf(e, "Boot source error: field \"initrd_path\": ember does not offer an "
                           "initrd");
    if (args && strlen(args) >= VM_CMDLINE_MAX)
        return api_errf(e,
                        "Boot source error: The kernel command line is invalid: field "
                        "\"boot_args\" is longer than %u bytes",
                        VM_CMDLINE_MAX - 1);
    /* Fail now, not at InstanceStart, when the file cannot be read.
     * Firecracker's words, then the path. */
    if (!kernel[0])
        return api_errf(e,
                        BOOT_OPEN_ERR "%s (os error %d): field \"kernel_image_path\" is "
                                      "empty",
                        strerror(ENOENT), ENOENT);
    if (stat(kernel, &st) < 0)
        return open_err(e, errno, kernel);
    if (!S_ISREG(st.st_mode))
        return api_errf(e, BOOT_OPEN_ERR "not a regular file: %.200s", kernel);
    fd = open(kernel, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return open_err(e, errno, kernel);
    close(fd);

    k = strdup(kernel);
    a = dup_or_null(args);
    if (!k || (args && !a)) {
        free(k);
        free(a);
        return api_errf(e, "out of memory");
    }
    free(r->boot.kernel_image_path);
    free(r->boot.boot_args);
    r->boot.kernel_image_path = k;
    r->boot.boot_args = a;
    return 0;
}

/* ---- rate limiters (drives, network interfaces) ---- */

static const char *const bucket_fields[] = {"size", "refill_time", "one_time_burst", NULL};
static const char *const limiter_fields[] = {"bandwidth", "ops", NULL};

static int decode_bucket(const json_t *parent, const char *at, const char *key,
                         struct api_token_bucket *b, struct api_err *e)
{
    char here[160];
    json_t *o;
    int r = api_json_object(parent, at, key, false, &o, e);

    if (r <= 0)
        return r;
    api_json_field_name(here, sizeof(here), at, key);
    if (api_json_only_fields(o, here, bucket_fields, e) < 0)
        return -1;
    if (api_json_uint(o, here, "size", true, 0, TOKEN_MAX, &b->size, e) < 0)
        return -1;
    if (api_json_uint(o, here, "refill_time", true, 0, TOKEN_MAX, &b->refill_time, e) < 0)
        return -1;
    r = api_json_uint(o, here, "one_time_burst", false, 0, TOKEN_MAX, &b->one_time_burst, e);
    if (r < 0)
        return -1;
    b->has_one_time_burst = r > 0;
    b->set = true;
    return 1;
}

static int decode_limiter(const json_t *body, const char *key, struct api_rate_limiter *l,
                          struct api_err *e)
{
    json_t *o;
    int r = api_json_object(body, "", key, false, &o, e);

    memset(l, 0, sizeof(*l));
    if (r <= 0)
        return r;
    if (api_json_only_fields(o, key, limiter_fields, e) < 0)
        return -1;
    if (decode_bucket(o, key, "bandwidth", &l->bandwidth, e) < 0)
        return -1;
    if (decode_bucket(o, key, "ops", &l->ops, e) < 0)
        return -1;
    l->set = true;
    return 1;
}

/* GET shows a limiter as Firecracker does (vmm_config/mod.rs): a bucket
 * whose size or refill time is 0 limits nothing and is null, a
 * one_time_burst of 0 is null, and a limiter with no bucket left is null. */
static bool bucket_active(const struct api_token_bucket *b)
{
    return b->set && b->size && b->refill_time;
}

static json_t *bucket_json(const struct api_token_bucket *b)
{
    if (!bucket_active(b))
        return json_null();
    return json_pack("{s:I, s:o, s:I}", "size", (json_int_t)b->size, "one_time_burst",
                     b->has_one_time_burst && b->one_time_burst
                         ? json_integer((json_int_t)b->one_time_burst)
                         : json_null(),
                     "refill_time", (json_int_t)b->refill_time);
}

static json_t *limiter_json(const struct api_rate_limiter *l)
{
    if (!l->set || (!bucket_active(&l->bandwidth) && !bucket_active(&l->ops)))
        return json_null();
    return json_pack("{s:o, s:o}", "bandwidth", bucket_json(&l->bandwidth), "ops",
                     bucket_json(&l->ops));
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* ---- drives ---- */

static const char *const drive_fields[] = {
    "drive_id",     "partuuid",     "is_root_device", "cache_type", "is_read_only",
    "path_on_host", "rate_limiter", "io_engine",      "socket",     NULL,
};
static const char *const partial_drive_fields[] = {"drive_id", "path_on_host", "rate_limiter",
                                                   NULL};
static const char *const cache_types[] = {"Unsafe", "Writeback", NULL};
static const char *const io_engines[] = {"Sync", "Async", NULL};

static struct api_drive *find_drive(struct api_resources *r, const char *id)
{
    for (unsigned i = 0; i < r->ndrives; i++)
        if (strcmp(r->drives[i].id, id) == 0)
            return &r->drives[i];
    return NULL;
}

int api_put_drive(struct api_resources *r, const char *path_id, const json_t *body,
                  struct api_err *e)
{
    struct api_drive d, *slot;
    const char *id, *path = NULL, *partuuid = NULL, *sock = NULL;
    int idx, rc;

    memset(&d, 0, sizeof(d));
    if (path_id && api_id_check("drive", path_id, e) < 0)
        return -1;
    if (api_json_only_fields(body, "", drive_fields, e) < 0)
        return -1;
    if (body_id(body, "drive_id", "drive", path_id, &id, e) < 0)
        return -1;
    rc = api_json_string(body, "", "socket", false, &sock, e);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return api_errf(e, "Drive config error: field \"socket\": ember does not offer "
                           "vhost-user block devices");
    if (api_json_bool(body, "", "is_root_device", true, &d.is_root_device, e) < 0)
        return -1;
    if (api_json_string(body, "", "partuuid", false, &partuuid, e) < 0)
        return -1;
    if (api_json_bool(body, "", "is_read_only", false, &d.is_read_only, e) < 0)
        return -1;
    if (api_json_string(body, "", "path_on_host", true, &path, e) < 0)
        return -1;
    idx = API_CACHE_UNSAFE;
    if (api_json_enum(body, "", "cache_type", false, cache_types, &idx, e) < 0)
        return -1;
    d.cache_type = (enum api_cache_type)idx;
    idx = API_IO_SYNC;
    if (api_json_enum(body, "", "io_engine", false, io_engines, &idx, e) < 0)
        return -1;
    d.io_engine = (enum api_io_engine)idx;
    if (decode_limiter(body, "rate_limiter", &d.rate_limiter, e) < 0)
        return -1;
    if (d.is_root_device)
        for (unsigned i = 0; i < r->ndrives; i++)
            if (r->drives[i].is_root_device && strcmp(r->drives[i].id, id) != 0)
                return api_errf(e,
                                "Drive config error: A root block device already exists! (drive "
                                "\"%s\" is the root device, not \"%s\")",
                                r->drives[i].id, id);
    if (check_host_file(DRIVE_CREATE, "", id, path, !d.is_read_only, e) < 0)
        return -1;
    slot = find_drive(r, id);
    if (!slot && r->ndrives >= VM_DRIVES_MAX)
        return api_errf(e, "cannot add drive \"%s\": a microVM has at most %u drives", id,
                        VM_DRIVES_MAX);
    if (!slot && device_room(r, "drive", id, e) < 0)
        return -1;

    snprintf(d.id, sizeof(d.id), "%s", id);
    d.path_on_host = strdup(path);
    d.partuuid = dup_or_null(partuuid);
    if (!d.path_on_host || (partuuid && !d.partuuid)) {
        drive_release(&d);
        return api_errf(e, "out of memory");
    }
    if (slot)
        drive_release(slot);
    else
        slot = &r->drives[r->ndrives++];
    *slot = d;
    /* Firecracker's "block_<drive_id>" group exists from now on. */
    (void)api_metrics_block(d.id);
    return 0;
}

int api_decode_drive_update(struct api_resources *r, const char *path_id, const json_t *body,
                            struct api_drive_update *u, struct api_err *e)
{
    struct api_drive *d;
    const char *id;
    int has_rl;

    memset(u, 0, sizeof(*u));
    if (api_id_check("drive", path_id, e) < 0)
        return -1;
    if (api_json_only_fields(body, "", partial_drive_fields, e) < 0)
        return -1;
    if (body_id(body, "drive_id", "drive", path_id, &id, e) < 0)
        return -1;
    if (api_json_string(body, "", "path_on_host", false, &u->path, e) < 0)
        return -1;
    has_rl = decode_limiter(body, "rate_limiter", &u->rate_limiter, e);
    if (has_rl < 0)
        return -1;
    u->has_rate_limiter = has_rl > 0;
    d = find_drive(r, id);
    if (!d)
        return api_errf(e, "Drive config error: " DRIVE_PATCH "drive \"%s\" does not exist.%s", id,
                        DRIVE_PATCH_TAIL);
    /* A virtio-blk PATCH must change something (Firecracker's words). */
    if (!u->path && !u->has_rate_limiter)
        return api_errf(e,
                        "Drive config error: " DRIVE_PATCH
                        "Running method expected different backend." DRIVE_PATCH_TAIL
                        " (PATCH /drives/%s names neither path_on_host nor rate_limiter)",
                        id);
    if (u->path &&
        check_host_file(DRIVE_PATCH, DRIVE_PATCH_TAIL, id, u->path, !d->is_read_only, e) < 0)
        return -1;
    u->id = d->id;
    return 0;
}

int api_apply_drive_update(struct api_resources *r, const struct api_drive_update *u,
                           struct api_err *e)
{
    struct api_drive *d = find_drive(r, u->id);

    if (!d)
        return api_errf(e, "drive \"%s\" does not exist", u->id);
    if (u->path) {
        char *p = strdup(u->path);
        if (!p)
            return api_errf(e, "out of memory");
        free(d->path_on_host);
        d->path_on_host = p;
    }
    if (u->has_rate_limiter)
        d->rate_limiter = u->rate_limiter;
    return 0;
}

static json_t *drive_json(const struct api_drive *d)
{
    return json_pack("{s:s, s:o, s:b, s:s, s:b, s:s, s:o, s:s, s:n}", "drive_id", d->id, "partuuid",
                     str_or_null(d->partuuid), "is_root_device", d->is_root_device, "cache_type",
                     cache_types[d->cache_type], "is_read_only", d->is_read_only, "path_on_host",
                     d->path_on_host, "rate_limiter", limiter_json(&d->rate_limiter), "io_engine",
                     io_engines[d->io_engine], "socket");
}

/* ---- network interfaces ---- */

static const char *const net_fields[] = {
    "iface_id", "host_dev_name", "guest_mac", "mtu", "rx_rate_limiter", "tx_rate_limiter", NULL,
};
static const char *const partial_net_fields[] = {"iface_id", "rx_rate_limiter", "tx_rate_limiter",
                                                 NULL};

static struct api_net *find_net(struct api_resources *r, const char *id)
{
    for (unsigned i = 0; i < r->nnets; i++)
        if (strcmp(r->nets[i].id, id) == 0)
            return &r->nets[i];
    return NULL;
}

static bool mac_valid(const char *s)
{
    static const char hex[] = "0123456789abcdefABCDEF";

    if (strlen(s) != 17)
        return false;
    for (int i = 0; i < 17; i++) {
        if (i % 3 == 2) {
            if (s[i] != ':')
                return false;
        } else if (!strchr(hex, s[i])) {
            return false;
        }
    }
    return true;
}

int api_put_net(struct api_resources *r, const char *path_id, const json_t *body, struct api_err *e)
{
    struct api_net n, *slot;
    const char *id, *dev, *mac = NULL;
    uint64_t mtu = 0;

    memset(&n, 0, sizeof(n));
    if (path_id && api_id_check("network interface", path_id, e) < 0)
        return -1;
    if (api_json_only_fields(body, "", net_fields, e) < 0)
        return -1;
    if (body_id(body, "iface_id", "network interface", path_id, &id, e) < 0)
        return -1;
    if (api_json_string(body, "", "host_dev_name", true, &dev, e) < 0)
        return -1;
    if (api_json_string(body, "", "guest_mac", false, &mac, e) < 0)
        return -1;
    if (api_json_uint(body, "", "mtu", false, 68, 65535, &mtu, e) < 0)
        return -1;
    if (decode_limiter(body, "rx_rate_limiter", &n.rx_rate_limiter, e) < 0)
        return -1;
    if (decode_limiter(body, "tx_rate_limiter", &n.tx_rate_limiter, e) < 0)
        return -1;
    if (!dev[0] || strlen(dev) >= sizeof(n.host_dev_name))
        return api_errf(e, "field \"host_dev_name\" must be 1 to %zu characters",
                        sizeof(n.host_dev_name) - 1);
    if (mac && !mac_valid(mac))
        return api_errf(e, "field \"guest_mac\" must be a MAC address such as "
                           "06:00:AC:10:00:02");
    for (unsigned i = 0; i < r->nnets; i++) {
        const struct api_net *o = &r->nets[i];
        if (strcmp(o->id, id) == 0)
            continue;
        if (strcmp(o->host_dev_name, dev) == 0)
            return api_errf(e,
                            "Network config error: Could not create the network device: host "
                            "device %s is already used by network interface \"%s\"",
                            dev, o->id);
        if (mac && strcasecmp(o->guest_mac, mac) == 0)
            return api_errf(e,
                            "Network config error: The MAC address is already in use: %s (by "
                            "network interface \"%s\")",
                            mac, o->id);
    }
    slot = find_net(r, id);
    if (!slot && device_room(r, "network interface", id, e) < 0)
        return -1;

    snprintf(n.id, sizeof(n.id), "%s", id);
    snprintf(n.host_dev_name, sizeof(n.host_dev_name), "%s", dev);
    if (mac) /* Firecracker writes MAC addresses in lower case */
        for (int i = 0; i < 17; i++)
            n.guest_mac[i] = (char)tolower((unsigned char)mac[i]);
    n.mtu = (uint32_t)mtu;
    if (!slot)
        slot = &r->nets[r->nnets++];
    *slot = n;
    /* Firecracker's "net_<iface_id>" group exists from now on. */
    (void)api_metrics_net(n.id);
    return 0;
}

int api_decode_net_update(struct api_resources *r, const char *path_id, const json_t *body,
                          struct api_net_update *u, struct api_err *e)
{
    struct api_net *n;
    const char *id;
    int has_rx, has_tx;

    memset(u, 0, sizeof(*u));
    if (api_id_check("network interface", path_id, e) < 0)
        return -1;
    if (api_json_only_fields(body, "", partial_net_fields, e) < 0)
        return -1;
    if (body_id(body, "iface_id", "network interface", path_id, &id, e) < 0)
        return -1;
    has_rx = decode_limiter(body, "rx_rate_limiter", &u->rx, e);
    if (has_rx < 0)
        return -1;
    has_tx = decode_limiter(body, "tx_rate_limiter", &u->tx, e);
    if (has_tx < 0)
        return -1;
    n = find_net(r, id);
    if (!n)
        return api_errf(e,
                        "Network config error: Unable to update the net device: network "
                        "interface \"%s\" does not exist",
                        id);
    u->id = n->id;
    u->has_rx = has_rx > 0;
    u->has_tx = has_tx > 0;
    return 0;
}

int api_apply_net_update(struct api_resources *r, const struct api_net_update *u, struct api_err *e)
{
    struct api_net *n = find_net(r, u->id);

    if (!n)
        return api_errf(e, "network interface \"%s\" does not exist", u->id);
    if (u->has_rx)
        n->rx_rate_limiter = u->rx;
    if (u->has_tx)
        n->tx_rate_limiter = u->tx;
    return 0;
}

int api_patch_net(struct api_resources *r, const char *path_id, const json_t *body,
                  struct api_err *e)
{
    struct api_net_update u;

    if (api_decode_net_update(r, path_id, body, &u, e) < 0)
        return -1;
    return api_apply_net_update(r, &u, e);
}

static json_t *net_json(const struct api_net *n)
{
    return json_pack(
        "{s:s, s:s, s:o, s:o, s:o, s:o}", "iface_id", n->id, "host_dev_name", n->host_dev_name,
        "guest_mac", n->guest_mac[0] ? json_string(n->guest_mac) : json_null(), "mtu",
        n->mtu ? json_integer(n->mtu) : json_null(), "rx_rate_limiter",
        limiter_json(&n->rx_rate_limiter), "tx_rate_limiter", limiter_json(&n->tx_rate_limiter));
}

/* ---- vsock ---- */

/* ember_buffer_bytes is ember's own (Firecracker's Vsock has no such field):
 * see api-socket/README.md. */
static const char *const vsock_fields[] = {"guest_cid", "uds_path", "vsock_id",
                                           "ember_buffer_bytes", NULL};

int api_put_vsock(struct api_resources *r, const json_t *body, struct api_err *e)
{
    struct api_vsock v;
    const char *uds, *vid = NULL;
    uint64_t cid, buffer = 0;

    memset(&v, 0, sizeof(v));
    if (api_json_only_fields(body, "", vsock_fields, e) < 0)
        return -1;
    /* CIDs 0-2 are the hypervisor, local and host (vsock(7)); CIDs are u32. */
    if (api_json_uint(body, "", "guest_cid", true, 3, UINT32_MAX, &cid, e) < 0)
        return -1;
    if (api_json_string(body, "", "uds_path", true, &uds, e) < 0)
        return -1;
    if (api_json_string(body, "", "vsock_id", false, &vid, e) < 0)
        return -1;
    if (api_json_uint(body, "", "ember_buffer_bytes", false, VSOCK_BUFFER_BYTES_MIN,
                      VSOCK_BUFFER_BYTES_MAX, &buffer, e) < 0)
        return -1;
    if (!uds[0] || strlen(uds) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return api_errf(e, "field \"uds_path\" must be 1 to %zu bytes",
                        sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    if (!r->vsock.set && device_room(r, "vsock", "vsock", e) < 0)
        return -1;
    v.set = true;
    v.guest_cid = (uint32_t)cid;
    v.buffer_bytes = buffer;
    v.uds_path = strdup(uds);
    v.vsock_id = dup_or_null(vid);
    if (!v.uds_path || (vid && !v.vsock_id)) {
        vsock_release(&v);
        return api_errf(e, "out of memory");
    }
    vsock_release(&r->vsock);
    r->vsock = v;
    return 0;
}

/* ---- serial ---- */

static const char *const serial_fields[] = {"serial_out_path", "rate_limiter", NULL};

int api_put_serial(struct api_resources *r, const json_t *body, struct api_err *e)
{
    const char *path = NULL;
    json_t *rl;
    char *p;
    int rc;

    if (api_json_only_fields(body, "", serial_fields, e) < 0)
        return -1;
    if (api_json_string(body, "", "serial_out_path", false, &path, e) < 0)
        return -1;
    rc = api_json_object(body, "", "rate_limiter", false, &rl, e);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return api_errf(e, "field \"rate_limiter\": ember does not offer serial rate limiting");
    if (path && !path[0])
        return api_errf(e, "field \"serial_out_path\" must not be empty");
    p = dup_or_null(path);
    if (path && !p)
        return api_errf(e, "out of memory");
    free(r->serial.serial_out_path);
    r->serial.serial_out_path = p;
    r->serial.set = true;
    return 0;
}

/* ---- logger ---- */

static const char *const logger_fields[] = {"level",           "log_path", "show_level",
                                            "show_log_origin", "module",   NULL};
static const char *const level_names[] = {"Off", "Error", "Warning", "Info", "Debug", "Trace"};

int api_log_level_parse(const char *s, enum api_log_level *out)
{
    for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum api_log_level)i;
            return 0;
        }
    return -1;
}

const char *api_log_level_name(enum api_log_level l)
{
    if ((unsigned)l < sizeof(level_names) / sizeof(level_names[0]))
        return level_names[l];
    return "Info";
}

int api_decode_logger(const json_t *body, struct api_logger_cfg *out, struct api_err *e)
{
    const char *level = NULL, *path = NULL, *module = NULL;
    struct api_logger_cfg c;

    memset(&c, 0, sizeof(c));
    c.level = API_LOG_INFO;
    if (api_json_only_fields(body, "", logger_fields, e) < 0)
        return -1;
    if (api_json_string(body, "", "level", false, &level, e) < 0)
        return -1;
    if (level && api_log_level_parse(level, &c.level) < 0)
        return api_errf(e, "field \"level\" must be one of: Error, Warning, Info, Debug, Trace, "
                           "Off");
    if (api_json_string(body, "", "log_path", false, &path, e) < 0)
        return -1;
    if (path && !path[0])
        return api_errf(e, "field \"log_path\" must not be empty");
    if (api_json_bool(body, "", "show_level", false, &c.show_level, e) < 0)
        return -1;
    if (api_json_bool(body, "", "show_log_origin", false, &c.show_log_origin, e) < 0)
        return -1;
    if (api_json_string(body, "", "module", false, &module, e) < 0)
        return -1;
    c.set = true;
    c.log_path = dup_or_null(path);
    c.module = dup_or_null(module);
    if ((path && !c.log_path) || (module && !c.module)) {
        api_logger_cfg_release(&c);
        return api_errf(e, "out of memory");
    }
    *out = c;
    return 0;
}

/* ---- metrics ---- */

int api_decode_metrics(const json_t *body, struct api_metrics_cfg *out, struct api_err *e)
{
    struct api_metrics_cfg c;
    const char *path, *key;
    json_t *props = NULL, *val;
    char name[160];

    memset(&c, 0, sizeof(c));
    /* Unknown fields are ignored: Firecracker's MetricsConfig does not deny
     * them, and tools send fields of newer versions. */
    if (api_json_string(body, "", "metrics_path", true, &path, e) < 0)
        return -1;
    if (!path[0])
        return api_errf(e, "field \"metrics_path\" must not be empty");
    if (api_json_bool(body, "", "emit_id", false, &c.emit_id, e) < 0)
        return -1;
    if (api_json_object(body, "", "properties", false, &props, e) < 0)
        return -1;
    if (props)
        json_object_foreach(props, key, val)
        {
            if (!json_is_string(val))
                return api_errf(e, "field \"%s\" must be a string",
                                api_json_field_name(name, sizeof(name), "properties", key));
        }
    c.set = true;
    c.metrics_path = strdup(path);
    if (!c.metrics_path)
        return api_errf(e, "out of memory");
    c.properties = props ? json_deep_copy(props) : NULL;
    *out = c;
    return 0;
}

/* ---- GET /vm/config ---- */

/* The 13 keys of Firecracker's VmmConfig (resources.rs), in its order, null
 * or [] for what is not configured. As in Firecracker, "logger" and
 * "metrics" are always null (they are not part of the VM), the root drive
 * is listed first, and the deprecated vsock_id is not written back. What
 * ember does not offer (balloon, cpu-config, entropy, pmem, memory hotplug)
 * is null or []. */
json_t *api_vm_config_json(const struct api_resources *r)
{
    json_t *o = json_object(), *arr, *boot, *vsock = json_null();

    if (!o)
        return NULL;
    json_object_set_new(o, "balloon", json_null());
    arr = json_array();
    for (int pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < r->ndrives; i++)
            if (r->drives[i].is_root_device == (pass == 0))
                json_array_append_new(arr, drive_json(&r->drives[i]));
    json_object_set_new(o, "drives", arr);
    boot = json_pack("{s:s, s:n, s:o}", "kernel_image_path",
                     r->boot.kernel_image_path ? r->boot.kernel_image_path : "", "initrd_path",
                     "boot_args", str_or_null(r->boot.boot_args));
    json_object_set_new(o, "boot-source", boot);
    json_object_set_new(o, "cpu-config", json_null());
    json_object_set_new(o, "logger", json_null());
    json_object_set_new(o, "machine-config", api_machine_config_json(r));
    json_object_set_new(o, "metrics", json_null());
    json_t *mmds = api_mmds_config_json(&r->mmds);
    json_object_set_new(o, "mmds-config", mmds ? mmds : json_null());
    arr = json_array();
    for (unsigned i = 0; i < r->nnets; i++)
        json_array_append_new(arr, net_json(&r->nets[i]));
    json_object_set_new(o, "network-interfaces", arr);
    if (r->vsock.set) {
        vsock = json_pack("{s:I, s:s}", "guest_cid", (json_int_t)r->vsock.guest_cid, "uds_path",
                          r->vsock.uds_path);
        if (vsock && r->vsock.buffer_bytes) /* ember's own field, only when set */
            json_object_set_new(vsock, "ember_buffer_bytes",
                                json_integer((json_int_t)r->vsock.buffer_bytes));
    }
    json_object_set_new(o, "vsock", vsock);
    json_object_set_new(o, "entropy", json_null());
    json_object_set_new(o, "pmem", json_array());
    json_object_set_new(o, "memory-hotplug", json_null());
    return o;
}
