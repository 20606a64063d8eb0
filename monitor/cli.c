/* cli.c: the quick command line, `ember run`, into a struct vm_config. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void cli_usage(FILE *out)
{
    fprintf(out, "usage: ember run [--mem MIB] [--timings] [--boot-timer] GUEST.elf [ARGS...]\n"
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

int cli_parse_run(int argc, char **argv, struct vm_config *cfg, char *err, size_t errlen)
{
    int i = 1;

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
                return fail(err, errlen, "--mem needs a value in MiB");
            if (parse_mib(argv[++i], &cfg->mem_mib) != 0)
                return fail(err, errlen, "--mem: \"%s\" is not a number of MiB", argv[i]);
        } else if (strcmp(a, "--timings") == 0) {
            cfg->timings = true;
        } else if (strcmp(a, "--boot-timer") == 0) {
            cfg->boot_timer = true;
        } else {
            return fail(err, errlen, "unknown option %s", a);
        }
    }
    if (i >= argc)
        return fail(err, errlen, "no guest given");
    cfg->kernel_path = strdup(argv[i]);
    cfg->boot_args = cli_quote_args(argc - i - 1, argv + i + 1);
    if (!cfg->kernel_path || !cfg->boot_args)
        return fail(err, errlen, "out of memory");
    return 0;
}
