/* fuzz_virtqueue.c: the split-virtqueue walker against arbitrary guest
 * memory. The input becomes the descriptor table and the available ring of a
 * queue in a small guest RAM; chains are popped and pushed until the queue is
 * empty or broken. Nothing may read or write outside guest RAM (ASan checks
 * it: the mapping has no slack) and nothing may loop forever. */
#include <stdint.h>
#include <string.h>

#include "virtio/queue.h"

#define RAM (64u * 1024u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_mem mem;
    static struct vq_chain chain;
    struct vq vq;
    char why[160];

    if (!mem.host && guest_mem_map(&mem, RAM) != 0)
        return 0;
    memset(mem.host, 0, RAM);
    if (size < 8)
        return 0;
    /* First bytes: queue size and ring placement; the rest: guest memory. */
    vq_reset(&vq);
    vq.size = (uint16_t)(1u << (data[0] % 9)); /* 1..256 */
    vq.desc_gpa = ((uint64_t)data[1] << 8) & ~15ull;
    vq.avail_gpa = ((uint64_t)data[2] << 8) | 0x8000;
    vq.used_gpa = (((uint64_t)data[3] << 8) | 0xc000) & ~3ull;
    vq.event_idx = data[4] & 1;
    vq.indirect = data[4] & 2;
    vq.ready = true;
    memcpy(mem.host, data + 8, size - 8 < RAM ? size - 8 : RAM);
    if (vq_check_layout(&vq, &mem, why, sizeof(why)) != 0)
        return 0;
    for (unsigned i = 0; i < 1024; i++) {
        enum vq_result r = vq_pop(&vq, &mem, &chain, why, sizeof(why));
        if (r != VQ_CHAIN)
            break;
        for (unsigned s = 0; s < chain.nsegs; s++)
            if (chain.segs[s].write && chain.segs[s].len)
                chain.segs[s].host[chain.segs[s].len - 1] ^= 1; /* touch the last byte */
        vq_push(&vq, &mem, chain.head, (uint32_t)chain.writable);
        vq_should_interrupt(&vq, &mem);
        vq_update_avail_event(&vq, &mem);
    }
    return 0;
}
