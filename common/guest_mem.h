/* guest_mem.h: guest RAM and the one checked way to reach it.
 *
 * Guest RAM is a single anonymous MAP_NORESERVE mapping that starts at
 * guest-physical 0: a page the guest never touches costs the host nothing.
 * Host code reaches guest memory only through guest_mem_slice(), which checks
 * (gpa, len) against the RAM size, overflow of gpa + len included.
 */
#ifndef EMBER_GUEST_MEM_H
#define EMBER_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem {
    uint8_t *host;    /* host address of guest-physical 0 */
    uint64_t size;    /* bytes */
    bool file_backed; /* a snapshot's memory file, mapped copy-on-write */
    /* Pages the host wrote (devices filling buffers and used rings), one
     * bit per 4 KiB page, when dirty pages are tracked; else NULL. */
    uint64_t *host_dirty;
    /* File-backed RAM: non-zero once a host access found a page gone from
     * the file (truncated under the VM, monitor/mem_fault.h), which reads
     * as zeros from then on; NULL for anonymous RAM. */
    const uint64_t *lost;
};

/* Whether mem has lost pages (guest_mem.lost): what it holds is no longer
 * the guest's, and whatever reads it is told so elsewhere. */
static inline bool guest_mem_lost(const struct guest_mem *mem)
{
    return mem->lost && __atomic_load_n(mem->lost, __ATOMIC_ACQUIRE) != 0;
}

/* Maps size bytes. Returns 0 or -1 with errno set. */
int guest_mem_map(struct guest_mem *mem, uint64_t size);
/* Maps size bytes of the file fd privately (copy-on-write, MAP_PRIVATE):
 * pages are read lazily from the page cache, which every VM restored from
 * the same file shares, and a page becomes the VM's own only when written.
 * Returns 0 or -1 with errno set. */
int guest_mem_map_file(struct guest_mem *mem, int fd, uint64_t size);
/* Puts the file fd where the anonymous RAM of mem was, at the same host
 * address and size (a KVM memory slot set up ahead on that address then
 * sees the file's pages). Returns 0 or -1 with errno set. */
int guest_mem_remap_file(struct guest_mem *mem, int fd);
void guest_mem_unmap(struct guest_mem *mem);

/* Dirty-page tracking of the host's own writes (KVM logs the guest's): on
 * from guest_mem_track_host_writes() (0 or -1), marked by whoever writes
 * into guest RAM, collected (OR-ed into bits and cleared) for a Diff
 * snapshot. */
int guest_mem_track_host_writes(struct guest_mem *mem);
void guest_mem_mark_dirty(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
void guest_mem_take_host_dirty(struct guest_mem *mem, uint64_t *bits, size_t words);

/* Host pointer to [gpa, gpa + len) if it lies wholly inside guest RAM, else
 * NULL. len may be 0 (then gpa must be <= size). */
void *guest_mem_slice(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Copies a NUL-free string of at most max bytes (excluding NUL) from the host
 * into guest memory at gpa, NUL-terminated. Returns 0 or -1. */
int guest_mem_put_string(const struct guest_mem *mem, uint64_t gpa, const char *s, size_t max);

#endif
