/* jailer_steps.h: ember-jailer's steps, in the order they run, and how a
 * failure in one is reported.
 *
 * A failed step prints `ember-jailer: <step>: <path>: <reason>` and exits with
 * the step's own status, so a script can tell what failed without parsing the
 * message. The table is documented in jailer/README.md; keep both in step.
 */
#ifndef EMBER_JAILER_STEPS_H
#define EMBER_JAILER_STEPS_H

enum jail_step {
    JAIL_STEP_ARGS = 0,     /* exit 2: validate the command line */
    JAIL_STEP_FDS,          /* exit 10: close inherited file descriptors */
    JAIL_STEP_ENV,          /* exit 11: clear the environment */
    JAIL_STEP_CHROOT_DIR,   /* exit 12: create <base>/<exec name>/<id>/root */
    JAIL_STEP_COPY,         /* exit 13: copy the exec file (and its libraries) in */
    JAIL_STEP_RLIMITS,      /* exit 14: set resource limits */
    JAIL_STEP_CGROUPS,      /* exit 15: create and join cgroups */
    JAIL_STEP_MOUNT_NS,     /* exit 16: new mount namespace, private mounts, pivot_root */
    JAIL_STEP_DEVICES,      /* exit 17: create /dev/kvm, /dev/net/tun, /dev/urandom */
    JAIL_STEP_NETNS,        /* exit 18: join the network namespace */
    JAIL_STEP_DAEMONIZE,    /* exit 19: daemonize or new PID namespace, pid file */
    JAIL_STEP_PRIVILEGES,   /* exit 20: drop to uid/gid */
    JAIL_STEP_EXEC,         /* exit 21: exec the monitor */
    JAIL_STEP_CLEANUP,      /* exit 22: --cleanup could not remove the jail */
    JAIL_STEP_CLEANUP_BUSY, /* exit 23: --cleanup: the jail is still running */
};

#define JAIL_EXIT_ARGS 2

/* The exit status of a failure in step. */
int jail_step_exit(enum jail_step step);
const char *jail_step_name(enum jail_step step);

/* The step now running, named by jail_fail(). */
void jail_step_enter(enum jail_step step);

/* Prints `ember-jailer: <step>: <path>: <strerror(err)>` (without the path
 * part when path is NULL) and exits with the step's status. */
_Noreturn void jail_fail(const char *path, int err);
/* Same with a reason of its own instead of strerror(). */
_Noreturn void jail_failf(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
