/* rootfs_stage.c: the staging tree: untrusted entries become files here.
 *
 * ember-rootfs never writes where an archive says: it writes beneath one
 * private directory (stage_open, mkdtemp), and every path is walked one
 * component at a time with openat(O_NOFOLLOW | O_DIRECTORY), so neither a
 * ".." nor a symlink planted by an earlier entry can lead a later one out.
 * The checks, each failing with a message that names the entry:
 *  - paths: no absolute paths, no ".." components, components of at most
 *    255 bytes, paths of at most 4095, at most 256 levels;
 *  - types: regular files, directories, symlinks and hardlinks only (device
 *    nodes, FIFOs and sockets have no place in a function's image);
 *  - symlinks: a relative target that climbs above the tree's root is
 *    refused; absolute targets are kept (inside the guest they resolve
 *    within the image's root, as in a container);
 *  - hardlinks: the target must be an entry already staged, not a directory;
 *  - sizes and counts: at most max_bytes of file data and max_entries
 *    entries, and an archive that expands more than max_ratio times the bytes
 *    read (past the first 64 MiB) is an archive bomb.
 * OCI layers (layer = true) honour whiteouts: ".wh.NAME" removes NAME and
 * ".wh..wh..opq" empties its directory, both of what the layers below put
 * there (OCI image spec, layer.md "Whiteouts"). A layer is read twice: the
 * first pass applies its whiteouts, the second its entries, so a whiteout
 * never removes what its own layer adds.
 *
 * Owners are kept only with --keep-owners (which needs root); times and
 * xattrs are not kept at all: the image builders set them (rootfs_image.c).
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rootfs-builder/rootfs_stage.h"

#define NAME_MAX_LEN 255
#define PATH_MAX_LEN 4095
#define DEPTH_MAX    256
#define BOMB_FLOOR   (64ull << 20) /* below this, any ratio is fine */

static int fail(struct stage *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct stage *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
    return -1;
}

int stage_clean_path(const char *in, char *out, size_t outlen, char *why, size_t whylen)
{
    size_t o = 0, depth = 0;
    const char *p = in;
    if (in[0] == '/') {
        snprintf(why, whylen, "absolute path");
        return -1;
    }
    while (*p) {
        while (*p == '/')
            p++;
        const char *c = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - c);
        if (n == 0 || (n == 1 && c[0] == '.'))
            continue;
        if (n == 2 && c[0] == '.' && c[1] == '.') {
            snprintf(why, whylen, "path has a '..' component");
            return -1;
        }
        if (n > NAME_MAX_LEN) {
            snprintf(why, whylen, "a path component is longer than %d bytes", NAME_MAX_LEN);
            return -1;
        }
        if (++depth > DEPTH_MAX) {
            snprintf(why, whylen, "path is deeper than %d levels", DEPTH_MAX);
            return -1;
        }
        if (o + (o ? 1 : 0) + n > PATH_MAX_LEN || o + n + 2 > outlen) {
            snprintf(why, whylen, "path is longer than %d bytes", PATH_MAX_LEN);
            return -1;
        }
        if (o)
            out[o++] = '/';
        memcpy(out + o, c, n);
        o += n;
    }
    out[o] = '\0';
    return 0;
}

/* Whether a relative symlink at path (clean, relative) with target climbs
 * above the root. */
static bool link_escapes(const char *path, const char *target)
{
    if (target[0] == '/')
        return false;
    long depth = 0;
    for (const char *p = path; *p; p++)
        if (*p == '/')
            depth++;
    const char *p = target;
    while (*p) {
        while (*p == '/')
            p++;
        const char *c = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - c);
        if (n == 2 && c[0] == '.' && c[1] == '.') {
            if (--depth < 0)
                return true;
        } else if (n && !(n == 1 && c[0] == '.')) {
            depth++;
        }
    }
    return false;
}

/* Removes name in dirfd, recursively for a directory (made writable first:
 * a read-only directory from an archive must still go). */
static int remove_at(int dirfd, const char *name)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dirfd, name, 0);
    fchmodat(dirfd, name, 0700, 0);
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (remove_at(fd, de->d_name) < 0)
            rc = -1;
    }
    closedir(d);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
        rc = -1;
    return rc;
}

int stage_open(struct stage *s, const char *tmpdir)
{
    if (!tmpdir)
        tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    s->dirfd = -1;
    if ((size_t)snprintf(s->dir, sizeof(s->dir), "%s/ember-rootfs.XXXXXX", tmpdir) >=
        sizeof(s->dir))
        return fail(s, "temporary directory name too long");
    if (!mkdtemp(s->dir)) {
        int e = errno;
        s->dir[0] = '\0';
        return fail(s, "%s: cannot create a temporary directory: %s", tmpdir, strerror(e));
    }
    s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0)
        return fail(s, "%s: %s", s->dir, strerror(errno));
    fchmod(s->dirfd, 0755);
    return 0;
}

void stage_close(struct stage *s)
{
    if (s->dirfd >= 0)
        close(s->dirfd);
    s->dirfd = -1;
    if (s->dir[0]) {
        char *slash = strrchr(s->dir, '/');
        int parent = open(slash == s->dir ? "/" : (*slash = '\0', s->dir), O_RDONLY | O_DIRECTORY);
        if (slash != s->dir)
            *slash = '/';
        if (parent >= 0) {
            remove_at(parent, slash + 1);
            close(parent);
        }
        s->dir[0] = '\0';
    }
}

static void progress(struct stage *s, bool last)
{
    static struct timespec prev;
    struct timespec now;
    if (!s->progress)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double dt = (double)(now.tv_sec - prev.tv_sec) + (double)(now.tv_nsec - prev.tv_nsec) / 1e9;
    if (!last && dt < 0.5)
        return;
    prev = now;
    fprintf(stderr, "\rember-rootfs: staged %llu entries, %.1f MiB%s",
            (unsigned long long)s->entries, (double)s->bytes / (1 << 20), last ? "\n" : "");
}

static int count_entry(struct stage *s, const char *name)
{
    if (++s->entries > s->lim.max_entries)
        return fail(s, "entry '%s': more than %llu entries (--max-entries)", name,
                    (unsigned long long)s->lim.max_entries);
    progress(s, false);
    return 0;
}

/* Opens the directory that will hold path's last component, creating
 * missing parents (mode 0755, as tar does); *base points into path at the
 * last component. The walk never follows a symlink. */
static int open_parent(struct stage *s, const char *path, const char **base)
{
    int fd = dup(s->dirfd);
    const char *p = path;
    char comp[NAME_MAX_LEN + 1];
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash)
            break;
        size_t n = (size_t)(slash - p);
        memcpy(comp, p, n);
        comp[n] = '\0';
        int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT) {
            char sofar[PATH_MAX_LEN + 1];
            snprintf(sofar, sizeof(sofar), "%.*s", (int)(slash - path), path);
            if (count_entry(s, sofar) < 0) {
                close(fd);
                return -1;
            }
            if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
                int e = errno;
                close(fd);
                return fail(s, "entry '%s': %s", path, strerror(e));
            }
            next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (next < 0) {
            int e = errno;
            close(fd);
            if (e == ELOOP || e == ENOTDIR)
                return fail(s, "entry '%s': '%.*s' is a symlink or not a directory", path,
                            (int)(slash - path), path);
            return fail(s, "entry '%s': %s", path, strerror(e));
        }
        close(fd);
        fd = next;
        p = slash + 1;
    }
    *base = p;
    return fd;
}

static int set_owner(struct stage *s, int pfd, const char *base, const char *path, uid_t uid,
                     gid_t gid)
{
    if (!s->keep_owners)
        return 0;
    if (fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
        return fail(s, "entry '%s': cannot keep owner %u:%u: %s%s", path, (unsigned)uid,
                    (unsigned)gid, strerror(errno),
                    errno == EPERM ? " (--keep-owners needs root)" : "");
    return 0;
}

/* The mode a node gets in the stage: its own as root; without root the
 * owner must keep reading (and for directories, writing) what it stages, so
 * those bits are added (README.md: Limits). */
static mode_t stage_mode(mode_t mode, mode_t owner_needs)
{
    return (mode & 07777) | (geteuid() == 0 ? 0 : owner_needs);
}

/* What an entry is, whatever its source. */
struct entry {
    const char *path; /* clean, relative; "" is the root */
    mode_t mode;      /* S_IFMT | permissions */
    uid_t uid;
    gid_t gid;
    uint64_t size;
    const char *link;     /* symlink target */
    const char *hardlink; /* clean path of the hardlink's target */
};

/* Creates the node for e; a regular file is left open for its data
 * (*out_fd). Whatever was at the path before is replaced, as tar does. */
static int put_entry(struct stage *s, const struct entry *e, int *out_fd)
{
    const char *base;
    int rc = -1;
    *out_fd = -1;
    if (!e->path[0]) { /* the root: only a directory, only its mode */
        if (!S_ISDIR(e->mode))
            return fail(s, "entry '.': the root must be a directory");
        fchmod(s->dirfd, stage_mode(e->mode, 0700));
        return set_owner(s, s->dirfd, ".", ".", e->uid, e->gid);
    }
    if (count_entry(s, e->path) < 0)
        return -1;
    int pfd = open_parent(s, e->path, &base);
    if (pfd < 0)
        return -1;
    struct stat st;
    bool exists = fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (S_ISDIR(e->mode) && !e->hardlink) {
        if (exists && !S_ISDIR(st.st_mode))
            remove_at(pfd, base);
        if ((!exists || !S_ISDIR(st.st_mode)) && mkdirat(pfd, base, 0700) < 0) {
            fail(s, "entry '%s': %s", e->path, strerror(errno));
            goto out;
        }
        fchmodat(pfd, base, stage_mode(e->mode, 0700), 0);
        rc = set_owner(s, pfd, base, e->path, e->uid, e->gid);
        goto out;
    }
    if (exists)
        remove_at(pfd, base);
    if (e->hardlink) {
        const char *tbase;
        int tfd = open_parent(s, e->hardlink, &tbase);
        if (tfd < 0)
            goto out;
        if (fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            fail(s, "entry '%s': hardlink to '%s', which is not in the tree", e->path, e->hardlink);
        } else if (S_ISDIR(st.st_mode)) {
            fail(s, "entry '%s': hardlink to the directory '%s'", e->path, e->hardlink);
        } else if (linkat(tfd, tbase, pfd, base, 0) < 0) {
            fail(s, "entry '%s': hardlink to '%s': %s", e->path, e->hardlink, strerror(errno));
        } else {
            rc = 0;
        }
        close(tfd);
        goto out;
    }
    if (S_ISLNK(e->mode)) {
        if (!e->link || !e->link[0] || strlen(e->link) > PATH_MAX_LEN) {
            fail(s, "entry '%s': symlink with an empty or too long target", e->path);
            goto out;
        }
        if (link_escapes(e->path, e->link)) {
            fail(s, "entry '%s': symlink target '%s' leads out of the tree", e->path, e->link);
            goto out;
        }
        if (symlinkat(e->link, pfd, base) < 0) {
            fail(s, "entry '%s': %s", e->path, strerror(errno));
            goto out;
        }
        rc = set_owner(s, pfd, base, e->path, e->uid, e->gid);
        goto out;
    }
    if (!S_ISREG(e->mode)) {
        const char *what = S_ISCHR(e->mode) || S_ISBLK(e->mode) ? "a device node"
                           : S_ISFIFO(e->mode)                  ? "a FIFO"
                           : S_ISSOCK(e->mode)                  ? "a socket"
                                                                : "of an unknown type";
        fail(s, "entry '%s': is %s (not allowed in an image)", e->path, what);
        goto out;
    }
    if (e->size > s->lim.max_bytes - s->bytes) {
        fail(s, "entry '%s': %llu bytes would take the tree past %llu bytes (--max-bytes)", e->path,
             (unsigned long long)e->size, (unsigned long long)s->lim.max_bytes);
        goto out;
    }
    int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        fail(s, "entry '%s': %s", e->path, strerror(errno));
        goto out;
    }
    fchmod(fd, stage_mode(e->mode, 0600));
    if (set_owner(s, pfd, base, e->path, e->uid, e->gid) < 0) {
        close(fd);
        goto out;
    }
    *out_fd = fd;
    rc = 0;
out:
    close(pfd);
    return rc;
}

/* ---- directories ---- */

struct link_seen {
    dev_t dev;
    ino_t ino;
    char *path;
};

struct tree_walk {
    struct stage *s;
    struct link_seen *seen;
    size_t nseen, capseen;
};

static int copy_data(struct stage *s, const char *path, int in, int out, uint64_t size)
{
    uint64_t done = 0;
    while (done < size) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, size - done, 0);
        if (n < 0 &&
            (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
            char buf[65536];
            n = read(in, buf, sizeof(buf));
            if (n > 0 && write(out, buf, (size_t)n) != n)
                return fail(s, "entry '%s': write: %s", path, strerror(errno));
        }
        if (n < 0)
            return fail(s, "entry '%s': %s", path, strerror(errno));
        if (n == 0)
            return fail(s, "entry '%s': file shrank while being copied", path);
        done += (uint64_t)n;
    }
    s->bytes += size;
    return 0;
}

static int walk_dir(struct tree_walk *w, int srcfd, char *path, size_t plen)
{
    struct stage *s = w->s;
    DIR *d = fdopendir(srcfd);
    if (!d) {
        close(srcfd);
        return fail(s, "entry '%s': %s", path[0] ? path : ".", strerror(errno));
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        size_t n = strlen(de->d_name);
        if (plen + 1 + n > PATH_MAX_LEN) {
            rc = fail(s, "entry '%s/%s': path is longer than %d bytes", path, de->d_name,
                      PATH_MAX_LEN);
            break;
        }
        size_t nlen = plen ? plen + 1 + n : n;
        if (plen)
            path[plen] = '/';
        memcpy(path + (plen ? plen + 1 : 0), de->d_name, n + 1);
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = fail(s, "entry '%s': %s", path, strerror(errno));
            break;
        }
        struct entry e = {.path = path,
                          .mode = st.st_mode,
                          .uid = st.st_uid,
                          .gid = st.st_gid,
                          .size = (uint64_t)st.st_size};
        char target[PATH_MAX_LEN + 1];
        if (S_ISLNK(st.st_mode)) {
            ssize_t l = readlinkat(dirfd(d), de->d_name, target, sizeof(target));
            if (l < 0 || l > PATH_MAX_LEN) {
                rc = fail(s, "entry '%s': unreadable or too long symlink", path);
                break;
            }
            target[l] = '\0';
            e.link = target;
        }
        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
            for (size_t i = 0; i < w->nseen; i++)
                if (w->seen[i].dev == st.st_dev && w->seen[i].ino == st.st_ino)
                    e.hardlink = w->seen[i].path;
            if (!e.hardlink) {
                if (w->nseen == w->capseen) {
                    size_t cap = w->capseen ? w->capseen * 2 : 64;
                    struct link_seen *ns = realloc(w->seen, cap * sizeof(*w->seen));
                    if (!ns) {
                        closedir(d);
                        return fail(s, "out of memory");
                    }
                    w->seen = ns;
                    w->capseen = cap;
                }
                w->seen[w->nseen++] = (struct link_seen){st.st_dev, st.st_ino, strdup(path)};
            }
        }
        int out;
        rc = put_entry(s, &e, &out);
        if (rc == 0 && out >= 0) {
            int in = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (in < 0)
                rc = fail(s, "entry '%s': %s", path, strerror(errno));
            else
                rc = copy_data(s, path, in, out, e.size);
            if (in >= 0)
                close(in);
            close(out);
        }
        if (rc == 0 && S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                rc = fail(s, "entry '%s': %s", path, strerror(errno));
            else
                rc = walk_dir(w, sub, path, nlen);
        }
        path[plen] = '\0';
    }
    closedir(d);
    return rc;
}

int stage_add_tree(struct stage *s, const char *src)
{
    int fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail(s, "%s: %s", src, strerror(errno));
    struct stat st;
    fstat(fd, &st);
    struct entry root = {.path = "", .mode = st.st_mode, .uid = st.st_uid, .gid = st.st_gid};
    int dummy;
    if (put_entry(s, &root, &dummy) < 0) {
        close(fd);
        return -1;
    }
    struct tree_walk w = {.s = s};
    char path[PATH_MAX_LEN + 2] = "";
    int rc = walk_dir(&w, fd, path, 0);
    for (size_t i = 0; i < w.nseen; i++)
        free(w.seen[i].path);
    free(w.seen);
    progress(s, true);
    return rc;
}

/* ---- archives ---- */

static struct archive *archive_open(const char *path, char *err, size_t errlen)
{
    struct archive *a = archive_read_new();
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_cpio(a);
    archive_read_support_format_zip(a);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        snprintf(err, errlen, "%s: %s", path, archive_error_string(a));
        archive_read_free(a);
        return NULL;
    }
    return a;
}

int stage_archive_has(const char *path, const char *name, bool *has, char *err, size_t errlen)
{
    struct archive *a = archive_open(path, err, errlen);
    struct archive_entry *ae;
    int r;
    *has = false;
    if (!a)
        return -1;
    while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
        char clean[PATH_MAX_LEN + 2], why[128];
        const char *p = archive_entry_pathname(ae);
        if (p && stage_clean_path(p, clean, sizeof(clean), why, sizeof(why)) == 0 &&
            !strcmp(clean, name)) {
            *has = true;
            break;
        }
    }
    if (r != ARCHIVE_OK && r != ARCHIVE_EOF) {
        snprintf(err, errlen, "%s: %s", path, archive_error_string(a));
        archive_read_free(a);
        return -1;
    }
    archive_read_free(a);
    return 0;
}

/* Pass 1 of a layer: its whiteouts, applied to the layers below. */
static int whiteout(struct stage *s, const char *clean)
{
    const char *slash = strrchr(clean, '/');
    const char *bn = slash ? slash + 1 : clean;
    char dir[PATH_MAX_LEN + 2];
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - clean) : 0, clean);
    const char *base;
    char probe[PATH_MAX_LEN + 4];
    snprintf(probe, sizeof(probe), "%s%sx", dir, dir[0] ? "/" : "");
    int pfd = open_parent(s, probe, &base); /* the directory itself, created if absent */
    if (pfd < 0)
        return -1;
    int rc = 0;
    if (!strcmp(bn, ".wh..wh..opq")) {
        DIR *d = fdopendir(dup(pfd));
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL)
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                rc |= remove_at(pfd, de->d_name);
        if (d)
            closedir(d);
    } else {
        rc = remove_at(pfd, bn + 4);
    }
    close(pfd);
    return rc < 0 ? fail(s, "entry '%s': cannot apply the whiteout: %s", clean, strerror(errno))
                  : 0;
}

static int bad_entry(struct stage *s, const char *raw, const char *why)
{
    return fail(s, "entry '%s': %s", raw, why);
}

static int archive_pass(struct stage *s, const char *path, bool layer, bool whiteouts)
{
    struct archive *a = archive_open(path, s->err, sizeof(s->err));
    struct archive_entry *ae;
    int r, rc = 0;
    if (!a)
        return -1;
    while (rc == 0 && (r = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
        char clean[PATH_MAX_LEN + 2], hl[PATH_MAX_LEN + 2], why[128];
        const char *raw = archive_entry_pathname(ae);
        if (!raw) {
            rc = fail(s, "an entry has a name that cannot be decoded");
            break;
        }
        if (stage_clean_path(raw, clean, sizeof(clean), why, sizeof(why)) < 0) {
            rc = bad_entry(s, raw, why);
            break;
        }
        const char *bn = strrchr(clean, '/') ? strrchr(clean, '/') + 1 : clean;
        bool wh = layer && !strncmp(bn, ".wh.", 4);
        if (whiteouts) {
            if (wh)
                rc = whiteout(s, clean);
            continue;
        }
        if (wh)
            continue;
        struct entry e = {.path = clean,
                          .mode = archive_entry_mode(ae),
                          .uid = (uid_t)archive_entry_uid(ae),
                          .gid = (gid_t)archive_entry_gid(ae),
                          .size =
                              archive_entry_size_is_set(ae) ? (uint64_t)archive_entry_size(ae) : 0,
                          .link = archive_entry_symlink(ae)};
        const char *h = archive_entry_hardlink(ae);
        if (h) {
            if (stage_clean_path(h, hl, sizeof(hl), why, sizeof(why)) < 0) {
                char m[200];
                snprintf(m, sizeof(m), "hardlink target '%s': %s", h, why);
                rc = bad_entry(s, raw, m);
                break;
            }
            e.hardlink = hl;
        }
        int fd;
        rc = put_entry(s, &e, &fd);
        if (rc < 0 || fd < 0)
            continue;
        /* Data: block by block (sparse holes stay holes), never past the
         * declared size, checking the totals as it grows. */
        const void *buf;
        size_t n;
        la_int64_t off;
        uint64_t written = 0;
        while ((r = archive_read_data_block(a, &buf, &n, &off)) == ARCHIVE_OK) {
            if (off < 0 || (uint64_t)off + n > e.size) {
                rc = bad_entry(s, raw, "data beyond the entry's declared size");
                break;
            }
            if (pwrite(fd, buf, n, off) != (ssize_t)n) {
                rc = fail(s, "entry '%s': write: %s", raw, strerror(errno));
                break;
            }
            written += n;
            uint64_t in = (uint64_t)archive_filter_bytes(a, -1);
            if (s->bytes + written > BOMB_FLOOR && in &&
                (s->bytes + written) / in > s->lim.max_ratio) {
                rc = fail(s,
                          "entry '%s': the archive expands more than %llu times (an archive "
                          "bomb?; --max-ratio)",
                          raw, (unsigned long long)s->lim.max_ratio);
                break;
            }
        }
        if (rc == 0 && r != ARCHIVE_EOF)
            rc = fail(s, "entry '%s': %s", raw, archive_error_string(a));
        if (rc == 0 && ftruncate(fd, (off_t)e.size) < 0)
            rc = fail(s, "entry '%s': %s", raw, strerror(errno));
        s->bytes += e.size;
        close(fd);
    }
    if (rc == 0 && r != ARCHIVE_EOF)
        rc = fail(s, "%s: %s", path, archive_error_string(a));
    archive_read_free(a);
    return rc;
}

int stage_add_archive(struct stage *s, const char *path, bool layer)
{
    int rc = 0;
    if (layer)
        rc = archive_pass(s, path, true, true);
    if (rc == 0)
        rc = archive_pass(s, path, layer, false);
    progress(s, true);
    return rc;
}
