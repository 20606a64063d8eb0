/* time_mono.c: CLOCK_MONOTONIC must advance across a 1 ms nanosleep and a
 * busy loop. Prints "time: ok" and exits 0, else prints why and exits 1. */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static int64_t ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

int main(void)
{
    struct timespec a, b, c;
    struct timespec ms = {.tv_sec = 0, .tv_nsec = 1000000};
    volatile uint64_t spin = 0;

    clock_gettime(CLOCK_MONOTONIC, &a);
    if (nanosleep(&ms, NULL) != 0) {
        printf("time: nanosleep failed\n");
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    for (int i = 0; i < 1000000; i++)
        spin += (uint64_t)i;
    clock_gettime(CLOCK_MONOTONIC, &c);

    int64_t slept = ns(&b) - ns(&a), spun = ns(&c) - ns(&b);
    printf("time: slept %lld ns, spun %lld ns\n", (long long)slept, (long long)spun);
    if (slept < 1000000 || spun <= 0) {
        printf("time: FAILED\n");
        return 1;
    }
    printf("time: ok\n");
    return 0;
}
