/* sys_mem.c: brk, mmap and munmap over the guest's heap.
 *
 * The heap is the RAM between the end of the image and the main thread's
 * stack (boot_start.c). It is managed in 4 KiB pages with two bitmaps kept
 * at its start: "used" (handed out by brk or mmap) and "dirty" (handed out
 * at least once, so it may hold old data). brk grows upwards from the bottom,
 * mmap takes the highest free run that fits (as Linux does, top-down), so
 * the two meet only when memory is exhausted: then mmap fails with ENOMEM and
 * brk leaves the break where it was, and musl's malloc returns NULL.
 *
 * Memory handed out is zero, as on Linux. A page that was never handed out
 * is zero already (fresh guest RAM; ELF loaders zero what they do not load),
 * so only dirty pages are cleared: a guest touches no page it does not use,
 * and under ember a page the guest never touches costs the host nothing.
 * Under PVH the SDK does not know what the firmware left in RAM and treats
 * every page as dirty.
 *
 * There is one address space and no protection beyond it: mprotect and
 * madvise are accepted and do nothing (sys_dispatch.c).
 *
 * mremap (musl's realloc of a large block) grows in place when the pages
 * above the mapping are free, which is the common case: a buffer grown in
 * 4 KiB steps takes one page per call and copies nothing. When they are
 * not, MREMAP_MAYMOVE moves the mapping to the bottom of the largest free
 * run (counting the mapping's own pages as free), so that it can grow in
 * place again for as long as possible: a growing buffer is copied
 * O(log n) times, each time into room at least as large as the biggest
 * gap left. The move copies; it does not remap page tables, because the
 * identity mapping (virtual = guest-physical) is what every driver relies
 * on to hand buffers to devices, and the heap's bitmaps describe physical
 * pages one to one.
 */
#include <errno.h>
#include <sys/mman.h>

#include "sdk.h"

static uintptr_t heap_lo, heap_hi; /* page-aligned */
static size_t npages;
static uint64_t *used, *dirty;
static uintptr_t brk_cur; /* the break, byte-granular */
static size_t nused;

static int test(const uint64_t *map, size_t i)
{
    return (map[i / 64] >> (i % 64)) & 1;
}

static void set_range(uint64_t *map, size_t i, size_t n, int v)
{
    for (; n > 0 && i % 64; i++, n--)
        map[i / 64] = v ? map[i / 64] | (1ull << (i % 64)) : map[i / 64] & ~(1ull << (i % 64));
    for (; n >= 64; i += 64, n -= 64)
        map[i / 64] = v ? ~0ull : 0;
    for (; n > 0; i++, n--)
        map[i / 64] = v ? map[i / 64] | (1ull << (i % 64)) : map[i / 64] & ~(1ull << (i % 64));
}

static int range_free(size_t i, size_t n)
{
    for (size_t j = i; j < i + n; j++) {
        if (j % 64 == 0 && j + 64 <= i + n) {
            if (used[j / 64])
                return 0;
            j += 63;
            continue;
        }
        if (test(used, j))
            return 0;
    }
    return 1;
}

static size_t count_used(size_t i, size_t n)
{
    size_t c = 0;
    for (size_t j = i; j < i + n; j++)
        c += test(used, j);
    return c;
}

/* Marks [i, i + n) used and makes its contents zero. */
static void take(size_t i, size_t n)
{
    for (size_t j = i; j < i + n; j++) {
        if (j % 64 == 0 && j + 64 <= i + n && dirty[j / 64] == 0) {
            j += 63;
            continue;
        }
        if (test(dirty, j))
            sdk_memset((void *)(heap_lo + j * PAGE_SIZE), 0, PAGE_SIZE);
    }
    nused += n - count_used(i, n);
    set_range(used, i, n, 1);
    set_range(dirty, i, n, 1);
}

static void give_back(size_t i, size_t n)
{
    nused -= count_used(i, n);
    set_range(used, i, n, 0);
}

/* Highest free run of n pages: its first page, or (size_t)-1. */
static size_t find_top(size_t n)
{
    size_t run = 0, top = 0;
    for (size_t i = npages; i > 0;) {
        size_t j = i - 1;
        if (j % 64 == 63) {
            uint64_t w = used[j / 64];
            if (w == 0) {
                if (run == 0)
                    top = j;
                run += 64;
                i -= 64;
                if (run >= n)
                    return top + 1 - n;
                continue;
            }
            if (w == ~0ull) {
                run = 0;
                i -= 64;
                continue;
            }
        }
        if (test(used, j)) {
            run = 0;
        } else {
            if (run == 0)
                top = j;
            if (++run >= n)
                return top + 1 - n;
        }
        i--;
    }
    return (size_t)-1;
}

void ember_mem_init(uintptr_t lo, uintptr_t hi, int assume_dirty)
{
    lo = ALIGN_UP(lo, PAGE_SIZE);
    hi = ALIGN_DOWN(hi, PAGE_SIZE);
    if (hi <= lo + 2 * PAGE_SIZE) {
        heap_lo = heap_hi = brk_cur = lo;
        npages = 0;
        return;
    }
    size_t pages = (hi - lo) / PAGE_SIZE;
    size_t words = (pages + 63) / 64;
    size_t meta = ALIGN_UP(2 * words * sizeof(uint64_t), PAGE_SIZE);
    used = (uint64_t *)lo;
    dirty = used + words;
    /* Fresh RAM is zero (see above): then the bitmaps are already clear and
     * are touched only as the heap is used. */
    if (assume_dirty)
        sdk_memset(used, 0, 2 * words * sizeof(uint64_t));
    heap_lo = lo + meta;
    heap_hi = hi;
    npages = (heap_hi - heap_lo) / PAGE_SIZE;
    if (assume_dirty)
        set_range(dirty, 0, npages, 1);
    brk_cur = heap_lo;
    nused = 0;
}

uint64_t ember_heap_total(void)
{
    return (uint64_t)npages * PAGE_SIZE;
}

uint64_t ember_heap_free(void)
{
    return (uint64_t)(npages - nused) * PAGE_SIZE;
}

long ember_sys_brk(uintptr_t addr)
{
    if (addr < heap_lo || addr > heap_hi)
        return (long)brk_cur;
    size_t old_end = (ALIGN_UP(brk_cur, PAGE_SIZE) - heap_lo) / PAGE_SIZE;
    size_t new_end = (ALIGN_UP(addr, PAGE_SIZE) - heap_lo) / PAGE_SIZE;
    if (new_end > old_end) {
        if (!range_free(old_end, new_end - old_end))
            return (long)brk_cur;
        take(old_end, new_end - old_end);
    } else if (new_end < old_end) {
        give_back(new_end, old_end - new_end);
    }
    brk_cur = addr;
    return (long)brk_cur;
}

long ember_sys_mmap(uintptr_t addr, size_t len, int prot, int flags, int fd, long off)
{
    (void)prot; /* one address space, everything readable and writable */
    (void)fd;
    if (len == 0 || (off & (PAGE_SIZE - 1)))
        return -EINVAL;
    if (!(flags & MAP_ANONYMOUS))
        return -ENODEV; /* no files to map */
    int type = flags & MAP_TYPE;
    if (type != MAP_PRIVATE && type != MAP_SHARED)
        return -EINVAL;
    if (len > (size_t)npages * PAGE_SIZE)
        return -ENOMEM;
    size_t n = ALIGN_UP(len, PAGE_SIZE) / PAGE_SIZE;
    int in_heap = addr >= heap_lo && addr <= heap_hi && n <= (heap_hi - addr) / PAGE_SIZE &&
                  !(addr & (PAGE_SIZE - 1));

    if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
        if (addr & (PAGE_SIZE - 1))
            return -EINVAL;
        if (!in_heap)
            return -ENOMEM; /* only the heap can be mapped over */
        size_t i = (addr - heap_lo) / PAGE_SIZE;
        if (!range_free(i, n)) {
            if (flags & MAP_FIXED_NOREPLACE)
                return -EEXIST;
            set_range(dirty, i, n, 1); /* replaced: contents must go */
        }
        take(i, n);
        return (long)addr;
    }

    size_t i;
    if (addr && in_heap && range_free((addr - heap_lo) / PAGE_SIZE, n))
        i = (addr - heap_lo) / PAGE_SIZE;
    else if ((i = find_top(n)) == (size_t)-1)
        return -ENOMEM;
    /* Never take pages just above the break that brk owns: find_top only
     * sees free pages, and brk pages are marked used. */
    take(i, n);
    return (long)(heap_lo + i * PAGE_SIZE);
}

long ember_sys_munmap(uintptr_t addr, size_t len)
{
    if ((addr & (PAGE_SIZE - 1)) || len == 0)
        return -EINVAL;
    uintptr_t end = addr + ALIGN_UP(len, PAGE_SIZE);
    if (end < addr)
        return -EINVAL;
    /* Only the mmap part of the heap is given back; the break's pages and
     * memory outside the heap stay as they are (Linux would unmap them;
     * here there is nothing to unmap them to). */
    uintptr_t lo = ALIGN_UP(brk_cur, PAGE_SIZE);
    if (addr > lo)
        lo = addr;
    uintptr_t hi = end < heap_hi ? end : heap_hi;
    if (lo < hi)
        give_back((lo - heap_lo) / PAGE_SIZE, (hi - lo) / PAGE_SIZE);
    return 0;
}

/* Where n pages go in the largest run of free pages, counting the n_old
 * pages at old as free (they are about to be): n pages below the run's top
 * (room to double in place above them, the rest of the run left below for
 * brk and other mappings), or its bottom if it is smaller than 2n;
 * (size_t)-1 if no run holds n. */
static size_t find_largest(size_t n, size_t old, size_t n_old)
{
    size_t best = (size_t)-1, best_len = 0, run = 0, start = 0;
    for (size_t j = 0; j <= npages; j++) {
        bool free_page = j < npages && (!test(used, j) || (j >= old && j < old + n_old));
        if (free_page) {
            if (run++ == 0)
                start = j;
            continue;
        }
        if (run >= n && run > best_len) {
            best = start;
            best_len = run;
        }
        run = 0;
    }
    if (best != (size_t)-1 && best_len / 2 >= n)
        best += best_len - 2 * n;
    return best;
}

long ember_sys_mremap(uintptr_t old_addr, size_t old_len, size_t new_len, int flags,
                      uintptr_t new_addr)
{
    (void)new_addr;
    if (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP))
        return -EINVAL;
    if (old_addr & (PAGE_SIZE - 1))
        return -EINVAL;
    if ((flags & MREMAP_FIXED) && !(flags & MREMAP_MAYMOVE))
        return -EINVAL;
    if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP))
        return -EINVAL; /* not offered: nobody asks for them on anonymous memory */
    if (new_len == 0 || old_len == 0)
        return -EINVAL; /* old_len 0 duplicates a shared mapping on Linux */
    if (new_len > (size_t)npages * PAGE_SIZE || old_len > (size_t)npages * PAGE_SIZE)
        return -ENOMEM;
    size_t n_old = ALIGN_UP(old_len, PAGE_SIZE) / PAGE_SIZE;
    size_t n_new = ALIGN_UP(new_len, PAGE_SIZE) / PAGE_SIZE;
    if (old_addr < heap_lo || old_addr >= heap_hi || n_old > (heap_hi - old_addr) / PAGE_SIZE)
        return -EFAULT;
    size_t i = (old_addr - heap_lo) / PAGE_SIZE;
    if (count_used(i, n_old) != n_old)
        return -EFAULT; /* not all of it is mapped */
    if (n_new <= n_old) {
        if (n_new < n_old)
            give_back(i + n_new, n_old - n_new);
        return (long)old_addr;
    }
    size_t more = n_new - n_old;
    if (i + n_new <= npages && range_free(i + n_old, more)) {
        take(i + n_old, more);
        return (long)old_addr;
    }
    if (!(flags & MREMAP_MAYMOVE))
        return -ENOMEM;
    size_t j = find_largest(n_new, i, n_old);
    if (j == (size_t)-1)
        return -ENOMEM;
    uintptr_t to = heap_lo + j * PAGE_SIZE;
    if (j + n_new <= i || j >= i + n_old) {
        /* The first n_old pages are overwritten whole: no need to zero. */
        nused += n_old;
        set_range(used, j, n_old, 1);
        set_range(dirty, j, n_old, 1);
        take(j + n_old, more);
        sdk_memcpy((void *)to, (const void *)old_addr, n_old * PAGE_SIZE);
        give_back(i, n_old);
    } else {
        /* The new place overlaps the old one from below (the pages above
         * it are taken, or growing in place would have worked): copy
         * forward, which is safe when the destination is lower, then zero
         * the grown part, as Linux gives it. */
        give_back(i, n_old);
        sdk_memcpy((void *)to, (const void *)old_addr, n_old * PAGE_SIZE);
        sdk_memset((void *)(to + n_old * PAGE_SIZE), 0, more * PAGE_SIZE);
        nused += n_new;
        set_range(used, j, n_new, 1);
        set_range(dirty, j, n_new, 1);
    }
    return (long)to;
}
