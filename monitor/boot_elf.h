/* boot_elf.h: the loader for 64-bit ELF guests (ember ELFs and PVH ELFs).
 *
 * The file is untrusted. elf_parse() reads only through bounds-checked
 * accessors and accepts an image only if: it is a little-endian x86-64
 * ET_EXEC with sane header sizes; its PT_LOADs are page-aligned, ascending,
 * non-overlapping, at or above 1 MiB, inside guest RAM, never both writable and
 * executable; its entry point lies in an executable segment; and it carries an
 * ember note or a PVH (XEN_ELFNOTE_PHYS32_ENTRY) note. Every rejection is one
 * line naming the reason; the caller prefixes the file name.
 */
#ifndef EMBER_BOOT_ELF_H
#define EMBER_BOOT_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/guest_mem.h"

#define ELF_MAX_PHDRS 64u
#define ELF_MAX_LOADS 16u

/* Reads up to len bytes at offset off of an untrusted source; returns the
 * number of bytes read (short at end of file) or -1. */
typedef long (*elf_read_fn)(void *ctx, void *buf, size_t len, uint64_t off);

struct elf_load_seg {
    uint64_t offset; /* in the file */
    uint64_t paddr;  /* guest-physical */
    uint64_t filesz;
    uint64_t memsz;
    uint32_t flags; /* PF_R/PF_W/PF_X */
};

enum elf_boot_kind {
    ELF_BOOT_EMBER, /* 64-bit entry at e_entry with ember boot info */
    ELF_BOOT_PVH,   /* 32-bit entry at the PVH note's address */
};

struct elf_image {
    enum elf_boot_kind kind;
    uint64_t entry; /* e_entry for ember guests, the PVH entry otherwise */
    bool has_ember_note;
    bool has_pvh_note;
    uint64_t pvh_entry;
    uint32_t ember_abi_version;
    uint64_t guard_addr, guard_len;   /* the note's guard (0: none), checked */
    uint64_t noload_addr, noload_len; /* the note's range not to load (0: none), checked */
    uint64_t file_size;
    uint64_t image_end; /* end of the highest PT_LOAD, guest-physical */
    unsigned nloads;
    struct elf_load_seg loads[ELF_MAX_LOADS];
};

/* Parses and validates. mem_size bounds where segments may go. Returns 0, or
 * -1 with the reason in err. */
int elf_parse(elf_read_fn read, void *ctx, uint64_t file_size, uint64_t mem_size,
              struct elf_image *img, char *err, size_t errlen);

/* Copies the parsed segments into guest memory (bss is left as the zero pages
 * of fresh guest RAM: untouched, it costs nothing), except the ember note's
 * no-load range, which stays as guest RAM holds it (zeros when fresh).
 * Returns 0 or -1 with err. */
int elf_load(elf_read_fn read, void *ctx, const struct elf_image *img, const struct guest_mem *mem,
             char *err, size_t errlen);

/* elf_parse + elf_load from a file by path: the error is prefixed with path. */
int elf_load_file(const char *path, const struct guest_mem *mem, struct elf_image *img, char *err,
                  size_t errlen);

#endif
