/* mmio.c: virtio-mmio version 2 register file and status machine
 * (virtio 1.2 §4.2.2, §2.1 status, §3.1 initialisation). */
#include "virtio/mmio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>

#define MAGIC  0x74726976u /* "virt" */
#define VENDOR 0x52424d45u /* "EMBR" */

static int (*efd_take)(void *arg);
static void *efd_take_arg;

void virtio_mmio_set_eventfd_source(int (*take)(void *arg), void *arg)
{
    efd_take = take;
    efd_take_arg = arg;
}

static int new_eventfd(void)
{
    int fd = efd_take ? efd_take(efd_take_arg) : -1;

    return fd >= 0 ? fd : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

int virtio_mmio_init(struct virtio_mmio *t, const struct virtio_dev_ops *ops, void *dev,
                     const char *label, const struct guest_mem *mem, uint64_t base, uint32_t gsi)
{
    memset(t, 0, sizeof(*t));
    t->ops = ops;
    t->dev = dev;
    snprintf(t->label, sizeof(t->label), "%s", label);
    t->mem = mem;
    t->base = base;
    t->gsi = gsi;
    t->irq_fd = -1;
    for (unsigned q = 0; q < VIRTIO_MMIO_QUEUES_MAX; q++)
        t->notify_fd[q] = -1;
    if (ops->nqueues > VIRTIO_MMIO_QUEUES_MAX)
        return -1;
    pthread_mutex_init(&t->lock, NULL);
    t->irq_fd = new_eventfd();
    if (t->irq_fd < 0)
        return -1;
    for (unsigned q = 0; q < ops->nqueues; q++) {
        t->notify_fd[q] = new_eventfd();
        if (t->notify_fd[q] < 0)
            return -1;
    }
    return 0;
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
    if (t->irq_fd >= 0)
        close(t->irq_fd);
    for (unsigned q = 0; q < VIRTIO_MMIO_QUEUES_MAX; q++)
        if (t->notify_fd[q] >= 0)
            close(t->notify_fd[q]);
    pthread_mutex_destroy(&t->lock);
}

static uint64_t offered(const struct virtio_mmio *t)
{
    return t->ops->features(t->dev) | (1ull << VIRTIO_F_VERSION_1);
}

static void raise_irq(struct virtio_mmio *t, uint32_t bit)
{
    uint64_t one = 1;

    __atomic_fetch_or(&t->int_status, bit, __ATOMIC_SEQ_CST);
    if (t->irq_fd >= 0 && write(t->irq_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        fprintf(stderr, "ember: %s: raising interrupt: %s\n", t->label, strerror(errno));
}

void virtio_mmio_notify_used(struct virtio_mmio *t, unsigned q)
{
    if (vq_should_interrupt(&t->queues[q], t->mem))
        raise_irq(t, VIRTIO_MMIO_INT_VRING);
}

void virtio_mmio_config_changed(struct virtio_mmio *t)
{
    t->config_gen++;
    raise_irq(t, VIRTIO_MMIO_INT_CONFIG);
}

/* DEVICE_NEEDS_RESET with one log line: virtio 1.2 §2.1.2, the device has
 * hit an error the driver must recover from by resetting it. Only the first
 * reason between two resets is logged and counted: once set, the bit says
 * all there is to say, and a guest cannot flood the host's log. */
static void needs_reset(struct virtio_mmio *t, int q, const char *why)
{
    if (t->status & VIRTIO_CONFIG_S_NEEDS_RESET)
        return;
    t->needs_reset_events++;
    /* A queue read from a page the memory file lost holds zeros: the VM
     * stops for that, with its own message (monitor/mem_fault.h). */
    if (!guest_mem_lost(t->mem)) {
        if (q >= 0)
            fprintf(stderr, "ember: %s: queue %d: %s; device needs reset\n", t->label, q, why);
        else
            fprintf(stderr, "ember: %s: %s; device needs reset\n", t->label, why);
    }
    t->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    if (t->status & VIRTIO_CONFIG_S_DRIVER_OK)
        virtio_mmio_config_changed(t); /* virtio 1.2 §2.1.2: tell a live driver */
}

void virtio_mmio_fail(struct virtio_mmio *t, unsigned q, const char *why)
{
    vq_break(&t->queues[q]);
    needs_reset(t, (int)q, why);
}

/* Tells the device that queue q stopped, if it was in use. */
static void stop_queue(struct virtio_mmio *t, unsigned q, bool broken)
{
    struct vq *vq = &t->queues[q];
    bool was_usable = vq_usable(vq);

    if (broken)
        vq_break(vq);
    else
        vq_stop(vq);
    if (was_usable && t->ops->queue_stop)
        t->ops->queue_stop(t->dev, q);
}

/* The driver broke a transport rule (status machine, queue registers): every
 * queue stops until the driver resets the device, and the device drops the
 * chains it holds. */
static void transport_fail(struct virtio_mmio *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void transport_fail(struct virtio_mmio *t, const char *fmt, ...)
{
    char why[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    for (unsigned q = 0; q < t->ops->nqueues; q++)
        stop_queue(t, q, true);
    needs_reset(t, -1, why);
}

static void device_reset(struct virtio_mmio *t)
{
    uint64_t drain;

    t->ops->reset(t->dev);
    for (unsigned q = 0; q < VIRTIO_MMIO_QUEUES_MAX; q++) {
        vq_reset(&t->queues[q]);
        if (t->notify_fd[q] >= 0 && read(t->notify_fd[q], &drain, sizeof(drain)) < 0)
            (void)0; /* nothing pending: fine */
    }
    t->status = 0;
    t->dev_feat_sel = t->drv_feat_sel = t->queue_sel = 0;
    t->drv_features = 0;
    __atomic_store_n(&t->int_status, 0, __ATOMIC_SEQ_CST);
}

static struct vq *selected(struct virtio_mmio *t)
{
    return t->queue_sel < t->ops->nqueues ? &t->queues[t->queue_sel] : NULL;
}

static uint32_t read_reg(struct virtio_mmio *t, uint64_t off)
{
    struct vq *vq = selected(t);

    switch (off) {
    case VIRTIO_MMIO_MAGIC_VALUE:
        return MAGIC;
    case VIRTIO_MMIO_VERSION:
        return 2;
    case VIRTIO_MMIO_DEVICE_ID:
        return t->ops->device_id;
    case VIRTIO_MMIO_VENDOR_ID:
        return VENDOR;
    case VIRTIO_MMIO_DEVICE_FEATURES:
        return t->dev_feat_sel > 1 ? 0 : (uint32_t)(offered(t) >> (32 * t->dev_feat_sel));
    case VIRTIO_MMIO_QUEUE_NUM_MAX:
        return vq ? VQ_SIZE_MAX : 0;
    case VIRTIO_MMIO_QUEUE_READY:
        return vq ? vq->ready : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS:
        return __atomic_load_n(&t->int_status, __ATOMIC_SEQ_CST);
    case VIRTIO_MMIO_STATUS:
        return t->status;
    case VIRTIO_MMIO_CONFIG_GENERATION:
        return t->config_gen;
    case VIRTIO_MMIO_SHM_LEN_LOW:
    case VIRTIO_MMIO_SHM_LEN_HIGH:
        return 0xffffffffu; /* no shared memory regions */
    default:
        return 0;
    }
}

static void set_low(uint64_t *v, uint32_t lo)
{
    *v = (*v & ~0xffffffffull) | lo;
}

static void set_high(uint64_t *v, uint32_t hi)
{
    *v = (*v & 0xffffffffull) | ((uint64_t)hi << 32);
}

/* Whether the driver may still lay out queues: after FEATURES_OK (virtio 1.2
 * §3.1.1 step 7) and before DRIVER_OK. */
static bool configuring(const struct virtio_mmio *t)
{
    return (t->status & VIRTIO_CONFIG_S_FEATURES_OK) && !(t->status & VIRTIO_CONFIG_S_DRIVER_OK);
}

static void queue_ready(struct virtio_mmio *t, struct vq *vq, uint32_t v)
{
    char why[160];

    if (!v) {
        /* The device forgets what it holds of this queue (and an in-flight
         * completion finds the epoch over). */
        if (vq->ready)
            stop_queue(t, t->queue_sel, false);
        return;
    }
    if (vq->ready)
        return; /* 1 again: nothing changes */
    /* A queue goes live only during initialisation (virtio 1.2 §3.1.1):
     * enabling one on a running device, or before the features are settled
     * (the ring format depends on them), is a broken driver. */
    if (!configuring(t)) {
        transport_fail(t, "queue %u enabled %s", t->queue_sel,
                       t->status & VIRTIO_CONFIG_S_DRIVER_OK ? "while the device is live"
                                                             : "before FEATURES_OK");
        return;
    }
    vq->event_idx = virtio_mmio_has(t, VIRTIO_RING_F_EVENT_IDX);
    vq->indirect = virtio_mmio_has(t, VIRTIO_RING_F_INDIRECT_DESC);
    if (vq_check_layout(vq, t->mem, why, sizeof(why)) != 0) {
        virtio_mmio_fail(t, t->queue_sel, why);
        return;
    }
    vq->ready = true;
}

/* The status bits a driver may set (virtio 1.2 §2.1), in the order §3.1.1
 * sets them; FAILED may come at any time. */
#define DRIVER_BITS                                                                                \
    (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |          \
     VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_FAILED)

/* Whether status v is a valid step from cur: no bit cleared (§2.1.1: "The
 * driver MUST NOT clear a device status bit"; only a reset, writing 0, does),
 * nothing unknown, and each bit only after the one before it (§3.1.1). */
static bool valid_step(uint32_t cur, uint32_t v)
{
    if (v & ~DRIVER_BITS)
        return false;
    if (cur & ~v)
        return false;
    if ((v & VIRTIO_CONFIG_S_DRIVER) && !(v & VIRTIO_CONFIG_S_ACKNOWLEDGE))
        return false;
    if ((v & VIRTIO_CONFIG_S_FEATURES_OK) && !(v & VIRTIO_CONFIG_S_DRIVER))
        return false;
    if ((v & VIRTIO_CONFIG_S_DRIVER_OK) && !(v & VIRTIO_CONFIG_S_FEATURES_OK))
        return false;
    return true;
}

static void write_status(struct virtio_mmio *t, uint32_t v)
{
    uint32_t cur = t->status & ~VIRTIO_CONFIG_S_NEEDS_RESET;

    if (v == 0) {
        device_reset(t);
        return;
    }
    /* A driver that read NEEDS_RESET back and adds a bit (Linux's
     * read-modify-write) writes it too: it is the device's, ignore it. */
    v &= ~VIRTIO_CONFIG_S_NEEDS_RESET;
    if (v & VIRTIO_CONFIG_S_FAILED) {
        /* The driver gave up (§2.1.1): any other bits may go with it. The
         * device stops until it is reset. */
        for (unsigned q = 0; q < t->ops->nqueues; q++)
            stop_queue(t, q, true);
        t->status = v | (t->status & VIRTIO_CONFIG_S_NEEDS_RESET);
        return;
    }
    if (!valid_step(cur, v)) {
        /* E.g. DRIVER_OK dropped on a live device: the driver would go on
         * re-laying out queues whose chains the device may hold. */
        transport_fail(t,
                       "status 0x%x written over 0x%x: neither a reset nor a step of "
                       "initialisation",
                       v, cur);
        return;
    }
    /* FEATURES_OK holds only if the driver accepted VERSION_1 and asked for
     * nothing we did not offer (virtio 1.2 §3.1.1); the driver reads the
     * status back to learn it. DRIVER_OK in the same write would then come
     * without FEATURES_OK. */
    if ((v & VIRTIO_CONFIG_S_FEATURES_OK) && !(cur & VIRTIO_CONFIG_S_FEATURES_OK)) {
        if (!virtio_mmio_has(t, VIRTIO_F_VERSION_1) || (t->drv_features & ~offered(t))) {
            v &= ~VIRTIO_CONFIG_S_FEATURES_OK;
            if (v & VIRTIO_CONFIG_S_DRIVER_OK) {
                transport_fail(t, "DRIVER_OK with features the device refused");
                return;
            }
        }
    }
    /* The device keeps NEEDS_RESET until reset; the driver cannot clear it. */
    t->status = v | (t->status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* A write to a queue layout register (QueueNum, QueueDesc/Driver/Device):
 * only while the queue is not ready and the driver is configuring
 * (virtio 1.2 §4.2.3.2, §3.1.1). A layout changed under a live queue, or on
 * a running device, would leave the device holding chains of a ring that is
 * no longer there: the device needs a reset. Before FEATURES_OK nothing uses
 * the values yet (QueueReady checks them): accepted. */
static bool layout_writable(struct virtio_mmio *t, struct vq *vq, const char *reg)
{
    if (!vq)
        return false;
    if (vq->ready || (t->status & VIRTIO_CONFIG_S_DRIVER_OK)) {
        transport_fail(t, "%s of queue %u written while %s", reg, t->queue_sel,
                       vq->ready ? "the queue is ready" : "the device is live");
        return false;
    }
    return !(t->status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void write_reg(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
    struct vq *vq = selected(t);
    uint64_t one = 1;

    switch (off) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
        t->dev_feat_sel = v;
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        /* virtio 1.2 §3.1.1: "The driver MUST NOT accept new feature bits
         * after" FEATURES_OK. */
        if (t->status & VIRTIO_CONFIG_S_FEATURES_OK)
            transport_fail(t, "DriverFeatures written after FEATURES_OK");
        else if (t->drv_feat_sel == 0)
            set_low(&t->drv_features, v);
        else if (t->drv_feat_sel == 1)
            set_high(&t->drv_features, v);
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
        t->drv_feat_sel = v;
        break;
    case VIRTIO_MMIO_QUEUE_SEL:
        t->queue_sel = v;
        break;
    case VIRTIO_MMIO_QUEUE_NUM:
        if (layout_writable(t, vq, "QueueNum"))
            vq->size = (uint16_t)(v > 0xffff ? 0 : v);
        break;
    case VIRTIO_MMIO_QUEUE_READY:
        if (vq)
            queue_ready(t, vq, v);
        break;
    case VIRTIO_MMIO_QUEUE_NOTIFY:
        /* Normally caught by the ioeventfd inside KVM; this path serves hosts
         * without it and goes to the same place. */
        if (v < t->ops->nqueues && write(t->notify_fd[v], &one, sizeof(one)) < 0)
            (void)0;
        break;
    case VIRTIO_MMIO_INTERRUPT_ACK:
        __atomic_fetch_and(&t->int_status, ~v, __ATOMIC_SEQ_CST);
        break;
    case VIRTIO_MMIO_STATUS:
        write_status(t, v);
        break;
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
        if (layout_writable(t, vq, "QueueDescLow"))
            set_low(&vq->desc_gpa, v);
        break;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
        if (layout_writable(t, vq, "QueueDescHigh"))
            set_high(&vq->desc_gpa, v);
        break;
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
        if (layout_writable(t, vq, "QueueDriverLow"))
            set_low(&vq->avail_gpa, v);
        break;
    case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
        if (layout_writable(t, vq, "QueueDriverHigh"))
            set_high(&vq->avail_gpa, v);
        break;
    case VIRTIO_MMIO_QUEUE_USED_LOW:
        if (layout_writable(t, vq, "QueueDeviceLow"))
            set_low(&vq->used_gpa, v);
        break;
    case VIRTIO_MMIO_QUEUE_USED_HIGH:
        if (layout_writable(t, vq, "QueueDeviceHigh"))
            set_high(&vq->used_gpa, v);
        break;
    default:
        break; /* read-only or unknown: ignored, as the spec asks of devices */
    }
}

void virtio_mmio_read(struct virtio_mmio *t, uint64_t off, void *data, uint32_t len)
{
    uint32_t v;

    memset(data, 0, len);
    pthread_mutex_lock(&t->lock);
    if (off >= VIRTIO_MMIO_CONFIG) {
        uint64_t coff = off - VIRTIO_MMIO_CONFIG;
        if (len <= 8 && coff + len <= t->ops->config_size)
            t->ops->config_read(t->dev, (uint32_t)coff, data, len);
    } else if (len == 4 && off % 4 == 0) {
        v = read_reg(t, off);
        memcpy(data, &v, 4);
    }
    pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_write(struct virtio_mmio *t, uint64_t off, const void *data, uint32_t len)
{
    uint32_t v;

    pthread_mutex_lock(&t->lock);
    if (off >= VIRTIO_MMIO_CONFIG) {
        uint64_t coff = off - VIRTIO_MMIO_CONFIG;
        if (len <= 8 && coff + len <= t->ops->config_size && t->ops->config_write)
            t->ops->config_write(t->dev, (uint32_t)coff, data, len);
    } else if (len == 4 && off % 4 == 0) {
        memcpy(&v, data, 4);
        write_reg(t, off, v);
    }
    pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_save(struct virtio_mmio *t, struct virtio_mmio_state *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_lock(&t->lock);
    s->status = t->status;
    s->dev_feat_sel = t->dev_feat_sel;
    s->drv_feat_sel = t->drv_feat_sel;
    s->queue_sel = t->queue_sel;
    s->drv_features = t->drv_features;
    s->int_status = __atomic_load_n(&t->int_status, __ATOMIC_SEQ_CST);
    s->config_gen = t->config_gen;
    s->nqueues = t->ops->nqueues;
    memcpy(s->queues, t->queues, sizeof(s->queues));
    if (t->ops->state_save)
        s->blob_len = (uint32_t)t->ops->state_save(t->dev, s->blob, sizeof(s->blob));
    pthread_mutex_unlock(&t->lock);
}

int virtio_mmio_restore(struct virtio_mmio *t, const struct virtio_mmio_state *s, char *why,
                        size_t whylen)
{
    uint64_t offer = offered(t);
    int rc = -1;

    if (s->nqueues != t->ops->nqueues) {
        snprintf(why, whylen, "%s: %u queues in the snapshot, the device has %u", t->label,
                 s->nqueues, t->ops->nqueues);
        return -1;
    }
    if (s->drv_features & ~offer) {
        snprintf(why, whylen, "%s: features 0x%llx were never offered", t->label,
                 (unsigned long long)(s->drv_features & ~offer));
        return -1;
    }
    if (s->status > 0xff || (s->int_status & ~3u) || s->blob_len > sizeof(s->blob)) {
        snprintf(why, whylen, "%s: bad transport registers", t->label);
        return -1;
    }
    for (unsigned q = 0; q < s->nqueues; q++) {
        const struct vq *vq = &s->queues[q];
        char qwhy[160];
        if (vq->size > VQ_SIZE_MAX || (vq->size & (vq->size - 1))) {
            snprintf(why, whylen, "%s: queue %u: size %u is not a power of two up to %u", t->label,
                     q, vq->size, VQ_SIZE_MAX);
            return -1;
        }
        if ((vq->event_idx && !((s->drv_features >> VIRTIO_RING_F_EVENT_IDX) & 1)) ||
            (vq->indirect && !((s->drv_features >> VIRTIO_RING_F_INDIRECT_DESC) & 1))) {
            snprintf(why, whylen, "%s: queue %u uses features never negotiated", t->label, q);
            return -1;
        }
        if (vq->ready && (vq->size == 0 || vq_check_layout(vq, t->mem, qwhy, sizeof(qwhy)) != 0)) {
            snprintf(why, whylen, "%s: queue %u: %s", t->label, q,
                     vq->size ? qwhy : "ready with size 0");
            return -1;
        }
    }
    pthread_mutex_lock(&t->lock);
    if (t->ops->state_restore) {
        if (t->ops->state_restore(t->dev, s->blob, s->blob_len, why, whylen) != 0)
            goto out;
    } else if (s->blob_len != 0) {
        snprintf(why, whylen, "%s: device state in the snapshot, but the device keeps none",
                 t->label);
        goto out;
    }
    t->status = s->status;
    t->dev_feat_sel = s->dev_feat_sel;
    t->drv_feat_sel = s->drv_feat_sel;
    t->queue_sel = s->queue_sel;
    t->drv_features = s->drv_features;
    __atomic_store_n(&t->int_status, s->int_status, __ATOMIC_SEQ_CST);
    t->config_gen = s->config_gen;
    memcpy(t->queues, s->queues, sizeof(t->queues));
    rc = 0;
out:
    pthread_mutex_unlock(&t->lock);
    return rc;
}
