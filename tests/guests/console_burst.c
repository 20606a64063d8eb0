/* console_burst.c: many lines in a burst (coalesced by the SDK's console
 * buffer), a line on stderr, more lines, then an end chosen by argv[1]:
 * "exit" returns 0, "fault" dereferences NULL, "abort" aborts. Every stdout
 * line must reach ember's stdout in order, whatever the end; stderr lines
 * reach ember's stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "exit";
    for (int i = 0; i < 1000; i++)
        printf("burst line %d\n", i);
    fprintf(stderr, "console_burst: to stderr\n");
    for (int i = 1000; i < 2000; i++)
        printf("burst line %d\n", i);
    if (strcmp(how, "fault") == 0)
        *(volatile int *)0 = 1;
    if (strcmp(how, "abort") == 0)
        abort();
    printf("console_burst: done\n");
    return 0;
}
