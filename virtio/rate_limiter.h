/* rate_limiter.h: Firecracker's token-bucket rate limiter, for block and
 * network devices.
 *
 * Two buckets, bandwidth (bytes) and operations, each with a size, a refill
 * time in milliseconds (the time to refill an empty bucket completely) and
 * a one-time burst that is spent first and never refills. A request larger
 * than a bucket is let through when the bucket is full and leaves a deficit
 * that blocks the bucket until it is paid back, so nothing is throttled
 * forever. A bucket of size 0 (or refill time 0) does not limit.
 */
#ifndef EMBER_VIRTIO_RATE_LIMITER_H
#define EMBER_VIRTIO_RATE_LIMITER_H

#include <stdbool.h>
#include <stdint.h>

struct token_bucket_config {
    uint64_t size;
    uint64_t one_time_burst;
    uint64_t refill_time_ms;
};

struct rate_limiter_config {
    struct token_bucket_config bandwidth;
    struct token_bucket_config ops;
};

struct token_bucket {
    struct token_bucket_config cfg;
    uint64_t budget;  /* tokens available now */
    uint64_t burst;   /* what is left of the one-time burst */
    uint64_t deficit; /* tokens owed by an over-sized request */
    uint64_t last_ns; /* last refill */
};

struct rate_limiter {
    struct token_bucket bandwidth, ops;
};

void rate_limiter_init(struct rate_limiter *rl, const struct rate_limiter_config *cfg,
                       uint64_t now_ns);
/* Whether a request of `bytes` (and one operation) may go now; consumes the
 * tokens if so. */
bool rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns);
/* How long until a request of `bytes` could go (0 if now). */
uint64_t rate_limiter_wait_ns(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns);
bool rate_limiter_active(const struct rate_limiter *rl);

#endif
