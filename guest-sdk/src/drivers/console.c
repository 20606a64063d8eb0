/* console.c: console output and the end of the guest.
 *
 * Under ember a whole iovec goes out with one `outl` of the address of a
 * struct ember_console_write on EMBER_PORT_CONSOLE (one VM exit per write()),
 * to ember's stdout or (v2 monitors) its stderr.
 *
 * stdout is coalesced (abi.h v2, struct ember_console_buf): when writes come
 * close together (the second within BURST_NS of the first: a program
 * printing line after line) they are copied into a one-page buffer in guest
 * memory, which the monitor itself writes out before it handles the next
 * console exit and when the VM ends, however it ends. So a stream of lines
 * costs one exit per page instead of one per line, and output stays ordered
 * (stderr, the SDK's messages and the fault report go out through an exit,
 * after the buffer) and complete (exit, a fault, a triple fault, a stop by
 * the host). The buffer is also written out when it would overflow, when
 * what it holds is older than STALE_NS at the next write, and before the
 * guest sleeps or waits (ember_console_flush from sys_time.c, sys_signal.c,
 * cpu_irq.c). A program that prints and then computes without a system call
 * shows that output when it next writes, waits or ends. A single write
 * (hello) goes out directly as before: no page is touched for the buffer.
 * Under PVH the monitor is not ember: bytes go one by one to the 8250 UART at
 * 0x3f8 (QEMU microvm's isa-serial, Firecracker's serial), and the exit
 * status goes to EMBER_PORT_EXIT, where QEMU's isa-debug-exit ends the VM
 * with (status << 1) | 1; if nothing ends the VM there, a triple fault does
 * (QEMU -no-reboot, Firecracker and ember all stop on it).
 *
 * These functions run on the system-call path (CPL0 on hardware, CPL3 on
 * kvm_pvm) and on the fault path (CPL0): no libc, no SSE.
 */
#include <stddef.h>
#include <stdlib.h> /* _Exit(), defined here */
#include <sys/syscall.h>
#include <sys/uio.h>

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

#define BUF_PAGES 4 /* one exit per 16 KiB of output */
#define BUF_BYTES (BUF_PAGES * PAGE_SIZE - sizeof(struct ember_console_buf))
#define BURST_NS  1000000ull  /* writes this close together are buffered */
#define STALE_NS  20000000ull /* buffered output older than this goes out */

/* Heap state, allocated when buffering starts (libember's static data is
 * kept to pointers: ember.ld). */
static struct ember_console_buf *cbuf;
static uint64_t last_write_ns, first_buffered_ns;

static void port_writev(const struct ember_iovec *iov, uint32_t iovcnt, uint32_t stream)
{
    /* Always one exit, even for nothing: the monitor drains the buffer. */
    do {
        uint32_t n = iovcnt < EMBER_CONSOLE_IOV_MAX ? iovcnt : EMBER_CONSOLE_IOV_MAX;
        struct ember_console_write cw = {.iov = iov, .iovcnt = n, .stream = stream};
        /* Identity mapping: the virtual address is the guest-physical
         * one, and all of RAM is below 4 GiB. */
        outl(EMBER_PORT_CONSOLE, (uint32_t)(uintptr_t)&cw);
        iov += n;
        iovcnt -= n;
    } while (iovcnt > 0);
}

void ember_console_flush(void)
{
    if (cbuf && cbuf->len)
        port_writev(NULL, 0, EMBER_CONSOLE_STDOUT);
}

/* Registers the buffer in the loader's boot info (abi.h v2). */
static bool buffer_start(void)
{
    if (ember_kind != EMBER_BOOT_KIND_EMBER || ember_bi.version < 2 || !ember_boot_info_gpa ||
        ember_bi.size < offsetof(struct ember_boot_info, console_buf) + sizeof(uint64_t))
        return false;
    long p = ember_sys_mmap(0, BUF_PAGES * PAGE_SIZE, 3 /* PROT_READ | PROT_WRITE */,
                            0x22 /* MAP_PRIVATE | MAP_ANONYMOUS */, -1, 0);
    if (p < 0)
        return false;
    cbuf = (struct ember_console_buf *)p;
    cbuf->size = BUF_BYTES;
    cbuf->len = 0;
    ((struct ember_boot_info *)ember_boot_info_gpa)->console_buf = cbuf;
    return true;
}

/* stdout: into the buffer if it is in use (or a burst starts) and room
 * is left; true if done. */
static bool buffered(const struct ember_iovec *iov, uint32_t iovcnt)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < iovcnt; i++)
        total += iov[i].len;
    uint64_t now = ember_monotonic_ns();
    bool burst = last_write_ns && now - last_write_ns < BURST_NS;
    last_write_ns = now;
    if (!cbuf && (!burst || !buffer_start()))
        return false;
    if (cbuf->len && (now - first_buffered_ns > STALE_NS || total > BUF_BYTES - cbuf->len))
        return false; /* the exit writes the buffer, then this */
    if (total > BUF_BYTES - cbuf->len)
        return false;
    if (!cbuf->len)
        first_buffered_ns = now;
    for (uint32_t i = 0; i < iovcnt; i++) {
        sdk_memcpy(cbuf->data + cbuf->len, iov[i].base, iov[i].len);
        cbuf->len += (uint32_t)iov[i].len;
    }
    return true;
}

void ember_console_write_stream(const struct ember_iovec *iov, uint32_t iovcnt, uint32_t stream)
{
    if (ember_kind == EMBER_BOOT_KIND_EMBER) {
        if (stream == EMBER_CONSOLE_STDOUT && buffered(iov, iovcnt))
            return;
        port_writev(iov, iovcnt, stream);
        return;
    }
    for (uint32_t i = 0; i < iovcnt; i++) {
        const char *p = iov[i].base;
        for (uint64_t j = 0; j < iov[i].len; j++)
            uart_putc(p[j]);
    }
}

/* The fault path (CPL0) and early start-up: straight out, after the buffer. */
void ember_console_writev(const struct ember_iovec *iov, uint32_t iovcnt)
{
    if (ember_kind == EMBER_BOOT_KIND_EMBER) {
        while (iovcnt > 0) {
            uint32_t n = iovcnt < EMBER_CONSOLE_IOV_MAX ? iovcnt : EMBER_CONSOLE_IOV_MAX;
            struct ember_console_write cw = {
                .iov = iov, .iovcnt = n, .stream = EMBER_CONSOLE_STDERR};
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

void ember_console_write_err(const char *s, size_t len)
{
    struct ember_iovec iov = {.base = s, .len = len};
    ember_console_write_stream(&iov, 1, EMBER_CONSOLE_STDERR);
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

/* ---- musl's stdout without a system call ------------------------------------
 *
 * A line-buffered stdout makes one writev per line; on kvm_pvm a `syscall`
 * round trip costs ~10-20 us, more than the console write itself once
 * writes are coalesced. libember defines musl's internal __stdout_write,
 * the write function of the stdout FILE (musl src/stdio/stdout.c); this
 * object is always linked, so the linker never takes musl's from libc.a
 * (as for _Exit). It hands the FILE's buffer and the new bytes to
 * ember_console_write_stream() as a function call, with the result and the
 * FILE updates of musl's __stdio_write: everything written, buffer reset.
 * Should stdout name another fd than 1 (freopen), it makes the call through
 * the system-call handler as musl would. This needs the start of musl's
 * struct _IO_FILE (src/internal/stdio_impl.h), the same in every musl
 * release since 1.1.0; the offsets are pinned below, and every test guest
 * that prints would fail on a mismatch. */
struct musl_file {
    unsigned flags;
    unsigned char *rpos, *rend;
    int (*close)(void *);
    unsigned char *wend, *wpos;
    unsigned char *mustbezero_1;
    unsigned char *wbase;
    size_t (*read)(void *, unsigned char *, size_t);
    size_t (*write)(void *, const unsigned char *, size_t);
    long (*seek)(void *, long, int);
    unsigned char *buf;
    size_t buf_size;
    void *prev, *next;
    int fd;
};

#define F_ERR 32 /* musl's flag */

_Static_assert(offsetof(struct musl_file, wend) == 32, "musl FILE layout");
_Static_assert(offsetof(struct musl_file, wpos) == 40, "musl FILE layout");
_Static_assert(offsetof(struct musl_file, wbase) == 56, "musl FILE layout");
_Static_assert(offsetof(struct musl_file, buf) == 88, "musl FILE layout");
_Static_assert(offsetof(struct musl_file, buf_size) == 96, "musl FILE layout");
_Static_assert(offsetof(struct musl_file, fd) == 120, "musl FILE layout");

size_t __stdout_write(struct musl_file *f, const unsigned char *buf, size_t len);

size_t __stdout_write(struct musl_file *f, const unsigned char *buf, size_t len)
{
    struct iovec iov[2] = {
        {.iov_base = f->wbase, .iov_len = (size_t)(f->wpos - f->wbase)},
        {.iov_base = (void *)buf, .iov_len = len},
    };
    if (f->fd == 1) {
        ember_console_write_stream((const struct ember_iovec *)iov, 2, EMBER_CONSOLE_STDOUT);
    } else {
        struct ember_syscall_frame fr = {
            .nr = SYS_writev, .rdi = (uint64_t)f->fd, .rsi = (uintptr_t)iov, .rdx = 2};
        if (ember_syscall(&fr) != (long)(iov[0].iov_len + iov[1].iov_len)) {
            f->wpos = f->wbase = f->wend = NULL;
            f->flags |= F_ERR;
            return 0;
        }
    }
    f->wend = f->buf + f->buf_size;
    f->wpos = f->wbase = f->buf;
    return len;
}
