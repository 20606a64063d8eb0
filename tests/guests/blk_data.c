/* blk_data.c: the virtio-blk driver from inside a guest, through both faces
 * (POSIX /dev/vdX and <ember/blk.h>). One mode per run, chosen by argv[1];
 * test_virtio.c boots it and checks the output and the host files.
 *   fill DEV SEED    write a pattern over the whole drive (aligned and
 *                    unaligned pieces, pwrite and write), read it all back
 *                    in other piece sizes: "blk_data: fill ok <bytes>"
 *   verify DEV SEED  read the whole drive, check the pattern:
 *                    "blk_data: verify ok <bytes>"
 *   multi            every drive: id (GET_ID), first 16 bytes, open by id,
 *                    "guest:<id>" written at 4096 (EROFS on a read-only
 *                    drive): "blk_data: multi ok <n>"
 *   flush            pwrite + fsync/fdatasync/BLKFLSBUF on /dev/vda
 *   ro               /dev/vda is read-only: EROFS, EBADF, EIO from the device
 *   discard          BLKDISCARD / WRITE_ZEROES / BLKZEROOUT ranges read back
 *                    zeroes, the rest keeps its pattern
 *   range            out-of-range requests fail (EIO, EINVAL, ENOSPC) and
 *                    the drive still works afterwards
 *   ack              writes block n with its number and prints "acked n"
 *                    once the device has completed it, until killed
 * A mode prefixed "hlt:" waits without spinning (every completion through
 * the interrupt and hlt) and prints the wait counters.
 * The pattern is word(seed, offset) per 8-byte word: test_virtio.c computes
 * the same. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ember/blk.h>
#include <ember/guest.h>
#include <ember/wait.h>

#define BLKGETSIZE64 0x80081272
#define BLKGETSIZE   0x1260
#define BLKFLSBUF    0x1261
#define BLKDISCARD   0x1277
#define BLKZEROOUT   0x127f
#define MIB          (1u << 20)

static uint8_t big[2 * MIB + 4096] __attribute__((aligned(4096)));
static uint8_t chk[2 * MIB + 4096] __attribute__((aligned(4096)));

static int fails;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("blk_data: FAIL line %d: ", __LINE__);                                          \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            fails++;                                                                               \
        }                                                                                          \
    } while (0)

static uint64_t word(uint64_t seed, uint64_t off)
{
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + off;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The pattern bytes of [off, off + n). */
static void pattern(uint64_t seed, uint64_t off, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t o = off + i, w = word(seed, o & ~7ull);
        p[i] = (uint8_t)(w >> (8 * (o & 7)));
    }
}

static uint64_t dev_size(int fd)
{
    uint64_t sz = 0;
    unsigned long sectors = 0;
    struct stat st;
    CHECK(ioctl(fd, BLKGETSIZE64, &sz) == 0, "BLKGETSIZE64: %s", strerror(errno));
    CHECK(ioctl(fd, BLKGETSIZE, &sectors) == 0 && sectors * 512 == sz, "BLKGETSIZE %lu", sectors);
    CHECK(fstat(fd, &st) == 0 && S_ISBLK(st.st_mode) && (uint64_t)st.st_size == sz,
          "fstat mode %o size %lld", st.st_mode, (long long)st.st_size);
    return sz;
}

static int verify(int fd, uint64_t seed, uint64_t size)
{
    static const size_t pieces[] = {MIB, 4096, 333, 2 * MIB, 512, 70000};
    uint64_t off = 0;
    for (unsigned k = 0; off < size; k++) {
        size_t n = pieces[k % 6];
        if (n > size - off)
            n = (size_t)(size - off);
        ssize_t r = pread(fd, big, n, (off_t)off);
        if (r != (ssize_t)n) {
            CHECK(0, "pread %zu at %llu: %zd %s", n, (unsigned long long)off, r, strerror(errno));
            return -1;
        }
        pattern(seed, off, chk, n);
        if (memcmp(big, chk, n) != 0) {
            size_t i = 0;
            while (big[i] == chk[i])
                i++;
            CHECK(0, "data differs at %llu", (unsigned long long)(off + i));
            return -1;
        }
        off += n;
    }
    return 0;
}

static int mode_fill(const char *dev, uint64_t seed)
{
    static const size_t pieces[] = {65536, 4096, 1000, 513, 131072, 7, MIB, 4096 + 512};
    int fd = open(dev, O_RDWR);
    CHECK(fd >= 0, "open %s: %s", dev, strerror(errno));
    if (fd < 0)
        return 1;
    uint64_t size = dev_size(fd), off = 0;
    for (unsigned k = 0; off < size; k++) {
        size_t n = pieces[k % 8];
        if (n > size - off)
            n = (size_t)(size - off);
        pattern(seed, off, big, n);
        ssize_t r;
        if (k % 3 == 0) { /* write() at the file position */
            CHECK(lseek(fd, (off_t)off, SEEK_SET) == (off_t)off, "lseek");
            r = write(fd, big, n);
        } else {
            r = pwrite(fd, big, n, (off_t)off);
        }
        if (r != (ssize_t)n) {
            CHECK(0, "write %zu at %llu: %zd %s", n, (unsigned long long)off, r, strerror(errno));
            return 1;
        }
        off += n;
    }
    CHECK(lseek(fd, 0, SEEK_END) == (off_t)size, "SEEK_END");
    CHECK(read(fd, big, 10) == 0, "read at the end is not 0");
    if (verify(fd, seed, size) == 0 && !fails)
        printf("blk_data: fill ok %llu\n", (unsigned long long)size);
    close(fd);
    return fails != 0;
}

static int mode_verify(const char *dev, uint64_t seed)
{
    int fd = open(dev, O_RDONLY);
    CHECK(fd >= 0, "open %s: %s", dev, strerror(errno));
    if (fd < 0)
        return 1;
    uint64_t size = dev_size(fd);
    if (verify(fd, seed, size) == 0 && !fails)
        printf("blk_data: verify ok %llu\n", (unsigned long long)size);
    close(fd);
    return fails != 0;
}

static int mode_multi(void)
{
    unsigned n = ember_blk_count();
    for (unsigned i = 0; i < n; i++) {
        struct ember_blk *b, *b2;
        char id[EMBER_BLK_ID_MAX + 1], head[17] = {0};
        CHECK(ember_blk_open(i, &b) == 0, "open %u", i);
        CHECK(ember_blk_get_id(b, id) == 0, "GET_ID %u", i);
        CHECK(ember_blk_read(b, 0, big, 512) == 0, "read %u", i);
        memcpy(head, big, 16);
        for (int k = 0; k < 16; k++)
            if (head[k] < 32 || head[k] > 126)
                head[k] = '.';
        CHECK(ember_blk_open_id(id, &b2) == 0 && b2 == b, "open by id %s", id);
        memset(big, 0, 512);
        snprintf((char *)big, 512, "guest:%s", id);
        if (ember_blk_read_only(b))
            CHECK(ember_blk_write(b, 4096, big, 512) == -EROFS, "write to read-only %u", i);
        else
            CHECK(ember_blk_write(b, 4096, big, 512) == 0, "write %u", i);
        printf("blk_data: drive %u id=%s size=%llu head=%s\n", i, id,
               (unsigned long long)ember_blk_size(b), head);
    }
    struct ember_blk *none;
    CHECK(ember_blk_open_id("no-such-drive", &none) == -ENODEV, "open of a missing id");
    CHECK(ember_blk_open(n, &none) == -ENODEV, "open past the last drive");
    /* /dev lists the drives there are (fs_dev.c), as devtmpfs does */
    CHECK(open("/dev/vdz", O_RDONLY) < 0 && errno == ENOENT, "/dev/vdz: %s", strerror(errno));
    CHECK(open("/dev/vda1", O_RDONLY) < 0 && errno == ENOENT, "/dev/vda1: %s", strerror(errno));
    if (!fails)
        printf("blk_data: multi ok %u\n", n);
    return fails != 0;
}

static int mode_flush(void)
{
    int fd = open("/dev/vda", O_RDWR);
    CHECK(fd >= 0, "open: %s", strerror(errno));
    struct ember_blk *b;
    struct ember_blk_info in;
    CHECK(ember_blk_open(0, &b) == 0, "ember_blk_open");
    ember_blk_info(b, &in);
    memset(big, 'F', 4096);
    CHECK(pwrite(fd, big, 4096, 0) == 4096, "pwrite");
    int s1 = fsync(fd), s2 = fdatasync(fd), s3 = ioctl(fd, BLKFLSBUF, 0);
    printf("blk_data: flush offered=%d fsync=%d fdatasync=%d blkflsbuf=%d\n", in.flush, s1, s2, s3);
    /* FLUSH sent raw: OK when offered, UNSUPP (EOPNOTSUPP) when not. */
    int raw = ember_blk_request(b, 4, 0, NULL, 0);
    printf("blk_data: raw flush=%d\n", raw);
    return s1 || s2 || s3;
}

static int mode_ro(void)
{
    struct ember_blk *b;
    CHECK(ember_blk_open(0, &b) == 0 && ember_blk_read_only(b), "not read-only");
    errno = 0;
    CHECK(open("/dev/vda", O_RDWR) < 0 && errno == EROFS, "O_RDWR: %s", strerror(errno));
    CHECK(open("/dev/vda", O_WRONLY) < 0 && errno == EROFS, "O_WRONLY: %s", strerror(errno));
    int fd = open("/dev/vda", O_RDONLY);
    CHECK(fd >= 0, "O_RDONLY: %s", strerror(errno));
    CHECK(pread(fd, big, 4096, 0) == 4096, "pread");
    memcpy(chk, big, 4096);
    CHECK(pwrite(fd, big, 4096, 0) < 0 && errno == EBADF, "pwrite on O_RDONLY: %s",
          strerror(errno));
    uint64_t range[2] = {0, 4096};
    CHECK(ioctl(fd, BLKDISCARD, range) < 0 && errno == EBADF, "BLKDISCARD: %s", strerror(errno));
    CHECK(ember_blk_write(b, 0, big, 4096) == -EROFS, "ember_blk_write");
    CHECK(ember_blk_discard(b, 0, 4096) == -EROFS, "ember_blk_discard");
    memset(big, 'X', 4096);
    int r = ember_blk_request(b, 1 /* OUT, forced */, 0, big, 4096);
    printf("blk_data: forced write=%d\n", r);
    CHECK(r == -EIO, "forced write: %d", r);
    CHECK(pread(fd, big, 4096, 0) == 4096 && memcmp(big, chk, 4096) == 0, "data changed");
    if (!fails)
        printf("blk_data: ro ok\n");
    return fails != 0;
}

static int mode_discard(void)
{
    int fd = open("/dev/vda", O_RDWR);
    CHECK(fd >= 0, "open: %s", strerror(errno));
    struct ember_blk *b;
    CHECK(ember_blk_open(0, &b) == 0, "ember_blk_open");
    uint64_t size = dev_size(fd);
    CHECK(size >= 4 * MIB, "drive too small");
    for (uint64_t off = 0; off < 4 * MIB; off += MIB) {
        pattern(7, off, big, MIB);
        CHECK(pwrite(fd, big, MIB, (off_t)off) == MIB, "pwrite");
    }
    uint64_t d[2] = {MIB, MIB};
    CHECK(ioctl(fd, BLKDISCARD, d) == 0, "BLKDISCARD: %s", strerror(errno));
    CHECK(ember_blk_write_zeroes(b, 2 * MIB + 512 * 1024, 512 * 1024, true) == 0, "wz unmap");
    uint64_t z[2] = {3 * MIB + 4096, 8192};
    CHECK(ioctl(fd, BLKZEROOUT, z) == 0, "BLKZEROOUT: %s", strerror(errno));
    uint64_t bad[2] = {100, 512};
    CHECK(ioctl(fd, BLKDISCARD, bad) < 0 && errno == EINVAL, "misaligned discard");
    /* Zeroes where asked, the pattern elsewhere. */
    struct {
        uint64_t off, len;
        int zero;
    } spans[] = {
        {0, MIB, 0},
        {MIB, MIB, 1},
        {2 * MIB, 512 * 1024, 0},
        {2 * MIB + 512 * 1024, 512 * 1024, 1},
        {3 * MIB, 4096, 0},
        {3 * MIB + 4096, 8192, 1},
        {3 * MIB + 12288, MIB - 12288, 0},
    };
    for (unsigned i = 0; i < sizeof(spans) / sizeof(spans[0]); i++) {
        CHECK(pread(fd, big, spans[i].len, (off_t)spans[i].off) == (ssize_t)spans[i].len, "pread");
        if (spans[i].zero)
            memset(chk, 0, spans[i].len);
        else
            pattern(7, spans[i].off, chk, spans[i].len);
        CHECK(memcmp(big, chk, spans[i].len) == 0, "span %u (at %llu) wrong", i,
              (unsigned long long)spans[i].off);
    }
    if (!fails)
        printf("blk_data: discard ok\n");
    return fails != 0;
}

static int mode_range(void)
{
    struct ember_blk *b;
    CHECK(ember_blk_open(0, &b) == 0, "ember_blk_open");
    uint64_t size = ember_blk_size(b), last = size / 512;
    int r = ember_blk_request(b, 0, last, big, 512);
    printf("blk_data: read at capacity=%d\n", r);
    CHECK(r == -EIO, "read at capacity: %d", r);
    r = ember_blk_request(b, 0, last - 1, big, 1024);
    CHECK(r == -EIO, "read across the end: %d", r);
    r = ember_blk_request(b, 1, UINT64_MAX / 512, big, 512);
    CHECK(r == -EIO, "write at a huge sector: %d", r);
    r = ember_blk_request(b, 99, 0, big, 512);
    printf("blk_data: unknown type=%d\n", r);
    CHECK(r == -EOPNOTSUPP, "unknown request type: %d", r);
    CHECK(ember_blk_read(b, size, big, 512) == -EINVAL, "API read past the end");
    CHECK(ember_blk_read(b, 100, big, 512) == -EINVAL, "API misaligned read");
    int fd = open("/dev/vda", O_RDWR);
    CHECK(fd >= 0, "open");
    CHECK(pread(fd, big, 512, (off_t)size) == 0, "pread at the end");
    CHECK(pread(fd, big, 4096, (off_t)size - 1000) == 1000, "pread across the end");
    CHECK(pwrite(fd, big, 512, (off_t)size) < 0 && errno == ENOSPC, "pwrite at the end: %s",
          strerror(errno));
    CHECK(pwrite(fd, big, 4096, (off_t)size - 512) == 512, "pwrite across the end");
    CHECK(pread(fd, big, 512, -1) < 0 && errno == EINVAL, "negative offset");
    CHECK(lseek(fd, -1, SEEK_SET) < 0 && errno == EINVAL, "lseek before 0");
    /* poll: a drive is always ready; with nothing to wait for, poll sleeps
     * (hlt, woken by the TSC-deadline timer) until its timeout. */
    struct pollfd pf = {.fd = fd, .events = POLLIN | POLLOUT};
    CHECK(poll(&pf, 1, 0) == 1 && pf.revents == (POLLIN | POLLOUT), "poll: %d", pf.revents);
    struct ember_wait_stats w0, w1;
    ember_wait_stats(&w0);
    uint64_t t0 = ember_monotonic_ns();
    CHECK(poll(NULL, 0, 30) == 0, "poll timeout");
    uint64_t waited = ember_monotonic_ns() - t0;
    ember_wait_stats(&w1);
    CHECK(waited >= 30000000 && waited < 2000000000, "poll(30 ms) took %llu ns",
          (unsigned long long)waited);
    CHECK(w1.timeouts == w0.timeouts + 1 && w1.hlts > w0.hlts, "poll did not sleep");
    printf("blk_data: poll timeout ok\n");
    /* The device still serves good requests. */
    pattern(3, 0, chk, 4096);
    CHECK(pwrite(fd, chk, 4096, 0) == 4096 && pread(fd, big, 4096, 0) == 4096 &&
              memcmp(big, chk, 4096) == 0,
          "I/O after the errors");
    if (!fails)
        printf("blk_data: range ok\n");
    return fails != 0;
}

static int mode_ack(void)
{
    int fd = open("/dev/vda", O_RDWR);
    CHECK(fd >= 0, "open");
    if (fd < 0)
        return 1;
    uint64_t blocks = dev_size(fd) / 4096;
    for (uint64_t n = 0;; n = (n + 1) % blocks) {
        for (unsigned i = 0; i < 4096 / 8; i++)
            ((uint64_t *)big)[i] = word(n, i);
        if (pwrite(fd, big, 4096, (off_t)(n * 4096)) != 4096)
            return 1;
        printf("acked %llu\n", (unsigned long long)n);
    }
}

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "";
    bool hlt = !strncmp(m, "hlt:", 4);
    if (hlt) { /* no spinning: every wait sleeps in hlt until the interrupt */
        ember_wait_set_spin_ns(0);
        m += 4;
    }
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : 1;
    int r;
    if (!strcmp(m, "fill") && argc > 2)
        r = mode_fill(argv[2], seed);
    else if (!strcmp(m, "verify") && argc > 2)
        r = mode_verify(argv[2], seed);
    else if (!strcmp(m, "multi"))
        r = mode_multi();
    else if (!strcmp(m, "flush"))
        r = mode_flush();
    else if (!strcmp(m, "ro"))
        r = mode_ro();
    else if (!strcmp(m, "discard"))
        r = mode_discard();
    else if (!strcmp(m, "range"))
        r = mode_range();
    else if (!strcmp(m, "ack"))
        r = mode_ack();
    else {
        printf("blk_data: unknown mode \"%s\"\n", m);
        return 2;
    }
    if (hlt) {
        struct ember_wait_stats st;
        ember_wait_stats(&st);
        printf("blk_data: hlt waits=%llu hlts=%llu irqs=%llu\n", (unsigned long long)st.waits,
               (unsigned long long)st.hlts, (unsigned long long)st.irqs);
        if (st.hlts == 0 || st.irqs == 0)
            r = 1;
    }
    return r ? 1 : 0;
}
