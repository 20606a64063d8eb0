/* run_loop.h: serving a built VM until its guest ends (`ember run`, and the
 * children of `ember restore-server`). */
#ifndef EMBER_CMD_RUN_LOOP_H
#define EMBER_CMD_RUN_LOOP_H

struct vm;

/* Starts vm (vm_start: the devices on this thread's new loop, the vCPU
 * thread, both seccomp filters) and serves it until the guest ends; with
 * snapshot_dir, the guest's ember_faas_ready() snapshots it there and ends
 * it. started (optional) runs once the VM runs and the filters are in,
 * before the loop serves anything. Returns the process's exit status. */
int cmd_run_vm(struct vm *vm, const char *snapshot_dir, void (*started)(void *arg), void *arg);

/* Makes the loop cmd_run_vm() will serve on (and its wake-up eventfd) now:
 * for a vCPU thread whose filter goes on before the VM exists
 * (vm_ahead.h), which may only write descriptors that existed then. 0, or
 * -1 (cmd_run_vm() then says so). */
int cmd_run_loop_prepare(void);

#endif
