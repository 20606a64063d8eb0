/* sys_fd.h: the SDK's file-descriptor table (see sys_fd.c).
 *
 * An fd names an open file (struct fd_entry: an ops table, the driver's
 * private pointer, the status flags and the position), which dup, dup2,
 * dup3 and F_DUPFD share between fds as Linux shares an open file
 * description; FD_CLOEXEC belongs to each fd. The file's close op runs when
 * its last fd is closed. fds 0-2 start as the console (sys_console.c) and
 * can be closed, replaced (dup2) and duplicated like any other. A NULL op
 * answers what Linux answers for a kind of file that cannot do it (listed
 * per op below).
 */
#ifndef EMBER_SYS_FD_H
#define EMBER_SYS_FD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FD_MAX 1024 /* fds 0 .. FD_MAX-1, Linux's default RLIMIT_NOFILE */

/* RLIMIT_NOFILE's soft limit, <= FD_MAX (setrlimit, sys_rlimit.c): new fds
 * (open, dup, dup2's newfd, F_DUPFD) are below it; open ones above stay. */
extern int fd_nofile;

struct fd_entry;
struct iovec;
struct stat;
struct pollfd;
struct timespec;

/* All return >= 0 or -errno, as the system call does. */
struct fd_ops {
    const char *kind;                                        /* for messages: "blk", "vsock" */
    long (*read)(struct fd_entry *f, void *buf, size_t len); /* NULL: EINVAL */
    long (*write)(struct fd_entry *f, const void *buf, size_t len); /* NULL: EINVAL */
    /* NULL: read/write per iovec, stopping at the first short transfer */
    long (*readv)(struct fd_entry *f, const struct iovec *iov, int cnt);
    long (*writev)(struct fd_entry *f, const struct iovec *iov, int cnt);
    long (*pread)(struct fd_entry *f, void *buf, size_t len, int64_t off);        /* ESPIPE */
    long (*pwrite)(struct fd_entry *f, const void *buf, size_t len, int64_t off); /* ESPIPE */
    long (*lseek)(struct fd_entry *f, int64_t off, int whence);                   /* ESPIPE */
    long (*fstat)(struct fd_entry *f, struct stat *st); /* NULL: zeroed, st_mode 0 */
    long (*ioctl)(struct fd_entry *f, unsigned long req, uintptr_t arg); /* ENOTTY */
    long (*fsync)(struct fd_entry *f, int datasync);                     /* EINVAL */
    /* POLLIN/POLLOUT/POLLHUP/POLLERR now, without blocking. NULL: always
     * POLLIN | POLLOUT (a regular file). */
    int (*poll_ready)(struct fd_entry *f);
    long (*shutdown)(struct fd_entry *f, int how); /* NULL: ENOTSOCK */
    long (*close)(struct fd_entry *f); /* the last fd's close; NULL: nothing to release */
    /* poll() is about to sleep (on = 1: turn the device's interrupts on) or
     * is done (on = 0). NULL: the fd never waits on a device. */
    void (*poll_arm)(struct fd_entry *f, int on);
};

/* An open file, shared by the fds dup'ed from one another. */
struct fd_entry {
    const struct fd_ops *ops;
    void *priv;
    int flags;   /* O_ACCMODE | O_NONBLOCK | O_APPEND ... as open() got them */
    int refs;    /* fds that name it */
    int64_t pos; /* file position, for drivers that have one */
    /* Which open file this is: new for each one fd_alloc makes (the pool
     * reuses entries), 0 for the console's. epoll's interest lists hold
     * files by (entry, serial). */
    uint64_t serial;
};

/* The lowest free fd for a new open file (ops, priv), or -EMFILE / -ENOMEM. */
int fd_alloc(const struct fd_ops *ops, void *priv);
/* The open file fd names, or NULL. */
struct fd_entry *fd_get(int fd);
/* Forgets fd, just made by fd_alloc (does not call ops->close). */
void fd_free(int fd);

/* True once fds 0-2 may no longer be the console as at boot (one was
 * closed or replaced): until then sys_dispatch.c writes fds 1 and 2 to the
 * console without looking at the table (sys_dispatch.c owns it: it lives in
 * the start-up data page, the table does not). */
extern bool fd_std_changed;

/* The fd system calls, called by sys_dispatch.c. */
long fd_sys_read(int fd, void *buf, size_t len);
long fd_sys_write(int fd, const void *buf, size_t len);
long fd_sys_readv(int fd, const struct iovec *iov, long cnt);
long fd_sys_writev(int fd, const struct iovec *iov, long cnt);
long fd_sys_pread(int fd, void *buf, size_t len, int64_t off);
long fd_sys_pwrite(int fd, const void *buf, size_t len, int64_t off);
long fd_sys_lseek(int fd, int64_t off, int whence);
long fd_sys_fstat(int fd, struct stat *st);
long fd_sys_ioctl(int fd, unsigned long req, uintptr_t arg);
long fd_sys_fsync(int fd, int datasync);
long fd_sys_close(int fd);
long fd_sys_fcntl(int fd, int cmd, unsigned long arg); /* F_DUPFD(_CLOEXEC) too */
long fd_sys_dup(int oldfd);
long fd_sys_dup2(int oldfd, int newfd);
long fd_sys_dup3(int oldfd, int newfd, int flags);
long fd_sys_openat(int dirfd, const char *path, int flags, int mode);
/* poll/ppoll over all fds (the console's too); timeout_ns UINT64_MAX =
 * forever. -EINTR when a signal is to be delivered. */
long fd_sys_poll(struct pollfd *fds, unsigned long nfds, uint64_t timeout_ns);

/* Readiness, the one interface poll, ppoll, select, pselect6, epoll_wait
 * and the blocking calls of in-guest fds (pipes, eventfds) share.
 * A new kind of fd plugs in with two ops:
 *  - poll_ready(f): POLLIN/POLLOUT/POLLHUP/POLLERR/POLLPRI now, cheaply and
 *    without blocking (it is called in a spin loop);
 *  - poll_arm(f, on): only for fds a device makes ready (an interrupt can
 *    change the answer while the guest waits): turn the device's
 *    interrupts on before a sleep, off after it. Having poll_arm is what
 *    makes a waiter sleep in hlt until an interrupt or the timer; fds
 *    without it (made ready only by the guest itself) are waited for by
 *    sleeping on the host until the timeout or the next signal timer.
 * A blocking op of such an fd waits with ember_sig_wait(ready, arm, ...)
 * (sys_signal.h) and returns -EINTR when it says so. */
short fd_poll_events(int fd);  /* fd_ops->poll_ready of an fd; POLLNVAL if not open */
bool fd_poll_can_wake(int fd); /* has poll_arm */
void fd_poll_arm(int fd, int on);
/* The same for an open file, which no fd may name any more (epoll). */
short fd_file_poll_events(struct fd_entry *f);
void fd_file_poll_arm(struct fd_entry *f, int on);

/* fd_alloc() and the flags open(2) would set: O_ACCMODE | O_NONBLOCK in
 * flags, FD_CLOEXEC in fdflags. */
int fd_alloc_flags(const struct fd_ops *ops, void *priv, int flags, int fdflags);

/* open(path) is fs/fs_vfs.c's: /dev/vdX there opens blk_posix.c's fds. */

#endif /* EMBER_SYS_FD_H */
