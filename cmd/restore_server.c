/* restore_server.c: `ember restore-server` (restore_server.h).
 *
 * One thread, one epoll set: the listening socket, a signalfd (SIGCHLD,
 * SIGTERM, SIGINT) and, per request, its connection while the request is
 * read and then the read end of a status pipe from the child that serves
 * it. The child answers its client itself once its VM runs under its
 * filters and then writes "DONE\n", or writes "ERR message\n" and exits
 * (the server answers that); a child that ends without writing (it crashed)
 * is reported as such. The server never runs guest code, never touches a
 * VM and holds no KVM descriptor: a child's failure cannot take it down.
 * It must stay single-threaded: fork() copies only the calling thread.
 */
#include "cmd/restore_server.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "api-socket/api_main.h"
#include "common/fd_pass.h"
#include "cmd/restore_request.h"
#include "cmd/run_loop.h"
#include "monitor/exit_codes.h"
#include "monitor/snapshot.h"
#include "monitor/timings.h"
#include "monitor/vm.h"
#include "monitor/vm_ahead.h"
#include "monitor/vm_shell.h"

#define CONNS_MAX       256u  /* requests being read or served at once */
#define REQUEST_TIMEOUT 5000u /* ms a client has to send its whole request */
#define STATUS_MAX      600u
#define PATH_LEN        4200u

enum tag { TAG_LISTEN, TAG_SIGNAL, TAG_CONN, TAG_POOL };

#define POOL_MAX      64u
#define POOL_QUIET_MS 5u /* no request for this long: the pool refills */

/* A child forked ahead with its KVM VM built (vm_shell.h), waiting on its
 * end of a socketpair for a request (struct restore_request), then answering
 * on it as a child forked on request answers on its pipe. */
struct pool_child {
    enum tag tag; /* TAG_POOL */
    int fd;
    pid_t pid;
    bool ready; /* it said READY: its VM is built */
};

struct conn {
    enum tag tag;  /* TAG_CONN; first, as for the other epoll entries */
    int fd;        /* the client */
    int status_fd; /* the child's status pipe, once forked; -1 before */
    pid_t pid;
    uint64_t start_ms;
    size_t len;
    char id[65];
    char buf[RESTORE_REQUEST_MAX + 1];
};

static struct {
    const char *sock_path;
    char state_path[PATH_LEN], mem_path[PATH_LEN];
    bool no_seccomp, timings;
    struct snapshot_prepared prep;
    int listen_fd, sig_fd, ep_fd;
    enum tag listen_tag, sig_tag;
    struct conn *conns[CONNS_MAX];
    struct pool_child *pool[POOL_MAX];
    unsigned pool_target;      /* --pool */
    bool pool_broken;          /* a pool child could not build its VM: fork on request only */
    uint64_t last_activity_ms; /* now_ms() of the last request or answer */
    pid_t *children;           /* alive, for the stop */
    size_t nchildren, children_cap;
    sigset_t old_mask;
    bool stopping;
} sv = {.listen_fd = -1,
        .sig_fd = -1,
        .ep_fd = -1,
        .listen_tag = TAG_LISTEN,
        .sig_tag = TAG_SIGNAL,
        .pool_target = 2};

static void usage(FILE *out)
{
    fprintf(out, "usage: ember restore-server --sock PATH --snapshot DIR|STATE [--mem-file MEM]\n"
                 "                            [--pool N] [--no-seccomp] [--timings]\n");
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the child: one VM ---- */

static int status_fd = -1; /* the child's end of its status pipe */

static void report(const char *line)
{
    size_t n = strlen(line);

    if (status_fd < 0)
        return;
    /* One write of at most STATUS_MAX (< PIPE_BUF) bytes: the parent reads
     * it whole. Nothing to do if it fails: the parent then reports a child
     * that ended without an answer. */
    if (write(status_fd, line, n < STATUS_MAX ? n : STATUS_MAX) < 0) {
    }
    close(status_fd);
    status_fd = -1;
}

static int client_fd = -1; /* the child's copy of its client's connection */
static char client_id[65];

/* The VM runs under its filters: the child answers its client itself (one
 * hop fewer than through the server), then tells the server, which closes
 * its own copy of the connection. */
static void on_started(void *arg)
{
    char line[128];
    int n = client_id[0] ? snprintf(line, sizeof(line), "{\"pid\":%d,\"id\":\"%s\"}\n",
                                    (int)getpid(), client_id)
                         : snprintf(line, sizeof(line), "{\"pid\":%d}\n", (int)getpid());
    (void)arg;
    if (client_fd >= 0) {
        /* A line into an empty socket buffer: whole, or the client is gone
         * (SIGPIPE is ignored: main). */
        if (write(client_fd, line, (size_t)n) < 0) {
        }
        close(client_fd);
        client_fd = -1;
    }
    report("DONE\n");
}

static void child_fail(const char *what, const char *err, int code)
{
    char line[STATUS_MAX];

    snprintf(line, sizeof(line), "ERR %s%s\n", what, err);
    report(line);
    fprintf(stderr, "ember: %s%s\n", what, err);
    exit(code);
}

/* Closes everything of the server's but what this child serves. Its memory
 * is left as it is: the child's copy of the server's heap is shared with
 * the server until written, and freeing it would write malloc's bookkeeping
 * into page after page (a copy each: ~10 of a child's ~90 page faults).
 * The pointers stay, so that nothing of it counts as leaked. */
static void child_detach(struct conn *mine, int keep_fd)
{
    for (unsigned i = 0; i < POOL_MAX; i++) {
        struct pool_child *p = sv.pool[i];
        if (p && p->fd != keep_fd)
            close(p->fd);
    }
    if (mine || keep_fd < 0)
        close(sv.listen_fd); /* a pool child accepts on it (pool_child_main) */
    close(sv.sig_fd);
    close(sv.ep_fd);
    for (unsigned i = 0; i < CONNS_MAX; i++) {
        struct conn *c = sv.conns[i];
        if (!c)
            continue;
        if (c == mine)
            client_fd = c->fd;
        else
            close(c->fd);
        if (c->status_fd >= 0)
            close(c->status_fd);
    }
    sigprocmask(SIG_SETMASK, &sv.old_mask, NULL);
}

static struct vm_ahead *pool_ahead; /* a pool child's parked vCPU thread, or NULL */

/* A shell no VM took over goes back to its thread, which closes it (~14 ms
 * with an irqchip, not on the request's time) and ends. */
static void drop_shell(struct vm_shell *shell)
{
    if (!shell || !vm_shell_ready(shell))
        return; /* none, or taken over: the VM owns its thread */
    if (pool_ahead)
        vm_ahead_abandon(pool_ahead, shell);
    else
        vm_shell_release(shell);
}

/* Restores the prepared snapshot into shell (built ahead, or NULL) for rq
 * and serves it; never returns. status_fd is where the answer goes. */
static void child_serve(const struct restore_request *rq, struct vm_shell *shell)
{
    struct vm *vm = NULL;
    char err[600];
    int rc;

    if (rq->console[0]) {
        int fd = open(rq->console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0) {
            snprintf(err, sizeof(err), "%.400s: %s", rq->console, strerror(errno));
            child_fail("console ", err, EMBER_EXIT_BAD_CONFIG);
        }
        if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) {
            snprintf(err, sizeof(err), "%.400s: %s", rq->console, strerror(errno));
            child_fail("console ", err, EMBER_EXIT_GENERIC);
        }
        close(fd);
    }
    if (rq->api_sock[0]) {
        /* An `ember --api-sock` process with the VM loaded: the API, its
         * log and metrics as for any other (the shell built ahead is not
         * used: that path builds its VM itself). */
        drop_shell(shell);
        const struct api_restored r = {
            .api_sock = rq->api_sock,
            .id = rq->id[0] ? rq->id : NULL,
            .state_path = sv.state_path,
            .mem_path = sv.mem_path,
            .vsock_uds_path = rq->vsock[0] ? rq->vsock : NULL,
            .prepared = &sv.prep,
            .no_seccomp = sv.no_seccomp,
            .started = on_started,
            .err = err,
            .errlen = sizeof(err),
        };
        err[0] = '\0';
        rc = api_main_restored(&r);
        child_fail("", err[0] ? err : "the API did not start (see the VM's console)",
                   rc ? rc : EMBER_EXIT_GENERIC);
    }
    struct snapshot_load ld = {
        .state_path = sv.state_path,
        .mem_path = sv.mem_path,
        .vsock_uds_path = rq->vsock[0] ? rq->vsock : NULL,
        .timings = sv.timings,
        .no_seccomp = sv.no_seccomp,
        .prepared = &sv.prep,
        .shell = shell,
    };
    rc = snapshot_restore(&ld, &vm, err, sizeof(err));
    drop_shell(shell); /* what the restore did not take over */
    if (rc != 0)
        child_fail("", err, rc);
    if (sv.timings)
        snapshot_print_timings(STDERR_FILENO);
    rc = cmd_run_vm(vm, NULL, on_started, NULL);
    if (status_fd >= 0) /* it did not start */
        child_fail("", "the VM did not start (see the VM's console)", rc ? rc : EMBER_EXIT_GENERIC);
    vm_destroy(vm);
    exit(rc);
}

/* A child forked on request c. */
static void child_main(struct conn *c, const struct restore_request *rq, int wr)
{
    timings_restart();
    snprintf(client_id, sizeof(client_id), "%s", rq->id);
    status_fd = wr;
    child_detach(c, -1);
    child_serve(rq, NULL);
}

/* Sends line on fd with fd_to_pass attached (SCM_RIGHTS). */
static int send_with_fd(int fd, const char *line, int fd_to_pass)
{
    return fd_pass_send(fd, line, strlen(line), fd_to_pass);
}

/* Reads one request from the client a pool child accepted (as on_readable
 * does in the server) and parses it into rq; on a bad or slow request,
 * tells the server why (it answers) and ends. */
static void pool_read_request(struct restore_request *rq)
{
    static char buf[RESTORE_REQUEST_MAX + 1];
    char why[300], line[STATUS_MAX];
    size_t len = 0;
    uint64_t t0 = now_ms();

    for (;;) {
        struct pollfd pf = {.fd = client_fd, .events = POLLIN};
        int left = (int)(REQUEST_TIMEOUT - (now_ms() - t0));
        if (left <= 0 || poll(&pf, 1, left) == 0) {
            snprintf(why, sizeof(why), "request: not complete within %u ms", REQUEST_TIMEOUT);
            break;
        }
        ssize_t n = recv(client_fd, buf + len, sizeof(buf) - len, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            exit(0); /* the client is gone: nobody to answer */
        char *nl = memchr(buf + len, '\n', (size_t)n);
        len += (size_t)n;
        if (nl)
            len = (size_t)(nl - buf);
        if (nl || n == 0 || len > RESTORE_REQUEST_MAX) {
            if (restore_request_parse(buf, len, rq, why, sizeof(why)) == 0)
                return;
            break;
        }
    }
    snprintf(line, sizeof(line), "ERR %s\n", why);
    report(line);
    exit(0);
}

/* A ready pool child waits for its request: a client it accepts itself on
 * the listening socket (no hop through the server, which accepts only while
 * no pool child is ready). 0 with rq (and client_fd) set; -1 when the
 * server is gone or stops the pool. */
static int pool_wait(int fd, struct restore_request *rq)
{
    for (;;) {
        struct pollfd pf[2] = {{.fd = sv.listen_fd, .events = POLLIN},
                               {.fd = fd, .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (pf[1].revents)
            return -1; /* the server is gone (or stopping): nothing else comes here */
        int cfd = accept4(sv.listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0)
            continue; /* another pool child, or the server, took it */
        client_fd = cfd;
        status_fd = fd;
        /* The server keeps a copy, to answer if this child dies first. */
        if (send_with_fd(fd, "TAKEN\n", cfd) != 0)
            exit(0);
        close(sv.listen_fd);
        pool_read_request(rq);
        return 0;
    }
}

/* A pool child: builds its VM, says READY, waits for its request. */
static void pool_child_main(int fd)
{
    static struct restore_request rq; /* 4 KiB: not on the stack for the VM's life */
    struct vm_shell shell;
    char line[STATUS_MAX];

    child_detach(NULL, fd);
    vm_shell_init(&shell);
    /* The loop first: its eventfd must exist when the parked thread's
     * filter goes on (it writes it when the guest ends). */
    if (cmd_run_loop_prepare() == 0)
        pool_ahead = vm_ahead_start(sv.prep.mem_size, sv.no_seccomp, NULL, NULL, NULL);
    if (pool_ahead)
        vm_ahead_take_shell(pool_ahead, &shell);
    if (!vm_shell_ready(&shell)) {
        snprintf(line, sizeof(line), "ERR building a VM ahead failed (%s)\n",
                 pool_ahead ? "KVM VM, irqchip or vCPU" : "no thread");
        if (write(fd, line, strlen(line)) < 0) {
        }
        exit(EMBER_EXIT_GENERIC);
    }
    if (write(fd, "READY\n", 6) != 6)
        exit(0);
    if (pool_wait(fd, &rq) != 0)
        exit(0); /* the server is gone, or stops its pool */
    timings_restart();
    rq.vsock[sizeof(rq.vsock) - 1] = '\0';
    rq.console[sizeof(rq.console) - 1] = '\0';
    rq.id[sizeof(rq.id) - 1] = '\0';
    snprintf(client_id, sizeof(client_id), "%s", rq.id);
    status_fd = fd;
    child_serve(&rq, &shell);
}

/* ---- requests ---- */

static void conn_close(struct conn *c)
{
    for (unsigned i = 0; i < CONNS_MAX; i++)
        if (sv.conns[i] == c)
            sv.conns[i] = NULL;
    /* Out of the set before close: a child forked a moment ago may still
     * hold these descriptors, and the kernel drops an epoll entry only when
     * the last of them is closed. */
    epoll_ctl(sv.ep_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->status_fd >= 0) {
        epoll_ctl(sv.ep_fd, EPOLL_CTL_DEL, c->status_fd, NULL);
        close(c->status_fd);
    }
    free(c);
}

/* The answer to c's client, then c is closed. */
static void answer(struct conn *c, json_t *body)
{
    sv.last_activity_ms = now_ms();
    char *s = json_dumps(body, JSON_COMPACT);

    if (s) {
        size_t n = strlen(s);
        s[n] = '\n'; /* json_dumps' terminator, replaced: n + 1 bytes */
        /* Best effort, non-blocking: a client that does not read its answer
         * loses it, the server does not wait for it. */
        if (send(c->fd, s, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        }
        free(s);
    }
    json_decref(body);
    conn_close(c);
}

static void answer_fault(struct conn *c, const char *msg)
{
    answer(c, json_pack("{s:s}", "fault_message", msg));
}

static void child_add(pid_t pid)
{
    if (sv.nchildren == sv.children_cap) {
        size_t cap = sv.children_cap ? 2 * sv.children_cap : 64;
        pid_t *p = realloc(sv.children, cap * sizeof(*p));
        if (!p)
            return; /* not stopped with the others then; still reaped */
        sv.children = p;
        sv.children_cap = cap;
    }
    sv.children[sv.nchildren++] = pid;
}

static void child_gone(pid_t pid)
{
    for (size_t i = 0; i < sv.nchildren; i++)
        if (sv.children[i] == pid) {
            sv.children[i] = sv.children[--sv.nchildren];
            return;
        }
}

static void pool_remove(struct pool_child *p)
{
    for (unsigned i = 0; i < POOL_MAX; i++)
        if (sv.pool[i] == p)
            sv.pool[i] = NULL;
    epoll_ctl(sv.ep_fd, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
    free(p);
}

/* Whether the pool is short of --pool children (and may be refilled). */
static bool pool_wanted(void)
{
    unsigned n = 0;

    for (unsigned i = 0; i < POOL_MAX; i++)
        n += sv.pool[i] != NULL;
    return !sv.pool_broken && !sv.stopping && n < sv.pool_target;
}

/* Forks a pool child when there are fewer than --pool of them. */
static void pool_fill(void)
{
    unsigned n = 0, free_slot = POOL_MAX;

    for (unsigned i = 0; i < POOL_MAX; i++) {
        if (sv.pool[i])
            n++;
        else if (free_slot == POOL_MAX)
            free_slot = i;
    }
    if (sv.pool_broken || sv.stopping || n >= sv.pool_target || free_slot == POOL_MAX)
        return;
    /* Only once the server has been quiet for POOL_QUIET_MS: building a VM
     * ahead takes as much CPU as the start it saves, and taken from a start
     * under way (or from the first response of a VM just started, right
     * after its answer) it only moves latency from one VM to the next. The
     * gaps between requests are what the pool is for; under a sustained
     * load it stays empty and each request forks. */
    if (now_ms() - sv.last_activity_ms < POOL_QUIET_MS)
        return;
    for (unsigned i = 0; i < CONNS_MAX; i++)
        if (sv.conns[i])
            return;
    struct pool_child *p = calloc(1, sizeof(*p));
    int sp[2];
    if (!p || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
        free(p);
        return; /* requests fork their own child meanwhile */
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(sp[0]);
        free(p);
        pool_child_main(sp[1]);
    }
    close(sp[1]);
    if (pid < 0) {
        close(sp[0]);
        free(p);
        return;
    }
    child_add(pid);
    *p = (struct pool_child){.tag = TAG_POOL, .fd = sp[0], .pid = pid};
    sv.pool[free_slot] = p;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};
    if (epoll_ctl(sv.ep_fd, EPOLL_CTL_ADD, p->fd, &ev) != 0) {
        kill(pid, SIGKILL);
        pool_remove(p);
    }
}

/* A pool child's READY, its failure to build, or its end while it waited. */
static void on_pool(struct pool_child *p)
{
    char buf[STATUS_MAX + 1];
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = STATUS_MAX};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl)};
    int passed = -1;
    ssize_t n;

    do
        n = recvmsg(p->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return;
    struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
    if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
        cm->cmsg_len == CMSG_LEN(sizeof(int)))
        memcpy(&passed, CMSG_DATA(cm), sizeof(int));
    buf[n > 0 ? n : 0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    if (!p->ready && strcmp(buf, "READY") == 0) {
        p->ready = true;
        return;
    }
    if (p->ready && passed >= 0 && strcmp(buf, "TAKEN") == 0) {
        /* It accepted a client itself: from now on it is a request being
         * served, whose end (DONE, ERR, or none) on_status() sees. */
        unsigned slot = CONNS_MAX;
        for (unsigned i = 0; i < CONNS_MAX && slot == CONNS_MAX; i++)
            if (!sv.conns[i])
                slot = i;
        struct conn *c = slot < CONNS_MAX ? calloc(1, sizeof(*c)) : NULL;
        if (!c) { /* served, untracked: a crash then goes unexplained */
            close(passed);
            pool_remove(p);
            return;
        }
        sv.last_activity_ms = now_ms();
        *c = (struct conn){
            .tag = TAG_CONN, .fd = passed, .status_fd = p->fd, .pid = p->pid, .start_ms = now_ms()};
        sv.conns[slot] = c;
        for (unsigned i = 0; i < POOL_MAX; i++)
            if (sv.pool[i] == p)
                sv.pool[i] = NULL;
        free(p);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(sv.ep_fd, EPOLL_CTL_MOD, c->status_fd, &ev) != 0)
            conn_close(c);
        return;
    }
    if (passed >= 0)
        close(passed);
    if (!p->ready) {
        /* No VMs ahead from now on (no fork loop): each request forks. */
        sv.pool_broken = true;
        fprintf(stderr, "ember: restore-server: %s; requests fork their VM process from now on\n",
                strncmp(buf, "ERR ", 4) == 0 ? buf + 4 : "a VM process forked ahead ended");
    }
    pool_remove(p);
}

/* The server accepts only while no pool child is ready to (pool_wait). */
static void listen_arm(void)
{
    static bool armed = true; /* setup() added it */
    bool want = true;

    for (unsigned i = 0; i < POOL_MAX; i++)
        if (sv.pool[i] && sv.pool[i]->ready)
            want = false;
    if (want == armed)
        return;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &sv.listen_tag};
    if (epoll_ctl(sv.ep_fd, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, sv.listen_fd, &ev) == 0)
        armed = want;
}

static void serve_request(struct conn *c)
{
    static struct restore_request prq;
    char why[300];
    int pfd[2];

    if (restore_request_parse(c->buf, c->len, &prq, why, sizeof(why)) != 0) {
        answer_fault(c, why);
        return;
    }
    snprintf(c->id, sizeof(c->id), "%s", prq.id);
    /* A connection the server accepted forks its own child: a ready pool
     * child takes its clients from the listening socket (pool_wait), and
     * handing it one here could cross a client it is accepting. */
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        snprintf(why, sizeof(why), "pipe: %s", strerror(errno));
        answer_fault(c, why);
        return;
    }
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        child_main(c, &prq, pfd[1]);
    }
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        snprintf(why, sizeof(why), "fork: %s", strerror(errno));
        answer_fault(c, why);
        return;
    }
    child_add(pid);
    c->pid = pid;
    c->status_fd = pfd[0];
    epoll_ctl(sv.ep_fd, EPOLL_CTL_DEL, c->fd, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(sv.ep_fd, EPOLL_CTL_ADD, c->status_fd, &ev) != 0) {
        snprintf(why, sizeof(why), "epoll: %s", strerror(errno));
        kill(pid, SIGKILL);
        answer_fault(c, why);
    }
}

/* The child's status: its answer, or its end without one. */
static void on_status(struct conn *c)
{
    char buf[STATUS_MAX + 1], msg[STATUS_MAX + 80];
    ssize_t n;

    do
        n = read(c->status_fd, buf, STATUS_MAX);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return;
    buf[n > 0 ? n : 0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    if (strcmp(buf, "DONE") == 0) { /* the child has answered its client */
        sv.last_activity_ms = now_ms();
        conn_close(c);
        return;
    }
    if (strncmp(buf, "ERR ", 4) == 0)
        snprintf(msg, sizeof(msg), "%s", buf + 4);
    else
        snprintf(msg, sizeof(msg), "the VM process %d ended before its VM ran", (int)c->pid);
    answer_fault(c, msg);
}

static void on_readable(struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, RESTORE_REQUEST_MAX + 1 - c->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            conn_close(c);
            return;
        }
        /* The request ends at its newline (what follows is ignored), or
         * where the client's writes end; the same rule as a pool child's
         * (pool_read_request). */
        char *nl = memchr(c->buf + c->len, '\n', (size_t)n);
        c->len += (size_t)n;
        if (!nl && c->len > RESTORE_REQUEST_MAX) {
            char why[80];
            snprintf(why, sizeof(why), "request: larger than %u bytes", RESTORE_REQUEST_MAX);
            answer_fault(c, why);
            return;
        }
        if (nl || n == 0) {
            if (nl)
                c->len = (size_t)(nl - c->buf);
            if (c->len == 0) {
                answer_fault(c, "request: empty");
                return;
            }
            serve_request(c);
            return;
        }
    }
}

static void on_accept(void)
{
    for (;;) {
        int fd = accept4(sv.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a client gone before its accept */
        unsigned slot = CONNS_MAX;
        for (unsigned i = 0; i < CONNS_MAX && slot == CONNS_MAX; i++)
            if (!sv.conns[i])
                slot = i;
        struct conn *c = slot < CONNS_MAX ? calloc(1, sizeof(*c)) : NULL;
        if (!c) {
            static const char busy[] =
                "{\"fault_message\":\"busy: too many requests in progress\"}\n";
            if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
            }
            close(fd);
            continue;
        }
        sv.last_activity_ms = now_ms();
        c->tag = TAG_CONN;
        c->fd = fd;
        c->status_fd = -1;
        c->start_ms = now_ms();
        sv.conns[slot] = c;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(sv.ep_fd, EPOLL_CTL_ADD, fd, &ev) != 0)
            conn_close(c);
    }
}

static void reap(void)
{
    int st;
    pid_t pid;

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        child_gone(pid);
        if (WIFSIGNALED(st) && WTERMSIG(st) != SIGTERM && WTERMSIG(st) != SIGKILL)
            fprintf(stderr, "ember: restore-server: VM process %d ended by signal %d\n", (int)pid,
                    WTERMSIG(st));
    }
}

static void on_signal(void)
{
    struct signalfd_siginfo si;

    while (read(sv.sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGCHLD)
            reap();
        else
            sv.stopping = true;
    }
}

static void expire(void)
{
    uint64_t now = now_ms();

    for (unsigned i = 0; i < CONNS_MAX; i++) {
        struct conn *c = sv.conns[i];
        if (c && c->status_fd < 0 && now - c->start_ms > REQUEST_TIMEOUT) {
            char why[80];
            snprintf(why, sizeof(why), "request: not complete within %u ms", REQUEST_TIMEOUT);
            answer_fault(c, why);
        }
    }
}

/* ---- set-up and the loop ---- */

static int parse_args(int argc, char **argv, const char **snapshot, const char **mem)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--no-seccomp") == 0) {
            sv.no_seccomp = true;
        } else if (strcmp(a, "--timings") == 0) {
            sv.timings = true;
        } else if ((strcmp(a, "--id") == 0 || strcmp(a, "--start-time-us") == 0 ||
                    strcmp(a, "--start-time-cpu-us") == 0) &&
                   i + 1 < argc) {
            /* Passed by ember-jailer to every exec (jailer/README.md). */
            i++;
        } else if (strcmp(a, "--pool") == 0 && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || end == argv[i] || v > POOL_MAX) {
                fprintf(stderr, "ember: restore-server: --pool %s: a count from 0 to %u\n", argv[i],
                        POOL_MAX);
                return -1;
            }
            sv.pool_target = (unsigned)v;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if ((strcmp(a, "--sock") == 0 || strcmp(a, "--snapshot") == 0 ||
                    strcmp(a, "--mem-file") == 0) &&
                   i + 1 < argc) {
            const char **dst = a[2] == 's' && a[3] == 'o' ? &sv.sock_path
                               : a[2] == 's'              ? snapshot
                                                          : mem;
            *dst = argv[++i];
        } else {
            fprintf(stderr, "ember: restore-server: unexpected argument \"%s\"\n", a);
            return -1;
        }
    }
    if (!sv.sock_path || !*snapshot) {
        fprintf(stderr, "ember: restore-server: --sock and --snapshot are required\n");
        return -1;
    }
    return 0;
}

static int listen_on(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "ember: restore-server: --sock %s: longer than %zu bytes\n", path,
                sizeof(sa.sun_path) - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    sv.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* Only its owner may ask for VMs: a request names files to create. */
    mode_t old = umask(0177);
    int rc = sv.listen_fd < 0 ? -1 : bind(sv.listen_fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc != 0 || listen(sv.listen_fd, 128) != 0) {
        fprintf(stderr, "ember: restore-server: --sock %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int setup(void)
{
    sigset_t mask;

    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, &sv.old_mask) != 0)
        return -1;
    sv.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    sv.ep_fd = epoll_create1(EPOLL_CLOEXEC);
    if (sv.sig_fd < 0 || sv.ep_fd < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &sv.sig_tag};
    if (epoll_ctl(sv.ep_fd, EPOLL_CTL_ADD, sv.sig_fd, &ev) != 0)
        return -1;
    ev.data.ptr = &sv.listen_tag;
    return epoll_ctl(sv.ep_fd, EPOLL_CTL_ADD, sv.listen_fd, &ev);
}

/* Stops every child, waits for them, and removes the socket. */
static void stop(void)
{
    for (size_t i = 0; i < sv.nchildren; i++)
        kill(sv.children[i], SIGTERM);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    unlink(sv.sock_path);
    for (unsigned i = 0; i < CONNS_MAX; i++)
        if (sv.conns[i])
            conn_close(sv.conns[i]);
    for (unsigned i = 0; i < POOL_MAX; i++)
        if (sv.pool[i])
            pool_remove(sv.pool[i]);
}

/* libuv's one-time set-up (its signal lock pipe and the fork handler that
 * remakes it, the clock it reads), done once here by a loop made and closed:
 * otherwise each child does it on its first loop, writing glibc's fork
 * handler list and libuv's statics on pages it shares with the server
 * (copy-on-write). Its children inherit the state, and the fork handler
 * gives each its own pipe, as its first loop would have. Pss per VM ~4.5 KiB
 * lower (benches/snapshot_results-20261204.md). */
static void warm_libuv(void)
{
    uv_loop_t l;

    if (uv_loop_init(&l) == 0)
        uv_loop_close(&l);
}

int restore_server_main(int argc, char **argv)
{
    const char *snapshot = NULL, *mem = NULL;
    struct stat st;
    char err[600];

    if (parse_args(argc, argv, &snapshot, &mem) != 0) {
        usage(stderr);
        return EMBER_EXIT_ARG_PARSING;
    }
    if (stat(snapshot, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(sv.state_path, PATH_LEN, "%s/state", snapshot);
        snprintf(sv.mem_path, PATH_LEN, "%s/mem", snapshot);
    } else {
        snprintf(sv.state_path, PATH_LEN, "%s", snapshot);
        snprintf(sv.mem_path, PATH_LEN, "%s.mem", snapshot);
    }
    if (mem)
        snprintf(sv.mem_path, PATH_LEN, "%s", mem);
    int rc = snapshot_prepare(sv.state_path, sv.mem_path, &sv.prep, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "ember: %s\n", err);
        return rc;
    }
    warm_libuv();
    if (listen_on(sv.sock_path) != 0)
        return EMBER_EXIT_GENERIC;
    if (setup() != 0) {
        fprintf(stderr, "ember: restore-server: %s\n", strerror(errno));
        unlink(sv.sock_path);
        return EMBER_EXIT_GENERIC;
    }
    pool_fill();
    fprintf(stderr, "ember: restore-server: %s ready on %s\n", snapshot, sv.sock_path);
    while (!sv.stopping) {
        struct epoll_event evs[32];
        int n = epoll_wait(sv.ep_fd, evs, 32, pool_wanted() ? (int)POOL_QUIET_MS : 1000);
        for (int i = 0; i < n; i++) {
            enum tag *t = evs[i].data.ptr;
            if (*t == TAG_LISTEN) {
                on_accept();
            } else if (*t == TAG_SIGNAL) {
                on_signal();
            } else if (*t == TAG_POOL) {
                on_pool((struct pool_child *)t);
            } else {
                struct conn *c = (struct conn *)t;
                /* Each handler closes only its own connection, and a
                 * connection has one descriptor in the set at a time: no
                 * event of this batch names a connection already closed. */
                if (c->status_fd >= 0)
                    on_status(c);
                else
                    on_readable(c);
            }
        }
        expire();
        pool_fill();
        listen_arm();
    }
    fprintf(stderr, "ember: restore-server: stopping %zu VM process(es)\n", sv.nchildren);
    stop();
    snapshot_prepared_release(&sv.prep);
    free(sv.children);
    return 0;
}
