/* rootfs_oci.c: OCI images as a source: layers applied in order.
 *
 * Two shapes are understood, both as a directory (a `docker save` tarball
 * is unpacked into a stage of its own first, rootfs_main.c):
 *  - an OCI image layout (image-spec image-layout.md): `oci-layout`,
 *    `index.json` whose manifests lead (through nested indexes, at most 4
 *    deep) to an image manifest; for a multi-platform index linux/amd64 is
 *    chosen, else the first manifest;
 *  - `docker save`'s own `manifest.json`: an array whose first element's
 *    "Layers" are paths inside the directory.
 * Blobs are named by digest (`blobs/sha256/<64 hex>`); a digest that is not
 * exactly that is refused (a hostile manifest cannot name another path), and
 * each blob's SHA-256 is checked before it is used. Layers are tar archives,
 * plain, gzip or zstd (libarchive detects which); whiteouts are applied by
 * stage_add_archive().
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rootfs-builder/rootfs_oci.h"

#define JSON_MAX (16u << 20) /* a manifest or index larger than this is not one */

static int fail(struct stage *s, const char *msg, const char *what)
{
    snprintf(s->err, sizeof(s->err), "%s: %s", what, msg);
    return -1;
}

static bool exists(const char *dir, const char *name)
{
    char p[8192];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

bool oci_is_image_dir(const char *dir)
{
    return (exists(dir, "oci-layout") && exists(dir, "index.json")) || exists(dir, "manifest.json");
}

static json_t *load(struct stage *s, const char *path)
{
    json_error_t je;
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
        fail(s, "missing", path);
        return NULL;
    }
    if ((uint64_t)st.st_size > JSON_MAX) {
        fail(s, "larger than 16 MiB", path);
        return NULL;
    }
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        snprintf(s->err, sizeof(s->err), "%s: line %d: %s", path, je.line, je.text);
        return NULL;
    }
    return j;
}

/* blobs/sha256/<hex> for a digest, checked to be exactly that, and the
 * blob's content checked against it. */
static int blob_path(struct stage *s, const char *dir, const char *digest, char *out, size_t len)
{
    if (!digest || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 7 + 64 ||
        strspn(digest + 7, "0123456789abcdef") != 64)
        return fail(s, "not a sha256 digest of 64 lower-case hex digits",
                    digest ? digest : "(no digest)");
    snprintf(out, len, "%s/blobs/sha256/%s", dir, digest + 7);
    int fd = open(out, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(s, strerror(errno), out);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    unsigned char buf[1 << 16], md[32];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        EVP_DigestUpdate(c, buf, (size_t)n);
    EVP_DigestFinal_ex(c, md, NULL);
    EVP_MD_CTX_free(c);
    close(fd);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (n < 0 || strcmp(hex, digest + 7) != 0)
        return fail(s, "content does not match its digest", out);
    return 0;
}

static json_t *pick_manifest(json_t *manifests)
{
    size_t i;
    json_t *m;
    json_array_foreach(manifests, i, m)
    {
        json_t *p = json_object_get(m, "platform");
        const char *os = json_string_value(json_object_get(p, "os"));
        const char *arch = json_string_value(json_object_get(p, "architecture"));
        if (os && arch && !strcmp(os, "linux") && !strcmp(arch, "amd64"))
            return m;
    }
    return json_array_get(manifests, 0);
}

static int apply_layers(struct stage *s, const char *dir, json_t *layers, bool by_digest)
{
    size_t i;
    json_t *l;
    if (!json_is_array(layers))
        return fail(s, "no layers array", dir);
    json_array_foreach(layers, i, l)
    {
        char path[8192];
        if (by_digest) {
            if (blob_path(s, dir, json_string_value(json_object_get(l, "digest")), path,
                          sizeof(path)) < 0)
                return -1;
        } else {
            char clean[4200], why[128];
            const char *rel = json_string_value(l);
            if (!rel)
                return fail(s, "a layer is not a string", "manifest.json");
            if (stage_clean_path(rel, clean, sizeof(clean), why, sizeof(why)) < 0) {
                snprintf(s->err, sizeof(s->err), "manifest.json: layer '%s': %s", rel, why);
                return -1;
            }
            snprintf(path, sizeof(path), "%s/%s", dir, clean);
        }
        if (s->progress)
            fprintf(stderr, "ember-rootfs: layer %zu/%zu\n", i + 1, json_array_size(layers));
        if (stage_add_archive(s, path, true) < 0) {
            char e[STAGE_ERR_MAX];
            memcpy(e, s->err, sizeof(e));
            int k = snprintf(s->err, sizeof(s->err), "layer %zu: ", i + 1);
            if (k > 0 && (size_t)k < sizeof(s->err))
                memcpy(s->err + k, e, strnlen(e, sizeof(s->err) - (size_t)k - 1) + 1);
            s->err[sizeof(s->err) - 1] = '\0';
            return -1;
        }
    }
    return 0;
}

int oci_apply(struct stage *s, const char *dir)
{
    char path[8192];
    if (exists(dir, "index.json")) {
        snprintf(path, sizeof(path), "%s/index.json", dir);
        json_t *j = load(s, path);
        for (int depth = 0; j && depth < 4; depth++) {
            json_t *ms = json_object_get(j, "manifests");
            if (!json_is_array(ms)) { /* an image manifest */
                int rc = apply_layers(s, dir, json_object_get(j, "layers"), true);
                json_decref(j);
                return rc;
            }
            json_t *m = pick_manifest(ms);
            const char *d = json_string_value(json_object_get(m, "digest"));
            if (blob_path(s, dir, d, path, sizeof(path)) < 0) {
                json_decref(j);
                return -1;
            }
            json_decref(j);
            j = load(s, path);
        }
        if (j) {
            json_decref(j);
            return fail(s, "indexes nested more than 4 deep", dir);
        }
        return -1;
    }
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    json_t *j = load(s, path);
    if (!j)
        return -1;
    json_t *first = json_array_get(j, 0);
    int rc = first ? apply_layers(s, dir, json_object_get(first, "Layers"), false)
                   : fail(s, "not a non-empty array", "manifest.json");
    json_decref(j);
    return rc;
}
