/* devices.h: the VM's virtio-mmio devices: where they sit, how their queue
 * notifications and interrupts are wired into KVM, how the guest learns of
 * them.
 *
 * Layout (Firecracker's): device i has the 4 KiB window at
 * DEVICES_MMIO_BASE + i * 4 KiB and legacy GSI DEVICES_GSI_BASE + i on the
 * in-kernel IOAPIC. QueueNotify writes become ioeventfd signals inside KVM
 * and completions raise the GSI through an irqfd: the I/O path makes no exit
 * to user space. SDK guests find the devices in the boot-info device list,
 * other guests on the command line as virtio_mmio.device=4K@ADDR:GSI.
 */
#ifndef EMBER_DEVICES_H
#define EMBER_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/guest_mem.h"
#include "monitor/vm_config.h"
#include "virtio/blk_device.h"
#include "virtio/net_device.h"
#include "virtio/vsock_device.h"

#define DEVICES_MMIO_BASE 0xc0001000u
#define DEVICES_GSI_BASE  5u
#define DEVICES_MAX       16u

struct ember_boot_info;
struct uv_loop_s;

struct kvm_coalesced_mmio_ring;
struct kvm_run;

struct devices {
    struct kvm_coalesced_mmio_ring *ring; /* coalesced register stores, or NULL */
    unsigned n;
    struct virtio_mmio *transport[DEVICES_MAX];
    unsigned nblk;
    struct blk *blk[VM_DRIVES_MAX];
    unsigned nnet;
    struct net *net[VM_NETS_MAX];
    struct vsock *vsock; /* NULL when not configured */
};

/* Creates the configured devices and wires them into the VM (needs the
 * in-kernel irqchip). Returns 0 or -1 with err. */
int devices_create(struct devices *d, const struct vm_config *cfg, const struct guest_mem *mem,
                   int vm_fd, char *err, size_t errlen);
/* Starts serving them on the main loop. */
int devices_attach(struct devices *d, struct uv_loop_s *loop);
void devices_destroy(struct devices *d);
/* An MMIO exit: true if it hit a device window. vCPU thread. */
bool devices_mmio(struct devices *d, uint64_t addr, bool is_write, uint8_t *data, uint32_t len);
/* Fills the boot-info device list. */
void devices_boot_info(const struct devices *d, struct ember_boot_info *bi);
/* Appends " virtio_mmio.device=4K@0x...:GSI" per device to cmdline (size
 * bytes). Returns 0 or -1 if it does not fit. */
int devices_cmdline(const struct devices *d, char *cmdline, size_t size);
struct blk *devices_find_blk(struct devices *d, const char *id);
struct net *devices_find_net(struct devices *d, const char *id);

/* Lets the guest store to the transport registers that have no side effect
 * of their own (feature and queue selectors, queue size and ring addresses)
 * without an exit: KVM queues the stores in the vCPU's coalesced-MMIO ring,
 * and devices_drain_coalesced() applies them, in order, at the next exit,
 * before that exit is handled. Every register whose write acts (Status,
 * QueueReady, QueueNotify, InterruptACK, config space) still exits, and
 * every read exits, so a guest can never observe a store that has not been
 * applied. A driver's set-up takes ~15 exits instead of ~45 (an MMIO exit
 * from guest user mode costs ~70 us on our development hosts). Best effort:
 * without KVM_CAP_COALESCED_MMIO every store exits as before. */
void devices_coalesce(struct devices *d, int kvm_fd, int vm_fd, struct kvm_run *run);
void devices_drain_coalesced(struct devices *d);

#endif
