/* sys_epoll.c: epoll_create/epoll_create1, epoll_ctl, epoll_wait/epoll_pwait
 * over the fds' readiness (sys_fd.h: fd_poll_events, poll_arm).
 *
 * An epoll fd holds an interest list (fd, events, data). epoll_wait scans
 * it the way poll scans its array and waits the way poll waits
 * (ember_sig_wait: hlt until a device interrupt when a listed fd has a
 * device behind it, a host sleep otherwise; EINTR for a signal). Events are
 * poll's bits, which epoll shares (EPOLLIN == POLLIN, ...).
 *  - level-triggered by default: a ready fd is reported by every wait;
 *  - EPOLLET: an fd is reported when one of its ready bits has risen since
 *    the last scan (so a second write into a pipe that still holds unread
 *    data is not a new edge here, where Linux reports one: read until
 *    EAGAIN, as edge-triggered loops do anyway);
 *  - EPOLLONESHOT: reported once, then disabled until EPOLL_CTL_MOD;
 *  - an entry is keyed by (fd, open file), as Linux keys it: it stays
 *    while any fd names the file, even after the fd it was added with is
 *    closed (a dup keeps the file open; the entry is still reported, with
 *    its data), and leaves the list when the file's last fd is closed
 *    (dropped when it is next scanned; the file is recognised by its
 *    serial, sys_fd.h, as the fd table reuses its entries).
 * Errors as epoll_ctl(2): EEXIST, ENOENT, EINVAL (epfd itself, bad op,
 * EPOLLEXCLUSIVE with MOD), EPERM (a file that cannot be polled: blk
 * drives, regular files), EBADF.
 * An epoll fd is itself pollable (POLLIN when something is ready), so epoll
 * sets nest.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>

#include "sdk.h"
#include "posix/sys_fd.h"
#include "posix/sys_pipe.h"
#include "posix/sys_signal.h"

#define NSEC_PER_MS  1000000ull
#define NEST_MAX     5 /* Linux's EP_MAX_NESTS is 4 */
#define EVENTS_MAX   (INT32_MAX / sizeof(struct epoll_event))
#define ALWAYS_ASKED (EPOLLERR | EPOLLHUP)

struct ep_item {
    int fd;
    uint32_t events;
    uint64_t data;
    struct fd_entry *file; /* what fd named when it was added */
    uint64_t serial;       /* file's serial then */
    uint32_t last;         /* ready bits at the last scan, for EPOLLET */
    bool disabled;         /* EPOLLONESHOT fired */
};

struct epoll {
    uint32_t n, cap;
    struct ep_item *items; /* inline after the header until it grows */
    size_t bytes;          /* of the items' own mapping, 0 while inline */
};

#define INLINE_ITEMS ((PAGE_SIZE - sizeof(struct epoll)) / sizeof(struct ep_item))

static int depth; /* nesting of epoll fds polled from inside a scan */

static const struct fd_ops epoll_ops;

/* The file is still open (some fd names it). */
static bool alive(const struct ep_item *it)
{
    return it->file->ops && it->file->refs > 0 && it->file->serial == it->serial;
}

static void drop(struct epoll *ep, uint32_t i)
{
    ep->items[i] = ep->items[--ep->n];
}

struct scan {
    struct epoll *ep;
    struct epoll_event *out; /* NULL: only ask whether any is ready */
    uint32_t max;
    long ready;
};

static bool scan(void *arg)
{
    struct scan *s = arg;
    struct epoll *ep = s->ep;
    long ready = 0;
    if (depth >= NEST_MAX)
        return false;
    depth++;
    for (uint32_t i = 0; i < ep->n && ready < (long)s->max;) {
        struct ep_item *it = &ep->items[i];
        if (!alive(it)) {
            drop(ep, i);
            continue;
        }
        i++;
        if (it->disabled)
            continue;
        uint32_t ev = (uint16_t)fd_file_poll_events(it->file);
        uint32_t mask = ev & (it->events | ALWAYS_ASKED);
        uint32_t rose = mask & ~it->last;
        if (s->out)
            it->last = mask;
        if (!mask || ((it->events & EPOLLET) && !rose))
            continue;
        if (s->out) {
            s->out[ready].events = mask;
            s->out[ready].data.u64 = it->data;
            if (it->events & EPOLLONESHOT)
                it->disabled = true;
        }
        ready++;
    }
    depth--;
    s->ready = ready;
    return ready > 0;
}

static void arm_all(struct epoll *ep, int on)
{
    for (uint32_t i = 0; i < ep->n; i++) {
        if (alive(&ep->items[i]))
            fd_file_poll_arm(ep->items[i].file, on);
    }
}

static int epoll_ready(struct fd_entry *f)
{
    struct scan s = {.ep = f->priv, .out = NULL, .max = 1};
    return scan(&s) ? POLLIN : 0;
}

static void epoll_arm(struct fd_entry *f, int on)
{
    arm_all(f->priv, on);
}

static long epoll_close(struct fd_entry *f)
{
    struct epoll *ep = f->priv;
    if (ep->bytes)
        ember_sys_munmap((uintptr_t)ep->items, ep->bytes);
    ember_sys_munmap((uintptr_t)ep, PAGE_SIZE);
    return 0;
}

static const struct fd_ops epoll_ops = {
    .kind = "epoll",
    .poll_ready = epoll_ready,
    .poll_arm = epoll_arm,
    .close = epoll_close,
};

long ember_sys_epoll_create1(int flags)
{
    if (flags & ~EPOLL_CLOEXEC)
        return -EINVAL;
    long p =
        ember_sys_mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p < 0)
        return -ENOMEM;
    struct epoll *ep = (struct epoll *)p;
    *ep = (struct epoll){.cap = INLINE_ITEMS, .items = (struct ep_item *)(ep + 1)};
    int fd = fd_alloc_flags(&epoll_ops, ep, O_RDWR, flags & EPOLL_CLOEXEC ? FD_CLOEXEC : 0);
    if (fd < 0)
        ember_sys_munmap((uintptr_t)p, PAGE_SIZE);
    return fd;
}

static long grow(struct epoll *ep)
{
    size_t bytes = ALIGN_UP((size_t)ep->cap * 2 * sizeof(struct ep_item), PAGE_SIZE);
    long p = ember_sys_mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p < 0)
        return -ENOMEM;
    sdk_memcpy((void *)p, ep->items, ep->n * sizeof(struct ep_item));
    if (ep->bytes)
        ember_sys_munmap((uintptr_t)ep->items, ep->bytes);
    ep->items = (struct ep_item *)p;
    ep->bytes = bytes;
    ep->cap = (uint32_t)(bytes / sizeof(struct ep_item));
    return 0;
}

long ember_sys_epoll_ctl(int epfd, int op, int fd, void *event)
{
    struct fd_entry *e = fd_get(epfd);
    if (!e)
        return -EBADF;
    struct fd_entry *t = fd_get(fd);
    if (!t)
        return -EBADF;
    if (!t->ops->poll_ready)
        return -EPERM; /* a file poll cannot wait for (Linux: regular files) */
    const struct fd_ops *ops = t->ops;
    void *priv = t->priv;
    if (e->ops != &epoll_ops || fd == epfd)
        return -EINVAL;
    struct epoll_event ev = {0};
    if (op != EPOLL_CTL_DEL) {
        if (!user_range_ok((uintptr_t)event, sizeof(ev)))
            return -EFAULT;
        sdk_memcpy(&ev, event, sizeof(ev)); /* read once */
    }
    struct epoll *ep = e->priv;
    struct ep_item *it = NULL;
    for (uint32_t i = 0; i < ep->n; i++) {
        if (ep->items[i].fd == fd && ep->items[i].file == t && alive(&ep->items[i])) {
            it = &ep->items[i];
            break;
        }
    }
    switch (op) {
    case EPOLL_CTL_ADD:
        if (it)
            return -EEXIST;
        if (ops == &epoll_ops && depth == 0) {
            struct epoll *inner = priv;
            if (inner == ep)
                return -ELOOP;
        }
        for (uint32_t i = 0; i < ep->n;) {
            if (alive(&ep->items[i]))
                i++;
            else
                drop(ep, i); /* a closed file's entry only takes room */
        }
        if (ep->n == ep->cap && grow(ep))
            return -ENOMEM;
        ep->items[ep->n++] = (struct ep_item){
            .fd = fd, .events = ev.events, .data = ev.data.u64, .file = t, .serial = t->serial};
        return 0;
    case EPOLL_CTL_MOD:
        if (!it)
            return -ENOENT;
        if (ev.events & EPOLLEXCLUSIVE)
            return -EINVAL;
        it->events = ev.events;
        it->data = ev.data.u64;
        it->disabled = false;
        it->last = 0; /* as Linux: MOD re-checks, a ready fd is reported */
        return 0;
    case EPOLL_CTL_DEL:
        if (!it)
            return -ENOENT;
        drop(ep, (uint32_t)(it - ep->items));
        return 0;
    default:
        return -EINVAL;
    }
}

static void arm(void *arg)
{
    arm_all(((struct scan *)arg)->ep, 1);
}

long ember_sys_epoll_pwait(int epfd, void *events, int maxevents, int timeout_ms,
                           const void *sigmask, size_t sigsetsize)
{
    struct fd_entry *e = fd_get(epfd);
    if (!e)
        return -EBADF;
    if (e->ops != &epoll_ops || maxevents <= 0 || (size_t)maxevents > EVENTS_MAX)
        return -EINVAL;
    if (!user_range_ok((uintptr_t)events, (size_t)maxevents * sizeof(struct epoll_event)))
        return -EFAULT;
    struct scan s = {.ep = e->priv, .out = events, .max = (uint32_t)maxevents};
    if (scan(&s) || timeout_ms == 0)
        return s.ready;
    long r = ember_sig_mask_push(sigmask, sigsetsize);
    if (r)
        return r;
    bool wake = false;
    for (uint32_t i = 0; i < s.ep->n && !wake; i++)
        wake = alive(&s.ep->items[i]) && s.ep->items[i].file->ops->poll_arm;
    uint64_t ns = timeout_ms < 0 ? UINT64_MAX : (uint64_t)timeout_ms * NSEC_PER_MS;
    r = ember_sig_wait(scan, wake ? arm : NULL, &s, ns);
    if (wake)
        arm_all(s.ep, 0);
    ember_sig_mask_pop();
    return r ? r : s.ready;
}
