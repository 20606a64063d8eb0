/* rootfs_main.c: the ember-rootfs command line.
 *
 *   ember-rootfs build --from SOURCE -o IMAGE [--format erofs|ext4|cpio]
 *                      [--size N] [--keep-owners] [--epoch N] [--digest-file]
 *                      [--tmpdir DIR] [--max-bytes N] [--max-entries N]
 *                      [--max-ratio N] [--progress | --quiet]
 *   ember-rootfs inspect IMAGE [--sha256]
 *
 * build: SOURCE (a directory, an archive, an OCI image layout or a
 * `docker save` tarball) is staged in a private directory (rootfs_stage.c,
 * rootfs_oci.c), the image made from it (rootfs_image.c) and its SHA-256
 * printed ("sha256:HEX  IMAGE", and with --digest-file written to
 * IMAGE.sha256 in sha256sum's format). The private directory is removed on
 * every exit, by a signal too. See README.md for the rules.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rootfs-builder/rootfs_image.h"
#include "rootfs-builder/rootfs_inspect.h"
#include "rootfs-builder/rootfs_oci.h"
#include "rootfs-builder/rootfs_stage.h"

static struct stage stage, outer; /* outer: an image tarball, unpacked */

static void usage(FILE *f)
{
    fprintf(f, "usage: ember-rootfs build --from SOURCE -o IMAGE [--format erofs|ext4|cpio]\n"
               "                          [--size N[K|M|G]] [--keep-owners] [--epoch N]\n"
               "                          [--digest-file] [--tmpdir DIR] [--max-bytes N[K|M|G]]\n"
               "                          [--max-entries N] [--max-ratio N] [--progress|--quiet]\n"
               "       ember-rootfs inspect IMAGE [--sha256]\n"
               "SOURCE: a directory, a tarball (gzip, xz, zstd, bzip2), an OCI image layout\n"
               "directory or a `docker save` tarball. Times come from --epoch, else\n"
               "SOURCE_DATE_EPOCH, else 0.\n");
}

static void on_signal(int sig)
{
    stage_close(&stage);
    stage_close(&outer);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ember-rootfs: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    stage_close(&stage);
    stage_close(&outer);
    return 1;
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-')
        return -1;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    else if (*end)
        return -1;
    if (shift && *++end)
        return -1;
    if (v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static int file_sha256(const char *path, char hex[65])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char buf[1 << 16], md[32];
    ssize_t n;
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        EVP_DigestUpdate(c, buf, (size_t)n);
    EVP_DigestFinal_ex(c, md, NULL);
    EVP_MD_CTX_free(c);
    close(fd);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
    return n < 0 ? -1 : 0;
}

/* Mount points an SDK guest expects in its root (fs_vfs.c mounts /tmp and
 * /dev over them). */
static void add_mountpoints(struct stage *s)
{
    if (mkdirat(s->dirfd, "tmp", 01777) == 0)
        fchmodat(s->dirfd, "tmp", 01777, 0);
    mkdirat(s->dirfd, "dev", 0755);
}

static int cmd_build(int argc, char **argv)
{
    const char *from = NULL, *out = NULL, *tmpdir = NULL;
    struct image_opts o = {.format = IMAGE_EROFS};
    struct stage_limits lim = {.max_bytes = 64ull << 30, .max_entries = 1000000, .max_ratio = 1000};
    bool digest_file = false, quiet = false, prog = isatty(2);
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) {
        char *end;
        errno = 0;
        o.epoch = strtoull(sde, &end, 10);
        if (errno || *end || sde[0] == '-' || o.epoch > UINT32_MAX)
            return die("SOURCE_DATE_EPOCH: not a time in seconds: \"%s\"", sde);
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (!strcmp(a, "--from"))
            from = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            out = v;
        else if (!strcmp(a, "--tmpdir"))
            tmpdir = v;
        else if (!strcmp(a, "--format")) {
            if (!v)
                return die("--format needs a value");
            if (!strcmp(v, "erofs"))
                o.format = IMAGE_EROFS;
            else if (!strcmp(v, "ext4"))
                o.format = IMAGE_EXT4;
            else if (!strcmp(v, "cpio"))
                o.format = IMAGE_CPIO;
            else
                return die("--format: unknown format \"%s\" (erofs, ext4, cpio)", v);
        } else if (!strcmp(a, "--size") || !strcmp(a, "--max-bytes") || !strcmp(a, "--epoch") ||
                   !strcmp(a, "--max-entries") || !strcmp(a, "--max-ratio")) {
            uint64_t n;
            if (!v || parse_size(v, &n) < 0)
                return die("%s: not a number: \"%s\"", a, v ? v : "");
            if (!strcmp(a, "--size"))
                o.size = n;
            else if (!strcmp(a, "--max-bytes"))
                lim.max_bytes = n;
            else if (!strcmp(a, "--max-entries"))
                lim.max_entries = n;
            else if (!strcmp(a, "--max-ratio"))
                lim.max_ratio = n ? n : 1;
            else if (n > UINT32_MAX)
                return die("--epoch: \"%s\" is past 2106", v);
            else
                o.epoch = n;
        } else {
            takes = false;
            if (!strcmp(a, "--keep-owners"))
                o.keep_owners = true;
            else if (!strcmp(a, "--digest-file"))
                digest_file = true;
            else if (!strcmp(a, "--progress"))
                prog = true;
            else if (!strcmp(a, "--quiet"))
                quiet = true, prog = false;
            else
                return die("build: unknown option \"%s\"", a);
        }
        if (takes) {
            if (!v)
                return die("%s needs a value", a);
            i++;
        }
    }
    if (!from || !out) {
        usage(stderr);
        return 2;
    }
    if (o.size && o.size % 4096)
        return die("--size: %llu is not a multiple of 4096", (unsigned long long)o.size);
    o.progress = prog;

    struct stat st;
    if (stat(from, &st) < 0)
        return die("%s: %s", from, strerror(errno));
    if (stage_open(&stage, tmpdir) < 0)
        return die("%s", stage.err);
    stage.keep_owners = o.keep_owners;
    stage.progress = prog;
    stage.lim = lim;
    int rc;
    if (S_ISDIR(st.st_mode)) {
        rc = oci_is_image_dir(from) ? oci_apply(&stage, from) : stage_add_tree(&stage, from);
    } else {
        bool docker = false, oci = false;
        char err[STAGE_ERR_MAX];
        if (stage_archive_has(from, "manifest.json", &docker, err, sizeof(err)) < 0 ||
            stage_archive_has(from, "oci-layout", &oci, err, sizeof(err)) < 0)
            return die("%s", err);
        if (docker || oci) {
            if (stage_open(&outer, tmpdir) < 0)
                return die("%s", outer.err);
            outer.lim = lim;
            rc = stage_add_archive(&outer, from, false);
            if (rc < 0)
                snprintf(stage.err, sizeof(stage.err), "%s", outer.err);
            else
                rc = oci_apply(&stage, outer.dir);
            stage_close(&outer);
        } else {
            rc = stage_add_archive(&stage, from, false);
        }
    }
    if (rc < 0)
        return die("%s: %s", from, stage.err);
    if (o.format == IMAGE_EROFS)
        add_mountpoints(&stage);

    struct tree_info ti;
    char err[2048];
    if (image_scan(stage.dir, o.keep_owners, &ti, err, sizeof(err)) < 0 ||
        image_build(stage.dir, out, &o, &ti, err, sizeof(err)) < 0)
        return die("%s: %s", out, err);
    stage_close(&stage);

    char hex[65];
    if (file_sha256(out, hex) < 0)
        return die("%s: %s", out, strerror(errno));
    if (!quiet)
        printf("sha256:%s  %s\n", hex, out);
    if (digest_file) {
        char p[4200];
        snprintf(p, sizeof(p), "%s.sha256", out);
        FILE *f = fopen(p, "w");
        const char *bn = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
        if (!f || fprintf(f, "%s  %s\n", hex, bn) < 0 || fclose(f) != 0)
            return die("%s: %s", p, strerror(errno));
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    stage.dirfd = outer.dirfd = -1;
    if (!strcmp(argv[1], "build"))
        return cmd_build(argc - 2, argv + 2);
    if (!strcmp(argv[1], "inspect")) {
        const char *img = NULL;
        bool sha = false;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--sha256"))
                sha = true;
            else if (!img && argv[i][0] != '-')
                img = argv[i];
            else
                return die("inspect: unknown option \"%s\"", argv[i]);
        }
        if (!img) {
            usage(stderr);
            return 2;
        }
        char err[1024];
        if (inspect_image(img, sha, stdout, err, sizeof(err)) < 0)
            return die("%s", err);
        return 0;
    }
    fprintf(stderr, "ember-rootfs: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
