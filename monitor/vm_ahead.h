/* vm_ahead.h: a shell (vm_shell.h) built on the thread that will run its
 * vCPU, which then waits, parked, with its seccomp filter already on.
 *
 * Starting a restored (or booted) guest used to create its vCPU thread
 * after the load, and that thread then scanned its descriptors and
 * installed the vCPU filter before its first KVM_RUN: ~0.3 ms of the load's
 * critical path on our development hosts. Here the thread exists before the
 * request: it builds the shell, installs its filter, and parks; the load
 * only hands it the VM (vm_start()), and it enters KVM_RUN at once.
 *
 * The filter names descriptor numbers (seccomp_filter.h): the vCPU fd (the
 * shell's), the memory file of a restore (not open yet) and the eventfds
 * it may read and write 8 bytes at a time (the devices' interrupt and queue
 * eventfds, not created yet). So the thread reserves those numbers before
 * its filter goes on: VM_AHEAD_EVENTFDS idle eventfds, which the VM's
 * devices then take as their own (virtio_mmio_set_eventfd_source), and one
 * descriptor for the memory file, which the restore puts onto it with
 * dup3() (atomic: the number never refers to anything else). So the filter
 * installed ahead names exactly the descriptors it would have named after
 * the load, and nothing the load opened besides them. Reserved eventfds a
 * VM does not use stay open and idle for the process's life: their numbers
 * never come back for another file the filter would then cover.
 *
 * A VM that cannot use the thread (it did not take the shell over, needs
 * more eventfds than were reserved, wants another filter: --timings) ends
 * it and starts a vCPU thread the usual way (vm_start.h).
 */
#ifndef EMBER_VM_AHEAD_H
#define EMBER_VM_AHEAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;
struct vm_shell;

/* Interrupt and queue eventfds reserved: virtio-vsock (1 + 3), one net
 * (1 + 2) and one block device (1 + 1). */
#define VM_AHEAD_EVENTFDS 9u

struct vm_ahead;

/* Starts the thread, which builds a shell of mem_size bytes (vm_shell_build),
 * reserves the descriptors, installs the vCPU filter (unless no_seccomp)
 * and parks. enter(arg), if set, runs first on the thread (vm_start.h's
 * vcpu_enter: it runs before the filter). NULL if no thread could start.
 * idle(), if set, runs on the thread once its shell is ready and its filter
 * on, before it parks: work ahead that needs no system call but the
 * allocator's (snapshot_state_warm). A thread that is not handed its VM
 * ends before the guest runs (vm_start, or vm_run() on another thread). */
struct vm_ahead *vm_ahead_start(uint64_t mem_size, bool no_seccomp, void (*enter)(void *),
                                void *arg, int (*idle)(void));

/* Waits until the thread has built its shell, and moves it to *out: ready,
 * or empty if building failed (vm_shell.h). A VM that takes it over
 * (vm_setup_kvm) owns the thread from then on (vm->ahead): it runs the VM
 * or ends with it. */
void vm_ahead_take_shell(struct vm_ahead *a, struct vm_shell *out);

/* Whether a was handed a VM (vm_ahead_run). */
bool vm_ahead_running(const struct vm_ahead *a);

/* No VM took the shell over: the thread releases it (s, moved back to it,
 * or its own if s is empty: never taken, or given back; closing a VM waits ~14 ms, vm_shell.h: not
 * on the caller's time) and ends. It has a seccomp filter on (the vCPU role's: it may close and
 * unmap) before this returns, unless no_seccomp: a guest may run beside
 * it. vm_ahead_end() then waits for it and frees a (at exit at the
 * latest). */
void vm_ahead_abandon(struct vm_ahead *a, struct vm_shell *s);

/* Ends a parked thread (or one abandoned) and waits for it, then frees a
 * (the reserved descriptors still unused are closed). With a thread that
 * runs a VM (vm_ahead_run), only after that thread has been joined. */
void vm_ahead_end(struct vm_ahead *a);

/* For vm.c: one of the reserved eventfds, the caller's from then on; -1
 * when none is left (the thread is then unusable: vm_ahead_fits says no).
 * Its argument is a (virtio_mmio_set_eventfd_source). */
int vm_ahead_take_eventfd(void *a);
/* The same for a restore's memory file: a reserved number holding a copy of
 * fd (fd stays open), or -1 with errno. */
int vm_ahead_dup_mem_fd(struct vm_ahead *a, int fd);

/* Whether the thread can run vm: it holds vm's vCPU, every eventfd vm
 * made is on a reserved number, and its filter is the one vm wants. */
bool vm_ahead_fits(const struct vm_ahead *a, const struct vm *vm);

/* Hands vm to the parked thread: it runs vm_run() (its filter is on), then
 * exit_hook(arg, status). *thread: the thread, to join. */
void vm_ahead_run(struct vm_ahead *a, struct vm *vm, void (*exit_hook)(void *, int), void *arg,
                  pthread_t *thread);

#endif
