/* vsock_api.c: the AF_VSOCK socket calls of the SDK against Linux's rules:
 * return values and errnos of socket, bind, listen, accept, connect, send,
 * recv, shutdown, poll, getsockopt/setsockopt, fcntl and ioctl. The host
 * side (tests/integration/test_faas.c) runs an echo server on the Unix
 * socket <uds>_5001 (it echoes until end of stream, then closes) and
 * nothing on port 5002.
 * Output: one "vsock-api: FAIL ..." line per broken rule, then
 * "vsock-api: N checks, M failed"; exit status 0 if none failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ember/vsock.h>

#define ECHO_PORT   5001u
#define CLOSED_PORT 5002u

static int checks, failed;

/* r must be want (want >= 0), or -1 with errno == -want. */
#define EXPECT(call, want)                                                                         \
    do {                                                                                           \
        long r_ = (long)(call);                                                                    \
        expect_at(__LINE__, #call, r_, errno, (long)(want));                                       \
    } while (0)

static void expect_at(int line, const char *what, long r, int err, long want)
{
    checks++;
    if (want >= 0 ? r == want : (r == -1 && err == -want))
        return;
    failed++;
    if (r == -1)
        printf("vsock-api: FAIL line %d: %s: -1 (%s), wanted %ld (%s)\n", line, what, strerror(err),
               want, want < 0 ? strerror((int)-want) : "success");
    else
        printf("vsock-api: FAIL line %d: %s: %ld, wanted %ld (%s)\n", line, what, r, want,
               want < 0 ? strerror((int)-want) : "success");
}

static void check(int line, const char *what, int ok)
{
    checks++;
    if (!ok) {
        failed++;
        printf("vsock-api: FAIL line %d: %s\n", line, what);
    }
}
#define CHECK(cond) check(__LINE__, #cond, (cond))

static struct sockaddr_vm vm_addr(unsigned cid, unsigned port)
{
    struct sockaddr_vm a;
    memset(&a, 0, sizeof(a));
    a.svm_family = AF_VSOCK;
    a.svm_cid = cid;
    a.svm_port = port;
    return a;
}

static int opt_int(int s, int level, int name)
{
    int v = -12345;
    socklen_t len = sizeof(v);
    if (getsockopt(s, level, name, &v, &len) != 0)
        return -1000 - errno;
    return v;
}

/* Reads until end of stream (blocking socket). */
static size_t read_all(int s, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;
    while (n < cap && (r = read(s, buf + n, cap - n)) > 0)
        n += (size_t)r;
    return n;
}

static void creation(void)
{
    EXPECT(socket(AF_INET, SOCK_STREAM, 0), -EAFNOSUPPORT);
    EXPECT(socket(AF_VSOCK, SOCK_DGRAM, 0), -ESOCKTNOSUPPORT);
    EXPECT(socket(AF_VSOCK, SOCK_STREAM, 7), -EPROTONOSUPPORT);
    EXPECT(socketpair(AF_VSOCK, SOCK_STREAM, 0, (int[2]){0, 0}), -EOPNOTSUPP);

    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    CHECK(s >= 3);
    struct stat st;
    EXPECT(fstat(s, &st), 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK(opt_int(s, SOL_SOCKET, SO_TYPE) == SOCK_STREAM);
    CHECK(opt_int(s, SOL_SOCKET, SO_DOMAIN) == AF_VSOCK);
    CHECK(opt_int(s, SOL_SOCKET, SO_ERROR) == 0);
    CHECK(opt_int(s, SOL_SOCKET, SO_ACCEPTCONN) == 0);
    int one = 1;
    EXPECT(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    CHECK(opt_int(s, SOL_SOCKET, SO_REUSEADDR) == 1);
    EXPECT(setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)), 0);
    EXPECT(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), -ENOPROTOOPT);
    EXPECT(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &one, sizeof(one)), -EINVAL);
    EXPECT(setsockopt(s, SOL_SOCKET, 9999, &one, sizeof(one)), -ENOPROTOOPT);
    unsigned long long size = 0;
    socklen_t len = sizeof(size);
    EXPECT(getsockopt(s, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &size, &len), 0);
    CHECK(size == 256 * 1024);
    CHECK(opt_int(1, SOL_SOCKET, SO_TYPE) == -1000 - ENOTSOCK);
    CHECK(opt_int(999, SOL_SOCKET, SO_TYPE) == -1000 - EBADF);
    unsigned cid = 0;
    EXPECT(ioctl(s, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid), 0);
    CHECK(cid == ember_vsock_local_cid() && cid >= 3);

    /* Unconnected. */
    char c;
    EXPECT(listen(s, 1), -EINVAL); /* vsock does not bind on listen() */
    EXPECT(recv(s, &c, 1, 0), -ENOTCONN);
    EXPECT(send(s, &c, 1, 0), -ENOTCONN);
    EXPECT(accept(s, NULL, NULL), -EINVAL);
    EXPECT(shutdown(s, SHUT_RDWR), -ENOTCONN);
    struct sockaddr_vm a;
    socklen_t alen = sizeof(a);
    EXPECT(getpeername(s, (struct sockaddr *)&a, &alen), -ENOTCONN);
    EXPECT(close(s), 0);
    EXPECT(close(s), -EBADF);
}

static void binding(void)
{
    int s = socket(AF_VSOCK, SOCK_STREAM, 0), t = socket(AF_VSOCK, SOCK_STREAM, 0);
    struct sockaddr_vm a = vm_addr(VMADDR_CID_ANY, 4000);
    struct sockaddr_in in = {.sin_family = AF_INET};

    EXPECT(bind(s, (struct sockaddr *)&in, sizeof(in)), -EAFNOSUPPORT);
    EXPECT(bind(s, (struct sockaddr *)&a, 8), -EINVAL);
    struct sockaddr_vm bad = vm_addr(99, 4000);
    EXPECT(bind(s, (struct sockaddr *)&bad, sizeof(bad)), -EADDRNOTAVAIL);
    EXPECT(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    EXPECT(bind(s, (struct sockaddr *)&a, sizeof(a)), -EINVAL);
    EXPECT(bind(t, (struct sockaddr *)&a, sizeof(a)), -EADDRINUSE);
    struct sockaddr_vm own = vm_addr(ember_vsock_local_cid(), VMADDR_PORT_ANY);
    EXPECT(bind(t, (struct sockaddr *)&own, sizeof(own)), 0);
    struct sockaddr_vm got;
    socklen_t len = sizeof(got);
    EXPECT(getsockname(t, (struct sockaddr *)&got, &len), 0);
    CHECK(len == sizeof(got) && got.svm_family == AF_VSOCK && got.svm_port > 1023 &&
          got.svm_port != VMADDR_PORT_ANY);
    len = sizeof(got);
    EXPECT(getsockname(s, (struct sockaddr *)&got, &len), 0);
    CHECK(got.svm_port == 4000 && got.svm_cid == VMADDR_CID_ANY);

    EXPECT(listen(s, 4), 0);
    CHECK(opt_int(s, SOL_SOCKET, SO_ACCEPTCONN) == 1);
    /* musl's accept4() retries EINVAL as accept(): ask the kernel directly. */
    EXPECT(syscall(SYS_accept4, s, NULL, NULL, 0x40000000), -EINVAL);
    EXPECT(fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK), 0);
    CHECK(fcntl(s, F_GETFL) & O_NONBLOCK);
    EXPECT(accept(s, NULL, NULL), -EAGAIN);
    struct pollfd p = {.fd = s, .events = POLLIN};
    EXPECT(poll(&p, 1, 10), 0); /* nobody connects: the timeout */
    struct sockaddr_vm host = vm_addr(VMADDR_CID_HOST, ECHO_PORT);
    EXPECT(connect(s, (struct sockaddr *)&host, sizeof(host)), -EINVAL);
    EXPECT(close(s), 0);
    EXPECT(close(t), 0);
    /* The port is free again. */
    s = socket(AF_VSOCK, SOCK_STREAM, 0);
    EXPECT(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    EXPECT(close(s), 0);
}

static void connecting(void)
{
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    struct sockaddr_vm other = vm_addr(5, 1234), closed = vm_addr(VMADDR_CID_HOST, CLOSED_PORT);
    struct sockaddr_vm echo = vm_addr(VMADDR_CID_HOST, ECHO_PORT);

    EXPECT(connect(s, (struct sockaddr *)&other, sizeof(other)), -ENODEV);
    EXPECT(connect(s, (struct sockaddr *)&closed, sizeof(closed)), -ECONNRESET);
    /* After a refused connect the socket may try again. */
    EXPECT(connect(s, (struct sockaddr *)&echo, sizeof(echo)), 0);
    EXPECT(connect(s, (struct sockaddr *)&echo, sizeof(echo)), -EISCONN);
    struct sockaddr_vm peer;
    socklen_t len = sizeof(peer);
    EXPECT(getpeername(s, (struct sockaddr *)&peer, &len), 0);
    CHECK(peer.svm_cid == VMADDR_CID_HOST && peer.svm_port == ECHO_PORT);
    EXPECT(sendto(s, "x", 1, 0, (struct sockaddr *)&echo, sizeof(echo)), -EISCONN);
    EXPECT(send(s, "x", 1, MSG_OOB), -EOPNOTSUPP);
    EXPECT(write(s, "hello ", 6), 6);
    struct iovec iov[2] = {{"vsock", 5}, {" world", 6}};
    EXPECT(writev(s, iov, 2), 11);
    char buf[64];
    /* Wait for the echo with poll, then peek, FIONREAD, read. */
    struct pollfd p = {.fd = s, .events = POLLIN};
    int avail = 0;
    while (avail < 17 && poll(&p, 1, 5000) == 1 && ioctl(s, FIONREAD, &avail) == 0)
        if (avail < 17)
            usleep(1000);
    CHECK(avail == 17);
    EXPECT(recv(s, buf, 5, MSG_PEEK), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    EXPECT(recv(s, buf, 6, MSG_WAITALL), 6);
    EXPECT(read(s, buf, sizeof(buf)), 11);
    CHECK(memcmp(buf, "vsock world", 11) == 0);
    /* No more data for a while: SO_RCVTIMEO ends the wait. */
    struct timeval tv = {0, 20000};
    EXPECT(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    EXPECT(read(s, buf, sizeof(buf)), -EAGAIN);
    EXPECT(recv(s, buf, sizeof(buf), MSG_DONTWAIT), -EAGAIN);
    /* Our end of stream: the server echoes what is left and closes. */
    EXPECT(write(s, "bye", 3), 3);
    EXPECT(shutdown(s, SHUT_WR), 0);
    EXPECT(write(s, "x", 1), -EPIPE);
    tv.tv_usec = 0;
    EXPECT(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    size_t n = read_all(s, buf, sizeof(buf));
    CHECK(n == 3 && memcmp(buf, "bye", 3) == 0);
    EXPECT(read(s, buf, sizeof(buf)), 0);
    EXPECT(shutdown(s, 7), -EINVAL);
    EXPECT(close(s), 0);
}

/* dup, dup2 and F_DUPFD on a connection: one socket behind every fd, which
 * stays connected until the last of them is closed. */
static void duplicated(void)
{
    struct sockaddr_vm echo = vm_addr(VMADDR_CID_HOST, ECHO_PORT);
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    char buf[16];

    EXPECT(connect(s, (struct sockaddr *)&echo, sizeof(echo)), 0);
    int d = dup(s);
    CHECK(d >= 0);
    EXPECT(close(s), 0);
    EXPECT(write(d, "dup", 3), 3); /* still connected: the close was not the last */
    CHECK(read_all(d, buf, 3) == 3 && memcmp(buf, "dup", 3) == 0);
    int e = socket(AF_VSOCK, SOCK_STREAM, 0);
    EXPECT(dup2(d, e), e); /* closes the unconnected socket e named */
    struct sockaddr_vm peer;
    socklen_t len = sizeof(peer);
    EXPECT(getpeername(e, (struct sockaddr *)&peer, &len), 0);
    CHECK(peer.svm_port == ECHO_PORT);
    int c = fcntl(e, F_DUPFD_CLOEXEC, 0);
    CHECK(c >= 0 && fcntl(c, F_GETFD) == FD_CLOEXEC && fcntl(e, F_GETFD) == 0);
    EXPECT(fcntl(c, F_SETFL, O_NONBLOCK), 0);
    EXPECT(read(d, buf, sizeof(buf)), -EAGAIN); /* O_NONBLOCK is the socket's, for all fds */
    EXPECT(fcntl(c, F_SETFL, 0), 0);
    EXPECT(close(c), 0);
    EXPECT(close(d), 0);
    EXPECT(write(e, "last", 4), 4);
    EXPECT(shutdown(e, SHUT_WR), 0);
    size_t n = read_all(e, buf, sizeof(buf));
    CHECK(n == 4 && memcmp(buf, "last", 4) == 0);
    EXPECT(close(e), 0);
    EXPECT(close(e), -EBADF);
}

static void nonblocking(void)
{
    struct sockaddr_vm echo = vm_addr(VMADDR_CID_HOST, ECHO_PORT);
    struct sockaddr_vm closed = vm_addr(VMADDR_CID_HOST, CLOSED_PORT);
    int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int t = socket(AF_VSOCK, SOCK_STREAM, 0);
    int u = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK, 0);
    char buf[16];

    EXPECT(connect(s, (struct sockaddr *)&echo, sizeof(echo)), -EINPROGRESS);
    EXPECT(connect(u, (struct sockaddr *)&closed, sizeof(closed)), -EINPROGRESS);
    EXPECT(connect(t, (struct sockaddr *)&echo, sizeof(echo)), 0);
    struct pollfd p = {.fd = s, .events = POLLOUT};
    EXPECT(poll(&p, 1, 5000), 1);
    CHECK(p.revents == POLLOUT);
    CHECK(opt_int(s, SOL_SOCKET, SO_ERROR) == 0);
    p = (struct pollfd){.fd = u, .events = POLLOUT};
    EXPECT(poll(&p, 1, 5000), 1);
    CHECK(p.revents & POLLERR);
    CHECK(opt_int(u, SOL_SOCKET, SO_ERROR) == ECONNRESET);
    CHECK(opt_int(u, SOL_SOCKET, SO_ERROR) == 0); /* reading SO_ERROR clears it */

    /* poll() across sockets: only the one that got data is readable. */
    EXPECT(read(s, buf, sizeof(buf)), -EAGAIN);
    EXPECT(write(t, "ping", 4), 4);
    struct pollfd ps[3] = {
        {.fd = s, .events = POLLIN}, {.fd = t, .events = POLLIN}, {.fd = -1, .events = POLLIN}};
    EXPECT(poll(ps, 3, 5000), 1);
    CHECK(ps[0].revents == 0 && ps[1].revents == POLLIN && ps[2].revents == 0);
    EXPECT(read(t, buf, sizeof(buf)), 4);
    EXPECT(write(s, "pong", 4), 4);
    ps[0].revents = ps[1].revents = 0;
    EXPECT(poll(ps, 2, 5000), 1);
    CHECK(ps[0].revents == POLLIN && ps[1].revents == 0);
    EXPECT(recv(s, buf, sizeof(buf), 0), 4);
    CHECK(memcmp(buf, "pong", 4) == 0);
    /* The server closes after our end of stream: POLLIN, then 0. */
    EXPECT(shutdown(s, SHUT_WR), 0);
    ps[0] = (struct pollfd){.fd = s, .events = POLLIN};
    EXPECT(poll(ps, 1, 5000), 1);
    CHECK(ps[0].revents & POLLIN);
    EXPECT(read(s, buf, sizeof(buf)), 0);
    int on = 0;
    EXPECT(ioctl(t, FIONBIO, &on), 0);
    CHECK(!(fcntl(t, F_GETFL) & O_NONBLOCK));
    EXPECT(close(s), 0);
    EXPECT(close(t), 0);
    EXPECT(close(u), 0);
}

int main(void)
{
    creation();
    binding();
    connecting();
    duplicated();
    nonblocking();
    printf("vsock-api: %d checks, %d failed\n", checks, failed);
    return failed ? 1 : 0;
}
