/* posix_guest.c: the in-guest half of benches/run-posix.sh, built both with
 * ember-cc and natively, so the same program is timed in ember and on the
 * host side by side. One case per run:
 *   console N       N lines of 40 bytes to stdout (line-buffered, as on a
 *                   terminal); prints the seconds it took on stderr
 *   realloc MIB     one buffer grown by realloc in 4 KiB steps to MIB MiB,
 *                   each step's last byte written; seconds on stderr
 *   select MS N     N timer waits of MS ms with select(0, ...), as an event
 *                   loop's timers do (QuickJS); seconds on stderr
 * Output on stderr: "<case> <seconds>" (one line, for the driver). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    double t0 = now();
    if (strcmp(argv[1], "console") == 0) {
        setvbuf(stdout, NULL, _IOLBF, 0); /* natively stdout may be a file */
        long n = atol(argv[2]);
        for (long i = 0; i < n; i++)
            printf("console benchmark line %12ld.....\n", i);
        fflush(stdout);
    } else if (strcmp(argv[1], "realloc") == 0) {
        size_t max = (size_t)atol(argv[2]) << 20;
        char *p = NULL;
        for (size_t n = 4096; n <= max; n += 4096) {
            char *q = realloc(p, n);
            if (!q) {
                fprintf(stderr, "realloc failed at %zu\n", n);
                return 1;
            }
            p = q;
            p[n - 1] = 1;
        }
        free(p);
    } else if (strcmp(argv[1], "select") == 0 && argc > 3) {
        long ms = atol(argv[2]), n = atol(argv[3]);
        for (long i = 0; i < n; i++) {
            struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
            select(0, NULL, NULL, NULL, &tv);
        }
    } else {
        return 2;
    }
    fprintf(stderr, "%s %.6f\n", argv[1], now() - t0);
    return 0;
}
