/* net_alloc.c: the network stack's memory in the guest (net_zalloc,
 * net_free of net_stack.h).
 *
 * The stack allocates inside system calls, where musl's malloc cannot be
 * used (it would make system calls itself), so it takes pages from the
 * SDK's heap (sys_mem.c): small objects (control blocks, queued datagrams,
 * ARP's pending frames) from power-of-two classes of 64 B to 2 KiB carved
 * out of pages and kept on free lists, larger ones (socket rings) as whole
 * pages, given back on free.
 */
#include <errno.h>
#include <sys/mman.h>

#include "net/net_stack.h"
#include "sdk.h"

#define CLASS_MIN_SHIFT 6u  /* 64 B */
#define CLASS_MAX_SHIFT 11u /* 2 KiB */
#define NCLASS          (CLASS_MAX_SHIFT - CLASS_MIN_SHIFT + 1)

struct chunk {
    struct chunk *next;
};

static struct chunk *free_list[NCLASS];

static unsigned class_of(size_t len)
{
    unsigned c = 0;
    while (((size_t)1 << (CLASS_MIN_SHIFT + c)) < len)
        c++;
    return c;
}

void *net_zalloc(size_t len)
{
    if (len == 0)
        len = 1;
    if (len > ((size_t)1 << CLASS_MAX_SHIFT)) {
        long p = ember_sys_mmap(0, ALIGN_UP(len, PAGE_SIZE), PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p < 0 ? NULL : (void *)p; /* fresh pages are zeroed */
    }
    unsigned c = class_of(len);
    size_t size = (size_t)1 << (CLASS_MIN_SHIFT + c);
    if (!free_list[c]) {
        long p = ember_sys_mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                -1, 0);
        if (p < 0)
            return NULL;
        for (size_t off = 0; off + size <= PAGE_SIZE; off += size) {
            struct chunk *k = (struct chunk *)(p + off);
            k->next = free_list[c];
            free_list[c] = k;
        }
    }
    struct chunk *k = free_list[c];
    free_list[c] = k->next;
    sdk_memset(k, 0, size);
    return k;
}

void net_free(void *p, size_t len)
{
    if (!p)
        return;
    if (len == 0)
        len = 1;
    if (len > ((size_t)1 << CLASS_MAX_SHIFT)) {
        ember_sys_munmap((uintptr_t)p, ALIGN_UP(len, PAGE_SIZE));
        return;
    }
    unsigned c = class_of(len);
    struct chunk *k = p;
    k->next = free_list[c];
    free_list[c] = k;
}
