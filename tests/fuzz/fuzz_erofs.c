/* fuzz_erofs.c: the guest SDK's EROFS reader (guest-sdk/src/fs/fs_erofs.c)
 * over hostile images.
 *
 * The input is an image. Its superblock checksum flag is cleared first, or
 * almost every mutation would stop at the checksum and the rest of the
 * parser would go untested. Then: mount, walk the tree (at most 16 levels and
 * 4096 entries, so a directory that holds its ancestor ends), stat every
 * inode, read every file and symlink, and look up each name found plus a
 * few that are not there. Any out-of-bounds read is a crash under ASan; the
 * reader may only answer -EIO.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "guest-sdk/src/fs/fs_erofs.h"

struct img {
    const uint8_t *data;
    size_t size;
    uint8_t blk[EROFS_BLOCK_SIZE];
};

static struct erofs_fs fs;
static int budget;

static const uint8_t *block(void *ctx, uint64_t blkno)
{
    struct img *m = ctx;
    if (blkno >= m->size / EROFS_BLOCK_SIZE)
        abort(); /* the reader promised never to ask past the end */
    memcpy(m->blk, m->data + blkno * EROFS_BLOCK_SIZE, EROFS_BLOCK_SIZE);
    return m->blk;
}

static void visit(uint64_t nid, int depth);

struct ctx {
    const struct erofs_inode *dir;
    int depth;
};

static int emit(void *arg, const char *name, size_t len, uint64_t nid, unsigned ftype,
                uint64_t next)
{
    struct ctx *c = arg;
    uint64_t found;
    (void)ftype;
    (void)next;
    if (--budget < 0)
        return 1;
    erofs_lookup(&fs, c->dir, name, len, &found);
    if (!(len == 1 && name[0] == '.') && !(len == 2 && name[0] == '.' && name[1] == '.'))
        visit(nid, c->depth + 1);
    return 0;
}

static void visit(uint64_t nid, int depth)
{
    static char buf[8192];
    struct erofs_inode ino;
    if (depth > 16 || erofs_iget(&fs, nid, &ino) < 0)
        return;
    if (S_ISDIR(ino.mode)) {
        struct ctx c = {&ino, depth};
        uint64_t pos = 0, out;
        erofs_readdir(&fs, &ino, &pos, emit, &c);
        erofs_lookup(&fs, &ino, "zzzz-not-there", 14, &out);
        erofs_lookup(&fs, &ino, "", 0, &out);
    } else {
        for (uint64_t pos = 0; pos < ino.size && pos < (1u << 20);) {
            long n = erofs_pread(&fs, &ino, buf, sizeof(buf), pos);
            if (n <= 0)
                break;
            pos += (uint64_t)n;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t copy[1 << 20];
    if (size > sizeof(copy) || size < 2048)
        return 0;
    memcpy(copy, data, size);
    copy[1024 + 8] &= (uint8_t)~1u; /* feature_compat: no SB_CHKSUM */
    struct img m = {.data = copy, .size = size / EROFS_BLOCK_SIZE * EROFS_BLOCK_SIZE};
    const char *why;
    if (erofs_mount(&fs, block, &m, m.size, &why) < 0)
        return 0;
    budget = 4096;
    visit(fs.root_nid, 0);
    return 0;
}
