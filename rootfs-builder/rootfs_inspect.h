/* rootfs_inspect.h: `ember-rootfs inspect` (see rootfs_inspect.c). */
#ifndef EMBER_ROOTFS_INSPECT_H
#define EMBER_ROOTFS_INSPECT_H

#include <stdbool.h>
#include <stdio.h>

/* Lists the tree of an EROFS image or a cpio archive on out. 0, or -1 with
 * err set. */
int inspect_image(const char *path, bool sha256, FILE *out, char *err, size_t errlen);

#endif /* EMBER_ROOTFS_INSPECT_H */
