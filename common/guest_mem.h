/* guest_mem.h: guest RAM and the one checked way to reach it.
 *
 * Guest RAM is a single anonymous MAP_NORESERVE mapping that starts at
 * guest-physical 0: a page the guest never touches costs the host nothing.
 * Host code reaches guest memory only through guest_mem_slice(), which checks
 * (gpa, len) against the RAM size, overflow of gpa + len included.
 */
#ifndef EMBER_GUEST_MEM_H
#define EMBER_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>

struct guest_mem {
    uint8_t *host; /* host address of guest-physical 0 */
    uint64_t size; /* bytes */
};

/* Maps size bytes. Returns 0 or -1 with errno set. */
int guest_mem_map(struct guest_mem *mem, uint64_t size);
void guest_mem_unmap(struct guest_mem *mem);

/* Host pointer to [gpa, gpa + len) if it lies wholly inside guest RAM, else
 * NULL. len may be 0 (then gpa must be <= size). */
void *guest_mem_slice(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Copies a NUL-free string of at most max bytes (excluding NUL) from the host
 * into guest memory at gpa, NUL-terminated. Returns 0 or -1. */
int guest_mem_put_string(const struct guest_mem *mem, uint64_t gpa, const char *s, size_t max);

#endif
