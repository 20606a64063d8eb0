/* abort.c: abort() raises SIGABRT; the guest must end with status 134
 * (128 + 6) after "ember: guest killed by signal 6 (SIGABRT)". */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    printf("abort: calling abort()\n");
    fflush(stdout);
    abort();
}
