/* stack_overflow.c: unbounded recursion. The main stack's guard (ember.ld)
 * must stop it with "stack overflow" and status 255, before it runs into
 * the text below the stack. */
#include <stdio.h>

static volatile int limit = 1 << 30; /* never reached: the stack ends first */

static int depth(volatile char *prev, int n)
{
    volatile char frame[512];
    frame[0] = (char)n;
    frame[511] = prev ? prev[0] : 0;
    if (n >= limit)
        return 0;
    return depth(frame, n + 1) + frame[1];
}

int main(void)
{
    printf("stack_overflow: recursing\n");
    int r = depth(NULL, 0);
    printf("stack_overflow: FAIL came back (%d)\n", r);
    return 1;
}
