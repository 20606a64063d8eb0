/* rootfs_oci.h: OCI images as a source (see rootfs_oci.c). */
#ifndef EMBER_ROOTFS_OCI_H
#define EMBER_ROOTFS_OCI_H

#include <stdbool.h>

#include "rootfs-builder/rootfs_stage.h"

/* Whether dir is an OCI image layout (oci-layout + index.json) or an
 * unpacked `docker save` (manifest.json). */
bool oci_is_image_dir(const char *dir);

/* Applies the image's layers, in order, to the stage. */
int oci_apply(struct stage *s, const char *dir);

#endif /* EMBER_ROOTFS_OCI_H */
