/* posix_dup.c: dup, dup2, dup3 and fcntl(F_DUPFD, F_DUPFD_CLOEXEC) as Linux
 * has them, for each kind of fd a guest makes without a device: the
 * console (stdout, stderr), files, pipes, eventfds and epoll fds. Each step
 * prints one line; the native build prints the same.
 *
 * No fd number is assumed closed or open (the test runner may pass fds
 * down, and natively stdin may be closed): closed ones are found with
 * fcntl(F_GETFD), and fd numbers are never printed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TEST_NAME "posix_dup"
#include "posix_check.h"

static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/* The lowest fd >= from that is not open. */
static int closed_fd(int from)
{
    int fd = from;
    while (is_open(fd))
        fd++;
    return fd;
}

/* dup3 as the system call: musl's dup3() answers some errors itself and
 * turns dup3 without O_CLOEXEC into dup2, glibc's does neither. */
static int sys_dup3(int oldfd, int newfd, int flags)
{
    return (int)syscall(SYS_dup3, oldfd, newfd, flags);
}

static char path[64];

static int tmp_file(void)
{
    snprintf(path, sizeof(path), "/tmp/posix_dup.%ld", (long)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0, "open %s", path);
    return fd;
}

static void bad_fds(void)
{
    int fd = tmp_file(), bad = closed_fd(3);
    CHECK(dup(bad) == -1 && errno == EBADF, "dup of a closed fd");
    CHECK(dup(-1) == -1 && errno == EBADF, "dup(-1)");
    CHECK(dup2(bad, bad) == -1 && errno == EBADF, "dup2(closed, same)");
    CHECK(dup2(bad, fd) == -1 && errno == EBADF, "dup2(closed, open)");
    CHECK(is_open(fd), "a failed dup2 leaves newfd open");
    CHECK(dup2(fd, -1) == -1 && errno == EBADF, "dup2 onto -1");
    CHECK(dup2(fd, INT_MAX) == -1 && errno == EBADF, "dup2 past the fd limit");
    CHECK(dup2(fd, fd) == fd, "dup2(fd, fd) is fd");
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC, "dup2(fd, fd) keeps FD_CLOEXEC");
    CHECK(sys_dup3(fd, fd, 0) == -1 && errno == EINVAL, "dup3(fd, fd)");
    CHECK(sys_dup3(fd, fd, O_CLOEXEC) == -1 && errno == EINVAL, "dup3(fd, fd, O_CLOEXEC)");
    CHECK(sys_dup3(bad, bad, 0) == -1 && errno == EINVAL, "dup3(closed, same): EINVAL first");
    CHECK(sys_dup3(fd, bad, O_NONBLOCK) == -1 && errno == EINVAL, "dup3 flags but O_CLOEXEC");
    CHECK(!is_open(bad), "a failed dup3 opens nothing");
    CHECK(sys_dup3(fd, -1, 0) == -1 && errno == EBADF, "dup3 onto -1");
    CHECK(sys_dup3(bad, closed_fd(bad + 1), 0) == -1 && errno == EBADF, "dup3(closed, other)");
    CHECK(dup3(fd, fd, O_CLOEXEC) == -1 && errno == EINVAL, "libc's dup3(fd, fd)");
    CHECK(fcntl(bad, F_DUPFD, 0) == -1 && errno == EBADF, "F_DUPFD of a closed fd");
    CHECK(fcntl(fd, F_DUPFD, -1) == -1 && errno == EINVAL, "F_DUPFD from -1");
    CHECK(fcntl(fd, F_DUPFD_CLOEXEC, INT_MAX) == -1 && errno == EINVAL, "F_DUPFD past the limit");
    close(fd);
    unlink(path);
    printf("errors: EBADF, EINVAL as Linux\n");
}

static void files(void)
{
    int fd = tmp_file();
    int low = closed_fd(0);
    int d = dup(fd);
    CHECK(d == low, "dup takes the lowest free fd");
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC && fcntl(d, F_GETFD) == 0,
          "FD_CLOEXEC is the fd's own, dup clears it");
    CHECK(write(fd, "abc", 3) == 3, "write");
    CHECK(lseek(d, 0, SEEK_CUR) == 3, "the dup shares the offset");
    CHECK(write(d, "def", 3) == 3, "write through the dup");
    char b[16] = {0};
    CHECK(pread(fd, b, sizeof(b), 0) == 6 && memcmp(b, "abcdef", 6) == 0, "one file: %s", b);
    CHECK(fcntl(d, F_SETFL, O_APPEND) == 0, "O_APPEND on the dup");
    CHECK(fcntl(fd, F_GETFL) & O_APPEND, "status flags are shared");
    CHECK(lseek(fd, 0, SEEK_SET) == 0 && write(fd, "g", 1) == 1, "append");
    CHECK(lseek(d, 0, SEEK_CUR) == 7, "appended at the end");

    int from = closed_fd(40);
    int c = fcntl(fd, F_DUPFD_CLOEXEC, from);
    CHECK(c == from, "F_DUPFD_CLOEXEC takes the lowest free fd >= its argument");
    CHECK(fcntl(c, F_GETFD) == FD_CLOEXEC, "F_DUPFD_CLOEXEC sets FD_CLOEXEC");
    int next = closed_fd(from);
    int e = fcntl(fd, F_DUPFD, from);
    CHECK(e == next, "F_DUPFD skips the taken fd");
    CHECK(fcntl(e, F_GETFD) == 0, "F_DUPFD: no FD_CLOEXEC");
    int t = closed_fd(e + 1);
    CHECK(dup3(fd, t, O_CLOEXEC) == t && fcntl(t, F_GETFD) == FD_CLOEXEC, "dup3 O_CLOEXEC");
    CHECK(sys_dup3(d, t, 0) == t && fcntl(t, F_GETFD) == 0, "dup3 over it, no O_CLOEXEC");
    CHECK(sys_dup3(fd, t, O_CLOEXEC) == t && fcntl(t, F_GETFD) == FD_CLOEXEC, "and back");
    CHECK(dup2(d, t) == t && fcntl(t, F_GETFD) == 0, "dup2 over it: no FD_CLOEXEC");

    /* The file stays open until its last fd is closed. */
    CHECK(close(fd) == 0 && close(c) == 0 && close(e) == 0 && close(t) == 0, "close");
    CHECK(pread(d, b, sizeof(b), 0) == 7 && memcmp(b, "abcdefg", 7) == 0,
          "open through the last fd: %s", b);
    CHECK(close(d) == 0, "close the last");
    CHECK(close(d) == -1 && errno == EBADF, "closed twice");
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 7, "the file");
    unlink(path);
    printf("files: shared offset and flags, own FD_CLOEXEC, F_DUPFD(_CLOEXEC), dup3 ok\n");
}

static void pipes(void)
{
    signal(SIGPIPE, SIG_IGN);
    int p[2];
    char b[16];
    CHECK(pipe(p) == 0, "pipe");
    int w2 = dup(p[1]);
    CHECK(w2 >= 0 && close(p[1]) == 0, "dup the write end, close the first");
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    CHECK(poll(&pf, 1, 0) == 0, "no POLLHUP while a dup of the write end is open: %#x", pf.revents);
    CHECK(write(w2, "hi", 2) == 2 && read(p[0], b, sizeof(b)) == 2, "through the dup");
    CHECK(close(w2) == 0, "close the last write fd");
    CHECK(read(p[0], b, sizeof(b)) == 0, "end of file after the last write fd");

    int q[2];
    CHECK(pipe(q) == 0, "pipe");
    int r2 = fcntl(q[0], F_DUPFD, 0);
    CHECK(r2 >= 0 && close(q[0]) == 0, "dup the read end, close the first");
    CHECK(write(q[1], "x", 1) == 1, "a reader is left");
    CHECK(close(r2) == 0, "close the last read fd");
    CHECK(write(q[1], "x", 1) == -1 && errno == EPIPE, "EPIPE after the last read fd");
    close(q[1]);
    close(p[0]);

    /* dup2 onto an open fd closes what it named: here a pipe's only write
     * fd, so the reader sees the end of the file. */
    CHECK(pipe(p) == 0, "pipe");
    int fd = tmp_file();
    CHECK(dup2(fd, p[1]) == p[1], "dup2 a file over the write end");
    CHECK(read(p[0], b, sizeof(b)) == 0, "the write end was closed");
    CHECK(write(p[1], "file", 4) == 4 && pread(fd, b, sizeof(b), 0) == 4 &&
              memcmp(b, "file", 4) == 0,
          "the fd names the file now");
    close(p[0]);
    close(p[1]);
    close(fd);
    unlink(path);
    printf("pipes: an end closes with its last fd, dup2 closes what it replaces ok\n");
}

static void eventfds_and_epoll(void)
{
    int e = eventfd(0, 0);
    CHECK(e >= 0, "eventfd");
    int d = dup(e);
    uint64_t v = 5;
    CHECK(write(e, &v, 8) == 8, "add");
    CHECK(read(d, &v, 8) == 8 && v == 5, "one counter: %llu", (unsigned long long)v);
    CHECK(close(e) == 0, "close the first");
    v = 2;
    CHECK(write(d, &v, 8) == 8, "the counter lives on");

    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0, "epoll_create1");
    int ep2 = dup(ep);
    CHECK(fcntl(ep2, F_GETFD) == 0, "no FD_CLOEXEC on the dup");
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42};
    CHECK(epoll_ctl(ep2, EPOLL_CTL_ADD, d, &ev) == 0, "add through the dup");
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, d, &ev) == -1 && errno == EEXIST, "one interest list");
    CHECK(close(ep) == 0, "close the first epoll fd");
    struct epoll_event out;
    CHECK(epoll_wait(ep2, &out, 1, 0) == 1 && out.data.u64 == 42, "ready through the dup");
    close(ep2);
    close(d);
    printf("eventfd, epoll: one object behind both fds ok\n");
}

/* Which of the data 7, 8, 9 epoll_wait reports now, as bits 1, 2, 4. */
static int ready_set(int ep)
{
    struct epoll_event out[4];
    int n = epoll_wait(ep, out, 4, 0), set = 0;
    CHECK(n >= 0, "epoll_wait");
    for (int i = 0; i < n; i++) {
        CHECK(out[i].data.u64 >= 7 && out[i].data.u64 <= 9 && out[i].events == EPOLLIN,
              "event %llu %#x", (unsigned long long)out[i].data.u64, out[i].events);
        set |= 1 << (out[i].data.u64 - 7);
    }
    return set;
}

/* An epoll entry is keyed by (fd, open file) and lives while the file is
 * open, as Linux has it: closing the fd it was added with while a dup
 * still names the file keeps it, the file's last close removes it. */
static void epoll_after_dup(void)
{
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    int ep = epoll_create1(0);
    CHECK(ep >= 0, "epoll_create1");
    int d = dup(p[0]);
    CHECK(d >= 0, "dup the read end");
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0, "add the read end");
    CHECK(close(p[0]) == 0, "close the fd it was added with");
    CHECK(write(p[1], "x", 1) == 1, "write");
    CHECK(ready_set(ep) == 1, "still reported while the dup is open");
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, d, NULL) == -1 && errno == ENOENT, "the dup was not added");
    ev.data.u64 = 8;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, d, &ev) == 0, "the dup is an entry of its own");
    CHECK(ready_set(ep) == 3, "both entries reported");
    int e = eventfd(0, 0); /* may take the closed fd's number: that is a new entry */
    CHECK(e >= 0, "eventfd");
    ev.data.u64 = 9;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev) == 0, "add a new file");
    CHECK(ready_set(ep) == 3, "the eventfd is not ready");
    CHECK(close(d) == 0, "close the file's last fd");
    CHECK(ready_set(ep) == 0, "its entries are gone");
    uint64_t v = 1;
    CHECK(write(e, &v, 8) == 8, "eventfd write");
    CHECK(ready_set(ep) == 4, "the new file's entry is reported");
    close(e);
    close(p[1]);
    close(ep);
    printf("epoll: an entry lives while its file is open, not its fd ok\n");
}

/* stdout to a file and back, as a shell's `> file` does; stderr onto
 * stdout (2>&1). */
static void console(void)
{
    fflush(stdout);
    int saved = dup(1);
    CHECK(saved >= 0, "dup(1)");
    CHECK(write(saved, "through dup(1)\n", 15) == 15, "write to dup(1)");
    int fd = tmp_file();
    CHECK(dup2(fd, 1) == 1, "dup2(file, 1)");
    CHECK(close(fd) == 0, "close the file's first fd");
    printf("into the file\n");
    fflush(stdout);
    CHECK(dup2(saved, 1) == 1 && close(saved) == 0, "stdout back");
    char b[64] = {0};
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && read(fd, b, sizeof(b) - 1) == 14, "the file: %s", b);
    close(fd);
    unlink(path);
    printf("stdout redirected, the file holds: %s", b);

    fflush(stdout);
    int err = dup(2);
    CHECK(err >= 0 && dup2(1, 2) == 2, "2>&1");
    fprintf(stderr, "stderr onto stdout\n");
    CHECK(dup2(err, 2) == 2 && close(err) == 0, "stderr back");
    printf("console: dup(1), > file, 2>&1 ok\n");
}

int main(void)
{
    bad_fds();
    files();
    pipes();
    eventfds_and_epoll();
    epoll_after_dup();
    console();
    printf("posix_dup: ok\n");
    return 0;
}
