/* jailer_args.h: the command line of ember-jailer, parsed and validated.
 *
 * Everything that can be checked before the host is touched is checked here
 * (issue 6: "validate everything first"): the id, every path, the uid and gid,
 * every cgroup and resource limit. A caller gets one message naming the
 * argument and the reason, and exit status JAIL_EXIT_ARGS.
 */
#ifndef EMBER_JAILER_ARGS_H
#define EMBER_JAILER_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>

#define JAIL_DEFAULT_BASE   "/srv/jailer"
#define JAIL_DEFAULT_NOFILE 2048u /* Firecracker's default no-file bound */
#define JAIL_MAX_CGROUPS    32
#define JAIL_MAX_RLIMITS    8
#define JAIL_ID_MAX         64

struct jail_cgroup_arg {
    char file[128]; /* e.g. "cpu.shares" */
    char ctrl[64];  /* the controller: what precedes the first '.' */
    const char *value;
};

struct jail_rlimit_arg {
    int resource; /* RLIMIT_FSIZE or RLIMIT_NOFILE */
    rlim_t value;
};

struct jail_args {
    bool cleanup; /* --cleanup: remove a finished jail */
    const char *id;
    const char *exec_file; /* absolute */
    char exec_name[256];   /* last component of exec_file */
    uid_t uid;
    gid_t gid;
    const char *base;          /* --chroot-base-dir, absolute */
    const char *netns;         /* NULL or absolute */
    int cgroup_version;        /* 1 or 2 */
    const char *parent_cgroup; /* relative; default exec_name */
    struct jail_cgroup_arg cgroups[JAIL_MAX_CGROUPS];
    size_t n_cgroups;
    struct jail_rlimit_arg rlimits[JAIL_MAX_RLIMITS];
    size_t n_rlimits;
    bool daemonize;
    bool new_pid_ns;
    char **extra; /* arguments after "--", passed to the exec file */
    int n_extra;
};

/* Parses and validates argv. Returns 0, 1 for --help (usage printed), or -1
 * with a one-line message in err. */
int jail_args_parse(int argc, char **argv, struct jail_args *a, char *err, size_t errlen);
void jail_usage(FILE *out);

/* Firecracker's rule: 1 to 64 of [A-Za-z0-9-]. */
bool jail_id_valid(const char *id);

#endif
