/* console.c: console output and the end of the guest.
 *
 * Under ember a whole iovec goes out with one `outl` of the address of a
 * struct ember_console_write on EMBER_PORT_CONSOLE (one VM exit per write()).
 * Under PVH the monitor is not ember: bytes go one by one to the 8250 UART at
 * 0x3f8 (QEMU microvm's isa-serial, Firecracker's serial), and the exit
 * status goes to EMBER_PORT_EXIT, where QEMU's isa-debug-exit ends the VM
 * with (status << 1) | 1; if nothing ends the VM there, a triple fault does
 * (QEMU -no-reboot, Firecracker and ember all stop on it).
 *
 * These functions run on the system-call path (CPL0 on hardware, CPL3 on
 * kvm_pvm) and on the fault path (CPL0): no libc, no SSE.
 */
#include <stdlib.h> /* _Exit(), defined here */

#include "sdk.h"

#define UART_BASE     0x3f8
#define UART_THR      0
#define UART_LSR      5
#define UART_LSR_THRE 0x20
#define UART_SPIN_MAX 100000 /* never hang on a missing UART */

static void uart_putc(char c)
{
    for (unsigned i = 0; i < UART_SPIN_MAX; i++) {
        if (inb(UART_BASE + UART_LSR) & UART_LSR_THRE)
            break;
    }
    outb(UART_BASE + UART_THR, (uint8_t)c);
}

void ember_console_writev(const struct ember_iovec *iov, uint32_t iovcnt)
{
    if (ember_kind == EMBER_BOOT_KIND_EMBER) {
        while (iovcnt > 0) {
            uint32_t n = iovcnt < EMBER_CONSOLE_IOV_MAX ? iovcnt : EMBER_CONSOLE_IOV_MAX;
            struct ember_console_write cw = {.iov = iov, .iovcnt = n, .reserved = 0};
            /* Identity mapping: the virtual address is the guest-physical
             * one, and all of RAM is below 4 GiB. */
            outl(EMBER_PORT_CONSOLE, (uint32_t)(uintptr_t)&cw);
            iov += n;
            iovcnt -= n;
        }
        return;
    }
    for (uint32_t i = 0; i < iovcnt; i++) {
        const char *p = iov[i].base;
        for (uint64_t j = 0; j < iov[i].len; j++)
            uart_putc(p[j]);
    }
}

void ember_console_puts(const char *s)
{
    struct ember_iovec iov = {.base = s, .len = sdk_strnlen(s, 4096)};
    ember_console_writev(&iov, 1);
}

COLD void ember_triple_fault(void)
{
    /* With no present exception gate, any exception escalates to a double
     * fault and then a shutdown (SDM Vol. 3A §6.15, interrupt 8). Clearing
     * the gates works at any privilege level (the IDT is writable), unlike
     * loading an empty IDT. */
    for (unsigned i = 0; i < 32; i++)
        ember_idt[i].type_attr = 0;
    for (;;)
        __asm__ volatile("ud2");
}

void ember_exit(int status)
{
    outl(EMBER_PORT_EXIT, (uint32_t)status & 0xff);
    ember_triple_fault();
}

/* _Exit(3), which musl's exit() ends with: libember defines it, so the
 * linker never takes musl's (a system call, exit_group) from libc.a. Port
 * I/O works at CPL3 (IOPL = 3; the TSS I/O bitmap on kvm_pvm), so ending
 * the guest takes one VM exit instead of a `syscall` trap plus that exit
 * (~20 us less on kvm_pvm). This object is always linked (boot_start.c
 * uses it), so this definition always wins. */
NORETURN void _Exit(int status)
{
    ember_exit(status);
}
