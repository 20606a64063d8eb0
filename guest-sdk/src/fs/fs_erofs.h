/* fs_erofs.h: a read-only EROFS reader, shared by the guest SDK (the root
 * file system) and the host tool (`ember-rootfs inspect`, fuzzing).
 *
 * The reader knows the on-disk format (superblock, compact and extended
 * inodes, flat plain and flat inline data, directory blocks) and nothing of
 * where the bytes live: it asks its caller for one block at a time through
 * erofs_block_fn. Every field it takes from the image is checked against the
 * image's size before use, so a hostile image gives -EIO, never a read out
 * of bounds. It allocates nothing and calls no libc function.
 */
#ifndef EMBER_FS_EROFS_H
#define EMBER_FS_EROFS_H

#include <stddef.h>
#include <stdint.h>

#define EROFS_SUPER_OFFSET 1024u
#define EROFS_SUPER_MAGIC  0xe0f5e1e2u
#define EROFS_NAME_LEN     255u
#define EROFS_BLOCK_SIZE   4096u /* the only size Debian 12's mkfs.erofs writes */

/* Directory entry types (erofs_fs.h EROFS_FT_*): the same numbers as DT_* >> 1
 * is not true, hence erofs_ftype_to_dt(). */
enum {
    EROFS_FT_UNKNOWN,
    EROFS_FT_REG_FILE,
    EROFS_FT_DIR,
    EROFS_FT_CHRDEV,
    EROFS_FT_BLKDEV,
    EROFS_FT_FIFO,
    EROFS_FT_SOCK,
    EROFS_FT_SYMLINK,
};

/* The block with number blkno (EROFS_BLOCK_SIZE bytes), valid until the
 * next call, or NULL if it cannot be read. Blocks past the image's end are
 * never asked for. */
typedef const uint8_t *(*erofs_block_fn)(void *ctx, uint64_t blkno);

struct erofs_fs {
    erofs_block_fn block;
    void *ctx;
    uint64_t nblocks; /* the device's size in blocks */
    uint64_t root_nid;
    uint64_t meta_off; /* byte offset of the metadata area */
    uint64_t inos;
    uint64_t build_time;
    uint32_t build_time_nsec;
    uint32_t feature_compat, feature_incompat;
    uint8_t uuid[16];
};

struct erofs_inode {
    uint64_t nid;
    uint64_t size;
    uint64_t mtime;
    uint32_t mtime_nsec;
    uint32_t mode; /* S_IFMT | permissions */
    uint32_t nlink;
    uint32_t uid, gid;
    uint32_t rdev;
    uint8_t layout;       /* EROFS_INODE_FLAT_* */
    uint64_t data_off;    /* byte offset of the first data block */
    uint64_t tail_off;    /* FLAT_INLINE: byte offset of the inline tail */
    uint64_t block_bytes; /* bytes of the file held in whole blocks at data_off */
};

#define EROFS_INODE_FLAT_PLAIN  0u
#define EROFS_INODE_FLAT_INLINE 2u

/* Checks the superblock of a device of dev_size bytes. 0, or -EIO with
 * *why set to a static message. */
int erofs_mount(struct erofs_fs *fs, erofs_block_fn block, void *ctx, uint64_t dev_size,
                const char **why);

/* Reads and checks the inode nid. 0, -EIO (corrupt), -EOPNOTSUPP (a layout
 * this reader does not know: compressed, chunked). */
int erofs_iget(const struct erofs_fs *fs, uint64_t nid, struct erofs_inode *ino);

/* Where the file's byte pos lives: *off (byte offset in the image) and how
 * many bytes from there are contiguous (*len > 0). pos < ino->size. */
int erofs_map(const struct erofs_inode *ino, uint64_t pos, uint64_t *off, uint64_t *len);

/* Copies len bytes at byte offset off of the image (through the block
 * function). 0 or -EIO. */
int erofs_read_raw(const struct erofs_fs *fs, uint64_t off, void *buf, size_t len);

/* Copies up to len bytes of the file from pos: bytes copied or -errno. */
long erofs_pread(const struct erofs_fs *fs, const struct erofs_inode *ino, void *buf, size_t len,
                 uint64_t pos);

/* Looks name (len bytes, no '/') up in directory dir by binary search over
 * its blocks, then within the block. 0 and *nid, -ENOENT, -ENOTDIR, -EIO. */
int erofs_lookup(const struct erofs_fs *fs, const struct erofs_inode *dir, const char *name,
                 size_t len, uint64_t *nid);

/* Directory iteration. *pos is a cookie: 0 at the start; it is advanced
 * past each entry given to emit. emit returns 0 to go on, anything else to
 * stop (that entry is not consumed). Returns 0 at the end or when emit
 * stopped, -EIO on a corrupt block. Entries come in on-disk (sorted) order,
 * "." and ".." included. */
typedef int (*erofs_emit_fn)(void *arg, const char *name, size_t len, uint64_t nid, unsigned ftype,
                             uint64_t next_pos);
int erofs_readdir(const struct erofs_fs *fs, const struct erofs_inode *dir, uint64_t *pos,
                  erofs_emit_fn emit, void *arg);

/* DT_* for an EROFS_FT_* */
unsigned erofs_ftype_to_dt(unsigned ftype);

#endif /* EMBER_FS_EROFS_H */
