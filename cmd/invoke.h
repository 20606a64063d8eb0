/* invoke.h: the host side of ember's function runtime: connect to a VM's
 * vsock Unix socket (Firecracker's `CONNECT <port>\n` / `OK <hostport>\n`
 * handshake) and exchange requests and responses framed as in
 * <ember/faas.h>. Used by `ember invoke`, the tests and the benches.
 *
 * No global state: one connection is one fd, used by one thread at a time;
 * many connections may be used from many threads at once. A connection
 * carries any number of invocations; pass the same response buffer back in
 * to make a warm invocation allocation-free.
 */
#ifndef EMBER_INVOKE_H
#define EMBER_INVOKE_H

#include <stddef.h>
#include <stdint.h>

#include <ember/faas.h>

/* Results: 0, a guest status (> 0, enum ember_faas_status: the body holds the
 * function's message), or one of these (< 0). */
enum ember_invoke_result {
    EMBER_INVOKE_OK = 0,
    EMBER_INVOKE_ECONNECT = -1,  /* no socket, or the VM refused the connection */
    EMBER_INVOKE_ETIMEDOUT = -2, /* the deadline passed; close the connection */
    EMBER_INVOKE_ECLOSED = -3,   /* the connection ended before the whole response */
    EMBER_INVOKE_EPROTO = -4,    /* a malformed or oversized response; close it */
    EMBER_INVOKE_EIO = -5,       /* a socket error */
    EMBER_INVOKE_ENOMEM = -6,
    EMBER_INVOKE_EINVAL = -7, /* a request above EMBER_FAAS_BODY_MAX */
};

/* Connects to the VM's uds and asks for guest port `port`; returns a
 * connected fd (non-blocking, close-on-exec) after the OK line, or
 * EMBER_INVOKE_ECONNECT / EMBER_INVOKE_ETIMEDOUT with err. timeout_ms < 0:
 * no deadline. */
int ember_invoke_connect(const char *uds, uint32_t port, int timeout_ms, char *err, size_t errlen);
/* The same, but retries (socket not there yet, guest not listening yet) until
 * the deadline: for a VM that is still booting. */
int ember_invoke_connect_wait(const char *uds, uint32_t port, int timeout_ms, char *err,
                              size_t errlen);

/* Sends req (len bytes) and waits for the response. *resp / *resp_cap is a
 * malloc'd buffer the call may grow (both may start NULL / 0; keep passing
 * them back); *resp_len gets the body length. max_response 0 means
 * EMBER_FAAS_BODY_MAX_DEFAULT. timeout_ms bounds the whole exchange (< 0: no
 * deadline). Returns an enum ember_invoke_result or a guest status. After a
 * negative result the connection is out of step: close it. */
int ember_invoke(int fd, const void *req, size_t len, void **resp, size_t *resp_len,
                 size_t *resp_cap, uint64_t max_response, int timeout_ms, char *err, size_t errlen);

/* A name for a result or guest status ("timed out", "function error"). */
const char *ember_invoke_strerror(int result);

/* `ember invoke ...` (argv[0] is "invoke"); returns the process exit status:
 * 0 success, 1 the function reported an error, 2 usage, 3 cannot connect,
 * 4 timeout, 5 connection lost or protocol error, 6 local I/O error. */
int ember_invoke_main(int argc, char **argv);

#endif
