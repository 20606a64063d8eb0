/* sys_socket.c: the socket system calls (socket, bind, listen, accept,
 * accept4, connect, sendto, recvfrom, sendmsg, recvmsg, shutdown,
 * getsockname, getpeername, setsockopt, getsockopt, socketpair) and the file
 * operations of a socket fd (read, write, readv, writev, close, fstat, ioctl,
 * fcntl flags, poll).
 *
 * This layer only checks and copies what the application passes (addresses
 * and lengths, with Linux's EFAULT/EINVAL rules) and finds the socket behind
 * an fd; the sockets themselves are vsock_sock.c (AF_VSOCK) and, for
 * AF_INET, net_sock.c (which gets every call on its fds). socket() of any
 * other family is EAFNOSUPPORT, as on a Linux kernel built without it.
 *
 * ember_syscall_direct() (<ember/vsock.h>) enters ember_syscall() without
 * the `syscall` instruction; the FaaS runtime uses it for its socket calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <ember/vsock.h>

#include "net/net_sock.h"
#include "posix/sys_fd.h"
#include "posix/sys_socket.h"
#include "sdk.h"
#include "vsock/vsock_dev.h"
#include "vsock/vsock_sock.h"

static const struct fd_ops sock_ops;

/* The socket behind fd, or NULL with *err = -EBADF / -ENOTSOCK. */
static struct vsk *sock_of(int fd, long *err)
{
    struct fd_entry *e = fd_get(fd);

    *err = -EBADF;
    if (!e)
        return NULL;
    if (e->ops != &sock_ops) {
        *err = -ENOTSOCK;
        return NULL;
    }
    vsk_set_nonblock(e->priv, (e->flags & O_NONBLOCK) != 0);
    return e->priv;
}

static long new_fd(struct vsk *s, int flags)
{
    return fd_alloc_flags(&sock_ops, s, O_RDWR | (flags & SOCK_NONBLOCK ? O_NONBLOCK : 0),
                          flags & SOCK_CLOEXEC ? FD_CLOEXEC : 0);
}

/* A sockaddr from the application. */
static long addr_in(uintptr_t p, uint64_t len, struct sockaddr_vm *a)
{
    if (len > 128)
        return -EINVAL;
    if (len < sizeof(*a)) {
        if (len >= sizeof(sa_family_t) && user_range_ok(p, len) &&
            *(const sa_family_t *)p != AF_VSOCK)
            return -EAFNOSUPPORT;
        return -EINVAL;
    }
    if (!user_range_ok(p, sizeof(*a)))
        return -EFAULT;
    sdk_memcpy(a, (const void *)p, sizeof(*a));
    return 0;
}

/* A sockaddr to the application: as much as fits in *lenp, then the real
 * length in *lenp. Both may be 0 (not wanted). */
static long addr_out(uintptr_t p, uintptr_t lenp, const struct sockaddr_vm *a)
{
    if (!p)
        return 0;
    if (!user_range_ok(lenp, sizeof(socklen_t)))
        return -EFAULT;
    int len = *(const int *)lenp;
    if (len < 0)
        return -EINVAL;
    uint32_t n = (uint32_t)len < sizeof(*a) ? (uint32_t)len : sizeof(*a);
    if (n && !user_range_ok(p, n))
        return -EFAULT;
    sdk_memcpy((void *)p, a, n);
    *(socklen_t *)lenp = sizeof(*a);
    return 0;
}

/* Checks an iovec array and every buffer in it. */
static long iov_check(const struct iovec *iov, uint64_t n)
{
    if (n > UIO_MAXIOV)
        return -EINVAL;
    if (n && !user_range_ok((uintptr_t)iov, n * sizeof(*iov)))
        return -EFAULT;
    for (uint64_t i = 0; i < n; i++)
        if (iov[i].iov_len && !user_range_ok((uintptr_t)iov[i].iov_base, iov[i].iov_len))
            return -EFAULT;
    return 0;
}

static long sock_recv(int fd, const struct iovec *iov, uint64_t n, int flags)
{
    long err;
    struct vsk *s = sock_of(fd, &err);

    if (!s)
        return err;
    if ((err = iov_check(iov, n)) != 0)
        return err;
    return vsk_recv(s, iov, n, flags);
}

static long sock_send(int fd, const struct iovec *iov, uint64_t n, int flags)
{
    long err;
    struct vsk *s = sock_of(fd, &err);

    if (!s)
        return err;
    if ((err = iov_check(iov, n)) != 0)
        return err;
    return vsk_send(s, iov, n, flags);
}

static long sys_socket(int domain, int type, int protocol)
{
    struct vsk *s;

    if (domain == AF_INET)
        return net_sys_socket(type, protocol);
    if (domain != AF_VSOCK)
        return domain < 0 || domain >= 46 ? -EINVAL : -EAFNOSUPPORT;
    long r = vsk_create(type, protocol, &s);
    if (r)
        return r;
    r = new_fd(s, type);
    if (r < 0)
        vsk_close(s);
    return r;
}

static long sys_accept4(int fd, uintptr_t addr, uintptr_t lenp, int flags)
{
    long err;
    struct vsk *s = sock_of(fd, &err), *c;
    struct sockaddr_vm peer;

    if (!s)
        return err;
    if (addr && !user_range_ok(lenp, sizeof(socklen_t)))
        return -EFAULT;
    long r = vsk_accept(s, flags, &c, &peer);
    if (r)
        return r;
    long nfd = new_fd(c, flags);
    if (nfd < 0) {
        vsk_unaccept(s, c);
        return nfd;
    }
    if ((r = addr_out(addr, lenp, &peer)) != 0)
        return r; /* Linux too keeps the new fd then */
    return nfd;
}

static long sys_name(int fd, uintptr_t addr, uintptr_t lenp, bool peer)
{
    long err;
    struct vsk *s = sock_of(fd, &err);
    struct sockaddr_vm a;

    if (!s)
        return err;
    long r = vsk_getname(s, peer, &a);
    if (r)
        return r;
    if (!addr)
        return -EFAULT;
    return addr_out(addr, lenp, &a);
}

static long sys_sendto(int fd, const void *buf, uint64_t len, int flags, uintptr_t addr,
                       uint64_t alen)
{
    struct iovec iov = {(void *)buf, len};
    long err;
    struct vsk *s = sock_of(fd, &err);

    if (!s)
        return err;
    if (addr && alen) {
        struct sockaddr_vm a;
        long r = vsk_getname(s, true, &a);
        return r == 0 ? -EISCONN : -EOPNOTSUPP; /* streams take no address */
    }
    return sock_send(fd, &iov, 1, flags);
}

static long sys_recvfrom(int fd, void *buf, uint64_t len, int flags, uintptr_t addr, uintptr_t lenp)
{
    struct iovec iov = {buf, len};
    long r = sock_recv(fd, &iov, 1, flags);

    if (r >= 0 && addr && lenp) {
        /* A stream has no source address: Linux reports length 0. */
        if (!user_range_ok(lenp, sizeof(socklen_t)))
            return -EFAULT;
        *(socklen_t *)lenp = 0;
    }
    return r;
}

static long sys_msg(int fd, struct msghdr *m, int flags, bool send)
{
    if (!user_range_ok((uintptr_t)m, sizeof(*m)))
        return -EFAULT;
    struct msghdr k = *m;
    if (send && k.msg_name && k.msg_namelen) {
        long err;
        struct vsk *s = sock_of(fd, &err);
        struct sockaddr_vm a;
        if (!s)
            return err;
        return vsk_getname(s, true, &a) == 0 ? -EISCONN : -EOPNOTSUPP;
    }
    if (k.msg_iovlen > UIO_MAXIOV)
        return -EMSGSIZE;
    long r = send ? sock_send(fd, k.msg_iov, k.msg_iovlen, flags)
                  : sock_recv(fd, k.msg_iov, k.msg_iovlen, flags);
    if (r >= 0 && !send) {
        m->msg_namelen = 0;
        m->msg_controllen = 0;
        m->msg_flags = 0;
    }
    return r;
}

static long sys_setsockopt(int fd, int level, int name, uintptr_t val, uint64_t len)
{
    long err;
    struct vsk *s = sock_of(fd, &err);
    uint8_t buf[64];

    if (!s)
        return err;
    if ((int)len < 0)
        return -EINVAL;
    if (len > sizeof(buf))
        len = sizeof(buf); /* no option is larger */
    if (len && !user_range_ok(val, len))
        return -EFAULT;
    sdk_memcpy(buf, (const void *)val, len);
    return vsk_setsockopt(s, level, name, buf, (uint32_t)len);
}

static long sys_getsockopt(int fd, int level, int name, uintptr_t val, uintptr_t lenp)
{
    long err;
    struct vsk *s = sock_of(fd, &err);
    uint8_t buf[64];

    if (!s)
        return err;
    if (!user_range_ok(lenp, sizeof(socklen_t)))
        return -EFAULT;
    int len = *(const int *)lenp;
    if (len < 0)
        return -EINVAL;
    uint32_t n = (uint32_t)len > sizeof(buf) ? sizeof(buf) : (uint32_t)len;
    long r = vsk_getsockopt(s, level, name, buf, &n);
    if (r)
        return r;
    if (n && !user_range_ok(val, n))
        return -EFAULT;
    sdk_memcpy((void *)val, buf, n);
    *(socklen_t *)lenp = n;
    return 0;
}

long ember_sys_socketcall(struct ember_syscall_frame *f)
{
    uint64_t a0 = f->rdi, a1 = f->rsi, a2 = f->rdx, a3 = f->r10, a4 = f->r8, a5 = f->r9;
    int fd = (int)a0;
    long err;
    struct vsk *s;
    struct sockaddr_vm a;

    if (f->nr != SYS_socket && f->nr != SYS_socketpair && net_sock_is(fd))
        return net_sys_socketcall(f); /* AF_INET: net_sock.c */
    switch (f->nr) {
    case SYS_socket:
        return sys_socket((int)a0, (int)a1, (int)a2);
    case SYS_socketpair:
        return (int)a0 == AF_VSOCK ? -EOPNOTSUPP : -EAFNOSUPPORT;
    case SYS_bind:
    case SYS_connect:
        if (!(s = sock_of(fd, &err)))
            return err;
        if ((err = addr_in(a1, a2, &a)) != 0)
            return err;
        return f->nr == SYS_bind ? vsk_bind(s, &a) : vsk_connect(s, &a);
    case SYS_listen:
        if (!(s = sock_of(fd, &err)))
            return err;
        return vsk_listen(s, (int)a1);
    case SYS_accept:
        return sys_accept4(fd, a1, a2, 0);
    case SYS_accept4:
        return sys_accept4(fd, a1, a2, (int)a3);
    case SYS_sendto:
        return sys_sendto(fd, (const void *)a1, a2, (int)a3, a4, a5);
    case SYS_recvfrom:
        return sys_recvfrom(fd, (void *)a1, a2, (int)a3, a4, a5);
    case SYS_sendmsg:
        return sys_msg(fd, (struct msghdr *)a1, (int)a2, true);
    case SYS_recvmsg:
        return sys_msg(fd, (struct msghdr *)a1, (int)a2, false);
    case SYS_shutdown:
        if (!(s = sock_of(fd, &err)))
            return err;
        return vsk_shutdown(s, (int)a1);
    case SYS_getsockname:
        return sys_name(fd, a1, a2, false);
    case SYS_getpeername:
        return sys_name(fd, a1, a2, true);
    case SYS_setsockopt:
        return sys_setsockopt(fd, (int)a1, (int)a2, a3, a4);
    case SYS_getsockopt:
        return sys_getsockopt(fd, (int)a1, (int)a2, a3, a4);
    default:
        return -ENOSYS;
    }
}

long ember_syscall_direct(long nr, long a0, long a1, long a2, long a3, long a4, long a5)
{
    struct ember_syscall_frame f = {
        .nr = (uint64_t)nr,
        .rdi = (uint64_t)a0,
        .rsi = (uint64_t)a1,
        .rdx = (uint64_t)a2,
        .r10 = (uint64_t)a3,
        .r8 = (uint64_t)a4,
        .r9 = (uint64_t)a5,
    };
    return ember_syscall(&f);
}

unsigned int ember_vsock_local_cid(void)
{
    return vsock_dev_start() == 0 ? (unsigned)vsock_dev_cid() : 0;
}

/* ---- file operations of a socket fd ------------------------------------------ */

static struct vsk *entry_sock(struct fd_entry *e)
{
    struct vsk *s = e->priv;
    vsk_set_nonblock(s, (e->flags & O_NONBLOCK) != 0);
    return s;
}

static long sock_read(struct fd_entry *e, void *buf, size_t len)
{
    struct iovec iov = {buf, len};
    return vsk_recv(entry_sock(e), &iov, 1, 0);
}

static long sock_write(struct fd_entry *e, const void *buf, size_t len)
{
    struct iovec iov = {(void *)buf, len};
    return vsk_send(entry_sock(e), &iov, 1, MSG_NOSIGNAL);
}

static long sock_readv(struct fd_entry *e, const struct iovec *iov, int cnt)
{
    return vsk_recv(entry_sock(e), iov, (size_t)cnt, 0);
}

static long sock_writev(struct fd_entry *e, const struct iovec *iov, int cnt)
{
    return vsk_send(entry_sock(e), iov, (size_t)cnt, MSG_NOSIGNAL);
}

static long sock_fstat(struct fd_entry *e, struct stat *st)
{
    (void)e;
    sdk_memset(st, 0, sizeof(*st));
    st->st_mode = S_IFSOCK | 0777;
    st->st_nlink = 1;
    st->st_blksize = 4096;
    return 0;
}

static long sock_ioctl(struct fd_entry *e, unsigned long req, uintptr_t arg)
{
    if (!user_range_ok(arg, sizeof(int)))
        return -EFAULT;
    long r = vsk_ioctl(entry_sock(e), req, (void *)arg);
    if (r == 0 && req == FIONBIO)
        e->flags = *(const int *)arg ? e->flags | O_NONBLOCK : e->flags & ~O_NONBLOCK;
    return r;
}

static int sock_poll_ready(struct fd_entry *e)
{
    vsk_service();
    return (int)vsk_poll(e->priv);
}

static long sock_shutdown(struct fd_entry *e, int how)
{
    return vsk_shutdown(entry_sock(e), how);
}

static void sock_poll_arm(struct fd_entry *e, int on)
{
    (void)e;
    vsock_dev_arm(on != 0);
}

static long sock_close(struct fd_entry *e)
{
    vsk_close(e->priv);
    return 0;
}

static const struct fd_ops sock_ops = {
    .kind = "vsock",
    .read = sock_read,
    .write = sock_write,
    .readv = sock_readv,
    .writev = sock_writev,
    .fstat = sock_fstat,
    .ioctl = sock_ioctl,
    .poll_ready = sock_poll_ready,
    .shutdown = sock_shutdown,
    .close = sock_close,
    .poll_arm = sock_poll_arm,
};
