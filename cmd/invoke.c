/* invoke.c: `ember invoke` and the client library behind it (see invoke.h). */
#include "cmd/invoke.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/errmsg.h"
#include "common/parse_num.h"

#define OK_LINE_MAX 32u /* "OK 4294967295\n" fits */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* Waits until fd is ready for events or the deadline passes. 0 or
 * EMBER_INVOKE_ETIMEDOUT / EMBER_INVOKE_EIO. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = events};

    for (;;) {
        int left = -1;
        if (deadline >= 0) {
            int64_t d = deadline - now_ms();
            if (d <= 0)
                return EMBER_INVOKE_ETIMEDOUT;
            left = d > 1000000 ? 1000000 : (int)d;
        }
        int n = poll(&p, 1, left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return EMBER_INVOKE_EIO;
    }
}

/* Sends all of iov, waiting as needed. */
static int send_all(int fd, struct iovec *iov, int n, int64_t deadline, char *err, size_t errlen)
{
    while (n > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc)
                return errmsg(rc, err, errlen, "%s while sending",
                              rc == EMBER_INVOKE_ETIMEDOUT ? "timed out" : "poll failed");
            continue;
        }
        if (w < 0)
            return errmsg(errno == EPIPE || errno == ECONNRESET ? EMBER_INVOKE_ECLOSED
                                                                : EMBER_INVOKE_EIO,
                          err, errlen, "sending: %s", strerror(errno));
        size_t done = (size_t)w;
        while (n > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

/* Reads the handshake answer without consuming a byte past its newline (the
 * guest may start talking right after it). */
static int read_ok_line(int fd, uint32_t port, int64_t deadline, char *err, size_t errlen)
{
    char line[OK_LINE_MAX + 1];
    size_t have = 0;

    for (;;) {
        char peek[OK_LINE_MAX];
        ssize_t n = recv(fd, peek, OK_LINE_MAX - have, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(fd, POLLIN, deadline);
            if (rc)
                return errmsg(rc, err, errlen, "port %u: no answer to CONNECT in time", port);
            continue;
        }
        if (n <= 0)
            return errmsg(EMBER_INVOKE_ECONNECT, err, errlen,
                          "port %u: connection refused by the VM (nothing listening?)", port);
        char *nl = memchr(peek, '\n', (size_t)n);
        size_t take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;
        if (recv(fd, line + have, take, MSG_DONTWAIT) != (ssize_t)take)
            return errmsg(EMBER_INVOKE_EIO, err, errlen, "reading the handshake: %s",
                          strerror(errno));
        have += take;
        if (nl)
            break;
        if (have == OK_LINE_MAX)
            return errmsg(EMBER_INVOKE_EPROTO, err, errlen, "handshake answer too long");
    }
    line[have] = '\0';
    if (strncmp(line, "OK ", 3) != 0)
        return errmsg(EMBER_INVOKE_EPROTO, err, errlen, "unexpected handshake answer");
    return 0;
}

static int connect_once(const char *uds, uint32_t port, int64_t deadline, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char cmd[32];
    int fd, rc;

    if (strlen(uds) >= sizeof(sa.sun_path))
        return errmsg(EMBER_INVOKE_ECONNECT, err, errlen, "%s: path too long", uds);
    memcpy(sa.sun_path, uds, strlen(uds) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errmsg(EMBER_INVOKE_EIO, err, errlen, "socket: %s", strerror(errno));
    while ((rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa))) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        int e = errno;
        close(fd);
        return errmsg(EMBER_INVOKE_ECONNECT, err, errlen, "%s: %s", uds, strerror(e));
    }
    struct iovec iov = {cmd, (size_t)snprintf(cmd, sizeof(cmd), "CONNECT %u\n", port)};
    rc = send_all(fd, &iov, 1, deadline, err, errlen);
    /* Closed before the line went out: the monitor dropped the connection
     * before the guest answered it (a booting guest resets its vsock device,
     * which drops every connection), as a close before OK says. A refusal,
     * which ember_invoke_connect_wait tries again, not an I/O error. */
    if (rc == EMBER_INVOKE_ECLOSED)
        rc = errmsg(EMBER_INVOKE_ECONNECT, err, errlen,
                    "port %u: connection refused by the VM (nothing listening?)", port);
    if (rc == 0)
        rc = read_ok_line(fd, port, deadline, err, errlen);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int ember_invoke_connect(const char *uds, uint32_t port, int timeout_ms, char *err, size_t errlen)
{
    return connect_once(uds, port, deadline_of(timeout_ms), err, errlen);
}

int ember_invoke_connect_wait(const char *uds, uint32_t port, int timeout_ms, char *err,
                              size_t errlen)
{
    int64_t deadline = deadline_of(timeout_ms);
    /* 0.1 ms, doubling to 1 ms: a cold VM listens a few ms after exec, and a
     * longer back-off would add most of itself to the first response. */
    struct timespec pause = {0, 100000};

    for (;;) {
        int fd = connect_once(uds, port, deadline, err, errlen);
        if (fd >= 0 || fd != EMBER_INVOKE_ECONNECT)
            return fd;
        if (deadline >= 0 && now_ms() >= deadline)
            return fd;
        nanosleep(&pause, NULL);
        if (pause.tv_nsec < 1000000)
            pause.tv_nsec *= 2;
    }
}

/* The response being received. */
struct resp_rx {
    uint8_t hdr[EMBER_FAAS_HDR_LEN];
    size_t hdr_got, body_got;
    bool have_hdr, done;
    struct ember_faas_hdr h;
};

/* Receives what is there of the response; 0 (maybe incomplete) or an error. */
static int recv_some(int fd, struct resp_rx *rx, void **resp, size_t *resp_cap,
                     uint64_t max_response, bool *progress, char *err, size_t errlen)
{
    while (!rx->done) {
        uint8_t *dst = rx->have_hdr ? (uint8_t *)*resp + rx->body_got : rx->hdr + rx->hdr_got;
        size_t want =
            rx->have_hdr ? (size_t)rx->h.length - rx->body_got : EMBER_FAAS_HDR_LEN - rx->hdr_got;
        ssize_t r = recv(fd, dst, want, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (r == 0)
            return errmsg(EMBER_INVOKE_ECLOSED, err, errlen,
                          "connection closed before the whole response arrived");
        if (r < 0)
            return errmsg(errno == ECONNRESET ? EMBER_INVOKE_ECLOSED : EMBER_INVOKE_EIO, err,
                          errlen, "receiving: %s", strerror(errno));
        *progress = true;
        if (rx->have_hdr) {
            rx->body_got += (size_t)r;
            rx->done = rx->body_got == rx->h.length;
            continue;
        }
        rx->hdr_got += (size_t)r;
        if (rx->hdr_got < EMBER_FAAS_HDR_LEN)
            continue;
        ember_faas_decode(&rx->h, rx->hdr);
        if (!ember_faas_hdr_ok(&rx->h))
            return errmsg(EMBER_INVOKE_EPROTO, err, errlen,
                          "response with magic 0x%08x version %u (want 0x%08x version %u)",
                          rx->h.magic, rx->h.version, EMBER_FAAS_MAGIC, EMBER_FAAS_VERSION);
        uint64_t limit = rx->h.status == EMBER_FAAS_S_OK ? max_response : EMBER_FAAS_ERROR_MAX;
        if (rx->h.length > limit)
            return errmsg(EMBER_INVOKE_EPROTO, err, errlen,
                          "response body of %llu bytes is above the limit of %llu",
                          (unsigned long long)rx->h.length, (unsigned long long)limit);
        if (rx->h.length > *resp_cap || !*resp) {
            size_t cap = rx->h.length > 4096 ? (size_t)rx->h.length : 4096;
            void *nb = realloc(*resp, cap);
            if (!nb)
                return errmsg(EMBER_INVOKE_ENOMEM, err, errlen, "no memory for %zu bytes", cap);
            *resp = nb;
            *resp_cap = cap;
        }
        rx->have_hdr = true;
        rx->done = rx->h.length == 0;
    }
    return 0;
}

int ember_invoke(int fd, const void *req, size_t len, void **resp, size_t *resp_len,
                 size_t *resp_cap, uint64_t max_response, int timeout_ms, char *err, size_t errlen)
{
    int64_t deadline = deadline_of(timeout_ms);
    uint8_t hdr[EMBER_FAAS_HDR_LEN];
    struct ember_faas_hdr h = {
        .magic = EMBER_FAAS_MAGIC,
        .version = EMBER_FAAS_VERSION,
        .length = len,
        .max_response = max_response,
    };
    struct resp_rx rx;
    int rc;

    *resp_len = 0;
    if (len > EMBER_FAAS_BODY_MAX)
        return errmsg(EMBER_INVOKE_EINVAL, err, errlen, "request of %zu bytes is above %llu", len,
                      (unsigned long long)EMBER_FAAS_BODY_MAX);
    if (max_response == 0)
        max_response = EMBER_FAAS_BODY_MAX_DEFAULT;
    ember_faas_encode(hdr, &h);
    memset(&rx, 0, sizeof(rx));
    struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)req, len}}, *io = iov;
    int niov = len ? 2 : 1;

    /* Send and receive at once: a function may stream its answer while the
     * request is still arriving (an echo does), and neither side's buffers
     * are unbounded. */
    while (niov > 0 || !rx.done) {
        bool progress = false;
        if (niov > 0) {
            struct msghdr m = {.msg_iov = io, .msg_iovlen = (size_t)niov};
            ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
                return errmsg(errno == EPIPE || errno == ECONNRESET ? EMBER_INVOKE_ECLOSED
                                                                    : EMBER_INVOKE_EIO,
                              err, errlen, "sending: %s", strerror(errno));
            if (w > 0) {
                size_t done = (size_t)w;
                progress = true;
                while (niov > 0 && done >= io->iov_len) {
                    done -= io->iov_len;
                    io++;
                    niov--;
                }
                if (niov > 0) {
                    io->iov_base = (uint8_t *)io->iov_base + done;
                    io->iov_len -= done;
                }
            }
        }
        rc = recv_some(fd, &rx, resp, resp_cap, max_response, &progress, err, errlen);
        if (rc)
            return rc;
        if (progress)
            continue;
        struct pollfd p = {.fd = fd, .events = (short)((niov > 0 ? POLLOUT : 0) | POLLIN)};
        int left = -1;
        if (deadline >= 0) {
            int64_t d = deadline - now_ms();
            if (d <= 0)
                return errmsg(EMBER_INVOKE_ETIMEDOUT, err, errlen, "timed out %s",
                              niov > 0 ? "sending the request" : "waiting for the response");
            left = d > 1000000 ? 1000000 : (int)d;
        }
        if (poll(&p, 1, left) < 0 && errno != EINTR)
            return errmsg(EMBER_INVOKE_EIO, err, errlen, "poll: %s", strerror(errno));
    }
    *resp_len = (size_t)rx.h.length;
    if (rx.h.status != EMBER_FAAS_S_OK)
        errmsg(rx.h.status, err, errlen, "%s: %.*s", ember_invoke_strerror(rx.h.status),
               (int)rx.h.length, (const char *)*resp);
    return rx.h.status;
}

const char *ember_invoke_strerror(int result)
{
    switch (result) {
    case EMBER_INVOKE_OK:
        return "ok";
    case EMBER_INVOKE_ECONNECT:
        return "cannot connect";
    case EMBER_INVOKE_ETIMEDOUT:
        return "timed out";
    case EMBER_INVOKE_ECLOSED:
        return "connection lost";
    case EMBER_INVOKE_EPROTO:
        return "protocol error";
    case EMBER_INVOKE_EIO:
        return "I/O error";
    case EMBER_INVOKE_ENOMEM:
        return "out of memory";
    case EMBER_INVOKE_EINVAL:
        return "request too large";
    case EMBER_FAAS_S_ERROR:
        return "function error";
    case EMBER_FAAS_S_TOO_LARGE:
        return "body too large";
    case EMBER_FAAS_S_PROTOCOL:
        return "the function rejected the framing";
    case EMBER_FAAS_S_NO_MEMORY:
        return "the function ran out of memory";
    case EMBER_FAAS_S_INTERNAL:
        return "function runtime failure";
    default:
        return "unknown status";
    }
}

/* ---- ember invoke ---------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ember invoke --uds PATH [--port N] [--timeout MS] [--wait]\n"
            "                    [--max-response BYTES] [FILE|-]\n"
            "Sends FILE (or stdin) to the function listening on vsock port N (default %u)\n"
            "of the VM whose vsock Unix socket is PATH; prints the response body.\n"
            "--wait retries the connection until the timeout (a VM still booting).\n"
            "Exit: 0 ok, 1 function error, 2 usage, 3 cannot connect, 4 timeout,\n"
            "      5 connection lost or protocol error, 6 local I/O error.\n",
            EMBER_FAAS_PORT);
}

static int read_input(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = (!path || strcmp(path, "-") == 0) ? stdin : fopen(path, "rb");
    size_t cap = 0;

    *buf = NULL;
    *len = 0;
    if (!f)
        return -1;
    for (;;) {
        if (*len == cap) {
            cap = cap ? cap * 2 : 65536;
            if (cap > EMBER_FAAS_BODY_MAX + 1)
                cap = EMBER_FAAS_BODY_MAX + 1;
            if (*len == cap) {
                errno = EFBIG;
                break;
            }
            uint8_t *nb = realloc(*buf, cap);
            if (!nb)
                break;
            *buf = nb;
        }
        size_t n = fread(*buf + *len, 1, cap - *len, f);
        *len += n;
        if (n == 0) {
            bool bad = ferror(f);
            if (f != stdin)
                fclose(f);
            return bad ? -1 : 0;
        }
    }
    if (f != stdin)
        fclose(f);
    return -1;
}

static int exit_of(int rc)
{
    switch (rc) {
    case EMBER_INVOKE_OK:
        return 0;
    case EMBER_INVOKE_ECONNECT:
        return 3;
    case EMBER_INVOKE_ETIMEDOUT:
        return 4;
    case EMBER_INVOKE_ECLOSED:
    case EMBER_INVOKE_EPROTO:
        return 5;
    case EMBER_INVOKE_EIO:
    case EMBER_INVOKE_ENOMEM:
    case EMBER_INVOKE_EINVAL:
        return 6;
    default:
        return 1; /* a guest status */
    }
}

int ember_invoke_main(int argc, char **argv)
{
    const char *uds = NULL, *file = NULL;
    uint64_t port = EMBER_FAAS_PORT, timeout = 10000, max_response = 0;
    bool wait = false;
    char err[1200];
    uint8_t *req;
    size_t req_len, resp_len = 0, resp_cap = 0;
    void *resp = NULL;
    int fd, rc;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--uds") == 0 && val) {
            uds = val;
            i++;
        } else if (strcmp(a, "--port") == 0 && parse_u64(val, UINT32_MAX, &port) == 0) {
            i++;
        } else if (strcmp(a, "--timeout") == 0 && parse_u64(val, INT32_MAX, &timeout) == 0) {
            i++;
        } else if (strcmp(a, "--max-response") == 0 &&
                   parse_u64(val, EMBER_FAAS_BODY_MAX, &max_response) == 0) {
            i++;
        } else if (strcmp(a, "--wait") == 0) {
            wait = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if ((a[0] != '-' || strcmp(a, "-") == 0) && !file) {
            file = a;
        } else {
            fprintf(stderr, "ember invoke: bad argument \"%s\"\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!uds) {
        fprintf(stderr, "ember invoke: --uds PATH is required\n");
        usage(stderr);
        return 2;
    }
    if (read_input(file, &req, &req_len) != 0) {
        fprintf(stderr, "ember invoke: %s: %s\n", file ? file : "stdin", strerror(errno));
        free(req);
        return 6;
    }
    fd = wait ? ember_invoke_connect_wait(uds, (uint32_t)port, (int)timeout, err, sizeof(err))
              : ember_invoke_connect(uds, (uint32_t)port, (int)timeout, err, sizeof(err));
    if (fd < 0) {
        fprintf(stderr, "ember invoke: %s\n", err);
        free(req);
        return exit_of(fd);
    }
    rc = ember_invoke(fd, req, req_len, &resp, &resp_len, &resp_cap, max_response, (int)timeout,
                      err, sizeof(err));
    close(fd);
    free(req);
    if (rc == EMBER_INVOKE_OK) {
        if (resp_len && fwrite(resp, 1, resp_len, stdout) != resp_len) {
            fprintf(stderr, "ember invoke: stdout: %s\n", strerror(errno));
            rc = EMBER_INVOKE_EIO;
        }
        if (fflush(stdout) != 0 && rc == EMBER_INVOKE_OK) {
            fprintf(stderr, "ember invoke: stdout: %s\n", strerror(errno));
            rc = EMBER_INVOKE_EIO;
        }
    } else {
        fprintf(stderr, "ember invoke: %s\n", err);
    }
    free(resp);
    return exit_of(rc);
}
