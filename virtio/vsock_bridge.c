/* vsock_bridge.c: the host side of the virtio-vsock device, Firecracker's
 * hybrid model (vsock_device.h): the Unix socket at uds_path where host
 * processes connect and say `CONNECT <port>\n`, the `OK <port>\n` answer,
 * and <uds_path>_<port>, where a guest's connection to host port <port> is
 * connected (vsock_priv.h).
 *
 * The CONNECT line is read without consuming a byte past its newline: what
 * follows is already stream data for the guest. It is strict (decimal port,
 * no sign, no spaces, at most CONNECT_LINE_MAX bytes); anything else just
 * closes the host socket.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "common/errmsg.h"
#include "virtio/vsock_priv.h"

/* recv() through recvmsg: the main thread's seccomp filter allows the
 * socket calls the API server needs, recvmsg and sendmsg among them. */
static ssize_t sock_recv(int fd, void *buf, size_t len, int flags)
{
    struct iovec iov = {buf, len};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

    return recvmsg(fd, &m, flags | MSG_DONTWAIT);
}

/* The host's `CONNECT <port>\n`, strictly: decimal port, no sign, no spaces. */
static int parse_connect(const char *line, unsigned len, uint32_t *port)
{
    uint64_t p = 0;
    unsigned i = 8;

    if (len < 10 || memcmp(line, "CONNECT ", 8) != 0 || line[len - 1] != '\n')
        return -1;
    for (; i < len - 1; i++) {
        if (line[i] < '0' || line[i] > '9' || i - 8 >= 10)
            return -1;
        p = p * 10 + (uint64_t)(line[i] - '0');
    }
    if (p > UINT32_MAX)
        return -1;
    *port = (uint32_t)p;
    return 0;
}

/* Reads the CONNECT line without consuming a byte past its newline: what
 * follows is already stream data for the guest. */
void vsock_bridge_handshake(struct conn *c)
{
    struct vsock *v = c->v;
    char peek[CONNECT_LINE_MAX];
    uint32_t port;
    ssize_t n = sock_recv(c->fd, peek, CONNECT_LINE_MAX - c->line_len, MSG_PEEK);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        vsock_conn_kill(c, false);
        return;
    }
    char *nl = memchr(peek, '\n', (size_t)n);
    size_t take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;
    if (sock_recv(c->fd, c->line + c->line_len, take, 0) != (ssize_t)take) {
        vsock_conn_kill(c, false);
        return;
    }
    c->line_len += (unsigned)take;
    if (!nl) {
        if (c->line_len == CONNECT_LINE_MAX)
            vsock_conn_kill(c, false); /* no newline where one must be */
        return;
    }
    if (parse_connect(c->line, c->line_len, &port) != 0) {
        vsock_conn_kill(c, false);
        return;
    }
    c->peer_port = port;
    for (;;) {
        c->local_port = v->next_port++;
        if (v->next_port == 0)
            v->next_port = LOCAL_PORT0;
        if (!vsock_lookup(v, c->local_port, port))
            break;
    }
    vsock_conn_hash(c);
    c->state = C_REQUEST;
    vsock_owe(c, P_REQUEST);
    vsock_conn_update_poll(c);
}

void vsock_bridge_accept_cb(uv_poll_t *p, int status, int events)
{
    struct vsock *v = p->data;

    (void)events;
    if (status < 0)
        return;
    pthread_mutex_lock(&v->t.lock);
    vsock_apply_reset(v);
    for (int i = 0; i < 16; i++) {
        int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        if (v->nconns >= v->cfg.max_conns) {
            v->stats.conns_over_limit++;
            close(fd);
            continue;
        }
        struct conn *c = vsock_conn_new(v, fd, C_HANDSHAKE);
        if (!c) {
            close(fd);
            continue;
        }
        vsock_conn_start_timer(c, v->cfg.connect_timeout_ms);
        vsock_conn_update_poll(c);
    }
    vsock_finish(v);
    pthread_mutex_unlock(&v->t.lock);
}

/* Whether the socket file at sa is a leftover: a Unix socket that nothing
 * listens on any more (connect is refused). A live one, or anything that is
 * not a socket, is never touched. */
static bool stale_socket(const struct sockaddr_un *sa)
{
    struct stat st;
    int fd, rc;

    if (lstat(sa->sun_path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return false;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    close(fd);
    return rc != 0 && errno == ECONNREFUSED;
}

/* Whether fd is already bound to sa (the first bind succeeded). */
static bool stat_is_ours(int fd, const struct sockaddr_un *sa)
{
    struct sockaddr_un got;
    socklen_t len = sizeof(got);

    return getsockname(fd, (struct sockaddr *)&got, &len) == 0 && len > sizeof(sa_family_t) &&
           strcmp(got.sun_path, sa->sun_path) == 0;
}

/* Binds and listens on uds_path. A socket file left by a monitor that was
 * killed (nothing accepts on it any more) is taken over; a live one, or
 * anything that is not a socket, is never touched. */
int vsock_bridge_listen(struct vsock *v, char *err, size_t errlen)
{
    const char *path = v->cfg.uds_path;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    /* <uds_path>_<port> must fit too. */
    if (strlen(path) + 11 >= sizeof(sa.sun_path))
        return errmsg(-1, err, errlen,
                      "vsock: %s: path too long for a Unix socket (at most %zu bytes)", path,
                      sizeof(sa.sun_path) - 12);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    v->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (v->listen_fd >= 0 && bind(v->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
        errno == EADDRINUSE && stale_socket(&sa))
        unlink(path); /* left by a monitor that was killed: take it over */
    if (v->listen_fd < 0 || (!stat_is_ours(v->listen_fd, &sa) &&
                             bind(v->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0))
        return errmsg(-1, err, errlen, "vsock: %s: %s", path, strerror(errno));
    v->listening = true;
    if (listen(v->listen_fd, 128) != 0)
        return errmsg(-1, err, errlen, "vsock: %s: %s", path, strerror(errno));
    return 0;
}

void vsock_bridge_close(struct vsock *v)
{
    if (v->listen_fd >= 0)
        close(v->listen_fd);
    v->listen_fd = -1;
    if (v->listening)
        unlink(v->cfg.uds_path);
    v->listening = false;
}

int vsock_bridge_connect(struct vsock *v, uint32_t port)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", v->cfg.uds_path, port);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

bool vsock_bridge_send_ok(struct conn *c)
{
    char ok[32];
    int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);
    struct iovec iov = {ok, (size_t)n};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

    /* A fresh socket takes a few bytes; if not, the host is gone. */
    return sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT) == n;
}
