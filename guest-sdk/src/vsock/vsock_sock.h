/* vsock_sock.h: AF_VSOCK stream sockets over the virtio-vsock driver: the
 * connection state machine, credit-based flow control (virtio 1.2
 * §5.10.6.3), ports, accept queues. sys_socket.c turns system calls into
 * these; every function returns a value >= 0 or -errno, with Linux's errnos.
 * Pointers given here are already checked by the caller. Not a public
 * header.
 */
#ifndef EMBER_VSOCK_SOCK_H
#define EMBER_VSOCK_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vsk;
struct iovec;
struct sockaddr_vm;

/* A new socket (type: SOCK_STREAM, possibly | SOCK_NONBLOCK/SOCK_CLOEXEC). */
long vsk_create(int type, int protocol, struct vsk **out);
/* Ends the socket as close() does: a connection is shut down (SHUTDOWN to
 * the peer, the state kept until its RST or a timeout), a listener resets
 * the connections nobody accepted. */
void vsk_close(struct vsk *s);

long vsk_bind(struct vsk *s, const struct sockaddr_vm *a);
long vsk_listen(struct vsk *s, int backlog);
/* The next connection, as a new socket (flags: SOCK_NONBLOCK). peer gets
 * its address. */
long vsk_accept(struct vsk *s, int flags, struct vsk **child, struct sockaddr_vm *peer);
/* Puts back a connection vsk_accept() took but could not give an fd. */
void vsk_unaccept(struct vsk *listener, struct vsk *child);
long vsk_connect(struct vsk *s, const struct sockaddr_vm *a);
/* recvmsg/sendmsg on iovecs (flags: MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL;
 * MSG_DONTWAIT, MSG_NOSIGNAL, MSG_MORE, MSG_EOR). */
long vsk_recv(struct vsk *s, const struct iovec *iov, size_t iovcnt, int flags);
long vsk_send(struct vsk *s, const struct iovec *iov, size_t iovcnt, int flags);
long vsk_shutdown(struct vsk *s, int how);
long vsk_getname(struct vsk *s, bool peer, struct sockaddr_vm *out);
long vsk_setsockopt(struct vsk *s, int level, int name, const void *val, uint32_t len);
/* *len: in, the room at val; out, the bytes written. */
long vsk_getsockopt(struct vsk *s, int level, int name, void *val, uint32_t *len);
long vsk_ioctl(struct vsk *s, unsigned long req, void *arg);

/* POLLIN/POLLOUT/POLLERR/POLLHUP/POLLRDHUP as Linux reports them now
 * (after looking at the device). */
unsigned vsk_poll(struct vsk *s);

bool vsk_nonblock(const struct vsk *s);
void vsk_set_nonblock(struct vsk *s, bool on);

/* Polls the device (and the sockets' timers). For poll() and for waiting
 * loops outside this file. */
void vsk_service(void);
/* The earliest deadline of any socket timer (connect, close), or
 * UINT64_MAX: a sleeping poll() must wake up by then. */
uint64_t vsk_next_deadline(void);

#endif
