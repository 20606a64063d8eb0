/* virtio_hostile.c: a guest that breaks the virtio rules on purpose. It
 * drives the first virtio-blk device through raw MMIO and submits broken
 * chains: a descriptor loop, a head out of range, a buffer outside RAM, a
 * huge length, a status byte the device may not write, rings outside RAM.
 * After each, the device must set DEVICE_NEEDS_RESET (and the monitor must
 * live on); after a reset it must serve a good request again.
 * Expected: "hostile: <case>: needs reset" per case, "hostile: recovered",
 * exit 0. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <ember/guest.h>

#define REG_MAGIC            0x000
#define REG_VERSION          0x004
#define REG_DEVICE_ID        0x008
#define REG_DRV_FEATURES     0x020
#define REG_DRV_FEATURES_SEL 0x024
#define REG_QUEUE_SEL        0x030
#define REG_QUEUE_NUM        0x038
#define REG_QUEUE_READY      0x044
#define REG_QUEUE_NOTIFY     0x050
#define REG_STATUS           0x070
#define REG_DESC_LO          0x080
#define REG_DESC_HI          0x084
#define REG_AVAIL_LO         0x090
#define REG_AVAIL_HI         0x094
#define REG_USED_LO          0x0a0
#define REG_USED_HI          0x0a4
#define S_ACK                1u
#define S_DRIVER             2u
#define S_DRIVER_OK          4u
#define S_FEATURES_OK        8u
#define S_NEEDS_RESET        64u
#define F_NEXT               1u
#define F_WRITE              2u
#define QSZ                  8u

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

static struct {
    struct desc desc[QSZ] __attribute__((aligned(4096)));
    uint16_t avail[3 + QSZ] __attribute__((aligned(4096)));
    uint8_t used[6 + 8 * QSZ] __attribute__((aligned(4096)));
    uint8_t hdr[16] __attribute__((aligned(4096)));
    uint8_t data[512] __attribute__((aligned(512)));
    uint8_t status;
} q;

static volatile uint32_t *regs;

static uint32_t rd(unsigned off)
{
    return regs[off / 4];
}

static void wr(unsigned off, uint32_t v)
{
    regs[off / 4] = v;
}

static void setup(uint64_t desc, uint64_t avail, uint64_t used)
{
    wr(REG_STATUS, 0);
    memset(&q, 0, sizeof(q));
    wr(REG_STATUS, S_ACK | S_DRIVER);
    wr(REG_DRV_FEATURES_SEL, 1);
    wr(REG_DRV_FEATURES, 1); /* VIRTIO_F_VERSION_1 */
    wr(REG_DRV_FEATURES_SEL, 0);
    wr(REG_DRV_FEATURES, 0);
    wr(REG_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    wr(REG_QUEUE_SEL, 0);
    wr(REG_QUEUE_NUM, QSZ);
    wr(REG_DESC_LO, (uint32_t)desc);
    wr(REG_DESC_HI, (uint32_t)(desc >> 32));
    wr(REG_AVAIL_LO, (uint32_t)avail);
    wr(REG_AVAIL_HI, (uint32_t)(avail >> 32));
    wr(REG_USED_LO, (uint32_t)used);
    wr(REG_USED_HI, (uint32_t)(used >> 32));
    wr(REG_QUEUE_READY, 1);
    wr(REG_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

static void ring_setup(void)
{
    setup((uintptr_t)q.desc, (uintptr_t)q.avail, (uintptr_t)q.used);
}

/* Offers head and kicks; waits (bounded) until the device answers either
 * way. Returns the status register. */
static uint32_t submit(uint16_t head)
{
    volatile uint16_t *used_idx = (volatile uint16_t *)(q.used + 2);
    uint64_t deadline = ember_monotonic_ns() + 2000000000ull;

    q.avail[2 + (q.avail[1] % QSZ)] = head;
    __atomic_store_n(&q.avail[1], (uint16_t)(q.avail[1] + 1), __ATOMIC_RELEASE);
    wr(REG_QUEUE_NOTIFY, 0);
    while (ember_monotonic_ns() < deadline) {
        uint32_t st = rd(REG_STATUS);
        if ((st & S_NEEDS_RESET) || *used_idx)
            return st;
    }
    return rd(REG_STATUS);
}

static int expect_reset(const char *what, uint32_t st)
{
    if (st & S_NEEDS_RESET) {
        printf("hostile: %s: needs reset\n", what);
        return 0;
    }
    printf("hostile: %s: device did NOT ask for reset (status 0x%x)\n", what, st);
    return 1;
}

static void good_request(uint16_t at)
{
    memset(q.hdr, 0, sizeof(q.hdr)); /* VIRTIO_BLK_T_IN, sector 0 */
    q.desc[at] = (struct desc){(uintptr_t)q.hdr, 16, F_NEXT, (uint16_t)(at + 1)};
    q.desc[at + 1] = (struct desc){(uintptr_t)q.data, 512, F_NEXT | F_WRITE, (uint16_t)(at + 2)};
    q.desc[at + 2] = (struct desc){(uintptr_t)&q.status, 1, F_WRITE, 0};
}

int main(void)
{
    const struct ember_boot_info *bi = ember_boot_info();
    int bad = 0;

    if (bi->ndevices < 1) {
        printf("hostile: no device\n");
        return 2;
    }
    regs = (volatile uint32_t *)(uintptr_t)bi->devices[0].mmio_base;
    if (rd(REG_MAGIC) != 0x74726976 || rd(REG_VERSION) != 2 || rd(REG_DEVICE_ID) != 2) {
        printf("hostile: not a virtio-mmio v2 block device\n");
        return 2;
    }

    ring_setup();
    q.desc[0] = (struct desc){(uintptr_t)q.hdr, 16, F_NEXT, 1};
    q.desc[1] = (struct desc){(uintptr_t)q.hdr, 16, F_NEXT, 0};
    bad |= expect_reset("descriptor loop", submit(0));

    ring_setup();
    bad |= expect_reset("head out of range", submit(QSZ + 3));

    ring_setup();
    good_request(0);
    q.desc[1].addr = 0xfffffff000ull; /* far beyond RAM */
    bad |= expect_reset("buffer outside RAM", submit(0));

    ring_setup();
    good_request(0);
    q.desc[1].len = 0xffffffffu;
    bad |= expect_reset("huge length", submit(0));

    ring_setup();
    good_request(0);
    q.desc[2].flags = 0; /* status byte not device-writable: readable after writable */
    bad |= expect_reset("wrong direction", submit(0));

    setup((uintptr_t)q.desc, bi->mem_size - 8, (uintptr_t)q.used);
    bad |= expect_reset("ring outside RAM", rd(REG_STATUS));

    ring_setup();
    good_request(0);
    q.status = 0xff;
    uint32_t st = submit(0);
    if (!(st & S_NEEDS_RESET) && q.status == 0)
        printf("hostile: recovered\n");
    else {
        printf("hostile: device did not recover (status 0x%x, request status %u)\n", st, q.status);
        bad = 1;
    }
    wr(REG_STATUS, 0);
    return bad;
}
