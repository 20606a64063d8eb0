/* mem_fault.h: file-backed memory that may lose its file under the monitor.
 *
 * A restored VM's guest RAM is its memory file mapped MAP_PRIVATE. If
 * someone truncates (or shrinks) that file while the VM runs, every page past
 * the new end that is not yet the VM's own copy is gone: a host access to it
 * (a device walking a virtqueue, the console reading a guest buffer, a
 * snapshot reading RAM) raises SIGBUS, and a guest access makes KVM_RUN fail
 * with EFAULT.
 *
 * A watched region turns the SIGBUS into a recorded failure: the process's
 * SIGBUS handler checks that the faulting address lies in a watched region
 * (and that the fault is BUS_ADRERR, the kernel's "no page behind this file
 * offset"; a machine-check error is not ours), maps an anonymous zero page
 * over the faulting page with MAP_FIXED so that the access completes, records
 * the first faulting offset and calls the region's notify hook. Whoever owns
 * the region then ends what it was doing with a message naming the file
 * (vm.c: the VM stops with EMBER_EXIT_SIGBUS). A SIGBUS anywhere else gets
 * the default action, as if no handler were installed: the process dies of
 * it. The handler makes only calls every seccomp filter allows (mmap without
 * PROT_EXEC; rt_sigaction of SIGBUS, and raise()'s gettid, getpid and
 * tgkill of SIGBUS, to fall back to the previous action; seccomp_gen.c).
 */
#ifndef EMBER_MEM_FAULT_H
#define EMBER_MEM_FAULT_H

#include <stddef.h>
#include <stdint.h>

struct mem_fault_region {
    uint8_t *start; /* page-aligned */
    size_t len;
    /* Called in the signal handler on the faulting thread after the first
     * and every later fault: must be async-signal-safe. May be NULL. */
    void (*notify)(void *arg);
    void *arg;
    /* Written by the handler: the offset of the first faulting page plus 1,
     * or 0 while nothing has faulted. Read it with mem_fault_first(). */
    uint64_t first;
};

/* Watches r (which must stay valid until mem_fault_unwatch), installing the
 * SIGBUS handler on the first call. Returns 0, or -1 with err (no slot left,
 * or sigaction failed). Call before the seccomp filters are installed. */
int mem_fault_watch(struct mem_fault_region *r, char *err, size_t errlen);
/* Stops watching r; a no-op if r is not watched. */
void mem_fault_unwatch(struct mem_fault_region *r);
/* Whether r has faulted, and where: 1 with *off the offset of the first
 * faulting page, or 0. */
int mem_fault_first(const struct mem_fault_region *r, uint64_t *off);

#endif
