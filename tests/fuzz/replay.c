/* replay.c: runs any fuzz target without libFuzzer, for ctest and for
 * compilers without it. Every file given on the command line, and every file
 * in a folder given (a corpus, in name order), is run as it is; then a fixed
 * number of inputs derived from them by deterministic mutation (bit flips,
 * byte sets, splices, truncation). Reproducible: the same binary over the
 * same corpus runs the same inputs. FUZZ_REPLAY_ITERATIONS sets how many
 * mutations in all (default 20000; 0: the corpus only). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seed {
    uint8_t *data;
    size_t len;
};

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

static int add_file(struct seed **seeds, size_t *n, const char *path)
{
    struct seed s;
    struct seed *grown;

    s.data = slurp(path, &s.len);
    if (!s.data) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return -1;
    }
    grown = realloc(*seeds, (*n + 1) * sizeof(**seeds));
    if (!grown)
        return -1;
    *seeds = grown;
    (*seeds)[(*n)++] = s;
    return 0;
}

/* A file, or the files of a folder (not recursive, hidden ones skipped). */
static int add_path(struct seed **seeds, size_t *n, const char *path)
{
    struct stat st;
    struct dirent **names;
    int k, count, rc = 0;

    if (stat(path, &st) != 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return add_file(seeds, n, path);
    count = scandir(path, &names, NULL, alphasort);
    if (count < 0) {
        perror(path);
        return -1;
    }
    for (k = 0; k < count; k++) {
        char file[4096];
        if (rc == 0 && names[k]->d_name[0] != '.') {
            snprintf(file, sizeof(file), "%s/%s", path, names[k]->d_name);
            rc = add_file(seeds, n, file);
        }
        free(names[k]);
    }
    free(names);
    return rc;
}

/* One mutation of seed (the first 512 bytes, where headers live, get half
 * of the edits); returns its length, *out to free. */
static size_t mutate(const struct seed *s, uint8_t **out)
{
    size_t len = s->len, n = len + (next() % 64);
    uint8_t *m = malloc(n + 1);

    memcpy(m, s->data, len);
    memset(m + len, (int)(next() & 0xff), n - len);
    for (unsigned f = 0, flips = 1 + next() % 16; f < flips && n; f++) {
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
            memcpy(m + at, s->data + from, cnt);
        }
        }
    }
    if (next() % 8 == 0)
        n = next() % (n + 1);
    *out = m;
    return n;
}

int main(int argc, char **argv)
{
    unsigned long iterations = 20000, ran = 0;
    const char *env = getenv("FUZZ_REPLAY_ITERATIONS");
    struct seed *seeds = NULL;
    size_t nseeds = 0;

    if (env)
        iterations = strtoul(env, NULL, 10);
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE-OR-FOLDER...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (add_path(&seeds, &nseeds, argv[i]) != 0)
            return 1;
    if (nseeds == 0) {
        fprintf(stderr, "replay: no inputs\n");
        return 1;
    }
    for (size_t i = 0; i < nseeds; i++, ran++)
        LLVMFuzzerTestOneInput(seeds[i].data, seeds[i].len);
    for (unsigned long k = 0; k < iterations; k++, ran++) {
        uint8_t *m;
        size_t n = mutate(&seeds[k % nseeds], &m);
        LLVMFuzzerTestOneInput(m, n);
        free(m);
    }
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i].data);
    free(seeds);
    printf("replay: %lu inputs (%zu from the corpus), no crash\n", ran, nseeds);
    return 0;
}
