/* jailer_main.c: ember-jailer, Firecracker's jailer for ember.
 *
 * Runs the steps of issue 6 in order (jailer_steps.h lists them with their
 * exit statuses): validate everything; close inherited fds; clear the
 * environment; create <base>/<exec name>/<id>/root; copy the exec file in;
 * resource limits; cgroups; mount namespace and pivot_root; the three
 * devices; network namespace; daemon or PID namespace (pid file); drop to
 * uid/gid; exec `/<exec name> [SUBCOMMAND] --id ID --start-time-us T
 * --start-time-cpu-us C [ARGS...]`. `--cleanup` removes a finished jail.
 * README.md is the user's documentation.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cpuid_cache.h"
#include "jailer/jailer_args.h"
#include "jailer/jailer_cgroup.h"
#include "jailer/jailer_elf.h"
#include "jailer/jailer_fs.h"
#include "jailer/jailer_jail.h"
#include "jailer/jailer_steps.h"

static const struct {
    const char *name;
    int exit_status;
} steps[] = {
    [JAIL_STEP_ARGS] = {"validate arguments", JAIL_EXIT_ARGS},
    [JAIL_STEP_FDS] = {"close inherited file descriptors", 10},
    [JAIL_STEP_ENV] = {"clear environment", 11},
    [JAIL_STEP_CHROOT_DIR] = {"create jail directory", 12},
    [JAIL_STEP_COPY] = {"copy exec file", 13},
    [JAIL_STEP_RLIMITS] = {"set resource limits", 14},
    [JAIL_STEP_CGROUPS] = {"join cgroups", 15},
    [JAIL_STEP_MOUNT_NS] = {"mount namespace and pivot_root", 16},
    [JAIL_STEP_DEVICES] = {"create devices", 17},
    [JAIL_STEP_NETNS] = {"join network namespace", 18},
    [JAIL_STEP_DAEMONIZE] = {"daemonize or new PID namespace", 19},
    [JAIL_STEP_PRIVILEGES] = {"drop privileges", 20},
    [JAIL_STEP_EXEC] = {"exec", 21},
    [JAIL_STEP_CLEANUP] = {"cleanup", 22},
    [JAIL_STEP_CLEANUP_BUSY] = {"cleanup", 23},
};

static enum jail_step current;

int jail_step_exit(enum jail_step step)
{
    return steps[step].exit_status;
}

const char *jail_step_name(enum jail_step step)
{
    return steps[step].name;
}

void jail_step_enter(enum jail_step step)
{
    current = step;
}

void jail_fail(const char *path, int err)
{
    if (path)
        fprintf(stderr, "ember-jailer: %s: %s: %s\n", steps[current].name, path, strerror(err));
    else
        fprintf(stderr, "ember-jailer: %s: %s\n", steps[current].name, strerror(err));
    exit(steps[current].exit_status);
}

void jail_failf(const char *path, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "ember-jailer: %s: ", steps[current].name);
    if (path)
        fprintf(stderr, "%s: ", path);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(steps[current].exit_status);
}

static uint64_t clock_us(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Every descriptor above stderr goes, whatever the parent left open. */
static void close_inherited(void)
{
    if (close_range(3, ~0u, 0) == 0)
        return;
    /* Kernels before 5.9: walk the descriptor table. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        jail_fail("getrlimit", errno);
    for (rlim_t fd = 3; fd < rl.rlim_cur && fd < 1048576; fd++)
        close((int)fd);
}

static void set_rlimits(const struct jail_args *a)
{
    bool nofile_set = false;

    for (size_t i = 0; i < a->n_rlimits; i++) {
        struct rlimit rl = {a->rlimits[i].value, a->rlimits[i].value};
        const char *name = a->rlimits[i].resource == RLIMIT_FSIZE ? "fsize" : "no-file";
        if (setrlimit(a->rlimits[i].resource, &rl) != 0)
            jail_fail(name, errno);
        nofile_set |= a->rlimits[i].resource == RLIMIT_NOFILE;
    }
    if (!nofile_set) {
        struct rlimit rl = {JAIL_DEFAULT_NOFILE, JAIL_DEFAULT_NOFILE};
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            jail_fail("no-file", errno);
    }
}

/* Is the process in the pid file alive with its root at root? Then the jail
 * is still in use. */
static pid_t jail_running(const char *pid_file, const char *root)
{
    char buf[32], proc_root[64];
    struct stat a, b;
    int fd = open(pid_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t n;
    long pid;

    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    pid = strtol(buf, NULL, 10);
    if (pid <= 0)
        return 0;
    snprintf(proc_root, sizeof(proc_root), "/proc/%ld/root", pid);
    if (stat(proc_root, &a) != 0 || stat(root, &b) != 0)
        return 0;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino ? (pid_t)pid : 0;
}

static int cleanup(const struct jail_args *a)
{
    char jail_dir[4096], root[4200], pid_file[4600], exec_dir[4096], failed[4096];
    pid_t pid;
    int e;

    jail_step_enter(JAIL_STEP_CLEANUP);
    if (snprintf(exec_dir, sizeof(exec_dir), "%s/%s", a->base, a->exec_name) >=
            (int)sizeof(exec_dir) ||
        snprintf(jail_dir, sizeof(jail_dir), "%s/%s", exec_dir, a->id) >= (int)sizeof(jail_dir) ||
        snprintf(root, sizeof(root), "%s/root", jail_dir) >= (int)sizeof(root) ||
        snprintf(pid_file, sizeof(pid_file), "%s/%s.pid", root, a->exec_name) >=
            (int)sizeof(pid_file))
        jail_fail(a->base, ENAMETOOLONG);
    pid = jail_running(pid_file, root);
    if (pid) {
        jail_step_enter(JAIL_STEP_CLEANUP_BUSY);
        jail_failf(jail_dir, "the jail is still running (pid %d)", (int)pid);
    }
    e = jail_cgroups_remove(a->parent_cgroup, a->id, failed, sizeof(failed));
    if (e == EBUSY) {
        jail_step_enter(JAIL_STEP_CLEANUP_BUSY);
        jail_failf(failed, "processes are still in this cgroup");
    }
    if (e)
        jail_fail(failed, e);
    e = jail_remove_tree(jail_dir, failed, sizeof(failed));
    if (e)
        jail_fail(failed, e);
    /* Shared by every jail of this exec file: removed once empty. */
    rmdir(exec_dir);
    return 0;
}

/* The supported-CPUID answer, sealed for the ember inside: without /proc
 * and /sys it cannot check the host cache's key (monitor/cpuid_cache.h), and
 * asking KVM costs ~0.4 ms a boot here. Best effort: without the file, ember
 * asks KVM itself. */
static void seal_cpuid(const char *root)
{
    char path[4200];
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

    if (kvm < 0)
        return;
    snprintf(path, sizeof(path), "%s/run", root);
    (void)mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/run/ember", root);
    (void)mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/run/ember/kvm-cpuid", root);
    (void)unlink(path); /* a jail directory that is reused */
    (void)cpuid_cache_seal(kvm, path);
    close(kvm);
}

int main(int argc, char **argv)
{
    uint64_t start_us = clock_us(CLOCK_MONOTONIC);
    char err[512], root[4096], failed[4096], dst[4400], pid_file[4400];
    char start_s[32], cpu_s[32];
    struct jail_args a;
    int rc, netns_fd = -1, dev_null = -1, e;
    const char *which;

    umask(022);
    /* 1. Validate everything before touching the host. */
    jail_step_enter(JAIL_STEP_ARGS);
    rc = jail_args_parse(argc, argv, &a, err, sizeof(err));
    if (rc == 1)
        return 0;
    if (rc == 0 && !a.cleanup && jail_cgroups_check(&a, err, sizeof(err)) != 0)
        rc = -1;
    if (rc != 0) {
        fprintf(stderr, "ember-jailer: %s\n", err);
        jail_usage(stderr);
        return JAIL_EXIT_ARGS;
    }
    if (a.cleanup)
        return cleanup(&a);
    rc = snprintf(root, sizeof(root), "%s/%s/%s/root", a.base, a.exec_name, a.id);
    if (rc < 0 || (size_t)rc >= sizeof(root) - 300) {
        fprintf(stderr, "ember-jailer: --chroot-base-dir \"%s\": path too long\n", a.base);
        return JAIL_EXIT_ARGS;
    }

    /* 2. Nothing the caller had open reaches the jail. */
    jail_step_enter(JAIL_STEP_FDS);
    close_inherited();
    /* What the later steps need from outside the jail, opened now. */
    if (a.netns) {
        netns_fd = open(a.netns, O_RDONLY | O_CLOEXEC);
        if (netns_fd < 0)
            jail_fail(a.netns, errno);
    }
    if (a.daemonize) {
        dev_null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (dev_null < 0)
            jail_fail("/dev/null", errno);
    }

    /* 3. Nothing the caller had in its environment either. */
    jail_step_enter(JAIL_STEP_ENV);
    if (clearenv() != 0)
        jail_fail(NULL, ENOMEM);

    /* 4. <base>/<exec name>/<id>/root. The jail directory may exist already
     * (the operator put the guest or the config file in it). */
    jail_step_enter(JAIL_STEP_CHROOT_DIR);
    for (int attempt = 0;; attempt++) {
        e = jail_mkdir_p(root, 0755, failed, sizeof(failed));
        /* A concurrent --cleanup of another jail may remove <exec name>/
         * between two mkdirs. */
        if (e != ENOENT || attempt == 20)
            break;
    }
    if (e)
        jail_fail(failed, e);
    /* Below the base, every component must be a real directory: a symlink
     * planted there would move the bind mount and the chown of step 9 onto
     * whatever it points at. */
    for (int up = 0; up < 3; up++) {
        char comp[4096];
        struct stat st;
        snprintf(comp, sizeof(comp), "%s", root);
        for (int k = 0; k < up; k++)
            *strrchr(comp, '/') = '\0';
        if (lstat(comp, &st) != 0)
            jail_fail(comp, errno);
        if (!S_ISDIR(st.st_mode))
            jail_failf(comp, "not a directory (a symbolic link?)");
    }

    /* 5. The exec file, and its shared libraries when it has any. */
    jail_step_enter(JAIL_STEP_COPY);
    snprintf(dst, sizeof(dst), "%s/%s", root, a.exec_name);
    e = jail_copy_file(a.exec_file, dst, 0755, &which);
    if (e)
        jail_fail(which, e);
    jail_copy_libraries(a.exec_file, root);
    seal_cpuid(root);

    /* 6. Resource limits, inherited by everything the monitor starts. */
    jail_step_enter(JAIL_STEP_RLIMITS);
    set_rlimits(&a);

    /* 7. cgroups (v1 or v2, as --cgroup-version says). */
    jail_step_enter(JAIL_STEP_CGROUPS);
    jail_cgroups_join(&a);

    /* 8. The root becomes "/" (the host's /dev/userfaultfd looked at
     * first: its minor is dynamic). */
    struct stat ufd;
    dev_t ufd_dev = stat("/dev/userfaultfd", &ufd) == 0 && S_ISCHR(ufd.st_mode) ? ufd.st_rdev : 0;
    jail_step_enter(JAIL_STEP_MOUNT_NS);
    jail_pivot(root);

    /* 9. The only devices the monitor may open. */
    jail_step_enter(JAIL_STEP_DEVICES);
    jail_make_devices(a.uid, a.gid, ufd_dev);

    /* 10. The network namespace (its file was opened before the pivot). */
    jail_step_enter(JAIL_STEP_NETNS);
    if (netns_fd >= 0)
        jail_join_netns(netns_fd, a.netns);

    /* 11. Detach if asked; the pid file names the process that execs. */
    jail_step_enter(JAIL_STEP_DAEMONIZE);
    snprintf(pid_file, sizeof(pid_file), "/%s.pid", a.exec_name);
    jail_detach(a.daemonize, a.new_pid_ns, dev_null, pid_file);
    if (dev_null >= 0)
        close(dev_null);

    /* 12. From here on the process holds no privilege. */
    jail_step_enter(JAIL_STEP_PRIVILEGES);
    jail_drop_privileges(a.uid, a.gid);

    /* 13. exec. A first extra argument that is not an option is a subcommand
     * (`-- run /hello`): --id and the start times go after it. */
    jail_step_enter(JAIL_STEP_EXEC);
    char **args = calloc((size_t)a.n_extra + 9, sizeof(char *));
    char exec_path[300];
    int n = 0, k = 0;
    if (!args)
        jail_fail(NULL, ENOMEM);
    snprintf(exec_path, sizeof(exec_path), "/%s", a.exec_name);
    snprintf(start_s, sizeof(start_s), "%llu", (unsigned long long)start_us);
    snprintf(cpu_s, sizeof(cpu_s), "%llu", (unsigned long long)clock_us(CLOCK_PROCESS_CPUTIME_ID));
    args[n++] = a.exec_name;
    if (a.n_extra && a.extra[0][0] != '-')
        args[n++] = a.extra[k++];
    args[n++] = "--id";
    args[n++] = (char *)a.id;
    args[n++] = "--start-time-us";
    args[n++] = start_s;
    args[n++] = "--start-time-cpu-us";
    args[n++] = cpu_s;
    while (k < a.n_extra)
        args[n++] = a.extra[k++];
    args[n] = NULL;
    signal(SIGPIPE, SIG_DFL);
    execve(exec_path, args, (char *[]){NULL});
    jail_fail(exec_path, errno);
}
