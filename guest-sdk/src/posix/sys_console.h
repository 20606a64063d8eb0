/* sys_console.h: the console as an open file (sys_console.c): fds 0-2 name
 * it at boot (sys_fd.c), and a dup of one is the console too. */
#ifndef EMBER_SYS_CONSOLE_H
#define EMBER_SYS_CONSOLE_H

#include <stdint.h>

struct iovec;

extern const struct fd_ops console_in_ops;  /* fd 0: reads give end of file */
extern const struct fd_ops console_out_ops; /* fds 1, 2: priv is the stream */

/* writev to a console stream (EMBER_CONSOLE_STDOUT, EMBER_CONSOLE_STDERR),
 * with writev's checks (EINVAL, EFAULT): the start-up path of every guest
 * (ember.ld places it with the hot calls). */
long console_sys_writev(uint32_t stream, const struct iovec *iov, long iovcnt);

#endif /* EMBER_SYS_CONSOLE_H */
