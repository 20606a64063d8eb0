/* net_peer.c: the host side of benches/net_bench.sh, a client for
 * net_server.c and the http-server example. One measurement per run,
 * printed as "<name> <value>" lines:
 *
 *   net_peer down HOST PORT BYTES     TCP server -> us (MB/s)
 *   net_peer up HOST PORT BYTES       us -> server (MB/s)
 *   net_peer rr HOST PORT N SIZE      request/response round trips (median, p99 us)
 *   net_peer udp HOST PORT N          UDP echo, 32 in flight (packets/s each way)
 *   net_peer http HOST PORT N         GET / over one keep-alive connection (req/s)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 20];

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int dial(const char *host, int port, int type)
{
    int s = socket(AF_INET, type, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    if (type == SOCK_STREAM)
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(s, (struct sockaddr *)&a, sizeof(a))) {
        perror("net_peer: connect");
        exit(1);
    }
    return s;
}

static void full_write(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w <= 0) {
            perror("net_peer: write");
            exit(1);
        }
        b += w;
        n -= (size_t)w;
    }
}

static void full_read(int fd, void *p, size_t n)
{
    char *b = p;
    while (n) {
        ssize_t r = read(fd, b, n);
        if (r <= 0) {
            fprintf(stderr, "net_peer: short read\n");
            exit(1);
        }
        b += r;
        n -= (size_t)r;
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: net_peer down|up|rr|udp|http HOST PORT N [SIZE]\n");
        return 2;
    }
    const char *mode = argv[1], *host = argv[2];
    int port = atoi(argv[3]);
    uint64_t n = strtoull(argv[4], NULL, 10);
    if (!strcmp(mode, "down")) {
        int s = dial(host, port, SOCK_STREAM);
        char cmd[9] = {'G'};
        memcpy(cmd + 1, &n, 8);
        double t0 = now_s();
        full_write(s, cmd, 9);
        uint64_t got = 0;
        ssize_t r;
        while ((r = read(s, buf, sizeof(buf))) > 0)
            got += (uint64_t)r;
        double t = now_s() - t0;
        if (got != n) {
            fprintf(stderr, "net_peer: got %llu of %llu\n", (unsigned long long)got,
                    (unsigned long long)n);
            return 1;
        }
        printf("down_MBps %.1f\n", (double)n / t / 1e6);
    } else if (!strcmp(mode, "up")) {
        int s = dial(host, port, SOCK_STREAM);
        double t0 = now_s();
        full_write(s, "S", 1);
        for (uint64_t left = n; left;) {
            size_t k = left < sizeof(buf) ? (size_t)left : sizeof(buf);
            full_write(s, buf, k);
            left -= k;
        }
        shutdown(s, SHUT_WR);
        uint64_t count;
        full_read(s, &count, 8);
        double t = now_s() - t0;
        if (count != n) {
            fprintf(stderr, "net_peer: server counted %llu of %llu\n", (unsigned long long)count,
                    (unsigned long long)n);
            return 1;
        }
        printf("up_MBps %.1f\n", (double)n / t / 1e6);
    } else if (!strcmp(mode, "rr")) {
        size_t size = argc > 5 ? (size_t)atoi(argv[5]) : 64;
        int s = dial(host, port, SOCK_STREAM);
        full_write(s, "E", 1);
        double *lat = calloc(n, sizeof(double));
        for (uint64_t i = 0; i < n + 100; i++) {
            double t0 = now_s();
            full_write(s, buf, size);
            full_read(s, buf, size);
            if (i >= 100)
                lat[i - 100] = (now_s() - t0) * 1e6;
        }
        qsort(lat, n, sizeof(double), cmp);
        printf("rr_p50_us %.1f\nrr_p99_us %.1f\n", lat[n / 2], lat[n * 99 / 100]);
    } else if (!strcmp(mode, "udp")) {
        int s = dial(host, port, SOCK_DGRAM);
        struct timeval tv = {0, 200000};
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        uint64_t sent = 0, got = 0;
        double t0 = now_s();
        while (sent < 32 && sent < n)
            if (send(s, buf, 64, 0) == 64)
                sent++;
        while (got < sent) {
            ssize_t r = recv(s, buf, 2048, 0);
            if (r < 0)
                break; /* lost: counted as such */
            got++;
            if (sent < n && send(s, buf, 64, 0) == 64)
                sent++;
        }
        double t = now_s() - t0;
        printf("udp_pps %.0f\nudp_lost %llu\n", (double)got / t, (unsigned long long)(sent - got));
    } else if (!strcmp(mode, "http")) {
        int s = dial(host, port, SOCK_STREAM);
        static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        double t0 = now_s();
        size_t have = 0;
        for (uint64_t i = 0; i < n; i++) {
            full_write(s, req, sizeof(req) - 1);
            /* A response is its header and Content-Length bytes. */
            for (;;) {
                buf[have] = '\0';
                char *e = strstr(buf, "\r\n\r\n");
                if (e) {
                    char *cl = strstr(buf, "Content-Length:");
                    size_t body = cl ? strtoul(cl + 15, NULL, 10) : 0;
                    size_t total = (size_t)(e + 4 - buf) + body;
                    if (have >= total) {
                        memmove(buf, buf + total, have - total);
                        have -= total;
                        break;
                    }
                }
                ssize_t r = read(s, buf + have, 65536);
                if (r <= 0) {
                    fprintf(stderr, "net_peer: connection closed\n");
                    return 1;
                }
                have += (size_t)r;
            }
        }
        printf("http_rps %.0f\n", (double)n / (now_s() - t0));
    }
    return 0;
}
