/* errmsg(): the one way host code fills a caller's error buffer.
 *
 * Functions that can fail take (char *err, size_t errlen) and, on failure,
 * leave one message there naming the thing and the reason (STYLE.md,
 * "Errors"); `return errmsg(-1, err, errlen, "drive %s: %s", ...)` reads as
 * the failure it is.
 */
#ifndef EMBER_COMMON_ERRMSG_H
#define EMBER_COMMON_ERRMSG_H

#include <stddef.h>

/* Formats fmt into err (truncated to errlen, always terminated; nothing when
 * err is NULL or errlen is 0) and returns rc. */
int errmsg(int rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
