/* test_virtio_queue.c: split-virtqueue walking against a fake guest memory,
 * good chains and every way a guest can break one. */
#include <criterion/criterion.h>
#include <string.h>

#include <linux/virtio_ring.h>

#include "virtio/queue.h"

#define MEM   (1u << 20)
#define QSZ   8u
#define DESC  0x1000u
#define AVAIL 0x2000u
#define USED  0x3000u
#define DATA  0x10000u

static struct guest_mem mem;
static struct vq vq;
static struct vq_chain chain;
static char why[160];

static struct vring_desc *desc(unsigned i)
{
    return guest_mem_slice(&mem, DESC + 16 * i, 16);
}

static void put_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    *desc(i) = (struct vring_desc){.addr = addr, .len = len, .flags = flags, .next = next};
}

static uint16_t *avail_u16(unsigned off)
{
    return guest_mem_slice(&mem, AVAIL + off, 2);
}

/* Offers head as the next available chain. */
static void offer(uint16_t head)
{
    uint16_t idx = *avail_u16(2);

    *avail_u16(4 + 2 * (idx % QSZ)) = head;
    *avail_u16(2) = idx + 1;
}

static void setup(void)
{
    cr_assert_eq(guest_mem_map(&mem, MEM), 0);
    vq_reset(&vq);
    vq.size = QSZ;
    vq.desc_gpa = DESC;
    vq.avail_gpa = AVAIL;
    vq.used_gpa = USED;
    vq.ready = true;
    cr_assert_eq(vq_check_layout(&vq, &mem, why, sizeof(why)), 0, "%s", why);
}

static void teardown(void)
{
    guest_mem_unmap(&mem);
}

TestSuite(vq, .init = setup, .fini = teardown);

static void expect_broken(const char *want)
{
    cr_expect_eq(vq_pop(&vq, &mem, &chain, why, sizeof(why)), VQ_BROKEN, "chain accepted");
    cr_expect_str_eq(why, want);
}

Test(vq, empty_queue)
{
    cr_expect_eq(vq_pop(&vq, &mem, &chain, why, sizeof(why)), VQ_EMPTY);
}

Test(vq, a_request_chain)
{
    put_desc(0, DATA, 16, VRING_DESC_F_NEXT, 1);
    put_desc(1, DATA + 0x1000, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
    put_desc(2, DATA + 0x3000, 1, VRING_DESC_F_WRITE, 0);
    offer(0);
    cr_assert_eq(vq_pop(&vq, &mem, &chain, why, sizeof(why)), VQ_CHAIN, "%s", why);
    cr_expect_eq(chain.head, 0);
    cr_expect_eq(chain.nsegs, 3);
    cr_expect_eq(chain.readable, 16);
    cr_expect_eq(chain.writable, 4097);
    cr_expect_eq(chain.segs[1].host, mem.host + DATA + 0x1000);
    cr_expect(chain.segs[2].write);
    cr_expect_eq(vq_pop(&vq, &mem, &chain, why, sizeof(why)), VQ_EMPTY);

    cr_assert_eq(vq_push(&vq, &mem, 0, 4097), 0);
    struct vring_used *used = guest_mem_slice(&mem, USED, 6 + 8 * QSZ);
    cr_expect_eq(used->idx, 1);
    cr_expect_eq(used->ring[0].id, 0);
    cr_expect_eq(used->ring[0].len, 4097);
    cr_expect(vq_should_interrupt(&vq, &mem));
    cr_expect(!vq_should_interrupt(&vq, &mem), "nothing new since the last interrupt");
}

Test(vq, interrupt_suppression)
{
    put_desc(0, DATA, 1, 0, 0);
    *avail_u16(0) = VRING_AVAIL_F_NO_INTERRUPT;
    offer(0);
    cr_assert_eq(vq_pop(&vq, &mem, &chain, why, sizeof(why)), VQ_CHAIN);
    vq_push(&vq, &mem, 0, 0);
    cr_expect(!vq_should_interrupt(&vq, &mem));

    /* With EVENT_IDX, used_event says when. */
    vq.event_idx = true;
    *avail_u16(4 + 2 * QSZ) = 2; /* interrupt when used idx passes 2 */
    offer(0);
    cr_assert_eq(vq_pop(&vq, &mem, &chain, why, sizeof(why)), VQ_CHAIN);
    vq_push(&vq, &mem, 0, 0);
    cr_expect(!vq_should_interrupt(&vq, &mem), "used idx 2 has not passed used_event 2");
    offer(0);
    cr_assert_eq(vq_pop(&vq, &mem, &chain, why, sizeof(why)), VQ_CHAIN);
    vq_push(&vq, &mem, 0, 0);
    cr_expect(vq_should_interrupt(&vq, &mem));
    vq_update_avail_event(&vq, &mem);
    cr_expect_eq(*(uint16_t *)guest_mem_slice(&mem, USED + 4 + 8 * QSZ, 2), 3);
}

Test(vq, indirect_table)
{
    struct vring_desc *t = guest_mem_slice(&mem, DATA + 0x8000, 3 * 16);

    vq.indirect = true;
    t[0] = (struct vring_desc){.addr = DATA, .len = 16, .flags = VRING_DESC_F_NEXT, .next = 1};
    t[1] = (struct vring_desc){.addr = DATA + 0x100,
                               .len = 512,
                               .flags = VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
                               .next = 2};
    t[2] = (struct vring_desc){.addr = DATA + 0x400, .len = 1, .flags = VRING_DESC_F_WRITE};
    put_desc(3, DATA + 0x8000, 3 * 16, VRING_DESC_F_INDIRECT, 0);
    offer(3);
    cr_assert_eq(vq_pop(&vq, &mem, &chain, why, sizeof(why)), VQ_CHAIN, "%s", why);
    cr_expect_eq(chain.head, 3);
    cr_expect_eq(chain.nsegs, 3);
    cr_expect_eq(chain.writable, 513);
}

Test(vq, descriptor_loop)
{
    put_desc(0, DATA, 16, VRING_DESC_F_NEXT, 1);
    put_desc(1, DATA, 16, VRING_DESC_F_NEXT, 0);
    offer(0);
    expect_broken("descriptor loop (chain longer than the queue)");
}

Test(vq, self_loop)
{
    put_desc(5, DATA, 16, VRING_DESC_F_NEXT, 5);
    offer(5);
    expect_broken("descriptor loop (chain longer than the queue)");
}

Test(vq, next_out_of_range)
{
    put_desc(0, DATA, 16, VRING_DESC_F_NEXT, QSZ);
    offer(0);
    expect_broken("next 8 out of range (queue of 8)");
}

Test(vq, head_out_of_range)
{
    offer(200);
    expect_broken("head 200 out of range (queue of 8)");
}

Test(vq, avail_index_runs_ahead)
{
    *avail_u16(2) = 100;
    expect_broken("available index 100 runs 100 ahead of a queue of 8");
}

Test(vq, buffer_outside_ram)
{
    put_desc(0, MEM - 8, 16, 0, 0);
    offer(0);
    expect_broken("buffer [0xffff8, +0x10) outside guest RAM");
}

Test(vq, buffer_address_overflow)
{
    put_desc(0, UINT64_MAX - 4, 16, 0, 0);
    offer(0);
    expect_broken("buffer [0xfffffffffffffffb, +0x10) outside guest RAM");
}

Test(vq, huge_length)
{
    put_desc(0, DATA, 0xffffffffu, 0, 0);
    offer(0);
    expect_broken("buffer [0x10000, +0xffffffff) outside guest RAM");
}

Test(vq, readable_after_writable)
{
    put_desc(0, DATA, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
    put_desc(1, DATA, 16, 0, 0);
    offer(0);
    expect_broken("device-readable buffer after a device-writable one");
}

Test(vq, indirect_rules)
{
    put_desc(0, DATA, 32, VRING_DESC_F_INDIRECT, 0);
    offer(0);
    expect_broken("indirect descriptor without the feature");

    setup();
    vq.indirect = true;
    put_desc(0, DATA, 20, VRING_DESC_F_INDIRECT, 0);
    offer(0);
    expect_broken("indirect table of bad length 20");

    setup();
    vq.indirect = true;
    struct vring_desc *t = guest_mem_slice(&mem, DATA, 32);
    t[0] = (struct vring_desc){.addr = DATA, .len = 32, .flags = VRING_DESC_F_INDIRECT};
    put_desc(0, DATA, 32, VRING_DESC_F_INDIRECT, 0);
    offer(0);
    expect_broken("nested indirect table");

    setup();
    vq.indirect = true;
    t = guest_mem_slice(&mem, DATA, 32);
    t[0] = (struct vring_desc){.addr = DATA, .len = 4, .flags = VRING_DESC_F_NEXT, .next = 1};
    t[1] = (struct vring_desc){.addr = DATA, .len = 4, .flags = VRING_DESC_F_NEXT, .next = 0};
    put_desc(0, DATA, 32, VRING_DESC_F_INDIRECT, 0);
    offer(0);
    expect_broken("loop in an indirect table");
}

Test(vq, bad_layouts)
{
    vq.size = 6;
    cr_expect_eq(vq_check_layout(&vq, &mem, why, sizeof(why)), -1);
    cr_expect_str_eq(why, "queue size 6 is not a power of two up to 256");
    vq.size = QSZ;
    vq.desc_gpa = DESC + 8;
    cr_expect_eq(vq_check_layout(&vq, &mem, why, sizeof(why)), -1);
    cr_expect_str_eq(why, "misaligned ring (desc 0x1008, avail 0x2000, used 0x3000)");
    vq.desc_gpa = MEM - 16;
    cr_expect_eq(vq_check_layout(&vq, &mem, why, sizeof(why)), -1);
    cr_expect_str_eq(why, "ring outside guest RAM");
}

Test(vq, broken_queue_stays_stopped)
{
    offer(200);
    expect_broken("head 200 out of range (queue of 8)");
    vq.broken = true;
    put_desc(0, DATA, 1, 0, 0);
    offer(0);
    cr_expect_eq(vq_pop(&vq, &mem, &chain, why, sizeof(why)), VQ_EMPTY);
}

/* The queue's size is a guest register: whatever a transport lets through,
 * a queue of size 0 (or not a power of two) is never walked, and nothing is
 * ever divided by its size. */
Test(vq, zero_size_queue_is_refused)
{
    put_desc(0, DATA, 16, 0, 0);
    offer(0);
    cr_assert_eq(vq_pop(&vq, &mem, &chain, why, sizeof(why)), VQ_CHAIN);
    for (unsigned n = 0; n < 2; n++) {
        vq.size = n == 0 ? 0 : 6;
        cr_expect(!vq_usable(&vq));
        offer(0);
        cr_expect_eq(vq_pop(&vq, &mem, &chain, why, sizeof(why)), VQ_EMPTY, "size %u", vq.size);
        cr_expect_eq(vq_push(&vq, &mem, 0, 16), -1, "push on a queue of size %u", vq.size);
        cr_expect(!vq_should_interrupt(&vq, &mem));
        vq_update_avail_event(&vq, &mem);
    }
    cr_expect_eq(*(uint16_t *)guest_mem_slice(&mem, USED + 2, 2), 0, "used ring was written");
}

Test(vq, stopped_queue_is_refused)
{
    put_desc(0, DATA, 16, 0, 0);
    offer(0);
    cr_assert_eq(vq_pop(&vq, &mem, &chain, why, sizeof(why)), VQ_CHAIN);
    vq_stop(&vq);
    cr_expect(!vq.ready);
    cr_expect_eq(vq_push(&vq, &mem, chain.head, 16), -1);
    cr_expect_eq(vq_push_chain(&vq, &mem, &chain, 16), -1);
    offer(0);
    cr_expect_eq(vq_pop(&vq, &mem, &chain, why, sizeof(why)), VQ_EMPTY);
    cr_expect_eq(*(uint16_t *)guest_mem_slice(&mem, USED + 2, 2), 0, "used ring was written");
}

/* A chain taken before the queue stopped belongs to a ring that may no
 * longer exist: once the queue is live again it is refused, a fresh one not. */
Test(vq, chain_from_a_past_epoch_is_refused)
{
    struct vq_chain fresh;

    put_desc(0, DATA, 16, 0, 0);
    put_desc(1, DATA, 16, 0, 0);
    offer(0);
    cr_assert_eq(vq_pop(&vq, &mem, &chain, why, sizeof(why)), VQ_CHAIN);
    vq_stop(&vq);
    vq.ready = true;
    offer(1);
    cr_assert_eq(vq_pop(&vq, &mem, &fresh, why, sizeof(why)), VQ_CHAIN);
    cr_expect_eq(vq_push_chain(&vq, &mem, &chain, 16), -1, "stale chain pushed");
    cr_expect_eq(vq_push_chain(&vq, &mem, &fresh, 16), 0);
    cr_expect_eq(*(uint16_t *)guest_mem_slice(&mem, USED + 2, 2), 1);

    vq_reset(&vq); /* a device reset ends the epoch too */
    cr_expect_eq(vq_push_chain(&vq, &mem, &fresh, 16), -1);
}

Test(vq, push_of_a_head_out_of_range_is_refused)
{
    cr_expect_eq(vq_push(&vq, &mem, QSZ, 0), -1);
    cr_expect_eq(vq_push(&vq, &mem, 0xffff, 0), -1);
    vq_break(&vq);
    cr_expect_eq(vq_push(&vq, &mem, 0, 0), -1, "push on a broken queue");
    cr_expect_eq(*(uint16_t *)guest_mem_slice(&mem, USED + 2, 2), 0, "used ring was written");
}
