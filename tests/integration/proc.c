/* proc.c: run a command with its output captured (see proc.h). */
#include "tests/integration/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int append(char **buf, size_t *len, int fd)
{
    char tmp[65536];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    char *nb;

    if (n <= 0)
        return (int)n;
    nb = realloc(*buf, *len + (size_t)n + 1);
    if (!nb)
        return -1;
    memcpy(nb + *len, tmp, (size_t)n);
    *len += (size_t)n;
    nb[*len] = '\0';
    *buf = nb;
    return (int)n;
}

int spawn_run(char *const argv[], int cap_s, struct spawn_result *r)
{
    int out[2], err[2], wst;
    posix_spawn_file_actions_t fa;
    pid_t pid;
    time_t deadline = time(NULL) + cap_s;

    memset(r, 0, sizeof(*r));
    r->out = calloc(1, 1);
    r->err = calloc(1, 1);
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
        return -1;
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);

    struct pollfd p[2] = {{.fd = out[0], .events = POLLIN}, {.fd = err[0], .events = POLLIN}};
    int open_fds = 2;
    while (open_fds > 0) {
        int left = (int)(deadline - time(NULL));
        if (left <= 0) {
            r->timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        if (poll(p, 2, left * 1000) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int n = i == 0 ? append(&r->out, &r->out_len, p[i].fd)
                           : append(&r->err, &r->err_len, p[i].fd);
            if (n <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                open_fds--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (p[i].fd >= 0)
            close(p[i].fd);
    if (waitpid(pid, &wst, 0) < 0)
        return -1;
    r->status = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);
    return 0;
}

void spawn_free(struct spawn_result *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

const char *spawn_kvm_unusable(void)
{
    static char why[128];
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        snprintf(why, sizeof(why), "/dev/kvm: %s", strerror(errno));
        return why;
    }
    close(fd);
    return NULL;
}

int proc_wait(pid_t pid, int cap_s)
{
    int st = 0;

    for (int i = 0; i < cap_s * 100; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

char *proc_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 1 << 20);
    size_t n = f && buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;

    if (buf)
        buf[n] = '\0';
    if (f)
        fclose(f);
    return buf;
}
