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

#include <stdbool.h>
#include <stddef.h>

int api_main(int argc, char **argv);

struct snapshot_prepared;

/* The restore server's child that has an API socket (cmd/restore_server.h):
 * the process `ember --api-sock API_SOCK --id ID` would be after a
 * PUT /snapshot/load with resume_vm of the prepared snapshot, started at
 * once; started(arg) runs when its VM runs. Returns only if it could not
 * start (an EMBER_EXIT_* code, the reason in err); otherwise the process
 * ends as `ember --api-sock` does. */
struct api_restored {
    const char *api_sock, *id; /* id: NULL for the default */
    const char *state_path, *mem_path, *vsock_uds_path;
    const struct snapshot_prepared *prepared;
    bool no_seccomp;
    void (*started)(void *arg);
    void *arg;
    char *err;
    size_t errlen;
};
int api_main_restored(const struct api_restored *r);

#endif
