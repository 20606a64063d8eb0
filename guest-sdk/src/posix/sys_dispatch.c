/* sys_dispatch.c: the Linux system calls an SDK guest can make.
 *
 * musl issues `syscall`; ember_syscall_entry (cpu_entry.S) saves the
 * registers and calls ember_syscall(), which answers from inside the guest
 * wherever it can: most calls cost no VM exit at all. The exceptions are the
 * console (one `outl` per write/writev), sleeping (one `outl`) and exit.
 *
 * This runs at CPL0 on hardware and at CPL3 on kvm_pvm (where `syscall` does
 * not raise the privilege level): nothing here may depend on which. Port I/O
 * works in both because the application runs with IOPL = 3; the FS base is
 * written with wrfsbase (CR4.FSGSBASE), with wrmsr at CPL0, or through the
 * ember_wrmsr_trap `ud2` when at CPL3 without FSGSBASE.
 *
 * Pointers from the application are identity-mapped guest addresses; they
 * are range-checked against RAM so that a bad one gets EFAULT instead of a
 * page fault. The list of calls and their behaviour is in README.md.
 *
 * ember_syscall() answers the calls that are frequent or on the start-up
 * path with a small switch (no jump table); everything else is in
 * sys_other(), marked cold, so that the code and the jump table of the big
 * switch stay out of the pages that every boot touches (on kvm_pvm each
 * first touch of a page costs ~22 us; see ember.ld).
 * clock_gettime (and so time() and gettimeofday()) normally never gets here:
 * musl calls the SDK's vDSO function directly (sys_vdso.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>

#include "fs/fs_vfs.h"
#include "posix/sys_console.h"
#include "posix/sys_fd.h"
#include "posix/sys_pipe.h"
#include "posix/sys_signal.h"
#include "posix/sys_socket.h"
#include "posix/sys_trace.h"
#include "sdk.h"

#define ARCH_SET_GS  0x1001
#define ARCH_SET_FS  0x1002
#define ARCH_GET_FS  0x1003
#define ARCH_GET_GS  0x1004
#define MSR_FS_BASE  0xc0000100u
#define MSR_GS_BASE  0xc0000101u
#define NSEC_PER_SEC 1000000000ull

uint64_t ember_fs_base; /* also written by __set_thread_area (cpu_entry.S) */
static uint64_t gs_base;

/* fds 0-2 are the console until one is closed or replaced: then the fd
 * table answers (sys_fd.c). In this file so that it lives in the start-up
 * data page, which every write touches anyway. */
bool fd_std_changed;

static long sys_writev(int fd, const struct iovec *iov, long iovcnt)
{
    if (fd_std_changed || (fd != 1 && fd != 2))
        return fd_sys_writev(fd, iov, iovcnt);
    return console_sys_writev(fd == 2 ? EMBER_CONSOLE_STDERR : EMBER_CONSOLE_STDOUT, iov, iovcnt);
}

static long sys_write(int fd, const void *buf, size_t len)
{
    if (fd_std_changed || (fd != 1 && fd != 2))
        return fd_sys_write(fd, buf, len);
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return console_sys_writev(fd == 2 ? EMBER_CONSOLE_STDERR : EMBER_CONSOLE_STDOUT, &iov, 1);
}

static void write_base(uint32_t msr, uint64_t v)
{
    if (ember_cr4_fsgsbase) {
        if (msr == MSR_FS_BASE)
            __asm__ volatile("wrfsbase %0" : : "r"(v) : "memory");
        else
            __asm__ volatile("wrgsbase %0" : : "r"(v) : "memory");
    } else if (cpu_cpl() == 0) {
        __asm__ volatile("wrmsr"
                         :
                         : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
                         : "memory");
    } else {
        ember_wrmsr_trap(msr, v);
    }
}

static long sys_arch_prctl(int code, uint64_t addr)
{
    switch (code) {
    case ARCH_SET_FS:
    case ARCH_SET_GS:
        if ((uint64_t)((int64_t)(addr << 16) >> 16) != addr)
            return -EPERM; /* not canonical */
        write_base(code == ARCH_SET_FS ? MSR_FS_BASE : MSR_GS_BASE, addr);
        if (code == ARCH_SET_FS)
            ember_fs_base = addr;
        else
            gs_base = addr;
        return 0;
    case ARCH_GET_FS:
    case ARCH_GET_GS:
        if (!user_range_ok(addr, sizeof(uint64_t)))
            return -EFAULT;
        *(uint64_t *)addr = code == ARCH_GET_FS ? ember_fs_base : gs_base;
        return 0;
    default:
        return -EINVAL;
    }
}

static long sys_clock_gettime(clockid_t id, struct timespec *ts)
{
    if (!user_range_ok((uintptr_t)ts, sizeof(*ts)))
        return -EFAULT;
    return ember_vdso_clock_gettime((int)id, ts);
}

static long sys_clock_getres(clockid_t id, struct timespec *ts)
{
    uint64_t ns;
    int r = ember_clock_ns((int)id, &ns);
    if (r)
        return r;
    if (ts) {
        if (!user_range_ok((uintptr_t)ts, sizeof(*ts)))
            return -EFAULT;
        ts->tv_sec = 0;
        ts->tv_nsec = 1;
    }
    return 0;
}

static long sys_gettimeofday(struct timeval *tv, struct timezone *tz)
{
    uint64_t ns = ember_realtime_ns();
    if (tv) {
        if (!user_range_ok((uintptr_t)tv, sizeof(*tv)))
            return -EFAULT;
        tv->tv_sec = (time_t)(ns / NSEC_PER_SEC);
        tv->tv_usec = (suseconds_t)(ns % NSEC_PER_SEC / 1000);
    }
    if (tz) {
        if (!user_range_ok((uintptr_t)tz, sizeof(*tz)))
            return -EFAULT;
        tz->tz_minuteswest = 0;
        tz->tz_dsttime = 0;
    }
    return 0;
}

static long sys_time(time_t *t)
{
    time_t now = (time_t)(ember_realtime_ns() / NSEC_PER_SEC);
    if (t) {
        if (!user_range_ok((uintptr_t)t, sizeof(*t)))
            return -EFAULT;
        *t = now;
    }
    return now;
}

static bool never_ready(void *arg)
{
    (void)arg;
    return false;
}

static long sys_clock_nanosleep(clockid_t id, int flags, const struct timespec *req,
                                struct timespec *rem)
{
    uint64_t now;
    int r = ember_clock_ns((int)id, &now);
    if (r)
        return r;
    if (!user_range_ok((uintptr_t)req, sizeof(*req)))
        return -EFAULT;
    struct timespec t = *req;
    if (t.tv_sec < 0 || t.tv_nsec < 0 || t.tv_nsec >= (long)NSEC_PER_SEC)
        return -EINVAL;
    uint64_t ns = (uint64_t)t.tv_sec > UINT64_MAX / NSEC_PER_SEC - 1
                      ? UINT64_MAX
                      : (uint64_t)t.tv_sec * NSEC_PER_SEC + (uint64_t)t.tv_nsec;
    if (flags & TIMER_ABSTIME)
        ns = ns > now ? ns - now : 0;
    if (!ember_sig) {
        ember_sleep_ns(ns); /* no handler, no timer: nothing can interrupt */
    } else {
        /* A signal handler or a timer: the sleep ends early for a signal,
         * with EINTR and (relative sleeps) the time left, as Linux. */
        uint64_t t0 = ember_monotonic_ns();
        if (ember_sig_wait(never_ready, NULL, NULL, ns) == -EINTR) {
            uint64_t slept = ember_monotonic_ns() - t0;
            uint64_t left = slept < ns ? ns - slept : 0;
            if (rem && !(flags & TIMER_ABSTIME) && user_range_ok((uintptr_t)rem, sizeof(*rem))) {
                rem->tv_sec = (time_t)(left / NSEC_PER_SEC);
                rem->tv_nsec = (long)(left % NSEC_PER_SEC);
            }
            return -EINTR;
        }
    }
    return 0;
}

/* CPU time: one vCPU, one process, so the time since entry minus the time
 * the guest slept (host sleeps and hlt waits, sys_time.c), all of it user
 * time; no children. */
static uint64_t cpu_ns(void)
{
    uint64_t now = ember_monotonic_ns(), idle = ember_idle_ns();
    return now > idle ? now - idle : 0;
}

static long sys_times(struct tms *t)
{
    const uint64_t ns_per_tick = NSEC_PER_SEC / 100; /* AT_CLKTCK, sysconf(_SC_CLK_TCK) */
    if (t) {
        if (!user_range_ok((uintptr_t)t, sizeof(*t)))
            return -EFAULT;
        t->tms_utime = (clock_t)(cpu_ns() / ns_per_tick);
        t->tms_stime = 0;
        t->tms_cutime = 0;
        t->tms_cstime = 0;
    }
    /* Ticks since boot; Linux's count starts high enough that it is never
     * mistaken for an error either. */
    return (long)(ember_monotonic_ns() / ns_per_tick);
}

static long sys_getrusage(int who, struct rusage *ru)
{
    if (who != RUSAGE_SELF && who != RUSAGE_CHILDREN && who != RUSAGE_THREAD)
        return -EINVAL;
    if (!user_range_ok((uintptr_t)ru, sizeof(*ru)))
        return -EFAULT;
    sdk_memset(ru, 0, sizeof(*ru));
    if (who == RUSAGE_CHILDREN)
        return 0;
    uint64_t ns = cpu_ns();
    ru->ru_utime.tv_sec = (time_t)(ns / NSEC_PER_SEC);
    ru->ru_utime.tv_usec = (suseconds_t)(ns % NSEC_PER_SEC / 1000);
    /* Resident set: what the heap has handed out, plus the image. */
    ru->ru_maxrss = (long)((ember_heap_total() - ember_heap_free()) / 1024 + ember_image_kib());
    return 0;
}

static long sys_getrandom(void *buf, size_t len)
{
    if (len > 0x1ffffff)
        len = 0x1ffffff; /* Linux's per-call cap */
    if (len && !user_range_ok((uintptr_t)buf, len))
        return -EFAULT;
    ember_random_fill(buf, len);
    return (long)len;
}

static long sys_uname(struct utsname *u)
{
    static const struct utsname me = {
        .sysname = "ember",
        .nodename = "ember",
        .release = "0.1.0",
        .version = "ember guest SDK",
        .machine = "x86_64",
        .domainname = "(none)",
    };
    if (!user_range_ok((uintptr_t)u, sizeof(*u)))
        return -EFAULT;
    sdk_memcpy(u, &me, sizeof(me));
    return 0;
}

static long sys_sysinfo(struct sysinfo *si)
{
    if (!user_range_ok((uintptr_t)si, sizeof(*si)))
        return -EFAULT;
    sdk_memset(si, 0, sizeof(*si));
    si->uptime = (long)(ember_monotonic_ns() / NSEC_PER_SEC);
    si->totalram = ember_bi.mem_size;
    si->freeram = ember_heap_free();
    si->procs = 1;
    si->mem_unit = 1;
    return 0;
}

static long sys_sched_getaffinity(size_t size, void *mask)
{
    if (size < sizeof(uint64_t))
        return -EINVAL;
    if (!user_range_ok((uintptr_t)mask, sizeof(uint64_t)))
        return -EFAULT;
    *(uint64_t *)mask = 1; /* one vCPU */
    return sizeof(uint64_t);
}

static long sys_ppoll(struct pollfd *fds, unsigned long n, const struct timespec *ts,
                      const void *mask, size_t masksize)
{
    uint64_t ns = UINT64_MAX;
    if (ts) {
        if (!user_range_ok((uintptr_t)ts, sizeof(*ts)))
            return -EFAULT;
        struct timespec t = *ts;
        if (t.tv_sec < 0 || t.tv_nsec < 0 || t.tv_nsec >= (long)NSEC_PER_SEC)
            return -EINVAL;
        ns = (uint64_t)t.tv_sec > UINT64_MAX / NSEC_PER_SEC - 1
                 ? UINT64_MAX
                 : (uint64_t)t.tv_sec * NSEC_PER_SEC + (uint64_t)t.tv_nsec;
    }
    long r = ember_sig_mask_push(mask, masksize);
    if (r)
        return r;
    r = fd_sys_poll(fds, n, ns);
    ember_sig_mask_pop();
    return r;
}

static COLD long sys_other(struct ember_syscall_frame *f)
{
    uint64_t a0 = f->rdi, a1 = f->rsi, a2 = f->rdx, a3 = f->r10, a4 = f->r8, a5 = f->r9;

    switch (f->nr) {
    case SYS_read:
        return fd_sys_read((int)a0, (void *)a1, a2);
    case SYS_readv:
        return fd_sys_readv((int)a0, (const struct iovec *)a1, (long)a2);
    case SYS_pread64:
        return fd_sys_pread((int)a0, (void *)a1, a2, (int64_t)a3);
    case SYS_pwrite64:
        return fd_sys_pwrite((int)a0, (const void *)a1, a2, (int64_t)a3);
    case SYS_lseek:
        return fd_sys_lseek((int)a0, (int64_t)a1, (int)a2);
    case SYS_close:
        return fd_sys_close((int)a0);
    case SYS_fsync:
    case SYS_fdatasync:
        return fd_sys_fsync((int)a0, f->nr == SYS_fdatasync);
    case SYS_fcntl:
        return fd_sys_fcntl((int)a0, (int)a1, a2);
    case SYS_dup:
        return fd_sys_dup((int)a0);
    case SYS_dup2:
        return fd_sys_dup2((int)a0, (int)a1);
    case SYS_dup3:
        return fd_sys_dup3((int)a0, (int)a1, (int)a2);
    case SYS_poll:
        return fd_sys_poll((struct pollfd *)a0, a1,
                           (int)a2 < 0 ? UINT64_MAX : (uint64_t)(int)a2 * 1000000u);
    case SYS_ppoll:
        return sys_ppoll((struct pollfd *)a0, a1, (const struct timespec *)a2, (const void *)a3,
                         a4);
    case SYS_ioctl:
        return fd_sys_ioctl((int)a0, a1, a2);
    case SYS_fstat:
        return fd_sys_fstat((int)a0, (struct stat *)a1);
    case SYS_newfstatat: /* fstat of an fd (musl's isatty and stdio) need not start the VFS */
        if ((a3 & AT_EMPTY_PATH) && user_range_ok(a1, 1) && !*(const char *)a1 && (int)a0 >= 0)
            return fd_sys_fstat((int)a0, (struct stat *)a2);
        return fs_syscall(f);
    /* Paths: fs/fs_vfs.c. */
    case SYS_open:
    case SYS_openat:
    case SYS_creat:
    case SYS_stat:
    case SYS_lstat:
    case SYS_statx:
    case SYS_access:
    case SYS_faccessat:
    case SYS_faccessat2:
    case SYS_readlink:
    case SYS_readlinkat:
    case SYS_getdents64:
    case SYS_mkdir:
    case SYS_mkdirat:
    case SYS_unlink:
    case SYS_unlinkat:
    case SYS_rmdir:
    case SYS_rename:
    case SYS_renameat:
    case SYS_renameat2:
    case SYS_symlink:
    case SYS_symlinkat:
    case SYS_link:
    case SYS_linkat:
    case SYS_truncate:
    case SYS_ftruncate:
    case SYS_chdir:
    case SYS_fchdir:
    case SYS_getcwd:
    case SYS_chmod:
    case SYS_fchmod:
    case SYS_fchmodat:
    case SYS_chown:
    case SYS_fchown:
    case SYS_lchown:
    case SYS_fchownat:
    case SYS_utimensat:
    case SYS_statfs:
    case SYS_fstatfs:
        return fs_syscall(f);

    case SYS_socket:
    case SYS_socketpair:
    case SYS_bind:
    case SYS_connect:
    case SYS_listen:
    case SYS_accept:
    case SYS_accept4:
    case SYS_sendto:
    case SYS_recvfrom:
    case SYS_sendmsg:
    case SYS_recvmsg:
    case SYS_shutdown:
    case SYS_getsockname:
    case SYS_getpeername:
    case SYS_setsockopt:
    case SYS_getsockopt:
        return ember_sys_socketcall(f); /* sys_socket.c: AF_VSOCK */

    case SYS_mremap:
        return ember_sys_mremap(a0, a1, a2, (int)a3, a4); /* sys_mem.c */
    case SYS_madvise:
    case SYS_mprotect:
        return 0;

    case SYS_clock_gettime:
        return sys_clock_gettime((clockid_t)a0, (struct timespec *)a1);
    case SYS_clock_getres:
        return sys_clock_getres((clockid_t)a0, (struct timespec *)a1);
    case SYS_gettimeofday:
        return sys_gettimeofday((struct timeval *)a0, (struct timezone *)a1);
    case SYS_time:
        return sys_time((time_t *)a0);
    case SYS_nanosleep:
        return sys_clock_nanosleep(CLOCK_MONOTONIC, 0, (const struct timespec *)a0,
                                   (struct timespec *)a1);
    case SYS_clock_nanosleep:
        return sys_clock_nanosleep((clockid_t)a0, (int)a1, (const struct timespec *)a2,
                                   (struct timespec *)a3);
    case SYS_sched_yield:
        return 0;

    case SYS_getrandom:
        return sys_getrandom((void *)a0, a1);

    case SYS_arch_prctl:
        return sys_arch_prctl((int)a0, a1);
    case SYS_gettid:
    case SYS_getpid:
        return 1;
    case SYS_getppid:
        return 0;
    case SYS_getuid:
    case SYS_geteuid:
    case SYS_getgid:
    case SYS_getegid:
        return 0;

    case SYS_rt_sigaction:
    case SYS_rt_sigprocmask:
    case SYS_rt_sigpending:
    case SYS_rt_sigsuspend:
    case SYS_sigaltstack:
    case SYS_kill:
    case SYS_tkill:
    case SYS_tgkill:
    case SYS_rt_sigqueueinfo:
    case SYS_pause:
    case SYS_alarm:
    case SYS_getitimer:
    case SYS_setitimer:
        return ember_sys_signal(f); /* sys_signal.c */
    case SYS_rt_sigreturn:
        return 0; /* completed by ember_sig_return() */

    case SYS_pipe:
        return ember_sys_pipe2((int *)a0, 0);
    case SYS_pipe2:
        return ember_sys_pipe2((int *)a0, (int)a1);
    case SYS_eventfd:
        return ember_sys_eventfd2((unsigned)a0, 0);
    case SYS_eventfd2:
        return ember_sys_eventfd2((unsigned)a0, (int)a1);
    case SYS_epoll_create:
        return (int)a0 <= 0 ? -EINVAL : ember_sys_epoll_create1(0);
    case SYS_epoll_create1:
        return ember_sys_epoll_create1((int)a0);
    case SYS_epoll_ctl:
        return ember_sys_epoll_ctl((int)a0, (int)a1, (int)a2, (void *)a3);
    case SYS_epoll_wait:
        return ember_sys_epoll_pwait((int)a0, (void *)a1, (int)a2, (int)a3, NULL, 0);
    case SYS_epoll_pwait:
        return ember_sys_epoll_pwait((int)a0, (void *)a1, (int)a2, (int)a3, (const void *)a4, a5);
    case SYS_select:
        return ember_sys_select((int)a0, (void *)a1, (void *)a2, (void *)a3, (void *)a4);
    case SYS_pselect6:
        return ember_sys_pselect6((int)a0, (void *)a1, (void *)a2, (void *)a3, (void *)a4,
                                  (const void *)a5);

    case SYS_uname:
        return sys_uname((struct utsname *)a0);
    case SYS_sysinfo:
        return sys_sysinfo((struct sysinfo *)a0);
    case SYS_sched_getaffinity:
        return sys_sched_getaffinity(a1, (void *)a2);

    case SYS_times:
        return sys_times((struct tms *)a0);
    case SYS_getrusage:
        return sys_getrusage((int)a0, (struct rusage *)a1);
    case SYS_prlimit64:
        return ember_sys_prlimit64((int)a0, (unsigned int)a1, (const void *)a2, (void *)a3);
    case SYS_getrlimit: /* a NULL pointer is EFAULT here, "no old limits" for prlimit64 */
        return ember_sys_prlimit64(0, (unsigned int)a0, NULL, a1 ? (void *)a1 : (void *)1);
    case SYS_setrlimit:
        return ember_sys_prlimit64(0, (unsigned int)a0, a1 ? (const void *)a1 : (void *)1, NULL);

    default:
        (void)a4;
        (void)a5;
        ember_trace_enosys(f->nr); /* EMBER_TRACE_SYSCALLS (sys_trace.c) */
        return -ENOSYS;
    }
}

/* The calls on the start-up path and the frequent ones; a sparse switch,
 * which GCC compiles to a few compares. */
static inline long dispatch(struct ember_syscall_frame *f)
{
    switch (f->nr) {
    case SYS_write:
        return sys_write((int)f->rdi, (const void *)f->rsi, f->rdx);
    case SYS_writev:
        return sys_writev((int)f->rdi, (const struct iovec *)f->rsi, (long)f->rdx);
    case SYS_brk:
        return ember_sys_brk(f->rdi);
    case SYS_mmap:
        return ember_sys_mmap(f->rdi, f->rsi, (int)f->rdx, (int)f->r10, (int)f->r8, (long)f->r9);
    case SYS_munmap:
        return ember_sys_munmap(f->rdi, f->rsi);
    case SYS_set_tid_address: /* musl's start-up (__init_tp) */
        return 1;
    case SYS_exit:
    case SYS_exit_group:
        ember_exit((int)f->rdi);
    default:
        return sys_other(f);
    }
}

long ember_syscall(struct ember_syscall_frame *f)
{
    long r = dispatch(f);
    /* Signals are delivered on the way back (sys_signal.c), only through a
     * real `syscall` frame: ember_syscall_direct()'s has CS = 0. */
    if (__builtin_expect(ember_sig != NULL, 0) && f->cs)
        r = ember_sig_return(f, r);
    return r;
}

/* A real `syscall` of nr with no arguments (signal delivery on its way back). */
static long trap0(long nr)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr) : "rcx", "r11", "memory");
    return r;
}

static long trap6(long nr, long a, long b, long c, long d, long e, long g)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = g;
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return r;
}

/* The cancellation points that wait for a signal or change the mask while
 * they wait: always a real `syscall` (their whole point is the delivery). */
static bool signal_call(long nr, long d, long e)
{
    switch (nr) {
    case SYS_pause:
    case SYS_rt_sigsuspend:
    case SYS_rt_sigtimedwait:
        return true;
    case SYS_ppoll:
    case SYS_epoll_pwait:
        return d != 0; /* the sigmask */
    case SYS_pselect6:
        return e != 0; /* {sigmask, size} */
    default:
        return false;
    }
}

/* musl's cancellation points (read, write, readv, writev, recvfrom, sendto,
 * recvmsg, sendmsg, accept, connect, poll, select, epoll_wait, nanosleep,
 * open, close, pread, pwrite, fsync, ...) reach the kernel through
 * __syscall_cp(), which calls the weak __syscall_cp_c() of libc.a's
 * __syscall_cp.lo (src/thread/__syscall_cp.c; musl's pthread_cancel, which
 * an SDK guest never links, would replace it). libember defines it, as it
 * defines __set_thread_area, and runs the handler as a function call: no
 * `syscall` trap (1.5 us each on kvm_pvm, measured by a guest timing
 * read(99) against getppid(); ~0.1 us on hardware). The handler is the same
 * and does not depend on the privilege level (top of this file;
 * ember_syscall_direct() takes the same path).
 * Signals are delivered on the way back from a real `syscall` only
 * (ember_syscall): once a program has signal state (ember_sig), its calls
 * trap as before, and so do the calls that wait for signals (signal_call).
 * If this call created that state (a signal raised and left pending), a
 * null `syscall` follows and delivers it before the call returns, as it
 * would have been. */
long __syscall_cp_c(long nr, long a, long b, long c, long d, long e, long g);
long __syscall_cp_c(long nr, long a, long b, long c, long d, long e, long g)
{
    if (__builtin_expect(ember_sig != NULL, 0) || signal_call(nr, d, e))
        return trap6(nr, a, b, c, d, e, g);
    struct ember_syscall_frame f = {
        .nr = (uint64_t)nr,
        .rdi = (uint64_t)a,
        .rsi = (uint64_t)b,
        .rdx = (uint64_t)c,
        .r10 = (uint64_t)d,
        .r8 = (uint64_t)e,
        .r9 = (uint64_t)g,
    };
    long r = ember_syscall(&f);
    if (__builtin_expect(ember_sig != NULL, 0))
        (void)trap0(SYS_getpid);
    return r;
}
