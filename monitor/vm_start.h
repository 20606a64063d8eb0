/* vm_start.h: the one sequence that starts a VM whose devices a main loop
 * serves, for `ember run` and for the API's InstanceStart alike.
 *
 * vm_start() does, in this order:
 *  1. the devices join the main loop (vm_attach_loop);
 *  2. the vCPU thread starts (vm_thread_start) and runs vm_run(), which
 *     installs the vCPU's own filter just before the guest's first
 *     instruction; or, for a VM that took over a shell built ahead with
 *     its thread (vm_ahead.h), that thread, parked with its filter on
 *     already, is handed the VM after step 3 and runs vm_run() at once
 *     (so that guest then runs only once both filters are on);
 *  3. the calling (main) thread installs the main filter: after the vCPU
 *     thread exists, so that it does not inherit the main filter, and before
 *     the loop serves anything for the running guest (seccomp_filter.h).
 * A failure in step 3 ends the process with EMBER_EXIT_GENERIC: the guest
 * already runs, and the monitor must not go on serving it unconfined.
 * `--no-seccomp` (vm_config.no_seccomp) skips both filters.
 *
 * A VM without devices needs no loop: `ember run` then calls vm_run() in its
 * only thread, which installs the vCPU filter the same way.
 */
#ifndef EMBER_MONITOR_VM_START_H
#define EMBER_MONITOR_VM_START_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct vm;
struct uv_loop_s;

/* What the caller hears of the vCPU thread. Hooks run on the vCPU thread
 * unless said otherwise. */
struct vm_start_hooks {
    void *arg;
    /* Optional: first thing on the vCPU thread (to name it in logs, say). */
    void (*vcpu_enter)(void *arg);
    /* When vm_run() has returned, with its status (the process's exit
     * status); typically a uv_async_send() to wake the loop. */
    void (*vcpu_exit)(void *arg, int status);
    /* Optional, on the calling thread: the message, just before the process
     * ends because the main filter could not be installed. */
    void (*fatal)(void *arg, const char *msg);
    /* Optional: a parked thread built ahead (vm_ahead.h) gets the VM only
     * at vm_start_go(), which installs the main filter first (step 3), so
     * that the caller can answer its client first: woken, the vCPU thread
     * may take the caller's CPU for as long as the guest runs (seen here:
     * the API's response to a load written ~0.6 ms late), and the main
     * filter takes 0.1-0.3 ms to install. The caller must call
     * vm_start_go() before its loop serves anything else (the API does on
     * the loop's next turn, whose timers run before any I/O). A thread
     * vm_start() starts itself starts at once. */
    bool go_later;
};

/* Starts vm as above, with *thread the vCPU thread (join it once vcpu_exit
 * has run). Returns 0, or -1 with a reason in err when the VM did not start
 * (nothing runs then; the caller still owns and destroys vm). */
int vm_start(struct vm *vm, struct uv_loop_s *loop, const struct vm_start_hooks *hooks,
             pthread_t *thread, char *err, size_t errlen);

/* After vm_start() with go_later: installs the main filter and hands the
 * parked thread its VM (and sets *thread) if that was left to do;
 * otherwise nothing. On the caller's (main) thread, before anything else
 * is served. A failure to install the filter ends the process, as in
 * vm_start(). */
void vm_start_go(struct vm *vm);

#endif
