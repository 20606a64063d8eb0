/* mmio.h: the virtio-mmio transport, version 2 (virtio 1.2 §4.2).
 *
 * The transport owns the register file, feature negotiation, queue set-up,
 * status and reset, the interrupt status, and the two eventfds that keep the
 * I/O path free of exits: an ioeventfd per queue (the guest's QueueNotify
 * write signals it inside KVM) and an irqfd (writing it raises the device's
 * GSI on the in-kernel irqchip). A device is an ops table; the transport
 * knows nothing of what the device does.
 *
 * Threads: register accesses arrive on the vCPU thread (MMIO exits); queue
 * work runs on the main loop. The device lock serialises the two.
 */
#ifndef EMBER_VIRTIO_MMIO_H
#define EMBER_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/guest_mem.h"
#include "virtio/queue.h"

#define VIRTIO_MMIO_WINDOW     0x1000u
#define VIRTIO_MMIO_CONFIG     0x100u
#define VIRTIO_MMIO_QUEUES_MAX 4u

struct virtio_mmio;

struct virtio_dev_ops {
    const char *name;   /* "virtio-blk", for messages */
    uint32_t device_id; /* VIRTIO_ID_* */
    unsigned nqueues;
    /* Feature bits offered (VERSION_1 is added by the transport). */
    uint64_t (*features)(void *dev);
    /* Config space: read/write within [0, config_size). */
    uint32_t config_size;
    void (*config_read)(void *dev, uint32_t off, void *data, uint32_t len);
    void (*config_write)(void *dev, uint32_t off, const void *data, uint32_t len);
    /* Called on the main loop, device lock held, when queue q was notified. */
    void (*queue_notify)(void *dev, struct virtio_mmio *t, unsigned q);
    /* Device reset (driver wrote 0 to Status): drop all in-flight state. */
    void (*reset)(void *dev);
    /* Queue q stopped without a device reset: the driver wrote QueueReady 0,
     * gave up (FAILED), or the transport broke the queue because the driver
     * broke the rules. The device forgets every chain of q it holds (they
     * can no longer be pushed: vq_push_chain refuses them) and touches q
     * again only once it is ready. vCPU thread, lock held: set flags, do no
     * I/O. Optional. */
    void (*queue_stop)(void *dev, unsigned q);
    /* Snapshots (optional): the device's own state beyond the transport's,
     * as a blob of at most max bytes it alone reads back. state_save
     * returns the length; state_restore checks the blob (it comes from a
     * file) and returns 0, or -1 with why. Without them the blob is empty. */
    size_t (*state_save)(void *dev, uint8_t *buf, size_t max);
    int (*state_restore)(void *dev, const uint8_t *buf, size_t len, char *why, size_t whylen);
};

/* What a snapshot keeps of a transport: the register file and the queues. */
#define VIRTIO_MMIO_BLOB_MAX 512u
struct virtio_mmio_state {
    uint32_t status, dev_feat_sel, drv_feat_sel, queue_sel;
    uint64_t drv_features;
    uint32_t int_status, config_gen;
    uint32_t nqueues;
    struct vq queues[VIRTIO_MMIO_QUEUES_MAX];
    uint32_t blob_len;
    uint8_t blob[VIRTIO_MMIO_BLOB_MAX];
};

struct virtio_mmio {
    const struct virtio_dev_ops *ops;
    void *dev;
    char label[96]; /* for messages: `virtio-blk "rootfs"` */
    const struct guest_mem *mem;
    uint64_t base; /* guest-physical base of the 4 KiB window */
    uint32_t gsi;
    int irq_fd;                            /* irqfd; -1 when not wired */
    int notify_fd[VIRTIO_MMIO_QUEUES_MAX]; /* ioeventfds */
    pthread_mutex_t lock;

    uint32_t status;
    uint32_t dev_feat_sel, drv_feat_sel, queue_sel;
    uint64_t drv_features;
    uint32_t int_status; /* VIRTIO_MMIO_INT_* bits, atomically updated */
    uint32_t config_gen;
    struct vq queues[VIRTIO_MMIO_QUEUES_MAX];

    uint64_t needs_reset_events; /* how often a driver broke the rules (once per reset) */
};

/* Where virtio_mmio_init() takes its interrupt and queue eventfds from:
 * take(arg) returns one (EFD_CLOEXEC | EFD_NONBLOCK, counter 0, the
 * transport's from then on) or -1, and then one is created. NULL (the
 * default): always created. The monitor points it, while it builds a VM's
 * devices on its main thread, at the eventfds a parked vCPU thread's
 * seccomp filter names (monitor/vm_ahead.h). */
void virtio_mmio_set_eventfd_source(int (*take)(void *arg), void *arg);

int virtio_mmio_init(struct virtio_mmio *t, const struct virtio_dev_ops *ops, void *dev,
                     const char *label, const struct guest_mem *mem, uint64_t base, uint32_t gsi);
void virtio_mmio_destroy(struct virtio_mmio *t);

/* Snapshots, with the device quiet (vCPU paused, main loop not in it):
 * save copies the state out (takes the lock); restore checks everything
 * the state says against what a driver could have set through the
 * registers (negotiated features, queue sizes, ring layout inside guest
 * RAM) and installs it, or returns -1 with why. */
void virtio_mmio_save(struct virtio_mmio *t, struct virtio_mmio_state *s);
int virtio_mmio_restore(struct virtio_mmio *t, const struct virtio_mmio_state *s, char *why,
                        size_t whylen);

/* A guest access to the window (offset relative to base), vCPU thread. */
void virtio_mmio_read(struct virtio_mmio *t, uint64_t off, void *data, uint32_t len);
void virtio_mmio_write(struct virtio_mmio *t, uint64_t off, const void *data, uint32_t len);

/* Device side, lock held: raise the used-buffer interrupt if the driver wants
 * it for queue q. */
void virtio_mmio_notify_used(struct virtio_mmio *t, unsigned q);
/* Device side, lock held: the configuration changed (e.g. a new backing file). */
void virtio_mmio_config_changed(struct virtio_mmio *t);
/* Device side, lock held: the driver broke the rules on queue q; the queue
 * stops and DEVICE_NEEDS_RESET is set, with one log line (only the first
 * failure between two resets is logged: a guest cannot flood the log). */
void virtio_mmio_fail(struct virtio_mmio *t, unsigned q, const char *why);
/* The negotiated feature bits. */
static inline bool virtio_mmio_has(const struct virtio_mmio *t, unsigned bit)
{
    return (t->drv_features >> bit) & 1;
}

#endif
