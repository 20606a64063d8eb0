/* net_server.c: the server side of benches/net_bench.sh, plain POSIX C built
 * twice: as an ember guest (over the SDK's TCP/IP stack and virtio-net) and
 * for the host (run in a network namespace, over veth: the host kernel's
 * figure for the same workload).
 *
 *   net_server PORT [ip=...]   TCP on PORT, UDP echo on PORT
 *   net_server up [ip=...]     brings the network up (one socket) and exits
 *
 * A TCP connection starts with one command byte: 'S' sink (read to EOF,
 * answer the 8-byte count), 'G' + 8-byte N (send N bytes, close), 'E' echo
 * (request/response until EOF).
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char buf[1 << 18];

static int full_write(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static void serve(int c)
{
    char cmd;
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (read(c, &cmd, 1) != 1)
        return;
    if (cmd == 'S') {
        uint64_t total = 0;
        ssize_t r;
        while ((r = read(c, buf, sizeof(buf))) > 0)
            total += (uint64_t)r;
        full_write(c, &total, sizeof(total));
    } else if (cmd == 'G') {
        uint64_t n;
        size_t got = 0;
        while (got < sizeof(n)) {
            ssize_t r = read(c, (char *)&n + got, sizeof(n) - got);
            if (r <= 0)
                return;
            got += (size_t)r;
        }
        while (n) {
            size_t k = n < sizeof(buf) ? (size_t)n : sizeof(buf);
            if (full_write(c, buf, k))
                return;
            n -= k;
        }
    } else if (cmd == 'E') {
        ssize_t r;
        while ((r = read(c, buf, sizeof(buf))) > 0)
            if (full_write(c, buf, (size_t)r))
                return;
    }
}

int main(int argc, char **argv)
{
    /* The ip= boot argument is argv too: skip it. */
    int ai = 1;
    while (ai < argc && strncmp(argv[ai], "ip=", 3) == 0)
        ai++;
    if (ai < argc && strcmp(argv[ai], "up") == 0) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET};
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)))
            return 1;
        close(s);
        return 0;
    }
    int port = ai < argc ? atoi(argv[ai]) : 5201;
    int l = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int big = 4 << 20;
    setsockopt(l, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    setsockopt(l, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 16) ||
        bind(u, (struct sockaddr *)&a, sizeof(a))) {
        perror("net_server");
        return 1;
    }
    printf("net_server ready on %d\n", port);
    fflush(stdout);
    for (;;) {
        struct pollfd p[2] = {{l, POLLIN, 0}, {u, POLLIN, 0}};
        if (poll(p, 2, -1) <= 0)
            continue;
        if (p[1].revents & POLLIN) {
            struct sockaddr_in from;
            socklen_t fl = sizeof(from);
            ssize_t n = recvfrom(u, buf, 2048, 0, (struct sockaddr *)&from, &fl);
            if (n == 4 && memcmp(buf, "quit", 4) == 0)
                return 0;
            if (n > 0)
                sendto(u, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
        }
        if (p[0].revents & POLLIN) {
            int c = accept(l, NULL, NULL);
            if (c >= 0) {
                serve(c);
                close(c);
            }
        }
    }
}
