/* faas_runtime.c: ember_faas_serve(), the guest side of the function
 * runtime (<ember/faas_runtime.h>; wire format: <ember/faas.h>).
 *
 * One loop: poll() over the listening socket and every connection, accept
 * what is waiting, and move each ready connection along:
 *
 *   read header -> read body (or discard one above the limit) -> run the
 *   handler -> write the response -> next request (pipelined bytes may
 *   already be buffered)
 *
 * Sockets are non-blocking, so a slow peer never holds up the others; a
 * connection only reads its next request once its response is out (in-order
 * answers, bounded memory). Each connection has one input buffer, grown to
 * hold a whole request (the handler gets the body in one piece) and shrunk
 * back after a big one, and one reply buffer for ember_faas_reply_buffer()
 * and _copy(). A reply given by reference that cannot be sent at once is
 * copied into the connection's reply buffer before the next handler runs.
 *
 * Every socket call goes through ember_syscall_direct(): the same code as
 * the system call without the trap, which is most of the cost of a warm
 * invocation on kvm_pvm (~20 us per `syscall`). The application's calls
 * (printf from a handler) still trap as usual.
 *
 * This file is application-level code linked into libember: it uses musl's
 * malloc and string functions like any program would.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <ember/faas.h>
#include <ember/faas_runtime.h>
#include <ember/vsock.h>

#include "arch/cpu_irq.h"
#include "sdk.h"

#define IN_CAP_MIN  (4u * 1024u)
#define IN_CAP_KEEP (1u << 20) /* shrink back to IN_CAP_MIN after bigger requests */
#define IN_INLINE   2048u      /* each connection's own input buffer, for small requests */
/* Linux's somaxconn default (4096 since 5.4): larger than the device's
 * connection limit, so a burst of host connections is queued for accept()
 * rather than reset while the loop is busy. */
#define BACKLOG 4096
#define MSG_MAX 160

struct ember_faas_reply {
    const uint8_t *data;
    size_t len;
    uint8_t **buf; /* the connection's reply buffer */
    size_t *cap;
    bool failed; /* no memory for copy/buffer */
    char msg[EMBER_FAAS_ERROR_MAX];
    size_t msg_len;
};

struct conn {
    int fd;
    uint8_t *in;
    size_t in_cap, in_start, in_len; /* unconsumed input: [in_start, in_len) */
    uint64_t discard;                /* body bytes still to drop */
    int discard_status;
    uint64_t discard_max_response;
    char discard_msg[MSG_MAX];
    uint8_t *rep; /* reply buffer */
    size_t rep_cap;
    /* the response being written: header, then body */
    uint8_t out_hdr[EMBER_FAAS_HDR_LEN];
    const uint8_t *out_body;
    size_t out_len, out_off; /* over header + body */
    bool close_after;
    char err_body[EMBER_FAAS_ERROR_MAX];
    /* Requests up to IN_INLINE bytes are read here (in == in_inline): no
     * malloc per connection, and the first connection's buffer shares a
     * page with its struct and the poll array (grow()). */
    uint8_t in_inline[IN_INLINE];
};

static struct ember_faas_stats stats;

static long sys(long nr, long a, long b, long c, long d, long e, long f)
{
    return ember_syscall_direct(nr, a, b, c, d, e, f);
}

/* ---- replies ------------------------------------------------------------------- */

void ember_faas_reply_ref(struct ember_faas_reply *r, const void *data, size_t len)
{
    r->data = data;
    r->len = len;
    r->failed = false;
}

void *ember_faas_reply_buffer(struct ember_faas_reply *r, size_t len)
{
    if (len > *r->cap) {
        uint8_t *p = realloc(*r->buf, len);
        if (!p) {
            r->failed = true;
            return NULL;
        }
        *r->buf = p;
        *r->cap = len;
    }
    r->data = *r->buf;
    r->len = len;
    r->failed = false;
    return *r->buf;
}

int ember_faas_reply_copy(struct ember_faas_reply *r, const void *data, size_t len)
{
    void *p = ember_faas_reply_buffer(r, len);
    if (!p)
        return -1;
    if (len)
        memcpy(p, data, len);
    return 0;
}

void ember_faas_reply_error(struct ember_faas_reply *r, const char *msg)
{
    size_t n = strnlen(msg, sizeof(r->msg));
    memcpy(r->msg, msg, n);
    r->msg_len = n;
}

void ember_faas_get_stats(struct ember_faas_stats *s)
{
    *s = stats;
}

/* ---- connections ------------------------------------------------------------------ */

static void put_dec(char **p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *(*p)++ = tmp[--n];
}

/* "<a><n><b><m>" without printf (the runtime stays out of stdio). */
static size_t msg2(char *out, const char *a, uint64_t n, const char *b, uint64_t m)
{
    char *p = out;
    size_t la = strlen(a), lb = strlen(b);
    memcpy(p, a, la);
    p += la;
    put_dec(&p, n);
    memcpy(p, b, lb);
    p += lb;
    put_dec(&p, m);
    return (size_t)(p - out);
}

/* Starts sending a response (status, body). */
static void respond(struct conn *c, int status, const uint8_t *body, size_t len,
                    uint64_t max_response)
{
    struct ember_faas_hdr h = {.magic = EMBER_FAAS_MAGIC, .version = EMBER_FAAS_VERSION};

    if (status == EMBER_FAAS_S_OK && len > max_response) {
        status = EMBER_FAAS_S_TOO_LARGE;
        len = msg2(c->err_body, "response of ", len, " bytes is above the host's limit of ",
                   max_response);
        body = (const uint8_t *)c->err_body;
    }
    if (status != EMBER_FAAS_S_OK && len > max_response)
        len = (size_t)max_response; /* an error message must fit as well */
    h.status = (uint16_t)status;
    h.length = len;
    ember_faas_encode(c->out_hdr, &h);
    c->out_body = body;
    c->out_len = EMBER_FAAS_HDR_LEN + len;
    c->out_off = 0;
    stats.invocations++;
    stats.bytes_out += len;
    if (status != EMBER_FAAS_S_OK)
        stats.errors++;
}

static void respond_msg(struct conn *c, int status, const char *msg, size_t len, uint64_t max)
{
    if (len > sizeof(c->err_body))
        len = sizeof(c->err_body);
    memcpy(c->err_body, msg, len);
    respond(c, status, (const uint8_t *)c->err_body, len, max);
}

/* Writes what it can of the response. 0 (maybe more left) or -1. */
static int flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        struct iovec iov[2];
        int n = 0;
        if (c->out_off < EMBER_FAAS_HDR_LEN) {
            iov[n].iov_base = c->out_hdr + c->out_off;
            iov[n].iov_len = EMBER_FAAS_HDR_LEN - c->out_off;
            n++;
        }
        size_t boff = c->out_off > EMBER_FAAS_HDR_LEN ? c->out_off - EMBER_FAAS_HDR_LEN : 0;
        if (c->out_len > EMBER_FAAS_HDR_LEN + boff) {
            iov[n].iov_base = (void *)(c->out_body + boff);
            iov[n].iov_len = c->out_len - EMBER_FAAS_HDR_LEN - boff;
            n++;
        }
        long w = sys(SYS_writev, c->fd, (long)iov, n, 0, 0, 0);
        if (w == -EAGAIN)
            return 0;
        if (w <= 0)
            return -1;
        c->out_off += (size_t)w;
    }
    return 0;
}

/* The body lives outside the connection's own buffers (a reference the
 * handler gave): keep a copy before another handler can change it. */
static int own_body(struct conn *c)
{
    size_t len = c->out_len - EMBER_FAAS_HDR_LEN;
    const uint8_t *b = c->out_body;
    if (!len || (b >= c->in && b < c->in + c->in_cap) || (b >= c->rep && b < c->rep + c->rep_cap) ||
        b == (const uint8_t *)c->err_body)
        return 0;
    if (len > c->rep_cap) {
        uint8_t *p = realloc(c->rep, len);
        if (!p)
            return -1;
        c->rep = p;
        c->rep_cap = len;
    }
    memmove(c->rep, b, len);
    c->out_body = c->rep;
    return 0;
}

static int grow_in(struct conn *c, size_t need)
{
    if (c->in_start && (c->in_cap - c->in_start < need || c->in_start == c->in_len)) {
        memmove(c->in, c->in + c->in_start, c->in_len - c->in_start);
        c->in_len -= c->in_start;
        c->in_start = 0;
    }
    if (need <= c->in_cap)
        return 0;
    if (!c->in && need <= IN_INLINE) {
        c->in = c->in_inline;
        c->in_cap = IN_INLINE;
        return 0;
    }
    size_t cap = need < IN_CAP_MIN ? IN_CAP_MIN : need;
    uint8_t *p;
    if (c->in == c->in_inline) {
        p = malloc(cap);
        if (p)
            memcpy(p, c->in, c->in_len);
    } else {
        p = realloc(c->in, cap);
    }
    if (!p)
        return -1;
    c->in = p;
    c->in_cap = cap;
    return 0;
}

/* Handles the next buffered request if it is complete: 1 (a response is
 * on its way), 0 (more input needed) or -1 (close). */
static int next_request(struct conn *c, uint64_t max_request, ember_faas_handler handler)
{
    for (;;) {
        size_t avail = c->in_len - c->in_start;
        if (c->discard) {
            size_t d = avail < c->discard ? avail : (size_t)c->discard;
            c->in_start += d;
            c->discard -= d;
            if (c->discard)
                return 0;
            respond_msg(c, c->discard_status, c->discard_msg, strlen(c->discard_msg),
                        c->discard_max_response);
            return 1;
        }
        if (avail < EMBER_FAAS_HDR_LEN)
            return grow_in(c, EMBER_FAAS_HDR_LEN) < 0 ? -1 : 0;
        struct ember_faas_hdr h;
        ember_faas_decode(&h, c->in + c->in_start);
        uint64_t max_resp = h.max_response ? h.max_response : EMBER_FAAS_BODY_MAX_DEFAULT;
        if (max_resp > EMBER_FAAS_BODY_MAX)
            max_resp = EMBER_FAAS_BODY_MAX;
        if (!ember_faas_hdr_ok(&h) || h.status != 0) {
            static const char bad[] = "bad request header (magic, version or flags)";
            respond_msg(c, EMBER_FAAS_S_PROTOCOL, bad, sizeof(bad) - 1, max_resp);
            c->close_after = true;
            return 1;
        }
        if (h.length > max_request) {
            c->in_start += EMBER_FAAS_HDR_LEN;
            c->discard = h.length;
            c->discard_status = EMBER_FAAS_S_TOO_LARGE;
            c->discard_max_response = max_resp;
            c->discard_msg[msg2(c->discard_msg, "request body of ", h.length,
                                " bytes is above the function's limit of ", max_request)] = 0;
            stats.bytes_in += h.length;
            continue;
        }
        size_t need = EMBER_FAAS_HDR_LEN + (size_t)h.length;
        if (avail < need) {
            if (grow_in(c, need) == 0)
                return 0;
            /* No room for the body: drop it, say so. */
            c->in_start += EMBER_FAAS_HDR_LEN;
            c->discard = h.length;
            c->discard_status = EMBER_FAAS_S_NO_MEMORY;
            c->discard_max_response = max_resp;
            c->discard_msg[msg2(c->discard_msg, "no memory for a request body of ", h.length,
                                " bytes (limit ", max_request)] = 0;
            strcat(c->discard_msg, ")");
            stats.bytes_in += h.length;
            continue;
        }
        struct ember_faas_reply r = {.buf = &c->rep, .cap = &c->rep_cap};
        uint8_t *body = c->in + c->in_start + EMBER_FAAS_HDR_LEN;
        stats.bytes_in += h.length;
        int status = handler(body, (size_t)h.length, &r);
        c->in_start += need;
        if (status == EMBER_FAAS_S_OK && r.failed) {
            status = EMBER_FAAS_S_NO_MEMORY;
            ember_faas_reply_error(&r, "no memory for the response");
        }
        if (status == EMBER_FAAS_S_OK) {
            respond(c, status, r.data, r.len, max_resp);
        } else {
            if (status < 0 || status > 0xffff)
                status = EMBER_FAAS_S_ERROR;
            if (!r.msg_len)
                ember_faas_reply_error(&r, "the function failed");
            respond_msg(c, status, r.msg, r.msg_len, max_resp);
        }
        return 1;
    }
}

static void conn_close(struct conn *c)
{
    sys(SYS_close, c->fd, 0, 0, 0, 0, 0);
    if (c->in != c->in_inline)
        free(c->in);
    free(c->rep);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

/* Moves c along as far as it goes without blocking; -1: close it. */
static int conn_step(struct conn *c, uint64_t max_request, ember_faas_handler handler)
{
    for (;;) {
        if (c->out_off < c->out_len) {
            if (flush(c) < 0)
                return -1;
            if (c->out_off < c->out_len)
                return own_body(c);
            if (c->close_after)
                return -1;
            if (c->in_start == c->in_len) {
                c->in_start = c->in_len = 0;
                if (c->in_cap > IN_CAP_KEEP) {
                    free(c->in);
                    c->in = NULL;
                    c->in_cap = 0;
                }
            }
            if (c->rep_cap > IN_CAP_KEEP) {
                free(c->rep);
                c->rep = NULL;
                c->rep_cap = 0;
            }
        }
        int r = next_request(c, max_request, handler);
        if (r < 0)
            return -1;
        if (r > 0)
            continue;
        if (c->in_start == c->in_len)
            c->in_start = c->in_len = 0;
        long n =
            sys(SYS_read, c->fd, (long)(c->in + c->in_len), (long)(c->in_cap - c->in_len), 0, 0, 0);
        if (n == -EAGAIN)
            return 0;
        if (n <= 0)
            return -1; /* end of stream (between requests: a normal close) or error */
        c->in_len += (size_t)n;
    }
}

/* ---- the loop ----------------------------------------------------------------- */

/* The connection table grows by doubling as connections arrive: a table
 * for all max_conns up front would be over a megabyte that calloc()
 * zeroes, i.e. hundreds of first page touches on the cold-start path.
 * One page-aligned block holds the poll array and then the connections, so
 * that the listener's pollfd, the first connection and its input buffer
 * share a page (poll() writes the one, accept() and read() the others).
 * *pfd is the block (free() it). A connection's pointers into itself (its
 * inline input buffer, an error body being sent) move with it. */
static void conn_move(struct conn *dst, const struct conn *src)
{
    const uint8_t *o = (const uint8_t *)src;
    *dst = *src;
    if (dst->in && dst->in >= o && dst->in < o + sizeof(*src))
        dst->in = (uint8_t *)dst + (dst->in - o);
    if (dst->out_body && dst->out_body >= o && dst->out_body < o + sizeof(*src))
        dst->out_body = (const uint8_t *)dst + (dst->out_body - o);
}

static int grow(struct conn **conns, struct pollfd **pfd, unsigned *cap, unsigned max)
{
    unsigned n = *cap ? *cap * 2 : 16;
    if (n > max)
        n = max;
    size_t poll_bytes = ALIGN_UP((n + 1) * sizeof(**pfd), _Alignof(struct conn));
    uint8_t *b = aligned_alloc(PAGE_SIZE, ALIGN_UP(poll_bytes + n * sizeof(**conns), PAGE_SIZE));
    if (!b)
        return -1;
    struct conn *nc = (struct conn *)(b + poll_bytes);
    if (*cap)
        memcpy(b, *pfd, (*cap + 1) * sizeof(**pfd));
    for (unsigned i = 0; i < *cap; i++)
        conn_move(&nc[i], &(*conns)[i]);
    free(*pfd);
    *pfd = (struct pollfd *)b;
    *conns = nc;
    *cap = n;
    return 0;
}

static bool ready_called;

int ember_faas_ready(void)
{
    ready_called = true;
    if (ember_kind != EMBER_BOOT_KIND_EMBER)
        return 0;
    /* Done before the snapshot, it is in every VM restored from it: the
     * IDT page, the local APIC and the IOAPIC pin would otherwise be set up
     * after each restore, at the first wait (a trap to CPL0 and a dozen
     * interrupt-controller writes, emulated on kvm_pvm, and one more guest
     * page of its own per VM). */
    vsock_dev_route_irq();
    outl(EMBER_PORT_READY, 0);
    /* Restored here, maybe: catch up before the function's next move. A
     * restored function is one of many on a shared host: its waits spin
     * only as long as spinning pays (cpu_irq.c). */
    ember_restore_poll();
    if (ember_restore_generation() != 0)
        ember_wait_adaptive(true);
    return (int)ember_restore_generation();
}

int ember_faas_serve(ember_faas_handler handler)
{
    struct ember_faas_options o = {0};
    return ember_faas_serve_with(&o, handler);
}

int ember_faas_serve_with(const struct ember_faas_options *opt, ember_faas_handler handler)
{
    uint32_t port = opt->port ? opt->port : EMBER_FAAS_PORT;
    uint64_t max_request = opt->max_request ? opt->max_request : EMBER_FAAS_BODY_MAX_DEFAULT;
    unsigned max_conns = opt->max_conns ? opt->max_conns : EMBER_FAAS_CONNS_DEFAULT;
    if (max_request > EMBER_FAAS_BODY_MAX)
        max_request = EMBER_FAAS_BODY_MAX;

    long lfd = sys(SYS_socket, AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, 0, 0, 0);
    if (lfd < 0)
        return (int)lfd;
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    long r = sys(SYS_bind, lfd, (long)&a, sizeof(a), 0, 0, 0);
    if (r == 0)
        r = sys(SYS_listen, lfd, BACKLOG, 0, 0, 0, 0);
    struct conn *conns = NULL;
    struct pollfd *pfd = NULL;
    unsigned cap = 0; /* conns has room for cap, pfd for cap + 1 */
    if (r == 0 && grow(&conns, &pfd, &cap, max_conns) != 0)
        r = -ENOMEM;
    if (r) {
        free(pfd);
        sys(SYS_close, lfd, 0, 0, 0, 0, 0);
        return (int)r;
    }
    memset(&stats, 0, sizeof(stats));
    if (opt->on_listen)
        opt->on_listen(port);
    /* Listening: a snapshot from here on keeps the listener (the vsock
     * transport reset after a restore drops connections only). */
    if (!ready_called)
        ember_faas_ready();

    unsigned n = 0;      /* conns[0, n) are open */
    bool paused = false; /* accept() ran out of fds or memory: wait for a close */
    for (;;) {
        pfd[0].fd = n < max_conns && !paused ? (int)lfd : -1;
        pfd[0].events = POLLIN;
        for (unsigned i = 0; i < n; i++) {
            pfd[1 + i].fd = conns[i].fd;
            pfd[1 + i].events = conns[i].out_off < conns[i].out_len ? POLLOUT : POLLIN;
            pfd[1 + i].revents = 0;
        }
        r = sys(SYS_poll, (long)pfd, n + 1, -1, 0, 0, 0);
        if (r < 0)
            continue;             /* cannot happen: the arguments are ours */
        unsigned ready_conns = n; /* accepted below are stepped next round */
        if (pfd[0].revents & POLLIN) {
            while (n < max_conns) {
                if (n == cap && grow(&conns, &pfd, &cap, max_conns) != 0) {
                    paused = true; /* no memory for another: wait for a close */
                    break;
                }
                long fd = sys(SYS_accept4, lfd, 0, 0, SOCK_NONBLOCK | SOCK_CLOEXEC, 0, 0);
                if (fd < 0) {
                    /* EMFILE, ENOMEM: the connection stays queued until
                     * one of ours closes. */
                    paused = fd != -EAGAIN;
                    break;
                }
                memset(&conns[n], 0, sizeof(conns[n]));
                conns[n].fd = (int)fd;
                stats.connections++;
                /* A request may be there already: read before polling. */
                if (conn_step(&conns[n], max_request, handler) < 0)
                    conn_close(&conns[n]);
                else
                    n++;
            }
        }
        for (unsigned i = 0; i < ready_conns; i++) {
            if (!pfd[1 + i].revents || conns[i].fd < 0)
                continue;
            if (conn_step(&conns[i], max_request, handler) < 0)
                conn_close(&conns[i]);
        }
        /* Drop the closed ones (order does not matter). */
        for (unsigned i = 0; i < n;) {
            if (conns[i].fd < 0) {
                if (i != --n)
                    conn_move(&conns[i], &conns[n]);
                paused = false;
            } else {
                i++;
            }
        }
        if (opt->max_invocations && stats.invocations >= opt->max_invocations) {
            for (unsigned i = 0; i < n; i++) {
                while (conns[i].out_off < conns[i].out_len && flush(&conns[i]) == 0 &&
                       conns[i].out_off < conns[i].out_len) {
                    struct pollfd p = {.fd = conns[i].fd, .events = POLLOUT};
                    sys(SYS_poll, (long)&p, 1, 1000, 0, 0, 0);
                }
                conn_close(&conns[i]);
            }
            free(pfd);
            sys(SYS_close, lfd, 0, 0, 0, 0, 0);
            return 0;
        }
    }
}
