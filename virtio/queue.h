/* queue.h: split virtqueues (virtio 1.2 §2.7), walked through guest memory
 * that the guest can rewrite at any moment.
 *
 * Every ring index, descriptor and buffer address comes from the guest, so
 * every one is copied to a local once, checked, and only then used: heads and
 * `next` below the queue size, chains no longer than the queue (no loops),
 * buffers inside guest RAM with overflow checked, device-readable buffers
 * before device-writable ones, indirect tables only when negotiated and never
 * nested. A chain that breaks a rule is reported as VQ_BROKEN with the reason;
 * the device then stops the queue and sets DEVICE_NEEDS_RESET. Nothing here
 * ever reads or writes outside guest RAM.
 *
 * The queue's size and ring addresses are guest-written registers too: every
 * entry point refuses a queue that is not ready, broken, or whose size is not
 * a power of two up to VQ_SIZE_MAX, whoever calls it and whatever the
 * transport let through. Ring slots are found with a mask of a size checked
 * this way, never by a division.
 */
#ifndef EMBER_VIRTIO_QUEUE_H
#define EMBER_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/guest_mem.h"

#define VQ_SIZE_MAX 256u
/* Buffers per chain, indirect ones included. */
#define VQ_SEGS_MAX 256u

struct vq {
    uint16_t size; /* QueueNum, a power of two <= VQ_SIZE_MAX */
    bool ready;
    bool event_idx; /* VIRTIO_F_RING_EVENT_IDX negotiated */
    bool indirect;  /* VIRTIO_F_INDIRECT_DESC negotiated */
    bool broken;    /* stopped until the driver resets the device */
    /* Bumped whenever the queue stops (reset, QueueReady 0): a chain popped
     * in an earlier epoch must never be pushed (see vq_chain.epoch). */
    uint32_t epoch;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    uint16_t last_avail; /* next avail ring slot to consume */
    uint16_t used_idx;   /* next used ring slot to fill */
    uint16_t signalled;  /* used_idx when the driver was last interrupted */
};

struct vq_seg {
    uint8_t *host; /* inside guest RAM, checked */
    uint32_t len;
    bool write; /* device-writable */
};

struct vq_chain {
    uint16_t head;
    uint32_t epoch; /* the queue's epoch when the chain was popped */
    unsigned nsegs;
    uint64_t readable; /* bytes in device-readable segments */
    uint64_t writable; /* bytes in device-writable segments */
    struct vq_seg segs[VQ_SEGS_MAX];
};

enum vq_result {
    VQ_EMPTY = 0,
    VQ_CHAIN = 1,
    VQ_BROKEN = -1,
};

/* Resets the queue to its state after device reset (a new epoch). */
void vq_reset(struct vq *vq);
/* Stops the queue (QueueReady 0): nothing is popped or pushed until it is
 * made ready again, and chains popped so far belong to a past epoch. */
void vq_stop(struct vq *vq);
/* Whether the queue may be walked at all: ready, not broken, and of a valid
 * size. Every function below checks it. */
bool vq_usable(const struct vq *vq);
/* Marks the queue broken (until reset), ending the epoch. */
void vq_break(struct vq *vq);
/* Checks the ring addresses the driver set (alignment, inside RAM) before the
 * queue goes live. Returns 0 or -1 with why. */
int vq_check_layout(const struct vq *vq, const struct guest_mem *mem, char *why, size_t whylen);
/* Takes the next available chain. */
enum vq_result vq_pop(struct vq *vq, const struct guest_mem *mem, struct vq_chain *c, char *why,
                      size_t whylen);
/* Returns a chain to the driver with len bytes written into it. Refused (-1)
 * on a queue that is not usable or a head out of range. */
int vq_push(struct vq *vq, const struct guest_mem *mem, uint16_t head, uint32_t len);
/* vq_push of a chain from vq_pop, refused also when the queue has stopped
 * since the chain was taken (its epoch is over). */
int vq_push_chain(struct vq *vq, const struct guest_mem *mem, const struct vq_chain *c,
                  uint32_t len);
/* Several chains returned at once (virtio-net's merged receive buffers):
 * vq_fill() writes the k-th used element after the used index without
 * publishing it; vq_publish() then moves the index past n of them with one
 * release store, so the driver never sees part of the set. Both refuse (-1)
 * a queue that is not usable, a head out of range, more than a queue of
 * elements. */
int vq_fill(struct vq *vq, const struct guest_mem *mem, uint16_t k, uint16_t head, uint32_t len);
int vq_publish(struct vq *vq, const struct guest_mem *mem, uint16_t n);
/* Whether the driver wants an interrupt for what was pushed since the last
 * one (virtio 1.2 §2.7.10: flags or used_event). Updates the bookkeeping. */
bool vq_should_interrupt(struct vq *vq, const struct guest_mem *mem);
/* Copies n bytes at offset off of the chain's readable segments into data,
 * or (writable) from data into its writable segments. False if they are
 * shorter than off + n. */
bool vq_chain_copy(const struct vq_chain *ch, bool writable, uint64_t off, void *data, uint64_t n);
/* Fills at most max iovecs with [off, off + n) of the readable or writable
 * segments; returns how many. */
struct iovec;
int vq_chain_iov(const struct vq_chain *ch, bool writable, uint64_t off, uint64_t n,
                 struct iovec *iov, int max);

/* Tells the driver (avail_event) to notify when it adds past what we consumed.
 * With EVENT_IDX a driver that added a chain just before this store will not
 * notify for it: after calling this, pop once more before going idle. */
void vq_update_avail_event(struct vq *vq, const struct guest_mem *mem);

#endif
