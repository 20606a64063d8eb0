/* posix_check.h: CHECK() for the posix_* test guests, which are built both
 * with ember-cc and natively for the host (tests/guests/CMakeLists.txt) and
 * must print the same lines in both: a failed CHECK prints the line and
 * the reason and exits 1. */
#ifndef POSIX_CHECK_H
#define POSIX_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("%s: FAIL line %d: ", TEST_NAME, __LINE__);                                     \
            printf(__VA_ARGS__);                                                                   \
            printf(" (errno %s)\n", strerror(errno));                                              \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#endif
