/* jailer_elf.c: find and copy an exec file's shared libraries (see
 * jailer_elf.h). The files read are the operator's own binaries, but every
 * offset is still checked against the file size: a bad file is an error,
 * never a crash. */
#include "jailer/jailer_elf.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jailer/jailer_fs.h"
#include "jailer/jailer_steps.h"

#define MAX_LIBS 64

/* Where glibc's loader looks when there is no ld.so.cache (x86-64 Debian),
 * after the object's own DT_RUNPATH. */
static const char *const default_dirs[] = {
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    NULL,
};

struct lib_set {
    char *paths[MAX_LIBS];
    int n;
};

static bool have(const struct lib_set *s, const char *p)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->paths[i], p) == 0)
            return true;
    return false;
}

static void add(struct lib_set *s, const char *p)
{
    if (have(s, p))
        return;
    if (s->n == MAX_LIBS)
        jail_failf(p, "more than %d shared libraries", MAX_LIBS);
    s->paths[s->n] = strdup(p);
    if (!s->paths[s->n])
        jail_fail(p, ENOMEM);
    s->n++;
}

/* A string at file offset off, NUL-terminated inside the file. */
static const char *str_at(const unsigned char *f, size_t size, uint64_t off)
{
    if (off >= size || !memchr(f + off, '\0', size - off))
        return NULL;
    return (const char *)f + off;
}

/* The file offset of virtual address va through the PT_LOAD segments. */
static int va_to_off(const Elf64_Phdr *ph, int n, uint64_t va, uint64_t *off)
{
    for (int i = 0; i < n; i++)
        if (ph[i].p_type == PT_LOAD && va >= ph[i].p_vaddr && va - ph[i].p_vaddr < ph[i].p_filesz) {
            *off = ph[i].p_offset + (va - ph[i].p_vaddr);
            return 0;
        }
    return -1;
}

static bool find_lib(const char *name, const char *runpath, char *out, size_t outlen)
{
    char dirs[1024];

    if (strchr(name, '/')) {
        snprintf(out, outlen, "%s", name);
        return access(out, R_OK) == 0;
    }
    if (runpath) {
        snprintf(dirs, sizeof(dirs), "%s", runpath);
        for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d;
             d = strtok_r(NULL, ":", &save)) {
            if (d[0] != '/') /* $ORIGIN and relative entries mean nothing inside a jail */
                continue;
            snprintf(out, outlen, "%s/%s", d, name);
            if (access(out, R_OK) == 0)
                return true;
        }
    }
    for (int i = 0; default_dirs[i]; i++) {
        snprintf(out, outlen, "%s/%s", default_dirs[i], name);
        if (access(out, R_OK) == 0)
            return true;
    }
    return false;
}

/* Adds path's interpreter (when want_interp) and DT_NEEDED entries to libs. */
static void scan(const char *path, struct lib_set *libs, bool want_interp, bool *is_dynamic)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    unsigned char *f;
    const Elf64_Ehdr *eh;
    const Elf64_Phdr *ph;
    const Elf64_Dyn *dyn = NULL;
    size_t ndyn = 0;
    uint64_t strtab_off = 0;
    const char *runpath = NULL;

    if (fd < 0)
        jail_fail(path, errno);
    if (fstat(fd, &st) != 0)
        jail_fail(path, errno);
    if ((size_t)st.st_size < sizeof(Elf64_Ehdr))
        jail_failf(path, "not an ELF file");
    f = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f == MAP_FAILED)
        jail_fail(path, errno);
    size_t size = (size_t)st.st_size;
    eh = (const Elf64_Ehdr *)f;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > size ||
        (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
        jail_failf(path, "not a 64-bit ELF file");
    ph = (const Elf64_Phdr *)(f + eh->e_phoff);
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_INTERP && want_interp) {
            const char *interp = str_at(f, size, ph[i].p_offset);
            if (!interp || interp[0] != '/')
                jail_failf(path, "bad ELF interpreter");
            add(libs, interp);
            *is_dynamic = true;
        } else if (ph[i].p_type == PT_DYNAMIC) {
            if (ph[i].p_offset > size || ph[i].p_filesz > size - ph[i].p_offset)
                jail_failf(path, "bad dynamic segment");
            dyn = (const Elf64_Dyn *)(f + ph[i].p_offset);
            ndyn = ph[i].p_filesz / sizeof(Elf64_Dyn);
        }
    }
    for (size_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL; i++)
        if (dyn[i].d_tag == DT_STRTAB &&
            va_to_off(ph, eh->e_phnum, dyn[i].d_un.d_ptr, &strtab_off) != 0)
            jail_failf(path, "bad DT_STRTAB");
    if (dyn && !strtab_off && ndyn)
        jail_failf(path, "no DT_STRTAB");
    for (size_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL; i++)
        if (dyn[i].d_tag == DT_RUNPATH || dyn[i].d_tag == DT_RPATH)
            runpath = str_at(f, size, strtab_off + dyn[i].d_un.d_val);
    for (size_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL; i++) {
        char found[4096];
        const char *name;

        if (dyn[i].d_tag != DT_NEEDED)
            continue;
        name = str_at(f, size, strtab_off + dyn[i].d_un.d_val);
        if (!name)
            jail_failf(path, "bad DT_NEEDED entry");
        if (!find_lib(name, runpath, found, sizeof(found)))
            jail_failf(path, "needs %s, which is in none of the library directories", name);
        if (!have(libs, found)) {
            add(libs, found);
            scan(found, libs, false, is_dynamic);
        }
    }
    munmap(f, size);
}

int jail_copy_libraries(const char *exec_file, const char *root)
{
    struct lib_set libs = {.n = 0};
    bool is_dynamic = false;

    scan(exec_file, &libs, true, &is_dynamic);
    if (!is_dynamic && libs.n)
        jail_failf(exec_file, "has DT_NEEDED libraries but no ELF interpreter");
    for (int i = 0; i < libs.n; i++) {
        char dst[4096], dir[4096], failed[4096];
        const char *which;
        int e;

        snprintf(dst, sizeof(dst), "%s%s", root, libs.paths[i]);
        snprintf(dir, sizeof(dir), "%s", dst);
        *strrchr(dir, '/') = '\0';
        e = jail_mkdir_p(dir, 0755, failed, sizeof(failed));
        if (e)
            jail_fail(failed, e);
        /* Read-only and root's: the monitor can load them, never change them. */
        e = jail_copy_file(libs.paths[i], dst, 0555, &which);
        if (e)
            jail_fail(which, e);
        free(libs.paths[i]);
    }
    return libs.n;
}
