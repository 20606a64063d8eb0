/* test_restore_server.c: `ember restore-server` (cmd/restore_server.h) with
 * real guests: a snapshot of tests/guests/snap_test's function, a server on
 * it, VM processes forked on request.
 *
 * Each child serves its own requests with its own random bytes under its own
 * seccomp filters; a child that cannot restore is reported to whoever asked,
 * with its reason, and the server goes on; hostile requests get their exact
 * fault_message; stopping the server stops its VMs and removes its socket.
 * No timing assertions: waits have generous caps.
 */
#include <criterion/criterion.h>
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
#include "tests/integration/need_kvm.h"
#include "tests/integration/proc.h"

#define CAP_S   120
#define TIMEOUT 30000 /* ms per invocation, far above a normal one */
#define GUEST   GUEST_DIR "/snap_test"
#define NVMS    8

extern char **environ;

static char dir[64], snap[128], sock[128], err_path[128];
static pid_t server = -1;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ember-rsrv-%d", getpid());
    mkdir(dir, 0700);
    snprintf(snap, sizeof(snap), "%s/fn", dir);
    snprintf(sock, sizeof(sock), "%s/srv.sock", dir);
    snprintf(err_path, sizeof(err_path), "%s/srv.err", dir);
}

static void teardown(void)
{
    char cmd[256];

    if (server > 0 && kill(server, SIGTERM) == 0)
        waitpid(server, NULL, 0);
    server = -1;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(restore_server, .init = setup, .fini = teardown);

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (strlen(path) >= sizeof(sa.sun_path))
        return -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* A snapshot of snap_test's function (vsock) in snap, and a server on it
 * with --pool pool (NULL: its default). */
static void start_server_pool(const char *pool)
{
    char uds[160];
    struct spawn_result r;
    posix_spawn_file_actions_t fa;

    snprintf(uds, sizeof(uds), "%s/orig.sock", dir);
    cr_assert_eq(mkdir(snap, 0700), 0);
    char *mk[] = {EMBER_BIN, "run", "--mem", "16", "--snapshot-on-ready", snap, "--vsock",
                  uds,       GUEST, "serve", NULL};
    cr_assert_eq(spawn_run(mk, CAP_S, &r), 0);
    cr_assert_eq(r.status, 0, "snapshot run: status %d\n%s%s", r.status, r.out, r.err);
    spawn_free(&r);
    unlink(uds);

    char *argv[] = {EMBER_BIN, "restore-server",       "--sock",     sock, "--snapshot",
                    snap,      pool ? "--pool" : NULL, (char *)pool, NULL};
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_eq(posix_spawn(&server, EMBER_BIN, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    /* Ready once its log says so (a probe connection would be a request). */
    double t0 = now_s();
    for (;;) {
        char buf[512] = "";
        FILE *f = fopen(err_path, "r");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = '\0';
        if (strstr(buf, "ready on "))
            break;
        cr_assert(waitpid(server, NULL, WNOHANG) == 0, "the server ended: %s", buf);
        cr_assert(now_s() - t0 < 30, "the server did not come up: %s", buf);
        usleep(10000);
    }
}

static void start_server(void)
{
    start_server_pool(NULL);
}

/* Sends body (as is) and returns the server's answer line (malloc'd). */
static char *ask(const char *body, size_t len)
{
    int fd = connect_to(sock);

    signal(SIGPIPE, SIG_IGN); /* a request the server stopped reading */
    char buf[2048];
    size_t got = 0;

    cr_assert(fd >= 0, "connect %s: %s", sock, strerror(errno));
    cr_assert_eq(write(fd, body, len), (ssize_t)len);
    shutdown(fd, SHUT_WR);
    while (got + 1 < sizeof(buf)) {
        ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return strdup(buf);
}

static char *ask_str(const char *body)
{
    return ask(body, strlen(body));
}

static pid_t pid_of(const char *answer)
{
    const char *p = strstr(answer, "{\"pid\":");

    cr_assert(p, "no pid in %s", answer);
    return (pid_t)atoi(p + 7);
}

static char *call(const char *uds, const char *req)
{
    char err[256];
    void *resp = NULL;
    size_t resp_len = 0, cap = 0;
    int fd = ember_invoke_connect_wait(uds, EMBER_FAAS_PORT, TIMEOUT, err, sizeof(err));

    cr_assert(fd >= 0, "connect %s: %s", uds, err);
    int rc =
        ember_invoke(fd, req, strlen(req), &resp, &resp_len, &cap, 0, TIMEOUT, err, sizeof(err));
    cr_assert_eq(rc, EMBER_INVOKE_OK, "%s: %s %s", req, ember_invoke_strerror(rc), err);
    close(fd);
    char *s = calloc(1, resp_len + 1);
    memcpy(s, resp, resp_len);
    free(resp);
    return s;
}

/* How many of pid's threads run under a seccomp filter (Seccomp: 2 in
 * /proc/PID/task/TID/status), with *nthreads its threads. KVM's own worker
 * (kvm-nx-lpage-recovery, a kernel task Linux lists among the VM's threads,
 * made at the first KVM_RUN: before the filters when the VM was built ahead)
 * never runs user code and is not counted. */
static int filtered_threads(pid_t pid, int *nthreads)
{
    char cmd[200], line[128];
    int filtered = 0;
    bool kvm_task = false;

    *nthreads = 0;
    snprintf(cmd, sizeof(cmd), "cat /proc/%d/task/*/status 2>/dev/null", (int)pid);
    FILE *f = popen(cmd, "r");
    cr_assert(f);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "Name:", 5) == 0)
            kvm_task = strstr(line, "kvm-") != NULL;
        if (strncmp(line, "Seccomp:", 8) == 0 && !kvm_task) {
            (*nthreads)++;
            filtered += atoi(line + 8) == 2;
        }
    }
    pclose(f);
    return *nthreads ? filtered : -1;
}

static bool gone(pid_t pid)
{
    double t0 = now_s();

    while (kill(pid, 0) == 0) {
        if (now_s() - t0 > 30)
            return false;
        usleep(10000);
    }
    return errno == ESRCH;
}

Test(restore_server, children_serve_with_their_own_random_bytes_under_their_own_filters)
{
    static char rands[NVMS][65];
    char uds[NVMS][128], req[1200];
    pid_t pids[NVMS];
    int nthreads;

    need_kvm();
    start_server();
    for (int i = 0; i < NVMS; i++) {
        snprintf(uds[i], sizeof(uds[i]), "%s/vm%d.sock", dir, i);
        snprintf(req, sizeof(req), "{\"vsock_uds_path\": \"%s\", \"id\": \"vm-%d\"}\n", uds[i], i);
        char *a = ask_str(req);
        char want[32];
        snprintf(want, sizeof(want), ",\"id\":\"vm-%d\"}\n", i);
        cr_assert(strstr(a, want), "%s", a);
        pids[i] = pid_of(a);
        free(a);
    }
    for (int i = 0; i < NVMS; i++) {
        char *r = call(uds[i], "rand");
        cr_assert_eq(strlen(r), 64, "%s", r);
        memcpy(rands[i], r, 65);
        free(r);
        r = call(uds[i], "gen");
        cr_assert_str_eq(r, "1");
        free(r);
        /* The main thread and the vCPU thread, each under its filter. */
        int filtered = filtered_threads(pids[i], &nthreads);
#ifdef EMBER_SANITIZE_BUILD
        /* A sanitizer build of ember runs unfiltered (seccomp_filter.c). */
        if (i == 0)
            fprintf(stderr, "NOTE: sanitizer build: no seccomp filters to check in the VMs\n");
        cr_assert(nthreads == 2 && filtered == 0, "VM %d: %d of %d threads filtered", i, filtered,
                  nthreads);
#else
        cr_assert(nthreads == 2 && filtered == 2, "VM %d: %d of %d threads filtered", i, filtered,
                  nthreads);
#endif
    }
    for (int i = 0; i < NVMS; i++)
        for (int j = i + 1; j < NVMS; j++)
            cr_assert_str_neq(rands[i], rands[j], "VMs %d and %d drew the same bytes", i, j);
    /* The server itself runs no guest and no filter. */
    cr_assert_eq(filtered_threads(server, &nthreads), 0);
    cr_assert_eq(nthreads, 1);

    /* One VM ended: reaped (no zombie left), the others go on. */
    cr_assert_eq(kill(pids[0], SIGKILL), 0);
    cr_assert(gone(pids[0]), "VM process %d was not reaped", (int)pids[0]);
    char *r = call(uds[1], "gen");
    cr_assert_str_eq(r, "1");
    free(r);

    /* Stopping the server stops its VMs and removes its socket. */
    int st;
    cr_assert_eq(kill(server, SIGTERM), 0);
    cr_assert_eq(waitpid(server, &st, 0), server);
    server = -1;
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    for (int i = 1; i < NVMS; i++)
        cr_assert(gone(pids[i]), "VM process %d outlived its server", (int)pids[i]);
    cr_assert_eq(access(sock, F_OK), -1);
}

Test(restore_server, a_child_that_cannot_restore_is_reported_and_the_server_goes_on)
{
    char req[512], want[600], uds[128];

    need_kvm();
    start_server();
    /* The child's own failure, in its words, to whoever asked. */
    snprintf(req, sizeof(req), "{\"vsock_uds_path\": \"%s/no/such/dir.sock\"}", dir);
    char *a = ask_str(req);
    snprintf(want, sizeof(want),
             "{\"fault_message\":\"snapshot \\\"%s/state\\\": vsock: %s/no/such/dir.sock: No such "
             "file or directory\"}\n",
             snap, dir);
    cr_assert_str_eq(a, want);
    free(a);
    snprintf(req, sizeof(req), "{\"console\": \"%s/no/such/console\"}", dir);
    a = ask_str(req);
    snprintf(want, sizeof(want),
             "{\"fault_message\":\"console %s/no/such/console: No such file or directory\"}\n",
             dir);
    cr_assert_str_eq(a, want);
    free(a);
    /* Two VMs on one socket path: the second says why it cannot. */
    snprintf(uds, sizeof(uds), "%s/twice.sock", dir);
    snprintf(req, sizeof(req), "{\"vsock_uds_path\": \"%s\"}", uds);
    a = ask_str(req);
    pid_t first = pid_of(a);
    free(a);
    a = ask_str(req);
    cr_assert(strstr(a, "{\"fault_message\":\"snapshot ") && strstr(a, ": Address already in use"),
              "%s", a);
    free(a);
    /* The server and the first VM are unharmed; a new request works. */
    char *r = call(uds, "gen");
    cr_assert_str_eq(r, "1");
    free(r);
    cr_assert_eq(kill(first, 0), 0);
    snprintf(uds, sizeof(uds), "%s/after.sock", dir);
    snprintf(req, sizeof(req), "{\"vsock_uds_path\": \"%s\"}", uds);
    a = ask_str(req);
    pid_of(a);
    free(a);
    r = call(uds, "gen");
    cr_assert_str_eq(r, "1");
    free(r);
}

Test(restore_server, hostile_requests_get_their_fault_message)
{
    static const struct {
        const char *body, *want;
    } cases[] = {
        {"nope\n", "request: not JSON: '[' or '{' expected near 'nope'"},
        {"[1]\n", "request: not a JSON object"},
        {"{\"vsock_uds_path\": 7}\n", "request: \\\"vsock_uds_path\\\" must be a non-empty string"},
        {"{\"console\": \"\"}\n", "request: \\\"console\\\" must be a non-empty string"},
        {"{\"snapshot_path\": \"/etc\"}\n", "request: unknown field \\\"snapshot_path\\\""},
        {"{\"id\": \"a b\"}\n", "request: \\\"id\\\" must be 1 to 64 of A-Z, a-z, 0-9, - and _"},
        {"{\"id\": \"x\", \"id\": \"y\"}\n", NULL}, /* duplicates: jansson's words */
        {"\n", "request: empty"},
    };
    char want[700], big[5000];

    need_kvm();
    start_server();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *a = ask_str(cases[i].body);
        if (cases[i].want) {
            snprintf(want, sizeof(want), "{\"fault_message\":\"%s\"}\n", cases[i].want);
            cr_assert_str_eq(a, want, "request %zu", i);
        } else {
            cr_assert(strstr(a, "{\"fault_message\":\"request: not JSON: duplicate object key"),
                      "%s", a);
        }
        free(a);
    }
    /* Too long: a vsock path that cannot be a socket address, a request
     * beyond the limit. */
    memset(big, 'a', sizeof(big));
    memcpy(big, "{\"vsock_uds_path\": \"/", 21);
    memcpy(big + 130, "\"}\n", 4);
    char *a = ask_str(big);
    cr_assert_str_eq(a, "{\"fault_message\":\"request: \\\"vsock_uds_path\\\" is longer than 107 "
                        "bytes\"}\n");
    free(a);
    /* Beyond the limit with no newline; and a newline ends a request: what
     * follows it is not read as part of it (whichever process reads it). */
    static char huge[5000];
    memset(huge, 'a', sizeof(huge));
    huge[0] = '{';
    a = ask(huge, sizeof(huge));
    cr_assert_str_eq(a, "{\"fault_message\":\"request: larger than 4096 bytes\"}\n");
    free(a);
    a = ask(big, sizeof(big));
    cr_assert_str_eq(a, "{\"fault_message\":\"request: \\\"vsock_uds_path\\\" is longer than 107 "
                        "bytes\"}\n");
    free(a);
    /* Binary junk with a NUL in it. */
    a = ask("{\"id\": \"a\0b\"}\n", 14);
    cr_assert(strstr(a, "{\"fault_message\":\"request: "), "%s", a);
    free(a);
    /* Still serving. */
    char req[300], uds[128];
    snprintf(uds, sizeof(uds), "%s/ok.sock", dir);
    snprintf(req, sizeof(req), "{\"vsock_uds_path\": \"%s\"}", uds);
    a = ask_str(req);
    pid_of(a);
    free(a);
    char *r = call(uds, "gen");
    cr_assert_str_eq(r, "1");
    free(r);
}

Test(restore_server, bad_command_lines_and_snapshots_are_refused)
{
    struct spawn_result r;
    char state[160], want[400];

    need_kvm();
    char *none[] = {EMBER_BIN, "restore-server", "--sock", sock, NULL};
    cr_assert_eq(spawn_run(none, CAP_S, &r), 0);
    cr_assert_eq(r.status, 153, "%d", r.status);
    cr_assert(strstr(r.err, "ember: restore-server: --sock and --snapshot are required\n"), "%s",
              r.err);
    spawn_free(&r);
    snprintf(state, sizeof(state), "%s/missing", dir);
    char *missing[] = {EMBER_BIN, "restore-server", "--sock", sock, "--snapshot", state, NULL};
    cr_assert_eq(spawn_run(missing, CAP_S, &r), 0);
    cr_assert_eq(r.status, 152, "%d", r.status);
    snprintf(want, sizeof(want), "ember: snapshot \"%s\": No such file or directory\n", state);
    cr_assert_str_eq(r.err, want);
    spawn_free(&r);
    cr_assert_eq(access(sock, F_OK), -1);
}

/* The server's children now (/proc/PID/task/PID/children). */
static int server_children(pid_t *out, int max)
{
    char path[64];
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)server, (int)server);
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s: %s", path, strerror(errno));
    while (n < max && fscanf(f, "%d", &out[n]) == 1)
        n++;
    fclose(f);
    return n;
}

Test(restore_server, without_a_pool_each_request_forks_its_vm_process)
{
    char req[300], uds[128];
    pid_t kids[8];

    need_kvm();
    start_server_pool("0");
    cr_assert_eq(server_children(kids, 8), 0, "--pool 0 forked ahead");
    for (int i = 0; i < 3; i++) {
        snprintf(uds, sizeof(uds), "%s/np%d.sock", dir, i);
        snprintf(req, sizeof(req), "{\"vsock_uds_path\": \"%s\"}", uds);
        char *a = ask_str(req);
        pid_of(a);
        free(a);
        char *r = call(uds, "gen");
        cr_assert_str_eq(r, "1");
        free(r);
    }
    cr_assert_eq(server_children(kids, 8), 3);
}

Test(restore_server, a_pool_child_killed_while_it_waits_is_replaced)
{
    char req[300], uds[128];
    pid_t kids[8];
    double t0 = now_s();

    need_kvm();
    start_server_pool("2");
    while (server_children(kids, 8) < 2) {
        cr_assert(now_s() - t0 < 30, "the pool did not fill");
        usleep(10000);
    }
    cr_assert_eq(kill(kids[0], SIGKILL), 0);
    cr_assert(gone(kids[0]), "pool child %d was not reaped", (int)kids[0]);
    for (int i = 0; i < 4; i++) {
        snprintf(uds, sizeof(uds), "%s/pk%d.sock", dir, i);
        snprintf(req, sizeof(req), "{\"vsock_uds_path\": \"%s\"}", uds);
        char *a = ask_str(req);
        cr_assert_neq(pid_of(a), kids[0]);
        free(a);
        char *r = call(uds, "gen");
        cr_assert_str_eq(r, "1");
        free(r);
    }
    /* Refilled: 4 VMs and 2 waiting. */
    t0 = now_s();
    while (server_children(kids, 8) < 6) {
        cr_assert(now_s() - t0 < 30, "the pool was not refilled");
        usleep(10000);
    }
}

Test(restore_server, a_bad_pool_size_is_refused)
{
    struct spawn_result r;

    char *argv[] = {EMBER_BIN, "restore-server", "--sock", sock, "--snapshot",
                    snap,      "--pool",         "65",     NULL};
    cr_assert_eq(spawn_run(argv, CAP_S, &r), 0);
    cr_assert_eq(r.status, 153, "%d", r.status);
    cr_assert(strstr(r.err, "ember: restore-server: --pool 65: a count from 0 to 64\n"), "%s",
              r.err);
    spawn_free(&r);
}

/* One HTTP request on the API socket path: the status, the body in out. */
static int http(const char *path_sock, const char *method, const char *path, const char *body,
                char *out, size_t cap)
{
    char req[1024];
    size_t got = 0;
    int fd = connect_to(path_sock);

    cr_assert(fd >= 0, "connect %s: %s", path_sock, strerror(errno));
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     method, path, body ? strlen(body) : 0, body ? body : "");
    cr_assert_eq(write(fd, req, (size_t)n), n);
    while (got + 1 < cap) {
        ssize_t r = read(fd, out + got, cap - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    out[got] = '\0';
    cr_assert(got > 12 && strncmp(out, "HTTP/1.1 ", 9) == 0, "%s", out);
    return atoi(out + 9);
}

Test(restore_server, a_child_with_an_api_socket_is_driven_by_the_api)
{
    char req[600], uds[128], api[128], log[128], resp[4096];

    need_kvm();
    start_server();
    snprintf(uds, sizeof(uds), "%s/api-vm.sock", dir);
    snprintf(api, sizeof(api), "%s/api-vm.api", dir);
    snprintf(log, sizeof(log), "%s/api-vm.log", dir);
    snprintf(req, sizeof(req),
             "{\"vsock_uds_path\": \"%s\", \"api_sock\": \"%s\", \"id\": \"fn-7\", \"console\": "
             "\"%s\"}",
             uds, api, log);
    char *a = ask_str(req);
    cr_assert_str_eq(a + strcspn(a, ","), ",\"id\":\"fn-7\"}\n", "%s", a);
    pid_t pid = pid_of(a);
    free(a);
    char *r = call(uds, "gen");
    cr_assert_str_eq(r, "1");
    free(r);
    /* The existing API, on the child's own socket, with its id. */
    cr_assert_eq(http(api, "GET", "/", NULL, resp, sizeof(resp)), 200, "%s", resp);
    cr_assert(strstr(resp, "\"id\":\"fn-7\"") && strstr(resp, "\"state\":\"Running\""), "%s", resp);
    cr_assert_eq(http(api, "PATCH", "/vm", "{\"state\":\"Paused\"}", resp, sizeof(resp)), 204, "%s",
                 resp);
    cr_assert_eq(http(api, "GET", "/", NULL, resp, sizeof(resp)), 200);
    cr_assert(strstr(resp, "\"state\":\"Paused\""), "%s", resp);
    cr_assert_eq(
        http(api, "PUT", "/snapshot/load", "{\"snapshot_path\": \"/x\"}", resp, sizeof(resp)), 400,
        "%s", resp);
    cr_assert_eq(http(api, "PATCH", "/vm", "{\"state\":\"Resumed\"}", resp, sizeof(resp)), 204,
                 "%s", resp);
    r = call(uds, "gen");
    cr_assert_str_eq(r, "1");
    free(r);
    /* Its log went to its console, with its id. */
    FILE *f = fopen(log, "r");
    cr_assert(f);
    size_t n = fread(resp, 1, sizeof(resp) - 1, f);
    fclose(f);
    resp[n] = '\0';
    cr_assert(strstr(resp, "[fn-7:main] microVM restored from "), "%s", resp);
    /* A failing API child says why, and the server goes on. */
    snprintf(req, sizeof(req), "{\"vsock_uds_path\": \"%s\", \"api_sock\": \"%s/2.api\"}", uds,
             dir);
    a = ask_str(req);
    cr_assert(strstr(a, "{\"fault_message\":\"Load snapshot error: snapshot ") &&
                  strstr(a, ": Address already in use\"}"),
              "%s", a);
    free(a);
    cr_assert_eq(kill(pid, 0), 0);
}

static bool in_poll(pid_t pid)
{
    char path[64], w[128] = "";

    snprintf(path, sizeof(path), "/proc/%d/wchan", (int)pid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(w, sizeof(w), f))
            w[0] = '\0';
        fclose(f);
    }
    return strstr(w, "poll") != NULL;
}

/* What pid's descriptors point to, as one string (malloc'd). */
static char *fd_targets(pid_t pid)
{
    char cmd[128], *out = calloc(1, 8192);
    size_t got = 0;

    snprintf(cmd, sizeof(cmd), "ls -l /proc/%d/fd 2>/dev/null | awk '{print $NF}'", (int)pid);
    FILE *f = popen(cmd, "r");
    cr_assert(f && out);
    got = fread(out, 1, 8191, f);
    out[got] = '\0';
    pclose(f);
    return out;
}

Test(restore_server, a_child_that_dies_before_answering_is_reported)
{
    pid_t kids[8];
    char buf[512];
    size_t got = 0;
    double t0 = now_s();

    need_kvm();
    start_server_pool("2");
    while (server_children(kids, 8) < 2) {
        cr_assert(now_s() - t0 < 30, "the pool did not fill");
        usleep(10000);
    }
    /* Both ready: polling the listening socket, they (not the server)
     * accept. */
    for (int k = 0; k < 2; k++)
        while (!in_poll(kids[k])) {
            cr_assert(now_s() - t0 < 30, "pool child %d never got ready", (int)kids[k]);
            usleep(10000);
        }
    char *before[2] = {fd_targets(kids[0]), fd_targets(kids[1])};
    int fd = connect_to(sock);
    cr_assert(fd >= 0);
    /* One of them has accepted and told the server (then it closes the
     * listening socket: its descriptors change). */
    for (bool changed = false; !changed;) {
        for (int k = 0; k < 2; k++) {
            char *now = fd_targets(kids[k]);
            changed |= strcmp(now, before[k]) != 0;
            free(now);
        }
        cr_assert(now_s() - t0 < 30, "no pool child accepted");
        usleep(10000);
    }
    free(before[0]);
    free(before[1]);
    cr_assert_eq(kill(kids[0], SIGKILL), 0);
    cr_assert_eq(kill(kids[1], SIGKILL), 0);
    while (got + 1 < sizeof(buf)) {
        ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    cr_assert(strstr(buf, "{\"fault_message\":\"the VM process ") &&
                  strstr(buf, " ended before its VM ran\"}\n"),
              "%s", buf);
    /* And the server goes on. */
    char req[300], uds[128];
    snprintf(uds, sizeof(uds), "%s/after-kill.sock", dir);
    snprintf(req, sizeof(req), "{\"vsock_uds_path\": \"%s\"}", uds);
    char *a = ask_str(req);
    pid_of(a);
    free(a);
    char *r = call(uds, "gen");
    cr_assert_str_eq(r, "1");
    free(r);
}
