/* test_rate_limiter.c: token buckets with Firecracker's semantics. */
#include <criterion/criterion.h>

#include "virtio/rate_limiter.h"

#define MS 1000000ull

Test(rate_limiter, unlimited_by_default)
{
    struct rate_limiter rl;
    struct rate_limiter_config cfg = {0};

    rate_limiter_init(&rl, &cfg, 0);
    cr_expect(!rate_limiter_active(&rl));
    for (int i = 0; i < 1000; i++)
        cr_expect(rate_limiter_consume(&rl, 1 << 20, 0));
}

Test(rate_limiter, bandwidth_refills_over_time)
{
    struct rate_limiter rl;
    struct rate_limiter_config cfg = {.bandwidth = {.size = 1000, .refill_time_ms = 100}};

    rate_limiter_init(&rl, &cfg, 0);
    cr_expect(rate_limiter_consume(&rl, 600, 0));
    cr_expect(!rate_limiter_consume(&rl, 600, 0), "only 400 left");
    cr_expect_geq(rate_limiter_wait_ns(&rl, 600, 0), 20 * MS);
    cr_expect(!rate_limiter_consume(&rl, 600, 10 * MS), "100 tokens back after 10 ms: 500");
    cr_expect(rate_limiter_consume(&rl, 600, 20 * MS), "200 back after 20 ms: 600");
    cr_expect_eq(rate_limiter_wait_ns(&rl, 0, 20 * MS), 0);
}

Test(rate_limiter, one_time_burst_is_spent_first_and_not_refilled)
{
    struct rate_limiter rl;
    struct rate_limiter_config cfg = {
        .bandwidth = {.size = 100, .one_time_burst = 1000, .refill_time_ms = 1000}};

    rate_limiter_init(&rl, &cfg, 0);
    cr_expect(rate_limiter_consume(&rl, 1000, 0), "the burst");
    cr_expect(rate_limiter_consume(&rl, 100, 0), "then the bucket");
    cr_expect(!rate_limiter_consume(&rl, 1, 0));
    cr_expect(rate_limiter_consume(&rl, 100, 1000 * MS), "refilled, burst gone");
    cr_expect(!rate_limiter_consume(&rl, 1, 1000 * MS));
}

Test(rate_limiter, oversized_request_goes_when_full_and_leaves_a_deficit)
{
    struct rate_limiter rl;
    struct rate_limiter_config cfg = {.bandwidth = {.size = 100, .refill_time_ms = 100}};

    rate_limiter_init(&rl, &cfg, 0);
    cr_expect(rate_limiter_consume(&rl, 250, 0), "larger than the bucket, bucket full");
    cr_expect(!rate_limiter_consume(&rl, 1, 100 * MS), "still paying 150 back");
    cr_expect(rate_limiter_consume(&rl, 1, 260 * MS), "paid back after ~150 ms, refilled");
}

Test(rate_limiter, ops_bucket)
{
    struct rate_limiter rl;
    struct rate_limiter_config cfg = {.ops = {.size = 2, .refill_time_ms = 1000}};

    rate_limiter_init(&rl, &cfg, 0);
    cr_expect(rate_limiter_consume(&rl, 1 << 30, 0));
    cr_expect(rate_limiter_consume(&rl, 0, 0));
    cr_expect(!rate_limiter_consume(&rl, 0, 0));
    cr_expect(rate_limiter_consume(&rl, 0, 500 * MS), "one op back after half the refill time");
}
