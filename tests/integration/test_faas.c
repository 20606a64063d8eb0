/* test_faas.c: the guest SDK's AF_VSOCK sockets and the function runtime
 * (ember_faas_serve) in real guests behind ember's vsock bridge, driven
 * from the host through the invoke library (monitor/invoke.h).
 *
 * Guests: tests/guests/faas_test (an echo with commands: exit, error, big
 * reply, guest-initiated connect, stats), tests/guests/vsock_api (the socket
 * calls' results and errnos), the examples faas-echo and faas-wordcount.
 * No timing assertions: every wait has a generous cap so that a hang fails
 * instead of blocking the suite.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/invoke.h"
#include "tests/integration/need_kvm.h"
#include "tests/integration/proc.h"

#define CAP_S     120
#define TIMEOUT   30000 /* ms, per invocation: far above any normal one */
#define MAX_CONNS 1023u /* the device's default connection limit (virtio/vsock_device.h) */

extern char **environ;

/* An ember running in the background, its output in files. */
struct vm {
    pid_t pid;
    char uds[108], out[128], err[128];
};

/* The VMs a test started, killed by the suite's fini even when an
 * assertion ends the test early. */
static pid_t started[8];
static int nstarted;

static void kill_started(void)
{
    for (int i = 0; i < nstarted; i++) {
        if (kill(started[i], SIGKILL) == 0)
            waitpid(started[i], NULL, 0);
    }
    nstarted = 0;
}

TestSuite(faas, .fini = kill_started);

/* A reaped pid may be reused: never signal it again. */
static void forget(pid_t pid)
{
    for (int i = 0; i < nstarted; i++)
        if (started[i] == pid)
            started[i] = started[--nstarted];
}

static void vm_start(struct vm *vm, const char *name, const char *mem, char *const guest_argv[])
{
    posix_spawn_file_actions_t fa;
    char *argv[24] = {EMBER_BIN, "run", "--vsock", vm->uds};
    int n = 4;

    snprintf(vm->uds, sizeof(vm->uds), "/tmp/ember-faas-%d-%s.sock", getpid(), name);
    snprintf(vm->out, sizeof(vm->out), "/tmp/ember-faas-%d-%s.out", getpid(), name);
    snprintf(vm->err, sizeof(vm->err), "/tmp/ember-faas-%d-%s.err", getpid(), name);
    unlink(vm->uds);
    if (mem) {
        argv[n++] = "--mem";
        argv[n++] = (char *)mem;
    }
    for (int i = 0; guest_argv[i] && n < 23; i++)
        argv[n++] = guest_argv[i];
    argv[n] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, vm->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, vm->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_eq(posix_spawn(&vm->pid, EMBER_BIN, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    if (nstarted < 8)
        started[nstarted++] = vm->pid;
}

/* Waits for ember to end (killing it after cap_s); returns its status, -1
 * if it had to be killed. */
static int vm_wait(struct vm *vm, int cap_s)
{
    int rc = proc_wait(vm->pid, cap_s);

    forget(vm->pid);
    return rc;
}

static void vm_stop(struct vm *vm)
{
    kill(vm->pid, SIGKILL);
    waitpid(vm->pid, NULL, 0);
    forget(vm->pid);
    unlink(vm->out);
    unlink(vm->err);
    unlink(vm->uds);
}

static int conn(struct vm *vm)
{
    char err[256];
    int fd = ember_invoke_connect_wait(vm->uds, EMBER_FAAS_PORT, TIMEOUT, err, sizeof(err));

    cr_assert(fd >= 0, "connect: %s\nguest: %s\nember: %s", err, proc_slurp(vm->out),
              proc_slurp(vm->err));
    return fd;
}

/* One invocation that must succeed; the response is in *resp. */
static void call_ok(int fd, const void *req, size_t len, void **resp, size_t *resp_len, size_t *cap)
{
    char err[256];
    int rc = ember_invoke(fd, req, len, resp, resp_len, cap, 0, TIMEOUT, err, sizeof(err));

    cr_assert_eq(rc, EMBER_INVOKE_OK, "invoke (%zu bytes): %d %s %s", len, rc,
                 ember_invoke_strerror(rc), rc < 0 ? err : "");
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

static void sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned int len = 32;

    cr_assert_eq(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL), 1);
}

Test(faas, ten_thousand_sequential_invocations)
{
    struct vm vm;
    void *resp = NULL;
    size_t resp_len = 0, cap = 0;
    char req[64];

    need_kvm();
    vm_start(&vm, "seq", NULL, (char *[]){GUEST_DIR "/faas_test", NULL});
    int fd = conn(&vm);
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(req, sizeof(req), "invocation %d", i);
        call_ok(fd, req, (size_t)n, &resp, &resp_len, &cap);
        cr_assert(resp_len == (size_t)n && memcmp(resp, req, (size_t)n) == 0,
                  "invocation %d: wrong response", i);
    }
    close(fd);
    /* And a fresh connection for each of 200 more. */
    for (int i = 0; i < 200; i++) {
        fd = conn(&vm);
        call_ok(fd, "x", 1, &resp, &resp_len, &cap);
        cr_assert(resp_len == 1 && *(char *)resp == 'x');
        close(fd);
    }
    fd = conn(&vm);
    call_ok(fd, "!stats", 6, &resp, &resp_len, &cap);
    cr_expect(resp_len > 0 &&
                  strncmp(resp, "invocations 10200 errors 0 connections 202", resp_len) == 0,
              "stats: %.*s", (int)resp_len, (char *)resp);
    close(fd);
    free(resp);
    vm_stop(&vm);
}

Test(faas, payloads_0_to_4mib_by_hash)
{
    /* Around the packet and buffer edges: the 44-byte header, 4 KiB pages,
     * the driver's 16 KiB slots, the 16 KiB first ring, 64 KiB packets, the
     * 256 KiB credit, then big bodies. */
    static const size_t sizes[] = {
        0,      1,      23,     24,      25,      4095,    4096,          4097,
        16319,  16320,  16321,  16384,   65535,   65536,   65537,         131072,
        262143, 262144, 262145, 1000000, 1 << 20, 3 << 20, (4 << 20) - 1, 4 << 20};
    struct vm vm;
    void *resp = NULL;
    size_t resp_len = 0, cap = 0;
    uint8_t *req = malloc(4 << 20);
    unsigned char want[32], got[32];

    need_kvm();
    vm_start(&vm, "sizes", NULL, (char *[]){GUEST_DIR "/faas_test", NULL});
    int fd = conn(&vm);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        fill(req, sizes[i], (uint32_t)i + 1);
        req[0] = sizes[i] ? 'p' : req[0]; /* never a "!" command */
        call_ok(fd, req, sizes[i], &resp, &resp_len, &cap);
        cr_assert_eq(resp_len, sizes[i], "size %zu: got %zu bytes", sizes[i], resp_len);
        sha256(req, sizes[i], want);
        sha256(resp, resp_len, got);
        cr_assert(memcmp(want, got, 32) == 0, "size %zu: the response's SHA-256 differs", sizes[i]);
    }
    close(fd);
    free(req);
    free(resp);
    vm_stop(&vm);
}

struct worker {
    struct vm *vm;
    int id, fd, rounds, failures;
};

static void *worker_main(void *p)
{
    struct worker *w = p;
    void *resp = NULL;
    size_t resp_len = 0, cap = 0;
    char err[256];
    uint8_t req[3000];

    for (int i = 0; i < w->rounds; i++) {
        size_t len = 1 + (size_t)((w->id * 131 + i * 17) % (int)sizeof(req));
        fill(req, len, (uint32_t)(w->id * 100000 + i));
        req[0] = 'w';
        int rc =
            ember_invoke(w->fd, req, len, &resp, &resp_len, &cap, 0, TIMEOUT, err, sizeof(err));
        if (rc != EMBER_INVOKE_OK || resp_len != len || memcmp(resp, req, len) != 0)
            w->failures++;
    }
    free(resp);
    return NULL;
}

Test(faas, sixty_four_concurrent_connections)
{
    struct vm vm;
    struct worker w[64];
    pthread_t t[64];

    need_kvm();
    vm_start(&vm, "conc", NULL, (char *[]){GUEST_DIR "/faas_test", NULL});
    /* All 64 open at once before any request, then all at work together. */
    for (int i = 0; i < 64; i++)
        w[i] = (struct worker){.vm = &vm, .id = i, .fd = conn(&vm), .rounds = 200};
    for (int i = 0; i < 64; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    int failures = 0;
    for (int i = 0; i < 64; i++) {
        pthread_join(t[i], NULL);
        failures += w[i].failures;
        close(w[i].fd);
    }
    cr_expect_eq(failures, 0, "%d of %d invocations failed", failures, 64 * 200);
    vm_stop(&vm);
}

/* A host listener at <uds>_<port> that answers whatever it gets with
 * "pong:" + the data, once the guest has shut down writing. */
struct listener {
    char path[128];
    int fd;
    char got[256];
    pthread_t t;
};

static void *listener_main(void *p)
{
    struct listener *l = p;
    int c = accept(l->fd, NULL, NULL);
    size_t n = 0;
    ssize_t r;

    if (c < 0)
        return NULL;
    while (n < sizeof(l->got) - 1 && (r = read(c, l->got + n, sizeof(l->got) - 1 - n)) > 0)
        n += (size_t)r;
    l->got[n] = '\0';
    char out[300];
    int m = snprintf(out, sizeof(out), "pong:%s", l->got);
    if (write(c, out, (size_t)m) != m)
        perror("listener write");
    close(c);
    return NULL;
}

static void listener_start(struct listener *l, const char *uds, unsigned port)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    snprintf(l->path, sizeof(l->path), "%s_%u", uds, port);
    unlink(l->path);
    memcpy(sa.sun_path, l->path, strlen(l->path) + 1);
    l->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert(l->fd >= 0);
    cr_assert_eq(bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(l->fd, 4), 0);
    cr_assert_eq(pthread_create(&l->t, NULL, listener_main, l), 0);
}

Test(faas, guest_connects_to_a_host_listener)
{
    struct vm vm;
    struct listener l;
    void *resp = NULL;
    size_t resp_len = 0, cap = 0;
    char err[256];

    need_kvm();
    vm_start(&vm, "g2h", NULL, (char *[]){GUEST_DIR "/faas_test", NULL});
    listener_start(&l, vm.uds, 6000);
    int fd = conn(&vm);
    static const char req[] = "!connect 6000 hello from the guest";
    call_ok(fd, req, sizeof(req) - 1, &resp, &resp_len, &cap);
    cr_expect(resp_len == 32 && memcmp(resp, "reply: pong:hello from the guest", 32) == 0,
              "response: %.*s", (int)resp_len, (char *)resp);
    pthread_join(l.t, NULL);
    cr_expect_str_eq(l.got, "hello from the guest");
    close(l.fd);
    unlink(l.path);

    /* Nobody listens on 6001: the guest's connect() fails with ECONNRESET,
     * which the function reports. */
    static const char req2[] = "!connect 6001 anyone?";
    int rc = ember_invoke(fd, req2, sizeof(req2) - 1, &resp, &resp_len, &cap, 0, TIMEOUT, err,
                          sizeof(err));
    cr_expect_eq(rc, EMBER_FAAS_S_ERROR, "rc %d", rc);
    cr_expect(resp_len > 0 && strstr(resp, "Connection reset by peer") != NULL, "message: %.*s",
              (int)resp_len, (char *)resp);
    close(fd);
    free(resp);
    vm_stop(&vm);
}

Test(faas, socket_calls_follow_linux)
{
    struct vm vm;
    char port_path[128];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int cfd[8], nc = 0;
    bool ended = false;

    need_kvm();
    vm_start(&vm, "api", NULL, (char *[]){GUEST_DIR "/vsock_api", NULL});
    /* An echo server on port 5001 (until the peer's end of stream, then
     * close), nothing on 5002. */
    snprintf(port_path, sizeof(port_path), "%s_5001", vm.uds);
    unlink(port_path);
    memcpy(sa.sun_path, port_path, strlen(port_path) + 1);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(lfd, 8), 0);
    for (int turns = 0; turns < CAP_S * 10; turns++) {
        struct pollfd p[9];
        int n = 0;
        p[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (int i = 0; i < nc; i++)
            p[n++] = (struct pollfd){.fd = cfd[i], .events = POLLIN};
        int r = poll(p, (nfds_t)n, 100);
        if (waitpid(vm.pid, NULL, WNOHANG) == vm.pid) {
            forget(vm.pid);
            ended = true;
            break;
        }
        if (r <= 0)
            continue;
        for (int i = 0; i < nc; i++) {
            if (!(p[1 + i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[4096];
            ssize_t got = read(cfd[i], buf, sizeof(buf));
            if (got > 0 && write(cfd[i], buf, (size_t)got) == got)
                continue;
            close(cfd[i]);
            cfd[i] = -1;
        }
        int k = 0;
        for (int i = 0; i < nc; i++)
            if (cfd[i] >= 0)
                cfd[k++] = cfd[i];
        nc = k;
        if ((p[0].revents & POLLIN) && nc < 8)
            cfd[nc++] = accept(lfd, NULL, NULL);
    }
    char *out = proc_slurp(vm.out);
    cr_expect(strstr(out, " checks, 0 failed\n") != NULL, "vsock_api:\n%s\nember:\n%s", out,
              proc_slurp(vm.err));
    for (int i = 0; i < nc; i++)
        close(cfd[i]);
    close(lfd);
    unlink(port_path);
    if (!ended)
        vm_stop(&vm); /* it hung: the expectation above has failed already */
    unlink(vm.out);
    unlink(vm.err);
    unlink(vm.uds);
}

Test(faas, host_disconnects_mid_request)
{
    struct vm vm;
    void *resp = NULL;
    size_t resp_len = 0, cap = 0;
    uint8_t hdr[EMBER_FAAS_HDR_LEN];
    struct ember_faas_hdr h = {
        .magic = EMBER_FAAS_MAGIC, .version = EMBER_FAAS_VERSION, .length = 1 << 20};

    need_kvm();
    vm_start(&vm, "hostgone", NULL, (char *[]){GUEST_DIR "/faas_test", NULL});
    /* A request header promising 1 MiB, a little of the body, gone. */
    int fd = conn(&vm);
    ember_faas_encode(hdr, &h);
    cr_assert_eq(write(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
    cr_assert_eq(write(fd, "partial", 7), 7);
    close(fd);
    /* A 4 MiB echo whose response the host stops reading after 100 bytes. */
    uint8_t *big = calloc(1, 4 << 20);
    big[0] = 'b';
    h.length = 4 << 20;
    ember_faas_encode(hdr, &h);
    fd = conn(&vm);
    cr_assert_eq(write(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
    size_t sent = 0;
    while (sent < (4u << 20)) {
        ssize_t w = write(fd, big + sent, (4u << 20) - sent);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, 1000);
            continue;
        }
        cr_assert(w > 0, "write: %s", strerror(errno));
        sent += (size_t)w;
    }
    size_t got = 0;
    while (got < 100) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        cr_assert_eq(poll(&p, 1, TIMEOUT), 1);
        ssize_t r = read(fd, big, 100 - got);
        cr_assert(r > 0);
        got += (size_t)r;
    }
    close(fd);
    /* The function lives on and serves the next connection. */
    fd = conn(&vm);
    call_ok(fd, "still here", 10, &resp, &resp_len, &cap);
    cr_expect(resp_len == 10 && memcmp(resp, "still here", 10) == 0);
    call_ok(fd, "!stats", 6, &resp, &resp_len, &cap);
    cr_expect(resp_len > 0 && strncmp(resp, "invocations 2 ", 14) == 0, "%.*s", (int)resp_len,
              (char *)resp);
    close(fd);
    free(big);
    free(resp);
    vm_stop(&vm);
}

Test(faas, guest_exits_mid_request)
{
    struct vm vm;
    void *resp = NULL;
    size_t resp_len = 0, cap = 0;
    char err[256];

    need_kvm();
    vm_start(&vm, "exit", NULL, (char *[]){GUEST_DIR "/faas_test", NULL});
    int fd = conn(&vm);
    int other = conn(&vm);
    call_ok(other, "first", 5, &resp, &resp_len, &cap);
    /* The handler exits: the host must see the connection end (no hang
     * until the timeout), on both connections. */
    int rc = ember_invoke(fd, "!exit 7", 7, &resp, &resp_len, &cap, 0, TIMEOUT, err, sizeof(err));
    cr_expect_eq(rc, EMBER_INVOKE_ECLOSED, "rc %d (%s): %s", rc, ember_invoke_strerror(rc), err);
    rc = ember_invoke(other, "second", 6, &resp, &resp_len, &cap, 0, TIMEOUT, err, sizeof(err));
    cr_expect(rc == EMBER_INVOKE_ECLOSED || rc == EMBER_INVOKE_EIO, "rc %d (%s): %s", rc,
              ember_invoke_strerror(rc), err);
    cr_expect_eq(vm_wait(&vm, CAP_S), 7);
    close(fd);
    close(other);
    free(resp);
    unlink(vm.out);
    unlink(vm.err);
    unlink(vm.uds);
}

Test(faas, limits_errors_and_pipelining)
{
    struct vm vm;
    void *resp = NULL;
    size_t resp_len = 0, cap = 0;
    char err[256];
    uint8_t *big = calloc(1, 5000);

    need_kvm();
    vm_start(&vm, "limits", NULL,
             (char *[]){GUEST_DIR "/faas_test", "--max-request", "4096", NULL});
    int fd = conn(&vm);
    /* A request above the function's limit: TOO_LARGE, and the connection
     * stays usable. */
    big[0] = 'x';
    int rc = ember_invoke(fd, big, 5000, &resp, &resp_len, &cap, 0, TIMEOUT, err, sizeof(err));
    cr_expect_eq(rc, EMBER_FAAS_S_TOO_LARGE, "rc %d", rc);
    cr_expect(resp_len > 0 && strstr(resp, "above the function's limit of 4096") != NULL, "%.*s",
              (int)resp_len, (char *)resp);
    call_ok(fd, big, 4096, &resp, &resp_len, &cap);
    cr_expect_eq(resp_len, 4096);
    /* A response above the host's max_response. */
    rc = ember_invoke(fd, "!big 5000", 9, &resp, &resp_len, &cap, 1000, TIMEOUT, err, sizeof(err));
    cr_expect_eq(rc, EMBER_FAAS_S_TOO_LARGE, "rc %d", rc);
    /* The function's own error. */
    rc = ember_invoke(fd, "!error it broke", 15, &resp, &resp_len, &cap, 0, TIMEOUT, err,
                      sizeof(err));
    cr_expect_eq(rc, EMBER_FAAS_S_ERROR, "rc %d", rc);
    cr_expect(resp_len == 8 && memcmp(resp, "it broke", 8) == 0);
    close(fd);

    /* Three pipelined requests in one write; three responses in order. */
    fd = conn(&vm);
    uint8_t wire[3 * (EMBER_FAAS_HDR_LEN + 3)];
    for (int i = 0; i < 3; i++) {
        struct ember_faas_hdr h = {
            .magic = EMBER_FAAS_MAGIC, .version = EMBER_FAAS_VERSION, .length = 3};
        ember_faas_encode(wire + i * (EMBER_FAAS_HDR_LEN + 3), &h);
        memcpy(wire + i * (EMBER_FAAS_HDR_LEN + 3) + EMBER_FAAS_HDR_LEN,
               i == 0   ? "one"
               : i == 1 ? "two"
                        : "six",
               3);
    }
    cr_assert_eq(write(fd, wire, sizeof(wire)), (ssize_t)sizeof(wire));
    uint8_t back[sizeof(wire)];
    size_t got = 0;
    while (got < sizeof(back)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        cr_assert_eq(poll(&p, 1, TIMEOUT), 1);
        ssize_t r = read(fd, back + got, sizeof(back) - got);
        cr_assert(r > 0);
        got += (size_t)r;
    }
    for (int i = 0; i < 3; i++) {
        struct ember_faas_hdr h;
        ember_faas_decode(&h, back + i * (EMBER_FAAS_HDR_LEN + 3));
        cr_expect(ember_faas_hdr_ok(&h) && h.status == 0 && h.length == 3);
        cr_expect(memcmp(back + i * (EMBER_FAAS_HDR_LEN + 3) + EMBER_FAAS_HDR_LEN,
                         i == 0   ? "one"
                         : i == 1 ? "two"
                                  : "six",
                         3) == 0);
    }
    /* A bad header: PROTOCOL, then the guest closes. */
    struct ember_faas_hdr bad = {.magic = 0x12345678, .version = EMBER_FAAS_VERSION};
    uint8_t hdr[EMBER_FAAS_HDR_LEN];
    ember_faas_encode(hdr, &bad);
    cr_assert_eq(write(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
    got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        cr_assert_eq(poll(&p, 1, TIMEOUT), 1);
        ssize_t r = read(fd, back + got, sizeof(back) - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    struct ember_faas_hdr h;
    cr_assert(got >= EMBER_FAAS_HDR_LEN);
    ember_faas_decode(&h, back);
    cr_expect_eq(h.status, EMBER_FAAS_S_PROTOCOL);
    close(fd);
    free(big);
    free(resp);
    vm_stop(&vm);
}

Test(faas, connection_limit)
{
    struct vm vm;
    static int fds[MAX_CONNS + 1];
    char err[256];
    void *resp = NULL;
    size_t resp_len = 0, cap = 0;

    need_kvm();
    vm_start(&vm, "limit", NULL, (char *[]){GUEST_DIR "/faas_test", "--conns", "2000", NULL});
    fds[0] = conn(&vm);
    for (unsigned i = 1; i < MAX_CONNS; i++) {
        fds[i] = ember_invoke_connect(vm.uds, EMBER_FAAS_PORT, TIMEOUT, err, sizeof(err));
        cr_assert(fds[i] >= 0, "connection %u: %s", i + 1, err);
    }
    /* One more than the device allows: refused, promptly (the device
     * accepts and closes at once, so the client may see the close while it
     * still writes its CONNECT line: EPIPE, reported as ECLOSED). */
    int extra = ember_invoke_connect(vm.uds, EMBER_FAAS_PORT, TIMEOUT, err, sizeof(err));
    cr_expect(extra == EMBER_INVOKE_ECONNECT || extra == EMBER_INVOKE_ECLOSED,
              "connection %u: %d %s", MAX_CONNS + 1, extra, err);
    /* The guest has fds for about a thousand sockets (the SDK's FD_MAX, as
     * Linux's default RLIMIT_NOFILE): the runtime serves what it could
     * accept, and the rest, established but still in the accept queue,
     * once others close. */
    for (unsigned i = 0; i < MAX_CONNS - 10; i += 97) {
        call_ok(fds[i], "in", 2, &resp, &resp_len, &cap);
        cr_expect(resp_len == 2);
    }
    for (unsigned i = 0; i < 10; i++)
        close(fds[i]);
    for (unsigned i = MAX_CONNS - 10; i < MAX_CONNS; i++) {
        call_ok(fds[i], "late", 4, &resp, &resp_len, &cap);
        cr_expect(resp_len == 4);
    }
    /* Room again at the device: a new connection gets in. */
    for (int tries = 0;; tries++) {
        fds[0] = ember_invoke_connect(vm.uds, EMBER_FAAS_PORT, TIMEOUT, err, sizeof(err));
        if (fds[0] >= 0 || tries > 100)
            break;
        usleep(20000); /* the device notices the closes on its next loop turn */
    }
    cr_assert(fds[0] >= 0, "after a close: %s", err);
    call_ok(fds[0], "again", 5, &resp, &resp_len, &cap);
    for (unsigned i = 1; i < 10; i++)
        fds[i] = -1;
    for (unsigned i = 0; i < MAX_CONNS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(resp);
    vm_stop(&vm);
}

Test(faas, example_functions)
{
    struct vm vm;
    void *resp = NULL;
    size_t resp_len = 0, cap = 0;
    static const char text[] = "the quick  brown fox\njumps over\n\tthe lazy dog\n";

    need_kvm();
    vm_start(&vm, "wc", NULL, (char *[]){EXAMPLES_DIR "/faas-wordcount", NULL});
    int fd = conn(&vm);
    call_ok(fd, text, sizeof(text) - 1, &resp, &resp_len, &cap);
    char want[32];
    int wl = snprintf(want, sizeof(want), "3 9 %zu\n", sizeof(text) - 1);
    cr_expect(resp_len == (size_t)wl && memcmp(resp, want, (size_t)wl) == 0, "%.*s", (int)resp_len,
              (char *)resp);
    call_ok(fd, "", 0, &resp, &resp_len, &cap);
    cr_expect(resp_len == 6 && memcmp(resp, "0 0 0\n", 6) == 0, "%.*s", (int)resp_len,
              (char *)resp);
    close(fd);
    vm_stop(&vm);

    struct spawn_result r;
    vm_start(&vm, "echo", NULL, (char *[]){EXAMPLES_DIR "/faas-echo", "--max", "1", NULL});
    char file[128];
    snprintf(file, sizeof(file), "/tmp/ember-faas-%d.req", getpid());
    FILE *f = fopen(file, "w");
    fputs("hello, function", f);
    fclose(f);
    cr_assert_eq(spawn_run((char *[]){EMBER_BIN, "invoke", "--uds", vm.uds, "--wait", "--timeout",
                                      "30000", file, NULL},
                           CAP_S, &r),
                 0);
    cr_expect_eq(r.status, 0, "status %d, err: %s", r.status, r.err);
    cr_expect_str_eq(r.out, "hello, function");
    spawn_free(&r);
    cr_expect_eq(vm_wait(&vm, CAP_S), 0); /* --max 1: the guest ends after one */
    unlink(file);
    unlink(vm.out);
    unlink(vm.err);
    unlink(vm.uds);
    free(resp);
}
