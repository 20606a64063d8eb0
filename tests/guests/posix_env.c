/* posix_env.c: the environment and the arguments a program starts with.
 * Prints argv[1..] and environ in order, then getenv() of a few names; run
 * side by side with the native build under `env -i` (run-side-by-side.sh),
 * the output must be the same. */
#include <stdio.h>
#include <stdlib.h>

extern char **environ;

int main(int argc, char **argv)
{
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++)
        printf("argv[%d]=[%s]\n", i, argv[i]);
    int n = 0;
    for (char **e = environ; *e; e++, n++)
        printf("env[%d]=[%s]\n", n, *e);
    const char *names[] = {"GREETING", "SPACED", "EMPTY", "HOME", "console"};
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = getenv(names[i]);
        printf("getenv(%s)=%s%s%s\n", names[i], v ? "[" : "", v ? v : "NULL", v ? "]" : "");
    }
    printf("posix_env: ok\n");
    return 0;
}
