/* ember/vsock.h: AF_VSOCK for SDK guests.
 *
 * musl's <sys/socket.h> has AF_VSOCK but not Linux's <linux/vm_sockets.h>;
 * this header provides what a program needs from it, with Linux's layout and
 * values, so that code written for Linux guests compiles unchanged:
 *
 *     int s = socket(AF_VSOCK, SOCK_STREAM, 0);
 *     struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
 *                             .svm_port = 1024};
 *     bind(s, (struct sockaddr *)&a, sizeof(a));
 *
 * The SDK serves stream sockets (SOCK_STREAM) over the VM's virtio-vsock
 * device: a guest listens on a port for connections from the host, or
 * connects to the host (VMADDR_CID_HOST). Under ember the host end is
 * Firecracker's Unix-socket bridge (see `ember run --vsock`).
 *
 * ember_syscall_direct() runs the SDK's system-call handler as an ordinary
 * function call. Every call works through it (not only socket calls); it
 * saves the trap, which on some hosts is most of the cost of a small read
 * or write (~20 us per `syscall` on kvm_pvm against well under 1 us for the
 * work). The result is the raw system call's: a value >= 0, or -errno
 * (errno is not set). The FaaS runtime (<ember/faas_runtime.h>) uses it.
 */
#ifndef EMBER_VSOCK_H
#define EMBER_VSOCK_H

#include <sys/socket.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef PF_VSOCK
#define PF_VSOCK AF_VSOCK
#endif

/* Linux's struct sockaddr_vm (16 bytes, <linux/vm_sockets.h>). */
struct sockaddr_vm {
    sa_family_t svm_family; /* AF_VSOCK */
    unsigned short svm_reserved1;
    unsigned int svm_port;
    unsigned int svm_cid;
    unsigned char svm_flags; /* VMADDR_FLAG_* */
    unsigned char svm_zero[sizeof(struct sockaddr) - sizeof(sa_family_t) - sizeof(unsigned short) -
                           sizeof(unsigned int) - sizeof(unsigned int) - sizeof(unsigned char)];
};

#define VMADDR_CID_ANY        ((unsigned int)-1)
#define VMADDR_PORT_ANY       ((unsigned int)-1)
#define VMADDR_CID_HYPERVISOR 0u
#define VMADDR_CID_LOCAL      1u
#define VMADDR_CID_HOST       2u
#define VMADDR_FLAG_TO_HOST   0x01

/* Ports below this are "privileged" on Linux; the SDK has no users and
 * lets a program bind any port. */
#define LAST_RESERVED_PORT 1023u

/* Socket options at level AF_VSOCK (Linux's numbers). */
#define SO_VM_SOCKETS_BUFFER_SIZE         0
#define SO_VM_SOCKETS_BUFFER_MIN_SIZE     1
#define SO_VM_SOCKETS_BUFFER_MAX_SIZE     2
#define SO_VM_SOCKETS_PEER_HOST_VM_ID     3
#define SO_VM_SOCKETS_TRUSTED             5
#define SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD 6
#define SO_VM_SOCKETS_NONBLOCK_TXRX       7
#define SO_VM_SOCKETS_CONNECT_TIMEOUT_NEW 8
#define SO_VM_SOCKETS_CONNECT_TIMEOUT     SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD

/* ioctl on /dev/vsock in Linux; here on any AF_VSOCK socket: the local CID. */
#define IOCTL_VM_SOCKETS_GET_LOCAL_CID 0x7b9u

/* The system call nr with arguments a0..a5, answered by the SDK without a
 * trap. */
long ember_syscall_direct(long nr, long a0, long a1, long a2, long a3, long a4, long a5);

/* The guest's CID as the vsock device reports it (probes the device on
 * first use); 0 if the VM has no vsock device. */
unsigned int ember_vsock_local_cid(void);

#endif /* EMBER_VSOCK_H */
