/* jailer_args.c: ember-jailer's command line (see jailer_args.h and README.md).
 *
 * Options take their value as `--opt VALUE` or `--opt=VALUE`, like
 * Firecracker's jailer. Paths must be absolute and free of ".." so what the
 * message names is what gets used; numeric uids and gids need no passwd entry
 * (jails usually run as unique ids nobody created), names are looked up in
 * /etc/passwd and /etc/group.
 */
#include "jailer/jailer_args.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errmsg.h"
#include "common/parse_num.h"

void jail_usage(FILE *out)
{
    fprintf(out,
            "usage: ember-jailer --id ID --exec-file PATH --uid UID --gid GID\n"
            "                    [--chroot-base-dir DIR] [--netns PATH]\n"
            "                    [--cgroup-version 1|2] [--cgroup FILE=VALUE]...\n"
            "                    [--parent-cgroup NAME] [--resource-limit fsize=N|no-file=N]...\n"
            "                    [--daemonize] [--new-pid-ns] [-- EXEC ARGS...]\n"
            "       ember-jailer --cleanup --id ID [--exec-file PATH] [--chroot-base-dir DIR]\n"
            "                    [--parent-cgroup NAME]\n"
            "See jailer/README.md for the steps and the exit statuses.\n");
}

bool jail_id_valid(const char *id)
{
    size_t n = strlen(id);

    if (n < 1 || n > JAIL_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return true;
}

/* An absolute path with no "." or ".." component. */
static bool path_clean_absolute(const char *p)
{
    if (p[0] != '/')
        return false;
    for (const char *c = p; *c;) {
        const char *next = strchr(c, '/');
        size_t len = next ? (size_t)(next - c) : strlen(c);
        if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        if (!next)
            break;
        c = next + 1;
    }
    return true;
}

static int check_path(const char *opt, const char *p, char *err, size_t errlen)
{
    if (!p[0])
        return errmsg(-1, err, errlen, "%s: empty path", opt);
    if (p[0] != '/')
        return errmsg(-1, err, errlen, "%s \"%s\": must be an absolute path", opt, p);
    if (!path_clean_absolute(p))
        return errmsg(-1, err, errlen, "%s \"%s\": must not contain \".\" or \"..\" components",
                      opt, p);
    return 0;
}

/* A relative cgroup path: components of [A-Za-z0-9._-], none "." or "..". */
static bool cgroup_name_valid(const char *p)
{
    size_t comp = 0;

    if (!p[0] || p[0] == '/' || strlen(p) > 512)
        return false;
    for (const char *c = p;; c++) {
        if (*c == '/' || !*c) {
            if (comp == 0)
                return false;
            if ((comp == 1 && c[-1] == '.') || (comp == 2 && c[-1] == '.' && c[-2] == '.'))
                return false;
            if (!*c)
                return true;
            comp = 0;
            continue;
        }
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-'))
            return false;
        comp++;
    }
}

/* uid_t/gid_t -1 means "leave unchanged" to setresuid(): never accept it. */
static int parse_id(const char *opt, const char *s, bool user, uint32_t *out, char *err,
                    size_t errlen)
{
    uint64_t v;

    if (parse_u64(s, UINT32_MAX - 1, &v) == 0) {
        *out = (uint32_t)v;
        return 0;
    }
    if (s[0] >= '0' && s[0] <= '9')
        return errmsg(-1, err, errlen, "%s \"%s\": not a valid %s (0 to 4294967294)", opt, s,
                      user ? "uid" : "gid");
    if (s[0] == '-' || s[0] == '+' || !s[0])
        return errmsg(-1, err, errlen, "%s \"%s\": not a valid %s (0 to 4294967294)", opt, s,
                      user ? "uid" : "gid");
    /* Only the local files: the jailer is static, and a root process should
     * not load NSS modules (LDAP and the like) anyway. */
    if (user) {
        FILE *f = fopen("/etc/passwd", "re");
        struct passwd *pw = NULL;
        while (f && (pw = fgetpwent(f)) != NULL && strcmp(pw->pw_name, s) != 0)
            ;
        if (pw)
            *out = pw->pw_uid;
        if (f)
            fclose(f);
        if (!pw)
            return errmsg(-1, err, errlen, "%s \"%s\": no such user in /etc/passwd", opt, s);
    } else {
        FILE *f = fopen("/etc/group", "re");
        struct group *gr = NULL;
        while (f && (gr = fgetgrent(f)) != NULL && strcmp(gr->gr_name, s) != 0)
            ;
        if (gr)
            *out = gr->gr_gid;
        if (f)
            fclose(f);
        if (!gr)
            return errmsg(-1, err, errlen, "%s \"%s\": no such group in /etc/group", opt, s);
    }
    return 0;
}

static int parse_cgroup(const char *s, struct jail_cgroup_arg *c, char *err, size_t errlen)
{
    const char *eq = strchr(s, '=');
    const char *dot;
    size_t flen;

    if (!eq || eq == s || !eq[1])
        return errmsg(-1, err, errlen, "--cgroup \"%s\": must be FILE=VALUE", s);
    flen = (size_t)(eq - s);
    if (flen >= sizeof(c->file))
        return errmsg(-1, err, errlen, "--cgroup \"%s\": file name too long", s);
    memcpy(c->file, s, flen);
    c->file[flen] = '\0';
    dot = strchr(c->file, '.');
    for (const char *p = c->file; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ||
              (*p >= 'A' && *p <= 'Z')))
            return errmsg(-1, err, errlen, "--cgroup \"%s\": \"%s\" is not a cgroup file name", s,
                          c->file);
    if (!dot || dot == c->file || !dot[1])
        return errmsg(-1, err, errlen, "--cgroup \"%s\": \"%s\" is not CONTROLLER.SETTING", s,
                      c->file);
    if ((size_t)(dot - c->file) >= sizeof(c->ctrl))
        return errmsg(-1, err, errlen, "--cgroup \"%s\": controller name too long", s);
    memcpy(c->ctrl, c->file, (size_t)(dot - c->file));
    c->ctrl[dot - c->file] = '\0';
    if (strchr(eq + 1, '\n'))
        return errmsg(-1, err, errlen, "--cgroup \"%s\": value holds a newline", c->file);
    if (strcmp(c->file, "cgroup.procs") == 0 || strcmp(c->file, "tasks") == 0 ||
        strcmp(c->file, "cgroup.threads") == 0 || strcmp(c->file, "cgroup.subtree_control") == 0)
        return errmsg(-1, err, errlen, "--cgroup \"%s\": the jailer manages that file itself",
                      c->file);
    c->value = eq + 1;
    return 0;
}

static int parse_rlimit(const char *s, struct jail_rlimit_arg *r, char *err, size_t errlen)
{
    const char *eq = strchr(s, '=');
    uint64_t v;

    if (!eq)
        return errmsg(-1, err, errlen, "--resource-limit \"%s\": must be fsize=N or no-file=N", s);
    if ((size_t)(eq - s) == 5 && strncmp(s, "fsize", 5) == 0)
        r->resource = RLIMIT_FSIZE;
    else if ((size_t)(eq - s) == 7 && strncmp(s, "no-file", 7) == 0)
        r->resource = RLIMIT_NOFILE;
    else
        return errmsg(-1, err, errlen,
                      "--resource-limit \"%s\": unknown resource (fsize or no-file)", s);
    if (parse_u64(eq + 1, UINT64_MAX - 1, &v) != 0)
        return errmsg(-1, err, errlen, "--resource-limit \"%s\": \"%s\" is not a number", s,
                      eq + 1);
    r->value = (rlim_t)v;
    return 0;
}

static const char *const with_value[] = {
    "id",    "exec-file",      "uid",    "gid",           "chroot-base-dir",
    "netns", "cgroup-version", "cgroup", "parent-cgroup", "resource-limit",
    NULL,
};

int jail_args_parse(int argc, char **argv, struct jail_args *a, char *err, size_t errlen)
{
    const char *uid_s = NULL, *gid_s = NULL, *version_s = NULL;
    struct stat st;
    int i;

    memset(a, 0, sizeof(*a));
    a->base = JAIL_DEFAULT_BASE;
    a->cgroup_version = 1;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *eq, *val = NULL;
        char name[32];
        bool takes = false;

        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (strncmp(arg, "--", 2) != 0)
            return errmsg(-1, err, errlen,
                          "unexpected argument \"%s\" (exec arguments go after --)", arg);
        arg += 2;
        eq = strchr(arg, '=');
        snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
        for (int k = 0; with_value[k]; k++)
            takes |= strcmp(name, with_value[k]) == 0;
        if (takes) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return errmsg(-1, err, errlen, "--%s needs a value", name);
        } else if (eq) {
            return errmsg(-1, err, errlen, "--%s takes no value", name);
        }

        if (strcmp(name, "help") == 0) {
            jail_usage(stdout);
            return 1;
        } else if (strcmp(name, "cleanup") == 0) {
            a->cleanup = true;
        } else if (strcmp(name, "id") == 0) {
            a->id = val;
        } else if (strcmp(name, "exec-file") == 0) {
            a->exec_file = val;
        } else if (strcmp(name, "uid") == 0) {
            uid_s = val;
        } else if (strcmp(name, "gid") == 0) {
            gid_s = val;
        } else if (strcmp(name, "chroot-base-dir") == 0) {
            a->base = val;
        } else if (strcmp(name, "netns") == 0) {
            a->netns = val;
        } else if (strcmp(name, "cgroup-version") == 0) {
            version_s = val;
        } else if (strcmp(name, "parent-cgroup") == 0) {
            a->parent_cgroup = val;
        } else if (strcmp(name, "cgroup") == 0) {
            if (a->n_cgroups == JAIL_MAX_CGROUPS)
                return errmsg(-1, err, errlen, "at most %d --cgroup arguments", JAIL_MAX_CGROUPS);
            if (parse_cgroup(val, &a->cgroups[a->n_cgroups], err, errlen) != 0)
                return -1;
            a->n_cgroups++;
        } else if (strcmp(name, "resource-limit") == 0) {
            if (a->n_rlimits == JAIL_MAX_RLIMITS)
                return errmsg(-1, err, errlen, "at most %d --resource-limit arguments",
                              JAIL_MAX_RLIMITS);
            if (parse_rlimit(val, &a->rlimits[a->n_rlimits], err, errlen) != 0)
                return -1;
            a->n_rlimits++;
        } else if (strcmp(name, "daemonize") == 0) {
            a->daemonize = true;
        } else if (strcmp(name, "new-pid-ns") == 0) {
            a->new_pid_ns = true;
        } else {
            return errmsg(-1, err, errlen, "unknown option --%s", name);
        }
    }
    a->extra = argv + i;
    a->n_extra = argc - i;

    if (!a->id)
        return errmsg(-1, err, errlen, "--id is required");
    if (!jail_id_valid(a->id))
        return errmsg(-1, err, errlen, "--id \"%s\": 1 to 64 characters of A-Z, a-z, 0-9 and -",
                      a->id);
    if (check_path("--chroot-base-dir", a->base, err, errlen) != 0)
        return -1;
    if (strcmp(a->base, "/") == 0)
        return errmsg(-1, err, errlen, "--chroot-base-dir \"/\": must not be the root directory");
    if (a->exec_file) {
        const char *slash;
        if (check_path("--exec-file", a->exec_file, err, errlen) != 0)
            return -1;
        slash = strrchr(a->exec_file, '/');
        if (!slash[1] || strlen(slash + 1) >= sizeof(a->exec_name))
            return errmsg(-1, err, errlen, "--exec-file \"%s\": no file name", a->exec_file);
        strcpy(a->exec_name, slash + 1);
    } else if (a->cleanup) {
        strcpy(a->exec_name, "ember");
    }
    if (!a->parent_cgroup)
        a->parent_cgroup = a->exec_name;
    else if (!cgroup_name_valid(a->parent_cgroup))
        return errmsg(-1, err, errlen,
                      "--parent-cgroup \"%s\": a relative path of A-Z, a-z, 0-9, '.', '_' and '-'",
                      a->parent_cgroup);
    if (a->cleanup) {
        if (uid_s || gid_s || a->netns || a->n_cgroups || a->n_rlimits || a->daemonize ||
            a->new_pid_ns || a->n_extra || version_s)
            return errmsg(-1, err, errlen,
                          "--cleanup takes only --id, --exec-file, --chroot-base-dir and "
                          "--parent-cgroup");
        return 0;
    }

    if (!a->exec_file)
        return errmsg(-1, err, errlen, "--exec-file is required");
    if (stat(a->exec_file, &st) != 0)
        return errmsg(-1, err, errlen, "--exec-file \"%s\": %s", a->exec_file, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return errmsg(-1, err, errlen, "--exec-file \"%s\": not a regular file", a->exec_file);
    if (!(st.st_mode & 0111))
        return errmsg(-1, err, errlen, "--exec-file \"%s\": not executable", a->exec_file);
    if (!uid_s)
        return errmsg(-1, err, errlen, "--uid is required");
    if (!gid_s)
        return errmsg(-1, err, errlen, "--gid is required");
    if (parse_id("--uid", uid_s, true, &a->uid, err, errlen) != 0 ||
        parse_id("--gid", gid_s, false, &a->gid, err, errlen) != 0)
        return -1;
    if (a->netns) {
        if (check_path("--netns", a->netns, err, errlen) != 0)
            return -1;
        if (stat(a->netns, &st) != 0)
            return errmsg(-1, err, errlen, "--netns \"%s\": %s", a->netns, strerror(errno));
    }
    if (version_s) {
        if (strcmp(version_s, "1") == 0)
            a->cgroup_version = 1;
        else if (strcmp(version_s, "2") == 0)
            a->cgroup_version = 2;
        else
            return errmsg(-1, err, errlen, "--cgroup-version \"%s\": must be 1 or 2", version_s);
    }
    for (size_t k = 0; k < a->n_cgroups; k++)
        if (a->cgroup_version == 1 && strcmp(a->cgroups[k].ctrl, "cgroup") == 0)
            return errmsg(-1, err, errlen, "--cgroup \"%s\": a cgroup v2 core file with version 1",
                          a->cgroups[k].file);
    return 0;
}
