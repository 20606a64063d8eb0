/* blk_posix.c: /dev/vda, /dev/vdb, ... for open(2) and the fd system calls.
 *
 * open("/dev/vd<letter>") opens drive <letter> - 'a' (<ember/blk.h>) and
 * gives an fd (sys_fd.c) whose ops are below:
 *  - read/write/pread/pwrite: sector-aligned offset and length go straight
 *    to the device with the caller's buffer; anything else is split into an
 *    aligned middle (direct) and partial head and tail sectors, which go
 *    through a one-sector bounce buffer (read-modify-write for writes).
 *    Reads stop at the end of the drive (0 at or past it); writes are cut
 *    there, and at or past it fail with ENOSPC, as on Linux;
 *  - lseek (SEEK_SET/CUR/END), fsync/fdatasync (FLUSH when offered; an
 *    Unsafe drive has no cache to flush, so it succeeds at once), fstat
 *    (S_IFBLK; st_size is the drive's size, where Linux says 0 for block
 *    devices: more useful, and what a program that stats a disk image
 *    expects), ioctl BLKGETSIZE64, BLKGETSIZE, BLKSSZGET, BLKPBSZGET,
 *    BLKROGET, BLKFLSBUF, BLKDISCARD, BLKZEROOUT.
 * Opening a read-only drive for writing fails with EROFS.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <ember/blk.h>

#include "posix/sys_fd.h"
#include "sdk.h"

/* <linux/fs.h> (not in musl's headers). */
#define BLKROGET      0x125e
#define BLKGETSIZE    0x1260
#define BLKFLSBUF     0x1261
#define BLKSSZGET     0x1268
#define BLKDISCARD    0x1277
#define BLKPBSZGET    0x127b
#define BLKZEROOUT    0x127f
#define BLKGETSIZE64  0x80081272
#define VIRTBLK_MAJOR 254u /* what Linux's virtio_blk usually gets */

#define SECTOR EMBER_BLK_SECTOR

static uint8_t *bounce; /* one sector, allocated on first unaligned I/O */

long blk_posix_open(const char *rest, int flags, int mode);

static struct ember_blk *blk(const struct fd_entry *f)
{
    return f->priv;
}

static int bounce_get(void)
{
    if (bounce)
        return 0;
    long p =
        ember_sys_mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p < 0)
        return -ENOMEM;
    bounce = (uint8_t *)p;
    return 0;
}

static long do_pread(struct fd_entry *f, void *buf, size_t len, int64_t off)
{
    struct ember_blk *b = blk(f);
    uint64_t size = ember_blk_size(b), o = (uint64_t)off;
    if (o >= size || len == 0)
        return 0;
    if (len > size - o)
        len = (size_t)(size - o);
    if (o % SECTOR == 0 && len % SECTOR == 0) { /* the fast path */
        int r = ember_blk_read(b, o, buf, len);
        return r ? r : (long)len;
    }
    int r = bounce_get();
    if (r)
        return r;
    uint8_t *p = buf;
    size_t left = len;
    if (o % SECTOR) { /* head */
        uint64_t s = ALIGN_DOWN(o, SECTOR);
        size_t in = SECTOR - (size_t)(o - s);
        size_t n = left < in ? left : in;
        if ((r = ember_blk_read(b, s, bounce, SECTOR)) != 0)
            return r;
        sdk_memcpy(p, bounce + (o - s), n);
        p += n;
        o += n;
        left -= n;
    }
    size_t mid = ALIGN_DOWN(left, SECTOR);
    if (mid) {
        if ((r = ember_blk_read(b, o, p, mid)) != 0)
            return r;
        p += mid;
        o += mid;
        left -= mid;
    }
    if (left) { /* tail */
        if ((r = ember_blk_read(b, o, bounce, SECTOR)) != 0)
            return r;
        sdk_memcpy(p, bounce, left);
    }
    return (long)len;
}

static long do_pwrite(struct fd_entry *f, const void *buf, size_t len, int64_t off)
{
    struct ember_blk *b = blk(f);
    uint64_t size = ember_blk_size(b), o = (uint64_t)off;
    if (len == 0)
        return 0;
    if (o >= size)
        return -ENOSPC;
    if (len > size - o)
        len = (size_t)(size - o);
    if (o % SECTOR == 0 && len % SECTOR == 0) {
        int r = ember_blk_write(b, o, buf, len);
        return r ? r : (long)len;
    }
    int r = bounce_get();
    if (r)
        return r;
    const uint8_t *p = buf;
    size_t left = len;
    if (o % SECTOR) { /* head: read, patch, write */
        uint64_t s = ALIGN_DOWN(o, SECTOR);
        size_t in = SECTOR - (size_t)(o - s);
        size_t n = left < in ? left : in;
        if ((r = ember_blk_read(b, s, bounce, SECTOR)) != 0)
            return r;
        sdk_memcpy(bounce + (o - s), p, n);
        if ((r = ember_blk_write(b, s, bounce, SECTOR)) != 0)
            return r;
        p += n;
        o += n;
        left -= n;
    }
    size_t mid = ALIGN_DOWN(left, SECTOR);
    if (mid) {
        if ((r = ember_blk_write(b, o, p, mid)) != 0)
            return r;
        p += mid;
        o += mid;
        left -= mid;
    }
    if (left) { /* tail */
        if ((r = ember_blk_read(b, o, bounce, SECTOR)) != 0)
            return r;
        sdk_memcpy(bounce, p, left);
        if ((r = ember_blk_write(b, o, bounce, SECTOR)) != 0)
            return r;
    }
    return (long)len;
}

static long blk_read(struct fd_entry *f, void *buf, size_t len)
{
    long r = do_pread(f, buf, len, f->pos);
    if (r > 0)
        f->pos += r;
    return r;
}

static long blk_write(struct fd_entry *f, const void *buf, size_t len)
{
    long r = do_pwrite(f, buf, len, f->pos);
    if (r > 0)
        f->pos += r;
    return r;
}

static long blk_lseek(struct fd_entry *f, int64_t off, int whence)
{
    int64_t base;
    switch (whence) {
    case SEEK_SET:
        base = 0;
        break;
    case SEEK_CUR:
        base = f->pos;
        break;
    case SEEK_END:
        base = (int64_t)ember_blk_size(blk(f));
        break;
    default:
        return -EINVAL;
    }
    if ((off > 0 && base > INT64_MAX - off) || base + off < 0)
        return -EINVAL;
    f->pos = base + off;
    return f->pos;
}

static long blk_fstat(struct fd_entry *f, struct stat *st)
{
    struct ember_blk_info in;
    ember_blk_info(blk(f), &in);
    st->st_mode = S_IFBLK | (in.read_only ? 0440 : 0660);
    st->st_rdev = (VIRTBLK_MAJOR << 8) | (in.index * 16);
    st->st_size = (off_t)in.size;
    st->st_blksize = in.blk_size > PAGE_SIZE ? in.blk_size : PAGE_SIZE;
    st->st_blocks = (blkcnt_t)(in.size / SECTOR);
    return 0;
}

static long blk_fsync(struct fd_entry *f, int datasync)
{
    (void)datasync;
    return ember_blk_flush(blk(f));
}

static long range_ioctl(struct fd_entry *f, uintptr_t arg, bool zero)
{
    if (!user_range_ok(arg, 2 * sizeof(uint64_t)))
        return -EFAULT;
    if ((f->flags & O_ACCMODE) == O_RDONLY)
        return -EBADF;
    const uint64_t *r = (const uint64_t *)arg;
    uint64_t start = r[0], len = r[1];
    if (start % SECTOR || len % SECTOR)
        return -EINVAL;
    uint64_t size = ember_blk_size(blk(f));
    if (start > size || len > size - start)
        return -EINVAL;
    if (len == 0)
        return 0;
    return zero ? ember_blk_write_zeroes(blk(f), start, len, false)
                : ember_blk_discard(blk(f), start, len);
}

static long blk_ioctl(struct fd_entry *f, unsigned long req, uintptr_t arg)
{
    struct ember_blk_info in;
    ember_blk_info(blk(f), &in);
    switch (req) {
    case BLKGETSIZE64:
        if (!user_range_ok(arg, sizeof(uint64_t)))
            return -EFAULT;
        *(uint64_t *)arg = in.size;
        return 0;
    case BLKGETSIZE: /* 512-byte sectors, an unsigned long */
        if (!user_range_ok(arg, sizeof(unsigned long)))
            return -EFAULT;
        *(unsigned long *)arg = (unsigned long)(in.size / SECTOR);
        return 0;
    case BLKSSZGET:
    case BLKPBSZGET:
        if (!user_range_ok(arg, sizeof(int)))
            return -EFAULT;
        *(int *)arg = req == BLKSSZGET ? (int)SECTOR : (int)in.blk_size;
        return 0;
    case BLKROGET:
        if (!user_range_ok(arg, sizeof(int)))
            return -EFAULT;
        *(int *)arg = in.read_only;
        return 0;
    case BLKFLSBUF:
        return ember_blk_flush(blk(f));
    case BLKDISCARD:
        return range_ioctl(f, arg, false);
    case BLKZEROOUT:
        return range_ioctl(f, arg, true);
    default:
        return -ENOTTY;
    }
}

static const struct fd_ops blk_ops = {
    .kind = "blk",
    .read = blk_read,
    .write = blk_write,
    .pread = do_pread,
    .pwrite = do_pwrite,
    .lseek = blk_lseek,
    .fstat = blk_fstat,
    .ioctl = blk_ioctl,
    .fsync = blk_fsync,
};

long blk_posix_open(const char *rest, int flags, int mode)
{
    (void)mode;
    if (rest[0] < 'a' || rest[0] > 'z' || rest[1] != '\0')
        return -ENOENT; /* no partitions */
    if ((flags & O_CREAT) && (flags & O_EXCL))
        return -EEXIST;
    if (flags & O_DIRECTORY)
        return -ENOTDIR;
    struct ember_blk *b;
    int r = ember_blk_open((unsigned)(rest[0] - 'a'), &b);
    if (r)
        return r == -ENODEV ? -ENXIO : r;
    int acc = flags & O_ACCMODE;
    if (acc != O_RDONLY && ember_blk_read_only(b))
        return -EROFS;
    return fd_alloc_flags(&blk_ops, b, flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC),
                          (flags & O_CLOEXEC) ? FD_CLOEXEC : 0);
}
