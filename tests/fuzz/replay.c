/* replay.c: runs a fuzz target without libFuzzer, for ctest: every file
 * given on the command line (a seed corpus), then a fixed number of inputs
 * derived from them by deterministic mutation (bit flips, byte sets, splices,
 * truncation). Reproducible: the same binary gives the same inputs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    unsigned iterations = 20000, ran = 0;
    const char *env = getenv("FUZZ_REPLAY_ITERATIONS");

    if (env)
        iterations = (unsigned)strtoul(env, NULL, 10);
    if (argc < 2) {
        fprintf(stderr, "usage: %s SEED...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        size_t len;
        uint8_t *seed = slurp(argv[i], &len);
        if (!seed) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            return 1;
        }
        LLVMFuzzerTestOneInput(seed, len);
        ran++;
        for (unsigned k = 0; k < iterations / (unsigned)(argc - 1); k++) {
            size_t n = len + (next() % 64);
            uint8_t *m = malloc(n + 1);
            memcpy(m, seed, len);
            memset(m + len, (int)(next() & 0xff), n - len);
            for (unsigned f = 0, flips = 1 + next() % 16; f < flips; f++) {
                /* Half the edits land in the first 512 bytes, where headers live. */
                size_t at = (next() & 1) ? next() % (n < 512 ? n : 512) : next() % n;
                switch (next() % 4) {
                case 0:
                    m[at] ^= (uint8_t)(1u << (next() % 8));
                    break;
                case 1:
                    m[at] = (uint8_t)next();
                    break;
                case 2:
                    m[at] = (uint8_t)((next() & 1) ? 0xff : 0x00);
                    break;
                default: {
                    size_t from = len ? next() % len : 0, cnt = 8;
                    if (cnt > n - at)
                        cnt = n - at;
                    if (cnt > len - from)
                        cnt = len - from;
                    memcpy(m + at, seed + from, cnt);
                }
                }
            }
            if (next() % 8 == 0)
                n = next() % (n + 1);
            LLVMFuzzerTestOneInput(m, n);
            free(m);
            ran++;
        }
        free(seed);
    }
    printf("replay: %u inputs, no crash\n", ran);
    return 0;
}
