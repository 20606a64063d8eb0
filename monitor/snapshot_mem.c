/* snapshot_mem.c: a snapshot's memory file: writing it, and checking that a
 * memory file is the one a state file was taken with (see snapshot.h on the
 * `.verified` record).
 *
 * The file is an image of guest RAM from guest-physical 0. Pages that hold
 * only zeros are left as holes, so the file takes no more disk than the
 * guest used and a restore's untouched zero pages cost no page cache. The
 * digest is always the SHA-256 of the whole image (holes read as zeros).
 *
 * The image is written to a temporary file that is renamed over the path
 * once complete, never truncated in place: VMs restored from an older file
 * at that path keep running from it (their mappings hold its inode), and a
 * restored VM may be snapshot over its own memory file. A file truncated
 * under a running VM would stop it (mem_fault.h). Only where the directory
 * does not let us create the temporary file (a file made beforehand for us
 * in a directory we may not write) is the file written in place.
 */
#include "monitor/snapshot_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#define OPENSSL_SUPPRESS_DEPRECATED /* see snapshot_state.c */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "monitor/mem_fault.h"

#define PAGE 4096u

static const uint8_t zero_page[PAGE];

static bool is_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)p;

    for (size_t i = 0; i < PAGE / 8; i++)
        if (w[i])
            return false;
    return true;
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

int snapshot_mem_write(const struct guest_mem *mem, const char *path, const uint64_t *pages,
                       uint8_t digest[32], char *err, size_t errlen)
{
    uint64_t npages = mem->size / PAGE;
    unsigned char *resident = NULL;
    SHA256_CTX md;
    char tmp[4200];
    const char *target = tmp;
    int fd = -1, rc = -1;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp)) {
        snprintf(err, errlen, "memory file %s: %s", path, strerror(ENAMETOOLONG));
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EACCES || errno == EPERM)) {
        target = path;
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    }
    if (fd < 0 || ftruncate(fd, (off_t)mem->size) != 0) {
        snprintf(err, errlen, "memory file %s: %s", path, strerror(errno));
        goto out;
    }
    /* Anonymous RAM: a page that was never touched is not resident and
     * reads as zeros; mincore says which without faulting them in. A
     * file-backed (restored) RAM's pages may live in the file only. */
    if (!mem->file_backed) {
        resident = malloc(npages);
        if (resident && mincore(mem->host, mem->size, resident) != 0) {
            free(resident);
            resident = NULL;
        }
    }
    SHA256_Init(&md);
    for (uint64_t i = 0; i < npages; i++) {
        const uint8_t *p = mem->host + i * PAGE;
        bool present = !resident || (resident[i] & 1);
        bool wanted = !pages || ((pages[i / 64] >> (i % 64)) & 1);
        if (!present || is_zero(p)) {
            SHA256_Update(&md, zero_page, PAGE);
            /* A Diff's holes mean "unchanged": a written page that is zero
             * now must be there as zeros. */
            if (pages && wanted && pwrite_all(fd, zero_page, PAGE, (off_t)(i * PAGE)) != 0) {
                snprintf(err, errlen, "memory file %s: %s", path, strerror(errno));
                goto out;
            }
            continue;
        }
        SHA256_Update(&md, p, PAGE);
        if (wanted && pwrite_all(fd, p, PAGE, (off_t)(i * PAGE)) != 0) {
            snprintf(err, errlen, "memory file %s: %s", path, strerror(errno));
            goto out;
        }
    }
    SHA256_Final(digest, &md);
    if (fsync(fd) != 0 || (target == tmp && rename(tmp, path) != 0)) {
        snprintf(err, errlen, "memory file %s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && fd >= 0 && target == tmp)
        unlink(tmp);
    free(resident);
    return rc;
}

/* The `.verified` record: one text line. */
static void stamp_path(const char *mem_path, char *out, size_t len)
{
    snprintf(out, len, "%s.verified", mem_path);
}

static void stamp_line(const struct stat *st, const uint8_t digest[32], char *out, size_t len)
{
    char hex[65];

    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    snprintf(out, len,
             "ember-mem-verified 1 %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64
             ".%09ld %" PRId64 ".%09ld\n",
             hex, (uint64_t)st->st_dev, (uint64_t)st->st_ino, (uint64_t)st->st_size,
             (int64_t)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (int64_t)st->st_ctim.tv_sec,
             st->st_ctim.tv_nsec);
}

void snapshot_mem_stamp(const char *mem_path, int fd, const uint8_t digest[32])
{
    char path[4200], line[256], tmp[4300];
    struct stat st;
    int sfd;

    if (fstat(fd, &st) != 0)
        return;
    stamp_path(mem_path, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
    stamp_line(&st, digest, line, sizeof(line));
    sfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (sfd < 0)
        return;
    if (write(sfd, line, strlen(line)) != (ssize_t)strlen(line) || rename(tmp, path) != 0)
        unlink(tmp);
    close(sfd);
}

static bool stamp_matches(const char *mem_path, int fd, const uint8_t digest[32])
{
    char path[4200], want[256], got[256];
    struct stat st;
    ssize_t n;
    int sfd;

    if (fstat(fd, &st) != 0)
        return false;
    stamp_path(mem_path, path, sizeof(path));
    sfd = open(path, O_RDONLY | O_CLOEXEC);
    if (sfd < 0)
        return false;
    n = read(sfd, got, sizeof(got) - 1);
    close(sfd);
    if (n <= 0)
        return false;
    got[n] = '\0';
    stamp_line(&st, digest, want, sizeof(want));
    return strcmp(got, want) == 0;
}

int snapshot_mem_verify(const char *mem_path, int fd, uint64_t size, const uint8_t digest[32],
                        bool *hashed, char *err, size_t errlen)
{
    uint8_t got[32];
    SHA256_CTX md;
    void *p;
    int rc = -1;

    *hashed = false;
    if (stamp_matches(mem_path, fd, digest))
        return 0;
    *hashed = true;
    if (size == 0) {
        snprintf(err, errlen, "memory file is empty");
        return -1;
    }
    p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "memory file: %s", strerror(errno));
        return -1;
    }
    (void)madvise(p, size, MADV_SEQUENTIAL);
    /* A file truncated while it is read here would end the process with
     * SIGBUS: the pages it lost read as zeros instead, and it is refused. */
    struct mem_fault_region watch = {.start = p, .len = size};
    char why[128];
    uint64_t lost;
    if (mem_fault_watch(&watch, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "memory file: %s", why);
        goto out;
    }
    SHA256_Init(&md);
    SHA256_Update(&md, p, size);
    SHA256_Final(got, &md);
    mem_fault_unwatch(&watch);
    if (mem_fault_first(&watch, &lost)) {
        snprintf(err, errlen, "memory file was truncated while it was checked (at byte %llu)",
                 (unsigned long long)lost);
        goto out;
    }
    if (memcmp(got, digest, 32) != 0) {
        snprintf(err, errlen, "memory file does not match the snapshot (SHA-256 differs)");
        goto out;
    }
    snapshot_mem_stamp(mem_path, fd, digest);
    rc = 0;
out:
    munmap(p, size);
    return rc;
}
