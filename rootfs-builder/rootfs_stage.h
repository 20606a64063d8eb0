/* rootfs_stage.h: the staging tree of ember-rootfs (see rootfs_stage.c).
 *
 * Every source (directory, tarball, OCI layers) is first written into a
 * private directory that ember-rootfs creates (mkdtemp) and removes; the
 * image is then made from that tree. Writing the staging tree is the only
 * place untrusted names turn into files, so it is where every entry is
 * checked: its path, its type, its size, where its links lead.
 */
#ifndef EMBER_ROOTFS_STAGE_H
#define EMBER_ROOTFS_STAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define STAGE_ERR_MAX 1024

struct stage_limits {
    uint64_t max_bytes;   /* file bytes in the tree */
    uint64_t max_entries; /* entries in the tree */
    uint64_t max_ratio;   /* archive bytes expanded / bytes read, past 64 MiB */
};

struct stage {
    char dir[4096]; /* the private directory */
    int dirfd;
    bool keep_owners;
    bool progress;
    struct stage_limits lim;
    uint64_t bytes, entries;
    uint64_t in_bytes; /* compressed bytes read so far, for the ratio */
    char err[STAGE_ERR_MAX];
};

/* Creates the private directory under tmpdir (NULL: $TMPDIR or /tmp). */
int stage_open(struct stage *s, const char *tmpdir);
/* Removes the private directory and everything in it. */
void stage_close(struct stage *s);

/* Copies a directory tree into the stage. */
int stage_add_tree(struct stage *s, const char *src);
/* Extracts an archive (tar, cpio, ...; gzip, xz, zstd, bzip2 or none).
 * layer: an OCI layer (whiteouts and opaque directories are applied to what
 * is already staged). */
int stage_add_archive(struct stage *s, const char *path, bool layer);

/* Whether an archive holds a top-level name (manifest.json, oci-layout). */
int stage_archive_has(const char *path, const char *name, bool *has, char *err, size_t errlen);

/* Cleans a path from an archive or a manifest: strips "./" and "/"
 * repetitions, refuses absolute paths, ".." components, empty names and
 * names too long. out gets the clean relative path ("" for the root). */
int stage_clean_path(const char *in, char *out, size_t outlen, char *why, size_t whylen);

#endif /* EMBER_ROOTFS_STAGE_H */
