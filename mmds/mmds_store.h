/* mmds_store.h: the microVM metadata service's data store (Firecracker's
 * MMDS), the part the API and the guest share.
 *
 * One JSON document per microVM, replaced by PUT /mmds and merged by PATCH
 * /mmds (RFC 7396), its serialised size capped (--mmds-size-limit, 51200
 * bytes by default, as Firecracker). The guest reads it over HTTP
 * (mmds_http.h): a path is a JSON pointer (RFC 6901), answered as JSON or in
 * the IMDS text format (an object's keys one per line, "/" after those that
 * are objects; a string as itself). Version V2 adds session tokens: PUT
 * /latest/api/token with a lifetime of 1 to 21600 s, then every GET carries
 * the token. Tokens are 32 random bytes (hex), kept in a bounded table with
 * their expiry (allocated by the first token: an idle VM's monitor keeps no
 * 20 KiB table it never used). Main loop only; no locking.
 */
#ifndef EMBER_MMDS_STORE_H
#define EMBER_MMDS_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MMDS_SIZE_LIMIT_DEFAULT 51200u
#define MMDS_TOKEN_TTL_MAX      21600u
#define MMDS_TOKEN_LEN          64u /* hex characters */
#define MMDS_TOKENS_MAX         256u

enum mmds_version { MMDS_V1, MMDS_V2 };

struct mmds_token {
    char value[MMDS_TOKEN_LEN + 1];
    uint64_t expires_ns;
};

struct mmds_store {
    json_t *data; /* NULL until the first PUT */
    size_t limit; /* bytes of the compact serialisation */
    enum mmds_version version;
    struct mmds_token *tokens; /* MMDS_TOKENS_MAX of them, NULL until the first token */
};

void mmds_store_init(struct mmds_store *s, size_t limit);
void mmds_store_release(struct mmds_store *s);
/* PUT /mmds: replaces the document. 0, or -1 with err ("The MMDS patch
 * request doesn't fit." past the limit). The store takes its own copy. */
int mmds_store_put(struct mmds_store *s, const json_t *data, char *err, size_t errlen);
/* PATCH /mmds: RFC 7396 merge patch. 0, or -1 with err. */
int mmds_store_patch(struct mmds_store *s, const json_t *patch, char *err, size_t errlen);
/* GET /mmds: a new reference ({} before the first PUT). */
json_t *mmds_store_get(const struct mmds_store *s);

/* A guest's GET of path (its URI path): the HTTP status and a malloc'd
 * body (the value, or Firecracker's error text). */
int mmds_store_lookup(const struct mmds_store *s, const char *path, bool json, char **body);
/* A new V2 token valid for ttl seconds from now_ns into out. 0, or -1 if
 * no random bytes could be had or no memory for the table. */
int mmds_store_token_new(struct mmds_store *s, uint32_t ttl, uint64_t now_ns,
                         char out[MMDS_TOKEN_LEN + 1]);
bool mmds_store_token_valid(const struct mmds_store *s, const char *token, uint64_t now_ns);

#endif
