/* test_virtio.c: virtio devices with real guests: a hostile guest that breaks
 * the queue rules, and the block device's data path. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/need_kvm.h"
#include "tests/integration/proc.h"

#define CAP_S 120

static char *make_disk(const char *name, size_t bytes)
{
    static char path[128];
    int fd;

    snprintf(path, sizeof(path), "/tmp/ember-test-%d-%s.img", getpid(), name);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0);
    cr_assert_eq(ftruncate(fd, (off_t)bytes), 0);
    close(fd);
    return path;
}

static void run(struct spawn_result *r, char **argv)
{
    cr_assert_eq(spawn_run(argv, CAP_S, r), 0);
    cr_assert(!r->timed_out, "ember did not finish; out: %s err: %s", r->out, r->err);
}

static void expect(const char *hay, const char *needle, const char *what)
{
    cr_expect(strstr(hay, needle) != NULL, "%s lacks \"%s\"; it was:\n%s", what, needle, hay);
}

Test(virtio, hostile_guest_is_contained)
{
    struct spawn_result r;
    char drive[160];

    need_kvm();
    snprintf(drive, sizeof(drive), "%s,id=victim", make_disk("hostile", 1 << 20));
    run(&r, (char *[]){EMBER_BIN, "run", "--drive", drive, GUEST_DIR "/virtio_hostile", NULL});
    cr_expect_eq(r.status, 0, "status %d\nout: %s\nerr: %s", r.status, r.out, r.err);
    static const char *cases[][2] = {
        {"descriptor loop", "descriptor loop (chain longer than the queue)"},
        {"head out of range", "head 11 out of range (queue of 8)"},
        {"buffer outside RAM", "buffer [0xfffffff000, +0x200) outside guest RAM"},
        {"huge length", "buffer [0x"},
        {"wrong direction", "device-readable buffer after a device-writable one"},
        {"ring outside RAM", "ring outside guest RAM"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[160];
        snprintf(want, sizeof(want), "hostile: %s: needs reset\n", cases[i][0]);
        expect(r.out, want, "guest output");
        snprintf(want, sizeof(want), "ember: virtio-blk \"victim\": queue 0: %s", cases[i][1]);
        expect(r.err, want, "monitor log");
    }
    expect(r.out, "hostile: recovered\n", "guest output");
    spawn_free(&r);
    unlink(make_disk("hostile", 0));
}

Test(virtio, bad_drive_options_are_named)
{
    struct spawn_result r;

    run(&r, (char *[]){EMBER_BIN, "run", "--drive", "/nonexistent.img,id=root",
                       EXAMPLES_DIR "/hello", NULL});
    cr_expect_eq(r.status, 152);
    cr_expect_str_eq(r.err, "ember: drive \"root\": /nonexistent.img: No such file or directory\n");
    spawn_free(&r);

    run(&r,
        (char *[]){EMBER_BIN, "run", "--drive", "/tmp/x.img,id=a/b", EXAMPLES_DIR "/hello", NULL});
    cr_expect_eq(r.status, 153);
    expect(r.err, "ember: drive id \"a/b\": use 1 to 64 of [A-Za-z0-9_]\n", "stderr");
    spawn_free(&r);

    run(&r,
        (char *[]){EMBER_BIN, "run", "--drive", "/tmp/x.img,fast", EXAMPLES_DIR "/hello", NULL});
    cr_expect_eq(r.status, 153);
    expect(r.err, "ember: --drive: unknown option \"fast\"\n", "stderr");
    spawn_free(&r);
}

/* Guests without the SDK learn of devices from their command line. */
Test(virtio, pvh_guest_finds_devices_on_its_command_line)
{
    struct spawn_result r;
    char drive[160];

    need_kvm();
    snprintf(drive, sizeof(drive), "%s", make_disk("pvh", 1 << 20));
    run(&r, (char *[]){EMBER_BIN, "run", "--drive", drive, "--drive", drive, GUEST_DIR "/pvh_raw",
                       "console=ttyS0", NULL});
    cr_expect_eq(r.status, 42, "err: %s", r.err);
    cr_expect_str_eq(r.out, "pvh: magic ok, cmdline: console=ttyS0 "
                            "virtio_mmio.device=4K@0xc0001000:5 "
                            "virtio_mmio.device=4K@0xc0002000:6\n");
    spawn_free(&r);
    unlink(drive);
}

/* ---- virtio-blk from inside a guest (tests/guests/blk_data.c) -------------- */

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define MIB (1u << 20)

/* The guest's pattern: word(seed, offset) per 8-byte word, little-endian. */
static uint64_t blk_word(uint64_t seed, uint64_t off)
{
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + off;

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static char *blk_disk(const char *name, size_t bytes)
{
    return strdup(make_disk(name, bytes));
}

/* Offset of the first byte of path that is not the pattern, or -1. */
static long long blk_pattern_mismatch(const char *path, uint64_t seed, uint64_t size)
{
    FILE *f = fopen(path, "rb");
    uint64_t w;

    cr_assert(f, "%s: %s", path, strerror(errno));
    for (uint64_t off = 0; off < size; off += 8) {
        if (fread(&w, 8, 1, f) != 1 || w != blk_word(seed, off)) {
            fclose(f);
            return (long long)off;
        }
    }
    fclose(f);
    return -1;
}

static void blk_run(struct spawn_result *r, const char *drive_opts, const char *const *args)
{
    char *argv[16];
    int n = 0;

    argv[n++] = EMBER_BIN;
    argv[n++] = "run";
    argv[n++] = "--drive";
    argv[n++] = (char *)drive_opts;
    argv[n++] = GUEST_DIR "/blk_data";
    while (*args && n < 15)
        argv[n++] = (char *)*args++;
    argv[n] = NULL;
    run(r, argv);
}

static void blk_two_boots(const char *engine_opt)
{
    struct spawn_result r;
    char *disk = blk_disk("pattern", 8 * MIB), opts[256];
    const uint64_t seed = 0x5eed;

    need_kvm();
    snprintf(opts, sizeof(opts), "%s%s", disk, engine_opt);
    /* Boot 1: write the whole drive, read it back in the same boot. */
    blk_run(&r, opts, (const char *[]){"fill", "/dev/vda", "0x5eed", NULL});
    cr_expect_eq(r.status, 0, "fill: status %d\nout: %s\nerr: %s", r.status, r.out, r.err);
    expect(r.out, "blk_data: fill ok 8388608\n", "guest output");
    spawn_free(&r);
    /* The host file holds exactly what the guest wrote. */
    cr_expect_eq(blk_pattern_mismatch(disk, seed, 8 * MIB), -1, "host file differs at %lld",
                 blk_pattern_mismatch(disk, seed, 8 * MIB));
    /* Boot 2: a new VM reads it all back. */
    blk_run(&r, opts, (const char *[]){"verify", "/dev/vda", "0x5eed", NULL});
    cr_expect_eq(r.status, 0, "verify: status %d\nout: %s\nerr: %s", r.status, r.out, r.err);
    expect(r.out, "blk_data: verify ok 8388608\n", "guest output");
    spawn_free(&r);
    /* And a wrong seed is noticed (the check can fail). */
    blk_run(&r, opts, (const char *[]){"verify", "/dev/vda", "0x5eee", NULL});
    cr_expect_eq(r.status, 1, "verify with a wrong seed: status %d", r.status);
    expect(r.out, "blk_data: FAIL", "guest output");
    spawn_free(&r);
    unlink(disk);
    free(disk);
}

Test(virtio, blk_whole_drive_pattern_two_boots_sync)
{
    blk_two_boots("");
}

Test(virtio, blk_whole_drive_pattern_two_boots_async)
{
    blk_two_boots(",async");
}

Test(virtio, blk_several_drives_ids_and_contents)
{
    struct spawn_result r;
    char *d[3], opts[3][256];
    const char *ids[3] = {"alpha", "b_2", "gamma_long_drive_id_over_20"};
    const char fill[3] = {'1', '2', '3'};
    char buf[4096];

    need_kvm();
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "multi%d", i);
        d[i] = blk_disk(name, MIB);
        memset(buf, fill[i], sizeof(buf));
        FILE *f = fopen(d[i], "r+b");
        cr_assert(f);
        for (int k = 0; k < 256; k++)
            fwrite(buf, 1, sizeof(buf), f);
        fclose(f);
        snprintf(opts[i], sizeof(opts[i]), "%s,id=%s%s", d[i], ids[i], i == 2 ? ",ro" : "");
    }
    run(&r, (char *[]){EMBER_BIN, "run", "--drive", opts[0], "--drive", opts[1], "--drive", opts[2],
                       GUEST_DIR "/blk_data", "multi", NULL});
    cr_expect_eq(r.status, 0, "status %d\nout: %s\nerr: %s", r.status, r.out, r.err);
    expect(r.out, "blk_data: drive 0 id=alpha size=1048576 head=1111111111111111\n", "output");
    expect(r.out, "blk_data: drive 1 id=b_2 size=1048576 head=2222222222222222\n", "output");
    /* GET_ID carries 20 bytes (virtio 1.2 §5.2.6). */
    expect(r.out, "blk_data: drive 2 id=gamma_long_drive_id_ size=1048576 head=3333333333333333\n",
           "output");
    expect(r.out, "blk_data: multi ok 3\n", "output");
    spawn_free(&r);
    /* Each writable drive got its own marker, the read-only one nothing. */
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(d[i], "rb");
        char want[64];
        cr_assert(f);
        cr_assert_eq(fseek(f, 4096, SEEK_SET), 0);
        cr_assert_eq(fread(buf, 1, 512, f), 512u);
        fclose(f);
        if (i < 2) {
            snprintf(want, sizeof(want), "guest:%s", ids[i]);
            cr_expect_str_eq(buf, want, "drive %d", i);
        } else {
            cr_expect_eq(buf[0], '3', "the read-only drive was written");
        }
        unlink(d[i]);
        free(d[i]);
    }
}

Test(virtio, blk_flush_writeback_and_unsafe)
{
    struct spawn_result r;
    char *disk = blk_disk("flush", MIB), opts[256];

    need_kvm();
    /* Writeback: FLUSH offered, fsync sends it and succeeds. */
    snprintf(opts, sizeof(opts), "%s,writeback", disk);
    blk_run(&r, opts, (const char *[]){"flush", NULL});
    cr_expect_eq(r.status, 0, "status %d\nout: %s\nerr: %s", r.status, r.out, r.err);
    expect(r.out, "blk_data: flush offered=1 fsync=0 fdatasync=0 blkflsbuf=0\n", "output");
    expect(r.out, "blk_data: raw flush=0\n", "output");
    spawn_free(&r);
    /* Unsafe (the default): FLUSH is not offered (as Firecracker), fsync
     * still succeeds (nothing the guest could flush), and a FLUSH forced
     * onto the queue is answered UNSUPP. */
    blk_run(&r, disk, (const char *[]){"flush", NULL});
    cr_expect_eq(r.status, 0, "status %d\nout: %s\nerr: %s", r.status, r.out, r.err);
    expect(r.out, "blk_data: flush offered=0 fsync=0 fdatasync=0 blkflsbuf=0\n", "output");
    expect(r.out, "blk_data: raw flush=-95\n", "output");
    spawn_free(&r);
    /* What fsync wrote reached the host file. */
    char buf[4096];
    FILE *f = fopen(disk, "rb");
    cr_assert(f);
    cr_assert_eq(fread(buf, 1, sizeof(buf), f), sizeof(buf));
    fclose(f);
    cr_expect(buf[0] == 'F' && buf[4095] == 'F');
    unlink(disk);
    free(disk);
}

Test(virtio, blk_read_only_is_enforced)
{
    struct spawn_result r;
    char *disk = blk_disk("ro", MIB), opts[256], before[4096], after[4096];
    FILE *f;

    need_kvm();
    memset(before, 'R', sizeof(before));
    f = fopen(disk, "r+b");
    cr_assert(f);
    fwrite(before, 1, sizeof(before), f);
    fclose(f);
    snprintf(opts, sizeof(opts), "%s,ro", disk);
    blk_run(&r, opts, (const char *[]){"ro", NULL});
    cr_expect_eq(r.status, 0, "status %d\nout: %s\nerr: %s", r.status, r.out, r.err);
    expect(r.out, "blk_data: forced write=-5\n", "output"); /* IOERR from the device */
    expect(r.out, "blk_data: ro ok\n", "output");
    spawn_free(&r);
    f = fopen(disk, "rb");
    cr_assert(f);
    cr_assert_eq(fread(after, 1, sizeof(after), f), sizeof(after));
    fclose(f);
    cr_expect_eq(memcmp(before, after, sizeof(before)), 0, "the read-only drive changed");
    unlink(disk);
    free(disk);
}

static void blk_discard(bool seccomp)
{
    struct spawn_result r;
    char *disk = blk_disk(seccomp ? "discard-sc" : "discard", 8 * MIB);
    char *with[] = {EMBER_BIN, "run", "--drive", disk, GUEST_DIR "/blk_data", "discard", NULL};
    char *without[] = {EMBER_BIN, "run", "--no-seccomp", "--drive", disk, GUEST_DIR "/blk_data",
                       "discard", NULL};
    char **argv = seccomp ? with : without;

    need_kvm();
    run(&r, argv);
    if (seccomp && r.status == 148) {
        unlink(disk);
        cr_assert_fail("DISCARD/WRITE_ZEROES under the default seccomp filter killed ember: the "
                       "main thread's filter lacks fallocate (monitor/seccomp_gen.c)\nerr: %s",
                       r.err);
    }
    cr_expect_eq(r.status, 0, "status %d\nout: %s\nerr: %s", r.status, r.out, r.err);
    expect(r.out, "blk_data: discard ok\n", "guest output");
    spawn_free(&r);

    /* The discarded and the unmapped write-zeroes ranges are holes in the
     * host file; the pattern around them is data. */
    int fd = open(disk, O_RDONLY);
    cr_assert(fd >= 0);
    cr_expect_eq(lseek(fd, 0, SEEK_DATA), 0);
    cr_expect_eq(lseek(fd, 0, SEEK_HOLE), (off_t)MIB, "no hole at 1 MiB (DISCARD)");
    cr_expect_eq(lseek(fd, MIB, SEEK_DATA), (off_t)(2 * MIB), "data inside the discarded MiB");
    cr_expect_eq(lseek(fd, 2 * MIB, SEEK_HOLE), (off_t)(2 * MIB + 512 * 1024),
                 "no hole at 2.5 MiB (WRITE_ZEROES, unmap)");
    cr_expect_eq(lseek(fd, 2 * MIB + 512 * 1024, SEEK_DATA), (off_t)(3 * MIB));
    close(fd);
    unlink(disk);
    free(disk);
}

Test(virtio, blk_discard_punches_holes)
{
    blk_discard(false);
}

Test(virtio, blk_discard_under_default_seccomp)
{
    blk_discard(true);
}

Test(virtio, blk_out_of_range_fails_cleanly)
{
    struct spawn_result r;
    char *disk = blk_disk("range", MIB);
    struct stat st;

    need_kvm();
    blk_run(&r, disk, (const char *[]){"range", NULL});
    cr_expect_eq(r.status, 0, "status %d\nout: %s\nerr: %s", r.status, r.out, r.err);
    expect(r.out, "blk_data: read at capacity=-5\n", "output"); /* IOERR */
    expect(r.out, "blk_data: unknown type=-95\n", "output");    /* UNSUPP */
    expect(r.out, "blk_data: poll timeout ok\n", "output");     /* hlt + TSC deadline */
    expect(r.out, "blk_data: range ok\n", "output");            /* and it went on */
    cr_expect(strstr(r.err, "needs reset") == NULL, "a bad request broke the queue: %s", r.err);
    spawn_free(&r);
    cr_assert_eq(stat(disk, &st), 0);
    cr_expect_eq(st.st_size, (off_t)MIB, "the host file grew or shrank");
    unlink(disk);
    free(disk);
}

/* Boots the "ack" guest, which rewrites 4 KiB blocks with their number and
 * prints "acked n" after each completed write, kills ember with SIGKILL once
 * `want` acks were read, and checks that every acknowledged block is in the
 * host file. */
static void blk_killed_mid_io(const char *engine_opt)
{
    char *disk = blk_disk("ack", 4 * MIB), opts[256];
    int out[2];
    static bool acked[1024];

    need_kvm();
    snprintf(opts, sizeof(opts), "%s%s", disk, engine_opt);
    cr_assert_eq(pipe(out), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl(EMBER_BIN, EMBER_BIN, "run", "--drive", opts, GUEST_DIR "/blk_data", "ack",
              (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[128];
    unsigned n, count = 0;
    memset(acked, 0, sizeof(acked));
    alarm(60); /* a hung guest ends the test, not the suite */
    while (count < 1500 && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "acked %u", &n) == 1 && n < 1024) {
            acked[n] = true;
            count++;
        }
    }
    kill(pid, SIGKILL); /* mid-I/O: the guest writes without pause */
    alarm(0);
    int status;
    waitpid(pid, &status, 0);
    fclose(f);
    cr_assert_eq(count, 1500u, "only %u acks before the guest stopped", count);
    cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    int fd = open(disk, O_RDONLY);
    uint64_t blk[512];
    unsigned bad = 0, checked = 0;
    cr_assert(fd >= 0);
    for (n = 0; n < 1024; n++) {
        if (!acked[n])
            continue;
        checked++;
        cr_assert_eq(pread(fd, blk, sizeof(blk), (off_t)n * 4096), (ssize_t)sizeof(blk));
        for (unsigned i = 0; i < 512; i++)
            if (blk[i] != blk_word(n, i)) {
                bad++;
                break;
            }
    }
    close(fd);
    cr_expect_eq(bad, 0u, "%u of %u acknowledged blocks are not in the host file", bad, checked);
    cr_expect_gt(checked, 400u);
    unlink(disk);
    free(disk);
}

Test(virtio, blk_killed_mid_io_keeps_acknowledged_writes_sync)
{
    blk_killed_mid_io("");
}

Test(virtio, blk_killed_mid_io_keeps_acknowledged_writes_async)
{
    blk_killed_mid_io(",async");
}

/* Every wait through hlt and the device's interrupt (irqfd -> IOAPIC ->
 * LAPIC), no spinning: the data must be the same, and the guest fails
 * ("hlt:" mode) unless it really slept and took interrupts. */
static void blk_interrupt_path(const char *engine_opt)
{
    struct spawn_result r;
    char *disk = blk_disk("irq", 4 * MIB), opts[256];

    need_kvm();
    snprintf(opts, sizeof(opts), "%s%s", disk, engine_opt);
    blk_run(&r, opts, (const char *[]){"hlt:fill", "/dev/vda", "77", NULL});
    cr_expect_eq(r.status, 0, "status %d\nout: %s\nerr: %s", r.status, r.out, r.err);
    expect(r.out, "blk_data: fill ok 4194304\n", "guest output");
    expect(r.out, "blk_data: hlt waits=", "guest output");
    spawn_free(&r);
    cr_expect_eq(blk_pattern_mismatch(disk, 77, 4 * MIB), -1, "host file differs");
    unlink(disk);
    free(disk);
}

Test(virtio, blk_interrupt_path_sync)
{
    blk_interrupt_path("");
}

Test(virtio, blk_interrupt_path_async)
{
    blk_interrupt_path(",async");
}
