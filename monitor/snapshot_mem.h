/* snapshot_mem.h: a snapshot's memory file (see snapshot_mem.c). */
#ifndef EMBER_SNAPSHOT_MEM_H
#define EMBER_SNAPSHOT_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/guest_mem.h"

/* Writes guest RAM to path: every non-zero page, or (pages not NULL, a
 * bitmap of guest page frames) only those of them that are set. digest gets
 * the SHA-256 of the whole of RAM either way. Returns 0 or -1 with err. */
int snapshot_mem_write(const struct guest_mem *mem, const char *path, const uint64_t *pages,
                       uint8_t digest[32], char *err, size_t errlen);
/* Records that the file open as fd (path mem_path) has this digest. */
void snapshot_mem_stamp(const char *mem_path, int fd, const uint8_t digest[32]);
/* Checks that fd (size bytes) has this digest: by its record if the file
 * has not changed since, else by hashing it (*hashed says which). Returns 0,
 * or -1 with err. */
int snapshot_mem_verify(const char *mem_path, int fd, uint64_t size, const uint8_t digest[32],
                        bool *hashed, char *err, size_t errlen);

#endif
