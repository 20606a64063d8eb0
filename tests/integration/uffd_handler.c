/* uffd_handler.c: a page-fault handler for ember's Uffd memory backend
 * (monitor/snapshot_uffd.h), written the way Firecracker's users write
 * theirs, for the integration tests.
 *
 *   uffd_handler SOCK MEMFILE
 *
 * Listens on SOCK, takes one connection, reads the regions (JSON) and the
 * userfaultfd (SCM_RIGHTS) from it, then serves every missing-page fault
 * with UFFDIO_COPY of the same page of MEMFILE (a snapshot's memory file),
 * until the connection closes (the VM's process ended). Prints what it
 * checked and "uffd_handler: served N pages" on stdout; exit status 0, 2
 * on a handshake it does not understand (said on stderr).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define PAGE 4096u

static int fail(const char *what)
{
    fprintf(stderr, "uffd_handler: %s\n", what);
    return 2;
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char body[4096], err[300];
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = body, .iov_len = sizeof(body) - 1};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl)};
    unsigned long long served = 0;

    if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path))
        return fail("usage: uffd_handler SOCK MEMFILE");
    int mfd = open(argv[2], O_RDONLY);
    struct stat st;
    if (mfd < 0 || fstat(mfd, &st) != 0)
        return fail("cannot open the memory file");
    uint8_t *file = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, mfd, 0);
    if (file == MAP_FAILED)
        return fail("cannot map the memory file");
    strcpy(sa.sun_path, argv[1]);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    unlink(argv[1]);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 1) != 0)
        return fail("cannot listen");
    printf("uffd_handler: listening\n");
    fflush(stdout);
    int conn = accept(lfd, NULL, NULL);
    if (conn < 0)
        return fail("accept failed");
    ssize_t n = recvmsg(conn, &msg, 0);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    if (n <= 0 || !cm || cm->cmsg_type != SCM_RIGHTS)
        return fail("no message with a descriptor");
    int uffd;
    memcpy(&uffd, CMSG_DATA(cm), sizeof(int));
    body[n] = '\0';

    json_error_t je;
    json_t *regions = json_loads(body, 0, &je), *r0;
    json_int_t base, size, offset, page_size, page_size_kib;
    if (!json_is_array(regions) || json_array_size(regions) != 1 ||
        !(r0 = json_array_get(regions, 0)) ||
        json_unpack_ex(r0, &je, JSON_STRICT, "{s:I, s:I, s:I, s:I, s:I}", "base_host_virt_addr",
                       &base, "size", &size, "offset", &offset, "page_size", &page_size,
                       "page_size_kib", &page_size_kib) != 0) {
        snprintf(err, sizeof(err), "regions not understood: %.200s (%.60s)", body, je.text);
        return fail(err);
    }
    if (size != st.st_size || offset != 0 || page_size != PAGE || page_size_kib != PAGE) {
        snprintf(err, sizeof(err), "unexpected region: %.250s", body);
        return fail(err);
    }
    printf("uffd_handler: one region of %lld bytes, page size %lld\n", (long long)size,
           (long long)page_size);
    fflush(stdout);

    for (;;) {
        struct pollfd p[2] = {{.fd = uffd, .events = POLLIN}, {.fd = conn, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return fail("poll failed");
        }
        if (p[0].revents & POLLIN) {
            struct uffd_msg m;
            ssize_t got = read(uffd, &m, sizeof(m));
            if (got == (ssize_t)sizeof(m) && m.event == UFFD_EVENT_PAGEFAULT) {
                uint64_t addr = m.arg.pagefault.address & ~(uint64_t)(PAGE - 1);
                uint64_t off = addr - (uint64_t)base;
                if (off >= (uint64_t)size)
                    return fail("a fault outside the region");
                struct uffdio_copy c = {
                    .dst = addr, .src = (uint64_t)(uintptr_t)(file + off), .len = PAGE};
                if (ioctl(uffd, UFFDIO_COPY, &c) == 0)
                    served++;
                else if (errno != EEXIST && errno != EAGAIN)
                    return fail("UFFDIO_COPY failed");
            }
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            char c;
            if (read(conn, &c, 1) <= 0)
                break; /* the VM's process is gone */
        }
        if (p[0].revents & (POLLHUP | POLLERR))
            break;
    }
    printf("uffd_handler: served %llu pages\n", served);
    json_decref(regions);
    return 0;
}
