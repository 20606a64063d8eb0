/* fleet_bench.c: the FaaS host workload of issue 7, one monitor process per
 * VM: launch rate and density, for `ember run`, for ember under ember-jailer,
 * and for QEMU microvm as the peer.
 *
 * launch: start function VMs (`ember run --mem 16 --vsock S faas-echo --max 1`)
 *   as fast as the host allows, with at most --concurrency VM processes alive
 *   at once, for --duration seconds. Each one is invoked once as soon as its
 *   vsock socket appears (inotify: no polling), answers, and exits on its own
 *   (the runtime's --max 1). Per VM: cold-invoke latency (posix_spawn ->
 *   whole response at the host) and its lifetime (spawn -> reaped). Per
 *   second: VMs completed (responded correctly and exited 0).
 * density: start --count idle function VMs (no --max: they serve forever),
 *   --start-concurrency booting at once; a VM is alive once its runtime
 *   printed its listening line. With all alive, host memory is measured
 *   (MemAvailable drop / N and /proc/meminfo deltas, which include the
 *   kernel's own KVM structures; per-process Pss and the guest mapping's
 *   resident pages from smaps for a sample), then every VM is invoked once,
 *   memory is measured again, and all are sent SIGTERM at once: the time until
 *   the last is reaped and until MemAvailable is back is the teardown.
 *
 * --kind qemu runs QEMU microvm on the same ELF. This host has no
 * vhost-vsock (CONFIG_VHOST_VSOCK is off), so QEMU cannot get a vsock device:
 * its launch is boot -> exit of the same faas-echo ELF (which finds no vsock
 * and exits), its density the same boot with -no-shutdown, so QEMU stays
 * alive, idle, holding everything the boot touched. No invocations there.
 *
 * Every VM is started in one process group of the driver's own; on any exit
 * of the driver (including SIGINT/SIGTERM) what is left of it gets SIGKILL,
 * and the run directory (sockets, jails) is removed.
 *
 * Output: JSON on stdout (or --out FILE), a short summary on stderr.
 * Exit status: 0 measured with no failure, 1 some VM failed (counted in the
 * JSON), 2 usage, 77 no /dev/kvm.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ember/faas.h>

extern char **environ;

#define EXIT_SKIPPED  77
#define MAX_ARGS      48
#define LINE_MAX_FB   256
#define RX_MAX        256
#define VM_TIMEOUT_S  20.0 /* a VM that has not answered by then failed */
#define RETRY_US      200.0
#define RETRIES_MAX   200
#define TAG_INOTIFY   1u
#define TAG_SIGNAL    2u
#define TAG_SOCK      3u
#define TAG_OUT       4u
#define JAIL_UID      "10000"
#define JAIL_GID      "10000"
#define GUEST_NAME    "faas-echo"
#define QEMU_READY    "cannot serve" /* faas-echo's last line when it finds no vsock */
#define EMBER_READY   "listening on vsock port"
#define MEMINFO_NKEYS 13

enum kind { K_EMBER, K_JAILED, K_QEMU };
enum mode { M_LAUNCH, M_DENSITY };

enum vm_state {
    S_FREE,
    S_BOOTING,    /* spawned; waiting for its socket (launch) or its ready line (density) */
    S_WAIT_RETRY, /* the connection failed early; connect again at retry_at */
    S_INVOKING,   /* connected, request sent, reading OK line and response */
    S_IDLE,       /* density: alive and idle (before or after its invocation) */
    S_DONE,       /* launch: answered (or failed), waiting to be reaped */
};

struct vm {
    enum vm_state st;
    unsigned id; /* unique over the run: socket and jail names */
    pid_t pid;
    int sock, out;
    int wd; /* jailed: inotify watch on the jail root */
    double t_spawn, t_ready, t_resp, t_exit;
    double retry_at;
    int retries;
    bool ok, failed, reaped;
    char rx[RX_MAX];
    size_t rx_len;
    char line[LINE_MAX_FB];
    size_t line_len;
    char sock_path[PATH_MAX];
    char jail_dir[PATH_MAX]; /* jailed: <base>/ember/<id> */
};

struct series {
    double *v;
    size_t n, cap;
};

static struct {
    enum kind kind;
    enum mode mode;
    const char *ember, *guest, *jailer, *qemu, *out_path, *label;
    unsigned mem_mib;
    double duration;
    unsigned concurrency, count, start_conc, invoke_conc, sample;
    bool no_seccomp;
    bool ready_line; /* launch: connect on the runtime's listening line, not on the socket */
} opt = {
    .mem_mib = 16,
    .duration = 60,
    .concurrency = 64,
    .count = 2000,
    .start_conc = 32,
    .invoke_conc = 64,
    .sample = 100,
};

static struct vm *vms;
static unsigned nslots;
static int *pid_slot; /* pid -> slot + 1 */
static long pid_max;
static int *wd_slot; /* inotify watch -> slot + 1 */
static size_t wd_cap;
static int epfd = -1, inofd = -1, sigfd = -1, logfd = -1;
static pid_t pgid;     /* the process group every VM is in (0: none yet) */
static unsigned ingrp; /* VM processes in it, not reaped yet */
static char run_dir[PATH_MAX];
static char guest_in_dir[PATH_MAX]; /* jailed: the guest hard-linked next to the jails */
static unsigned next_id;
static unsigned alive; /* spawned and not reaped */
static unsigned booting;
static unsigned failures;
static unsigned retries; /* connections the guest refused (not listening yet) */
static char first_failure[512];

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void kill_all(void)
{
    if (pgid > 0 && ingrp > 0)
        kill(-pgid, SIGKILL);
    for (unsigned i = 0; vms && i < nslots; i++)
        if (vms[i].pid > 0 && !vms[i].reaped)
            kill(vms[i].pid, SIGKILL);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static void rm_tree(const char *path)
{
    if (path[0])
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static void cleanup(void)
{
    kill_all();
    /* Reap what is ours, briefly: stragglers must not outlive the run. */
    for (int i = 0; i < 200 && ingrp > 0; i++) {
        pid_t p = waitpid(-1, NULL, WNOHANG);
        if (p > 0) {
            ingrp--;
            continue;
        }
        if (p < 0)
            break;
        usleep(10000);
    }
    rm_tree(run_dir);
    run_dir[0] = '\0';
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A path that must fit, or the run stops. */
static void path_fmt(char *dst, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void path_fmt(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int r = vsnprintf(dst, n, fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= n)
        die("path too long: %s...", dst);
}

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("fleet_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cleanup();
    exit(1);
}

static void on_fatal_signal(int sig)
{
    /* Async-signal-safe part only: the group and every known pid. */
    kill_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void series_add(struct series *s, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->v = realloc(s->v, s->cap * sizeof(double));
        if (!s->v)
            die("out of memory");
    }
    s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const struct series *s, double p)
{
    if (!s->n)
        return NAN;
    qsort(s->v, s->n, sizeof(double), cmp_double);
    double r = p / 100.0 * (double)(s->n - 1);
    size_t lo = (size_t)r, hi = lo + 1 < s->n ? lo + 1 : lo;
    return s->v[lo] + (s->v[hi] - s->v[lo]) * (r - (double)lo);
}

static json_t *dist_json(struct series *s, double scale)
{
    if (!s->n)
        return json_null();
    qsort(s->v, s->n, sizeof(double), cmp_double); /* min and max below are read sorted */
    double sum = 0;
    for (size_t i = 0; i < s->n; i++)
        sum += s->v[i];
    return json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f}", "n", (json_int_t)s->n, "p50",
                     pct(s, 50) * scale, "p90", pct(s, 90) * scale, "p99", pct(s, 99) * scale,
                     "min", s->v[0] * scale, "max", s->v[s->n - 1] * scale, "mean",
                     sum / (double)s->n * scale);
}

static void fail_vm(struct vm *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail_vm(struct vm *v, const char *fmt, ...)
{
    va_list ap;

    if (v->failed)
        return;
    v->failed = true;
    failures++;
    if (!first_failure[0]) {
        int n =
            snprintf(first_failure, sizeof(first_failure), "vm %u (pid %d): ", v->id, (int)v->pid);
        va_start(ap, fmt);
        vsnprintf(first_failure + n, sizeof(first_failure) - (size_t)n, fmt, ap);
        va_end(ap);
    }
}

/* ---- /proc ----------------------------------------------------------------- */

static const char *const meminfo_keys[MEMINFO_NKEYS] = {
    "MemAvailable", "MemFree",    "AnonPages",     "Cached", "Shmem", "Slab",       "SUnreclaim",
    "KernelStack",  "PageTables", "SecPageTables", "Percpu", "Dirty", "VmallocUsed"};

static void meminfo_read(long out[MEMINFO_NKEYS])
{
    char line[256];
    FILE *f = fopen("/proc/meminfo", "r");

    for (int i = 0; i < MEMINFO_NKEYS; i++)
        out[i] = 0;
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        for (int i = 0; i < MEMINFO_NKEYS; i++) {
            size_t k = strlen(meminfo_keys[i]);
            if (strncmp(line, meminfo_keys[i], k) == 0 && line[k] == ':')
                out[i] = strtol(line + k + 1, NULL, 10);
        }
    }
    fclose(f);
}

static long mem_available(void)
{
    long m[MEMINFO_NKEYS];
    meminfo_read(m);
    return m[0];
}

/* Host CPU time (jiffies) busy and total, from /proc/stat. */
static void cpu_read(unsigned long long *busy, unsigned long long *total)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");

    *busy = *total = 0;
    if (!f)
        return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; i++)
            *total += v[i];
        *busy = *total - v[3] - v[4];
    }
    fclose(f);
}

struct proc_mem {
    long pss, rss, guest_rss, anon, file, pagetables_kib; /* KiB */
    int threads, fds;
};

/* One VM process: Pss/Rss from smaps, the guest mapping's resident pages
 * (the anonymous mapping of exactly the guest's size), VmPTE, threads, fds. */
static int proc_mem_read(pid_t pid, struct proc_mem *pm)
{
    char path[64], line[512];
    FILE *f;
    long guest_kib = (long)opt.mem_mib * 1024, cur_size = 0;
    bool cur_anon = false;

    memset(pm, 0, sizeof(*pm));
    snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        char perms[8];
        long kib;
        int name_at = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &name_at) == 3) {
            cur_size = (long)((hi - lo) / 1024);
            cur_anon = name_at > 0 && (line[name_at] == '\n' || line[name_at] == '\0');
            continue;
        }
        if (sscanf(line, "Rss: %ld", &kib) == 1) {
            pm->rss += kib;
            if (cur_anon && cur_size == guest_kib)
                pm->guest_rss += kib;
        } else if (sscanf(line, "Pss: %ld", &kib) == 1) {
            pm->pss += kib;
        } else if (sscanf(line, "Anonymous: %ld", &kib) == 1) {
            pm->anon += kib;
        }
    }
    fclose(f);
    pm->file = pm->rss - pm->anon;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f) {
        while (fgets(line, sizeof(line), f)) {
            sscanf(line, "VmPTE: %ld", &pm->pagetables_kib);
            sscanf(line, "Threads: %d", &pm->threads);
        }
        fclose(f);
    }
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            pm->fds += e->d_name[0] != '.';
        closedir(d);
    }
    return 0;
}

/* ---- spawning ------------------------------------------------------------- */

static void ep_add(int fd, uint32_t events, uint32_t tag, uint32_t slot)
{
    struct epoll_event ev = {.events = events, .data.u64 = ((uint64_t)tag << 32) | slot};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        die("epoll_ctl: %s", strerror(errno));
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, *fd, NULL);
        close(*fd);
    }
    *fd = -1;
}

static void wd_set(int wd, int slot1)
{
    if (wd < 0)
        return;
    if ((size_t)wd >= wd_cap) {
        size_t cap = wd_cap ? wd_cap : 4096;
        while (cap <= (size_t)wd)
            cap *= 2;
        wd_slot = realloc(wd_slot, cap * sizeof(int));
        if (!wd_slot)
            die("out of memory");
        memset(wd_slot + wd_cap, 0, (cap - wd_cap) * sizeof(int));
        wd_cap = cap;
    }
    wd_slot[wd] = slot1;
}

static void unwatch(struct vm *v)
{
    if (v->wd >= 0) {
        inotify_rm_watch(inofd, v->wd);
        wd_set(v->wd, 0);
        v->wd = -1;
    }
}

/* A jail for VM v: <run_dir>/jails/ember/<id>/root with the guest linked in. */
static void make_jail(struct vm *v, char *root, size_t rootlen)
{
    char lnk[PATH_MAX];

    path_fmt(v->jail_dir, sizeof(v->jail_dir), "%s/jails/ember/f%u", run_dir, v->id);
    path_fmt(root, rootlen, "%s/root", v->jail_dir);
    if (mkdir(v->jail_dir, 0755) != 0 || mkdir(root, 0755) != 0)
        die("%s: %s", root, strerror(errno));
    path_fmt(lnk, sizeof(lnk), "%s/" GUEST_NAME, root);
    if (link(guest_in_dir, lnk) != 0)
        die("%s: %s", lnk, strerror(errno));
    path_fmt(v->sock_path, sizeof(v->sock_path), "%s/v.sock", root);
    if (opt.mode != M_LAUNCH || opt.ready_line)
        return; /* waits for the ready line instead */
    v->wd = inotify_add_watch(inofd, root, IN_CREATE | IN_ONLYDIR);
    if (v->wd < 0)
        die("inotify_add_watch %s: %s", root, strerror(errno));
}

static void spawn_vm(unsigned slot)
{
    struct vm *v = &vms[slot];
    char *argv[MAX_ARGS];
    char mem[16], id[32], root[PATH_MAX], base[PATH_MAX], vsock_arg[PATH_MAX + 16];
    int argc = 0, pipefd[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none;
    bool ready_line = opt.mode == M_DENSITY || opt.kind == K_QEMU || opt.ready_line;

    memset(v, 0, sizeof(*v));
    v->sock = v->out = v->wd = -1;
    v->id = next_id++;
    snprintf(mem, sizeof(mem), "%u", opt.mem_mib);
    if (opt.kind == K_QEMU) {
        argv[argc++] = (char *)opt.qemu;
        argv[argc++] = "-M";
        argv[argc++] = "microvm,isa-serial=on";
        argv[argc++] = "-enable-kvm";
        argv[argc++] = "-cpu";
        argv[argc++] = "host,-arch-capabilities";
        argv[argc++] = "-m";
        argv[argc++] = mem;
        argv[argc++] = "-nodefaults";
        argv[argc++] = "-display";
        argv[argc++] = "none";
        argv[argc++] = "-serial";
        argv[argc++] = "stdio";
        argv[argc++] = "-no-reboot";
        if (opt.mode == M_LAUNCH) {
            argv[argc++] = "-device";
            argv[argc++] = "isa-debug-exit,iobase=0x501,iosize=4";
        } else {
            argv[argc++] = "-no-shutdown"; /* stays alive, stopped, after the guest ends */
        }
        argv[argc++] = "-kernel";
        argv[argc++] = (char *)opt.guest;
    } else {
        if (opt.kind == K_JAILED) {
            make_jail(v, root, sizeof(root));
            snprintf(id, sizeof(id), "f%u", v->id);
            path_fmt(vsock_arg, sizeof(vsock_arg), "/v.sock");
            argv[argc++] = (char *)opt.jailer;
            argv[argc++] = "--id";
            argv[argc++] = id;
            argv[argc++] = "--exec-file";
            argv[argc++] = (char *)opt.ember;
            argv[argc++] = "--uid";
            argv[argc++] = JAIL_UID;
            argv[argc++] = "--gid";
            argv[argc++] = JAIL_GID;
            argv[argc++] = "--chroot-base-dir";
            path_fmt(base, sizeof(base), "%s/jails", run_dir);
            argv[argc++] = base;
            argv[argc++] = "--";
        } else {
            argv[argc++] = (char *)opt.ember;
            path_fmt(v->sock_path, sizeof(v->sock_path), "%s/%u-%u.sock", run_dir, slot, v->id);
            unlink(v->sock_path);
            path_fmt(vsock_arg, sizeof(vsock_arg), "%s", v->sock_path);
        }
        argv[argc++] = "run";
        argv[argc++] = "--mem";
        argv[argc++] = mem;
        if (opt.no_seccomp)
            argv[argc++] = "--no-seccomp";
        argv[argc++] = "--vsock";
        argv[argc++] = vsock_arg;
        argv[argc++] = opt.kind == K_JAILED ? "/" GUEST_NAME : (char *)opt.guest;
        if (opt.mode == M_LAUNCH) {
            argv[argc++] = "--max";
            argv[argc++] = "1";
        }
    }
    argv[argc] = NULL;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (ready_line) {
        if (pipe2(pipefd, O_CLOEXEC) != 0)
            die("pipe: %s", strerror(errno));
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    } else {
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    }
    posix_spawn_file_actions_adddup2(&fa, logfd, 2);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, ingrp > 0 ? pgid : 0);

    v->t_spawn = now_s();
    int rc = posix_spawn(&v->pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        die("posix_spawn %s: %s", argv[0], strerror(rc));
    if (ingrp == 0)
        pgid = v->pid;
    ingrp++;
    if (v->pid <= pid_max)
        pid_slot[v->pid] = (int)slot + 1;
    alive++;
    booting++;
    v->st = S_BOOTING;
    if (ready_line) {
        close(pipefd[1]);
        v->out = pipefd[0];
        fcntl(v->out, F_SETFL, O_NONBLOCK);
        ep_add(v->out, EPOLLIN, TAG_OUT, slot);
    }
    if (opt.kind == K_JAILED)
        wd_set(v->wd, (int)slot + 1);
}

/* ---- invoking -------------------------------------------------------------- */

static size_t request_of(const struct vm *v, uint8_t *buf, size_t cap, char *body, size_t bodycap)
{
    int blen = snprintf(body, bodycap, "fleet-%u", v->id);
    struct ember_faas_hdr h = {.magic = EMBER_FAAS_MAGIC,
                               .version = EMBER_FAAS_VERSION,
                               .length = (uint64_t)blen,
                               .max_response = 256};
    int n = snprintf((char *)buf, cap, "CONNECT %u\n", EMBER_FAAS_PORT);

    ember_faas_encode(buf + n, &h);
    memcpy(buf + n + EMBER_FAAS_HDR_LEN, body, (size_t)blen);
    return (size_t)n + EMBER_FAAS_HDR_LEN + (size_t)blen;
}

static void start_invoke(unsigned slot)
{
    struct vm *v = &vms[slot];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    uint8_t req[128];
    char body[64];
    size_t len = request_of(v, req, sizeof(req), body, sizeof(body));

    memcpy(sa.sun_path, v->sock_path, strlen(v->sock_path) + 1);
    v->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (v->sock < 0)
        die("socket: %s", strerror(errno));
    v->rx_len = 0;
    if (connect(v->sock, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        send(v->sock, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        /* Not bound or not listening yet, or its backlog is full: later. */
        close(v->sock);
        v->sock = -1;
        retries++;
        if (++v->retries > RETRIES_MAX) {
            fail_vm(v, "connect %s: %s", v->sock_path, strerror(errno));
            v->st = opt.mode == M_LAUNCH ? S_DONE : S_IDLE;
            return;
        }
        v->st = S_WAIT_RETRY;
        v->retry_at = now_s() + RETRY_US / 1e6;
        return;
    }
    v->st = S_INVOKING;
    ep_add(v->sock, EPOLLIN | EPOLLRDHUP, TAG_SOCK, slot);
}

static void invoke_finished(unsigned slot)
{
    struct vm *v = &vms[slot];

    close_fd(&v->sock);
    if (opt.mode == M_LAUNCH) {
        v->st = S_DONE;
        if (v->reaped)
            v->st = S_FREE;
    } else {
        v->st = S_IDLE;
    }
}

/* Reads the OK line and the response; checks the echoed body. */
static void sock_readable(unsigned slot, struct series *lat)
{
    struct vm *v = &vms[slot];

    for (;;) {
        ssize_t r = recv(v->sock, v->rx + v->rx_len, sizeof(v->rx) - v->rx_len, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) {
            /* Closed before the OK line: the guest was not listening yet. */
            if (!memchr(v->rx, '\n', v->rx_len) && v->retries < RETRIES_MAX) {
                close_fd(&v->sock);
                v->retries++;
                retries++;
                v->st = S_WAIT_RETRY;
                v->retry_at = now_s() + RETRY_US / 1e6;
                return;
            }
            fail_vm(v, "connection closed after %zu bytes", v->rx_len);
            invoke_finished(slot);
            return;
        }
        v->rx_len += (size_t)r;
        char *nl = memchr(v->rx, '\n', v->rx_len);
        if (!nl) {
            if (v->rx_len == sizeof(v->rx)) {
                fail_vm(v, "no OK line");
                invoke_finished(slot);
            }
            continue;
        }
        if (strncmp(v->rx, "OK ", 3) != 0) {
            fail_vm(v, "handshake answered \"%.*s\"", (int)(nl - v->rx), v->rx);
            invoke_finished(slot);
            return;
        }
        size_t off = (size_t)(nl + 1 - v->rx);
        if (v->rx_len - off < EMBER_FAAS_HDR_LEN)
            continue;
        struct ember_faas_hdr h;
        ember_faas_decode(&h, (const uint8_t *)v->rx + off);
        char body[64];
        int blen = snprintf(body, sizeof(body), "fleet-%u", v->id);
        if (!ember_faas_hdr_ok(&h) || h.status != EMBER_FAAS_S_OK || h.length != (uint64_t)blen) {
            fail_vm(v, "bad response: status %u length %llu", h.status,
                    (unsigned long long)h.length);
            invoke_finished(slot);
            return;
        }
        if (v->rx_len - off - EMBER_FAAS_HDR_LEN < (size_t)blen)
            continue;
        if (memcmp(v->rx + off + EMBER_FAAS_HDR_LEN, body, (size_t)blen) != 0) {
            fail_vm(v, "response body differs from the request");
            invoke_finished(slot);
            return;
        }
        v->t_resp = now_s();
        v->ok = true;
        series_add(lat, v->t_resp - v->t_spawn);
        invoke_finished(slot);
        return;
    }
}

/* ---- events ---------------------------------------------------------------- */

struct counters {
    struct series cold;    /* launch: spawn -> response (s) */
    struct series life;    /* launch: spawn -> reaped */
    struct series tail;    /* launch: response -> reaped */
    struct series ready;   /* density: spawn -> ready line */
    struct series invoke;  /* density: connect -> response */
    struct series done_at; /* launch: completion times since start */
    unsigned completed, spawned;
};

static void vm_ready(unsigned slot)
{
    struct vm *v = &vms[slot];

    v->t_ready = now_s();
    booting--;
    if (opt.mode == M_LAUNCH) {
        start_invoke(slot);
    } else {
        v->st = S_IDLE;
    }
}

static void out_readable(unsigned slot, struct counters *c)
{
    struct vm *v = &vms[slot];
    char buf[512];

    for (;;) {
        ssize_t r = read(v->out, buf, sizeof(buf));
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) {
            close_fd(&v->out);
            if (v->st == S_BOOTING) {
                fail_vm(v, "stdout closed before the ready line");
                booting--;
                v->st = opt.mode == M_LAUNCH ? S_DONE : S_IDLE;
            }
            return;
        }
        for (ssize_t i = 0; i < r; i++) {
            if (v->line_len < sizeof(v->line) - 1)
                v->line[v->line_len++] = buf[i];
            if (buf[i] != '\n')
                continue;
            v->line[v->line_len] = '\0';
            v->line_len = 0;
            const char *want = opt.kind == K_QEMU ? QEMU_READY : EMBER_READY;
            if (v->st == S_BOOTING && strstr(v->line, want)) {
                series_add(&c->ready, now_s() - v->t_spawn);
                /* The console is not needed any more: the VM's later writes
                 * (there are none for faas-echo) fail with EPIPE. */
                close_fd(&v->out);
                if (opt.kind == K_QEMU && opt.mode == M_LAUNCH) {
                    booting--;
                    v->st = S_DONE;
                } else {
                    vm_ready(slot);
                }
                return;
            }
        }
    }
}

static void inotify_readable(void)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));

    for (;;) {
        ssize_t r = read(inofd, buf, sizeof(buf));
        if (r <= 0)
            return;
        for (char *p = buf; p < buf + r;) {
            struct inotify_event *e = (struct inotify_event *)p;
            p += sizeof(*e) + e->len;
            int slot1 = 0;
            if (opt.kind == K_JAILED) {
                if (e->len && strcmp(e->name, "v.sock") == 0 && e->wd >= 0 &&
                    (size_t)e->wd < wd_cap)
                    slot1 = wd_slot[e->wd];
            } else if (e->len) {
                unsigned s, id;
                if (sscanf(e->name, "%u-%u.sock", &s, &id) == 2 && s < nslots && vms[s].id == id)
                    slot1 = (int)s + 1;
            }
            if (!slot1)
                continue;
            struct vm *v = &vms[slot1 - 1];
            unwatch(v);
            if (v->st == S_BOOTING && opt.mode == M_LAUNCH)
                vm_ready((unsigned)slot1 - 1);
        }
    }
}

static void release_jail(struct vm *v)
{
    if (v->jail_dir[0]) {
        rm_tree(v->jail_dir);
        v->jail_dir[0] = '\0';
    }
}

static void reap(struct counters *c, double t0)
{
    int status;
    pid_t p;

    while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
        if (ingrp)
            ingrp--;
        int slot1 = p <= pid_max ? pid_slot[p] : 0;
        if (!slot1)
            continue;
        pid_slot[p] = 0;
        unsigned slot = (unsigned)slot1 - 1;
        struct vm *v = &vms[slot];
        v->reaped = true;
        v->t_exit = now_s();
        alive--;
        unwatch(v);
        close_fd(&v->out);
        /* The response may be in the socket still: read it before judging. */
        if (v->sock >= 0 && v->st == S_INVOKING)
            sock_readable(slot, opt.mode == M_LAUNCH ? &c->cold : &c->invoke);
        if (opt.mode == M_LAUNCH) {
            int want = opt.kind == K_QEMU ? 3 : 0;
            bool ok_exit = WIFEXITED(status) && WEXITSTATUS(status) == want;
            if (!ok_exit)
                fail_vm(v, "exited with %s %d", WIFEXITED(status) ? "status" : "signal",
                        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            if (v->st == S_BOOTING) {
                booting--;
                if (opt.kind != K_QEMU)
                    fail_vm(v, "exited before answering");
            }
            if (ok_exit && (opt.kind == K_QEMU || v->ok)) {
                c->completed++;
                series_add(&c->life, v->t_exit - v->t_spawn);
                series_add(&c->done_at, v->t_exit - t0);
                if (v->ok)
                    series_add(&c->tail, v->t_exit - v->t_resp);
            }
            release_jail(v);
            if (v->sock >= 0 || v->st == S_INVOKING || v->st == S_WAIT_RETRY) {
                if (v->st != S_DONE)
                    fail_vm(v, "exited while being invoked");
                close_fd(&v->sock);
            }
            v->st = S_FREE;
        } else {
            if (v->st == S_BOOTING) {
                booting--;
                fail_vm(v, "exited while booting (status 0x%x)", status);
                v->st = S_IDLE;
            }
            release_jail(v);
        }
    }
}

static void handle_events(int timeout_ms, struct counters *c, double t0, struct series *lat)
{
    struct epoll_event ev[256];
    int n = epoll_wait(epfd, ev, 256, timeout_ms);

    bool child_exited = false;

    for (int i = 0; i < n; i++) {
        uint32_t tag = (uint32_t)(ev[i].data.u64 >> 32), slot = (uint32_t)ev[i].data.u64;
        switch (tag) {
        case TAG_INOTIFY:
            inotify_readable();
            break;
        case TAG_SIGNAL:
            child_exited = true;
            break;
        case TAG_SOCK:
            if (vms[slot].sock >= 0)
                sock_readable(slot, lat);
            break;
        case TAG_OUT:
            if (vms[slot].out >= 0)
                out_readable(slot, c);
            break;
        }
    }
    /* Exits last: a response that arrived in the same batch is timed as
     * read, not after the reaping. */
    if (child_exited) {
        struct signalfd_siginfo si;
        while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
            ;
        reap(c, t0);
    }
    /* Retries and timeouts. */
    double t = now_s();
    for (unsigned s = 0; s < nslots; s++) {
        struct vm *v = &vms[s];
        if (v->st == S_WAIT_RETRY && t >= v->retry_at)
            start_invoke(s);
        if ((v->st == S_BOOTING || v->st == S_INVOKING || v->st == S_WAIT_RETRY) &&
            t - v->t_spawn > VM_TIMEOUT_S && !v->failed) {
            fail_vm(v, "no answer after %.0f s (state %d)", VM_TIMEOUT_S, v->st);
            if (v->st == S_BOOTING)
                booting--;
            close_fd(&v->sock);
            close_fd(&v->out);
            v->st = opt.mode == M_LAUNCH ? S_DONE : S_IDLE;
            if (v->pid > 0 && !v->reaped)
                kill(v->pid, SIGKILL);
        }
    }
}

static int next_timeout_ms(void)
{
    double t = now_s(), due = t + 0.05;
    for (unsigned s = 0; s < nslots; s++)
        if (vms[s].st == S_WAIT_RETRY && vms[s].retry_at < due)
            due = vms[s].retry_at;
    double ms = (due - t) * 1e3;
    return ms <= 0 ? 0 : (int)ceil(ms);
}

/* ---- the two workloads ------------------------------------------------------ */

/* CPU seconds used so far by the driver and by its reaped children. */
static double cpu_s(int who)
{
    struct rusage u;
    getrusage(who, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 +
           (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec / 1e6;
}

static json_t *rusage_json(double wall, unsigned vms_done)
{
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    double cs = (double)kids.ru_utime.tv_sec + (double)kids.ru_utime.tv_usec / 1e6 +
                (double)kids.ru_stime.tv_sec + (double)kids.ru_stime.tv_usec / 1e6;
    double ds = (double)self.ru_utime.tv_sec + (double)self.ru_utime.tv_usec / 1e6 +
                (double)self.ru_stime.tv_sec + (double)self.ru_stime.tv_usec / 1e6;
    return json_pack("{s:f,s:f,s:f}", "children_cpu_ms_per_vm",
                     vms_done ? cs * 1e3 / vms_done : 0.0, "driver_cpu_ms_per_vm",
                     vms_done ? ds * 1e3 / vms_done : 0.0, "wall_s", wall);
}

static json_t *run_launch(void)
{
    struct counters c = {0};
    unsigned long long b0, t0j, b1, t1j;
    double t0, t_end;

    nslots = opt.concurrency;
    vms = calloc(nslots, sizeof(*vms));
    if (!vms)
        die("out of memory");
    for (unsigned s = 0; s < nslots; s++)
        vms[s].sock = vms[s].out = vms[s].wd = -1;
    cpu_read(&b0, &t0j);
    double ours0 = cpu_s(RUSAGE_SELF) + cpu_s(RUSAGE_CHILDREN);
    t0 = now_s();
    t_end = t0 + opt.duration;
    while (now_s() < t_end || alive > 0) {
        unsigned burst = 0;
        for (unsigned s = 0; s < nslots && now_s() < t_end && burst < 8; s++) {
            if (vms[s].st == S_FREE) {
                spawn_vm(s);
                c.spawned++;
                burst++;
            }
        }
        handle_events(alive >= nslots || now_s() >= t_end ? next_timeout_ms() : 0, &c, t0, &c.cold);
        if (failures >= 50 && failures > c.completed)
            die("%u VMs failed, %u completed: stopping (first: %s)", failures, c.completed,
                first_failure);
        if (now_s() > t_end + VM_TIMEOUT_S + 5)
            die("%u VMs still alive %.0f s after the end", alive, VM_TIMEOUT_S + 5);
    }
    double wall = now_s() - t0;
    cpu_read(&b1, &t1j);
    /* What the rest of the host used meanwhile (other work, and kernel
     * workers, some of them tearing our VMs down): a shared host's noise. */
    double ours = cpu_s(RUSAGE_SELF) + cpu_s(RUSAGE_CHILDREN) - ours0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN), hz = sysconf(_SC_CLK_TCK);
    double busy_s = hz > 0 ? (double)(b1 - b0) / (double)hz : 0;
    double other = ncpu > 0 && wall > 0 ? (busy_s - ours) / (wall * (double)ncpu) : 0;

    /* VMs completed per second, by when they were reaped. */
    unsigned nsec = (unsigned)ceil(opt.duration) + (unsigned)VM_TIMEOUT_S + 2;
    unsigned *per = calloc(nsec, sizeof(unsigned));
    for (size_t i = 0; i < c.done_at.n; i++) {
        unsigned b = (unsigned)c.done_at.v[i];
        if (b < nsec)
            per[b]++;
    }
    json_t *ts = json_array();
    unsigned last = 0;
    for (unsigned i = 0; i < nsec; i++)
        if (per[i])
            last = i;
    for (unsigned i = 0; i <= last; i++)
        json_array_append_new(ts, json_integer(per[i]));
    /* Sustained: completions inside [1 s, duration) over that window, so the
     * ramp-up and the drain at the end do not count. */
    unsigned in_window = 0;
    double w0 = opt.duration >= 5 ? 1.0 : 0.0;
    for (size_t i = 0; i < c.done_at.n; i++)
        if (c.done_at.v[i] >= w0 && c.done_at.v[i] < opt.duration)
            in_window++;
    free(per);

    json_t *r =
        json_pack("{s:I,s:I,s:I,s:I,s:f,s:f,s:o,s:o,s:o,s:o,s:o,s:f,s:f,s:o}", "refused_connects",
                  (json_int_t)retries, "spawned", (json_int_t)c.spawned, "completed",
                  (json_int_t)c.completed, "failed", (json_int_t)failures, "sustained_vms_per_s",
                  in_window / (opt.duration - w0), "overall_vms_per_s", c.completed / wall,
                  "cold_invoke_ms", dist_json(&c.cold, 1e3), "lifetime_ms", dist_json(&c.life, 1e3),
                  "response_to_exit_ms", dist_json(&c.tail, 1e3), "per_second", ts, "ready_ms",
                  dist_json(&c.ready, 1e3), "other_cpu_share", other < 0 ? 0.0 : other,
                  "host_cpu_busy", t1j > t0j ? (double)(b1 - b0) / (double)(t1j - t0j) : 0.0, "cpu",
                  rusage_json(wall, c.completed));
    fprintf(stderr,
            "fleet_bench: %s launch: %u completed in %.1f s, sustained %.1f VMs/s, "
            "cold invoke p50 %.2f ms p99 %.2f ms, %u failed\n",
            opt.label, c.completed, wall, in_window / (opt.duration - w0), pct(&c.cold, 50) * 1e3,
            pct(&c.cold, 99) * 1e3, failures);
    return r;
}

static json_t *meminfo_delta_json(const long before[MEMINFO_NKEYS], const long after[MEMINFO_NKEYS],
                                  unsigned n)
{
    json_t *o = json_object();
    for (int i = 0; i < MEMINFO_NKEYS; i++) {
        double d = (double)(i < 2 ? before[i] - after[i] : after[i] - before[i]);
        json_object_set_new(o, meminfo_keys[i], json_real(n ? d / n : 0));
    }
    return o;
}

/* Pss, guest pages and the rest for up to opt.sample VMs, evenly spread. */
static json_t *sample_procs(unsigned n)
{
    unsigned step = opt.sample && n > opt.sample ? n / opt.sample : 1, k = 0;
    struct series pss = {0}, guest = {0}, own = {0}, pte = {0}, thr = {0}, fds = {0};
    for (unsigned s = 0; s < nslots; s += step) {
        struct vm *v = &vms[s];
        struct proc_mem pm;
        if (v->pid <= 0 || v->reaped || v->failed || proc_mem_read(v->pid, &pm) != 0)
            continue;
        series_add(&pss, (double)pm.pss);
        series_add(&guest, (double)pm.guest_rss);
        series_add(&own, (double)(pm.pss - pm.guest_rss));
        series_add(&pte, (double)pm.pagetables_kib);
        series_add(&thr, pm.threads);
        series_add(&fds, pm.fds);
        k++;
    }
    json_t *o =
        json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:o}", "sampled", (json_int_t)k, "pss_kib",
                  dist_json(&pss, 1), "guest_resident_kib", dist_json(&guest, 1), "monitor_pss_kib",
                  dist_json(&own, 1), "page_tables_kib", dist_json(&pte, 1), "threads",
                  dist_json(&thr, 1), "fds", dist_json(&fds, 1));
    free(pss.v);
    free(guest.v);
    free(own.v);
    free(pte.v);
    free(thr.v);
    free(fds.v);
    return o;
}

static void settle(struct counters *c, double seconds)
{
    double until = now_s() + seconds;
    while (now_s() < until)
        handle_events(20, c, 0, &c->invoke);
}

static json_t *run_density(void)
{
    struct counters c = {0};
    long base[MEMINFO_NKEYS], idle[MEMINFO_NKEYS], after[MEMINFO_NKEYS], m[MEMINFO_NKEYS];
    json_t *curve = json_array();
    unsigned step = opt.count >= 20 ? opt.count / 20 : 1, next_point = step;

    nslots = opt.count;
    vms = calloc(nslots, sizeof(*vms));
    if (!vms)
        die("out of memory");
    /* A baseline taken while the host still gets memory back (from VMs of
     * an earlier run: KVM frees after RCU grace periods) would make the
     * first points too low: wait until MemAvailable holds still (two reads
     * 0.5 s apart within 2 MiB), at most 30 s. */
    long prev = mem_available();
    for (int i = 0; i < 60; i++) {
        usleep(500000);
        long cur = mem_available();
        if (labs(cur - prev) <= 2048)
            break;
        prev = cur;
    }
    meminfo_read(base);

    /* Ramp: N VMs, start_conc of them booting at once. */
    double t0 = now_s();
    unsigned spawned = 0, ready = 0;
    double settled = 0; /* time spent letting memory settle: not start-up time */
    /* In steps of N/20: spawn up to the step, let every VM of it boot, take
     * a memory point (the memory-per-VM curve), go on. */
    while (spawned < opt.count || booting > 0) {
        unsigned stop = next_point < opt.count ? next_point : opt.count;
        while (spawned < stop && booting < opt.start_conc)
            spawn_vm(spawned++);
        handle_events(next_timeout_ms(), &c, t0, &c.invoke);
        ready = (unsigned)c.ready.n;
        if (spawned == stop && booting == 0) {
            if (ready) {
                /* A VM's memory keeps growing for a moment after its ready
                 * line (the guest goes idle, KVM fills in): let it. */
                double ts0 = now_s();
                settle(&c, 1.0);
                settled += now_s() - ts0;
                meminfo_read(m);
                json_array_append_new(curve, json_pack("{s:I,s:f}", "n", (json_int_t)ready,
                                                       "host_kib_per_vm",
                                                       (double)(base[0] - m[0]) / ready));
            }
            next_point += step;
        }
        if (failures >= 50 && failures > ready)
            die("%u VMs failed, %u alive: stopping (first: %s)", failures, ready, first_failure);
    }
    double ramp = now_s() - t0 - settled;
    fprintf(stderr, "fleet_bench: %s density: %u alive after %.1f s (%u failed)\n", opt.label,
            ready, ramp, failures);
    settle(&c, 2.0);
    meminfo_read(idle);
    json_array_append_new(curve, json_pack("{s:I,s:f}", "n", (json_int_t)ready, "host_kib_per_vm",
                                           ready ? (double)(base[0] - idle[0]) / ready : 0.0));
    json_t *procs_idle = sample_procs(ready);

    /* Invoke every one, invoke_conc connections at once. */
    unsigned invoked = 0, ok = 0;
    double ti = now_s();
    if (opt.kind != K_QEMU) {
        unsigned next = 0, inflight;
        for (;;) {
            inflight = 0;
            for (unsigned s = 0; s < nslots; s++)
                if (vms[s].st == S_INVOKING || vms[s].st == S_WAIT_RETRY)
                    inflight++;
            while (next < nslots && inflight < opt.invoke_conc) {
                struct vm *v = &vms[next++];
                if (v->st != S_IDLE || v->failed || v->reaped)
                    continue;
                v->t_spawn = now_s(); /* the invoke latency's start */
                v->retries = 0;
                start_invoke(next - 1);
                invoked++;
                inflight++;
            }
            if (next >= nslots && inflight == 0)
                break;
            handle_events(next_timeout_ms(), &c, t0, &c.invoke);
        }
        for (unsigned s = 0; s < nslots; s++)
            ok += vms[s].ok;
        fprintf(stderr, "fleet_bench: %s density: %u of %u invoked successfully in %.2f s\n",
                opt.label, ok, opt.count, now_s() - ti);
    }
    double invoke_wall = now_s() - ti;
    settle(&c, 1.0);
    meminfo_read(after);
    json_t *procs_after = opt.kind != K_QEMU ? sample_procs(ready) : json_null();

    /* Teardown: SIGTERM to all at once; until the last is reaped, and until
     * MemAvailable is back within 1 % of N VMs' worth. */
    double td = now_s(), t_reaped = 0, t_mem = 0;
    unsigned remaining = alive;
    for (unsigned s = 0; s < nslots; s++)
        if (vms[s].pid > 0 && !vms[s].reaped)
            kill(vms[s].pid, SIGTERM);
    long used = base[0] - after[0];
    while (now_s() - td < 30) {
        handle_events(5, &c, t0, &c.invoke);
        if (alive == 0 && !t_reaped)
            t_reaped = now_s() - td;
        if (t_reaped && base[0] - mem_available() <= used / 100 + 1024) {
            t_mem = now_s() - td;
            break;
        }
    }
    if (alive)
        fail_vm(&vms[0], "%u VMs still alive 30 s after SIGTERM", alive);
    long after_td[MEMINFO_NKEYS];
    meminfo_read(after_td);

    double per_vm = ready ? (double)(base[0] - idle[0]) / ready : 0;
    double per_vm_after = ready ? (double)(base[0] - after[0]) / ready : 0;
    json_t *r = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:o,s:f,s:f,s:o,s:o,s:o,s:o,s:o,s:o,s:f,s:f,s:o,s:I,s:o}",
        "target", (json_int_t)opt.count, "alive", (json_int_t)ready, "invoked", (json_int_t)invoked,
        "invoked_ok", (json_int_t)ok, "failed", (json_int_t)failures, "ramp_s", ramp,
        "ramp_vms_per_s", ramp > 0 ? ready / ramp : 0.0, "boot_to_ready_ms",
        dist_json(&c.ready, 1e3), "host_kib_per_vm_idle", per_vm, "host_kib_per_vm_invoked",
        per_vm_after, "meminfo_kib_per_vm_idle", meminfo_delta_json(base, idle, ready),
        "meminfo_kib_per_vm_invoked", meminfo_delta_json(base, after, ready), "procs_idle",
        procs_idle, "procs_invoked", procs_after, "invoke_ms", dist_json(&c.invoke, 1e3), "curve",
        curve, "invoke_all_s", invoke_wall, "teardown_reaped_s", t_reaped, "teardown_memory_back_s",
        t_mem > 0 ? json_real(t_mem) : json_null(), "teardown_vms", (json_int_t)remaining,
        "memory_not_back_kib_per_vm",
        json_real(ready ? (double)(base[0] - after_td[0]) / ready : 0.0));
    fprintf(stderr,
            "fleet_bench: %s density: %.0f KiB/VM idle, %.0f KiB/VM invoked (MemAvailable); "
            "teardown of %u: reaped in %.2f s, memory back in %.2f s\n",
            opt.label, per_vm, per_vm_after, remaining, t_reaped, t_mem);
    return r;
}

/* ---- main ---------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: ember-bench-fleet --mode launch|density --kind ember|jailed|qemu\n"
               "         --ember PATH --guest FAAS_ECHO [--jailer PATH] [--qemu PATH]\n"
               "         [--mem MIB] [--duration S] [--concurrency C]          (launch)\n"
               "         [--count N] [--start-concurrency K] [--invoke-concurrency K]\n"
               "         [--sample M]                                          (density)\n"
               "         [--ready-line]                                        (launch)\n"
               "         [--label NAME] [--no-seccomp] [--out FILE]\n");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"mode", required_argument, 0, 'm'},
        {"kind", required_argument, 0, 'k'},
        {"ember", required_argument, 0, 'e'},
        {"guest", required_argument, 0, 'g'},
        {"jailer", required_argument, 0, 'j'},
        {"qemu", required_argument, 0, 'q'},
        {"mem", required_argument, 0, 'M'},
        {"duration", required_argument, 0, 'd'},
        {"concurrency", required_argument, 0, 'c'},
        {"count", required_argument, 0, 'n'},
        {"start-concurrency", required_argument, 0, 's'},
        {"invoke-concurrency", required_argument, 0, 'i'},
        {"sample", required_argument, 0, 'S'},
        {"label", required_argument, 0, 'l'},
        {"no-seccomp", no_argument, 0, 'N'},
        {"ready-line", no_argument, 0, 'R'},
        {"out", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int ch;
    const char *mode = NULL, *kind = "ember";

    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'm':
            mode = optarg;
            break;
        case 'k':
            kind = optarg;
            break;
        case 'e':
            opt.ember = optarg;
            break;
        case 'g':
            opt.guest = optarg;
            break;
        case 'j':
            opt.jailer = optarg;
            break;
        case 'q':
            opt.qemu = optarg;
            break;
        case 'M':
            opt.mem_mib = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'd':
            opt.duration = strtod(optarg, NULL);
            break;
        case 'c':
            opt.concurrency = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'n':
            opt.count = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 's':
            opt.start_conc = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'i':
            opt.invoke_conc = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'S':
            opt.sample = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'l':
            opt.label = optarg;
            break;
        case 'N':
            opt.no_seccomp = true;
            break;
        case 'R':
            opt.ready_line = true;
            break;
        case 'o':
            opt.out_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!mode || (strcmp(mode, "launch") && strcmp(mode, "density"))) {
        usage(stderr);
        return 2;
    }
    opt.mode = strcmp(mode, "launch") == 0 ? M_LAUNCH : M_DENSITY;
    opt.kind = strcmp(kind, "qemu") == 0     ? K_QEMU
               : strcmp(kind, "jailed") == 0 ? K_JAILED
                                             : K_EMBER;
    if (strcmp(kind, "qemu") && strcmp(kind, "jailed") && strcmp(kind, "ember")) {
        usage(stderr);
        return 2;
    }
    if (!opt.guest || (opt.kind != K_QEMU && !opt.ember) || (opt.kind == K_JAILED && !opt.jailer) ||
        (opt.kind == K_QEMU && !opt.qemu) || !opt.concurrency || !opt.count || !opt.start_conc ||
        !opt.invoke_conc || opt.duration <= 0) {
        usage(stderr);
        return 2;
    }
    if (!opt.label)
        opt.label = kind;
    /* The jailer wants absolute paths; so do the jails' hard links. */
    const char **paths[] = {&opt.ember, &opt.guest, &opt.jailer, &opt.qemu};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (!*paths[i])
            continue;
        char *abs = realpath(*paths[i], NULL);
        if (!abs) {
            fprintf(stderr, "fleet_bench: %s: %s\n", *paths[i], strerror(errno));
            return 2;
        }
        *paths[i] = abs;
    }
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        fprintf(stderr, "fleet_bench: SKIPPED: /dev/kvm: %s\n", strerror(errno));
        return EXIT_SKIPPED;
    }

    /* Budget: one socket (launch) or pipe end (density start-up) per VM in
     * flight, plus a few; the VMs' own fds are their own. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
    if (!f || fscanf(f, "%ld", &pid_max) != 1)
        pid_max = 4194304;
    if (f)
        fclose(f);
    pid_slot = calloc((size_t)pid_max + 1, sizeof(int));
    if (!pid_slot)
        die("out of memory");

    snprintf(run_dir, sizeof(run_dir), "/tmp/ember-fleet-XXXXXX");
    if (!mkdtemp(run_dir))
        die("mkdtemp: %s", strerror(errno));
    chmod(run_dir, 0755);
    atexit(cleanup);
    signal(SIGINT, on_fatal_signal);
    signal(SIGTERM, on_fatal_signal);
    signal(SIGHUP, on_fatal_signal);
    signal(SIGPIPE, SIG_IGN);

    char logpath[PATH_MAX + 16];
    path_fmt(logpath, sizeof(logpath), "%s/vm.log", run_dir);
    logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    if (logfd < 0 || epfd < 0 || inofd < 0 || sigfd < 0)
        die("setting up: %s", strerror(errno));
    ep_add(inofd, EPOLLIN, TAG_INOTIFY, 0);
    ep_add(sigfd, EPOLLIN, TAG_SIGNAL, 0);
    if (opt.kind == K_EMBER && opt.mode == M_LAUNCH && !opt.ready_line &&
        inotify_add_watch(inofd, run_dir, IN_CREATE) < 0)
        die("inotify_add_watch: %s", strerror(errno));
    if (opt.kind == K_JAILED) {
        char d[PATH_MAX];
        path_fmt(d, sizeof(d), "%s/jails", run_dir);
        mkdir(d, 0755);
        path_fmt(d, sizeof(d), "%s/jails/ember", run_dir);
        mkdir(d, 0755);
        /* Hard links into the jails need the guest on this file system. */
        path_fmt(guest_in_dir, sizeof(guest_in_dir), "%s/" GUEST_NAME, run_dir);
        char cmd[3 * PATH_MAX];
        path_fmt(cmd, sizeof(cmd), "cp '%s' '%s' && chmod 0755 '%s'", opt.guest, guest_in_dir,
                 guest_in_dir);
        if (system(cmd) != 0)
            die("cannot copy %s into %s", opt.guest, run_dir);
    }

    json_t *res = opt.mode == M_LAUNCH ? run_launch() : run_density();
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    json_t *doc = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:{s:I,s:f,s:I,s:I,s:I,s:I,s:b,s:b},s:o,s:I,s:s?}", "benchmark",
        "fleet", "mode", mode, "kind", kind, "label", opt.label, "date", date, "config", "mem_mib",
        (json_int_t)opt.mem_mib, "duration_s", opt.duration, "concurrency",
        (json_int_t)opt.concurrency, "count", (json_int_t)opt.count, "start_concurrency",
        (json_int_t)opt.start_conc, "invoke_concurrency", (json_int_t)opt.invoke_conc, "seccomp",
        !opt.no_seccomp, "ready_line", opt.ready_line, "result", res, "failures",
        (json_int_t)failures, "first_failure", first_failure[0] ? first_failure : NULL);
    FILE *out = opt.out_path ? fopen(opt.out_path, "w") : stdout;
    if (!out)
        die("%s: %s", opt.out_path, strerror(errno));
    json_dumpf(doc, out, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    fputc('\n', out);
    if (out != stdout)
        fclose(out);
    json_decref(doc);
    if (failures) {
        fprintf(stderr, "fleet_bench: %u VM(s) failed; first: %s\n", failures, first_failure);
        /* The VMs' stderr, for the record. */
        char cmd[PATH_MAX + 64];
        path_fmt(cmd, sizeof(cmd), "sort '%s' | uniq -c | sort -rn | head -5 >&2", logpath);
        if (system(cmd) != 0)
            fprintf(stderr, "fleet_bench: cannot show %s\n", logpath);
    }
    cleanup();
    return failures ? 1 : 0;
}
