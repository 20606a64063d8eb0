/* sdk.h: what the parts of libember share (not a public header).
 *
 * libember is built freestanding and -mgeneral-regs-only: its system-call
 * path must not touch the application's SSE registers, and its fault path
 * runs at CPL0, which on kvm_pvm is emulated and cannot execute SSE state
 * instructions. Names exported from the library carry the ember_ prefix.
 */
#ifndef EMBER_SDK_H
#define EMBER_SDK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ember/abi.h>
#include <ember/guest.h>

#define PAGE_SIZE        4096u
#define ALIGN_UP(x, a)   (((x) + (a)-1) & ~((uintptr_t)(a)-1))
#define ALIGN_DOWN(x, a) ((x) & ~((uintptr_t)(a)-1))
#define NORETURN         __attribute__((noreturn))
/* Rarely run: GCC places it in .text.unlikely.*, which ember.ld keeps out of
 * the start-up pages. */
#define COLD __attribute__((cold, noinline))

/* Registers as ember_syscall_entry (cpu_entry.S) saves them. */
struct ember_syscall_frame {
    uint64_t nr, rdi, rsi, rdx, r10, r8, r9;
    uint64_t rip, cs, rflags, rsp, ss; /* the iretq frame */
};

/* Registers as ember_exc_common (cpu_entry.S) saves them. */
struct ember_fault_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

/* boot_start.c */
extern struct ember_boot_info ember_bi;
extern enum ember_boot_kind ember_kind;
extern uintptr_t ember_ram_top;       /* end of usable RAM, page-aligned */
extern uintptr_t ember_boot_info_gpa; /* the loader's ember_boot_info (0 under PVH) */

/* boot_pvh.c: fills *bi from a hvm_start_info; 0 or -1 (not PVH). */
int ember_pvh_boot_info(uintptr_t start_info, struct ember_boot_info *bi);

/* boot_cmdline.c: splits a command line into NUL-separated words in out
 * (room for len + 1 bytes) and returns how many. */
size_t ember_cmdline_split(const char *cmdline, size_t len, char *out);
/* What a word of the command line is for (Linux's rules, boot_cmdline.c). */
enum { EMBER_WORD_ARG, EMBER_WORD_ENV, EMBER_WORD_KERNEL, EMBER_WORD_DASHES };
int ember_cmdline_word_kind(const char *word, bool after_dashes);

/* console.c */
/* The SDK's reports (faults, start-up): on the fault path, no buffer, to
 * ember's stderr. */
void ember_console_writev(const struct ember_iovec *iov, uint32_t iovcnt);
/* The program's fd 1 (EMBER_CONSOLE_STDOUT, coalesced) and fd 2. */
void ember_console_write_stream(const struct ember_iovec *iov, uint32_t iovcnt, uint32_t stream);
/* Writes out what the console buffer holds (before a sleep or a wait). */
void ember_console_flush(void);
void ember_console_puts(const char *s);
/* The SDK's own messages (a signal that ends the guest, a trace line). */
void ember_console_write_err(const char *s, size_t len);
NORETURN void ember_exit(int status);
NORETURN void ember_triple_fault(void);

/* sys_mem.c */
void ember_mem_init(uintptr_t lo, uintptr_t hi, int assume_dirty);
long ember_sys_brk(uintptr_t addr);
long ember_sys_mmap(uintptr_t addr, size_t len, int prot, int flags, int fd, long off);
long ember_sys_munmap(uintptr_t addr, size_t len);
long ember_sys_mremap(uintptr_t old_addr, size_t old_len, size_t new_len, int flags,
                      uintptr_t new_addr);

/* sys_rlimit.c: prlimit64, and getrlimit/setrlimit through it */
long ember_sys_prlimit64(int pid, unsigned int resource, const void *new_lim, void *old_lim);

/* boot_restore.c: after a snapshot restore (ember/abi.h) */
uint64_t ember_restore_generation(void); /* 0: never restored */
void ember_restore_poll(void);
/* The vsock CID the monitor wrote at the last restore, 0: none (read the
 * device's config space). */
uint64_t ember_restore_vsock_cid(void);
/* vsock_dev.c: the device's interrupt routed now (IDT, local APIC, IOAPIC
 * pin: cpu_irq.c) rather than at the first wait that sleeps. */
void vsock_dev_route_irq(void); /* catch up with a restore, if there was one */

/* sys_time.c */
void ember_time_init(uint64_t tsc_at_entry);
/* The wall clock was realtime_ns when the TSC read tsc (a restore). */
void ember_time_restored(uint64_t realtime_ns, uint64_t tsc);
uint64_t ember_monotonic_ns(void);
void ember_sleep_ns(uint64_t ns);
uint64_t ember_idle_ns(void);     /* time slept so far (host sleeps, hlt waits) */
void ember_idle_add(uint64_t ns); /* cpu_irq.c: a hlt wait */
uint64_t ember_image_kib(void);   /* boot_start.c: the loaded image */
uint64_t ember_realtime_ns(void);
int ember_clock_ns(int clock, uint64_t *ns); /* 0 or -EINVAL */

/* sys_vdso.c */
struct timespec;
const char *ember_vdso_image(void); /* for AT_SYSINFO_EHDR */
int ember_vdso_clock_gettime(int clock, struct timespec *ts);

/* sys_random.c */
void ember_random_init(void);
void ember_random_fill(void *buf, size_t len);
void ember_random_reseed(const uint8_t entropy[32]);
int ember_cpu_has_rdrand(void);

/* sys_dispatch.c */
long ember_syscall(struct ember_syscall_frame *f);
extern uint64_t ember_fs_base; /* what ARCH_SET_FS or __set_thread_area set */

/* cpu_entry.S */
void ember_wrmsr_trap(uint32_t msr, uint64_t value);
NORETURN void ember_jump_to_start(uintptr_t sp, void (*entry)(void));
extern const uint64_t ember_exc_stubs[32];
extern uint64_t ember_entry_tsc;    /* TSC at the first guest instruction */
extern uint32_t ember_cr4_fsgsbase; /* 1 if CR4.FSGSBASE is on */
extern uint32_t ember_cpuid1[4];    /* CPUID leaf 1 (ECX, EDX) read at entry */

/* Small helpers: the library does not depend on libc's string functions. */
static inline void sdk_memset(void *d, int c, size_t n)
{
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
}

static inline void sdk_memcpy(void *d, const void *s, size_t n)
{
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

static inline size_t sdk_strnlen(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n])
        n++;
    return n;
}

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
    return v;
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid"
                     : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(sub));
}

static inline int cpu_cpl(void)
{
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    return cs & 3;
}

/* Is [p, p + n) inside guest RAM (and not the NULL page)? */
static inline int user_range_ok(uintptr_t p, size_t n)
{
    return p >= PAGE_SIZE && p <= ember_ram_top && n <= ember_ram_top - p;
}

#endif /* EMBER_SDK_H */
