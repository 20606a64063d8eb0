/* jailer_cgroup.c: create, join and remove the jail's cgroups (see
 * jailer_cgroup.h). */
#include "jailer/jailer_cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jailer/jailer_fs.h"
#include "jailer/jailer_steps.h"

#define MAX_MOUNTS 64

struct cg_mount {
    char dir[512];
    char opts[512]; /* v1: the mount options, which list the controllers */
    int version;
};

/* /proc/mounts escapes ' ', '\t', '\n' and '\\' as octal \ooo. */
static void unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

static int read_mounts(struct cg_mount *m, int max)
{
    FILE *f = fopen("/proc/mounts", "re");
    char line[2048];
    int n = 0;

    if (!f)
        return -1;
    while (n < max && fgets(line, sizeof(line), f)) {
        char *save = NULL;
        strtok_r(line, " ", &save);
        char *dir = strtok_r(NULL, " ", &save);
        char *type = strtok_r(NULL, " ", &save);
        char *opts = strtok_r(NULL, " ", &save);
        if (!dir || !type || !opts)
            continue;
        if (strcmp(type, "cgroup") != 0 && strcmp(type, "cgroup2") != 0)
            continue;
        unescape(dir);
        snprintf(m[n].dir, sizeof(m[n].dir), "%s", dir);
        snprintf(m[n].opts, sizeof(m[n].opts), "%s", opts);
        m[n].version = strcmp(type, "cgroup2") == 0 ? 2 : 1;
        n++;
    }
    fclose(f);
    return n;
}

static bool opts_have(const char *opts, const char *ctrl)
{
    size_t n = strlen(ctrl);
    for (const char *p = opts; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, ctrl, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

/* The mount of ctrl in hierarchy version v (v2: the cgroup2 mount). */
static const struct cg_mount *find_mount(const struct cg_mount *m, int n, int v, const char *ctrl)
{
    for (int i = 0; i < n; i++) {
        if (m[i].version != v)
            continue;
        if (v == 2 || opts_have(m[i].opts, ctrl))
            return &m[i];
    }
    return NULL;
}

static int read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

static int write_str(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    size_t n = strlen(s);
    ssize_t w;
    int e = 0;

    if (fd < 0)
        return errno;
    w = write(fd, s, n);
    if (w != (ssize_t)n)
        e = w < 0 ? errno : EIO;
    close(fd);
    return e;
}

/* Is ctrl a word of the space-separated list? */
static bool words_have(const char *list, const char *ctrl)
{
    size_t n = strlen(ctrl);
    for (const char *p = list; (p = strstr(p, ctrl)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0'))
            return true;
    return false;
}

int jail_cgroups_check(const struct jail_args *a, char *err, size_t errlen)
{
    struct cg_mount m[MAX_MOUNTS];
    int n;

    if (!a->n_cgroups)
        return 0;
    n = read_mounts(m, MAX_MOUNTS);
    if (n < 0) {
        snprintf(err, errlen, "/proc/mounts: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < a->n_cgroups; i++) {
        const struct jail_cgroup_arg *c = &a->cgroups[i];
        const struct cg_mount *cm = find_mount(m, n, a->cgroup_version, c->ctrl);
        char path[600], list[1024];

        if (!cm) {
            snprintf(err, errlen, "--cgroup \"%s\": no cgroup v%d hierarchy %s in /proc/mounts",
                     c->file, a->cgroup_version,
                     a->cgroup_version == 1 ? "has that controller" : "is mounted");
            return -1;
        }
        if (a->cgroup_version == 2 && strcmp(c->ctrl, "cgroup") != 0) {
            snprintf(path, sizeof(path), "%s/cgroup.controllers", cm->dir);
            if (read_small(path, list, sizeof(list)) != 0 || !words_have(list, c->ctrl)) {
                snprintf(
                    err, errlen,
                    "--cgroup \"%s\": controller %s is not available in %s (cgroup.controllers)",
                    c->file, c->ctrl, cm->dir);
                return -1;
            }
        }
    }
    return 0;
}

/* cpuset v1 refuses tasks until cpus and mems are set: copy the parent's. */
static int inherit_cpuset(const char *dir)
{
    static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
    char parent[4096], path[4200], val[4096];

    snprintf(parent, sizeof(parent), "%s", dir);
    *strrchr(parent, '/') = '\0';
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        if (read_small(path, val, sizeof(val)) == 0 && val[0] && val[0] != '\n')
            continue;
        snprintf(path, sizeof(path), "%s/%s", parent, files[i]);
        if (read_small(path, val, sizeof(val)) != 0)
            return errno;
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        int e = write_str(path, val);
        if (e)
            return e;
    }
    return 0;
}

/* Creates mount/rel level by level; with cpuset, each new level inherits.
 * A concurrent --cleanup may remove an empty parent between two mkdirs:
 * retried. */
static void make_levels(const char *mnt, const char *rel, bool cpuset)
{
    char path[4096];

    for (int attempt = 0;; attempt++) {
        size_t base = (size_t)snprintf(path, sizeof(path), "%s/", mnt);
        int e = 0;

        snprintf(path + base, sizeof(path) - base, "%s", rel);
        for (char *p = path + base;; p++) {
            if (*p != '/' && *p != '\0')
                continue;
            char saved = *p;
            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST)
                e = errno;
            else if (cpuset)
                e = inherit_cpuset(path);
            *p = saved;
            if (e || !saved)
                break;
        }
        if (!e)
            return;
        if (e != ENOENT || attempt == 20)
            jail_fail(path, e);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* v2: "+ctrl" into cgroup.subtree_control of the mount and of every level of
 * parent, so <parent>/<id> gets the controller's files. */
static void enable_v2(const char *mnt, const char *parent, const char *ctrl)
{
    char rel[600], path[4096], plus[80];
    int e;

    snprintf(plus, sizeof(plus), "+%s", ctrl);
    snprintf(path, sizeof(path), "%s/cgroup.subtree_control", mnt);
    if ((e = write_str(path, plus)) != 0)
        jail_fail(path, e);
    snprintf(rel, sizeof(rel), "%s", parent);
    for (char *p = rel;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        snprintf(path, sizeof(path), "%s/%s/cgroup.subtree_control", mnt, rel);
        if ((e = write_str(path, plus)) != 0)
            jail_fail(path, e);
        *p = saved;
        if (!saved)
            break;
    }
}

void jail_cgroups_join(const struct jail_args *a)
{
    struct cg_mount m[MAX_MOUNTS];
    const struct cg_mount *used[JAIL_MAX_CGROUPS];
    size_t n_used = 0;
    char rel[1024], pid[32];
    int n = read_mounts(m, MAX_MOUNTS);

    if (!a->n_cgroups)
        return;
    if (n < 0)
        jail_fail("/proc/mounts", errno);
    snprintf(rel, sizeof(rel), "%s/%s", a->parent_cgroup, a->id);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());

    /* Each hierarchy once, whatever number of files it gets. */
    for (size_t i = 0; i < a->n_cgroups; i++) {
        const struct cg_mount *cm = find_mount(m, n, a->cgroup_version, a->cgroups[i].ctrl);
        bool seen = false;
        if (!cm)
            jail_failf(a->cgroups[i].file, "no cgroup v%d hierarchy for it", a->cgroup_version);
        for (size_t k = 0; k < n_used; k++)
            seen |= used[k] == cm;
        if (!seen)
            used[n_used++] = cm;
    }
    for (size_t k = 0; k < n_used; k++) {
        const struct cg_mount *cm = used[k];
        make_levels(cm->dir, rel, cm->version == 1 && opts_have(cm->opts, "cpuset"));
        if (cm->version == 2)
            for (size_t i = 0; i < a->n_cgroups; i++)
                if (strcmp(a->cgroups[i].ctrl, "cgroup") != 0)
                    enable_v2(cm->dir, a->parent_cgroup, a->cgroups[i].ctrl);
    }
    for (size_t i = 0; i < a->n_cgroups; i++) {
        const struct cg_mount *cm = find_mount(m, n, a->cgroup_version, a->cgroups[i].ctrl);
        char path[4096];
        int e;

        snprintf(path, sizeof(path), "%s/%s/%s", cm->dir, rel, a->cgroups[i].file);
        if ((e = write_str(path, a->cgroups[i].value)) != 0)
            jail_fail(path, e);
    }
    for (size_t k = 0; k < n_used; k++) {
        char path[4096];
        int e;

        snprintf(path, sizeof(path), "%s/%s/cgroup.procs", used[k]->dir, rel);
        if ((e = write_str(path, pid)) != 0)
            jail_fail(path, e);
    }
}

int jail_cgroups_remove(const char *parent, const char *id, char *failed, size_t failed_len)
{
    struct cg_mount m[MAX_MOUNTS];
    int n = read_mounts(m, MAX_MOUNTS);
    int first_err = 0;

    if (n < 0) {
        snprintf(failed, failed_len, "/proc/mounts");
        return errno;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        int e = 0;

        if (snprintf(path, sizeof(path), "%s/%s/%s", m[i].dir, parent, id) >= (int)sizeof(path))
            continue; /* longer than any path the jailer creates */
        /* A cgroup whose last task just exited can stay busy for a moment. */
        for (int attempt = 0; attempt < 50; attempt++) {
            e = rmdir(path) == 0 ? 0 : errno;
            if (e != EBUSY)
                break;
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
        if (e && e != ENOENT && !first_err) {
            first_err = e;
            snprintf(failed, failed_len, "%s", path);
        }
    }
    return first_err;
}
