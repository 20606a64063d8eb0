/* fs_erofs.c: a read-only EROFS reader (see fs_erofs.h).
 *
 * The format is Linux's fs/erofs/erofs_fs.h (Documentation/filesystems/
 * erofs.rst): a 128-byte superblock at byte 1024, inodes in a metadata area
 * addressed by nid (32-byte slots from meta_blkaddr), compact (32-byte) or
 * extended (64-byte) inodes, and for uncompressed files two data layouts:
 * FLAT_PLAIN (all data in consecutive blocks from raw_blkaddr) and
 * FLAT_INLINE (the same, but the last partial block stored right after the
 * inode and its xattrs). A directory's data is a sequence of blocks, each
 * an array of 12-byte dirents followed by their names (not NUL-terminated;
 * a name ends where the next one starts, the last at the first NUL or the
 * block's end). Names are sorted within a block and across blocks, which is
 * what lets erofs_lookup() binary-search: first over the blocks (by their
 * first and last names), then inside the one block that can hold the name.
 *
 * Everything read from the image is hostile: offsets and lengths are
 * checked against the device's size (with the overflow of off + len
 * checked too) before the block function is asked, dirent name offsets are
 * checked against the block, and an unknown layout or feature is refused.
 */
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "fs/fs_erofs.h"

#define BS          EROFS_BLOCK_SIZE
#define DIRENT      12u /* sizeof(struct erofs_dirent): nid le64, nameoff le16, type, reserved */
#define SLOT        32u /* nid unit */
#define SYMLINK_MAX 4095u

/* erofs_fs.h feature bits this reader can honour. */
#define EROFS_FEATURE_COMPAT_SB_CHKSUM      0x1u
#define EROFS_FEATURE_INCOMPAT_ZERO_PADDING 0x1u /* about compressed data only */

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void copy(void *d, const void *s, size_t n)
{
    uint8_t *dp = d;
    const uint8_t *sp = s;
    while (n--)
        *dp++ = *sp++;
}

/* CRC-32C (Castagnoli, reflected 0x82f63b78), seeded by the caller and not
 * inverted at the end: what Linux's crc32c() computes and EROFS stores. */
static uint32_t crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
    }
    return crc;
}

static bool range_ok(const struct erofs_fs *fs, uint64_t off, uint64_t len)
{
    uint64_t end = off + len;
    return end >= off && end <= fs->nblocks * BS;
}

int erofs_read_raw(const struct erofs_fs *fs, uint64_t off, void *buf, size_t len)
{
    uint8_t *out = buf;
    if (!range_ok(fs, off, len))
        return -EIO;
    while (len) {
        const uint8_t *b = fs->block(fs->ctx, off / BS);
        if (!b)
            return -EIO;
        size_t in = (size_t)(off % BS), n = BS - in;
        if (n > len)
            n = len;
        copy(out, b + in, n);
        out += n;
        off += n;
        len -= n;
    }
    return 0;
}

int erofs_mount(struct erofs_fs *fs, erofs_block_fn block, void *ctx, uint64_t dev_size,
                const char **why)
{
    static uint8_t sb[BS - EROFS_SUPER_OFFSET]; /* the superblock's block after byte 1024 */
    *fs = (struct erofs_fs){.block = block, .ctx = ctx, .nblocks = dev_size / BS};
    if (fs->nblocks < 1) {
        *why = "smaller than one block";
        return -EIO;
    }
    if (erofs_read_raw(fs, EROFS_SUPER_OFFSET, sb, sizeof(sb)) < 0) {
        *why = "cannot read the superblock";
        return -EIO;
    }
    if (le32(sb) != EROFS_SUPER_MAGIC) {
        *why = "no EROFS magic at byte 1024";
        return -EIO;
    }
    if (sb[12] != 12) {
        *why = "block size is not 4096";
        return -EIO;
    }
    fs->feature_compat = le32(sb + 8);
    fs->feature_incompat = le32(sb + 80);
    if (fs->feature_compat & EROFS_FEATURE_COMPAT_SB_CHKSUM) {
        uint32_t want = le32(sb + 4);
        sb[4] = sb[5] = sb[6] = sb[7] = 0;
        if (crc32c(~0u, sb, sizeof(sb)) != want) {
            *why = "superblock checksum mismatch";
            return -EIO;
        }
    }
    if (fs->feature_incompat & ~EROFS_FEATURE_INCOMPAT_ZERO_PADDING) {
        *why = "uses incompatible features (compression, chunks, devices)";
        return -EIO;
    }
    if (sb[13] != 0) { /* sb_extslots: a larger superblock this reader does not know */
        *why = "extended superblock";
        return -EIO;
    }
    uint32_t blocks = le32(sb + 36), meta = le32(sb + 40);
    if (blocks > fs->nblocks) {
        *why = "superblock claims more blocks than the device has";
        return -EIO;
    }
    if (meta >= fs->nblocks) {
        *why = "metadata area beyond the device";
        return -EIO;
    }
    fs->nblocks = blocks ? blocks : fs->nblocks;
    if (meta >= fs->nblocks) {
        *why = "metadata area beyond the image";
        return -EIO;
    }
    fs->root_nid = le16(sb + 14);
    fs->inos = le64(sb + 16);
    fs->build_time = le64(sb + 24);
    fs->build_time_nsec = le32(sb + 32);
    fs->meta_off = (uint64_t)meta * BS;
    copy(fs->uuid, sb + 48, 16);
    struct erofs_inode root;
    int r = erofs_iget(fs, fs->root_nid, &root);
    if (r < 0 || !S_ISDIR(root.mode)) {
        *why = "the root inode is not a readable directory";
        return -EIO;
    }
    return 0;
}

int erofs_iget(const struct erofs_fs *fs, uint64_t nid, struct erofs_inode *ino)
{
    uint8_t d[64];
    uint64_t max_nid = (fs->nblocks * BS - fs->meta_off) / SLOT;
    if (nid >= max_nid)
        return -EIO;
    uint64_t off = fs->meta_off + nid * SLOT;
    if (erofs_read_raw(fs, off, d, 32) < 0)
        return -EIO;
    uint16_t format = le16(d);
    bool extended = format & 1;
    unsigned layout = (format >> 1) & 7;
    if (format >> 4)
        return -EIO; /* bits no version of the format defines */
    if (extended && erofs_read_raw(fs, off, d, 64) < 0)
        return -EIO;
    uint16_t icount = le16(d + 2);
    uint64_t isize = extended ? 64 : 32, xsize = icount ? 12 + (uint64_t)(icount - 1) * 4 : 0;
    *ino = (struct erofs_inode){.nid = nid, .mode = le16(d + 4), .layout = (uint8_t)layout};
    if (extended) {
        ino->size = le64(d + 8);
        ino->uid = le32(d + 24);
        ino->gid = le32(d + 28);
        ino->mtime = le64(d + 32);
        ino->mtime_nsec = le32(d + 40);
        ino->nlink = le32(d + 44);
    } else {
        ino->size = le32(d + 8);
        ino->nlink = le16(d + 6);
        ino->uid = le16(d + 24);
        ino->gid = le16(d + 26);
        ino->mtime = fs->build_time;
        ino->mtime_nsec = fs->build_time_nsec;
    }
    uint32_t u = le32(d + 16);
    switch (ino->mode & S_IFMT) {
    case S_IFREG:
    case S_IFDIR:
    case S_IFLNK:
        break;
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
    case S_IFSOCK:
        ino->rdev = u;
        ino->size = 0;
        return 0;
    default:
        return -EIO;
    }
    if (S_ISLNK(ino->mode) && (ino->size == 0 || ino->size > SYMLINK_MAX))
        return -EIO;
    if (ino->size >> 62)
        return -EIO;
    uint64_t nblocks = (ino->size + BS - 1) / BS;
    if (layout == EROFS_INODE_FLAT_PLAIN) {
        ino->data_off = (uint64_t)u * BS;
        ino->block_bytes = ino->size;
        if (ino->size && !range_ok(fs, ino->data_off, nblocks * BS))
            return -EIO;
    } else if (layout == EROFS_INODE_FLAT_INLINE) {
        ino->data_off = (uint64_t)u * BS;
        ino->block_bytes = nblocks ? (nblocks - 1) * BS : 0;
        ino->tail_off = off + isize + xsize;
        uint64_t tail = ino->size - ino->block_bytes;
        if (ino->block_bytes && !range_ok(fs, ino->data_off, ino->block_bytes))
            return -EIO;
        if (!range_ok(fs, ino->tail_off, tail) || ino->tail_off % BS + tail > BS)
            return -EIO; /* the inline tail may not cross a block */
    } else if (layout <= 4) {
        return -EOPNOTSUPP; /* compressed (1, 3) or chunk-based (4) */
    } else {
        return -EIO;
    }
    return 0;
}

int erofs_map(const struct erofs_inode *ino, uint64_t pos, uint64_t *off, uint64_t *len)
{
    if (pos >= ino->size)
        return -EIO;
    if (pos < ino->block_bytes) {
        *off = ino->data_off + pos;
        *len = ino->block_bytes - pos;
    } else {
        *off = ino->tail_off + (pos - ino->block_bytes);
        *len = ino->size - pos;
    }
    return 0;
}

long erofs_pread(const struct erofs_fs *fs, const struct erofs_inode *ino, void *buf, size_t len,
                 uint64_t pos)
{
    if (pos >= ino->size)
        return 0;
    if (len > ino->size - pos)
        len = (size_t)(ino->size - pos);
    size_t done = 0;
    while (done < len) {
        uint64_t off, n;
        if (erofs_map(ino, pos + done, &off, &n) < 0)
            return -EIO;
        if (n > len - done)
            n = len - done;
        if (erofs_read_raw(fs, off, (uint8_t *)buf + done, (size_t)n) < 0)
            return done ? (long)done : -EIO;
        done += (size_t)n;
    }
    return (long)done;
}

/* One directory block: its bytes and how many entries it has. */
struct dblock {
    const uint8_t *p;
    unsigned len, n;
};

static int dir_block(const struct erofs_fs *fs, const struct erofs_inode *dir, uint64_t i,
                     struct dblock *db)
{
    uint64_t pos = i * BS, off, n;
    if (erofs_map(dir, pos, &off, &n) < 0)
        return -EIO;
    uint64_t len = dir->size - pos < BS ? dir->size - pos : BS;
    if (off % BS + len > BS)
        return -EIO;
    const uint8_t *b = fs->block(fs->ctx, off / BS);
    if (!b)
        return -EIO;
    db->p = b + off % BS;
    db->len = (unsigned)len;
    unsigned nameoff0 = le16(db->p + 8);
    if (len < DIRENT || nameoff0 < DIRENT || nameoff0 % DIRENT || nameoff0 >= len)
        return -EIO;
    db->n = nameoff0 / DIRENT;
    return 0;
}

/* Entry k of a block: its name and length, checked. */
static int dir_name(const struct dblock *db, unsigned k, const uint8_t **name, unsigned *nlen)
{
    const uint8_t *de = db->p + k * DIRENT;
    unsigned start = le16(de + 8), end;
    if (start < db->n * DIRENT || start >= db->len)
        return -EIO;
    if (k + 1 < db->n) {
        end = le16(de + DIRENT + 8);
        if (end > db->len)
            return -EIO;
    } else {
        end = start;
        while (end < db->len && db->p[end])
            end++;
    }
    if (end <= start || end - start > EROFS_NAME_LEN)
        return -EIO;
    *name = db->p + start;
    *nlen = end - start;
    return 0;
}

static int cmp(const char *a, size_t alen, const uint8_t *b, unsigned blen)
{
    size_t n = alen < blen ? alen : blen;
    for (size_t i = 0; i < n; i++) {
        uint8_t x = (uint8_t)a[i];
        if (x != b[i])
            return x < b[i] ? -1 : 1;
    }
    return alen == blen ? 0 : (alen < blen ? -1 : 1);
}

int erofs_lookup(const struct erofs_fs *fs, const struct erofs_inode *dir, const char *name,
                 size_t len, uint64_t *nid)
{
    if (!S_ISDIR(dir->mode))
        return -ENOTDIR;
    if (len == 0 || len > EROFS_NAME_LEN)
        return len ? -ENAMETOOLONG : -ENOENT;
    uint64_t nb = (dir->size + BS - 1) / BS;
    if (nb == 0)
        return -ENOENT;
    int64_t lo = 0, hi = (int64_t)nb - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        struct dblock db;
        const uint8_t *nm;
        unsigned nl;
        if (dir_block(fs, dir, (uint64_t)mid, &db) < 0 || dir_name(&db, 0, &nm, &nl) < 0)
            return -EIO;
        int c = cmp(name, len, nm, nl);
        if (c < 0) {
            hi = mid - 1;
            continue;
        }
        if (dir_name(&db, db.n - 1, &nm, &nl) < 0)
            return -EIO;
        if (cmp(name, len, nm, nl) > 0) {
            lo = mid + 1;
            continue;
        }
        /* The name can only be in this block. */
        int l = 0, h = (int)db.n - 1;
        while (l <= h) {
            int m = l + (h - l) / 2;
            if (dir_name(&db, (unsigned)m, &nm, &nl) < 0)
                return -EIO;
            c = cmp(name, len, nm, nl);
            if (c == 0) {
                *nid = le64(db.p + (unsigned)m * DIRENT);
                return 0;
            }
            if (c < 0)
                h = m - 1;
            else
                l = m + 1;
        }
        return -ENOENT;
    }
    return -ENOENT;
}

int erofs_readdir(const struct erofs_fs *fs, const struct erofs_inode *dir, uint64_t *pos,
                  erofs_emit_fn emit, void *arg)
{
    if (!S_ISDIR(dir->mode))
        return -ENOTDIR;
    /* *pos = block * BS + entry index: stable across calls, as d_off is. */
    while (*pos / BS * BS < dir->size) {
        uint64_t blk = *pos / BS;
        unsigned k = (unsigned)(*pos % BS);
        struct dblock db;
        if (dir_block(fs, dir, blk, &db) < 0)
            return -EIO;
        for (; k < db.n; k++) {
            const uint8_t *nm;
            unsigned nl;
            if (dir_name(&db, k, &nm, &nl) < 0)
                return -EIO;
            const uint8_t *de = db.p + k * DIRENT;
            uint64_t next = k + 1 < db.n ? blk * BS + k + 1 : (blk + 1) * BS;
            if (emit(arg, (const char *)nm, nl, le64(de), de[10], next))
                return 0;
            *pos = next;
            /* emit may have made the block function reuse its buffer */
            if (dir_block(fs, dir, blk, &db) < 0)
                return -EIO;
        }
        *pos = (blk + 1) * BS;
    }
    return 0;
}

unsigned erofs_ftype_to_dt(unsigned ftype)
{
    static const uint8_t dt[] = {0, 8, 4, 2, 6, 1, 12, 10}; /* DT_REG 8, DT_DIR 4, ... */
    return ftype < sizeof(dt) ? dt[ftype] : 0;
}
