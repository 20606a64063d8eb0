/* fs_walk.c: walks the root file system and prints every entry.
 *
 * One line per entry below "/" (the /dev and /tmp mounts skipped), in
 * directory order: "TYPE SIZE PATH[ -> TARGET][ SHA256]", TYPE d, - or l,
 * regular files with the SHA-256 of what read() returns. fs_roundtrip.sh
 * compares this with the same listing of the source tree on the host. A
 * path given as argument is printed alone (with its digest), for the
 * benchmark's cold start. Ends with "fs_walk: N entries".
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* SHA-256 (FIPS 180-4), for the test only. */
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

struct sha {
    uint32_t h[8];
    uint8_t buf[64];
    uint64_t len;
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void block(struct sha *s, const uint8_t *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, h;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++)
        w[i] = w[i - 16] + (ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3)) + w[i - 7] +
               (ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10));
    a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4], f = s->h[5], g = s->h[6],
    h = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 =
            h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d, s->h[4] += e, s->h[5] += f,
        s->h[6] += g, s->h[7] += h;
}

static void sha_init(struct sha *s)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof(iv));
    s->len = 0;
}

static void sha_update(struct sha *s, const uint8_t *p, size_t n)
{
    while (n) {
        size_t have = s->len % 64, k = 64 - have < n ? 64 - have : n;
        memcpy(s->buf + have, p, k);
        s->len += k, p += k, n -= k;
        if (s->len % 64 == 0)
            block(s, s->buf);
    }
}

static void sha_hex(struct sha *s, char out[65])
{
    uint64_t bits = s->len * 8;
    uint8_t pad = 0x80, z = 0, l[8];
    sha_update(s, &pad, 1);
    while (s->len % 64 != 56)
        sha_update(s, &z, 1);
    for (int i = 0; i < 8; i++)
        l[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha_update(s, l, 8);
    for (int i = 0; i < 8; i++)
        sprintf(out + 8 * i, "%08x", s->h[i]);
}

static char buf[1 << 16];
static long entries;

static int file_sha(const char *path, char hex[65])
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    struct sha s;
    sha_init(&s);
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        sha_update(&s, (uint8_t *)buf, (size_t)n);
    close(fd);
    if (n < 0)
        return -1;
    sha_hex(&s, hex);
    return 0;
}

static int show(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        printf("fs_walk: lstat %s: %m\n", path);
        return -1;
    }
    entries++;
    if (S_ISDIR(st.st_mode)) {
        printf("d 0 %s\n", path);
    } else if (S_ISLNK(st.st_mode)) {
        char t[4096];
        ssize_t n = readlink(path, t, sizeof(t) - 1);
        if (n < 0) {
            printf("fs_walk: readlink %s: %m\n", path);
            return -1;
        }
        t[n] = 0;
        printf("l %lld %s -> %s\n", (long long)st.st_size, path, t);
    } else {
        char hex[65];
        if (file_sha(path, hex) < 0) {
            printf("fs_walk: read %s: %m\n", path);
            return -1;
        }
        printf("- %lld %s %s\n", (long long)st.st_size, path, hex);
    }
    return 0;
}

static int walk(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        printf("fs_walk: opendir %s: %m\n", dir);
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", strcmp(dir, "/") ? dir : "", de->d_name);
        if (!strcmp(p, "/dev") || !strcmp(p, "/tmp"))
            continue;
        rc = show(p);
        if (rc == 0 && de->d_type == DT_DIR)
            rc = walk(p);
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            if (show(argv[i]) < 0)
                return 1;
        printf("fs_walk: %ld entries\n", entries);
        return 0;
    }
    if (walk("/") < 0)
        return 1;
    printf("fs_walk: %ld entries\n", entries);
    return 0;
}
