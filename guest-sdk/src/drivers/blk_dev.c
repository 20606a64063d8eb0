/* blk_dev.c: the virtio-blk driver and <ember/blk.h>.
 *
 * A drive is set up on its first open (virtio.c: reset, features, one
 * request queue, DRIVER_OK), never at boot. Its state lives in heap pages
 * (the one static is a pointer to the table of drives): see cpu_irq.c for
 * why libember keeps its static data small.
 *
 * A request (virtio 1.2 §5.2.6) is a chain: a header (type, sector) the
 * device reads, the data (device-readable for OUT, -writable for IN), and a
 * status byte the device writes. Each request in flight has a slot with its
 * header and status; a transfer larger than one request allows (seg_max
 * segments of at most size_max bytes, and REQ_BYTES_MAX) is split and the
 * pieces are kept in flight together (up to SLOTS), which the Async engine
 * serves in parallel.
 *
 * Waiting: the queue's interrupts stay suppressed (vq_intr_off) while the
 * driver spins on the used ring, and are turned on only just before the
 * vCPU sleeps (ember_wait_armed, cpu_irq.c). At queue depth 1 the
 * completion is normally seen during the spin, a few microseconds after
 * the host wrote it, and no interrupt is taken at all.
 *
 * A device that sets NEEDS_RESET (it found our chain broken, which should
 * never happen) fails the requests in flight with -EIO; the drive is then
 * reset and set up again on the next request.
 */
#include <errno.h>
#include <sys/mman.h>

#include <ember/blk.h>

#include "drivers/virtio.h"
#include "sdk.h"

/* Feature bits (virtio 1.2 §5.2.3). */
#define BLK_F_SIZE_MAX     1
#define BLK_F_SEG_MAX      2
#define BLK_F_RO           5
#define BLK_F_BLK_SIZE     6
#define BLK_F_FLUSH        9
#define BLK_F_DISCARD      13
#define BLK_F_WRITE_ZEROES 14

/* Configuration space offsets (virtio 1.2 §5.2.4, struct virtio_blk_config). */
#define CFG_CAPACITY    0
#define CFG_SIZE_MAX    8
#define CFG_SEG_MAX     12
#define CFG_BLK_SIZE    20
#define CFG_MAX_DISCARD 36
#define CFG_MAX_WZ      48

/* Request types and status (virtio 1.2 §5.2.6). */
#define T_IN           0u
#define T_OUT          1u
#define T_FLUSH        4u
#define T_GET_ID       8u
#define T_DISCARD      11u
#define T_WRITE_ZEROES 13u
#define S_OK           0u
#define S_IOERR        1u
#define S_UNSUPP       2u
#define WZ_F_UNMAP     1u

#define DRIVES_MAX    EMBER_MAX_DEVICES
#define QUEUE_SIZE    128u
#define SLOTS         32u
#define SEGS_PER_REQ  4u             /* data descriptors we use per request */
#define REQ_BYTES_MAX (1u << 20)     /* per request */
#define WAIT_CHECK_NS 10000000000ull /* look for NEEDS_RESET every 10 s */

struct blk_hdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

struct blk_dwz { /* virtio_blk_discard_write_zeroes */
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
};

struct blk_slot {
    struct blk_hdr hdr;
    struct blk_dwz dwz;
    uint8_t status;
    bool busy;
};

struct ember_blk {
    struct vdev dev;
    struct vring_q vq;
    struct ember_device where;
    unsigned index;
    uint64_t sectors;
    uint32_t seg_max, size_max, blk_size;
    uint32_t max_discard, max_wz; /* sectors per request, 0 = none said */
    uint32_t seg_bytes;           /* bytes per data descriptor we build */
    uint32_t req_bytes;           /* bytes per request we build */
    bool broken;                  /* NEEDS_RESET seen: set up again */
    unsigned inflight;
    int err; /* first error of the transfer in progress */
    struct blk_slot slots[SLOTS];
};

static struct ember_blk **drives; /* DRIVES_MAX pointers, allocated on first open */

static void *alloc_pages(size_t n)
{
    long p = ember_sys_mmap(0, ALIGN_UP(n, PAGE_SIZE), PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p < 0 ? NULL : (void *)p;
}

unsigned ember_blk_count(void)
{
    struct ember_device e;
    unsigned n = 0;
    while (n < DRIVES_MAX && vdev_find(VIRTIO_ID_BLOCK, n, &e) == 0)
        n++;
    return n;
}

static int setup(struct ember_blk *b)
{
    uint64_t want = (1ull << BLK_F_SIZE_MAX) | (1ull << BLK_F_SEG_MAX) | (1ull << BLK_F_RO) |
                    (1ull << BLK_F_BLK_SIZE) | (1ull << BLK_F_FLUSH) | (1ull << BLK_F_DISCARD) |
                    (1ull << BLK_F_WRITE_ZEROES);
    /* Not VIRTIO_F_EVENT_IDX: ember's device (virtio/blk.c process())
     * publishes avail_event after its last pop without looking at the avail
     * index again (virtio 1.2 §2.7.10 asks it to), so a request added in
     * that window gets no kick and waits forever (seen: 3 hangs in 30 runs
     * of tests/guests/blk_data verify on the Async engine). Without it the
     * driver kicks every batch, which at queue depth 1 it does anyway, and
     * suppresses interrupts with VRING_AVAIL_F_NO_INTERRUPT. */
    int r = vdev_init(&b->dev, &b->where, VIRTIO_ID_BLOCK, want);
    if (r)
        return r;
    b->sectors = vdev_cfg64(&b->dev, CFG_CAPACITY);
    b->size_max = vdev_has(&b->dev, BLK_F_SIZE_MAX) ? vdev_cfg32(&b->dev, CFG_SIZE_MAX) : 0;
    b->seg_max = vdev_has(&b->dev, BLK_F_SEG_MAX) ? vdev_cfg32(&b->dev, CFG_SEG_MAX) : 1;
    if (b->seg_max == 0)
        b->seg_max = 1;
    b->blk_size = vdev_has(&b->dev, BLK_F_BLK_SIZE) ? vdev_cfg32(&b->dev, CFG_BLK_SIZE) : 0;
    if (b->blk_size < EMBER_BLK_SECTOR || (b->blk_size & (b->blk_size - 1)))
        b->blk_size = EMBER_BLK_SECTOR;
    b->max_discard = vdev_has(&b->dev, BLK_F_DISCARD) ? vdev_cfg32(&b->dev, CFG_MAX_DISCARD) : 0;
    b->max_wz = vdev_has(&b->dev, BLK_F_WRITE_ZEROES) ? vdev_cfg32(&b->dev, CFG_MAX_WZ) : 0;

    /* Request geometry: data descriptors of at most seg_bytes (size_max,
     * sector-aligned), at most min(seg_max, SEGS_PER_REQ) of them, and at
     * most REQ_BYTES_MAX per request. */
    uint32_t seg = REQ_BYTES_MAX;
    if (b->size_max && b->size_max < seg)
        seg = (uint32_t)ALIGN_DOWN(b->size_max, EMBER_BLK_SECTOR);
    if (seg < EMBER_BLK_SECTOR)
        seg = EMBER_BLK_SECTOR;
    uint32_t nseg = b->seg_max < SEGS_PER_REQ ? b->seg_max : SEGS_PER_REQ;
    uint64_t req = (uint64_t)seg * nseg;
    b->seg_bytes = seg;
    b->req_bytes = req < REQ_BYTES_MAX ? (uint32_t)req : REQ_BYTES_MAX;

    r = vdev_queue_setup(&b->dev, 0, &b->vq, QUEUE_SIZE);
    if (r)
        goto fail;
    vq_intr_off(&b->vq);
    r = vdev_driver_ok(&b->dev);
    if (r)
        goto fail;
    b->broken = false;
    b->inflight = 0;
    for (unsigned i = 0; i < SLOTS; i++)
        b->slots[i].busy = false;
    return 0;
fail:
    vdev_reset(&b->dev);
    return r;
}

int ember_blk_open(unsigned index, struct ember_blk **out)
{
    if (index >= DRIVES_MAX)
        return -ENODEV;
    if (!drives && !(drives = alloc_pages(DRIVES_MAX * sizeof(*drives))))
        return -ENOMEM;
    if (drives[index]) {
        *out = drives[index];
        return 0;
    }
    struct ember_device e;
    if (vdev_find(VIRTIO_ID_BLOCK, index, &e) != 0)
        return -ENODEV;
    struct ember_blk *b = alloc_pages(sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->where = e;
    b->index = index;
    int r = setup(b);
    if (r) {
        ember_sys_munmap((uintptr_t)b, ALIGN_UP(sizeof(*b), PAGE_SIZE));
        return r;
    }
    drives[index] = b;
    *out = b;
    return 0;
}

int ember_blk_open_id(const char *id, struct ember_blk **out)
{
    char got[EMBER_BLK_ID_MAX + 1];
    size_t n = sdk_strnlen(id, EMBER_BLK_ID_MAX + 1);
    if (n == 0 || n > EMBER_BLK_ID_MAX)
        return -ENODEV;
    for (unsigned i = 0; i < DRIVES_MAX; i++) {
        struct ember_blk *b;
        int r = ember_blk_open(i, &b);
        if (r == -ENODEV)
            break;
        if (r || ember_blk_get_id(b, got) != 0)
            continue;
        size_t k = 0;
        while (k < n && got[k] == id[k])
            k++;
        if (k == n && got[n] == '\0') {
            *out = b;
            return 0;
        }
    }
    return -ENODEV;
}

void ember_blk_info(struct ember_blk *b, struct ember_blk_info *info)
{
    /* The size is read again: PATCH /drives may have swapped the backing
     * file (the I/O path uses the size read at open or at the last query,
     * and the device refuses what lies beyond the real end anyway). */
    if (!b->broken)
        b->sectors = vdev_cfg64(&b->dev, CFG_CAPACITY);
    *info = (struct ember_blk_info){
        .index = b->index,
        .size = b->sectors * EMBER_BLK_SECTOR,
        .blk_size = b->blk_size,
        .seg_max = b->seg_max,
        .size_max = b->size_max,
        .read_only = vdev_has(&b->dev, BLK_F_RO),
        .flush = vdev_has(&b->dev, BLK_F_FLUSH),
        .discard = vdev_has(&b->dev, BLK_F_DISCARD),
        .write_zeroes = vdev_has(&b->dev, BLK_F_WRITE_ZEROES),
        .queue_size = b->vq.size,
    };
}

uint64_t ember_blk_size(const struct ember_blk *b)
{
    return b->sectors * EMBER_BLK_SECTOR;
}

bool ember_blk_read_only(const struct ember_blk *b)
{
    return vdev_has(&b->dev, BLK_F_RO);
}

/* ---- requests ----------------------------------------------------------------- */

static bool ready(void *arg)
{
    struct ember_blk *b = arg;
    if (b->dev.ack_irq)
        vdev_irq_take(&b->dev); /* QEMU: lower the level before looking */
    return vq_has_used(&b->vq);
}

static void arm(void *arg)
{
    struct ember_blk *b = arg;
    vq_intr_on(&b->vq);
}

static int status_errno(uint8_t s)
{
    return s == S_OK ? 0 : s == S_UNSUPP ? -EOPNOTSUPP : -EIO;
}

/* Collects completions; waits for at least one if none is there. */
static void reap(struct ember_blk *b)
{
    while (!vq_has_used(&b->vq)) {
        ember_wait_armed(ready, arm, b, WAIT_CHECK_NS);
        vq_intr_off(&b->vq);
        if (!vq_has_used(&b->vq) && (vdev_status(&b->dev) & VIRTIO_S_NEEDS_RESET)) {
            /* The device gave up on the queue: nothing in flight will
             * complete. */
            b->broken = true;
            b->err = -EIO;
            for (unsigned i = 0; i < SLOTS; i++)
                b->slots[i].busy = false;
            b->inflight = 0;
            return;
        }
    }
    struct blk_slot *s;
    uint32_t len;
    while ((s = vq_get_used(&b->vq, &len)) != NULL) {
        int e = status_errno(*(volatile uint8_t *)&s->status);
        if (e && !b->err)
            b->err = e;
        s->busy = false;
        b->inflight--;
    }
}

static struct blk_slot *free_slot(struct ember_blk *b)
{
    for (unsigned i = 0; i < SLOTS; i++)
        if (!b->slots[i].busy)
            return &b->slots[i];
    return NULL;
}

/* Queues one request; data is split into descriptors of seg_bytes. */
static int submit(struct ember_blk *b, uint32_t type, uint64_t sector, void *data, uint32_t len)
{
    struct blk_slot *s;
    while (!(s = free_slot(b)))
        reap(b);
    struct vbuf out[1 + SEGS_PER_REQ], in[1 + SEGS_PER_REQ];
    unsigned nout = 0, nin = 0;
    s->hdr = (struct blk_hdr){.type = type, .reserved = 0, .sector = sector};
    s->status = 0xff;
    out[nout++] = (struct vbuf){&s->hdr, sizeof(s->hdr)};
    bool dev_writes = type == T_IN || type == T_GET_ID;
    for (uint32_t off = 0; off < len;) {
        uint32_t n = len - off < b->seg_bytes ? len - off : b->seg_bytes;
        struct vbuf v = {(uint8_t *)data + off, n};
        if (nout + nin >= SEGS_PER_REQ + 1)
            return -EINVAL; /* the caller splits: cannot happen */
        if (dev_writes)
            in[nin++] = v;
        else
            out[nout++] = v;
        off += n;
    }
    in[nin++] = (struct vbuf){&s->status, 1};
    int r;
    while ((r = vq_add(&b->vq, out, nout, in, nin, s)) == -ENOSPC)
        reap(b);
    if (r)
        return r;
    s->busy = true;
    b->inflight++;
    return 0;
}

static int drain(struct ember_blk *b)
{
    vq_kick(&b->dev, &b->vq);
    while (b->inflight)
        reap(b);
    int e = b->err;
    b->err = 0;
    return e;
}

static int usable(struct ember_blk *b)
{
    if (!b->broken)
        return 0;
    return setup(b) == 0 ? 0 : -EIO;
}

/* A transfer of len bytes at sector, split into requests kept in flight
 * together. */
static int transfer(struct ember_blk *b, uint32_t type, uint64_t sector, uint8_t *buf, uint64_t len)
{
    int r = usable(b);
    if (r)
        return r;
    b->err = 0;
    while (len) {
        uint32_t n = len < b->req_bytes ? (uint32_t)len : b->req_bytes;
        r = submit(b, type, sector, buf, n);
        if (r) {
            drain(b);
            return r;
        }
        /* Let the device start while we queue the rest. */
        if (b->inflight == 1 || b->inflight % 8 == 0)
            vq_kick(&b->dev, &b->vq);
        sector += n / EMBER_BLK_SECTOR;
        buf += n;
        len -= n;
    }
    return drain(b);
}

static int check_range(const struct ember_blk *b, uint64_t off, uint64_t len)
{
    if (off % EMBER_BLK_SECTOR || len % EMBER_BLK_SECTOR)
        return -EINVAL;
    uint64_t size = b->sectors * EMBER_BLK_SECTOR;
    if (off > size || len > size - off)
        return -EINVAL;
    return 0;
}

int ember_blk_read(struct ember_blk *b, uint64_t offset, void *buf, size_t len)
{
    int r = check_range(b, offset, len);
    if (r)
        return r;
    return transfer(b, T_IN, offset / EMBER_BLK_SECTOR, buf, len);
}

int ember_blk_write(struct ember_blk *b, uint64_t offset, const void *buf, size_t len)
{
    if (ember_blk_read_only(b))
        return -EROFS;
    int r = check_range(b, offset, len);
    if (r)
        return r;
    return transfer(b, T_OUT, offset / EMBER_BLK_SECTOR, (uint8_t *)(uintptr_t)buf, len);
}

int ember_blk_read_sectors(struct ember_blk *b, uint64_t sector, void *buf, uint32_t count)
{
    if (sector > UINT64_MAX / EMBER_BLK_SECTOR)
        return -EINVAL;
    return ember_blk_read(b, sector * EMBER_BLK_SECTOR, buf, (size_t)count * EMBER_BLK_SECTOR);
}

int ember_blk_write_sectors(struct ember_blk *b, uint64_t sector, const void *buf, uint32_t count)
{
    if (sector > UINT64_MAX / EMBER_BLK_SECTOR)
        return -EINVAL;
    return ember_blk_write(b, sector * EMBER_BLK_SECTOR, buf, (size_t)count * EMBER_BLK_SECTOR);
}

int ember_blk_flush(struct ember_blk *b)
{
    if (!vdev_has(&b->dev, BLK_F_FLUSH))
        return 0; /* no write cache the guest can flush (cache_type Unsafe) */
    int r = usable(b);
    if (r)
        return r;
    b->err = 0;
    r = submit(b, T_FLUSH, 0, NULL, 0);
    int e = drain(b);
    return r ? r : e;
}

int ember_blk_request(struct ember_blk *b, uint32_t type, uint64_t sector, void *buf, uint32_t len)
{
    int r = usable(b);
    if (r)
        return r;
    if (len > b->req_bytes)
        return -EINVAL;
    b->err = 0;
    r = submit(b, type, sector, buf, len);
    int e = drain(b);
    return r ? r : e;
}

int ember_blk_get_id(struct ember_blk *b, char *buf)
{
    /* The device writes up to 20 bytes, NUL-padded only if shorter. */
    sdk_memset(buf, 0, EMBER_BLK_ID_MAX + 1);
    return ember_blk_request(b, T_GET_ID, 0, buf, EMBER_BLK_ID_MAX);
}

static int dwz(struct ember_blk *b, uint32_t type, uint32_t max, uint64_t off, uint64_t len,
               uint32_t flags)
{
    if (ember_blk_read_only(b))
        return -EROFS;
    if (max == 0)
        return -EOPNOTSUPP;
    int r = check_range(b, off, len);
    if (r)
        return r;
    if ((r = usable(b)) != 0)
        return r;
    b->err = 0;
    uint64_t sector = off / EMBER_BLK_SECTOR, left = len / EMBER_BLK_SECTOR;
    while (left) {
        /* One range per request (max_*_seg is at least 1); the range
         * descriptor lives in the slot. */
        struct blk_slot *s;
        while (!(s = free_slot(b)))
            reap(b);
        uint32_t n = left < max ? (uint32_t)left : max;
        s->dwz = (struct blk_dwz){.sector = sector, .num_sectors = n, .flags = flags};
        r = submit(b, type, 0, &s->dwz, sizeof(s->dwz));
        if (r)
            break;
        vq_kick(&b->dev, &b->vq);
        sector += n;
        left -= n;
    }
    int e = drain(b);
    return r ? r : e;
}

int ember_blk_discard(struct ember_blk *b, uint64_t offset, uint64_t len)
{
    return dwz(b, T_DISCARD, b->max_discard, offset, len, 0);
}

int ember_blk_write_zeroes(struct ember_blk *b, uint64_t offset, uint64_t len, bool unmap)
{
    return dwz(b, T_WRITE_ZEROES, b->max_wz, offset, len, unmap ? WZ_F_UNMAP : 0);
}
