/* seccomp_placeholders.h: the constants that stand for run-time values in
 * the prebuilt filters (seccomp_gen.c writes them, seccomp_filter.c replaces
 * them before loading). Chosen to be no request number, flag or descriptor
 * the filters compare against otherwise. */
#ifndef EMBER_SECCOMP_PLACEHOLDERS_H
#define EMBER_SECCOMP_PLACEHOLDERS_H

/* The vCPU fd that ioctl(KVM_RUN) may target. */
#define SECCOMP_PH_VCPU_FD 0x5ecc0000u
/* A restored VM's memory file, whose size the vCPU thread may fstat. */
#define SECCOMP_PH_MEM_FD 0x5ecc0001u
/* The process's own pid (tgkill of SIGBUS by the SIGBUS handler). */
#define SECCOMP_PH_PID 0x5ecc0002u
/* Anonymous-inode descriptors (eventfds) that may be read and written 8
 * bytes at a time: slot i. Unused slots become SECCOMP_NO_FD. */
#define SECCOMP_ANON_SLOTS 48u
/* The vCPU filters come with this many slots (seccomp_gen.c says why). */
// clang-format off
#define SECCOMP_SLOT_VARIANTS {2u, 12u, 48u}
// clang-format on
#define SECCOMP_PH_ANON_FD(i) (0x5ecc0100u + (unsigned)(i))
/* No descriptor has this number: RLIMIT_NOFILE is capped by fs.nr_open,
 * which is at most 2^30. */
#define SECCOMP_NO_FD 0x7fffffffu

#endif
