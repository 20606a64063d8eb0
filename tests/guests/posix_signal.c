/* posix_signal.c: signal handlers, masks and timers as Linux runs them for
 * a single-threaded program. Each step prints one line; the native build
 * prints the same. The last step ends the program with SIGTERM's default
 * action: exit status 143 and "guest killed by signal 15" under ember. */
#define _GNU_SOURCE
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define TEST_NAME "posix_signal"
#include "posix_check.h"

static volatile sig_atomic_t hits, last, code;
static volatile double fval;
static sigjmp_buf jb;

static void on_sig(int s)
{
    hits++;
    last = s;
}

static void on_info(int s, siginfo_t *si, void *uc)
{
    (void)uc;
    last = s;
    code = si->si_code;
    hits++;
    /* A handler's floating point must not disturb the interrupted code's. */
    double x = 1.0;
    for (int i = 0; i < 10; i++)
        x = x * 1.5 + 0.25;
    fval = x;
}

static void on_jump(int s)
{
    (void)s;
    siglongjmp(jb, 1);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(void)
{
    /* raise() runs the handler before it returns. */
    CHECK(signal(SIGUSR1, on_sig) == SIG_DFL, "signal: old SIG_DFL");
    CHECK(raise(SIGUSR1) == 0 && hits == 1 && last == SIGUSR1, "raise");
    CHECK(kill(getpid(), SIGUSR1) == 0 && hits == 2, "kill(getpid())");
    printf("raise, kill: handler ran %d times\n", (int)hits);

    /* SA_SIGINFO, and registers survive: a value live across raise(). */
    struct sigaction sa = {.sa_sigaction = on_info, .sa_flags = SA_SIGINFO};
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR2, &sa, NULL) == 0, "sigaction");
    volatile double keep = 3.25;
    double before = keep * 2;
    CHECK(raise(SIGUSR2) == 0 && last == SIGUSR2 && code == SI_TKILL, "si_code %d", (int)code);
    CHECK(before == 6.5 && keep * 2 == 6.5 && fval > 50, "FP state kept");
    struct sigaction old;
    CHECK(sigaction(SIGUSR2, NULL, &old) == 0 && (old.sa_flags & SA_SIGINFO), "old action");
    printf("sigaction: SA_SIGINFO, si_code SI_TKILL, FP state ok\n");

    /* A blocked signal waits until it is unblocked. */
    sigset_t set, prev;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    hits = 0;
    CHECK(sigprocmask(SIG_BLOCK, &set, &prev) == 0, "block");
    raise(SIGUSR1);
    CHECK(hits == 0, "blocked: not delivered");
    sigset_t pend;
    CHECK(sigpending(&pend) == 0 && sigismember(&pend, SIGUSR1), "pending");
    CHECK(sigprocmask(SIG_SETMASK, &prev, NULL) == 0 && hits == 1, "delivered on unblock");
    printf("sigprocmask: blocked, pending, delivered on unblock ok\n");

    /* SIG_IGN and a default action that ignores. */
    signal(SIGUSR1, SIG_IGN);
    CHECK(raise(SIGUSR1) == 0 && raise(SIGCHLD) == 0 && raise(SIGWINCH) == 0, "ignored");
    printf("SIG_IGN, SIGCHLD, SIGWINCH: ignored ok\n");

    /* alarm: SIGALRM from the timer interrupts pause(). */
    signal(SIGALRM, on_sig);
    hits = 0;
    CHECK(alarm(1) == 0, "alarm");
    double t0 = now();
    CHECK(pause() == -1 && errno == EINTR && hits == 1 && last == SIGALRM, "pause");
    double dt = now() - t0;
    CHECK(dt > 0.9 && dt < 3, "alarm after %.2f s", dt);
    CHECK(alarm(5) == 0 && alarm(0) == 5, "alarm returns what was left");
    printf("alarm: SIGALRM interrupts pause ok\n");

    /* setitimer: a periodic timer interrupts nanosleep with the time left. */
    struct itimerval it = {.it_interval = {0, 20000}, .it_value = {0, 20000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer");
    int eintr = 0;
    hits = 0;
    for (int i = 0; i < 5; i++) {
        struct timespec ts = {1, 0}, rem = {0, 0};
        if (nanosleep(&ts, &rem) == -1 && errno == EINTR && rem.tv_sec == 0 && rem.tv_nsec > 0)
            eintr++;
    }
    struct itimerval cur;
    CHECK(getitimer(ITIMER_REAL, &cur) == 0 && cur.it_interval.tv_usec == 20000, "getitimer");
    it = (struct itimerval){0};
    setitimer(ITIMER_REAL, &it, NULL);
    CHECK(eintr == 5 && hits >= 5, "itimer: %d EINTR, %d signals", eintr, (int)hits);
    printf("setitimer: 5 sleeps interrupted, time left reported ok\n");

    /* SA_RESETHAND, siglongjmp out of a handler. */
    sa = (struct sigaction){.sa_handler = on_sig, .sa_flags = SA_RESETHAND};
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    CHECK(sigaction(SIGUSR1, NULL, &old) == 0 && old.sa_handler == SIG_DFL, "SA_RESETHAND");
    signal(SIGUSR2, on_jump);
    volatile int jumped = 0;
    if (sigsetjmp(jb, 1) == 0)
        raise(SIGUSR2);
    else
        jumped = 1;
    CHECK(jumped, "siglongjmp");
    CHECK(sigprocmask(SIG_SETMASK, NULL, &set) == 0 && !sigismember(&set, SIGUSR2), "mask back");
    printf("SA_RESETHAND, siglongjmp from a handler ok\n");

    /* A pid no process can have (Linux's pids end at 2^22): run natively,
     * any lower number could be a real process on the host. */
    CHECK(kill(INT_MAX, SIGTERM) == -1 && errno == ESRCH, "another pid: ESRCH");
    CHECK(sigaction(SIGKILL, &sa, NULL) == -1 && errno == EINVAL, "SIGKILL: EINVAL");
    printf("errors ok\n");
    printf("posix_signal: ok\n");
    fflush(stdout);
    raise(SIGTERM);
    printf("posix_signal: FAIL SIGTERM did not end the program\n");
    return 1;
}
