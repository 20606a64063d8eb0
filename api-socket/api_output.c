/* api_output.c: log and metrics outputs (see api_output.h). */
#include "api-socket/api_output.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int api_output_open(const char *what, const char *path, struct api_err *e)
{
    struct stat st;
    int flags = O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    int fd;

    /* A FIFO is opened read-write, as Firecracker does: a write-only
     * non-blocking open fails with ENXIO until a reader shows up, and the
     * reader may well be started after ember. */
    if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
        flags |= O_RDWR;
    else
        flags |= O_WRONLY | O_APPEND | O_CREAT;
    fd = open(path, flags, 0600);
    if (fd < 0)
        return api_errf(e, "%s %.200s: %s", what, path, strerror(errno));
    if (fstat(fd, &st) < 0 ||
        !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))) {
        close(fd);
        return api_errf(e, "%s %.200s: not a file or named pipe", what, path);
    }
    return fd;
}

int api_output_write(int fd, const char *buf, size_t len)
{
    ssize_t n;

    do
        n = write(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? 0 : -1;
}
