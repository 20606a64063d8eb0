/* test_snapshot.c: snapshots of real guests and VMs restored from them
 * (monitor/snapshot.h), through `ember run --snapshot-on-ready DIR` and
 * `ember run --restore DIR`.
 *
 * Guest: tests/guests/snap_test (a computation with ember_faas_ready()
 * halfway; a function answering rand/time/gen/blk). Every refusal is
 * checked with its exact message and with the guest never having run (no
 * guest output). No timing assertions: waits have generous caps.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd/invoke.h"
#include "monitor/snapshot_state.h"
#include "tests/integration/proc.h"

#define CAP_S   120
#define TIMEOUT 30000 /* ms per invocation, far above a normal one */
#define GUEST   GUEST_DIR "/snap_test"
#define NVMS    100

extern char **environ;

static char dir[64]; /* the suite's scratch directory */

static void need_kvm(void)
{
    const char *why = spawn_kvm_unusable();

    if (why) {
        fprintf(stderr, "SKIPPED: integration test needs KVM: %s\n", why);
        cr_skip_test("needs KVM: %s", why);
    }
}

static pid_t started[NVMS + 4];
static int nstarted;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ember-snap-%d", getpid());
    mkdir(dir, 0700);
}

static void teardown(void)
{
    char cmd[256];

    for (int i = 0; i < nstarted; i++)
        if (kill(started[i], SIGKILL) == 0)
            waitpid(started[i], NULL, 0);
    nstarted = 0;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(snapshot, .init = setup, .fini = teardown);

static void run(char *const argv[], struct spawn_result *r)
{
    cr_assert_eq(spawn_run(argv, CAP_S, r), 0);
    cr_assert(!r->timed_out, "%s timed out", argv[1]);
}

/* A snapshot of `snap_test ARGS` at ember_faas_ready() in dir/NAME. */
static void make_snapshot(const char *name, const char *vsock, const char *drive, const char *mode,
                          const char *arg)
{
    char snap[256];
    char *argv[16] = {EMBER_BIN, "run", "--mem", "16", "--snapshot-on-ready", snap};
    int n = 6;
    struct spawn_result r;

    snprintf(snap, sizeof(snap), "%s/%s", dir, name);
    cr_assert_eq(mkdir(snap, 0700), 0);
    if (vsock) {
        argv[n++] = "--vsock";
        argv[n++] = (char *)vsock;
    }
    if (drive) {
        argv[n++] = "--drive";
        argv[n++] = (char *)drive;
    }
    argv[n++] = GUEST;
    argv[n++] = (char *)mode;
    if (arg)
        argv[n++] = (char *)arg;
    argv[n] = NULL;
    run(argv, &r);
    cr_assert_eq(r.status, 0, "snapshot run: status %d\n%s%s", r.status, r.out, r.err);
    cr_assert(strstr(r.err, "ember: snapshot of the ready guest in "), "%s", r.err);
    spawn_free(&r);
    if (vsock)
        unlink(vsock);
}

Test(snapshot, mid_computation_restores_to_the_same_result)
{
    struct spawn_result whole, r;
    char snap[256];

    need_kvm();
    run((char *[]){EMBER_BIN, "run", "--mem", "16", GUEST, "compute", "3000000", NULL}, &whole);
    cr_assert_eq(whole.status, 0);
    const char *res = strstr(whole.out, "snap-test: result ");
    cr_assert(res, "%s", whole.out);
    cr_assert(strstr(whole.out, "halfway, generation 0"), "%s", whole.out);

    make_snapshot("compute", NULL, NULL, "compute", "3000000");
    snprintf(snap, sizeof(snap), "%s/compute", dir);
    for (int i = 0; i < 2; i++) { /* a snapshot restores any number of times */
        run((char *[]){EMBER_BIN, "run", "--restore", snap, NULL}, &r);
        cr_assert_eq(r.status, 0, "restore: %d\n%s%s", r.status, r.out, r.err);
        cr_assert(strstr(r.out, "halfway, generation 1"), "%s", r.out);
        cr_assert(strstr(r.out, res), "restored: %s\nwhole: %s", r.out, whole.out);
        spawn_free(&r);
    }
    spawn_free(&whole);
}

/* ---- refusals ---- */

static void copy_file(const char *from, const char *to)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "cp --sparse=always %s %s", from, to);
    cr_assert_eq(system(cmd), 0);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(1 << 20);

    cr_assert(f && buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static uint8_t *slurp_big(const char *path, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY);

    cr_assert(fd >= 0 && fstat(fd, &st) == 0, "%s", path);
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    cr_assert(buf);
    cr_assert_eq(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return buf;
}

static void spit(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");

    cr_assert(f);
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* A copy of the compute snapshot in dir/NAME, for breaking. */
static void bad_copy(const char *name, char *state, char *mem, size_t len)
{
    char src[256], d[200];

    snprintf(src, sizeof(src), "%s/compute", dir);
    if (access(src, F_OK) != 0)
        make_snapshot("compute", NULL, NULL, "compute", "3000000");
    snprintf(d, sizeof(d), "%s/%s", dir, name);
    cr_assert_eq(mkdir(d, 0700), 0);
    snprintf(state, len, "%s/state", d);
    snprintf(mem, len, "%s/mem", d);
    snprintf(src, sizeof(src), "%s/compute/state", dir);
    copy_file(src, state);
    snprintf(src, sizeof(src), "%s/compute/mem", dir);
    copy_file(src, mem);
}

static void refused(const char *name, const char *want)
{
    char snap[256], expect[600];
    struct spawn_result r;

    snprintf(snap, sizeof(snap), "%s/%s", dir, name);
    run((char *[]){EMBER_BIN, "run", "--restore", snap, NULL}, &r);
    snprintf(expect, sizeof(expect), "ember: snapshot \"%s/state\": %s\n", snap, want);
    cr_assert_eq(r.status, 152, "status %d\n%s", r.status, r.err);
    cr_assert_str_eq(r.err, expect);
    cr_assert_str_eq(r.out, "", "the guest ran: %s", r.out);
    spawn_free(&r);
}

Test(snapshot, refusals_say_which)
{
    char state[256], mem[256], want[512];
    size_t len;
    uint8_t *b;

    need_kvm();
    /* Truncated. */
    bad_copy("t1", state, mem, sizeof(state));
    b = slurp(state, &len);
    spit(state, b, len / 2);
    snprintf(want, sizeof(want), "truncated (%zu bytes)", len / 2);
    refused("t1", want);
    free(b);

    /* One byte of the body changed: the checksum catches it. */
    bad_copy("t2", state, mem, sizeof(state));
    b = slurp(state, &len);
    b[len / 2] ^= 0x20;
    spit(state, b, len);
    refused("t2", "checksum mismatch: the state was corrupted or tampered with");
    free(b);

    /* Another format version (the byte after the 15-byte magic). */
    bad_copy("t3", state, mem, sizeof(state));
    b = slurp(state, &len);
    cr_assert_eq(b[16], 1);
    b[16] = 7;
    spit(state, b, len);
    refused("t3", "format version 7, this ember reads version 1");
    free(b);

    /* Not a snapshot at all. */
    bad_copy("t4", state, mem, sizeof(state));
    spit(state, (const uint8_t *)"\x83\x01\x02\x03", 4);
    refused("t4", "not an ember snapshot state file");
    spit(state, (const uint8_t *)"\xff\xff", 2);
    refused("t4", "corrupted: not CBOR (at byte 1)");

    /* A memory file of another size. */
    bad_copy("t5", state, mem, sizeof(state));
    cr_assert_eq(truncate(mem, 8 << 20), 0);
    snprintf(want, sizeof(want),
             "memory file %s is 8388608 bytes, the snapshot's guest has 16777216", mem);
    refused("t5", want);

    /* A memory file that differs: one byte, no record of it yet... */
    bad_copy("t6", state, mem, sizeof(state));
    int fd = open(mem, O_RDWR);
    cr_assert(fd >= 0);
    cr_assert_eq(pwrite(fd, "X", 1, 1 << 20), 1);
    close(fd);
    refused("t6", "memory file does not match the snapshot (SHA-256 differs)");
    /* ...and one changed after a restore recorded it as verified. */
    bad_copy("t7", state, mem, sizeof(state));
    char snap[256];
    struct spawn_result r;
    snprintf(snap, sizeof(snap), "%s/t7", dir);
    run((char *[]){EMBER_BIN, "run", "--restore", snap, NULL}, &r);
    cr_assert_eq(r.status, 0, "%s", r.err);
    spawn_free(&r);
    char rec[300];
    snprintf(rec, sizeof(rec), "%s.verified", mem);
    cr_assert_eq(access(rec, F_OK), 0, "no verification record");
    fd = open(mem, O_RDWR);
    cr_assert_eq(pwrite(fd, "Y", 1, 2 << 20), 1);
    close(fd);
    refused("t7", "memory file does not match the snapshot (SHA-256 differs)");
}

/* ---- restored functions ---- */

struct fn {
    pid_t pid;
    char uds[108];
};

static void fn_restore(struct fn *f, const char *snap, int i)
{
    posix_spawn_file_actions_t fa;
    char *argv[] = {EMBER_BIN, "run", "--restore", (char *)snap, "--vsock", f->uds, NULL};

    snprintf(f->uds, sizeof(f->uds), "%s/fn%d.sock", dir, i);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    cr_assert_eq(posix_spawn(&f->pid, EMBER_BIN, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    started[nstarted++] = f->pid;
}

static char *call(struct fn *f, const char *req)
{
    char err[256];
    void *resp = NULL;
    size_t resp_len = 0, cap = 0;
    int fd = ember_invoke_connect_wait(f->uds, EMBER_FAAS_PORT, TIMEOUT, err, sizeof(err));

    cr_assert(fd >= 0, "connect %s: %s", f->uds, err);
    int rc =
        ember_invoke(fd, req, strlen(req), &resp, &resp_len, &cap, 0, TIMEOUT, err, sizeof(err));
    cr_assert_eq(rc, EMBER_INVOKE_OK, "%s: %s %s", req, ember_invoke_strerror(rc), err);
    close(fd);
    char *s = calloc(1, resp_len + 1);
    memcpy(s, resp, resp_len);
    free(resp);
    return s;
}

Test(snapshot, many_restores_serve_with_their_own_random_bytes_and_clock)
{
    static struct fn fns[NVMS];
    static char rands[NVMS][65];
    char snap[256], uds[256];

    need_kvm();
    snprintf(uds, sizeof(uds), "%s/orig.sock", dir);
    make_snapshot("fn", uds, NULL, "serve", NULL);
    snprintf(snap, sizeof(snap), "%s/fn", dir);
    /* Let the snapshot age, so a stale clock would show. */
    sleep(2);
    for (int i = 0; i < NVMS; i++)
        fn_restore(&fns[i], snap, i);
    for (int i = 0; i < NVMS; i++) {
        char *r = call(&fns[i], "rand");
        cr_assert_eq(strlen(r), 64, "%s", r);
        memcpy(rands[i], r, 65);
        free(r);
        r = call(&fns[i], "gen");
        cr_assert_str_eq(r, "1");
        free(r);
        r = call(&fns[i], "time");
        long long t = atoll(r), now = (long long)time(NULL);
        cr_assert(t >= now - 1 && t <= now + 1, "guest clock %lld, host %lld", t, now);
        free(r);
    }
    for (int i = 0; i < NVMS; i++)
        for (int j = i + 1; j < NVMS; j++)
            cr_assert_str_neq(rands[i], rands[j], "VMs %d and %d drew the same bytes", i, j);
}

/* A zero-filled 1 MiB drive at path. */
static void blank_disk(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

    cr_assert(fd >= 0 && ftruncate(fd, 1 << 20) == 0, "%s: %s", path, strerror(errno));
    close(fd);
}

/* The 4-byte counter the test guest's "blk" writes at 4096 of its drive. */
static unsigned drive_counter(const char *path)
{
    unsigned v = 0;
    int fd = open(path, O_RDONLY);

    cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(pread(fd, &v, sizeof(v), 4096), (ssize_t)sizeof(v));
    close(fd);
    return v;
}

Test(snapshot, blk_keeps_working_after_restore)
{
    struct fn f;
    char snap[256], uds[256], disk[256], spec[300];

    need_kvm();
    snprintf(disk, sizeof(disk), "%s/disk.img", dir);
    blank_disk(disk);
    snprintf(spec, sizeof(spec), "%s", disk);
    snprintf(uds, sizeof(uds), "%s/orig.sock", dir);
    make_snapshot("blk", uds, spec, "serve", "blk");
    snprintf(snap, sizeof(snap), "%s/blk", dir);
    fn_restore(&f, snap, 0);
    char *r = call(&f, "blk");
    cr_assert_str_eq(r, "blk 1");
    free(r);
    r = call(&f, "blk");
    cr_assert_str_eq(r, "blk 2");
    free(r);
    unsigned v = drive_counter(disk);
    cr_assert_eq(v, 2u, "the drive holds %u", v);
}

/* ---- the API (Firecracker's snapshot endpoints), with curl ---- */

struct api {
    pid_t pid;
    char sock[108];
};

/* `ember --api-sock`, with --prebuild-mem MIB if prebuild, its log (on
 * stderr) to log or nowhere. */
static void api_start_with(struct api *a, const char *name, const char *prebuild, const char *log)
{
    posix_spawn_file_actions_t fa;
    char *argv[] = {EMBER_BIN,        "--api-sock", a->sock, prebuild ? "--prebuild-mem" : NULL,
                    (char *)prebuild, NULL};

    snprintf(a->sock, sizeof(a->sock), "%s/%s.api", dir, name);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, log ? log : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    cr_assert_eq(posix_spawn(&a->pid, EMBER_BIN, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    started[nstarted++] = a->pid;
    for (int i = 0; i < 1000 && access(a->sock, F_OK) != 0; i++)
        usleep(5000);
}

static void api_start(struct api *a, const char *name)
{
    api_start_with(a, name, NULL, NULL);
}

/* One request; returns the HTTP status, the body in *out (caller frees). */
static int api(struct api *a, const char *method, const char *path, const char *body, char **out)
{
    char url[256];
    struct spawn_result r;

    snprintf(url, sizeof(url), "http://localhost%s", path);
    char *argv[] = {
        "/usr/bin/curl", "-s", "--unix-socket",  a->sock, "-X", (char *)method, url, "-d",
        (char *)body,    "-w", "\n%{http_code}", NULL};
    run(argv, &r);
    char *nl = strrchr(r.out, '\n');
    cr_assert(nl, "curl: %s %s", r.out, r.err);
    int code = atoi(nl + 1);
    *nl = '\0';
    if (out)
        *out = strdup(r.out);
    spawn_free(&r);
    return code;
}

static void api_ok(struct api *a, const char *method, const char *path, const char *body)
{
    char *out;
    int code = api(a, method, path, body, &out);

    cr_assert_eq(code, 204, "%s %s %s: %d %s", method, path, body, code, out);
    free(out);
}

static void api_fault(struct api *a, const char *method, const char *path, const char *body,
                      const char *msg)
{
    char *out, want[600];
    int code = api(a, method, path, body, &out);

    snprintf(want, sizeof(want), "{\"fault_message\":\"%s\"}", msg);
    cr_assert_eq(code, 400, "%s %s: %d %s", method, path, code, out);
    cr_assert_str_eq(out, want);
    free(out);
}

/* The memory file of base with every data extent of diff written over it. */
static bool diff_on_base_is(const char *base, const char *diff, const char *full)
{
    size_t n;
    uint8_t *b = slurp_big(base, &n), *f;
    size_t fn;
    int fd = open(diff, O_RDONLY);
    off_t off = 0, end = lseek(fd, 0, SEEK_END);

    while (off < end) {
        off_t d = lseek(fd, off, SEEK_DATA);
        if (d < 0)
            break;
        off_t h = lseek(fd, d, SEEK_HOLE);
        cr_assert_eq(pread(fd, b + d, (size_t)(h - d), d), h - d);
        off = h;
    }
    close(fd);
    f = slurp_big(full, &fn);
    bool same = n == fn && memcmp(b, f, n) == 0;
    free(b);
    free(f);
    return same;
}

Test(snapshot, api_full_diff_load_and_rules)
{
    struct api a, b;
    struct fn f = {0};
    char body[1024], s[3][160], m[3][160], v1[100], v2[100];

    need_kvm();
    for (int i = 0; i < 3; i++) {
        snprintf(s[i], sizeof(s[i]), "%s/api-state%d", dir, i);
        snprintf(m[i], sizeof(m[i]), "%s/api-mem%d", dir, i);
    }
    snprintf(v1, sizeof(v1), "%s/api-v1.sock", dir);
    snprintf(v2, sizeof(v2), "%s/api-v2.sock", dir);
    api_start(&a, "a");
    api_ok(&a, "PUT", "/machine-config",
           "{\"vcpu_count\": 1, \"mem_size_mib\": 16, \"track_dirty_pages\": true}");
    snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\", \"boot_args\": \"serve\"}",
             GUEST);
    api_ok(&a, "PUT", "/boot-source", body);
    snprintf(body, sizeof(body), "{\"guest_cid\": 3, \"uds_path\": \"%s\"}", v1);
    api_ok(&a, "PUT", "/vsock", body);
    snprintf(body, sizeof(body), "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}", s[0],
             m[0]);
    api_fault(&a, "PUT", "/snapshot/create", body,
              "The requested operation is not supported before starting the microVM.");
    api_ok(&a, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
    snprintf(f.uds, sizeof(f.uds), "%s", v1);
    free(call(&f, "warm up"));
    api_fault(&a, "PUT", "/snapshot/create", body,
              "Create snapshot error: the microVM must be paused first (PATCH /vm "
              "{\\\"state\\\": \\\"Paused\\\"})");
    api_ok(&a, "PATCH", "/vm", "{\"state\": \"Paused\"}");
    api_ok(&a, "PUT", "/snapshot/create", body); /* Full, at A */
    api_ok(&a, "PATCH", "/vm", "{\"state\": \"Resumed\"}");
    for (int i = 0; i < 20; i++)
        free(call(&f, "rand"));
    api_ok(&a, "PATCH", "/vm", "{\"state\": \"Paused\"}");
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", \"snapshot_type\": \"Diff\"}",
             s[1], m[1]);
    api_ok(&a, "PUT", "/snapshot/create", body); /* Diff, A to B */
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", \"snapshot_type\": \"Full\"}",
             s[2], m[2]);
    api_ok(&a, "PUT", "/snapshot/create", body); /* Full, at B */
    cr_assert(diff_on_base_is(m[0], m[1], m[2]), "Diff on top of Full A differs from Full B");

    /* A second ember restores B, on a vsock of its own. */
    api_start(&b, "b");
    /* The Uffd backend with no page-fault handler listening: refused, and
     * the process takes a File load after it. */
    char nohandler[160], want[700];
    snprintf(nohandler, sizeof(nohandler), "%s/no-handler.sock", dir);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"Uffd\", "
             "\"backend_path\": \"%s\"}}",
             s[2], nohandler);
    snprintf(want, sizeof(want),
             "Load snapshot error: snapshot \\\"%s\\\": the page-fault handler at %s: No such "
             "file or directory",
             s[2], nohandler);
    api_fault(&b, "PUT", "/snapshot/load", body, want);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
             "\"backend_path\": \"%s\"}, \"vsock_override\": {\"uds_path\": \"%s\"}, "
             "\"resume_vm\": true}",
             s[2], m[2], v2);
    api_ok(&b, "PUT", "/snapshot/load", body);
    api_fault(&b, "PUT", "/snapshot/load", body,
              "The requested operation is not supported after starting the microVM.");
    snprintf(f.uds, sizeof(f.uds), "%s", v2);
    char *r = call(&f, "echo after restore");
    cr_assert_str_eq(r, "echo after restore");
    free(r);

    /* Configuring the machine first rules a load out (Firecracker's rule). */
    struct api c;
    api_start(&c, "c");
    api_ok(&c, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 16}");
    snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\"}", GUEST);
    api_ok(&c, "PUT", "/boot-source", body);
    snprintf(body, sizeof(body), "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}", s[2],
             m[2]);
    api_fault(&c, "PUT", "/snapshot/load", body,
              "Loading a microVM snapshot not allowed after configuring boot-specific resources.");
}

/* Whether the file at path holds needle (up to 64 KiB read). */
static bool file_has(const char *path, const char *needle)
{
    size_t n;
    uint8_t *buf = slurp(path, &n);
    bool found;

    cr_assert(buf, "%s: %s", path, strerror(errno));
    buf = realloc(buf, n + 1);
    buf[n] = '\0';
    found = strstr((char *)buf, needle) != NULL;
    free(buf);
    return found;
}

/* The threads of process pid, and in *filtered how many of them run under a
 * seccomp filter (/proc/PID/task/TID/status, "Seccomp:\t2"). Not counted:
 * the kernel's workers in the process ("kvm-nx-lpage-recovery", Linux 6.13
 * and later, made at a VM's first KVM_RUN). */
static int threads(pid_t pid, int *filtered)
{
    char path[64];
    int n = 0;

    *filtered = 0;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    cr_assert(d, "%s: %s", path, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        char st[300];
        if (e->d_name[0] == '.')
            continue;
        snprintf(st, sizeof(st), "/proc/%d/task/%s/status", (int)pid, e->d_name);
        FILE *f = fopen(st, "r");
        char line[256];
        if (f && fgets(line, sizeof(line), f) && strncmp(line, "Name:\tkvm-", 9) == 0) {
            fclose(f);
            continue;
        }
        n++;
        while (f && fgets(line, sizeof(line), f))
            if (strcmp(line, "Seccomp:\t2\n") == 0)
                (*filtered)++;
        if (f)
            fclose(f);
    }
    closedir(d);
    return n;
}

/* Waits (up to 5 s: a thread that releases a KVM VM takes ~14 ms) until pid
 * has want threads, want_filtered of them filtered (none in a sanitizer
 * build: ember installs no filter there, monitor/seccomp_filter.c). */
static void threads_are(pid_t pid, int want, int want_filtered)
{
    int n = 0, filtered = 0;

#ifdef EMBER_SANITIZE_BUILD
    want_filtered = 0;
#endif

    for (int i = 0; i < 500; i++) {
        n = threads(pid, &filtered);
        if (n == want && filtered == want_filtered)
            return;
        usleep(10000);
    }
    cr_assert_fail("pid %d: %d threads, %d filtered; expected %d, %d filtered", (int)pid, n,
                   filtered, want, want_filtered);
}

/* `ember --api-sock` builds its KVM VM ahead (monitor/vm_shell.h): a load or
 * a boot of the size it was built for takes it over, another size gets a VM
 * of its own; both serve. The vCPU thread that built it (monitor/vm_ahead.h)
 * runs the VM that takes it over, with its filter; a VM of its own gets a
 * thread of its own, and the other ends: two threads, both filtered. */
Test(snapshot, api_vm_built_ahead_is_taken_over_when_it_fits)
{
    static const char took[] = "The microVM took over the KVM VM built ahead (16 MiB).";
    static const char other[] = "did not fit the microVM, which got one of its own.";
    static const char parked[] = "by the vCPU thread built ahead";
    struct api a, b, c;
    struct fn f = {0};
    char body[1024], uds[160], snap[160], log[3][160], v[3][100];

    need_kvm();
    snprintf(uds, sizeof(uds), "%s/ahead-orig.sock", dir);
    make_snapshot("ahead", uds, NULL, "serve", NULL);
    snprintf(snap, sizeof(snap), "%s/ahead", dir);
    for (int i = 0; i < 3; i++) {
        snprintf(log[i], sizeof(log[i]), "%s/ahead%d.log", dir, i);
        snprintf(v[i], sizeof(v[i]), "%s/ahead-v%d.sock", dir, i);
    }

    /* Load into a VM built for 16 MiB, the snapshot's size. */
    api_start_with(&a, "ahead-a", "16", log[0]);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s/state\", \"mem_backend\": {\"backend_type\": \"File\", "
             "\"backend_path\": \"%s/mem\"}, \"vsock_override\": {\"uds_path\": \"%s\"}, "
             "\"resume_vm\": true}",
             snap, snap, v[0]);
    api_ok(&a, "PUT", "/snapshot/load", body);
    snprintf(f.uds, sizeof(f.uds), "%s", v[0]);
    char *r = call(&f, "gen");
    cr_assert_str_eq(r, "1");
    free(r);
    r = call(&f, "echo from the VM built ahead");
    cr_assert_str_eq(r, "echo from the VM built ahead");
    free(r);
    cr_assert(file_has(log[0], took), "no \"%s\" in the log", took);
    cr_assert(file_has(log[0], "(CPUID kept)"), "the shell's CPUID was set again");
    cr_assert(file_has(log[0], parked), "no \"%s\" in the log", parked);
    threads_are(a.pid, 2, 2);

    /* Built for 32 MiB: the 16 MiB snapshot gets a VM of its own. */
    api_start_with(&b, "ahead-b", "32", log[1]);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s/state\", \"mem_backend\": {\"backend_type\": \"File\", "
             "\"backend_path\": \"%s/mem\"}, \"vsock_override\": {\"uds_path\": \"%s\"}, "
             "\"resume_vm\": true}",
             snap, snap, v[1]);
    api_ok(&b, "PUT", "/snapshot/load", body);
    snprintf(f.uds, sizeof(f.uds), "%s", v[1]);
    r = call(&f, "echo from a VM of its own");
    cr_assert_str_eq(r, "echo from a VM of its own");
    free(r);
    cr_assert(file_has(log[1], other), "no \"%s\" in the log", other);
    cr_assert(!file_has(log[1], took));
    cr_assert(!file_has(log[1], parked));
    threads_are(b.pid, 2, 2);

    /* A boot of the size built for takes it over too. */
    api_start_with(&c, "ahead-c", "16", log[2]);
    api_ok(&c, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 16}");
    snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\", \"boot_args\": \"serve\"}",
             GUEST);
    api_ok(&c, "PUT", "/boot-source", body);
    snprintf(body, sizeof(body), "{\"guest_cid\": 3, \"uds_path\": \"%s\"}", v[2]);
    api_ok(&c, "PUT", "/vsock", body);
    api_ok(&c, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
    snprintf(f.uds, sizeof(f.uds), "%s", v[2]);
    r = call(&f, "echo from a booted VM built ahead");
    cr_assert_str_eq(r, "echo from a booted VM built ahead");
    free(r);
    cr_assert(file_has(log[2], took), "no \"%s\" in the log", took);
    cr_assert(file_has(log[2], parked), "no \"%s\" in the log", parked);
    threads_are(c.pid, 2, 2);
}

/* A load that fails leaves no thread behind, the one built ahead included:
 * before the VM took the shell over (no state file) and after (the vsock
 * socket cannot be bound: devices come after the KVM VM). The process goes
 * on serving: a good load then starts the VM with a thread of its own. */
Test(snapshot, api_failed_load_into_vm_built_ahead_leaves_no_thread)
{
    static const char parked[] = "by the vCPU thread built ahead";
    struct api a, b;
    struct fn f = {0};
    char body[1024], uds[160], snap[160], log[2][160], v[100], *out;

    need_kvm();
    snprintf(uds, sizeof(uds), "%s/fail-orig.sock", dir);
    make_snapshot("fail", uds, NULL, "serve", NULL);
    snprintf(snap, sizeof(snap), "%s/fail", dir);
    snprintf(v, sizeof(v), "%s/fail-v.sock", dir);
    for (int i = 0; i < 2; i++)
        snprintf(log[i], sizeof(log[i]), "%s/fail%d.log", dir, i);

    api_start_with(&a, "fail-a", "16", log[0]);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s/nothing\", \"mem_backend\": {\"backend_type\": "
             "\"File\", \"backend_path\": \"%s/mem\"}, \"resume_vm\": true}",
             snap, snap);
    cr_assert_eq(api(&a, "PUT", "/snapshot/load", body, &out), 400);
    cr_assert(strstr(out, "nothing\\\": No such file or directory"), "%s", out);
    free(out);
    threads_are(a.pid, 1, 0);

    api_start_with(&b, "fail-b", "16", log[1]);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s/state\", \"mem_backend\": {\"backend_type\": \"File\", "
             "\"backend_path\": \"%s/mem\"}, \"vsock_override\": {\"uds_path\": "
             "\"%s/no-such-dir/v.sock\"}, \"resume_vm\": true}",
             snap, snap, dir);
    cr_assert_eq(api(&b, "PUT", "/snapshot/load", body, &out), 400);
    cr_assert(strstr(out, "no-such-dir/v.sock"), "%s", out);
    free(out);
    threads_are(b.pid, 1, 0);
    cr_assert(!file_has(log[1], "took over the KVM VM built ahead"));
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s/state\", \"mem_backend\": {\"backend_type\": \"File\", "
             "\"backend_path\": \"%s/mem\"}, \"vsock_override\": {\"uds_path\": \"%s\"}, "
             "\"resume_vm\": true}",
             snap, snap, v);
    api_ok(&b, "PUT", "/snapshot/load", body);
    snprintf(f.uds, sizeof(f.uds), "%s", v);
    char *r = call(&f, "served after a failed load");
    cr_assert_str_eq(r, "served after a failed load");
    free(r);
    cr_assert(!file_has(log[1], parked));
    threads_are(b.pid, 2, 2);
}

/* The state at from, decoded, changed by edit and encoded again (with a
 * good checksum) at to. */
static void state_reencoded(const char *from, const char *to, void (*edit)(struct snapshot_state *))
{
    struct snapshot_state *st = calloc(1, sizeof(*st));
    char why[256];
    size_t len, enc_len;
    uint8_t *b = slurp(from, &len), *enc;

    cr_assert(st);
    cr_assert_eq(snapshot_state_decode(b, len, st, why, sizeof(why)), 0, "%s: %s", from, why);
    edit(st);
    enc = snapshot_state_encode(st, &enc_len);
    cr_assert(enc);
    spit(to, enc, enc_len);
    free(enc);
    free(b);
    snapshot_state_release(st);
    free(st);
}

/* CR4 with a reserved bit (bit 40): KVM_SET_SREGS refuses it. */
static void cr4_reserved(struct snapshot_state *st)
{
    st->vcpu.sregs.cr4 |= 1ull << 40;
}

/* A vCPU state KVM refuses (snapshot_restore.c, set_state) fails an API
 * load into the VM built ahead with the ioctl's name; the process ends the
 * parked thread and serves a good load after it. */
Test(snapshot, api_load_whose_vcpu_state_kvm_refuses_says_which_and_serves_on)
{
    struct api a;
    struct fn f = {0};
    char body[1024], uds[160], snap[160], bad[200], log[160], v[100], *out;

    need_kvm();
    snprintf(uds, sizeof(uds), "%s/badcpu-orig.sock", dir);
    make_snapshot("badcpu", uds, NULL, "serve", NULL);
    snprintf(snap, sizeof(snap), "%s/badcpu", dir);
    snprintf(bad, sizeof(bad), "%s/bad-state", snap);
    snprintf(log, sizeof(log), "%s/badcpu.log", dir);
    snprintf(v, sizeof(v), "%s/badcpu-v.sock", dir);
    snprintf(body, sizeof(body), "%s/state", snap);
    state_reencoded(body, bad, cr4_reserved);

    api_start_with(&a, "badcpu", "16", log);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
             "\"backend_path\": \"%s/mem\"}, \"resume_vm\": true}",
             bad, snap);
    cr_assert_eq(api(&a, "PUT", "/snapshot/load", body, &out), 400);
    cr_assert(
        strstr(out, "KVM_SET_SREGS: Invalid argument (the state does not fit this host's KVM)"),
        "%s", out);
    free(out);
    threads_are(a.pid, 1, 0);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s/state\", \"mem_backend\": {\"backend_type\": \"File\", "
             "\"backend_path\": \"%s/mem\"}, \"vsock_override\": {\"uds_path\": \"%s\"}, "
             "\"resume_vm\": true}",
             snap, snap, v);
    api_ok(&a, "PUT", "/snapshot/load", body);
    snprintf(f.uds, sizeof(f.uds), "%s", v);
    char *r = call(&f, "served after a refused vCPU state");
    cr_assert_str_eq(r, "served after a refused vCPU state");
    free(r);
    threads_are(a.pid, 2, 2);
}

Test(snapshot, ember_snapshot_of_a_running_vm_restores)
{
    struct api a;
    struct fn f = {0}, g;
    struct spawn_result r;
    char body[512], v1[100], snap[160];

    need_kvm();
    snprintf(v1, sizeof(v1), "%s/cli-v1.sock", dir);
    snprintf(snap, sizeof(snap), "%s/cli-snap", dir);
    cr_assert_eq(mkdir(snap, 0700), 0);
    api_start(&a, "cli");
    api_ok(&a, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 16}");
    snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\", \"boot_args\": \"serve\"}",
             GUEST);
    api_ok(&a, "PUT", "/boot-source", body);
    snprintf(body, sizeof(body), "{\"guest_cid\": 3, \"uds_path\": \"%s\"}", v1);
    api_ok(&a, "PUT", "/vsock", body);
    api_ok(&a, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
    snprintf(f.uds, sizeof(f.uds), "%s", v1);
    free(call(&f, "before"));
    run((char *[]){EMBER_BIN, "snapshot", "--api-sock", a.sock, "--resume", snap, NULL}, &r);
    cr_assert_eq(r.status, 0, "ember snapshot: %d %s", r.status, r.err);
    spawn_free(&r);
    char *s = call(&f, "the original goes on"); /* resumed */
    cr_assert_str_eq(s, "the original goes on");
    free(s);
    fn_restore(&g, snap, 99);
    s = call(&g, "and so does its copy");
    cr_assert_str_eq(s, "and so does its copy");
    free(s);
    /* Without a VM behind the socket: the API's answer, status 1. */
    run((char *[]){EMBER_BIN, "snapshot", "--api-sock", "/nonexistent.sock", snap, NULL}, &r);
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err, "ember snapshot: PATCH /vm: /nonexistent.sock: No such file or "
                            "directory\n");
    spawn_free(&r);
}

/* ---- a memory file truncated under the restored VM (monitor/mem_fault.h) ---- */

/* A process in the background with its stdout and stderr in files. */
struct bg {
    pid_t pid;
    char out[160], err[160];
};

static void bg_start(struct bg *b, const char *name, char *const argv[])
{
    posix_spawn_file_actions_t fa;

    snprintf(b->out, sizeof(b->out), "%s/%s.out", dir, name);
    snprintf(b->err, sizeof(b->err), "%s/%s.err", dir, name);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, b->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, b->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_eq(posix_spawn(&b->pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    started[nstarted++] = b->pid;
}

static char *read_text(const char *path)
{
    size_t len;
    uint8_t *b = slurp(path, &len);

    b[len < (1 << 20) ? len : (1 << 20) - 1] = '\0';
    return (char *)b;
}

/* Waits (capped) until the file at path holds text. */
static void wait_for_text(const char *path, const char *text)
{
    for (int i = 0; i < CAP_S * 100; i++) {
        char *s = read_text(path);
        bool there = strstr(s, text) != NULL;
        free(s);
        if (there)
            return;
        usleep(10000);
    }
    cr_assert_fail("%s never showed \"%s\"", path, text);
}

/* Waits (capped) for b to end; returns its wait status. */
static int bg_wait(struct bg *b)
{
    int ws = 0;

    for (int i = 0; i < CAP_S * 100; i++) {
        pid_t p = waitpid(b->pid, &ws, WNOHANG);
        if (p == b->pid) {
            for (int j = 0; j < nstarted; j++)
                if (started[j] == b->pid)
                    started[j] = started[--nstarted];
            return ws;
        }
        usleep(10000);
    }
    cr_assert_fail("pid %d did not end", (int)b->pid);
    return -1;
}

/* The copy of snapshot dir/FROM as dir/TO, whose memory file the test cuts. */
static void snap_copy(const char *from, const char *to, char *mem, size_t len)
{
    char d[200], src[256], dst[256];

    snprintf(d, sizeof(d), "%s/%s", dir, to);
    cr_assert_eq(mkdir(d, 0700), 0);
    snprintf(src, sizeof(src), "%s/%s/state", dir, from);
    snprintf(dst, sizeof(dst), "%s/state", d);
    copy_file(src, dst);
    snprintf(src, sizeof(src), "%s/%s/mem", dir, from);
    snprintf(mem, len, "%s/mem", d);
    copy_file(src, mem);
}

/* ember ended with status 149 (no signal), with one stderr line saying
 * that mem was truncated to left bytes, then what failed: by_guest says
 * whether that must be the guest's own access. */
static void ended_truncated(struct bg *b, int ws, const char *mem, long left, bool by_guest)
{
    char want[400], *err = read_text(b->err);

    cr_assert(WIFEXITED(ws), "ember died of signal %d\n%s", WIFSIGNALED(ws) ? WTERMSIG(ws) : 0,
              err);
    cr_assert_eq(WEXITSTATUS(ws), 149, "status %d\n%s", WEXITSTATUS(ws), err);
    snprintf(want, sizeof(want),
             "ember: guest memory file %s was truncated while the VM ran (%ld of its 16777216 "
             "bytes left): ",
             mem, left);
    char *line = strstr(err, "ember: guest memory file ");
    cr_assert(line && (line == err || line[-1] == '\n'), "no report:\n%s", err);
    cr_assert(!strstr(line + 1, "ember: guest memory file "), "reported twice:\n%s", err);
    /* Devices that read zeros from lost pages say nothing of their own. */
    cr_assert(!strstr(err, "device needs reset"), "%s", err);
    char *nl = strchr(line, '\n');
    cr_assert(nl, "%s", err);
    *nl = '\0';
    cr_assert(strncmp(line, want, strlen(want)) == 0, "want \"%s...\"\ngot  \"%s\"", want, line);
    const char *what = line + strlen(want), *end = "; the VM is stopped";
    cr_assert(strlen(what) > strlen(end) && strcmp(what + strlen(what) - strlen(end), end) == 0,
              "%s", line);
    /* The guest's access: KVM_RUN fails with EFAULT (hardware), or KVM's
     * emulator cannot read what it needs and the guest fails (kvm_pvm). */
    bool guest =
        strncmp(what, "the guest touched a page that is gone (KVM_RUN: Bad address);", 61) == 0 ||
        strncmp(what, "the guest failed (", 18) == 0;
    bool host = strncmp(what, "the monitor's access to guest-physical 0x", 40) == 0;
    cr_assert(by_guest ? guest : guest || host, "%s", line);
    free(err);
}

Test(snapshot, truncated_memory_file_stops_the_guest_with_a_message)
{
    char mem[256], snap[256], name[32];
    struct bg b;

    need_kvm();
    make_snapshot("touch", NULL, NULL, "touch", NULL);
    /* Cut to nothing, the guest's page tables and code go too: it fails in
     * whatever way KVM meets that first. Cut to 4 MiB, what the guest
     * loses is the upper part of the buffer it reads (snap_test's field, at
     * 2-6 MiB): KVM cannot fault the page in, KVM_RUN fails with EFAULT. */
    static const long cut[] = {0, 4 << 20};
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof(name), "touch-cut%d", i);
        snap_copy("touch", name, mem, sizeof(mem));
        snprintf(snap, sizeof(snap), "%s/%s", dir, name);
        bg_start(&b, name, (char *[]){EMBER_BIN, "run", "--restore", snap, NULL});
        wait_for_text(b.out, "snap-test: touching, generation 1\n");
        /* The guest reads its pages over and over, and nothing else runs. */
        cr_assert_eq(truncate(mem, cut[i]), 0);
        int ws = bg_wait(&b);
        ended_truncated(&b, ws, mem, cut[i], true);
        if (cut[i]) {
            char *err = read_text(b.err), want[600];
            snprintf(want, sizeof(want),
                     "ember: guest memory file %s was truncated while the VM ran (%ld of its "
                     "16777216 bytes left): the guest touched a page that is gone (KVM_RUN: Bad "
                     "address); the VM is stopped\n",
                     mem, cut[i]);
            cr_assert_str_eq(err, want);
            free(err);
        }
    }
}

Test(snapshot, memory_file_shrunk_under_vsock_and_blk_io)
{
    char mem[256], snap[256], uds[256], disk[256];
    struct bg b;
    struct fn f;

    need_kvm();
    snprintf(disk, sizeof(disk), "%s/cut-disk.img", dir);
    blank_disk(disk);
    snprintf(uds, sizeof(uds), "%s/cut-orig.sock", dir);
    make_snapshot("blk-cut-src", uds, disk, "serve", "blk");
    snap_copy("blk-cut-src", "blk-cut", mem, sizeof(mem));
    snprintf(snap, sizeof(snap), "%s/blk-cut", dir);
    snprintf(f.uds, sizeof(f.uds), "%s/cut.sock", dir);
    bg_start(&b, "blk-cut",
             (char *[]){EMBER_BIN, "run", "--restore", snap, "--vsock", f.uds, NULL});
    char *r = call(&f, "blk");
    cr_assert_str_eq(r, "blk 1");
    free(r);
    /* The upper half goes, where the SDK keeps its queues and buffers. */
    cr_assert_eq(truncate(mem, 8 << 20), 0);
    for (int i = 0; i < 3; i++) {
        char err[256];
        void *resp = NULL;
        size_t resp_len = 0, cap = 0;
        int c = ember_invoke_connect_wait(f.uds, EMBER_FAAS_PORT, 2000, err, sizeof(err));
        if (c < 0)
            break; /* the VM has gone */
        /* Whatever the answer: ember must stop the VM. */
        (void)ember_invoke(c, "blk", 3, &resp, &resp_len, &cap, 0, 2000, err, sizeof(err));
        free(resp);
        close(c);
    }
    ended_truncated(&b, bg_wait(&b), mem, 8 << 20, false);
}

Test(snapshot, api_loaded_vm_stops_when_its_memory_file_is_truncated)
{
    char mem[256], state[256], sock[100], body[700], metrics[200];
    struct bg b;
    struct api a;

    need_kvm();
    make_snapshot("api-touch", NULL, NULL, "touch", NULL);
    snap_copy("api-touch", "api-touch-cut", mem, sizeof(mem));
    snprintf(state, sizeof(state), "%s/api-touch-cut/state", dir);
    snprintf(sock, sizeof(sock), "%s/cut.api", dir);
    snprintf(metrics, sizeof(metrics), "%s/api-touch-cut.metrics", dir);
    bg_start(&b, "api-touch-cut",
             (char *[]){EMBER_BIN, "--api-sock", sock, "--metrics-path", metrics, NULL});
    snprintf(a.sock, sizeof(a.sock), "%s", sock);
    a.pid = b.pid;
    for (int i = 0; i < 1000 && access(sock, F_OK) != 0; i++)
        usleep(5000);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
             "\"backend_path\": \"%s\"}, \"resume_vm\": true}",
             state, mem);
    api_ok(&a, "PUT", "/snapshot/load", body);
    wait_for_text(b.out, "snap-test: touching, generation 1\n");
    cr_assert_eq(truncate(mem, 0), 0);
    ended_truncated(&b, bg_wait(&b), mem, 0, true);
    /* The API's log says it too, and Firecracker's metric counts it. */
    char *err = read_text(b.err), want[400];
    snprintf(want, sizeof(want),
             "] the VM is stopped: its guest memory file %s lost pages while it ran\n", mem);
    cr_assert(strstr(err, want), "%s", err);
    free(err);
    char *m = read_text(metrics); /* its last line is written at exit */
    size_t n = strlen(m);
    while (n > 0 && m[n - 1] == '\n')
        m[--n] = '\0';
    char *last = strrchr(m, '\n');
    last = last ? last + 1 : m;
    cr_assert(strstr(last, "\"signals\":{\"sigbus\":1,"), "%s", last);
    free(m);
}

Test(snapshot, api_paused_vm_refuses_snapshots_of_a_truncated_memory_file)
{
    char mem[256], state[256], sock[100], body[900], other[200];
    struct bg b;
    struct api a;

    need_kvm();
    make_snapshot("api-paused", NULL, NULL, "touch", NULL);
    snap_copy("api-paused", "api-paused-cut", mem, sizeof(mem));
    snprintf(state, sizeof(state), "%s/api-paused-cut/state", dir);
    snprintf(other, sizeof(other), "%s/api-paused-cut/other", dir);
    snprintf(sock, sizeof(sock), "%s/paused.api", dir);
    bg_start(&b, "api-paused-cut", (char *[]){EMBER_BIN, "--api-sock", sock, NULL});
    snprintf(a.sock, sizeof(a.sock), "%s", sock);
    a.pid = b.pid;
    for (int i = 0; i < 1000 && access(sock, F_OK) != 0; i++)
        usleep(5000);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
             "\"backend_path\": \"%s\"}, \"resume_vm\": true}",
             state, mem);
    api_ok(&a, "PUT", "/snapshot/load", body);
    wait_for_text(b.out, "snap-test: touching, generation 1\n");
    api_ok(&a, "PATCH", "/vm", "{\"state\": \"Paused\"}");
    char want[700];
    /* Cut while paused: a snapshot reads the lost pages and is refused,
     * and the monitor stops the VM although nobody resumes it. */
    cr_assert_eq(truncate(mem, 0), 0);
    snprintf(body, sizeof(body), "{\"snapshot_path\": \"%s.state\", \"mem_file_path\": \"%s\"}",
             other, other);
    char *out;
    int code = api(&a, "PUT", "/snapshot/create", body, &out);
    cr_assert_eq(code, 400, "%d %s", code, out);
    snprintf(want, sizeof(want),
             "{\"fault_message\":\"Create snapshot error: snapshot: guest memory file %s was "
             "truncated while the VM ran (guest-physical 0x",
             mem);
    cr_assert(strncmp(out, want, strlen(want)) == 0, "%s", out);
    free(out);
    ended_truncated(&b, bg_wait(&b), mem, 0, false);
}

/* ---- vsock connections and the wall clock across a restore ---- */

/* A Unix listener at path (the host end of a guest's vsock connections). */
static int listen_at(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert(s >= 0 && strlen(path) < sizeof(a.sun_path));
    memcpy(a.sun_path, path, strlen(path) + 1);
    unlink(path);
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(listen(s, 8), 0);
    return s;
}

/* What the next connection to listener l sends until it ends (capped). */
static char *accept_all(int l)
{
    static char buf[256];
    size_t n = 0;
    struct timeval tv = {.tv_sec = CAP_S};

    setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int c = accept(l, NULL, NULL);
    cr_assert(c >= 0, "nobody connected: %s", strerror(errno));
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (ssize_t r; n < sizeof(buf) - 1 && (r = read(c, buf + n, sizeof(buf) - 1 - n)) > 0;)
        n += (size_t)r;
    buf[n] = '\0';
    close(c);
    return buf;
}

Test(snapshot, restore_resets_established_vsock_connections_and_keeps_listeners)
{
    char uds[256], host[300], snap[256];
    struct fn f;

    need_kvm();
    snprintf(uds, sizeof(uds), "%s/conn-orig.sock", dir);
    snprintf(host, sizeof(host), "%s_7000", uds);
    int l = listen_at(host);
    make_snapshot("conn", uds, NULL, "serve", "conn");
    /* The guest was connected to the host when the snapshot was taken. */
    cr_assert_str_eq(accept_all(l), "before");
    close(l);
    unlink(host);

    snprintf(snap, sizeof(snap), "%s/conn", dir);
    fn_restore(&f, snap, 0);
    snprintf(host, sizeof(host), "%s_7000", f.uds); /* before the guest connects */
    l = listen_at(host);
    /* The listener from before the snapshot answers; the connection from
     * before is gone (transport reset); a new one reaches the new host. */
    char *r = call(&f, "conn");
    cr_assert(strcmp(r, "old ECONNRESET, new ok") == 0 || strcmp(r, "old EOF, new ok") == 0, "%s",
              r);
    free(r);
    cr_assert_str_eq(accept_all(l), "after");
    close(l);
    unlink(host);
    r = call(&f, "and the listener goes on");
    cr_assert_str_eq(r, "and the listener goes on");
    free(r);
}

Test(snapshot, api_load_gives_the_guest_the_current_wall_clock)
{
    char uds[256], state[256], mem[256], body[900];
    struct api a;
    struct fn f;

    need_kvm();
    snprintf(uds, sizeof(uds), "%s/clock-orig.sock", dir);
    make_snapshot("clock", uds, NULL, "serve", NULL);
    snprintf(state, sizeof(state), "%s/clock/state", dir);
    snprintf(mem, sizeof(mem), "%s/clock/mem", dir);
    /* The snapshot ages on disk, then the VM is loaded paused and waits
     * some more: a clock stale by either would show. */
    sleep(2);
    api_start(&a, "clock");
    snprintf(f.uds, sizeof(f.uds), "%s/clock.sock", dir);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
             "\"backend_path\": \"%s\"}, \"vsock_override\": {\"uds_path\": \"%s\"}}",
             state, mem, f.uds);
    api_ok(&a, "PUT", "/snapshot/load", body);
    sleep(2);
    api_ok(&a, "PATCH", "/vm", "{\"state\": \"Resumed\"}");
    char *r = call(&f, "time");
    long long t = atoll(r), now = (long long)time(NULL);
    cr_assert(t >= now - 1 && t <= now + 1, "guest clock %lld, host %lld", t, now);
    free(r);
    r = call(&f, "gen");
    cr_assert_str_eq(r, "1");
    free(r);
}

/* A snapshot written where VMs run from an older one replaces the file
 * (rename), never truncates it under them: they go on, from the CLI's
 * --snapshot-on-ready and from PUT /snapshot/create over the VM's own
 * memory file alike. */
Test(snapshot, a_new_snapshot_over_a_memory_file_in_use_leaves_its_vms_running)
{
    char uds[256], snap[200], body[900], state[256], mem[256];
    struct fn a, b, c;
    struct spawn_result r;

    need_kvm();
    snprintf(uds, sizeof(uds), "%s/inplace-orig.sock", dir);
    make_snapshot("inplace", uds, NULL, "serve", NULL);
    snprintf(snap, sizeof(snap), "%s/inplace", dir);
    fn_restore(&a, snap, 0);
    free(call(&a, "rand"));
    /* The same directory again, from a new boot. */
    run((char *[]){EMBER_BIN, "run", "--mem", "16", "--vsock", uds, "--snapshot-on-ready", snap,
                   GUEST, "serve", NULL},
        &r);
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    spawn_free(&r);
    unlink(uds);
    char *s = call(&a, "still here");
    cr_assert_str_eq(s, "still here");
    free(s);
    fn_restore(&b, snap, 1);
    s = call(&b, "gen");
    cr_assert_str_eq(s, "1");
    free(s);

    /* A VM loaded through the API, snapshot over its own memory file. */
    struct api api_vm;
    api_start(&api_vm, "inplace");
    snprintf(state, sizeof(state), "%s/state", snap);
    snprintf(mem, sizeof(mem), "%s/mem", snap);
    snprintf(c.uds, sizeof(c.uds), "%s/inplace-api.sock", dir);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
             "\"backend_path\": \"%s\"}, \"vsock_override\": {\"uds_path\": \"%s\"}, "
             "\"resume_vm\": true}",
             state, mem, c.uds);
    api_ok(&api_vm, "PUT", "/snapshot/load", body);
    free(call(&c, "rand"));
    api_ok(&api_vm, "PATCH", "/vm", "{\"state\": \"Paused\"}");
    snprintf(body, sizeof(body), "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}", state,
             mem);
    api_ok(&api_vm, "PUT", "/snapshot/create", body);
    api_ok(&api_vm, "PATCH", "/vm", "{\"state\": \"Resumed\"}");
    s = call(&c, "goes on");
    cr_assert_str_eq(s, "goes on");
    free(s);
    s = call(&a, "and so does the first");
    cr_assert_str_eq(s, "and so does the first");
    free(s);
    struct fn d;
    fn_restore(&d, snap, 2);
    s = call(&d, "restored from the new file");
    cr_assert_str_eq(s, "restored from the new file");
    free(s);
}

/* --snapshot-on-ready makes a missing directory before the guest runs, and a
 * path it cannot use is refused then, with its reason, not after the guest's
 * initialisation. */
Test(snapshot, snapshot_on_ready_makes_its_directory_or_says_why_not)
{
    char snap[256], state[300], file[256], deep[300], want[400];
    struct spawn_result r;
    struct stat st;

    need_kvm();
    snprintf(snap, sizeof(snap), "%s/made-by-ember", dir);
    run((char *[]){EMBER_BIN, "run", "--mem", "16", "--snapshot-on-ready", snap, GUEST, "serve",
                   NULL},
        &r);
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    spawn_free(&r);
    snprintf(state, sizeof(state), "%s/state", snap);
    cr_assert_eq(stat(state, &st), 0, "%s missing", state);

    snprintf(file, sizeof(file), "%s/a-file", dir);
    FILE *f = fopen(file, "w");
    cr_assert(f);
    fclose(f);
    run((char *[]){EMBER_BIN, "run", "--mem", "16", "--snapshot-on-ready", file, GUEST, "serve",
                   NULL},
        &r);
    cr_assert_eq(r.status, 153, "%d %s", r.status, r.err);
    snprintf(want, sizeof(want), "ember: --snapshot-on-ready %s: not a directory\n", file);
    cr_assert_str_eq(r.err, want);
    spawn_free(&r);

    snprintf(deep, sizeof(deep), "%s/no/such", dir);
    run((char *[]){EMBER_BIN, "run", "--mem", "16", "--snapshot-on-ready", deep, GUEST, "serve",
                   NULL},
        &r);
    cr_assert_eq(r.status, 153, "%d %s", r.status, r.err);
    snprintf(want, sizeof(want),
             "ember: --snapshot-on-ready %s: cannot create it: No such file or directory\n", deep);
    cr_assert_str_eq(r.err, want);
    spawn_free(&r);
}

/* PUT /snapshot/load with the Uffd memory backend (monitor/snapshot_uffd.h):
 * a page-fault handler of our own (tests/integration/uffd_handler.c, as
 * Firecracker's users write theirs) gets the regions and the userfaultfd,
 * serves every page the restored function touches from the memory file,
 * and the function answers; the handler ends when the VM's process does. */
Test(snapshot, api_load_with_the_uffd_backend)
{
    struct api a;
    struct fn f = {0};
    char snap[256], uds[256], hsock[160], body[1024];

    need_kvm();
    snprintf(uds, sizeof(uds), "%s/uffd-orig.sock", dir);
    make_snapshot("uffd", uds, NULL, "serve", NULL);
    snprintf(snap, sizeof(snap), "%s/uffd", dir);
    snprintf(hsock, sizeof(hsock), "%s/uffd-handler.sock", dir);
    snprintf(f.uds, sizeof(f.uds), "%s/uffd-v.sock", dir);

    /* The handler, in the background, its output to a file. */
    char hout[200], mem[300];
    snprintf(hout, sizeof(hout), "%s/uffd-handler.out", dir);
    snprintf(mem, sizeof(mem), "%s/mem", snap);
    posix_spawn_file_actions_t fa;
    pid_t hpid;
    char *hargv[] = {UFFD_HANDLER, hsock, mem, NULL};
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, hout, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    cr_assert_eq(posix_spawn(&hpid, UFFD_HANDLER, &fa, NULL, hargv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    started[nstarted++] = hpid;
    for (int i = 0; i < 1000 && access(hsock, F_OK) != 0; i++)
        usleep(5000);

    api_start(&a, "uffd");
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s/state\", \"mem_backend\": {\"backend_type\": \"Uffd\", "
             "\"backend_path\": \"%s\"}, \"vsock_override\": {\"uds_path\": \"%s\"}, "
             "\"resume_vm\": true}",
             snap, hsock, f.uds);
    api_ok(&a, "PUT", "/snapshot/load", body);
    char *r = call(&f, "echo through the handler");
    cr_assert_str_eq(r, "echo through the handler");
    free(r);
    r = call(&f, "gen");
    cr_assert_str_eq(r, "1");
    free(r);
    r = call(&f, "rand");
    cr_assert_eq(strlen(r), 64, "%s", r);
    free(r);

    /* The VM's process ends: the handler sees its connection close. */
    kill(a.pid, SIGKILL);
    waitpid(a.pid, NULL, 0);
    int st = proc_wait(hpid, CAP_S);
    char *out = proc_slurp(hout);
    cr_assert_eq(st, 0, "handler: status %d\n%s", st, out);
    cr_assert(strstr(out, "uffd_handler: one region of 16777216 bytes, page size 4096"), "%s", out);
    const char *served = strstr(out, "uffd_handler: served ");
    cr_assert(served, "%s", out);
    unsigned long long pages = strtoull(served + strlen("uffd_handler: served "), NULL, 10);
    /* Every page the guest and the devices touched came from the handler:
     * some, and far from all 4096. */
    cr_assert(pages > 0 && pages < 4096, "%llu pages served\n%s", pages, out);
    free(out);
}

static void no_realtime(struct snapshot_state *st)
{
    st->vm.clock.flags &= ~(uint32_t)KVM_CLOCK_REALTIME;
}

/* kvmclock of the snapshot at path, and whether it holds the real time. */
static uint64_t state_clock(const char *path, bool *has_realtime)
{
    struct snapshot_state *st = calloc(1, sizeof(*st));
    char why[256];
    size_t len;
    uint8_t *b = slurp(path, &len);

    cr_assert(st);
    cr_assert_eq(snapshot_state_decode(b, len, st, why, sizeof(why)), 0, "%s: %s", path, why);
    uint64_t c = st->vm.clock.clock;
    if (has_realtime)
        *has_realtime = (st->vm.clock.flags & KVM_CLOCK_REALTIME) != 0;
    free(b);
    snapshot_state_release(st);
    free(st);
    return c;
}

/* A VM loaded paused from state, then snapshotted again at once: the
 * kvmclock it was given (the load's options in extra). */
static uint64_t reloaded_clock(const char *name, const char *state, const char *mem,
                               const char *extra)
{
    struct api a;
    char body[1024], s2[200], m2[200], v[200];

    snprintf(s2, sizeof(s2), "%s/%s-state", dir, name);
    snprintf(m2, sizeof(m2), "%s/%s-mem", dir, name);
    snprintf(v, sizeof(v), "%s/%s.sock", dir, name);
    api_start(&a, name);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
             "\"backend_path\": \"%s\"}, \"vsock_override\": {\"uds_path\": \"%s\"}%s}",
             state, mem, v, extra);
    api_ok(&a, "PUT", "/snapshot/load", body);
    snprintf(body, sizeof(body), "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}", s2, m2);
    api_ok(&a, "PUT", "/snapshot/create", body);
    return state_clock(s2, NULL);
}

/* Firecracker's clock_realtime: kvmclock advances by the wall-clock time
 * the snapshot waited, or, without it, goes on from where it was; a state
 * without the real time is refused; huge_pages takes Firecracker's values
 * and refuses the huge ones. */
Test(snapshot, api_load_clock_realtime_and_huge_pages)
{
    char uds[200], state[200], mem[200], body[1024], want[700], *out;
    struct api a;
    bool has_rt;

    need_kvm();
    snprintf(uds, sizeof(uds), "%s/rt-orig.sock", dir);
    make_snapshot("rt", uds, NULL, "serve", NULL);
    snprintf(state, sizeof(state), "%s/rt/state", dir);
    snprintf(mem, sizeof(mem), "%s/rt/mem", dir);
    uint64_t c0 = state_clock(state, &has_rt);

    api_start(&a, "rt-bad");
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", \"huge_pages\": \"2M\"}",
             state, mem);
    api_fault(&a, "PUT", "/snapshot/load", body,
              "Load snapshot error: field \\\"huge_pages\\\": ember does not offer huge pages "
              "(guest memory is mapped in 4 KiB pages)");
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", \"clock_realtime\": 1}", state,
             mem);
    cr_assert_eq(api(&a, "PUT", "/snapshot/load", body, &out), 400);
    cr_assert(strstr(out, "clock_realtime"), "%s", out);
    free(out);

    /* A state whose clock has no real time (a host without a TSC
     * clocksource, or Linux < 5.16, made it): refused before any VM. */
    char nort[200];
    snprintf(nort, sizeof(nort), "%s/rt/state-no-realtime", dir);
    state_reencoded(state, nort, no_realtime);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", \"clock_realtime\": true}",
             nort, mem);
    snprintf(want, sizeof(want),
             "Load snapshot error: snapshot \\\"%s\\\": clock_realtime requested but not present "
             "in the snapshot state (the snapshot's host gave kvmclock no real time: its "
             "clocksource was not the TSC, or its Linux was older than 5.16)",
             nort);
    api_fault(&a, "PUT", "/snapshot/load", body, want);

    if (!has_rt) {
        cr_log_warn("SKIPPED (part): this host's KVM_GET_CLOCK gives no real time (clocksource "
                    "not the TSC?): clock_realtime cannot advance kvmclock here");
        return;
    }
    /* The snapshot waits 2 s; two VMs are loaded from it, one with
     * clock_realtime, and snapshotted again at once. */
    sleep(2);
    uint64_t plain = reloaded_clock("rt-plain", state, mem, ", \"huge_pages\": \"None\"") - c0;
    uint64_t real = reloaded_clock("rt-real", state, mem,
                                   ", \"clock_realtime\": true, \"huge_pages\": \"Snapshot\"") -
                    c0;
    cr_log_info("kvmclock advanced %llu ns with clock_realtime, %llu ns without",
                (unsigned long long)real, (unsigned long long)plain);
    cr_assert(real >= 2000000000ull, "kvmclock advanced %llu ns with clock_realtime",
              (unsigned long long)real);
    cr_assert(real > plain + 1500000000ull,
              "kvmclock advanced %llu ns with clock_realtime, %llu ns without",
              (unsigned long long)real, (unsigned long long)plain);
}

/* After a load, GET /vm/config describes the restored VM (Firecracker's:
 * the snapshot's machine configuration) with its drive and vsock, and
 * PATCH /drives finds the restored drive: the clone writes to a file of
 * its own from then on. */
Test(snapshot, api_load_describes_the_vm_and_its_drive_takes_a_patch)
{
    char disk[200], clone[200], uds[200], v[100], state[200], mem[200], body[1024], want[400];
    struct api a;
    struct fn f = {0};
    char *out;

    need_kvm();
    snprintf(disk, sizeof(disk), "%s/cfg-disk.img", dir);
    snprintf(clone, sizeof(clone), "%s/cfg-clone.img", dir);
    blank_disk(disk);
    snprintf(uds, sizeof(uds), "%s/cfg-orig.sock", dir);
    make_snapshot("cfg", uds, disk, "serve", "blk");
    copy_file(disk, clone);
    unsigned before = drive_counter(disk);
    snprintf(state, sizeof(state), "%s/cfg/state", dir);
    snprintf(mem, sizeof(mem), "%s/cfg/mem", dir);
    snprintf(v, sizeof(v), "%s/cfg.sock", dir);

    api_start(&a, "cfg");
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
             "\"backend_path\": \"%s\"}, \"vsock_override\": {\"uds_path\": \"%s\"}, "
             "\"resume_vm\": true}",
             state, mem, v);
    api_ok(&a, "PUT", "/snapshot/load", body);
    cr_assert_eq(api(&a, "GET", "/vm/config", "", &out), 200);
    cr_assert(strstr(out, "\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":16,"), "%s", out);
    snprintf(want, sizeof(want), "\"vsock\":{\"guest_cid\":3,\"uds_path\":\"%s\"}", v);
    cr_assert(strstr(out, want), "%s", out);
    snprintf(want, sizeof(want), "\"path_on_host\":\"%s\"", disk);
    cr_assert(strstr(out, want), "%s", out);
    const char *id = strstr(out, "\"drive_id\":\"");
    cr_assert(id, "%s", out);
    char drive_id[65] = {0};
    sscanf(id + strlen("\"drive_id\":\""), "%64[A-Za-z0-9_]", drive_id);
    free(out);

    char path[120];
    snprintf(path, sizeof(path), "/drives/%s", drive_id);
    snprintf(body, sizeof(body), "{\"drive_id\": \"%s\", \"path_on_host\": \"%s\"}", drive_id,
             clone);
    api_ok(&a, "PATCH", path, body);
    snprintf(f.uds, sizeof(f.uds), "%s", v);
    char *r = call(&f, "blk");
    unsigned n = 0;
    cr_assert_eq(sscanf(r, "blk %u", &n), 1, "%s", r);
    free(r);
    cr_assert_eq(drive_counter(clone), n, "the clone's file holds %u, the guest wrote %u",
                 drive_counter(clone), n);
    cr_log_info("drive %s: guest wrote %u, the snapshot drive holds %u (was %u)", drive_id, n,
                drive_counter(disk), before);
    cr_assert_eq(drive_counter(disk), before, "the snapshot's drive was written after the PATCH");
    cr_assert_eq(api(&a, "GET", "/vm/config", "", &out), 200);
    snprintf(want, sizeof(want), "\"path_on_host\":\"%s\"", clone);
    cr_assert(strstr(out, want), "%s", out);
    free(out);
}
