/* sys_console.c: the console as a file: what fds 0-2 name at boot, and
 * what dup(1), dup2(2, 5), ... name after them.
 *
 * Writes go to the monitor in one port write per call (drivers/console.c:
 * stdout coalesced, stderr not), the iovec array as is. Reads of stdin give
 * end of file: a guest has no input stream. The console is a terminal
 * (TIOCGWINSZ answers), so musl line-buffers stdout, as on Linux when a
 * program writes to one; fstat says a character device like /dev/console.
 * The console reports readiness like a terminal that never blocks: stdin
 * POLLIN (a read returns at once, with end of file), stdout POLLOUT.
 */
#include <errno.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "posix/sys_console.h"
#include "posix/sys_fd.h"
#include "sdk.h"

#define IOV_MAX_LINUX 1024

_Static_assert(sizeof(struct iovec) == sizeof(struct ember_iovec), "iovec layout");

long console_sys_writev(uint32_t stream, const struct iovec *iov, long iovcnt)
{
    if (iovcnt < 0 || iovcnt > IOV_MAX_LINUX)
        return -EINVAL;
    if (!user_range_ok((uintptr_t)iov, (size_t)iovcnt * sizeof(*iov)))
        return -EFAULT;
    uint64_t total = 0;
    for (long i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len == 0)
            continue;
        if (!user_range_ok((uintptr_t)iov[i].iov_base, iov[i].iov_len))
            return -EFAULT;
        total += iov[i].iov_len;
        if (total > (uint64_t)0x7fffffff)
            return -EINVAL;
    }
    /* struct iovec and struct ember_iovec have the same layout, and the
     * addresses are guest-physical: the array goes to the monitor as is. */
    ember_console_write_stream((const struct ember_iovec *)iov, (uint32_t)iovcnt, stream);
    return (long)total;
}

static uint32_t stream_of(const struct fd_entry *f)
{
    return (uint32_t)(uintptr_t)f->priv;
}

static long in_read(struct fd_entry *f, void *buf, size_t len)
{
    (void)f;
    (void)buf;
    (void)len;
    return 0; /* end of file */
}

static long in_write(struct fd_entry *f, const void *buf, size_t len)
{
    (void)f;
    (void)buf;
    (void)len;
    return -EBADF;
}

static long out_read(struct fd_entry *f, void *buf, size_t len)
{
    (void)f;
    (void)buf;
    (void)len;
    return -EBADF;
}

static long out_write(struct fd_entry *f, const void *buf, size_t len)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return console_sys_writev(stream_of(f), &iov, 1);
}

static long out_writev(struct fd_entry *f, const struct iovec *iov, int cnt)
{
    return console_sys_writev(stream_of(f), iov, cnt);
}

static long console_ioctl(struct fd_entry *f, unsigned long req, uintptr_t arg)
{
    (void)f;
    if (req != TIOCGWINSZ)
        return -ENOTTY;
    if (!user_range_ok(arg, sizeof(struct winsize)))
        return -EFAULT;
    struct winsize *ws = (struct winsize *)arg;
    ws->ws_row = 24;
    ws->ws_col = 80;
    ws->ws_xpixel = 0;
    ws->ws_ypixel = 0;
    return 0;
}

static long console_fstat(struct fd_entry *f, struct stat *st)
{
    (void)f;
    st->st_mode = S_IFCHR | 0620;
    st->st_rdev = (5u << 8) | 1u; /* like /dev/console */
    st->st_blksize = 1024;
    return 0;
}

static int in_ready(struct fd_entry *f)
{
    (void)f;
    return POLLIN; /* at end of file */
}

static int out_ready(struct fd_entry *f)
{
    (void)f;
    return POLLOUT;
}

const struct fd_ops console_in_ops = {
    .kind = "console",
    .read = in_read,
    .write = in_write,
    .ioctl = console_ioctl,
    .fstat = console_fstat,
    .poll_ready = in_ready,
};

const struct fd_ops console_out_ops = {
    .kind = "console",
    .read = out_read,
    .write = out_write,
    .writev = out_writev,
    .ioctl = console_ioctl,
    .fstat = console_fstat,
    .poll_ready = out_ready,
};
