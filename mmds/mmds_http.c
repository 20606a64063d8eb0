/* mmds_http.c: HTTP/1.1 between the guest and the metadata service (see
 * mmds_http.h). */
#include "mmds/mmds_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { H_OTHER, H_ACCEPT, H_TOKEN, H_TTL, H_FORWARDED };

#define TOKEN_PATH "/latest/api/token"

static struct mmds_http *of(http_parser *p)
{
    return p->data;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct mmds_http *h = of(p);

    if (h->url_len + n >= sizeof(h->url)) {
        h->too_long = true;
        return 0;
    }
    memcpy(h->url + h->url_len, at, n);
    h->url_len += n;
    h->url[h->url_len] = '\0';
    return 0;
}

static int header_kind(const char *name)
{
    if (strcasecmp(name, "Accept") == 0)
        return H_ACCEPT;
    if (strcasecmp(name, "X-metadata-token") == 0 ||
        strcasecmp(name, "X-aws-ec2-metadata-token") == 0)
        return H_TOKEN;
    if (strcasecmp(name, "X-metadata-token-ttl-seconds") == 0 ||
        strcasecmp(name, "X-aws-ec2-metadata-token-ttl-seconds") == 0)
        return H_TTL;
    if (strcasecmp(name, "X-Forwarded-For") == 0)
        return H_FORWARDED;
    return H_OTHER;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
    struct mmds_http *h = of(p);

    if (h->in_value) {
        h->in_value = false;
        h->field_len = 0;
    }
    if (h->field_len + n >= sizeof(h->field))
        n = sizeof(h->field) - 1 - h->field_len; /* a long name is no name we know */
    memcpy(h->field + h->field_len, at, n);
    h->field_len += n;
    h->field[h->field_len] = '\0';
    return 0;
}

static void append(char *dst, size_t cap, const char *at, size_t n, bool *overflow)
{
    size_t have = strlen(dst);

    if (have + n >= cap) {
        *overflow = true;
        return;
    }
    memcpy(dst + have, at, n);
    dst[have + n] = '\0';
}

static int on_value(http_parser *p, const char *at, size_t n)
{
    struct mmds_http *h = of(p);
    bool over = false;

    if (!h->in_value) {
        h->in_value = true;
        h->header = header_kind(h->field);
        if (h->header == H_ACCEPT)
            h->accept[0] = '\0';
        else if (h->header == H_TOKEN) {
            h->token[0] = '\0';
            h->has_token = true;
        } else if (h->header == H_TTL) {
            h->ttl[0] = '\0';
            h->has_ttl = true;
        } else if (h->header == H_FORWARDED)
            h->forwarded = true;
    }
    switch (h->header) {
    case H_ACCEPT:
        append(h->accept, sizeof(h->accept), at, n, &over);
        break;
    case H_TOKEN:
        append(h->token, sizeof(h->token), at, n, &over);
        break;
    case H_TTL:
        append(h->ttl, sizeof(h->ttl), at, n, &over);
        break;
    default:
        break;
    }
    (void)over; /* an over-long token or TTL simply fails its check */
    return 0;
}

static int on_complete(http_parser *p)
{
    of(p)->done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_message_complete = on_complete,
};

void mmds_http_init(struct mmds_http *h)
{
    memset(h, 0, sizeof(*h));
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = h;
}

static void reset_request(struct mmds_http *h)
{
    http_parser saved = h->parser;

    memset(h, 0, sizeof(*h));
    h->parser = saved;
    h->parser.data = h;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 501:
        return "Not Implemented";
    default:
        return "Internal Server Error";
    }
}

static void respond(int status, const char *type, const char *allow, const char *body, bool close,
                    char **resp, size_t *len)
{
    int n = asprintf(resp,
                     "HTTP/1.1 %d %s\r\nServer: ember MMDS\r\nConnection: %s\r\n"
                     "Content-Type: %s\r\n%s%s%sContent-Length: %zu\r\n\r\n%s",
                     status, reason(status), close ? "close" : "keep-alive", type,
                     allow ? "Allow: " : "", allow ? allow : "", allow ? "\r\n" : "", strlen(body),
                     body);
    if (n < 0) {
        *resp = NULL;
        *len = 0;
    } else {
        *len = (size_t)n;
    }
}

/* The path of the request target (origin-form or absolute-form). */
static bool url_path(const struct mmds_http *h, char *out, size_t cap)
{
    struct http_parser_url u;

    http_parser_url_init(&u);
    if (http_parser_parse_url(h->url, h->url_len, 0, &u) != 0)
        return false;
    if (!(u.field_set & (1 << UF_PATH))) {
        out[0] = '\0';
        return true;
    }
    if (u.field_data[UF_PATH].len >= cap)
        return false;
    memcpy(out, h->url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    out[u.field_data[UF_PATH].len] = '\0';
    return true;
}

static bool parse_ttl(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;

    if (!*s || *s < '0' || *s > '9')
        return false;
    v = strtoul(s, &end, 10);
    if (*end || v < 1 || v > MMDS_TOKEN_TTL_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static void answer(struct mmds_http *h, struct mmds_store *s, uint64_t now_ns, bool close,
                   char **resp, size_t *len)
{
    const char *plain = "text/plain";
    char path[2048], *body = NULL;
    int method = h->parser.method;

    if (h->too_long || !url_path(h, path, sizeof(path)) || !path[0]) {
        respond(400, plain, NULL, "Invalid URI.", close, resp, len);
        return;
    }
    if (method == HTTP_PUT) {
        char msg[160];
        uint32_t ttl;
        char token[MMDS_TOKEN_LEN + 1];
        if (h->forwarded) {
            respond(400, plain, NULL,
                    "Invalid header. Reason: Unsupported header name. Key: X-Forwarded-For", close,
                    resp, len);
            return;
        }
        if (strcmp(path, TOKEN_PATH) != 0) {
            snprintf(msg, sizeof(msg), "Resource not found: %.100s.", path);
            respond(404, plain, NULL, msg, close, resp, len);
            return;
        }
        if (!h->has_ttl) {
            respond(400, plain, NULL,
                    "Token time to live value not found. Use `X-metadata-token-ttl-seconds` "
                    "header to specify the token's lifetime.",
                    close, resp, len);
            return;
        }
        if (!parse_ttl(h->ttl, &ttl)) {
            snprintf(msg, sizeof(msg),
                     "Invalid time to live value provided for token: %.20s. Please provide a "
                     "value between 1 and %u.",
                     h->ttl, MMDS_TOKEN_TTL_MAX);
            respond(400, plain, NULL, msg, close, resp, len);
            return;
        }
        if (mmds_store_token_new(s, ttl, now_ns, token) != 0) {
            respond(500, plain, NULL, "No token could be made (no random bytes or no memory).",
                    close, resp, len);
            return;
        }
        respond(200, plain, NULL, token, close, resp, len);
        return;
    }
    if (method != HTTP_GET) {
        respond(405, plain, "GET, PUT", "Not allowed HTTP method.", close, resp, len);
        return;
    }
    if (s->version == MMDS_V2) {
        if (!h->has_token) {
            h->no_token = true;
            respond(401, plain, NULL,
                    "No MMDS token provided. Use `X-metadata-token` header to specify the "
                    "session token.",
                    close, resp, len);
            return;
        }
        if (!mmds_store_token_valid(s, h->token, now_ns)) {
            h->bad_token = true;
            respond(401, plain, NULL, "MMDS token not valid.", close, resp, len);
            return;
        }
    }
    bool json = strstr(h->accept, "application/json") != NULL;
    int status = mmds_store_lookup(s, path, json, &body);
    respond(status, json && status == 200 ? "application/json" : plain, NULL, body ? body : "",
            close, resp, len);
    free(body);
}

size_t mmds_http_feed(struct mmds_http *h, struct mmds_store *s, const uint8_t *data, size_t n,
                      uint64_t now_ns, char **resp, size_t *resp_len, bool *close)
{
    size_t used;

    *resp = NULL;
    *resp_len = 0;
    *close = false;
    h->no_token = h->bad_token = false;
    if (HTTP_PARSER_ERRNO(&h->parser) == HPE_PAUSED)
        http_parser_pause(&h->parser, 0);
    used = http_parser_execute(&h->parser, &settings, (const char *)data, n);
    h->seen += used;
    enum http_errno err = HTTP_PARSER_ERRNO(&h->parser);
    if (err != HPE_OK && err != HPE_PAUSED) {
        *close = true;
        respond(400, "text/plain", NULL, http_errno_description(err), true, resp, resp_len);
        return n;
    }
    if (!h->done) {
        if (h->seen > MMDS_HTTP_REQUEST_MAX) {
            *close = true;
            respond(400, "text/plain", NULL, "Request too large.", true, resp, resp_len);
            return n;
        }
        return used;
    }
    *close = !http_should_keep_alive(&h->parser);
    answer(h, s, now_ns, *close, resp, resp_len);
    bool no_token = h->no_token, bad_token = h->bad_token;
    reset_request(h);
    h->no_token = no_token;
    h->bad_token = bad_token;
    return used;
}
