/* virtio.c: the guest's virtio-mmio driver core.
 *
 * The transport is virtio 1.2 §4.2 (MMIO, version 2), the queues are split
 * virtqueues (§2.7). Devices are found in the boot info's device list
 * (ember: base, 4 KiB window, GSI) or, under PVH, in
 * virtio_mmio.device=<size>@<base>:<gsi> words on the command line (the
 * Linux convention), else at QEMU microvm's fixed places.
 *
 * Every register access is an exit to the monitor (10-80 us on kvm_pvm), so
 * the hot path touches exactly one register: QueueNotify, which ember turns
 * into an ioeventfd (no exit to user space). Completions are read from the
 * used ring in memory. Ring memory comes from the heap (sys_mem.c), which
 * hands out zeroed pages: a driver that is never opened costs nothing.
 *
 * Ordering (x86 is TSO): descriptors and the avail ring entry are written
 * before avail->idx (a compiler barrier suffices, stores are not
 * reordered); avail->idx is written before the device's suppression fields
 * are read in vq_kick, and used_event/flags before the used index is read
 * again in vq_intr_on (store-load: a full fence).
 */
#include <errno.h>
#include <sys/mman.h>

#include "arch/cpu_irq.h"
#include "drivers/virtio.h"
#include "sdk.h"

/* MMIO registers (virtio 1.2 §4.2.2). */
#define R_MAGIC         0x000
#define R_VERSION       0x004
#define R_DEVICE_ID     0x008
#define R_DEV_FEATURES  0x010
#define R_DEV_FEAT_SEL  0x014
#define R_DRV_FEATURES  0x020
#define R_DRV_FEAT_SEL  0x024
#define R_QUEUE_SEL     0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM     0x038
#define R_QUEUE_READY   0x044
#define R_QUEUE_NOTIFY  0x050
#define R_INT_STATUS    0x060
#define R_INT_ACK       0x064
#define R_STATUS        0x070
#define R_DESC_LO       0x080
#define R_DESC_HI       0x084
#define R_AVAIL_LO      0x090
#define R_AVAIL_HI      0x094
#define R_USED_LO       0x0a0
#define R_USED_HI       0x0a4
#define R_CONFIG_GEN    0x0fc
#define R_CONFIG        0x100
#define MMIO_MAGIC      0x74726976u /* "virt" */
#define MMIO_VERSION    2u
#define RESET_POLLS     1000u

/* Ring flags (virtio 1.2 §2.7.5-2.7.8). */
#define VRING_DESC_F_NEXT      1u
#define VRING_DESC_F_WRITE     2u
#define VRING_AVAIL_F_NO_INTR  1u
#define VRING_USED_F_NO_NOTIFY 1u

#define barrier() __asm__ volatile("" ::: "memory")
#define mb()      __atomic_thread_fence(__ATOMIC_SEQ_CST)

static uint32_t rd(const struct vdev *d, unsigned off)
{
    return d->regs[off / 4];
}

static void wr(const struct vdev *d, unsigned off, uint32_t v)
{
    d->regs[off / 4] = v;
}

/* ---- finding devices ------------------------------------------------------- */

static uint32_t mmio_device_id(uint64_t base)
{
    const volatile uint32_t *r = (const volatile uint32_t *)(uintptr_t)base;
    if (r[R_MAGIC / 4] != MMIO_MAGIC)
        return 0;
    return r[R_DEVICE_ID / 4];
}

static const char *parse_num(const char *p, const char *end, uint64_t *v)
{
    uint64_t n = 0;
    unsigned base = 10;
    if (end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    const char *start = p;
    for (; p < end; p++) {
        unsigned c = (unsigned char)*p, dv;
        if (c >= '0' && c <= '9')
            dv = c - '0';
        else if (base == 16 && (c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            dv = (c | 0x20) - 'a' + 10;
        else
            break;
        if (n > (UINT64_MAX - dv) / base)
            return NULL;
        n = n * base + dv;
    }
    if (p == start)
        return NULL;
    if (p < end && (*p == 'K' || *p == 'k')) {
        n <<= 10;
        p++;
    } else if (p < end && (*p == 'M' || *p == 'm')) {
        n <<= 20;
        p++;
    }
    *v = n;
    return p;
}

/* Fills *out from the n-th "virtio_mmio.device=<size>@<base>:<irq>" word of
 * the command line; -1 if there are fewer. */
static int cmdline_device(unsigned n, struct ember_device *out)
{
    static const char key[] = "virtio_mmio.device=";
    const struct ember_boot_info *bi = ember_boot_info();
    const char *s = bi->cmdline, *end = s + bi->cmdline_len;
    unsigned seen = 0;
    for (const char *p = s; p + sizeof(key) - 1 <= end; p++) {
        if ((p != s && p[-1] != ' ') || sdk_strnlen(p, sizeof(key) - 1) < sizeof(key) - 1)
            continue;
        unsigned i = 0;
        while (i < sizeof(key) - 1 && p[i] == key[i])
            i++;
        if (i != sizeof(key) - 1)
            continue;
        uint64_t size, base, irq;
        const char *q = parse_num(p + i, end, &size);
        if (!q || q >= end || *q != '@' || !(q = parse_num(q + 1, end, &base)) || q >= end ||
            *q != ':' || !(q = parse_num(q + 1, end, &irq)))
            continue;
        if (base < EMBER_MMIO_GAP_START || base >= 1ull << 32 || irq >= IRQ_GSI_MAX)
            continue;
        if (seen++ == n) {
            out->type = EMBER_DEV_VIRTIO_MMIO;
            out->irq = (uint32_t)irq;
            out->mmio_base = base;
            out->mmio_size = size;
            return 0;
        }
    }
    return -1;
}

/* QEMU microvm's fixed layout (hw/i386/microvm.c), for when the command
 * line names no device: QEMU 7 appends its virtio_mmio.device= words only
 * to a Linux kernel's command line, not to a PVH ELF's. Transports are
 * 512-byte windows from 0xfeb00000; with the second IOAPIC (ACPI on, the
 * default) there are 24 on GSIs 24-47, else 8 on GSIs 5-12 (ACPI on with
 * ioapic2=off puts them on 16-23: name them on the command line then). */
#define MICROVM_MMIO_BASE  0xfeb00000u
#define MICROVM_MMIO_SIZE  512u
#define IOAPIC2_BASE       0xfec10000u
#define IOAPIC_VERSION_REG 1u

static int microvm_device(unsigned n, struct ember_device *out)
{
    volatile uint32_t *io2 = (volatile uint32_t *)(uintptr_t)IOAPIC2_BASE;
    io2[0] = IOAPIC_VERSION_REG;
    uint32_t ver = io2[4]; /* IOWIN; nothing there reads as 0 or all ones */
    bool two = ver != 0 && ver != 0xffffffffu && (ver & 0xff) >= 0x11;
    unsigned count = two ? 24 : 8, gsi0 = two ? 24 : 5;
    if (n >= count)
        return -1;
    out->type = EMBER_DEV_VIRTIO_MMIO;
    out->irq = gsi0 + n;
    out->mmio_base = MICROVM_MMIO_BASE + (uint64_t)n * MICROVM_MMIO_SIZE;
    out->mmio_size = MICROVM_MMIO_SIZE;
    return 0;
}

int vdev_find(uint32_t device_id, unsigned index, struct ember_device *out)
{
    const struct ember_boot_info *bi = ember_boot_info();
    unsigned found = 0;
    if (ember_boot_kind() == EMBER_BOOT_KIND_EMBER) {
        uint32_t n = bi->ndevices < EMBER_MAX_DEVICES ? bi->ndevices : EMBER_MAX_DEVICES;
        for (uint32_t i = 0; i < n; i++) {
            const struct ember_device *e = &bi->devices[i];
            if (e->type != EMBER_DEV_VIRTIO_MMIO || e->mmio_base < EMBER_MMIO_GAP_START ||
                e->mmio_base >= 1ull << 32 || e->irq >= IRQ_GSI_MAX)
                continue;
            if (mmio_device_id(e->mmio_base) == device_id && found++ == index) {
                *out = *e;
                return 0;
            }
        }
        return -ENODEV;
    }
    struct ember_device e;
    unsigned i;
    for (i = 0; cmdline_device(i, &e) == 0; i++)
        if (mmio_device_id(e.mmio_base) == device_id && found++ == index) {
            *out = e;
            return 0;
        }
    if (i > 0)
        return -ENODEV;
    for (i = 0; microvm_device(i, &e) == 0; i++)
        if (mmio_device_id(e.mmio_base) == device_id && found++ == index) {
            *out = e;
            return 0;
        }
    return -ENODEV;
}

/* ---- device set-up ------------------------------------------------------------ */

void vdev_reset(struct vdev *d)
{
    wr(d, R_STATUS, 0);
    /* virtio 1.2 §4.2.3.1: reset is done when the status reads back 0. */
    for (unsigned i = 0; i < RESET_POLLS && rd(d, R_STATUS) != 0; i++)
        __asm__ volatile("pause");
}

uint32_t vdev_status(const struct vdev *d)
{
    return rd(d, R_STATUS);
}

/* Register accesses during set-up go in batches through one trap to CPL0
 * (ember_mmio_batch_trap): on kvm_pvm an access from CPL3 costs ~70-150 us
 * and one from CPL0 ~10-20 us, so a device's set-up drops from ~25
 * separate exits to a handful of traps. The order of the accesses is the
 * order of virtio 1.2 §3.1.1. */
#define OP_RD(reg)    ((struct ember_mmio_op){(uintptr_t)&d->regs[(reg) / 4], 0, 0})
#define OP_WR(reg, v) ((struct ember_mmio_op){(uintptr_t)&d->regs[(reg) / 4], (v), 1})

int vdev_init(struct vdev *d, const struct ember_device *info, uint32_t device_id,
              uint64_t driver_features)
{
    sdk_memset(d, 0, sizeof(*d));
    if (!info || info->type != EMBER_DEV_VIRTIO_MMIO || info->mmio_base < EMBER_MMIO_GAP_START ||
        info->mmio_base >= 1ull << 32 || info->irq >= IRQ_GSI_MAX)
        return -ENODEV;
    d->regs = (volatile uint32_t *)(uintptr_t)info->mmio_base;
    d->gsi = info->irq;
    d->device_id = device_id;
    d->ack_irq = ember_boot_kind() != EMBER_BOOT_KIND_EMBER;

    /* Identify, reset, ACKNOWLEDGE, DRIVER, read the device features. */
    struct ember_mmio_op a[] = {
        OP_RD(R_MAGIC),
        OP_RD(R_VERSION),
        OP_RD(R_DEVICE_ID),
        OP_WR(R_STATUS, 0),
        OP_RD(R_STATUS),
        OP_WR(R_STATUS, VIRTIO_S_ACK),
        OP_WR(R_STATUS, VIRTIO_S_ACK | VIRTIO_S_DRIVER),
        OP_WR(R_DEV_FEAT_SEL, 0),
        OP_RD(R_DEV_FEATURES),
        OP_WR(R_DEV_FEAT_SEL, 1),
        OP_RD(R_DEV_FEATURES),
    };
    /* A device that is not the one expected is only read: identify first. */
    ember_mmio_batch_trap(a, 3);
    if (a[0].value != MMIO_MAGIC || a[1].value != MMIO_VERSION || a[2].value != device_id)
        return -ENODEV;
    ember_mmio_batch_trap(a + 3, sizeof(a) / sizeof(a[0]) - 3);
    if (a[4].value != 0) {
        /* virtio 1.2 §4.2.3.1: reset is done when the status reads back 0;
         * a device that takes its time gets polled, then set up again. */
        vdev_reset(d);
        wr(d, R_STATUS, VIRTIO_S_ACK);
        wr(d, R_STATUS, VIRTIO_S_ACK | VIRTIO_S_DRIVER);
    }
    uint64_t offered = a[8].value | (uint64_t)a[10].value << 32;
    d->features = offered & (driver_features | (1ull << VIRTIO_F_VERSION_1));
    if (!vdev_has(d, VIRTIO_F_VERSION_1)) {
        wr(d, R_STATUS, VIRTIO_S_FAILED);
        return -EIO; /* a legacy-only device */
    }

    /* Driver features, FEATURES_OK and its check, and the first queues'
     * state, for vdev_queue_setup(). */
    struct ember_mmio_op b[6 + 3 * VDEV_PROBED_QUEUES] = {
        OP_WR(R_DRV_FEAT_SEL, 0),
        OP_WR(R_DRV_FEATURES, (uint32_t)d->features),
        OP_WR(R_DRV_FEAT_SEL, 1),
        OP_WR(R_DRV_FEATURES, (uint32_t)(d->features >> 32)),
        OP_WR(R_STATUS, VIRTIO_S_ACK | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK),
        OP_RD(R_STATUS),
    };
    for (unsigned q = 0; q < VDEV_PROBED_QUEUES; q++) {
        b[6 + 3 * q] = OP_WR(R_QUEUE_SEL, q);
        b[7 + 3 * q] = OP_RD(R_QUEUE_READY);
        b[8 + 3 * q] = OP_RD(R_QUEUE_NUM_MAX);
    }
    ember_mmio_batch_trap(b, sizeof(b) / sizeof(b[0]));
    if (!(b[5].value & VIRTIO_S_FEATURES_OK)) {
        wr(d, R_STATUS, VIRTIO_S_FAILED);
        return -EIO;
    }
    for (unsigned q = 0; q < VDEV_PROBED_QUEUES; q++) {
        d->q_ready[q] = b[7 + 3 * q].value;
        d->q_max[q] = b[8 + 3 * q].value;
    }
    return 0;
}

/* Small queues share pages. A queue whose rings and tokens fit in a page
 * takes them from the rest of the last page taken for that, packed: the used
 * ring (which the device writes) on its own cache lines, away from what the
 * driver writes. vsock's three queues then live in one page, not six (each
 * page the guest touches is host memory per VM). Ring memory is never given
 * back, and a page's unused rest is still zero, as sys_mem.c hands it out.
 * A bigger queue gets its own pages with the used ring on a page of its
 * own, as before. NULL: not small, or no page.
 * Under ember the first such page is the rest of the restore page
 * (ember/abi.h, EMBER_LOW_RESTORE_GUEST): the monitor writes that page at
 * every restore, so a restored VM's rings cost no page of their own. */
static uint8_t *ring_small(size_t drv_sz, size_t used_sz, uint32_t n, size_t *used_off,
                           size_t *tok_off)
{
    static uint8_t *pool;
    static size_t pool_left;
    static bool low_taken;
    size_t u = ALIGN_UP(drv_sz, 64), t = ALIGN_UP(u + used_sz, 8);
    size_t total = ALIGN_UP(t + sizeof(void *) * n, 64);

    if (total > PAGE_SIZE)
        return NULL;
    if (total > pool_left && !low_taken && ember_kind == EMBER_BOOT_KIND_EMBER) {
        low_taken = true;
        pool = (uint8_t *)(uintptr_t)EMBER_LOW_RESTORE_GUEST;
        pool_left = EMBER_LOW_RESTORE + PAGE_SIZE - EMBER_LOW_RESTORE_GUEST;
    }
    if (total > pool_left) {
        long p = ember_sys_mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                -1, 0);
        if (p < 0)
            return NULL;
        pool = (uint8_t *)p;
        pool_left = PAGE_SIZE;
    }
    uint8_t *m = pool;
    pool += total;
    pool_left -= total;
    *used_off = u;
    *tok_off = t;
    return m;
}

int vdev_queue_setup(struct vdev *d, unsigned q, struct vring_q *vq, uint16_t size)
{
    sdk_memset(vq, 0, sizeof(*vq));
    uint32_t ready, max;
    if (q < VDEV_PROBED_QUEUES) {
        ready = d->q_ready[q];
        max = d->q_max[q];
    } else {
        wr(d, R_QUEUE_SEL, q);
        ready = rd(d, R_QUEUE_READY);
        max = rd(d, R_QUEUE_NUM_MAX);
    }
    if (ready)
        return -EBUSY;
    if (max == 0)
        return -ENOENT;
    uint32_t n = size < max ? size : max;
    if (n == 0)
        return -EINVAL;
    while (n & (n - 1)) /* a power of two: ring indices wrap with a mask */
        n &= n - 1;

    /* One zeroed allocation: descriptors (16-byte aligned), avail ring
     * (2-byte), used ring (4-byte), tokens. */
    size_t desc_sz = 16u * n, avail_sz = 6u + 2u * n, used_sz = 6u + 8u * n;
    size_t used_off = ALIGN_UP(desc_sz + avail_sz, PAGE_SIZE);
    size_t tok_off = ALIGN_UP(used_off + used_sz, 8);
    size_t total = ALIGN_UP(tok_off + sizeof(void *) * n, PAGE_SIZE);
    uint8_t *m = ring_small(desc_sz + avail_sz, used_sz, n, &used_off, &tok_off);
    if (!m) {
        long p =
            ember_sys_mmap(0, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p < 0)
            return (int)p;
        m = (uint8_t *)p;
    }
    vq->desc = (struct vring_desc *)m;
    vq->avail = (struct vring_avail *)(m + desc_sz);
    vq->used = (struct vring_used *)(m + used_off);
    vq->tokens = (void **)(m + tok_off);
    vq->size = (uint16_t)n;
    vq->index = (uint16_t)q;
    vq->num_free = (uint16_t)n;
    vq->free_head = 0;
    for (uint32_t i = 0; i < n; i++)
        vq->desc[i].next = (uint16_t)(i + 1);
    vq->notify = &d->regs[R_QUEUE_NOTIFY / 4];
    vq->event_idx = vdev_has(d, VIRTIO_F_EVENT_IDX);
    vq->intr_on = true;

    uint64_t a_desc = (uintptr_t)vq->desc, a_avail = (uintptr_t)vq->avail;
    uint64_t a_used = (uintptr_t)vq->used;
    struct ember_mmio_op ops[] = {
        OP_WR(R_QUEUE_SEL, q),
        OP_WR(R_QUEUE_NUM, n),
        OP_WR(R_DESC_LO, (uint32_t)a_desc),
        OP_WR(R_DESC_HI, (uint32_t)(a_desc >> 32)),
        OP_WR(R_AVAIL_LO, (uint32_t)a_avail),
        OP_WR(R_AVAIL_HI, (uint32_t)(a_avail >> 32)),
        OP_WR(R_USED_LO, (uint32_t)a_used),
        OP_WR(R_USED_HI, (uint32_t)(a_used >> 32)),
        OP_WR(R_QUEUE_READY, 1),
    };
    ember_mmio_batch_trap(ops, sizeof(ops) / sizeof(ops[0]));
    return 0;
}

int vdev_driver_ok(struct vdev *d)
{
    int r = ember_irq_attach(d->gsi);
    if (r)
        return r;
    wr(d, R_STATUS, VIRTIO_S_ACK | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK | VIRTIO_S_DRIVER_OK);
    return 0;
}

uint32_t vdev_irq_take(struct vdev *d)
{
    if (!ember_irq_take(d->gsi))
        return 0;
    if (!d->ack_irq)
        return VIRTIO_INT_VRING;
    uint32_t st = rd(d, R_INT_STATUS);
    if (st)
        wr(d, R_INT_ACK, st);
    return st;
}

uint8_t vdev_cfg8(const struct vdev *d, unsigned off)
{
    return ((const volatile uint8_t *)d->regs)[R_CONFIG + off];
}

uint16_t vdev_cfg16(const struct vdev *d, unsigned off)
{
    return *(const volatile uint16_t *)((const volatile uint8_t *)d->regs + R_CONFIG + off);
}

uint32_t vdev_cfg32(const struct vdev *d, unsigned off)
{
    return *(const volatile uint32_t *)((const volatile uint8_t *)d->regs + R_CONFIG + off);
}

uint64_t vdev_cfg64(const struct vdev *d, unsigned off)
{
    /* Two 32-bit reads; retry if the configuration changed in between
     * (virtio 1.2 §2.5.1). */
    for (;;) {
        uint32_t gen = rd(d, R_CONFIG_GEN);
        uint64_t v = vdev_cfg32(d, off) | (uint64_t)vdev_cfg32(d, off + 4) << 32;
        if (rd(d, R_CONFIG_GEN) == gen)
            return v;
    }
}

/* ---- queues ----------------------------------------------------------------- */

static inline uint16_t *used_event(struct vring_q *vq)
{
    return &vq->avail->ring[vq->size];
}

static inline volatile uint16_t *avail_event(struct vring_q *vq)
{
    return (volatile uint16_t *)&vq->used->ring[vq->size];
}

int vq_add(struct vring_q *vq, const struct vbuf *out, unsigned nout, const struct vbuf *in,
           unsigned nin, void *token)
{
    unsigned n = nout + nin;
    if (n == 0 || n > vq->size || !token)
        return -EINVAL;
    if (n > vq->num_free)
        return -ENOSPC;
    uint16_t head = vq->free_head, i = head, last = head;
    for (unsigned k = 0; k < n; k++) {
        const struct vbuf *b = k < nout ? &out[k] : &in[k - nout];
        struct vring_desc *dsc = &vq->desc[i];
        dsc->addr = (uintptr_t)b->addr;
        dsc->len = b->len;
        dsc->flags =
            (uint16_t)((k < nout ? 0 : VRING_DESC_F_WRITE) | (k + 1 < n ? VRING_DESC_F_NEXT : 0));
        last = i;
        i = dsc->next; /* the free list links through next */
    }
    vq->free_head = vq->desc[last].next;
    vq->num_free = (uint16_t)(vq->num_free - n);
    vq->tokens[head] = token;
    vq->avail->ring[vq->avail_idx & (vq->size - 1)] = head;
    barrier();
    vq->avail_idx++;
    *(volatile uint16_t *)&vq->avail->idx = vq->avail_idx;
    return 0;
}

void vq_kick(struct vdev *d, struct vring_q *vq)
{
    (void)d;
    uint16_t old = vq->kicked_idx, now = vq->avail_idx;
    if (old == now)
        return; /* nothing new since the last notification */
    mb();
    bool need;
    if (vq->event_idx) {
        uint16_t ev = *avail_event(vq);
        need = (uint16_t)(now - ev - 1) < (uint16_t)(now - old); /* vring_need_event */
    } else {
        need = !(*(volatile uint16_t *)&vq->used->flags & VRING_USED_F_NO_NOTIFY);
    }
    vq->kicked_idx = now;
    if (need)
        *vq->notify = vq->index;
}

bool vq_has_used(const struct vring_q *vq)
{
    return *(const volatile uint16_t *)&vq->used->idx != vq->last_used;
}

void *vq_get_used(struct vring_q *vq, uint32_t *len)
{
    uint16_t ui = *(volatile uint16_t *)&vq->used->idx;
    if (ui == vq->last_used)
        return NULL;
    barrier(); /* the entry is read after the index (loads are ordered) */
    struct vring_used_elem e = vq->used->ring[vq->last_used & (vq->size - 1)];
    if (e.id >= vq->size || !vq->tokens[e.id])
        return NULL; /* a device bug: leave the entry, the driver sees no progress */
    vq->last_used++;
    if (vq->event_idx && vq->intr_on)
        *(volatile uint16_t *)used_event(vq) = vq->last_used;
    void *token = vq->tokens[e.id];
    vq->tokens[e.id] = NULL;
    /* Return the chain to the free list. */
    uint16_t i = (uint16_t)e.id, n = 1;
    while ((vq->desc[i].flags & VRING_DESC_F_NEXT) && n < vq->size) {
        i = vq->desc[i].next;
        n++;
    }
    vq->desc[i].next = vq->free_head;
    vq->free_head = (uint16_t)e.id;
    vq->num_free = (uint16_t)(vq->num_free + n);
    if (len)
        *len = e.len;
    return token;
}

bool vq_intr_on(struct vring_q *vq)
{
    vq->intr_on = true;
    if (vq->event_idx)
        *(volatile uint16_t *)used_event(vq) = vq->last_used;
    else
        *(volatile uint16_t *)&vq->avail->flags = 0;
    mb();
    return vq_has_used(vq);
}

void vq_intr_off(struct vring_q *vq)
{
    vq->intr_on = false;
    if (vq->event_idx)
        /* behind what the device has passed: vring_need_event stays false
         * until the index wraps */
        *(volatile uint16_t *)used_event(vq) = (uint16_t)(vq->last_used - 1);
    else
        *(volatile uint16_t *)&vq->avail->flags = VRING_AVAIL_F_NO_INTR;
}
