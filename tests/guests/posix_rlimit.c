/* posix_rlimit.c: getrlimit, setrlimit and prlimit64 as Linux has them:
 * RLIMIT_NOFILE is the real size of the fd table (an fd at limit - 1 can be
 * made, none at the limit), a lower soft limit is honoured by dup, dup2,
 * F_DUPFD and poll, and the errors come in Linux's order. Each step prints
 * one line; the native build prints the same. Limits' values differ between
 * a host and a guest, so none is printed.
 *
 * No fd number is assumed closed or open (the test runner may pass fds
 * down): open ones are counted with fcntl(F_GETFD). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TEST_NAME "posix_rlimit"
#include "posix_check.h"

#define LOW 64 /* the lowered RLIMIT_NOFILE */

static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static void nofile_is_the_table(int fd)
{
    struct rlimit nf;
    CHECK(getrlimit(RLIMIT_NOFILE, &nf) == 0, "getrlimit(RLIMIT_NOFILE)");
    CHECK(nf.rlim_cur != RLIM_INFINITY && nf.rlim_cur <= nf.rlim_max, "soft limit finite, <= hard");
    CHECK(nf.rlim_cur >= LOW, "soft limit %llu", (unsigned long long)nf.rlim_cur);
    if (nf.rlim_cur <= (1u << 20)) { /* a host's may be huge: that table is not made */
        int top = (int)nf.rlim_cur - 1;
        int d = fcntl(fd, F_DUPFD, top);
        CHECK(d == top || (d == -1 && errno == EMFILE), "F_DUPFD at soft limit - 1");
        if (d >= 0)
            close(d);
        CHECK(fcntl(fd, F_DUPFD, top + 1) == -1 && errno == EINVAL, "F_DUPFD at the soft limit");
        CHECK(dup2(fd, top + 1) == -1 && errno == EBADF, "dup2 onto the soft limit");
    }
    printf("posix_rlimit: RLIMIT_NOFILE is the fd table's size\n");
}

static void nofile_lowered(int fd)
{
    struct rlimit nf, low, got;
    CHECK(getrlimit(RLIMIT_NOFILE, &nf) == 0, "getrlimit(RLIMIT_NOFILE)");
    int open_below = 0;
    for (int i = 0; i < LOW; i++)
        open_below += is_open(i);
    low = (struct rlimit){.rlim_cur = LOW, .rlim_max = nf.rlim_max};
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0, "lower the soft limit");
    CHECK(getrlimit(RLIMIT_NOFILE, &got) == 0 && got.rlim_cur == LOW && got.rlim_max == nf.rlim_max,
          "getrlimit after setrlimit");
    int fds[LOW], n = 0, d;
    while ((d = dup(fd)) >= 0) {
        CHECK(d < LOW && n < LOW, "dup %d under the lowered limit", n);
        fds[n++] = d;
    }
    CHECK(errno == EMFILE, "dup past the lowered limit");
    CHECK(n == LOW - open_below, "%d dups, %d fds were free", n, LOW - open_below);
    CHECK(fcntl(fd, F_DUPFD, LOW) == -1 && errno == EINVAL, "F_DUPFD at the lowered limit");
    CHECK(dup2(fd, LOW) == -1 && errno == EBADF, "dup2 onto the lowered limit");
    struct pollfd pf[LOW + 1];
    for (int i = 0; i <= LOW; i++)
        pf[i] = (struct pollfd){.fd = -1};
    CHECK(poll(pf, LOW, 0) == 0, "poll of as many fds as the limit");
    CHECK(poll(pf, LOW + 1, 0) == -1 && errno == EINVAL, "poll of more fds than the limit");
    while (n > 0)
        close(fds[--n]);
    CHECK(setrlimit(RLIMIT_NOFILE, &nf) == 0, "raise the soft limit back");
    CHECK(getrlimit(RLIMIT_NOFILE, &got) == 0 && got.rlim_cur == nf.rlim_cur &&
              got.rlim_max == nf.rlim_max,
          "getrlimit after raising it back");
    d = dup(fd);
    CHECK(d >= 0, "dup under the restored limit");
    close(d);
    printf("posix_rlimit: a lower RLIMIT_NOFILE is honoured, and can be raised back\n");
}

static void sizes(void)
{
    struct rlimit r;
    CHECK(getrlimit(RLIMIT_STACK, &r) == 0 && r.rlim_cur <= r.rlim_max, "RLIMIT_STACK");
    CHECK(r.rlim_cur == RLIM_INFINITY || r.rlim_cur >= (64u << 10), "stack of %llu",
          (unsigned long long)r.rlim_cur);
    CHECK(getrlimit(RLIMIT_AS, &r) == 0 && r.rlim_cur <= r.rlim_max, "RLIMIT_AS");
    CHECK(r.rlim_cur == RLIM_INFINITY || r.rlim_cur >= (16u << 20), "RLIMIT_AS of %llu",
          (unsigned long long)r.rlim_cur);
    CHECK(getrlimit(RLIMIT_DATA, &r) == 0 && r.rlim_cur <= r.rlim_max, "RLIMIT_DATA");
    CHECK(r.rlim_cur == RLIM_INFINITY || r.rlim_cur >= (8u << 20), "RLIMIT_DATA of %llu",
          (unsigned long long)r.rlim_cur);
    CHECK(getrlimit(RLIMIT_CORE, &r) == 0 && r.rlim_cur <= r.rlim_max, "RLIMIT_CORE");
    struct rlimit none = {.rlim_cur = 0, .rlim_max = r.rlim_max};
    CHECK(setrlimit(RLIMIT_CORE, &none) == 0, "RLIMIT_CORE soft limit 0");
    CHECK(getrlimit(RLIMIT_CORE, &r) == 0 && r.rlim_cur == 0, "RLIMIT_CORE is 0");
    CHECK(getrlimit(RLIMIT_FSIZE, &r) == 0 && r.rlim_cur <= r.rlim_max, "RLIMIT_FSIZE");
    printf("posix_rlimit: stack, memory and core limits\n");
}

static void errors(void)
{
    struct rlimit r, bad = {.rlim_cur = 2, .rlim_max = 1};
    CHECK(getrlimit(RLIM_NLIMITS, &r) == -1 && errno == EINVAL, "getrlimit(RLIM_NLIMITS)");
    CHECK(getrlimit(-1, &r) == -1 && errno == EINVAL, "getrlimit(-1)");
    CHECK(setrlimit(RLIM_NLIMITS, &r) == -1 && errno == EINVAL, "setrlimit(RLIM_NLIMITS)");
    CHECK(setrlimit(RLIMIT_NOFILE, &bad) == -1 && errno == EINVAL, "soft above hard");
    CHECK(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, (void *)8) == -1 && errno == EFAULT,
          "prlimit64 old limits to a bad pointer");
    CHECK(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, (void *)8, NULL) == -1 && errno == EFAULT,
          "prlimit64 new limits from a bad pointer");
    CHECK(syscall(SYS_prlimit64, 0, RLIM_NLIMITS, (void *)8, NULL) == -1 && errno == EFAULT,
          "prlimit64: the pointer before the resource");
    CHECK(syscall(SYS_prlimit64, 0, RLIM_NLIMITS, NULL, NULL) == -1 && errno == EINVAL,
          "prlimit64 of a bad resource");
    CHECK(syscall(SYS_prlimit64, 0x7ffffff0, RLIMIT_NOFILE, NULL, &r) == -1 && errno == ESRCH,
          "prlimit64 of another process");
    CHECK(syscall(SYS_getrlimit, RLIMIT_NOFILE, NULL) == -1 && errno == EFAULT,
          "getrlimit(2) to NULL");
    CHECK(syscall(SYS_setrlimit, RLIMIT_NOFILE, NULL) == -1 && errno == EFAULT,
          "setrlimit(2) from NULL");
    CHECK(syscall(SYS_getrlimit, RLIMIT_NOFILE, &r) == 0 && r.rlim_cur <= r.rlim_max,
          "getrlimit(2)");
    struct rlimit p;
    CHECK(prlimit(0, RLIMIT_NOFILE, NULL, &p) == 0 && p.rlim_cur == r.rlim_cur &&
              p.rlim_max == r.rlim_max,
          "prlimit agrees with getrlimit");
    printf("posix_rlimit: errors as Linux\n");
}

int main(void)
{
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    nofile_is_the_table(p[0]);
    nofile_lowered(p[0]);
    sizes();
    errors();
    close(p[0]);
    close(p[1]);
    printf("posix_rlimit: ok\n");
    return 0;
}
