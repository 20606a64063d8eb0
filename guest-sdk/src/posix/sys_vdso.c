/* sys_vdso.c: a tiny vDSO, so that reading the clock is a function call.
 *
 * Linux hands every process a vDSO (AT_SYSINFO_EHDR), a small shared object
 * whose __vdso_clock_gettime musl calls instead of the system call. The SDK
 * does the same: ember_vdso is a minimal ELF image in the guest's rodata with
 * just what musl's __vdsosym (src/internal/vdso.c) reads: program headers
 * (a PT_LOAD giving the load bias, a PT_DYNAMIC), DT_STRTAB, DT_SYMTAB and
 * DT_HASH (only its symbol count), and no symbol versions (musl then accepts
 * any). PT_LOAD's p_vaddr is the image's own address, so the bias is 0 and
 * every address below is absolute.
 *
 * Why it matters: a `syscall` round trip costs ~40 us on kvm_pvm (and
 * ~0.1 us on hardware); the vDSO call reads the TSC in ~20 ns on both.
 * clock_gettime, time() and gettimeofday() all go through it.
 */
#include <elf.h>
#include <errno.h>
#include <time.h>

#include "sdk.h"

#define NSEC_PER_SEC 1000000000ull

int ember_vdso_clock_gettime(int clock, struct timespec *ts)
{
    uint64_t ns;
    int r = ember_clock_ns(clock, &ns);
    if (r)
        return r;
    ts->tv_sec = (time_t)(ns / NSEC_PER_SEC);
    ts->tv_nsec = (long)(ns % NSEC_PER_SEC);
    return 0;
}

static int vdso_getcpu(unsigned *cpu, unsigned *node, void *cache)
{
    (void)cache;
    if (cpu)
        *cpu = 0;
    if (node)
        *node = 0;
    return 0;
}

enum { SYM_NULL, SYM_CLOCK_GETTIME, SYM_GETCPU, NSYMS };

struct vdso_image {
    Elf64_Ehdr eh;
    Elf64_Phdr ph[2];
    Elf64_Dyn dyn[4];
    Elf64_Sym sym[NSYMS];
    uint32_t hash[2 + 1 + NSYMS]; /* nbucket, nchain, bucket[1], chain[] */
    char str[48];
};

#define STR_CLOCK_GETTIME 1 /* offsets in str */
#define STR_GETCPU        22

__attribute__((aligned(16))) static const struct vdso_image vdso = {
    .eh =
        {
            .e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT},
            .e_type = ET_DYN,
            .e_machine = EM_X86_64,
            .e_version = EV_CURRENT,
            .e_phoff = offsetof(struct vdso_image, ph),
            .e_ehsize = sizeof(Elf64_Ehdr),
            .e_phentsize = sizeof(Elf64_Phdr),
            .e_phnum = 2,
        },
    .ph =
        {
            {.p_type = PT_LOAD,
             .p_flags = PF_R | PF_X,
             .p_offset = 0,
             .p_vaddr = (Elf64_Addr)&vdso,
             .p_filesz = sizeof(struct vdso_image),
             .p_memsz = sizeof(struct vdso_image),
             .p_align = 16},
            {.p_type = PT_DYNAMIC,
             .p_flags = PF_R,
             .p_offset = offsetof(struct vdso_image, dyn),
             .p_vaddr = (Elf64_Addr)&vdso.dyn,
             .p_filesz = sizeof(vdso.dyn),
             .p_memsz = sizeof(vdso.dyn),
             .p_align = 8},
        },
    .dyn =
        {
            {.d_tag = DT_STRTAB, .d_un.d_ptr = (Elf64_Addr)vdso.str},
            {.d_tag = DT_SYMTAB, .d_un.d_ptr = (Elf64_Addr)vdso.sym},
            {.d_tag = DT_HASH, .d_un.d_ptr = (Elf64_Addr)vdso.hash},
            {.d_tag = DT_NULL},
        },
    .sym =
        {
            [SYM_CLOCK_GETTIME] = {.st_name = STR_CLOCK_GETTIME,
                                   .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
                                   .st_shndx = 1,
                                   .st_value = (Elf64_Addr)ember_vdso_clock_gettime},
            [SYM_GETCPU] = {.st_name = STR_GETCPU,
                            .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
                            .st_shndx = 1,
                            .st_value = (Elf64_Addr)vdso_getcpu},
        },
    /* One bucket holding every symbol, chained in order. */
    .hash = {1, NSYMS, SYM_CLOCK_GETTIME, 0, SYM_GETCPU, 0},
    .str = "\0__vdso_clock_gettime\0__vdso_getcpu",
};

_Static_assert(sizeof("\0__vdso_clock_gettime") == STR_GETCPU + 0, "vDSO string offsets");

const char *ember_vdso_image(void)
{
    return (const char *)&vdso;
}
