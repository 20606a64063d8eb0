/* snapshot_uffd.h: the Uffd memory backend of a snapshot load, as
 * Firecracker defines it (docs/snapshotting, "handling page faults on
 * snapshot resume"): guest RAM is anonymous memory registered with a
 * userfaultfd, and an external page-fault handler serves every page the
 * guest or the monitor touches first (UFFDIO_COPY), from wherever it keeps
 * the memory. ember connects to the handler's Unix socket at backend_path
 * and sends it, in one message, the JSON array of the guest's regions
 *   [{"base_host_virt_addr": A, "size": S, "offset": O, "page_size": P,
 *     "page_size_kib": P}]
 * (P in bytes, in both fields, as Firecracker writes them) with the
 * userfaultfd attached (SCM_RIGHTS). The handler learns ember's pid from the
 * connection (SO_PEERCRED). ember keeps its copy of the userfaultfd and the
 * connection open for the VM's life.
 */
#ifndef EMBER_SNAPSHOT_UFFD_H
#define EMBER_SNAPSHOT_UFFD_H

#include <stddef.h>

struct vm;

/* Registers vm's guest RAM (anonymous, not yet touched) with a new
 * userfaultfd and hands it to the handler listening at uds_path. Returns 0,
 * or -1 with why set ("userfaultfd: ...", "the page-fault handler at PATH:
 * ..."). */
int snapshot_uffd_attach(struct vm *vm, const char *uds_path, char *why, size_t whylen);

#endif
