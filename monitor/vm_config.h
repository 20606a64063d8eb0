/* vm_config.h: the configuration of one microVM, whatever front built it.
 *
 * `ember run` (monitor/cli.c), the HTTP API (api-socket/) and the config file
 * all fill this struct, validate it with vm_config_check() and hand it to
 * vm_create(): one path from configuration to a running VM.
 */
#ifndef EMBER_VM_CONFIG_H
#define EMBER_VM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/blk_device.h"
#include "virtio/net_device.h"
#include "virtio/vsock_device.h"

#define VM_MEM_MIB_DEFAULT 128u
#define VM_MEM_MIB_MIN     2u
/* RAM is one slot below the MMIO gap at 3 GiB (see ember/abi.h). */
#define VM_MEM_MIB_MAX 3072u
#define VM_CMDLINE_MAX 4096u
#define VM_DRIVES_MAX  8u
#define VM_NETS_MAX    8u

struct vm_shell;

struct vm_config {
    uint32_t mem_mib;    /* guest RAM in MiB */
    uint32_t vcpu_count; /* always 1: ember runs single-vCPU microVMs */
    char *kernel_path;   /* guest ELF (ember or PVH) */
    char *progname;      /* argv[0] for SDK guests; NULL: basename of kernel_path */
    char *boot_args;     /* command line; NULL: empty */
    /* `ember run --env`: KEY=VALUE words (quoted) put before boot_args; for
     * an SDK guest with args_dashes also a "--" between them, so that an
     * argument holding '=' stays an argument (the SDK sorts words as Linux
     * does for init: guest-sdk/README.md). NULL: none. */
    char *env_args;
    bool args_dashes;
    bool boot_timer;        /* report the guest's boot-timer write (Firecracker's --boot-timer) */
    bool timings;           /* print the start-up timeline to stderr at exit */
    bool no_seccomp;        /* no system-call filters (--no-seccomp; seccomp_filter.h): debugging */
    bool track_dirty_pages; /* KVM dirty-page log on guest RAM, for Diff snapshots */
    unsigned ndrives;       /* virtio-blk drives, in the order the guest sees them */
    struct blk_config drives[VM_DRIVES_MAX];
    unsigned nnets; /* virtio-net interfaces, after the drives */
    struct net_config nets[VM_NETS_MAX];
    bool has_vsock; /* one virtio-vsock device, after the drives and interfaces */
    struct vsock_config vsock;
    /* `ember run` only: */
    char *restore_path;      /* --restore: a snapshot directory or state file */
    char *restore_mem_path;  /* --mem-file: its memory file (default DIR/mem) */
    bool clock_realtime;     /* --clock-realtime (snapshot.h: struct snapshot_load) */
    char *snapshot_on_ready; /* --snapshot-on-ready DIR: snapshot when the guest is ready */
    /* Not owned: a KVM VM built ahead (vm_shell.h) that vm_create() takes
     * over if it fits; NULL: build one. */
    struct vm_shell *shell;
};

/* Adds a drive (the config copies path). Returns 0, or -1 with a reason. */
int vm_config_add_drive(struct vm_config *cfg, const struct blk_config *drive, char *err,
                        size_t errlen);

/* Adds a network interface. Returns 0, or -1 with a reason. */
int vm_config_add_net(struct vm_config *cfg, const struct net_config *net, char *err,
                      size_t errlen);

/* Defaults: 128 MiB, one vCPU, nothing else set. */
void vm_config_init(struct vm_config *cfg);
/* Frees the strings the config owns and resets it to defaults. */
void vm_config_release(struct vm_config *cfg);
/* The command line the guest gets (malloc'd, NULL when out of memory):
 * env_args, boot_args and, for an SDK guest, the "--" between them. */
char *vm_config_cmdline(const struct vm_config *cfg, bool sdk_guest);
/* Checks what can be checked without touching the host. Returns 0, or -1 with
 * a one-line reason (no trailing newline) in err. */
int vm_config_check(const struct vm_config *cfg, char *err, size_t errlen);

#endif
