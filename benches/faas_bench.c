/* faas_bench.c: the function runtime's benchmark (issue 5): warm invocation
 * round trip, throughput with 1 MiB bodies, and the FaaS cold start.
 *
 *  - warm: one VM running faas-echo, one connection; after a warm-up, N
 *    invocations of a small body, each timed on CLOCK_MONOTONIC from before
 *    the request is sent to after the whole response arrived (the host side
 *    of ember_invoke(), monitor/invoke.h). Median and p99.
 *  - throughput: the same VM, invocations with a 1 MiB body echoed back
 *    (2 MiB cross the VM boundary per invocation). MiB/s of request body.
 *    The wordcount function (CPU-bound) over 1 MiB is timed as well.
 *  - cold: exec of `ember run --vsock UDS faas-echo --max 1` -> the first
 *    response at the host, R runs. The client retries the Unix socket every
 *    20 us until ember has created it, then sends `CONNECT` and the request
 *    at once (ember holds the connection until the guest listens), so the
 *    figure is what a platform that starts a VM per request would see.
 *
 * Every response is checked (status and body); a wrong one stops the
 * benchmark with a message and exit status 1. No /dev/kvm: exit 77.
 * Output: JSON on stdout (or --out FILE), a short summary on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd/invoke.h"

extern char **environ;

#define EXIT_SKIPPED 77
#define SMALL_BODY   64
#define MIB          (1u << 20)
/* The targets (issue 5, section Benchmark). */
#define TARGET_WARM_MEDIAN_US 50.0
#define TARGET_COLD_MEDIAN_US 3000.0

struct stats {
    double median, p99, min, max, mean;
};

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct stats stats_of(const double *v, int n)
{
    struct stats s = {0};
    double *sorted = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!sorted || n <= 0) {
        free(sorted);
        return s;
    }
    memcpy(sorted, v, sizeof(double) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(double), cmp_double);
    s.median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    s.p99 = sorted[(int)ceil(0.99 * n) - 1];
    s.min = sorted[0];
    s.max = sorted[n - 1];
    for (int i = 0; i < n; i++)
        s.mean += sorted[i] / n;
    free(sorted);
    return s;
}

static double r1(double v)
{
    return round(v * 10) / 10;
}

static json_t *stats_json(const struct stats *s, int n)
{
    json_t *o = json_object();
    json_object_set_new(o, "runs", json_integer(n));
    json_object_set_new(o, "median_us", json_real(r1(s->median)));
    json_object_set_new(o, "p99_us", json_real(r1(s->p99)));
    json_object_set_new(o, "min_us", json_real(r1(s->min)));
    json_object_set_new(o, "max_us", json_real(r1(s->max)));
    json_object_set_new(o, "mean_us", json_real(r1(s->mean)));
    return o;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "faas-bench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* A VM in the background. */
struct vm {
    pid_t pid;
    char uds[108];
};

static void vm_spawn(struct vm *vm, const char *ember, const char *guest, const char *uds,
                     char *const extra[])
{
    char *argv[16] = {(char *)ember, "run", "--vsock", (char *)uds, (char *)guest};
    int n = 5;
    posix_spawn_file_actions_t fa;

    for (; extra && *extra && n < 15; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    snprintf(vm->uds, sizeof(vm->uds), "%s", uds);
    unlink(uds);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&vm->pid, ember, &fa, NULL, argv, environ) != 0)
        die("cannot run %s", ember);
    posix_spawn_file_actions_destroy(&fa);
}

static int vm_reap(struct vm *vm, bool kill_it)
{
    int st = 0;
    if (kill_it)
        kill(vm->pid, SIGKILL);
    waitpid(vm->pid, &st, 0);
    unlink(vm->uds);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void check(int rc, const char *err, const void *want, size_t want_len, const void *got,
                  size_t got_len, const char *what)
{
    if (rc != EMBER_INVOKE_OK)
        die("%s: %s", what, rc < 0 ? err : ember_invoke_strerror(rc));
    if (got_len != want_len || (want_len && memcmp(want, got, want_len) != 0))
        die("%s: wrong response body (%zu bytes)", what, got_len);
}

struct warm_result {
    struct stats warm;
    int warm_n;
    double mib_s, mib_median_us, wc_median_us;
    int mib_n;
};

static void bench_warm(const char *ember, const char *echo, const char *wc, int n, int mib_n,
                       struct warm_result *res)
{
    struct vm vm;
    char err[256];
    void *resp = NULL;
    size_t resp_len = 0, resp_cap = 0;
    uint8_t small[SMALL_BODY];
    double *t = calloc((size_t)(n > mib_n ? n : mib_n), sizeof(double));
    uint8_t *big = malloc(MIB);

    for (size_t i = 0; i < sizeof(small); i++)
        small[i] = (uint8_t)('a' + i % 26);
    for (size_t i = 0; i < MIB; i++)
        big[i] = (uint8_t)(i * 2654435761u >> 24);
    vm_spawn(&vm, ember, echo, "/tmp/ember-faas-bench-warm.sock", NULL);
    int fd = ember_invoke_connect_wait(vm.uds, EMBER_FAAS_PORT, 10000, err, sizeof(err));
    if (fd < 0)
        die("warm: %s", err);
    for (int i = 0; i < 2000; i++) { /* warm-up */
        int rc = ember_invoke(fd, small, sizeof(small), &resp, &resp_len, &resp_cap, 0, 10000, err,
                              sizeof(err));
        check(rc, err, small, sizeof(small), resp, resp_len, "warm-up");
    }
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        int rc = ember_invoke(fd, small, sizeof(small), &resp, &resp_len, &resp_cap, 0, 10000, err,
                              sizeof(err));
        t[i] = now_us() - t0;
        check(rc, err, small, sizeof(small), resp, resp_len, "warm");
    }
    res->warm = stats_of(t, n);
    res->warm_n = n;

    double total0 = now_us();
    for (int i = 0; i < mib_n; i++) {
        double t0 = now_us();
        int rc =
            ember_invoke(fd, big, MIB, &resp, &resp_len, &resp_cap, 0, 30000, err, sizeof(err));
        t[i] = now_us() - t0;
        check(rc, err, big, MIB, resp, resp_len, "1 MiB echo");
    }
    double total = now_us() - total0;
    res->mib_n = mib_n;
    res->mib_s = mib_n / (total / 1e6);
    res->mib_median_us = stats_of(t, mib_n).median;
    close(fd);
    vm_reap(&vm, true);

    /* wordcount over 1 MiB of text */
    for (size_t i = 0; i < MIB; i++)
        big[i] = i % 6 == 5 ? (i % 60 == 59 ? '\n' : ' ') : (uint8_t)('a' + i % 26);
    char want[64];
    int wl = snprintf(want, sizeof(want), "%u %u %u\n", MIB / 60, MIB / 6 + (MIB % 6 ? 1 : 0), MIB);
    vm_spawn(&vm, ember, wc, "/tmp/ember-faas-bench-wc.sock", NULL);
    fd = ember_invoke_connect_wait(vm.uds, EMBER_FAAS_PORT, 10000, err, sizeof(err));
    if (fd < 0)
        die("wordcount: %s", err);
    int wn = mib_n < 20 ? mib_n : 20;
    for (int i = 0; i < wn + 2; i++) {
        double t0 = now_us();
        int rc =
            ember_invoke(fd, big, MIB, &resp, &resp_len, &resp_cap, 0, 30000, err, sizeof(err));
        if (i >= 2)
            t[i - 2] = now_us() - t0;
        check(rc, err, want, (size_t)wl, resp, resp_len, "wordcount");
    }
    res->wc_median_us = stats_of(t, wn).median;
    close(fd);
    vm_reap(&vm, true);
    free(resp);
    free(big);
    free(t);
}

/* One cold start: exec -> first response. */
static double cold_once(const char *ember, const char *echo, int i)
{
    struct vm vm;
    char uds[108], err[256];
    void *resp = NULL;
    size_t resp_len = 0, resp_cap = 0;
    static char *extra[] = {"--max", "1", NULL};
    const char msg[] = "cold";

    snprintf(uds, sizeof(uds), "/tmp/ember-faas-bench-cold-%d.sock", i % 4);
    unlink(uds);
    double t0 = now_us();
    vm_spawn(&vm, ember, echo, uds, extra);
    int fd = -1;
    for (;;) {
        fd = ember_invoke_connect(uds, EMBER_FAAS_PORT, 5000, err, sizeof(err));
        if (fd >= 0)
            break;
        if (now_us() - t0 > 5e6)
            die("cold start: no connection: %s", err);
        struct timespec p = {0, 20000};
        nanosleep(&p, NULL);
    }
    int rc = ember_invoke(fd, msg, sizeof(msg) - 1, &resp, &resp_len, &resp_cap, 0, 5000, err,
                          sizeof(err));
    double us = now_us() - t0;
    check(rc, err, msg, sizeof(msg) - 1, resp, resp_len, "cold start");
    close(fd);
    int st = vm_reap(&vm, false);
    if (st != 0)
        die("cold start: ember exited with status %d", st);
    free(resp);
    return us;
}

int main(int argc, char **argv)
{
    const char *ember = NULL, *echo = NULL, *wc = NULL, *out = NULL;
    int warm_n = 10000, mib_n = 200, cold_n = 200;
    static const struct option opts[] = {
        {"ember", required_argument, 0, 'e'},     {"echo", required_argument, 0, 'g'},
        {"wordcount", required_argument, 0, 'w'}, {"out", required_argument, 0, 'o'},
        {"warm", required_argument, 0, 'n'},      {"mib", required_argument, 0, 'm'},
        {"cold", required_argument, 0, 'c'},      {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'e':
            ember = optarg;
            break;
        case 'g':
            echo = optarg;
            break;
        case 'w':
            wc = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'n':
            warm_n = atoi(optarg);
            break;
        case 'm':
            mib_n = atoi(optarg);
            break;
        case 'c':
            cold_n = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: ember-bench-faas --ember PATH --echo GUEST --wordcount GUEST "
                            "[--warm N] [--mib N] [--cold N] [--out FILE]\n");
            return 2;
        }
    }
    if (!ember || !echo || !wc || warm_n < 1 || mib_n < 1 || cold_n < 1) {
        fprintf(stderr, "ember-bench-faas: --ember, --echo and --wordcount are required\n");
        return 2;
    }
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        fprintf(stderr, "ember-bench-faas: SKIPPED: /dev/kvm: %s\n", strerror(errno));
        return EXIT_SKIPPED;
    }
    signal(SIGPIPE, SIG_IGN);

    struct warm_result w;
    fprintf(stderr, "faas-bench: warm (%d small invocations) and 1 MiB (%d)...\n", warm_n, mib_n);
    bench_warm(ember, echo, wc, warm_n, mib_n, &w);

    fprintf(stderr, "faas-bench: cold start (%d runs)...\n", cold_n);
    double *cold = calloc((size_t)cold_n, sizeof(double));
    for (int i = 0; i < 3; i++)
        cold_once(ember, echo, i); /* warm the page cache and KVM */
    for (int i = 0; i < cold_n; i++)
        cold[i] = cold_once(ember, echo, i);
    struct stats c = stats_of(cold, cold_n);

    json_t *root = json_object();
    json_object_set_new(root, "benchmark", json_string("faas: vsock function runtime"));
    json_t *jw = stats_json(&w.warm, w.warm_n);
    json_object_set_new(jw, "body_bytes", json_integer(SMALL_BODY));
    json_object_set_new(root, "warm_round_trip", jw);
    json_t *jt = json_object();
    json_object_set_new(jt, "body_bytes", json_integer(MIB));
    json_object_set_new(jt, "invocations", json_integer(w.mib_n));
    json_object_set_new(jt, "request_mib_per_s", json_real(r1(w.mib_s)));
    json_object_set_new(jt, "echo_median_us", json_real(r1(w.mib_median_us)));
    json_object_set_new(jt, "wordcount_median_us", json_real(r1(w.wc_median_us)));
    json_object_set_new(root, "throughput_1mib", jt);
    json_t *jc = stats_json(&c, cold_n);
    json_object_set_new(jc, "what", json_string("exec of ember -> first response at the host"));
    json_object_set_new(root, "cold_start", jc);
    json_t *tg = json_object();
    json_object_set_new(tg, "warm_median_us", json_real(TARGET_WARM_MEDIAN_US));
    json_object_set_new(tg, "warm_met", json_boolean(w.warm.median <= TARGET_WARM_MEDIAN_US));
    json_object_set_new(tg, "cold_median_us", json_real(TARGET_COLD_MEDIAN_US));
    json_object_set_new(tg, "cold_met", json_boolean(c.median <= TARGET_COLD_MEDIAN_US));
    json_object_set_new(root, "targets", tg);

    char *s = json_dumps(root, JSON_INDENT(2));
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f)
        die("%s: %s", out, strerror(errno));
    fprintf(f, "%s\n", s);
    if (out)
        fclose(f);
    fprintf(stderr,
            "faas-bench: warm round trip (%d B): median %.1f us, p99 %.1f us (target median <= "
            "%.0f us: %s)\n",
            SMALL_BODY, w.warm.median, w.warm.p99, TARGET_WARM_MEDIAN_US,
            w.warm.median <= TARGET_WARM_MEDIAN_US ? "met" : "NOT met");
    fprintf(stderr,
            "faas-bench: 1 MiB echo: %.1f MiB/s of request body, median %.1f us; "
            "wordcount 1 MiB: median %.1f us\n",
            w.mib_s, w.mib_median_us, w.wc_median_us);
    fprintf(stderr,
            "faas-bench: cold start (exec -> first response): median %.1f us, p99 %.1f us "
            "(target median <= %.0f us: %s)\n",
            c.median, c.p99, TARGET_COLD_MEDIAN_US,
            c.median <= TARGET_COLD_MEDIAN_US ? "met" : "NOT met");
    free(s);
    json_decref(root);
    free(cold);
    return 0;
}
