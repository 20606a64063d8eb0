/* posix_times.c: times() and getrusage() as Linux answers them: CPU time
 * that grows while the program computes and not while it sleeps, and no
 * error value (ENOSYS once leaked through as a time of -38). With
 * EMBER_TRACE_SYSCALLS set, the unimplemented call made twice below is
 * named once on ember's stderr (tests/guests/CMakeLists.txt checks it). */
#include <sys/resource.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

#define TEST_NAME "posix_times"
#include "posix_check.h"

static double cpu(void)
{
    struct rusage ru;
    CHECK(getrusage(RUSAGE_SELF, &ru) == 0, "getrusage");
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(void)
{
    struct tms t;
    clock_t c0 = times(&t);
    CHECK(c0 != (clock_t)-1 && (long)c0 >= 0, "times() = %ld", (long)c0);
    CHECK(sysconf(_SC_CLK_TCK) == 100, "CLK_TCK");
    double u0 = cpu();
    volatile unsigned long x = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
        for (int i = 0; i < 1000000; i++)
            x += (unsigned long)i;
        clock_gettime(CLOCK_MONOTONIC, &b);
    } while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 200000000L);
    double u1 = cpu();
    CHECK(u1 - u0 > 0.1, "200 ms of work counted %.3f s", u1 - u0);
    struct timespec ts = {0, 300000000};
    nanosleep(&ts, NULL);
    double u2 = cpu();
    CHECK(u2 - u1 < 0.1, "300 ms of sleep counted %.3f s of CPU", u2 - u1);
    clock_t c1 = times(&t);
    CHECK(c1 - c0 >= 45, "times() advanced %ld ticks in 0.5 s", (long)(c1 - c0));
    CHECK(t.tms_utime + t.tms_stime >= 10 && t.tms_cutime == 0, "tms %ld", (long)t.tms_utime);
    struct rusage ru;
    CHECK(getrusage(RUSAGE_CHILDREN, &ru) == 0 && ru.ru_utime.tv_sec == 0, "children");
    CHECK(getrusage(12345, &ru) == -1 && errno == EINVAL, "bad who");
    printf("times, getrusage: work counted, sleep not ok\n");
    /* fork: ENOSYS here (guest-sdk/README.md), twice: traced once. */
    pid_t p1 = fork(), p2 = fork();
    CHECK(p1 == -1 && p2 == -1, "fork");
    printf("posix_times: ok\n");
    return 0;
}
