/* test_boot.c: boot real guests in the real `ember` under KVM and check what
 * a user sees: output, exit status, and the message of every failure. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/need_kvm.h"
#include "tests/integration/proc.h"

#define CAP_S 60

/* Runs `ember run [opts...] GUEST [args...]`; argv is NULL-terminated and
 * starts after "ember". */
static void ember(struct spawn_result *r, const char *const *args)
{
    char *argv[32] = {EMBER_BIN};
    int n = 1;

    for (; args[n - 1] && n < 31; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    cr_assert_eq(spawn_run(argv, CAP_S, r), 0, "cannot spawn %s", EMBER_BIN);
    cr_assert(!r->timed_out, "ember did not finish within %d s; stdout: %s stderr: %s", CAP_S,
              r->out, r->err);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

#define EMBER(r, ...) ember(r, (const char *const[]){__VA_ARGS__, NULL})

static void expect(const char *hay, const char *needle, const char *what)
{
    cr_expect(strstr(hay, needle) != NULL, "%s lacks \"%s\"; it was:\n%s", what, needle, hay);
}

Test(boot, hello_output_and_status)
{
    struct spawn_result r;

    need_kvm();
    EMBER(&r, "run", EXAMPLES_DIR "/hello", "x");
    cr_expect_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    expect(r.out, "Hello from ember!", "stdout");
    expect(r.out, "argv[1] = \"x\"", "stdout");
    spawn_free(&r);
}

Test(boot, exit_status_passes_through)
{
    static const char *codes[] = {"1", "42", "200", "255"};

    need_kvm();
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        struct spawn_result r;
        EMBER(&r, "run", EXAMPLES_DIR "/hello", "--exit", codes[i]);
        cr_expect_eq(r.status, atoi(codes[i]), "--exit %s gave %d", codes[i], r.status);
        spawn_free(&r);
    }
}

Test(boot, arguments_with_spaces_and_quotes)
{
    struct spawn_result r;

    need_kvm();
    EMBER(&r, "run", GUEST_DIR "/args", "a b", "\"q\"", "it's", "back\\slash", "", "  lead",
          "tab\there");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_expect_str_eq(r.out, "argc=8\n"
                            "argv[0]=[args]\n"
                            "argv[1]=[a b]\n"
                            "argv[2]=[\"q\"]\n"
                            "argv[3]=[it's]\n"
                            "argv[4]=[back\\slash]\n"
                            "argv[5]=[]\n"
                            "argv[6]=[  lead]\n"
                            "argv[7]=[tab\there]\n");
    spawn_free(&r);
}

Test(boot, null_dereference_is_a_page_fault)
{
    struct spawn_result r;

    need_kvm();
    EMBER(&r, "run", GUEST_DIR "/null_deref");
    cr_expect_eq(r.status, 255, "status %d", r.status);
    /* The guest's fault report is ember's stderr; nothing of it on stdout. */
    expect(r.err, "#PF page fault", "stderr");
    expect(r.err, "cr2 0x0", "stderr");
    cr_expect(strstr(r.out, "guest fault") == NULL, "fault report on stdout: %s", r.out);
    spawn_free(&r);
}

Test(boot, divide_by_zero_is_reported)
{
    struct spawn_result r;

    need_kvm();
    EMBER(&r, "run", GUEST_DIR "/div_zero");
    cr_expect_eq(r.status, 255, "status %d", r.status);
    expect(r.err, "#DE divide error", "stderr");
    spawn_free(&r);
}

Test(boot, triple_fault_is_a_guest_failure)
{
    struct spawn_result r;

    need_kvm();
    EMBER(&r, "run", GUEST_DIR "/triple_fault");
    cr_expect_eq(r.status, 160, "status %d (want 160, guest failed)", r.status);
    expect(r.err, "ember: guest failed: triple fault (KVM_EXIT_SHUTDOWN) at rip 0x", "stderr");
    cr_expect(strstr(r.out, "still running") == NULL, "guest went on after the fault");
    spawn_free(&r);
}

Test(boot, malloc_beyond_ram_returns_null)
{
    struct spawn_result r;

    need_kvm();
    EMBER(&r, "run", "--mem", "32", GUEST_DIR "/oom");
    cr_expect_eq(r.status, 0, "status %d, out: %s", r.status, r.out);
    expect(r.out, "oom: got NULL after", "stdout");
    spawn_free(&r);
}

Test(boot, monotonic_time_advances)
{
    struct spawn_result r;

    need_kvm();
    EMBER(&r, "run", GUEST_DIR "/time_mono");
    cr_expect_eq(r.status, 0, "status %d, out: %s", r.status, r.out);
    expect(r.out, "time: ok", "stdout");
    spawn_free(&r);
}

Test(boot, abort_ends_with_sigabrt_status)
{
    struct spawn_result r;

    need_kvm();
    EMBER(&r, "run", GUEST_DIR "/abort");
    cr_expect_eq(r.status, 134, "status %d", r.status);
    expect(r.err, "ember: guest killed by signal 6 (SIGABRT)", "stderr");
    expect(r.out, "abort: calling abort()", "stdout"); /* what came before, in full */
    spawn_free(&r);
}

Test(boot, libc_works_for_real)
{
    struct spawn_result r;

    need_kvm();
    EMBER(&r, "run", EXAMPLES_DIR "/libc-demo");
    cr_expect_eq(r.status, 0, "status %d, out: %s", r.status, r.out);
    expect(r.out, "libc-demo: ok", "stdout");
    spawn_free(&r);
}

Test(boot, small_memory_boots)
{
    struct spawn_result r;

    need_kvm();
    EMBER(&r, "run", "--mem", "4", EXAMPLES_DIR "/hello");
    cr_expect_eq(r.status, 0, "status %d, out: %s err: %s", r.status, r.out, r.err);
    expect(r.out, "Hello from ember!", "stdout");
    spawn_free(&r);
}

Test(boot, timings_show_the_boot_path)
{
    struct spawn_result r;

    need_kvm();
    EMBER(&r, "run", "--timings", EXAMPLES_DIR "/hello");
    cr_expect_eq(r.status, 0);
    expect(r.err, "ember: timings (us since process start): vm-created=", "stderr");
    expect(r.err, "guest-main=", "stderr");
    cr_expect(strstr(r.err, "guest-main=-") == NULL, "the guest never reported main: %s", r.err);
    expect(r.err, "ember: memory (KiB): rss-peak=", "stderr");
    spawn_free(&r);
}

/* Command-line and configuration errors: exact messages, Firecracker's codes. */
Test(cli, usage_errors_exit_153)
{
    struct spawn_result r;

    EMBER(&r, "run");
    cr_expect_eq(r.status, 153);
    expect(r.err, "ember: no guest given\n", "stderr");
    spawn_free(&r);

    EMBER(&r, "run", "--mem", "lots", "g.elf");
    cr_expect_eq(r.status, 153);
    expect(r.err, "ember: --mem: \"lots\" is not a number of MiB\n", "stderr");
    spawn_free(&r);

    EMBER(&r, "run", "--frobnicate", "g.elf");
    cr_expect_eq(r.status, 153);
    expect(r.err, "ember: unknown option --frobnicate\n", "stderr");
    spawn_free(&r);
}

Test(cli, bad_configuration_exits_152)
{
    struct spawn_result r;

    EMBER(&r, "run", "--mem", "99999", EXAMPLES_DIR "/hello");
    cr_expect_eq(r.status, 152);
    expect(r.err, "ember: memory size 99999 MiB out of range (2 to 3072 MiB)\n", "stderr");
    spawn_free(&r);
}

Test(cli, hostile_guest_files_are_rejected_by_name)
{
    char dir[] = "/tmp/ember-test-XXXXXX", path[64], want[160];
    struct spawn_result r;

    need_kvm();
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/empty.elf", dir);
    write_file(path, "", 0);
    EMBER(&r, "run", path);
    cr_expect_eq(r.status, 152);
    snprintf(want, sizeof(want), "ember: %s: file too small for an ELF header (0 bytes)\n", path);
    cr_expect_str_eq(r.err, want);
    spawn_free(&r);

    snprintf(path, sizeof(path), "%s/text.elf", dir);
    write_file(path, "#!/bin/sh\necho this is not an ELF file at all, sorry\n", 52);
    EMBER(&r, "run", path);
    cr_expect_eq(r.status, 152);
    snprintf(want, sizeof(want), "ember: %s: not an ELF file (bad magic)\n", path);
    cr_expect_str_eq(r.err, want);
    spawn_free(&r);
    unlink(path);
    snprintf(path, sizeof(path), "%s/empty.elf", dir);
    unlink(path);
    rmdir(dir);

    EMBER(&r, "run", "/nonexistent/guest.elf");
    cr_expect_eq(r.status, 152);
    cr_expect_str_eq(r.err, "ember: /nonexistent/guest.elf: No such file or directory\n");
    spawn_free(&r);

    /* A host program is a real ELF, but not a bootable guest. */
    EMBER(&r, "run", "/bin/true");
    cr_expect_eq(r.status, 152);
    expect(r.err, "not a static executable (e_type 3); guests are linked static and non-PIE",
           "stderr");
    spawn_free(&r);
}

/* The same ELF boots in QEMU's microvm through its PVH note. */
Test(qemu, hello_boots_in_qemu_microvm)
{
    const char *qemu = "/usr/bin/qemu-system-x86_64";
    struct spawn_result r;

    need_kvm();
    if (access(qemu, X_OK) != 0) {
        fprintf(stderr, "SKIPPED: %s not installed (install-deps.sh installs it)\n", qemu);
        cr_skip_test("needs %s", qemu);
    }
    char *argv[] = {(char *)qemu,
                    "-M",
                    "microvm,isa-serial=on",
                    "-enable-kvm",
                    "-cpu",
                    "host,-arch-capabilities",
                    "-m",
                    "128",
                    "-nodefaults",
                    "-no-user-config",
                    "-nographic",
                    "-serial",
                    "stdio",
                    "-no-reboot",
                    "-device",
                    "isa-debug-exit,iobase=0x501,iosize=4",
                    "-kernel",
                    EXAMPLES_DIR "/hello",
                    "-append",
                    "q \"r s\" --exit 3",
                    NULL};
    cr_assert_eq(spawn_run(argv, CAP_S, &r), 0);
    cr_assert(!r.timed_out, "QEMU did not finish; out: %s err: %s", r.out, r.err);
    /* isa-debug-exit ends QEMU with (status << 1) | 1. */
    cr_expect_eq(r.status, (3 << 1) | 1, "QEMU status %d, err: %s", r.status, r.err);
    expect(r.out, "Hello from ember!", "QEMU's serial");
    expect(r.out, "\"r s\"", "QEMU's serial");
    spawn_free(&r);
}

/* The supported-CPUID cache: written on first use, used when intact, and a
 * damaged or foreign one is ignored (the guest still boots) and replaced. */
Test(boot, cpuid_cache_is_written_and_survives_damage)
{
    char dir[] = "/tmp/ember-cpuid-XXXXXX", path[64];
    struct spawn_result r;
    struct stat st;

    need_kvm();
    cr_assert(mkdtemp(dir));
    setenv("EMBER_RUN_DIR", dir, 1);
    snprintf(path, sizeof(path), "%s/kvm-cpuid", dir);

    EMBER(&r, "run", EXAMPLES_DIR "/hello");
    cr_expect_eq(r.status, 0);
    spawn_free(&r);
    cr_assert_eq(stat(path, &st), 0, "no cache written at %s", path);
    cr_expect_gt(st.st_size, 200);

    write_file(path, "garbage that is not a cache", 27);
    EMBER(&r, "run", EXAMPLES_DIR "/hello");
    cr_expect_eq(r.status, 0, "a damaged cache broke the boot: %s", r.err);
    expect(r.out, "Hello from ember!", "stdout");
    spawn_free(&r);
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_gt(st.st_size, 200, "the damaged cache was not replaced");

    chmod(path, 0666); /* writable by others: must not be trusted */
    EMBER(&r, "run", EXAMPLES_DIR "/hello");
    cr_expect_eq(r.status, 0);
    spawn_free(&r);
    unsetenv("EMBER_RUN_DIR");
    unlink(path);
    rmdir(dir);
}

/* A guest built without the SDK, entered only through its PVH note: 32-bit
 * protected mode, hvm_start_info in EBX, output through the 8250 UART. */
Test(boot, pvh_guest_boots_with_start_info)
{
    struct spawn_result r;

    need_kvm();
    EMBER(&r, "run", GUEST_DIR "/pvh_raw", "console=ttyS0", "reboot=k");
    cr_expect_eq(r.status, 42, "status %d (1: the PVH entry state was wrong), err: %s", r.status,
                 r.err);
    cr_expect_str_eq(r.out, "pvh: magic ok, cmdline: console=ttyS0 reboot=k\n");
    spawn_free(&r);
}

/* Every line of a burst arrives on stdout in order, whatever ends the guest. */
static void all_lines(const char *out, int n)
{
    const char *p = out;
    char want[32];

    for (int i = 0; i < n; i++) {
        int len = snprintf(want, sizeof(want), "burst line %d\n", i);
        cr_assert(strncmp(p, want, (size_t)len) == 0, "line %d missing or out of order at: %.40s",
                  i, p);
        p += len;
    }
}

Test(boot, console_output_is_ordered_and_complete)
{
    const char *const ends[] = {"exit", "fault", "abort"};
    const int status[] = {0, 255, 134};

    need_kvm();
    for (int k = 0; k < 3; k++) {
        struct spawn_result r;
        EMBER(&r, "run", GUEST_DIR "/console_burst", ends[k]);
        cr_expect_eq(r.status, status[k], "%s: status %d", ends[k], r.status);
        all_lines(r.out, 2000);
        expect(r.err, "console_burst: to stderr", "stderr");
        cr_expect(strstr(r.out, "to stderr") == NULL, "stderr on stdout");
        if (k == 0)
            expect(r.out, "console_burst: done", "stdout");
        if (k == 1)
            expect(r.err, "#PF page fault", "stderr");
        spawn_free(&r);
    }
}
