/* boot_elf.c: validate and load a hostile 64-bit ELF guest into guest RAM. */
#include "monitor/boot_elf.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ember/abi.h>

#include "common/errmsg.h"

#define PAGE_SIZE                4096u
#define XEN_ELFNOTE_PHYS32_ENTRY 18u

/* Reads exactly len bytes at off; a short read is a truncated file. */
static int read_exact(elf_read_fn read, void *ctx, void *buf, size_t len, uint64_t off)
{
    long n = read(ctx, buf, len, off);

    return (n >= 0 && (size_t)n == len) ? 0 : -1;
}

static bool in_file(uint64_t off, uint64_t len, uint64_t file_size)
{
    uint64_t end;

    return !__builtin_add_overflow(off, len, &end) && end <= file_size;
}

static int check_header(const Elf64_Ehdr *eh, uint64_t file_size, char *err, size_t errlen)
{
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
        return errmsg(-1, err, errlen, "not an ELF file (bad magic)");
    if (eh->e_ident[EI_CLASS] != ELFCLASS64)
        return errmsg(-1, err, errlen, "not a 64-bit ELF (class %u)", eh->e_ident[EI_CLASS]);
    if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
        return errmsg(-1, err, errlen, "not a little-endian ELF");
    if (eh->e_ident[EI_VERSION] != EV_CURRENT || eh->e_version != EV_CURRENT)
        return errmsg(-1, err, errlen, "unsupported ELF version %u", eh->e_version);
    if (eh->e_type != ET_EXEC)
        return errmsg(-1, err, errlen,
                      "not a static executable (e_type %u); guests are linked static and non-PIE",
                      eh->e_type);
    if (eh->e_machine != EM_X86_64)
        return errmsg(-1, err, errlen, "wrong machine %u, expected x86-64 (%u)", eh->e_machine,
                      EM_X86_64);
    if (eh->e_ehsize != sizeof(Elf64_Ehdr))
        return errmsg(-1, err, errlen, "bad ELF header size %u", eh->e_ehsize);
    if (eh->e_phnum == 0)
        return errmsg(-1, err, errlen, "no program headers");
    if (eh->e_phentsize != sizeof(Elf64_Phdr))
        return errmsg(-1, err, errlen, "bad program header size %u", eh->e_phentsize);
    if (eh->e_phnum > ELF_MAX_PHDRS)
        return errmsg(-1, err, errlen, "too many program headers (%u, at most %u)", eh->e_phnum,
                      ELF_MAX_PHDRS);
    if (!in_file(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), file_size))
        return errmsg(-1, err, errlen, "program headers lie outside the file");
    return 0;
}

static int check_load(const Elf64_Phdr *ph, unsigned idx, const struct elf_image *img,
                      uint64_t file_size, uint64_t mem_size, char *err, size_t errlen)
{
    uint64_t end;

    if (ph->p_filesz > ph->p_memsz)
        return errmsg(-1, err, errlen, "segment %u: file size 0x%lx exceeds memory size 0x%lx", idx,
                      ph->p_filesz, ph->p_memsz);
    if (!in_file(ph->p_offset, ph->p_filesz, file_size))
        return errmsg(-1, err, errlen, "segment %u: data lies outside the file", idx);
    if (ph->p_paddr % PAGE_SIZE != 0)
        return errmsg(-1, err, errlen, "segment %u: address 0x%lx is not page-aligned", idx,
                      ph->p_paddr);
    if (ph->p_paddr < EMBER_KERNEL_MIN)
        return errmsg(-1, err, errlen, "segment %u: address 0x%lx is below 1 MiB", idx,
                      ph->p_paddr);
    /* The ELF rule (System V gABI, program header): p_offset and p_vaddr are
     * congruent modulo the page size, and p_align is a positive power of
     * two, here at least a page. A file that breaks it was not made by a
     * linker for this loader: its bytes would run shifted. */
    if (ph->p_offset % PAGE_SIZE != ph->p_vaddr % PAGE_SIZE ||
        ph->p_offset % PAGE_SIZE != ph->p_paddr % PAGE_SIZE)
        return errmsg(-1, err, errlen,
                      "segment %u: file offset 0x%lx is not congruent to its address 0x%lx modulo "
                      "the page size (0x%x)",
                      idx, ph->p_offset,
                      ph->p_offset % PAGE_SIZE != ph->p_vaddr % PAGE_SIZE ? ph->p_vaddr
                                                                          : ph->p_paddr,
                      PAGE_SIZE);
    if (ph->p_align < PAGE_SIZE || (ph->p_align & (ph->p_align - 1)) != 0)
        return errmsg(-1, err, errlen,
                      "segment %u: alignment 0x%lx is not a power of two of at least the page size "
                      "(0x%x)",
                      idx, ph->p_align, PAGE_SIZE);
    if (!(ph->p_flags & (PF_R | PF_W | PF_X)))
        return errmsg(-1, err, errlen, "segment %u: no permission flags (none of R, W, X)", idx);
    if (__builtin_add_overflow(ph->p_paddr, ph->p_memsz, &end) || end > mem_size)
        return errmsg(-1, err, errlen,
                      "segment %u: [0x%lx, +0x%lx) does not fit in guest RAM (%lu MiB)", idx,
                      ph->p_paddr, ph->p_memsz, mem_size >> 20);
    if ((ph->p_flags & PF_W) && (ph->p_flags & PF_X))
        return errmsg(-1, err, errlen, "segment %u: both writable and executable", idx);
    if (img->nloads > 0 && ph->p_paddr < img->image_end)
        return errmsg(-1, err, errlen, "segment %u: overlaps or precedes the segment before it",
                      idx);
    if (img->nloads == ELF_MAX_LOADS)
        return errmsg(-1, err, errlen, "too many loadable segments (at most %u)", ELF_MAX_LOADS);
    return 0;
}

/* Walks one PT_NOTE's contents (virtio-style bounds on every field). */
static int scan_notes(const uint8_t *buf, uint64_t len, struct elf_image *img, char *err,
                      size_t errlen)
{
    uint64_t off = 0;

    while (len - off >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nh;
        uint64_t name_off, desc_off, next;

        memcpy(&nh, buf + off, sizeof(nh));
        name_off = off + sizeof(nh);
        desc_off = name_off + (((uint64_t)nh.n_namesz + 3) & ~3ull);
        next = desc_off + (((uint64_t)nh.n_descsz + 3) & ~3ull);
        if (desc_off > len || next > len || desc_off + nh.n_descsz > len)
            return errmsg(-1, err, errlen, "truncated ELF note");

        const char *name = (const char *)buf + name_off;
        const uint8_t *desc = buf + desc_off;
        if (nh.n_namesz == sizeof(EMBER_NOTE_NAME) &&
            memcmp(name, EMBER_NOTE_NAME, nh.n_namesz) == 0 && nh.n_type == EMBER_NOTE_GUEST) {
            struct ember_note_guest g = {0};
            if (nh.n_descsz < EMBER_NOTE_GUEST_V1_SIZE)
                return errmsg(-1, err, errlen, "ember note too short (%u bytes)", nh.n_descsz);
            /* v1 notes end after flags; later fields read as 0. */
            memcpy(&g, desc, nh.n_descsz < sizeof(g) ? nh.n_descsz : sizeof(g));
            if (g.abi_version == 0 || g.abi_version > EMBER_ABI_VERSION)
                return errmsg(-1, err, errlen, "built for ember ABI %u, this monitor speaks ABI %u",
                              g.abi_version, EMBER_ABI_VERSION);
            if (g.flags != 0)
                return errmsg(-1, err, errlen, "ember note has unknown flags 0x%x", g.flags);
            img->has_ember_note = true;
            img->ember_abi_version = g.abi_version;
            img->guard_addr = g.guard_addr;
            img->guard_len = g.guard_len;
            img->noload_addr = g.noload_addr;
            img->noload_len = g.noload_len;
        } else if (nh.n_namesz == 4 && memcmp(name, "Xen", 4) == 0 &&
                   nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY) {
            uint32_t e32;
            uint64_t e64;
            if (nh.n_descsz == 4) {
                memcpy(&e32, desc, 4);
                img->pvh_entry = e32;
            } else if (nh.n_descsz == 8) {
                memcpy(&e64, desc, 8);
                img->pvh_entry = e64;
            } else {
                return errmsg(-1, err, errlen, "PVH entry note has bad size %u", nh.n_descsz);
            }
            img->has_pvh_note = true;
        }
        off = next;
    }
    return 0;
}

static bool in_exec_segment(const struct elf_image *img, uint64_t addr)
{
    for (unsigned i = 0; i < img->nloads; i++) {
        const struct elf_load_seg *s = &img->loads[i];
        if ((s->flags & PF_X) && addr >= s->paddr && addr - s->paddr < s->memsz)
            return true;
    }
    return false;
}

int elf_parse(elf_read_fn read, void *ctx, uint64_t file_size, uint64_t mem_size,
              struct elf_image *img, char *err, size_t errlen)
{
    Elf64_Ehdr eh;
    Elf64_Phdr ph[ELF_MAX_PHDRS];
    uint8_t notes[4096];
    bool identity = true;

    memset(img, 0, sizeof(*img));
    img->file_size = file_size;
    memset(&eh, 0, sizeof(eh));
    if (read_exact(read, ctx, &eh, file_size < sizeof(eh) ? file_size : sizeof(eh), 0) != 0)
        return errmsg(-1, err, errlen, "cannot read the ELF header");
    if (file_size >= SELFMAG && memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        return errmsg(-1, err, errlen, "not an ELF file (bad magic)");
    if (file_size < sizeof(eh))
        return errmsg(-1, err, errlen, "file too small for an ELF header (%lu bytes)", file_size);
    if (check_header(&eh, file_size, err, errlen) != 0)
        return -1;
    if (read_exact(read, ctx, ph, eh.e_phnum * sizeof(Elf64_Phdr), eh.e_phoff) != 0)
        return errmsg(-1, err, errlen, "cannot read the program headers");

    for (unsigned i = 0; i < eh.e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
            continue;
        if (check_load(&ph[i], i, img, file_size, mem_size, err, errlen) != 0)
            return -1;
        if (ph[i].p_vaddr != ph[i].p_paddr)
            identity = false;
        img->loads[img->nloads++] = (struct elf_load_seg){
            .offset = ph[i].p_offset,
            .paddr = ph[i].p_paddr,
            .filesz = ph[i].p_filesz,
            .memsz = ph[i].p_memsz,
            .flags = ph[i].p_flags,
        };
        img->image_end = ph[i].p_paddr + ph[i].p_memsz;
    }
    if (img->nloads == 0)
        return errmsg(-1, err, errlen, "no loadable segments");

    for (unsigned i = 0; i < eh.e_phnum; i++) {
        if (ph[i].p_type != PT_NOTE || ph[i].p_filesz == 0)
            continue;
        if (!in_file(ph[i].p_offset, ph[i].p_filesz, file_size))
            return errmsg(-1, err, errlen, "note segment %u lies outside the file", i);
        if (ph[i].p_filesz > sizeof(notes))
            return errmsg(-1, err, errlen, "note segment %u too large (%lu bytes, at most %zu)", i,
                          ph[i].p_filesz, sizeof(notes));
        if (read_exact(read, ctx, notes, ph[i].p_filesz, ph[i].p_offset) != 0)
            return errmsg(-1, err, errlen, "cannot read note segment %u", i);
        if (scan_notes(notes, ph[i].p_filesz, img, err, errlen) != 0)
            return -1;
    }

    if (img->has_ember_note) {
        if (!identity)
            return errmsg(-1, err, errlen,
                          "ember guest with virtual addresses that differ from physical ones");
        if (!in_exec_segment(img, eh.e_entry))
            return errmsg(-1, err, errlen, "entry point 0x%lx is not inside an executable segment",
                          eh.e_entry);
        if (img->guard_len) {
            uint64_t a = img->guard_addr, n = img->guard_len;
            if ((a | n) & 4095 || a < EMBER_KERNEL_MIN || n > EMBER_GUARD_MAX || a > mem_size ||
                n > mem_size - a)
                return errmsg(-1, err, errlen,
                              "ember note: guard 0x%lx+0x%lx is not whole pages of RAM above 1 "
                              "MiB (at most %u bytes)",
                              (unsigned long)a, (unsigned long)n, EMBER_GUARD_MAX);
        }
        if (img->noload_len) {
            uint64_t a = img->noload_addr, n = img->noload_len;
            if ((a | n) & 4095 || a < EMBER_KERNEL_MIN || a > img->image_end ||
                n > img->image_end - a)
                return errmsg(-1, err, errlen,
                              "ember note: no-load range 0x%lx+0x%lx is not whole pages of the "
                              "image (0x%x-0x%lx)",
                              (unsigned long)a, (unsigned long)n, EMBER_KERNEL_MIN,
                              (unsigned long)img->image_end);
        }
        img->kind = ELF_BOOT_EMBER;
        img->entry = eh.e_entry;
    } else if (img->has_pvh_note) {
        if (!in_exec_segment(img, img->pvh_entry))
            return errmsg(-1, err, errlen,
                          "PVH entry point 0x%lx is not inside an executable segment",
                          img->pvh_entry);
        if (img->pvh_entry > UINT32_MAX)
            return errmsg(-1, err, errlen, "PVH entry point 0x%lx is above 4 GiB", img->pvh_entry);
        img->kind = ELF_BOOT_PVH;
        img->entry = img->pvh_entry;
    } else {
        return errmsg(-1, err, errlen,
                      "no ember or PVH note: build the guest with ember-cc, or give "
                      "it a XEN_ELFNOTE_PHYS32_ENTRY note");
    }
    return 0;
}

static int load_bytes(elf_read_fn read, void *ctx, const struct elf_load_seg *s, uint8_t *dst,
                      uint64_t from, uint64_t to)
{
    return to > from ? read_exact(read, ctx, dst + from, to - from, s->offset + from) : 0;
}

/* Reads the file part of segment s to dst, leaving out what the no-load
 * range covers: a page that is not copied is not touched. */
static int load_segment(elf_read_fn read, void *ctx, const struct elf_load_seg *s, uint8_t *dst,
                        const struct elf_image *img)
{
    uint64_t lo = img->noload_addr, hi = img->noload_addr + img->noload_len;

    if (img->kind != ELF_BOOT_EMBER || img->noload_len == 0 || lo >= s->paddr + s->filesz ||
        hi <= s->paddr)
        return load_bytes(read, ctx, s, dst, 0, s->filesz);
    uint64_t cut_lo = lo > s->paddr ? lo - s->paddr : 0;
    uint64_t cut_hi = hi < s->paddr + s->filesz ? hi - s->paddr : s->filesz;
    if (load_bytes(read, ctx, s, dst, 0, cut_lo) != 0)
        return -1;
    return load_bytes(read, ctx, s, dst, cut_hi, s->filesz);
}

int elf_load(elf_read_fn read, void *ctx, const struct elf_image *img, const struct guest_mem *mem,
             char *err, size_t errlen)
{
    for (unsigned i = 0; i < img->nloads; i++) {
        const struct elf_load_seg *s = &img->loads[i];
        void *dst = guest_mem_slice(mem, s->paddr, s->memsz);

        if (!dst)
            return errmsg(-1, err, errlen, "segment at 0x%lx does not fit in guest RAM", s->paddr);
        if (load_segment(read, ctx, s, dst, img) != 0)
            return errmsg(-1, err, errlen, "cannot read segment at 0x%lx (file truncated?)",
                          s->paddr);
    }
    return 0;
}

static long read_fd(void *ctx, void *buf, size_t len, uint64_t off)
{
    int fd = *(int *)ctx;
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (long)done;
}

int elf_load_file(const char *path, const struct guest_mem *mem, struct elf_image *img, char *err,
                  size_t errlen)
{
    char why[256];
    struct stat st;
    int fd, rc = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errmsg(-1, err, errlen, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        errmsg(-1, err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        errmsg(-1, err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if (elf_parse(read_fd, &fd, (uint64_t)st.st_size, mem->size, img, why, sizeof(why)) != 0 ||
        elf_load(read_fd, &fd, img, mem, why, sizeof(why)) != 0) {
        errmsg(-1, err, errlen, "%s: %s", path, why);
        goto out;
    }
    rc = 0;
out:
    close(fd);
    return rc;
}
