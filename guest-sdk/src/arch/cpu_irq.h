/* cpu_irq.h: device interrupts and waiting inside the SDK (see cpu_irq.c). */
#ifndef EMBER_CPU_IRQ_H
#define EMBER_CPU_IRQ_H

#include <stdbool.h>
#include <stdint.h>
#include <ember/wait.h>

#define IRQ_GSI_MAX     48u   /* GSIs 0-47: two IOAPICs of 24 pins */
#define IRQ_VECTOR_BASE 0x30u /* GSI g arrives on vector 0x30 + g */
#define IRQ_TIMER_BIT   63u   /* ember_irq_pending bit of the deadline timer */

/* Written by the interrupt stubs (cpu_entry.S): one bit per GSI that fired,
 * and a count of all interrupts taken. */
extern volatile uint64_t ember_irq_pending;
extern volatile uint32_t ember_irq_count;

/* Routes GSI gsi to this vCPU (IOAPIC redirection entry: edge, active high,
 * fixed, physical destination APIC 0, vector IRQ_VECTOR_BASE + gsi) and, on
 * first use, sets up the IDT gates and the local APIC. 0 or -errno. */
int ember_irq_attach(uint32_t gsi);

/* Clears GSI gsi's pending bit; true if it was set. */
bool ember_irq_take(uint32_t gsi);

/* ember_wait() with a hook: arm(arg) runs once, after the spin and before
 * the first sleep (a driver turns its queue's interrupts on there; ready()
 * is tested again after it). */
void ember_wait_armed(bool (*ready)(void *), void (*arm)(void *), void *arg, uint64_t timeout_ns);

/* Turns the adaptive spin budget on (from 0) or off (the ceiling again):
 * cpu_irq.c. The FaaS runtime turns it on in a restored VM. */
void ember_wait_adaptive(bool on);

/* Set by a driver with timers of its own (the network stack): called in
 * every wait before the guest sleeps, runs what is due and returns the
 * monotonic time (ns) of its next timer, UINT64_MAX for none; the sleep
 * ends by then. */
typedef uint64_t (*ember_wait_timer_fn)(void);
extern ember_wait_timer_fn ember_wait_timer_hook;

/* True once interrupts and the TSC-deadline timer are set up (a device was
 * opened): then a wait can sleep in hlt until its timeout. */
bool ember_irq_can_sleep(void);

/* cpu_entry.S */
void ember_hlt_trap(uint32_t irq_count_seen, uint64_t tsc_deadline);
void ember_lidt_trap(const void *idtr);

/* 32-bit MMIO accesses done at CPL0 in one trap, in order (cpu_entry.S):
 * a write stores value, a read stores into it. */
struct ember_mmio_op {
    uint64_t addr;
    uint32_t value;
    uint32_t write;
};
void ember_mmio_batch_trap(struct ember_mmio_op *ops, uint32_t n);
extern const char ember_irq_stubs[];
extern const char ember_irq_spurious[];

#endif /* EMBER_CPU_IRQ_H */
