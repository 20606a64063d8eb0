/* guest_mem.c: guest RAM mapping and checked guest-physical translation. */
#include "common/guest_mem.h"

#include <string.h>
#include <sys/mman.h>

int guest_mem_map(struct guest_mem *mem, uint64_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return -1;
    /* Guest RAM never goes into a core dump of the monitor, and is never
     * backed by transparent huge pages: one guest touch must not cost the
     * host 2 MiB (hosts with THP "always" would do that). */
    (void)madvise(p, size, MADV_DONTDUMP);
    (void)madvise(p, size, MADV_NOHUGEPAGE);
    mem->host = p;
    mem->size = size;
    return 0;
}

void guest_mem_unmap(struct guest_mem *mem)
{
    if (mem->host)
        munmap(mem->host, mem->size);
    mem->host = NULL;
    mem->size = 0;
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
