/* jailer_jail.c: namespaces, devices and privileges (see jailer_jail.h).
 *
 * Major and minor numbers are Linux's fixed assignments
 * (Documentation/admin-guide/devices.txt): misc 10/232 kvm, misc 10/200
 * net/tun, mem 1/9 urandom. /dev/userfaultfd (Linux 6.1+, for a snapshot
 * load's Uffd memory backend) has a dynamic minor: the host's node says
 * which, read before the pivot.
 */
#include "jailer/jailer_jail.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jailer/jailer_steps.h"

void jail_pivot(const char *root)
{
    if (unshare(CLONE_NEWNS) != 0)
        jail_fail("unshare(CLONE_NEWNS)", errno);
    /* Nothing done below may propagate back to the host's mounts. */
    if (mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL) != 0)
        jail_fail("/", errno);
    /* pivot_root needs the new root to be a mount point. */
    if (mount(root, root, NULL, MS_BIND, NULL) != 0)
        jail_fail(root, errno);
    /* No set-uid binary inside the jail means anything. Devices must work:
     * no MS_NODEV. */
    if (mount(NULL, root, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID, NULL) != 0)
        jail_fail(root, errno);
    if (chdir(root) != 0)
        jail_fail(root, errno);
    if (mkdir("old_root", 0700) != 0 && errno != EEXIST)
        jail_fail("old_root", errno);
    if (syscall(SYS_pivot_root, ".", "old_root") != 0)
        jail_fail(root, errno);
    if (umount2("old_root", MNT_DETACH) != 0)
        jail_fail("/old_root", errno);
    if (rmdir("old_root") != 0)
        jail_fail("/old_root", errno);
    /* For good measure, as Firecracker's jailer does. */
    if (chroot(".") != 0 || chdir("/") != 0)
        jail_fail("/", errno);
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        jail_fail(path, errno);
}

static void make_node(const char *path, unsigned major, unsigned minor, uid_t uid, gid_t gid)
{
    if (mknod(path, S_IFCHR | S_IRUSR | S_IWUSR, makedev(major, minor)) != 0)
        jail_fail(path, errno);
    if (chown(path, uid, gid) != 0)
        jail_fail(path, errno);
}

void jail_make_devices(uid_t uid, gid_t gid, dev_t userfaultfd)
{
    make_dir("/dev");
    make_dir("/dev/net");
    make_node("/dev/kvm", 10, 232, uid, gid);
    make_node("/dev/net/tun", 10, 200, uid, gid);
    make_node("/dev/urandom", 1, 9, uid, gid);
    if (userfaultfd)
        make_node("/dev/userfaultfd", major(userfaultfd), minor(userfaultfd), uid, gid);
    /* The root itself is the monitor's, so it can create its API socket. */
    if (chown("/", uid, gid) != 0)
        jail_fail("/", errno);
}

void jail_join_netns(int fd, const char *path)
{
    if (setns(fd, CLONE_NEWNET) != 0)
        jail_fail(path, errno);
    close(fd);
}

static void write_pid(const char *pid_file, pid_t pid)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
    int fd = open(pid_file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);

    if (fd < 0)
        jail_fail(pid_file, errno);
    if (write(fd, buf, (size_t)n) != n || close(fd) != 0)
        jail_fail(pid_file, errno ? errno : EIO);
}

void jail_detach(bool daemonize, bool new_pid_ns, int dev_null, const char *pid_file)
{
    pid_t child;

    if (!daemonize && !new_pid_ns) {
        write_pid(pid_file, getpid());
        return;
    }
    /* The next child is init (pid 1) of the new namespace. */
    if (new_pid_ns && unshare(CLONE_NEWPID) != 0)
        jail_fail("unshare(CLONE_NEWPID)", errno);
    child = fork();
    if (child < 0)
        jail_fail("fork", errno);
    if (child > 0) {
        write_pid(pid_file, child);
        _exit(0);
    }
    /* Forking first means setsid() cannot fail for a process group leader
     * (Firecracker's jailer calls it in place and fails then). */
    if (daemonize) {
        if (setsid() < 0)
            jail_fail("setsid", errno);
        for (int fd = 0; fd < 3; fd++)
            if (dup2(dev_null, fd) < 0)
                jail_fail("/dev/null", errno);
    }
}

void jail_drop_privileges(uid_t uid, gid_t gid)
{
    uid_t r, e, s;
    gid_t rg, eg, sg;

    if (setgroups(0, NULL) != 0)
        jail_fail("setgroups", errno);
    if (setresgid(gid, gid, gid) != 0)
        jail_fail("setresgid", errno);
    if (setresuid(uid, uid, uid) != 0)
        jail_fail("setresuid", errno);
    if (getresuid(&r, &e, &s) != 0 || r != uid || e != uid || s != uid ||
        getresgid(&rg, &eg, &sg) != 0 || rg != gid || eg != gid || sg != gid)
        jail_failf("setresuid", "the ids did not change");
}
