/* vm_shell.h: a KVM VM built before anyone knows what will run in it.
 *
 * Creating the VM, its in-kernel irqchip and its vCPU and setting the vCPU's
 * CPUID are the costliest steps of starting a VM (about 0.6 ms together on
 * our development hosts, more than all of a restore's state set-up), and
 * none of them depends on the guest: `ember --api-sock` builds them while it
 * waits for its first request, and InstanceStart or PUT /snapshot/load takes
 * them over (vm_setup_kvm() adopts a shell that fits, and leaves one that
 * does not alone; its owner then releases it).
 *
 * A shell has its guest RAM too, anonymous and of a size chosen ahead: KVM
 * wants the memory slot before the irqchip (a slot set after it costs an
 * SRCU grace period, 4-7 ms on our development hosts against ~50 us
 * before), so the size must be known when the shell is built. A restore
 * maps the snapshot's memory file over that RAM at the same address (the
 * slot follows the mapping); a request for another size builds its own VM.
 */
#ifndef EMBER_VM_SHELL_H
#define EMBER_VM_SHELL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/guest_mem.h"

struct kvm_cpuid2;
struct kvm_run;
struct vm_ahead;

struct vm_shell {
    int kvm_fd, vm_fd, vcpu_fd; /* -1: none (not built, or taken over) */
    struct kvm_run *run;
    size_t run_size;
    struct guest_mem mem; /* RAM in memory slot 0 */
    bool irqchip;         /* KVM_CREATE_IRQCHIP was made */
    bool track_dirty;     /* the slot logs dirty pages */
    /* What KVM_GET_CPUID2 answers after the shell set the CPUID a booting
     * guest gets (KVM's supported set, one vCPU): a restore whose snapshot has the very
     * same entries need not set them again. NULL: not set. */
    struct kvm_cpuid2 *cpuid;
    /* The thread that built the shell and waits to run its vCPU
     * (vm_ahead.h), or NULL; a VM that takes the shell over owns it. */
    struct vm_ahead *ahead;
};

/* An empty shell (every fd -1), safe to release. */
void vm_shell_init(struct vm_shell *s);
/* Opens /dev/kvm and builds the VM (TSS address, mem_size bytes of
 * anonymous RAM in slot 0, an irqchip), the vCPU with its kvm_run mapping
 * and the boot CPUID. Returns 0, or an EMBER_EXIT_* code with a reason; the
 * shell is then empty. */
int vm_shell_build(struct vm_shell *s, uint64_t mem_size, char *err, size_t errlen);
/* True while the shell holds a VM nobody has taken over. */
bool vm_shell_ready(const struct vm_shell *s);
/* Closes what the shell still holds (closing a VM with an irqchip waits for
 * the kernel's SRCU grace periods, ~14 ms here: see vm.c). */
void vm_shell_release(struct vm_shell *s);

#endif
