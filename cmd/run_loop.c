/* run_loop.c: a VM whose devices the main thread serves on a libuv loop
 * while its vCPU runs in a thread of its own (DESIGN.md, "Threads";
 * vm_start.h), for `ember run` and the restore server's children. */
#include "cmd/run_loop.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "monitor/exit_codes.h"
#include "monitor/snapshot.h"
#include "monitor/vm.h"
#include "monitor/vm_start.h"

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

/* One VM per process: its loop and state, made by cmd_run_loop_prepare()
 * or by cmd_run_vm(). */
static uv_loop_t loop;
static struct run_state rs;
static bool prepared;

int cmd_run_loop_prepare(void)
{
    if (prepared)
        return 0;
    rs.status = EMBER_EXIT_GENERIC;
    if (uv_loop_init(&loop) != 0 || uv_async_init(&loop, &rs.done, on_done) != 0 ||
        uv_async_init(&loop, &rs.ready, on_ready) != 0)
        return -1;
    rs.ready.data = &rs;
    prepared = true;
    return 0;
}

int cmd_run_vm(struct vm *vm, const char *snapshot_dir, void (*started)(void *arg), void *arg)
{
    const struct vm_start_hooks hooks = {.arg = &rs, .vcpu_exit = on_vcpu_exit};
    pthread_t thread;
    char err[256];

    if (cmd_run_loop_prepare() != 0) {
        fprintf(stderr, "ember: cannot start the device loop\n");
        return EMBER_EXIT_GENERIC;
    }
    rs.vm = vm;
    rs.snapshot_dir = snapshot_dir;
    if (snapshot_dir)
        vm_set_ready_hook(vm, on_guest_ready, &rs);
    if (vm_start(vm, &loop, &hooks, &thread, err, sizeof(err)) != 0) {
        fprintf(stderr, "ember: %s\n", err);
        return EMBER_EXIT_GENERIC;
    }
    if (started)
        started(arg);
    vm_drop_setup_memory();
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(thread, NULL);
    uv_walk(&loop, close_handle, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rs.status;
}
