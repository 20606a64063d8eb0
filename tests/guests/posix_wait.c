/* posix_wait.c: select, pselect, poll, epoll, eventfd and pipes as Linux
 * has them. Each step prints one line; the native build prints the same. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TEST_NAME "posix_wait"
#include "posix_check.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* An fd number that is not open here. A fixed number will not do: run
 * natively, the process may inherit open fds from whatever started it.
 * Nor will a high free number: Linux's select() only looks at fds inside
 * the process's fd table (64 slots until a higher fd is opened) and skips
 * a number beyond it instead of failing with EBADF. A number just freed
 * lies inside the table. */
static int closed_fd(void)
{
    int p[2];
    CHECK(pipe(p) == 0, "pipe for a closed fd");
    close(p[0]);
    close(p[1]);
    return p[1];
}

static void pipes(void)
{
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    struct stat st;
    CHECK(fstat(p[0], &st) == 0 && S_ISFIFO(st.st_mode), "fstat: a FIFO");
    CHECK(write(p[1], "hello", 5) == 5, "write");
    int n = -1;
    CHECK(ioctl(p[0], FIONREAD, &n) == 0 && n == 5, "FIONREAD %d", n);
    char b[16];
    CHECK(read(p[0], b, 3) == 3 && memcmp(b, "hel", 3) == 0, "read 3");
    CHECK(read(p[0], b, sizeof(b)) == 2 && memcmp(b, "lo", 2) == 0, "read the rest");
    CHECK(read(p[1], b, 1) == -1 && errno == EBADF, "read of the write end");
    CHECK(write(p[0], "x", 1) == -1 && errno == EBADF, "write to the read end");
    CHECK(fcntl(p[0], F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
    CHECK(read(p[0], b, 1) == -1 && errno == EAGAIN, "empty non-blocking read");
    printf("pipe: read, write, FIONREAD, EAGAIN ok\n");

    /* Fill it: 64 KiB, then EAGAIN; a PIPE_BUF write is all or nothing. */
    int q[2];
    CHECK(pipe2(q, O_NONBLOCK | O_CLOEXEC) == 0, "pipe2");
    CHECK(fcntl(q[0], F_GETFD) == FD_CLOEXEC, "O_CLOEXEC");
    static char big[70000];
    long total = 0, r;
    while ((r = write(q[1], big, 4096)) > 0)
        total += r;
    CHECK(r == -1 && errno == EAGAIN, "full pipe");
    printf("pipe: capacity %ld\n", total);
    CHECK(read(q[0], big, 100) == 100, "make room"); /* 100 bytes free: less than PIPE_BUF */
    CHECK(write(q[1], big, 4096) == -1 && errno == EAGAIN, "PIPE_BUF write is atomic");
    struct pollfd pf = {.fd = q[1], .events = POLLOUT};
    CHECK(poll(&pf, 1, 0) == 0, "not writable with < PIPE_BUF free");

    /* End of file and EPIPE. */
    CHECK(close(p[1]) == 0, "close write end");
    CHECK(read(p[0], b, 1) == 0, "end of file");
    pf = (struct pollfd){.fd = p[0], .events = POLLIN};
    CHECK(poll(&pf, 1, 0) == 1 && pf.revents == POLLHUP, "POLLHUP: %#x", pf.revents);
    signal(SIGPIPE, SIG_IGN);
    CHECK(close(q[0]) == 0, "close read end");
    CHECK(write(q[1], "x", 1) == -1 && errno == EPIPE, "EPIPE");
    pf = (struct pollfd){.fd = q[1], .events = POLLOUT};
    CHECK(poll(&pf, 1, 0) == 1 && pf.revents == POLLERR, "POLLERR: %#x", pf.revents);
    close(p[0]);
    close(q[1]);
    printf("pipe: EOF, POLLHUP, EPIPE, POLLERR ok\n");
}

static void selects(void)
{
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(p[0], &r);
    FD_SET(p[1], &w);
    struct timeval tv = {0, 0};
    CHECK(select(p[1] + 1, &r, &w, NULL, &tv) == 1, "select: only the write end");
    CHECK(!FD_ISSET(p[0], &r) && FD_ISSET(p[1], &w), "sets");
    CHECK(write(p[1], "x", 1) == 1, "write");
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv = (struct timeval){1, 0};
    CHECK(select(p[0] + 1, &r, NULL, NULL, &tv) == 1 && FD_ISSET(p[0], &r), "readable");
    char c;
    CHECK(read(p[0], &c, 1) == 1, "read");
    /* A timeout: the time is slept, and the timeval says what is left. */
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv = (struct timeval){0, 50000};
    double t0 = now();
    CHECK(select(p[0] + 1, &r, NULL, NULL, &tv) == 0, "select timeout");
    double dt = now() - t0;
    CHECK(dt >= 0.049 && dt < 2.0, "slept %.3f s", dt);
    CHECK(!FD_ISSET(p[0], &r), "sets cleared"); /* (musl's select hides the time left) */
    /* Select as a sleep (no fds), as QuickJS and MicroPython use it. */
    tv = (struct timeval){0, 20000};
    t0 = now();
    CHECK(select(0, NULL, NULL, NULL, &tv) == 0 && now() - t0 >= 0.019, "select(0) sleeps");
    struct timespec ts = {0, 20000000};
    sigset_t none;
    sigemptyset(&none);
    t0 = now();
    CHECK(pselect(0, NULL, NULL, NULL, &ts, &none) == 0 && now() - t0 >= 0.019, "pselect");
    /* A closed fd in a set is EBADF. */
    int closed = closed_fd();
    FD_ZERO(&r);
    FD_SET(closed, &r);
    tv = (struct timeval){0, 0};
    CHECK(select(closed + 1, &r, NULL, NULL, &tv) == -1 && errno == EBADF, "EBADF");
    CHECK(select(-1, NULL, NULL, NULL, &tv) == -1 && errno == EINVAL, "EINVAL");
    close(p[0]);
    close(p[1]);
    printf("select, pselect: readiness, timeouts, EBADF ok\n");
}

static void eventfds(void)
{
    int e = eventfd(2, EFD_NONBLOCK);
    CHECK(e >= 0, "eventfd");
    uint64_t v = 0;
    CHECK(read(e, &v, 8) == 8 && v == 2, "read count");
    CHECK(read(e, &v, 8) == -1 && errno == EAGAIN, "empty");
    CHECK(read(e, &v, 4) == -1 && errno == EINVAL, "short read");
    v = UINT64_MAX;
    CHECK(write(e, &v, 8) == -1 && errno == EINVAL, "write of 2^64-1");
    v = UINT64_MAX - 1;
    CHECK(write(e, &v, 8) == 8, "write max");
    v = 1;
    CHECK(write(e, &v, 8) == -1 && errno == EAGAIN, "overflow");
    close(e);
    e = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
    CHECK(read(e, &v, 8) == 8 && v == 1 && read(e, &v, 8) == 8 && v == 1, "semaphore");
    struct pollfd pf = {.fd = e, .events = POLLIN | POLLOUT};
    CHECK(poll(&pf, 1, 0) == 1 && pf.revents == (POLLIN | POLLOUT), "poll %#x", pf.revents);
    close(e);
    CHECK(eventfd(0, 0x12345) == -1 && errno == EINVAL, "bad flags");
    printf("eventfd: counter, semaphore, limits ok\n");
}

static void epolls(void)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0, "epoll_create1");
    int e = eventfd(0, EFD_NONBLOCK);
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev) == 0, "add eventfd");
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev) == -1 && errno == EEXIST, "EEXIST");
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev) == -1 && errno == ENOENT, "ENOENT");
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev) == -1 && errno == EINVAL, "itself");
    int closed = closed_fd();
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, closed, &ev) == -1 && errno == EBADF, "EBADF");
    ev = (struct epoll_event){.events = EPOLLIN | EPOLLET, .data.u64 = 7};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0, "add pipe, edge-triggered");
    struct epoll_event out[4];
    CHECK(epoll_wait(ep, out, 4, 0) == 0, "nothing ready");
    double t0 = now();
    CHECK(epoll_wait(ep, out, 4, 30) == 0 && now() - t0 >= 0.029, "timeout sleeps");
    uint64_t v = 5;
    CHECK(write(e, &v, 8) == 8, "signal eventfd");
    CHECK(write(p[1], "ab", 2) == 2, "write pipe");
    int n = epoll_wait(ep, out, 4, 1000);
    CHECK(n == 2, "two ready: %d", n);
    uint64_t got = out[0].data.u64 + out[1].data.u64;
    CHECK(got == 49 && out[0].events == EPOLLIN && out[1].events == EPOLLIN, "events");
    /* Level-triggered: still there; edge-triggered: reported once. */
    n = epoll_wait(ep, out, 4, 0);
    CHECK(n == 1 && out[0].data.u64 == 42, "LT again, ET not: %d", n);
    CHECK(read(e, &v, 8) == 8 && v == 5, "drain eventfd");
    CHECK(epoll_wait(ep, out, 4, 0) == 0, "drained");
    /* One-shot: reported once, until MOD re-arms it. */
    ev = (struct epoll_event){.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 42};
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, e, &ev) == 0, "mod oneshot");
    v = 1;
    write(e, &v, 8);
    CHECK(epoll_wait(ep, out, 4, 0) == 1 && epoll_wait(ep, out, 4, 0) == 0, "oneshot");
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, e, &ev) == 0 && epoll_wait(ep, out, 4, 0) == 1, "rearm");
    /* Closing an fd takes it out of the set; EPOLLHUP is always reported. */
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, e, NULL) == 0, "del");
    close(e);
    ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = 7};
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev) == 0, "mod to LT");
    close(p[1]);
    n = epoll_wait(ep, out, 4, 0);
    CHECK(n == 1 && out[0].events == (EPOLLIN | EPOLLHUP), "EPOLLHUP: %d %#x", n, out[0].events);
    close(p[0]);
    CHECK(epoll_wait(ep, out, 4, 0) == 0, "closed fd gone");
    CHECK(epoll_wait(ep, out, 0, 0) == -1 && errno == EINVAL, "maxevents 0");
    /* An epoll fd is pollable. */
    int e2 = eventfd(1, 0);
    ev = (struct epoll_event){.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, e2, &ev);
    struct pollfd pf = {.fd = ep, .events = POLLIN};
    CHECK(poll(&pf, 1, 0) == 1 && pf.revents == POLLIN, "poll on epoll fd");
    close(e2);
    close(ep);
    printf("epoll: LT, ET, ONESHOT, HUP, errors ok\n");
}

int main(void)
{
    pipes();
    selects();
    eventfds();
    epolls();
    printf("posix_wait: ok\n");
    return 0;
}
