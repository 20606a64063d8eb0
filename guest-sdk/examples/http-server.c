/* http-server.c: a small HTTP/1.1 server in a guest, reachable from the host
 * with curl over the VM's virtio-net interface.
 *
 *   ember run --net tap0 http-server ip=172.16.0.2::172.16.0.1:255.255.255.0::eth0:off [PORT]
 *   curl http://172.16.0.2:8080/
 *
 * Routes: GET / (a greeting), GET /bytes/N (N bytes, byte i = i % 251, for
 * transfers checked by hash), POST /echo (the body back), GET /stats (the
 * interface's counters), GET /quit (answers, then the guest exits 0).
 * Keep-alive unless the client says "Connection: close" or speaks
 * HTTP/1.0; connections are served from one poll() loop.
 */
#if __has_include(<ember/net.h>)
#include <ember/net.h> /* the guest's interface counters for /stats */
#define HAVE_EMBER_NET 1
#endif
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 64
#define HDR_MAX   8192
#define BODY_MAX  (64u << 20)

struct conn {
    int fd;
    char hdr[HDR_MAX];
    size_t len;
};

static struct conn conns[MAX_CONNS];
static int quit;

static int write_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int reply(int fd, int code, const char *type, const void *body, size_t len, int keep)
{
    char h[256];
    int n = snprintf(h, sizeof(h),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n", code,
                     code == 200   ? "OK"
                     : code == 404 ? "Not Found"
                                   : "Bad Request",
                     type, len, keep ? "" : "Connection: close\r\n");
    if (write_all(fd, h, (size_t)n))
        return -1;
    return len ? write_all(fd, body, len) : 0;
}

static int send_bytes(int fd, size_t n, int keep)
{
    static char chunk[65536];
    static int ready;
    if (!ready) {
        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = (char)(i % 251);
        ready = 1;
    }
    char h[160];
    int hl = snprintf(h, sizeof(h),
                      "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      "Content-Length: %zu\r\n%s\r\n",
                      n, keep ? "" : "Connection: close\r\n");
    if (write_all(fd, h, (size_t)hl))
        return -1;
    size_t off = 0;
    while (off < n) {
        /* Pieces that start at a multiple of 251 keep the pattern going. */
        size_t k = n - off < 65536 - 65536 % 251 ? n - off : 65536 - 65536 % 251;
        if (write_all(fd, chunk, k))
            return -1;
        off += k;
    }
    return 0;
}

static const char *header(const char *h, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(h, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':')
            return p + 3 + nl;
    return NULL;
}

/* Serves one request whose header is in c->hdr[0..end); 0 to keep the
 * connection, -1 to close it. */
static int serve(struct conn *c, size_t end)
{
    char method[8], path[256], ver[16];
    c->hdr[end - 1] = '\0';
    if (sscanf(c->hdr, "%7s %255s %15s", method, path, ver) != 3)
        return reply(c->fd, 400, "text/plain", "bad request\n", 12, 0), -1;
    const char *conn = header(c->hdr, "Connection");
    int keep = strcmp(ver, "HTTP/1.1") == 0;
    if (conn) {
        while (*conn == ' ')
            conn++;
        if (strncasecmp(conn, "close", 5) == 0)
            keep = 0;
        else if (strncasecmp(conn, "keep-alive", 10) == 0)
            keep = 1;
    }
    const char *cl = header(c->hdr, "Content-Length");
    size_t body_len = cl ? strtoul(cl, NULL, 10) : 0;
    size_t have = c->len - end;
    int r = 0;

    if (strcmp(method, "POST") == 0 && strcmp(path, "/echo") == 0) {
        if (body_len > BODY_MAX)
            return reply(c->fd, 400, "text/plain", "too large\n", 10, 0), -1;
        char *body = malloc(body_len ? body_len : 1);
        if (!body)
            return -1;
        size_t got = have < body_len ? have : body_len;
        memcpy(body, c->hdr + end, got);
        while (got < body_len) {
            ssize_t n = read(c->fd, body + got, body_len - got);
            if (n <= 0) {
                free(body);
                return -1;
            }
            got += (size_t)n;
        }
        r = reply(c->fd, 200, "application/octet-stream", body, body_len, keep);
        free(body);
        have = have > body_len ? have - body_len : 0;
        memmove(c->hdr, c->hdr + end + body_len, have);
        c->len = have;
        return r || !keep ? -1 : 0;
    }
    memmove(c->hdr, c->hdr + end + body_len, have > body_len ? have - body_len : 0);
    c->len = have > body_len ? have - body_len : 0;
    if (strcmp(path, "/") == 0) {
        r = reply(c->fd, 200, "text/plain", "hello from ember\n", 17, keep);
    } else if (strncmp(path, "/bytes/", 7) == 0) {
        r = send_bytes(c->fd, strtoul(path + 7, NULL, 10), keep);
    } else if (strcmp(path, "/stats") == 0) {
        char b[512];
        int n = 0;
#ifdef HAVE_EMBER_NET
        struct ember_net_info ni;
        if (ember_net_info(&ni) == 0)
            n = snprintf(b, sizeof(b),
                         "rx_frames %llu\ntx_frames %llu\nrx_drop %llu\ntx_drop %llu\n"
                         "tcp_rexmt %llu\noffload %u\n",
                         (unsigned long long)ni.rx_frames, (unsigned long long)ni.tx_frames,
                         (unsigned long long)ni.rx_drop, (unsigned long long)ni.tx_drop,
                         (unsigned long long)ni.tcp_rexmt, ni.offload);
#endif
        r = reply(c->fd, 200, "text/plain", b, (size_t)n, keep);
    } else if (strcmp(path, "/quit") == 0) {
        r = reply(c->fd, 200, "text/plain", "bye\n", 4, 0);
        quit = 1;
        keep = 0;
    } else {
        r = reply(c->fd, 404, "text/plain", "not found\n", 10, keep);
    }
    return r || !keep ? -1 : 0;
}

static void drop(struct conn *c)
{
    close(c->fd);
    c->fd = -1;
    c->len = 0;
}

int main(int argc, char **argv)
{
    int port = 8080;
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "ip=", 3) != 0)
            port = atoi(argv[i]);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) {
        perror("http-server: socket");
        return 1;
    }
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 128)) {
        perror("http-server: bind/listen");
        return 1;
    }
    for (int i = 0; i < MAX_CONNS; i++)
        conns[i].fd = -1;
    printf("http-server: listening on port %d\n", port);
    fflush(stdout);
    while (!quit) {
        struct pollfd p[MAX_CONNS + 1];
        int idx[MAX_CONNS + 1], n = 0;
        p[n].fd = l;
        p[n].events = POLLIN;
        idx[n++] = -1;
        for (int i = 0; i < MAX_CONNS; i++)
            if (conns[i].fd >= 0) {
                p[n].fd = conns[i].fd;
                p[n].events = POLLIN;
                idx[n++] = i;
            }
        if (poll(p, (nfds_t)n, -1) < 0)
            continue;
        if (p[0].revents & POLLIN) {
            int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
            int slot = -1;
            for (int i = 0; i < MAX_CONNS && fd >= 0; i++)
                if (conns[i].fd < 0) {
                    slot = i;
                    break;
                }
            if (fd >= 0 && slot < 0)
                close(fd);
            else if (fd >= 0) {
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                conns[slot].fd = fd;
                conns[slot].len = 0;
            }
        }
        for (int k = 1; k < n; k++) {
            struct conn *c = &conns[idx[k]];
            if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = read(c->fd, c->hdr + c->len, sizeof(c->hdr) - 1 - c->len);
            if (r <= 0) {
                drop(c);
                continue;
            }
            c->len += (size_t)r;
            for (;;) {
                c->hdr[c->len] = '\0';
                char *e = strstr(c->hdr, "\r\n\r\n");
                if (!e) {
                    if (c->len >= sizeof(c->hdr) - 1) {
                        reply(c->fd, 400, "text/plain", "header too large\n", 17, 0);
                        drop(c);
                    }
                    break;
                }
                if (serve(c, (size_t)(e + 4 - c->hdr)) < 0) {
                    drop(c);
                    break;
                }
                if (!c->len)
                    break;
            }
        }
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (conns[i].fd >= 0)
            drop(&conns[i]);
    close(l);
    /* Let the last replies and FINs reach the host before the VM ends. */
    usleep(200000);
    return 0;
}
