/* fuzz_restore_request.c: the requests of `ember restore-server`
 * (cmd/restore_request.c), which anyone who can reach the server's socket
 * sends. The input is one request as the server reads it (at most
 * RESTORE_REQUEST_MAX bytes; longer inputs are cut there, as the server
 * refuses them before parsing).
 *
 * Invariants: no memory error (ASan); accepted: every string NUL-terminated
 * within its field, the vsock path short enough for a sockaddr_un, the id
 * empty or 1-64 of A-Z a-z 0-9 - _; refused: a reason that starts with
 * "request: ". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/restore_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct restore_request rq;
    char why[300] = "";

    if (size > RESTORE_REQUEST_MAX)
        size = RESTORE_REQUEST_MAX;
    if (restore_request_parse((const char *)data, size, &rq, why, sizeof(why)) != 0) {
        if (strncmp(why, "request: ", 9) != 0)
            abort();
        return 0;
    }
    if (!memchr(rq.vsock, '\0', sizeof(rq.vsock)) || strlen(rq.vsock) > 107 ||
        !memchr(rq.console, '\0', sizeof(rq.console)) || !memchr(rq.id, '\0', sizeof(rq.id)))
        abort();
    for (const char *p = rq.id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            abort();
    return 0;
}
