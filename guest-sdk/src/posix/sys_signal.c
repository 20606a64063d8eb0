/* sys_signal.c: signals sent to oneself, interval timers, and waiting that
 * a signal can interrupt.
 *
 * A guest is one process with one thread, so every signal is one it sends
 * itself (raise, kill(getpid()), tgkill, abort) or one of its timers fires
 * (alarm, setitimer). Delivery is synchronous, as Linux does it on the way
 * back from a system call: ember_syscall() (sys_dispatch.c) calls
 * ember_sig_return() when a signal is pending and not blocked, or a timer is
 * armed, and that rewrites the system call's saved frame so that the
 * `syscall` "returns" into the handler:
 *
 *   user stack:  [red zone, 128 bytes, untouched]
 *                [fxsave area, 512 bytes, 64-aligned]   x87/SSE state
 *                [struct sig_frame]                     restorer, ucontext, siginfo
 *   RSP = &frame->restorer (RSP % 16 == 8, as after a call), RIP = handler,
 *   RDI = signo, RSI = &siginfo, RDX = &ucontext.
 *
 * The handler returns to sa_restorer (musl's __restore_rt), which makes
 * rt_sigreturn: ember_sig_sigreturn() restores RIP, RSP, RFLAGS, RAX and the
 * argument registers the syscall ABI preserves from the ucontext, the x87/SSE
 * state with fxrstor, and the signal mask. RBX, RBP and R12-R15 are not in
 * the system call's frame; the handler preserved them (psABI), so they are
 * right unless the handler edits them in the ucontext (then the edit is
 * lost; RIP, RSP and the others are honoured).
 *
 * What a signal does follows signal(7): SIG_IGN drops it; SIG_DFL ignores
 * SIGCHLD, SIGCONT, SIGURG, SIGWINCH (and the stop signals: there is nobody
 * to stop for) and otherwise ends the guest with 128 + N, as a shell reports
 * a killed child; a blocked signal stays pending (one instance per signal
 * number) until it is unblocked. SIGKILL and SIGSTOP cannot be caught or
 * blocked. The guest's own CPU faults are not signals: they stay fatal
 * (cpu_fault.c).
 *
 * Timers: ITIMER_REAL (alarm), ITIMER_VIRTUAL and ITIMER_PROF count
 * CLOCK_MONOTONIC (a guest's process CPU time is all of its time, as
 * CLOCK_PROCESS_CPUTIME_ID). An expired timer raises its signal at the next
 * system-call return or inside a wait: ember_sig_wait() bounds every wait by
 * the next expiry, and returns -EINTR when a signal is to be delivered.
 *
 * State: a few words are touched on every system-call return while signals
 * are in use; everything lives in one page allocated by the first call that
 * needs it (libember's static data is kept to a pointer, ember.ld).
 * This runs on the system-call path (CPL0 on hardware, CPL3 on kvm_pvm):
 * no libc; fxsave/fxrstor are plain instructions at either level.
 */
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <ucontext.h>

#include "arch/cpu_irq.h"
#include "sdk.h"
#include "posix/sys_signal.h"

#define NSIG_LINUX   64
#define RED_ZONE     128
#define FXSAVE_SIZE  512
#define SIGSET_BYTES 8 /* the kernel's sigset_t, what musl passes */
#define BIT(s)       (1ull << ((s)-1))
#define UNBLOCKABLE  (BIT(SIGKILL) | BIT(SIGSTOP))
#define NSEC_PER_SEC 1000000000ull
#define NSEC_PER_US  1000ull

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

/* struct k_sigaction as rt_sigaction(2) passes it on x86-64 (and musl's
 * src/internal/ksigaction.h). */
struct k_sigaction {
    uintptr_t handler;
    unsigned long flags;
    uintptr_t restorer;
    uint64_t mask;
};

struct itimer {
    uint64_t next_ns; /* CLOCK_MONOTONIC of the next expiry, 0 = disarmed */
    uint64_t interval_ns;
};

struct sig_state {
    uint64_t pending; /* signals raised, not yet delivered */
    uint64_t blocked;
    uint64_t timer_next; /* earliest armed itimer, 0 = none */
    uint64_t saved_mask; /* sigsuspend/pselect/ppoll/epoll_pwait's old mask */
    bool saved_mask_valid;
    int32_t code[NSIG_LINUX + 1]; /* si_code of the pending instance */
    struct k_sigaction act[NSIG_LINUX + 1];
    struct itimer timer[3]; /* ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF */
    stack_t altstack;
};

struct sig_frame {
    uintptr_t restorer; /* the handler's return address */
    ucontext_t uc;
    siginfo_t info;
};

_Static_assert(sizeof(struct sig_state) <= PAGE_SIZE, "one page");

struct sig_state *ember_sig;

static const int timer_signal[3] = {SIGALRM, SIGVTALRM, SIGPROF};

static struct sig_state *state(void)
{
    if (!ember_sig) {
        long p = ember_sys_mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                -1, 0);
        if (p < 0)
            return NULL;
        ember_sig = (struct sig_state *)p;
    }
    return ember_sig;
}

/* Used when a caller gives no restorer (raw rt_sigaction without
 * SA_RESTORER): musl always gives __restore_rt. */
__asm__(".pushsection .text.unlikely.ember_sig_restorer, \"ax\"\n"
        ".globl ember_sig_restorer\n"
        "ember_sig_restorer:\n"
        "    mov $15, %eax\n" /* SYS_rt_sigreturn */
        "    syscall\n"
        "    ud2\n"
        ".popsection\n");
extern const char ember_sig_restorer[];

static const char *const signames[32] = {
    "0",         "SIGHUP",  "SIGINT",    "SIGQUIT", "SIGILL",   "SIGTRAP", "SIGABRT", "SIGBUS",
    "SIGFPE",    "SIGKILL", "SIGUSR1",   "SIGSEGV", "SIGUSR2",  "SIGPIPE", "SIGALRM", "SIGTERM",
    "SIGSTKFLT", "SIGCHLD", "SIGCONT",   "SIGSTOP", "SIGTSTP",  "SIGTTIN", "SIGTTOU", "SIGURG",
    "SIGXCPU",   "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO",   "SIGPWR",  "SIGSYS",
};

static char *put_str(char *p, const char *s)
{
    while (*s)
        *p++ = *s++;
    return p;
}

static char *put_dec(char *p, unsigned v)
{
    char tmp[10];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* SIG_DFL's "terminate" (and "core"): the guest ends with 128 + N. */
static NORETURN COLD void killed(int sig)
{
    char line[80];
    char *p = put_str(line, "ember: guest killed by signal ");
    p = put_dec(p, (unsigned)sig);
    p = put_str(p, " (");
    if (sig < 32) {
        p = put_str(p, signames[sig]);
    } else {
        p = put_str(p, "SIGRT");
        p = put_dec(p, (unsigned)sig);
    }
    p = put_str(p, ")\n");
    ember_console_write_err(line, (size_t)(p - line));
    ember_exit(128 + sig);
}

/* SIG_DFL's action "ignore" (signal(7)); the stop signals too: nobody
 * would continue a stopped guest. */
static bool default_ignores(int sig)
{
    switch (sig) {
    case SIGCHLD:
    case SIGCONT:
    case SIGURG:
    case SIGWINCH:
    case SIGSTOP:
    case SIGTSTP:
    case SIGTTIN:
    case SIGTTOU:
        return true;
    default:
        return false;
    }
}

static uintptr_t handler_of(int sig)
{
    return ember_sig ? ember_sig->act[sig].handler : (uintptr_t)SIG_DFL;
}

static void update_work(void)
{
    struct sig_state *s = ember_sig;
    uint64_t next = 0;
    for (int i = 0; i < 3; i++) {
        if (s->timer[i].next_ns && (!next || s->timer[i].next_ns < next))
            next = s->timer[i].next_ns;
    }
    s->timer_next = next;
}

long ember_sig_raise(int sig, int code)
{
    if (sig == 0)
        return 0;
    if (sig < 0 || sig > NSIG_LINUX)
        return -EINVAL;
    uintptr_t h = handler_of(sig);
    if (sig == SIGKILL)
        killed(sig);
    if (h == (uintptr_t)SIG_IGN)
        return 0;
    bool blocked = ember_sig && (ember_sig->blocked & BIT(sig));
    if (h == (uintptr_t)SIG_DFL && !blocked) {
        if (default_ignores(sig))
            return 0;
        killed(sig);
    }
    if (!state())
        killed(sig); /* no page for the pending set: cannot happen in practice */
    ember_sig->pending |= BIT(sig);
    ember_sig->code[sig] = code;
    return 0;
}

/* Raises the signals of the timers that have expired by now. */
static void fire_timers(uint64_t now)
{
    struct sig_state *s = ember_sig;
    if (!s || !s->timer_next || now < s->timer_next)
        return;
    for (int i = 0; i < 3; i++) {
        struct itimer *t = &s->timer[i];
        if (!t->next_ns || now < t->next_ns)
            continue;
        if (t->interval_ns) {
            uint64_t late = (now - t->next_ns) / t->interval_ns + 1; /* missed periods coalesce */
            t->next_ns += late * t->interval_ns;
        } else {
            t->next_ns = 0;
        }
        ember_sig_raise(timer_signal[i], SI_KERNEL);
    }
    update_work();
}

bool ember_sig_deliverable(void)
{
    struct sig_state *s = ember_sig;
    if (!s)
        return false;
    fire_timers(ember_monotonic_ns());
    return (s->pending & ~s->blocked) != 0;
}

long ember_sig_wait(bool (*ready)(void *), void (*arm)(void *), void *arg, uint64_t timeout_ns)
{
    uint64_t now = ember_monotonic_ns();
    uint64_t end = timeout_ns == EMBER_WAIT_FOREVER || timeout_ns > UINT64_MAX - now
                       ? UINT64_MAX
                       : now + timeout_ns;
    for (;;) {
        if (ready(arg))
            return 0;
        if (ember_sig_deliverable())
            return -EINTR;
        now = ember_monotonic_ns();
        if (now >= end)
            return 0;
        uint64_t until = end;
        if (ember_sig && ember_sig->timer_next && ember_sig->timer_next < until)
            until = ember_sig->timer_next;
        uint64_t ns = until == UINT64_MAX ? EMBER_WAIT_FOREVER : until - now;
        if (arm || ember_irq_can_sleep()) {
            ember_wait_armed(ready, arm, arg, ns);
        } else {
            /* Nothing outside the guest can make ready() true (pipes,
             * eventfds, no fds at all) and there is no timer interrupt set
             * up: only time passes. Sleep on the host (EMBER_PORT_SLEEP),
             * in bounded steps when there is no end. */
            ember_sleep_ns(ns == EMBER_WAIT_FOREVER ? NSEC_PER_SEC : ns);
        }
    }
}

/* The mask of pselect6/ppoll/epoll_pwait/sigsuspend for the wait: the old
 * one comes back at the next delivery's sigreturn, or now if none. */
long ember_sig_mask_push(const void *set, size_t size)
{
    if (!set)
        return 0;
    if (size != SIGSET_BYTES)
        return -EINVAL;
    if (!user_range_ok((uintptr_t)set, SIGSET_BYTES))
        return -EFAULT;
    uint64_t m = *(const uint64_t *)set;
    if (!state())
        return -ENOMEM;
    ember_sig->saved_mask = ember_sig->blocked;
    ember_sig->saved_mask_valid = true;
    ember_sig->blocked = m & ~UNBLOCKABLE;
    return 0;
}

void ember_sig_mask_pop(void)
{
    struct sig_state *s = ember_sig;
    if (!s || !s->saved_mask_valid)
        return;
    if (s->pending & ~s->blocked)
        return; /* delivered with the wait's mask; sigreturn restores */
    s->blocked = s->saved_mask;
    s->saved_mask_valid = false;
}

static long sys_rt_sigaction(int sig, const struct k_sigaction *act, struct k_sigaction *old,
                             size_t size)
{
    if (size != SIGSET_BYTES)
        return -EINVAL;
    if (sig < 1 || sig > NSIG_LINUX || (act && (sig == SIGKILL || sig == SIGSTOP)))
        return -EINVAL;
    if ((act && !user_range_ok((uintptr_t)act, sizeof(*act))) ||
        (old && !user_range_ok((uintptr_t)old, sizeof(*old))))
        return -EFAULT;
    struct k_sigaction a = {0};
    if (act)
        a = *act; /* read once */
    if (old) {
        if (ember_sig)
            *old = ember_sig->act[sig];
        else
            sdk_memset(old, 0, sizeof(*old)); /* SIG_DFL */
    }
    if (!act)
        return 0;
    if (!state())
        return -ENOMEM;
    a.mask &= ~UNBLOCKABLE;
    ember_sig->act[sig] = a;
    /* POSIX: setting SIG_IGN, or SIG_DFL for a signal it ignores, discards
     * a pending instance. */
    if (a.handler == (uintptr_t)SIG_IGN ||
        (a.handler == (uintptr_t)SIG_DFL && default_ignores(sig)))
        ember_sig->pending &= ~BIT(sig);
    return 0;
}

static long sys_rt_sigprocmask(int how, const uint64_t *set, uint64_t *old, size_t size)
{
    if (size != SIGSET_BYTES)
        return -EINVAL;
    if ((set && !user_range_ok((uintptr_t)set, SIGSET_BYTES)) ||
        (old && !user_range_ok((uintptr_t)old, SIGSET_BYTES)))
        return -EFAULT;
    uint64_t cur = ember_sig ? ember_sig->blocked : 0;
    if (set) {
        uint64_t m = *set;
        uint64_t next;
        switch (how) {
        case SIG_BLOCK:
            next = cur | m;
            break;
        case SIG_UNBLOCK:
            next = cur & ~m;
            break;
        case SIG_SETMASK:
            next = m;
            break;
        default:
            return -EINVAL;
        }
        next &= ~UNBLOCKABLE;
        if (next != cur) {
            if (!state())
                return -ENOMEM;
            ember_sig->blocked = next;
        }
    }
    if (old)
        *old = cur;
    /* A pending signal with SIG_DFL "terminate" that is now unblocked ends
     * the guest here (delivery would do the same at the return). */
    return 0;
}

static long sys_rt_sigpending(uint64_t *set, size_t size)
{
    if (size > SIGSET_BYTES)
        return -EINVAL;
    if (!user_range_ok((uintptr_t)set, size))
        return -EFAULT;
    uint64_t p = ember_sig ? ember_sig->pending & ember_sig->blocked : 0;
    sdk_memcpy(set, &p, size);
    return 0;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

static long sys_rt_sigsuspend(const uint64_t *set, size_t size)
{
    long r = ember_sig_mask_push(set, size);
    if (r)
        return r;
    ember_sig_wait(never, NULL, NULL, EMBER_WAIT_FOREVER);
    return -EINTR; /* the old mask comes back with the handler's sigreturn */
}

static long sys_sigaltstack(const stack_t *ss, stack_t *old)
{
    if ((ss && !user_range_ok((uintptr_t)ss, sizeof(*ss))) ||
        (old && !user_range_ok((uintptr_t)old, sizeof(*old))))
        return -EFAULT;
    stack_t n = {0};
    if (ss)
        n = *ss;
    if (old) {
        if (ember_sig && ember_sig->altstack.ss_sp)
            *old = ember_sig->altstack;
        else
            *old = (stack_t){.ss_sp = NULL, .ss_flags = SS_DISABLE, .ss_size = 0};
    }
    if (!ss)
        return 0;
    if (n.ss_flags & ~SS_DISABLE)
        return -EINVAL;
    if (!state())
        return -ENOMEM;
    if (n.ss_flags & SS_DISABLE) {
        ember_sig->altstack = (stack_t){0};
        return 0;
    }
    if (n.ss_size < MINSIGSTKSZ)
        return -ENOMEM;
    if (!user_range_ok((uintptr_t)n.ss_sp, n.ss_size))
        return -EFAULT;
    ember_sig->altstack = n;
    return 0;
}

static uint64_t tv_ns(const struct timeval *tv)
{
    return (uint64_t)tv->tv_sec * NSEC_PER_SEC + (uint64_t)tv->tv_usec * NSEC_PER_US;
}

static void ns_tv(uint64_t ns, struct timeval *tv)
{
    tv->tv_sec = (time_t)(ns / NSEC_PER_SEC);
    tv->tv_usec = (suseconds_t)(ns % NSEC_PER_SEC / NSEC_PER_US);
}

static void get_timer(int which, struct itimerval *v, uint64_t now)
{
    const struct itimer *t = ember_sig ? &ember_sig->timer[which] : NULL;
    ns_tv(t ? t->interval_ns : 0, &v->it_interval);
    /* An armed timer never reads 0 (Linux rounds a due timer up to 1 us). */
    uint64_t left = t && t->next_ns ? (t->next_ns > now ? t->next_ns - now : NSEC_PER_US) : 0;
    ns_tv(left, &v->it_value);
}

static long sys_getitimer(int which, struct itimerval *v)
{
    if (which < 0 || which > 2)
        return -EINVAL;
    if (!user_range_ok((uintptr_t)v, sizeof(*v)))
        return -EFAULT;
    fire_timers(ember_monotonic_ns());
    get_timer(which, v, ember_monotonic_ns());
    return 0;
}

static bool tv_ok(const struct timeval *tv)
{
    return tv->tv_sec >= 0 && tv->tv_usec >= 0 && tv->tv_usec < 1000000 &&
           (uint64_t)tv->tv_sec < UINT64_MAX / NSEC_PER_SEC / 4;
}

static long sys_setitimer(int which, const struct itimerval *nv, struct itimerval *old)
{
    if (which < 0 || which > 2)
        return -EINVAL;
    if ((nv && !user_range_ok((uintptr_t)nv, sizeof(*nv))) ||
        (old && !user_range_ok((uintptr_t)old, sizeof(*old))))
        return -EFAULT;
    struct itimerval v = {0};
    if (nv) {
        v = *nv;
        if (!tv_ok(&v.it_value) || !tv_ok(&v.it_interval))
            return -EINVAL;
    }
    uint64_t now = ember_monotonic_ns();
    fire_timers(now);
    if (old)
        get_timer(which, old, now);
    if (!nv)
        return 0;
    if (!state())
        return -ENOMEM;
    struct itimer *t = &ember_sig->timer[which];
    uint64_t value = tv_ns(&v.it_value);
    t->next_ns = value ? now + value : 0;
    t->interval_ns = value ? tv_ns(&v.it_interval) : 0;
    update_work();
    return 0;
}

static long sys_alarm(unsigned seconds)
{
    struct itimerval v = {.it_value = {.tv_sec = seconds}}, old;
    sys_setitimer(ITIMER_REAL, &v, &old);
    /* Linux rounds up a remaining fraction of a second (never 0 if armed). */
    return old.it_value.tv_sec +
           (old.it_value.tv_usec >= 500000 || (!old.it_value.tv_sec && old.it_value.tv_usec));
}

static bool self(long pid)
{
    return pid == EMBER_PID || pid == 0 || pid == -1 || pid == -EMBER_PID;
}

long ember_sys_signal(struct ember_syscall_frame *f)
{
    uint64_t a0 = f->rdi, a1 = f->rsi, a2 = f->rdx, a3 = f->r10;
    switch (f->nr) {
    case SYS_rt_sigaction:
        return sys_rt_sigaction((int)a0, (const void *)a1, (void *)a2, a3);
    case SYS_rt_sigprocmask:
        return sys_rt_sigprocmask((int)a0, (const uint64_t *)a1, (uint64_t *)a2, a3);
    case SYS_rt_sigpending:
        return sys_rt_sigpending((uint64_t *)a0, a1);
    case SYS_rt_sigsuspend:
        return sys_rt_sigsuspend((const uint64_t *)a0, a1);
    case SYS_sigaltstack:
        return sys_sigaltstack((const stack_t *)a0, (stack_t *)a1);
    case SYS_kill:
        return self((long)a0) ? ember_sig_raise((int)a1, SI_USER) : -ESRCH;
    case SYS_tkill:
        return (long)a0 == EMBER_PID ? ember_sig_raise((int)a1, SI_TKILL) : -ESRCH;
    case SYS_tgkill:
        return (long)a0 == EMBER_PID && (long)a1 == EMBER_PID ? ember_sig_raise((int)a2, SI_TKILL)
                                                              : -ESRCH;
    case SYS_rt_sigqueueinfo:
        return self((long)a0) ? ember_sig_raise((int)a1, SI_QUEUE) : -ESRCH;
    case SYS_pause:
        ember_sig_wait(never, NULL, NULL, EMBER_WAIT_FOREVER);
        return -EINTR;
    case SYS_alarm:
        return sys_alarm((unsigned)a0);
    case SYS_getitimer:
        return sys_getitimer((int)a0, (struct itimerval *)a1);
    case SYS_setitimer:
        return sys_setitimer((int)a0, (const struct itimerval *)a1, (struct itimerval *)a2);
    default:
        return -ENOSYS;
    }
}

/* rt_sigreturn: back from a handler to where the signal interrupted. */
static long sigreturn(struct ember_syscall_frame *f)
{
    struct sig_frame *fr = (struct sig_frame *)(f->rsp - sizeof(uintptr_t));
    if (!ember_sig || !user_range_ok((uintptr_t)fr, sizeof(*fr)))
        killed(SIGSEGV); /* Linux: a bad frame is a forced SIGSEGV */
    const greg_t *g = fr->uc.uc_mcontext.gregs;
    uintptr_t fp = (uintptr_t)fr->uc.uc_mcontext.fpregs;
    f->rdi = (uint64_t)g[REG_RDI];
    f->rsi = (uint64_t)g[REG_RSI];
    f->rdx = (uint64_t)g[REG_RDX];
    f->r10 = (uint64_t)g[REG_R10];
    f->r8 = (uint64_t)g[REG_R8];
    f->r9 = (uint64_t)g[REG_R9];
    f->rip = (uint64_t)g[REG_RIP];
    f->rsp = (uint64_t)g[REG_RSP];
    /* Only the arithmetic flags, DF and TF are the program's to change
     * (IOPL and IF stay as the SDK runs them). */
    const uint64_t user_flags = 0xcd5 | 0x100 | 0x400 | 0x40000;
    f->rflags = (f->rflags & ~user_flags) | ((uint64_t)g[REG_EFL] & user_flags);
    if (fp && !(fp & 15) && user_range_ok(fp, FXSAVE_SIZE)) {
        uint32_t *mxcsr = (uint32_t *)(fp + 24);
        *mxcsr &= 0xffbf; /* reserved bits would #GP fxrstor */
        __asm__ volatile("fxrstor64 (%0)" : : "r"(fp) : "memory");
    }
    uint64_t m;
    sdk_memcpy(&m, &fr->uc.uc_sigmask, sizeof(m));
    ember_sig->blocked = m & ~UNBLOCKABLE;
    return (long)g[REG_RAX];
}

/* Calls that SA_RESTART restarts after a handler (signal(7), "Interruption
 * of system calls"); waits with a timeout never are. */
static bool restartable(uint64_t nr)
{
    switch (nr) {
    case SYS_read:
    case SYS_readv:
    case SYS_write:
    case SYS_writev:
    case SYS_pread64:
    case SYS_pwrite64:
    case SYS_ioctl:
    case SYS_recvfrom:
    case SYS_recvmsg:
    case SYS_sendto:
    case SYS_sendmsg:
    case SYS_accept:
    case SYS_accept4:
    case SYS_wait4:
        return true;
    default:
        return false;
    }
}

/* On the way back from a system call, with ember_sig set: fire timers and
 * deliver one pending, unblocked signal by rewriting the frame. Returns what
 * RAX is to hold. */
long ember_sig_return(struct ember_syscall_frame *f, long ret)
{
    struct sig_state *s = ember_sig;
    if (f->nr == SYS_rt_sigreturn)
        ret = sigreturn(f);
    fire_timers(ember_monotonic_ns());
    for (;;) {
        uint64_t d = s->pending & ~s->blocked;
        if (!d)
            return ret;
        int sig = __builtin_ctzll(d) + 1;
        s->pending &= ~BIT(sig);
        struct k_sigaction a = s->act[sig];
        if (a.handler == (uintptr_t)SIG_IGN)
            continue;
        if (a.handler == (uintptr_t)SIG_DFL) {
            if (default_ignores(sig))
                continue;
            killed(sig);
        }

        uintptr_t sp = f->rsp;
        const stack_t *alt = &s->altstack;
        if ((a.flags & SA_ONSTACK) && alt->ss_sp &&
            !(sp > (uintptr_t)alt->ss_sp && sp <= (uintptr_t)alt->ss_sp + alt->ss_size))
            sp = (uintptr_t)alt->ss_sp + alt->ss_size;
        else
            sp -= RED_ZONE;
        uintptr_t fp = ALIGN_DOWN(sp - FXSAVE_SIZE, 64);
        sp = ALIGN_DOWN(fp - sizeof(struct sig_frame), 16) - 8;
        if (!user_range_ok(sp, f->rsp - sp))
            killed(SIGSEGV); /* no stack for the frame: Linux forces SIGSEGV */
        struct sig_frame *fr = (struct sig_frame *)sp;
        sdk_memset(fr, 0, sizeof(*fr));
        __asm__ volatile("fxsave64 (%0)" : : "r"(fp) : "memory");
        fr->restorer =
            (a.flags & SA_RESTORER) && a.restorer ? a.restorer : (uintptr_t)ember_sig_restorer;
        greg_t *g = fr->uc.uc_mcontext.gregs;
        g[REG_RDI] = (greg_t)f->rdi;
        g[REG_RSI] = (greg_t)f->rsi;
        g[REG_RDX] = (greg_t)f->rdx;
        g[REG_R10] = (greg_t)f->r10;
        g[REG_R8] = (greg_t)f->r8;
        g[REG_R9] = (greg_t)f->r9;
        g[REG_RAX] = (greg_t)ret;
        g[REG_RCX] = (greg_t)f->rip; /* as the syscall instruction left them */
        g[REG_R11] = (greg_t)f->rflags;
        g[REG_RIP] = (greg_t)f->rip;
        g[REG_RSP] = (greg_t)f->rsp;
        g[REG_EFL] = (greg_t)f->rflags;
        g[REG_CSGSFS] = (greg_t)(f->cs & 0xffff);
        fr->uc.uc_mcontext.fpregs = (fpregset_t)fp;
        fr->uc.uc_stack = *alt;
        uint64_t old = s->saved_mask_valid ? s->saved_mask : s->blocked;
        s->saved_mask_valid = false;
        sdk_memcpy(&fr->uc.uc_sigmask, &old, sizeof(old));
        fr->info.si_signo = sig;
        fr->info.si_code = s->code[sig];
        if (s->code[sig] == SI_USER || s->code[sig] == SI_TKILL || s->code[sig] == SI_QUEUE)
            fr->info.si_pid = EMBER_PID;

        s->blocked |= (a.mask | ((a.flags & SA_NODEFER) ? 0 : BIT(sig))) & ~UNBLOCKABLE;
        if (a.flags & SA_RESETHAND)
            s->act[sig].handler = (uintptr_t)SIG_DFL;
        if (ret == -EINTR && (a.flags & SA_RESTART) && restartable(f->nr)) {
            g[REG_RAX] = (greg_t)f->nr; /* sigreturn re-issues the call */
            g[REG_RIP] -= 2;            /* the `syscall` instruction */
        }
        f->rip = a.handler;
        f->rsp = sp;
        f->rdi = (uint64_t)sig;
        f->rsi = (uint64_t)(uintptr_t)&fr->info;
        f->rdx = (uint64_t)(uintptr_t)&fr->uc;
        f->rflags &= ~(uint64_t)0x500; /* DF and TF clear in the handler, as Linux */
        return 0;
    }
}
