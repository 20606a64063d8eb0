/* test_mem_fault.c: the SIGBUS handler for file-backed memory
 * (monitor/mem_fault.c) and its use while a restore hashes a memory file
 * (monitor/snapshot_mem.c). A file mapped privately and then cut loses its
 * pages: reads of a watched region complete on zeros and are recorded,
 * anything else still kills the process with SIGBUS. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monitor/mem_fault.h"
#include "monitor/snapshot_mem.h"

#define PAGE 4096u

/* pages pages of a file (of 0x5a bytes), mapped privately, then the file
 * cut to keep pages. */
static uint8_t *cut_mapping(unsigned pages, unsigned keep, int *fd_out)
{
    int fd = memfd_create("test-mem-fault", MFD_CLOEXEC);
    uint8_t *buf = malloc((size_t)pages * PAGE);

    cr_assert(fd >= 0 && buf);
    memset(buf, 0x5a, (size_t)pages * PAGE);
    cr_assert_eq(write(fd, buf, (size_t)pages * PAGE), (ssize_t)(pages * PAGE));
    free(buf);
    uint8_t *p = mmap(NULL, (size_t)pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    cr_assert(p != MAP_FAILED);
    cr_assert_eq(p[0], 0x5a);
    cr_assert_eq(ftruncate(fd, (off_t)keep * PAGE), 0);
    if (fd_out)
        *fd_out = fd;
    else
        close(fd);
    return p;
}

static int notified;
static void count(void *arg)
{
    (void)arg;
    notified++;
}

Test(mem_fault, a_lost_page_of_a_watched_region_reads_as_zeros_and_is_recorded)
{
    char err[128];
    uint64_t off = 77;
    volatile uint8_t *p = cut_mapping(4, 1, NULL);
    struct mem_fault_region r = {.start = (uint8_t *)p, .len = 4 * PAGE, .notify = count};

    cr_assert_eq(mem_fault_watch(&r, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(mem_fault_first(&r, &off), 0);
    cr_assert_eq(p[100], 0x5a, "a page the file still has");
    cr_assert_eq(p[2 * PAGE + 5], 0, "a lost page reads as zeros");
    cr_assert_eq(mem_fault_first(&r, &off), 1);
    cr_assert_eq(off, 2 * PAGE);
    p[2 * PAGE + 5] = 9; /* the page in its place is writable */
    cr_assert_eq(p[2 * PAGE + 5], 9);
    cr_assert_eq(p[3 * PAGE], 0);
    cr_assert_eq(mem_fault_first(&r, &off), 1);
    cr_assert_eq(off, 2 * PAGE, "the first fault is the one recorded");
    cr_assert_eq(notified, 2);
    mem_fault_unwatch(&r);
    munmap((void *)p, 4 * PAGE);
}

/* Killed by SIGBUS, as without the handler: in sanitizer builds, the
 * handler gives the sanitizer's own SIGBUS report back its turn (it was
 * there first), and that report ends the process with status 1. */
#ifdef __SANITIZE_ADDRESS__
#define KILLED_BY_SIGBUS(ws) (WIFSIGNALED(ws) ? WTERMSIG(ws) == SIGBUS : WEXITSTATUS(ws) == 1)
#else
#define KILLED_BY_SIGBUS(ws) (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGBUS)
#endif

/* In a child: *addr read; returns how the child ended. */
static int child_reads(volatile uint8_t *addr)
{
    pid_t pid = fork();
    int ws;

    cr_assert(pid >= 0);
    if (pid == 0)
        _exit(addr[0] == 0 ? 0 : 1);
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    return ws;
}

Test(mem_fault, any_other_sigbus_still_kills)
{
    char err[128];
    uint8_t *watched = cut_mapping(2, 1, NULL), *other = cut_mapping(2, 1, NULL);
    struct mem_fault_region r = {.start = watched, .len = 2 * PAGE};

    cr_assert_eq(mem_fault_watch(&r, err, sizeof(err)), 0, "%s", err);
    int ws = child_reads(other + PAGE);
    cr_assert(KILLED_BY_SIGBUS(ws), "status 0x%x", ws);
    ws = child_reads(watched + PAGE);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "status 0x%x", ws);
    mem_fault_unwatch(&r);
    ws = child_reads(watched + PAGE);
    cr_assert(KILLED_BY_SIGBUS(ws), "unwatched: status 0x%x", ws);
    /* A SIGBUS sent, not raised by an access, kills too. */
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        cr_assert_eq(mem_fault_watch(&r, err, sizeof(err)), 0);
        raise(SIGBUS);
        _exit(0);
    }
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    cr_assert(KILLED_BY_SIGBUS(ws), "sent: status 0x%x", ws);
}

/* A restore hashes the memory file through a mapping: a file shorter than
 * the mapping (cut while it is read) is refused, not a SIGBUS. */
Test(mem_fault, a_memory_file_cut_while_it_is_hashed_is_refused)
{
    char path[] = "/tmp/ember-test-mem-fault-XXXXXX", err[256];
    uint8_t digest[32] = {0};
    bool hashed = false;
    int fd = mkstemp(path);

    cr_assert(fd >= 0);
    cr_assert_eq(ftruncate(fd, 3 * PAGE), 0);
    int rc = snapshot_mem_verify(path, fd, 8 * PAGE, digest, &hashed, err, sizeof(err));
    close(fd);
    unlink(path);
    cr_assert_eq(rc, -1);
    cr_assert(hashed);
    cr_assert_str_eq(err, "memory file was truncated while it was checked (at byte 12288)");
}
