/* args.c: prints argc and every argv[i] between brackets, one per line, so a
 * test can check how the command line was split:
 *     argc=3
 *     argv[0]=[...]
 *     argv[1]=[a b]
 */
#include <stdio.h>

int main(int argc, char **argv)
{
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++)
        printf("argv[%d]=[%s]\n", i, argv[i]);
    return 0;
}
