/* posix_mremap.c: mremap as musl's realloc uses it, and as Linux answers
 * it. Growth in place keeps the address; a move keeps the contents; the
 * grown part is zero; errors are Linux's. Prints the same natively. */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#define TEST_NAME "posix_mremap"
#include "posix_check.h"

#define MIB (1024 * 1024)

int main(void)
{
    size_t pg = 4096;
    char *a = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(a != MAP_FAILED, "mmap");
    for (size_t i = 0; i < 4 * pg; i++)
        a[i] = (char)(i * 7);
    /* Shrink keeps the address. */
    char *b = mremap(a, 4 * pg, 2 * pg, 0);
    CHECK(b == a, "shrink in place");
    /* Grow: in place or moved, contents kept, new part zero. */
    b = mremap(a, 2 * pg, 64 * pg, MREMAP_MAYMOVE);
    CHECK(b != MAP_FAILED, "grow");
    int same = 1, zero = 1;
    for (size_t i = 0; i < 2 * pg; i++)
        same &= b[i] == (char)(i * 7);
    for (size_t i = 2 * pg; i < 64 * pg; i++)
        zero &= b[i] == 0;
    CHECK(same && zero, "contents kept, grown part zero");
    printf("mremap: shrink, grow, contents ok\n");
    /* Without MAYMOVE, a mapping that cannot grow in place gives ENOMEM:
     * put a mapping right above it first. */
    char *c = mmap(b + 64 * pg, pg, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    size_t bsz = 64 * pg;
    if (c == b + 64 * pg) {
        CHECK(mremap(b, 64 * pg, 65 * pg, 0) == MAP_FAILED && errno == ENOMEM, "ENOMEM");
        char *d = mremap(b, 64 * pg, 128 * pg, MREMAP_MAYMOVE);
        CHECK(d != MAP_FAILED && d != b && d[pg] == (char)(pg * 7), "moved");
        b = d;
        bsz = 128 * pg;
        munmap(c, pg);
    } else if (c != MAP_FAILED) {
        munmap(c, pg);
    }
    printf("mremap: ENOMEM in place, MAYMOVE moves ok\n");
    CHECK(mremap(b + 1, pg, 2 * pg, MREMAP_MAYMOVE) == MAP_FAILED && errno == EINVAL, "unaligned");
    CHECK(mremap(b, pg, 0, MREMAP_MAYMOVE) == MAP_FAILED && errno == EINVAL, "new size 0");
    CHECK(mremap(b, pg, 2 * pg, MREMAP_FIXED) == MAP_FAILED && errno == EINVAL, "FIXED alone");
    munmap(b, bsz);
    printf("mremap: errors ok\n");

    /* realloc growing in 4 KiB steps to 48 MiB, then doubling to 64 MiB:
     * neither runs out of a 128 MiB guest's memory. */
    char *p = NULL;
    for (size_t n = pg; n <= 48 * MIB; n += pg) {
        char *q = realloc(p, n);
        CHECK(q, "realloc to %zu", n);
        p = q;
        p[n - 1] = (char)(n >> 12);
    }
    int ok = 1;
    for (size_t n = pg; n <= 48 * MIB; n += pg)
        ok &= p[n - 1] == (char)(n >> 12);
    CHECK(ok, "contents after growth");
    free(p);
    p = NULL;
    size_t sz;
    for (sz = MIB; sz <= 64 * MIB; sz *= 2) {
        char *q = realloc(p, sz);
        CHECK(q, "doubling to %zu MiB", sz / MIB);
        p = q;
        memset(p + sz / 2, 1, sz / 2);
    }
    free(p);
    printf("realloc: 4 KiB steps to 48 MiB, doubling to 64 MiB ok\n");
    printf("posix_mremap: ok\n");
    return 0;
}
