/* timings.c: timestamps of the boot path, relative to process start. */
#include "monitor/timings.h"

#include <stdio.h>
#include <time.h>

static uint64_t start_ns;
static uint64_t marks[TIMING_COUNT];

uint64_t timings_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Runs before main(): the closest user space gets to exec. */
__attribute__((constructor)) static void timings_start(void)
{
    start_ns = timings_now_ns();
}

void timings_restart(void)
{
    start_ns = timings_now_ns();
    for (int m = 0; m < TIMING_COUNT; m++)
        marks[m] = 0;
}

void timings_mark(enum timing_mark m)
{
    if (!marks[m])
        marks[m] = timings_now_ns();
}

uint64_t timings_mark_ns(enum timing_mark m)
{
    return marks[m];
}

int64_t timings_us(enum timing_mark m)
{
    return marks[m] ? (int64_t)(marks[m] - start_ns) / 1000 : -1;
}

void timings_print(int fd)
{
    static const char *const names[TIMING_COUNT] = {"vm-created", "first-instruction", "guest-main",
                                                    "exit"};
    char line[256];
    int n = snprintf(line, sizeof(line), "ember: timings (us since process start):");

    for (int m = 0; m < TIMING_COUNT && n < (int)sizeof(line); m++) {
        if (timings_us(m) >= 0)
            n += snprintf(line + n, sizeof(line) - n, " %s=%ld", names[m], timings_us(m));
        else
            n += snprintf(line + n, sizeof(line) - n, " %s=-", names[m]);
    }
    if (n < (int)sizeof(line) - 1) {
        line[n++] = '\n';
        dprintf(fd, "%.*s", n, line);
    }
}
