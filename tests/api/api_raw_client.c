/* api_raw_client.c: sends raw bytes to the API socket, for the requests curl
 * will not send (malformed HTTP, truncated bodies, slow clients).
 *
 *   api_raw_client SOCKET [--byte-delay-ms N] [--hold] < request
 *
 * Writes stdin to the socket (one byte every N ms with --byte-delay-ms), then
 * prints what the server answers until it closes the connection or stays
 * silent for 5 s. With --hold it keeps the connection open after sending and
 * never reads (a client that never finishes) until it is killed.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    static char in[1 << 20];
    char buf[65536];
    long delay = 0;
    int hold = 0, fd;
    size_t n = 0;
    ssize_t r;

    if (argc < 2) {
        fprintf(stderr, "usage: %s SOCKET [--byte-delay-ms N] [--hold] < request\n", argv[0]);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--byte-delay-ms") == 0 && i + 1 < argc)
            delay = atol(argv[++i]);
        else if (strcmp(argv[i], "--hold") == 0)
            hold = 1;
        else
            return 2;
    }
    while (n < sizeof(in) && (r = read(0, in + n, sizeof(in) - n)) > 0)
        n += (size_t)r;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("connect");
        return 1;
    }
    if (delay > 0) {
        for (size_t i = 0; i < n; i++) {
            if (write(fd, in + i, 1) != 1)
                return 1;
            sleep_ms(delay);
        }
    } else {
        for (size_t off = 0; off < n;) {
            r = write(fd, in + off, n - off);
            if (r <= 0)
                break; /* the server may close early on a bad request */
            off += (size_t)r;
        }
    }
    if (hold)
        for (;;)
            pause();
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            break;
        r = read(fd, buf, sizeof(buf));
        if (r <= 0)
            break;
        fwrite(buf, 1, (size_t)r, stdout);
    }
    return 0;
}
