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
#include "cmd/snapshot_cli.h"
#include "monitor/exit_codes.h"
#include "monitor/snapshot.h"
#include "monitor/vm.h"
#include "monitor/vm_start.h"

/* With devices, the main thread serves them on a libuv loop while the vCPU
 * runs in a thread of its own (DESIGN.md, "Threads"; vm_start.h). */
struct run_state {
    uv_async_t done;
    int status;
    struct vm *vm;
    const char *snapshot_dir; /* --snapshot-on-ready */
    uv_async_t ready;
};

/* The guest called ember_faas_ready() (vCPU thread): park it and let the
 * loop take the snapshot. */
static void on_guest_ready(struct vm *vm, void *arg)
{
    struct run_state *rs = arg;

    vm_request_pause(vm);
    uv_async_send(&rs->ready);
}

static void on_ready(uv_async_t *a)
{
    struct run_state *rs = a->data;
    char state[4200], mem[4200], err[512];
    int rc = 0;

    if (vm_pause(rs->vm) != 0)
        return; /* the guest ended meanwhile */
    snprintf(state, sizeof(state), "%s/state", rs->snapshot_dir);
    snprintf(mem, sizeof(mem), "%s/mem", rs->snapshot_dir);
    if (snapshot_create(rs->vm, state, mem, SNAPSHOT_FULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "ember: %s\n", err);
        rc = EMBER_EXIT_GENERIC;
    } else {
        fprintf(stderr, "ember: snapshot of the ready guest in %s\n", rs->snapshot_dir);
    }
    /* This VM's work was to make the snapshot: it ends here. */
    vm_stop(rs->vm, rc);
}

static void on_vcpu_exit(void *arg, int status)
{
    struct run_state *rs = arg;

    rs->status = status;
    uv_async_send(&rs->done);
}

static void on_done(uv_async_t *a)
{
    uv_stop(a->loop);
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int run_with_loop(struct vm *vm, const char *snapshot_dir)
{
    struct run_state rs = {.status = EMBER_EXIT_GENERIC, .vm = vm, .snapshot_dir = snapshot_dir};
    const struct vm_start_hooks hooks = {.arg = &rs, .vcpu_exit = on_vcpu_exit};
    pthread_t thread;
    uv_loop_t loop;
    char err[256];

    if (uv_loop_init(&loop) != 0 || uv_async_init(&loop, &rs.done, on_done) != 0 ||
        uv_async_init(&loop, &rs.ready, on_ready) != 0) {
        fprintf(stderr, "ember: cannot start the device loop\n");
        return EMBER_EXIT_GENERIC;
    }
    rs.ready.data = &rs;
    if (snapshot_dir)
        vm_set_ready_hook(vm, on_guest_ready, &rs);
    if (vm_start(vm, &loop, &hooks, &thread, err, sizeof(err)) != 0) {
        fprintf(stderr, "ember: %s\n", err);
        return EMBER_EXIT_GENERIC;
    }
    vm_drop_setup_memory();
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(thread, NULL);
    uv_walk(&loop, close_handle, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rs.status;
}

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
    rc = vm_has_devices(vm) || snapshot_dir ? run_with_loop(vm, snapshot_dir) : vm_run(vm);
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
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    /* Firecracker's front: --api-sock, --config-file, --version, --help... */
    return api_main(argc, argv);
}
