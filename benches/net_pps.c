/* net_pps.c: the host half of the virtio-net packet-rate benchmark
 * (benches/net_pps.sh), UDP on one side of a link, the other side either an
 * ember guest (tests/guests/net_echo_raw.c behind a tap) or another network
 * namespace over veth (the host kernel's own figure).
 *
 *   net_pps flood LOCAL_IP PEER_IP N     asks the peer for N datagrams
 *       ("flood N" to port 7), counts them on port 9: the peer's transmit
 *       rate (a guest: the device's TX path, one kick per frame);
 *   net_pps echo LOCAL_IP PEER_IP N W    N 64-byte datagrams to the peer's
 *       echo port with at most W unanswered: the round-trip packet rate
 *       (a guest: RX and TX paths);
 *   net_pps server LOCAL_IP              the veth peer: UDP echo on port 7
 *       that also answers "flood N" like the guest, until "quit".
 *
 * Each client run prints one JSON object: {"mode", "packets", "lost",
 * "seconds", "pps"}. A run waits at most 2 s for a missing packet and counts
 * it as lost. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int udp_socket(const char *ip, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_DGRAM, 0), big = 8 << 20;

    if (fd < 0 || inet_pton(AF_INET, ip, &a.sin_addr) != 1)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return -1;
    return fd;
}

static struct sockaddr_in peer(const char *ip, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

/* Waits up to ms for fd to be readable. */
static int readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    return poll(&p, 1, ms) > 0;
}

static void report(const char *mode, long n, long got, double secs)
{
    printf(
        "{\"mode\": \"%s\", \"packets\": %ld, \"lost\": %ld, \"seconds\": %.6f, \"pps\": %.0f}\n",
        mode, n, n - got, secs, secs > 0 ? (double)got / secs : 0.0);
}

static int flood(const char *local, const char *peer_ip, long n)
{
    int fd = udp_socket(local, 9);
    struct sockaddr_in to = peer(peer_ip, 7);
    char msg[32], buf[2048];
    long got = 0;
    double t0 = 0, t1 = 0;

    if (fd < 0) {
        perror("net_pps: socket");
        return 1;
    }
    snprintf(msg, sizeof(msg), "flood %ld", n);
    sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&to, sizeof(to));
    while (got < n && readable(fd, 2000)) {
        if (recv(fd, buf, sizeof(buf), 0) <= 0)
            break;
        if (got++ == 0)
            t0 = now_s();
        t1 = now_s();
    }
    /* From the first datagram to the last: the request's trip is not in it. */
    report("flood", n - 1, got - 1, t1 - t0);
    close(fd);
    return 0;
}

static int echo(const char *local, const char *peer_ip, long n, long window)
{
    int fd = udp_socket(local, 9);
    struct sockaddr_in to = peer(peer_ip, 7);
    char msg[64], buf[2048];
    long sent = 0, got = 0, lost = 0;
    double t0;

    if (fd < 0) {
        perror("net_pps: socket");
        return 1;
    }
    memset(msg, 'e', sizeof(msg));
    t0 = now_s();
    while (got + lost < n) {
        while (sent < n && sent - got - lost < window) {
            sendto(fd, msg, sizeof(msg), 0, (struct sockaddr *)&to, sizeof(to));
            sent++;
        }
        if (!readable(fd, 2000)) {
            lost += sent - got - lost; /* gone: go on with the next ones */
            continue;
        }
        while (readable(fd, 0) && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
            got++;
    }
    report("echo", n, got, now_s() - t0);
    close(fd);
    return 0;
}

static int server(const char *local)
{
    int fd = udp_socket(local, 7);
    char buf[2048];

    if (fd < 0) {
        perror("net_pps: socket");
        return 1;
    }
    for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t r = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &fl);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return 1;
        buf[r] = '\0';
        if (r == 4 && memcmp(buf, "quit", 4) == 0) {
            sendto(fd, "bye", 3, 0, (struct sockaddr *)&from, fl);
            return 0;
        }
        if (r > 6 && memcmp(buf, "flood ", 6) == 0) {
            long k = strtol(buf + 6, NULL, 10);
            char d[64];
            for (long i = 0; i < k; i++) {
                memset(d, 0, sizeof(d));
                snprintf(d, sizeof(d), "flood %ld", i);
                sendto(fd, d, sizeof(d), 0, (struct sockaddr *)&from, fl);
            }
            continue;
        }
        sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&from, fl);
    }
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "flood") == 0)
        return flood(argv[2], argv[3], atol(argv[4]));
    if (argc == 6 && strcmp(argv[1], "echo") == 0)
        return echo(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
    if (argc == 3 && strcmp(argv[1], "server") == 0)
        return server(argv[2]);
    fprintf(stderr, "usage: net_pps flood LOCAL PEER N | echo LOCAL PEER N WINDOW | server "
                    "LOCAL\n");
    return 2;
}
