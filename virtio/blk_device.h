/* blk_device.h: virtio-blk (virtio 1.2 §5.2) backed by a host file.
 *
 * Requests IN, OUT, FLUSH, GET_ID, DISCARD and WRITE_ZEROES (the last two by
 * punching holes); anything else is UNSUPP, a request outside the disk is
 * IOERR, a read-only drive refuses writes with IOERR and offers
 * VIRTIO_BLK_F_RO. Two engines: Sync (preadv/pwritev on the main loop, the
 * default) and Async (io_uring: large or many requests do not hold the loop).
 * A Firecracker rate limiter can throttle bandwidth and operations.
 */
#ifndef EMBER_VIRTIO_BLK_H
#define EMBER_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/guest_mem.h"
#include "virtio/mmio.h"
#include "virtio/rate_limiter.h"

#define BLK_ID_MAX 64u

struct blk_config {
    char id[BLK_ID_MAX + 1]; /* drive_id: [A-Za-z0-9_]{1,64} */
    char *path;              /* path_on_host, owned */
    bool read_only;
    bool writeback; /* cache_type Writeback: FLUSH offered, fsync'd; Unsafe: not */
    bool async;     /* io_engine Async (io_uring) */
    bool root;      /* is_root_device: an SDK guest mounts it at / (boot info root_drive) */
    struct rate_limiter_config rate_limiter;
};

struct blk_stats {
    uint64_t read_bytes, write_bytes;
    uint64_t read_count, write_count, flush_count, discard_count, write_zeroes_count;
    uint64_t io_errors, unsupported, throttled;
};

struct blk;
struct uv_loop_s;

/* Opens the backing file (errors name the drive and the file). */
struct blk *blk_create(const struct blk_config *cfg, const struct guest_mem *mem, uint64_t base,
                       uint32_t gsi, char *err, size_t errlen);
/* Starts serving on the main loop: queue notifications, io_uring
 * completions, rate-limiter timers. */
int blk_attach(struct blk *b, struct uv_loop_s *loop);
void blk_destroy(struct blk *b);
struct virtio_mmio *blk_transport(struct blk *b);
const struct blk_config *blk_get_config(const struct blk *b);
const struct blk_stats *blk_get_stats(const struct blk *b);
/* After boot (PATCH /drives): a new backing file and/or rate limiter; the
 * guest gets a config-change interrupt. path NULL keeps the file; rl NULL
 * keeps the limiter. Main loop only. Returns 0 or -1 with err. */
int blk_update(struct blk *b, const char *path, const struct rate_limiter_config *rl, char *err,
               size_t errlen);

#endif
