/* fs_vfs.h: the SDK's file-system layer, between the path system calls and
 * the file systems (see fs_vfs.c).
 *
 * A node is a file system and a 64-bit id that file system gives meaning to
 * (an EROFS nid, a tmpfs node's address, a /dev entry). A file system is a
 * table of operations; the ones it lacks answer what Linux answers on a
 * file system that cannot do them (EROFS for the writes on a read-only
 * one). All return 0 / a count, or -errno.
 */
#ifndef EMBER_FS_VFS_H
#define EMBER_FS_VFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct stat;
struct ember_syscall_frame;

/* readdir's callback: 0 to go on, else stop before consuming the entry. */
typedef int (*vfs_emit_fn)(void *arg, const char *name, size_t len, uint64_t ino, unsigned dtype,
                           uint64_t next_cookie);

struct vfs_fs {
    const char *name;
    uint64_t dev; /* st_dev */
    int (*lookup)(uint64_t dir, const char *name, size_t len, uint64_t *out);
    int (*stat)(uint64_t id, struct stat *st);
    long (*readlink)(uint64_t id, char *buf, size_t len);
    long (*pread)(uint64_t id, void *buf, size_t len, uint64_t off);
    int (*readdir)(uint64_t dir, uint64_t *cookie, vfs_emit_fn emit, void *arg);
    /* A node that opens as something else (a /dev entry): an fd or -errno. */
    long (*open)(uint64_t id, int flags);
    /* Writes (NULL: EROFS). */
    long (*pwrite)(uint64_t id, const void *buf, size_t len, uint64_t off);
    int (*create)(uint64_t dir, const char *name, size_t len, mode_t mode, uint64_t *out);
    int (*unlink)(uint64_t dir, const char *name, size_t len, int rmdir);
    int (*rename)(uint64_t odir, const char *oname, size_t olen, uint64_t ndir, const char *nname,
                  size_t nlen, int noreplace);
    int (*truncate)(uint64_t id, uint64_t size);
    int (*link)(uint64_t id, uint64_t dir, const char *name, size_t len);
    int (*setattr)(uint64_t id, int has_mode, mode_t mode, const int64_t *atime_ns,
                   const int64_t *mtime_ns);
    /* An open file holds its node (tmpfs keeps an unlinked file's data
     * until the last close). */
    void (*hold)(uint64_t id, int delta);
};

struct vfs_node {
    const struct vfs_fs *fs;
    uint64_t id;
};

/* The file systems (fs_erofs_root.c, fs_tmpfs.c, fs_dev.c). */
/* Mounts the root drive's EROFS image; 0 and *root, or -errno (the reason
 * is printed on the console). */
int fs_root_mount(unsigned drive, struct vfs_node *root);
extern const struct vfs_fs fs_tmpfs;
uint64_t fs_tmpfs_root(void); /* the id of /tmp's root, created on first use */
extern const struct vfs_fs fs_dev;
#define FS_DEV_ROOT 0u
/* fs_etc.c: /etc/resolv.conf where the image has none. */
extern const struct vfs_fs fs_etc;
#define FS_ETC_DIR    0u
#define FS_ETC_RESOLV 1u
/* After a lookup of name found nothing in "/" (root) or in the image's
 * "/etc" (image_etc): the synthesized node, or -ENOENT. */
int fs_etc_fallback(bool root, bool image_etc, const char *name, size_t len, uint64_t *out);

/* Time for tmpfs's inodes: CLOCK_REALTIME in ns. */
int64_t fs_now_ns(void);

/* Memory for file systems: zeroed pages from the heap (ENOMEM when RAM is
 * used up) and small objects from page-backed slabs. */
void *fs_pages(size_t n);
void fs_pages_free(void *p, size_t n);
void *fs_alloc(size_t size); /* size <= 2048; zeroed */
void fs_free(void *p, size_t size);

/* The path system calls (sys_dispatch.c): -ENOSYS for a call that is not
 * one of them. Runs on the file-system stack. */
long fs_syscall(struct ember_syscall_frame *f);
/* open/openat (sys_fd.c). */
long fs_openat(int dirfd, const char *path, int flags, int mode);

#endif /* EMBER_FS_VFS_H */
