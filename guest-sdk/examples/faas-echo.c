/* faas-echo.c: a function that answers every request with its own body.
 *
 *     ember run --vsock /tmp/fn.sock faas-echo &
 *     echo hello | ember invoke --uds /tmp/fn.sock
 *
 * Options (on the guest's command line): --port N (default 1024),
 * --max N (exit 0 after N invocations), --max-request BYTES, --conns N.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ember/faas_runtime.h>

static int echo(const void *req, size_t len, struct ember_faas_reply *reply)
{
    ember_faas_reply_ref(reply, req, len); /* no copy: sent straight from the request */
    return EMBER_FAAS_S_OK;
}

static void ready(uint32_t port)
{
    printf("faas-echo: listening on vsock port %u\n", port);
}

int main(int argc, char **argv)
{
    struct ember_faas_options o = {.on_listen = ready};

    for (int i = 1; i + 1 < argc; i += 2) {
        unsigned long long v = strtoull(argv[i + 1], NULL, 0);
        if (strcmp(argv[i], "--port") == 0)
            o.port = (uint32_t)v;
        else if (strcmp(argv[i], "--max") == 0)
            o.max_invocations = v;
        else if (strcmp(argv[i], "--max-request") == 0)
            o.max_request = v;
        else if (strcmp(argv[i], "--conns") == 0)
            o.max_conns = (unsigned)v;
    }
    int r = ember_faas_serve_with(&o, echo);
    if (r < 0) {
        fprintf(stderr, "faas-echo: cannot serve: %s\n", strerror(-r));
        return 1;
    }
    return 0;
}
