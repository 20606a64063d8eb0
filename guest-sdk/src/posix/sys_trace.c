/* sys_trace.c: EMBER_TRACE_SYSCALLS, the trace of unimplemented calls.
 *
 * A program that fails because the SDK lacks a system call usually says
 * only "Function not implemented". With EMBER_TRACE_SYSCALLS=1 in the
 * environment (a command-line word, `ember run --env`, or
 * `ember run --trace-syscalls`), each call answered with ENOSYS is named
 * once on ember's stderr:
 *     ember: trace: system call 57 (fork) is not implemented (ENOSYS)
 * The set of calls already named lives in a page taken when the trace is
 * turned on; without it nothing is allocated and the check is one load.
 */
#include <sys/mman.h>

#include "posix/sys_trace.h"
#include "sdk.h"

#define NR_MAX 1024 /* numbers above are named "?" and share one bit */

static uint64_t *seen; /* NR_MAX bits, NULL while the trace is off */

void ember_trace_init(char *const *envp)
{
    static const char key[] = "EMBER_TRACE_SYSCALLS=";
    for (; envp && *envp; envp++) {
        const char *e = *envp;
        size_t k = 0;
        while (key[k] && e[k] == key[k])
            k++;
        if (key[k])
            continue;
        const char *v = e + k;
        if (!v[0] || (v[0] == '0' && !v[1]))
            return;
        long p = ember_sys_mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                -1, 0);
        if (p >= 0)
            seen = (uint64_t *)p;
        return;
    }
}

static char *put(char *p, const char *s)
{
    while (*s)
        *p++ = *s++;
    return p;
}

void ember_trace_enosys(uint64_t nr)
{
    if (!seen)
        return;
    uint64_t bit = nr < NR_MAX ? nr : NR_MAX - 1;
    if (seen[bit / 64] & (1ull << (bit % 64)))
        return;
    seen[bit / 64] |= 1ull << (bit % 64);
    char line[128], num[24];
    int n = 0;
    uint64_t v = nr;
    do {
        num[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < 20);
    char *p = put(line, "ember: trace: system call ");
    while (n)
        *p++ = num[--n];
    p = put(p, " (");
    p = put(p, nr < EMBER_SYS_NAMES && ember_sys_names[nr] ? ember_sys_names[nr] : "?");
    p = put(p, ") is not implemented (ENOSYS)\n");
    ember_console_write_err(line, (size_t)(p - line));
}
