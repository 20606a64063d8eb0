/* rootfs_image.c: images from a staged tree, the same bits every time.
 *
 * The tree is first walked in sorted order (image_scan) for what the image
 * must hold and for a digest of its content; that digest becomes the
 * file-system UUID (and ext4's directory hash seed), so the same input gives
 * the same image and different inputs different UUIDs. Then:
 *  - EROFS: erofs-utils' mkfs.erofs with -T<epoch> (every inode's time and
 *    the build time), -U<uuid>, -x-1 (no xattrs: the host's would leak in),
 *    --all-root unless --keep-owners. mkfs.erofs sorts directory entries
 *    itself and sizes the image exactly.
 *  - ext4: mke2fs -d with -U and -E hash_seed=, E2FSPROGS_FAKE_TIME for the
 *    superblock's times, then one pass through libext2fs over every inode:
 *    mke2fs -d copies the staged files' atime/mtime/ctime (the build's own
 *    times, different each run) and the staging user as owner, so the pass
 *    sets all four times to the epoch and, unless --keep-owners, the owner to
 *    0:0. The size is computed (image_ext4_size) unless --size says it.
 *  - cpio (newc): written with libarchive from the sorted walk, times the
 *    epoch, owners 0 unless kept, inode numbers in walk order.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rootfs-builder/rootfs_image.h"

extern char **environ;

#define BLK 4096ull

/* ---- the sorted walk ---- */

struct walk {
    EVP_MD_CTX *md;
    struct tree_info *ti;
    bool keep_owners;
    char *err;
    size_t errlen;
    /* hardlinks: (dev, ino) seen, for counting blocks once */
    struct {
        dev_t dev;
        ino_t ino;
    } * seen;
    size_t nseen, cap;
    /* cpio writer, when writing */
    struct archive *ar;
    uint64_t epoch, ino;
};

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in a directory, sorted (strcmp: what mkfs.erofs does too). */
static char **sorted_names(int fd, size_t *n)
{
    DIR *d = fdopendir(dup(fd));
    struct dirent *de;
    char **v = NULL;
    size_t cap = 0;
    *n = 0;
    if (!d)
        return NULL;
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(v, cap * sizeof(*v));
            if (!nv)
                break; /* the walk then misses names: image_build fails later, never crashes */
            v = nv;
        }
        v[(*n)++] = strdup(de->d_name);
    }
    closedir(d);
    if (*n)
        qsort(v, *n, sizeof(*v), cmp_names);
    return v;
}

static void md_str(struct walk *w, const char *s)
{
    EVP_DigestUpdate(w->md, s, strlen(s) + 1);
}

static void md_u64(struct walk *w, uint64_t v)
{
    EVP_DigestUpdate(w->md, &v, sizeof(v));
}

/* Whether the inode was met before in the walk; *first: the ordinal of its
 * first meeting (stable across builds, unlike the staged inode number). */
static bool seen_before(struct walk *w, const struct stat *st, uint64_t *first)
{
    for (size_t i = 0; i < w->nseen; i++)
        if (w->seen[i].dev == st->st_dev && w->seen[i].ino == st->st_ino) {
            *first = i;
            return true;
        }
    if (w->nseen == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        void *ns = realloc(w->seen, cap * sizeof(*w->seen));
        if (!ns)
            return false;
        w->seen = ns;
        w->cap = cap;
    }
    w->seen[w->nseen].dev = st->st_dev;
    w->seen[w->nseen++].ino = st->st_ino;
    return false;
}

/* One cpio entry. Hardlinked files are written as separate files, each with
 * its data (nlink 1): simple, and what every cpio reader extracts the same. */
static int cpio_add(struct walk *w, const char *path, const struct stat *st, const char *target,
                    int fd)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, path[0] ? path : ".");
    archive_entry_set_mode(e, st->st_mode);
    archive_entry_set_size(e, S_ISREG(st->st_mode) ? st->st_size : 0);
    archive_entry_set_mtime(e, (time_t)w->epoch, 0);
    archive_entry_set_uid(e, w->keep_owners ? st->st_uid : 0);
    archive_entry_set_gid(e, w->keep_owners ? st->st_gid : 0);
    archive_entry_set_nlink(e, S_ISDIR(st->st_mode) ? 2 : 1);
    archive_entry_set_dev(e, 1);
    archive_entry_set_ino64(e, (int64_t)++w->ino);
    if (target)
        archive_entry_set_symlink(e, target);
    int rc = 0;
    if (archive_write_header(w->ar, e) != ARCHIVE_OK) {
        snprintf(w->err, w->errlen, "cpio: %s", archive_error_string(w->ar));
        rc = -1;
    }
    if (rc == 0 && fd >= 0 && st->st_size > 0) {
        char buf[1 << 16];
        ssize_t n;
        lseek(fd, 0, SEEK_SET);
        while ((n = read(fd, buf, sizeof(buf))) > 0)
            if (archive_write_data(w->ar, buf, (size_t)n) != n) {
                snprintf(w->err, w->errlen, "cpio: %s", archive_error_string(w->ar));
                rc = -1;
                break;
            }
    }
    archive_entry_free(e);
    return rc;
}

static int walk(struct walk *w, int dfd, char *path, size_t plen)
{
    size_t n;
    char **names = sorted_names(dfd, &n);
    int rc = 0;
    uint64_t dirbytes = 24; /* ".", "..": ext4 dirents */
    for (size_t i = 0; i < n; i++) {
        const char *nm = names[i];
        size_t l = strlen(nm);
        dirbytes += (8 + l + 3) & ~3ull;
        if (rc)
            continue;
        size_t nlen = plen ? plen + 1 + l : l;
        if (plen)
            path[plen] = '/';
        memcpy(path + (plen ? plen + 1 : 0), nm, l + 1);
        struct stat st;
        if (fstatat(dfd, nm, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            snprintf(w->err, w->errlen, "%s: %s", path, strerror(errno));
            rc = -1;
            continue;
        }
        md_str(w, path);
        md_u64(w, st.st_mode);
        if (w->keep_owners) {
            md_u64(w, st.st_uid);
            md_u64(w, st.st_gid);
        }
        char target[4097] = "";
        if (S_ISLNK(st.st_mode)) {
            ssize_t k = readlinkat(dfd, nm, target, sizeof(target) - 1);
            target[k > 0 ? k : 0] = '\0';
            md_str(w, target);
            w->ti->symlinks++;
            if (k > 59) /* longer than fits in the inode (ext4 fast symlink) */
                w->ti->ext4_blocks++;
            if (w->ar)
                rc = cpio_add(w, path, &st, target, -1);
        } else if (S_ISREG(st.st_mode)) {
            uint64_t first = 0;
            bool again = st.st_nlink > 1 && seen_before(w, &st, &first);
            int fd = openat(dfd, nm, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                snprintf(w->err, w->errlen, "%s: %s", path, strerror(errno));
                rc = -1;
                continue;
            }
            md_u64(w, (uint64_t)st.st_size);
            if (again) {
                w->ti->hardlinks++;
                md_u64(w, first); /* which names share an inode is content too */
            } else {
                w->ti->files++;
                w->ti->bytes += (uint64_t)st.st_size;
                uint64_t blocks = ((uint64_t)st.st_size + BLK - 1) / BLK;
                /* beyond 4 extents in the inode, one extent block per 340 extents
                 * of at most 32768 blocks */
                w->ti->ext4_blocks +=
                    blocks + (blocks > 4 * 32768 ? blocks / (340 * 32768) + 1 : 0);
                unsigned char buf[1 << 16];
                ssize_t k;
                EVP_MD_CTX *c = EVP_MD_CTX_new();
                unsigned char fmd[32];
                EVP_DigestInit_ex(c, EVP_sha256(), NULL);
                while ((k = read(fd, buf, sizeof(buf))) > 0)
                    EVP_DigestUpdate(c, buf, (size_t)k);
                EVP_DigestFinal_ex(c, fmd, NULL);
                EVP_MD_CTX_free(c);
                EVP_DigestUpdate(w->md, fmd, sizeof(fmd));
            }
            if (w->ar)
                rc = cpio_add(w, path, &st, NULL, fd);
            close(fd);
        } else if (S_ISDIR(st.st_mode)) {
            w->ti->dirs++;
            if (w->ar)
                rc = cpio_add(w, path, &st, NULL, -1);
            int sub = openat(dfd, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                snprintf(w->err, w->errlen, "%s: %s", path, strerror(errno));
                rc = -1;
            } else {
                rc = walk(w, sub, path, nlen);
                close(sub);
            }
        }
        path[plen] = '\0';
    }
    w->ti->ext4_blocks += (dirbytes + BLK - 1) / BLK;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int walk_tree(const char *dir, struct walk *w)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(w->err, w->errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    char path[8192] = "";
    w->md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(w->md, EVP_sha256(), NULL);
    struct stat st;
    fstat(fd, &st);
    md_u64(w, st.st_mode);
    if (w->ar)
        cpio_add(w, "", &st, NULL, -1);
    int rc = walk(w, fd, path, 0);
    EVP_DigestFinal_ex(w->md, w->ti->digest, NULL);
    EVP_MD_CTX_free(w->md);
    free(w->seen);
    close(fd);
    return rc;
}

int image_scan(const char *dir, bool keep_owners, struct tree_info *ti, char *err, size_t errlen)
{
    memset(ti, 0, sizeof(*ti));
    struct walk w = {.ti = ti, .keep_owners = keep_owners, .err = err, .errlen = errlen};
    ti->dirs = 1;
    return walk_tree(dir, &w);
}

/* Block counts of ext4 for a tree (mke2fs -t ext4 -b 4096 -I 256):
 * data and directory blocks (image_scan), one inode of 256 bytes per entry
 * plus 25 % spare and the reserved 11, per 32768-block group 2 bitmap
 * blocks, the group descriptors and its share of the inode table, the
 * journal mke2fs picks for the size (ext2fs_default_journal_size), then 25 %
 * headroom (at least 16 MiB) for the guest to write into. Rounded up to a
 * MiB. */
uint64_t image_ext4_size(const struct tree_info *ti)
{
    uint64_t inodes = (ti->files + ti->dirs + ti->symlinks) * 5 / 4 + 64;
    uint64_t blocks = ti->ext4_blocks + 2 /* lost+found, root */;
    uint64_t itable = (inodes * 256 + BLK - 1) / BLK;
    uint64_t total = blocks + itable + 1 /* superblock */;
    uint64_t groups = total / 32768 + 1;
    total += groups * 2 + (groups * 64 + BLK - 1) / BLK + 256 /* reserved GDT */;
    uint64_t journal = total < 2048          ? 0
                       : total < 32768       ? 1024
                       : total < 256 * 1024  ? 4096
                       : total < 512 * 1024  ? 8192
                       : total < 4096 * 1024 ? 16384
                                             : 32768;
    total += journal;
    uint64_t head = total / 4 < 4096 ? 4096 : total / 4;
    total += head;
    uint64_t bytes = total * BLK;
    return (bytes + (1 << 20) - 1) & ~((1ull << 20) - 1);
}

static void uuid_str(const unsigned char *d, char *out)
{
    unsigned char u[16];
    memcpy(u, d, 16);
    u[6] = (u[6] & 0x0f) | 0x80; /* RFC 9562 version 8: a custom, name-derived UUID */
    u[8] = (u[8] & 0x3f) | 0x80;
    sprintf(out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
            u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
            u[15]);
}

/* Runs argv with env additions; its stderr is kept for the message. */
static int run(char *const argv[], char *const extra_env[], char *err, size_t errlen)
{
    char log[] = "/tmp/ember-rootfs-log.XXXXXX";
    int lfd = mkstemp(log);
    if (lfd < 0) {
        snprintf(err, errlen, "mkstemp: %s", strerror(errno));
        return -1;
    }
    unlink(log);
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 8, sizeof(*env));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        env[k++] = environ[i];
    for (size_t i = 0; extra_env && extra_env[i]; i++)
        env[k++] = extra_env[i];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, lfd, 1);
    posix_spawn_file_actions_adddup2(&fa, lfd, 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s (Debian: apt-get install %s)", argv[0], strerror(rc),
                 strstr(argv[0], "erofs") ? "erofs-utils" : "e2fsprogs");
        close(lfd);
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char out[600] = "";
        ssize_t r = pread(lfd, out, sizeof(out) - 1, 0);
        out[r > 0 ? r : 0] = '\0';
        for (char *p = out; *p; p++)
            if (*p == '\n' && p[1])
                *p = ' ';
        out[strcspn(out, "\n")] = '\0';
        snprintf(err, errlen, "%s failed: %s", argv[0], out[0] ? out : "(no message)");
        close(lfd);
        return -1;
    }
    close(lfd);
    return 0;
}

/* Every inode's times to the epoch and (unless kept) its owner to 0:0. */
static int ext4_normalise(const char *img, const struct image_opts *o, char *err, size_t errlen)
{
    ext2_filsys fs;
    errcode_t e = ext2fs_open(img, EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
    if (e) {
        snprintf(err, errlen, "%s: libext2fs: %s", img, error_message(e));
        return -1;
    }
    ext2_inode_scan scan;
    e = ext2fs_open_inode_scan(fs, 0, &scan);
    int size = EXT2_INODE_SIZE(fs->super);
    struct ext2_inode_large *ino = calloc(1, (size_t)size);
    ext2_ino_t n;
    uint32_t t = (uint32_t)o->epoch;
    while (!e && !(e = ext2fs_get_next_inode_full(scan, &n, (struct ext2_inode *)ino, size)) && n) {
        if (!ino->i_atime && !ino->i_ctime && !ino->i_mtime && !ino->i_mode)
            continue; /* never used */
        ino->i_atime = ino->i_mtime = ino->i_ctime = t;
        ino->i_dtime = 0;
        if (size > EXT2_GOOD_OLD_INODE_SIZE) {
            ino->i_crtime = t;
            ino->i_atime_extra = ino->i_mtime_extra = ino->i_ctime_extra = ino->i_crtime_extra = 0;
        }
        ino->i_generation = 0;
        if (!o->keep_owners) {
            ino->i_uid = ino->i_gid = 0;
            ino->osd2.linux2.l_i_uid_high = ino->osd2.linux2.l_i_gid_high = 0;
        }
        e = ext2fs_write_inode_full(fs, n, (struct ext2_inode *)ino, size);
    }
    free(ino);
    ext2fs_close_inode_scan(scan);
    /* The superblock and its backups get the epoch too. ext2fs_close would
     * stamp s_wtime with the clock when the epoch is 0 (fs->now == 0 means
     * "now"), so they are written here and the file system freed without a
     * flush: nothing else changed (inodes were written through the cache). */
    struct ext2_super_block *sb = fs->super;
    sb->s_mtime = sb->s_wtime = sb->s_lastcheck = sb->s_mkfs_time = t;
    sb->s_mtime_hi = sb->s_wtime_hi = sb->s_lastcheck_hi = sb->s_mkfs_time_hi = 0;
    for (dgrp_t g = 0; !e && g < fs->group_desc_count; g++) {
        if (g && !ext2fs_bg_has_super(fs, g))
            continue;
        struct ext2_super_block copy = *sb;
        copy.s_block_group_nr = (uint16_t)g;
        ext2fs_superblock_csum_set(fs, &copy);
        long long at = g ? (long long)ext2fs_group_first_block2(fs, g) * fs->blocksize : 1024;
        e = io_channel_write_byte(fs->io, (unsigned long)at, SUPERBLOCK_SIZE, &copy);
    }
    errcode_t c = io_channel_flush(fs->io);
    ext2fs_free(fs);
    if (e || c) {
        snprintf(err, errlen, "%s: libext2fs: %s", img, error_message(e ? e : c));
        return -1;
    }
    return 0;
}

int image_build(const char *dir, const char *out, const struct image_opts *o,
                const struct tree_info *ti, char *err, size_t errlen)
{
    char tmp[4200], uuid[40], epoch[32], fake[64], size[32];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out, (int)getpid());
    uuid_str(ti->digest, uuid);
    snprintf(epoch, sizeof(epoch), "-T%llu", (unsigned long long)o->epoch);
    snprintf(fake, sizeof(fake), "E2FSPROGS_FAKE_TIME=%llu", (unsigned long long)o->epoch);
    int rc = -1;
    unlink(tmp);
    if (o->format == IMAGE_EROFS) {
        char u[48];
        snprintf(u, sizeof(u), "-U%s", uuid);
        char *argv[] = {
            "mkfs.erofs", "--quiet",   epoch, u, "-x-1", o->keep_owners ? "--quiet" : "--all-root",
            tmp,          (char *)dir, NULL};
        char *env[] = {fake, NULL};
        rc = run(argv, env, err, errlen);
        if (rc == 0 && o->size) {
            struct stat st;
            stat(tmp, &st);
            if ((uint64_t)st.st_size > o->size) {
                snprintf(err, errlen, "the image needs %llu bytes, more than --size %llu",
                         (unsigned long long)st.st_size, (unsigned long long)o->size);
                rc = -1;
            } else if (truncate(tmp, (off_t)o->size) < 0) {
                snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
                rc = -1;
            }
        }
    } else if (o->format == IMAGE_EXT4) {
        uint64_t bytes = o->size ? o->size : image_ext4_size(ti);
        snprintf(size, sizeof(size), "%lluk", (unsigned long long)(bytes / 1024));
        char ext[96], inodes[32];
        snprintf(ext, sizeof(ext), "hash_seed=%s,root_owner=0:0", uuid);
        snprintf(inodes, sizeof(inodes), "%llu",
                 (unsigned long long)((ti->files + ti->dirs + ti->symlinks) * 5 / 4 + 64));
        char *argv[] = {"mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096",      "-I", "256", "-N",
                        inodes,   "-U", uuid, "-E", ext,    "-d", (char *)dir, tmp,  size,  NULL};
        char *env[] = {fake, "MKE2FS_CONFIG=/dev/null", NULL};
        rc = run(argv, env, err, errlen);
        if (rc == 0)
            rc = ext4_normalise(tmp, o, err, errlen);
    } else {
        struct walk w = {
            .keep_owners = o->keep_owners, .err = err, .errlen = errlen, .epoch = o->epoch};
        struct tree_info t2;
        memset(&t2, 0, sizeof(t2));
        w.ti = &t2;
        w.ar = archive_write_new();
        archive_write_set_format_cpio_newc(w.ar);
        archive_write_set_bytes_in_last_block(w.ar, 1);
        if (archive_write_open_filename(w.ar, tmp) != ARCHIVE_OK) {
            snprintf(err, errlen, "%s: %s", tmp, archive_error_string(w.ar));
        } else {
            rc = walk_tree(dir, &w);
            if (archive_write_close(w.ar) != ARCHIVE_OK && rc == 0) {
                snprintf(err, errlen, "%s: %s", tmp, archive_error_string(w.ar));
                rc = -1;
            }
        }
        archive_write_free(w.ar);
    }
    if (rc == 0 && rename(tmp, out) < 0) {
        snprintf(err, errlen, "%s: %s", out, strerror(errno));
        rc = -1;
    }
    if (rc < 0)
        unlink(tmp);
    return rc;
}
