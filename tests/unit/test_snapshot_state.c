/* test_snapshot_state.c: the snapshot state file's encoder and its parser
 * (monitor/snapshot_state.c): a round trip keeps every field, and each way
 * a file can be wrong is refused with its exact message. */
#include <cbor.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/snapshot_state.h"

static struct snapshot_state st, back;
static char why[512];

static void fill(struct snapshot_state *s)
{
    memset(s, 0, sizeof(*s));
    s->type = SNAPSHOT_FULL;
    s->mem_size = 16u << 20;
    memset(s->mem_sha256, 0xab, 32);
    s->boot_kind = 1;
    s->generation = 3;
    s->vcpu.regs.rip = 0x112233;
    s->vcpu.sregs.cr3 = 0x9000;
    s->vcpu.has_xsave = true;
    s->vcpu.xsave.region[5] = 77;
    s->vcpu.has_lapic = true;
    s->vcpu.lapic.regs[0x20] = 9;
    s->vcpu.mp_state.mp_state = KVM_MP_STATE_HALTED;
    s->vcpu.nmsrs = 2;
    s->vcpu.msrs[0] = (struct kvm_msr_entry){.index = 0x10, .data = 123456789};
    s->vcpu.msrs[1] = (struct kvm_msr_entry){.index = 0xc0000082, .data = 0x100000};
    s->vcpu.ncpuid = 2;
    s->vcpu.cpuid[1].function = 0x80000001;
    s->vm.irqchip = true;
    s->vm.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
    s->vm.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
    s->vm.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
    s->vm.clock.clock = 42;
    s->vm.tsc_khz = 2000000;
    s->ndevices = 1;
    s->devices[0].device_id = 19;
    s->devices[0].base = 0xc0001000;
    s->devices[0].gsi = 5;
    s->devices[0].t.status = 0xf;
    s->devices[0].t.drv_features = 1ull << 32;
    s->devices[0].t.nqueues = 3;
    s->devices[0].t.queues[1] = (struct vq){.size = 256,
                                            .ready = true,
                                            .desc_gpa = 0x200000,
                                            .avail_gpa = 0x201000,
                                            .used_gpa = 0x202000,
                                            .last_avail = 7,
                                            .used_idx = 6,
                                            .signalled = 5};
    s->devices[0].t.blob_len = 3;
    memcpy(s->devices[0].t.blob, "abc", 3);
    s->has_vsock = true;
    s->vsock_cid = 3;
    s->vsock_uds_path = strdup("/tmp/v.sock");
}

Test(snapshot_state, round_trip)
{
    size_t len;

    fill(&st);
    uint8_t *buf = snapshot_state_encode(&st, &len);
    cr_assert(buf);
    cr_assert_eq(snapshot_state_decode(buf, len, &back, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(back.mem_size, st.mem_size);
    cr_assert_eq(memcmp(back.mem_sha256, st.mem_sha256, 32), 0);
    cr_assert_eq(back.generation, 3);
    cr_assert_eq(memcmp(&back.vcpu.regs, &st.vcpu.regs, sizeof(st.vcpu.regs)), 0);
    cr_assert_eq(memcmp(&back.vcpu.xsave, &st.vcpu.xsave, sizeof(st.vcpu.xsave)), 0);
    cr_assert_eq(memcmp(&back.vcpu.lapic, &st.vcpu.lapic, sizeof(st.vcpu.lapic)), 0);
    cr_assert_eq(back.vcpu.mp_state.mp_state, KVM_MP_STATE_HALTED);
    cr_assert_eq(back.vcpu.nmsrs, 2);
    cr_assert_eq(back.vcpu.msrs[0].data, 123456789);
    cr_assert_eq(back.vcpu.ncpuid, 2);
    cr_assert_eq(back.vcpu.cpuid[1].function, 0x80000001);
    cr_assert_eq(back.vm.clock.clock, 42);
    cr_assert_eq(back.devices[0].t.nqueues, 3);
    cr_assert_eq(
        memcmp(&back.devices[0].t.queues[1], &st.devices[0].t.queues[1], sizeof(struct vq)), 0);
    cr_assert_eq(back.devices[0].t.blob_len, 3);
    cr_assert_str_eq(back.vsock_uds_path, "/tmp/v.sock");
    free(buf);
    snapshot_state_release(&st);
    snapshot_state_release(&back);
}

/* The warm-up a process built ahead runs (snapshot_state.h) decodes its
 * made-up state through the whole decoder, and leaves it working. */
Test(snapshot_state, warm_up_runs_the_whole_decoder)
{
    size_t len;

    cr_assert_eq(snapshot_state_warm(), 0);
    cr_assert_eq(snapshot_state_warm(), 0);
    fill(&st);
    uint8_t *buf = snapshot_state_encode(&st, &len);
    cr_assert(buf);
    cr_assert_eq(snapshot_state_decode(buf, len, &back, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(back.vcpu.msrs[0].data, 123456789);
    free(buf);
    snapshot_state_release(&st);
    snapshot_state_release(&back);
}

/* The outer array around body, with a right checksum unless told. */
static uint8_t *wrap(cbor_item_t *body, unsigned version, bool good_sum, size_t *len)
{
    unsigned char *b = NULL, *out = NULL;
    size_t cap = 0, n = cbor_serialize_alloc(body, &b, &cap);
    uint8_t digest[32];

    snapshot_sha256(b, n, digest);
    if (!good_sum)
        digest[0] ^= 1;
    cbor_item_t *a = cbor_new_definite_array(4);
    cbor_array_push(a, cbor_move(cbor_build_string(SNAPSHOT_MAGIC)));
    cbor_array_push(a, cbor_move(cbor_build_uint8((uint8_t)version)));
    cbor_array_push(a, cbor_move(cbor_build_bytestring(b, n)));
    cbor_array_push(a, cbor_move(cbor_build_bytestring(digest, 32)));
    *len = cbor_serialize_alloc(a, &out, &cap);
    cbor_decref(&a);
    free(b);
    return out;
}

static void refused(const uint8_t *buf, size_t len, const char *want)
{
    cr_assert_eq(snapshot_state_decode(buf, len, &back, why, sizeof(why)), -1);
    cr_assert_str_eq(why, want);
}

/* A real body re-encoded with one key's value replaced (NULL: removed). */
static cbor_item_t *body_with(const char *key, cbor_item_t *value)
{
    size_t len;
    struct cbor_load_result res;

    fill(&st);
    uint8_t *buf = snapshot_state_encode(&st, &len);
    snapshot_state_release(&st);
    cbor_item_t *outer = cbor_load(buf, len, &res);
    cbor_item_t *bstr = cbor_array_handle(outer)[2];
    cbor_item_t *m = cbor_load(cbor_bytestring_handle(bstr), cbor_bytestring_length(bstr), &res);
    cbor_item_t *copy = cbor_new_definite_map(cbor_map_size(m));
    struct cbor_pair *p = cbor_map_handle(m);
    for (size_t i = 0; i < cbor_map_size(m); i++) {
        bool hit = cbor_string_length(p[i].key) == strlen(key) &&
                   memcmp(cbor_string_handle(p[i].key), key, strlen(key)) == 0;
        if (hit && !value)
            continue;
        cbor_map_add(copy, (struct cbor_pair){.key = p[i].key, .value = hit ? value : p[i].value});
    }
    cbor_decref(&m);
    cbor_decref(&outer);
    free(buf);
    return copy;
}

Test(snapshot_state, refusals)
{
    size_t len;
    uint8_t *buf;
    cbor_item_t *b;

    refused((const uint8_t *)"", 0, "truncated (0 bytes)");
    refused((const uint8_t *)"\x84\x6e", 2, "truncated (2 bytes)");
    refused((const uint8_t *)"\x1c", 1, "corrupted: not CBOR (at byte 0)");
    refused((const uint8_t *)"\x01\x02", 2, "corrupted: 1 stray bytes after the state");
    refused((const uint8_t *)"\x81\x01", 2, "not an ember snapshot state file");

    b = body_with("generation", cbor_build_uint8(0));
    buf = wrap(b, 2, true, &len);
    refused(buf, len, "format version 2, this ember reads version 1");
    free(buf);
    buf = wrap(b, 1, false, &len);
    refused(buf, len, "checksum mismatch: the state was corrupted or tampered with");
    free(buf);
    buf = wrap(b, 1, true, &len);
    cr_assert_eq(snapshot_state_decode(buf, len, &back, why, sizeof(why)), 0, "%s", why);
    snapshot_state_release(&back);
    free(buf);
    cbor_decref(&b);

    b = body_with("vcpu", NULL);
    buf = wrap(b, 1, true, &len);
    refused(buf, len, "corrupted: state.vcpu is missing");
    free(buf);
    cbor_decref(&b);

    b = body_with("mem_sha256", cbor_build_bytestring((const unsigned char *)"short", 5));
    buf = wrap(b, 1, true, &len);
    refused(buf, len, "corrupted: state.mem_sha256 is 5 bytes, expected 32");
    free(buf);
    cbor_decref(&b);

    b = body_with("snapshot_type", cbor_build_string("Half"));
    buf = wrap(b, 1, true, &len);
    refused(buf, len, "corrupted: state.snapshot_type is neither \"Full\" nor \"Diff\"");
    free(buf);
    cbor_decref(&b);

    b = body_with("mem_size", cbor_build_string("big"));
    buf = wrap(b, 1, true, &len);
    refused(buf, len, "corrupted: state.mem_size is not an unsigned integer");
    free(buf);
    cbor_decref(&b);

    b = body_with("devices", cbor_new_definite_array(0));
    cbor_item_t *devs = cbor_new_definite_array(17);
    for (int i = 0; i < 17; i++)
        cbor_array_push(devs, cbor_move(cbor_new_definite_map(0)));
    cbor_decref(&b);
    b = body_with("devices", devs);
    buf = wrap(b, 1, true, &len);
    refused(buf, len, "corrupted: state.devices has 17 entries, at most 16 allowed");
    free(buf);
    cbor_decref(&b);
}
