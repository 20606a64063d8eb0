/* fs_guest.c: the in-guest half of benches/run-rootfs.sh.
 *
 *   fs_guest none               time to main (no file touched)
 *   fs_guest cold PATH          time to main, then to PATH opened and read whole
 *                               (the first path call mounts the root)
 *   fs_guest seq PATH BUF       sequential read of PATH with read(BUF bytes), 3 passes
 *   fs_guest stat LIST          stat() of every path listed in LIST (one a line), 3 passes;
 *                               then the same through ember_syscall_direct() (no
 *                               syscall trap: the file system's own cost)
 *
 * Times are CLOCK_MONOTONIC, which the SDK counts from the guest's first
 * instruction. One "key=value" line per figure.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ember/vsock.h>

static unsigned long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static long slurp(const char *path, char *buf, size_t bufsize)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    long total = 0;
    ssize_t n;
    while ((n = read(fd, buf, bufsize)) > 0)
        total += n;
    close(fd);
    return n < 0 ? -1 : total;
}

int main(int argc, char **argv)
{
    unsigned long long t0 = now_ns();
    if (argc < 2)
        return 2;
    if (!strcmp(argv[1], "none")) {
        printf("main_ns=%llu\n", t0);
        return 0;
    }
    if (!strcmp(argv[1], "cold") && argc > 2) {
        static char buf[65536];
        long n = slurp(argv[2], buf, sizeof(buf));
        unsigned long long t1 = now_ns();
        if (n < 0) {
            printf("fs_guest: %s: %m\n", argv[2]);
            return 1;
        }
        printf("main_ns=%llu\nfirst_file_ns=%llu\nbytes=%ld\n", t0, t1 - t0, n);
        return 0;
    }
    if (!strcmp(argv[1], "seq") && argc > 3) {
        size_t bs = (size_t)atol(argv[3]);
        char *buf = malloc(bs);
        for (int pass = 0; pass < 3; pass++) {
            unsigned long long a = now_ns();
            long n = slurp(argv[2], buf, bs);
            unsigned long long b = now_ns();
            if (n < 0) {
                printf("fs_guest: %s: %m\n", argv[2]);
                return 1;
            }
            printf("seq_mbps=%.1f\n", (double)n / 1e6 / ((double)(b - a) / 1e9));
        }
        return 0;
    }
    if (!strcmp(argv[1], "stat") && argc > 2) {
        static char list[1 << 20];
        long n = slurp(argv[2], list, sizeof(list) - 1);
        if (n < 0 || n >= (long)sizeof(list) - 1) {
            printf("fs_guest: %s: unreadable or too long\n", argv[2]);
            return 1;
        }
        list[n] = 0;
        for (int pass = 0; pass < 6; pass++) {
            unsigned long long a = now_ns();
            long count = 0;
            struct stat st;
            int direct = pass >= 3;
            for (char *p = list, *e; *p; p = e + 1) {
                e = strchr(p, '\n');
                if (!e)
                    break;
                *e = 0;
                long r = direct ? ember_syscall_direct(SYS_newfstatat, AT_FDCWD, (long)p, (long)&st,
                                                       0, 0, 0)
                                : stat(p, &st);
                if (r < 0) {
                    printf("fs_guest: stat %s: %m\n", p);
                    return 1;
                }
                *e = '\n';
                count++;
            }
            unsigned long long b = now_ns();
            printf("stats=%ld\n%s=%.0f\n", count, direct ? "stat_direct_per_s" : "stat_per_s",
                   (double)count / ((double)(b - a) / 1e9));
        }
        return 0;
    }
    return 2;
}
