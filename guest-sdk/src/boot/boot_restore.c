/* boot_restore.c: noticing that this guest was restored from a snapshot.
 *
 * The monitor bumps ember_restore_info.generation (ember/abi.h, at
 * EMBER_LOW_RESTORE) before a restored guest runs again, with the host's
 * wall clock against the guest TSC and fresh entropy. Everything that
 * depends on "now" or on secrecy checks the generation where it is used:
 * reading the wall clock and drawing random bytes each start with one load
 * and compare (ember_restore_poll), so a restored guest's first
 * clock_gettime already has the right time and two VMs restored from one
 * snapshot never draw the same bytes. Monotonic time needs nothing: the
 * monitor restores the guest TSC, so it just continues.
 */
#include "sdk.h"

_Static_assert(sizeof(struct ember_restore_info) <= EMBER_LOW_RESTORE_GUEST - EMBER_LOW_RESTORE,
               "the monitor's part of the restore page stays clear of the guest's (virtio.c)");

static uint64_t seen;

static const volatile struct ember_restore_info *info(void)
{
    return (const volatile struct ember_restore_info *)(uintptr_t)EMBER_LOW_RESTORE;
}

uint64_t ember_restore_generation(void)
{
    /* Only ember's monitor writes the page; elsewhere (PVH) it is whatever
     * the loader left at that address. */
    if (ember_kind != EMBER_BOOT_KIND_EMBER)
        return 0;
    return info()->generation;
}

uint64_t ember_restore_vsock_cid(void)
{
    if (ember_restore_generation() == 0)
        return 0; /* never restored (or not by ember): no such page */
    return info()->vsock_cid;
}

void ember_restore_poll(void)
{
    uint64_t gen = ember_restore_generation();
    uint8_t entropy[32];

    if (gen == seen)
        return;
    seen = gen;
    const volatile struct ember_restore_info *ri = info();
    for (unsigned i = 0; i < sizeof(entropy); i++)
        entropy[i] = ri->entropy[i];
    ember_time_restored(ri->realtime_ns, ri->tsc);
    ember_random_reseed(entropy);
}
