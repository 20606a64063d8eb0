/* cli.h: `ember run [--mem MIB] [--timings] [--boot-timer] GUEST.elf [ARGS...]`.
 *
 * Parses the quick command line into a struct vm_config, the same
 * configuration the HTTP API and the config file build. Guest arguments are
 * joined into the guest command line with cli_quote_args(), which the SDK
 * splits back into argv exactly (spaces, quotes and backslashes survive).
 */
#ifndef EMBER_CLI_H
#define EMBER_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "monitor/vm_config.h"

/* Parses argv of `ember run` (argv[0] is "run"). Returns 0, or -1 with a
 * one-line message in err. On success cfg owns its strings. */
int cli_parse_run(int argc, char **argv, struct vm_config *cfg, char *err, size_t errlen);

/* Joins args into one command line: an argument that is empty or holds a
 * space, tab, newline, quote or backslash is written in double quotes with
 * `"` and `\` escaped by a backslash. Returns a malloc'd string or NULL. */
char *cli_quote_args(int argc, char *const *argv);

void cli_usage(FILE *out);

#endif
