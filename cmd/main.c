/* main.c: the `ember` command. `ember run ...` boots a guest from the quick
 * command line; the Firecracker-style front (--api-sock, --config-file) is in
 * api-socket/. Both build the VM through vm_config and vm_create(). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api-socket/api_main.h"
#include "cmd/cli.h"
#include "cmd/invoke.h"
#include "monitor/exit_codes.h"
#include "monitor/vm.h"
#include "monitor/vm_start.h"

/* With devices, the main thread serves them on a libuv loop while the vCPU
 * runs in a thread of its own (DESIGN.md, "Threads"; vm_start.h). */
struct run_state {
    uv_async_t done;
    int status;
};

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

static int run_with_loop(struct vm *vm)
{
    struct run_state rs = {.status = EMBER_EXIT_GENERIC};
    const struct vm_start_hooks hooks = {.arg = &rs, .vcpu_exit = on_vcpu_exit};
    pthread_t thread;
    uv_loop_t loop;
    char err[256];

    if (uv_loop_init(&loop) != 0 || uv_async_init(&loop, &rs.done, on_done) != 0) {
        fprintf(stderr, "ember: cannot start the device loop\n");
        return EMBER_EXIT_GENERIC;
    }
    if (vm_start(vm, &loop, &hooks, &thread, err, sizeof(err)) != 0) {
        fprintf(stderr, "ember: %s\n", err);
        return EMBER_EXIT_GENERIC;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(thread, NULL);
    uv_walk(&loop, close_handle, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rs.status;
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
    rc = vm_create(&cfg, &vm, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "ember: %s\n", err);
        vm_config_release(&cfg);
        return rc;
    }
    vm_config_release(&cfg);
    rc = vm_has_devices(vm) ? run_with_loop(vm) : vm_run(vm);
    vm_destroy(vm);
    return rc;
}

int main(int argc, char **argv)
{
    /* A closed console must not kill the monitor: writes just fail. */
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "invoke") == 0)
        return ember_invoke_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    /* Firecracker's front: --api-sock, --config-file, --version, --help... */
    return api_main(argc, argv);
}
