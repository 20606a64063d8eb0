/* boot_x86.h: the x86 state a guest starts in, written into guest memory
 * and vCPU registers.
 *
 * Everything here is a pure function of the configuration and the loaded
 * image, so it can be unit-tested without KVM: page tables, GDT, the ember
 * boot-info struct, PVH's hvm_start_info, and the initial registers.
 */
#ifndef EMBER_BOOT_X86_H
#define EMBER_BOOT_X86_H

#include <linux/kvm.h>
#include <stdint.h>

#include "common/guest_mem.h"
#include "monitor/boot_elf.h"

/* x86 control bits (Intel SDM Vol. 3 §2.5, §2.2.1). */
#define X86_CR0_PE         (1ull << 0)
#define X86_CR0_MP         (1ull << 1)
#define X86_CR0_ET         (1ull << 4)
#define X86_CR0_NE         (1ull << 5)
#define X86_CR0_WP         (1ull << 16)
#define X86_CR0_PG         (1ull << 31)
#define X86_CR4_PAE        (1ull << 5)
#define X86_CR4_OSFXSR     (1ull << 9)
#define X86_CR4_OSXMMEXCPT (1ull << 10)
#define X86_EFER_LME       (1ull << 8)
#define X86_EFER_LMA       (1ull << 10)

/* Page-table entry bits (Intel SDM Vol. 3 §4.5). */
#define PTE_P  (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_A  (1ull << 5)
#define PTE_D  (1ull << 6)
#define PTE_PS (1ull << 7)

#define PVH_START_MAGIC 0x336ec578u

/* Xen's public hvm_start_info layout (arch-x86/hvm/start_info.h), version 1. */
struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type; /* 1: RAM */
    uint32_t reserved;
};

/* Identity map of RAM and of the MMIO gap [3 GiB, 4 GiB) with 2 MiB pages;
 * the first 2 MiB in 4 KiB pages with page 0 not present. Every entry has
 * its accessed bit, and every leaf its dirty bit, set already: the MMU then
 * never writes them (Intel SDM Vol. 3 §4.8), so a restored guest's first
 * access to a page does not also write (copy) a page of its page tables.
 * Returns 0 or -1. */
int boot_x86_page_tables(const struct guest_mem *mem);
/* Leaves [addr, addr + len) out of those tables (an SDK guest's stack
 * guard, abi.h): its 2 MiB pages become 4 KiB ones (PT0, or the two pages
 * at EMBER_LOW_PT_GUARD) and the range's entries not present. addr and len
 * as elf_parse checked them. Returns 0 or -1. */
int boot_x86_guard(const struct guest_mem *mem, uint64_t addr, uint64_t len);
/* The flat GDT at EMBER_LOW_GDT: 0x08 64-bit code, 0x10 data, 0x18 32-bit code. */
int boot_x86_gdt(const struct guest_mem *mem);

struct boot_x86_args {
    const char *progname;
    const char *cmdline;
    uint32_t flags; /* EMBER_BOOT_F_* */
    uint64_t tsc_khz;
    uint64_t realtime_ns;
    const uint8_t *entropy; /* 32 bytes */
};

/* ember boot info at EMBER_LOW_BOOT_INFO plus the strings at EMBER_LOW_CMDLINE. */
int boot_x86_ember_info(const struct guest_mem *mem, const struct boot_x86_args *args);
/* hvm_start_info at EMBER_LOW_PVH_INFO, memory map, command line. */
int boot_x86_pvh_info(const struct guest_mem *mem, const char *cmdline);

/* Registers for the entry kinds (sregs must come from KVM_GET_SREGS first, so
 * fields this code does not set keep KVM's values). */
void boot_x86_regs_ember(struct kvm_regs *regs, struct kvm_sregs *sregs, uint64_t entry);
void boot_x86_regs_pvh(struct kvm_regs *regs, struct kvm_sregs *sregs, uint64_t entry);

#endif
