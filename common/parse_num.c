/* parse_u64(): decimal numbers from text, by one rule (parse_num.h). */
#include "common/parse_num.h"

#include <errno.h>
#include <stdlib.h>

int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    /* strtoull() skips leading space and takes a sign: the first character
     * must already be a digit. */
    if (!s || s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}
