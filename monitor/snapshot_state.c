/* snapshot_state.c: the state file in CBOR, both ways (see snapshot_state.h).
 *
 * The encoder builds a libcbor item tree and serialises it; the decoder
 * loads the outer array, checks magic, version and checksum, then loads the
 * body and reads every field through typed accessors that refuse a missing
 * key, a wrong type, a byte string of the wrong size or a number out of
 * range, naming the field.
 */
#include "monitor/snapshot_state.h"

#include <cbor.h>
/* The low-level SHA-256 interface: OpenSSL 3's EVP path loads providers
 * and its configuration file on first use (~1 ms), which a restore cannot
 * afford; this one computes the same digest (with SHA-NI) and loads
 * nothing. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- encoding ---- */

struct enc {
    bool oom;
};

static cbor_item_t *map_new(struct enc *e, size_t n)
{
    cbor_item_t *m = cbor_new_definite_map(n);
    if (!m)
        e->oom = true;
    return m;
}

/* Adds key = value to map and drops our reference to value. */
static void put(struct enc *e, cbor_item_t *map, const char *key, cbor_item_t *value)
{
    cbor_item_t *k = cbor_build_string(key);

    if (!map || !k || !value ||
        !cbor_map_add(map, (struct cbor_pair){.key = cbor_move(k), .value = cbor_move(value)})) {
        e->oom = true;
        if (k && !map)
            cbor_decref(&k);
        if (value && !map)
            cbor_decref(&value);
    }
}

static void put_u64(struct enc *e, cbor_item_t *map, const char *key, uint64_t v)
{
    put(e, map, key, cbor_build_uint64(v));
}

static void put_bool(struct enc *e, cbor_item_t *map, const char *key, bool v)
{
    put(e, map, key, cbor_build_bool(v));
}

static void put_bytes(struct enc *e, cbor_item_t *map, const char *key, const void *p, size_t n)
{
    put(e, map, key, cbor_build_bytestring(p, n));
}

static void put_str(struct enc *e, cbor_item_t *map, const char *key, const char *s)
{
    put(e, map, key, cbor_build_string(s ? s : ""));
}

static void push(struct enc *e, cbor_item_t *arr, cbor_item_t *item)
{
    if (!arr || !item || !cbor_array_push(arr, cbor_move(item)))
        e->oom = true;
}

static cbor_item_t *enc_vcpu(struct enc *e, const struct snapshot_vcpu *c)
{
    cbor_item_t *m = map_new(e, 13);
    cbor_item_t *msrs = cbor_new_definite_array(c->nmsrs);

    put_bytes(e, m, "regs", &c->regs, sizeof(c->regs));
    put_bytes(e, m, "sregs", &c->sregs, sizeof(c->sregs));
    if (c->has_xsave)
        put_bytes(e, m, "xsave", &c->xsave, sizeof(c->xsave));
    else
        put_bytes(e, m, "fpu", &c->fpu, sizeof(c->fpu));
    if (c->has_xcrs)
        put_bytes(e, m, "xcrs", &c->xcrs, sizeof(c->xcrs));
    if (c->has_lapic)
        put_bytes(e, m, "lapic", &c->lapic, sizeof(c->lapic));
    put_bytes(e, m, "events", &c->events, sizeof(c->events));
    put_u64(e, m, "mp_state", c->mp_state.mp_state);
    put_bytes(e, m, "debugregs", &c->debugregs, sizeof(c->debugregs));
    for (uint32_t i = 0; i < c->nmsrs; i++) {
        cbor_item_t *pair = cbor_new_definite_array(2);
        push(e, pair, cbor_build_uint32(c->msrs[i].index));
        push(e, pair, cbor_build_uint64(c->msrs[i].data));
        push(e, msrs, pair);
    }
    put(e, m, "msrs", msrs);
    put_bytes(e, m, "cpuid", c->cpuid, c->ncpuid * sizeof(c->cpuid[0]));
    return m;
}

static cbor_item_t *enc_vm(struct enc *e, const struct snapshot_vm *v)
{
    cbor_item_t *m = map_new(e, 7);

    put_bool(e, m, "irqchip", v->irqchip);
    if (v->irqchip) {
        put_bytes(e, m, "pic_master", &v->pic_master, sizeof(v->pic_master));
        put_bytes(e, m, "pic_slave", &v->pic_slave, sizeof(v->pic_slave));
        put_bytes(e, m, "ioapic", &v->ioapic, sizeof(v->ioapic));
    }
    if (v->has_pit)
        put_bytes(e, m, "pit", &v->pit, sizeof(v->pit));
    put_bytes(e, m, "clock", &v->clock, sizeof(v->clock));
    put_u64(e, m, "tsc_khz", v->tsc_khz);
    return m;
}

static cbor_item_t *enc_device(struct enc *e, const struct snapshot_device *d)
{
    cbor_item_t *m = map_new(e, 12);
    cbor_item_t *qs = cbor_new_definite_array(d->t.nqueues);

    put_u64(e, m, "device_id", d->device_id);
    put_u64(e, m, "base", d->base);
    put_u64(e, m, "gsi", d->gsi);
    put_u64(e, m, "status", d->t.status);
    put_u64(e, m, "dev_feat_sel", d->t.dev_feat_sel);
    put_u64(e, m, "drv_feat_sel", d->t.drv_feat_sel);
    put_u64(e, m, "queue_sel", d->t.queue_sel);
    put_u64(e, m, "drv_features", d->t.drv_features);
    put_u64(e, m, "int_status", d->t.int_status);
    put_u64(e, m, "config_gen", d->t.config_gen);
    for (uint32_t i = 0; i < d->t.nqueues; i++) {
        const struct vq *q = &d->t.queues[i];
        cbor_item_t *qm = map_new(e, 11);
        put_u64(e, qm, "size", q->size);
        put_bool(e, qm, "ready", q->ready);
        put_bool(e, qm, "event_idx", q->event_idx);
        put_bool(e, qm, "indirect", q->indirect);
        put_bool(e, qm, "broken", q->broken);
        put_u64(e, qm, "desc", q->desc_gpa);
        put_u64(e, qm, "avail", q->avail_gpa);
        put_u64(e, qm, "used", q->used_gpa);
        put_u64(e, qm, "last_avail", q->last_avail);
        put_u64(e, qm, "used_idx", q->used_idx);
        put_u64(e, qm, "signalled", q->signalled);
        push(e, qs, qm);
    }
    put(e, m, "queues", qs);
    put_bytes(e, m, "device", d->t.blob, d->t.blob_len);
    return m;
}

static cbor_item_t *enc_config(struct enc *e, const struct snapshot_state *st)
{
    cbor_item_t *m = map_new(e, 3);
    cbor_item_t *drives = cbor_new_definite_array(st->ndrives);

    for (uint32_t i = 0; i < st->ndrives; i++) {
        const struct snapshot_drive *d = &st->drives[i];
        cbor_item_t *dm = map_new(e, 5);
        put_str(e, dm, "id", d->id);
        put_str(e, dm, "path", d->path);
        put_bool(e, dm, "read_only", d->read_only);
        put_bool(e, dm, "writeback", d->writeback);
        put_bool(e, dm, "async", d->async);
        push(e, drives, dm);
    }
    put(e, m, "drives", drives);
    cbor_item_t *nets = cbor_new_definite_array(st->nnets);
    for (uint32_t i = 0; i < st->nnets; i++) {
        const struct snapshot_net *n = &st->nets[i];
        cbor_item_t *nm = map_new(e, 5);
        put_str(e, nm, "id", n->id);
        put_str(e, nm, "host_dev_name", n->host_dev_name);
        if (n->has_mac)
            put_bytes(e, nm, "mac", n->mac, sizeof(n->mac));
        put_u64(e, nm, "mtu", n->mtu);
        push(e, nets, nm);
    }
    put(e, m, "nets", nets);
    if (st->has_vsock) {
        cbor_item_t *vm = map_new(e, 2);
        put_u64(e, vm, "guest_cid", st->vsock_cid);
        put_str(e, vm, "uds_path", st->vsock_uds_path);
        put(e, m, "vsock", vm);
    }
    return m;
}

static cbor_item_t *enc_body(struct enc *e, const struct snapshot_state *st)
{
    cbor_item_t *m = map_new(e, 9);
    cbor_item_t *devs = cbor_new_definite_array(st->ndevices);

    put_str(e, m, "snapshot_type", st->type == SNAPSHOT_DIFF ? "Diff" : "Full");
    put_u64(e, m, "mem_size", st->mem_size);
    put_bytes(e, m, "mem_sha256", st->mem_sha256, sizeof(st->mem_sha256));
    put_u64(e, m, "boot_kind", st->boot_kind);
    put_u64(e, m, "generation", st->generation);
    put(e, m, "vcpu", enc_vcpu(e, &st->vcpu));
    put(e, m, "vm", enc_vm(e, &st->vm));
    for (uint32_t i = 0; i < st->ndevices; i++)
        push(e, devs, enc_device(e, &st->devices[i]));
    put(e, m, "devices", devs);
    put(e, m, "config", enc_config(e, st));
    return m;
}

void snapshot_sha256(const void *p, size_t n, uint8_t out[32])
{
    SHA256_CTX c;

    SHA256_Init(&c);
    SHA256_Update(&c, p, n);
    SHA256_Final(out, &c);
}

uint8_t *snapshot_state_encode(const struct snapshot_state *st, size_t *len)
{
    struct enc e = {0};
    cbor_item_t *body = enc_body(&e, st), *outer = NULL;
    unsigned char *body_buf = NULL, *out = NULL;
    size_t body_cap = 0, body_len = 0, out_cap = 0;
    uint8_t digest[SHA256_DIGEST_LENGTH];

    if (!e.oom && body)
        body_len = cbor_serialize_alloc(body, &body_buf, &body_cap);
    if (body)
        cbor_decref(&body);
    if (e.oom || body_len == 0)
        goto out;
    snapshot_sha256(body_buf, body_len, digest);
    outer = cbor_new_definite_array(4);
    push(&e, outer, cbor_build_string(SNAPSHOT_MAGIC));
    push(&e, outer, cbor_build_uint8(SNAPSHOT_FORMAT_VERSION));
    push(&e, outer, cbor_build_bytestring(body_buf, body_len));
    push(&e, outer, cbor_build_bytestring(digest, sizeof(digest)));
    if (!e.oom) {
        *len = cbor_serialize_alloc(outer, &out, &out_cap);
        if (*len == 0) {
            free(out);
            out = NULL;
        }
    }
out:
    if (outer)
        cbor_decref(&outer);
    free(body_buf);
    return out;
}

/* ---- decoding ---- */

struct dec {
    char *why;
    size_t whylen;
    bool failed;
};

static void bad(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bad(struct dec *d, const char *fmt, ...)
{
    va_list ap;
    char what[200];

    if (d->failed)
        return;
    d->failed = true;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(d->why, d->whylen, "corrupted: %s", what);
}

static bool text_is(const cbor_item_t *it, const char *s)
{
    size_t n = strlen(s);

    return cbor_isa_string(it) && cbor_string_is_definite(it) && cbor_string_length(it) == n &&
           memcmp(cbor_string_handle(it), s, n) == 0;
}

/* The value of key in map m, or NULL (and the failure recorded if required). */
static cbor_item_t *get(struct dec *d, const cbor_item_t *m, const char *where, const char *key,
                        bool required)
{
    if (d->failed)
        return NULL;
    if (!m || !cbor_isa_map(m) || !cbor_map_is_definite(m)) {
        bad(d, "%s is not a map", where);
        return NULL;
    }
    struct cbor_pair *p = cbor_map_handle(m);
    for (size_t i = 0; i < cbor_map_size(m); i++)
        if (text_is(p[i].key, key))
            return p[i].value;
    if (required)
        bad(d, "%s.%s is missing", where, key);
    return NULL;
}

static uint64_t get_uint(struct dec *d, const cbor_item_t *m, const char *where, const char *key,
                         uint64_t max)
{
    cbor_item_t *it = get(d, m, where, key, true);
    uint64_t v;

    if (!it)
        return 0;
    if (!cbor_isa_uint(it)) {
        bad(d, "%s.%s is not an unsigned integer", where, key);
        return 0;
    }
    v = cbor_get_int(it);
    if (v > max) {
        bad(d, "%s.%s is out of range (%llu)", where, key, (unsigned long long)v);
        return 0;
    }
    return v;
}

static bool get_bool(struct dec *d, const cbor_item_t *m, const char *where, const char *key)
{
    cbor_item_t *it = get(d, m, where, key, true);

    if (!it)
        return false;
    if (!cbor_isa_float_ctrl(it) || !cbor_float_ctrl_is_ctrl(it) ||
        (cbor_ctrl_value(it) != CBOR_CTRL_TRUE && cbor_ctrl_value(it) != CBOR_CTRL_FALSE)) {
        bad(d, "%s.%s is not a boolean", where, key);
        return false;
    }
    return cbor_get_bool(it);
}

/* A byte string of exactly n bytes (or, with n_max, at most n_max: *got). */
static bool get_bytes(struct dec *d, const cbor_item_t *m, const char *where, const char *key,
                      void *dst, size_t n, bool required)
{
    cbor_item_t *it = get(d, m, where, key, required);

    if (!it)
        return false;
    if (!cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it)) {
        bad(d, "%s.%s is not a byte string", where, key);
        return false;
    }
    if (cbor_bytestring_length(it) != n) {
        bad(d, "%s.%s is %zu bytes, expected %zu", where, key, cbor_bytestring_length(it), n);
        return false;
    }
    memcpy(dst, cbor_bytestring_handle(it), n);
    return true;
}

static size_t get_bytes_upto(struct dec *d, const cbor_item_t *m, const char *where,
                             const char *key, void *dst, size_t max)
{
    cbor_item_t *it = get(d, m, where, key, true);
    size_t n;

    if (!it)
        return 0;
    if (!cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it)) {
        bad(d, "%s.%s is not a byte string", where, key);
        return 0;
    }
    n = cbor_bytestring_length(it);
    if (n > max) {
        bad(d, "%s.%s is %zu bytes, at most %zu allowed", where, key, n, max);
        return 0;
    }
    memcpy(dst, cbor_bytestring_handle(it), n);
    return n;
}

/* A text string of at most max bytes, without NUL, copied into a new buffer. */
static char *get_str(struct dec *d, const cbor_item_t *m, const char *where, const char *key,
                     size_t max)
{
    cbor_item_t *it = get(d, m, where, key, true);
    size_t n;
    char *s;

    if (!it)
        return NULL;
    if (!cbor_isa_string(it) || !cbor_string_is_definite(it)) {
        bad(d, "%s.%s is not a text string", where, key);
        return NULL;
    }
    n = cbor_string_length(it);
    if (n > max || memchr(cbor_string_handle(it), 0, n)) {
        bad(d, "%s.%s is too long or holds a NUL", where, key);
        return NULL;
    }
    s = malloc(n + 1);
    if (!s) {
        bad(d, "out of memory");
        return NULL;
    }
    memcpy(s, cbor_string_handle(it), n);
    s[n] = '\0';
    return s;
}

static cbor_item_t *get_array(struct dec *d, const cbor_item_t *m, const char *where,
                              const char *key, size_t max)
{
    cbor_item_t *it = get(d, m, where, key, true);

    if (!it)
        return NULL;
    if (!cbor_isa_array(it) || !cbor_array_is_definite(it)) {
        bad(d, "%s.%s is not an array", where, key);
        return NULL;
    }
    if (cbor_array_size(it) > max) {
        bad(d, "%s.%s has %zu entries, at most %zu allowed", where, key, cbor_array_size(it), max);
        return NULL;
    }
    return it;
}

static void dec_vcpu(struct dec *d, const cbor_item_t *m, struct snapshot_vcpu *c)
{
    static const char w[] = "vcpu";
    cbor_item_t *msrs;
    size_t n;

    get_bytes(d, m, w, "regs", &c->regs, sizeof(c->regs), true);
    get_bytes(d, m, w, "sregs", &c->sregs, sizeof(c->sregs), true);
    c->has_xsave = get_bytes(d, m, w, "xsave", &c->xsave, sizeof(c->xsave), false);
    if (!c->has_xsave)
        get_bytes(d, m, w, "fpu", &c->fpu, sizeof(c->fpu), true);
    c->has_xcrs = get_bytes(d, m, w, "xcrs", &c->xcrs, sizeof(c->xcrs), false);
    c->has_lapic = get_bytes(d, m, w, "lapic", &c->lapic, sizeof(c->lapic), false);
    get_bytes(d, m, w, "events", &c->events, sizeof(c->events), true);
    c->mp_state.mp_state = (uint32_t)get_uint(d, m, w, "mp_state", KVM_MP_STATE_AP_RESET_HOLD);
    get_bytes(d, m, w, "debugregs", &c->debugregs, sizeof(c->debugregs), true);
    msrs = get_array(d, m, w, "msrs", SNAPSHOT_MSRS_MAX);
    for (size_t i = 0; msrs && !d->failed && i < cbor_array_size(msrs); i++) {
        cbor_item_t *pair = cbor_array_handle(msrs)[i];
        if (!cbor_isa_array(pair) || cbor_array_size(pair) != 2 ||
            !cbor_isa_uint(cbor_array_handle(pair)[0]) ||
            !cbor_isa_uint(cbor_array_handle(pair)[1]) ||
            cbor_get_int(cbor_array_handle(pair)[0]) > UINT32_MAX) {
            bad(d, "vcpu.msrs[%zu] is not [index, value]", i);
            return;
        }
        c->msrs[i].index = (uint32_t)cbor_get_int(cbor_array_handle(pair)[0]);
        c->msrs[i].data = cbor_get_int(cbor_array_handle(pair)[1]);
        c->nmsrs = (uint32_t)i + 1;
    }
    n = get_bytes_upto(d, m, w, "cpuid", c->cpuid, sizeof(c->cpuid));
    if (!d->failed && n % sizeof(c->cpuid[0]) != 0)
        bad(d, "vcpu.cpuid is not a whole number of entries");
    c->ncpuid = (uint32_t)(n / sizeof(c->cpuid[0]));
}

static void dec_vm(struct dec *d, const cbor_item_t *m, struct snapshot_vm *v)
{
    static const char w[] = "vm";

    v->irqchip = get_bool(d, m, w, "irqchip");
    if (v->irqchip) {
        get_bytes(d, m, w, "pic_master", &v->pic_master, sizeof(v->pic_master), true);
        get_bytes(d, m, w, "pic_slave", &v->pic_slave, sizeof(v->pic_slave), true);
        get_bytes(d, m, w, "ioapic", &v->ioapic, sizeof(v->ioapic), true);
        if (!d->failed && (v->pic_master.chip_id != KVM_IRQCHIP_PIC_MASTER ||
                           v->pic_slave.chip_id != KVM_IRQCHIP_PIC_SLAVE ||
                           v->ioapic.chip_id != KVM_IRQCHIP_IOAPIC))
            bad(d, "vm: irqchip ids do not match their chips");
    }
    v->has_pit = get_bytes(d, m, w, "pit", &v->pit, sizeof(v->pit), false);
    get_bytes(d, m, w, "clock", &v->clock, sizeof(v->clock), true);
    v->tsc_khz = get_uint(d, m, w, "tsc_khz", UINT32_MAX);
}

static void dec_device(struct dec *d, const cbor_item_t *m, struct snapshot_device *dv,
                       unsigned idx)
{
    char w[32];
    cbor_item_t *qs;

    snprintf(w, sizeof(w), "devices[%u]", idx);
    dv->device_id = (uint32_t)get_uint(d, m, w, "device_id", 64);
    dv->base = get_uint(d, m, w, "base", UINT32_MAX);
    dv->gsi = (uint32_t)get_uint(d, m, w, "gsi", 23);
    dv->t.status = (uint32_t)get_uint(d, m, w, "status", 0xff);
    dv->t.dev_feat_sel = (uint32_t)get_uint(d, m, w, "dev_feat_sel", UINT32_MAX);
    dv->t.drv_feat_sel = (uint32_t)get_uint(d, m, w, "drv_feat_sel", UINT32_MAX);
    dv->t.queue_sel = (uint32_t)get_uint(d, m, w, "queue_sel", UINT32_MAX);
    dv->t.drv_features = get_uint(d, m, w, "drv_features", UINT64_MAX);
    dv->t.int_status = (uint32_t)get_uint(d, m, w, "int_status", 3);
    dv->t.config_gen = (uint32_t)get_uint(d, m, w, "config_gen", UINT32_MAX);
    qs = get_array(d, m, w, "queues", VIRTIO_MMIO_QUEUES_MAX);
    for (size_t i = 0; qs && !d->failed && i < cbor_array_size(qs); i++) {
        const cbor_item_t *qm = cbor_array_handle(qs)[i];
        struct vq *q = &dv->t.queues[i];
        char qw[64];
        snprintf(qw, sizeof(qw), "%s.queues[%u]", w, (unsigned)i);
        q->size = (uint16_t)get_uint(d, qm, qw, "size", VQ_SIZE_MAX);
        q->ready = get_bool(d, qm, qw, "ready");
        q->event_idx = get_bool(d, qm, qw, "event_idx");
        q->indirect = get_bool(d, qm, qw, "indirect");
        q->broken = get_bool(d, qm, qw, "broken");
        q->desc_gpa = get_uint(d, qm, qw, "desc", UINT64_MAX);
        q->avail_gpa = get_uint(d, qm, qw, "avail", UINT64_MAX);
        q->used_gpa = get_uint(d, qm, qw, "used", UINT64_MAX);
        q->last_avail = (uint16_t)get_uint(d, qm, qw, "last_avail", UINT16_MAX);
        q->used_idx = (uint16_t)get_uint(d, qm, qw, "used_idx", UINT16_MAX);
        q->signalled = (uint16_t)get_uint(d, qm, qw, "signalled", UINT16_MAX);
        dv->t.nqueues = (uint32_t)i + 1;
    }
    dv->t.blob_len = (uint32_t)get_bytes_upto(d, m, w, "device", dv->t.blob, sizeof(dv->t.blob));
}

static void dec_config(struct dec *d, const cbor_item_t *m, struct snapshot_state *st)
{
    cbor_item_t *drives = get_array(d, m, "config", "drives", VM_DRIVES_MAX), *vs;

    for (size_t i = 0; drives && !d->failed && i < cbor_array_size(drives); i++) {
        const cbor_item_t *dm = cbor_array_handle(drives)[i];
        struct snapshot_drive *dr = &st->drives[i];
        char w[48];
        char *id;
        snprintf(w, sizeof(w), "config.drives[%u]", (unsigned)i);
        id = get_str(d, dm, w, "id", BLK_ID_MAX);
        if (id) {
            memcpy(dr->id, id, strlen(id) + 1);
            free(id);
        }
        dr->path = get_str(d, dm, w, "path", SNAPSHOT_PATH_MAX);
        dr->read_only = get_bool(d, dm, w, "read_only");
        dr->writeback = get_bool(d, dm, w, "writeback");
        dr->async = get_bool(d, dm, w, "async");
        st->ndrives = (uint32_t)i + 1;
    }
    cbor_item_t *nets = get_array(d, m, "config", "nets", VM_NETS_MAX);
    for (size_t i = 0; nets && !d->failed && i < cbor_array_size(nets); i++) {
        const cbor_item_t *nm = cbor_array_handle(nets)[i];
        struct snapshot_net *n = &st->nets[i];
        char w[48];
        char *str;
        snprintf(w, sizeof(w), "config.nets[%u]", (unsigned)i);
        str = get_str(d, nm, w, "id", NET_ID_MAX);
        if (str) {
            memcpy(n->id, str, strlen(str) + 1);
            free(str);
        }
        str = get_str(d, nm, w, "host_dev_name", sizeof(n->host_dev_name) - 1);
        if (str) {
            memcpy(n->host_dev_name, str, strlen(str) + 1);
            free(str);
        }
        n->has_mac = get_bytes(d, nm, w, "mac", n->mac, sizeof(n->mac), false);
        n->mtu = (uint32_t)get_uint(d, nm, w, "mtu", 65535);
        st->nnets = (uint32_t)i + 1;
    }
    vs = get(d, m, "config", "vsock", false);
    if (vs && !d->failed) {
        st->has_vsock = true;
        st->vsock_cid = get_uint(d, vs, "config.vsock", "guest_cid", UINT32_MAX);
        st->vsock_uds_path = get_str(d, vs, "config.vsock", "uds_path", SNAPSHOT_PATH_MAX);
    }
}

static void dec_body(struct dec *d, const cbor_item_t *m, struct snapshot_state *st)
{
    cbor_item_t *type = get(d, m, "state", "snapshot_type", true), *devs;

    if (type && text_is(type, "Full"))
        st->type = SNAPSHOT_FULL;
    else if (type && text_is(type, "Diff"))
        st->type = SNAPSHOT_DIFF;
    else
        bad(d, "state.snapshot_type is neither \"Full\" nor \"Diff\"");
    st->mem_size = get_uint(d, m, "state", "mem_size", UINT64_MAX);
    get_bytes(d, m, "state", "mem_sha256", st->mem_sha256, sizeof(st->mem_sha256), true);
    st->boot_kind = (uint32_t)get_uint(d, m, "state", "boot_kind", 8);
    st->generation = get_uint(d, m, "state", "generation", UINT64_MAX - 1);
    dec_vcpu(d, get(d, m, "state", "vcpu", true), &st->vcpu);
    dec_vm(d, get(d, m, "state", "vm", true), &st->vm);
    devs = get_array(d, m, "state", "devices", DEVICES_MAX);
    for (size_t i = 0; devs && !d->failed && i < cbor_array_size(devs); i++) {
        dec_device(d, cbor_array_handle(devs)[i], &st->devices[i], (unsigned)i);
        st->ndevices = (uint32_t)i + 1;
    }
    dec_config(d, get(d, m, "state", "config", true), st);
}

/* libcbor's loader allocates a definite array or map for the count its
 * header declares before it reads the elements: a few hostile bytes could
 * declare billions. This pass walks the items with the streaming decoder
 * (which allocates nothing) and refuses a count larger than the bytes left,
 * since every element takes at least one byte. */
struct precheck {
    size_t left;
    bool bad;
};

static void pre_collection(void *ctx, size_t n)
{
    struct precheck *p = ctx;

    if (n > p->left)
        p->bad = true;
}

static void pre_map(void *ctx, size_t n)
{
    pre_collection(ctx, n > SIZE_MAX / 2 ? SIZE_MAX : 2 * n);
}

static bool counts_fit(const uint8_t *buf, size_t len)
{
    struct cbor_callbacks cb = cbor_empty_callbacks;
    struct precheck p = {0};
    size_t pos = 0;

    cb.array_start = pre_collection;
    cb.map_start = pre_map;
    while (pos < len && !p.bad) {
        p.left = len - pos;
        struct cbor_decoder_result r = cbor_stream_decode(buf + pos, len - pos, &cb, &p);
        if (r.status != CBOR_DECODER_FINISHED || r.read == 0)
            return true; /* cbor_load reports it, with its position */
        pos += r.read;
    }
    return !p.bad;
}

int snapshot_state_decode(const uint8_t *buf, size_t len, struct snapshot_state *st, char *why,
                          size_t whylen)
{
    struct cbor_load_result res;
    cbor_item_t *outer, *body = NULL;
    struct dec d = {.why = why, .whylen = whylen};
    uint8_t digest[SHA256_DIGEST_LENGTH];

    memset(st, 0, sizeof(*st));
    if (len > SNAPSHOT_STATE_MAX) {
        snprintf(why, whylen, "too big (%zu bytes, at most %u)", len, SNAPSHOT_STATE_MAX);
        return -1;
    }
    if (!counts_fit(buf, len)) {
        /* It claims more items than it has bytes: cut short (or lying). */
        snprintf(why, whylen, "truncated (%zu bytes)", len);
        return -1;
    }
    outer = cbor_load(buf, len, &res);
    if (!outer) {
        if (res.error.code == CBOR_ERR_NOTENOUGHDATA || len == 0)
            snprintf(why, whylen, "truncated (%zu bytes)", len);
        else if (res.error.code == CBOR_ERR_MEMERROR)
            snprintf(why, whylen, "out of memory");
        else
            snprintf(why, whylen, "corrupted: not CBOR (at byte %zu)", res.error.position);
        return -1;
    }
    if (res.read != len) {
        snprintf(why, whylen, "corrupted: %zu stray bytes after the state", len - res.read);
        goto fail;
    }
    if (!cbor_isa_array(outer) || cbor_array_size(outer) != 4 ||
        !text_is(cbor_array_handle(outer)[0], SNAPSHOT_MAGIC)) {
        snprintf(why, whylen, "not an ember snapshot state file");
        goto fail;
    }
    cbor_item_t *ver = cbor_array_handle(outer)[1];
    cbor_item_t *bstr = cbor_array_handle(outer)[2];
    cbor_item_t *sum = cbor_array_handle(outer)[3];
    if (!cbor_isa_uint(ver)) {
        snprintf(why, whylen, "corrupted: the format version is not a number");
        goto fail;
    }
    if (cbor_get_int(ver) != SNAPSHOT_FORMAT_VERSION) {
        snprintf(why, whylen, "format version %llu, this ember reads version %u",
                 (unsigned long long)cbor_get_int(ver), SNAPSHOT_FORMAT_VERSION);
        goto fail;
    }
    if (!cbor_isa_bytestring(bstr) || !cbor_bytestring_is_definite(bstr) ||
        !cbor_isa_bytestring(sum) || !cbor_bytestring_is_definite(sum) ||
        cbor_bytestring_length(sum) != sizeof(digest)) {
        snprintf(why, whylen, "corrupted: no state body or checksum");
        goto fail;
    }
    snapshot_sha256(cbor_bytestring_handle(bstr), cbor_bytestring_length(bstr), digest);
    if (memcmp(digest, cbor_bytestring_handle(sum), sizeof(digest)) != 0) {
        snprintf(why, whylen, "checksum mismatch: the state was corrupted or tampered with");
        goto fail;
    }
    if (!counts_fit(cbor_bytestring_handle(bstr), cbor_bytestring_length(bstr))) {
        snprintf(why, whylen, "corrupted: an array or map longer than the state");
        goto fail;
    }
    body = cbor_load(cbor_bytestring_handle(bstr), cbor_bytestring_length(bstr), &res);
    if (!body || res.read != cbor_bytestring_length(bstr)) {
        snprintf(why, whylen, "corrupted: the state body is not CBOR");
        goto fail;
    }
    dec_body(&d, body, st);
    if (d.failed)
        goto fail;
    cbor_decref(&body);
    cbor_decref(&outer);
    return 0;
fail:
    if (body)
        cbor_decref(&body);
    cbor_decref(&outer);
    snapshot_state_release(st);
    return -1;
}

int snapshot_state_warm(void)
{
    struct snapshot_state *st = calloc(1, sizeof(*st)), *out = calloc(1, sizeof(*out));
    uint8_t *buf = NULL;
    size_t len = 0;
    char why[160];
    int rc = -1;

    if (!st || !out)
        goto done;
    /* Shaped like a restored function's: a vCPU with the usual parts, the
     * irqchip, one vsock device with its three queues. */
    st->type = SNAPSHOT_FULL;
    st->mem_size = 16u << 20;
    st->vcpu.has_xsave = st->vcpu.has_xcrs = st->vcpu.has_lapic = true;
    st->vcpu.nmsrs = 20;
    st->vcpu.ncpuid = 80;
    st->vm.irqchip = true;
    st->vm.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
    st->vm.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
    st->vm.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
    st->ndevices = 1;
    st->devices[0].device_id = 19;
    st->devices[0].t.nqueues = 3;
    st->has_vsock = true;
    st->vsock_cid = 3;
    st->vsock_uds_path = "v.sock";
    buf = snapshot_state_encode(st, &len);
    if (buf && snapshot_state_decode(buf, len, out, why, sizeof(why)) == 0) {
        snapshot_state_release(out);
        rc = 0;
    }
done:
    free(buf);
    free(st);
    free(out);
    return rc;
}

void snapshot_state_release(struct snapshot_state *st)
{
    for (uint32_t i = 0; i < VM_DRIVES_MAX; i++) {
        free(st->drives[i].path);
        st->drives[i].path = NULL;
    }
    free(st->vsock_uds_path);
    st->vsock_uds_path = NULL;
}
