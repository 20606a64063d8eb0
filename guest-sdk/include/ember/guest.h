/* ember/guest.h: the SDK's own C API for guest programs (beyond POSIX).
 *
 * A guest is an ordinary C program; these calls expose what the SDK knows
 * about the machine it booted on. Link with ember-cc (libember.a).
 */
#ifndef EMBER_GUEST_H
#define EMBER_GUEST_H

#include <stdint.h>
#include <ember/abi.h>

/* How the guest was started. */
enum ember_boot_kind {
    EMBER_BOOT_KIND_EMBER = 1, /* by the ember monitor (ember ELF note) */
    EMBER_BOOT_KIND_PVH = 2,   /* by a PVH loader (QEMU microvm, Firecracker) */
};

/* One 64-bit interrupt gate (Intel SDM Vol. 3A §6.14.1). */
struct ember_idt_gate {
    uint16_t offset_lo;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attr;
    uint16_t offset_mid;
    uint32_t offset_hi;
    uint32_t reserved;
};

/* The IDT: gates for the exception vectors 0-31, which report the fault and
 * end the guest (IDTR's limit ends there too, so any higher vector raises
 * #GP). It is writable by the application: clobbering it is how a test
 * provokes a triple fault. */
#define EMBER_IDT_VECTORS 32
extern struct ember_idt_gate ember_idt[EMBER_IDT_VECTORS];

/* The boot information the guest started with (under PVH, converted from
 * hvm_start_info). Never NULL once main() runs. */
const struct ember_boot_info *ember_boot_info(void);
enum ember_boot_kind ember_boot_kind(void);

/* Nanoseconds since the guest was entered (TSC based, same as
 * CLOCK_MONOTONIC), and the TSC frequency in use. */
uint64_t ember_monotonic_ns(void);
uint64_t ember_tsc_khz(void);

/* Heap accounting: bytes of guest memory that brk/mmap can hand out, and how
 * many of them are free right now. */
uint64_t ember_heap_total(void);
uint64_t ember_heap_free(void);

#endif /* EMBER_GUEST_H */
