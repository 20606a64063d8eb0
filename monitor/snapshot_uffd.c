/* snapshot_uffd.c: the Uffd memory backend of a snapshot load
 * (snapshot_uffd.h). */
#include "monitor/snapshot_uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/fd_pass.h"
#include "monitor/vm_priv.h"

#define UFFD_PAGE_SIZE 4096u /* guest RAM is 4 KiB pages (guest_mem.c: no THP, no hugetlbfs) */

static int connect_handler(const char *path, char *why, size_t whylen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    int fd;

    if (len >= sizeof(sa.sun_path)) {
        snprintf(why, whylen, "the page-fault handler at %s: the path is longer than %zu bytes",
                 path, sizeof(sa.sun_path) - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, len + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        snprintf(why, whylen, "the page-fault handler at %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* The regions (one: guest RAM is one slot at guest-physical 0) and the
 * userfaultfd, in one message. */
static int send_handshake(int sock, const struct vm *vm, int uffd)
{
    char body[256];
    int n = snprintf(body, sizeof(body),
                     "[{\"base_host_virt_addr\":%llu,\"size\":%llu,\"offset\":0,\"page_size\":%u,"
                     "\"page_size_kib\":%u}]",
                     (unsigned long long)(uintptr_t)vm->mem.host, (unsigned long long)vm->mem.size,
                     UFFD_PAGE_SIZE, UFFD_PAGE_SIZE);
    return fd_pass_send(sock, body, (size_t)n, uffd);
}

/* A userfaultfd that also sees the kernel's faults (KVM's, the monitor's
 * system calls on guest memory): the system call needs CAP_SYS_PTRACE (or
 * vm.unprivileged_userfaultfd = 1); /dev/userfaultfd (Linux 6.1+) only
 * access to the node, which the jailer gives the monitor's uid. */
static int new_uffd(void)
{
    int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (uffd >= 0 || errno != EPERM)
        return uffd;
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0) {
        errno = EPERM;
        return -1;
    }
    uffd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
    int e = errno;
    close(dev);
    errno = e;
    return uffd;
}

int snapshot_uffd_attach(struct vm *vm, const char *uds_path, char *why, size_t whylen)
{
    struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE};
    struct uffdio_register reg = {
        .range = {.start = (uint64_t)(uintptr_t)vm->mem.host, .len = vm->mem.size},
        .mode = UFFDIO_REGISTER_MODE_MISSING};

    /* A page already there (a VM built ahead reads nothing, but make sure)
     * would never reach the handler: the guest would see zeros. */
    if (madvise(vm->mem.host, vm->mem.size, MADV_DONTNEED) != 0) {
        snprintf(why, whylen, "guest memory: %s", strerror(errno));
        return -1;
    }
    int uffd = new_uffd();
    if (uffd < 0) {
        int e = errno;
        snprintf(why, whylen, "userfaultfd: %s%s", strerror(e),
                 e == EPERM ? " (it needs read-write access to /dev/userfaultfd, "
                              "CAP_SYS_PTRACE or vm.unprivileged_userfaultfd = 1)"
                            : "");
        return -1;
    }
    if (ioctl(uffd, UFFDIO_API, &api) != 0 || ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) {
        snprintf(why, whylen, "userfaultfd: registering guest memory: %s", strerror(errno));
        close(uffd);
        return -1;
    }
    int sock = connect_handler(uds_path, why, whylen);
    if (sock < 0) {
        close(uffd);
        return -1;
    }
    if (send_handshake(sock, vm, uffd) != 0) {
        snprintf(why, whylen, "the page-fault handler at %s: sending the userfaultfd: %s", uds_path,
                 strerror(errno));
        close(sock);
        close(uffd);
        return -1;
    }
    vm->uffd_fd = uffd;
    vm->uffd_sock = sock;
    return 0;
}
