/* api_fuzz_replay.c: runs the fuzz target over files and folders of inputs,
 * so that the corpus is a regression test with any compiler (ctest runs it
 * under the ASan+UBSan build as well). Prints how many inputs it ran. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    static uint8_t buf[1 << 20];
    size_t n;

    if (!f) {
        perror(path);
        return -1;
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned runs = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            perror(argv[i]);
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            struct dirent **names;
            int n = scandir(argv[i], &names, NULL, alphasort);
            for (int k = 0; k < n; k++) {
                char path[4096];
                if (names[k]->d_name[0] != '.') {
                    snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]->d_name);
                    if (run_file(path) < 0)
                        return 1;
                    runs++;
                }
                free(names[k]);
            }
            free(names);
        } else {
            if (run_file(argv[i]) < 0)
                return 1;
            runs++;
        }
    }
    printf("api_fuzz_replay: %u inputs ran without a crash\n", runs);
    return runs ? 0 : 1;
}
