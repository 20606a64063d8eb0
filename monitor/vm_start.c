/* vm_start.c: starting a VM whose devices a main loop serves, and the order
 * of its seccomp filters (see vm_start.h). */
#include "monitor/vm_start.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errmsg.h"
#include "monitor/exit_codes.h"
#include "monitor/seccomp_filter.h"
#include "monitor/vm_ahead.h"
#include "monitor/vm_priv.h"

static void *vcpu_main(void *arg)
{
    struct vm *vm = arg;
    const struct vm_start_hooks *h = &vm->start_hooks;
    int status;

    if (h->vcpu_enter)
        h->vcpu_enter(h->arg);
    status = vm_run(vm);
    h->vcpu_exit(h->arg, status);
    return NULL;
}

/* The main filter, before the loop serves anything for the guest; a
 * failure ends the process (vm_start.h). */
static void main_filter(struct vm *vm, const struct vm_start_hooks *hooks)
{
    char why[256];

    if (!vm->no_seccomp &&
        seccomp_filter_install(SECCOMP_ROLE_MAIN, -1, -1, why, sizeof(why)) != 0) {
        if (hooks->fatal)
            hooks->fatal(hooks->arg, why);
        fprintf(stderr, "ember: %s\n", why);
        exit(EMBER_EXIT_GENERIC);
    }
}

void vm_start_go(struct vm *vm)
{
    if (vm && vm->go_thread) {
        main_filter(vm, &vm->start_hooks);
        vm_ahead_run(vm->ahead, vm, vm->start_hooks.vcpu_exit, vm->start_hooks.arg, vm->go_thread);
        vm->go_thread = NULL;
    }
}

int vm_start(struct vm *vm, struct uv_loop_s *loop, const struct vm_start_hooks *hooks,
             pthread_t *thread, char *err, size_t errlen)
{
    int rc;

    vm->start_hooks = *hooks;
    if (vm_attach_loop(vm, loop) != 0)
        return errmsg(-1, err, errlen, "cannot serve the devices on the main loop");
    if (vm->ahead && vm_ahead_fits(vm->ahead, vm)) {
        /* Parked with its filter on (vm_ahead.h): the main filter goes on
         * first (vm_start_go), so the guest runs only once both are on;
         * then the thread enters KVM_RUN at once. Its vcpu_enter ran when
         * it started. With go_later both wait for vm_start_go: the caller
         * answers its client first (the main filter takes 0.1-0.3 ms to
         * install here, the kernel's check of it included). */
        vm->go_thread = thread;
        if (!hooks->go_later)
            vm_start_go(vm);
        return 0;
    }
    vm_ahead_end(vm->ahead);
    vm->ahead = NULL;
    rc = vm_thread_start(thread, vcpu_main, vm);
    if (rc != 0)
        return errmsg(-1, err, errlen, "cannot start the vCPU thread: %s", strerror(rc));
    /* After the vCPU thread exists (it installs its own in vm_run() and
     * must not inherit this one). */
    main_filter(vm, hooks);
    return 0;
}
