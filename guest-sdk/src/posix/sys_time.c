/* sys_time.c: clocks from the TSC, and sleeping.
 *
 * Time costs no VM exit: CLOCK_MONOTONIC is the TSC since the guest was
 * entered, scaled by the TSC frequency; CLOCK_REALTIME adds the boot-info
 * realtime_ns (the host's clock at entry under ember, the CMOS RTC under
 * PVH), and after a snapshot restore counts from the wall clock the monitor
 * gave (boot_restore.c). The frequency comes from the boot info (ember asks KVM), else from
 * CPUID: leaf 0x15 (TSC/crystal ratio), leaf 0x16 (base MHz), the hypervisor
 * leaf 0x40000010 (TSC kHz, VMware/QEMU convention); if none answers, the SDK
 * assumes 2 GHz (documented in README.md: clocks are then only roughly
 * right). The scaling is a 32.32 fixed-point multiply, no division at run
 * time.
 *
 * Sleeping under ember is one `outl` of a struct ember_sleep: the monitor
 * sleeps on the host, so a sleeping guest burns no host CPU. Under PVH the
 * SDK spins with `pause` until the deadline.
 */
#include <errno.h>
#include <time.h>

#include "arch/cpu_irq.h"
#include "sdk.h"

#define FALLBACK_TSC_KHZ 2000000u

static uint64_t tsc0;
static uint64_t tsc_khz;
static uint64_t ns_per_tsc_32;           /* nanoseconds per TSC tick, 32.32 fixed point */
static uint64_t rt_base_ns, rt_base_tsc; /* see ember_realtime_ns */

/* Only when the loader did not say (PVH): CPUID at CPL3 costs ~27 us on
 * kvm_pvm, so the ember path never gets here. */
static COLD uint64_t cpuid_tsc_khz(void)
{
    uint32_t r[4];
    cpuid(0, 0, r);
    uint32_t max = r[0];
    if (max >= 0x15) {
        cpuid(0x15, 0, r); /* EAX denominator, EBX numerator, ECX crystal Hz */
        if (r[0] && r[1] && r[2])
            return (uint64_t)r[2] * r[1] / r[0] / 1000;
    }
    if (max >= 0x16) {
        cpuid(0x16, 0, r); /* EAX base frequency in MHz */
        if (r[0] & 0xffff)
            return (uint64_t)(r[0] & 0xffff) * 1000;
    }
    if (ember_cpuid1[2] & (1u << 31)) { /* running under a hypervisor */
        cpuid(0x40000000, 0, r);
        if (r[0] >= 0x40000010 && r[0] < 0x40000100) {
            cpuid(0x40000010, 0, r);
            if (r[0])
                return r[0];
        }
    }
    return 0;
}

void ember_time_init(uint64_t tsc_at_entry)
{
    tsc0 = tsc_at_entry;
    tsc_khz = ember_bi.tsc_khz;
    if (tsc_khz == 0)
        tsc_khz = cpuid_tsc_khz();
    if (tsc_khz == 0)
        tsc_khz = FALLBACK_TSC_KHZ;
    ember_bi.tsc_khz = tsc_khz;
    ns_per_tsc_32 = (1000000ull << 32) / tsc_khz;
    rt_base_ns = ember_bi.realtime_ns;
    rt_base_tsc = tsc_at_entry;
}

uint64_t ember_tsc_khz(void)
{
    return tsc_khz;
}

uint64_t ember_monotonic_ns(void)
{
    uint64_t d = rdtsc() - tsc0;
    return (uint64_t)(((unsigned __int128)d * ns_per_tsc_32) >> 32);
}

/* The wall clock is rt_base_ns at TSC rt_base_tsc, plus the ticks since: at
 * boot the entry TSC and the boot-info time, after a restore what the
 * monitor wrote into the restore page (boot_restore.c). */
void ember_time_restored(uint64_t realtime_ns, uint64_t tsc)
{
    rt_base_ns = realtime_ns;
    rt_base_tsc = tsc;
}

uint64_t ember_realtime_ns(void)
{
    ember_restore_poll();
    uint64_t d = rdtsc() - rt_base_tsc;
    return rt_base_ns + (uint64_t)(((unsigned __int128)d * ns_per_tsc_32) >> 32);
}

int ember_clock_ns(int clock, uint64_t *ns)
{
    switch (clock) {
    case CLOCK_REALTIME:
    case CLOCK_REALTIME_COARSE:
    case CLOCK_TAI:
        *ns = ember_realtime_ns();
        return 0;
    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_MONOTONIC_COARSE:
    case CLOCK_BOOTTIME:
    case CLOCK_PROCESS_CPUTIME_ID: /* one vCPU, one process: all the time */
    case CLOCK_THREAD_CPUTIME_ID:
        *ns = ember_monotonic_ns();
        return 0;
    default:
        return -EINVAL;
    }
}

static uint64_t idle_ns;

uint64_t ember_idle_ns(void)
{
    return idle_ns;
}

void ember_idle_add(uint64_t ns)
{
    idle_ns += ns;
}

static bool never_ready(void *arg)
{
    (void)arg;
    return false;
}

void ember_sleep_ns(uint64_t ns)
{
    if (ns == 0)
        return;
    if (ember_wait_timer_hook && ember_irq_can_sleep()) {
        /* A driver with timers of its own (the network stack: TCP
         * retransmissions, ACKs, the DHCP lease's renewal) keeps them
         * running while the program sleeps: a wait (hlt until the deadline
         * or the next timer) instead of the monitor's sleep port. */
        ember_wait(never_ready, NULL, ns);
        return;
    }
    idle_ns += ns;
    ember_console_flush(); /* what was printed shows before the pause */
    if (ember_kind == EMBER_BOOT_KIND_EMBER) {
        struct ember_sleep s = {.ns = ns};
        outl(EMBER_PORT_SLEEP, (uint32_t)(uintptr_t)&s);
        return;
    }
    uint64_t end = ember_monotonic_ns() + ns;
    while (ember_monotonic_ns() < end)
        __asm__ volatile("pause");
}
