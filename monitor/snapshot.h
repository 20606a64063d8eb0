/* snapshot.h: snapshots of a running microVM, and VMs restored from them.
 *
 * snapshot_create() writes a paused VM's memory file and state file
 * (snapshot_state.h); snapshot_restore() builds a new VM from them whose
 * guest RAM is the memory file mapped copy-on-write, so every VM restored
 * from one file shares the pages none of them has written. Both are called
 * with the vCPU parked (vm_pause) or not yet run.
 *
 * Integrity: the state file carries the SHA-256 of the guest memory it was
 * taken with. Hashing a memory file costs ~0.6 ms per MiB here, far more
 * than a restore, so a verified file is remembered: `<mem file>.verified`
 * records the digest with the file's identity (device, inode, size, mtime,
 * ctime). Any change to the file changes its ctime and voids the record;
 * the next restore hashes it again. The record is written by
 * snapshot_create() and by the first restore that verifies the file (both
 * best effort: a read-only directory just means every restore hashes).
 */
#ifndef EMBER_SNAPSHOT_H
#define EMBER_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

#include "monitor/snapshot_state.h"
#include "monitor/vm.h"

/* Writes the snapshot of vm (paused): memory to mem_path (Full: all of
 * RAM; Diff: only the pages written since the previous snapshot, needs
 * track_dirty_pages) and state to state_path. Returns 0 or -1 with err. */
int snapshot_create(struct vm *vm, const char *state_path, const char *mem_path,
                    enum snapshot_type type, char *err, size_t errlen);

/* A network interface of the snapshot given another tap (Firecracker's
 * network_overrides). */
struct vm_shell;
struct snapshot_prepared;

struct snapshot_net_override {
    const char *iface_id;
    const char *host_dev_name;
};

struct snapshot_load {
    const char *state_path;
    const char *mem_path;
    /* The Uffd backend (snapshot_uffd.h): the page-fault handler's socket,
     * and mem_path is not used; NULL: the File backend. */
    const char *mem_uffd_path;
    const char *vsock_uds_path; /* NULL: the snapshot's own */
    unsigned nnet_overrides;
    const struct snapshot_net_override *net_overrides;
    bool track_dirty_pages;
    /* Firecracker's clock_realtime: kvmclock advances by the wall-clock time
     * since the snapshot (KVM_CLOCK_REALTIME); the snapshot must have
     * recorded it (KVM_GET_CLOCK gives it on hosts whose clocksource is the
     * TSC, Linux >= 5.16). SDK guests keep their own clock right either way
     * (ember/abi.h: struct ember_restore_info). */
    bool clock_realtime;
    bool timings;
    bool boot_timer;
    bool no_seccomp;
    struct vm_shell *shell; /* built ahead (vm_shell.h): taken over if it fits; or NULL */
    /* Checked ahead (snapshot_prepare): its state and memory file are used
     * and state_path/mem_path only name them in messages; or NULL. */
    const struct snapshot_prepared *prepared;
};

/* A snapshot read, decoded and checked once, with its memory file open and
 * verified, for many restores (the restore server, cmd/restore_server.h):
 * each snapshot_restore() given it does only the KVM and device work. It is
 * read-only to them, so processes forked after it share its pages. */
struct snapshot_prepared {
    struct snapshot_state *st;
    int mem_fd;
    uint64_t mem_size;
};

/* Every check snapshot_restore() makes before it builds a VM. Returns 0, or
 * an EMBER_EXIT_* code with err (the same messages as snapshot_restore). */
int snapshot_prepare(const char *state_path, const char *mem_path, struct snapshot_prepared *out,
                     char *err, size_t errlen);
void snapshot_prepared_release(struct snapshot_prepared *p);

/* Builds a VM from a snapshot; it runs from where the snapshot was taken
 * when vm_run() is called. Every check (state file, memory file size and
 * digest, device layout) happens before this returns, so a refused snapshot
 * never runs guest code. Returns 0, or an EMBER_EXIT_* code with err. */
int snapshot_restore(const struct snapshot_load *ld, struct vm **out, char *err, size_t errlen);

/* For --timings: how long each restore step took, in microseconds. */
void snapshot_print_timings(int fd);
/* The same, "state=... vcpu-state=..." into buf, for the API's log. */
void snapshot_format_timings(char *buf, size_t len);

#endif
