/* devices.c: create virtio devices and wire them into KVM (see devices.h). */
#include "monitor/devices.h"

#include <errno.h>
#include <linux/kvm.h>
#include <linux/virtio_mmio.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <ember/abi.h>

static int wire(struct virtio_mmio *t, int vm_fd, char *err, size_t errlen)
{
    struct kvm_irqfd irqfd = {.fd = (uint32_t)t->irq_fd, .gsi = t->gsi};

    for (unsigned q = 0; q < t->ops->nqueues; q++) {
        struct kvm_ioeventfd ev = {
            .datamatch = q,
            .addr = t->base + VIRTIO_MMIO_QUEUE_NOTIFY,
            .len = 4,
            .fd = t->notify_fd[q],
            .flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
        };
        if (ioctl(vm_fd, KVM_IOEVENTFD, &ev) < 0) {
            snprintf(err, errlen, "%s: KVM_IOEVENTFD: %s", t->label, strerror(errno));
            return -1;
        }
    }
    if (ioctl(vm_fd, KVM_IRQFD, &irqfd) < 0) {
        snprintf(err, errlen, "%s: KVM_IRQFD: %s", t->label, strerror(errno));
        return -1;
    }
    return 0;
}

int devices_create(struct devices *d, const struct vm_config *cfg, const struct guest_mem *mem,
                   int vm_fd, char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    for (unsigned i = 0; i < cfg->ndrives; i++) {
        uint64_t base = DEVICES_MMIO_BASE + (uint64_t)d->n * VIRTIO_MMIO_WINDOW;
        struct blk *b =
            blk_create(&cfg->drives[i], mem, base, DEVICES_GSI_BASE + d->n, err, errlen);
        if (!b)
            return -1;
        d->blk[d->nblk++] = b;
        d->transport[d->n++] = blk_transport(b);
        if (wire(blk_transport(b), vm_fd, err, errlen) != 0)
            return -1;
    }
    for (unsigned i = 0; i < cfg->nnets; i++) {
        uint64_t base = DEVICES_MMIO_BASE + (uint64_t)d->n * VIRTIO_MMIO_WINDOW;
        struct net *n = net_create(&cfg->nets[i], mem, base, DEVICES_GSI_BASE + d->n, err, errlen);
        if (!n)
            return -1;
        d->net[d->nnet++] = n;
        d->transport[d->n++] = net_transport(n);
        if (wire(net_transport(n), vm_fd, err, errlen) != 0)
            return -1;
    }
    if (cfg->has_vsock) {
        uint64_t base = DEVICES_MMIO_BASE + (uint64_t)d->n * VIRTIO_MMIO_WINDOW;
        d->vsock = vsock_create(&cfg->vsock, mem, base, DEVICES_GSI_BASE + d->n, err, errlen);
        if (!d->vsock)
            return -1;
        d->transport[d->n++] = vsock_transport(d->vsock);
        if (wire(vsock_transport(d->vsock), vm_fd, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int devices_attach(struct devices *d, struct uv_loop_s *loop)
{
    for (unsigned i = 0; i < d->nblk; i++)
        if (blk_attach(d->blk[i], loop) != 0)
            return -1;
    for (unsigned i = 0; i < d->nnet; i++)
        if (net_attach(d->net[i], loop) != 0)
            return -1;
    if (d->vsock && vsock_attach(d->vsock, loop) != 0)
        return -1;
    return 0;
}

void devices_destroy(struct devices *d)
{
    for (unsigned i = 0; i < d->nblk; i++)
        blk_destroy(d->blk[i]);
    for (unsigned i = 0; i < d->nnet; i++)
        net_destroy(d->net[i]);
    vsock_destroy(d->vsock);
    memset(d, 0, sizeof(*d));
}

bool devices_mmio(struct devices *d, uint64_t addr, bool is_write, uint8_t *data, uint32_t len)
{
    uint64_t i;

    if (addr < DEVICES_MMIO_BASE)
        return false;
    i = (addr - DEVICES_MMIO_BASE) / VIRTIO_MMIO_WINDOW;
    if (i >= d->n)
        return false;
    struct virtio_mmio *t = d->transport[i];
    if (is_write)
        virtio_mmio_write(t, addr - t->base, data, len);
    else
        virtio_mmio_read(t, addr - t->base, data, len);
    return true;
}

void devices_boot_info(const struct devices *d, struct ember_boot_info *bi)
{
    bi->ndevices = d->n;
    bi->root_drive = 0;
    for (unsigned i = 0; i < d->nblk; i++)
        if (blk_get_config(d->blk[i])->root)
            bi->root_drive = i + 1;
    for (unsigned i = 0; i < d->n; i++) {
        bi->devices[i] = (struct ember_device){
            .type = EMBER_DEV_VIRTIO_MMIO,
            .irq = d->transport[i]->gsi,
            .mmio_base = d->transport[i]->base,
            .mmio_size = VIRTIO_MMIO_WINDOW,
        };
    }
}

int devices_cmdline(const struct devices *d, char *cmdline, size_t size)
{
    size_t len = strlen(cmdline);

    for (unsigned i = 0; i < d->n; i++) {
        int n = snprintf(cmdline + len, size - len, "%svirtio_mmio.device=4K@0x%lx:%u",
                         len ? " " : "", d->transport[i]->base, d->transport[i]->gsi);
        if (n < 0 || (size_t)n >= size - len)
            return -1;
        len += (size_t)n;
    }
    return 0;
}

struct blk *devices_find_blk(struct devices *d, const char *id)
{
    for (unsigned i = 0; i < d->nblk; i++)
        if (strcmp(blk_get_config(d->blk[i])->id, id) == 0)
            return d->blk[i];
    return NULL;
}

/* Side-effect-free transport registers (virtio 1.2 §4.2.2): offsets and
 * sizes of the ranges whose stores may be deferred to the next exit. */
static const struct {
    uint32_t off, len;
} coalescable[] = {
    {VIRTIO_MMIO_DEVICE_FEATURES_SEL, 4},
    {VIRTIO_MMIO_DRIVER_FEATURES, 8}, /* DriverFeatures, DriverFeaturesSel */
    {VIRTIO_MMIO_QUEUE_SEL, 4},
    {VIRTIO_MMIO_QUEUE_NUM, 4},
    {VIRTIO_MMIO_QUEUE_DESC_LOW, VIRTIO_MMIO_QUEUE_USED_HIGH + 4 - VIRTIO_MMIO_QUEUE_DESC_LOW},
};

#define RING_ENTRIES                                                                               \
    ((4096 - sizeof(struct kvm_coalesced_mmio_ring)) / sizeof(struct kvm_coalesced_mmio))

void devices_coalesce(struct devices *d, int kvm_fd, int vm_fd, struct kvm_run *run)
{
    int page = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO);

    if (d->n == 0 || page <= 0)
        return;
    /* Set first: whatever zones get registered are drained from here on. */
    d->ring = (struct kvm_coalesced_mmio_ring *)((uint8_t *)run + (size_t)page * 4096);
    for (unsigned i = 0; i < d->n; i++) {
        for (size_t z = 0; z < sizeof(coalescable) / sizeof(coalescable[0]); z++) {
            struct kvm_coalesced_mmio_zone zone = {
                .addr = d->transport[i]->base + coalescable[z].off,
                .size = coalescable[z].len,
            };
            if (ioctl(vm_fd, KVM_REGISTER_COALESCED_MMIO, &zone) < 0)
                return; /* the rest of the stores simply exit */
        }
    }
}

void devices_drain_coalesced(struct devices *d)
{
    struct kvm_coalesced_mmio_ring *ring = d->ring;

    if (!ring)
        return;
    for (;;) {
        uint32_t first = ring->first;
        if (first == __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE))
            return;
        if (first >= RING_ENTRIES)
            return; /* never from KVM; keeps a bad index from reading past the page */
        struct kvm_coalesced_mmio *m = &ring->coalesced_mmio[first];
        uint8_t data[8];
        uint32_t len = m->len <= sizeof(data) ? m->len : sizeof(data);
        memcpy(data, m->data, len);
        devices_mmio(d, m->phys_addr, true, data, len);
        __atomic_store_n(&ring->first, (first + 1) % RING_ENTRIES, __ATOMIC_RELEASE);
    }
}

struct net *devices_find_net(struct devices *d, const char *id)
{
    for (unsigned i = 0; i < d->nnet; i++)
        if (strcmp(net_get_config(d->net[i])->id, id) == 0)
            return d->net[i];
    return NULL;
}
