/* rate_limiter.c: token buckets with Firecracker's semantics (see .h). */
#include "virtio/rate_limiter.h"

#include <string.h>

static bool limits(const struct token_bucket *b)
{
    return b->cfg.size > 0 && b->cfg.refill_time_ms > 0;
}

static void refill(struct token_bucket *b, uint64_t now_ns)
{
    uint64_t elapsed, period_ns, tokens;

    if (!limits(b) || now_ns <= b->last_ns)
        return;
    elapsed = now_ns - b->last_ns;
    period_ns = b->cfg.refill_time_ms * 1000000u;
    /* tokens = elapsed * size / period, without overflowing for large sizes. */
    tokens = (uint64_t)(((unsigned __int128)elapsed * b->cfg.size) / period_ns);
    if (tokens == 0)
        return; /* keep last_ns so fractions accumulate */
    b->last_ns = now_ns;
    if (b->deficit) {
        uint64_t paid = tokens < b->deficit ? tokens : b->deficit;
        b->deficit -= paid;
        tokens -= paid;
    }
    b->budget = b->budget + tokens > b->cfg.size ? b->cfg.size : b->budget + tokens;
}

static void bucket_init(struct token_bucket *b, const struct token_bucket_config *cfg,
                        uint64_t now_ns)
{
    memset(b, 0, sizeof(*b));
    b->cfg = *cfg;
    b->budget = cfg->size;
    b->burst = cfg->one_time_burst;
    b->last_ns = now_ns;
}

void rate_limiter_init(struct rate_limiter *rl, const struct rate_limiter_config *cfg,
                       uint64_t now_ns)
{
    bucket_init(&rl->bandwidth, &cfg->bandwidth, now_ns);
    bucket_init(&rl->ops, &cfg->ops, now_ns);
}

bool rate_limiter_active(const struct rate_limiter *rl)
{
    return limits(&rl->bandwidth) || limits(&rl->ops);
}

/* Whether n tokens can be taken now (without taking them). */
static bool can_take(struct token_bucket *b, uint64_t n, uint64_t now_ns)
{
    if (!limits(b) || n == 0)
        return true;
    refill(b, now_ns);
    if (b->deficit)
        return false;
    if (n <= b->burst)
        return true;
    n -= b->burst;
    /* Larger than the bucket: allowed once the bucket is full. */
    return n <= b->budget || (n > b->cfg.size && b->budget == b->cfg.size);
}

static void take(struct token_bucket *b, uint64_t n)
{
    uint64_t from_burst;

    if (!limits(b))
        return;
    from_burst = n < b->burst ? n : b->burst;
    b->burst -= from_burst;
    n -= from_burst;
    if (n <= b->budget) {
        b->budget -= n;
    } else {
        b->deficit = n - b->budget;
        b->budget = 0;
    }
}

bool rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns)
{
    if (!can_take(&rl->bandwidth, bytes, now_ns) || !can_take(&rl->ops, 1, now_ns))
        return false;
    take(&rl->bandwidth, bytes);
    take(&rl->ops, 1);
    return true;
}

static uint64_t bucket_wait(struct token_bucket *b, uint64_t n, uint64_t now_ns)
{
    uint64_t need, period_ns;

    if (can_take(b, n, now_ns))
        return 0;
    period_ns = b->cfg.refill_time_ms * 1000000u;
    if (n > b->burst)
        n -= b->burst;
    if (n > b->cfg.size)
        n = b->cfg.size; /* waits for a full bucket */
    need = b->deficit + (n > b->budget ? n - b->budget : 0);
    /* Time for `need` tokens, rounded up, at least 1 ms to avoid spinning. */
    uint64_t ns = (uint64_t)(((unsigned __int128)need * period_ns + b->cfg.size - 1) / b->cfg.size);
    return ns < 1000000u ? 1000000u : ns;
}

uint64_t rate_limiter_wait_ns(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns)
{
    uint64_t a = bucket_wait(&rl->bandwidth, bytes, now_ns);
    uint64_t b = bucket_wait(&rl->ops, 1, now_ns);

    return a > b ? a : b;
}
