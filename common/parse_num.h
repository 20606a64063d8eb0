/* parse_u64(): the one rule for numbers on command lines, in flags and in
 * configuration given as text.
 *
 * A number is one or more decimal digits and nothing else: no sign, no
 * leading or trailing space, no 0x, no suffix. strtoull() alone would accept
 * " 5", "+5" and "-1" (as 2^64 - 1), which is never what an operator meant.
 */
#ifndef EMBER_COMMON_PARSE_NUM_H
#define EMBER_COMMON_PARSE_NUM_H

#include <stdint.h>

/* Parses s by the rule above into *out. Returns 0, or -1 (and leaves *out
 * alone) when s is NULL, not a number by the rule, overflows 64 bits, or is
 * above max. */
int parse_u64(const char *s, uint64_t max, uint64_t *out);

#endif
