/* sys_select.c: select and pselect6 over the readiness of poll (sys_fd.h).
 *
 * The three fd_sets are read once, each fd with a bit in any of them is
 * asked fd_poll_events(), and its bits map as Linux's fs/select.c maps them:
 * readable = POLLIN | POLLHUP | POLLERR, writable = POLLOUT | POLLERR,
 * exceptional = POLLPRI. A set bit for an fd that is not open fails with
 * EBADF. Waiting is poll's (ember_sig_wait): hlt until a device interrupt
 * if a device fd is among them, else a host sleep until the timeout, so a
 * timer loop built on select (QuickJS, MicroPython's time.sleep) sleeps
 * instead of spinning. A signal ends the wait with EINTR. As on Linux,
 * select writes the time not slept back into the timeval; pselect6 into
 * the timespec; pselect6's mask holds during the wait.
 *
 * nfds above FD_MAX is cut to FD_MAX (Linux cuts to the size of the fd
 * table). The copies of the sets live in a page allocated on first use
 * (the system-call stack is 1.5 KiB).
 */
#include <errno.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <time.h>

#include "sdk.h"
#include "posix/sys_fd.h"
#include "posix/sys_pipe.h"
#include "posix/sys_signal.h"

#define WORDS        (FD_MAX / 64)
#define NSEC_PER_SEC 1000000000ull
#define NSEC_PER_US  1000ull
#define RD_BITS      (POLLIN | POLLHUP | POLLERR)
#define WR_BITS      (POLLOUT | POLLERR)
#define EX_BITS      POLLPRI

_Static_assert(FD_MAX % 64 == 0, "whole words");

struct sel {
    uint64_t in[3][WORDS];  /* what was asked */
    uint64_t out[3][WORDS]; /* what is ready */
    uint64_t *user[3];
    int nfds;
    long ready;
    bool bad;
};

static struct sel *scratch;

static bool sel_scan(void *arg)
{
    struct sel *s = arg;
    long ready = 0;
    sdk_memset(s->out, 0, sizeof(s->out));
    for (int w = 0; w * 64 < s->nfds; w++) {
        uint64_t any = s->in[0][w] | s->in[1][w] | s->in[2][w];
        while (any) {
            int b = __builtin_ctzll(any);
            any &= any - 1;
            int fd = w * 64 + b;
            if (fd >= s->nfds)
                break;
            short ev = fd_poll_events(fd);
            if (ev & POLLNVAL) {
                s->bad = true;
                return true;
            }
            uint64_t bit = 1ull << b;
            const short want[3] = {RD_BITS, WR_BITS, EX_BITS};
            for (int k = 0; k < 3; k++) {
                if ((s->in[k][w] & bit) && (ev & want[k])) {
                    s->out[k][w] |= bit;
                    ready++;
                }
            }
        }
    }
    s->ready = ready;
    return ready > 0;
}

static void sel_arm_all(struct sel *s, int on)
{
    for (int fd = 0; fd < s->nfds; fd++) {
        uint64_t bit = 1ull << (fd % 64);
        if ((s->in[0][fd / 64] | s->in[1][fd / 64] | s->in[2][fd / 64]) & bit)
            fd_poll_arm(fd, on);
    }
}

static void sel_arm(void *arg)
{
    sel_arm_all(arg, 1);
}

/* The wait itself; timeout_ns UINT64_MAX = forever. *left gets what was
 * not slept. */
static long do_select(int nfds, void *rd, void *wr, void *ex, uint64_t timeout_ns,
                      const void *sigmask, size_t sigsize, uint64_t *left)
{
    if (nfds < 0)
        return -EINVAL;
    if (nfds > FD_MAX)
        nfds = FD_MAX;
    if (!scratch) {
        long p = ember_sys_mmap(0, ALIGN_UP(sizeof(*scratch), PAGE_SIZE), PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p < 0)
            return -ENOMEM;
        scratch = (struct sel *)p;
    }
    struct sel *s = scratch;
    size_t bytes = (size_t)(nfds + 63) / 64 * sizeof(uint64_t);
    void *sets[3] = {rd, wr, ex};
    sdk_memset(s->in, 0, sizeof(s->in));
    for (int k = 0; k < 3; k++) {
        s->user[k] = sets[k];
        if (!sets[k] || !bytes)
            continue;
        if (!user_range_ok((uintptr_t)sets[k], bytes))
            return -EFAULT;
        sdk_memcpy(s->in[k], sets[k], bytes);
    }
    if (nfds % 64) { /* bits at or above nfds are not asked about */
        for (int k = 0; k < 3; k++)
            s->in[k][nfds / 64] &= (1ull << (nfds % 64)) - 1;
    }
    s->nfds = nfds;
    s->bad = false;
    uint64_t t0 = ember_monotonic_ns();
    long r = 0;
    if (!sel_scan(s) && timeout_ns) {
        r = ember_sig_mask_push(sigmask, sigsize);
        if (r)
            return r;
        bool wake = false;
        for (int fd = 0; fd < nfds && !wake; fd++) {
            uint64_t bit = 1ull << (fd % 64);
            if ((s->in[0][fd / 64] | s->in[1][fd / 64] | s->in[2][fd / 64]) & bit)
                wake = fd_poll_can_wake(fd);
        }
        r = ember_sig_wait(sel_scan, wake ? sel_arm : NULL, s, timeout_ns);
        if (wake)
            sel_arm_all(s, 0);
        ember_sig_mask_pop();
    }
    if (s->bad)
        return -EBADF;
    uint64_t slept = ember_monotonic_ns() - t0;
    *left = timeout_ns == UINT64_MAX ? 0 : (slept < timeout_ns ? timeout_ns - slept : 0);
    if (r)
        return r; /* EINTR: the sets are left as they were, as Linux */
    for (int k = 0; k < 3; k++) {
        if (s->user[k] && bytes)
            sdk_memcpy(s->user[k], s->out[k], bytes);
    }
    return s->ready;
}

long ember_sys_select(int nfds, void *rd, void *wr, void *ex, void *timeval)
{
    struct timeval *tv = timeval;
    uint64_t ns = UINT64_MAX, left = 0;
    if (tv) {
        if (!user_range_ok((uintptr_t)tv, sizeof(*tv)))
            return -EFAULT;
        struct timeval t = *tv;
        if (t.tv_sec < 0 || t.tv_usec < 0)
            return -EINVAL;
        /* Linux normalises tv_usec >= 1e6 rather than refusing it. */
        ns = (uint64_t)t.tv_sec > UINT64_MAX / NSEC_PER_SEC / 2
                 ? UINT64_MAX
                 : (uint64_t)t.tv_sec * NSEC_PER_SEC + (uint64_t)t.tv_usec * NSEC_PER_US;
    }
    long r = do_select(nfds, rd, wr, ex, ns, NULL, 0, &left);
    if (tv && r != -EFAULT && r != -EINVAL) {
        tv->tv_sec = (time_t)(left / NSEC_PER_SEC);
        tv->tv_usec = (suseconds_t)(left % NSEC_PER_SEC / NSEC_PER_US);
    }
    return r;
}

long ember_sys_pselect6(int nfds, void *rd, void *wr, void *ex, void *timespec, const void *sigdata)
{
    struct timespec *ts = timespec;
    uint64_t ns = UINT64_MAX, left = 0;
    const void *mask = NULL;
    size_t masksize = 0;
    if (ts) {
        if (!user_range_ok((uintptr_t)ts, sizeof(*ts)))
            return -EFAULT;
        struct timespec t = *ts;
        if (t.tv_sec < 0 || t.tv_nsec < 0 || t.tv_nsec >= (long)NSEC_PER_SEC)
            return -EINVAL;
        ns = (uint64_t)t.tv_sec > UINT64_MAX / NSEC_PER_SEC / 2
                 ? UINT64_MAX
                 : (uint64_t)t.tv_sec * NSEC_PER_SEC + (uint64_t)t.tv_nsec;
    }
    if (sigdata) { /* { const sigset_t *ss; size_t ss_len; } */
        if (!user_range_ok((uintptr_t)sigdata, 2 * sizeof(uint64_t)))
            return -EFAULT;
        const uint64_t *d = sigdata;
        mask = (const void *)(uintptr_t)d[0];
        masksize = d[1];
    }
    long r = do_select(nfds, rd, wr, ex, ns, mask, masksize, &left);
    if (ts && r != -EFAULT && r != -EINVAL) {
        ts->tv_sec = (time_t)(left / NSEC_PER_SEC);
        ts->tv_nsec = (long)(left % NSEC_PER_SEC);
    }
    return r;
}
