/* test_seccomp.c: ember's real seccomp filters. seccomp_probe installs a
 * filter and makes one call: allowed calls go through, forbidden ones end the
 * process with 148 and a line naming the call. Then real boots run under
 * strace and every call each filtered thread made is looked up in its
 * filter's list (seccomp_lifecycle.sh), so no boot path meets a false kill. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tests/integration/proc.h"

#define CAP_S 60

static void probe(struct spawn_result *r, const char *role, const char *action)
{
    char *argv[] = {SECCOMP_PROBE_BIN, (char *)role, (char *)action, NULL};
    cr_assert_eq(spawn_run(argv, CAP_S, r), 0);
    cr_assert(!r->timed_out);
}

static void allowed(const char *role, const char *action)
{
    struct spawn_result r;
    char want[128];

    probe(&r, role, action);
    snprintf(want, sizeof(want), "survived %s: 0\n", action);
    cr_expect_eq(r.status, 0, "%s/%s: status %d, stderr: %s", role, action, r.status, r.err);
    cr_expect(strstr(r.out, want) != NULL, "%s/%s: stdout: %s", role, action, r.out);
    spawn_free(&r);
}

static void forbidden(const char *role, const char *action, const char *call, int nr)
{
    struct spawn_result r;
    char want[160];

    probe(&r, role, action);
    snprintf(want, sizeof(want), "ember: seccomp: forbidden system call %s (%d) in the %s thread\n",
             call, nr, strncmp(role, "vcpu", 4) == 0 ? "vcpu" : "main");
    cr_expect_eq(r.status, 148, "%s/%s: status %d, stdout %s, stderr %s", role, action, r.status,
                 r.out, r.err);
    cr_expect_str_eq(r.err, want);
    cr_expect(strstr(r.out, "survived") == NULL, "%s/%s survived: %s", role, action, r.out);
    spawn_free(&r);
}

#ifdef EMBER_SANITIZE_BUILD
#define NEED_FILTERS()                                                                             \
    do {                                                                                           \
        fprintf(stderr, "SKIPPED: sanitizer builds install no seccomp filter\n");                  \
        cr_skip_test("sanitizer build");                                                           \
    } while (0)
#else
#define NEED_FILTERS()                                                                             \
    do {                                                                                           \
    } while (0)
#endif

Test(seccomp, vcpu_filter_allows_what_the_vcpu_needs)
{
    NEED_FILTERS();
    allowed("vcpu", "nothing");
    allowed("vcpu", "kvm-run-own-fd");
    allowed("vcpu", "eventfd-write");
    allowed("vcpu", "write-stdout");
    allowed("vcpu", "mmap-rw");
    allowed("vcpu", "realloc-big");
}

Test(seccomp, vcpu_filter_kills_everything_else)
{
    NEED_FILTERS();
    forbidden("vcpu", "socket", "socket", 41);
    forbidden("vcpu", "execve", "execve", 59);
    forbidden("vcpu", "openat", "openat", 257);
    forbidden("vcpu", "getppid", "getppid", 110);
    /* argument filters */
    forbidden("vcpu", "mmap-exec", "mmap", 9);
    forbidden("vcpu", "mprotect-exec", "mprotect", 10);
    forbidden("vcpu", "mremap-fixed", "mremap", 25);
    forbidden("vcpu", "kvm-run-other-fd", "ioctl", 16);
    forbidden("vcpu", "kvm-set-regs", "ioctl", 16);
    forbidden("vcpu", "eventfd-write-4", "write", 1);
    forbidden("vcpu", "write-other-fd", "write", 1);
}

Test(seccomp, timings_filter_may_open_read_only)
{
    NEED_FILTERS();
    allowed("vcpu_timings", "openat");
    forbidden("vcpu_timings", "socket", "socket", 41);
}

Test(seccomp, main_filter)
{
    NEED_FILTERS();
    allowed("main", "nothing");
    allowed("main", "eventfd-write");
    allowed("main", "openat");
    allowed("main", "realloc-big");
    forbidden("main", "socket", "socket", 41);
    forbidden("main", "execve", "execve", 59);
    forbidden("main", "mmap-exec", "mmap", 9);
    forbidden("main", "kvm-run-own-fd", "ioctl", 16);
}

/* The SIGBUS handler (monitor/mem_fault.h) works under every filter: a lost
 * page of watched memory reads as zeros, any other SIGBUS kills as if there
 * were no handler (128 + SIGBUS, no seccomp line). */
static void dies_of_sigbus(const char *role, const char *action)
{
    struct spawn_result r;

    probe(&r, role, action);
    cr_expect_eq(r.status, 128 + 7, "%s/%s: status %d, stdout %s, stderr %s", role, action,
                 r.status, r.out, r.err);
    cr_expect(strstr(r.out, "installed\n") != NULL, "%s/%s: %s", role, action, r.out);
    cr_expect(strstr(r.out, "survived") == NULL, "%s/%s survived: %s", role, action, r.out);
    cr_expect_str_eq(r.err, "", "%s/%s", role, action);
    spawn_free(&r);
}

Test(seccomp, sigbus_handler_under_every_filter)
{
    static const char *const roles[] = {"vcpu", "vcpu_timings", "main"};

    NEED_FILTERS();
    for (int i = 0; i < 3; i++) {
        allowed(roles[i], "sigbus-watched");
        dies_of_sigbus(roles[i], "sigbus-unwatched");
        dies_of_sigbus(roles[i], "sigbus-sent");
    }
}

/* The whole process ends, not just the thread. */
Test(seccomp, ember_itself_has_filters_on_by_default)
{
    struct spawn_result r;
    char *on[] = {EMBER_BIN, "run", HELLO_BIN, NULL};
    char *off[] = {EMBER_BIN, "run", "--no-seccomp", HELLO_BIN, NULL};

    cr_assert_eq(spawn_run(on, CAP_S, &r), 0);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq(r.out, "Hello from ember!\n");
    spawn_free(&r);
    cr_assert_eq(spawn_run(off, CAP_S, &r), 0);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq(r.err, "ember: warning: --no-seccomp: the monitor runs without its "
                            "system-call filters\n");
    spawn_free(&r);
}
