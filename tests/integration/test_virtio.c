/* test_virtio.c: virtio devices with real guests: a hostile guest that breaks
 * the queue rules, and the block device's data path. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

#define CAP_S 120

static void need_kvm(void)
{
    const char *why = spawn_kvm_unusable();

    if (why) {
        fprintf(stderr, "SKIPPED: integration test needs KVM: %s\n", why);
        cr_skip_test("needs KVM: %s", why);
    }
}

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
