/* main.c: the `ember` command. `ember run ...` boots a guest from the quick
 * command line; the Firecracker-style front (--api-sock, --config-file) is in
 * api-socket/. Both build the VM through vm_config and vm_create(). */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "api-socket/api_main.h"
#include "cmd/cli.h"
#include "cmd/invoke.h"
#include "cmd/restore_server.h"
#include "cmd/run_loop.h"
#include "cmd/snapshot_cli.h"
#include "monitor/exit_codes.h"
#include "monitor/snapshot.h"
#include "monitor/vm.h"
#include "monitor/vm_start.h"

/* --restore DIR (DIR/state, DIR/mem) or --restore STATE [--mem-file MEM]
 * (default STATE.mem). */
#define RESTORE_PATH_MAX 4200

static int restore(const struct vm_config *cfg, struct vm **vm, char *err, size_t errlen)
{
    /* On the heap: 8 KiB of this process's stack would stay dirty, so
     * private, for the VM's whole life. */
    char *state = malloc(2 * RESTORE_PATH_MAX), *mem = state + RESTORE_PATH_MAX;
    const size_t n = RESTORE_PATH_MAX;
    struct stat st;
    int rc;

    if (!state) {
        snprintf(err, errlen, "out of memory");
        return EMBER_EXIT_GENERIC;
    }
    if (stat(cfg->restore_path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(state, n, "%s/state", cfg->restore_path);
        snprintf(mem, n, "%s/mem", cfg->restore_path);
    } else {
        snprintf(state, n, "%s", cfg->restore_path);
        snprintf(mem, n, "%s.mem", cfg->restore_path);
    }
    if (cfg->restore_mem_path)
        snprintf(mem, n, "%s", cfg->restore_mem_path);
    struct snapshot_load ld = {
        .state_path = state,
        .mem_path = mem,
        .vsock_uds_path = cfg->has_vsock ? cfg->vsock.uds_path : NULL,
        .track_dirty_pages = cfg->track_dirty_pages,
        .clock_realtime = cfg->clock_realtime,
        .timings = cfg->timings,
        .boot_timer = cfg->boot_timer,
        .no_seccomp = cfg->no_seccomp,
    };
    rc = snapshot_restore(&ld, vm, err, errlen);
    free(state);
    if (rc == 0 && cfg->timings)
        snapshot_print_timings(STDERR_FILENO);
    return rc;
}

/* --snapshot-on-ready DIR: made here if it is missing (one level, as mkdir
 * does), so a wrong path is said before the guest runs, not after it has
 * done its initialisation. 0, or 1 with the reason in err. */
static int prepare_snapshot_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;

    if (mkdir(dir, 0755) == 0 || (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)))
        return 0;
    if (errno == EEXIST)
        snprintf(err, errlen, "--snapshot-on-ready %s: not a directory", dir);
    else
        snprintf(err, errlen, "--snapshot-on-ready %s: cannot create it: %s", dir, strerror(errno));
    return 1;
}

static int cmd_run(int argc, char **argv)
{
    struct vm_config cfg;
    struct vm *vm = NULL;
    char err[512];
    int rc;

    if (cli_parse_run(argc, argv, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "ember: %s\n", err);
        cli_usage(stderr);
        vm_config_release(&cfg);
        return EMBER_EXIT_ARG_PARSING;
    }
    if (cfg.snapshot_on_ready && prepare_snapshot_dir(cfg.snapshot_on_ready, err, sizeof(err))) {
        fprintf(stderr, "ember: %s\n", err);
        vm_config_release(&cfg);
        return EMBER_EXIT_ARG_PARSING;
    }
    if (cfg.restore_path)
        rc = restore(&cfg, &vm, err, sizeof(err));
    else
        rc = vm_create(&cfg, &vm, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "ember: %s\n", err);
        vm_config_release(&cfg);
        return rc;
    }
    char *snapshot_dir = cfg.snapshot_on_ready;
    cfg.snapshot_on_ready = NULL;
    vm_config_release(&cfg);
    /* Snapshotting needs the loop even without devices. */
    rc = vm_has_devices(vm) || snapshot_dir ? cmd_run_vm(vm, snapshot_dir, NULL, NULL) : vm_run(vm);
    free(snapshot_dir);
    vm_destroy(vm);
    return rc;
}

int main(int argc, char **argv)
{
    /* A closed console must not kill the monitor: writes just fail. */
    signal(SIGPIPE, SIG_IGN);
    vm_note_main_stack(__builtin_frame_address(0));
    /* One malloc arena for every thread: a thread that allocates (the API's
     * VM builder, the vCPU thread's messages) would otherwise get an arena
     * of its own, 16 KiB or more of private memory per VM for nothing (the
     * monitor's threads hardly contend). */
    mallopt(M_ARENA_MAX, 1);
    if (argc >= 2 && strcmp(argv[1], "invoke") == 0)
        return ember_invoke_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "snapshot") == 0)
        return ember_snapshot_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "restore-server") == 0)
        return restore_server_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    /* Firecracker's front: --api-sock, --config-file, --version, --help... */
    return api_main(argc, argv);
}
