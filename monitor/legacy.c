/* legacy.c: console, exit and sleep ports, 8250 UART, i8042 reset, boot timer.
 *
 * Everything read from the guest is copied to locals and checked before use:
 * a bad request is counted and ignored, it never ends the monitor.
 */
#include "monitor/legacy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <ember/abi.h>

#include "monitor/timings.h"

/* 8250 registers (offsets from the base) and LSR bits, from the 16550 data
 * sheet as Linux's serial_reg.h names them. */
#define UART_RX_TX      0
#define UART_IER        1
#define UART_IIR        2
#define UART_LCR        3
#define UART_MCR        4
#define UART_LSR        5
#define UART_MSR        6
#define UART_SCR        7
#define UART_LCR_DLAB   0x80
#define UART_LSR_THRE   0x20
#define UART_LSR_TEMT   0x40
#define UART_IIR_NO_INT 0x01
#define UART_MSR_DCD    0x80
#define UART_MSR_DSR    0x20
#define UART_MSR_CTS    0x10

#define I8042_COMMAND   0x64
#define I8042_CMD_RESET 0xfe

void legacy_init(struct legacy *lg, const struct guest_mem *mem, int out_fd, bool boot_timer)
{
    memset(lg, 0, sizeof(*lg));
    lg->mem = mem;
    lg->out_fd = out_fd;
    lg->err_fd = out_fd;
    lg->boot_timer = boot_timer;
}

static void write_all(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t n = writev(fd, iov, cnt);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* console gone: the guest's output is dropped, the guest goes on */
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
}

static uint32_t u32_of(const uint8_t *data, uint32_t size)
{
    uint32_t v = 0;

    memcpy(&v, data, size < 4 ? size : 4);
    return v;
}

/* EMBER_PORT_CONSOLE: the whole iovec in one exit. */
static void console_write(struct legacy *lg, uint64_t req_gpa)
{
    const struct ember_console_write *reqp = guest_mem_slice(lg->mem, req_gpa, sizeof(*reqp));
    struct ember_iovec giov[EMBER_CONSOLE_IOV_MAX];
    struct iovec hiov[EMBER_CONSOLE_IOV_MAX];
    struct ember_console_write req;
    const void *src;
    int n = 0;

    if (!reqp)
        goto bad;
    memcpy(&req, reqp, sizeof(req)); /* one fetch of guest-shared memory */
    if (req.iovcnt > EMBER_CONSOLE_IOV_MAX)
        goto bad;
    src = guest_mem_slice(lg->mem, req.iov, (uint64_t)req.iovcnt * sizeof(giov[0]));
    if (!src)
        goto bad;
    memcpy(giov, src, req.iovcnt * sizeof(giov[0]));
    for (uint32_t i = 0; i < req.iovcnt; i++) {
        void *p = guest_mem_slice(lg->mem, giov[i].base, giov[i].len);
        if (!p)
            goto bad;
        if (giov[i].len == 0)
            continue;
        hiov[n].iov_base = p;
        hiov[n].iov_len = giov[i].len;
        lg->console_bytes += giov[i].len;
        n++;
    }
    legacy_flush(lg); /* keep UART, buffered and direct output in order */
    write_all(req.stream == EMBER_CONSOLE_STDERR ? lg->err_fd : lg->out_fd, hiov, n);
    return;
bad:
    lg->bad_requests++;
}

static void guest_sleep(struct legacy *lg, uint64_t req_gpa)
{
    const struct ember_sleep *reqp = guest_mem_slice(lg->mem, req_gpa, sizeof(*reqp));
    struct timespec ts;
    uint64_t ns;

    if (!reqp) {
        lg->bad_requests++;
        return;
    }
    memcpy(&ns, &reqp->ns, sizeof(ns));
    ts.tv_sec = (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        if (lg->park)
            lg->park(lg->park_arg);
    }
}

/* The guest's console buffer (abi.h, v2): its address and header are read
 * once each, checked against guest RAM, then len is reset. A bad buffer is
 * counted and forgotten. */
void legacy_drain(struct legacy *lg)
{
    const struct ember_boot_info *bi;
    struct ember_console_buf *hdr;
    struct ember_console_buf h;
    struct iovec iov;
    uint64_t gpa;

    if (!lg->boot_info_gpa)
        return;
    bi = guest_mem_slice(lg->mem, lg->boot_info_gpa, sizeof(*bi));
    if (!bi)
        return;
    memcpy(&gpa, &bi->console_buf, sizeof(gpa));
    if (!gpa)
        return;
    hdr = guest_mem_slice(lg->mem, gpa, sizeof(h));
    if (!hdr)
        goto bad;
    memcpy(&h, hdr, sizeof(h));
    if (h.len == 0)
        return;
    if (h.len > h.size)
        goto bad;
    iov.iov_base = guest_mem_slice(lg->mem, gpa + sizeof(h), h.len);
    if (!iov.iov_base)
        goto bad;
    iov.iov_len = h.len;
    lg->console_bytes += h.len;
    write_all(lg->out_fd, &iov, 1);
    hdr->len = 0;
    return;
bad:
    lg->bad_requests++;
    lg->boot_info_gpa = 0; /* stop looking at it */
}

void legacy_flush(struct legacy *lg)
{
    struct iovec iov = {lg->uart_buf, lg->uart_len};

    if (lg->uart_len)
        write_all(lg->out_fd, &iov, 1);
    lg->uart_len = 0;
    legacy_drain(lg);
}

static void uart_out(struct legacy *lg, unsigned reg, uint8_t v)
{
    bool dlab = lg->uart_regs[UART_LCR] & UART_LCR_DLAB;

    if (reg == UART_RX_TX && dlab) {
        lg->uart_dll = v;
    } else if (reg == UART_RX_TX) {
        lg->console_bytes++;
        lg->uart_buf[lg->uart_len++] = (char)v;
        if (v == '\n' || lg->uart_len == LEGACY_UART_BUF)
            legacy_flush(lg);
    } else if (reg == UART_IER && dlab) {
        lg->uart_dlm = v;
    } else if (reg != UART_LSR && reg != UART_MSR) {
        lg->uart_regs[reg] = v;
    }
}

static uint8_t uart_in(struct legacy *lg, unsigned reg)
{
    bool dlab = lg->uart_regs[UART_LCR] & UART_LCR_DLAB;

    switch (reg) {
    case UART_RX_TX:
        return dlab ? lg->uart_dll : 0; /* no input yet */
    case UART_IER:
        return dlab ? lg->uart_dlm : lg->uart_regs[UART_IER];
    case UART_IIR:
        return UART_IIR_NO_INT;
    case UART_LSR:
        return UART_LSR_THRE | UART_LSR_TEMT; /* always ready to send */
    case UART_MSR:
        return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
    default:
        return lg->uart_regs[reg];
    }
}

enum legacy_result legacy_pio(struct legacy *lg, uint16_t port, bool is_write, uint8_t *data,
                              uint32_t size)
{
    if (port >= LEGACY_UART_BASE && port < LEGACY_UART_BASE + 8) {
        unsigned reg = port - LEGACY_UART_BASE;
        if (is_write)
            uart_out(lg, reg, data[0]);
        else
            data[0] = uart_in(lg, reg);
        return LEGACY_CONTINUE;
    }
    if (!is_write) {
        memset(data, 0xff, size); /* nothing answers: a floating bus */
        return LEGACY_CONTINUE;
    }
    switch (port) {
    case EMBER_PORT_CONSOLE:
        if (size == 4)
            console_write(lg, u32_of(data, size));
        else
            lg->bad_requests++;
        return LEGACY_CONTINUE;
    case EMBER_PORT_SLEEP:
        if (size == 4)
            guest_sleep(lg, u32_of(data, size));
        else
            lg->bad_requests++;
        return LEGACY_CONTINUE;
    case EMBER_PORT_READY:
        lg->ready_count++;
        if (lg->ready)
            lg->ready(lg->ready_arg);
        return LEGACY_CONTINUE;
    case EMBER_PORT_EXIT:
        lg->exit_status = (int)(u32_of(data, size) & 0xff);
        return LEGACY_EXIT;
    case I8042_COMMAND:
        if (data[0] == I8042_CMD_RESET) {
            lg->exit_status = 0; /* a Linux guest's reboot: the VM ends cleanly */
            return LEGACY_EXIT;
        }
        return LEGACY_CONTINUE;
    default:
        return LEGACY_CONTINUE;
    }
}

enum legacy_result legacy_mmio(struct legacy *lg, uint64_t addr, bool is_write, uint8_t *data,
                               uint32_t len)
{
    if (addr == EMBER_BOOT_TIMER_GPA && is_write && len >= 1 && data[0] == EMBER_BOOT_TIMER_MAGIC) {
        if (!lg->boot_timer_ns) {
            __atomic_store_n(&lg->boot_timer_ns, timings_now_ns(), __ATOMIC_RELAXED);
            timings_mark(TIMING_GUEST_MAIN);
            if (lg->boot_timer)
                fprintf(stderr, "ember: guest boot time: %ld us since process start\n",
                        timings_us(TIMING_GUEST_MAIN));
        }
        return LEGACY_CONTINUE;
    }
    if (!is_write)
        memset(data, 0xff, len > 8 ? 8 : len);
    return LEGACY_CONTINUE;
}
