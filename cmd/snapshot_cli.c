/* snapshot_cli.c: `ember snapshot --api-sock SOCK [--diff] [--resume] DIR`,
 * a snapshot of a running VM through its API socket, as an operator would
 * take it with curl: PATCH /vm Paused, PUT /snapshot/create (DIR/state,
 * DIR/mem), and with --resume PATCH /vm Resumed. DIR then restores with
 * `ember run --restore DIR`. Exit status 0, or 1 with the API's fault
 * message. */
#include "cmd/snapshot_cli.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* One HTTP/1.1 request on a new connection; returns the status code (or -1)
 * with the start of the response body in body. */
static int request(const char *sock, const char *method, const char *path, const char *json,
                   char *body, size_t bodylen)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    char req[PATH_MAX * 3], resp[4096];
    size_t got = 0;
    int fd, n, code = -1;

    if (strlen(sock) >= sizeof(a.sun_path))
        return -1;
    memcpy(a.sun_path, sock, strlen(sock) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        snprintf(body, bodylen, "%s: %s", sock, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    n = snprintf(req, sizeof(req),
                 "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 method, path, strlen(json), json);
    if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    while (got < sizeof(resp) - 1) {
        ssize_t r = read(fd, resp + got, sizeof(resp) - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    resp[got] = '\0';
    if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1)
        return -1;
    const char *b = strstr(resp, "\r\n\r\n");
    snprintf(body, bodylen, "%s", b ? b + 4 : "");
    return code;
}

static int step(const char *sock, const char *method, const char *path, const char *json)
{
    char body[2048];
    int code = request(sock, method, path, json, body, sizeof(body));

    if (code == 204)
        return 0;
    fprintf(stderr, "ember snapshot: %s %s: %s\n", method, path,
            code < 0 ? (body[0] ? body : "no answer") : body);
    return -1;
}

int ember_snapshot_main(int argc, char **argv)
{
    const char *sock = NULL, *dir = NULL;
    bool diff = false, resume = false, bad = false;
    char json[PATH_MAX * 2 + 128], dabs[PATH_MAX];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--api-sock") == 0 && i + 1 < argc)
            sock = argv[++i];
        else if (strcmp(argv[i], "--diff") == 0)
            diff = true;
        else if (strcmp(argv[i], "--resume") == 0)
            resume = true;
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else
            bad = true;
    }
    if (bad || !sock || !dir) {
        fprintf(stderr, "usage: ember snapshot --api-sock PATH [--diff] [--resume] DIR\n");
        return 153;
    }
    /* The monitor resolves paths in its own directory: give it absolute ones. */
    if (!realpath(dir, dabs)) {
        fprintf(stderr, "ember snapshot: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    snprintf(json, sizeof(json),
             "{\"snapshot_path\": \"%s/state\", \"mem_file_path\": \"%s/mem\", "
             "\"snapshot_type\": \"%s\"}",
             dabs, dabs, diff ? "Diff" : "Full");
    if (strpbrk(dabs, "\"\\")) {
        fprintf(stderr, "ember snapshot: %s: quotes and backslashes are not supported\n", dabs);
        return 1;
    }
    if (step(sock, "PATCH", "/vm", "{\"state\": \"Paused\"}") != 0 ||
        step(sock, "PUT", "/snapshot/create", json) != 0)
        return 1;
    if (resume && step(sock, "PATCH", "/vm", "{\"state\": \"Resumed\"}") != 0)
        return 1;
    return 0;
}
