/* mmds_store.c: the MMDS document, its lookups and V2 tokens (see
 * mmds_store.h). */
#include "mmds/mmds_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define ERR_LIMIT     "The MMDS patch request doesn't fit."
#define ERR_NOT_INIT  "The MMDS data store is not initialized."
#define ERR_TYPE      "Cannot retrieve value. The value has an unsupported type."
#define ERR_NOT_FOUND "Resource not found: %s."

void mmds_store_init(struct mmds_store *s, size_t limit)
{
    memset(s, 0, sizeof(*s));
    s->limit = limit;
}

void mmds_store_release(struct mmds_store *s)
{
    json_decref(s->data);
    s->data = NULL;
    free(s->tokens);
    s->tokens = NULL;
}

static size_t serialised(const json_t *j)
{
    char *t = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t n = t ? strlen(t) : SIZE_MAX;

    free(t);
    return n;
}

int mmds_store_put(struct mmds_store *s, const json_t *data, char *err, size_t errlen)
{
    json_t *copy;

    if (serialised(data) > s->limit) {
        snprintf(err, errlen, ERR_LIMIT);
        return -1;
    }
    copy = json_deep_copy(data);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_decref(s->data);
    s->data = copy;
    return 0;
}

/* RFC 7396 §2: MergePatch(target, patch). Returns the new target (a new
 * reference); target is consumed. */
static json_t *merge(json_t *target, const json_t *patch)
{
    const char *key;
    json_t *value;

    if (!json_is_object(patch)) {
        json_decref(target);
        return json_deep_copy(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        target = json_object();
        if (!target)
            return NULL;
    }
    json_object_foreach((json_t *)patch, key, value)
    {
        if (json_is_null(value)) {
            json_object_del(target, key);
            continue;
        }
        json_t *old = json_object_get(target, key);
        json_t *merged = merge(old ? json_incref(old) : json_null(), value);
        if (!merged || json_object_set_new(target, key, merged) != 0) {
            json_decref(target);
            return NULL;
        }
    }
    return target;
}

int mmds_store_patch(struct mmds_store *s, const json_t *patch, char *err, size_t errlen)
{
    json_t *next;

    if (!s->data) {
        snprintf(err, errlen, ERR_NOT_INIT);
        return -1;
    }
    next = merge(json_deep_copy(s->data), patch);
    if (!next) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (serialised(next) > s->limit) {
        json_decref(next);
        snprintf(err, errlen, ERR_LIMIT);
        return -1;
    }
    json_decref(s->data);
    s->data = next;
    return 0;
}

json_t *mmds_store_get(const struct mmds_store *s)
{
    return s->data ? json_incref(s->data) : json_object();
}

/* RFC 6901 §4: one reference token, ~1 and ~0 unescaped, into out. */
static bool unescape(const char *p, size_t n, char *out, size_t cap)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '~') {
            if (i + 1 >= n || (p[i + 1] != '0' && p[i + 1] != '1'))
                return false;
            c = p[++i] == '0' ? '~' : '/';
        }
        if (k + 1 >= cap)
            return false;
        out[k++] = c;
    }
    out[k] = '\0';
    return true;
}

/* The value at pointer ptr (empty: the whole document), or NULL. */
static const json_t *pointer(const json_t *doc, const char *ptr)
{
    char tok[1024];

    while (doc && *ptr) {
        if (*ptr != '/')
            return NULL;
        ptr++;
        const char *end = strchr(ptr, '/');
        size_t n = end ? (size_t)(end - ptr) : strlen(ptr);
        if (!unescape(ptr, n, tok, sizeof(tok)))
            return NULL;
        if (json_is_object(doc)) {
            doc = json_object_get(doc, tok);
        } else if (json_is_array(doc)) {
            char *e;
            if (!tok[0] || (tok[0] == '0' && tok[1]) || tok[0] < '0' || tok[0] > '9')
                return NULL;
            unsigned long i = strtoul(tok, &e, 10);
            if (*e)
                return NULL;
            doc = json_array_get(doc, i);
        } else {
            return NULL;
        }
        ptr += n;
    }
    return doc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The IMDS text of v (objects: sorted keys, "/" after objects; strings as
 * they are), or NULL for other types. */
static char *imds_text(const json_t *v)
{
    if (json_is_string(v))
        return strndup(json_string_value(v), json_string_length(v));
    if (!json_is_object(v))
        return NULL;
    size_t n = json_object_size(v), i = 0, len = 1;
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    const char *key;
    json_t *val;
    if (!keys)
        return NULL;
    json_object_foreach((json_t *)v, key, val)
    {
        keys[i++] = key;
        len += strlen(key) + 2;
    }
    qsort(keys, n, sizeof(*keys), cmp_str);
    char *out = malloc(len), *p = out;
    if (out) {
        for (i = 0; i < n; i++) {
            if (i)
                *p++ = '\n';
            p = stpcpy(p, keys[i]);
            if (json_is_object(json_object_get(v, keys[i])))
                *p++ = '/';
        }
        *p = '\0';
    }
    free(keys);
    return out;
}

int mmds_store_lookup(const struct mmds_store *s, const char *path, bool json, char **body)
{
    char *ptr = malloc(strlen(path) + 1), *w = ptr;
    const json_t *v;
    json_t *null_doc = NULL;

    *body = NULL;
    if (!ptr)
        return 500;
    /* Firecracker's sanitising: runs of "/" are one; one trailing "/" goes. */
    for (const char *r = path; *r; r++)
        if (!(*r == '/' && w > ptr && w[-1] == '/'))
            *w++ = *r;
    *w = '\0';
    if (w > ptr && w[-1] == '/')
        w[-1] = '\0';
    if (!s->data)
        null_doc = json_null();
    v = pointer(s->data ? s->data : null_doc, ptr);
    free(ptr);
    if (!v) {
        if (asprintf(body, ERR_NOT_FOUND, path) < 0)
            *body = NULL;
        return 404;
    }
    *body = json ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : imds_text(v);
    json_decref(null_doc);
    if (!*body) {
        *body = strdup(ERR_TYPE);
        return 501;
    }
    return 200;
}

int mmds_store_token_new(struct mmds_store *s, uint32_t ttl, uint64_t now_ns,
                         char out[MMDS_TOKEN_LEN + 1])
{
    uint8_t raw[MMDS_TOKEN_LEN / 2];

    if (!s->tokens)
        s->tokens = calloc(MMDS_TOKENS_MAX, sizeof(*s->tokens));
    if (!s->tokens)
        return -1;
    struct mmds_token *slot = &s->tokens[0];
    if (getrandom(raw, sizeof(raw), GRND_NONBLOCK) != (ssize_t)sizeof(raw))
        return -1;
    for (size_t i = 0; i < sizeof(raw); i++)
        sprintf(out + 2 * i, "%02x", raw[i]);
    /* An expired slot, else the one that expires first. */
    for (unsigned i = 0; i < MMDS_TOKENS_MAX; i++) {
        struct mmds_token *t = &s->tokens[i];
        if (t->expires_ns <= now_ns) {
            slot = t;
            break;
        }
        if (t->expires_ns < slot->expires_ns)
            slot = t;
    }
    memcpy(slot->value, out, MMDS_TOKEN_LEN + 1);
    slot->expires_ns = now_ns + (uint64_t)ttl * 1000000000ull;
    return 0;
}

bool mmds_store_token_valid(const struct mmds_store *s, const char *token, uint64_t now_ns)
{
    bool ok = false;

    if (!s->tokens || strlen(token) != MMDS_TOKEN_LEN)
        return false;
    for (unsigned i = 0; i < MMDS_TOKENS_MAX; i++) {
        const struct mmds_token *t = &s->tokens[i];
        unsigned diff = 0;
        for (unsigned k = 0; k < MMDS_TOKEN_LEN; k++) /* no early exit on a near miss */
            diff |= (unsigned)(t->value[k] ^ token[k]);
        if (!diff && t->expires_ns > now_ns)
            ok = true;
    }
    return ok;
}
