/* test_boot_x86.c: page tables, GDT, boot info and entry registers. */
#include <criterion/criterion.h>
#include <string.h>

#include <ember/abi.h>

#include "monitor/boot_x86.h"

static struct guest_mem mem;

static void setup(void)
{
    cr_assert_eq(guest_mem_map(&mem, 64 << 20), 0);
}

static void teardown(void)
{
    guest_mem_unmap(&mem);
}

TestSuite(boot_x86, .init = setup, .fini = teardown);

static uint64_t entry(uint64_t table_gpa, unsigned idx)
{
    return ((uint64_t *)guest_mem_slice(&mem, table_gpa, 4096))[idx];
}

/* Walks the guest's page tables like the MMU: the physical address va maps
 * to, or -1 if not present. */
static int64_t walk(uint64_t va)
{
    uint64_t e = entry(EMBER_LOW_PML4, (va >> 39) & 511);
    if (!(e & PTE_P))
        return -1;
    e = entry(e & ~0xfffull, (va >> 30) & 511);
    if (!(e & PTE_P))
        return -1;
    e = entry(e & ~0xfffull, (va >> 21) & 511);
    if (!(e & PTE_P))
        return -1;
    if (e & PTE_PS)
        return (int64_t)((e & ~0x1fffffull) | (va & 0x1fffff));
    e = entry(e & ~0xfffull, (va >> 12) & 511);
    if (!(e & PTE_P))
        return -1;
    return (int64_t)((e & ~0xfffull) | (va & 0xfff));
}

Test(boot_x86, identity_map_with_null_page_absent)
{
    cr_assert_eq(boot_x86_page_tables(&mem), 0);
    cr_expect_eq(walk(0), -1, "page 0 must not be present");
    cr_expect_eq(walk(0xfff), -1);
    cr_expect_eq(walk(0x1000), 0x1000);
    cr_expect_eq(walk(0x100123), 0x100123);
    cr_expect_eq(walk(0x1fffff), 0x1fffff);
    cr_expect_eq(walk(0x200000), 0x200000);
    cr_expect_eq(walk((64 << 20) - 8), (64 << 20) - 8);
    cr_expect_eq(walk(64 << 20), -1, "memory beyond RAM must not be mapped");
    cr_expect_eq(walk(EMBER_BOOT_TIMER_GPA), EMBER_BOOT_TIMER_GPA, "MMIO gap is mapped");
    cr_expect_eq(walk(0xffffffffull), 0xffffffffull);
    cr_expect_eq(walk(1ull << 32), -1);
    cr_expect(entry(EMBER_LOW_PT0, 1) & PTE_US, "pages are user-accessible (the app runs at CPL3)");
    /* Accessed and dirty set ahead: the MMU never writes the tables. */
    cr_expect_eq(entry(EMBER_LOW_PML4, 0) & PTE_A, PTE_A);
    cr_expect_eq(entry(EMBER_LOW_PT0, 1) & (PTE_A | PTE_D), PTE_A | PTE_D);
    cr_expect_eq(entry(EMBER_LOW_PD, 1) & (PTE_A | PTE_D), PTE_A | PTE_D, "2 MiB leaves too");
}

Test(boot_x86, ember_boot_info)
{
    uint8_t entropy[32];
    struct boot_x86_args args = {
        .progname = "app",
        .cmdline = "a \"b c\"",
        .flags = EMBER_BOOT_F_TIMER,
        .tsc_khz = 2600000,
        .realtime_ns = 123456789,
        .entropy = entropy,
    };

    memset(entropy, 0xab, sizeof(entropy));
    cr_assert_eq(boot_x86_ember_info(&mem, &args), 0);
    struct ember_boot_info *bi = guest_mem_slice(&mem, EMBER_LOW_BOOT_INFO, sizeof(*bi));
    cr_expect_eq(bi->magic, EMBER_BOOT_MAGIC);
    cr_expect_eq(bi->version, EMBER_ABI_VERSION);
    cr_expect_eq(bi->size, sizeof(*bi));
    cr_expect_eq(bi->flags, EMBER_BOOT_F_TIMER);
    cr_expect_eq(bi->mem_size, 64 << 20);
    cr_expect_eq(bi->tsc_khz, 2600000);
    cr_expect_eq(bi->realtime_ns, 123456789);
    cr_expect_str_eq((char *)guest_mem_slice(&mem, bi->progname, 4), "app");
    cr_expect_str_eq((char *)guest_mem_slice(&mem, bi->cmdline, bi->cmdline_len + 1), "a \"b c\"");
    cr_expect_eq(bi->cmdline_len, 7);
    cr_expect_eq(bi->progname / 4096, EMBER_LOW_BOOT_INFO / 4096,
                 "short strings share the boot-info page (one page fewer to touch)");
    cr_expect_eq(bi->entropy[31], 0xab);
    cr_expect_eq(bi->ndevices, 0);
}

Test(boot_x86, long_command_line_goes_to_its_own_area)
{
    static char big[3800]; /* with the struct, more than a page */
    uint8_t entropy[32] = {0};
    struct boot_x86_args args = {.progname = "app", .cmdline = big, .entropy = entropy};

    memset(big, 'y', sizeof(big) - 1);
    cr_assert_eq(boot_x86_ember_info(&mem, &args), 0);
    struct ember_boot_info *bi = guest_mem_slice(&mem, EMBER_LOW_BOOT_INFO, sizeof(*bi));
    cr_expect_eq(bi->progname, EMBER_LOW_CMDLINE);
    cr_expect_str_eq((char *)guest_mem_slice(&mem, bi->cmdline, sizeof(big)), big);
}

Test(boot_x86, command_line_too_long_is_refused)
{
    static char big[EMBER_CMDLINE_MAX + 1];
    uint8_t entropy[32] = {0};
    struct boot_x86_args args = {.progname = "app", .cmdline = big, .entropy = entropy};

    memset(big, 'x', sizeof(big) - 1);
    cr_expect_eq(boot_x86_ember_info(&mem, &args), -1);
    cr_expect_eq(boot_x86_pvh_info(&mem, big), -1);
}

Test(boot_x86, pvh_start_info)
{
    cr_assert_eq(boot_x86_pvh_info(&mem, "console=ttyS0"), 0);
    struct hvm_start_info *si = guest_mem_slice(&mem, EMBER_LOW_PVH_INFO, sizeof(*si));
    cr_expect_eq(si->magic, PVH_START_MAGIC);
    cr_expect_eq(si->version, 1);
    cr_expect_eq(si->memmap_entries, 2);
    cr_expect_str_eq((char *)guest_mem_slice(&mem, si->cmdline_paddr, 14), "console=ttyS0");
    struct hvm_memmap_table_entry *mm = guest_mem_slice(&mem, si->memmap_paddr, 2 * sizeof(*mm));
    cr_expect_eq(mm[1].addr, 1 << 20);
    cr_expect_eq(mm[1].addr + mm[1].size, 64 << 20);
    cr_expect_eq(mm[1].type, 1);
}

Test(boot_x86, entry_registers)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;

    memset(&sregs, 0, sizeof(sregs));
    boot_x86_regs_ember(&regs, &sregs, 0x100040);
    cr_expect_eq(regs.rip, 0x100040);
    cr_expect_eq(regs.rdi, EMBER_LOW_BOOT_INFO);
    cr_expect_eq(regs.rsi, EMBER_BOOT_MAGIC);
    cr_expect_eq(regs.rflags, 2);
    cr_expect_eq(sregs.cs.l, 1);
    cr_expect_eq(sregs.cs.selector, EMBER_BOOT_CS);
    cr_expect_eq(sregs.cr3, EMBER_LOW_PML4);
    cr_expect(sregs.cr0 & X86_CR0_PG);
    cr_expect(sregs.efer & X86_EFER_LMA);
    cr_expect(sregs.cr4 & X86_CR4_OSFXSR);

    memset(&sregs, 0, sizeof(sregs));
    boot_x86_regs_pvh(&regs, &sregs, 0x100000);
    cr_expect_eq(regs.rbx, EMBER_LOW_PVH_INFO);
    cr_expect_eq(sregs.cs.l, 0);
    cr_expect_eq(sregs.cs.db, 1);
    cr_expect_eq(sregs.cr0 & X86_CR0_PG, 0);
    cr_expect_eq(sregs.efer, 0);
}

Test(boot_x86, gdt)
{
    cr_assert_eq(boot_x86_gdt(&mem), 0);
    uint64_t *gdt = guest_mem_slice(&mem, EMBER_LOW_GDT, 32);
    cr_expect_eq(gdt[0], 0);
    cr_expect((gdt[EMBER_BOOT_CS / 8] >> 53) & 1, "0x08 is a 64-bit code segment");
}

Test(boot_x86, stack_guard_is_left_out)
{
    cr_assert_eq(boot_x86_page_tables(&mem), 0);
    /* In the first 2 MiB (PT0's 4 KiB pages). */
    cr_assert_eq(boot_x86_guard(&mem, 0x130000, 0x10000), 0);
    cr_expect_eq(walk(0x12ffff), 0x12ffff);
    cr_expect_eq(walk(0x130000), -1);
    cr_expect_eq(walk(0x13ffff), -1);
    cr_expect_eq(walk(0x140000), 0x140000);
    /* Across a 2 MiB boundary: both large pages split, the rest kept. */
    cr_assert_eq(boot_x86_guard(&mem, 0x5f8000, 0x10000), 0);
    cr_expect_eq(walk(0x400000), 0x400000);
    cr_expect_eq(walk(0x5f7fff), 0x5f7fff);
    cr_expect_eq(walk(0x5f8000), -1);
    cr_expect_eq(walk(0x607fff), -1);
    cr_expect_eq(walk(0x608000), 0x608000);
    cr_expect_eq(walk(0x7fffff), 0x7fffff);
    cr_expect_eq(walk(0x800000), 0x800000);
    /* Nothing beyond the limits. */
    cr_expect_eq(boot_x86_guard(&mem, 0x130000, 0), -1);
    cr_expect_eq(boot_x86_guard(&mem, 0x130000, 2 * EMBER_GUARD_MAX), -1);
}
