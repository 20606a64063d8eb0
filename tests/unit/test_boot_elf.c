/* test_boot_elf.c: the ELF loader against good and hostile images. Every
 * rejection is checked by its exact message. */
#include <criterion/criterion.h>
#include <elf.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <ember/abi.h>

#include "monitor/boot_elf.h"

#define FILE_SIZE 0x3000u
#define MEM_SIZE  (16u << 20)

/* A valid ember guest: headers, a note segment, text at 1 MiB, data after. */
struct image {
    uint8_t bytes[FILE_SIZE];
    Elf64_Ehdr *eh;
    Elf64_Phdr *ph; /* [0] text, [1] data, [2] note */
    size_t size;
};

static struct image img;
static struct guest_mem mem;

static long read_buf(void *ctx, void *buf, size_t len, uint64_t off)
{
    struct image *im = ctx;

    if (off >= im->size)
        return 0;
    if (len > im->size - off)
        len = im->size - off;
    memcpy(buf, im->bytes + off, len);
    return (long)len;
}

static size_t put_note(uint8_t *at, const char *name, uint32_t type, const void *desc,
                       uint32_t descsz)
{
    Elf64_Nhdr nh = {.n_namesz = (uint32_t)strlen(name) + 1, .n_descsz = descsz, .n_type = type};
    size_t off = sizeof(nh);

    memcpy(at, &nh, sizeof(nh));
    memcpy(at + off, name, nh.n_namesz);
    off += (nh.n_namesz + 3) & ~3u;
    memcpy(at + off, desc, descsz);
    return off + ((descsz + 3) & ~3u);
}

static void build(bool ember_note, bool pvh_note)
{
    size_t notes = 0;
    struct ember_note_guest g = {.abi_version = EMBER_ABI_VERSION};
    uint32_t pvh_entry = 0x100010;

    memset(&img, 0, sizeof(img));
    img.size = FILE_SIZE;
    img.eh = (Elf64_Ehdr *)img.bytes;
    img.ph = (Elf64_Phdr *)(img.bytes + sizeof(Elf64_Ehdr));
    memcpy(img.eh->e_ident, ELFMAG, SELFMAG);
    img.eh->e_ident[EI_CLASS] = ELFCLASS64;
    img.eh->e_ident[EI_DATA] = ELFDATA2LSB;
    img.eh->e_ident[EI_VERSION] = EV_CURRENT;
    img.eh->e_type = ET_EXEC;
    img.eh->e_machine = EM_X86_64;
    img.eh->e_version = EV_CURRENT;
    img.eh->e_entry = 0x100000;
    img.eh->e_phoff = sizeof(Elf64_Ehdr);
    img.eh->e_ehsize = sizeof(Elf64_Ehdr);
    img.eh->e_phentsize = sizeof(Elf64_Phdr);
    img.eh->e_phnum = 3;
    img.ph[0] = (Elf64_Phdr){.p_type = PT_LOAD,
                             .p_flags = PF_R | PF_X,
                             .p_offset = 0x1000,
                             .p_vaddr = 0x100000,
                             .p_paddr = 0x100000,
                             .p_filesz = 0x100,
                             .p_memsz = 0x100,
                             .p_align = 0x1000};
    img.ph[1] = (Elf64_Phdr){.p_type = PT_LOAD,
                             .p_flags = PF_R | PF_W,
                             .p_offset = 0x2000,
                             .p_vaddr = 0x101000,
                             .p_paddr = 0x101000,
                             .p_filesz = 0x10,
                             .p_memsz = 0x2000,
                             .p_align = 0x1000};
    if (ember_note)
        notes +=
            put_note(img.bytes + 0x200 + notes, EMBER_NOTE_NAME, EMBER_NOTE_GUEST, &g, sizeof(g));
    if (pvh_note)
        notes += put_note(img.bytes + 0x200 + notes, "Xen", 18, &pvh_entry, 4);
    img.ph[2] = (Elf64_Phdr){.p_type = PT_NOTE,
                             .p_flags = PF_R,
                             .p_offset = 0x200,
                             .p_filesz = notes,
                             .p_memsz = notes,
                             .p_align = 4};
    memset(img.bytes + 0x1000, 0x90, 0x100);
    memcpy(img.bytes + 0x2000, "guest data here", 16);
}

static void setup(void)
{
    cr_assert_eq(guest_mem_map(&mem, MEM_SIZE), 0);
    build(true, true);
}

static void teardown(void)
{
    guest_mem_unmap(&mem);
}

TestSuite(elf, .init = setup, .fini = teardown);

static int parse(struct elf_image *out, char *err, size_t errlen)
{
    return elf_parse(read_buf, &img, img.size, MEM_SIZE, out, err, errlen);
}

static void rejected(const char *want)
{
    struct elf_image out;
    char err[256] = "";

    cr_expect_eq(parse(&out, err, sizeof(err)), -1, "accepted; wanted \"%s\"", want);
    cr_expect_str_eq(err, want);
}

Test(elf, ember_guest_loads)
{
    struct elf_image out;
    char err[256];

    cr_assert_eq(parse(&out, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(out.kind, ELF_BOOT_EMBER);
    cr_expect_eq(out.entry, 0x100000);
    cr_expect(out.has_pvh_note);
    cr_expect_eq(out.pvh_entry, 0x100010);
    cr_expect_eq(out.nloads, 2);
    cr_expect_eq(out.image_end, 0x103000);
    cr_assert_eq(elf_load(read_buf, &img, &out, &mem, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(mem.host[0x100000], 0x90);
    cr_expect_str_eq((char *)mem.host + 0x101000, "guest data here");
    cr_expect_eq(mem.host[0x102000], 0, "bss is zero");
}

/* The note's no-load range is left out of the copy: its pages stay untouched
 * zeros, the rest of the image loads. */
Test(elf, noload_range_is_not_copied)
{
    struct elf_image out;
    char err[256];
    unsigned char vec[3];

    ((struct ember_note_guest *)(img.bytes + 0x200 + 12 + 8))->noload_addr = 0x101000;
    ((struct ember_note_guest *)(img.bytes + 0x200 + 12 + 8))->noload_len = 0x1000;
    cr_assert_eq(parse(&out, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(out.noload_addr, 0x101000);
    cr_expect_eq(out.noload_len, 0x1000);
    cr_assert_eq(elf_load(read_buf, &img, &out, &mem, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(mem.host[0x100000], 0x90, "text outside the range is loaded");
    cr_assert_eq(mincore(mem.host + 0x100000, 0x3000, vec), 0);
    cr_expect(vec[0] & 1, "the loaded page is resident");
    cr_expect(!(vec[1] & 1), "the no-load page was never touched");
    cr_expect_eq(mem.host[0x101000], 0, "the no-load page reads as zero");
}

Test(elf, pvh_only_guest_uses_the_pvh_entry)
{
    struct elf_image out;
    char err[256];

    build(false, true);
    cr_assert_eq(parse(&out, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(out.kind, ELF_BOOT_PVH);
    cr_expect_eq(out.entry, 0x100010);
}

Test(elf, header_checks)
{
    img.size = 10;
    rejected("file too small for an ELF header (10 bytes)");
    img.size = FILE_SIZE;
    img.eh->e_ident[1] = 'X';
    rejected("not an ELF file (bad magic)");
    build(true, true);
    img.eh->e_ident[EI_CLASS] = ELFCLASS32;
    rejected("not a 64-bit ELF (class 1)");
    build(true, true);
    img.eh->e_ident[EI_DATA] = ELFDATA2MSB;
    rejected("not a little-endian ELF");
    build(true, true);
    img.eh->e_version = 7;
    rejected("unsupported ELF version 7");
    build(true, true);
    img.eh->e_type = ET_DYN;
    rejected("not a static executable (e_type 3); guests are linked static and non-PIE");
    build(true, true);
    img.eh->e_machine = EM_AARCH64;
    rejected("wrong machine 183, expected x86-64 (62)");
    build(true, true);
    img.eh->e_ehsize = 52;
    rejected("bad ELF header size 52");
    build(true, true);
    img.eh->e_phnum = 0;
    rejected("no program headers");
    build(true, true);
    img.eh->e_phentsize = 32;
    rejected("bad program header size 32");
    build(true, true);
    img.eh->e_phnum = 65;
    rejected("too many program headers (65, at most 64)");
    build(true, true);
    img.eh->e_phoff = FILE_SIZE - 16;
    rejected("program headers lie outside the file");
    build(true, true);
    img.eh->e_phoff = UINT64_MAX - 8;
    rejected("program headers lie outside the file");
}

Test(elf, segment_checks)
{
    img.ph[0].p_filesz = 0x200;
    rejected("segment 0: file size 0x200 exceeds memory size 0x100");
    build(true, true);
    img.ph[1].p_offset = FILE_SIZE - 8;
    rejected("segment 1: data lies outside the file");
    build(true, true);
    img.ph[1].p_offset = UINT64_MAX - 4;
    rejected("segment 1: data lies outside the file");
    build(true, true);
    img.ph[1].p_paddr = img.ph[1].p_vaddr = 0x101800;
    rejected("segment 1: address 0x101800 is not page-aligned");
    build(true, true);
    img.ph[0].p_paddr = img.ph[0].p_vaddr = 0x9000;
    rejected("segment 0: address 0x9000 is below 1 MiB");
    build(true, true);
    img.ph[1].p_memsz = MEM_SIZE;
    rejected("segment 1: [0x101000, +0x1000000) does not fit in guest RAM (16 MiB)");
    build(true, true);
    img.ph[1].p_memsz = UINT64_MAX - 0x1000;
    rejected("segment 1: [0x101000, +0xffffffffffffefff) does not fit in guest RAM (16 MiB)");
    build(true, true);
    img.ph[1].p_flags = PF_R | PF_W | PF_X;
    rejected("segment 1: both writable and executable");
    build(true, true);
    img.ph[1].p_offset = 0x1010; /* the bytes would run 16 bytes shifted */
    rejected("segment 1: file offset 0x1010 is not congruent to its address 0x101000 modulo the "
             "page size (0x1000)");
    build(true, true);
    img.ph[1].p_vaddr = 0x7f000000101010; /* virtual address off, physical fine */
    rejected("segment 1: file offset 0x2000 is not congruent to its address 0x7f000000101010 "
             "modulo the page size (0x1000)");
    build(true, true);
    img.ph[0].p_flags = 0;
    rejected("segment 0: no permission flags (none of R, W, X)");
    static const uint64_t bad_align[] = {0, 1, 16, 0x800, 0x3000, 0x1001};
    for (size_t i = 0; i < sizeof(bad_align) / sizeof(bad_align[0]); i++) {
        char want[160];
        build(true, true);
        img.ph[1].p_align = bad_align[i];
        snprintf(want, sizeof(want),
                 "segment 1: alignment 0x%lx is not a power of two of at least the page size "
                 "(0x1000)",
                 bad_align[i]);
        rejected(want);
    }
    build(true, true);
    img.ph[1].p_align = 0x200000; /* a larger power of two is fine */
    struct elf_image ok;
    char err[256] = "";
    cr_expect_eq(parse(&ok, err, sizeof(err)), 0, "%s", err);
    build(true, true);
    img.ph[1].p_paddr = img.ph[1].p_vaddr = 0x100000;
    rejected("segment 1: overlaps or precedes the segment before it");
    build(true, true);
    img.ph[0].p_type = PT_NULL;
    img.ph[1].p_type = PT_NULL;
    rejected("no loadable segments");
}

Test(elf, note_and_entry_checks)
{
    build(false, false);
    rejected("no ember or PVH note: build the guest with ember-cc, or give it a "
             "XEN_ELFNOTE_PHYS32_ENTRY note");
    build(true, false);
    img.eh->e_entry = 0x101000;
    rejected("entry point 0x101000 is not inside an executable segment");
    build(true, false);
    img.eh->e_entry = 0x100100;
    rejected("entry point 0x100100 is not inside an executable segment");
    build(false, true);
    ((uint32_t *)(img.bytes + 0x200 + 12 + 4))[0] = 0x500000;
    rejected("PVH entry point 0x500000 is not inside an executable segment");
    build(true, false);
    ((struct ember_note_guest *)(img.bytes + 0x200 + 12 + 8))->abi_version = 99;
    rejected("built for ember ABI 99, this monitor speaks ABI 2");
    build(true, false);
    ((struct ember_note_guest *)(img.bytes + 0x200 + 12 + 8))->flags = 4;
    rejected("ember note has unknown flags 0x4");
    /* A stack guard (v2) must be whole pages of RAM above 1 MiB. */
    build(true, false);
    ((struct ember_note_guest *)(img.bytes + 0x200 + 12 + 8))->guard_addr = 0x1000;
    ((struct ember_note_guest *)(img.bytes + 0x200 + 12 + 8))->guard_len = 0x1000;
    rejected("ember note: guard 0x1000+0x1000 is not whole pages of RAM above 1 MiB (at most "
             "1048576 bytes)");
    build(true, false);
    ((struct ember_note_guest *)(img.bytes + 0x200 + 12 + 8))->guard_addr = 0x200000;
    ((struct ember_note_guest *)(img.bytes + 0x200 + 12 + 8))->guard_len = 0x10001;
    rejected("ember note: guard 0x200000+0x10001 is not whole pages of RAM above 1 MiB (at most "
             "1048576 bytes)");
    /* A no-load range (v3) must be whole pages of the image. */
    build(true, false);
    ((struct ember_note_guest *)(img.bytes + 0x200 + 12 + 8))->noload_addr = 0x101800;
    ((struct ember_note_guest *)(img.bytes + 0x200 + 12 + 8))->noload_len = 0x1000;
    rejected("ember note: no-load range 0x101800+0x1000 is not whole pages of the image "
             "(0x100000-0x103000)");
    build(true, false);
    ((struct ember_note_guest *)(img.bytes + 0x200 + 12 + 8))->noload_addr = 0x102000;
    ((struct ember_note_guest *)(img.bytes + 0x200 + 12 + 8))->noload_len = 0xfffff000;
    rejected("ember note: no-load range 0x102000+0xfffff000 is not whole pages of the image "
             "(0x100000-0x103000)");
    build(true, false);
    ((struct ember_note_guest *)(img.bytes + 0x200 + 12 + 8))->noload_addr = 0xff000;
    ((struct ember_note_guest *)(img.bytes + 0x200 + 12 + 8))->noload_len = 0x2000;
    rejected("ember note: no-load range 0xff000+0x2000 is not whole pages of the image "
             "(0x100000-0x103000)");
    build(true, false);
    ((Elf64_Nhdr *)(img.bytes + 0x200))->n_descsz = 0x7fffffff;
    rejected("truncated ELF note");
    build(true, false);
    img.ph[2].p_offset = FILE_SIZE - 4;
    rejected("note segment 2 lies outside the file");
    build(true, false);
    img.ph[1].p_vaddr = 0x201000;
    rejected("ember guest with virtual addresses that differ from physical ones");
}

Test(elf, truncated_file_fails_to_load)
{
    struct elf_image out;
    char err[256];

    cr_assert_eq(parse(&out, err, sizeof(err)), 0, "%s", err);
    img.size = 0x2008; /* shrinks between parse and load */
    cr_expect_eq(elf_load(read_buf, &img, &out, &mem, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "cannot read segment at 0x101000 (file truncated?)");
}
