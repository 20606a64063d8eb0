/* guest_mem.c: guest RAM mapping and checked guest-physical translation. */
#include "common/guest_mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int map(struct guest_mem *mem, uint64_t size, int fd, void *at)
{
    void *p = mmap(
        at, size, PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_NORESERVE | (fd < 0 ? MAP_ANONYMOUS : 0) | (at ? MAP_FIXED : 0), fd, 0);
    if (p == MAP_FAILED)
        return -1;
    /* Guest RAM never goes into a core dump of the monitor, and is never
     * backed by transparent huge pages: one guest touch must not cost the
     * host 2 MiB (hosts with THP "always" would do that). */
    (void)madvise(p, size, MADV_DONTDUMP);
    (void)madvise(p, size, MADV_NOHUGEPAGE);
    mem->host = p;
    mem->size = size;
    mem->file_backed = fd >= 0;
    return 0;
}

int guest_mem_map(struct guest_mem *mem, uint64_t size)
{
    return map(mem, size, -1, NULL);
}

int guest_mem_map_file(struct guest_mem *mem, int fd, uint64_t size)
{
    return map(mem, size, fd, NULL);
}

int guest_mem_remap_file(struct guest_mem *mem, int fd)
{
    /* MAP_FIXED replaces the anonymous pages in one step: the range is
     * never unmapped, so no other mapping of this process can land in it,
     * and KVM's MMU notifier drops whatever it had mapped of the old pages
     * (nothing, before the guest's first instruction). */
    if (mem->file_backed || mem->host_dirty || !mem->host) {
        errno = EINVAL;
        return -1;
    }
    if (map(mem, mem->size, fd, mem->host) == 0)
        return 0;
    /* A failed MAP_FIXED may have unmapped the range: forget it rather
     * than unmap later what the process may have mapped there since. */
    mem->host = NULL;
    mem->size = 0;
    return -1;
}

void guest_mem_unmap(struct guest_mem *mem)
{
    free(mem->host_dirty);
    mem->host_dirty = NULL;
    if (mem->host)
        munmap(mem->host, mem->size);
    mem->host = NULL;
    mem->size = 0;
    mem->file_backed = false;
    mem->lost = NULL;
}

void *guest_mem_slice(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
    uint64_t end;

    if (__builtin_add_overflow(gpa, len, &end) || end > mem->size)
        return NULL;
    return mem->host + gpa;
}

int guest_mem_put_string(const struct guest_mem *mem, uint64_t gpa, const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    char *dst;

    if (n > max)
        return -1;
    dst = guest_mem_slice(mem, gpa, n + 1);
    if (!dst)
        return -1;
    memcpy(dst, s, n + 1);
    return 0;
}

int guest_mem_track_host_writes(struct guest_mem *mem)
{
    if (!mem->host_dirty)
        mem->host_dirty = calloc((mem->size / 4096 + 63) / 64, sizeof(uint64_t));
    return mem->host_dirty ? 0 : -1;
}

void guest_mem_mark_dirty(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
    uint64_t end;

    if (!mem->host_dirty || len == 0 || __builtin_add_overflow(gpa, len, &end) || end > mem->size)
        return;
    for (uint64_t p = gpa / 4096; p <= (end - 1) / 4096; p++)
        __atomic_fetch_or(&mem->host_dirty[p / 64], 1ull << (p % 64), __ATOMIC_RELAXED);
}

void guest_mem_take_host_dirty(struct guest_mem *mem, uint64_t *bits, size_t words)
{
    size_t n = (mem->size / 4096 + 63) / 64;

    if (!mem->host_dirty)
        return;
    for (size_t i = 0; i < n && i < words; i++)
        bits[i] |= __atomic_exchange_n(&mem->host_dirty[i], 0, __ATOMIC_RELAXED);
}
