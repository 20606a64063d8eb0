/* api_server.c: the API socket on the libuv loop (see api_server.h). */
#include "api-socket/api_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api-socket/api_log.h"
#include "api-socket/api_metrics.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

/* Stop reading from a client with this much unread output queued. */
#define WRITE_BACKLOG_MAX (1u << 20)
#define READ_BUF_SIZE     (64u * 1024)

struct conn {
    uv_pipe_t pipe; /* first: the handle's address is the conn's */
    struct api_server *server;
    struct api_http_conn http;
    struct conn *prev, *next;
    unsigned pending; /* writes not yet completed */
    bool reading;
    bool closing; /* close once pending writes are done */
};

struct api_server {
    uv_pipe_t listener;
    uv_loop_t *loop;
    char *path;
    size_t max_body;
    api_http_request_fn fn;
    void *ctx;
    struct conn *conns;
    unsigned nconns;
    size_t pending_writes;
    void (*drained_fn)(void *);
    void *drained_arg;
    /* A mapping of its own, not part of the zeroed struct nor of the heap:
     * only the pages a read reaches are ever touched (a zeroed 64 KiB would
     * be private memory of every VM's process for good), and they go back
     * when the last connection closes (nothing is left in it after a read:
     * the parser copies what it keeps), so that an idle API process keeps
     * no page of its last request. */
    char *read_buf;
};

struct write_req {
    uv_write_t req;
    char *data;
};

static void check_drained(struct api_server *s)
{
    if (s->drained_fn && s->pending_writes == 0) {
        void (*fn)(void *) = s->drained_fn;
        s->drained_fn = NULL;
        fn(s->drained_arg);
    }
}

static char *read_buf_map(void)
{
    void *p = mmap(NULL, READ_BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void read_buf_unmap(char *buf)
{
    if (buf)
        munmap(buf, READ_BUF_SIZE);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = (struct conn *)h;
    api_http_conn_release(&c->http);
    free(c);
}

static void conn_close(struct conn *c)
{
    struct api_server *s = c->server;

    if (uv_is_closing((uv_handle_t *)&c->pipe))
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (s->nconns == 0)
        (void)madvise(s->read_buf, READ_BUF_SIZE, MADV_DONTNEED);
    uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = (struct conn *)h;
    (void)suggested;
    *buf = uv_buf_init(c->server->read_buf, READ_BUF_SIZE);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void update_reading(struct conn *c)
{
    bool want =
        !c->closing && uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) < WRITE_BACKLOG_MAX;
    if (want && !c->reading)
        uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
    else if (!want && c->reading)
        uv_read_stop((uv_stream_t *)&c->pipe);
    c->reading = want;
}

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = req->data;
    struct api_server *s = c->server;

    free(w->data);
    free(w);
    s->pending_writes--;
    c->pending--;
    if (!uv_is_closing((uv_handle_t *)&c->pipe)) {
        if (status < 0) {
            api_metrics_add(API_M_SYNC_RESPONSE_FAILS, 1);
            conn_close(c);
        } else if (c->closing && c->pending == 0) {
            conn_close(c);
        } else {
            update_reading(c);
        }
    }
    check_drained(s);
}

static void flush_output(struct conn *c)
{
    struct write_req *w;
    size_t len;
    char *data = api_http_take_output(&c->http, &len);
    uv_buf_t buf;

    if (!data)
        return;
    w = malloc(sizeof(*w));
    if (!w) {
        free(data);
        api_metrics_add(API_M_SYNC_RESPONSE_FAILS, 1);
        conn_close(c);
        return;
    }
    w->data = data;
    w->req.data = c;
    buf = uv_buf_init(data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, on_write) < 0) {
        free(data);
        free(w);
        api_metrics_add(API_M_SYNC_RESPONSE_FAILS, 1);
        conn_close(c);
        return;
    }
    c->server->pending_writes++;
    c->pending++;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = (struct conn *)st;

    if (nread < 0) {
        /* EOF or error: answer what was asked, then close. */
        c->closing = true;
        update_reading(c);
        if (c->pending == 0)
            conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (api_http_feed(&c->http, buf->base, (size_t)nread) < 0)
        c->closing = true;
    flush_output(c);
    if (uv_is_closing((uv_handle_t *)&c->pipe))
        return;
    if (c->closing && c->pending == 0)
        conn_close(c);
    else
        update_reading(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct api_server *s = listener->data;
    struct conn *c;

    if (status < 0) {
        API_WARN("API socket: accept failed: %s", uv_strerror(status));
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c || uv_pipe_init(s->loop, &c->pipe, 0) < 0) {
        free(c);
        API_ERROR("API socket: out of memory for a new connection");
        return;
    }
    c->server = s;
    api_http_conn_init(&c->http, s->max_body, s->fn, s->ctx);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0) {
        conn_close(c);
        return;
    }
    api_metrics_add(API_M_CONNECTIONS, 1);
    if (s->nconns > API_SERVER_MAX_CONNS) {
        /* Told why, then closed, as micro-http does. */
        struct api_response resp = {0};
        size_t len;
        char *out;
        api_response_fault(&resp, "Too many open connections: the API serves " STR(
                                      API_SERVER_MAX_CONNS) " at a time.");
        resp.status = 503;
        out = api_http_format(&resp, true, &len);
        free(resp.body);
        api_metrics_add(API_M_CONNECTIONS_REFUSED, 1);
        API_WARN("API socket: more than %d connections, refusing the newest", API_SERVER_MAX_CONNS);
        c->closing = true;
        if (out) {
            api_http_conn_set_output(&c->http, out, len);
            flush_output(c);
        }
        if (c->pending == 0)
            conn_close(c);
        return;
    }
    update_reading(c);
}

int api_server_start(uv_loop_t *loop, const char *path, size_t max_body, api_http_request_fn fn,
                     void *ctx, struct api_server **out, struct api_err *e)
{
    struct api_server *s;
    int rc;

    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return api_errf(e, "API socket %.200s: path is longer than %zu bytes", path,
                        sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    s = calloc(1, sizeof(*s));
    if (s)
        s->read_buf = read_buf_map();
    if (!s || !s->read_buf || !(s->path = strdup(path))) {
        if (s)
            read_buf_unmap(s->read_buf);
        free(s);
        return api_errf(e, "out of memory");
    }
    s->loop = loop;
    s->max_body = max_body;
    s->fn = fn;
    s->ctx = ctx;
    uv_pipe_init(loop, &s->listener, 0);
    s->listener.data = s;
    /* Clients wait for the socket file to appear, then connect: the file
     * must not appear before the socket listens. So it is bound under a
     * temporary name and renamed once listening. A path already there is
     * refused first, as Firecracker refuses it (bind's EADDRINUSE). */
    char tmp[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct stat st;
    int n = snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    bool renamed = n > 0 && (size_t)n < sizeof(tmp);
    if (lstat(path, &st) == 0)
        rc = UV_EADDRINUSE;
    else
        rc = uv_pipe_bind(&s->listener, renamed ? tmp : path);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    if (rc == 0 && renamed && rename(tmp, path) < 0)
        rc = uv_translate_sys_error(errno);
    if (rc < 0) {
        /* Firecracker's words for a path already there (its
         * api_server_adapter.rs), then the reason. */
        if (rc == UV_EADDRINUSE)
            api_errf(e,
                     "Failed to open the API socket at: %.200s. Check that it is not already "
                     "used.",
                     path);
        else
            api_errf(e, "API socket %.200s: %s", path, uv_strerror(rc));
        /* The handle is freed by its close callback; s goes with it. */
        uv_close((uv_handle_t *)&s->listener, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        read_buf_unmap(s->read_buf);
        free(s->path);
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

bool api_server_drained(const struct api_server *s)
{
    return s->pending_writes == 0;
}

void api_server_on_drained(struct api_server *s, void (*fn)(void *), void *arg)
{
    s->drained_fn = fn;
    s->drained_arg = arg;
    check_drained(s);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct api_server *s = h->data;
    read_buf_unmap(s->read_buf);
    free(s->path);
    free(s);
}

void api_server_stop(struct api_server *s)
{
    while (s->conns)
        conn_close(s->conns);
    unlink(s->path);
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}
