/* api_json.c: strict decoding of JSON request bodies (see api_json.h).
 *
 * Messages use the words of Firecracker's deserializer (serde_json), which
 * its tooling and tests match on ("missing field `vcpu_count` at line 1
 * column 21.", "unknown field `foo`, expected one of ..."), followed by
 * ember's own detail: the dotted path of the field in parentheses.
 */
#include "api-socket/api_json.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Where the body's top-level object ends (serde reports a missing field
 * there). Only the API thread decodes bodies. */
static struct {
    bool known;
    int line, column;
} body_end;

void api_json_forget_position(void)
{
    body_end.known = false;
}

static void remember_end(const char *body, size_t len)
{
    size_t i = len, line_start = 0;
    int line = 1;

    body_end.known = false;
    while (i > 0 && body[i - 1] != '}')
        i--;
    if (i == 0)
        return;
    for (size_t k = 0; k + 1 < i; k++)
        if (body[k] == '\n') {
            line++;
            line_start = k + 1;
        }
    body_end.known = true;
    body_end.line = line;
    body_end.column = (int)(i - line_start);
}

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

/* serde's description of what it found ("string \"1\"", "integer `5`"). */
static const char *unexpected(const json_t *v, char *buf, size_t len)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "map";
    case JSON_ARRAY:
        return "sequence";
    case JSON_STRING:
        snprintf(buf, len, "string \"%.40s\"", json_string_value(v));
        return buf;
    case JSON_INTEGER:
        snprintf(buf, len, "integer `%lld`", (long long)json_integer_value(v));
        return buf;
    case JSON_REAL:
        snprintf(buf, len, "floating point `%g`", json_real_value(v));
        return buf;
    case JSON_TRUE:
        return "boolean `true`";
    case JSON_FALSE:
        return "boolean `false`";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

json_t *api_json_parse_object(const char *body, size_t len, struct api_err *e)
{
    json_error_t jerr;
    json_t *v;

    char what[64];

    body_end.known = false;
    if (len == 0) {
        api_errf(e, API_JSON_DESER "EOF while parsing a value at line 1 column 0.");
        return NULL;
    }
    v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        /* jansson's "too big integer" is what serde calls an invalid type
         * (a number no integer field can hold). */
        api_errf(e, API_JSON_DESER "%s%s at line %d column %d.",
                 strstr(jerr.text, "too big integer") ? "invalid type: " : "", jerr.text, jerr.line,
                 jerr.column);
        return NULL;
    }
    if (!json_is_object(v)) {
        api_errf(e, API_JSON_DESER "invalid type: %s, expected a JSON object.",
                 unexpected(v, what, sizeof(what)));
        json_decref(v);
        return NULL;
    }
    remember_end(body, len);
    return v;
}

int api_json_only_fields(const json_t *obj, const char *at, const char *const *fields,
                         struct api_err *e)
{
    const char *key;
    json_t *val;

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
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s`%s`", i ? ", " : "",
                                         fields[i]);
            (void)val;
            if (at && at[0])
                return api_errf(
                    e, API_JSON_DESER "unknown field `%.64s`, expected one of %s (in \"%s\").", key,
                    list, at);
            return api_errf(e, API_JSON_DESER "unknown field `%.64s`, expected one of %s.", key,
                            list);
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
    if (!required)
        return 0;
    if ((!at || !at[0]) && body_end.known)
        return api_errf(e, API_JSON_DESER "missing field `%s` at line %d column %d.", key,
                        body_end.line, body_end.column);
    if (at && at[0])
        return api_errf(e, API_JSON_DESER "missing field `%s` (in \"%s\").", key,
                        api_json_field_name(name, sizeof(name), "", at));
    return api_errf(e, API_JSON_DESER "missing field `%s`.", key);
}

static int wrong_type(const char *at, const char *key, const char *want, const json_t *v,
                      struct api_err *e)
{
    char name[160], what[64];
    return api_errf(e, API_JSON_DESER "invalid type: %s, expected %s (field \"%s\").",
                    unexpected(v, what, sizeof(what)), want,
                    api_json_field_name(name, sizeof(name), at, key));
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
        return api_errf(e,
                        API_JSON_DESER "invalid value: integer `%lld`, expected an integer from "
                                       "%" PRIu64 " to %" PRIu64 " (field \"%s\").",
                        (long long)i, min, max, api_json_field_name(name, sizeof(name), at, key));
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
            (size_t)snprintf(list + used, sizeof(list) - used, "%s`%s`", i ? ", " : "", values[i]);
    return api_errf(e, API_JSON_DESER "unknown variant `%.40s`, expected one of %s (field \"%s\").",
                    s, list, api_json_field_name(name, sizeof(name), at, key));
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
