/* fs_vfs.c: paths, mounts and the path system calls of the guest.
 *
 * The name space: "/" is the EROFS image on the drive the monitor marked as
 * root (boot info root_drive: `is_root_device`, `ember run --root ID`), or,
 * without one, an empty read-only directory; "/tmp" is a tmpfs in guest RAM
 * (fs_tmpfs.c) and "/dev" the device directory (fs_dev.c), mounted over the
 * root's own "tmp" and "dev" (ember-rootfs puts both in every EROFS image).
 * Where the image has no /etc/resolv.conf (or no /etc), a VM with a network
 * device sees the one fs_etc.c synthesizes.
 * Nothing is set up at boot: the first path system call mounts the root
 * (the superblock and the root inode, whatever the number of files).
 *
 * Paths are resolved as Linux resolves them (path_resolution(7)): component
 * by component from "/", the cwd or a directory fd; "." and ".." (".." of a
 * mount's root is the parent of its mount point, ".." of "/" is "/");
 * symlinks followed in the middle of a path always and at its end unless
 * the call says not to, at most 40 of them (ELOOP); a trailing "/" wants a
 * directory (ENOTDIR). Errors are Linux's: ENOENT, ENOTDIR, EISDIR, EROFS
 * (a write to the image), EXDEV (a rename between file systems),
 * ENAMETOOLONG, EFAULT, ELOOP, EEXIST, ENOTEMPTY, EINVAL, EBADF.
 *
 * Open files are fds of sys_fd.c with the ops below (read, write, pread,
 * pwrite, lseek, fstat, fsync, getdents64 on directories). fcntl record
 * locks are in sys_fd.c (one process: every lock is granted).
 *
 * The system-call stack is 1.5 KiB; path resolution, the file systems and
 * the block driver below them need more, so fs_syscall() and the file ops
 * run on a 32 KiB stack of their own (allocated on first use). The SDK is
 * single-threaded; an interrupt never enters this code.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <ember/blk.h>

#include "fs/fs_vfs.h"
#include "sdk.h"
#include "posix/sys_fd.h"

#define PATH_LEN   4096 /* PATH_MAX, NUL included */
#define NAME_LEN   255
#define LINKS_MAX  40 /* Linux's MAXSYMLINKS */
#define STACK_SIZE (32u << 10)

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif
#define SEEK_DATA_        3 /* lseek(2) */
#define SEEK_HOLE_        4
#define RENAME_NOREPLACE_ 1u
#define RENAME_EXCHANGE_  2u

/* statx(2): Linux's struct, not in musl 1.2.3's headers. */
struct statx_ts {
    int64_t tv_sec;
    uint32_t tv_nsec;
    int32_t reserved;
};
struct statx_linux {
    uint32_t stx_mask, stx_blksize;
    uint64_t stx_attributes;
    uint32_t stx_nlink, stx_uid, stx_gid;
    uint16_t stx_mode, pad1;
    uint64_t stx_ino, stx_size, stx_blocks, stx_attributes_mask;
    struct statx_ts stx_atime, stx_btime, stx_ctime, stx_mtime;
    uint32_t stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;
    uint64_t spare[14];
};
#define STATX_BASIC_STATS 0x7ffu

/* ---- memory ---- */

void *fs_pages(size_t n)
{
    long p = ember_sys_mmap(0, n * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                            -1, 0);
    return p < 0 ? NULL : (void *)p;
}

void fs_pages_free(void *p, size_t n)
{
    if (p)
        ember_sys_munmap((uintptr_t)p, n * PAGE_SIZE);
}

/* Slabs of 32 .. 2048 bytes: a free list per size class. */
static void *slab_free[7];

static unsigned slab_class(size_t size)
{
    unsigned c = 0;
    while ((32u << c) < size)
        c++;
    return c;
}

void *fs_alloc(size_t size)
{
    if (size == 0 || size > 2048)
        return NULL;
    unsigned c = slab_class(size);
    size_t sz = 32u << c;
    if (!slab_free[c]) {
        uint8_t *pg = fs_pages(1);
        if (!pg)
            return NULL;
        for (size_t off = 0; off + sz <= PAGE_SIZE; off += sz) {
            *(void **)(pg + off) = slab_free[c];
            slab_free[c] = pg + off;
        }
    }
    void *p = slab_free[c];
    slab_free[c] = *(void **)p;
    sdk_memset(p, 0, sz);
    return p;
}

void fs_free(void *p, size_t size)
{
    if (!p)
        return;
    unsigned c = slab_class(size);
    *(void **)p = slab_free[c];
    slab_free[c] = p;
}

int64_t fs_now_ns(void)
{
    return (int64_t)ember_realtime_ns();
}

/* ---- the root without a drive: an empty directory ---- */

static int none_lookup(uint64_t dir, const char *name, size_t len, uint64_t *out)
{
    (void)dir;
    if (len == 2 && name[0] == '.' && name[1] == '.') {
        *out = 0;
        return 0;
    }
    return -ENOENT;
}

static int none_stat(uint64_t id, struct stat *st)
{
    (void)id;
    st->st_ino = 1;
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 4;
    return 0;
}

static int none_readdir(uint64_t dir, uint64_t *cookie, vfs_emit_fn emit, void *arg)
{
    static const char *const names[] = {".", "..", "dev", "tmp"};
    (void)dir;
    for (; *cookie < 4; (*cookie)++) {
        const char *n = names[*cookie];
        if (emit(arg, n, sdk_strnlen(n, 4), *cookie < 2 ? 1 : 2 + *cookie, 4, *cookie + 1))
            return 0;
    }
    return 0;
}

static const struct vfs_fs fs_none = {
    .name = "none", .dev = 1, .lookup = none_lookup, .stat = none_stat, .readdir = none_readdir};

/* ---- state ---- */

struct vfs_state {
    struct vfs_node root, tmp, dev, cwd;
    bool cwd_known; /* cwd_path is the cwd's path (false after fchdir to an fd opened by a
                       relative path we could not name) */
    char cwd_path[PATH_LEN];
    char buf[2][PATH_LEN * 2]; /* the path being resolved, and its next version after a symlink */
    char link[PATH_LEN];
    char canon[PATH_LEN]; /* the resolved path so far */
    char path2[PATH_LEN]; /* a second user path (rename, link, symlink) */
    char name2[NAME_LEN + 1];
    uint8_t *stack_top;
    int etc_known;   /* 0: not looked up; 1: the image's /etc is etc_id; -1: none */
    uint64_t etc_id; /* in V->root.fs */
};

static struct vfs_state *V;

static bool same(struct vfs_node a, struct vfs_node b)
{
    return a.fs == b.fs && a.id == b.id;
}

static COLD int vfs_init(void)
{
    if (V)
        return 0;
    struct vfs_state *v = fs_pages(ALIGN_UP(sizeof(*v), PAGE_SIZE) / PAGE_SIZE);
    if (!v)
        return -ENOMEM;
    v->root = (struct vfs_node){&fs_none, 0};
    if (ember_bi.root_drive && fs_root_mount(ember_bi.root_drive - 1, &v->root) < 0)
        v->root = (struct vfs_node){&fs_none, 0};
    v->tmp = (struct vfs_node){&fs_tmpfs, 0}; /* the id is set on first use of /tmp */
    v->dev = (struct vfs_node){&fs_dev, FS_DEV_ROOT};
    v->cwd = v->root;
    v->cwd_known = true;
    v->cwd_path[0] = '/';
    V = v;
    return 0;
}

/* The mount root that replaces name in "/", if any. */
static bool mounted(struct vfs_node dir, const char *name, size_t len, struct vfs_node *out)
{
    if (!same(dir, V->root) || len != 3)
        return false;
    if (name[0] == 't' && name[1] == 'm' && name[2] == 'p') {
        if (!V->tmp.id)
            V->tmp.id = fs_tmpfs_root();
        if (!V->tmp.id)
            return false;
        *out = V->tmp;
        return true;
    }
    if (name[0] == 'd' && name[1] == 'e' && name[2] == 'v') {
        *out = V->dev;
        return true;
    }
    return false;
}

static int node_stat(struct vfs_node n, struct stat *st)
{
    sdk_memset(st, 0, sizeof(*st));
    st->st_dev = n.fs->dev;
    st->st_blksize = 4096;
    st->st_nlink = 1;
    int r = n.fs->stat(n.id, st);
    if (r == 0 && !st->st_blocks)
        st->st_blocks = (blkcnt_t)((st->st_size + 511) / 512);
    return r;
}

static unsigned node_mode(struct vfs_node n, int *err)
{
    struct stat st;
    *err = node_stat(n, &st);
    return *err ? 0 : st.st_mode;
}

static int parent_of(struct vfs_node n, struct vfs_node *out)
{
    if (same(n, V->root) || same(n, V->dev) || (V->tmp.id && same(n, V->tmp)) ||
        (n.fs == &fs_etc && n.id == FS_ETC_DIR)) {
        *out = V->root;
        return 0;
    }
    out->fs = n.fs;
    return n.fs->lookup(n.id, "..", 2, &out->id);
}

/* Is dir the image's own /etc? */
static bool image_etc(struct vfs_node dir)
{
    if (dir.fs != V->root.fs || V->root.fs == &fs_none)
        return false;
    if (!V->etc_known) {
        uint64_t id = 0;
        V->etc_known = V->root.fs->lookup(V->root.id, "etc", 3, &id) == 0 ? 1 : -1;
        V->etc_id = id;
    }
    return V->etc_known == 1 && dir.id == V->etc_id;
}

static int lookup(struct vfs_node dir, const char *name, size_t len, struct vfs_node *out)
{
    if (mounted(dir, name, len, out))
        return 0;
    out->fs = dir.fs;
    int r = dir.fs->lookup(dir.id, name, len, &out->id);
    if (r == -ENOENT) {
        /* What the image lacks, fs_etc.c may have. */
        uint64_t id;
        if (fs_etc_fallback(same(dir, V->root), image_etc(dir), name, len, &id) == 0) {
            *out = (struct vfs_node){&fs_etc, id};
            return 0;
        }
    }
    return r;
}

/* Copies a path from the program: -EFAULT, -ENOENT (empty), -ENAMETOOLONG. */
static int get_path(const char *u, char *out, bool empty_ok)
{
    if (!user_range_ok((uintptr_t)u, 1))
        return -EFAULT;
    size_t max = ember_ram_top - (uintptr_t)u;
    size_t len = sdk_strnlen(u, max < PATH_LEN ? max : PATH_LEN);
    if (len >= PATH_LEN)
        return -ENAMETOOLONG;
    if (len == max)
        return -EFAULT;
    if (len == 0 && !empty_ok)
        return -ENOENT;
    sdk_memcpy(out, u, len + 1);
    return 0;
}

/* ---- open files ---- */

struct vfile {
    struct vfs_node node;
    uint64_t cookie; /* directory position */
    bool dir;
};

static const struct fd_ops vfs_file_ops;

static struct vfile *vf(const struct fd_entry *f)
{
    return f->priv;
}

/* The node of a directory fd (dirfd of the *at calls), or -EBADF/-ENOTDIR. */
static int dirfd_node(int dirfd, struct vfs_node *out)
{
    if (dirfd == AT_FDCWD) {
        *out = V->cwd;
        return 0;
    }
    struct fd_entry *f = fd_get(dirfd);
    if (!f)
        return -EBADF;
    if (f->ops != &vfs_file_ops || !vf(f)->dir)
        return -ENOTDIR;
    *out = vf(f)->node;
    return 0;
}

/* ---- path resolution ---- */

#define W_FOLLOW 1 /* follow a symlink at the end */
#define W_PARENT 2 /* stop at the last component's directory */

struct walk {
    struct vfs_node dir;  /* W_PARENT: the directory holding the last component */
    struct vfs_node node; /* the node (W_PARENT: if it exists, see exists) */
    const char *last;     /* W_PARENT: the last component ("" for "/") */
    size_t lastlen;
    bool exists;
    bool slash; /* the path ended with '/' */
};

static void canon_push(const char *c, size_t n)
{
    size_t l = sdk_strnlen(V->canon, PATH_LEN);
    if (l + 1 + n >= PATH_LEN)
        return; /* too deep to name: getcwd then fails with ENAMETOOLONG */
    if (l > 1)
        V->canon[l++] = '/';
    sdk_memcpy(V->canon + l, c, n);
    V->canon[l + n] = '\0';
}

static void canon_pop(void)
{
    size_t l = sdk_strnlen(V->canon, PATH_LEN);
    while (l > 1 && V->canon[l - 1] != '/')
        l--;
    V->canon[l > 1 ? l - 1 : 1] = '\0';
}

/* Resolves the path in V->buf[0]; start: where a relative path starts. */
static int walk(struct vfs_node start, int flags, struct walk *w)
{
    struct vfs_node cur = start;
    int which = 0, links = 0, err;
    const char *p = V->buf[0];
    if (*p == '/') {
        cur = V->root;
        V->canon[0] = '/';
        V->canon[1] = '\0';
    }
    *w = (struct walk){0};
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p) { /* the path named a directory ("/", "a/", "a/.") */
            if (flags & W_PARENT) {
                w->dir = cur;
                w->last = "";
                w->lastlen = 0;
                w->exists = true;
            }
            w->node = cur;
            return 0;
        }
        const char *c = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - c);
        const char *q = p;
        while (*q == '/')
            q++;
        bool last = !*q, slash = last && *p == '/';
        if (n > NAME_LEN)
            return -ENAMETOOLONG;
        unsigned mode = node_mode(cur, &err);
        if (err)
            return err;
        if (!S_ISDIR(mode))
            return -ENOTDIR;
        bool dot = n == 1 && c[0] == '.', dotdot = n == 2 && c[0] == '.' && c[1] == '.';
        struct vfs_node next;
        if (dot) {
            next = cur;
            err = 0;
        } else if (dotdot) {
            err = parent_of(cur, &next);
        } else {
            err = lookup(cur, c, n, &next);
        }
        if (last && (flags & W_PARENT)) {
            w->dir = cur;
            w->last = c;
            w->lastlen = n;
            w->slash = slash;
            if (err == -ENOENT)
                return 0;
            if (err)
                return err;
            w->exists = true;
            w->node = next;
            mode = node_mode(next, &err);
            if (err)
                return err;
            if (!S_ISLNK(mode) || !((flags & W_FOLLOW) || slash))
                return 0;
            /* O_CREAT on a symlink: resolve it, and the caller works on its
             * target (fall through) */
        } else if (err) {
            return err;
        } else {
            mode = node_mode(next, &err);
            if (err)
                return err;
        }
        if (S_ISLNK(mode) && (!last || (flags & W_FOLLOW) || slash)) {
            if (++links > LINKS_MAX)
                return -ELOOP;
            long l = next.fs->readlink(next.id, V->link, PATH_LEN - 1);
            if (l < 0)
                return (int)l;
            if (l == 0)
                return -ENOENT;
            /* the target, then the rest of the path ("" or "/...") */
            size_t rest = sdk_strnlen(p, PATH_LEN * 2);
            if ((size_t)l + rest >= PATH_LEN * 2)
                return -ENAMETOOLONG;
            char *nb = V->buf[which ^ 1];
            sdk_memcpy(nb, V->link, (size_t)l);
            sdk_memcpy(nb + l, p, rest + 1);
            which ^= 1;
            p = nb;
            if (nb[0] == '/') {
                cur = V->root;
                V->canon[0] = '/';
                V->canon[1] = '\0';
            }
            if (last && (flags & W_PARENT)) {
                /* the target's own last component is now the one to create */
                *w = (struct walk){0};
            }
            continue;
        }
        if (dotdot)
            canon_pop();
        else if (!dot)
            canon_push(c, n);
        cur = next;
        if (last) {
            if (slash && !S_ISDIR(mode))
                return -ENOTDIR;
            w->node = cur;
            w->slash = slash;
            return 0;
        }
    }
}

/* Resolves a program's path from dirfd (AT_FDCWD: the cwd). */
static int resolve(int dirfd, const char *upath, int flags, bool empty_ok, struct walk *w)
{
    int r = vfs_init();
    if (r)
        return r;
    if ((r = get_path(upath, V->buf[0], empty_ok)) < 0)
        return r;
    struct vfs_node start;
    if (V->buf[0][0] != '/' && (r = dirfd_node(dirfd, &start)) < 0)
        return r;
    if (V->buf[0][0] != '/' && dirfd == AT_FDCWD)
        sdk_memcpy(V->canon, V->cwd_path, PATH_LEN);
    else if (V->buf[0][0] != '/')
        V->canon[0] = '\0'; /* unknown */
    if (V->buf[0][0] == '/')
        start = V->root;
    return walk(start, flags, w);
}

/* ---- file ops ---- */

static long file_pread(struct fd_entry *f, void *buf, size_t len, int64_t off);
static long file_pwrite(struct fd_entry *f, const void *buf, size_t len, int64_t off);

/* Calls fn(arg) on the file-system stack (once on it, directly). */
struct call {
    long (*fn)(struct call *);
    struct fd_entry *f;
    uint64_t a, b, c;
    void *p;
    struct ember_syscall_frame *frame;
};

static COLD long on_fs_stack(struct call *c)
{
    static bool inside;
    if (inside || !V)
        return c->fn(c);
    if (!V->stack_top) {
        uint8_t *s = fs_pages(STACK_SIZE / PAGE_SIZE);
        if (!s)
            return -ENOMEM;
        V->stack_top = s + STACK_SIZE;
    }
    inside = true;
    long r;
    /* rbx keeps the old stack (callee-saved, so it survives the call);
     * the new top is 16-byte aligned, as the ABI wants at a call. */
    __asm__ volatile("mov %%rsp, %%rbx\n\t"
                     "mov %[top], %%rsp\n\t"
                     "call *%[fn]\n\t"
                     "mov %%rbx, %%rsp"
                     : "=a"(r), "+D"(c)
                     : [top] "r"(V->stack_top), [fn] "r"(c->fn)
                     : "rbx", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "memory", "cc");
    inside = false;
    return r;
}

static long do_pread(struct call *c)
{
    struct vfile *v = vf(c->f);
    if (v->dir)
        return -EISDIR;
    if (!v->node.fs->pread)
        return -EINVAL;
    return v->node.fs->pread(v->node.id, c->p, (size_t)c->a, c->b);
}

static long file_pread(struct fd_entry *f, void *buf, size_t len, int64_t off)
{
    struct call c = {.fn = do_pread, .f = f, .a = len, .b = (uint64_t)off, .p = buf};
    return on_fs_stack(&c);
}

static long do_pwrite(struct call *c)
{
    struct vfile *v = vf(c->f);
    if (v->dir)
        return -EISDIR;
    if (!v->node.fs->pwrite)
        return -EROFS;
    uint64_t off = c->b;
    if (c->c) { /* O_APPEND: at the end, whatever the offset */
        struct stat st;
        int r = node_stat(v->node, &st);
        if (r)
            return r;
        off = (uint64_t)st.st_size;
        c->b = off;
    }
    return v->node.fs->pwrite(v->node.id, c->p, (size_t)c->a, off);
}

static long file_pwrite(struct fd_entry *f, const void *buf, size_t len, int64_t off)
{
    struct call c = {.fn = do_pwrite, .f = f, .a = len, .b = (uint64_t)off, .p = (void *)buf};
    return on_fs_stack(&c);
}

static long file_read(struct fd_entry *f, void *buf, size_t len)
{
    long r = file_pread(f, buf, len, f->pos);
    if (r > 0)
        f->pos += r;
    return r;
}

static long file_write(struct fd_entry *f, const void *buf, size_t len)
{
    struct call c = {.fn = do_pwrite,
                     .f = f,
                     .a = len,
                     .b = (uint64_t)f->pos,
                     .p = (void *)buf,
                     .c = (f->flags & O_APPEND) != 0};
    long r = on_fs_stack(&c);
    if (r > 0)
        f->pos = (int64_t)c.b + r;
    return r;
}

static long do_fstat(struct call *c)
{
    return node_stat(vf(c->f)->node, c->p);
}

static long file_fstat(struct fd_entry *f, struct stat *st)
{
    struct call c = {.fn = do_fstat, .f = f, .p = st};
    return on_fs_stack(&c);
}

static long file_lseek(struct fd_entry *f, int64_t off, int whence)
{
    int64_t base;
    if (whence == SEEK_SET) {
        base = 0;
    } else if (whence == SEEK_CUR) {
        base = f->pos;
    } else if (whence == SEEK_END || whence == SEEK_DATA_ || whence == SEEK_HOLE_) {
        struct stat st;
        long r = file_fstat(f, &st);
        if (r)
            return r;
        if (whence != SEEK_END) { /* no holes are reported: data everywhere */
            if (off < 0 || off >= st.st_size)
                return -ENXIO;
            f->pos = whence == SEEK_DATA_ ? off : st.st_size;
            return f->pos;
        }
        base = st.st_size;
    } else {
        return -EINVAL;
    }
    if ((off > 0 && base > INT64_MAX - off) || base + off < 0)
        return -EINVAL;
    f->pos = base + off;
    if (vf(f)->dir && f->pos == 0)
        vf(f)->cookie = 0; /* rewinddir */
    return f->pos;
}

static long file_fsync(struct fd_entry *f, int datasync)
{
    (void)f;
    (void)datasync;
    return 0; /* tmpfs is RAM; the image is read-only */
}

static long file_close(struct fd_entry *f)
{
    struct vfile *v = vf(f);
    if (v->node.fs->hold)
        v->node.fs->hold(v->node.id, -1);
    fs_free(v, sizeof(*v));
    return 0;
}

static const struct fd_ops vfs_file_ops = {
    .kind = "file",
    .read = file_read,
    .write = file_write,
    .pread = file_pread,
    .pwrite = file_pwrite,
    .lseek = file_lseek,
    .fstat = file_fstat,
    .fsync = file_fsync,
    .close = file_close,
};

/* ---- the system calls ---- */

static long open_node(struct vfs_node n, int flags)
{
    int err;
    unsigned mode = node_mode(n, &err);
    if (err)
        return err;
    int acc = flags & O_ACCMODE;
    if ((flags & O_DIRECTORY) && !S_ISDIR(mode))
        return -ENOTDIR;
    if (n.fs->open && !S_ISDIR(mode))
        return n.fs->open(n.id, flags);
    if (S_ISDIR(mode) && (acc != O_RDONLY || (flags & O_TRUNC)))
        return -EISDIR;
    if (S_ISLNK(mode))
        return -ELOOP; /* O_NOFOLLOW on a symlink */
    if (!S_ISDIR(mode) && !S_ISREG(mode))
        return -ENXIO; /* a FIFO, socket or device node in the image */
    if ((acc != O_RDONLY || (flags & O_TRUNC)) && !n.fs->pwrite)
        return -EROFS;
    if ((flags & O_TRUNC) && acc != O_RDONLY && S_ISREG(mode)) {
        int r = n.fs->truncate(n.id, 0);
        if (r)
            return r;
    }
    struct vfile *v = fs_alloc(sizeof(*v));
    if (!v)
        return -ENOMEM;
    v->node = n;
    v->dir = S_ISDIR(mode);
    int fd = fd_alloc_flags(&vfs_file_ops, v,
                            flags & (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DIRECTORY | O_NOATIME),
                            (flags & O_CLOEXEC) ? FD_CLOEXEC : 0);
    if (fd < 0) {
        fs_free(v, sizeof(*v));
        return fd;
    }
    if (n.fs->hold)
        n.fs->hold(n.id, 1);
    return fd;
}

static long sys_openat(int dirfd, const char *path, int flags, int mode)
{
    struct walk w;
    int r;
    if (flags & O_CREAT) {
        r = resolve(dirfd, path, W_PARENT | ((flags & (O_EXCL | O_NOFOLLOW)) ? 0 : W_FOLLOW), false,
                    &w);
        if (r)
            return r;
        if (w.exists) {
            if (flags & O_EXCL)
                return -EEXIST;
            return open_node(w.node, flags);
        }
        if (w.lastlen == 0 || w.slash)
            return -EISDIR;
        if (!w.dir.fs->create)
            return -EROFS;
        struct vfs_node n = {w.dir.fs, 0};
        r = w.dir.fs->create(w.dir.id, w.last, w.lastlen, S_IFREG | (mode & 07777), &n.id);
        if (r)
            return r;
        return open_node(n, flags & ~O_TRUNC);
    }
    r = resolve(dirfd, path, (flags & O_NOFOLLOW) ? 0 : W_FOLLOW, false, &w);
    if (r)
        return r;
    return open_node(w.node, flags);
}

long fs_openat(int dirfd, const char *path, int flags, int mode)
{
    int r = vfs_init();
    if (r)
        return r;
    struct ember_syscall_frame fr = {.nr = SYS_openat,
                                     .rdi = (uint64_t)(int64_t)dirfd,
                                     .rsi = (uint64_t)path,
                                     .rdx = (uint64_t)(int64_t)flags,
                                     .r10 = (uint64_t)(int64_t)mode};
    return fs_syscall(&fr);
}

static long put_stat(struct vfs_node n, struct stat *ust)
{
    if (!user_range_ok((uintptr_t)ust, sizeof(*ust)))
        return -EFAULT;
    struct stat st;
    int r = node_stat(n, &st);
    if (r)
        return r;
    *ust = st;
    return 0;
}

static long fd_node(int fd, struct vfs_node *n); /* below */

static long sys_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    struct walk w;
    if ((flags & AT_EMPTY_PATH) && user_range_ok((uintptr_t)path, 1) && !*path) {
        if (dirfd == AT_FDCWD)
            return put_stat(V ? V->cwd : (struct vfs_node){0}, st);
        return fd_sys_fstat(dirfd, st);
    }
    int r = resolve(dirfd, path, (flags & AT_SYMLINK_NOFOLLOW) ? 0 : W_FOLLOW, false, &w);
    return r ? r : put_stat(w.node, st);
}

static long sys_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx_linux *ux)
{
    (void)mask;
    struct stat st;
    struct walk w;
    long r;
    if (!user_range_ok((uintptr_t)ux, sizeof(*ux)))
        return -EFAULT;
    if ((flags & AT_EMPTY_PATH) && user_range_ok((uintptr_t)path, 1) && !*path) {
        if (dirfd == AT_FDCWD) {
            if ((r = vfs_init()) || (r = node_stat(V->cwd, &st)))
                return r;
        } else if ((r = fd_sys_fstat(dirfd, &st))) {
            return r;
        }
    } else {
        r = resolve(dirfd, path, (flags & AT_SYMLINK_NOFOLLOW) ? 0 : W_FOLLOW, false, &w);
        if (r || (r = node_stat(w.node, &st)))
            return r;
    }
    struct statx_linux x;
    sdk_memset(&x, 0, sizeof(x));
    x.stx_mask = STATX_BASIC_STATS;
    x.stx_blksize = (uint32_t)st.st_blksize;
    x.stx_nlink = (uint32_t)st.st_nlink;
    x.stx_uid = st.st_uid;
    x.stx_gid = st.st_gid;
    x.stx_mode = (uint16_t)st.st_mode;
    x.stx_ino = st.st_ino;
    x.stx_size = (uint64_t)st.st_size;
    x.stx_blocks = (uint64_t)st.st_blocks;
    x.stx_atime = (struct statx_ts){st.st_atim.tv_sec, (uint32_t)st.st_atim.tv_nsec, 0};
    x.stx_mtime = (struct statx_ts){st.st_mtim.tv_sec, (uint32_t)st.st_mtim.tv_nsec, 0};
    x.stx_ctime = (struct statx_ts){st.st_ctim.tv_sec, (uint32_t)st.st_ctim.tv_nsec, 0};
    x.stx_rdev_major = (uint32_t)(st.st_rdev >> 8) & 0xfff;
    x.stx_rdev_minor = (uint32_t)(st.st_rdev & 0xff) | (uint32_t)((st.st_rdev >> 12) & ~0xffu);
    x.stx_dev_major = (uint32_t)(st.st_dev >> 8) & 0xfff;
    x.stx_dev_minor = (uint32_t)(st.st_dev & 0xff);
    *ux = x;
    return 0;
}

static long sys_faccessat(int dirfd, const char *path, int amode, int flags)
{
    struct walk w;
    if (amode & ~(R_OK | W_OK | X_OK))
        return -EINVAL;
    int r = resolve(dirfd, path, (flags & AT_SYMLINK_NOFOLLOW) ? 0 : W_FOLLOW,
                    (flags & AT_EMPTY_PATH) != 0, &w);
    if (r)
        return r;
    struct stat st;
    if ((r = node_stat(w.node, &st)))
        return r;
    /* The program runs as root: only a read-only file system, or a file no
     * one may execute, says no. */
    if ((amode & W_OK) && !w.node.fs->pwrite && !w.node.fs->open)
        return -EROFS;
    if ((amode & X_OK) && !S_ISDIR(st.st_mode) && !(st.st_mode & 0111))
        return -EACCES;
    return 0;
}

static long sys_readlinkat(int dirfd, const char *path, char *buf, long size)
{
    struct walk w;
    if (size <= 0)
        return -EINVAL;
    int r = resolve(dirfd, path, 0, false, &w);
    if (r)
        return r;
    struct stat st;
    if ((r = node_stat(w.node, &st)))
        return r;
    if (!S_ISLNK(st.st_mode))
        return -EINVAL;
    if (!user_range_ok((uintptr_t)buf, (size_t)size))
        return -EFAULT;
    long n = w.node.fs->readlink(w.node.id, V->link, PATH_LEN - 1);
    if (n < 0)
        return n;
    if (n > size)
        n = size; /* truncated, no NUL: as Linux */
    sdk_memcpy(buf, V->link, (size_t)n);
    return n;
}

#define MOUNT_COOKIE (1ull << 62) /* past any file system's own cookies */

struct dents {
    uint8_t *buf;
    size_t len, used;
    struct vfile *v;
    bool full;
};

static int put_dent(void *arg, const char *name, size_t len, uint64_t ino, unsigned dtype,
                    uint64_t next)
{
    struct dents *d = arg;
    size_t rec = ALIGN_UP(19 + len + 1, 8); /* struct linux_dirent64 */
    if (d->used + rec > d->len) {
        d->full = true;
        return 1;
    }
    uint8_t *p = d->buf + d->used;
    *(uint64_t *)p = ino;
    *(int64_t *)(p + 8) = (int64_t)next;
    *(uint16_t *)(p + 16) = (uint16_t)rec;
    p[18] = (uint8_t)dtype;
    sdk_memcpy(p + 19, name, len);
    sdk_memset(p + 19 + len, 0, rec - 19 - len);
    d->used += rec;
    d->v->cookie = next;
    return 0;
}

static long sys_getdents64(int fd, void *buf, size_t len)
{
    struct fd_entry *f = fd_get(fd);
    if (!f)
        return -EBADF;
    if (f->ops != &vfs_file_ops || !vf(f)->dir)
        return -ENOTDIR;
    if (!user_range_ok((uintptr_t)buf, len))
        return -EFAULT;
    struct vfile *v = vf(f);
    struct dents d = {.buf = buf, .len = len, .v = v};
    uint64_t cookie = v->cookie;
    int r = 0;
    if (cookie < MOUNT_COOKIE)
        r = v->node.fs->readdir(v->node.id, &cookie, put_dent, &d);
    if (r < 0)
        return d.used ? (long)d.used : r;
    /* "/" lists its mount points even when the image has no such
     * directory (an image made by another tool) */
    static const char *const mp[2] = {"dev", "tmp"};
    if (!d.full && same(v->node, V->root) && V->root.fs != &fs_none) {
        for (unsigned i = 0; i < 2 && !d.full; i++) {
            uint64_t c = MOUNT_COOKIE + i, id;
            if (v->cookie > c)
                continue;
            if (V->root.fs->lookup(V->root.id, mp[i], 3, &id) == 0) {
                v->cookie = c + 1; /* the image's own entry was listed */
                continue;
            }
            put_dent(&d, mp[i], 3, 2 + i, 4, c + 1);
        }
    }
    /* fs_etc.c's nodes where the image lacks them: "etc" in "/", and
     * "resolv.conf" in the image's /etc. */
    bool in_root = same(v->node, V->root);
    if (!d.full && v->cookie <= MOUNT_COOKIE + 2 && (in_root || image_etc(v->node))) {
        const char *name = in_root ? "etc" : "resolv.conf";
        size_t nl = in_root ? 3 : 11;
        uint64_t id;
        if (v->node.fs->lookup(v->node.id, name, nl, &id) == -ENOENT &&
            fs_etc_fallback(in_root, !in_root, name, nl, &id) == 0)
            put_dent(&d, name, nl, id + 1, in_root ? 4 : 8, MOUNT_COOKIE + 3);
        else
            v->cookie = MOUNT_COOKIE + 3;
    }
    if (d.used == 0 && d.full)
        return -EINVAL; /* the buffer cannot hold one entry */
    return (long)d.used;
}

static long sys_mkdirat(int dirfd, const char *path, int mode)
{
    struct walk w;
    int r = resolve(dirfd, path, W_PARENT, false, &w);
    if (r)
        return r;
    if (w.exists)
        return -EEXIST;
    if (!w.dir.fs->create)
        return -EROFS;
    uint64_t id;
    return w.dir.fs->create(w.dir.id, w.last, w.lastlen, S_IFDIR | (mode & 07777), &id);
}

static long sys_unlinkat(int dirfd, const char *path, int flags)
{
    struct walk w;
    if (flags & ~AT_REMOVEDIR)
        return -EINVAL;
    bool rmdir = flags & AT_REMOVEDIR;
    int r = resolve(dirfd, path, W_PARENT, false, &w);
    if (r)
        return r;
    if (w.lastlen == 0)
        return rmdir ? -EBUSY : -EISDIR; /* "/" */
    if (w.lastlen == 1 && w.last[0] == '.')
        return rmdir ? -EINVAL : -EISDIR;
    if (w.lastlen == 2 && w.last[0] == '.' && w.last[1] == '.')
        return rmdir ? -ENOTEMPTY : -EISDIR;
    if (!w.exists)
        return -ENOENT;
    struct stat st;
    if ((r = node_stat(w.node, &st)))
        return r;
    if (rmdir && !S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (!rmdir && S_ISDIR(st.st_mode))
        return -EISDIR;
    if (!rmdir && w.slash)
        return -ENOTDIR;
    if (w.node.fs != w.dir.fs || same(w.node, V->cwd) || same(w.node, V->root))
        return -EBUSY; /* a mount point */
    if (!w.dir.fs->unlink)
        return -EROFS;
    return w.dir.fs->unlink(w.dir.id, w.last, w.lastlen, rmdir);
}

static long sys_renameat2(int odirfd, const char *opath, int ndirfd, const char *npath,
                          unsigned flags)
{
    struct walk ow, nw;
    if (flags & ~RENAME_NOREPLACE_)
        return (flags & RENAME_EXCHANGE_) ? -EINVAL : -EINVAL;
    int r = resolve(odirfd, opath, W_PARENT, false, &ow);
    if (r)
        return r;
    if (!ow.exists)
        return -ENOENT;
    /* the old name lives in V->buf: keep it before the second walk */
    size_t olen = ow.lastlen;
    sdk_memcpy(V->name2, ow.last, olen);
    r = resolve(ndirfd, npath, W_PARENT, false, &nw);
    if (r)
        return r;
    if (olen == 0 || nw.lastlen == 0 ||
        (olen <= 2 && V->name2[0] == '.' && (olen == 1 || V->name2[1] == '.')))
        return -EBUSY;
    if (nw.lastlen <= 2 && nw.last[0] == '.' && (nw.lastlen == 1 || nw.last[1] == '.'))
        return -EBUSY;
    if (ow.dir.fs != nw.dir.fs || ow.node.fs != ow.dir.fs)
        return -EXDEV;
    if (!ow.dir.fs->rename)
        return -EROFS;
    return ow.dir.fs->rename(ow.dir.id, V->name2, olen, nw.dir.id, nw.last, nw.lastlen,
                             (flags & RENAME_NOREPLACE_) != 0);
}

static long sys_symlinkat(const char *target, int dirfd, const char *path)
{
    int r = vfs_init();
    if (r)
        return r;
    if ((r = get_path(target, V->path2, false)) < 0)
        return r;
    struct walk w;
    if ((r = resolve(dirfd, path, W_PARENT, false, &w)))
        return r;
    if (w.exists)
        return -EEXIST;
    if (!w.dir.fs->create)
        return -EROFS;
    uint64_t id;
    r = w.dir.fs->create(w.dir.id, w.last, w.lastlen, S_IFLNK | 0777, &id);
    if (r)
        return r;
    size_t tl = sdk_strnlen(V->path2, PATH_LEN);
    long n = w.dir.fs->pwrite(id, V->path2, tl, 0);
    return n < 0 ? n : 0;
}

static long sys_linkat(int odirfd, const char *opath, int ndirfd, const char *npath, int flags)
{
    struct walk ow, nw;
    int r = resolve(odirfd, opath, (flags & AT_SYMLINK_FOLLOW) ? W_FOLLOW : 0,
                    (flags & AT_EMPTY_PATH) != 0, &ow);
    if (r)
        return r;
    struct vfs_node old = ow.node;
    if ((r = resolve(ndirfd, npath, W_PARENT, false, &nw)))
        return r;
    if (nw.exists)
        return -EEXIST;
    struct stat st;
    if ((r = node_stat(old, &st)))
        return r;
    if (S_ISDIR(st.st_mode))
        return -EPERM;
    if (old.fs != nw.dir.fs)
        return -EXDEV;
    if (!old.fs->link)
        return -EROFS;
    return old.fs->link(old.id, nw.dir.id, nw.last, nw.lastlen);
}

static long sys_truncate(struct vfs_node n, int64_t len)
{
    if (len < 0)
        return -EINVAL;
    struct stat st;
    int r = node_stat(n, &st);
    if (r)
        return r;
    if (S_ISDIR(st.st_mode))
        return -EISDIR;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    if (!n.fs->truncate)
        return -EROFS;
    return n.fs->truncate(n.id, (uint64_t)len);
}

static long fd_node(int fd, struct vfs_node *n)
{
    struct fd_entry *f = fd_get(fd);
    if (!f)
        return -EBADF;
    if (f->ops != &vfs_file_ops)
        return -EINVAL;
    *n = vf(f)->node;
    return 0;
}

static long sys_ftruncate(int fd, int64_t len)
{
    struct fd_entry *f = fd_get(fd);
    struct vfs_node n;
    long r = fd_node(fd, &n);
    if (r)
        return r;
    if ((f->flags & O_ACCMODE) == O_RDONLY)
        return -EINVAL; /* Linux: EINVAL for an fd not open for writing */
    return sys_truncate(n, len);
}

static long set_cwd(struct vfs_node n, bool known)
{
    struct stat st;
    int r = node_stat(n, &st);
    if (r)
        return r;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    V->cwd = n;
    V->cwd_known = known && V->canon[0] == '/';
    if (V->cwd_known)
        sdk_memcpy(V->cwd_path, V->canon, PATH_LEN);
    return 0;
}

static long sys_getcwd(char *buf, size_t size)
{
    int r = vfs_init();
    if (r)
        return r;
    if (!V->cwd_known)
        return -ENOENT;
    size_t l = sdk_strnlen(V->cwd_path, PATH_LEN) + 1;
    if (size < l)
        return -ERANGE;
    if (!user_range_ok((uintptr_t)buf, l))
        return -EFAULT;
    sdk_memcpy(buf, V->cwd_path, l);
    return (long)l;
}

static long sys_setattr(struct vfs_node n, int has_mode, mode_t mode, const int64_t *at,
                        const int64_t *mt)
{
    if (!n.fs->setattr)
        return n.fs->open ? 0 : -EROFS; /* /dev entries: accepted, as nothing to keep */
    return n.fs->setattr(n.id, has_mode, mode, at, mt);
}

static long sys_utimensat(int dirfd, const char *path, const struct timespec *uts, int flags)
{
    int64_t t[2], now = fs_now_ns();
    const int64_t *pa = &t[0], *pm = &t[1];
    struct vfs_node n;
    long r;
    if (uts) {
        if (!user_range_ok((uintptr_t)uts, 2 * sizeof(*uts)))
            return -EFAULT;
        for (int i = 0; i < 2; i++) {
            long ns = uts[i].tv_nsec;
            if (ns == UTIME_OMIT) {
                if (i)
                    pm = NULL;
                else
                    pa = NULL;
            } else if (ns == UTIME_NOW) {
                t[i] = now;
            } else if (ns < 0 || ns >= 1000000000l) {
                return -EINVAL;
            } else {
                t[i] = (int64_t)uts[i].tv_sec * 1000000000 + ns;
            }
        }
    } else {
        t[0] = t[1] = now;
    }
    if (!path) { /* futimens */
        if ((r = fd_node(dirfd, &n)))
            return r == -EINVAL ? 0 : r;
    } else {
        struct walk w;
        if ((r = resolve(dirfd, path, (flags & AT_SYMLINK_NOFOLLOW) ? 0 : W_FOLLOW,
                         (flags & AT_EMPTY_PATH) != 0, &w)))
            return r;
        n = w.node;
    }
    if (!pa && !pm)
        return 0;
    return sys_setattr(n, 0, 0, pa, pm);
}

static long sys_statfs(struct vfs_node n, struct statfs *u)
{
    if (!user_range_ok((uintptr_t)u, sizeof(*u)))
        return -EFAULT;
    struct statfs s;
    sdk_memset(&s, 0, sizeof(s));
    s.f_bsize = 4096;
    s.f_frsize = 4096;
    s.f_namelen = NAME_LEN;
    if (n.fs == &fs_tmpfs) {
        s.f_type = 0x01021994; /* TMPFS_MAGIC */
        s.f_blocks = (ember_ram_top >> 12);
        s.f_bfree = s.f_bavail = 0; /* what is free is the heap's: sysinfo says */
    } else if (n.fs == &fs_dev) {
        s.f_type = 0x01021994;
    } else {
        s.f_type = n.fs == &fs_none ? 0x858458f6 /* RAMFS */ : 0xe0f5e1e2 /* EROFS */;
        s.f_flags = ST_RDONLY;
    }
    *u = s;
    return 0;
}

static long syscall_body(struct call *c)
{
    struct ember_syscall_frame *f = c->frame;
    uint64_t a0 = f->rdi, a1 = f->rsi, a2 = f->rdx, a3 = f->r10, a4 = f->r8;
    struct walk w;
    struct vfs_node n;
    long r;
    switch (f->nr) {
    case SYS_open:
        return sys_openat(AT_FDCWD, (const char *)a0, (int)a1, (int)a2);
    case SYS_creat:
        return sys_openat(AT_FDCWD, (const char *)a0, O_CREAT | O_WRONLY | O_TRUNC, (int)a1);
    case SYS_openat:
        return sys_openat((int)a0, (const char *)a1, (int)a2, (int)a3);
    case SYS_stat:
        return sys_fstatat(AT_FDCWD, (const char *)a0, (struct stat *)a1, 0);
    case SYS_lstat:
        return sys_fstatat(AT_FDCWD, (const char *)a0, (struct stat *)a1, AT_SYMLINK_NOFOLLOW);
    case SYS_newfstatat:
        return sys_fstatat((int)a0, (const char *)a1, (struct stat *)a2, (int)a3);
    case SYS_statx:
        return sys_statx((int)a0, (const char *)a1, (int)a2, (unsigned)a3,
                         (struct statx_linux *)a4);
    case SYS_access:
        return sys_faccessat(AT_FDCWD, (const char *)a0, (int)a1, 0);
    case SYS_faccessat:
        return sys_faccessat((int)a0, (const char *)a1, (int)a2, 0);
    case SYS_faccessat2:
        return sys_faccessat((int)a0, (const char *)a1, (int)a2, (int)a3);
    case SYS_readlink:
        return sys_readlinkat(AT_FDCWD, (const char *)a0, (char *)a1, (long)a2);
    case SYS_readlinkat:
        return sys_readlinkat((int)a0, (const char *)a1, (char *)a2, (long)a3);
    case SYS_getdents64:
        return sys_getdents64((int)a0, (void *)a1, a2);
    case SYS_mkdir:
        return sys_mkdirat(AT_FDCWD, (const char *)a0, (int)a1);
    case SYS_mkdirat:
        return sys_mkdirat((int)a0, (const char *)a1, (int)a2);
    case SYS_unlink:
        return sys_unlinkat(AT_FDCWD, (const char *)a0, 0);
    case SYS_rmdir:
        return sys_unlinkat(AT_FDCWD, (const char *)a0, AT_REMOVEDIR);
    case SYS_unlinkat:
        return sys_unlinkat((int)a0, (const char *)a1, (int)a2);
    case SYS_rename:
        return sys_renameat2(AT_FDCWD, (const char *)a0, AT_FDCWD, (const char *)a1, 0);
    case SYS_renameat:
        return sys_renameat2((int)a0, (const char *)a1, (int)a2, (const char *)a3, 0);
    case SYS_renameat2:
        return sys_renameat2((int)a0, (const char *)a1, (int)a2, (const char *)a3, (unsigned)a4);
    case SYS_symlink:
        return sys_symlinkat((const char *)a0, AT_FDCWD, (const char *)a1);
    case SYS_symlinkat:
        return sys_symlinkat((const char *)a0, (int)a1, (const char *)a2);
    case SYS_link:
        return sys_linkat(AT_FDCWD, (const char *)a0, AT_FDCWD, (const char *)a1, 0);
    case SYS_linkat:
        return sys_linkat((int)a0, (const char *)a1, (int)a2, (const char *)a3, (int)a4);
    case SYS_truncate:
        if ((r = resolve(AT_FDCWD, (const char *)a0, W_FOLLOW, false, &w)))
            return r;
        return sys_truncate(w.node, (int64_t)a1);
    case SYS_ftruncate:
        return sys_ftruncate((int)a0, (int64_t)a1);
    case SYS_chdir:
        if ((r = resolve(AT_FDCWD, (const char *)a0, W_FOLLOW, false, &w)))
            return r;
        return set_cwd(w.node, true);
    case SYS_fchdir:
        if ((r = fd_node((int)a0, &n)))
            return r == -EINVAL ? -ENOTDIR : r;
        V->canon[0] = '\0';
        return set_cwd(n, false);
    case SYS_getcwd:
        return sys_getcwd((char *)a0, a1);
    case SYS_chmod:
    case SYS_fchmodat:
        if ((r = resolve(f->nr == SYS_chmod ? AT_FDCWD : (int)a0,
                         (const char *)(f->nr == SYS_chmod ? a0 : a1), W_FOLLOW, false, &w)))
            return r;
        return sys_setattr(w.node, 1, (mode_t)(f->nr == SYS_chmod ? a1 : a2) & 07777, NULL, NULL);
    case SYS_fchmod:
        if ((r = fd_node((int)a0, &n)))
            return r == -EINVAL ? 0 : r;
        return sys_setattr(n, 1, (mode_t)a1 & 07777, NULL, NULL);
    case SYS_chown:
    case SYS_lchown:
    case SYS_fchownat:
        /* Owners are not kept on tmpfs (everything is root's); the image
         * cannot change. */
        if ((r = resolve(f->nr == SYS_fchownat ? (int)a0 : AT_FDCWD,
                         (const char *)(f->nr == SYS_fchownat ? a1 : a0),
                         f->nr == SYS_lchown ? 0 : W_FOLLOW, false, &w)))
            return r;
        return w.node.fs->pwrite || w.node.fs->open ? 0 : -EROFS;
    case SYS_fchown:
        if ((r = fd_node((int)a0, &n)))
            return r == -EINVAL ? 0 : r;
        return n.fs->pwrite || n.fs->open ? 0 : -EROFS;
    case SYS_utimensat:
        return sys_utimensat((int)a0, (const char *)a1, (const struct timespec *)a2, (int)a3);
    case SYS_statfs:
        if ((r = resolve(AT_FDCWD, (const char *)a0, W_FOLLOW, false, &w)))
            return r;
        return sys_statfs(w.node, (struct statfs *)a1);
    case SYS_fstatfs:
        if ((r = fd_node((int)a0, &n)))
            return r;
        return sys_statfs(n, (struct statfs *)a1);
    default:
        return -ENOSYS;
    }
}

long fs_syscall(struct ember_syscall_frame *f)
{
    int r = vfs_init();
    if (r)
        return r;
    struct call c = {.fn = syscall_body, .frame = f};
    return on_fs_stack(&c);
}
