/* mmds_http.h: the guest's HTTP requests to the metadata service, parsed
 * with http-parser and answered from the store (mmds_store.h) the way
 * Firecracker's MMDS answers them: GET of a JSON pointer (JSON with
 * "Accept: application/json", else the IMDS text format), PUT
 * /latest/api/token for a V2 session token, 401 for a V2 GET without a
 * valid token, 405 for other methods. One struct per TCP connection; the
 * bytes of one request are bounded (MMDS_HTTP_REQUEST_MAX).
 */
#ifndef EMBER_MMDS_HTTP_H
#define EMBER_MMDS_HTTP_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmds/mmds_store.h"

#define MMDS_HTTP_REQUEST_MAX 16384u

struct mmds_http {
    http_parser parser;
    size_t seen; /* bytes of the request so far */
    char url[2048];
    size_t url_len;
    char field[64];
    size_t field_len;
    int header; /* which header the value belongs to */
    bool in_value;
    char accept[128];
    char token[MMDS_TOKEN_LEN + 2];
    char ttl[24];
    bool has_token, has_ttl, forwarded, too_long, done;
    /* Set by the last answer: a V2 GET without a token, with a bad one
     * (the "mmds" metrics' rx_no_token and rx_invalid_token). */
    bool no_token, bad_token;
};

void mmds_http_init(struct mmds_http *h);
/* Feeds n bytes of the connection. Returns how many were used; when a whole
 * request has been read, *resp is a malloc'd response of *resp_len bytes
 * and *close says whether the connection ends after it (the request asked
 * for that, or it was malformed: then the answer is a 400). */
size_t mmds_http_feed(struct mmds_http *h, struct mmds_store *s, const uint8_t *data, size_t n,
                      uint64_t now_ns, char **resp, size_t *resp_len, bool *close);

#endif
