/* libc-demo.c: exercises musl's libc for real inside an ember guest.
 *
 * Each check prints one line; the guest prints "libc-demo: ok" and exits 0
 * only if all of them pass (exit 1 otherwise):
 *  - malloc/free churn: thousands of random sizes, contents verified;
 *  - qsort of a large array, verified sorted;
 *  - printf of floats (%.3f, %g, %e) against known strings;
 *  - strtod round trips (%.17g prints, strtod reads back the same double);
 *  - time() and clock_gettime() (monotonic, realtime);
 *  - snprintf truncation and return value.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failures;

static void check(int ok, const char *what)
{
    printf("libc-demo: %-40s %s\n", what, ok ? "ok" : "FAILED");
    if (!ok)
        failures++;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int malloc_churn(void)
{
    enum { SLOTS = 512, ROUNDS = 20000 };
    static unsigned char *ptr[SLOTS];
    static size_t len[SLOTS];
    int ok = 1;

    for (int r = 0; r < ROUNDS; r++) {
        int i = (int)(next() % SLOTS);
        if (ptr[i]) {
            for (size_t k = 0; k < len[i]; k++) {
                if (ptr[i][k] != (unsigned char)(i + k)) {
                    ok = 0;
                    break;
                }
            }
            free(ptr[i]);
            ptr[i] = NULL;
            continue;
        }
        /* Mostly small, some medium, a few large (mmap-backed) sizes. */
        uint64_t pick = next() % 100;
        size_t n = pick < 80   ? next() % 256 + 1
                   : pick < 98 ? next() % 16384 + 1
                               : next() % 400000 + 1;
        ptr[i] = malloc(n);
        if (!ptr[i])
            return 0;
        len[i] = n;
        for (size_t k = 0; k < n; k++)
            ptr[i][k] = (unsigned char)(i + k);
    }
    for (int i = 0; i < SLOTS; i++) {
        if (ptr[i]) {
            for (size_t k = 0; k < len[i]; k++)
                ok &= ptr[i][k] == (unsigned char)(i + k);
            free(ptr[i]);
        }
    }
    /* realloc grows and shrinks keep the contents. */
    char *p = NULL;
    for (size_t n = 1; n < 1 << 20; n *= 3) {
        char *q = realloc(p, n);
        if (!q)
            return 0;
        q[n - 1] = 'x';
        if (n > 1 && q[0] != 'a')
            ok = 0;
        q[0] = 'a';
        p = q;
    }
    free(p);
    void *z = calloc(1000, 1000);
    if (!z)
        return 0;
    for (size_t k = 0; k < 1000000; k++)
        ok &= ((unsigned char *)z)[k] == 0;
    free(z);
    return ok;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int qsort_check(void)
{
    enum { N = 200000 };
    uint32_t *a = malloc(N * sizeof(*a));
    if (!a)
        return 0;
    uint64_t sum = 0, sum2 = 0;
    for (int i = 0; i < N; i++) {
        a[i] = (uint32_t)next();
        sum += a[i];
    }
    qsort(a, N, sizeof(*a), cmp_u32);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        if (i > 0 && a[i - 1] > a[i])
            ok = 0;
        sum2 += a[i];
    }
    free(a);
    return ok && sum == sum2;
}

static int printf_check(void)
{
    char buf[128];
    int ok = 1;
    snprintf(buf, sizeof(buf), "%.3f %g %e", 3.14159265, 0.0001234, 12345.678);
    ok &= strcmp(buf, "3.142 0.0001234 1.234568e+04") == 0;
    snprintf(buf, sizeof(buf), "%.3f|%g|%e", -2.5, 1e100, 0.0);
    ok &= strcmp(buf, "-2.500|1e+100|0.000000e+00") == 0;
    snprintf(buf, sizeof(buf), "%g %g %.10g", 1.0 / 3.0, 100000.0, sqrt(2.0));
    ok &= strcmp(buf, "0.333333 100000 1.414213562") == 0;
    snprintf(buf, sizeof(buf), "%f %f", INFINITY, NAN);
    ok &= strcmp(buf, "inf nan") == 0;
    printf("libc-demo: pi = %.3f, e = %g, avogadro = %e\n", M_PI, M_E, 6.02214076e23);
    return ok;
}

static int strtod_check(void)
{
    int ok = 1;
    for (int i = 0; i < 10000; i++) {
        uint64_t bits = next();
        double d;
        memcpy(&d, &bits, sizeof(d));
        if (isnan(d) || isinf(d))
            continue;
        char buf[64];
        snprintf(buf, sizeof(buf), "%.17g", d);
        double back = strtod(buf, NULL);
        if (memcmp(&back, &d, sizeof(d)) != 0) {
            printf("libc-demo: strtod(\"%s\") differs\n", buf);
            ok = 0;
        }
    }
    ok &= strtod("0.1", NULL) == 0.1;
    ok &= strtod("-1.5e-3xyz", NULL) == -1.5e-3;
    return ok;
}

static int time_check(void)
{
    struct timespec m1, m2, r;
    int ok = clock_gettime(CLOCK_MONOTONIC, &m1) == 0;
    volatile uint64_t spin = 0;
    for (int i = 0; i < 1000000; i++)
        spin += (uint64_t)i;
    ok &= clock_gettime(CLOCK_MONOTONIC, &m2) == 0;
    ok &= clock_gettime(CLOCK_REALTIME, &r) == 0;
    int64_t d = (int64_t)(m2.tv_sec - m1.tv_sec) * 1000000000 + (m2.tv_nsec - m1.tv_nsec);
    ok &= d > 0 && m1.tv_nsec >= 0 && m1.tv_nsec < 1000000000;
    time_t t = time(NULL);
    ok &= t == r.tv_sec || t == r.tv_sec + 1;
    char when[64];
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    printf("libc-demo: time() = %lld (%s), busy loop took %lld ns\n", (long long)t, when,
           (long long)d);
    return ok;
}

static int snprintf_check(void)
{
    char buf[8];
    int ok = 1;
    volatile int n = 12345; /* not a constant: gcc would warn about the truncation */
    ok &= snprintf(buf, sizeof(buf), "%s-%d", "ember", n) == 11;
    ok &= strcmp(buf, "ember-1") == 0;
    ok &= snprintf(NULL, 0, "%05x|%-4s|%c", 0xbeef, "ab", 'z') == 12;
    char big[64];
    snprintf(big, sizeof(big), "%05x|%-4s|%c|%+d|%lu", 0xbeef, "ab", 'z', 7,
             18446744073709551615ul);
    ok &= strcmp(big, "0beef|ab  |z|+7|18446744073709551615") == 0;
    return ok;
}

int main(void)
{
    check(malloc_churn(), "malloc/free/realloc/calloc churn");
    check(qsort_check(), "qsort of 200000 numbers");
    check(printf_check(), "printf of floats");
    check(strtod_check(), "strtod round trips");
    check(time_check(), "time() and clock_gettime()");
    check(snprintf_check(), "snprintf");
    if (failures) {
        printf("libc-demo: %d check(s) FAILED\n", failures);
        return 1;
    }
    printf("libc-demo: ok\n");
    return 0;
}
