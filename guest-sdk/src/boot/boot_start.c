/* boot_start.c: from the first CPL3 instruction to musl's _start.
 *
 * cpu_entry.S has loaded the SDK's GDT, TSS, IDT register, CR4, the SYSCALL
 * MSRs and page tables at CPL0, and `iretq`s here, at CPL3, on the boot
 * stack, with the loader's two registers as arguments. Everything else is
 * done here, natively fast even on kvm_pvm:
 *  1. x87/SSE control words to their defaults (musl's printf uses x87);
 *  2. the IDT gates for vectors 0-31 (stubs in cpu_entry.S, IST1, DPL 0);
 *  3. the boot info: ember's, copied, or one made from PVH's hvm_start_info;
 *  4. clocks, random generator, and the memory layout:
 *       [1 MiB, _end)             the image, which includes the main
 *                                 thread's stack (1 MiB, ember.ld)
 *       [_end, top)               the heap (brk + mmap, sys_mem.c)
 *     where top is the end of RAM (below the MMIO hole at 3 GiB);
 *  5. the initial process stack as Linux builds it for a static executable
 *     (psABI §3.4.1: argc, argv, envp, auxv; strings above; the command
 *     line's words sorted into argv and envp as Linux does for init), then a jump to
 *     musl's _start (crt1.o), which calls __libc_start_main and main.
 * The main stack's top shares a page with the boot stack, and the stack
 * lies inside the image rather than at the top of RAM: on kvm_pvm each page
 * first touched costs ~22 us, and this way start-up touches one page for
 * both stacks (ember.ld explains the layout).
 * The boot timer (EMBER_BOOT_TIMER_GPA) is written just before that jump,
 * and only when the monitor asked for it (each MMIO exit costs 10-30 us).
 */
#include <elf.h>
#include <stdio.h>

#include "arch/cpu_defs.h"
#include "posix/sys_trace.h"
#include "sdk.h"

_Static_assert(CPU_BOOT_MAGIC == EMBER_BOOT_MAGIC, "cpu_defs.h vs abi.h");
_Static_assert(CPU_ABI_VERSION == EMBER_ABI_VERSION, "cpu_defs.h vs abi.h");
_Static_assert(CPU_NOTE_GUEST == EMBER_NOTE_GUEST, "cpu_defs.h vs abi.h");
_Static_assert(GDT_KCODE == EMBER_BOOT_CS && GDT_KDATA == EMBER_BOOT_DS, "selectors");
_Static_assert(sizeof(struct ember_idt_gate) == 16, "IDT gate");
_Static_assert(EXC_VECTORS == EMBER_IDT_VECTORS, "cpu_defs.h vs guest.h");

#define MIN_HEAP (64u * 1024)
#define AUX_MAX  20

struct ember_boot_info ember_bi;
enum ember_boot_kind ember_kind;
uintptr_t ember_ram_top;
uintptr_t ember_boot_info_gpa;

extern const Elf64_Ehdr __ehdr_start; /* ember.ld loads the headers */
extern char __ember_image_end[];
extern char __ember_main_stack_lo[], ember_main_stack_top[]; /* ember.ld, cpu_entry.S */
extern void _start(void);                                    /* musl's crt1.o */

NORETURN void ember_start(uintptr_t info, uint64_t magic);

uint64_t ember_image_kib(void)
{
    return ((uintptr_t)__ember_image_end - (uintptr_t)&__ehdr_start) / 1024;
}

const struct ember_boot_info *ember_boot_info(void)
{
    return &ember_bi;
}

enum ember_boot_kind ember_boot_kind(void)
{
    return ember_kind;
}

static void fpu_init(void)
{
    uint32_t mxcsr = 0x1f80; /* all exceptions masked, round to nearest */
    __asm__ volatile("fninit; ldmxcsr %0" : : "m"(mxcsr));
}

static void idt_init(void)
{
    for (unsigned v = 0; v < EXC_VECTORS; v++) {
        uint64_t a = ember_exc_stubs[v];
        ember_idt[v] = (struct ember_idt_gate){
            .offset_lo = (uint16_t)a,
            .selector = GDT_KCODE,
            .ist = 1,
            .type_attr = 0x8e, /* present, DPL 0, 64-bit interrupt gate */
            .offset_mid = (uint16_t)(a >> 16),
            .offset_hi = (uint32_t)(a >> 32),
            .reserved = 0,
        };
    }
}

static NORETURN void die(const char *msg)
{
    ember_console_puts("ember: guest SDK: ");
    ember_console_puts(msg);
    ember_console_puts("\n");
    ember_exit(255);
}

static void boot_info_init(uintptr_t info, uint64_t magic)
{
    const struct ember_boot_info *bi = (const void *)info;
    if (magic == EMBER_BOOT_MAGIC && info >= PAGE_SIZE && bi->magic == EMBER_BOOT_MAGIC) {
        ember_kind = EMBER_BOOT_KIND_EMBER;
        ember_boot_info_gpa = info;
        uint32_t size = bi->size; /* read once */
        if (size > sizeof(ember_bi))
            size = sizeof(ember_bi);
        sdk_memcpy(&ember_bi, bi, size);
        ember_bi.size = size;
        if (!ember_bi.progname)
            ember_bi.progname = "ember";
        if (!ember_bi.cmdline) {
            ember_bi.cmdline = "";
            ember_bi.cmdline_len = 0;
        }
        return;
    }
    ember_kind = EMBER_BOOT_KIND_PVH;
    if (ember_pvh_boot_info(info, &ember_bi) != 0)
        die("no ember boot info and no PVH start info");
}

/* musl asks TIOCGWINSZ on the first write to stdout to decide whether to
 * line-buffer it (a system call, ~20 us on kvm_pvm). The SDK's console is a
 * terminal (sys_ioctl says so), so the answer is always "line-buffered":
 * setvbuf(_IOLBF) says it up front, which is what musl's F_SVB flag is for,
 * and stdout behaves exactly as before. Done before _start, so before any
 * use of the stream, as setvbuf requires. stdout is a weak reference: a
 * program that never uses stdio does not get it linked in. */
extern FILE *const stdout __attribute__((weak));

static void stdout_line_buffered(void)
{
    if (&stdout != NULL)
        setvbuf(stdout, NULL, _IOLBF, 0);
}

/* The initial process stack, built downwards from sp. */
struct stack {
    uintptr_t sp;
    uintptr_t floor;
};

static void *stack_alloc(struct stack *s, size_t n, size_t align)
{
    if (s->sp - s->floor < n + align)
        die("command line does not fit in the stack");
    s->sp = ALIGN_DOWN(s->sp - n, align);
    return (void *)s->sp;
}

static char *stack_str(struct stack *s, const char *str)
{
    size_t n = sdk_strnlen(str, EMBER_CMDLINE_MAX);
    char *d = stack_alloc(s, n + 1, 1);
    sdk_memcpy(d, str, n);
    d[n] = '\0';
    return d;
}

static uintptr_t build_process_stack(uintptr_t top, uintptr_t floor)
{
    struct stack s = {.sp = top, .floor = floor};

    /* Strings and bytes the vectors point to. */
    uint8_t *random = stack_alloc(&s, 16, 16);
    sdk_memcpy(random, ember_bi.entropy, 16);
    char *platform = stack_str(&s, "x86_64");
    char *progname = stack_str(&s, ember_bi.progname);
    size_t len = ember_bi.cmdline_len;
    if (len > EMBER_CMDLINE_MAX * 16 || !user_range_ok((uintptr_t)ember_bi.cmdline, len + 1))
        len = 0;
    char *words = stack_alloc(&s, len + 1, 1);
    size_t nwords = ember_cmdline_split(ember_bi.cmdline, len, words);

    const Elf64_Ehdr *eh = &__ehdr_start;
    uint64_t aux[AUX_MAX][2] = {
        {AT_PHDR, (uintptr_t)eh + eh->e_phoff},
        {AT_PHENT, eh->e_phentsize},
        {AT_PHNUM, eh->e_phnum},
        {AT_PAGESZ, PAGE_SIZE},
        {AT_ENTRY, (uintptr_t)_start},
        {AT_UID, 0},
        {AT_EUID, 0},
        {AT_GID, 0},
        {AT_EGID, 0},
        {AT_SECURE, 0},
        {AT_HWCAP, ember_cpuid1[3]}, /* as Linux: CPUID.1:EDX */
        {AT_HWCAP2, 0},
        {AT_CLKTCK, 100},
        {AT_PLATFORM, (uintptr_t)platform},
        {AT_RANDOM, (uintptr_t)random},
        {AT_EXECFN, (uintptr_t)progname},
        {AT_SYSINFO_EHDR, (uintptr_t)ember_vdso_image()},
        {AT_NULL, 0},
    };
    size_t naux = 0;
    while (aux[naux][0] != AT_NULL)
        naux++;
    naux++;

    /* Words to argv or envp (Linux's rules: boot_cmdline.c). */
    size_t nargs = 0, nenv = 0;
    bool dashes = false;
    const char *w = words;
    for (size_t i = 0; i < nwords; i++, w += sdk_strnlen(w, len + 1) + 1) {
        int kind = ember_cmdline_word_kind(w, dashes);
        nargs += kind == EMBER_WORD_ARG;
        nenv += kind == EMBER_WORD_ENV;
        dashes |= kind == EMBER_WORD_DASHES;
    }

    /* argc, argv[argc + 1], envp[nenv + 1], auxv: keep argc 16-byte aligned. */
    size_t argc = nargs + 1;
    size_t nslots = 1 + (argc + 1) + (nenv + 1) + 2 * naux;
    uint64_t *v = stack_alloc(&s, nslots * sizeof(uint64_t), 16);
    size_t k = 0, e = 1 + argc + 1;
    v[k++] = argc;
    v[k++] = (uintptr_t)progname;
    dashes = false;
    w = words;
    for (size_t i = 0; i < nwords; i++, w += sdk_strnlen(w, len + 1) + 1) {
        int kind = ember_cmdline_word_kind(w, dashes);
        if (kind == EMBER_WORD_ARG)
            v[k++] = (uintptr_t)w;
        else if (kind == EMBER_WORD_ENV)
            v[e++] = (uintptr_t)w;
        dashes |= kind == EMBER_WORD_DASHES;
    }
    v[k++] = 0; /* end of argv */
    k += nenv;
    v[k++] = 0; /* end of envp */
    ember_trace_init((char *const *)(v + 1 + argc + 1));
    for (size_t i = 0; i < naux; i++) {
        v[k++] = aux[i][0];
        v[k++] = aux[i][1];
    }
    return s.sp;
}

void ember_start(uintptr_t info, uint64_t magic)
{
    fpu_init();
    idt_init();
    boot_info_init(info, magic);
    ember_time_init(ember_entry_tsc);
    ember_random_init();

    uint64_t mem = ember_bi.mem_size;
    if (mem > EMBER_MMIO_GAP_START)
        mem = EMBER_MMIO_GAP_START;
    uintptr_t top = ALIGN_DOWN((uintptr_t)mem, PAGE_SIZE);
    uintptr_t image_end = ALIGN_UP((uintptr_t)__ember_image_end, PAGE_SIZE);
    if (top < image_end + MIN_HEAP)
        die("not enough memory for the image and a heap");
    ember_ram_top = top;
    ember_mem_init(image_end, top, ember_kind != EMBER_BOOT_KIND_EMBER);

    uintptr_t sp =
        build_process_stack((uintptr_t)ember_main_stack_top, (uintptr_t)__ember_main_stack_lo);
    stdout_line_buffered();

    if (ember_bi.flags & EMBER_BOOT_F_TIMER)
        *(volatile uint8_t *)(uintptr_t)EMBER_BOOT_TIMER_GPA = EMBER_BOOT_TIMER_MAGIC;
    ember_jump_to_start(sp, _start);
}
