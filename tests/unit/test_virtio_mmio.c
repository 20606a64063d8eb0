/* test_virtio_mmio.c: the virtio-mmio transport's status machine and queue
 * registers against a driver that breaks the rules (virtio 1.2 §2.1, §3.1.1,
 * §4.2.2), with a fake device that records what the transport tells it. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <string.h>

#include "virtio/mmio.h" /* before the Linux header, which defines VIRTIO_MMIO_CONFIG too */

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#define MEM   (1u << 20)
#define QSZ   8u
#define NQ    2u
#define RINGS 0x1000u /* queue q's rings at RINGS + q * 0x3000 */

static struct guest_mem mem;
static struct virtio_mmio t;
static unsigned resets, stops[NQ];

static uint64_t fake_features(void *dev)
{
    (void)dev;
    return 0;
}

static void fake_config_read(void *dev, uint32_t off, void *data, uint32_t len)
{
    (void)dev;
    (void)off;
    memset(data, 0, len);
}

static void fake_notify(void *dev, struct virtio_mmio *tr, unsigned q)
{
    (void)dev;
    (void)tr;
    (void)q;
}

static void fake_reset(void *dev)
{
    (void)dev;
    resets++;
}

static void fake_queue_stop(void *dev, unsigned q)
{
    (void)dev;
    cr_assert_lt(q, NQ);
    stops[q]++;
}

static const struct virtio_dev_ops fake_ops = {
    .name = "fake",
    .device_id = 42,
    .nqueues = NQ,
    .features = fake_features,
    .config_size = 8,
    .config_read = fake_config_read,
    .queue_notify = fake_notify,
    .reset = fake_reset,
    .queue_stop = fake_queue_stop,
};

static void wr(uint32_t off, uint32_t v)
{
    virtio_mmio_write(&t, off, &v, 4);
}

static uint32_t rd(uint32_t off)
{
    uint32_t v;

    virtio_mmio_read(&t, off, &v, 4);
    return v;
}

enum { ACK = 1, DRV = 2, DRV_OK = 4, FEAT_OK = 8, NEEDS_RESET = 64, FAILED = 128 };

static void layout(unsigned q, uint32_t num)
{
    uint64_t base = RINGS + q * 0x3000u;

    wr(VIRTIO_MMIO_QUEUE_SEL, q);
    wr(VIRTIO_MMIO_QUEUE_NUM, num);
    wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)base);
    wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
    wr(VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)base + 0x1000u);
    wr(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0);
    wr(VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)base + 0x2000u);
    wr(VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
}

/* A driver's whole initialisation (virtio 1.2 §3.1.1), ending live. */
static void bring_up(void)
{
    wr(VIRTIO_MMIO_STATUS, 0);
    wr(VIRTIO_MMIO_STATUS, ACK);
    wr(VIRTIO_MMIO_STATUS, ACK | DRV);
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VIRTIO_F_VERSION_1 */
    wr(VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK);
    cr_assert_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV | FEAT_OK);
    for (unsigned q = 0; q < NQ; q++) {
        layout(q, QSZ);
        wr(VIRTIO_MMIO_QUEUE_READY, 1);
        cr_assert(vq_usable(&t.queues[q]), "queue %u not usable after set-up", q);
    }
    wr(VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK | DRV_OK);
    cr_assert_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV | FEAT_OK | DRV_OK);
}

static void setup(void)
{
    cr_assert_eq(guest_mem_map(&mem, MEM), 0);
    cr_assert_eq(virtio_mmio_init(&t, &fake_ops, NULL, "fake", &mem, 0xd0000000, 5), 0);
    resets = 0;
    memset(stops, 0, sizeof(stops));
    bring_up();
}

static void teardown(void)
{
    virtio_mmio_destroy(&t);
    guest_mem_unmap(&mem);
}

TestSuite(mmio, .init = setup, .fini = teardown);

static void expect_all_stopped(void)
{
    for (unsigned q = 0; q < NQ; q++) {
        cr_expect(!vq_usable(&t.queues[q]), "queue %u still usable", q);
        cr_expect_eq(stops[q], 1, "queue %u: %u stops told to the device", q, stops[q]);
    }
}

Test(mmio, a_good_driver_gets_no_reset)
{
    cr_expect_eq(t.needs_reset_events, 0);
    cr_expect_eq(stops[0] + stops[1], 0);
}

/* The sequence of issue 10: STATUS without DRIVER_OK on a live device, the
 * queue disabled and shrunk to 0. One NEEDS_RESET, every queue stopped (the
 * device drops what it holds), the size untouched; a reset recovers. */
Test(mmio, status_regression_queue_disabled_and_zeroed, .init = cr_redirect_stderr)
{
    setup();
    wr(VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK);
    cr_expect(rd(VIRTIO_MMIO_STATUS) & NEEDS_RESET);
    cr_expect(rd(VIRTIO_MMIO_STATUS) & DRV_OK, "the bad write was applied");
    expect_all_stopped();
    wr(VIRTIO_MMIO_QUEUE_SEL, 0);
    wr(VIRTIO_MMIO_QUEUE_READY, 0);
    wr(VIRTIO_MMIO_QUEUE_NUM, 0);
    cr_expect_eq(t.queues[0].size, QSZ, "QueueNum changed on a live device");
    cr_expect(!vq_usable(&t.queues[0]));
    cr_expect_eq(vq_push(&t.queues[0], &mem, 0, 0), -1);
    cr_expect_eq(t.needs_reset_events, 1);
    fflush(stderr);
    cr_expect_stderr_eq_str("ember: fake: status 0xb written over 0xf: neither a reset nor a step "
                            "of initialisation; device needs reset\n");
    bring_up();
    cr_expect_eq(resets, 2);
    cr_expect_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV | FEAT_OK | DRV_OK);
    teardown();
}

Test(mmio, queue_disable_tells_the_device)
{
    wr(VIRTIO_MMIO_QUEUE_SEL, 1);
    wr(VIRTIO_MMIO_QUEUE_READY, 0);
    cr_expect_eq(stops[1], 1);
    cr_expect_eq(stops[0], 0);
    cr_expect_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0);
    cr_expect(!vq_usable(&t.queues[1]));
    wr(VIRTIO_MMIO_QUEUE_READY, 0); /* again: nothing more to stop */
    cr_expect_eq(stops[1], 1);
    cr_expect_eq(t.needs_reset_events, 0, "disabling a queue is not an error");
}

static void expect_reset_for(const char *what)
{
    cr_expect(rd(VIRTIO_MMIO_STATUS) & NEEDS_RESET, "%s: no NEEDS_RESET", what);
    cr_expect_eq(t.needs_reset_events, 1, "%s", what);
    expect_all_stopped();
}

Test(mmio, layout_written_on_a_live_device, .init = cr_redirect_stderr)
{
    static const uint32_t regs[] = {
        VIRTIO_MMIO_QUEUE_NUM,       VIRTIO_MMIO_QUEUE_DESC_LOW,   VIRTIO_MMIO_QUEUE_DESC_HIGH,
        VIRTIO_MMIO_QUEUE_AVAIL_LOW, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, VIRTIO_MMIO_QUEUE_USED_LOW,
        VIRTIO_MMIO_QUEUE_USED_HIGH,
    };
    for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
        setup();
        uint64_t before[3] = {t.queues[0].desc_gpa, t.queues[0].avail_gpa, t.queues[0].used_gpa};
        wr(VIRTIO_MMIO_QUEUE_SEL, 0);
        wr(regs[i], 0x40);
        expect_reset_for("layout");
        cr_expect_eq(t.queues[0].size, QSZ);
        cr_expect_eq(t.queues[0].desc_gpa, before[0]);
        cr_expect_eq(t.queues[0].avail_gpa, before[1]);
        cr_expect_eq(t.queues[0].used_gpa, before[2]);
        teardown();
    }
}

Test(mmio, layout_written_after_disable_on_a_live_device, .init = cr_redirect_stderr)
{
    setup();
    wr(VIRTIO_MMIO_QUEUE_SEL, 0);
    wr(VIRTIO_MMIO_QUEUE_READY, 0);
    wr(VIRTIO_MMIO_QUEUE_NUM, 0);
    cr_expect(rd(VIRTIO_MMIO_STATUS) & NEEDS_RESET);
    cr_expect_eq(t.queues[0].size, QSZ);
    wr(VIRTIO_MMIO_QUEUE_READY, 1); /* and re-enabled: still stopped */
    cr_expect(!vq_usable(&t.queues[0]));
    cr_expect_eq(t.needs_reset_events, 1);
    fflush(stderr);
    cr_expect_stderr_eq_str(
        "ember: fake: QueueNum of queue 0 written while the device is live; device needs reset\n");
    teardown();
}

Test(mmio, bad_status_steps, .init = cr_redirect_stderr)
{
    /* Each from a live device, none a reset. */
    static const uint32_t bad[] = {
        ACK,                               /* bits cleared */
        ACK | DRV | DRV_OK,                /* FEATURES_OK cleared */
        ACK | DRV | FEAT_OK | DRV_OK | 16, /* a reserved bit */
        ACK | DRV | FEAT_OK | DRV_OK | 32, /* another */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setup();
        wr(VIRTIO_MMIO_STATUS, bad[i]);
        expect_reset_for("status");
        teardown();
    }
}

Test(mmio, out_of_order_status_during_init, .init = cr_redirect_stderr)
{
    static const uint32_t bad[] = {DRV, ACK | FEAT_OK, ACK | DRV | DRV_OK};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setup();
        wr(VIRTIO_MMIO_STATUS, 0);
        if (bad[i] != DRV)
            wr(VIRTIO_MMIO_STATUS, ACK);
        wr(VIRTIO_MMIO_STATUS, bad[i]);
        cr_expect(rd(VIRTIO_MMIO_STATUS) & NEEDS_RESET, "status 0x%x accepted", bad[i]);
        teardown();
    }
}

Test(mmio, needs_reset_bit_written_back_is_harmless)
{
    wr(VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK | DRV_OK | NEEDS_RESET);
    cr_expect_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV | FEAT_OK | DRV_OK);
    cr_expect_eq(t.needs_reset_events, 0);
}

Test(mmio, failed_stops_the_device_without_a_reset_line)
{
    wr(VIRTIO_MMIO_STATUS, FAILED);
    cr_expect_eq(rd(VIRTIO_MMIO_STATUS), FAILED);
    cr_expect_eq(t.needs_reset_events, 0);
    expect_all_stopped();
}

Test(mmio, queue_enabled_on_a_live_device, .init = cr_redirect_stderr)
{
    setup();
    wr(VIRTIO_MMIO_QUEUE_SEL, 1);
    wr(VIRTIO_MMIO_QUEUE_READY, 0);
    wr(VIRTIO_MMIO_QUEUE_READY, 1);
    cr_expect(rd(VIRTIO_MMIO_STATUS) & NEEDS_RESET);
    cr_expect(!vq_usable(&t.queues[1]));
    teardown();
}

Test(mmio, queue_enabled_before_features_ok, .init = cr_redirect_stderr)
{
    setup();
    wr(VIRTIO_MMIO_STATUS, 0);
    wr(VIRTIO_MMIO_STATUS, ACK | DRV);
    layout(0, QSZ);
    wr(VIRTIO_MMIO_QUEUE_READY, 1);
    cr_expect(rd(VIRTIO_MMIO_STATUS) & NEEDS_RESET);
    cr_expect(!vq_usable(&t.queues[0]));
    fflush(stderr);
    cr_expect_stderr_eq_str(
        "ember: fake: queue 0 enabled before FEATURES_OK; device needs reset\n");
    teardown();
}

Test(mmio, features_written_after_features_ok, .init = cr_redirect_stderr)
{
    setup();
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, 1u << 28);
    cr_expect(rd(VIRTIO_MMIO_STATUS) & NEEDS_RESET);
    cr_expect_eq(t.drv_features, 1ull << 32, "features changed after FEATURES_OK");
    teardown();
}

/* Only the first reason between two resets is logged: a guest cannot flood
 * the host's log. */
Test(mmio, one_line_per_reset_cycle, .init = cr_redirect_stderr)
{
    setup();
    for (int i = 0; i < 100; i++) {
        wr(VIRTIO_MMIO_STATUS, ACK);
        wr(VIRTIO_MMIO_QUEUE_NUM, 0);
        virtio_mmio_fail(&t, 0, "bad chain");
    }
    cr_expect_eq(t.needs_reset_events, 1);
    fflush(stderr);
    cr_expect_stderr_eq_str("ember: fake: status 0x1 written over 0xf: neither a reset nor a step "
                            "of initialisation; device needs reset\n");
    teardown();
}
