/* exit_codes.h: the exit statuses of the `ember` process.
 *
 * A guest that ends through the exit port makes `ember` exit with the guest's
 * own status (0-255). The monitor's own failures follow Firecracker's table so
 * that tooling written for it reads them the same way. Documented in README.md.
 */
#ifndef EMBER_EXIT_CODES_H
#define EMBER_EXIT_CODES_H

enum ember_exit {
    EMBER_EXIT_OK = 0,
    EMBER_EXIT_GENERIC = 1,       /* host-side failure: /dev/kvm, ioctl, memory */
    EMBER_EXIT_UNEXPECTED = 2,    /* a bug in ember */
    EMBER_EXIT_BAD_SYSCALL = 148, /* seccomp violation */
    EMBER_EXIT_SIGBUS = 149,
    EMBER_EXIT_SIGSEGV = 150,
    EMBER_EXIT_SIGXFSZ = 151,
    EMBER_EXIT_BAD_CONFIG = 152, /* configuration or guest image rejected */
    EMBER_EXIT_ARG_PARSING = 153,
    EMBER_EXIT_SIGXCPU = 154,
    EMBER_EXIT_SIGPIPE = 155,
    EMBER_EXIT_SIGHUP = 156,
    EMBER_EXIT_SIGILL = 157,
    EMBER_EXIT_GUEST_FAILED =
        160, /* triple fault, KVM internal error, failed entry, unknown exit */
};

#endif
