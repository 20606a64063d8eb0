/* vm.h: one microVM: KVM VM and vCPU, guest memory, the loaded guest.
 *
 * vm_create() does everything that can fail before the guest runs; vm_run()
 * enters the guest in the calling thread and returns the exit status of the
 * `ember` process when the guest ends (see exit_codes.h).
 */
#ifndef EMBER_VM_H
#define EMBER_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "monitor/vm_config.h"

struct vm;

/* Builds the VM from a checked configuration. Returns 0, or an EMBER_EXIT_*
 * code with a one-line message in err. */
int vm_create(const struct vm_config *cfg, struct vm **out, char *err, size_t errlen);
/* Runs the vCPU in the calling thread until the guest exits or fails. Returns
 * the process exit status: the guest's own, or EMBER_EXIT_GUEST_FAILED (the
 * message is printed to stderr). */
int vm_run(struct vm *vm);
/* Pause/resume from another thread: vm_pause() returns once the vCPU is out
 * of KVM_RUN and parked (or, before vm_run has started, once the request is
 * recorded: the vCPU then parks before its first instruction); vm_resume()
 * lets it go on. vm_pause() fails (-1) only when the guest has ended. */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
void vm_destroy(struct vm *vm);
/* Asks the vCPU to park at its next chance without waiting for it (safe on
 * the vCPU thread itself, e.g. from the ready hook); vm_pause() then waits. */
void vm_request_pause(struct vm *vm);
/* Ends vm_run() with status at the vCPU's next park (paused or not). */
void vm_stop(struct vm *vm, int status);
/* fn runs on the vCPU thread when the guest signals that it is initialised
 * (ember_faas_ready(), EMBER_PORT_READY), before the guest goes on. */
void vm_set_ready_hook(struct vm *vm, void (*fn)(struct vm *vm, void *arg), void *arg);

/* main() records its frame (the main thread's stack top, near enough) for
 * vm_drop_setup_memory. */
void vm_note_main_stack(void *main_frame);
/* Main thread only, once a VM's set-up is over and it is about to idle:
 * gives back what only set-up touched, each page of it private to this VM
 * (thousands of restored VMs): the heap's free chunks (malloc_trim) and the
 * main stack below the caller's frame, which the restore and boot path
 * (KVM state, error buffers, CBOR decoding) left dirty. */
void vm_drop_setup_memory(void);

/* Starts the thread that will call vm_run(), with a stack sized for it
 * (VM_VCPU_STACK_KIB) instead of glibc's default of RLIMIT_STACK (8 MiB):
 * the KVM_RUN loop and its exit handlers need a few KiB, and a big stack
 * costs every VM a page-table page and 8 MiB of address space. Returns 0 or
 * an errno, as pthread_create(). */
#ifdef __SANITIZE_ADDRESS__
#define VM_VCPU_STACK_KIB 4096u /* ASan's redzones and fake frames */
#else
#define VM_VCPU_STACK_KIB 256u
#endif
int vm_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg);

/* Counters of the vCPU's life, readable from any thread. */
struct vm_stats {
    uint64_t exits_io_in, exits_io_out, exits_mmio_read, exits_mmio_write;
    uint64_t exits_hlt, exits_shutdown, exits_intr, exits_other;
    uint64_t boot_timer_ns; /* when the guest wrote the boot timer (CLOCK_MONOTONIC), 0 if not */
};
void vm_get_stats(const struct vm *vm, struct vm_stats *out);

struct uv_loop_s;
struct devices;
/* Whether the VM has devices, which are served by a main loop while the vCPU
 * runs in a thread of its own. */
bool vm_has_devices(const struct vm *vm);
/* After vm_start(): whether the vCPU thread built ahead with the VM's shell
 * runs it (vm_ahead.h), rather than one started for it. */
bool vm_vcpu_thread_was_ahead(const struct vm *vm);
/* Starts serving the devices on loop (the main thread's). Returns 0 or -1. */
int vm_attach_loop(struct vm *vm, struct uv_loop_s *loop);
/* The device set, for the control plane (PATCH /drives, metrics). */
struct devices *vm_devices(struct vm *vm);
/* The guest's RAM in bytes. */
uint64_t vm_mem_size(const struct vm *vm);
/* The memory file of a restored VM that lost pages while it ran (it was
 * truncated: vm_run() has ended with EMBER_EXIT_SIGBUS and said so on
 * stderr), or NULL. For the control plane's log and metrics. */
const char *vm_lost_mem_file(const struct vm *vm);

#endif
