/* bench_boot.c: boot latency and memory of ember next to the raw-KVM floor and QEMU microvm.
 *
 * Each configuration is one command line (the floor, `ember run hello`, QEMU microvm booting the
 * same ELF). The runs are interleaved round-robin, with the starting configuration rotating every
 * round, so the drift of this noisy host hits all of them alike. A run is timed on
 * CLOCK_MONOTONIC from posix_spawn() to the wait4() that reaps it: process exec to exit, the cold
 * start a FaaS platform pays. Every run must exit with its expected status and print its expected
 * output, or the benchmark stops with a message and a non-zero status.
 *
 * Memory: ember's own `--timings` line (rss-peak, guest-resident) is collected on every run, and
 * wait4's ru_maxrss for every child. Both count the spawning process too: at execve() the kernel
 * folds the old mm's high-water mark into the process's maxrss, and posix_spawn's child shares
 * the driver's mm until then. So after the timed runs a few untimed probe runs go under ptrace,
 * stopped at PTRACE_EVENT_EXIT (before the mm is torn down), where /proc/PID/status has VmHWM of
 * the exec'd image alone and /proc/PID/smaps says what the resident memory is.
 *
 * Output: JSON on stdout (or --out FILE), a short summary on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define EXIT_SKIPPED   77 /* nothing could be measured (automake's "skipped") */
#define MAX_ARGS       40
#define OUTPUT_MAX     (64 * 1024)
#define GREETING       "Hello from ember!"
#define TIMELINE_MARKS 4
#define MAPPINGS_MAX   64
#define MAPPINGS_SHOWN 12

/* The targets (issue 2, section Benchmark). */
#define TARGET_EMBER_OVER_FLOOR 1.25
#define TARGET_QEMU_OVER_EMBER  10.0
#define TARGET_OVERHEAD_KIB     1536

static const char *const timeline_names[TIMELINE_MARKS] = {"vm-created", "first-instruction",
                                                           "guest-main", "exit"};

/* One resident-memory bucket of a process stopped at exit: a file or an anonymous kind. */
struct mapping_rss {
    char name[128];
    long rss_kib;
};

/* A process's memory as seen at its PTRACE_EVENT_EXIT stop. */
struct probe {
    long hwm_kib, rss_kib, anon_kib, file_kib, shmem_kib;
    long pss_kib, private_kib; /* from smaps_rollup: what sharing leaves to this process */
    struct mapping_rss maps[MAPPINGS_MAX];
    int nmaps;
};

struct config {
    const char *name;
    const char *skipped;        /* why it does not run, or NULL */
    char *argv[MAX_ARGS];       /* the timed runs */
    char *probe_argv[MAX_ARGS]; /* the probe runs, if they differ */
    int expect_status;
    const char *expect_token; /* must appear on stdout, or NULL */
    bool ember_lines;         /* probe runs: parse ember's --timings lines from stderr */
    int runs, done;
    double *us;       /* wall time of each run */
    double *maxrss;   /* wait4 ru_maxrss of each run, KiB */
    double *rss_peak; /* ember, per probe run: its rss-peak, KiB */
    double *guest_res;
    double *timeline[TIMELINE_MARKS];
    int nprobes;
    double *probe_hwm; /* VmHWM at exit of each probe run, KiB */
    double *probe_overhead;
    struct probe last_probe;
};

struct options {
    const char *ember, *guest, *floor, *qemu;
    const char *baseline; /* another ember build to compare with, or NULL */
    int runs, qemu_runs, warmup, probes;
    const char *out;
};

static int out_fd, err_fd, null_fd;

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);

    if (!p) {
        fprintf(stderr, "ember-bench-boot: out of memory\n");
        exit(1);
    }
    return p;
}

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Empties a memfd before a run. */
static void reset_fd(int fd)
{
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
        perror("ember-bench-boot: memfd");
        exit(1);
    }
}

/* Reads what a child wrote to a memfd, NUL-terminated, truncated to cap - 1 bytes. */
static void slurp_fd(int fd, char *buf, size_t cap)
{
    ssize_t n = pread(fd, buf, cap - 1, 0);

    buf[n > 0 ? n : 0] = '\0';
}

static void print_output(const char *what, const char *buf)
{
    size_t len = strlen(buf);

    fprintf(stderr, "---- %s (%zu bytes%s) ----\n%.*s%s", what, len,
            len > 2000 ? ", first 2000" : "", (int)(len > 2000 ? 2000 : len), buf,
            len && buf[len - 1] != '\n' ? "\n" : "");
}

/* The checks every run must pass: exit status and output. Returns 0 or -1 with a message. */
static int check_run(const struct config *c, bool probe, int run, int status, const char *out,
                     const char *err)
{
    const char *why = NULL;
    char what[96];

    if (WIFSIGNALED(status)) {
        snprintf(what, sizeof(what), "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
        why = what;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != c->expect_status) {
        snprintf(what, sizeof(what), "exit status %d, expected %d", WEXITSTATUS(status),
                 c->expect_status);
        why = what;
    } else if (c->expect_token && !strstr(out, c->expect_token)) {
        snprintf(what, sizeof(what), "no \"%s\" on stdout", c->expect_token);
        why = what;
    } else if (probe && c->ember_lines && !strstr(err, "ember: memory (KiB):")) {
        why = "no \"ember: memory\" line on stderr (--timings)";
    }
    if (!why)
        return 0;
    fprintf(stderr, "ember-bench-boot: FAILED: %s, %s %d: %s\n  command:", c->name,
            probe     ? "probe run"
            : run < 0 ? "warm-up run"
                      : "run",
            run < 0 ? -run : run, why);
    for (int i = 0; (probe ? c->probe_argv : c->argv)[i]; i++)
        fprintf(stderr, " %s", (probe ? c->probe_argv : c->argv)[i]);
    fprintf(stderr, "\n");
    print_output("stdout", out);
    print_output("stderr", err);
    return -1;
}

/* Takes "key=NUMBER" out of ember's --timings lines; -1 if absent. */
static double ember_field(const char *err, const char *key)
{
    char pat[64];
    const char *p;

    snprintf(pat, sizeof(pat), " %s=", key);
    p = strstr(err, pat);
    if (!p || p[strlen(pat)] < '0' || p[strlen(pat)] > '9')
        return -1;
    return strtod(p + strlen(pat), NULL);
}

/* posix_spawn file actions shared by every run: stdin from /dev/null, stdout and stderr to the
 * memfds the driver reads afterwards (no pipe to drain while the clock runs). */
static posix_spawn_file_actions_t spawn_actions;

static void setup_spawn_actions(void)
{
    posix_spawn_file_actions_init(&spawn_actions);
    posix_spawn_file_actions_adddup2(&spawn_actions, null_fd, 0);
    posix_spawn_file_actions_adddup2(&spawn_actions, out_fd, 1);
    posix_spawn_file_actions_adddup2(&spawn_actions, err_fd, 2);
}

/* One run. record: store the time and memory (false for warm-up). Returns 0 or -1. */
static int run_once(struct config *c, bool record, int warmup)
{
    static char out[OUTPUT_MAX], err[OUTPUT_MAX];
    struct rusage ru;
    double t0, t1;
    int status, rc;
    pid_t pid;

    reset_fd(out_fd);
    reset_fd(err_fd);
    t0 = now_us();
    rc = posix_spawn(&pid, c->argv[0], &spawn_actions, NULL, c->argv, environ);
    if (rc != 0) {
        fprintf(stderr, "ember-bench-boot: FAILED: %s: spawn %s: %s\n", c->name, c->argv[0],
                strerror(rc));
        return -1;
    }
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("ember-bench-boot: wait4");
            return -1;
        }
    }
    t1 = now_us();
    slurp_fd(out_fd, out, sizeof(out));
    slurp_fd(err_fd, err, sizeof(err));
    if (check_run(c, false, record ? c->done : -warmup - 1, status, out, err) != 0)
        return -1;
    if (!record)
        return 0;
    c->us[c->done] = t1 - t0;
    c->maxrss[c->done] = (double)ru.ru_maxrss;
    c->done++;
    return 0;
}

/* Reads "Key:   N kB" from /proc/PID/status. */
static long status_kib(const char *status, const char *key)
{
    const char *p = strstr(status, key);

    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* Sums the Rss of /proc/PID/smaps by mapping: file basename, [heap], [stack], [anon]... */
static void read_smaps(pid_t pid, struct probe *pr)
{
    char path[64], line[512], cur[128] = "[anon]";
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
    f = fopen(path, "re");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        long kib;
        int name_at = 0;

        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &name_at) >= 2 && name_at > 0) {
            char *name = line + name_at, *slash;

            name[strcspn(name, "\n")] = '\0';
            slash = strrchr(name, '/');
            snprintf(cur, sizeof(cur), "%s", !*name ? "[anon]" : slash ? slash + 1 : name);
        } else if (sscanf(line, "Rss: %ld kB", &kib) == 1 && kib > 0) {
            int i;

            for (i = 0; i < pr->nmaps && strcmp(pr->maps[i].name, cur) != 0; i++)
                ;
            if (i == pr->nmaps && pr->nmaps < MAPPINGS_MAX)
                snprintf(pr->maps[pr->nmaps++].name, sizeof(pr->maps[0].name), "%s", cur);
            if (i < pr->nmaps)
                pr->maps[i].rss_kib += kib;
        }
    }
    fclose(f);
}

/* Largest first. */
static int cmp_mapping(const void *a, const void *b)
{
    const struct mapping_rss *x = a, *y = b;

    return (y->rss_kib > x->rss_kib) - (y->rss_kib < x->rss_kib);
}

static void read_probe(pid_t pid, struct probe *pr)
{
    char path[64], buf[4096];
    ssize_t n;
    int fd;

    memset(pr, 0, sizeof(*pr));
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    pr->hwm_kib = status_kib(buf, "VmHWM:");
    pr->rss_kib = status_kib(buf, "VmRSS:");
    pr->anon_kib = status_kib(buf, "RssAnon:");
    pr->file_kib = status_kib(buf, "RssFile:");
    pr->shmem_kib = status_kib(buf, "RssShmem:");
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    pr->pss_kib = status_kib(buf, "\nPss:");
    pr->private_kib = status_kib(buf, "Private_Clean:") + status_kib(buf, "Private_Dirty:");
    read_smaps(pid, pr);
    qsort(pr->maps, (size_t)pr->nmaps, sizeof(pr->maps[0]), cmp_mapping);
}

/* One untimed run under ptrace, stopped at exit to read its memory. Returns 0 or -1. */
static int probe_once(struct config *c)
{
    static char out[OUTPUT_MAX], err[OUTPUT_MAX];
    struct probe pr = {.hwm_kib = -1};
    int status;
    pid_t pid;

    reset_fd(out_fd);
    reset_fd(err_fd);
    pid = fork();
    if (pid < 0) {
        perror("ember-bench-boot: fork");
        return -1;
    }
    if (pid == 0) {
        dup2(null_fd, 0);
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) == 0)
            execv(c->probe_argv[0], c->probe_argv);
        _exit(127);
    }
    /* First stop: the SIGTRAP of the execve. */
    if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status)) {
        fprintf(stderr, "ember-bench-boot: %s: probe run did not stop at exec\n", c->name);
        return -1;
    }
    ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)(long)(PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL));
    ptrace(PTRACE_CONT, pid, NULL, NULL);
    for (;;) {
        if (waitpid(pid, &status, 0) != pid) {
            if (errno == EINTR)
                continue;
            perror("ember-bench-boot: waitpid");
            return -1;
        }
        if (WIFEXITED(status) || WIFSIGNALED(status))
            break;
        if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXIT << 8))) {
            read_probe(pid, &pr);
            ptrace(PTRACE_CONT, pid, NULL, NULL);
        } else {
            /* A signal for the tracee: pass it on. */
            ptrace(PTRACE_CONT, pid, NULL, (void *)(long)WSTOPSIG(status));
        }
    }
    slurp_fd(out_fd, out, sizeof(out));
    slurp_fd(err_fd, err, sizeof(err));
    if (check_run(c, true, c->nprobes, status, out, err) != 0)
        return -1;
    if (pr.hwm_kib < 0) {
        fprintf(stderr, "ember-bench-boot: %s: no exit stop in the probe run\n", c->name);
        return -1;
    }
    c->probe_hwm[c->nprobes] = (double)pr.hwm_kib;
    if (c->ember_lines) {
        c->rss_peak[c->nprobes] = ember_field(err, "rss-peak");
        c->guest_res[c->nprobes] = ember_field(err, "guest-resident");
        c->probe_overhead[c->nprobes] = (double)pr.hwm_kib - c->guest_res[c->nprobes];
        for (int m = 0; m < TIMELINE_MARKS; m++)
            c->timeline[m][c->nprobes] = ember_field(err, timeline_names[m]);
    }
    c->nprobes++;
    c->last_probe = pr;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

struct stats {
    double median, p99, min, max, mean;
};

/* Median (mean of the middle two for an even count) and p99 (nearest rank). */
static struct stats stats_of(const double *v, int n)
{
    struct stats s = {0};
    double *sorted = xcalloc((size_t)n, sizeof(double));
    int rank;

    memcpy(sorted, v, (size_t)n * sizeof(double));
    qsort(sorted, (size_t)n, sizeof(double), cmp_double);
    s.median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    rank = (int)ceil(0.99 * n);
    s.p99 = sorted[rank > 0 ? rank - 1 : 0];
    s.min = sorted[0];
    s.max = sorted[n - 1];
    for (int i = 0; i < n; i++)
        s.mean += sorted[i] / n;
    free(sorted);
    return s;
}

static double median_of(const double *v, int n)
{
    return n > 0 ? stats_of(v, n).median : -1;
}

static double round1(double x)
{
    return round(x * 10) / 10;
}

static json_t *config_json(const struct config *c)
{
    json_t *o = json_object();
    struct stats s;

    json_object_set_new(o, "name", json_string(c->name));
    if (c->skipped) {
        json_object_set_new(o, "skipped", json_string(c->skipped));
        return o;
    }
    s = stats_of(c->us, c->done);
    json_object_set_new(o, "runs", json_integer(c->done));
    json_object_set_new(o, "median_us", json_real(round1(s.median)));
    json_object_set_new(o, "p99_us", json_real(round1(s.p99)));
    json_object_set_new(o, "min_us", json_real(round1(s.min)));
    json_object_set_new(o, "max_us", json_real(round1(s.max)));
    json_object_set_new(o, "mean_us", json_real(round1(s.mean)));
    json_object_set_new(o, "wait4_maxrss_kib_median", json_real(median_of(c->maxrss, c->done)));
    /* Every run in the order measured, for distribution plots (benches/report.sh). */
    json_t *samples = json_array();
    for (int i = 0; i < c->done; i++)
        json_array_append_new(samples, json_real(round1(c->us[i])));
    json_object_set_new(o, "samples_us", samples);
    if (c->nprobes > 0) {
        json_t *m = json_object();
        json_object_set_new(o, "probe_runs", json_integer(c->nprobes));
        json_object_set_new(o, "vmhwm_kib_median", json_real(median_of(c->probe_hwm, c->nprobes)));
        json_object_set_new(m, "VmRSS", json_integer(c->last_probe.rss_kib));
        json_object_set_new(m, "RssAnon", json_integer(c->last_probe.anon_kib));
        json_object_set_new(m, "RssFile", json_integer(c->last_probe.file_kib));
        json_object_set_new(m, "RssShmem", json_integer(c->last_probe.shmem_kib));
        json_object_set_new(m, "Pss", json_integer(c->last_probe.pss_kib));
        json_object_set_new(m, "Private", json_integer(c->last_probe.private_kib));
        json_object_set_new(o, "rss_at_exit_kib", m);
        m = json_object();
        for (int i = 0; i < c->last_probe.nmaps; i++) {
            if (i == MAPPINGS_SHOWN) {
                long rest = 0;
                for (; i < c->last_probe.nmaps; i++)
                    rest += c->last_probe.maps[i].rss_kib;
                json_object_set_new(m, "(the rest)", json_integer(rest));
                break;
            }
            json_object_set_new(m, c->last_probe.maps[i].name,
                                json_integer(c->last_probe.maps[i].rss_kib));
        }
        json_object_set_new(o, "rss_at_exit_by_mapping_kib", m);
    }
    if (c->ember_lines) {
        json_t *t = json_object();
        for (int m = 0; m < TIMELINE_MARKS; m++)
            json_object_set_new(t, timeline_names[m],
                                json_real(median_of(c->timeline[m], c->nprobes)));
        json_object_set_new(o, "probe_timeline_us_median", t);
    }
    return o;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ember-bench-boot --ember PATH --guest ELF --floor PATH [--qemu PATH]\n"
            "                        [--ember-baseline PATH]\n"
            "                        [--runs N] [--qemu-runs N] [--warmup N] [--probes N]\n"
            "                        [--out FILE]\n"
            "Times exec->exit of the floor, `ember run ELF` and QEMU microvm booting ELF,\n"
            "interleaved round-robin; then --probes untimed runs of each under ptrace (ember\n"
            "with --timings) for peak RSS. JSON to stdout or FILE, a summary to stderr.\n"
            "Without --qemu (or with an empty PATH) QEMU is skipped with a message.\n"
            "--ember-baseline: another ember build (say, linked differently), run the same\n"
            "way as a fourth configuration, interleaved, so that both compare in one run.\n"
            "Exit status: 0 measured, 1 a boot failed, 2 usage, 77 nothing could run (no KVM).\n");
}

static int parse_count(const char *s, int min)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < min || v > 100000) {
        fprintf(stderr, "ember-bench-boot: \"%s\" is not a count (%d to 100000)\n", s, min);
        exit(2);
    }
    return (int)v;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {{"ember", required_argument, NULL, 'e'},
                                             {"guest", required_argument, NULL, 'g'},
                                             {"floor", required_argument, NULL, 'f'},
                                             {"qemu", required_argument, NULL, 'q'},
                                             {"ember-baseline", required_argument, NULL, 'b'},
                                             {"runs", required_argument, NULL, 'n'},
                                             {"qemu-runs", required_argument, NULL, 'Q'},
                                             {"warmup", required_argument, NULL, 'w'},
                                             {"probes", required_argument, NULL, 'p'},
                                             {"out", required_argument, NULL, 'o'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int ch;

    *o = (struct options){.runs = 200, .qemu_runs = -1, .warmup = 3, .probes = 20};
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'e':
            o->ember = optarg;
            break;
        case 'g':
            o->guest = optarg;
            break;
        case 'f':
            o->floor = optarg;
            break;
        case 'q':
            o->qemu = optarg;
            break;
        case 'b':
            o->baseline = optarg;
            break;
        case 'n':
            o->runs = parse_count(optarg, 1);
            break;
        case 'Q':
            o->qemu_runs = parse_count(optarg, 1);
            break;
        case 'w':
            o->warmup = parse_count(optarg, 0);
            break;
        case 'p':
            o->probes = parse_count(optarg, 0);
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind != argc || !o->ember || !o->guest || !o->floor) {
        usage(stderr);
        exit(2);
    }
    if (o->qemu_runs < 0 || o->qemu_runs > o->runs)
        o->qemu_runs = o->runs;
}

static void alloc_results(struct config *c, int probes)
{
    c->us = xcalloc((size_t)c->runs, sizeof(double));
    c->maxrss = xcalloc((size_t)c->runs, sizeof(double));
    c->rss_peak = xcalloc((size_t)probes, sizeof(double));
    c->guest_res = xcalloc((size_t)probes, sizeof(double));
    for (int m = 0; m < TIMELINE_MARKS; m++)
        c->timeline[m] = xcalloc((size_t)probes, sizeof(double));
    c->probe_hwm = xcalloc((size_t)probes, sizeof(double));
    c->probe_overhead = xcalloc((size_t)probes, sizeof(double));
}

/* A program the driver must run: skipped with a reason when it cannot. */
static const char *check_program(const char *path, const char *what)
{
    static char why[3][512];
    static int next;
    char *w = why[next++ % 3];

    if (!path || !*path) {
        snprintf(w, sizeof(why[0]), "%s not found (install it or pass its path)", what);
        return w;
    }
    if (access(path, X_OK) != 0) {
        snprintf(w, sizeof(why[0]), "%s: %s: %s", what, path, strerror(errno));
        return w;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct options o;
    struct config cfg[4] = {0}, *floor_c = &cfg[0], *ember_c = &cfg[1], *qemu_c = &cfg[2];
    struct config *base_c = &cfg[3];
    const char *kvm_missing = NULL;
    char kvm_why[300], guest_why[600];
    int measured = 0, max_runs = 0;
    json_t *root, *arr, *ratios, *rss, *targets;
    double fl = -1, em = -1, qm = -1, bm = -1, overhead = -1, overhead_self = -1;
    double base_overhead = -1;

    parse_options(argc, argv, &o);
    const int ncfg = o.baseline ? 4 : 3;

    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        snprintf(kvm_why, sizeof(kvm_why), "/dev/kvm: %s (all three configurations need KVM)",
                 strerror(errno));
        kvm_missing = kvm_why;
    }
    *floor_c = (struct config){.name = "floor", .argv = {(char *)o.floor}, .runs = o.runs};
    /* Timed without --timings (its mincore of all guest RAM and its prints cost ~0.1-0.2 ms
     * here); the probe runs add it for ember's own memory line and timeline. */
    *ember_c = (struct config){.name = "ember",
                               .argv = {(char *)o.ember, "run", (char *)o.guest},
                               .probe_argv = {(char *)o.ember, "run", "--timings", (char *)o.guest},
                               .expect_token = GREETING,
                               .ember_lines = true,
                               .runs = o.runs};
    /* The command line of issue 2: microvm with a serial console and isa-debug-exit, through
     * which the SDK's PVH path exits with (status << 1) | 1, so hello's 0 becomes 1. */
    *qemu_c = (struct config){
        .name = "qemu-microvm",
        .argv = {(char *)o.qemu, "-M", "microvm,isa-serial=on", "-enable-kvm", "-cpu",
                 "host,-arch-capabilities", "-m", "128", "-nodefaults", "-no-user-config",
                 "-nographic", "-serial", "stdio", "-no-reboot", "-device",
                 "isa-debug-exit,iobase=0x501,iosize=4", "-kernel", (char *)o.guest},
        .expect_status = 1,
        .expect_token = GREETING,
        .runs = o.qemu_runs};
    /* --ember-baseline: another build of ember (say, linked differently), run the same way
     * and interleaved with the others, so that the two compare within one run. */
    *base_c = *ember_c;
    base_c->name = "ember-baseline";
    base_c->argv[0] = base_c->probe_argv[0] = (char *)o.baseline;
    for (int i = 0; i < ncfg; i++)
        if (!cfg[i].probe_argv[0])
            memcpy(cfg[i].probe_argv, cfg[i].argv, sizeof(cfg[i].argv));
    floor_c->skipped = kvm_missing ? kvm_missing : check_program(o.floor, "the floor");
    ember_c->skipped = kvm_missing ? kvm_missing : check_program(o.ember, "ember");
    qemu_c->skipped = kvm_missing ? kvm_missing : check_program(o.qemu, "qemu-system-x86_64");
    if (o.baseline)
        base_c->skipped = kvm_missing ? kvm_missing : check_program(o.baseline, "ember-baseline");
    if (access(o.guest, R_OK) != 0) {
        snprintf(guest_why, sizeof(guest_why), "guest ELF %s: %s", o.guest, strerror(errno));
        if (!ember_c->skipped)
            ember_c->skipped = guest_why;
        if (!qemu_c->skipped)
            qemu_c->skipped = guest_why;
        if (o.baseline && !base_c->skipped)
            base_c->skipped = guest_why;
    }

    out_fd = memfd_create("bench-stdout", MFD_CLOEXEC);
    err_fd = memfd_create("bench-stderr", MFD_CLOEXEC);
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out_fd < 0 || err_fd < 0 || null_fd < 0) {
        perror("ember-bench-boot: memfd_create or /dev/null");
        return 1;
    }
    setup_spawn_actions();

    for (int i = 0; i < ncfg; i++) {
        if (cfg[i].skipped) {
            fprintf(stderr, "ember-bench-boot: SKIPPING %s: %s\n", cfg[i].name, cfg[i].skipped);
            continue;
        }
        alloc_results(&cfg[i], o.probes);
        if (cfg[i].runs > max_runs)
            max_runs = cfg[i].runs;
        for (int w = 0; w < o.warmup; w++)
            if (run_once(&cfg[i], false, w) != 0)
                return 1;
    }

    /* Round-robin, the first configuration rotating each round: no configuration always runs
     * right after QEMU (which leaves the caches cold). */
    for (int r = 0; r < max_runs; r++) {
        for (int k = 0; k < ncfg; k++) {
            struct config *c = &cfg[(r + k) % ncfg];
            if (!c->skipped && c->done < c->runs && run_once(c, true, 0) != 0)
                return 1;
        }
    }
    for (int p = 0; p < o.probes; p++)
        for (int i = 0; i < ncfg; i++)
            if (!cfg[i].skipped && probe_once(&cfg[i]) != 0)
                return 1;

    root = json_object();
    arr = json_array();
    for (int i = 0; i < ncfg; i++) {
        json_array_append_new(arr, config_json(&cfg[i]));
        measured += !cfg[i].skipped;
    }
    json_object_set_new(root, "benchmark", json_string("boot: process exec -> exit"));
    json_object_set_new(root, "guest", json_string(o.guest));
    json_object_set_new(root, "configurations", arr);

    if (!floor_c->skipped)
        fl = stats_of(floor_c->us, floor_c->done).median;
    if (!ember_c->skipped) {
        double *ov = xcalloc((size_t)ember_c->nprobes, sizeof(double));
        em = stats_of(ember_c->us, ember_c->done).median;
        for (int i = 0; i < ember_c->nprobes; i++)
            ov[i] = ember_c->rss_peak[i] - ember_c->guest_res[i];
        overhead_self = median_of(ov, ember_c->nprobes);
        overhead = median_of(ember_c->probe_overhead, ember_c->nprobes);
        free(ov);
    }
    if (!qemu_c->skipped)
        qm = stats_of(qemu_c->us, qemu_c->done).median;
    if (o.baseline && !base_c->skipped) {
        bm = stats_of(base_c->us, base_c->done).median;
        base_overhead = median_of(base_c->probe_overhead, base_c->nprobes);
    }

    ratios = json_object();
    json_object_set_new(ratios, "ember_over_floor",
                        fl > 0 && em > 0 ? json_real(round(em / fl * 1000) / 1000) : json_null());
    json_object_set_new(ratios, "qemu_over_ember",
                        em > 0 && qm > 0 ? json_real(round(qm / em * 100) / 100) : json_null());
    if (o.baseline) {
        json_object_set_new(ratios, "ember_baseline_over_floor",
                            fl > 0 && bm > 0 ? json_real(round(bm / fl * 1000) / 1000)
                                             : json_null());
        json_object_set_new(ratios, "ember_baseline_over_ember",
                            em > 0 && bm > 0 ? json_real(round(bm / em * 1000) / 1000)
                                             : json_null());
    }
    json_object_set_new(root, "ratios", ratios);

    rss = json_object();
    if (!ember_c->skipped) {
        json_object_set_new(rss, "ember_self_reported_rss_peak_kib_median",
                            json_real(median_of(ember_c->rss_peak, ember_c->nprobes)));
        json_object_set_new(rss, "ember_guest_resident_kib_median",
                            json_real(median_of(ember_c->guest_res, ember_c->nprobes)));
        json_object_set_new(rss, "ember_self_reported_overhead_kib_median",
                            json_real(overhead_self));
        json_object_set_new(rss, "ember_overhead_kib_median",
                            overhead >= 0 ? json_real(overhead) : json_null());
        json_object_set_new(
            rss, "note",
            json_string("ember_overhead = VmHWM at exit (probe runs under ptrace) - guest-resident;"
                        " the self-reported rss-peak (probe runs, fork+exec) is getrusage maxrss, "
                        "which also counts the pre-exec mm: under posix_spawn it is at least the "
                        "driver's own peak RSS, like wait4_maxrss"));
    }
    if (o.baseline)
        json_object_set_new(rss, "ember_baseline_overhead_kib_median",
                            base_overhead >= 0 ? json_real(base_overhead) : json_null());
    if (!qemu_c->skipped) {
        json_object_set_new(rss, "qemu_wait4_maxrss_kib_median",
                            json_real(median_of(qemu_c->maxrss, qemu_c->done)));
        if (qemu_c->nprobes)
            json_object_set_new(rss, "qemu_vmhwm_kib_median",
                                json_real(median_of(qemu_c->probe_hwm, qemu_c->nprobes)));
    }
    {
        struct rusage self;
        getrusage(RUSAGE_SELF, &self);
        json_object_set_new(rss, "driver_maxrss_kib", json_integer(self.ru_maxrss));
    }
    json_object_set_new(root, "rss", rss);

    targets = json_object();
    if (fl > 0 && em > 0)
        json_object_set_new(targets, "ember_within_1.25x_floor",
                            json_boolean(em / fl <= TARGET_EMBER_OVER_FLOOR));
    if (em > 0 && qm > 0)
        json_object_set_new(targets, "ember_10x_faster_than_qemu",
                            json_boolean(qm / em >= TARGET_QEMU_OVER_EMBER));
    if (overhead >= 0)
        json_object_set_new(targets, "ember_overhead_rss_le_1.5MiB",
                            json_boolean(overhead <= TARGET_OVERHEAD_KIB));
    json_object_set_new(root, "targets", targets);

    if (o.out) {
        if (json_dump_file(root, o.out,
                           JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) != 0) {
            fprintf(stderr, "ember-bench-boot: cannot write %s\n", o.out);
            return 1;
        }
    } else {
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
        fputc('\n', stdout);
    }
    json_decref(root);

    fprintf(stderr, "\nboot, exec->exit, %d warm-up + interleaved runs:\n", o.warmup);
    for (int i = 0; i < ncfg; i++) {
        struct stats s;
        if (cfg[i].skipped) {
            fprintf(stderr, "  %-13s skipped: %s\n", cfg[i].name, cfg[i].skipped);
            continue;
        }
        s = stats_of(cfg[i].us, cfg[i].done);
        fprintf(stderr, "  %-13s runs %4d  median %9.0f us  p99 %9.0f us  min %9.0f us\n",
                cfg[i].name, cfg[i].done, s.median, s.p99, s.min);
    }
    if (fl > 0 && em > 0)
        fprintf(stderr, "  ember/floor  %.2fx (target <= %.2fx)\n", em / fl,
                TARGET_EMBER_OVER_FLOOR);
    if (em > 0 && qm > 0)
        fprintf(stderr, "  qemu/ember   %.1fx (target >= %.0fx)\n", qm / em,
                TARGET_QEMU_OVER_EMBER);
    if (overhead >= 0)
        fprintf(stderr,
                "  ember RSS overhead %.0f KiB (VmHWM - guest pages; target <= %d); "
                "self-reported %.0f KiB\n",
                overhead, TARGET_OVERHEAD_KIB, overhead_self);
    if (!qemu_c->skipped && qemu_c->nprobes)
        fprintf(stderr, "  qemu VmHWM %.0f KiB\n", median_of(qemu_c->probe_hwm, qemu_c->nprobes));
    if (fl > 0 && bm > 0)
        fprintf(stderr, "  ember-baseline/floor %.2fx, ember-baseline/ember %.2fx\n", bm / fl,
                em > 0 ? bm / em : 0.0);
    if (base_overhead >= 0)
        fprintf(stderr, "  ember-baseline RSS overhead %.0f KiB\n", base_overhead);
    return measured ? 0 : EXIT_SKIPPED;
}
