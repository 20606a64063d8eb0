/* http-client.c: fetches a URL from a host server over the VM's network and
 * prints the status line, the body's length and its FNV-1a 64 hash (or
 * the body itself with -o -), so a test can compare it with the file the
 * host served.
 *
 *   ember run --net tap0 http-client ip=172.16.0.2::172.16.0.1:255.255.255.0::eth0:off \
 *       http://172.16.0.1:8000/file.bin [COUNT]
 *
 * COUNT fetches the URL that many times over one keep-alive connection
 * (HTTP/1.1, Content-Length bodies). Names are resolved with getaddrinfo()
 * (musl's resolver; the DNS server is the ip= argument's DNS0).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static int read_line(int fd, char *buf, size_t max, char *rb, size_t *rlen)
{
    size_t n = 0;
    for (;;) {
        if (*rlen == 0) {
            ssize_t r = read(fd, rb, 65536);
            if (r <= 0)
                return -1;
            *rlen = (size_t)r;
        }
        char ch = rb[0];
        memmove(rb, rb + 1, --*rlen);
        if (ch == '\n') {
            if (n && buf[n - 1] == '\r')
                n--;
            buf[n] = '\0';
            return (int)n;
        }
        if (n + 1 < max)
            buf[n++] = ch;
    }
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    int count = 1;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "ip=", 3) == 0)
            continue;
        if (!url)
            url = argv[i];
        else
            count = atoi(argv[i]);
    }
    if (!url || strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "usage: http-client [ip=...] http://HOST[:PORT]/PATH [COUNT]\n");
        return 2;
    }
    char host[256], port[8] = "80";
    const char *h = url + 7, *slash = strchr(h, '/'), *path = slash ? slash : "/";
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    if (hl >= sizeof(host))
        return 2;
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *colon = strchr(host, ':');
    if (colon) {
        snprintf(port, sizeof(port), "%s", colon + 1);
        *colon = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    int e = getaddrinfo(host, port, &hints, &ai);
    if (e) {
        fprintf(stderr, "http-client: %s: %s\n", host, gai_strerror(e));
        return 1;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        perror("http-client: connect");
        return 1;
    }
    freeaddrinfo(ai);
    static char rb[65536];
    size_t rlen = 0;
    for (int k = 0; k < count; k++) {
        char req[512];
        int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", path, host,
                         k + 1 == count ? "Connection: close\r\n" : "");
        if (write(fd, req, (size_t)n) != n) {
            perror("http-client: write");
            return 1;
        }
        char line[1024], status[1024];
        if (read_line(fd, status, sizeof(status), rb, &rlen) < 0) {
            fprintf(stderr, "http-client: no response\n");
            return 1;
        }
        long long clen = -1;
        while (read_line(fd, line, sizeof(line), rb, &rlen) > 0)
            if (strncasecmp(line, "Content-Length:", 15) == 0)
                clen = atoll(line + 15);
        uint64_t hash = 0xcbf29ce484222325ull, got = 0;
        for (;;) {
            if (clen >= 0 && (long long)got >= clen)
                break;
            if (rlen == 0) {
                ssize_t r = read(fd, rb, sizeof(rb));
                if (r < 0) {
                    perror("http-client: read");
                    return 1;
                }
                if (r == 0)
                    break;
                rlen = (size_t)r;
            }
            size_t take = rlen;
            if (clen >= 0 && (long long)(got + take) > clen)
                take = (size_t)(clen - (long long)got);
            for (size_t i = 0; i < take; i++) {
                hash ^= (uint8_t)rb[i];
                hash *= 0x100000001b3ull;
            }
            got += take;
            memmove(rb, rb + take, rlen - take);
            rlen -= take;
        }
        printf("%s\nbytes %llu fnv1a64 %016llx\n", status, (unsigned long long)got,
               (unsigned long long)hash);
    }
    close(fd);
    return 0;
}
