/* restore_request.c: a restore server's request, from JSON
 * (restore_request.h; the protocol is in restore_server.h). */
#include "cmd/restore_request.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool id_valid(const char *id)
{
    size_t n = strlen(id);

    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

static int fail(char *why, size_t whylen, json_t *root, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *why, size_t whylen, json_t *root, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    json_decref(root);
    return -1;
}

int restore_request_parse(const char *buf, size_t len, struct restore_request *out, char *why,
                          size_t whylen)
{
    json_error_t jerr;
    const char *key;
    json_t *root, *val;

    memset(out, 0, sizeof(*out));
    if (len > RESTORE_REQUEST_MAX) {
        snprintf(why, whylen, "request: larger than %u bytes", RESTORE_REQUEST_MAX);
        return -1;
    }
    if (len == 0)
        return fail(why, whylen, NULL, "request: empty");
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return fail(why, whylen, NULL, "request: not JSON: %s", jerr.text);
    if (!json_is_object(root))
        return fail(why, whylen, root, "request: not a JSON object");
    json_object_foreach(root, key, val)
    {
        char *dst = strcmp(key, "vsock_uds_path") == 0 ? out->vsock
                    : strcmp(key, "api_sock") == 0     ? out->api_sock
                    : strcmp(key, "console") == 0      ? out->console
                    : strcmp(key, "id") == 0           ? out->id
                                                       : NULL;
        size_t cap = dst == out->vsock      ? sizeof(out->vsock)
                     : dst == out->api_sock ? sizeof(out->api_sock)
                     : dst == out->console  ? sizeof(out->console)
                                            : sizeof(out->id);
        char name[80];

        snprintf(name, sizeof(name), "%.64s", key);
        if (!dst)
            return fail(why, whylen, root, "request: unknown field \"%s\"", name);
        if (!json_is_string(val) || json_string_length(val) == 0 ||
            strlen(json_string_value(val)) != json_string_length(val))
            return fail(why, whylen, root, "request: \"%s\" must be a non-empty string", name);
        if (json_string_length(val) >= cap) {
            if (dst == out->vsock || dst == out->api_sock) {
                snprintf(why, whylen, "request: \"%s\" is longer than %zu bytes", name, cap - 1);
                json_decref(root);
                return -1;
            }
            if (dst == out->id)
                break; /* said below */
            return fail(why, whylen, root, "request: \"%s\" is too long", name);
        }
        memcpy(dst, json_string_value(val), json_string_length(val) + 1);
    }
    json_t *id = json_object_get(root, "id");
    bool bad_id = id && (json_string_length(id) >= sizeof(out->id) || !id_valid(out->id));
    json_decref(root);
    if (bad_id) {
        snprintf(why, whylen, "request: \"id\" must be 1 to 64 of A-Z, a-z, 0-9, - and _");
        return -1;
    }
    return 0;
}
