/* api_http.c: HTTP/1.1 framing over http-parser (see api_http.h). */
#include "api-socket/api_http.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api-socket/api_log.h"
#include "api-socket/api_metrics.h"

static int on_message_begin(http_parser *p);
static int on_url(http_parser *p, const char *at, size_t len);
static int on_header_field(http_parser *p, const char *at, size_t len);
static int on_header_value(http_parser *p, const char *at, size_t len);
static int on_headers_complete(http_parser *p);
static int on_body(http_parser *p, const char *at, size_t len);
static int on_message_complete(http_parser *p);

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void api_http_global_init(void)
{
    http_parser_set_max_header_size(API_HTTP_HEADERS_MAX);
}

void api_http_conn_init(struct api_http_conn *c, size_t max_body, api_http_request_fn fn, void *ctx)
{
    memset(c, 0, sizeof(*c));
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->max_body = max_body;
    c->on_request = fn;
    c->ctx = ctx;
}

void api_http_conn_release(struct api_http_conn *c)
{
    free(c->body);
    free(c->out);
    c->body = c->out = NULL;
}

bool api_http_in_request(const struct api_http_conn *c)
{
    return c->started;
}

void api_http_conn_set_output(struct api_http_conn *c, char *data, size_t len)
{
    free(c->out);
    c->out = data;
    c->out_len = c->out_cap = len;
}

char *api_http_take_output(struct api_http_conn *c, size_t *len)
{
    char *o = c->out;
    *len = c->out_len;
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    return o;
}

static int append(struct api_http_conn *c, const char *data, size_t len)
{
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 512;
        char *n;
        while (cap < c->out_len + len)
            cap *= 2;
        n = realloc(c->out, cap);
        if (!n)
            return -1;
        c->out = n;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

char *api_http_format(const struct api_response *resp, bool closing, size_t *len)
{
    char head[256];
    int n;
    char *buf;

    /* Headers as micro-http writes them: Connection (keep-alive unless the
     * connection ends), Deprecation when the request used a deprecated
     * field, then the body's type and length. */
    const char *conn = closing ? "Connection: close\r\n" : "Connection: keep-alive\r\n";
    const char *depr = resp->deprecation ? "Deprecation: true\r\n" : "";
    if (resp->status == 204 || !resp->body)
        n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nServer: ember\r\n%s%s\r\n",
                     resp->status, reason(resp->status), conn, depr);
    else
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nServer: ember\r\n%s%sContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     resp->status, reason(resp->status), conn, depr, resp->body_len);
    buf = malloc((size_t)n + resp->body_len);
    if (!buf)
        return NULL;
    memcpy(buf, head, (size_t)n);
    if (resp->status != 204 && resp->body)
        memcpy(buf + n, resp->body, resp->body_len);
    *len = (size_t)n + (resp->status != 204 && resp->body ? resp->body_len : 0);
    return buf;
}

static void respond(struct api_http_conn *c, struct api_response *resp)
{
    size_t len;
    char *buf = api_http_format(resp, c->closing, &len);

    if (!buf || append(c, buf, len) < 0) {
        api_metrics_add(API_M_SYNC_RESPONSE_FAILS, 1);
        c->closing = true;
    }
    free(buf);
}

static void respond_fault(struct api_http_conn *c, const char *msg)
{
    struct api_response resp = {0};

    api_metrics_add(API_M_HTTP_ERRORS, 1);
    c->closing = true;
    /* A request the router never sees is logged as a failed one too. */
    API_ERROR("Received Error. Status code: 400 Bad Request. Message: %s", msg);
    api_response_fault(&resp, msg);
    respond(c, &resp);
    free(resp.body);
}

static int on_message_begin(http_parser *p)
{
    struct api_http_conn *c = p->data;

    c->url_len = 0;
    c->body_len = 0;
    c->header_field_len = 0;
    c->in_value = false;
    c->expect_continue = false;
    c->started = true;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct api_http_conn *c = p->data;

    if (len > API_HTTP_URL_MAX - c->url_len) {
        snprintf(c->fault, sizeof(c->fault), "The request URL is longer than %d bytes.",
                 API_HTTP_URL_MAX);
        return -1;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct api_http_conn *c = p->data;
    size_t room;

    if (c->in_value) {
        c->header_field_len = 0;
        c->in_value = false;
    }
    room = sizeof(c->header_field) - 1 - c->header_field_len;
    if (len > room) {
        /* Longer than any header we look at: remember only that. */
        c->header_field_len = sizeof(c->header_field) - 1;
        return 0;
    }
    memcpy(c->header_field + c->header_field_len, at, len);
    c->header_field_len += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct api_http_conn *c = p->data;
    static const char want[] = "100-continue";

    if (!c->in_value && c->header_field_len == 6 &&
        strncasecmp(c->header_field, "expect", 6) == 0 && len >= sizeof(want) - 1 &&
        strncasecmp(at, want, sizeof(want) - 1) == 0)
        c->expect_continue = true;
    c->in_value = true;
    return 0;
}

static int too_large(struct api_http_conn *c, unsigned long long size)
{
    snprintf(c->fault, sizeof(c->fault),
             "Request payload with size %llu is larger than the limit of %zu allowed by server.",
             size, c->max_body);
    return -1;
}

static int on_headers_complete(http_parser *p)
{
    struct api_http_conn *c = p->data;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    bool has_length = p->content_length != ULLONG_MAX && p->content_length > 0;

    /* micro-http serves HTTP/1.0 and HTTP/1.1 only. */
    if (p->http_major != 1 || p->http_minor > 1) {
        snprintf(c->fault, sizeof(c->fault),
                 "Invalid HTTP Version: Unsupported HTTP version. (HTTP/%u.%u)", p->http_major,
                 p->http_minor);
        return -1;
    }
    if (p->upgrade || p->method == HTTP_CONNECT) {
        snprintf(c->fault, sizeof(c->fault),
                 "Malformed HTTP request: protocol upgrades are not supported.");
        return -1;
    }

    if (has_length && p->content_length > c->max_body)
        return too_large(c, (unsigned long long)p->content_length);
    /* curl waits up to a second for this before it sends a body over 1 KiB. */
    if (c->expect_continue && (has_length || (p->flags & F_CHUNKED)))
        append(c, cont, sizeof(cont) - 1);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct api_http_conn *c = p->data;

    if (len > c->max_body - c->body_len)
        return too_large(c, (unsigned long long)(c->body_len + len));
    if (c->body_len + len > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 1024;
        char *n;
        while (cap < c->body_len + len)
            cap *= 2;
        if (cap > c->max_body)
            cap = c->max_body;
        n = realloc(c->body, cap);
        if (!n) {
            snprintf(c->fault, sizeof(c->fault), "out of memory");
            return -1;
        }
        c->body = n;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct api_http_conn *c = p->data;
    struct api_response resp = {0};
    struct api_request req = {0};
    struct http_parser_url u;
    static char empty[1];
    char path[API_HTTP_URL_MAX + 1];

    c->started = false;
    http_parser_url_init(&u);
    if (http_parser_parse_url(c->url, c->url_len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH))) {
        snprintf(c->fault, sizeof(c->fault), "The request URL is not valid.");
        return -1;
    }
    memcpy(path, c->url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    path[u.field_data[UF_PATH].len] = '\0';

    switch (p->method) {
    case HTTP_GET:
        req.method = API_GET;
        break;
    case HTTP_PUT:
        req.method = API_PUT;
        break;
    case HTTP_PATCH:
        req.method = API_PATCH;
        break;
    default:
        req.method = API_METHOD_OTHER;
        break;
    }
    req.method_name = http_method_str((enum http_method)p->method);
    req.path = path;
    req.body = c->body ? c->body : empty;
    req.body_len = c->body_len;

    if (!http_should_keep_alive(p))
        c->closing = true;
    c->on_request(c->ctx, &req, &resp);
    respond(c, &resp);
    free(resp.body);
    /* Give back a large body buffer: an idle connection keeps little. */
    if (c->body_cap > 4096) {
        free(c->body);
        c->body = NULL;
        c->body_cap = 0;
    }
    /* Stop at the last request of a closing connection. */
    return c->closing ? -1 : 0;
}

int api_http_feed(struct api_http_conn *c, const char *data, size_t len)
{
    size_t n;
    enum http_errno err;

    if (c->closing)
        return -1;
    n = http_parser_execute(&c->parser, &settings, data, len);
    err = HTTP_PARSER_ERRNO(&c->parser);
    if (c->closing && (err == HPE_OK || err == HPE_CB_message_complete))
        return -1;
    if (c->fault[0]) {
        respond_fault(c, c->fault);
        return -1;
    }
    if (err != HPE_OK) {
        char msg[200];
        snprintf(msg, sizeof(msg), "Malformed HTTP request: %s.", http_errno_description(err));
        respond_fault(c, msg);
        return -1;
    }
    if (c->parser.upgrade || n != len) {
        respond_fault(c, "Malformed HTTP request: protocol upgrades are not supported.");
        return -1;
    }
    return 0;
}
