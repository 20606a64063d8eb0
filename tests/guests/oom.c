/* oom.c: allocating until malloc fails must return NULL, never crash.
 * Mallocs 1 MiB chunks until NULL, touching every page of each, then prints
 * "oom: got NULL after N MiB" and exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    size_t n = 0;
    for (;;) {
        char *p = malloc(1 << 20);
        if (!p)
            break;
        for (size_t i = 0; i < (1 << 20); i += 4096)
            p[i] = (char)i;
        n++;
    }
    printf("oom: got NULL after %zu MiB\n", n);
    return 0;
}
