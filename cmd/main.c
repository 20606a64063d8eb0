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
#include "monitor/seccomp_filter.h"
#include "monitor/vm.h"

/* With devices, the main thread serves them on a libuv loop while the vCPU
 * runs in a thread of its own (DESIGN.md, "Threads"). */
struct run_state {
    struct vm *vm;
    uv_async_t done;
    int status;
};

static void *vcpu_thread(void *arg)
{
    struct run_state *rs = arg;

    rs->status = vm_run(rs->vm);
    uv_async_send(&rs->done);
    return NULL;
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

static int run_with_loop(struct vm *vm, bool seccomp)
{
    struct run_state rs = {.vm = vm, .status = EMBER_EXIT_GENERIC};
    pthread_t thread;
    uv_loop_t loop;

    if (uv_loop_init(&loop) != 0 || uv_async_init(&loop, &rs.done, on_done) != 0 ||
        vm_attach_loop(vm, &loop) != 0) {
        fprintf(stderr, "ember: cannot start the device loop\n");
        return EMBER_EXIT_GENERIC;
    }
    if (vm_thread_start(&thread, vcpu_thread, &rs) != 0) {
        fprintf(stderr, "ember: cannot start the vCPU thread\n");
        return EMBER_EXIT_GENERIC;
    }
    /* The loop's filter: after the vCPU thread exists (it must not inherit
     * it), before the loop serves the guest's first request. */
    char err[256];
    if (seccomp && seccomp_filter_install(SECCOMP_ROLE_MAIN, -1, err, sizeof(err)) != 0) {
        fprintf(stderr, "ember: %s\n", err);
        exit(EMBER_EXIT_GENERIC);
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
    bool seccomp = !cfg.no_seccomp;
    vm_config_release(&cfg);
    rc = vm_has_devices(vm) ? run_with_loop(vm, seccomp) : vm_run(vm);
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
