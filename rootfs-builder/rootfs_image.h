/* rootfs_image.h: images from a staged tree (see rootfs_image.c). */
#ifndef EMBER_ROOTFS_IMAGE_H
#define EMBER_ROOTFS_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

enum image_format { IMAGE_EROFS, IMAGE_EXT4, IMAGE_CPIO };

struct image_opts {
    enum image_format format;
    uint64_t size;  /* 0: computed */
    uint64_t epoch; /* every time in the image */
    bool keep_owners;
    bool progress;
};

/* What a sorted walk of the tree found. */
struct tree_info {
    uint64_t files, dirs, symlinks, hardlinks, bytes;
    uint64_t ext4_blocks;     /* 4 KiB blocks the tree's data and directories need in ext4 */
    unsigned char digest[32]; /* of names, types, modes, (owners), targets, contents */
};

int image_scan(const char *dir, bool keep_owners, struct tree_info *ti, char *err, size_t errlen);

/* Makes the image at out (written to a temporary file beside it, renamed
 * when complete). */
int image_build(const char *dir, const char *out, const struct image_opts *o,
                const struct tree_info *ti, char *err, size_t errlen);

/* The ext4 size computed for a tree, headroom included (README.md). */
uint64_t image_ext4_size(const struct tree_info *ti);

#endif /* EMBER_ROOTFS_IMAGE_H */
