/* boot_x86.c: page tables, GDT, boot-info structs and entry registers. */
#include "monitor/boot_x86.h"

#include <string.h>

#include <ember/abi.h>

#define MIB     (1ull << 20)
#define GIB     (1ull << 30)
#define PAGE_2M (2 * MIB)
/* Table entries and leaves, accessed and dirty already (boot_x86.h). */
#define DIR  (PTE_P | PTE_RW | PTE_US | PTE_A)
#define LEAF (PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D)

static uint64_t *table(const struct guest_mem *mem, uint64_t gpa)
{
    return guest_mem_slice(mem, gpa, 4096);
}

int boot_x86_guard(const struct guest_mem *mem, uint64_t addr, uint64_t len)
{
    uint64_t *pd = guest_mem_slice(mem, EMBER_LOW_PD, 4 * 4096);
    unsigned spare = 0;

    if (!pd || len == 0 || len > EMBER_GUARD_MAX || addr + len > EMBER_MMIO_GAP_START)
        return -1;
    for (uint64_t a = addr; a < addr + len; a += 4096) {
        uint64_t *pde = &pd[a / PAGE_2M], pt_gpa;
        if (*pde & PTE_PS) {
            /* Split: the same mapping in 4 KiB pages (at most two 2 MiB
             * pages, as the guard is at most 1 MiB). */
            if (spare == 2)
                return -1;
            pt_gpa = EMBER_LOW_PT_GUARD + 4096ull * spare++;
            uint64_t *pt = table(mem, pt_gpa), base = a & ~(PAGE_2M - 1);
            if (!pt)
                return -1;
            for (unsigned i = 0; i < 512; i++)
                pt[i] = (base + i * 4096ull) | LEAF;
            *pde = pt_gpa | DIR;
        } else if (!(*pde & PTE_P)) {
            return -1;
        }
        uint64_t *pt = table(mem, *pde & ~0xfffull);
        if (!pt)
            return -1;
        pt[(a / 4096) % 512] = 0;
    }
    return 0;
}

int boot_x86_page_tables(const struct guest_mem *mem)
{
    uint64_t *pml4 = table(mem, EMBER_LOW_PML4);
    uint64_t *pdpt = table(mem, EMBER_LOW_PDPT);
    uint64_t *pt0 = table(mem, EMBER_LOW_PT0);
    uint64_t *pd = guest_mem_slice(mem, EMBER_LOW_PD, 4 * 4096);
    uint64_t ram_end = mem->size < EMBER_MMIO_GAP_START ? mem->size : EMBER_MMIO_GAP_START;

    if (!pml4 || !pdpt || !pt0 || !pd)
        return -1;
    pml4[0] = EMBER_LOW_PDPT | DIR;
    for (unsigned i = 0; i < 4; i++)
        pdpt[i] = (EMBER_LOW_PD + i * 4096ull) | DIR;
    /* First 2 MiB: 4 KiB pages, page 0 left out so a NULL access faults. */
    pd[0] = EMBER_LOW_PT0 | DIR;
    for (unsigned i = 1; i < 512; i++)
        pt0[i] = (i * 4096ull) | LEAF;
    for (uint64_t a = PAGE_2M; a < ram_end; a += PAGE_2M)
        pd[a / PAGE_2M] = a | LEAF | PTE_PS;
    for (uint64_t a = EMBER_MMIO_GAP_START; a < 4 * GIB; a += PAGE_2M)
        pd[a / PAGE_2M] = a | LEAF | PTE_PS;
    return 0;
}

int boot_x86_gdt(const struct guest_mem *mem)
{
    static const uint64_t gdt[] = {
        0, 0x00af9b000000ffffull, /* 0x08: 64-bit code, DPL0 */
        0x00cf93000000ffffull,    /* 0x10: data, 4 GiB */
        0x00cf9b000000ffffull,    /* 0x18: 32-bit code, 4 GiB */
    };
    void *dst = guest_mem_slice(mem, EMBER_LOW_GDT, sizeof(gdt));

    if (!dst)
        return -1;
    memcpy(dst, gdt, sizeof(gdt));
    return 0;
}

int boot_x86_ember_info(const struct guest_mem *mem, const struct boot_x86_args *args)
{
    struct ember_boot_info *bi = guest_mem_slice(mem, EMBER_LOW_BOOT_INFO, sizeof(*bi));
    size_t plen = strlen(args->progname), clen = strlen(args->cmdline);
    /* The strings go right after the struct when they fit in its page: every
     * page a guest touches costs a fault on shadow-paging hosts (~24 us on
     * ours). Longer ones go to EMBER_LOW_CMDLINE. */
    uint64_t str_gpa = sizeof(*bi) + plen + 1 + clen + 1 <= 4096 ? EMBER_LOW_BOOT_INFO + sizeof(*bi)
                                                                 : EMBER_LOW_CMDLINE;
    uint64_t cmd_gpa = str_gpa + plen + 1;

    if (!bi || plen + 1 + clen + 1 > EMBER_CMDLINE_MAX)
        return -1;
    if (guest_mem_put_string(mem, str_gpa, args->progname, plen) != 0 ||
        guest_mem_put_string(mem, cmd_gpa, args->cmdline, clen) != 0)
        return -1;
    memset(bi, 0, sizeof(*bi));
    bi->magic = EMBER_BOOT_MAGIC;
    bi->version = EMBER_ABI_VERSION;
    bi->size = sizeof(*bi);
    bi->flags = args->flags;
    bi->mem_size = mem->size;
    bi->tsc_khz = args->tsc_khz;
    bi->realtime_ns = args->realtime_ns;
    bi->progname = str_gpa;
    bi->cmdline = cmd_gpa;
    bi->cmdline_len = clen;
    memcpy(bi->entropy, args->entropy, sizeof(bi->entropy));
    bi->ndevices = 0;
    return 0;
}

int boot_x86_pvh_info(const struct guest_mem *mem, const char *cmdline)
{
    struct hvm_start_info *si = guest_mem_slice(mem, EMBER_LOW_PVH_INFO, sizeof(*si));
    struct hvm_memmap_table_entry *mm = guest_mem_slice(mem, EMBER_LOW_PVH_MEMMAP, 2 * sizeof(*mm));
    uint64_t ram_end = mem->size < EMBER_MMIO_GAP_START ? mem->size : EMBER_MMIO_GAP_START;

    if (!si || !mm ||
        guest_mem_put_string(mem, EMBER_LOW_CMDLINE, cmdline, EMBER_CMDLINE_MAX - 1) != 0)
        return -1;
    /* Conventional memory below the EBDA, then everything from 1 MiB. */
    mm[0] = (struct hvm_memmap_table_entry){.addr = 0, .size = 0x9fc00, .type = 1};
    mm[1] = (struct hvm_memmap_table_entry){
        .addr = EMBER_KERNEL_MIN, .size = ram_end - EMBER_KERNEL_MIN, .type = 1};
    memset(si, 0, sizeof(*si));
    si->magic = PVH_START_MAGIC;
    si->version = 1;
    si->cmdline_paddr = EMBER_LOW_CMDLINE;
    si->memmap_paddr = EMBER_LOW_PVH_MEMMAP;
    si->memmap_entries = 2;
    return 0;
}

static struct kvm_segment flat_seg(uint16_t sel, uint8_t type, int code64, int db)
{
    return (struct kvm_segment){
        .base = 0,
        .limit = 0xffffffff,
        .selector = sel,
        .type = type,
        .present = 1,
        .dpl = 0,
        .db = db,
        .s = 1,
        .l = code64,
        .g = 1,
    };
}

static void common_sregs(struct kvm_sregs *sregs)
{
    sregs->gdt.base = EMBER_LOW_GDT;
    sregs->gdt.limit = 4 * 8 - 1;
    sregs->idt.base = 0;
    sregs->idt.limit = 0;
    /* A busy 64/32-bit TSS: VMX entry checks require a usable TR. */
    sregs->tr = (struct kvm_segment){
        .base = 0, .limit = 0x67, .selector = 0, .type = 11, .present = 1, .g = 0};
    sregs->ldt = (struct kvm_segment){.type = 2, .present = 1, .limit = 0xffff};
}

void boot_x86_regs_ember(struct kvm_regs *regs, struct kvm_sregs *sregs, uint64_t entry)
{
    struct kvm_segment data = flat_seg(EMBER_BOOT_DS, 3, 0, 1);

    common_sregs(sregs);
    sregs->cs = flat_seg(EMBER_BOOT_CS, 11, 1, 0);
    sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
    sregs->cr3 = EMBER_LOW_PML4;
    sregs->cr4 = X86_CR4_PAE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
    sregs->cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP | X86_CR0_PG;
    sregs->efer = X86_EFER_LME | X86_EFER_LMA;

    memset(regs, 0, sizeof(*regs));
    regs->rflags = 0x2;
    regs->rip = entry;
    regs->rdi = EMBER_LOW_BOOT_INFO;
    regs->rsi = EMBER_BOOT_MAGIC;
}

void boot_x86_regs_pvh(struct kvm_regs *regs, struct kvm_sregs *sregs, uint64_t entry)
{
    struct kvm_segment data = flat_seg(EMBER_BOOT_DS, 3, 0, 1);

    /* PVH boot ABI: 32-bit protected mode, paging off, flat segments,
     * EBX = hvm_start_info, CR4 = 0, EFER = 0 (xen/arch-x86/hvm/start_info.h). */
    common_sregs(sregs);
    sregs->cs = flat_seg(0x18, 11, 0, 1);
    sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
    sregs->cr0 = X86_CR0_PE | X86_CR0_ET;
    sregs->cr3 = 0;
    sregs->cr4 = 0;
    sregs->efer = 0;

    memset(regs, 0, sizeof(*regs));
    regs->rflags = 0x2;
    regs->rip = entry;
    regs->rbx = EMBER_LOW_PVH_INFO;
}
