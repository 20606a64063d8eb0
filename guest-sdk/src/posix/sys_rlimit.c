/* sys_rlimit.c: getrlimit, setrlimit and prlimit64 (musl's getrlimit() and
 * setrlimit() both call prlimit64).
 *
 * The limits describe the guest as it is: RLIMIT_NOFILE is the fd table
 * (FD_MAX, sys_fd.h), RLIMIT_STACK the main thread's stack below its guard
 * (ember.ld), RLIMIT_AS the guest's RAM, RLIMIT_DATA the heap that brk and
 * mmap hand out (sys_mem.c), RLIMIT_CORE 0 (there is no core dump); the
 * others are RLIM_INFINITY. These real sizes are also the hard limits'
 * ceiling: raising a hard limit above one is EPERM, as Linux answers for
 * RLIMIT_NOFILE above fs.nr_open; the guest runs as uid 0, so any other
 * raise is allowed. A lower RLIMIT_NOFILE soft limit is honoured by the fd
 * table (new fds stay below it: EMFILE, EBADF for dup2, EINVAL for
 * F_DUPFD, as Linux); the other limits are only remembered.
 * Checks in Linux's order (kernel/sys.c prlimit64, do_prlimit): the new
 * limits' pointer (EFAULT), the pid (ESRCH: there is one process, pid 1 or
 * 0), the resource (EINVAL), cur > max (EINVAL), the ceiling (EPERM); the
 * old limits are written last (EFAULT, after a set has happened).
 */
#include <errno.h>
#include <sys/resource.h>

#include "posix/sys_fd.h"
#include "sdk.h"

extern char __ember_stack_guard_lo[], __ember_stack_guard_len[]; /* ember.ld */
extern char ember_main_stack_top[];                              /* cpu_entry.S */

struct lim {
    uint64_t cur, max;
};

static struct lim set[RLIM_NLIMITS]; /* what setrlimit stored */
static bool was_set[RLIM_NLIMITS];

/* What the guest really has of resource r: the default and the ceiling. */
static uint64_t real_size(int r)
{
    switch (r) {
    case RLIMIT_NOFILE:
        return FD_MAX;
    case RLIMIT_STACK: /* linker symbols: compare addresses, not pointers */
        return (uint64_t)((uintptr_t)ember_main_stack_top - (uintptr_t)__ember_stack_guard_lo -
                          (uintptr_t)__ember_stack_guard_len);
    case RLIMIT_AS:
        return ember_bi.mem_size;
    case RLIMIT_DATA:
        return ember_heap_total();
    case RLIMIT_CORE:
        return 0;
    default:
        return RLIM_INFINITY;
    }
}

static struct lim current(int r)
{
    if (was_set[r])
        return set[r];
    uint64_t v = real_size(r);
    return (struct lim){v, v};
}

long ember_sys_prlimit64(int pid, unsigned int resource, const void *new_lim, void *old_lim)
{
    struct lim n = {0};
    if (new_lim) {
        if (!user_range_ok((uintptr_t)new_lim, sizeof(n)))
            return -EFAULT;
        sdk_memcpy(&n, new_lim, sizeof(n)); /* read once */
    }
    if (pid != 0 && pid != 1)
        return -ESRCH;
    if (resource >= RLIM_NLIMITS)
        return -EINVAL;
    int r = (int)resource;
    struct lim old = current(r);
    if (new_lim) {
        if (n.cur > n.max)
            return -EINVAL;
        if (n.max > real_size(r))
            return -EPERM;
        set[r] = n;
        was_set[r] = true;
        if (r == RLIMIT_NOFILE)
            fd_nofile = (int)n.cur;
    }
    if (old_lim) {
        if (!user_range_ok((uintptr_t)old_lim, sizeof(old)))
            return -EFAULT;
        sdk_memcpy(old_lim, &old, sizeof(old));
    }
    return 0;
}
