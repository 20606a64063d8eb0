/* api_request_log.c: Firecracker's log lines for API requests (see
 * api_request_log.h). */
#include "api-socket/api_request_log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "api-socket/api_log.h"

/* The longest body text a log line shows; api_log_write cuts lines at 4 KiB. */
#define BODY_SHOWN_MAX 3072

static const char *method_debug_name(const struct api_request *req)
{
    switch (req->method) {
    case API_GET:
        return "Get";
    case API_PUT:
        return "Put";
    case API_PATCH:
        return "Patch";
    case API_METHOD_OTHER:
        break;
    }
    if (req->method_name && strcmp(req->method_name, "DELETE") == 0)
        return "Delete";
    if (req->method_name && strcmp(req->method_name, "POST") == 0)
        return "Post";
    if (req->method_name && strcmp(req->method_name, "HEAD") == 0)
        return "Head";
    return req->method_name ? req->method_name : "?";
}

/* Length of the UTF-8 sequence at s (of at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t k;
    unsigned c = s[0];

    if (c < 0x80)
        return 1;
    k = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!k || k > n || (k == 2 && c < 0xc2) || (k == 4 && c > 0xf4))
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((k == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))) ||
        (k == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))))
        return 0;
    return k;
}

static bool utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len((const unsigned char *)s + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

struct out {
    char *buf;
    size_t len, used;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->used + 1 >= o->len)
        return;
    if (n > o->len - 1 - o->used)
        n = o->len - 1 - o->used;
    memcpy(o->buf + o->used, s, n);
    o->used += n;
    o->buf[o->used] = '\0';
}

/* s (valid UTF-8) as a Rust Debug string literal. */
static void put_debug_str(struct out *o, const char *s, size_t n)
{
    char esc[16];

    put(o, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = utf8_len((const unsigned char *)s + i, n - i);
        if (k == 0)
            k = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(o, esc, 2);
        } else if (c == '\n') {
            put(o, "\\n", 2);
        } else if (c == '\r') {
            put(o, "\\r", 2);
        } else if (c == '\t') {
            put(o, "\\t", 2);
        } else if (c == '\0') {
            put(o, "\\0", 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u{%x}", c);
            put(o, esc, strlen(esc));
        } else {
            put(o, s + i, k);
        }
        i += k;
    }
    put(o, "\"", 1);
}

void api_describe_request(const struct api_request *req, char *buf, size_t len)
{
    struct out o = {.buf = buf, .len = len};
    const char *m = method_debug_name(req);
    const char *path = req->path ? req->path : "";

    if (len == 0)
        return;
    buf[0] = '\0';
    put(&o, m, strlen(m));
    put(&o, " request on ", 12);
    if (utf8_valid(path, strlen(path)))
        put_debug_str(&o, path, strlen(path));
    else
        put(&o, "\"?\"", 3);
    /* Firecracker never logs MMDS contents, and shows no body for none. */
    if (req->body_len == 0 || strcmp(path, "/mmds") == 0 || strncmp(path, "/mmds/", 6) == 0)
        return;
    put(&o, " with body ", 11);
    if (!utf8_valid(req->body, req->body_len)) {
        put(&o, "\"inconvertible to UTF-8\"", 24);
        return;
    }
    size_t n = req->body_len;
    bool cut = n > BODY_SHOWN_MAX;
    if (cut) {
        n = BODY_SHOWN_MAX;
        while (n > 0 && ((unsigned char)req->body[n] & 0xc0) == 0x80)
            n--; /* cut at a character boundary */
    }
    put_debug_str(&o, req->body, n);
    if (cut)
        put(&o, " (cut)", 6);
}

void api_log_request(const struct api_request *req)
{
    char d[BODY_SHOWN_MAX + 512];

    if (!api_log_enabled(API_LOG_INFO))
        return;
    api_describe_request(req, d, sizeof(d));
    API_INFO("The API server received a %s.", d);
}

void api_log_response(const struct api_response *resp)
{
    if (resp->status == 204) {
        API_INFO("The request was executed successfully. Status code: 204 No Content.");
    } else if (resp->status == 200) {
        API_INFO("The request was executed successfully. Status code: 200 OK.");
    } else if (api_log_enabled(API_LOG_ERROR)) {
        json_t *v = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
        const char *msg = json_string_value(json_object_get(v, "fault_message"));
        API_ERROR("Received Error. Status code: %d %s. Message: %s", resp->status,
                  resp->status == 400 ? "Bad Request" : "Error", msg ? msg : "");
        json_decref(v);
    }
}
