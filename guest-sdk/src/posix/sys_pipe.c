/* sys_pipe.c: pipe/pipe2 and eventfd/eventfd2, fds that live inside the
 * guest.
 *
 * Event loops wake themselves with these (the self-pipe trick, libuv's
 * async handles on an eventfd), so they follow Linux where a loop can tell:
 *  - a pipe is a 64 KiB ring (Linux's default capacity, pipe(7)); a write
 *    of at most PIPE_BUF (4096) bytes is atomic; read returns what is
 *    there, 0 once no write end is left; a write with no read end left
 *    fails with EPIPE after raising SIGPIPE (sys_signal.c: by default that
 *    ends the guest with 141, as on Linux). poll: the read end is POLLIN
 *    with data, POLLHUP once the writers are gone; the write end is POLLOUT
 *    with PIPE_BUF bytes free, POLLERR once the readers are gone.
 *    FIONREAD answers the bytes waiting.
 *  - an eventfd is a 64-bit counter (eventfd(2)): write adds, read takes
 *    the count (or 1 with EFD_SEMAPHORE); read blocks at 0, write blocks
 *    when the sum would pass 0xfffffffffffffffe; POLLIN when > 0, POLLOUT
 *    while 1 more fits.
 * Blocking: there is one thread, so nothing but a signal handler or a
 * timer can change such an fd while the guest waits; a blocking read of an
 * empty pipe waits (sleeping on the host, ember_sig_wait) until a signal
 * interrupts it (EINTR, or restarted with SA_RESTART), as Linux would hang.
 *
 * An end's close op runs when its last fd is closed (dup'ed fds share the
 * end, sys_fd.c): a pipe has a reader while any fd names its read end, a
 * writer while any names its write end. Memory: a pipe takes 17 pages (the ring and its header)
 * from the heap when it is created, an eventfd 32 bytes of a shared page.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "sdk.h"
#include "posix/sys_fd.h"
#include "posix/sys_pipe.h"
#include "posix/sys_signal.h"

#define PIPE_CAP      (64u * 1024)
#define PIPE_BUF_LNX  4096u
#define EVENTFD_MAX   0xfffffffffffffffeull
#define EFD_FLAGS_ALL (EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC)

struct pipe {
    uint32_t head, len;  /* ring [head, head + len) mod PIPE_CAP */
    bool reader, writer; /* the ends still open */
    uint8_t *buf;
};

struct efd {
    uint64_t count;
    bool semaphore;
    struct efd *next_free;
};

static struct efd *free_efds;

static void *pages(size_t len)
{
    long p = ember_sys_mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p < 0 ? NULL : (void *)p;
}

static bool nonblock(const struct fd_entry *f)
{
    return (f->flags & O_NONBLOCK) != 0;
}

/* ---- pipes --------------------------------------------------------------- */

static int pipe_read_ready(struct fd_entry *f)
{
    const struct pipe *p = f->priv;
    return (p->len ? POLLIN : 0) | (p->writer ? 0 : POLLHUP);
}

static int pipe_write_ready(struct fd_entry *f)
{
    const struct pipe *p = f->priv;
    if (!p->reader)
        return POLLERR;
    return PIPE_CAP - p->len >= PIPE_BUF_LNX ? POLLOUT : 0;
}

static bool ready_in(void *arg)
{
    return pipe_read_ready(arg) != 0;
}

static bool ready_out(void *arg)
{
    struct fd_entry *f = arg;
    const struct pipe *p = f->priv;
    return !p->reader || PIPE_CAP - p->len >= PIPE_BUF_LNX;
}

static long pipe_read(struct fd_entry *f, void *buf, size_t len)
{
    struct pipe *p = f->priv;
    if (len == 0)
        return 0;
    if (!p->len) {
        if (!p->writer)
            return 0;
        if (nonblock(f))
            return -EAGAIN;
        long r = ember_sig_wait(ready_in, NULL, f, EMBER_WAIT_FOREVER);
        if (r)
            return r;
        if (!p->len)
            return 0; /* the writer went away */
    }
    size_t n = len < p->len ? len : p->len;
    size_t first = PIPE_CAP - p->head;
    if (first > n)
        first = n;
    sdk_memcpy(buf, p->buf + p->head, first);
    sdk_memcpy((uint8_t *)buf + first, p->buf, n - first);
    p->head = (uint32_t)((p->head + n) % PIPE_CAP);
    p->len -= (uint32_t)n;
    if (!p->len)
        p->head = 0;
    return (long)n;
}

static long pipe_write(struct fd_entry *f, const void *buf, size_t len)
{
    struct pipe *p = f->priv;
    size_t done = 0;
    if (len == 0)
        return 0;
    while (done < len) {
        if (!p->reader) {
            if (done)
                return (long)done;
            ember_sig_raise(SIGPIPE, SI_USER);
            return -EPIPE;
        }
        size_t room = PIPE_CAP - p->len;
        size_t want = len - done;
        /* At most PIPE_BUF bytes go in whole or not at all (pipe(7)). */
        if (room == 0 || (want <= PIPE_BUF_LNX && room < want)) {
            if (nonblock(f))
                return done ? (long)done : -EAGAIN;
            long r = ember_sig_wait(ready_out, NULL, f, EMBER_WAIT_FOREVER);
            if (r)
                return done ? (long)done : r;
            continue;
        }
        size_t n = want < room ? want : room;
        size_t tail = (p->head + p->len) % PIPE_CAP;
        size_t first = PIPE_CAP - tail;
        if (first > n)
            first = n;
        sdk_memcpy(p->buf + tail, (const uint8_t *)buf + done, first);
        sdk_memcpy(p->buf, (const uint8_t *)buf + done + first, n - first);
        p->len += (uint32_t)n;
        done += n;
        if (nonblock(f))
            break; /* a non-blocking write takes what fits */
    }
    return (long)done;
}

static long pipe_fstat(struct fd_entry *f, struct stat *st)
{
    (void)f;
    st->st_mode = S_IFIFO | 0600;
    return 0;
}

static long pipe_ioctl(struct fd_entry *f, unsigned long req, uintptr_t arg)
{
    const struct pipe *p = f->priv;
    if (req == FIONBIO) {
        if (!user_range_ok(arg, sizeof(int)))
            return -EFAULT;
        f->flags = *(const int *)arg ? f->flags | O_NONBLOCK : f->flags & ~O_NONBLOCK;
        return 0;
    }
    if (req != FIONREAD)
        return -ENOTTY;
    if (!user_range_ok(arg, sizeof(int)))
        return -EFAULT;
    *(int *)arg = (f->flags & O_ACCMODE) == O_RDONLY ? (int)p->len : 0;
    return 0;
}

static void pipe_release(struct pipe *p)
{
    if (!p->reader && !p->writer)
        ember_sys_munmap((uintptr_t)p->buf, PIPE_CAP + PAGE_SIZE);
}

static long pipe_close_read(struct fd_entry *f)
{
    struct pipe *p = f->priv;
    p->reader = false;
    p->len = 0; /* nobody will read it */
    pipe_release(p);
    return 0;
}

static long pipe_close_write(struct fd_entry *f)
{
    struct pipe *p = f->priv;
    p->writer = false;
    pipe_release(p);
    return 0;
}

static const struct fd_ops pipe_read_ops = {
    .kind = "pipe",
    .read = pipe_read,
    .fstat = pipe_fstat,
    .ioctl = pipe_ioctl,
    .poll_ready = pipe_read_ready,
    .close = pipe_close_read,
};

static const struct fd_ops pipe_write_ops = {
    .kind = "pipe",
    .write = pipe_write,
    .fstat = pipe_fstat,
    .ioctl = pipe_ioctl,
    .poll_ready = pipe_write_ready,
    .close = pipe_close_write,
};

long ember_sys_pipe2(int *fds, int flags)
{
    if (flags & ~(O_NONBLOCK | O_CLOEXEC | O_DIRECT))
        return -EINVAL;
    if (!user_range_ok((uintptr_t)fds, 2 * sizeof(int)))
        return -EFAULT;
    /* The header goes after the ring, in the page that follows it. */
    uint8_t *mem = pages(PIPE_CAP + PAGE_SIZE);
    if (!mem)
        return -ENFILE; /* Linux's answer when no pipe can be made */
    struct pipe *p = (struct pipe *)(mem + PIPE_CAP);
    *p = (struct pipe){.buf = mem, .reader = true, .writer = true};
    int fl = flags & O_NONBLOCK;
    int fdfl = flags & O_CLOEXEC ? FD_CLOEXEC : 0;
    int r = fd_alloc_flags(&pipe_read_ops, p, O_RDONLY | fl, fdfl);
    if (r < 0) {
        ember_sys_munmap((uintptr_t)mem, PIPE_CAP + PAGE_SIZE);
        return r;
    }
    int w = fd_alloc_flags(&pipe_write_ops, p, O_WRONLY | fl, fdfl);
    if (w < 0) {
        fd_free(r);
        ember_sys_munmap((uintptr_t)mem, PIPE_CAP + PAGE_SIZE);
        return w;
    }
    fds[0] = r;
    fds[1] = w;
    return 0;
}

/* ---- eventfd ------------------------------------------------------------- */

static int efd_ready(struct fd_entry *f)
{
    const struct efd *e = f->priv;
    return (e->count ? POLLIN : 0) | (e->count < EVENTFD_MAX ? POLLOUT : 0);
}

static bool efd_readable(void *arg)
{
    const struct efd *e = ((struct fd_entry *)arg)->priv;
    return e->count != 0;
}

struct efd_add {
    struct fd_entry *f;
    uint64_t v;
};

static bool efd_room(void *arg)
{
    const struct efd_add *a = arg;
    const struct efd *e = a->f->priv;
    return a->v <= EVENTFD_MAX - e->count;
}

static long efd_read(struct fd_entry *f, void *buf, size_t len)
{
    struct efd *e = f->priv;
    if (len < sizeof(uint64_t))
        return -EINVAL;
    if (!e->count) {
        if (nonblock(f))
            return -EAGAIN;
        long r = ember_sig_wait(efd_readable, NULL, f, EMBER_WAIT_FOREVER);
        if (r)
            return r;
    }
    uint64_t v = e->semaphore ? 1 : e->count;
    e->count -= v;
    sdk_memcpy(buf, &v, sizeof(v));
    return sizeof(v);
}

static long efd_write(struct fd_entry *f, const void *buf, size_t len)
{
    struct efd *e = f->priv;
    uint64_t v;
    if (len < sizeof(v))
        return -EINVAL;
    sdk_memcpy(&v, buf, sizeof(v));
    if (v == UINT64_MAX)
        return -EINVAL;
    struct efd_add a = {.f = f, .v = v};
    if (!efd_room(&a)) {
        if (nonblock(f))
            return -EAGAIN;
        long r = ember_sig_wait(efd_room, NULL, &a, EMBER_WAIT_FOREVER);
        if (r)
            return r;
    }
    e->count += v;
    return sizeof(v);
}

static long efd_close(struct fd_entry *f)
{
    struct efd *e = f->priv;
    e->next_free = free_efds;
    free_efds = e;
    return 0;
}

static long efd_ioctl(struct fd_entry *f, unsigned long req, uintptr_t arg)
{
    if (req != FIONBIO)
        return -ENOTTY;
    if (!user_range_ok(arg, sizeof(int)))
        return -EFAULT;
    f->flags = *(const int *)arg ? f->flags | O_NONBLOCK : f->flags & ~O_NONBLOCK;
    return 0;
}

static const struct fd_ops efd_ops = {
    .kind = "eventfd",
    .read = efd_read,
    .write = efd_write,
    .ioctl = efd_ioctl,
    .poll_ready = efd_ready,
    .close = efd_close,
};

long ember_sys_eventfd2(unsigned initval, int flags)
{
    if (flags & ~EFD_FLAGS_ALL)
        return -EINVAL;
    if (!free_efds) {
        struct efd *slab = pages(PAGE_SIZE);
        if (!slab)
            return -ENOMEM;
        for (size_t i = 0; i < PAGE_SIZE / sizeof(*slab); i++) {
            slab[i].next_free = free_efds;
            free_efds = &slab[i];
        }
    }
    struct efd *e = free_efds;
    int fd = fd_alloc_flags(&efd_ops, e, O_RDWR | (flags & EFD_NONBLOCK ? O_NONBLOCK : 0),
                            flags & EFD_CLOEXEC ? FD_CLOEXEC : 0);
    if (fd < 0)
        return fd;
    free_efds = e->next_free;
    *e = (struct efd){.count = initval, .semaphore = (flags & EFD_SEMAPHORE) != 0};
    return fd;
}
