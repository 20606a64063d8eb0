/* sys_pipe.h: pipes and eventfds (sys_pipe.c), epoll (sys_epoll.c),
 * select (sys_select.c): the system calls over the readiness machinery of
 * sys_fd.h. Each returns what the system call returns. */
#ifndef EMBER_SYS_PIPE_H
#define EMBER_SYS_PIPE_H

#include "sdk.h"

long ember_sys_pipe2(int *fds, int flags);
long ember_sys_eventfd2(unsigned initval, int flags);

long ember_sys_epoll_create1(int flags);
long ember_sys_epoll_ctl(int epfd, int op, int fd, void *event);
long ember_sys_epoll_pwait(int epfd, void *events, int maxevents, int timeout_ms,
                           const void *sigmask, size_t sigsetsize);

/* select (timeout: struct timeval *) and pselect6 (struct timespec *, and
 * a {sigset *, size} pair). */
long ember_sys_select(int nfds, void *rd, void *wr, void *ex, void *timeval);
long ember_sys_pselect6(int nfds, void *rd, void *wr, void *ex, void *timespec,
                        const void *sigdata);

#endif /* EMBER_SYS_PIPE_H */
