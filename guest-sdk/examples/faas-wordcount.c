/* faas-wordcount.c: a CPU-bound function: counts the lines, words and bytes
 * of the request body, like wc(1), and answers "<lines> <words> <bytes>\n".
 * Words are runs of bytes other than space, \t, \n, \v, \f and \r.
 *
 *     ember run --vsock /tmp/wc.sock faas-wordcount &
 *     ember invoke --uds /tmp/wc.sock README.md
 *
 * Options: as faas-echo (--port, --max, --max-request, --conns).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ember/faas_runtime.h>

static int wordcount(const void *req, size_t len, struct ember_faas_reply *reply)
{
    const unsigned char *p = req;
    unsigned long long lines = 0, words = 0;
    int in_word = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        int space = c == ' ' || (c >= '\t' && c <= '\r');
        lines += c == '\n';
        words += !space && !in_word;
        in_word = !space;
    }
    char *out = ember_faas_reply_buffer(reply, 64);
    if (!out) {
        ember_faas_reply_error(reply, "wordcount: no memory");
        return EMBER_FAAS_S_NO_MEMORY;
    }
    int n = snprintf(out, 64, "%llu %llu %zu\n", lines, words, len);
    ember_faas_reply_buffer(reply, (size_t)n); /* the same buffer, its real length */
    return EMBER_FAAS_S_OK;
}

static void ready(uint32_t port)
{
    printf("faas-wordcount: listening on vsock port %u\n", port);
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
    int r = ember_faas_serve_with(&o, wordcount);
    if (r < 0) {
        fprintf(stderr, "faas-wordcount: cannot serve: %s\n", strerror(-r));
        return 1;
    }
    return 0;
}
