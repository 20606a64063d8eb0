/* snapshot_bench.c: restoring a warmed function from a snapshot against
 * booting it cold, in the same run (issue 16).
 *
 * latency: --runs rounds; each round starts one VM by cold boot (`ember run
 *   --timings --vsock S faas-echo --max 1`), one by restore (`ember run
 *   --timings --restore DIR --vsock S`, DIR a snapshot of the same command
 *   taken at ember_faas_ready()) and one by an API load (`ember --api-sock
 *   A --prebuild-mem MIB`, started and given --settle-ms (2) untimed, then PUT
 *   /snapshot/load with resume_vm: an already-running process, as
 *   Firecracker measures its loads), in an order that rotates, and invokes
 *   each once. Per VM: spawn -> first guest instruction (ember's own
 *   --timings mark, relative to its process start, plus nothing: the spawn
 *   is the request) and spawn -> whole response at the host; for restores
 *   the restore steps ember reports (state, mem-check, kvm, devices,
 *   vcpu-state; an API load's from its log); for API loads the request's
 *   own time, load request -> first guest instruction (from ember's log),
 *   load response -> vsock connection accepted, and load request -> whole
 *   response. Median and p99 of each, and the ratios.
 * density: --count VMs restored from one snapshot of an idle function (no
 *   --max) by a sustained launcher: --concurrency workers, each launching
 *   its next VM as soon as its last one answered, each VM invoked once; with all
 *   alive, the sum of their Pss (/proc/PID/smaps_rollup) and the drop of
 *   MemAvailable (which also counts the kernel's KVM structures), per VM.
 *   The launch rate is count / (first spawn -> last first response); the
 *   CPU per VM is what their processes used, start to teardown; the host's
 *   CPU in the window (/proc/stat: guest code, user, kernel, idle) per VM
 *   says where it went. Three ways:
 *   by `ember run --restore`, then by API loads into `ember --api-sock`
 *   processes each worker starts one launch ahead (their start is in the window),
 *   then by requests to one `ember restore-server` (a fork per VM; the
 *   server's start is outside the window, its CPU and its children's in the
 *   CPU per VM). --launch run,api,server picks which; with server the
 *   latency rounds have a fifth way: request -> answer (the VM runs),
 *   request -> first instruction (the child's --timings, from its fork) and
 *   request -> whole response. Then the api and server launchers again
 *   with the VMs not invoked: restores alone (the load's 204, the
 *   server's answer: the VM runs), as Firecracker counts a load (--invoke
 *   yes|no|both, default both).
 * --uffd-handler PATH: the rounds also load by PUT /snapshot/load with the
 *   Uffd memory backend, each from a fresh `PATH SOCK MEMFILE` page-fault
 *   handler (build/tests/ember-test-uffd-handler) started untimed.
 * --prebuild-mem MIB|none: what the API processes are given (default --mem,
 *   the snapshot's size; 0 builds nothing ahead; none passes no flag, for an
 *   ember from before the flag).
 * --dir DIR (default /tmp): where the run directory (snapshots, sockets)
 *   goes; creating a Unix socket costs an inode there (ext4 here: ~15% of a
 *   restore's CPU; tmpfs such as /dev/shm or /run: next to nothing).
 *
 * Every VM is in the driver's process group and is killed on the way out;
 * the run directory is removed.
 *
 * Output: JSON on stdout (or --out FILE), a summary on stderr. Exit status 0,
 * 1 when a VM failed, 2 usage, 77 no /dev/kvm.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd/invoke.h"

extern char **environ;

#define EXIT_SKIPPED 77
#define NSTEPS       5

static const char *const step_names[NSTEPS] = {"state", "mem-check", "kvm", "devices",
                                               "vcpu-state"};

static struct {
    const char *ember, *guest, *out, *dir;
    const char *prebuild; /* --prebuild-mem for `ember --api-sock`: NULL: --mem; "none": no flag */
    const char *pool;     /* --pool N for the restore server; NULL: its default */
    const char *uffd;     /* --uffd-handler PATH: the latency rounds load by the Uffd backend too,
                           * served by `PATH SOCK MEMFILE` (tests/integration/uffd_handler.c) */
    const char *invoke;   /* --invoke yes|no|both: the density runs with, without the first
                           * request (no: restores alone; run mode always invokes) */
    const char *launch;   /* --launch: a comma list of run, api, server (the density runs; server
                           * adds a restore-server variant to the latency rounds too) */
    unsigned runs, count, concurrency, mem_mib, settle_ms;
} opt = {.runs = 200,
         .count = 1000,
         .concurrency = 8,
         .mem_mib = 16,
         .dir = "/tmp",
         .settle_ms = 2,
         .launch = "run,api,server",
         .invoke = "both"};

static char run_dir[64];

static bool launch_wanted(const char *what);

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void cleanup(void)
{
    char cmd[256];

    signal(SIGTERM, SIG_IGN);
    kill(0, SIGTERM); /* our process group: the VMs (the driver ignores it now) */
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    if (run_dir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", run_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "snapshot_bench: could not remove %s\n", run_dir);
    }
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "snapshot_bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    cleanup();
    exit(1);
}

/* Starts argv with stderr to errpath (or /dev/null). */
static pid_t spawn(char *const argv[], const char *errpath)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, errpath ? errpath : "/dev/null",
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
        die("spawn %s: %s", argv[0], strerror(errno));
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

static int reap(pid_t pid)
{
    int st;

    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Connects (retrying while the VM comes up) and invokes once; why gets the
 * reason it failed, *connected now_us() when the connection had its OK.
 * Thread-safe (the density launcher's workers call it at once). */
static bool invoke_once_r(const char *uds, char *why, size_t cap, double *connected)
{
    char err[256];
    void *resp = NULL;
    size_t len = 0, rcap = 0;
    int fd = ember_invoke_connect_wait(uds, EMBER_FAAS_PORT, 20000, err, sizeof(err));

    *connected = now_us();
    if (fd < 0) {
        snprintf(why, cap, "connect: %s", err);
        return false;
    }
    int rc = ember_invoke(fd, "ping", 4, &resp, &len, &rcap, 0, 20000, err, sizeof(err));
    close(fd);
    bool ok = rc == EMBER_INVOKE_OK && len == 4 && memcmp(resp, "ping", 4) == 0;
    if (!ok)
        snprintf(why, cap, "invoke: %s %s (%zu bytes back)", ember_invoke_strerror(rc),
                 rc < 0 ? err : "", len);
    free(resp);
    return ok;
}

static char invoke_err[300];

static double connected_at; /* now_us() when the last invoke_once() had its OK */

static bool invoke_once(const char *uds)
{
    return invoke_once_r(uds, invoke_err, sizeof(invoke_err), &connected_at);
}

/* --- ember --api-sock: an already-running process given PUT /snapshot/load,
 * as Firecracker measures its snapshot loads. --- */

static int uds_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);

    if (len >= sizeof(sa.sun_path)) { /* it would not fit: not cut short */
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, path, len + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Starts `ember --api-sock sock --prebuild-mem prebuild` (NULL: --mem, the
 * snapshot's size; "none": no flag). */
static pid_t api_spawn_with(const char *sock, const char *errpath, const char *prebuild)
{
    char mem[16];
    /* The VM built ahead has the snapshot's memory size (vm_shell.h). */
    snprintf(mem, sizeof(mem), "%s", prebuild ? prebuild : "");
    if (!prebuild)
        snprintf(mem, sizeof(mem), "%u", opt.mem_mib);
    bool flag = !prebuild || strcmp(prebuild, "none") != 0;
    char *argv[] = {
        (char *)opt.ember, "--api-sock", (char *)sock, flag ? "--prebuild-mem" : NULL, mem, NULL};

    unlink(sock);
    return spawn(argv, errpath);
}

static pid_t api_spawn_nowait(const char *sock, const char *errpath)
{
    return api_spawn_with(sock, errpath, opt.prebuild);
}

/* Waits until the API socket answers. */
static void api_wait_ready(const char *sock)
{
    struct timespec pause = {0, 50000};
    double t0 = now_us();

    for (;;) {
        int fd = uds_connect(sock);
        if (fd >= 0) {
            close(fd);
            return;
        }
        if (now_us() - t0 > 5e6)
            die("ember --api-sock %s: the socket did not come up", sock);
        nanosleep(&pause, NULL);
    }
}

static pid_t api_spawn(const char *sock, const char *errpath, const char *prebuild)
{
    pid_t pid = api_spawn_with(sock, errpath, prebuild);

    api_wait_ready(sock);
    return pid;
}

/* One request on a fresh connection; the HTTP status, or -1. */
/* A request written on a fresh connection: the connection, or -1. */
static int api_put_send(const char *sock, const char *path, const char *body)
{
    char req[2048];
    int fd = uds_connect(sock), n;

    if (fd < 0)
        return -1;
    n = snprintf(req, sizeof(req),
                 "PUT %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 path, strlen(body), body);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Its answer (the connection is closed): the HTTP status, or -1. */
static int api_put_recv(int fd, char *resp, size_t cap)
{
    size_t got = 0;
    int status = -1;

    if (fd < 0)
        return -1;
    /* Headers, then the body if Content-Length says there is one. */
    while (got + 1 < cap) {
        ssize_t r = read(fd, resp + got, cap - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        resp[got] = '\0';
        const char *end = strstr(resp, "\r\n\r\n");
        if (!end)
            continue;
        const char *cl = strstr(resp, "Content-Length:");
        size_t want = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
        if (got >= (size_t)(end + 4 - resp) + want)
            break;
    }
    resp[got] = '\0';
    if (got > 12 && strncmp(resp, "HTTP/1.1 ", 9) == 0)
        status = atoi(resp + 9);
    close(fd);
    return status;
}

/* PUT /snapshot/load with resume_vm, sent; api_load_done() reads the
 * answer, so that several loads can be under way at once. hsock: the Uffd
 * backend, its page-fault handler listening there; NULL: File. */
static int api_load_send(const char *sock, const char *snap, const char *uds, const char *hsock)
{
    char body[1024], mem[300];

    snprintf(mem, sizeof(mem), "%s/mem", snap);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s/state\", \"mem_backend\": {\"backend_type\": \"%s\", "
             "\"backend_path\": \"%s\"}, \"resume_vm\": true, \"vsock_override\": "
             "{\"uds_path\": \"%s\"}}",
             snap, hsock ? "Uffd" : "File", hsock ? hsock : mem, uds);
    return api_put_send(sock, "/snapshot/load", body);
}

static void api_load_done(int fd, const char *sock)
{
    char resp[1024] = "";
    int st = api_put_recv(fd, resp, sizeof(resp));

    if (st != 204)
        die("PUT /snapshot/load on %s: status %d: %s", sock, st, resp);
}

static void api_load(const char *sock, const char *snap, const char *uds)
{
    api_load_done(api_load_send(sock, snap, uds, NULL), sock);
}

/* --- ember restore-server: one process that checked the snapshot once,
 * forking a VM process per request (cmd/restore_server.h). --- */

/* timings: --timings (the latency rounds read the children's steps; the
 * density runs, like `run --restore`'s, go without). */
static pid_t server_spawn(const char *sock, const char *snap, const char *errpath, bool timings)
{
    char *argv[8] = {(char *)opt.ember, "restore-server", "--sock",
                     (char *)sock,      "--snapshot",     (char *)snap};
    int n = 6;

    if (timings)
        argv[n++] = "--timings";
    if (opt.pool) {
        argv[n++] = "--pool";
        argv[n++] = (char *)opt.pool;
    }
    argv[n] = NULL;

    unlink(sock);
    pid_t pid = spawn(argv, errpath);
    api_wait_ready(sock); /* its empty request gets a fault_message */
    return pid;
}

/* A request sent: the connection, or -1. console: NULL for none. */
static int server_send(const char *sock, const char *uds, const char *console)
{
    char req[600];
    int fd = uds_connect(sock);
    int n =
        snprintf(req, sizeof(req), "{\"vsock_uds_path\": \"%s\"%s%s%s}\n", uds,
                 console ? ", \"console\": \"" : "", console ? console : "", console ? "\"" : "");

    if (fd >= 0 && write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Its answer: the VM process's pid (the connection is closed). */
static pid_t server_done(int fd, const char *sock)
{
    char resp[1024];
    size_t got = 0;

    while (fd >= 0 && got + 1 < sizeof(resp)) {
        ssize_t r = read(fd, resp + got, sizeof(resp) - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (memchr(resp, '\n', got))
            break;
    }
    resp[got] = '\0';
    if (fd >= 0)
        close(fd);
    const char *p = strstr(resp, "\"pid\":");
    if (!p)
        die("restore-server %s: %s", sock, got ? resp : "no answer");
    return (pid_t)atoi(p + 6);
}

static void make_snapshot(const char *dir, bool once)
{
    char mem[16], uds[200];
    snprintf(mem, sizeof(mem), "%u", opt.mem_mib);
    snprintf(uds, sizeof(uds), "%s/prep.sock", run_dir);
    if (mkdir(dir, 0700) != 0)
        die("%s: %s", dir, strerror(errno));
    char *argv[] = {(char *)opt.ember,
                    "run",
                    "--mem",
                    mem,
                    "--vsock",
                    uds,
                    "--snapshot-on-ready",
                    (char *)dir,
                    (char *)opt.guest,
                    once ? "--max" : NULL,
                    "1",
                    NULL};
    int st = reap(spawn(argv, NULL));
    if (st != 0)
        die("snapshot of %s: ember exited %d", opt.guest, st);
    unlink(uds);
}

/* Reads the --timings lines of one run. */
static bool parse_timings(const char *path, double *first_us, double steps[NSTEPS], bool *hashed)
{
    char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strstr(buf, "first-instruction=");
    if (!p)
        return false;
    *first_us = strtod(p + strlen("first-instruction="), NULL);
    if (steps) {
        for (int i = 0; i < NSTEPS; i++) {
            char key[32];
            snprintf(key, sizeof(key), " %s=", step_names[i]);
            const char *q = strstr(buf, key);
            steps[i] = q ? strtod(q + strlen(key), NULL) : -1;
        }
        *hashed = strstr(buf, "(memory file hashed)") != NULL;
    }
    return true;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, unsigned n, double p)
{
    qsort(v, n, sizeof(*v), cmp_d);
    unsigned i = (unsigned)(p * (n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static json_t *stats(const char *what, double *v, unsigned n, double *median)
{
    double med = pct(v, n, 0.5), p99 = pct(v, n, 0.99);
    if (median)
        *median = med;
    fprintf(stderr, "  %-34s median %9.1f us   p99 %9.1f us\n", what, med, p99);
    json_t *samples = json_array();
    for (unsigned i = 0; i < n; i++)
        json_array_append_new(samples, json_real(v[i]));
    return json_pack("{s:f, s:f, s:i, s:o}", "median_us", med, "p99_us", p99, "n", (int)n,
                     "samples_us", samples);
}

/* The restore steps of an API load, from its log line "restored from ... (us:
 * state=... vcpu-state=...)". */
static bool parse_api_steps(const char *path, double steps[NSTEPS])
{
    char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strstr(buf, "restored from");
    if (!p)
        return false;
    for (int i = 0; i < NSTEPS; i++) {
        char key[32];
        snprintf(key, sizeof(key), "%s%s=", i ? " " : "(us: ", step_names[i]);
        const char *q = strstr(p, key);
        steps[i] = q ? strtod(q + strlen(key), NULL) : -1;
    }
    return true;
}

/* V_API0: an API load into a process that built nothing ahead
 * (--prebuild-mem 0), in the same rotation, for the difference. */
/* V_SERVER: a server with --timings (steps, first instruction); V_SERVER_PLAIN:
 * one without, as deployed (its pool's parked vCPU thread has the plain
 * filter: a --timings VM starts a thread of its own). */
enum variant { V_COLD, V_RESTORE, V_API, V_API0, V_SERVER, V_SERVER_PLAIN, V_UFFD, V_COUNT };

/* "first instruction ran N us after the load request" from an API log; -1. */
static double parse_api_first(const char *path)
{
    static const char key[] = "first instruction ran ";
    char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strstr(buf, key);
    return p ? strtod(p + strlen(key), NULL) : -1;
}

/* Waits until pid (the restore server's child, not ours) is gone: 0, or -1
 * after 5 s. */
static int wait_gone(pid_t pid)
{
    struct timespec pause = {0, 50000};
    double t0 = now_us();

    while (kill(pid, 0) == 0) {
        if (now_us() - t0 > 5e6)
            return -1;
        nanosleep(&pause, NULL);
    }
    return 0;
}

static json_t *latency(void)
{
    char snap[200], uds[200], errp[200], mem[16], api_sock[200];
    unsigned n = opt.runs;
    double *cold_first = calloc(n, sizeof(double)), *cold_resp = calloc(n, sizeof(double));
    double *rest_first = calloc(n, sizeof(double)), *rest_resp = calloc(n, sizeof(double));
    double *api_ready = calloc(n, sizeof(double)), *api_load_req = calloc(n, sizeof(double));
    double *api_resp = calloc(n, sizeof(double)), *api_conn = calloc(n, sizeof(double));
    double *api0_load_req = calloc(n, sizeof(double)), *api0_resp = calloc(n, sizeof(double));
    double *api0_kvm = calloc(n, sizeof(double));
    double *api_first = calloc(n, sizeof(double)), *api0_first = calloc(n, sizeof(double));
    double *steps[NSTEPS], *api_steps[NSTEPS];
    double *srv_req = calloc(n, sizeof(double)), *srv_first = calloc(n, sizeof(double));
    double *srv_resp = calloc(n, sizeof(double)), *srv_kvm = calloc(n, sizeof(double));
    double *srvp_req = calloc(n, sizeof(double)), *srvp_resp = calloc(n, sizeof(double));
    double *uffd_req = calloc(n, sizeof(double)), *uffd_resp = calloc(n, sizeof(double));
    char srvp_sock[200], hsock[200], hmem[220];
    pid_t server_plain = 0;
    enum variant vars[V_COUNT];
    int nvar = 0;
    char srv_sock[200];
    pid_t server = 0;

    vars[nvar++] = V_COLD;
    vars[nvar++] = V_RESTORE;
    vars[nvar++] = V_API;
    /* An ember from before --prebuild-mem has no V_API0. */
    bool has_api0 = !(opt.prebuild && strcmp(opt.prebuild, "none") == 0);
    if (has_api0)
        vars[nvar++] = V_API0;
    bool has_server = launch_wanted("server");
    if (has_server) {
        vars[nvar++] = V_SERVER;
        vars[nvar++] = V_SERVER_PLAIN;
    }
    if (opt.uffd)
        vars[nvar++] = V_UFFD;
    unsigned hashed_runs = 0;

    for (int i = 0; i < NSTEPS; i++) {
        steps[i] = calloc(n, sizeof(double));
        api_steps[i] = calloc(n, sizeof(double));
    }
    snprintf(snap, sizeof(snap), "%s/once", run_dir);
    snprintf(uds, sizeof(uds), "%s/lat.sock", run_dir);
    snprintf(errp, sizeof(errp), "%s/lat.err", run_dir);
    snprintf(api_sock, sizeof(api_sock), "%s/api.sock", run_dir);
    snprintf(mem, sizeof(mem), "%u", opt.mem_mib);
    make_snapshot(snap, true);
    snprintf(hsock, sizeof(hsock), "%s/uffd.sock", run_dir);
    snprintf(hmem, sizeof(hmem), "%s/mem", snap);
    snprintf(srv_sock, sizeof(srv_sock), "%s/lat-srv.sock", run_dir);
    if (has_server)
        server = server_spawn(srv_sock, snap, NULL, true);
    snprintf(srvp_sock, sizeof(srvp_sock), "%s/lat-srvp.sock", run_dir);
    if (has_server)
        server_plain = server_spawn(srvp_sock, snap, NULL, false);
    for (unsigned r = 0; r < n; r++) {
        for (int k = 0; k < nvar; k++) {
            enum variant v = vars[(k + (int)r) % nvar]; /* the order rotates */
            char *cold[] = {(char *)opt.ember, "run",   "--timings", "--mem", mem, "--vsock", uds,
                            (char *)opt.guest, "--max", "1",         NULL};
            char *rest[] = {(char *)opt.ember, "run", "--timings", "--restore", snap,
                            "--vsock",         uds,   NULL};
            double first = 0, s[NSTEPS], t0, t1, tl = 0;
            bool hashed = false, ok, parsed;
            pid_t pid, handler = 0;

            unlink(uds);
            if (v == V_API || v == V_API0) {
                /* Not timed: the process is already running when the load
                 * arrives (Firecracker's measurement); it has had 2 ms to
                 * get ready, as a pooled process has. */
                double ts = now_us();
                pid = api_spawn(api_sock, errp, v == V_API0 ? "0" : opt.prebuild);
                if (v == V_API)
                    api_ready[r] = now_us() - ts;
                struct timespec settle = {0, (long)opt.settle_ms * 1000000};
                nanosleep(&settle, NULL);
                t0 = now_us();
                api_load(api_sock, snap, uds);
                tl = now_us();
            } else if (v == V_UFFD) {
                /* Untimed, as for V_API: the handler listening, the API
                 * process running with its VM built ahead. */
                char *hargv[] = {(char *)opt.uffd, hsock, hmem, NULL};
                unlink(hsock);
                handler = spawn(hargv, NULL);
                double ts = now_us();
                while (access(hsock, F_OK) != 0) {
                    if (now_us() - ts > 5e6)
                        die("%s: its socket did not come up", opt.uffd);
                    struct timespec pause = {0, 50000};
                    nanosleep(&pause, NULL);
                }
                pid = api_spawn(api_sock, errp, opt.prebuild);
                struct timespec settle = {0, (long)opt.settle_ms * 1000000};
                nanosleep(&settle, NULL);
                t0 = now_us();
                api_load_done(api_load_send(api_sock, snap, uds, hsock), api_sock);
                tl = now_us();
            } else if (v == V_SERVER || v == V_SERVER_PLAIN) {
                const char *ss = v == V_SERVER ? srv_sock : srvp_sock;
                unlink(errp);
                t0 = now_us();
                pid = server_done(server_send(ss, uds, errp), ss);
                tl = now_us();
            } else {
                t0 = now_us();
                pid = spawn(v == V_RESTORE ? rest : cold, errp);
            }
            ok = invoke_once(uds);
            t1 = now_us();
            if (!ok)
                kill(pid, SIGKILL); /* it would wait for its invocation for ever */
            int st = v == V_SERVER || v == V_SERVER_PLAIN ? wait_gone(pid) : reap(pid);
            if (handler && reap(handler) != 0) /* it ends with the VM's process */
                die("%s failed in round %u", opt.uffd, r);
            parsed = v == V_SERVER_PLAIN || v == V_UFFD ? true
                     : v == V_API || v == V_API0
                         ? parse_api_steps(errp, s)
                         : parse_timings(errp, &first, v == V_RESTORE || v == V_SERVER ? s : NULL,
                                         &hashed);
            if (!ok || st != 0 || !parsed)
                die("%s run %u failed (%s, status %d)",
                    v == V_COLD           ? "cold"
                    : v == V_RESTORE      ? "restore"
                    : v == V_API          ? "API load"
                    : v == V_SERVER       ? "restore-server"
                    : v == V_SERVER_PLAIN ? "restore-server (no --timings)"
                    : v == V_UFFD         ? "API load (Uffd backend)"
                                          : "API load (nothing built ahead)",
                    r, ok ? "invoke ok" : invoke_err, st);
            if (v == V_RESTORE) {
                rest_first[r] = first;
                rest_resp[r] = t1 - t0;
                for (int i = 0; i < NSTEPS; i++)
                    steps[i][r] = s[i];
                hashed_runs += hashed;
            } else if (v == V_SERVER_PLAIN) {
                srvp_req[r] = tl - t0;
                srvp_resp[r] = t1 - t0;
            } else if (v == V_UFFD) {
                uffd_req[r] = tl - t0;
                uffd_resp[r] = t1 - t0;
            } else if (v == V_SERVER) {
                srv_first[r] = first;
                srv_req[r] = tl - t0;
                srv_resp[r] = t1 - t0;
                srv_kvm[r] = s[2];
            } else if (v == V_API0) {
                api0_first[r] = parse_api_first(errp);
                api0_load_req[r] = tl - t0;
                api0_resp[r] = t1 - t0;
                api0_kvm[r] = s[2];
            } else if (v == V_API) {
                api_first[r] = parse_api_first(errp);
                api_load_req[r] = tl - t0;
                api_conn[r] = connected_at - tl;
                api_resp[r] = t1 - t0;
                for (int i = 0; i < NSTEPS; i++)
                    api_steps[i][r] = s[i];
            } else {
                cold_first[r] = first;
                cold_resp[r] = t1 - t0;
            }
        }
    }
    double m_cf, m_cr, m_rf, m_rr, m_ar;
    fprintf(stderr, "latency, %u rounds (%u MiB guest, %s):\n", n, opt.mem_mib, opt.guest);
    json_t *j = json_object();
    json_object_set_new(j, "cold_first_instruction",
                        stats("cold: spawn -> first instruction", cold_first, n, &m_cf));
    json_object_set_new(j, "cold_response",
                        stats("cold: spawn -> first response", cold_resp, n, &m_cr));
    json_object_set_new(j, "restore_first_instruction",
                        stats("restore: spawn -> first instruction", rest_first, n, &m_rf));
    json_object_set_new(j, "restore_response",
                        stats("restore: spawn -> first response", rest_resp, n, &m_rr));
    json_t *js = json_object();
    for (int i = 0; i < NSTEPS; i++) {
        char what[64];
        snprintf(what, sizeof(what), "  restore step %s", step_names[i]);
        json_object_set_new(js, step_names[i], stats(what, steps[i], n, NULL));
    }
    json_object_set_new(j, "restore_steps", js);
    json_object_set_new(j, "api_spawn_to_socket_ready",
                        stats("api: spawn -> socket ready", api_ready, n, NULL));
    json_object_set_new(j, "api_load_request",
                        stats("api: PUT /snapshot/load request", api_load_req, n, NULL));
    json_object_set_new(j, "api_load_to_first_instruction",
                        stats("api: load request -> first instruction", api_first, n, NULL));
    json_object_set_new(j, "api_load_response_to_connected",
                        stats("api: load response -> vsock OK", api_conn, n, NULL));
    json_object_set_new(j, "api_load_response",
                        stats("api: load request -> first response", api_resp, n, &m_ar));
    js = json_object();
    for (int i = 0; i < NSTEPS; i++) {
        char what[64];
        snprintf(what, sizeof(what), "  api load step %s", step_names[i]);
        json_object_set_new(js, step_names[i], stats(what, api_steps[i], n, NULL));
    }
    json_object_set_new(j, "api_load_steps", js);
    if (has_server) {
        double m_sr;
        json_object_set_new(j, "server_request",
                            stats("restore-server: request -> answer", srv_req, n, NULL));
        json_object_set_new(
            j, "server_first_instruction",
            stats("restore-server: request -> first instruction (fork)", srv_first, n, NULL));
        json_object_set_new(j, "server_response",
                            stats("restore-server: request -> first response", srv_resp, n, &m_sr));
        json_object_set_new(j, "server_step_kvm",
                            stats("  restore-server: step kvm", srv_kvm, n, NULL));
        double m_pr;
        json_object_set_new(
            j, "server_plain_request",
            stats("restore-server, no --timings: request -> answer", srvp_req, n, NULL));
        json_object_set_new(
            j, "server_plain_response",
            stats("restore-server, no --timings: request -> first response", srvp_resp, n, &m_pr));
        json_object_set_new(j, "ratio_api_load_over_server_plain_response", json_real(m_ar / m_pr));
        json_object_set_new(j, "ratio_restore_over_server_response", json_real(m_rr / m_sr));
        json_object_set_new(j, "ratio_api_load_over_server_response", json_real(m_ar / m_sr));
        fprintf(stderr, "  first response: run --restore / server %.2fx, api load / server %.2fx\n",
                m_rr / m_sr, m_ar / m_sr);
        kill(server, SIGTERM);
        reap(server);
        kill(server_plain, SIGTERM);
        reap(server_plain);
    }
    if (has_api0) {
        double m_l0, m_l;
        json_object_set_new(j, "api_load_request_built_ahead_median_us",
                            json_real(pct(api_load_req, n, 0.5)));
        m_l = pct(api_load_req, n, 0.5);
        json_object_set_new(
            j, "api0_load_request",
            stats("api, nothing built ahead: PUT /snapshot/load", api0_load_req, n, &m_l0));
        json_object_set_new(
            j, "api0_load_response",
            stats("api, nothing built ahead: load -> first response", api0_resp, n, NULL));
        json_object_set_new(
            j, "api0_load_to_first_instruction",
            stats("api, nothing built ahead: load -> first instruction", api0_first, n, NULL));
        json_object_set_new(j, "api0_load_step_kvm",
                            stats("  api, nothing built ahead: step kvm", api0_kvm, n, NULL));
        json_object_set_new(j, "ratio_load_request_nothing_ahead_over_built_ahead",
                            json_real(m_l0 / m_l));
        fprintf(stderr, "  PUT /snapshot/load: nothing built ahead / built ahead %.2fx\n",
                m_l0 / m_l);
    }
    if (opt.uffd) {
        double m_ul, m_ur;
        json_object_set_new(j, "uffd_load_request",
                            stats("api, Uffd backend: PUT /snapshot/load", uffd_req, n, &m_ul));
        json_object_set_new(
            j, "uffd_load_response",
            stats("api, Uffd backend: load -> first response", uffd_resp, n, &m_ur));
        json_object_set_new(j, "ratio_uffd_over_file_load_response", json_real(m_ur / m_ar));
        fprintf(stderr, "  load -> first response: Uffd / File %.2fx\n", m_ur / m_ar);
    }
    json_object_set_new(j, "restores_that_hashed_memory", json_integer(hashed_runs));
    json_object_set_new(j, "ratio_cold_over_restore_first_instruction", json_real(m_cf / m_rf));
    json_object_set_new(j, "ratio_cold_over_restore_response", json_real(m_cr / m_rr));
    json_object_set_new(j, "ratio_cold_over_api_load_response", json_real(m_cr / m_ar));
    fprintf(stderr,
            "  cold/restore: first instruction %.2fx, first response %.2fx; cold/api load: first "
            "response %.2fx\n",
            m_cf / m_rf, m_cr / m_rr, m_cr / m_ar);
    return j;
}

static long meminfo_kib(const char *key)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/meminfo", "r");

    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, key, strlen(key)) == 0)
            v = strtol(line + strlen(key), NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static long pss_kib(pid_t pid)
{
    char path[64], line[256];
    long v = -1;

    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "Pss:", 4) == 0)
            v = strtol(line + 4, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* The host's CPU time so far, in clock ticks (/proc/stat's first line):
 * t[0] user (which includes guest code), t[1] nice, t[2] system, t[3]
 * idle, ..., t[8] guest. */
static void host_cpu(unsigned long long t[10])
{
    FILE *f = fopen("/proc/stat", "r");

    memset(t, 0, 10 * sizeof(t[0]));
    if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &t[0], &t[1],
                     &t[2], &t[3], &t[4], &t[5], &t[6], &t[7], &t[8], &t[9]) != 10)
        die("/proc/stat: cannot read the host's CPU time");
    fclose(f);
}

static double children_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_CHILDREN, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

enum launch { L_RUN, L_API, L_SERVER };

/* The density launcher: --concurrency workers, each launching the next VM
 * as soon as its last one answered (a sustained launcher, not waves: no
 * worker waits for the slowest of a wave). */
static struct {
    enum launch mode;
    unsigned n;
    const char *snap, *srv_sock;
    pid_t *pids;
    char (*socks)[120], (*apis)[120];
    bool invoke;   /* each VM invoked once (else: restored, running, not asked) */
    unsigned next; /* the next VM to launch (atomic) */
} den;

static unsigned den_claim(void)
{
    return __atomic_fetch_add(&den.next, 1, __ATOMIC_RELAXED);
}

/* api: each VM is an `ember --api-sock` process given PUT /snapshot/load;
 * a worker starts the process of its next VM before it loads this one (so
 * the process's start, its KVM VM built ahead and its listen overlap this
 * load), and the rate counts the processes' start too, as a sustained
 * launcher pays it. */
static void *den_worker(void *arg)
{
    char why[300];
    double connected;
    unsigned k = den_claim();

    (void)arg;
    if (den.mode == L_API && k < den.n)
        den.pids[k] = api_spawn_nowait(den.apis[k], NULL);
    while (k < den.n) {
        unsigned next = den_claim();
        if (den.mode == L_API) {
            if (next < den.n) /* the next one's process, one launch ahead */
                den.pids[next] = api_spawn_nowait(den.apis[next], NULL);
            api_wait_ready(den.apis[k]);
            api_load(den.apis[k], den.snap, den.socks[k]);
        } else if (den.mode == L_SERVER) {
            den.pids[k] = server_done(server_send(den.srv_sock, den.socks[k], NULL), den.srv_sock);
        } else {
            char *argv[] = {(char *)opt.ember, "run",        "--restore", (char *)den.snap,
                            "--vsock",         den.socks[k], NULL};
            den.pids[k] = spawn(argv, NULL);
        }
        if (den.invoke && !invoke_once_r(den.socks[k], why, sizeof(why), &connected))
            die("restored VM %u did not answer (%s)", k, why);
        k = next;
    }
    return NULL;
}

static json_t *density(enum launch mode, bool invoke)
{
    bool api = mode == L_API;
    char srv_sock[200];
    pid_t server = 0;
    char snap[200];
    unsigned n = opt.count, c = opt.concurrency;
    pid_t *pids = calloc(n, sizeof(pid_t));
    char(*socks)[120] = calloc(n, sizeof(*socks));
    char(*apis)[120] = calloc(n, sizeof(*apis));
    pthread_t th[64];
    long avail0, avail1, pss = 0;

    snprintf(snap, sizeof(snap), "%s/idle", run_dir);
    if (access(snap, F_OK) != 0)
        make_snapshot(snap, false);
    for (unsigned k = 0; k < n; k++) {
        snprintf(socks[k], sizeof(socks[k]), "%s/d%u.sock", run_dir, k);
        snprintf(apis[k], sizeof(apis[k]), "%s/a%u.api", run_dir, k);
        unlink(socks[k]);
    }
    double cpu0 = children_cpu_s();
    avail0 = meminfo_kib("MemAvailable:");
    /* The server's own start (once, ~2 ms) is outside the window, its CPU
     * inside the CPU per VM. */
    snprintf(srv_sock, sizeof(srv_sock), "%s/srv.sock", run_dir);
    if (mode == L_SERVER)
        server = server_spawn(srv_sock, snap, NULL, false);
    den.mode = mode;
    den.n = n;
    den.snap = snap;
    den.srv_sock = srv_sock;
    den.pids = pids;
    den.socks = socks;
    den.apis = apis;
    den.invoke = invoke;
    den.next = 0;
    unsigned long long h0[10], h1[10];
    host_cpu(h0);
    double t0 = now_us();
    for (unsigned w = 0; w < c; w++)
        if (pthread_create(&th[w], NULL, den_worker, NULL) != 0)
            die("pthread_create: %s", strerror(errno));
    for (unsigned w = 0; w < c; w++)
        pthread_join(th[w], NULL);
    double t1 = now_us();
    host_cpu(h1);
    sleep(1); /* let the page cache and the kernel settle */
    avail1 = meminfo_kib("MemAvailable:");
    for (unsigned k = 0; k < n; k++) {
        long p = pss_kib(pids[k]);
        if (p < 0)
            die("VM %u is gone", k);
        pss += p;
    }
    double rate = n / ((t1 - t0) / 1e6);
    /* Where the host's CPU went in the window (all of it: the VMs, the
     * server, this driver, the kernel's threads): guest code is what the
     * monitor cannot save. Per VM, in ms. */
    double tick = (double)sysconf(_SC_CLK_TCK), per = 1e3 / tick / n;
    double guest_ms = (double)(h1[8] - h0[8]) * per;
    double user_ms = (double)(h1[0] + h1[1] - h0[0] - h0[1]) * per - guest_ms;
    double sys_ms = (double)(h1[2] + h1[5] + h1[6] - h0[2] - h0[5] - h0[6]) * per;
    double idle_ms = (double)(h1[3] + h1[4] - h0[3] - h0[4]) * per;
    const char *how = api                ? "ember --api-sock + PUT /snapshot/load"
                      : mode == L_SERVER ? "ember restore-server (a fork per VM)"
                                         : "ember run --restore";
    fprintf(stderr, "density, %u restored idle VMs (%s, %u launches under way at once%s):\n", n,
            how, c, invoke ? "" : ", not invoked");
    fprintf(stderr, "  Pss per VM %.0f KiB, MemAvailable drop per VM %.0f KiB\n", (double)pss / n,
            (double)(avail0 - avail1) / n);
    fprintf(stderr, "  launch rate by restore, sustained: %.0f VMs/s (%s)\n", rate,
            invoke ? "restore + first response"
                   : "restored and running: the load's or the server's answer");
    for (unsigned k = 0; k < n; k++)
        kill(pids[k], SIGKILL);
    if (mode == L_SERVER) {
        /* The server reaps its children, then is reaped: their CPU is in
         * our RUSAGE_CHILDREN once it is. */
        kill(server, SIGTERM);
        reap(server);
    } else {
        for (unsigned k = 0; k < n; k++)
            reap(pids[k]);
    }
    /* Everything the VMs' processes used, teardown included. */
    double cpu = (children_cpu_s() - cpu0) / n * 1e3;
    fprintf(stderr, "  CPU per VM (its process, start to teardown): %.2f ms\n", cpu);
    fprintf(stderr,
            "  host CPU in the window per VM: guest code %.2f ms, user %.2f ms, kernel %.2f ms, "
            "idle %.2f ms\n",
            guest_ms, user_ms, sys_ms, idle_ms);
    json_t *j = json_pack("{s:s, s:i, s:i, s:f, s:f, s:f, s:f}", "launch", how, "count", (int)n,
                          "concurrency", (int)c, "pss_per_vm_kib", (double)pss / n,
                          "memavailable_drop_per_vm_kib", (double)(avail0 - avail1) / n,
                          "launch_rate_per_s", rate, "cpu_ms_per_vm", cpu);
    json_object_set_new(j, "invoked", json_boolean(invoke));
    json_object_set_new(j, "window_guest_cpu_ms_per_vm", json_real(guest_ms));
    json_object_set_new(j, "window_user_cpu_ms_per_vm", json_real(user_ms));
    json_object_set_new(j, "window_kernel_cpu_ms_per_vm", json_real(sys_ms));
    json_object_set_new(j, "window_idle_cpu_ms_per_vm", json_real(idle_ms));
    for (unsigned k = 0; k < n; k++) {
        unlink(socks[k]);
        unlink(apis[k]);
    }
    free(pids);
    free(socks);
    free(apis);
    return j;
}

/* Whether --launch names what. */
static bool launch_wanted(const char *what)
{
    size_t n = strlen(what);

    for (const char *p = opt.launch; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, what, n) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

static void on_signal(int sig)
{
    (void)sig;
    die("interrupted");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"ember", required_argument, 0, 'e'},
        {"guest", required_argument, 0, 'g'},
        {"runs", required_argument, 0, 'r'},
        {"count", required_argument, 0, 'n'},
        {"concurrency", required_argument, 0, 'c'},
        {"mem", required_argument, 0, 'M'},
        {"out", required_argument, 0, 'o'},
        {"dir", required_argument, 0, 'd'},
        {"prebuild-mem", required_argument, 0, 'p'},
        {"settle-ms", required_argument, 0, 's'},
        {"launch", required_argument, 0, 'l'},
        {"pool", required_argument, 0, 'P'},
        {"invoke", required_argument, 0, 'I'},
        {"uffd-handler", required_argument, 0, 'U'},
        {0, 0, 0, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'e':
            opt.ember = optarg;
            break;
        case 'g':
            opt.guest = optarg;
            break;
        case 'r':
            opt.runs = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'n':
            opt.count = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'c':
            opt.concurrency = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'M':
            opt.mem_mib = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'o':
            opt.out = optarg;
            break;
        case 'p':
            opt.prebuild = optarg;
            break;
        case 's':
            opt.settle_ms = (unsigned)strtoul(optarg, NULL, 10) % 1000;
            break;
        case 'l':
            opt.launch = optarg;
            break;
        case 'P':
            opt.pool = optarg;
            break;
        case 'I':
            opt.invoke = optarg;
            break;
        case 'U':
            opt.uffd = optarg;
            break;
        case 'd':
            opt.dir = optarg;
            if (strlen(opt.dir) > 32) {
                fprintf(stderr, "snapshot_bench: --dir: at most 32 characters (socket paths)\n");
                return 2;
            }
            break;
        default:
            fprintf(stderr,
                    "usage: ember-bench-snapshot --ember EMBER --guest faas-echo [--runs N] "
                    "[--count N] [--concurrency N] [--mem MIB] [--out FILE] [--dir DIR] "
                    "[--prebuild-mem MIB|none] [--settle-ms MS] [--launch run,api,server] [--pool "
                    "N] [--invoke yes|no|both] [--uffd-handler PATH]\n");
            return 2;
        }
    }
    if (strcmp(opt.invoke, "yes") && strcmp(opt.invoke, "no") && strcmp(opt.invoke, "both")) {
        fprintf(stderr, "snapshot_bench: --invoke: yes, no or both, not '%s'\n", opt.invoke);
        return 2;
    }
    if (!opt.ember || !opt.guest || opt.concurrency == 0 || opt.concurrency > 64) {
        fprintf(stderr,
                "snapshot_bench: --ember and --guest are required, --concurrency is 1-64\n");
        return 2;
    }
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        fprintf(stderr, "SKIPPED: snapshot_bench needs /dev/kvm\n");
        return EXIT_SKIPPED;
    }
    setpgid(0, 0);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    snprintf(run_dir, sizeof(run_dir), "%.32s/ember-snapbench-%d", opt.dir, (int)getpid());
    if (mkdir(run_dir, 0700) != 0)
        die("%s: %s", run_dir, strerror(errno));
    json_t *root = json_object();
    json_object_set_new(root, "benchmark", json_string("snapshot"));
    json_object_set_new(root, "guest", json_string(opt.guest));
    json_object_set_new(root, "mem_mib", json_integer(opt.mem_mib));
    json_object_set_new(root, "dir", json_string(opt.dir));
    json_object_set_new(root, "prebuild_mem", json_string(opt.prebuild ? opt.prebuild : "mem"));
    if (opt.runs)
        json_object_set_new(root, "latency", latency());
    bool inv_yes = strcmp(opt.invoke, "no") != 0, inv_no = strcmp(opt.invoke, "yes") != 0;
    if (opt.count && inv_yes) {
        if (launch_wanted("run"))
            json_object_set_new(root, "density", density(L_RUN, true));
        if (launch_wanted("api"))
            json_object_set_new(root, "density_api", density(L_API, true));
        if (launch_wanted("server"))
            json_object_set_new(root, "density_server", density(L_SERVER, true));
    }
    /* Restores alone: the same launchers, the VMs not invoked (a restore
     * by `ember run` has no answer to wait for). */
    if (opt.count && inv_no && launch_wanted("api"))
        json_object_set_new(root, "density_api_restore_only", density(L_API, false));
    if (opt.count && inv_no && launch_wanted("server"))
        json_object_set_new(root, "density_server_restore_only", density(L_SERVER, false));
    char *s = json_dumps(root, JSON_INDENT(2));
    FILE *out = opt.out ? fopen(opt.out, "w") : stdout;
    if (!out || !s)
        die("writing the results failed");
    fprintf(out, "%s\n", s);
    if (opt.out)
        fclose(out);
    free(s);
    json_decref(root);
    cleanup();
    return 0;
}
