/* seccomp_probe.c: installs one of ember's real filters (monitor/
 * seccomp_filter.c, linked as is) on its only thread, then makes the call it
 * is told to, so test_seccomp.c can check what is allowed, what is not, and
 * how a violation ends: status 148 and one line naming the call.
 *
 *   seccomp_probe list ROLE          print the calls ROLE allows
 *   seccomp_probe ROLE ACTION        install ROLE's filter, then do ACTION
 *
 * ROLE is vcpu, vcpu_timings or main. The vCPU fd is an eventfd stand-in
 * (fd 3 is made one before the filter goes in). The sigbus-* actions read a
 * page of a file mapping whose file was truncated before the filter went in:
 * watched by mem_fault.h (the read completes on a zero page), or not (the
 * process dies of SIGBUS), or a SIGBUS is sent (it dies of it too). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "monitor/mem_fault.h"
#include "monitor/seccomp_filter.h"

static int role_of(const char *s)
{
    if (strcmp(s, "vcpu") == 0)
        return SECCOMP_ROLE_VCPU;
    if (strcmp(s, "vcpu_timings") == 0)
        return SECCOMP_ROLE_VCPU_TIMINGS;
    if (strcmp(s, "main") == 0)
        return SECCOMP_ROLE_MAIN;
    fprintf(stderr, "unknown role %s\n", s);
    exit(2);
}

int main(int argc, char **argv)
{
    char err[256];
    int vcpu, efd;
    uint64_t one = 1;

    if (argc != 3)
        return 2;
    if (strcmp(argv[1], "list") == 0) {
        for (const char *const *n = seccomp_filter_allowed(role_of(argv[2])); *n; n++)
            printf("%s\n", *n);
        return 0;
    }
    /* Like ember, the process is set up before the filter: malloc (glibc
     * seeds it with getrandom on first use) and stdout's buffer. */
    printf("probe %s %s\n", argv[1], argv[2]);
    fflush(stdout);
    vcpu = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); /* stands in for the vCPU fd */
    efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    /* sigbus-*: two pages of a file, mapped privately, then the file cut
     * to one page; the watched region is the mapping (sigbus-watched) or
     * another one (the handler is installed either way). */
    static struct mem_fault_region region, other;
    volatile uint8_t *lost = NULL;
    if (strncmp(argv[2], "sigbus-", 7) == 0) {
        static uint8_t elsewhere[4096] __attribute__((aligned(4096)));
        int mfd = memfd_create("seccomp-probe", MFD_CLOEXEC);
        uint8_t *map;
        if (mfd < 0 || ftruncate(mfd, 8192) != 0 ||
            (map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 0)) == MAP_FAILED ||
            ftruncate(mfd, 4096) != 0) {
            perror("sigbus set-up");
            return 3;
        }
        region = (struct mem_fault_region){.start = map, .len = 8192};
        other = (struct mem_fault_region){.start = elsewhere, .len = sizeof(elsewhere)};
        if (mem_fault_watch(strcmp(argv[2], "sigbus-watched") == 0 ? &region : &other, err,
                            sizeof(err)) != 0) {
            fprintf(stderr, "watch: %s\n", err);
            return 3;
        }
        lost = map + 4096;
    }
    if (seccomp_filter_install(role_of(argv[1]), vcpu, -1, err, sizeof(err)) != 0) {
        fprintf(stderr, "install: %s\n", err);
        return 3;
    }
    printf("installed\n");
    fflush(stdout);
    const char *a = argv[2];
    long rc = 0;
    if (strcmp(a, "nothing") == 0)
        rc = 0;
    else if (strcmp(a, "socket") == 0)
        rc = socket(AF_INET, SOCK_STREAM, 0);
    else if (strcmp(a, "execve") == 0)
        rc = execve("/bin/true", (char *[]){"true", NULL}, (char *[]){NULL});
    else if (strcmp(a, "openat") == 0)
        rc = syscall(SYS_openat, AT_FDCWD, "/etc/hostname", O_RDONLY) >= 0 ? 0 : -1;
    else if (strcmp(a, "mmap-exec") == 0)
        rc = (long)mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    else if (strcmp(a, "mmap-rw") == 0)
        rc = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
                     MAP_FAILED
                 ? -1
                 : 0;
    else if (strcmp(a, "realloc-big") == 0) {
        /* glibc mmaps a 1 MiB block and grows it with mremap(MREMAP_MAYMOVE) */
        char *p = malloc(1 << 20), *q;
        p[0] = 1;
        q = realloc(p, 8 << 20);
        rc = q && q[0] == 1 ? 0 : -1;
        free(q);
    } else if (strcmp(a, "mremap-fixed") == 0) {
        void *p = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        void *to = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        rc = (long)mremap(p, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    } else if (strcmp(a, "mprotect-exec") == 0) {
        void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        rc = mprotect(p, 4096, PROT_READ | PROT_EXEC);
    } else if (strcmp(a, "kvm-run-own-fd") == 0)
        rc = ioctl(vcpu, KVM_RUN, 0) < 0 && errno == ENOTTY ? 0 : -1; /* eventfd: ENOTTY */
    else if (strcmp(a, "kvm-run-other-fd") == 0)
        rc = ioctl(efd, KVM_RUN, 0);
    else if (strcmp(a, "kvm-set-regs") == 0)
        rc = ioctl(vcpu, KVM_SET_REGS, 0);
    else if (strcmp(a, "eventfd-write") == 0)
        rc = write(efd, &one, 8) == 8 ? 0 : -1;
    else if (strcmp(a, "eventfd-write-4") == 0)
        rc = write(efd, &one, 4);
    else if (strcmp(a, "write-stdout") == 0)
        rc = write(1, "console\n", 8) == 8 ? 0 : -1;
    else if (strcmp(a, "write-other-fd") == 0)
        rc = write(0, "x", 1);
    else if (strcmp(a, "getppid") == 0)
        rc = syscall(SYS_getppid);
    else if (strcmp(a, "sigbus-watched") == 0) {
        uint64_t off = 0;
        rc = lost[1] == 0 && mem_fault_first(&region, &off) == 1 && off == 4096 ? 0 : -1;
    } else if (strcmp(a, "sigbus-unwatched") == 0)
        rc = lost[1];
    else if (strcmp(a, "sigbus-sent") == 0)
        rc = raise(SIGBUS);
    else {
        fprintf(stderr, "unknown action %s\n", a);
        return 2;
    }
    printf("survived %s: %ld\n", a, rc);
    return 0;
}
