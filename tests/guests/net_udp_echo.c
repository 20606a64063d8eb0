/* net_udp_echo.c: a UDP echo server on port 7 over the SDK's AF_INET
 * sockets (recvfrom/sendto, getsockname); "quit" ends it with status 0.
 * Also checks a few socket-API answers Linux gives and prints "udp-echo
 * ready" once listening. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) {
        perror("socket");
        return 1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(7)};
    if (bind(s, (struct sockaddr *)&a, sizeof(a))) {
        perror("bind");
        return 1;
    }
    socklen_t al = sizeof(a);
    if (getsockname(s, (struct sockaddr *)&a, &al) || ntohs(a.sin_port) != 7) {
        printf("getsockname wrong\n");
        return 1;
    }
    /* Linux's answers: a second bind is EINVAL, a raw socket EPERM,
     * a stream recv on an unconnected socket ENOTCONN. */
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 || errno != EINVAL) {
        printf("second bind not EINVAL\n");
        return 1;
    }
    int t = socket(AF_INET, SOCK_STREAM, 0);
    char c;
    if (recv(t, &c, 1, MSG_DONTWAIT) != -1 || errno != ENOTCONN) {
        printf("recv on a fresh stream socket: %s\n", strerror(errno));
        return 1;
    }
    close(t);
    printf("udp-echo ready\n");
    fflush(stdout);
    for (;;) {
        char buf[2048];
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
        if (n < 0) {
            perror("recvfrom");
            return 1;
        }
        if (sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&from, fl) != n) {
            perror("sendto");
            return 1;
        }
        if (n == 4 && memcmp(buf, "quit", 4) == 0)
            break;
    }
    close(s);
    usleep(100000);
    return 0;
}
