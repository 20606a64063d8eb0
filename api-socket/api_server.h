/* api_server.h: the API's Unix socket, served by the libuv loop.
 *
 * Each accepted connection gets its own HTTP framing state (api_http.c), so a
 * client that sends one byte per second, never finishes its headers, or
 * pipelines requests without reading the answers holds only its own
 * connection: the loop never blocks on a client. Reads go into one shared
 * buffer (the loop is single-threaded and every read is consumed before the
 * next), responses are written with uv_write, and a client whose unread
 * responses pile up past a limit is not read from until it catches up.
 */
#ifndef EMBER_API_SERVER_H
#define EMBER_API_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "api-socket/api_http.h"

/* Open connections at once, as micro-http (Firecracker's HTTP server)
 * allows: the next one is answered 503 "Too many open connections" and
 * closed. */
#define API_SERVER_MAX_CONNS 10

struct api_server;

/* Binds and listens on path (which must not exist). Returns 0 or -1 with e. */
int api_server_start(uv_loop_t *loop, const char *path, size_t max_body, api_http_request_fn fn,
                     void *ctx, struct api_server **out, struct api_err *e);
/* True when no response is waiting to be written. */
bool api_server_drained(const struct api_server *s);
/* Calls fn once every pending response has been written (at once if none). */
void api_server_on_drained(struct api_server *s, void (*fn)(void *), void *arg);
/* Closes the listener and every connection, and removes the socket file. The
 * handles are freed by the loop's close callbacks. */
void api_server_stop(struct api_server *s);

#endif
