/* jailer_fs.h: the files of a jail: its directories, the copied exec file,
 * and removing a finished jail's tree without following links or leaving
 * the tree's file system. */
#ifndef EMBER_JAILER_FS_H
#define EMBER_JAILER_FS_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p: creates the missing components of path with mode (owned by the
 * caller); existing directories are fine. Returns 0, or an errno with the
 * component that failed in failed (if failed is not NULL). */
int jail_mkdir_p(const char *path, mode_t mode, char *failed, size_t failed_len);

/* Copies src to dst (created or truncated, never through a symlink) with
 * mode. Returns 0 or an errno; *which says which path it concerns
 * (src or dst). */
int jail_copy_file(const char *src, const char *dst, mode_t mode, const char **which);

/* Removes path and everything under it. Symlinks are removed, not followed;
 * a mount point under path is an error (EBUSY), never descended into.
 * Returns 0 (also when path does not exist) or an errno with the path that
 * failed in failed. */
int jail_remove_tree(const char *path, char *failed, size_t failed_len);

#endif
