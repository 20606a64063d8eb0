/* cli.c: the quick command line, `ember run`, into a struct vm_config. */
#include "cmd/cli.h"

#include <ctype.h>
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
                 "                 [--env KEY=VALUE...] [--env-file FILE] [--trace-syscalls]\n"
                 "                 [--track-dirty-pages] [--snapshot-on-ready DIR]\n"
                 "                 GUEST.elf [ARGS...]\n"
                 "       ember run --restore DIR|STATE [--mem-file MEM] [--vsock UDS_PATH]\n"
                 "                 [--timings] [--track-dirty-pages] [--clock-realtime]\n"
                 "       ember restore-server --sock PATH --snapshot DIR|STATE [--mem-file MEM]\n"
                 "                 [--no-seccomp] [--timings]\n"
                 "       ember snapshot --api-sock PATH [--diff] [--resume] DIR\n"
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

/* The guest's environment, as words of the command line. The SDK follows
 * Linux's rule for init (Documentation/admin-guide/kernel-parameters.rst):
 * before a "--" word, KEY=VALUE words become the environment and other
 * words argv; after it everything is argv. */
struct env_list {
    char **v;
    int n;
};

static void env_release(struct env_list *e)
{
    for (int i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
    e->v = NULL;
    e->n = 0;
}

/* A name the guest takes as an environment variable: what a POSIX shell
 * accepts as a name. A dot would make Linux (and the SDK) read the word as
 * a module parameter, and a kernel parameter name would be consumed. */
static bool env_name_ok(const char *s, size_t len)
{
    if (len == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++) {
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return false;
    }
    return true;
}

/* KEY=VALUE, or KEY alone for the value of KEY in ember's own environment
 * (skipped when unset), as `docker run -e`. */
static int env_add(struct env_list *e, const char *kv, size_t kvlen, const char *where, char *err,
                   size_t errlen)
{
    const char *eq = memchr(kv, '=', kvlen);
    size_t klen = eq ? (size_t)(eq - kv) : kvlen;
    char *word, **v;

    if (!env_name_ok(kv, klen))
        return errmsg(-1, err, errlen,
                      "%s: \"%.*s\" is not a valid variable name (letters, digits, _)", where,
                      (int)klen, kv);
    if (eq) {
        word = strndup(kv, kvlen);
    } else {
        char name[256];
        const char *val;
        if (klen >= sizeof(name))
            return errmsg(-1, err, errlen, "%s: variable name too long", where);
        memcpy(name, kv, klen);
        name[klen] = '\0';
        val = getenv(name);
        if (!val)
            return 0;
        if (asprintf(&word, "%s=%s", name, val) < 0)
            word = NULL;
    }
    if (!word)
        return errmsg(-1, err, errlen, "out of memory");
    v = realloc(e->v, (size_t)(e->n + 1) * sizeof(*v));
    if (!v) {
        free(word);
        return errmsg(-1, err, errlen, "out of memory");
    }
    e->v = v;
    e->v[e->n++] = word;
    return 0;
}

/* --env-file FILE: one KEY=VALUE (or KEY) per line, taken literally (no
 * quotes, no expansion); empty lines and lines starting with # are skipped.
 * The format of `docker run --env-file`. */
static int env_file(struct env_list *e, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, where[64];
    size_t cap = 0;
    ssize_t len;
    unsigned lineno = 0;
    int rc = 0;

    if (!f)
        return errmsg(-1, err, errlen, "--env-file: %s: %s", path, strerror(errno));
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        size_t skip = 0;
        while (line[skip] == ' ' || line[skip] == '\t')
            skip++;
        if (line[skip] == '\0' || line[skip] == '#')
            continue;
        if ((size_t)len - skip != strlen(line + skip)) {
            rc = errmsg(-1, err, errlen, "--env-file: %s:%u: a NUL byte in the line", path, lineno);
            break;
        }
        snprintf(where, sizeof(where), "--env-file line %u", lineno);
        rc = env_add(e, line + skip, (size_t)len - skip, where, err, errlen);
        if (rc)
            snprintf(err + strlen(err), errlen - strlen(err), " (%s)", path);
    }
    if (rc == 0 && ferror(f))
        rc = errmsg(-1, err, errlen, "--env-file: %s: %s", path, strerror(errno));
    free(line);
    fclose(f);
    return rc;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        errmsg(-1, __VA_ARGS__);                                                                   \
        goto out;                                                                                  \
    } while (0)

int cli_parse_run(int argc, char **argv, struct vm_config *cfg, char *err, size_t errlen)
{
    struct env_list env = {0};
    int i = 1, rc = -1;
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
                FAIL(err, errlen, "--mem needs a value in MiB");
            if (parse_mib(argv[++i], &cfg->mem_mib) != 0)
                FAIL(err, errlen, "--mem: \"%s\" is not a number of MiB", argv[i]);
        } else if (strcmp(a, "--timings") == 0) {
            cfg->timings = true;
        } else if (strcmp(a, "--boot-timer") == 0) {
            cfg->boot_timer = true;
        } else if (strcmp(a, "--drive") == 0) {
            if (i + 1 >= argc)
                FAIL(err, errlen, "--drive needs a path");
            if (parse_drive(cfg, argv[++i], err, errlen) != 0)
                goto out;
        } else if (strcmp(a, "--root") == 0) {
            if (i + 1 >= argc)
                FAIL(err, errlen, "--root needs a drive id");
            root_id = argv[++i];
        } else if (strcmp(a, "--net") == 0) {
            if (i + 1 >= argc)
                FAIL(err, errlen, "--net needs a tap name");
            if (parse_net(cfg, argv[++i], err, errlen) != 0)
                goto out;
        } else if (strcmp(a, "--vsock") == 0) {
            if (i + 1 >= argc)
                FAIL(err, errlen, "--vsock needs a path");
            if (parse_vsock(cfg, argv[++i], err, errlen) != 0)
                goto out;
        } else if (strcmp(a, "--env") == 0) {
            if (i + 1 >= argc)
                FAIL(err, errlen, "--env needs KEY=VALUE");
            if (env_add(&env, argv[i + 1], strlen(argv[i + 1]), "--env", err, errlen) != 0)
                goto out;
            i++;
        } else if (strcmp(a, "--env-file") == 0) {
            if (i + 1 >= argc)
                FAIL(err, errlen, "--env-file needs a file");
            if (env_file(&env, argv[++i], err, errlen) != 0)
                goto out;
        } else if (strcmp(a, "--trace-syscalls") == 0) {
            if (env_add(&env, "EMBER_TRACE_SYSCALLS=1", 22, "--trace-syscalls", err, errlen) != 0)
                goto out;
        } else if (strcmp(a, "--restore") == 0 || strcmp(a, "--mem-file") == 0 ||
                   strcmp(a, "--snapshot-on-ready") == 0) {
            char **dst = strcmp(a, "--restore") == 0    ? &cfg->restore_path
                         : strcmp(a, "--mem-file") == 0 ? &cfg->restore_mem_path
                                                        : &cfg->snapshot_on_ready;
            if (i + 1 >= argc || !argv[i + 1][0])
                FAIL(err, errlen, "%s needs a path", a);
            free(*dst);
            *dst = strdup(argv[++i]);
            if (!*dst)
                FAIL(err, errlen, "out of memory");
        } else if (strcmp(a, "--track-dirty-pages") == 0) {
            cfg->track_dirty_pages = true;
        } else if (strcmp(a, "--clock-realtime") == 0) {
            cfg->clock_realtime = true;
        } else if (strcmp(a, "--no-seccomp") == 0) {
            cfg->no_seccomp = true;
            fprintf(stderr, "ember: warning: --no-seccomp: the monitor runs without its "
                            "system-call filters\n");
        } else if (strcmp(a, "--id") == 0 || strcmp(a, "--start-time-us") == 0 ||
                   strcmp(a, "--start-time-cpu-us") == 0) {
            /* Passed by ember-jailer to every exec (jailer/README.md); `ember
             * run` has no use for them yet. */
            if (i + 1 >= argc)
                FAIL(err, errlen, "%s needs a value", a);
            i++;
        } else {
            FAIL(err, errlen, "unknown option %s", a);
        }
    }
    if (root_id) {
        unsigned k = 0;
        while (k < cfg->ndrives && strcmp(cfg->drives[k].id, root_id) != 0)
            k++;
        if (k == cfg->ndrives)
            FAIL(err, errlen, "--root: no drive with id \"%s\"", root_id);
        cfg->drives[k].root = true;
    }
    unsigned roots = 0;
    for (unsigned k = 0; k < cfg->ndrives; k++)
        roots += cfg->drives[k].root;
    if (roots > 1)
        FAIL(err, errlen, "more than one root drive");
    if (cfg->restore_path) {
        /* The guest, its memory and devices come from the snapshot. */
        if (i < argc)
            FAIL(err, errlen, "--restore takes no guest");
        if (cfg->ndrives || cfg->nnets || cfg->snapshot_on_ready)
            FAIL(err, errlen, "--restore takes no --drive, --net or --snapshot-on-ready");
        rc = 0;
        goto out;
    }
    if (cfg->restore_mem_path || cfg->clock_realtime)
        FAIL(err, errlen, "%s goes with --restore",
             cfg->restore_mem_path ? "--mem-file" : "--clock-realtime");
    if (i >= argc)
        FAIL(err, errlen, "no guest given");
    cfg->kernel_path = strdup(argv[i]);
    cfg->boot_args = cli_quote_args(argc - i - 1, argv + i + 1);
    if (env.n && !(cfg->env_args = cli_quote_args(env.n, env.v)))
        FAIL(err, errlen, "out of memory");
    /* An argument that holds '=' or is "--" would be sorted into the
     * environment (or taken for the separator) by an SDK guest. */
    for (int k = i + 1; k < argc; k++)
        cfg->args_dashes |= strchr(argv[k], '=') != NULL || strcmp(argv[k], "--") == 0;
    if (!cfg->kernel_path || !cfg->boot_args)
        FAIL(err, errlen, "out of memory");
    rc = 0;
out:
    env_release(&env);
    return rc;
}
