/* cpuid_cache.c: the supported-CPUID answer kept per host boot (see .h). */
#include "common/cpuid_cache.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define CACHE_MAGIC   0x43504d45u /* "EMPC" */
#define CACHE_VERSION 1u
#define CACHE_FILE    "kvm-cpuid"
#define SEALED_ID     "sealed-by-ember-jailer"

/* What must match for the cached answer to hold. */
struct cache_key {
    char boot_id[40];
    char release[65];
    char version[65];
    char pad[6];
    uint64_t modules[4][2]; /* inode, ctime of kvm, kvm_intel, kvm_amd, kvm_pvm */
};

struct cache_header {
    uint32_t magic;
    uint32_t version;
    struct cache_key key;
    uint32_t nent;
    uint32_t reserved;
};

static int make_key(struct cache_key *key)
{
    static const char *const mods[4] = {"/sys/module/kvm", "/sys/module/kvm_intel",
                                        "/sys/module/kvm_amd", "/sys/module/kvm_pvm"};
    struct utsname u;
    struct stat st;
    ssize_t n;
    int fd;

    memset(key, 0, sizeof(*key));
    fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, key->boot_id, sizeof(key->boot_id) - 1);
    close(fd);
    if (n < 32 || uname(&u) != 0)
        return -1;
    memcpy(key->release, u.release, sizeof(key->release) - 1);
    memcpy(key->version, u.version, sizeof(key->version) - 1);
    for (int i = 0; i < 4; i++) {
        if (stat(mods[i], &st) == 0) {
            key->modules[i][0] = st.st_ino;
            key->modules[i][1] =
                (uint64_t)st.st_ctim.tv_sec * 1000000000u + (uint64_t)st.st_ctim.tv_nsec;
        }
    }
    return 0;
}

/* The key of a sealed copy: the marker and what a jail can still see. */
static int make_sealed_key(struct cache_key *key)
{
    struct utsname u;

    memset(key, 0, sizeof(*key));
    if (uname(&u) != 0)
        return -1;
    memcpy(key->boot_id, SEALED_ID, sizeof(SEALED_ID));
    memcpy(key->release, u.release, sizeof(key->release) - 1);
    memcpy(key->version, u.version, sizeof(key->version) - 1);
    return 0;
}

static const char *run_dir(void)
{
    const char *d = getenv("EMBER_RUN_DIR");

    return d && d[0] == '/' ? d : "/run/ember";
}

/* Reads the cache if it is ours, intact and for this very host state. */
static int cache_read(const char *path, const struct cache_key *key, bool sealed,
                      struct kvm_cpuid2 *cpuid)
{
    struct cache_header h;
    struct stat st;
    size_t body;
    int fd, rc = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    /* Only a regular file that nobody else could have written. */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()) ||
        (st.st_mode & 022) || (sealed && st.st_uid != 0))
        goto out;
    if (read(fd, &h, sizeof(h)) != (ssize_t)sizeof(h) || h.magic != CACHE_MAGIC ||
        h.version != CACHE_VERSION || memcmp(&h.key, key, sizeof(*key)) != 0 || h.nent == 0 ||
        h.nent > CPUID_MAX_ENTRIES)
        goto out;
    body = h.nent * sizeof(struct kvm_cpuid_entry2);
    if ((size_t)st.st_size != sizeof(h) + body || read(fd, cpuid->entries, body) != (ssize_t)body)
        goto out;
    cpuid->nent = h.nent;
    rc = 0;
out:
    close(fd);
    return rc;
}

/* Best effort: a write that fails leaves the next VM to ask KVM again. */
static void cache_write(const char *dir, const char *path, const struct cache_key *key,
                        const struct kvm_cpuid2 *cpuid)
{
    struct cache_header h = {
        .magic = CACHE_MAGIC, .version = CACHE_VERSION, .key = *key, .nent = cpuid->nent};
    size_t body = cpuid->nent * sizeof(struct kvm_cpuid_entry2);
    char tmp[4200];
    int fd;

    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return;
    if (snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return;
    if (write(fd, &h, sizeof(h)) == (ssize_t)sizeof(h) &&
        write(fd, cpuid->entries, body) == (ssize_t)body && close(fd) == 0) {
        if (rename(tmp, path) != 0)
            unlink(tmp);
        return;
    }
    close(fd);
    unlink(tmp);
}

int cpuid_cache_get(int kvm_fd, struct kvm_cpuid2 *cpuid)
{
    struct cache_key key;
    char path[4096];
    const char *dir = run_dir();
    bool fits = snprintf(path, sizeof(path), "%s/%s", dir, CACHE_FILE) < (int)sizeof(path);
    bool usable = fits && make_key(&key) == 0;

    if (usable && cache_read(path, &key, false, cpuid) == 0)
        return 0;
    /* No /proc: inside a jail, where only the jailer's sealed copy can do. */
    if (fits && !usable && make_sealed_key(&key) == 0 && cache_read(path, &key, true, cpuid) == 0)
        return 0;
    cpuid->nent = CPUID_MAX_ENTRIES;
    if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0)
        return errno;
    if (usable)
        cache_write(dir, path, &key, cpuid);
    return 0;
}

int cpuid_cache_seal(int kvm_fd, const char *path)
{
    size_t sz = sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *cpuid = calloc(1, sz);
    struct cache_header h = {.magic = CACHE_MAGIC, .version = CACHE_VERSION};
    size_t body;
    int fd, rc;

    if (!cpuid)
        return ENOMEM;
    rc = cpuid_cache_get(kvm_fd, cpuid);
    if (rc == 0 && make_sealed_key(&h.key) != 0)
        rc = errno;
    if (rc) {
        free(cpuid);
        return rc;
    }
    h.nent = cpuid->nent;
    body = cpuid->nent * sizeof(struct kvm_cpuid_entry2);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
    if (fd < 0) {
        free(cpuid);
        return errno;
    }
    if (write(fd, &h, sizeof(h)) != (ssize_t)sizeof(h) ||
        write(fd, cpuid->entries, body) != (ssize_t)body)
        rc = errno ? errno : EIO;
    if (close(fd) != 0 && !rc)
        rc = errno;
    free(cpuid);
    return rc;
}
