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

int vm_start(struct vm *vm, struct uv_loop_s *loop, const struct vm_start_hooks *hooks,
             pthread_t *thread, char *err, size_t errlen)
{
    char why[256];
    int rc;

    vm->start_hooks = *hooks;
    if (vm_attach_loop(vm, loop) != 0)
        return errmsg(-1, err, errlen, "cannot serve the devices on the main loop");
    if (vm->ahead && vm_ahead_fits(vm->ahead, vm)) {
        /* Parked with its filter on: it enters KVM_RUN at once. Its
         * vcpu_enter ran when it started (vm_ahead.h). */
        vm_ahead_run(vm->ahead, vm, hooks->vcpu_exit, hooks->arg, thread);
    } else {
        vm_ahead_end(vm->ahead);
        vm->ahead = NULL;
        rc = vm_thread_start(thread, vcpu_main, vm);
        if (rc != 0)
            return errmsg(-1, err, errlen, "cannot start the vCPU thread: %s", strerror(rc));
    }
    /* The main filter: after the vCPU thread exists (it installs its own in
     * vm_run() and must not inherit this one), before the loop serves
     * anything for the guest. */
    if (!vm->no_seccomp &&
        seccomp_filter_install(SECCOMP_ROLE_MAIN, -1, -1, why, sizeof(why)) != 0) {
        if (hooks->fatal)
            hooks->fatal(hooks->arg, why);
        fprintf(stderr, "ember: %s\n", why);
        exit(EMBER_EXIT_GENERIC);
    }
    return 0;
}
