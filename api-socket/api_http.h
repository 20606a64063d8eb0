/* api_http.h: HTTP/1.1 framing of one API connection, without any I/O.
 *
 * Bytes read from a client are fed in as they arrive (one byte at a time is
 * fine); each complete request is handed to the request callback, and the
 * response is appended to the connection's output, which the caller writes
 * out. The caller owns the socket: the same code serves the libuv server, the
 * fuzz target and the unit tests. Requests are bounded: the URL
 * (API_HTTP_URL_MAX), the headers (http-parser's limit, set by
 * api_http_global_init) and the body (max_body, Firecracker's
 * --http-api-max-payload-size) are checked before anything is buffered past
 * the limit. A malformed or oversized request gets a 400 with a
 * fault_message and the connection is closed after it, because the stream
 * cannot be re-synchronised.
 */
#ifndef EMBER_API_HTTP_H
#define EMBER_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <http_parser.h>

#include "api-socket/api_router.h"

#define API_HTTP_URL_MAX          2048
#define API_HTTP_HEADERS_MAX      (16 * 1024)
#define API_HTTP_DEFAULT_MAX_BODY 51200

typedef void (*api_http_request_fn)(void *ctx, const struct api_request *req,
                                    struct api_response *resp);

struct api_http_conn {
    http_parser parser;
    api_http_request_fn on_request;
    void *ctx;
    size_t max_body;

    /* The request being read. */
    char url[API_HTTP_URL_MAX + 1];
    size_t url_len;
    char *body;
    size_t body_len, body_cap;
    char header_field[16]; /* only "Expect" matters; longer names are cut */
    size_t header_field_len;
    bool in_value, expect_continue;
    bool started;            /* bytes of a request have arrived */
    char fault[API_ERR_MAX]; /* set when a callback rejects the request */

    /* Responses waiting to be written. */
    char *out;
    size_t out_len, out_cap;
    bool closing; /* no more requests: close once out is written */
};

/* Once per process: sets http-parser's header size limit. */
void api_http_global_init(void);

void api_http_conn_init(struct api_http_conn *c, size_t max_body, api_http_request_fn fn,
                        void *ctx);
void api_http_conn_release(struct api_http_conn *c);
/* Feeds bytes; appends responses to c->out. Returns 0, or -1 when the
 * connection must be closed once c->out is written (c->closing is set). */
int api_http_feed(struct api_http_conn *c, const char *data, size_t len);
/* True while a request is partly read (for idle-timeout decisions). */
bool api_http_in_request(const struct api_http_conn *c);
/* Makes data (malloc'd, taken over) the pending output; for answers written
 * without a request (the server's 503). */
void api_http_conn_set_output(struct api_http_conn *c, char *data, size_t len);
/* Hands the pending output to the caller (who frees it); c->out is reset. */
char *api_http_take_output(struct api_http_conn *c, size_t *len);

/* Formats a whole response (status line, headers, body) into a malloc'd
 * buffer. Exposed for tests and the benchmark. */
char *api_http_format(const struct api_response *resp, bool closing, size_t *len);

#endif
