/* cpu_fault.c: what happens when the guest takes an exception.
 *
 * Vectors 0-31 enter through the stubs in cpu_entry.S on the IST1 stack, at
 * CPL0. There is no recovery: the handler prints one line naming the
 * exception (mnemonic and plain name), the error code where the CPU pushes
 * one, RIP, RSP and, for #PF, CR2, then ends the guest with status 255. It
 * runs at CPL0, which kvm_pvm emulates instruction by instruction, so it is
 * short, uses no SSE and no libc.
 */
#include "sdk.h"

#define FAULT_STATUS 255

static const char *const names[32] = {
    "#DE divide error",
    "#DB debug",
    "NMI non-maskable interrupt",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range exceeded",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "#CSO coprocessor segment overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack-segment fault",
    "#GP general protection",
    "#PF page fault",
    "#15 reserved",
    "#MF x87 floating-point error",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD floating-point exception",
    "#VE virtualization exception",
    "#CP control protection",
    "#22 reserved",
    "#23 reserved",
    "#24 reserved",
    "#25 reserved",
    "#26 reserved",
    "#27 reserved",
    "#HV hypervisor injection",
    "#VC VMM communication",
    "#SX security exception",
    "#31 reserved",
};

/* Vectors for which the CPU pushes an error code (SDM Vol. 3A Table 6-1). */
#define HAS_ERROR                                                                                  \
    ((1u << 8) | (1u << 10) | (1u << 11) | (1u << 12) | (1u << 13) | (1u << 14) | (1u << 17) |     \
     (1u << 21) | (1u << 29) | (1u << 30))

static volatile int in_fault;

static char *put_str(char *p, const char *s)
{
    while (*s)
        *p++ = *s++;
    return p;
}

static char *put_hex(char *p, uint64_t v)
{
    char tmp[16];
    int n = 0;
    p = put_str(p, "0x");
    do {
        tmp[n++] = "0123456789abcdef"[v & 0xf];
        v >>= 4;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

NORETURN void ember_fault(struct ember_fault_frame *f);
extern char __ember_stack_guard_lo[], __ember_stack_guard_len[]; /* ember.ld */

void ember_fault(struct ember_fault_frame *f)
{
    char line[256];
    char *p = line;
    uint64_t vec = f->vector & 31;

    if (in_fault) /* a fault while reporting one: stop at once */
        ember_exit(FAULT_STATUS);
    in_fault = 1;

    p = put_str(p, "ember: guest fault: ");
    uint64_t cr2 = 0;
    if (vec == 14)
        __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    /* The main stack's guard (ember.ld, left unmapped by the monitor). */
    if (vec == 14 && cr2 >= (uintptr_t)__ember_stack_guard_lo &&
        cr2 < (uintptr_t)__ember_stack_guard_lo + (uintptr_t)__ember_stack_guard_len)
        p = put_str(p, "stack overflow (the main stack's guard was touched; the stack is 1 MiB), ");
    p = put_str(p, names[vec]);
    if (HAS_ERROR & (1u << vec)) {
        p = put_str(p, ", error ");
        p = put_hex(p, f->error);
    }
    p = put_str(p, ", rip ");
    p = put_hex(p, f->rip);
    p = put_str(p, ", rsp ");
    p = put_hex(p, f->rsp);
    if (vec == 14) {
        p = put_str(p, ", cr2 ");
        p = put_hex(p, cr2);
    }
    *p++ = '\n';

    struct ember_iovec iov = {.base = line, .len = (uint64_t)(p - line)};
    ember_console_writev(&iov, 1);
    ember_exit(FAULT_STATUS);
}
