/* fuzz_elf.c: the ELF loader against arbitrary files. Parse, and load what
 * parses, into a small guest RAM. */
#include <stdint.h>
#include <string.h>

#include "monitor/boot_elf.h"

#define RAM (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct buf {
    const uint8_t *data;
    size_t size;
};

static long read_buf(void *ctx, void *out, size_t len, uint64_t off)
{
    struct buf *b = ctx;

    if (off >= b->size)
        return 0;
    if (len > b->size - off)
        len = b->size - off;
    memcpy(out, b->data + off, len);
    return (long)len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_mem mem;
    struct elf_image img;
    struct buf b = {data, size};
    char err[256];

    if (!mem.host && guest_mem_map(&mem, RAM) != 0)
        return 0;
    if (elf_parse(read_buf, &b, size, mem.size, &img, err, sizeof(err)) == 0)
        elf_load(read_buf, &b, &img, &mem, err, sizeof(err));
    return 0;
}
