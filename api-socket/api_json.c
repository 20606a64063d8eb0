/* api_json.c: strict decoding of JSON request bodies (see api_json.h). */
#include "api-socket/api_json.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int api_errf(struct api_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return -1;
}

const char *api_json_field_name(char *buf, size_t len, const char *at, const char *key)
{
    if (at && at[0])
        snprintf(buf, len, "%s.%s", at, key);
    else
        snprintf(buf, len, "%s", key);
    return buf;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

json_t *api_json_parse_object(const char *body, size_t len, struct api_err *e)
{
    json_error_t jerr;
    json_t *v;

    if (len == 0) {
        api_errf(e, "the request body is empty");
        return NULL;
    }
    v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        api_errf(e, "invalid JSON body: %s (line %d, column %d)", jerr.text, jerr.line,
                 jerr.column);
        return NULL;
    }
    if (!json_is_object(v)) {
        api_errf(e, "the request body must be a JSON object, not %s", type_name(v));
        json_decref(v);
        return NULL;
    }
    return v;
}

int api_json_only_fields(const json_t *obj, const char *at, const char *const *fields,
                         struct api_err *e)
{
    const char *key;
    json_t *val;
    char name[160];

    json_object_foreach((json_t *)obj, key, val)
    {
        size_t i;
        for (i = 0; fields[i]; i++)
            if (strcmp(fields[i], key) == 0)
                break;
        if (!fields[i]) {
            /* List what is allowed: the client learns the fix from one reply. */
            char list[320];
            size_t used = 0;
            list[0] = '\0';
            for (i = 0; fields[i] && used < sizeof(list); i++)
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                                         fields[i]);
            (void)val;
            return api_errf(e, "unknown field \"%.64s\" (expected one of: %s)",
                            api_json_field_name(name, sizeof(name), at, key), list);
        }
    }
    return 0;
}

/* Looks a field up: 1 found (non-null), 0 absent or null and optional, -1 missing. */
static int lookup(const json_t *obj, const char *at, const char *key, bool required, json_t **v,
                  struct api_err *e)
{
    char name[160];

    *v = json_object_get(obj, key);
    if (*v && !json_is_null(*v))
        return 1;
    if (required)
        return api_errf(e, "missing field \"%s\"",
                        api_json_field_name(name, sizeof(name), at, key));
    return 0;
}

static int wrong_type(const char *at, const char *key, const char *want, const json_t *v,
                      struct api_err *e)
{
    char name[160];
    return api_errf(e, "field \"%s\" must be %s, not %s",
                    api_json_field_name(name, sizeof(name), at, key), want, type_name(v));
}

int api_json_string(const json_t *obj, const char *at, const char *key, bool required,
                    const char **out, struct api_err *e)
{
    json_t *v;
    int r = lookup(obj, at, key, required, &v, e);
    if (r <= 0)
        return r;
    if (!json_is_string(v))
        return wrong_type(at, key, "a string", v, e);
    *out = json_string_value(v);
    return 1;
}

int api_json_bool(const json_t *obj, const char *at, const char *key, bool required, bool *out,
                  struct api_err *e)
{
    json_t *v;
    int r = lookup(obj, at, key, required, &v, e);
    if (r <= 0)
        return r;
    if (!json_is_boolean(v))
        return wrong_type(at, key, "a boolean", v, e);
    *out = json_is_true(v);
    return 1;
}

int api_json_uint(const json_t *obj, const char *at, const char *key, bool required, uint64_t min,
                  uint64_t max, uint64_t *out, struct api_err *e)
{
    char name[160];
    json_t *v;
    json_int_t i;
    int r = lookup(obj, at, key, required, &v, e);

    if (r <= 0)
        return r;
    if (!json_is_integer(v))
        return wrong_type(at, key, "an integer", v, e);
    i = json_integer_value(v);
    if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
        return api_errf(e, "field \"%s\" must be between %" PRIu64 " and %" PRIu64 ", not %lld",
                        api_json_field_name(name, sizeof(name), at, key), min, max, (long long)i);
    *out = (uint64_t)i;
    return 1;
}

int api_json_enum(const json_t *obj, const char *at, const char *key, bool required,
                  const char *const *values, int *out, struct api_err *e)
{
    char name[160], list[200];
    const char *s = NULL;
    size_t used = 0;
    int r = api_json_string(obj, at, key, required, &s, e);

    if (r <= 0)
        return r;
    for (int i = 0; values[i]; i++)
        if (strcmp(values[i], s) == 0) {
            *out = i;
            return 1;
        }
    list[0] = '\0';
    for (int i = 0; values[i] && used < sizeof(list); i++)
        used +=
            (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", values[i]);
    return api_errf(e, "field \"%s\" must be one of: %s",
                    api_json_field_name(name, sizeof(name), at, key), list);
}

int api_json_object(const json_t *obj, const char *at, const char *key, bool required, json_t **out,
                    struct api_err *e)
{
    json_t *v;
    int r = lookup(obj, at, key, required, &v, e);
    if (r <= 0)
        return r;
    if (!json_is_object(v))
        return wrong_type(at, key, "an object", v, e);
    *out = v;
    return 1;
}
