/* blk_device.c: virtio-blk over a host file, Sync and io_uring engines (see blk_device.h). */
#include "virtio/blk_device.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include "common/errmsg.h"

#define SECTOR          512u
#define SEG_MAX         (VQ_SEGS_MAX - 2) /* all but header and status */
#define RING_ENTRIES    VQ_SIZE_MAX
#define DISCARD_SEG_MAX 1u /* segments per DISCARD/WRITE_ZEROES request */

/* One request in flight on io_uring. */
struct blk_req {
    uint16_t head;
    uint32_t epoch; /* the queue's, when the chain was popped */
    uint32_t type;
    uint8_t *status;
    uint32_t used_len; /* on success */
    uint64_t expect;   /* bytes the transfer must move */
    int niov;
    struct iovec iov[];
};

struct blk {
    struct virtio_mmio t;
    struct blk_config cfg;
    const struct guest_mem *mem;
    int fd;
    uint64_t sectors;
    struct rate_limiter rl;
    struct blk_stats stats;
    struct vq_chain chain; /* scratch for the chain being handled */

    uv_loop_t *loop;
    uv_poll_t notify_poll;
    uv_timer_t rl_timer;
    bool rl_waiting;
    bool attached;

    struct io_uring ring;
    bool ring_ok;
    int ring_efd;
    uv_poll_t ring_poll;
    unsigned inflight;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- transport ops -------------------------------------------------------- */

static uint64_t blk_features(void *dev)
{
    struct blk *b = dev;
    uint64_t f = (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
                 (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE);

    if (b->cfg.read_only)
        f |= 1ull << VIRTIO_BLK_F_RO;
    else
        f |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
    if (b->cfg.writeback)
        f |= 1ull << VIRTIO_BLK_F_FLUSH;
    return f;
}

static void blk_config_read(void *dev, uint32_t off, void *data, uint32_t len)
{
    struct blk *b = dev;
    struct virtio_blk_config c;

    memset(&c, 0, sizeof(c));
    c.capacity = b->sectors;
    c.seg_max = SEG_MAX;
    c.blk_size = SECTOR;
    c.max_discard_sectors = UINT32_MAX;
    c.max_discard_seg = DISCARD_SEG_MAX;
    c.discard_sector_alignment = 1;
    c.max_write_zeroes_sectors = UINT32_MAX;
    c.max_write_zeroes_seg = DISCARD_SEG_MAX;
    c.write_zeroes_may_unmap = 1;
    memcpy(data, (uint8_t *)&c + off, len);
}

static void process(struct blk *b);

static void blk_notify(void *dev, struct virtio_mmio *t, unsigned q)
{
    (void)t;
    (void)q;
    process(dev);
}

/* vCPU thread, lock held. io_uring requests in flight still move data into
 * guest memory the driver gave us (the kernel has the iovecs); their
 * completions find the queue's epoch over and are dropped. A chain the rate
 * limiter holds back was never consumed (last_avail went back): nothing to
 * forget. The limiter's timer belongs to the loop and is left to fire: its
 * callback then finds nothing to do. */
static void blk_reset(void *dev)
{
    struct blk *b = dev;

    b->rl_waiting = false;
}

static void blk_queue_stop(void *dev, unsigned q)
{
    (void)q;
    blk_reset(dev);
}

static const struct virtio_dev_ops blk_ops = {
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .nqueues = 1,
    .features = blk_features,
    .config_size = sizeof(struct virtio_blk_config),
    .config_read = blk_config_read,
    .queue_notify = blk_notify,
    .reset = blk_reset,
    .queue_stop = blk_queue_stop,
};

/* ---- requests ------------------------------------------------------------ */

static bool in_disk(const struct blk *b, uint64_t sector, uint64_t bytes)
{
    uint64_t end;

    return bytes % SECTOR == 0 && !__builtin_add_overflow(sector, bytes / SECTOR, &end) &&
           end <= b->sectors;
}

static int rw_all(int fd, bool write, struct iovec *iov, int n, uint64_t off, uint64_t total)
{
    uint64_t done = 0;

    while (done < total) {
        ssize_t r = write ? pwritev(fd, iov, n, (off_t)(off + done))
                          : preadv(fd, iov, n, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        done += (uint64_t)r;
        /* Advance the iovec past what was moved. */
        while (n && (size_t)r >= iov->iov_len) {
            r -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n) {
            iov->iov_base = (uint8_t *)iov->iov_base + r;
            iov->iov_len -= (size_t)r;
        }
    }
    return 0;
}

static uint8_t discard(struct blk *b, const struct vq_chain *c, bool zeroes)
{
    struct virtio_blk_discard_write_zeroes seg;
    uint64_t nsegs = (c->readable - sizeof(struct virtio_blk_outhdr)) / sizeof(seg);

    if (b->cfg.read_only || nsegs == 0 || nsegs > DISCARD_SEG_MAX)
        return VIRTIO_BLK_S_IOERR;
    for (uint64_t i = 0; i < nsegs; i++) {
        if (!vq_chain_copy(c, false, sizeof(struct virtio_blk_outhdr) + i * sizeof(seg), &seg,
                           sizeof(seg)))
            return VIRTIO_BLK_S_IOERR;
        uint64_t bytes = (uint64_t)seg.num_sectors * SECTOR;
        if (seg.flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
            return VIRTIO_BLK_S_UNSUPP;
        if (!in_disk(b, seg.sector, bytes))
            return VIRTIO_BLK_S_IOERR;
        /* A punched hole reads as zeroes: the right answer for both, and it
         * gives the space back to the host. */
        int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
        if (fallocate(b->fd, mode, (off_t)(seg.sector * SECTOR), (off_t)bytes) != 0) {
            if (!zeroes)
                return VIRTIO_BLK_S_IOERR;
            if (fallocate(b->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                          (off_t)(seg.sector * SECTOR), (off_t)bytes) != 0)
                return VIRTIO_BLK_S_IOERR;
        }
        if (zeroes)
            b->stats.write_zeroes_count++;
        else
            b->stats.discard_count++;
    }
    return VIRTIO_BLK_S_OK;
}

/* Ends a request. One whose queue stopped or was reset since the chain was
 * taken is dropped without a word: that driver no longer expects it, and its
 * memory may hold something else by now. */
static void complete(struct blk *b, uint16_t head, uint32_t epoch, uint8_t *status, uint8_t s,
                     uint32_t len)
{
    struct vq *vq = &b->t.queues[0];

    if (epoch != vq->epoch || !vq_usable(vq))
        return;
    *status = s;
    if (s == VIRTIO_BLK_S_IOERR)
        b->stats.io_errors++;
    else if (s == VIRTIO_BLK_S_UNSUPP)
        b->stats.unsupported++;
    vq_push(&b->t.queues[0], b->mem, head, len);
}

static bool submit_async(struct blk *b, uint32_t type, const struct vq_chain *c, uint8_t *status,
                         struct iovec *iov, int niov, uint64_t off, uint64_t bytes)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
    struct blk_req *r;

    if (!sqe)
        return false;
    r = malloc(sizeof(*r) + (size_t)niov * sizeof(struct iovec));
    if (!r)
        return false;
    r->head = c->head;
    r->epoch = c->epoch;
    r->type = type;
    r->status = status;
    r->expect = bytes;
    r->used_len = type == VIRTIO_BLK_T_IN ? (uint32_t)bytes + 1 : 1;
    r->niov = niov;
    memcpy(r->iov, iov, (size_t)niov * sizeof(*iov));
    if (type == VIRTIO_BLK_T_IN)
        io_uring_prep_readv(sqe, b->fd, r->iov, (unsigned)niov, off);
    else if (type == VIRTIO_BLK_T_OUT)
        io_uring_prep_writev(sqe, b->fd, r->iov, (unsigned)niov, off);
    else {
        io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
        sqe->flags |= IOSQE_IO_DRAIN; /* after every write before it */
    }
    io_uring_sqe_set_data(sqe, r);
    b->inflight++;
    return true;
}

/* Handles one chain. Returns false if it must wait (rate limiter). */
static bool handle(struct blk *b, struct vq_chain *c, bool *pushed)
{
    struct virtio_blk_outhdr hdr;
    struct iovec iov[VQ_SEGS_MAX];
    const struct vq_seg *last = &c->segs[c->nsegs - 1];
    uint8_t *status;
    uint64_t data, off;
    int n;

    /* Every request ends in a device-writable status byte. */
    if (c->nsegs == 0 || !last->write || last->len == 0 || c->readable < sizeof(hdr) ||
        !vq_chain_copy(c, false, 0, &hdr, sizeof(hdr))) {
        virtio_mmio_fail(&b->t, 0, "virtio-blk request without header or status byte");
        return true;
    }
    status = last->host + last->len - 1;
    data = hdr.type == VIRTIO_BLK_T_IN ? c->writable - 1 : c->readable - sizeof(hdr);
    if ((hdr.type == VIRTIO_BLK_T_IN || hdr.type == VIRTIO_BLK_T_OUT) &&
        !rate_limiter_consume(&b->rl, data, now_ns())) {
        b->stats.throttled++;
        return false;
    }
    *pushed = true;
    switch (hdr.type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
        bool out = hdr.type == VIRTIO_BLK_T_OUT;
        if (out && b->cfg.read_only) {
            complete(b, c->head, c->epoch, status, VIRTIO_BLK_S_IOERR, 1);
            return true;
        }
        if (!in_disk(b, hdr.sector, data) || (out && c->writable != 1)) {
            complete(b, c->head, c->epoch, status, VIRTIO_BLK_S_IOERR, 1);
            return true;
        }
        off = hdr.sector * SECTOR;
        n = out ? vq_chain_iov(c, false, sizeof(hdr), data, iov, VQ_SEGS_MAX)
                : vq_chain_iov(c, true, 0, data, iov, VQ_SEGS_MAX);
        if (n < 0) {
            complete(b, c->head, c->epoch, status, VIRTIO_BLK_S_IOERR, 1);
            return true;
        }
        if (out) {
            b->stats.write_bytes += data;
            b->stats.write_count++;
        } else {
            b->stats.read_bytes += data;
            b->stats.read_count++;
        }
        if (b->ring_ok && data && submit_async(b, hdr.type, c, status, iov, n, off, data))
            return true;
        if (rw_all(b->fd, out, iov, n, off, data) != 0)
            complete(b, c->head, c->epoch, status, VIRTIO_BLK_S_IOERR, 1);
        else
            complete(b, c->head, c->epoch, status, VIRTIO_BLK_S_OK, out ? 1 : (uint32_t)data + 1);
        return true;
    }
    case VIRTIO_BLK_T_FLUSH:
        if (!b->cfg.writeback) {
            complete(b, c->head, c->epoch, status, VIRTIO_BLK_S_UNSUPP, 1);
            return true;
        }
        b->stats.flush_count++;
        if (b->ring_ok && submit_async(b, hdr.type, c, status, NULL, 0, 0, 0))
            return true;
        complete(b, c->head, c->epoch, status,
                 fdatasync(b->fd) == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR, 1);
        return true;
    case VIRTIO_BLK_T_GET_ID: {
        char id[VIRTIO_BLK_ID_BYTES] = {0};
        size_t idlen = strnlen(b->cfg.id, sizeof(id)); /* 20 bytes: no NUL, as the spec says */
        memcpy(id, b->cfg.id, idlen);
        n = vq_chain_iov(c, true, 0, c->writable - 1, iov, VQ_SEGS_MAX);
        uint64_t copied = 0;
        for (int i = 0; i < n && copied < sizeof(id); i++) {
            size_t take =
                iov[i].iov_len < sizeof(id) - copied ? iov[i].iov_len : sizeof(id) - copied;
            memcpy(iov[i].iov_base, id + copied, take);
            copied += take;
        }
        complete(b, c->head, c->epoch, status, VIRTIO_BLK_S_OK, (uint32_t)copied + 1);
        return true;
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        complete(b, c->head, c->epoch, status, discard(b, c, hdr.type == VIRTIO_BLK_T_WRITE_ZEROES),
                 1);
        return true;
    default:
        complete(b, c->head, c->epoch, status, VIRTIO_BLK_S_UNSUPP, 1);
        return true;
    }
}

static void rl_timer_cb(uv_timer_t *t)
{
    struct blk *b = t->data;

    pthread_mutex_lock(&b->t.lock);
    b->rl_waiting = false;
    process(b);
    pthread_mutex_unlock(&b->t.lock);
}

/* Serves queue 0 until it is empty or throttled. Transport lock held. */
static void process(struct blk *b)
{
    struct vq *vq = &b->t.queues[0];
    char why[160];
    bool pushed = false;

    if (b->rl_waiting)
        return;
    for (;;) {
        enum vq_result r = vq_pop(vq, b->mem, &b->chain, why, sizeof(why));
        if (r == VQ_EMPTY) {
            /* Ask for a notification, then look once more: a request added
             * before the driver could see avail_event gets no notify. */
            vq_update_avail_event(vq, b->mem);
            r = vq_pop(vq, b->mem, &b->chain, why, sizeof(why));
        }
        if (r == VQ_EMPTY)
            break;
        if (r == VQ_BROKEN) {
            virtio_mmio_fail(&b->t, 0, why);
            break;
        }
        if (!handle(b, &b->chain, &pushed)) {
            vq->last_avail--; /* take it again when the limiter allows */
            uint64_t wait =
                rate_limiter_wait_ns(&b->rl, b->chain.writable + b->chain.readable, now_ns());
            b->rl_waiting = true;
            if (b->attached)
                uv_timer_start(&b->rl_timer, rl_timer_cb, (wait + 999999) / 1000000, 0);
            break;
        }
        if (vq->broken)
            break;
    }
    if (b->ring_ok && io_uring_sq_ready(&b->ring))
        io_uring_submit(&b->ring);
    if (pushed)
        virtio_mmio_notify_used(&b->t, 0);
}

/* ---- main-loop plumbing -------------------------------------------------- */

static void drain(int fd)
{
    uint64_t v;

    while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
        ;
}

static void notify_cb(uv_poll_t *p, int status, int events)
{
    struct blk *b = p->data;

    (void)events;
    if (status < 0)
        return;
    drain(b->t.notify_fd[0]);
    pthread_mutex_lock(&b->t.lock);
    process(b);
    pthread_mutex_unlock(&b->t.lock);
}

static void ring_cb(uv_poll_t *p, int status, int events)
{
    struct blk *b = p->data;
    struct io_uring_cqe *cqe;
    bool any = false;

    (void)events;
    if (status < 0)
        return;
    drain(b->ring_efd);
    pthread_mutex_lock(&b->t.lock);
    while (io_uring_peek_cqe(&b->ring, &cqe) == 0) {
        struct blk_req *r = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&b->ring, cqe);
        b->inflight--;
        /* A reset or a stopped queue while in flight: complete() drops it. */
        bool ok = r->type == VIRTIO_BLK_T_FLUSH ? res == 0 : res >= 0 && (uint64_t)res == r->expect;
        complete(b, r->head, r->epoch, r->status, ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR,
                 ok ? r->used_len : 1);
        any = true;
        free(r);
    }
    if (any)
        virtio_mmio_notify_used(&b->t, 0);
    pthread_mutex_unlock(&b->t.lock);
}

static int open_backing(const struct blk_config *cfg, int *fd, uint64_t *sectors, char *err,
                        size_t errlen)
{
    struct stat st;
    int f = open(cfg->path, (cfg->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);

    if (f < 0)
        return errmsg(-1, err, errlen, "drive \"%s\": %s: %s", cfg->id, cfg->path, strerror(errno));
    if (fstat(f, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
        close(f);
        return errmsg(-1, err, errlen, "drive \"%s\": %s: not a regular file or block device",
                      cfg->id, cfg->path);
    }
    *fd = f;
    *sectors = (uint64_t)st.st_size / SECTOR;
    return 0;
}

struct blk *blk_create(const struct blk_config *cfg, const struct guest_mem *mem, uint64_t base,
                       uint32_t gsi, char *err, size_t errlen)
{
    struct blk *b = calloc(1, sizeof(*b));

    if (!b) {
        errmsg(-1, err, errlen, "drive \"%s\": out of memory", cfg->id);
        return NULL;
    }
    b->cfg = *cfg;
    b->cfg.path = strdup(cfg->path);
    b->mem = mem;
    b->fd = -1;
    b->ring_efd = -1;
    if (!b->cfg.path || open_backing(cfg, &b->fd, &b->sectors, err, errlen) != 0)
        goto err;
    char label[96];
    snprintf(label, sizeof(label), "virtio-blk \"%s\"", cfg->id);
    if (virtio_mmio_init(&b->t, &blk_ops, b, label, mem, base, gsi) != 0) {
        errmsg(-1, err, errlen, "drive \"%s\": %s", cfg->id, strerror(errno));
        goto err;
    }
    rate_limiter_init(&b->rl, &cfg->rate_limiter, now_ns());
    if (cfg->async) {
        int rc = io_uring_queue_init(RING_ENTRIES, &b->ring, 0);
        if (rc < 0) {
            errmsg(-1, err, errlen, "drive \"%s\": io_uring: %s", cfg->id, strerror(-rc));
            goto err;
        }
        b->ring_ok = true;
        b->ring_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (b->ring_efd < 0 || io_uring_register_eventfd(&b->ring, b->ring_efd) != 0) {
            errmsg(-1, err, errlen, "drive \"%s\": io_uring eventfd: %s", cfg->id, strerror(errno));
            goto err;
        }
    }
    return b;
err:
    blk_destroy(b);
    return NULL;
}

int blk_attach(struct blk *b, uv_loop_t *loop)
{
    b->loop = loop;
    if (uv_poll_init(loop, &b->notify_poll, b->t.notify_fd[0]) != 0 ||
        uv_timer_init(loop, &b->rl_timer) != 0)
        return -1;
    b->notify_poll.data = b;
    b->rl_timer.data = b;
    if (uv_poll_start(&b->notify_poll, UV_READABLE, notify_cb) != 0)
        return -1;
    if (b->ring_ok) {
        if (uv_poll_init(loop, &b->ring_poll, b->ring_efd) != 0)
            return -1;
        b->ring_poll.data = b;
        if (uv_poll_start(&b->ring_poll, UV_READABLE, ring_cb) != 0)
            return -1;
    }
    b->attached = true;
    return 0;
}

void blk_destroy(struct blk *b)
{
    if (!b)
        return;
    if (b->ring_ok)
        io_uring_queue_exit(&b->ring);
    if (b->ring_efd >= 0)
        close(b->ring_efd);
    if (b->fd >= 0)
        close(b->fd);
    if (b->t.ops)
        virtio_mmio_destroy(&b->t);
    free(b->cfg.path);
    free(b);
}

struct virtio_mmio *blk_transport(struct blk *b)
{
    return &b->t;
}

const struct blk_config *blk_get_config(const struct blk *b)
{
    return &b->cfg;
}

const struct blk_stats *blk_get_stats(const struct blk *b)
{
    return &b->stats;
}

int blk_update(struct blk *b, const char *path, const struct rate_limiter_config *rl, char *err,
               size_t errlen)
{
    pthread_mutex_lock(&b->t.lock);
    if (path) {
        struct blk_config c = b->cfg;
        char *copy = strdup(path);
        int fd;
        uint64_t sectors;
        c.path = copy;
        if (!copy || open_backing(&c, &fd, &sectors, err, errlen) != 0) {
            free(copy);
            pthread_mutex_unlock(&b->t.lock);
            return -1;
        }
        /* io_uring requests in flight hold the old fd's file via the ring. */
        close(b->fd);
        b->fd = fd;
        b->sectors = sectors;
        free(b->cfg.path);
        b->cfg.path = copy;
    }
    if (rl) {
        b->cfg.rate_limiter = *rl;
        rate_limiter_init(&b->rl, rl, now_ns());
        b->rl_waiting = false;
        if (b->attached)
            uv_timer_stop(&b->rl_timer);
        process(b);
    }
    virtio_mmio_config_changed(&b->t);
    pthread_mutex_unlock(&b->t.lock);
    return 0;
}
