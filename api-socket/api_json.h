/* api_json.h: strict decoding of JSON request bodies.
 *
 * Every body the API and the config file accept goes through these helpers,
 * so every resource answers the same way to the same mistake: an unknown
 * field, a missing one, a wrong type or a number out of range gives one
 * message that names the field by its dotted path ("rate_limiter.ops.size").
 * A JSON null counts as an absent field (what serde's Option does in
 * Firecracker, so bodies written for it decode the same here). Decoding
 * errors start with Firecracker's words (API_JSON_DESER, then serde's
 * phrasing), so that tooling matching on them finds them.
 */
#ifndef EMBER_API_JSON_H
#define EMBER_API_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define API_ERR_MAX 512

/* Firecracker's prefix for a body its deserializer rejects. */
#define API_JSON_DESER "An error occurred when deserializing the json body of a request: "

/* The reason a request failed: becomes the fault_message of a 400. */
struct api_err {
    char msg[API_ERR_MAX];
};

/* Formats e->msg; returns -1 so that callers can `return api_errf(...)`. */
int api_errf(struct api_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a whole body that must be one JSON object (duplicate keys and NUL
 * characters rejected, nesting bounded by jansson). Returns the object (the
 * caller owns it) or NULL with the reason in e. */
json_t *api_json_parse_object(const char *body, size_t len, struct api_err *e);

/* Bodies not parsed by api_json_parse_object (the config file): no line
 * and column in "missing field" messages. */
void api_json_forget_position(void);

/* Rejects any key of obj not listed in fields (a NULL-terminated list).
 * at is the dotted path of obj ("" for the body itself). */
int api_json_only_fields(const json_t *obj, const char *at, const char *const *fields,
                         struct api_err *e);

/* Getters: return 1 if the field is present and valid (out set), 0 if it is
 * absent and optional (out untouched), -1 with a message naming the field if
 * it is missing but required, of the wrong type or out of range. */
int api_json_string(const json_t *obj, const char *at, const char *key, bool required,
                    const char **out, struct api_err *e);
int api_json_bool(const json_t *obj, const char *at, const char *key, bool required, bool *out,
                  struct api_err *e);
int api_json_uint(const json_t *obj, const char *at, const char *key, bool required, uint64_t min,
                  uint64_t max, uint64_t *out, struct api_err *e);
/* A string that must be one of values (NULL-terminated); out is its index. */
int api_json_enum(const json_t *obj, const char *at, const char *key, bool required,
                  const char *const *values, int *out, struct api_err *e);
/* A nested object; out is borrowed from obj. */
int api_json_object(const json_t *obj, const char *at, const char *key, bool required, json_t **out,
                    struct api_err *e);

/* Writes "at.key" (or "key" when at is empty) into buf. */
const char *api_json_field_name(char *buf, size_t len, const char *at, const char *key);

#endif
