/* cpu_irq.c: device interrupts into an SDK guest, and waiting for them.
 *
 * Nothing here runs at boot: the first driver that attaches a GSI
 * (ember_irq_attach, called when a device is first opened) sets up
 *  - a full 256-gate IDT in a heap page of its own: the 32 exception gates copied from
 *    ember_idt, vectors IRQ_VECTOR_BASE + GSI for GSIs 0-47, the TSC-deadline
 *    timer (TIMER_VECTOR) and the spurious vector, all on IST2 (an interrupt
 *    taken while an exception is being handled on IST1 must not reset that
 *    stack); loaded with `lidt` through the ember_lidt_trap `ud2`, since the
 *    application runs at CPL3. ember_idt (guest.h) is no longer used after
 *    that;
 *  - the local APIC (xAPIC MMIO at 0xfee00000, SDM Vol. 3A §11.4): software
 *    enabled with spurious vector 0xff, LINT0 masked (KVM resets it to
 *    ExtINT, and the legacy PIC sees the same GSIs: a PIC interrupt would
 *    arrive on a vector the PIC was never programmed for), TPR 0, and the
 *    timer in TSC-deadline mode when CPUID.1:ECX[24] says it exists;
 *  - per GSI, the IOAPIC redirection entry (82093AA datasheet §3.2.4; GSIs
 *    24-47 on QEMU microvm's second IOAPIC at 0xfec10000): edge, active high,
 *    fixed delivery, physical destination APIC 0. ember raises device
 *    interrupts with a KVM irqfd, which pulses the line: edge-triggered.
 *    QEMU's virtio-mmio holds a level until the driver writes InterruptACK,
 *    so under PVH drivers acknowledge each interrupt (virtio.c) before they
 *    look at their rings, and the next completion makes a new edge.
 *
 * The stubs in cpu_entry.S record "GSI g fired" in ember_irq_pending, count
 * in ember_irq_count and EOI: a few instructions at CPL0, no loop.
 *
 * Waiting (ember_wait): on hardware the application runs at CPL3 with IF = 0
 * and interrupts arrive only inside the `sti; hlt` of ember_hlt_trap; on
 * kvm_pvm CPL3 runs with IF = 1 whatever RFLAGS says, and interrupts may
 * arrive at any instruction. Both are race-free the same way: the waiter
 * reads ember_irq_count, tests ready(), and asks the #UD handler to `hlt`
 * only if the count has not moved since (tested at CPL0 with interrupts
 * off, then `sti; hlt`, whose STI shadow admits no interrupt in between).
 *
 * Spin, then sleep: a completion usually lands a few microseconds after the
 * request; a wake-up from hlt (irqfd -> IOAPIC -> LAPIC -> vector into a
 * halted vCPU) takes ~170-190 us on kvm_pvm, and an interrupt taken at all
 * costs an emulated CPL0 entry. So the waiter spins at CPL3 on ready() for
 * a budget, with the device's interrupts suppressed, and only then arms
 * them and sleeps. Measurements: benches/blk_bench.c, guest-sdk/README.md.
 *
 * The budget is the ceiling (EMBER_WAIT_SPIN_DEFAULT_NS, about the price of
 * one hlt wake-up, or ember_wait_set_spin_ns), or, once ember_wait_adaptive()
 * turned it on, it adapts as KVM's halt polling does: from 0, a wait that
 * slept but ended within the ceiling doubles it (from SPIN_GROW_START_NS), a
 * wait that outlasted the ceiling halves it (to 0 below SPIN_GROW_START_NS),
 * a wait the spin caught leaves it. Completions of the guest's own requests
 * (a disk read) keep it spinning; waits for what the outside world sends (a
 * function's next request) bring it to 0. The FaaS runtime turns it on in a
 * VM restored from a snapshot (the fleet case): a restored idle function
 * spun away ~0.6 ms of a shared host's CPU per restore in its waits
 * (benches/snapshot_bench.c).
 *
 * Timeouts: the sleep is bounded with the TSC-deadline timer. Without one
 * (CPUID.1:ECX[24] clear), a finite timeout is waited out by spinning.
 */
#include <errno.h>
#include <sys/mman.h>

#include "arch/cpu_defs.h"
#include "arch/cpu_irq.h"
#include "sdk.h"

#define LAPIC_BASE    0xfee00000u
#define LAPIC_TPR     0x080u
#define LAPIC_SVR     0x0f0u
#define LAPIC_LVT_TMR 0x320u
#define LAPIC_LVT0    0x350u
#define LVT_MASKED    0x10000u
#define LVT_TSC_DL    (2u << 17)
#define SVR_ENABLE    0x100u
#define SPURIOUS_VEC  0xffu
#define TIMER_VECTOR  0xefu
#define IOAPIC1_BASE  0xfec00000u
#define IOAPIC2_BASE  0xfec10000u /* QEMU microvm, ioapic2=on */
#define IOAPIC_PINS   24u
#define IOREGSEL      0x00u
#define IOWIN         0x10u
#define IOAPIC_REDTBL 0x10u
#define IDT_GATES     256u
_Static_assert(IDT_GATES * 16 == 4096, "the IDT is one page");
#define CPUID1_ECX_TSC_DEADLINE (1u << 24)
#define SPIN_GROW_START_NS      10000u
#define GATE_INTR               0x8e /* present, DPL 0, 64-bit interrupt gate */
#define IST_IRQ                 2

volatile uint64_t ember_irq_pending;
volatile uint32_t ember_irq_count;

/* The IDT (exactly one page) is a heap page taken on first use; the rest
 * is in the SDK's cold bss (ember-partial.ld), which a boot does not touch
 * and which the drivers that use interrupts touch anyway. Before, both lived
 * in one two-page allocation: a page more per VM. */
struct irq_state {
    bool idt_loaded;
    bool have_deadline;
    uint64_t spin_max_ns; /* the ceiling (ember_wait_set_spin_ns) */
    uint64_t spin_ns;     /* adaptive: the budget now, 0 to spin_max_ns */
    bool adaptive;        /* ember_wait_adaptive(): else the budget is the ceiling */
    struct ember_wait_stats stats;
};
static struct irq_state st_store;
static struct irq_state *st;       /* &st_store once set up, NULL before */
static struct ember_idt_gate *idt; /* IDT_GATES: the IDT once loaded */

static void mmio_w32(uintptr_t a, uint32_t v)
{
    *(volatile uint32_t *)a = v;
}

static struct irq_state *state(void)
{
    if (!st) {
        long p = ember_sys_mmap(0, IDT_GATES * sizeof(*idt), PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p < 0)
            return NULL;
        idt = (struct ember_idt_gate *)p;
        st = &st_store;
        st->spin_max_ns = EMBER_WAIT_SPIN_DEFAULT_NS;
    }
    return st;
}

static void gate(unsigned vec, uintptr_t a)
{
    idt[vec] = (struct ember_idt_gate){
        .offset_lo = (uint16_t)a,
        .selector = GDT_KCODE,
        .ist = IST_IRQ,
        .type_attr = GATE_INTR,
        .offset_mid = (uint16_t)(a >> 16),
        .offset_hi = (uint32_t)(a >> 32),
        .reserved = 0,
    };
}

static int irq_init(void)
{
    if (!state())
        return -ENOMEM;
    sdk_memcpy(idt, ember_idt, EMBER_IDT_VECTORS * sizeof(idt[0]));
    uintptr_t stubs = (uintptr_t)ember_irq_stubs;
    for (unsigned g = 0; g < IRQ_GSI_MAX; g++)
        gate(IRQ_VECTOR_BASE + g, stubs + 16 * g);
    gate(TIMER_VECTOR, stubs + 16 * IRQ_GSI_MAX);
    gate(SPURIOUS_VEC, (uintptr_t)ember_irq_spurious);

    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } idtr = {.limit = IDT_GATES * sizeof(idt[0]) - 1, .base = (uintptr_t)idt};
    ember_lidt_trap(&idtr);
    st->idt_loaded = true;

    mmio_w32(LAPIC_BASE + LAPIC_SVR, SVR_ENABLE | SPURIOUS_VEC);
    mmio_w32(LAPIC_BASE + LAPIC_LVT0, LVT_MASKED);
    mmio_w32(LAPIC_BASE + LAPIC_TPR, 0);
    if (ember_cpuid1[2] & CPUID1_ECX_TSC_DEADLINE) {
        mmio_w32(LAPIC_BASE + LAPIC_LVT_TMR, TIMER_VECTOR | LVT_TSC_DL);
        st->have_deadline = true;
    }
    return 0;
}

static void ioapic_write(uintptr_t base, uint32_t reg, uint32_t v)
{
    mmio_w32(base + IOREGSEL, reg);
    mmio_w32(base + IOWIN, v);
}

int ember_irq_attach(uint32_t gsi)
{
    if (gsi >= IRQ_GSI_MAX)
        return -EINVAL;
    if (!st || !st->idt_loaded) {
        int r = irq_init();
        if (r)
            return r;
    }
    uintptr_t base = gsi < IOAPIC_PINS ? IOAPIC1_BASE : IOAPIC2_BASE;
    uint32_t pin = gsi % IOAPIC_PINS;
    /* High half first (destination APIC 0), then the low half unmasks:
     * edge (bit 15 = 0), active high (bit 13 = 0), physical (bit 11 = 0),
     * fixed delivery (bits 8-10 = 0). */
    ioapic_write(base, IOAPIC_REDTBL + 2 * pin + 1, 0);
    ioapic_write(base, IOAPIC_REDTBL + 2 * pin, IRQ_VECTOR_BASE + gsi);
    return 0;
}

bool ember_irq_take(uint32_t gsi)
{
    uint64_t bit = 1ull << gsi;
    if (!(ember_irq_pending & bit))
        return false;
    __atomic_fetch_and(&ember_irq_pending, ~bit, __ATOMIC_SEQ_CST);
    return true;
}

uint64_t ember_wait_set_spin_ns(uint64_t ns)
{
    if (!state())
        return EMBER_WAIT_SPIN_DEFAULT_NS;
    uint64_t old = st->spin_max_ns;
    st->spin_max_ns = ns;
    if (st->spin_ns > ns)
        st->spin_ns = ns;
    return old;
}

void ember_wait_stats(struct ember_wait_stats *s)
{
    if (st)
        *s = st->stats;
    else
        sdk_memset(s, 0, sizeof(*s));
    s->spin_ns = !st ? 0 : st->adaptive ? st->spin_ns : st->spin_max_ns;
    s->irqs = ember_irq_count;
}

static uint64_t ns_to_tsc(uint64_t ns)
{
    unsigned __int128 t = (unsigned __int128)ns * ember_tsc_khz() / 1000000u;
    return t > UINT64_MAX / 2 ? UINT64_MAX / 2 : (uint64_t)t;
}

ember_wait_timer_fn ember_wait_timer_hook;

void ember_wait_adaptive(bool on)
{
    if (!state() || st->adaptive == on)
        return;
    st->adaptive = on;
    st->spin_ns = 0;
}

/* A wait that slept is over (it lasted `waited` TSC ticks): the budget
 * grows if a longer spin would have caught it, shrinks if none would. */
static void spin_adapt(uint64_t waited)
{
    if (!st->adaptive)
        return;
    if (waited <= ns_to_tsc(st->spin_max_ns)) {
        uint64_t next = st->spin_ns ? st->spin_ns * 2 : SPIN_GROW_START_NS;
        st->spin_ns = next < st->spin_max_ns ? next : st->spin_max_ns;
    } else {
        st->spin_ns /= 2;
        if (st->spin_ns < SPIN_GROW_START_NS)
            st->spin_ns = 0;
    }
}

void ember_wait_armed(bool (*ready)(void *), void (*arm)(void *), void *arg, uint64_t timeout_ns)
{
    if (ready(arg))
        return;
    if (!state())
        return; /* no memory for even the counters: cannot happen after an attach */
    st->stats.waits++;
    uint64_t t0 = rdtsc();
    uint64_t deadline = timeout_ns == EMBER_WAIT_FOREVER ? UINT64_MAX : t0 + ns_to_tsc(timeout_ns);
    uint64_t spin_end = t0 + ns_to_tsc(st->adaptive ? st->spin_ns : st->spin_max_ns);
    if (spin_end > deadline)
        spin_end = deadline;
    while (rdtsc() < spin_end) {
        if (ready(arg)) {
            st->stats.spin_hits++;
            return;
        }
        __asm__ volatile("pause");
    }
    if (arm)
        arm(arg);
    ember_console_flush(); /* what was printed shows before the wait */
    for (;;) {
        uint32_t seen = ember_irq_count;
        __asm__ volatile("" ::: "memory");
        if (ready(arg)) {
            spin_adapt(rdtsc() - t0);
            return;
        }
        uint64_t now = rdtsc();
        if (now >= deadline) {
            st->stats.timeouts++;
            spin_adapt(now - t0);
            return;
        }
        uint64_t wake = deadline;
        if (ember_wait_timer_hook) {
            /* A driver's own timers (TCP retransmissions) run while the
             * guest waits for anything, and bound the sleep. */
            uint64_t t = ember_wait_timer_hook(), now_ns = ember_monotonic_ns();
            if (t != UINT64_MAX) {
                uint64_t w = t > now_ns ? now + ns_to_tsc(t - now_ns) : now;
                if (w < wake)
                    wake = w;
            }
            if (wake <= now || ready(arg)) {
                __asm__ volatile("pause");
                continue;
            }
        }
        if (!st->idt_loaded || (wake != UINT64_MAX && !st->have_deadline)) {
            /* Nothing can wake a hlt: no interrupt source yet, or no timer
             * to bound it. */
            __asm__ volatile("pause");
            continue;
        }
        ember_hlt_trap(seen, wake == UINT64_MAX ? 0 : wake);
        ember_idle_add((uint64_t)(((unsigned __int128)(rdtsc() - now) * 1000000u) /
                                  (ember_tsc_khz() ? ember_tsc_khz() : 1)));
        st->stats.hlts++;
    }
}

bool ember_irq_can_sleep(void)
{
    return st && st->idt_loaded && st->have_deadline;
}

void ember_wait(bool (*ready)(void *), void *arg, uint64_t timeout_ns)
{
    ember_wait_armed(ready, NULL, arg, timeout_ns);
}
