/* proc.h: run a real command, capture its stdout and stderr and its exit
 * status, for integration tests. A wall-clock cap (not a timing assertion)
 * keeps a hung guest from hanging the suite: the child is killed and the run
 * reported as timed out. */
#ifndef EMBER_TEST_SPAWN_H
#define EMBER_TEST_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct spawn_result {
    int status; /* exit status, or 128+signal */
    bool timed_out;
    char *out; /* NUL-terminated, malloc'd */
    char *err;
    size_t out_len, err_len;
};

/* argv is NULL-terminated; cap_s is the kill cap in seconds. */
int spawn_run(char *const argv[], int cap_s, struct spawn_result *r);
void spawn_free(struct spawn_result *r);

/* Waits for pid to end, killing it after cap_s: its exit status (128+signal
 * when a signal ended it), or -1 when it had to be killed. */
int proc_wait(pid_t pid, int cap_s);

/* The first MiB of the file at path, NUL-terminated (malloc'd; "" when the
 * file cannot be read): a VM's console or log, for assertions. */
char *proc_slurp(const char *path);

/* NULL if /dev/kvm is usable, else why not (for a loud skip). */
const char *spawn_kvm_unusable(void);

#endif
