/* fs_dev.c: /dev: null, zero, random, urandom and the drives vda, vdb, ...
 *
 * A directory of fixed entries; stat() reports them as Linux does (character
 * devices 1:3, 1:5, 1:8, 1:9; the drives block devices 254:16n). Opening one
 * gives an fd of its own kind: the drives are blk_posix.c's (open by the
 * drive's letter), the others are below. random and urandom read from the
 * SDK's generator (sys_random.c: RDRAND, or a seeded xoshiro without it).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <ember/blk.h>

#include "fs/fs_vfs.h"
#include "sdk.h"
#include "posix/sys_fd.h"

long blk_posix_open(const char *rest, int flags, int mode); /* blk_posix.c */

enum { DEV_ROOT, DEV_NULL, DEV_ZERO, DEV_RANDOM, DEV_URANDOM, DEV_DRIVE0 = 16 };

static const struct {
    const char *name;
    unsigned id, rdev;
} chars[] = {
    {"null", DEV_NULL, (1u << 8) | 3},
    {"random", DEV_RANDOM, (1u << 8) | 8},
    {"urandom", DEV_URANDOM, (1u << 8) | 9},
    {"zero", DEV_ZERO, (1u << 8) | 5},
};
#define NCHARS     (sizeof(chars) / sizeof(chars[0]))
#define DRIVES_MAX 26u

static unsigned drives(void)
{
    static unsigned n = ~0u;
    if (n == ~0u)
        n = ember_blk_count();
    return n > DRIVES_MAX ? DRIVES_MAX : n;
}

static int dev_lookup(uint64_t dir, const char *name, size_t len, uint64_t *out)
{
    if (dir != DEV_ROOT)
        return -ENOTDIR;
    if (len == 3 && name[0] == 'v' && name[1] == 'd' && name[2] >= 'a' && name[2] <= 'z' &&
        (unsigned)(name[2] - 'a') < drives()) {
        *out = DEV_DRIVE0 + (unsigned)(name[2] - 'a');
        return 0;
    }
    for (unsigned i = 0; i < NCHARS; i++) {
        size_t l = sdk_strnlen(chars[i].name, 8), k = 0;
        while (k < len && k < l && name[k] == chars[i].name[k])
            k++;
        if (k == len && k == l) {
            *out = chars[i].id;
            return 0;
        }
    }
    return -ENOENT;
}

static int dev_stat(uint64_t id, struct stat *st)
{
    st->st_ino = id + 1;
    st->st_mtim.tv_sec = st->st_atim.tv_sec = st->st_ctim.tv_sec =
        (time_t)(ember_bi.realtime_ns / 1000000000u);
    if (id == DEV_ROOT) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
        return 0;
    }
    if (id >= DEV_DRIVE0) {
        st->st_mode = S_IFBLK | 0660;
        st->st_rdev = (254u << 8) | ((unsigned)(id - DEV_DRIVE0) * 16);
        return 0;
    }
    for (unsigned i = 0; i < NCHARS; i++)
        if (chars[i].id == id) {
            st->st_mode = S_IFCHR | 0666;
            st->st_rdev = chars[i].rdev;
        }
    return 0;
}

static int dev_readdir(uint64_t dir, uint64_t *cookie, vfs_emit_fn emit, void *arg)
{
    (void)dir;
    for (;; (*cookie)++) {
        uint64_t c = *cookie;
        if (c == 0 || c == 1) {
            if (emit(arg, "..", c + 1, c ? 1 : 1, 4, c + 1))
                return 0;
        } else if (c < 2 + NCHARS) {
            const char *n = chars[c - 2].name;
            if (emit(arg, n, sdk_strnlen(n, 8), chars[c - 2].id + 1, 2, c + 1))
                return 0;
        } else if (c < 2 + NCHARS + drives()) {
            char n[4] = {'v', 'd', (char)('a' + (c - 2 - NCHARS)), 0};
            if (emit(arg, n, 3, DEV_DRIVE0 + (c - 2 - NCHARS) + 1, 6, c + 1))
                return 0;
        } else {
            return 0;
        }
    }
}

static uint64_t dev_id(const struct fd_entry *f)
{
    return (uint64_t)(uintptr_t)f->priv;
}

static long char_read(struct fd_entry *f, void *buf, size_t len)
{
    switch (dev_id(f)) {
    case DEV_NULL:
        return 0;
    case DEV_ZERO:
        sdk_memset(buf, 0, len);
        return (long)len;
    default:
        ember_random_fill(buf, len);
        return (long)len;
    }
}

static long char_write(struct fd_entry *f, const void *buf, size_t len)
{
    (void)f;
    (void)buf;
    return (long)len; /* null and zero discard; random takes it as Linux takes entropy */
}

static long char_pread(struct fd_entry *f, void *buf, size_t len, int64_t off)
{
    (void)off;
    return char_read(f, buf, len);
}

static long char_pwrite(struct fd_entry *f, const void *buf, size_t len, int64_t off)
{
    (void)off;
    return char_write(f, buf, len);
}

static long char_lseek(struct fd_entry *f, int64_t off, int whence)
{
    (void)off;
    (void)whence;
    f->pos = 0;
    return 0; /* Linux: seeking a memory device succeeds */
}

static long char_fstat(struct fd_entry *f, struct stat *st)
{
    return dev_stat(dev_id(f), st);
}

static const struct fd_ops char_ops = {
    .kind = "chardev",
    .read = char_read,
    .write = char_write,
    .pread = char_pread,
    .pwrite = char_pwrite,
    .lseek = char_lseek,
    .fstat = char_fstat,
};

static long dev_open(uint64_t id, int flags)
{
    if (id >= DEV_DRIVE0) {
        char rest[2] = {(char)('a' + (id - DEV_DRIVE0)), 0};
        return blk_posix_open(rest, flags & ~O_CREAT, 0);
    }
    return fd_alloc_flags(&char_ops, (void *)(uintptr_t)id,
                          flags & (O_ACCMODE | O_NONBLOCK | O_APPEND),
                          (flags & O_CLOEXEC) ? FD_CLOEXEC : 0);
}

const struct vfs_fs fs_dev = {
    .name = "devtmpfs",
    .dev = 5,
    .lookup = dev_lookup,
    .stat = dev_stat,
    .readdir = dev_readdir,
    .open = dev_open,
};
