/* rootfs_inspect.c: `ember-rootfs inspect IMAGE`: the tree an image holds.
 *
 * One line per entry, depth first in directory order (sorted):
 *   TYPE MODE UID:GID SIZE PATH[ -> TARGET][ sha256:HEX]
 * TYPE is d, -, l, c, b, p or s, MODE the permission bits in octal, PATH
 * starts at "/". With --sha256 regular files carry their content's digest.
 * EROFS images are read with the guest SDK's own reader (fs_erofs.c), so
 * inspect also shows what a guest will see, and a hostile image fails here
 * the way it fails there: with -EIO, never a crash (the walk is bounded to
 * 256 levels, which also stops a directory that contains its ancestor).
 * cpio archives are listed through libarchive; an ext4 image is pointed to
 * e2fsprogs' debugfs.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest-sdk/src/fs/fs_erofs.h"
#include "rootfs-builder/rootfs_inspect.h"

#define DEPTH_MAX 256

struct img {
    int fd;
    uint8_t buf[EROFS_BLOCK_SIZE];
    struct erofs_fs fs;
    bool sha;
    FILE *out;
    char path[8192];
};

static const uint8_t *img_block(void *ctx, uint64_t blkno)
{
    struct img *m = ctx;
    ssize_t n = pread(m->fd, m->buf, sizeof(m->buf), (off_t)(blkno * EROFS_BLOCK_SIZE));
    return n == (ssize_t)sizeof(m->buf) ? m->buf : NULL;
}

static char type_char(unsigned mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR:
        return 'd';
    case S_IFLNK:
        return 'l';
    case S_IFCHR:
        return 'c';
    case S_IFBLK:
        return 'b';
    case S_IFIFO:
        return 'p';
    case S_IFSOCK:
        return 's';
    default:
        return '-';
    }
}

static void hex(const unsigned char *d, char *out)
{
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static int print_inode(struct img *m, const struct erofs_inode *ino)
{
    fprintf(m->out, "%c %04o %u:%u %llu %s", type_char(ino->mode), ino->mode & 07777, ino->uid,
            ino->gid, (unsigned long long)ino->size, m->path[0] ? m->path : "/");
    if (S_ISLNK(ino->mode)) {
        char t[4096];
        long n = erofs_pread(&m->fs, ino, t, sizeof(t) - 1, 0);
        if (n < 0)
            return -EIO;
        t[n] = '\0';
        fprintf(m->out, " -> %s", t);
    }
    if (m->sha && S_ISREG(ino->mode)) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        unsigned char md[32];
        char h[65];
        static char buf[1 << 16];
        EVP_DigestInit_ex(c, EVP_sha256(), NULL);
        for (uint64_t pos = 0; pos < ino->size;) {
            long n = erofs_pread(&m->fs, ino, buf, sizeof(buf), pos);
            if (n <= 0) {
                EVP_MD_CTX_free(c);
                return -EIO;
            }
            EVP_DigestUpdate(c, buf, (size_t)n);
            pos += (uint64_t)n;
        }
        EVP_DigestFinal_ex(c, md, NULL);
        EVP_MD_CTX_free(c);
        hex(md, h);
        fprintf(m->out, " sha256:%s", h);
    }
    fputc('\n', m->out);
    return 0;
}

struct child {
    struct img *m;
    int depth;
    int rc;
};

static int walk(struct img *m, const struct erofs_inode *dir, int depth);

static int emit(void *arg, const char *name, size_t len, uint64_t nid, unsigned ftype,
                uint64_t next)
{
    struct child *c = arg;
    struct img *m = c->m;
    (void)ftype;
    (void)next;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return 0;
    size_t plen = strlen(m->path);
    if (plen + 1 + len >= sizeof(m->path) || memchr(name, '/', len) || memchr(name, 0, len)) {
        c->rc = -EIO;
        return 1;
    }
    m->path[plen] = '/';
    memcpy(m->path + plen + 1, name, len);
    m->path[plen + 1 + len] = '\0';
    struct erofs_inode ino;
    int r = erofs_iget(&m->fs, nid, &ino);
    if (r == 0)
        r = print_inode(m, &ino);
    if (r == 0 && S_ISDIR(ino.mode))
        r = walk(m, &ino, c->depth + 1);
    m->path[plen] = '\0';
    if (r < 0) {
        c->rc = r;
        return 1;
    }
    return 0;
}

static int walk(struct img *m, const struct erofs_inode *dir, int depth)
{
    if (depth > DEPTH_MAX)
        return -ELOOP;
    struct child c = {.m = m, .depth = depth};
    uint64_t pos = 0;
    int r = erofs_readdir(&m->fs, dir, &pos, emit, &c);
    return r < 0 ? r : c.rc;
}

static int inspect_cpio(const char *path, FILE *out, char *err, size_t errlen)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    archive_read_support_filter_all(a);
    archive_read_support_format_cpio(a);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        snprintf(err, errlen, "%s: not an EROFS image, nor a cpio archive", path);
        archive_read_free(a);
        return -1;
    }
    int r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *p = archive_entry_pathname(e);
        unsigned mode = archive_entry_mode(e);
        fprintf(out, "%c %04o %u:%u %lld /%s", type_char(mode), mode & 07777,
                (unsigned)archive_entry_uid(e), (unsigned)archive_entry_gid(e),
                (long long)archive_entry_size(e), strcmp(p, ".") ? p : "");
        if (archive_entry_symlink(e))
            fprintf(out, " -> %s", archive_entry_symlink(e));
        fputc('\n', out);
    }
    if (r != ARCHIVE_EOF) {
        snprintf(err, errlen, "%s: %s", path, archive_error_string(a));
        archive_read_free(a);
        return -1;
    }
    archive_read_free(a);
    return 0;
}

int inspect_image(const char *path, bool sha256, FILE *out, char *err, size_t errlen)
{
    static struct img m;
    m.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (m.fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    fstat(m.fd, &st);
    uint8_t sb[1084];
    ssize_t n = pread(m.fd, sb, sizeof(sb), 0);
    int rc = -1;
    if (n == (ssize_t)sizeof(sb) && sb[1024] == 0xe2 && sb[1025] == 0xe1 && sb[1026] == 0xf5 &&
        sb[1027] == 0xe0) {
        const char *why;
        m.sha = sha256;
        m.out = out;
        m.path[0] = '\0';
        if (erofs_mount(&m.fs, img_block, &m, (uint64_t)st.st_size, &why) < 0) {
            snprintf(err, errlen, "%s: bad EROFS image: %s", path, why);
        } else {
            struct erofs_inode root;
            int r = erofs_iget(&m.fs, m.fs.root_nid, &root);
            if (r == 0)
                r = print_inode(&m, &root);
            if (r == 0)
                r = walk(&m, &root, 0);
            if (r < 0)
                snprintf(err, errlen, "%s: bad EROFS image: %s at %s", path,
                         r == -ELOOP        ? "directories nested deeper than 256 (a loop?)"
                         : r == -EOPNOTSUPP ? "a compressed or chunked file"
                                            : "corrupt metadata",
                         m.path[0] ? m.path : "/");
            else
                rc = 0;
        }
    } else if (n >= 1082 && sb[1080] == 0x53 && sb[1081] == 0xef) {
        snprintf(err, errlen, "%s: an ext4 image: list it with debugfs -R 'ls -l -r /' %s", path,
                 path);
    } else {
        rc = inspect_cpio(path, out, err, errlen);
    }
    close(m.fd);
    return rc;
}
