/* ember/blk.h: virtio-blk drives from inside an SDK guest.
 *
 * Drives are numbered in the order the monitor lists them (`ember run
 * --drive A --drive B`, or PUT /drives in order): index 0 is also
 * /dev/vda for open(2), 1 is /dev/vdb, and so on. A drive is set up on its
 * first open (nothing at boot) and stays set up; opening it again returns
 * the same handle. Single-threaded, as the SDK is.
 *
 * I/O is synchronous: a call returns when the device has completed it.
 * Offsets and lengths of ember_blk_read/_write are in bytes and must be
 * multiples of 512 (the virtio sector); large transfers are split into
 * requests the device accepts (seg_max, size_max) and kept in flight
 * together. Buffers are any guest memory (guest addresses are what the
 * device sees; no copy is made).
 *
 * Errors are negative errno values: -ENODEV (no such drive), -EINVAL
 * (misaligned, or beyond the end of the drive), -EROFS (writing a read-only
 * drive), -EOPNOTSUPP (the device does not offer the request), -EIO (the
 * device failed the request).
 */
#ifndef EMBER_BLK_H
#define EMBER_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EMBER_BLK_SECTOR 512u
#define EMBER_BLK_ID_MAX 20u /* bytes of a drive id (virtio 1.2 §5.2.6) */

struct ember_blk; /* opaque */

struct ember_blk_info {
    unsigned index;    /* 0 = /dev/vda */
    uint64_t size;     /* bytes */
    uint32_t blk_size; /* the device's preferred block size (512 if unsaid) */
    uint32_t seg_max;  /* segments per request */
    uint32_t size_max; /* bytes per segment, 0 = no limit said */
    bool read_only;    /* VIRTIO_BLK_F_RO */
    bool flush;        /* VIRTIO_BLK_F_FLUSH: a write cache that FLUSH empties */
    bool discard;      /* VIRTIO_BLK_F_DISCARD */
    bool write_zeroes; /* VIRTIO_BLK_F_WRITE_ZEROES */
    uint16_t queue_size;
};

/* How many virtio-blk drives the VM has. */
unsigned ember_blk_count(void);

/* Open the index-th drive, or the drive whose id (GET_ID, the API's
 * drive_id) is id. 0 and *out, or -errno. */
int ember_blk_open(unsigned index, struct ember_blk **out);
int ember_blk_open_id(const char *id, struct ember_blk **out);

/* Reads the size from the device again (a drive's backing file can be
 * swapped after boot, PATCH /drives); ember_blk_size gives the last one
 * read, without a VM exit. */
void ember_blk_info(struct ember_blk *b, struct ember_blk_info *info);
uint64_t ember_blk_size(const struct ember_blk *b);
bool ember_blk_read_only(const struct ember_blk *b);

/* The drive's id, NUL-terminated (buf of EMBER_BLK_ID_MAX + 1 bytes). */
int ember_blk_get_id(struct ember_blk *b, char *buf);

/* Byte offsets and lengths, multiples of EMBER_BLK_SECTOR. 0 or -errno. */
int ember_blk_read(struct ember_blk *b, uint64_t offset, void *buf, size_t len);
int ember_blk_write(struct ember_blk *b, uint64_t offset, const void *buf, size_t len);
/* The same in sectors. */
int ember_blk_read_sectors(struct ember_blk *b, uint64_t sector, void *buf, uint32_t count);
int ember_blk_write_sectors(struct ember_blk *b, uint64_t sector, const void *buf, uint32_t count);

/* FLUSH when the device offers it (a Writeback drive: the host fsyncs);
 * without it (an Unsafe drive) there is nothing the guest can flush and
 * this returns 0 at once. */
int ember_blk_flush(struct ember_blk *b);

/* DISCARD (the host punches a hole) and WRITE_ZEROES (reads back zeroes;
 * with unmap, the host may punch a hole too). Byte ranges, multiples of
 * EMBER_BLK_SECTOR. -EOPNOTSUPP when the device does not offer them. */
int ember_blk_discard(struct ember_blk *b, uint64_t offset, uint64_t len);
int ember_blk_write_zeroes(struct ember_blk *b, uint64_t offset, uint64_t len, bool unmap);

/* One raw request as given (virtio 1.2 §5.2.6 type: 0 IN, 1 OUT, 4 FLUSH,
 * 8 GET_ID, 11 DISCARD, 13 WRITE_ZEROES), with no check of range, feature
 * or read-only flag: for tests and tools that want to see what the device
 * answers. 0, -EIO (IOERR), -EOPNOTSUPP (UNSUPP). */
int ember_blk_request(struct ember_blk *b, uint32_t type, uint64_t sector, void *buf, uint32_t len);

#endif /* EMBER_BLK_H */
