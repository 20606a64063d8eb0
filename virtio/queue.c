/* queue.c: the split virtqueue, checked at every step (see queue.h). */
#include "virtio/queue.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include <linux/virtio_ring.h>

static int broken(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int broken(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return VQ_BROKEN;
}

void vq_reset(struct vq *vq)
{
    uint32_t epoch = vq->epoch + 1;

    memset(vq, 0, sizeof(*vq));
    vq->epoch = epoch;
}

void vq_stop(struct vq *vq)
{
    vq->ready = false;
    vq->epoch++;
}

void vq_break(struct vq *vq)
{
    vq->broken = true;
    vq->epoch++;
}

static bool size_ok(uint16_t n)
{
    return n != 0 && n <= VQ_SIZE_MAX && (n & (n - 1)) == 0;
}

bool vq_usable(const struct vq *vq)
{
    return vq->ready && !vq->broken && size_ok(vq->size);
}

/* Ring sizes from virtio 1.2 §2.7: descriptor table, driver (avail) and
 * device (used) areas, each with the event field. */
static uint64_t desc_bytes(uint16_t n)
{
    return 16ull * n;
}

static uint64_t avail_bytes(uint16_t n)
{
    return 6ull + 2ull * n;
}

static uint64_t used_bytes(uint16_t n)
{
    return 6ull + 8ull * n;
}

int vq_check_layout(const struct vq *vq, const struct guest_mem *mem, char *why, size_t whylen)
{
    if (!size_ok(vq->size))
        return broken(why, whylen, "queue size %u is not a power of two up to %u", vq->size,
                      VQ_SIZE_MAX);
    if (vq->desc_gpa % 16 || vq->avail_gpa % 2 || vq->used_gpa % 4)
        return broken(why, whylen, "misaligned ring (desc 0x%lx, avail 0x%lx, used 0x%lx)",
                      vq->desc_gpa, vq->avail_gpa, vq->used_gpa);
    if (!guest_mem_slice(mem, vq->desc_gpa, desc_bytes(vq->size)) ||
        !guest_mem_slice(mem, vq->avail_gpa, avail_bytes(vq->size)) ||
        !guest_mem_slice(mem, vq->used_gpa, used_bytes(vq->size)))
        return broken(why, whylen, "ring outside guest RAM");
    return 0;
}

static uint16_t load16_acquire(const void *p)
{
    return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

static uint16_t load16(const void *p)
{
    return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED);
}

static void store16_release(void *p, uint16_t v)
{
    __atomic_store_n((uint16_t *)p, v, __ATOMIC_RELEASE);
}

/* Adds one buffer to the chain after checking it. */
static int add_seg(struct vq_chain *c, const struct guest_mem *mem, const struct vring_desc *d,
                   char *why, size_t whylen)
{
    bool write = d->flags & VRING_DESC_F_WRITE;
    uint8_t *host;

    if (c->nsegs == VQ_SEGS_MAX)
        return broken(why, whylen, "chain longer than %u buffers", VQ_SEGS_MAX);
    host = guest_mem_slice(mem, d->addr, d->len);
    if (!host)
        return broken(why, whylen, "buffer [0x%llx, +0x%x) outside guest RAM",
                      (unsigned long long)d->addr, d->len);
    if (!write && c->writable)
        return broken(why, whylen, "device-readable buffer after a device-writable one");
    c->segs[c->nsegs++] = (struct vq_seg){.host = host, .len = d->len, .write = write};
    if (write) {
        /* The device may fill it: a Diff snapshot must carry the page. */
        guest_mem_mark_dirty(mem, d->addr, d->len);
        c->writable += d->len;
    } else {
        c->readable += d->len;
    }
    return 0;
}

/* Walks an indirect table (virtio 1.2 §2.7.5.3). */
static int walk_indirect(struct vq_chain *c, const struct guest_mem *mem,
                         const struct vring_desc *d, char *why, size_t whylen)
{
    const struct vring_desc *table;
    unsigned n = d->len / sizeof(struct vring_desc), i = 0, steps = 0;

    if (d->len == 0 || d->len % sizeof(struct vring_desc) || n > VQ_SEGS_MAX)
        return broken(why, whylen, "indirect table of bad length %u", d->len);
    table = guest_mem_slice(mem, d->addr, d->len);
    if (!table)
        return broken(why, whylen, "indirect table outside guest RAM");
    for (;;) {
        struct vring_desc e;
        memcpy(&e, &table[i], sizeof(e)); /* one fetch */
        if (e.flags & VRING_DESC_F_INDIRECT)
            return broken(why, whylen, "nested indirect table");
        if (add_seg(c, mem, &e, why, whylen) != 0)
            return VQ_BROKEN;
        if (!(e.flags & VRING_DESC_F_NEXT))
            return 0;
        if (e.next >= n)
            return broken(why, whylen, "indirect next %u out of range (%u)", e.next, n);
        if (++steps >= n)
            return broken(why, whylen, "loop in an indirect table");
        i = e.next;
    }
}

enum vq_result vq_pop(struct vq *vq, const struct guest_mem *mem, struct vq_chain *c, char *why,
                      size_t whylen)
{
    const uint8_t *avail;
    const struct vring_desc *desc;
    uint16_t avail_idx, head, i;
    unsigned steps = 0;

    if (!vq_usable(vq))
        return VQ_EMPTY;
    avail = guest_mem_slice(mem, vq->avail_gpa, avail_bytes(vq->size));
    desc = guest_mem_slice(mem, vq->desc_gpa, desc_bytes(vq->size));
    if (!avail || !desc)
        return broken(why, whylen, "ring outside guest RAM");
    avail_idx = load16_acquire(avail + 2);
    if (avail_idx == vq->last_avail)
        return VQ_EMPTY;
    if ((uint16_t)(avail_idx - vq->last_avail) > vq->size)
        return broken(why, whylen, "available index %u runs %u ahead of a queue of %u", avail_idx,
                      (uint16_t)(avail_idx - vq->last_avail), vq->size);
    head = load16(avail + 4 + 2 * (vq->last_avail & (vq->size - 1)));
    if (head >= vq->size)
        return broken(why, whylen, "head %u out of range (queue of %u)", head, vq->size);

    c->head = head;
    c->epoch = vq->epoch;
    c->nsegs = 0;
    c->readable = c->writable = 0;
    for (i = head;;) {
        struct vring_desc d;
        memcpy(&d, &desc[i], sizeof(d)); /* one fetch of guest-shared memory */
        if (d.flags & VRING_DESC_F_INDIRECT) {
            if (!vq->indirect)
                return broken(why, whylen, "indirect descriptor without the feature");
            if (d.flags & VRING_DESC_F_NEXT)
                return broken(why, whylen, "indirect descriptor with NEXT set");
            if (walk_indirect(c, mem, &d, why, whylen) != 0)
                return VQ_BROKEN;
            break;
        }
        if (add_seg(c, mem, &d, why, whylen) != 0)
            return VQ_BROKEN;
        if (!(d.flags & VRING_DESC_F_NEXT))
            break;
        if (d.next >= vq->size)
            return broken(why, whylen, "next %u out of range (queue of %u)", d.next, vq->size);
        if (++steps >= vq->size)
            return broken(why, whylen, "descriptor loop (chain longer than the queue)");
        i = d.next;
    }
    vq->last_avail++;
    return VQ_CHAIN;
}

int vq_push(struct vq *vq, const struct guest_mem *mem, uint16_t head, uint32_t len)
{
    uint8_t *used;
    struct vring_used_elem e = {.id = head, .len = len};

    if (!vq_usable(vq) || head >= vq->size)
        return -1;
    used = guest_mem_slice(mem, vq->used_gpa, used_bytes(vq->size));
    if (!used)
        return -1;
    memcpy(used + 4 + 8 * (vq->used_idx & (vq->size - 1)), &e, sizeof(e));
    guest_mem_mark_dirty(mem, vq->used_gpa, used_bytes(vq->size));
    vq->used_idx++;
    store16_release(used + 2, vq->used_idx);
    return 0;
}

int vq_push_chain(struct vq *vq, const struct guest_mem *mem, const struct vq_chain *c,
                  uint32_t len)
{
    if (c->epoch != vq->epoch)
        return -1;
    return vq_push(vq, mem, c->head, len);
}

int vq_fill(struct vq *vq, const struct guest_mem *mem, uint16_t k, uint16_t head, uint32_t len)
{
    uint8_t *used;
    struct vring_used_elem e = {.id = head, .len = len};

    if (!vq_usable(vq) || head >= vq->size || k >= vq->size)
        return -1;
    used = guest_mem_slice(mem, vq->used_gpa, used_bytes(vq->size));
    if (!used)
        return -1;
    memcpy(used + 4 + 8 * ((uint16_t)(vq->used_idx + k) & (vq->size - 1)), &e, sizeof(e));
    return 0;
}

int vq_publish(struct vq *vq, const struct guest_mem *mem, uint16_t n)
{
    uint8_t *used;

    if (!vq_usable(vq) || n > vq->size)
        return -1;
    used = guest_mem_slice(mem, vq->used_gpa, used_bytes(vq->size));
    if (!used)
        return -1;
    vq->used_idx = (uint16_t)(vq->used_idx + n);
    store16_release(used + 2, vq->used_idx);
    return 0;
}

bool vq_should_interrupt(struct vq *vq, const struct guest_mem *mem)
{
    const uint8_t *avail;
    uint16_t old = vq->signalled, now = vq->used_idx;

    if (!vq_usable(vq))
        return false;
    avail = guest_mem_slice(mem, vq->avail_gpa, avail_bytes(vq->size));
    if (!avail || old == now)
        return false;
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* used idx visible before we read flags */
    vq->signalled = now;
    if (vq->event_idx) {
        uint16_t used_event = load16(avail + 4 + 2 * vq->size);
        return vring_need_event(used_event, now, old);
    }
    return !(load16(avail) & VRING_AVAIL_F_NO_INTERRUPT);
}

void vq_update_avail_event(struct vq *vq, const struct guest_mem *mem)
{
    uint8_t *used = vq_usable(vq) ? guest_mem_slice(mem, vq->used_gpa, used_bytes(vq->size)) : NULL;

    if (used && vq->event_idx) {
        store16_release(used + 4 + 8 * vq->size, vq->last_avail);
        guest_mem_mark_dirty(mem, vq->used_gpa, used_bytes(vq->size));
    }
    /* The caller looks at the available index once more after this: the
     * store must be visible before that load (a store-load barrier), or a
     * chain the driver adds meanwhile is neither seen nor notified. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool vq_chain_copy(const struct vq_chain *ch, bool writable, uint64_t off, void *data, uint64_t n)
{
    uint8_t *p = data;

    for (unsigned i = 0; i < ch->nsegs && n; i++) {
        const struct vq_seg *s = &ch->segs[i];
        if (s->write != writable)
            continue;
        if (off >= s->len) {
            off -= s->len;
            continue;
        }
        uint64_t take = s->len - off < n ? s->len - off : n;
        if (writable)
            memcpy(s->host + off, p, take);
        else
            memcpy(p, s->host + off, take);
        p += take;
        n -= take;
        off = 0;
    }
    return n == 0;
}

int vq_chain_iov(const struct vq_chain *ch, bool writable, uint64_t off, uint64_t n,
                 struct iovec *iov, int max)
{
    int k = 0;

    for (unsigned i = 0; i < ch->nsegs && n && k < max; i++) {
        const struct vq_seg *s = &ch->segs[i];
        if (s->write != writable)
            continue;
        if (off >= s->len) {
            off -= s->len;
            continue;
        }
        uint64_t take = s->len - off < n ? s->len - off : n;
        iov[k].iov_base = s->host + off;
        iov[k].iov_len = take;
        k++;
        n -= take;
        off = 0;
    }
    return k;
}
