/* hello.c: the smallest useful ember guest.
 *
 * Prints a greeting and its arguments, one per line, and exits with the
 * status given by `--exit N` (default 0):
 *     ember run hello a "b c" --exit 3
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    int status = 0;

    printf("Hello from ember!\n");
    for (int i = 1; i < argc; i++) {
        printf("argv[%d] = \"%s\"\n", i, argv[i]);
        if (strcmp(argv[i], "--exit") == 0 && i + 1 < argc)
            status = atoi(argv[i + 1]);
    }
    return status;
}
