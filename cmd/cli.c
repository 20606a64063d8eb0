/* cli.c: the quick command line, `ember run`, into a struct vm_config. */
#include "cmd/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/errmsg.h"
#include "common/parse_num.h"
#include "virtio/vsock_device.h"

void cli_usage(FILE *out)
{
    fprintf(out, "usage: ember run [--mem MIB] [--timings] [--boot-timer] [--no-seccomp]\n"
                 "                 [--drive PATH[,ro][,id=ID][,root]...] [--root ID]\n"
                 "                 [--vsock UDS_PATH[,cid=N][,buffer=BYTES]]\n"
                 "                 [--net TAP[,mac=MAC][,id=ID][,mtu=N]...]\n"
                 "                 GUEST.elf [ARGS...]\n"
                 "       ember invoke --uds PATH [--port N] [--timeout MS] [--wait] [FILE|-]\n"
                 "       ember --api-sock PATH [--id ID] | --config-file FILE [--no-api]\n"
                 "       ember --version\n");
}

static bool needs_quotes(const char *s)
{
    return !*s || strpbrk(s, " \t\n\"'\\") != NULL;
}

char *cli_quote_args(int argc, char *const *argv)
{
    size_t len = 1;
    char *out, *p;

    for (int i = 0; i < argc; i++)
        len += 2 * strlen(argv[i]) + 3; /* worst case: every byte escaped, quotes, space */
    out = malloc(len);
    if (!out)
        return NULL;
    p = out;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (i)
            *p++ = ' ';
        if (!needs_quotes(s)) {
            p = stpcpy(p, s);
            continue;
        }
        *p++ = '"';
        for (; *s; s++) {
            if (*s == '"' || *s == '\\')
                *p++ = '\\';
            *p++ = *s;
        }
        *p++ = '"';
    }
    *p = '\0';
    return out;
}

static int parse_mib(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* --drive PATH[,ro][,id=ID][,writeback][,async][,root] */
static int parse_drive(struct vm_config *cfg, const char *spec, char *err, size_t errlen)
{
    struct blk_config d;
    char *copy = strdup(spec), *save = NULL, *tok;
    int rc = -1;

    if (!copy)
        return errmsg(-1, err, errlen, "out of memory");
    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "drive%u", cfg->ndrives);
    d.path = strtok_r(copy, ",", &save);
    if (!d.path || !d.path[0]) {
        errmsg(-1, err, errlen, "--drive needs a path");
        goto out;
    }
    while ((tok = strtok_r(NULL, ",", &save)) != NULL) {
        if (strcmp(tok, "ro") == 0)
            d.read_only = true;
        else if (strcmp(tok, "writeback") == 0)
            d.writeback = true;
        else if (strcmp(tok, "async") == 0)
            d.async = true;
        else if (strcmp(tok, "root") == 0)
            d.root = true;
        else if (strncmp(tok, "id=", 3) == 0 && strlen(tok + 3) <= BLK_ID_MAX)
            memcpy(d.id, tok + 3, strlen(tok + 3) + 1);
        else {
            errmsg(-1, err, errlen, "--drive: unknown option \"%s\"", tok);
            goto out;
        }
    }
    rc = vm_config_add_drive(cfg, &d, err, errlen);
out:
    free(copy);
    return rc;
}

/* --net TAP[,mac=MAC][,id=ID][,mtu=N] */
static int parse_net(struct vm_config *cfg, const char *spec, char *err, size_t errlen)
{
    struct net_config n;
    char *copy = strdup(spec), *save = NULL, *tok, *tap;
    int rc = -1;

    if (!copy)
        return errmsg(-1, err, errlen, "out of memory");
    memset(&n, 0, sizeof(n));
    snprintf(n.id, sizeof(n.id), "net%u", cfg->nnets);
    tap = strtok_r(copy, ",", &save);
    if (!tap || !tap[0] || strlen(tap) >= sizeof(n.host_dev_name)) {
        errmsg(-1, err, errlen, "--net needs a tap name of 1 to %zu characters",
               sizeof(n.host_dev_name) - 1);
        goto out;
    }
    snprintf(n.host_dev_name, sizeof(n.host_dev_name), "%s", tap);
    while ((tok = strtok_r(NULL, ",", &save)) != NULL) {
        if (strncmp(tok, "mac=", 4) == 0) {
            if (net_parse_mac(tok + 4, n.mac) != 0) {
                errmsg(-1, err, errlen,
                       "--net: \"%s\" is not a MAC address such as 06:00:AC:10:00:02", tok + 4);
                goto out;
            }
            n.has_mac = true;
        } else if (strncmp(tok, "id=", 3) == 0 && strlen(tok + 3) <= NET_ID_MAX) {
            memcpy(n.id, tok + 3, strlen(tok + 3) + 1);
        } else if (strncmp(tok, "mtu=", 4) == 0) {
            uint64_t v;
            if (parse_u64(tok + 4, 65535, &v) != 0 || v < 68) {
                errmsg(-1, err, errlen, "--net: mtu \"%s\" out of range (68 to 65535)", tok + 4);
                goto out;
            }
            n.mtu = (uint32_t)v;
        } else {
            errmsg(-1, err, errlen, "--net: unknown option \"%s\"", tok);
            goto out;
        }
    }
    rc = vm_config_add_net(cfg, &n, err, errlen);
out:
    free(copy);
    return rc;
}

/* --vsock UDS_PATH[,cid=N][,buffer=BYTES]: buffer is the device's budget for
 * guest data the host sockets have not taken (vsock_device.h). */
static int parse_vsock(struct vm_config *cfg, const char *spec, char *err, size_t errlen)
{
    char *copy = strdup(spec), *save = NULL, *tok, *path;
    int rc = -1;

    if (!copy)
        return errmsg(-1, err, errlen, "out of memory");
    path = strtok_r(copy, ",", &save);
    if (!path || !path[0] || cfg->has_vsock) {
        errmsg(-1, err, errlen, cfg->has_vsock ? "--vsock given twice" : "--vsock needs a path");
        goto out;
    }
    cfg->vsock.guest_cid = 3;
    while ((tok = strtok_r(NULL, ",", &save)) != NULL) {
        char *end;
        if (strncmp(tok, "cid=", 4) == 0 && tok[4] >= '0' && tok[4] <= '9') {
            errno = 0;
            cfg->vsock.guest_cid = strtoull(tok + 4, &end, 10);
            if (!errno && !*end)
                continue;
        }
        if (strncmp(tok, "buffer=", 7) == 0) {
            uint64_t b;
            if (parse_u64(tok + 7, VSOCK_BUFFER_BYTES_MAX, &b) == 0 &&
                b >= VSOCK_BUFFER_BYTES_MIN) {
                cfg->vsock.buffer_bytes = b;
                continue;
            }
            errmsg(-1, err, errlen, "--vsock: buffer=%s: a number of bytes from %u to %llu",
                   tok + 7, VSOCK_BUFFER_BYTES_MIN, (unsigned long long)VSOCK_BUFFER_BYTES_MAX);
            goto out;
        }
        errmsg(-1, err, errlen, "--vsock: unknown option \"%s\"", tok);
        goto out;
    }
    cfg->vsock.uds_path = strdup(path);
    if (!cfg->vsock.uds_path) {
        errmsg(-1, err, errlen, "out of memory");
        goto out;
    }
    cfg->has_vsock = true;
    rc = 0;
out:
    free(copy);
    return rc;
}

int cli_parse_run(int argc, char **argv, struct vm_config *cfg, char *err, size_t errlen)
{
    int i = 1;
    const char *root_id = NULL;

    vm_config_init(cfg);
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-')
            break;
        if (strcmp(a, "--mem") == 0) {
            if (i + 1 >= argc)
                return errmsg(-1, err, errlen, "--mem needs a value in MiB");
            if (parse_mib(argv[++i], &cfg->mem_mib) != 0)
                return errmsg(-1, err, errlen, "--mem: \"%s\" is not a number of MiB", argv[i]);
        } else if (strcmp(a, "--timings") == 0) {
            cfg->timings = true;
        } else if (strcmp(a, "--boot-timer") == 0) {
            cfg->boot_timer = true;
        } else if (strcmp(a, "--drive") == 0) {
            if (i + 1 >= argc)
                return errmsg(-1, err, errlen, "--drive needs a path");
            if (parse_drive(cfg, argv[++i], err, errlen) != 0)
                return -1;
        } else if (strcmp(a, "--root") == 0) {
            if (i + 1 >= argc)
                return errmsg(-1, err, errlen, "--root needs a drive id");
            root_id = argv[++i];
        } else if (strcmp(a, "--net") == 0) {
            if (i + 1 >= argc)
                return errmsg(-1, err, errlen, "--net needs a tap name");
            if (parse_net(cfg, argv[++i], err, errlen) != 0)
                return -1;
        } else if (strcmp(a, "--vsock") == 0) {
            if (i + 1 >= argc)
                return errmsg(-1, err, errlen, "--vsock needs a path");
            if (parse_vsock(cfg, argv[++i], err, errlen) != 0)
                return -1;
        } else if (strcmp(a, "--no-seccomp") == 0) {
            cfg->no_seccomp = true;
            fprintf(stderr, "ember: warning: --no-seccomp: the monitor runs without its "
                            "system-call filters\n");
        } else if (strcmp(a, "--id") == 0 || strcmp(a, "--start-time-us") == 0 ||
                   strcmp(a, "--start-time-cpu-us") == 0) {
            /* Passed by ember-jailer to every exec (jailer/README.md); `ember
             * run` has no use for them yet. */
            if (i + 1 >= argc)
                return errmsg(-1, err, errlen, "%s needs a value", a);
            i++;
        } else {
            return errmsg(-1, err, errlen, "unknown option %s", a);
        }
    }
    if (root_id) {
        unsigned k = 0;
        while (k < cfg->ndrives && strcmp(cfg->drives[k].id, root_id) != 0)
            k++;
        if (k == cfg->ndrives)
            return errmsg(-1, err, errlen, "--root: no drive with id \"%s\"", root_id);
        cfg->drives[k].root = true;
    }
    unsigned roots = 0;
    for (unsigned k = 0; k < cfg->ndrives; k++)
        roots += cfg->drives[k].root;
    if (roots > 1)
        return errmsg(-1, err, errlen, "more than one root drive");
    if (i >= argc)
        return errmsg(-1, err, errlen, "no guest given");
    cfg->kernel_path = strdup(argv[i]);
    cfg->boot_args = cli_quote_args(argc - i - 1, argv + i + 1);
    if (!cfg->kernel_path || !cfg->boot_args)
        return errmsg(-1, err, errlen, "out of memory");
    return 0;
}
