/* ember/faas_runtime.h: the guest side of ember's function runtime.
 *
 * A function is an ordinary C function that turns a request body into a
 * response body:
 *
 *     static int echo(const void *req, size_t len, struct ember_faas_reply *r)
 *     {
 *         ember_faas_reply_ref(r, req, len);
 *         return EMBER_FAAS_S_OK;
 *     }
 *
 *     int main(void) { return ember_faas_serve(echo); }
 *
 * ember_faas_serve() listens on the vsock port EMBER_FAAS_PORT and answers
 * requests framed as <ember/faas.h> describes, on any number of connections
 * at once (up to max_conns; one request at a time per connection, in order).
 * The host side is `ember invoke` (monitor/invoke.h). The runtime's socket
 * calls go through ember_syscall_direct() (<ember/vsock.h>): no system-call
 * trap on the request path.
 *
 * The handler runs to completion; requests on other connections wait. Its
 * return value is the response status: EMBER_FAAS_S_OK sends the reply
 * body; any other status sends the message given with
 * ember_faas_reply_error() (or a default one). If the reply is larger than
 * the host accepts (the request's max_response), the host gets
 * EMBER_FAAS_S_TOO_LARGE instead.
 */
#ifndef EMBER_FAAS_RUNTIME_H
#define EMBER_FAAS_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include <ember/faas.h>

struct ember_faas_reply;

/* req: the request body (len bytes, valid until the handler returns; the
 * handler may modify it in place). Returns an enum ember_faas_status. */
typedef int (*ember_faas_handler)(const void *req, size_t len, struct ember_faas_reply *reply);

/* The response body, one of three ways (the last call wins):
 *  - ref: data the runtime sends as is; it must stay valid until the
 *    handler returns (a pointer into the request is fine);
 *  - copy: copied into the runtime's buffer at once; 0 or -1 (no memory);
 *  - buffer: a buffer of len bytes owned by the runtime (reused from one
 *    request to the next) for the handler to fill; NULL if no memory. */
void ember_faas_reply_ref(struct ember_faas_reply *r, const void *data, size_t len);
int ember_faas_reply_copy(struct ember_faas_reply *r, const void *data, size_t len);
void *ember_faas_reply_buffer(struct ember_faas_reply *r, size_t len);
/* The message sent with a non-OK status (at most EMBER_FAAS_ERROR_MAX
 * bytes are kept). */
void ember_faas_reply_error(struct ember_faas_reply *r, const char *msg);

struct ember_faas_options {
    uint32_t port;            /* 0: EMBER_FAAS_PORT */
    uint64_t max_request;     /* request body limit; 0: EMBER_FAAS_BODY_MAX_DEFAULT */
    unsigned max_conns;       /* connections served at once; 0: EMBER_FAAS_CONNS_DEFAULT */
    uint64_t max_invocations; /* return 0 after this many responses; 0: never */
    /* Called once the port is listening (e.g. to print a ready line). */
    void (*on_listen)(uint32_t port);
};

#define EMBER_FAAS_CONNS_DEFAULT 1000u

/* Tells the host that the function has initialised (loaded what it needs,
 * warmed its caches): the point to snapshot it at. Under `ember run
 * --snapshot-on-ready DIR` the monitor pauses the guest right here, writes
 * the snapshot and ends; every VM restored from it returns from this call.
 * Returns 0 in the VM that booted, or the restore generation (1, 2, ...)
 * in a restored one, whose clock and random state are already fresh.
 * ember_faas_serve() calls it once it listens, if the function has not. */
int ember_faas_ready(void);

/* Serves forever (or until max_invocations). Returns 0 after
 * max_invocations, or -errno if the port cannot be served (no vsock device:
 * -EAFNOSUPPORT; port taken: -EADDRINUSE; out of memory: -ENOMEM). */
int ember_faas_serve(ember_faas_handler handler);
int ember_faas_serve_with(const struct ember_faas_options *opt, ember_faas_handler handler);

/* Counters since serving started. */
struct ember_faas_stats {
    uint64_t invocations; /* responses sent, any status */
    uint64_t errors;      /* responses with a status other than OK */
    uint64_t connections; /* accepted */
    uint64_t bytes_in, bytes_out;
};
void ember_faas_get_stats(struct ember_faas_stats *s);

#endif /* EMBER_FAAS_RUNTIME_H */
