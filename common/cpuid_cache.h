/* cpuid_cache.h: KVM_GET_SUPPORTED_CPUID, remembered per host boot.
 *
 * The supported-CPUID query is the single most expensive step of creating a
 * VM on hosts whose CPUID instruction traps (nested and software KVM: 0.4-0.7
 * ms on our development machines, a fifth of a whole boot), and its answer
 * only changes when the kernel, the KVM modules or the CPU do. So the answer
 * is kept in a small file under the run directory (EMBER_RUN_DIR, default
 * /run/ember), keyed by the boot id, the kernel's release and version and the
 * identity of the loaded KVM modules (inode and ctime of /sys/module/kvm*,
 * which change on every module load). A missing, foreign, stale or malformed
 * cache is ignored and rewritten; anything unusable falls back to the ioctl.
 */
#ifndef EMBER_CPUID_CACHE_H
#define EMBER_CPUID_CACHE_H

#include <linux/kvm.h>

#define CPUID_MAX_ENTRIES 256

/* Fills cpuid (room for CPUID_MAX_ENTRIES entries) with what KVM supports,
 * from the cache or from the ioctl on kvm_fd. Returns 0 or an errno. */
int cpuid_cache_get(int kvm_fd, struct kvm_cpuid2 *cpuid);

/* For ember-jailer: a jail has neither /proc nor /sys, so the ember inside
 * cannot check the cache key. The jailer, which can, writes a sealed copy at
 * path (read-only, owned by root): its key says "sealed by the jailer" plus
 * the kernel's uname, and a jailed ember trusts such a file only when no
 * ordinary key can be made, root owns it and nobody else may write it.
 * Returns 0 or an errno. */
int cpuid_cache_seal(int kvm_fd, const char *path);

#endif
