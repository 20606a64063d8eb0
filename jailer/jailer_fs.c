/* jailer_fs.c: directories, copies and removal for the jail (see
 * jailer_fs.h). */
#include "jailer/jailer_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void set_failed(char *failed, size_t len, const char *path)
{
    if (failed)
        snprintf(failed, len, "%s", path);
}

int jail_mkdir_p(const char *path, mode_t mode, char *failed, size_t failed_len)
{
    char buf[4096];
    size_t n = strlen(path);

    if (n >= sizeof(buf)) {
        set_failed(failed, failed_len, path);
        return ENAMETOOLONG;
    }
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST) {
            int e = errno;
            set_failed(failed, failed_len, buf);
            return e;
        }
        *p = saved;
        if (!saved)
            break;
    }
    /* The last component must be a directory, not whatever held the name. */
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        set_failed(failed, failed_len, path);
        return errno ? errno : ENOTDIR;
    }
    return 0;
}

int jail_copy_file(const char *src, const char *dst, mode_t mode, const char **which)
{
    int in, out, e = 0;
    struct stat st;

    *which = src;
    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return errno;
    if (fstat(in, &st) != 0) {
        e = errno;
        close(in);
        return e;
    }
    *which = dst;
    out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
    if (out < 0) {
        e = errno;
        close(in);
        return e;
    }
    /* copy_file_range shares extents where the file system can; read/write
     * is the fallback across file systems that cannot. */
    for (off_t left = st.st_size; left > 0;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
        if (n < 0 &&
            (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
            char b[65536];
            n = read(in, b, sizeof(b));
            if (n > 0 && write(out, b, (size_t)n) != n)
                n = -1;
        }
        if (n < 0) {
            e = errno;
            break;
        }
        if (n == 0)
            break;
        left -= n;
    }
    if (!e && fchmod(out, mode) != 0)
        e = errno;
    if (close(out) != 0 && !e)
        e = errno;
    close(in);
    return e;
}

/* Empties the directory dfd (on device dev); path is for messages. */
static int remove_contents(int dfd, dev_t dev, const char *path, char *failed, size_t len)
{
    DIR *d = fdopendir(dfd);
    struct dirent *de;
    int e = 0;

    if (!d) {
        e = errno;
        close(dfd);
        set_failed(failed, len, path);
        return e;
    }
    while (!e && (errno = 0, de = readdir(d)) != NULL) {
        char child[4096];
        struct stat st;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            e = errno;
            set_failed(failed, len, child);
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            if (st.st_dev != dev) {
                e = EBUSY; /* a mount point: never remove what lies beyond */
                set_failed(failed, len, child);
                break;
            }
            int cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (cfd < 0) {
                e = errno;
                set_failed(failed, len, child);
                break;
            }
            e = remove_contents(cfd, dev, child, failed, len);
            if (!e && unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) != 0) {
                e = errno;
                set_failed(failed, len, child);
            }
        } else if (unlinkat(dirfd(d), de->d_name, 0) != 0) {
            e = errno;
            set_failed(failed, len, child);
        }
    }
    if (!e && errno) {
        e = errno;
        set_failed(failed, len, path);
    }
    closedir(d);
    return e;
}

int jail_remove_tree(const char *path, char *failed, size_t len)
{
    struct stat st;
    int fd, e;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        e = errno;
        set_failed(failed, len, path);
        return e;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) != 0) {
            e = errno;
            set_failed(failed, len, path);
            return e;
        }
        return 0;
    }
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        set_failed(failed, len, path);
        return e;
    }
    e = remove_contents(fd, st.st_dev, path, failed, len);
    if (e)
        return e;
    if (rmdir(path) != 0) {
        e = errno;
        set_failed(failed, len, path);
        return e;
    }
    return 0;
}
