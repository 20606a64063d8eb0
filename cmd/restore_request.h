/* restore_request.h: the requests of `ember restore-server`
 * (restore_server.h), parsed and checked. They come from whoever can reach
 * the server's socket: untrusted, and fuzzed (tests/fuzz). */
#ifndef EMBER_CMD_RESTORE_REQUEST_H
#define EMBER_CMD_RESTORE_REQUEST_H

#include <stddef.h>

#define RESTORE_REQUEST_MAX 4096u /* bytes of one request */

/* A checked request: every string NUL-terminated, "" when not given. */
struct restore_request {
    char vsock[108];    /* a Unix socket path (sun_path); "": the snapshot's own */
    char api_sock[108]; /* "": none (the child is an `ember run --restore` process) */
    char console[RESTORE_REQUEST_MAX + 1];
    char id[65]; /* 1-64 of A-Z a-z 0-9 - _ */
};

/* Parses the JSON object buf[0..len) into out. Returns 0, or -1 with a
 * reason starting with "request: " in why. */
int restore_request_parse(const char *buf, size_t len, struct restore_request *out, char *why,
                          size_t whylen);

#endif
