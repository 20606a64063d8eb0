/* snap_test.c: a guest for the snapshot tests (tests/integration/
 * test_snapshot.c). One mode per run, chosen by argv[1]:
 *   compute N   a chain of N rounds of a 64-bit mixer over a 1 MiB table,
 *               with ember_faas_ready() halfway: a snapshot taken there and
 *               restored must print the same "snap-test: result" as a run
 *               that was never interrupted;
 *   serve       a function (ember_faas_serve) that answers:
 *                 "rand"  32 bytes of getrandom, hex;
 *                 "time"  CLOCK_REALTIME seconds;
 *                 "gen"   the restore generation ember_faas_ready() gave;
 *                 "blk"   writes the request counter to /dev/vda at 4096,
 *                         reads it back: "blk <n>";
 *                 "conn"  (serve conn) what a read of the connection
 *                         opened before the snapshot gives, then whether
 *                         a new one works: "old <ECONNRESET|EOF|...>, new
 *                         <ok|strerror>";
 *                 anything else is echoed;
 *               "serve conn" first connects to the host's vsock port 7000
 *               (the Unix socket <uds>_7000) and sends "before"; "conn"
 *               connects there again and sends "after";
 *   touch       ember_faas_ready(), then prints "snap-test: touching,
 *               generation G" and reads a page of a 4 MiB buffer after
 *               another, forever: a restored guest whose memory file is
 *               truncated meets a lost page at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ember/faas_runtime.h>
#include <ember/vsock.h>

#define HOST_PORT 7000u

static uint64_t table[1 << 17]; /* 1 MiB: the snapshot must carry it */
static uint8_t field[4 << 20];  /* touch */
static int generation;
static char out[256];
static unsigned blk_count;
static int host_conn = -1; /* serve conn: opened before the snapshot */

/* A connection to the host's HOST_PORT that has sent msg, or -1. */
static int host_send(const char *msg)
{
    struct sockaddr_vm a;
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.svm_family = AF_VSOCK;
    a.svm_cid = VMADDR_CID_HOST;
    a.svm_port = HOST_PORT;
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        send(s, msg, strlen(msg), 0) != (ssize_t)strlen(msg)) {
        if (s >= 0)
            close(s);
        return -1;
    }
    return s;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static int compute(unsigned long n)
{
    uint64_t h = 1;

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        table[i] = mix(i + 1);
    for (unsigned long r = 0; r < n; r++) {
        if (r == n / 2) {
            int g = ember_faas_ready();
            printf("snap-test: halfway, generation %d\n", g);
        }
        size_t k = h % (sizeof(table) / sizeof(table[0]));
        table[k] = mix(table[k] ^ h);
        h = mix(h + table[k]);
    }
    printf("snap-test: result %016" PRIx64 "\n", h);
    return 0;
}

static int handler(const void *req, size_t len, struct ember_faas_reply *r)
{
    if (len == 4 && memcmp(req, "rand", 4) == 0) {
        uint8_t b[32];
        if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
            return EMBER_FAAS_S_ERROR;
        for (int i = 0; i < 32; i++)
            snprintf(out + 2 * i, 3, "%02x", b[i]);
        ember_faas_reply_ref(r, out, 64);
    } else if (len == 4 && memcmp(req, "time", 4) == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ember_faas_reply_ref(r, out,
                             (size_t)snprintf(out, sizeof(out), "%lld", (long long)ts.tv_sec));
    } else if (len == 3 && memcmp(req, "gen", 3) == 0) {
        ember_faas_reply_ref(r, out, (size_t)snprintf(out, sizeof(out), "%d", generation));
    } else if (len == 3 && memcmp(req, "blk", 3) == 0) {
        int fd = open("/dev/vda", O_RDWR);
        unsigned n = ++blk_count, back = 0;
        if (fd < 0 || pwrite(fd, &n, sizeof(n), 4096) != sizeof(n) ||
            pread(fd, &back, sizeof(back), 4096) != sizeof(back)) {
            ember_faas_reply_error(r, strerror(errno));
            if (fd >= 0)
                close(fd);
            return EMBER_FAAS_S_ERROR;
        }
        close(fd);
        ember_faas_reply_ref(r, out, (size_t)snprintf(out, sizeof(out), "blk %u", back));
    } else if (len == 4 && memcmp(req, "conn", 4) == 0) {
        char b[16];
        /* Non-blocking: a connection that survived would hang the test. */
        ssize_t n = recv(host_conn, b, sizeof(b), MSG_DONTWAIT);
        const char *old = n == 0                ? "EOF"
                          : n > 0               ? "data"
                          : errno == ECONNRESET ? "ECONNRESET"
                                                : strerror(errno);
        char oldbuf[64];
        snprintf(oldbuf, sizeof(oldbuf), "%s", old);
        int s = host_send("after");
        const char *new = s >= 0 ? "ok" : strerror(errno);
        if (s >= 0)
            close(s);
        ember_faas_reply_ref(r, out,
                             (size_t)snprintf(out, sizeof(out), "old %s, new %s", oldbuf, new));
    } else {
        ember_faas_reply_ref(r, req, len);
    }
    return EMBER_FAAS_S_OK;
}

static int touch(void)
{
    volatile uint8_t *f = field;
    uint64_t sum = 0;

    for (size_t i = 0; i < sizeof(field); i += 4096)
        f[i] = (uint8_t)(i >> 12);
    int g = ember_faas_ready();
    printf("snap-test: touching, generation %d\n", g);
    fflush(stdout);
    for (;;)
        for (size_t i = 0; i < sizeof(field); i += 4096)
            sum += f[i];
    return (int)sum;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "compute") == 0)
        return compute(strtoul(argv[2], NULL, 0));
    if (argc >= 2 && strcmp(argv[1], "touch") == 0)
        return touch();
    if (argc >= 2 && strcmp(argv[1], "serve") == 0) {
        /* "serve blk": the drive is in use before the snapshot. */
        if (argc >= 3 && strcmp(argv[2], "blk") == 0) {
            int fd = open("/dev/vda", O_RDWR);
            unsigned zero = 0;
            if (fd < 0 || pwrite(fd, &zero, sizeof(zero), 4096) != sizeof(zero)) {
                printf("snap-test: /dev/vda: %s\n", strerror(errno));
                return 1;
            }
            close(fd);
        }
        if (argc >= 3 && strcmp(argv[2], "conn") == 0) {
            host_conn = host_send("before");
            if (host_conn < 0) {
                printf("snap-test: connecting to the host: %s\n", strerror(errno));
                return 1;
            }
        }
        generation = ember_faas_ready();
        int rc = ember_faas_serve(handler);
        printf("snap-test: serve: %s\n", strerror(-rc));
        return 1;
    }
    printf("snap-test: usage: compute N | serve\n");
    return 2;
}
