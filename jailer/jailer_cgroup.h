/* jailer_cgroup.h: the jail's cgroups, v1 and v2.
 *
 * Like Firecracker's jailer: each --cgroup FILE=VALUE names its controller
 * (what precedes the first '.' of FILE). With --cgroup-version 1 the
 * controller's own hierarchy is found in /proc/mounts; with 2, the cgroup2
 * mount. In each hierarchy used the jailer creates <mount>/<parent>/<id>
 * (cpuset v1: cpus and mems inherited from the parent, as the kernel needs
 * them before a task may join), writes the values, then moves itself in.
 * v2 controllers are enabled in cgroup.subtree_control from the mount down to
 * <parent>. No --cgroup: no cgroup is created or joined.
 *
 * jail_cgroups_remove() is the clean-up half: it removes <parent>/<id> in
 * every cgroup hierarchy mounted (v1 and v2). Parents stay: an operator may
 * have put limits shared by all jails on them.
 */
#ifndef EMBER_JAILER_CGROUP_H
#define EMBER_JAILER_CGROUP_H

#include <stddef.h>

#include "jailer/jailer_args.h"

/* Checks that every controller named is mounted (validation step). Returns 0
 * or -1 with a message in err. */
int jail_cgroups_check(const struct jail_args *a, char *err, size_t errlen);
/* Creates, sets and joins (the calling process). Fails through jail_fail(). */
void jail_cgroups_join(const struct jail_args *a);
/* Removes <parent>/<id> from every hierarchy. Returns 0, or an errno
 * (EBUSY: processes remain) with the path in failed. */
int jail_cgroups_remove(const char *parent, const char *id, char *failed, size_t failed_len);

#endif
