/* seccomp_filter.c: install the prebuilt filters (see seccomp_filter.h and,
 * for what each role allows and why, seccomp_gen.c). */
#include "monitor/seccomp_filter.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "monitor/exit_codes.h"
#include "monitor/seccomp_bpf.h"
#include "monitor/seccomp_placeholders.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER_BUILD 1
#else
#define SANITIZER_BUILD 0
#endif

/* Descriptors looked at for eventfds; the monitor opens a few dozen. */
#define SCAN_FDS 1024

struct variant {
    unsigned slots;
    const struct sock_filter *prog;
    size_t len;
};
#define VARIANT(role, n)                                                                           \
    {                                                                                              \
        n, seccomp_bpf_##role##_##n, sizeof(seccomp_bpf_##role##_##n) / 8                          \
    }

static const struct {
    const char *name;
    struct variant v[3]; /* by slots, ascending; main has one */
    const char *const *allowed;
} roles[] = {
    [SECCOMP_ROLE_VCPU] = {"vcpu",
                           {VARIANT(vcpu, 2), VARIANT(vcpu, 12), VARIANT(vcpu, 48)},
                           seccomp_names_vcpu},
    [SECCOMP_ROLE_VCPU_TIMINGS] = {"vcpu",
                                   {VARIANT(vcpu_timings, 2), VARIANT(vcpu_timings, 12),
                                    VARIANT(vcpu_timings, 48)},
                                   seccomp_names_vcpu_timings},
    [SECCOMP_ROLE_MAIN] = {"main",
                           {{0, seccomp_bpf_main, sizeof(seccomp_bpf_main) / 8}},
                           seccomp_names_main},
};
_Static_assert(sizeof(struct sock_filter) == 8, "BPF instructions are 8 bytes");

static __thread const char *thread_role = "unfiltered";
static void (*volatile violation_hook)(int nr);

void seccomp_filter_set_violation_hook(void (*hook)(int nr))
{
    violation_hook = hook;
}

const char *const *seccomp_filter_allowed(enum seccomp_role role)
{
    return roles[role].allowed;
}

/* Async-signal-safe formatting: append s to buf at *pos. */
static void put(char *buf, size_t len, size_t *pos, const char *s)
{
    while (*s && *pos + 1 < len)
        buf[(*pos)++] = *s++;
}

static void put_num(char *buf, size_t len, size_t *pos, long v)
{
    char tmp[24];
    int n = 0;
    unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;

    do
        tmp[n++] = (char)('0' + u % 10);
    while ((u /= 10) && n < 23);
    if (v < 0)
        tmp[n++] = '-';
    while (n && *pos + 1 < len)
        buf[(*pos)++] = tmp[--n];
}

/* SIGSYS from SECCOMP_RET_TRAP: name the call, end the process with 148. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    char line[160];
    size_t pos = 0;
    int nr = si->si_syscall;
    const char *name =
        nr >= 0 && nr <= SECCOMP_SYSCALL_NAMES_MAX ? seccomp_syscall_names[nr] : NULL;
    void (*hook)(int) = violation_hook;

    (void)sig;
    (void)uc;
    if (hook)
        hook(nr);
    put(line, sizeof(line), &pos, "ember: seccomp: forbidden system call ");
    put(line, sizeof(line), &pos, name ? name : "?");
    put(line, sizeof(line), &pos, " (");
    put_num(line, sizeof(line), &pos, nr);
    put(line, sizeof(line), &pos, ") in the ");
    put(line, sizeof(line), &pos, thread_role);
    put(line, sizeof(line), &pos, " thread\n");
    if (write(STDERR_FILENO, line, pos) < 0) {
        /* nothing more can be done */
    }
    _exit(EMBER_EXIT_BAD_SYSCALL);
}

/* Replaces every compared constant `from` with `to`. Returns how many. */
static int patch(struct sock_filter *p, size_t n, uint32_t from, uint32_t to)
{
    int hits = 0;

    for (size_t i = 0; i < n; i++)
        if (BPF_CLASS(p[i].code) == BPF_JMP && BPF_SRC(p[i].code) == BPF_K && p[i].k == from) {
            p[i].k = to;
            hits++;
        }
    return hits;
}

/* The anonymous-inode descriptors open now (eventfds, KVM, epoll, io_uring):
 * poll() finds the open ones without /proc (absent in a jail), a chunk of
 * SCAN_CHUNK at a time on the stack (a table for all SCAN_FDS in TLS would
 * be 8 KiB in every thread, which glibc zeroes, so dirties, at creation:
 * private memory of every VM). The vCPU fd (except) needs no slot: nothing
 * reads or writes it. */
#define SCAN_CHUNK 128
_Static_assert(SCAN_FDS % SCAN_CHUNK == 0, "whole chunks");

static int anon_fds(int *out, int max, int except)
{
    struct pollfd pfd[SCAN_CHUNK];
    int n = 0;

    for (int base = 0; base < SCAN_FDS; base += SCAN_CHUNK) {
        for (int i = 0; i < SCAN_CHUNK; i++)
            pfd[i] = (struct pollfd){.fd = base + i, .events = 0};
        if (poll(pfd, SCAN_CHUNK, 0) < 0)
            return -1;
        for (int i = 0; i < SCAN_CHUNK; i++) {
            int fd = base + i;
            struct stat st;
            if (fd < 3 || (pfd[i].revents & POLLNVAL))
                continue;
            if (fd == except || fstat(fd, &st) != 0 || (st.st_mode & S_IFMT) != 0)
                continue;
            if (n == max)
                return -2;
            out[n++] = fd;
        }
    }
    return n;
}

int seccomp_filter_install(enum seccomp_role role, int vcpu_fd, int mem_fd, char *err,
                           size_t errlen)
{
    struct sock_filter *prog;
    static bool sigsys_set;
    struct sock_fprog fprog;
    struct sigaction sa;
    int fds[SECCOMP_ANON_SLOTS], n_fds = 0;
    const struct variant *v = &roles[role].v[0];

    /* Sanitizer builds (EMBER_SANITIZE) run unfiltered, silently so that
     * tests comparing stderr still pass: the sanitizers' runtime makes calls
     * of its own at any time. tests/jailer skips its seccomp tests there. */
    if (SANITIZER_BUILD)
        return 0;
    /* One thread at a time (the SIGSYS handler is set once). */
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    if (role != SECCOMP_ROLE_MAIN) {
        n_fds = anon_fds(fds, SECCOMP_ANON_SLOTS, vcpu_fd);
        if (n_fds < 0) {
            pthread_mutex_unlock(&lock);
            snprintf(err, errlen, "seccomp: %s",
                     n_fds == -2 ? "more eventfds than the vCPU filter has slots for"
                                 : strerror(errno));
            return -1;
        }
        while ((int)v->slots < n_fds)
            v++;
    }
    if (v->len > BPF_MAXINSNS) {
        pthread_mutex_unlock(&lock);
        snprintf(err, errlen, "seccomp: the %s filter is too long", roles[role].name);
        return -1;
    }
    /* Patched in a mapping of its own, unmapped once the kernel has its
     * copy: a static buffer would keep its pages dirty, so private in each
     * of thousands of VMs, for nothing. */
    const size_t bytes = v->len * sizeof(*prog);
    prog = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (prog == MAP_FAILED) {
        int e = errno;
        pthread_mutex_unlock(&lock);
        snprintf(err, errlen, "seccomp: the %s filter: %s", roles[role].name, strerror(e));
        return -1;
    }
    memcpy(prog, v->prog, bytes);
    if (role != SECCOMP_ROLE_MAIN) {
        if (vcpu_fd < 0 || patch(prog, v->len, SECCOMP_PH_VCPU_FD, (uint32_t)vcpu_fd) == 0) {
            munmap(prog, bytes);
            pthread_mutex_unlock(&lock);
            snprintf(err, errlen, "seccomp: no vCPU fd for the vCPU filter");
            return -1;
        }
        for (unsigned i = 0; i < v->slots; i++)
            patch(prog, v->len, SECCOMP_PH_ANON_FD(i),
                  (int)i < n_fds ? (uint32_t)fds[i] : SECCOMP_NO_FD);
        patch(prog, v->len, SECCOMP_PH_MEM_FD, mem_fd >= 0 ? (uint32_t)mem_fd : SECCOMP_NO_FD);
        patch(prog, v->len, SECCOMP_PH_PID, (uint32_t)getpid());
    }
    if (!sigsys_set) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_sigsys;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSYS, &sa, NULL) != 0) {
            int e = errno;
            munmap(prog, bytes);
            pthread_mutex_unlock(&lock);
            snprintf(err, errlen, "seccomp: SIGSYS handler: %s", strerror(e));
            return -1;
        }
        sigsys_set = true;
    }
    /* Needed to filter without CAP_SYS_ADMIN (the jailed monitor has none);
     * and nothing ember execs could gain privileges anyway. */
    fprog.len = (unsigned short)v->len;
    fprog.filter = prog;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) {
        int e = errno;
        munmap(prog, bytes);
        pthread_mutex_unlock(&lock);
        snprintf(err, errlen, "seccomp: installing the %s filter: %s", roles[role].name,
                 strerror(e));
        return -1;
    }
    thread_role = roles[role].name;
    munmap(prog, bytes); /* the filter just installed allows it */
    pthread_mutex_unlock(&lock);
    return 0;
}
