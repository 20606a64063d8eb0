/* api_wait.c: a guest that stays up, so that the API can be used after boot.
 *
 * Prints "api_wait: up", sleeps for argv[1] seconds (default 120) in 10 ms
 * steps, prints "api_wait: done" and exits with 7. The short steps keep the
 * vCPU coming back to the monitor, where a pause request is served.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
    int secs = argc > 1 ? atoi(argv[1]) : 120;
    struct timespec step = {0, 10 * 1000 * 1000}, start, now;

    printf("api_wait: up\n");
    fflush(stdout);
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        nanosleep(&step, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec - start.tv_sec < secs);
    printf("api_wait: done\n");
    return 7;
}
