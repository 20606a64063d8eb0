/* sys_socket.h: the socket system calls (sys_socket.c), for sys_dispatch.c. */
#ifndef EMBER_SYS_SOCKET_H
#define EMBER_SYS_SOCKET_H

#include "sdk.h"

/* socket, socketpair, bind, connect, listen, accept, accept4, sendto,
 * recvfrom, sendmsg, recvmsg, shutdown, getsockname, getpeername,
 * setsockopt, getsockopt: the result of the call, or -ENOSYS for any other
 * number. */
long ember_sys_socketcall(struct ember_syscall_frame *f);

#endif
