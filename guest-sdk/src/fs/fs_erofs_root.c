/* fs_erofs_root.c: the root file system: an EROFS image on a virtio-blk
 * drive, read through a small block cache.
 *
 * fs_erofs.c knows the format; this file gives it blocks and turns its
 * inodes into the VFS's nodes (ids are nids). The cache holds 64 blocks of
 * 4 KiB (256 KiB of guest RAM, taken page by page as blocks are first
 * read) in 32 sets of 2, so the metadata of a path walk (superblock, inode
 * and directory blocks) stays in memory. File data bypasses it when it can:
 * the whole 4 KiB blocks in the middle of a read go from the device straight
 * into the caller's buffer, in one request per contiguous run; only the
 * partial blocks at either end go through the cache. Mounting reads the
 * superblock and the root inode: the same two blocks whatever the number of
 * files in the image.
 */
#include <errno.h>
#include <sys/stat.h>

#include <ember/blk.h>

#include "fs/fs_erofs.h"
#include "fs/fs_vfs.h"
#include "sdk.h"

#define SETS 32u
#define WAYS 2u
#define BS   EROFS_BLOCK_SIZE

struct root {
    struct ember_blk *blk;
    struct erofs_fs fs;
    uint64_t tag[SETS][WAYS]; /* block number + 1; 0 = empty */
    uint8_t *data[SETS][WAYS];
    uint8_t lru[SETS]; /* the way to evict next */
};

static struct root *R;

static const uint8_t *block(void *ctx, uint64_t blkno)
{
    struct root *r = ctx;
    unsigned set = (unsigned)(blkno % SETS);
    for (unsigned w = 0; w < WAYS; w++)
        if (r->tag[set][w] == blkno + 1) {
            r->lru[set] = (uint8_t)(w ^ 1);
            return r->data[set][w];
        }
    unsigned w = r->lru[set];
    if (!r->data[set][w] && !(r->data[set][w] = fs_pages(1)))
        return NULL;
    r->tag[set][w] = 0;
    if (ember_blk_read(r->blk, blkno * BS, r->data[set][w], BS) != 0)
        return NULL;
    r->tag[set][w] = blkno + 1;
    r->lru[set] = (uint8_t)(w ^ 1);
    return r->data[set][w];
}

static int iget(uint64_t nid, struct erofs_inode *ino)
{
    int r = erofs_iget(&R->fs, nid, ino);
    return r == -EOPNOTSUPP ? -EIO : r;
}

static int root_lookup(uint64_t dir, const char *name, size_t len, uint64_t *out)
{
    struct erofs_inode d;
    int r = iget(dir, &d);
    return r ? r : erofs_lookup(&R->fs, &d, name, len, out);
}

static int root_stat(uint64_t id, struct stat *st)
{
    struct erofs_inode i;
    int r = iget(id, &i);
    if (r)
        return r;
    st->st_ino = id;
    st->st_mode = i.mode;
    st->st_nlink = i.nlink ? i.nlink : 1;
    st->st_uid = i.uid;
    st->st_gid = i.gid;
    st->st_rdev = i.rdev;
    st->st_size = (off_t)i.size;
    st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = (time_t)i.mtime;
    st->st_atim.tv_nsec = st->st_mtim.tv_nsec = st->st_ctim.tv_nsec = i.mtime_nsec;
    return 0;
}

static long root_readlink(uint64_t id, char *buf, size_t len)
{
    struct erofs_inode i;
    int r = iget(id, &i);
    if (r)
        return r;
    if (!S_ISLNK(i.mode))
        return -EINVAL;
    return erofs_pread(&R->fs, &i, buf, len, 0);
}

static long root_pread(uint64_t id, void *buf, size_t len, uint64_t pos)
{
    struct erofs_inode i;
    int r = iget(id, &i);
    if (r)
        return r;
    if (pos >= i.size)
        return 0;
    if (len > i.size - pos)
        len = (size_t)(i.size - pos);
    uint8_t *out = buf;
    size_t done = 0;
    while (done < len) {
        uint64_t off, n;
        if (erofs_map(&i, pos + done, &off, &n) < 0)
            return done ? (long)done : -EIO;
        if (n > len - done)
            n = len - done;
        /* whole blocks straight from the device */
        if (off % BS == 0 && n >= BS) {
            uint64_t whole = n / BS * BS;
            if (ember_blk_read(R->blk, off, out + done, (size_t)whole) != 0)
                return done ? (long)done : -EIO;
            done += (size_t)whole;
            continue;
        }
        uint64_t in = off % BS, k = BS - in < n ? BS - in : n;
        const uint8_t *b = block(R, off / BS);
        if (!b)
            return done ? (long)done : -EIO;
        sdk_memcpy(out + done, b + in, (size_t)k);
        done += (size_t)k;
    }
    return (long)done;
}

struct emit_ctx {
    vfs_emit_fn emit;
    void *arg;
};

static int emit_one(void *arg, const char *name, size_t len, uint64_t nid, unsigned ftype,
                    uint64_t next)
{
    struct emit_ctx *e = arg;
    return e->emit(e->arg, name, len, nid, erofs_ftype_to_dt(ftype), next);
}

static int root_readdir(uint64_t dir, uint64_t *cookie, vfs_emit_fn emit, void *arg)
{
    struct erofs_inode d;
    int r = iget(dir, &d);
    if (r)
        return r;
    struct emit_ctx e = {emit, arg};
    return erofs_readdir(&R->fs, &d, cookie, emit_one, &e);
}

static const struct vfs_fs fs_root = {
    .name = "erofs",
    .dev = (254u << 8), /* virtio-blk's usual major, the first drive */
    .lookup = root_lookup,
    .stat = root_stat,
    .readlink = root_readlink,
    .pread = root_pread,
    .readdir = root_readdir,
};

int fs_root_mount(unsigned drive, struct vfs_node *root)
{
    static const char msg[] = "ember: root drive: ";
    struct root *r = fs_pages(ALIGN_UP(sizeof(*r), PAGE_SIZE) / PAGE_SIZE);
    if (!r)
        return -ENOMEM;
    int e = ember_blk_open(drive, &r->blk);
    const char *why = "cannot open the drive";
    if (e == 0)
        e = erofs_mount(&r->fs, block, r, ember_blk_size(r->blk), &why);
    if (e < 0) {
        ember_console_puts(msg);
        ember_console_puts("not a usable EROFS image: ");
        ember_console_puts(why);
        ember_console_puts("; / is empty\n");
        return e;
    }
    R = r;
    *root = (struct vfs_node){&fs_root, r->fs.root_nid};
    return 0;
}
