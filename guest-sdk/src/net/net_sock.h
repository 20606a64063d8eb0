/* net_sock.h: AF_INET sockets (net_sock.c), for sys_socket.c. */
#ifndef EMBER_NET_SOCK_H
#define EMBER_NET_SOCK_H

#include <stdbool.h>

#include "sdk.h"

/* socket(AF_INET, type, protocol): an fd or -errno (-EAFNOSUPPORT when the
 * VM has no network device). */
long net_sys_socket(int type, int protocol);
/* Is fd an AF_INET socket? */
bool net_sock_is(int fd);
/* A socket call whose first argument is an AF_INET socket's fd. */
long net_sys_socketcall(struct ember_syscall_frame *f);

#endif
