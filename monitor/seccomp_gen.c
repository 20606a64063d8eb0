/* seccomp_gen.c: ember's seccomp filters, written with libseccomp at build
 * time and exported as classic BPF into a generated header
 * (seccomp_bpf.h) that seccomp_filter.c installs with one seccomp() call.
 *
 * Why at build time: building a libseccomp context and loading it costs
 * ~0.13 ms per process on our hosts, against a boot budget of ~2 ms; the
 * prebuilt program costs one system call. Values only known at run time (the
 * vCPU's file descriptor, the eventfds) are placeholders in the program that
 * seccomp_filter.c patches before loading (seccomp_filter.h says which).
 *
 * One filter per thread role:
 *   vcpu          the thread in vm_run(): KVM_RUN on its own vCPU fd, console
 *                 and log writes, eventfd signals, and what ending the thread
 *                 or (`ember run` without devices) the process needs.
 *   vcpu_timings  vcpu plus what --timings reads after the guest ends.
 *   main          the libuv loop that serves devices and the API once the
 *                 guest runs.
 * Every allowed call has a comment saying why. Anything else traps (SIGSYS:
 * the handler logs the call and exits with 148, Firecracker's status).
 *
 * Usage: seccomp_gen OUTPUT.h
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/falloc.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/if_tun.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "monitor/seccomp_placeholders.h"

#ifndef MREMAP_MAYMOVE
#define MREMAP_MAYMOVE 1 /* <linux/mman.h>; <sys/mman.h> has it only with _GNU_SOURCE */
#endif

#define MAX_NAMES 128

struct role {
    const char *name;
    scmp_filter_ctx ctx;
    const char *names[MAX_NAMES]; /* allowed calls, for the header */
    int n_names;
};

static void die(const char *what, int rc)
{
    fprintf(stderr, "seccomp_gen: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
    exit(1);
}

/* Allows call `name` when all of the n comparisons hold. */
static void allow(struct role *r, const char *name, unsigned n, ...)
{
    struct scmp_arg_cmp cmp[4];
    va_list ap;
    int nr = seccomp_syscall_resolve_name(name), rc;
    bool seen = false;

    if (nr == __NR_SCMP_ERROR) {
        fprintf(stderr, "seccomp_gen: unknown system call %s\n", name);
        exit(1);
    }
    va_start(ap, n);
    for (unsigned i = 0; i < n; i++)
        cmp[i] = va_arg(ap, struct scmp_arg_cmp);
    va_end(ap);
    rc = seccomp_rule_add_array(r->ctx, SCMP_ACT_ALLOW, nr, n, cmp);
    if (rc)
        die(name, rc);
    for (int i = 0; i < r->n_names; i++)
        seen |= strcmp(r->names[i], name) == 0;
    if (!seen)
        r->names[r->n_names++] = name;
}

/* Memory management every thread needs (malloc, thread stacks): never a
 * mapping that is executable, so no code can be brought in. */
static void allow_memory(struct role *r)
{
    /* malloc's arenas and large blocks; PROT_EXEC refused */
    allow(r, "mmap", 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    /* glibc grows per-thread arenas with mprotect; PROT_EXEC refused */
    allow(r, "mprotect", 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    /* free() of large blocks, teardown of guest memory and kvm_run */
    allow(r, "munmap", 0);
    /* glibc's realloc of a block it mmapped (>= 128 KiB by default: vsock
     * and API buffers, the MMDS document) moves it with mremap. MREMAP_MAYMOVE
     * alone: no MREMAP_FIXED, so a mapping cannot be moved over another, and
     * the protection stays the old mapping's (never executable, see mmap). */
    allow(r, "mremap", 1, SCMP_A3(SCMP_CMP_EQ, MREMAP_MAYMOVE));
    /* malloc's main heap */
    allow(r, "brk", 0);
    /* glibc releases an ending thread's stack and trims arenas with
     * MADV_DONTNEED; no other advice */
    allow(r, "madvise", 1, SCMP_A2(SCMP_CMP_EQ, MADV_DONTNEED));
}

/* Ending threads and the process, locks, signals: every role. */
static void allow_common(struct role *r)
{
    /* pthread mutexes and condition variables (pause/resume, device locks) */
    allow(r, "futex", 0);
    /* returning from the vCPU kick handler (SIGUSR1, vm_pause) */
    allow(r, "rt_sigreturn", 0);
    /* glibc blocks signals while a thread ends */
    allow(r, "rt_sigprocmask", 0);
    /* a thread's end */
    allow(r, "exit", 0);
    /* the process's end, also from the SIGSYS handler */
    allow(r, "exit_group", 0);
    /* the log line of a failure and of a seccomp violation */
    allow(r, "write", 1, SCMP_A0(SCMP_CMP_EQ, 2));
    /* clocks normally come from the vDSO; this is the fallback */
    allow(r, "clock_gettime", 0);
    /* glibc's lock back-off */
    allow(r, "sched_yield", 0);
    /* The SIGBUS handler (mem_fault.h) gives a SIGBUS outside watched
     * memory back its previous action (mmap of the zero page over a lost
     * guest page is allow_memory's) */
    allow(r, "rt_sigaction", 1, SCMP_A0(SCMP_CMP_EQ, SIGBUS));
    allow_memory(r);
}

/* Reads and writes of an eventfd are always 8 bytes. The slots become the
 * anonymous-inode descriptors open when the filter is installed (eventfds,
 * but also KVM, epoll and io_uring fds, which have no read or write). */
static void allow_eventfds(struct role *r, unsigned slots)
{
    for (unsigned i = 0; i < slots; i++) {
        allow(r, "write", 2, SCMP_A0(SCMP_CMP_EQ, SECCOMP_PH_ANON_FD(i)), SCMP_A2(SCMP_CMP_EQ, 8));
        allow(r, "read", 2, SCMP_A0(SCMP_CMP_EQ, SECCOMP_PH_ANON_FD(i)), SCMP_A2(SCMP_CMP_EQ, 8));
    }
}

static void build_vcpu(struct role *r, bool timings, unsigned slots)
{
    allow_common(r);
    /* The loop itself, on this VM's vCPU fd only. */
    allow(r, "ioctl", 2, SCMP_A0(SCMP_CMP_EQ, SECCOMP_PH_VCPU_FD),
          SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)KVM_RUN));
    /* guest_failed() reports rip and rsp */
    allow(r, "ioctl", 2, SCMP_A0(SCMP_CMP_EQ, SECCOMP_PH_VCPU_FD),
          SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)KVM_GET_REGS));
    /* stdio asks whether stdout/stderr is a terminal before buffering */
    allow(r, "ioctl", 2, SCMP_A0(SCMP_CMP_LE, 2), SCMP_A1(SCMP_CMP_EQ, TCGETS));
    allow(r, "newfstatat", 1, SCMP_A0(SCMP_CMP_LE, 2));
    allow(r, "fstat", 1, SCMP_A0(SCMP_CMP_LE, 2));
    /* the guest console (stdout, through stdio) */
    allow(r, "write", 1, SCMP_A0(SCMP_CMP_EQ, 1));
    allow(r, "writev", 1, SCMP_A0(SCMP_CMP_EQ, 1));
    allow(r, "writev", 1, SCMP_A0(SCMP_CMP_EQ, 2));
    /* queue notifications without ioeventfd, interrupts (irqfd), the
     * guest's end signalled to the main loop (uv_async_send) */
    allow_eventfds(r, slots);
    /* the guest's sleep port (legacy.c, guest_sleep: nanosleep) */
    allow(r, "clock_nanosleep", 0);
    allow(r, "nanosleep", 0);
    /* `ember run` without devices tears the VM down in this thread */
    allow(r, "close", 0);
    /* a KVM_RUN that fails with EFAULT: has the memory file shrunk? */
    allow(r, "fstat", 1, SCMP_A0(SCMP_CMP_EQ, SECCOMP_PH_MEM_FD));
    allow(r, "newfstatat", 1, SCMP_A0(SCMP_CMP_EQ, SECCOMP_PH_MEM_FD));
    /* the SIGBUS handler re-raises a SIGBUS that was sent, not a fault
     * (raise(): gettid, getpid, then tgkill of this process only) */
    allow(r, "gettid", 0);
    allow(r, "getpid", 0);
    allow(r, "tgkill", 2, SCMP_A0(SCMP_CMP_EQ, SECCOMP_PH_PID), SCMP_A2(SCMP_CMP_EQ, SIGBUS));
    if (timings) {
        /* --timings: VmHWM from /proc/self/status, read-only */
        allow(r, "openat", 1, SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY));
        allow(r, "read", 0);
        allow(r, "lseek", 1, SCMP_A0(SCMP_CMP_LE, 2));
        /* --timings: which guest pages are resident */
        allow(r, "mincore", 0);
        allow(r, "getrusage", 0);
    }
    /* KVM_RUN is by far the most frequent call: test it first. */
    seccomp_syscall_priority(r->ctx, seccomp_syscall_resolve_name("ioctl"), 255);
}

static void build_main(struct role *r)
{
    allow_common(r);
    /* the libuv loop */
    allow(r, "epoll_wait", 0);
    allow(r, "epoll_pwait", 0);
    allow(r, "epoll_ctl", 0);
    /* eventfds, sockets and pipes of the loop, the API's connections,
     * metrics and log files */
    allow(r, "read", 0);
    allow(r, "readv", 0);
    allow(r, "write", 0);
    allow(r, "writev", 0);
    /* virtio-blk, Sync engine */
    allow(r, "preadv", 0);
    allow(r, "pwritev", 0);
    allow(r, "pread64", 0);
    allow(r, "pwrite64", 0);
    allow(r, "fdatasync", 0);
    allow(r, "fsync", 0);
    /* virtio-blk DISCARD and WRITE_ZEROES: punch a hole, or zero a range,
     * never change the file's size */
    allow(r, "fallocate", 1, SCMP_A1(SCMP_CMP_EQ, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE));
    allow(r, "fallocate", 1, SCMP_A1(SCMP_CMP_EQ, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE));
    /* virtio-blk, io_uring engine: submit and reap on the ring made before */
    allow(r, "io_uring_enter", 0);
    /* virtio-net: the receive offloads the guest negotiated go to the tap
     * (the tap itself is opened before the filter) */
    allow(r, "ioctl", 1, SCMP_A1(SCMP_CMP_EQ, TUNSETOFFLOAD));
    /* MMDS V2 session tokens: random bytes */
    allow(r, "getrandom", 0);
    /* API connections: accept, non-blocking, errors, half-close */
    allow(r, "accept4", 0);
    allow(r, "ioctl", 1, SCMP_A1(SCMP_CMP_EQ, FIONBIO));
    allow(r, "ioctl", 1, SCMP_A1(SCMP_CMP_EQ, FIOCLEX));
    allow(r, "fcntl", 0);
    allow(r, "getsockopt", 0);
    allow(r, "shutdown", 0);
    allow(r, "recvmsg", 0);
    allow(r, "sendmsg", 0);
    /* vsock: a connection the guest opens goes to the Unix socket
     * UDS_PATH_<port> (Firecracker's hybrid vsock): Unix sockets only */
    allow(r, "socket", 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    allow(r, "connect", 0);
    /* PATCH /drives after boot opens the new backing file; in a jail only
     * files inside the root are reachable */
    allow(r, "openat", 0);
    allow(r, "newfstatat", 0);
    allow(r, "fstat", 0);
    allow(r, "lseek", 0);
    /* closing connections, devices and the VM at the end */
    allow(r, "close", 0);
    /* the API socket is removed when ember ends */
    allow(r, "unlink", 0);
    /* vm_pause() kicks the vCPU thread out of KVM_RUN (pthread_kill) */
    allow(r, "tgkill", 0);
    allow(r, "getpid", 0);
    allow(r, "gettid", 0);
    /* Snapshots (snapshot_create.c), with the vCPU parked: reading the
     * vCPU's and the VM's state, read-only ioctls all */
    static const unsigned long kvm_reads[] = {
        KVM_CHECK_EXTENSION, KVM_GET_MSR_INDEX_LIST, KVM_GET_REGS,
        KVM_GET_SREGS,       KVM_GET_XSAVE,          KVM_GET_FPU,
        KVM_GET_XCRS,        KVM_GET_LAPIC,          KVM_GET_VCPU_EVENTS,
        KVM_GET_MP_STATE,    KVM_GET_DEBUGREGS,      KVM_GET_CPUID2,
        KVM_GET_MSRS,        KVM_GET_IRQCHIP,        KVM_GET_CLOCK,
        KVM_GET_TSC_KHZ,     KVM_GET_DIRTY_LOG,
    };
    for (size_t i = 0; i < sizeof(kvm_reads) / sizeof(kvm_reads[0]); i++)
        allow(r, "ioctl", 1, SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)kvm_reads[i]));
    /* ...and writing the memory and state files: sized, then renamed into
     * place once complete; mincore skips guest pages never touched */
    allow(r, "ftruncate", 0);
    allow(r, "rename", 0);
    allow(r, "mincore", 0);
    /* waiting for the vCPU thread (pthread_join) and timers */
    allow(r, "clock_nanosleep", 0);
    allow(r, "nanosleep", 0);
}

/* The program of r as `seccomp_bpf_<name>`. */
static void emit_prog(FILE *out, struct role *r, const char *name)
{
    FILE *tmp = tmpfile();
    struct sock_filter {
        unsigned short code;
        unsigned char jt, jf;
        unsigned int k;
    } insn;
    size_t n = 0;
    int rc;

    if (!tmp)
        die("tmpfile", errno);
    rc = seccomp_export_bpf(r->ctx, fileno(tmp));
    if (rc)
        die("seccomp_export_bpf", rc);
    rewind(tmp);
    fprintf(out, "static const struct sock_filter seccomp_bpf_%s[] = {\n", name);
    while (fread(&insn, sizeof(insn), 1, tmp) == 1) {
        fprintf(out, "    {0x%04x, %u, %u, 0x%08x},\n", insn.code, insn.jt, insn.jf, insn.k);
        n++;
    }
    fprintf(out, "};\n\n");
    fclose(tmp);
    if (n > 4096) {
        fprintf(stderr, "seccomp_gen: %s: %zu instructions, more than BPF allows\n", name, n);
        exit(1);
    }
}

/* The calls r allows as `seccomp_names_<r->name>`. */
static void emit_names(FILE *out, struct role *r)
{
    fprintf(out, "static const char *const seccomp_names_%s[] = {\n", r->name);
    for (int i = 0; i < r->n_names; i++)
        fprintf(out, "    \"%s\",\n", r->names[i]);
    fprintf(out, "    NULL,\n};\n\n");
}

static void init(struct role *r, const char *name)
{
    memset(r, 0, sizeof(*r));
    r->name = name;
    /* Anything not allowed: SIGSYS, handled in seccomp_filter.c. */
    r->ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!r->ctx)
        die("seccomp_init", ENOMEM);
    /* Another ABI (i386 int 0x80, x32) is never legitimate: kill. */
    seccomp_attr_set(r->ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    /* A binary tree of system-call numbers, not a list: loading a filter
     * runs it once per call number with the kernel's emulator (the action
     * cache, seccomp_cache_prepare), which a list makes walk most of its
     * length each time. Measured here (median of 41 loads): main filter
     * 81 -> 54 us, vCPU filter 50 -> 37 us; each call the guest's exits
     * make (KVM_RUN, eventfd writes) takes a few branches, not a walk. */
    seccomp_attr_set(r->ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
}

/* The kernel's cost of loading a filter grows with its length (~0.1 ms for
 * 650 instructions here), and the eventfd slots make most of a vCPU filter:
 * each vCPU role comes in sizes, and the smallest that fits is loaded. */
static const unsigned slot_variants[] = SECCOMP_SLOT_VARIANTS;
#define N_VARIANTS (sizeof(slot_variants) / sizeof(slot_variants[0]))

int main(int argc, char **argv)
{
    struct role r;
    char name[64];
    FILE *out;

    if (argc != 2) {
        fprintf(stderr, "usage: seccomp_gen OUTPUT.h\n");
        return 2;
    }
    out = fopen(argv[1], "w");
    if (!out)
        die(argv[1], errno);
    fprintf(out, "/* Generated by monitor/seccomp_gen.c: do not edit. */\n"
                 "#ifndef EMBER_SECCOMP_BPF_H\n#define EMBER_SECCOMP_BPF_H\n\n"
                 "#include <linux/filter.h>\n#include <stddef.h>\n\n");
    for (int timings = 0; timings < 2; timings++) {
        const char *role = timings ? "vcpu_timings" : "vcpu";
        for (size_t v = 0; v < N_VARIANTS; v++) {
            init(&r, role);
            build_vcpu(&r, timings, slot_variants[v]);
            snprintf(name, sizeof(name), "%s_%u", role, slot_variants[v]);
            emit_prog(out, &r, name);
            if (v == N_VARIANTS - 1)
                emit_names(out, &r);
            seccomp_release(r.ctx);
        }
    }
    init(&r, "main");
    build_main(&r);
    emit_prog(out, &r, "main");
    emit_names(out, &r);
    seccomp_release(r.ctx);

    /* System call names for the SIGSYS handler's log line. */
    fprintf(out, "static const char *const seccomp_syscall_names[] = {\n");
    int max = 0;
    for (int nr = 0; nr < 512; nr++) {
        char *sname = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);
        if (sname) {
            fprintf(out, "    [%d] = \"%s\",\n", nr, sname);
            max = nr;
            free(sname);
        }
    }
    fprintf(out, "};\n#define SECCOMP_SYSCALL_NAMES_MAX %d\n\n#endif\n", max);
    if (fclose(out) != 0)
        die(argv[1], errno);
    return 0;
}
