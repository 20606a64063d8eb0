/* jailer_jail.h: the steps that confine the process itself: mount namespace
 * and pivot_root, the three device nodes, the network namespace, daemon or
 * PID namespace, and the drop to uid/gid. Each fails through jail_fail(). */
#ifndef EMBER_JAILER_JAIL_H
#define EMBER_JAILER_JAIL_H

#include <stdbool.h>
#include <sys/types.h>

/* New mount namespace, every mount private, root bind-mounted on itself
 * (nosuid), pivot_root into it, the old root detached. Afterwards "/" is
 * root. */
void jail_pivot(const char *root);
/* /dev/kvm, /dev/net/tun, /dev/urandom (only these), owned by uid:gid. */
void jail_make_devices(uid_t uid, gid_t gid, dev_t userfaultfd);
/* setns() into the network namespace open as fd (path for messages). */
void jail_join_netns(int fd, const char *path);
/* With new_pid_ns, unshare(CLONE_NEWPID); with either flag, fork. The parent
 * writes the child's pid to pid_file (inside the jail) and exits 0; with
 * daemonize the child calls setsid() and points 0, 1 and 2 at dev_null.
 * Without either flag the calling process writes its own pid and goes on.
 * Returns in the process that will exec. */
void jail_detach(bool daemonize, bool new_pid_ns, int dev_null, const char *pid_file);
/* setgroups(none), setresgid, setresuid; checked afterwards. */
void jail_drop_privileges(uid_t uid, gid_t gid);

#endif
