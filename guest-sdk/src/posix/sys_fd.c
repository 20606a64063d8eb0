/* sys_fd.c: the file-descriptor table and the fd system calls.
 *
 * An fd is a slot that names an open file (struct fd_entry, sys_fd.h: an
 * ops table plus a driver's private pointer, the status flags, the
 * position) and holds its own FD_CLOEXEC. dup, dup2, dup3 and
 * fcntl(F_DUPFD, F_DUPFD_CLOEXEC) make another slot name the same file, as
 * Linux shares an open file description between the fds dup'ed from one
 * another: they share the position and O_APPEND/O_NONBLOCK, not
 * FD_CLOEXEC. A file counts its fds, and its close op runs when the last
 * one is closed (a pipe's end, a socket, a file's hold on its inode), so no
 * driver needs to know about dup. New fds are the lowest free ones, 0-2
 * included once closed: `close(1); open(...)` redirects stdout, as a shell
 * does.
 *
 * fds 0-2 name the console (sys_console.c) at boot; until one of them is
 * closed or replaced, writes to 1 and 2 reach the console without the
 * table (fd_std_changed, sys_dispatch.c). The calls below check the
 * arguments a Linux kernel checks (EBADF, EFAULT, EINVAL), then call the
 * op, or answer what Linux answers for a file that cannot do it when the
 * op is NULL (ESPIPE for pread on a socket, ENOTTY for an unknown ioctl,
 * ...).
 *
 * The table (FD_MAX slots, and as many open files) is allocated when first
 * needed: a guest that opens, closes and dups nothing touches no page of
 * it. This runs in the system-call path: at CPL0 on hardware, at CPL3 on
 * kvm_pvm, on the small system-call stack (cpu_defs.h), so frames stay
 * small.
 *
 * poll/ppoll test every fd's poll_ready() and, if nothing is ready, wait
 * with ember_sig_wait() (sys_signal.c): when a polled fd is a device's,
 * ember_wait_armed() (cpu_irq.c) spins, then hlts until an interrupt, tests
 * again, until the timeout; otherwise nothing but time can change the
 * answer and the guest sleeps on the host. A signal to deliver ends the
 * wait with EINTR. select (sys_select.c) and epoll (sys_epoll.c) use the
 * same pieces: fd_poll_events(), fd_poll_can_wake(), fd_poll_arm().
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "arch/cpu_irq.h"
#include "fs/fs_vfs.h"
#include "posix/sys_console.h"
#include "posix/sys_fd.h"
#include "posix/sys_signal.h"
#include "sdk.h"

#define IOV_MAX_LINUX 1024
#define RW_MAX        0x7ffff000l /* Linux's cap on one transfer */

/* RLIMIT_NOFILE's soft limit (sys_rlimit.c): new fds are below it. */
int fd_nofile = FD_MAX;
static uint64_t serials; /* the last open file's fd_entry.serial */

struct fd_slot {
    struct fd_entry *file; /* NULL: the fd is not open */
    int fdflags;           /* FD_CLOEXEC: this fd's own */
};

/* The console as fds 0-2 name it at boot: three files, not in the pool. */
static struct fd_entry console[3] = {
    {.ops = &console_in_ops, .flags = O_RDWR, .refs = 1},
    {.ops = &console_out_ops,
     .priv = (void *)(uintptr_t)EMBER_CONSOLE_STDOUT,
     .flags = O_RDWR,
     .refs = 1},
    {.ops = &console_out_ops,
     .priv = (void *)(uintptr_t)EMBER_CONSOLE_STDERR,
     .flags = O_RDWR,
     .refs = 1},
};

/* fd i's slot next to open file i (ops NULL: free): the few fds a function
 * uses, and the files they name (a new file takes the one at its fd's index
 * when it can), share the table's first page instead of touching two. */
struct fd_row {
    struct fd_slot slot;
    struct fd_entry file;
};
static struct fd_row *rows; /* FD_MAX, NULL until first needed */

/* Makes the table; fds 0-2 name the console. 0 or -ENOMEM. */
static int table_ready(void)
{
    if (rows)
        return 0;
    size_t bytes = ALIGN_UP(FD_MAX * sizeof(*rows), PAGE_SIZE);
    long p = ember_sys_mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p < 0)
        return -ENOMEM;
    rows = (struct fd_row *)p;
    for (int fd = 0; fd < 3; fd++)
        rows[fd].slot.file = &console[fd];
    return 0;
}

/* The slot of open fd, or NULL with *err = -EBADF (or -ENOMEM: the table
 * could not be made for one of fds 0-2). Makes the table: for the calls
 * that change slots or read FD_CLOEXEC. */
static struct fd_slot *open_slot(int fd, long *err)
{
    *err = -EBADF;
    if (fd < 0 || fd >= FD_MAX || (!rows && fd >= 3))
        return NULL;
    if (table_ready()) {
        *err = -ENOMEM;
        return NULL;
    }
    return rows[fd].slot.file ? &rows[fd].slot : NULL;
}

static int lowest_free(int from)
{
    for (int fd = from; fd < fd_nofile; fd++) {
        if (!rows[fd].slot.file)
            return fd;
    }
    return -EMFILE;
}

/* fd (free) names f from now on. */
static void install(int fd, struct fd_entry *f, int fdflags)
{
    rows[fd].slot = (struct fd_slot){.file = f, .fdflags = fdflags & FD_CLOEXEC};
    if (fd < 3)
        fd_std_changed = true;
}

static void uninstall(int fd)
{
    rows[fd].slot = (struct fd_slot){0};
    if (fd < 3)
        fd_std_changed = true;
}

static bool in_pool(const struct fd_entry *f)
{
    return (const char *)f >= (const char *)rows && (const char *)f < (const char *)(rows + FD_MAX);
}

/* One fd less names f; the last one closes it (the result of its close
 * op). */
static long put_file(struct fd_entry *f)
{
    if (--f->refs > 0)
        return 0;
    long r = f->ops->close ? f->ops->close(f) : 0;
    if (in_pool(f))
        *f = (struct fd_entry){0};
    return r;
}

int fd_alloc_flags(const struct fd_ops *ops, void *priv, int flags, int fdflags)
{
    if (table_ready())
        return -ENOMEM;
    int fd = lowest_free(0);
    if (fd < 0)
        return fd;
    /* There are as many files as fds, and each file has an fd: one is
     * free. The one at fd's index usually is. A file whose close op is
     * running (refs 0, ops still set) is not free yet. */
    struct fd_entry *f = NULL;
    for (int i = 0; i < FD_MAX && !f; i++) {
        struct fd_entry *c = &rows[(fd + i) % FD_MAX].file;
        if (!c->ops)
            f = c;
    }
    if (!f)
        return -ENFILE;
    *f =
        (struct fd_entry){.ops = ops, .priv = priv, .flags = flags, .refs = 1, .serial = ++serials};
    install(fd, f, fdflags);
    return fd;
}

int fd_alloc(const struct fd_ops *ops, void *priv)
{
    return fd_alloc_flags(ops, priv, 0, 0);
}

struct fd_entry *fd_get(int fd)
{
    if (fd < 0 || fd >= FD_MAX)
        return NULL;
    if (!rows)
        return fd < 3 ? &console[fd] : NULL;
    return rows[fd].slot.file;
}

void fd_free(int fd)
{
    long err;
    struct fd_slot *s = open_slot(fd, &err);
    if (!s)
        return;
    struct fd_entry *f = s->file;
    uninstall(fd);
    if (--f->refs == 0 && in_pool(f))
        *f = (struct fd_entry){0};
}

static int readable(const struct fd_entry *f)
{
    return (f->flags & O_ACCMODE) != O_WRONLY;
}

static int writable(const struct fd_entry *f)
{
    return (f->flags & O_ACCMODE) != O_RDONLY;
}

static int buf_ok(const void *p, size_t len)
{
    return len == 0 || user_range_ok((uintptr_t)p, len);
}

long fd_sys_read(int fd, void *buf, size_t len)
{
    struct fd_entry *f = fd_get(fd);
    if (!f || !readable(f))
        return -EBADF;
    if (!buf_ok(buf, len))
        return -EFAULT;
    if (len > RW_MAX)
        len = RW_MAX;
    return f->ops->read ? f->ops->read(f, buf, len) : -EINVAL;
}

long fd_sys_write(int fd, const void *buf, size_t len)
{
    struct fd_entry *f = fd_get(fd);
    if (!f || !writable(f))
        return -EBADF;
    if (!buf_ok(buf, len))
        return -EFAULT;
    if (len > RW_MAX)
        len = RW_MAX;
    return f->ops->write ? f->ops->write(f, buf, len) : -EINVAL;
}

static long iov_check(const struct iovec *iov, long cnt)
{
    if (cnt < 0 || cnt > IOV_MAX_LINUX)
        return -EINVAL;
    if (!buf_ok(iov, (size_t)cnt * sizeof(*iov)))
        return -EFAULT;
    uint64_t total = 0;
    for (long i = 0; i < cnt; i++) {
        if (!buf_ok(iov[i].iov_base, iov[i].iov_len))
            return -EFAULT;
        total += iov[i].iov_len;
        if (total > (uint64_t)RW_MAX)
            return -EINVAL;
    }
    return 0;
}

long fd_sys_readv(int fd, const struct iovec *iov, long cnt)
{
    struct fd_entry *f = fd_get(fd);
    if (!f || !readable(f))
        return -EBADF;
    long r = iov_check(iov, cnt);
    if (r)
        return r;
    if (f->ops->readv)
        return f->ops->readv(f, iov, (int)cnt);
    if (!f->ops->read)
        return -EINVAL;
    long done = 0;
    for (long i = 0; i < cnt; i++) {
        if (iov[i].iov_len == 0)
            continue;
        r = f->ops->read(f, iov[i].iov_base, iov[i].iov_len);
        if (r < 0)
            return done ? done : r;
        done += r;
        if ((size_t)r < iov[i].iov_len)
            break;
    }
    return done;
}

long fd_sys_writev(int fd, const struct iovec *iov, long cnt)
{
    struct fd_entry *f = fd_get(fd);
    if (!f || !writable(f))
        return -EBADF;
    long r = iov_check(iov, cnt);
    if (r)
        return r;
    if (f->ops->writev)
        return f->ops->writev(f, iov, (int)cnt);
    if (!f->ops->write)
        return -EINVAL;
    long done = 0;
    for (long i = 0; i < cnt; i++) {
        if (iov[i].iov_len == 0)
            continue;
        r = f->ops->write(f, iov[i].iov_base, iov[i].iov_len);
        if (r < 0)
            return done ? done : r;
        done += r;
        if ((size_t)r < iov[i].iov_len)
            break;
    }
    return done;
}

long fd_sys_pread(int fd, void *buf, size_t len, int64_t off)
{
    struct fd_entry *f = fd_get(fd);
    if (!f || !readable(f))
        return -EBADF;
    if (!f->ops->pread)
        return -ESPIPE;
    if (off < 0)
        return -EINVAL;
    if (!buf_ok(buf, len))
        return -EFAULT;
    if (len > RW_MAX)
        len = RW_MAX;
    return f->ops->pread(f, buf, len, off);
}

long fd_sys_pwrite(int fd, const void *buf, size_t len, int64_t off)
{
    struct fd_entry *f = fd_get(fd);
    if (!f || !writable(f))
        return -EBADF;
    if (!f->ops->pwrite)
        return -ESPIPE;
    if (off < 0)
        return -EINVAL;
    if (!buf_ok(buf, len))
        return -EFAULT;
    if (len > RW_MAX)
        len = RW_MAX;
    return f->ops->pwrite(f, buf, len, off);
}

long fd_sys_lseek(int fd, int64_t off, int whence)
{
    struct fd_entry *f = fd_get(fd);
    if (!f)
        return -EBADF;
    return f->ops->lseek ? f->ops->lseek(f, off, whence) : -ESPIPE;
}

long fd_sys_fstat(int fd, struct stat *st)
{
    struct fd_entry *f = fd_get(fd);
    if (!f)
        return -EBADF;
    if (!user_range_ok((uintptr_t)st, sizeof(*st)))
        return -EFAULT;
    sdk_memset(st, 0, sizeof(*st));
    st->st_nlink = 1;
    st->st_blksize = PAGE_SIZE;
    return f->ops->fstat ? f->ops->fstat(f, st) : 0;
}

long fd_sys_ioctl(int fd, unsigned long req, uintptr_t arg)
{
    struct fd_entry *f = fd_get(fd);
    if (!f)
        return -EBADF;
    /* Linux takes the request as an unsigned int; musl passes an int,
     * which arrives sign-extended (BLKGETSIZE64 has bit 31 set). */
    req = (unsigned int)req;
    return f->ops->ioctl ? f->ops->ioctl(f, req, arg) : -ENOTTY;
}

long fd_sys_fsync(int fd, int datasync)
{
    struct fd_entry *f = fd_get(fd);
    if (!f)
        return -EBADF;
    return f->ops->fsync ? f->ops->fsync(f, datasync) : -EINVAL;
}

long fd_sys_close(int fd)
{
    long err;
    struct fd_slot *s = open_slot(fd, &err);
    if (!s)
        return err;
    struct fd_entry *f = s->file;
    uninstall(fd); /* as Linux: the fd is gone even if close reports an error */
    return put_file(f);
}

/* A new fd >= from for the file oldfd names (dup, F_DUPFD). */
static long dup_from(int oldfd, int from, int fdflags)
{
    long err;
    struct fd_slot *s = open_slot(oldfd, &err);
    if (!s)
        return err;
    int fd = lowest_free(from);
    if (fd < 0)
        return fd;
    s->file->refs++;
    install(fd, s->file, fdflags);
    return fd;
}

long fd_sys_dup(int oldfd)
{
    return dup_from(oldfd, 0, 0);
}

long fd_sys_dup3(int oldfd, int newfd, int flags)
{
    /* Linux's order (fs/file.c ksys_dup3): the flags, the same fd, the
     * range of newfd, then oldfd. */
    if (flags & ~O_CLOEXEC)
        return -EINVAL;
    if (oldfd == newfd)
        return -EINVAL;
    if (newfd < 0 || newfd >= fd_nofile)
        return -EBADF;
    long err;
    struct fd_slot *s = open_slot(oldfd, &err);
    if (!s)
        return err;
    /* newfd names the file before whatever it named is closed, so no
     * moment exists where newfd is free (another open cannot take it). */
    struct fd_entry *f = s->file, *prev = rows[newfd].slot.file;
    f->refs++;
    install(newfd, f, flags & O_CLOEXEC ? FD_CLOEXEC : 0);
    if (prev)
        put_file(prev); /* its close's result is lost, as with Linux's dup2 */
    return newfd;
}

long fd_sys_dup2(int oldfd, int newfd)
{
    if (oldfd == newfd)
        return fd_get(oldfd) ? newfd : -EBADF;
    return fd_sys_dup3(oldfd, newfd, 0);
}

long fd_sys_fcntl(int fd, int cmd, unsigned long arg)
{
    long err;
    struct fd_slot *s = open_slot(fd, &err);
    if (!s)
        return err;
    struct fd_entry *f = s->file;
    switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
        /* Linux takes the lowest fd as an unsigned int: a negative one is
         * past the limit too. */
        if ((unsigned int)arg >= (unsigned int)fd_nofile)
            return -EINVAL;
        return dup_from(fd, (int)(unsigned int)arg, cmd == F_DUPFD_CLOEXEC ? FD_CLOEXEC : 0);
    case F_GETFD:
        return s->fdflags;
    case F_SETFD:
        s->fdflags = (int)(arg & FD_CLOEXEC);
        return 0;
    case F_GETFL:
        return f->flags;
    case F_SETFL: /* Linux changes only these */
        f->flags = (f->flags & ~(O_APPEND | O_NONBLOCK)) | (int)(arg & (O_APPEND | O_NONBLOCK));
        return 0;
    case F_GETLK:
    case F_SETLK:
    case F_SETLKW:
    case F_OFD_GETLK:
    case F_OFD_SETLK:
    case F_OFD_SETLKW: {
        /* Record locks: one process holds every lock it asks for, so a set
         * succeeds and a test finds no conflicting lock (SQLite, for one,
         * locks its database this way). */
        struct flock *l = (struct flock *)arg;
        if (!user_range_ok(arg, sizeof(*l)))
            return -EFAULT;
        if (l->l_type != F_RDLCK && l->l_type != F_WRLCK && l->l_type != F_UNLCK)
            return -EINVAL;
        if (l->l_whence != SEEK_SET && l->l_whence != SEEK_CUR && l->l_whence != SEEK_END)
            return -EINVAL;
        if ((cmd == F_SETLK || cmd == F_SETLKW || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW) &&
            ((l->l_type == F_RDLCK && !readable(f)) || (l->l_type == F_WRLCK && !writable(f))))
            return -EBADF;
        if (cmd == F_GETLK || cmd == F_OFD_GETLK)
            l->l_type = F_UNLCK;
        return 0;
    }
    default:
        return -EINVAL;
    }
}

long fd_sys_openat(int dirfd, const char *path, int flags, int mode)
{
    return fs_openat(dirfd, path, flags, mode); /* fs/fs_vfs.c */
}

struct poll_ctx {
    struct pollfd *fds;
    unsigned long n;
    long ready;
    bool armed;
};

short fd_file_poll_events(struct fd_entry *f)
{
    return (short)(f->ops->poll_ready ? f->ops->poll_ready(f) : POLLIN | POLLOUT);
}

void fd_file_poll_arm(struct fd_entry *f, int on)
{
    if (f->ops->poll_arm)
        f->ops->poll_arm(f, on);
}

short fd_poll_events(int fd)
{
    struct fd_entry *f = fd_get(fd);
    return f ? fd_file_poll_events(f) : POLLNVAL;
}

bool fd_poll_can_wake(int fd)
{
    struct fd_entry *f = fd_get(fd);
    return f && f->ops->poll_arm;
}

void fd_poll_arm(int fd, int on)
{
    struct fd_entry *f = fd_get(fd);
    if (f)
        fd_file_poll_arm(f, on);
}

static bool poll_scan(void *arg)
{
    struct poll_ctx *c = arg;
    long ready = 0;
    for (unsigned long i = 0; i < c->n; i++) {
        struct pollfd *p = &c->fds[i];
        if (p->fd < 0) {
            p->revents = 0;
            continue;
        }
        short ev = fd_poll_events(p->fd);
        p->revents = (short)(ev & (p->events | POLLHUP | POLLERR | POLLNVAL));
        if (p->revents)
            ready++;
    }
    c->ready = ready;
    return ready > 0;
}

/* Before poll() sleeps, the polled fds' devices turn their interrupts on
 * (they keep them off while the guest spins); off again afterwards. */
static void poll_arm_all(struct poll_ctx *c, int on)
{
    for (unsigned long i = 0; i < c->n; i++)
        fd_poll_arm(c->fds[i].fd, on);
    c->armed = on;
}

static void poll_arm(void *arg)
{
    poll_arm_all(arg, 1);
}

long fd_sys_poll(struct pollfd *fds, unsigned long nfds, uint64_t timeout_ns)
{
    if (nfds > (unsigned long)fd_nofile)
        return -EINVAL;
    if (nfds && !user_range_ok((uintptr_t)fds, nfds * sizeof(*fds)))
        return -EFAULT;
    struct poll_ctx c = {.fds = fds, .n = nfds, .ready = 0};
    if (poll_scan(&c) || timeout_ns == 0)
        return c.ready;
    /* Only a device can make an fd ready while the guest waits; without
     * one among the fds the wait is a sleep (sys_signal.c). */
    bool wake = false;
    for (unsigned long i = 0; i < nfds && !wake; i++)
        wake = fd_poll_can_wake(fds[i].fd);
    long r = ember_sig_wait(poll_scan, wake ? poll_arm : NULL, &c, timeout_ns);
    if (c.armed)
        poll_arm_all(&c, 0);
    return r ? r : c.ready;
}
