/* api_main.h: the Firecracker-compatible front of `ember`.
 *
 * monitor/main.c calls api_main() for every command line that is not
 * `ember run ...`: `ember --api-sock PATH`, `ember --config-file FILE
 * --no-api`, and the other flags Firecracker users pass (see usage in
 * api_main.c). Exit statuses follow monitor/exit_codes.h: 153 for a bad
 * command line, 152 for a rejected configuration, the guest's own status when
 * the guest ends.
 */
#ifndef EMBER_API_MAIN_H
#define EMBER_API_MAIN_H

int api_main(int argc, char **argv);

#endif
