/* faas_test.c: a function for the runtime's integration tests
 * (tests/integration/test_faas.c). It echoes its request, except for bodies
 * that start with a command:
 *   "!exit N"        exit(N) in the middle of the request (no response);
 *   "!error MSG"     fail with EMBER_FAAS_S_ERROR and MSG;
 *   "!big N"         answer N bytes of 'x' (for the host's max_response);
 *   "!connect P MSG" connect to the host (CID 2) port P, send MSG, shut
 *                    down writing, answer "reply: " + what came back;
 *   "!stats"         answer the runtime's counters.
 * Options: --max-request BYTES, --conns N. Prints "faas-test: ready" once
 * listening.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ember/faas_runtime.h>
#include <ember/vsock.h>

static char out[4096];

static int cmd_connect(const char *arg, size_t len, struct ember_faas_reply *r)
{
    char *end;
    unsigned long port = strtoul(arg, &end, 10);
    const char *msg = *end == ' ' ? end + 1 : end;
    size_t msg_len = len - (size_t)(msg - arg);
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    struct sockaddr_vm a = {
        .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = (unsigned)port};

    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
        snprintf(out, sizeof(out), "connect to port %lu: %s", port, strerror(errno));
        ember_faas_reply_error(r, out);
        if (s >= 0)
            close(s);
        return EMBER_FAAS_S_ERROR;
    }
    if (write(s, msg, msg_len) != (ssize_t)msg_len || shutdown(s, SHUT_WR) != 0) {
        snprintf(out, sizeof(out), "send: %s", strerror(errno));
        ember_faas_reply_error(r, out);
        close(s);
        return EMBER_FAAS_S_ERROR;
    }
    size_t n = (size_t)snprintf(out, sizeof(out), "reply: ");
    ssize_t got;
    while (n < sizeof(out) - 1 && (got = read(s, out + n, sizeof(out) - 1 - n)) > 0)
        n += (size_t)got;
    close(s);
    return ember_faas_reply_copy(r, out, n) == 0 ? EMBER_FAAS_S_OK : EMBER_FAAS_S_NO_MEMORY;
}

static int handler(const void *req, size_t len, struct ember_faas_reply *r)
{
    const char *s = req;

    if (len >= 6 && memcmp(s, "!exit ", 6) == 0) {
        char num[16] = {0};
        memcpy(num, s + 6, len - 6 < 15 ? len - 6 : 15);
        exit(atoi(num));
    }
    if (len >= 7 && memcmp(s, "!error ", 7) == 0) {
        size_t n = len - 7 < sizeof(out) - 1 ? len - 7 : sizeof(out) - 1;
        memcpy(out, s + 7, n);
        out[n] = 0;
        ember_faas_reply_error(r, out);
        return EMBER_FAAS_S_ERROR;
    }
    if (len >= 5 && memcmp(s, "!big ", 5) == 0) {
        size_t n = strtoul(s + 5, NULL, 10);
        char *b = ember_faas_reply_buffer(r, n);
        if (!b)
            return EMBER_FAAS_S_NO_MEMORY;
        memset(b, 'x', n);
        return EMBER_FAAS_S_OK;
    }
    if (len >= 9 && memcmp(s, "!connect ", 9) == 0)
        return cmd_connect(s + 9, len - 9, r);
    if (len == 6 && memcmp(s, "!stats", 6) == 0) {
        struct ember_faas_stats st;
        ember_faas_get_stats(&st);
        int n = snprintf(out, sizeof(out), "invocations %llu errors %llu connections %llu",
                         (unsigned long long)st.invocations, (unsigned long long)st.errors,
                         (unsigned long long)st.connections);
        return ember_faas_reply_copy(r, out, (size_t)n) == 0 ? EMBER_FAAS_S_OK
                                                             : EMBER_FAAS_S_NO_MEMORY;
    }
    ember_faas_reply_ref(r, req, len);
    return EMBER_FAAS_S_OK;
}

static void ready(uint32_t port)
{
    printf("faas-test: ready on port %u\n", port);
}

int main(int argc, char **argv)
{
    struct ember_faas_options o = {.on_listen = ready};

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--max-request") == 0)
            o.max_request = strtoull(argv[i + 1], NULL, 0);
        else if (strcmp(argv[i], "--conns") == 0)
            o.max_conns = (unsigned)strtoul(argv[i + 1], NULL, 0);
    }
    int r = ember_faas_serve_with(&o, handler);
    printf("faas-test: serve: %s\n", strerror(-r));
    return 1;
}
