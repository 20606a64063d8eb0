/* fd_pass.h: a message with a file descriptor attached (SCM_RIGHTS), on a
 * Unix stream socket: the restore server's pool children get their clients
 * this way, a Uffd page-fault handler its userfaultfd. */
#ifndef EMBER_COMMON_FD_PASS_H
#define EMBER_COMMON_FD_PASS_H

#include <stddef.h>

/* Sends the len bytes at buf with fd attached, in one sendmsg (retried on
 * EINTR; never SIGPIPE). Returns 0 when all of it went, else -1 (errno set;
 * EMSGSIZE for a short write). */
int fd_pass_send(int sock, const void *buf, size_t len, int fd);

#endif
