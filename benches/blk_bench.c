/* blk_bench.c: the virtio-blk benchmark of issue 4, host driver.
 *
 *   ember-bench-blk --ember EMBER --guest BLK_GUEST [--dir DIR] [--size MIB]
 *                   [--rand N] [--hlt N] [--passes N] [--rounds N] [--out FILE]
 *
 * Makes a drive file of --size MiB (default 256) in --dir (default /tmp),
 * reads it once so it sits in the page cache, then, per round:
 *  1. the host loop: N 4 KiB pread()s at random 4 KiB-aligned offsets (the
 *     same xorshift sequence the guest uses), each timed; 1 MiB sequential
 *     pread()s and pwrite()s over the whole file, --passes passes;
 *  2. the guest (benches/blk_guest.c) booted by ember on the same file with
 *     the Sync engine, then with the Async (io_uring) engine: the same reads
 *     through <ember/blk.h>, through pread(2) on /dev/vda, without spinning
 *     (hlt only), and the same sequential transfers.
 * JSON (every number of every round, the medians over rounds, the targets
 * and whether they are met) to --out and stdout; a summary to stderr.
 * Targets (issue 4): QD1 4 KiB random read median at most 15 us above the
 * host's; sequential 1 MiB reads at least 1.5 GiB/s from the page cache.
 * Exit status: 0 measured, 1 a run failed, 77 no usable /dev/kvm.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB                 (1u << 20)
#define GIB                 (1024.0 * 1024 * 1024)
#define TARGET_ADDED_US     15.0
#define TARGET_SEQREAD_GIBS 1.5

static const char *ember, *guest, *dir = "/tmp", *out_path;
static unsigned size_mib = 256, n_rand = 20000, n_hlt = 2000, passes = 2, rounds = 1;
static char path[512];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what)
{
    fprintf(stderr, "ember-bench-blk: %s: %s\n", what, strerror(errno));
    exit(1);
}

static json_t *lat_json(const char *test, uint64_t *lat, unsigned n)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < n; i++)
        sum += lat[i];
    qsort(lat, n, sizeof(*lat), cmp_u64);
    return json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "test", test, "n", (int)n,
                     "median_ns", (json_int_t)lat[n / 2], "p90_ns", (json_int_t)lat[n * 90 / 100],
                     "p99_ns", (json_int_t)lat[n * 99 / 100], "mean_ns", (json_int_t)(sum / n),
                     "min_ns", (json_int_t)lat[0], "max_ns", (json_int_t)lat[n - 1]);
}

/* The host's loops on the same file, through the page cache. */
static json_t *host_round(void)
{
    int fd = open(path, O_RDWR);
    if (fd < 0)
        die(path);
    uint8_t *buf = aligned_alloc(4096, MIB);
    uint64_t *lat = malloc(sizeof(uint64_t) * n_rand);
    if (!buf || !lat)
        die("malloc");
    uint64_t nblocks = (uint64_t)size_mib * MIB / 4096, rng = 0x9e3779b97f4a7c15ull;
    json_t *r = json_array();

    for (unsigned i = 0; i < n_rand; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        uint64_t t0 = now_ns();
        if (pread(fd, buf, 4096, (off_t)((rng % nblocks) * 4096)) != 4096)
            die("pread");
        lat[i] = now_ns() - t0;
    }
    json_array_append_new(r, lat_json("rand4k", lat, n_rand));

    for (int write = 0; write <= 1; write++) {
        uint64_t bytes = 0, t0 = now_ns();
        memset(buf, 0x5a, MIB);
        for (unsigned p = 0; p < passes; p++)
            for (uint64_t off = 0; off < (uint64_t)size_mib * MIB; off += MIB) {
                ssize_t n =
                    write ? pwrite(fd, buf, MIB, (off_t)off) : pread(fd, buf, MIB, (off_t)off);
                if (n != MIB)
                    die(write ? "pwrite" : "pread");
                bytes += MIB;
            }
        uint64_t ns = now_ns() - t0;
        json_array_append_new(r, json_pack("{s:s, s:I, s:I, s:f}", "test",
                                           write ? "seqwrite_1m" : "seqread_1m", "bytes",
                                           (json_int_t)bytes, "ns", (json_int_t)ns, "bytes_per_s",
                                           (double)bytes * 1e9 / (double)ns));
    }
    free(buf);
    free(lat);
    close(fd);
    return r;
}

/* Boots the guest on the file with engine "" (Sync) or ",async"; returns
 * the array of its BLKBENCH objects, or NULL. */
static json_t *guest_round(const char *engine)
{
    char drive[600], a1[16], a2[16], a3[16];
    int pipefd[2];
    snprintf(drive, sizeof(drive), "%s%s", path, engine);
    snprintf(a1, sizeof(a1), "%u", n_rand);
    snprintf(a2, sizeof(a2), "%u", n_hlt);
    snprintf(a3, sizeof(a3), "%u", passes);
    if (pipe(pipefd) != 0)
        die("pipe");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        close(pipefd[1]);
        execl(ember, ember, "run", "--mem", "256", "--drive", drive, guest, a1, a2, a3,
              (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    FILE *f = fdopen(pipefd[0], "r");
    json_t *r = json_array();
    char line[1024];
    bool done = false;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "BLKBENCH ", 9)) {
            json_error_t err;
            json_t *o = json_loads(line + 9, 0, &err);
            if (o)
                json_array_append_new(r, o);
        } else if (!strncmp(line, "blk_guest: done", 15)) {
            done = true;
        } else {
            fprintf(stderr, "guest: %s", line);
        }
    }
    fclose(f);
    int st;
    waitpid(pid, &st, 0);
    if (!done || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "ember-bench-blk: guest run (%s) failed (status 0x%x)\n",
                *engine ? engine + 1 : "sync", st);
        json_decref(r);
        return NULL;
    }
    return r;
}

static json_t *find(json_t *arr, const char *test)
{
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        if (!strcmp(json_string_value(json_object_get(o, "test")), test))
            return o;
    }
    return NULL;
}

static double num(json_t *arr, const char *test, const char *key)
{
    json_t *o = find(arr, test);
    return o ? json_number_value(json_object_get(o, key)) : 0;
}

/* Median over rounds of one number. */
static double over_rounds(json_t *rounds_arr, const char *who, const char *test, const char *key)
{
    double v[64];
    size_t n = 0, i;
    json_t *rd;
    json_array_foreach(rounds_arr, i, rd)
    {
        json_t *a = json_object_get(rd, who);
        if (a && n < 64)
            v[n++] = num(a, test, key);
    }
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(v[0]), cmp_double);
    return v[n / 2];
}

static void usage(void)
{
    fprintf(stderr, "usage: ember-bench-blk --ember EMBER --guest BLK_GUEST [--dir DIR] "
                    "[--size MIB] [--rand N] [--hlt N] [--passes N] [--rounds N] [--out FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(o, "--ember"))
            ember = v;
        else if (!strcmp(o, "--guest"))
            guest = v;
        else if (!strcmp(o, "--dir"))
            dir = v;
        else if (!strcmp(o, "--out"))
            out_path = v;
        else if (!strcmp(o, "--size"))
            size_mib = (unsigned)atoi(v);
        else if (!strcmp(o, "--rand"))
            n_rand = (unsigned)atoi(v);
        else if (!strcmp(o, "--hlt"))
            n_hlt = (unsigned)atoi(v);
        else if (!strcmp(o, "--passes"))
            passes = (unsigned)atoi(v);
        else if (!strcmp(o, "--rounds"))
            rounds = (unsigned)atoi(v);
        else
            usage();
        i++;
    }
    if (!ember || !guest || size_mib < 8 || n_rand < 100 || n_hlt < 100 || passes < 1 ||
        rounds < 1 || rounds > 64)
        usage();
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        fprintf(stderr, "ember-bench-blk: /dev/kvm not usable: %s\n", strerror(errno));
        return 77;
    }

    /* The drive: random bytes, read once into the page cache. */
    snprintf(path, sizeof(path), "%s/ember-bench-blk-%d.img", dir, getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die(path);
    uint8_t *buf = malloc(MIB);
    if (!buf)
        die("malloc");
    uint64_t x = 88172645463325252ull;
    for (unsigned m = 0; m < size_mib; m++) {
        for (unsigned i = 0; i < MIB / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((uint64_t *)buf)[i] = x;
        }
        if (write(fd, buf, MIB) != MIB)
            die("write");
    }
    fsync(fd);
    for (unsigned m = 0; m < size_mib; m++)
        if (pread(fd, buf, MIB, (off_t)m * MIB) != MIB)
            die("pread");
    close(fd);
    free(buf);

    json_t *rounds_arr = json_array();
    int status = 0;
    for (unsigned r = 0; r < rounds; r++) {
        json_t *rd = json_object();
        json_object_set_new(rd, "host", host_round());
        json_t *s = guest_round(""), *a = guest_round(",async");
        if (!s || !a)
            status = 1;
        json_object_set_new(rd, "sync", s ? s : json_null());
        json_object_set_new(rd, "async", a ? a : json_null());
        json_array_append_new(rounds_arr, rd);
    }
    unlink(path);

    double host_med = over_rounds(rounds_arr, "host", "rand4k", "median_ns") / 1000;
    double host_p99 = over_rounds(rounds_arr, "host", "rand4k", "p99_ns") / 1000;
    double host_rd = over_rounds(rounds_arr, "host", "seqread_1m", "bytes_per_s") / GIB;
    double host_wr = over_rounds(rounds_arr, "host", "seqwrite_1m", "bytes_per_s") / GIB;
    json_t *summary = json_object();
    json_object_set_new(summary, "host",
                        json_pack("{s:f, s:f, s:f, s:f}", "rand4k_median_us", host_med,
                                  "rand4k_p99_us", host_p99, "seqread_gib_s", host_rd,
                                  "seqwrite_gib_s", host_wr));
    fprintf(stderr,
            "ember-bench-blk: %u MiB file, %u rounds; host pread 4K median %.1f us p99 %.1f us, "
            "1M read %.2f GiB/s, write %.2f GiB/s\n",
            size_mib, rounds, host_med, host_p99, host_rd, host_wr);
    const char *engines[] = {"sync", "async"};
    for (int e = 0; e < 2; e++) {
        const char *en = engines[e];
        double med = over_rounds(rounds_arr, en, "rand4k_api", "median_ns") / 1000;
        double p99 = over_rounds(rounds_arr, en, "rand4k_api", "p99_ns") / 1000;
        double pmed = over_rounds(rounds_arr, en, "rand4k_posix", "median_ns") / 1000;
        double pp99 = over_rounds(rounds_arr, en, "rand4k_posix", "p99_ns") / 1000;
        double hmed = over_rounds(rounds_arr, en, "rand4k_hlt", "median_ns") / 1000;
        double hp99 = over_rounds(rounds_arr, en, "rand4k_hlt", "p99_ns") / 1000;
        double slept = over_rounds(rounds_arr, en, "rand4k_hlt", "slept_median_ns") / 1000;
        double rd = over_rounds(rounds_arr, en, "seqread_1m", "bytes_per_s") / GIB;
        double wr = over_rounds(rounds_arr, en, "seqwrite_1m", "bytes_per_s") / GIB;
        double rdh = over_rounds(rounds_arr, en, "seqread_1m_hlt", "bytes_per_s") / GIB;
        double kick = over_rounds(rounds_arr, en, "kick", "mean_ns") / 1000;
        double added = med - host_med;
        json_object_set_new(
            summary, en,
            json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:b, s:b}",
                      "rand4k_api_median_us", med, "rand4k_api_p99_us", p99,
                      "rand4k_posix_median_us", pmed, "rand4k_posix_p99_us", pp99,
                      "rand4k_hlt_median_us", hmed, "rand4k_hlt_p99_us", hp99,
                      "rand4k_slept_median_us", slept, "added_median_us", added, "seqread_gib_s",
                      rd, "seqwrite_gib_s", wr, "seqread_hlt_gib_s", rdh, "kick_us", kick,
                      "qd1_target_met", added <= TARGET_ADDED_US, "seqread_target_met",
                      rd >= TARGET_SEQREAD_GIBS));
        fprintf(stderr,
                "ember-bench-blk: %-5s QD1 4K median %.1f us (+%.1f over host, target <= %.0f: "
                "%s) p99 %.1f us; via pread(2) %.1f / %.1f us; hlt-only %.1f / %.1f us (slept: "
                "%.1f us); 1M read %.2f GiB/s (target >= %.1f: %s, hlt-only %.2f), write %.2f "
                "GiB/s; one kick %.1f us\n",
                en, med, added, TARGET_ADDED_US, added <= TARGET_ADDED_US ? "met" : "NOT met", p99,
                pmed, pp99, hmed, hp99, slept, rd, TARGET_SEQREAD_GIBS,
                rd >= TARGET_SEQREAD_GIBS ? "met" : "NOT met", rdh, wr, kick);
    }

    char date[32];
    time_t t = time(NULL);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    json_t *doc = json_pack(
        "{s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I}, s:{s:f, s:f}, s:o, s:o}", "benchmark", "blk",
        "date", date, "config", "size_mib", (json_int_t)size_mib, "rand", (json_int_t)n_rand, "hlt",
        (json_int_t)n_hlt, "passes", (json_int_t)passes, "rounds", (json_int_t)rounds, "targets",
        "qd1_added_median_us_max", TARGET_ADDED_US, "seqread_gib_s_min", TARGET_SEQREAD_GIBS,
        "summary", summary, "rounds", rounds_arr);
    char *s = json_dumps(doc, JSON_INDENT(2));
    printf("%s\n", s);
    if (out_path) {
        FILE *f = fopen(out_path, "w");
        if (!f || fprintf(f, "%s\n", s) < 0 || fclose(f) != 0)
            die(out_path);
    }
    free(s);
    json_decref(doc);
    return status;
}
