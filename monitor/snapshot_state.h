/* snapshot_state.h: what a snapshot's state file holds, and its encoding.
 *
 * A snapshot is two files: the guest's memory (a plain image of guest RAM
 * from guest-physical 0, sparse where pages are zero) and this state file.
 * The state file is CBOR (RFC 8949, written and read with libcbor), an array
 * of four items:
 *
 *   [ "ember-snapshot", FORMAT_VERSION, BODY, SHA-256(BODY) ]
 *
 * BODY is a byte string holding the CBOR map of the state proper (vCPU,
 * irqchip, clocks, devices, configuration, the memory file's size and
 * SHA-256). Keeping it a byte string lets the reader check the version and
 * the checksum before it parses anything a damaged or foreign file holds.
 * KVM's own structures (kvm_regs, kvm_sregs, kvm_xsave, kvm_lapic_state,
 * kvm_vcpu_events, kvm_irqchip...) are stored as byte strings of exactly
 * their uapi size: they are stable ABI for one architecture, and a length
 * that does not match is refused.
 *
 * The file is untrusted input: snapshot_state_decode() checks every item's
 * type, size and range and refuses with a message that says what was wrong
 * (truncated, corrupted, tampered with, wrong version); it never reads past
 * the buffer. tests/fuzz/fuzz_snapshot_state.c fuzzes it.
 */
#ifndef EMBER_SNAPSHOT_STATE_H
#define EMBER_SNAPSHOT_STATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cpuid_cache.h"
#include "monitor/devices.h"
#include "virtio/mmio.h"

#define SNAPSHOT_MAGIC          "ember-snapshot"
#define SNAPSHOT_FORMAT_VERSION 1u
/* Bigger state files are refused unread (a real one is ~20 KiB). */
#define SNAPSHOT_STATE_MAX (4u << 20)
#define SNAPSHOT_MSRS_MAX  32u
#define SNAPSHOT_PATH_MAX  4096u

enum snapshot_type {
    SNAPSHOT_FULL = 0, /* every page of guest RAM */
    SNAPSHOT_DIFF = 1, /* only the pages written since the previous snapshot */
};

struct snapshot_vcpu {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    bool has_xsave; /* else fpu */
    struct kvm_xsave xsave;
    struct kvm_fpu fpu;
    bool has_xcrs;
    struct kvm_xcrs xcrs;
    bool has_lapic; /* with the in-kernel irqchip */
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events events;
    struct kvm_mp_state mp_state;
    struct kvm_debugregs debugregs;
    uint32_t nmsrs;
    struct kvm_msr_entry msrs[SNAPSHOT_MSRS_MAX];
    uint32_t ncpuid;
    struct kvm_cpuid_entry2 cpuid[CPUID_MAX_ENTRIES];
};

struct snapshot_vm {
    bool irqchip; /* KVM_CREATE_IRQCHIP was made: PIC and IOAPIC follow */
    struct kvm_irqchip pic_master, pic_slave, ioapic;
    bool has_pit;
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clock;
    uint64_t tsc_khz;
};

/* One virtio-mmio device: where it sits, its transport registers and
 * queues, and the blob its device model saves (virtio_dev_ops state hooks). */
struct snapshot_device {
    uint32_t device_id; /* VIRTIO_ID_* */
    uint64_t base;
    uint32_t gsi;
    struct virtio_mmio_state t;
};

/* What it takes to build the same VM again. Paths are owned (malloc). */
struct snapshot_drive {
    char id[BLK_ID_MAX + 1];
    char *path;
    bool read_only, writeback, async;
};

struct snapshot_net {
    char id[NET_ID_MAX + 1];
    char host_dev_name[16]; /* the tap; a restore may give another */
    bool has_mac;
    uint8_t mac[6];
    uint32_t mtu;
};

struct snapshot_state {
    uint32_t type; /* enum snapshot_type */
    uint64_t mem_size;
    uint8_t mem_sha256[32];
    uint32_t boot_kind;  /* enum elf_boot_kind of the guest */
    uint64_t generation; /* restores so far of the line this snapshot comes from */
    struct snapshot_vcpu vcpu;
    struct snapshot_vm vm;
    uint32_t ndevices;
    struct snapshot_device devices[DEVICES_MAX];
    uint32_t ndrives;
    struct snapshot_drive drives[VM_DRIVES_MAX];
    uint32_t nnets;
    struct snapshot_net nets[VM_NETS_MAX];
    bool has_vsock;
    uint64_t vsock_cid;
    char *vsock_uds_path;
};

/* Encodes and decodes a made-up state shaped like a restored function's,
 * and frees it: the decoder's code and the heap it allocates from are then
 * in place for the real one (a process that restores later, built ahead:
 * the first decode in a process costs ~3x the next on our development
 * hosts). Needs no system call but the allocator's. Returns 0 when the
 * made-up state decoded (the whole decoder ran), -1 otherwise. */
int snapshot_state_warm(void);
/* Encodes st. Returns a malloc'ed buffer (*len bytes) or NULL. */
uint8_t *snapshot_state_encode(const struct snapshot_state *st, size_t *len);
/* Decodes and checks a state file's bytes into st (zeroed first). Returns 0,
 * or -1 with a one-line reason in why. On failure st holds nothing to free. */
int snapshot_state_decode(const uint8_t *buf, size_t len, struct snapshot_state *st, char *why,
                          size_t whylen);
/* SHA-256 of n bytes (OpenSSL's libcrypto). */
void snapshot_sha256(const void *p, size_t n, uint8_t out[32]);
/* Frees the strings st owns. */
void snapshot_state_release(struct snapshot_state *st);

#endif
