/* seccomp_filter.h: ember's system-call filters, one per thread role.
 *
 * The filters are built with libseccomp at build time (seccomp_gen.c lists
 * every allowed call and why) and installed here with one seccomp() call per
 * thread, before the guest's first instruction:
 *
 *   vm_run()            the vCPU filter on the thread that runs the vCPU,
 *                       just before the KVM_RUN loop (or, on a thread built
 *                       ahead with its shell, before the load: vm_ahead.h);
 *   the thread that     the main filter, once the vCPU thread exists (so
 *   runs the loop       the vCPU thread does not inherit it) and before the
 *                       loop serves devices or the API after boot.
 *
 * A call outside the filter raises SIGSYS; the handler writes
 * `ember: seccomp: forbidden system call NAME (NR) in the ROLE thread` to
 * stderr and ends the process with EMBER_EXIT_BAD_SYSCALL (148),
 * Firecracker's status. `--no-seccomp` (vm_config.no_seccomp) skips both.
 * Every filter lets the SIGBUS handler of mem_fault.h do its work.
 */
#ifndef EMBER_SECCOMP_FILTER_H
#define EMBER_SECCOMP_FILTER_H

#include <stdbool.h>
#include <stddef.h>

enum seccomp_role {
    SECCOMP_ROLE_VCPU,         /* KVM_RUN on vcpu_fd, console, eventfds */
    SECCOMP_ROLE_VCPU_TIMINGS, /* the same plus what --timings reads at the end */
    SECCOMP_ROLE_MAIN,         /* the libuv loop: devices, API, the end */
};

/* Installs role's filter on the calling thread (and the threads it creates
 * afterwards). vcpu_fd: the only fd KVM_RUN may target (vCPU roles; -1 for
 * main). mem_fd: a restored VM's memory file, which the vCPU thread may
 * fstat to report its truncation (-1: none). Every anonymous-inode
 * descriptor open now (eventfds above all) may be read and written 8 bytes
 * at a time: create them first. Returns 0, or -1 with a one-line reason in
 * err (the filter is then not installed). */
int seccomp_filter_install(enum seccomp_role role, int vcpu_fd, int mem_fd, char *err,
                           size_t errlen);

/* The calls role allows, NULL-terminated (for tests and documentation). */
const char *const *seccomp_filter_allowed(enum seccomp_role role);

/* Called from the SIGSYS handler before the process ends, with the call's
 * number (e.g. to count it in the metrics and flush them). Must be
 * async-signal-safe and make only calls every filter allows. */
void seccomp_filter_set_violation_hook(void (*hook)(int nr));

#endif
