/* virtio.h: the guest's virtio-mmio driver core (see virtio.c).
 *
 * A driver finds its device (vdev_find), negotiates features (vdev_init),
 * sets up its queues (vdev_queue_setup), says DRIVER_OK (vdev_driver_ok,
 * which also routes the device's interrupt), then puts buffers on a queue
 * (vq_add), notifies (vq_kick) and collects completions (vq_get_used),
 * waiting in between with ember_wait (cpu_irq.h).
 * Guest memory is identity-mapped: a guest pointer is the guest-physical
 * address the device sees.
 */
#ifndef EMBER_VIRTIO_H
#define EMBER_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ember/abi.h>

#include "arch/cpu_irq.h"

/* Feature bits (virtio 1.2 §6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

/* Device IDs (virtio 1.2 §5). */
#define VIRTIO_ID_NET   1u
#define VIRTIO_ID_BLOCK 2u
#define VIRTIO_ID_VSOCK 19u

/* Device status (virtio 1.2 §2.1). */
#define VIRTIO_S_ACK         1u
#define VIRTIO_S_DRIVER      2u
#define VIRTIO_S_DRIVER_OK   4u
#define VIRTIO_S_FEATURES_OK 8u
#define VIRTIO_S_NEEDS_RESET 64u
#define VIRTIO_S_FAILED      128u

/* Interrupt status bits (virtio 1.2 §4.2.2). */
#define VIRTIO_INT_VRING  1u
#define VIRTIO_INT_CONFIG 2u

#define VDEV_PROBED_QUEUES 3u

struct vdev {
    volatile uint32_t *regs; /* the 4 KiB (ember) or 512-byte (QEMU) window */
    uint32_t gsi;
    uint32_t device_id;
    uint64_t features; /* negotiated */
    bool ack_irq;      /* write InterruptACK on each interrupt (level lines) */
    /* QueueReady and QueueNumMax of the first queues, read during
     * vdev_init() in the same batch as the feature handshake. */
    uint32_t q_ready[VDEV_PROBED_QUEUES];
    uint32_t q_max[VDEV_PROBED_QUEUES];
};

/* A split virtqueue (virtio 1.2 §2.7), driver side. */
struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
struct vring_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[]; /* size entries, then used_event */
};
struct vring_used_elem {
    uint32_t id;
    uint32_t len;
};
struct vring_used {
    uint16_t flags;
    uint16_t idx;
    struct vring_used_elem ring[]; /* size entries, then avail_event */
};

struct vring_q {
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    void **tokens; /* per head descriptor; NULL = free */
    volatile uint32_t *notify;
    uint16_t size; /* a power of two */
    uint16_t index;
    uint16_t num_free;
    uint16_t free_head;
    uint16_t avail_idx;  /* next avail->idx */
    uint16_t kicked_idx; /* avail_idx at the last kick */
    uint16_t last_used;  /* next used entry to read */
    bool event_idx;
    bool intr_on;
};

struct vbuf {
    void *addr;
    uint32_t len;
};

/* The index-th virtio-mmio device with this device ID (0-based), from the
 * boot info (ember) or the virtio_mmio.device= words on the command line
 * (QEMU microvm). 0, or -ENODEV. */
int vdev_find(uint32_t device_id, unsigned index, struct ember_device *out);

/* Reset, ACK, DRIVER, features (VERSION_1 always, plus what the driver asks
 * for and the device offers), FEATURES_OK and its check. 0 or -errno
 * (-ENODEV: not that device; -EIO: the device refused the features). */
int vdev_init(struct vdev *d, const struct ember_device *info, uint32_t device_id,
              uint64_t driver_features);
static inline bool vdev_has(const struct vdev *d, unsigned bit)
{
    return (d->features >> bit) & 1;
}

/* Queue q with at most size entries (rounded down to a power of two and to
 * what the device offers); ring memory comes from the heap. 0 or -errno. */
int vdev_queue_setup(struct vdev *d, unsigned q, struct vring_q *vq, uint16_t size);

/* DRIVER_OK, and the device's GSI routed to this vCPU. 0 or -errno. */
int vdev_driver_ok(struct vdev *d);

/* Device status register (e.g. to see NEEDS_RESET); a reset (status 0). */
uint32_t vdev_status(const struct vdev *d);
void vdev_reset(struct vdev *d);

/* If the device's interrupt fired since the last call: acknowledge it where
 * the platform needs that (QEMU's level-triggered lines) and return the
 * interrupt status bits it had (VIRTIO_INT_*; VIRTIO_INT_VRING under ember,
 * where nothing is read). 0 if it did not fire. Call before looking at the
 * rings. */
uint32_t vdev_irq_take(struct vdev *d);

/* Device-specific configuration space (virtio 1.2 §4.2.2, offset 0x100). */
uint8_t vdev_cfg8(const struct vdev *d, unsigned off);
uint16_t vdev_cfg16(const struct vdev *d, unsigned off);
uint32_t vdev_cfg32(const struct vdev *d, unsigned off);
uint64_t vdev_cfg64(const struct vdev *d, unsigned off); /* generation-checked */

/* Puts a chain of nout device-readable then nin device-writable buffers on
 * the queue with token (not NULL) to identify it in vq_get_used. 0, -ENOSPC
 * (not enough free descriptors now) or -EINVAL (never fits). Does not
 * notify. */
int vq_add(struct vring_q *vq, const struct vbuf *out, unsigned nout, const struct vbuf *in,
           unsigned nin, void *token);

/* Notifies the device of new buffers (QueueNotify, an ioeventfd under
 * ember), unless it asked not to be (VRING_USED_F_NO_NOTIFY / avail_event). */
void vq_kick(struct vdev *d, struct vring_q *vq);

/* The token of the next completed chain and the bytes the device wrote
 * (*len), or NULL if none is new. */
void *vq_get_used(struct vring_q *vq, uint32_t *len);
bool vq_has_used(const struct vring_q *vq);

/* Interrupt suppression (VRING_AVAIL_F_NO_INTERRUPT / used_event): off while
 * a driver spins, on before it sleeps. vq_intr_on returns vq_has_used()
 * tested after the change is visible, so a completion that raced the change
 * is seen. */
bool vq_intr_on(struct vring_q *vq);
void vq_intr_off(struct vring_q *vq);

#endif /* EMBER_VIRTIO_H */
