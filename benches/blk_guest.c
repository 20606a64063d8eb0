/* blk_guest.c: the in-guest half of the virtio-blk benchmark (blk_bench.c
 * boots it and compares with a host loop on the same file).
 *
 *   blk_guest N_RAND N_HLT SEQ_PASSES
 *
 * Drive 0 (/dev/vda), any size of at least 8 MiB. Prints one line per
 * measurement, "BLKBENCH {json}", for the host to collect:
 *  - rand4k_api:   4 KiB random reads at queue depth 1 through <ember/blk.h>
 *                  (no system call), default spin-then-hlt wait; per-read
 *                  latency: median, p90, p99, mean, min, max (ns);
 *  - rand4k_posix: the same through pread(2) on /dev/vda (system call path);
 *  - rand4k_hlt:   the same as rand4k_api with a spin budget of 0: every
 *                  wait that is not over at the first look sleeps in hlt and
 *                  is woken by the device's interrupt;
 *  - seqread_1m / seqwrite_1m: 1 MiB sequential transfers over the whole
 *                  drive, SEQ_PASSES passes: bytes/s; seqread_1m_hlt: one
 *                  pass without spinning;
 *  - kick:         the cost of one QueueNotify write (ioeventfd) alone.
 * The latency lines also split the reads into those that slept in hlt
 * during the read (slept_*) and those that did not (awake_*).
 * Latencies come from the TSC (ember passes KVM's TSC frequency). Offsets
 * come from a fixed xorshift sequence: the host loop uses the same one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <ember/blk.h>
#include <ember/guest.h>
#include <ember/wait.h>

#define MIB (1u << 20)

static uint8_t buf[MIB] __attribute__((aligned(4096)));

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static uint64_t tsc_to_ns(uint64_t t)
{
    return t * 1000000u / ember_tsc_khz();
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_block(uint64_t nblocks)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % nblocks;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Per-read latencies of the reads that slept in hlt (the wait counters moved
 * during the read) and of those that did not. */
static uint64_t *slept, *awake;
static unsigned n_slept, n_awake;

static uint64_t median(uint64_t *v, unsigned n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_u64);
    return v[n / 2];
}

static void report_lat(const char *name, uint64_t *lat, unsigned n)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < n; i++)
        sum += lat[i];
    qsort(lat, n, sizeof(*lat), cmp_u64);
    uint64_t m_slept = median(slept, n_slept), m_awake = median(awake, n_awake);
    struct ember_wait_stats st;
    ember_wait_stats(&st);
    printf("BLKBENCH {\"test\":\"%s\",\"n\":%u,\"median_ns\":%llu,\"p90_ns\":%llu,"
           "\"p99_ns\":%llu,\"mean_ns\":%llu,\"min_ns\":%llu,\"max_ns\":%llu,"
           "\"waits\":%llu,\"spin_hits\":%llu,\"hlts\":%llu,\"irqs\":%llu,"
           "\"slept_n\":%u,\"slept_median_ns\":%llu,\"awake_n\":%u,\"awake_median_ns\":%llu}\n",
           name, n, (unsigned long long)lat[n / 2], (unsigned long long)lat[n * 90 / 100],
           (unsigned long long)lat[n * 99 / 100], (unsigned long long)(sum / n),
           (unsigned long long)lat[0], (unsigned long long)lat[n - 1], (unsigned long long)st.waits,
           (unsigned long long)st.spin_hits, (unsigned long long)st.hlts,
           (unsigned long long)st.irqs, n_slept, (unsigned long long)m_slept, n_awake,
           (unsigned long long)m_awake);
    n_slept = n_awake = 0;
}

static uint64_t hlts_now(void)
{
    struct ember_wait_stats st;
    ember_wait_stats(&st);
    return st.hlts;
}

static void rand_api(const char *name, struct ember_blk *b, uint64_t *lat, unsigned n)
{
    uint64_t nblocks = ember_blk_size(b) / 4096;
    rng = 0x9e3779b97f4a7c15ull;
    for (unsigned i = 0; i < n; i++) {
        uint64_t off = next_block(nblocks) * 4096, h = hlts_now();
        uint64_t t0 = rdtsc();
        if (ember_blk_read(b, off, buf, 4096) != 0) {
            printf("blk_guest: read failed\n");
            exit(1);
        }
        lat[i] = tsc_to_ns(rdtsc() - t0);
        if (hlts_now() != h)
            slept[n_slept++] = lat[i];
        else
            awake[n_awake++] = lat[i];
    }
    report_lat(name, lat, n);
}

static void rand_posix(int fd, uint64_t size, uint64_t *lat, unsigned n)
{
    uint64_t nblocks = size / 4096;
    rng = 0x9e3779b97f4a7c15ull;
    for (unsigned i = 0; i < n; i++) {
        uint64_t off = next_block(nblocks) * 4096, h = hlts_now();
        uint64_t t0 = rdtsc();
        if (pread(fd, buf, 4096, (off_t)off) != 4096) {
            printf("blk_guest: pread failed\n");
            exit(1);
        }
        lat[i] = tsc_to_ns(rdtsc() - t0);
        if (hlts_now() != h)
            slept[n_slept++] = lat[i];
        else
            awake[n_awake++] = lat[i];
    }
    report_lat("rand4k_posix", lat, n);
}

static void seq(const char *name, struct ember_blk *b, unsigned passes, int write)
{
    uint64_t size = ember_blk_size(b) / MIB * MIB, bytes = 0;
    memset(buf, 0x5a, MIB);
    uint64_t t0 = rdtsc();
    for (unsigned p = 0; p < passes; p++)
        for (uint64_t off = 0; off < size; off += MIB) {
            int r = write ? ember_blk_write(b, off, buf, MIB) : ember_blk_read(b, off, buf, MIB);
            if (r) {
                printf("blk_guest: %s failed: %d\n", name, r);
                exit(1);
            }
            bytes += MIB;
        }
    uint64_t ns = tsc_to_ns(rdtsc() - t0);
    printf("BLKBENCH {\"test\":\"%s\",\"bytes\":%llu,\"ns\":%llu,\"bytes_per_s\":%.0f}\n", name,
           (unsigned long long)bytes, (unsigned long long)ns, (double)bytes * 1e9 / (double)ns);
}

int main(int argc, char **argv)
{
    unsigned n_rand = argc > 1 ? (unsigned)atoi(argv[1]) : 20000;
    unsigned n_hlt = argc > 2 ? (unsigned)atoi(argv[2]) : 2000;
    unsigned passes = argc > 3 ? (unsigned)atoi(argv[3]) : 2;
    struct ember_blk *b;
    if (ember_blk_open(0, &b) != 0) {
        printf("blk_guest: no drive\n");
        return 1;
    }
    unsigned nmax = n_rand > n_hlt ? n_rand : n_hlt;
    uint64_t *lat = malloc(sizeof(uint64_t) * nmax);
    slept = malloc(sizeof(uint64_t) * nmax);
    awake = malloc(sizeof(uint64_t) * nmax);
    if (!lat || !slept || !awake)
        return 1;

    /* Warm-up: the rings, the heap pages, the path. */
    for (unsigned i = 0; i < 200; i++)
        ember_blk_read(b, (uint64_t)i * 4096, buf, 4096);

    rand_api("rand4k_api", b, lat, n_rand);
    int fd = open("/dev/vda", O_RDWR);
    if (fd < 0)
        return 1;
    rand_posix(fd, ember_blk_size(b), lat, n_rand);
    uint64_t old = ember_wait_set_spin_ns(0);
    rand_api("rand4k_hlt", b, lat, n_hlt);
    ember_wait_set_spin_ns(old);

    seq("seqread_1m", b, passes, 0);
    seq("seqwrite_1m", b, passes, 1);
    old = ember_wait_set_spin_ns(0);
    seq("seqread_1m_hlt", b, 1, 0);
    ember_wait_set_spin_ns(old);

    /* One QueueNotify write alone: an empty kick, the device finds nothing. */
    const struct ember_boot_info *bi = ember_boot_info();
    volatile uint32_t *notify = (volatile uint32_t *)(uintptr_t)(bi->devices[0].mmio_base + 0x50);
    uint64_t t0 = rdtsc();
    for (unsigned i = 0; i < 1000; i++)
        *notify = 0;
    printf("BLKBENCH {\"test\":\"kick\",\"n\":1000,\"mean_ns\":%llu}\n",
           (unsigned long long)(tsc_to_ns(rdtsc() - t0) / 1000));
    printf("blk_guest: done\n");
    return 0;
}
