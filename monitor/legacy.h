/* legacy.h: the small fixed devices a guest reaches by port I/O or by MMIO
 * exits, answered synchronously on the vCPU thread: the ember console, exit
 * sleep and ready ports, an 8250 UART at 0x3f8, the i8042 reset line and
 * Firecracker's boot timer.
 */
#ifndef EMBER_LEGACY_H
#define EMBER_LEGACY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/guest_mem.h"

#define LEGACY_UART_BASE 0x3f8u
#define LEGACY_UART_BUF  1024u

enum legacy_result {
    LEGACY_CONTINUE,
    LEGACY_EXIT, /* the guest asked to end: status in legacy.exit_status */
};

struct legacy {
    const struct guest_mem *mem;
    int out_fd; /* console output */
    int err_fd; /* the guest's stderr (EMBER_CONSOLE_STDERR); legacy_init: out_fd */
    /* Guest-physical address of an SDK guest's struct ember_boot_info, whose
     * console_buf is drained before every console write and at the end
     * (0: not an SDK guest, no buffer). */
    uint64_t boot_info_gpa;
    bool boot_timer; /* log the boot-timer write */
    int exit_status;
    uint8_t uart_regs[8]; /* scratch, IER, LCR, MCR... as last written */
    uint8_t uart_dll, uart_dlm;
    uint32_t uart_len;
    char uart_buf[LEGACY_UART_BUF];
    uint64_t boot_timer_ns; /* when the guest wrote the boot timer, 0 if not yet */
    uint64_t console_bytes;
    uint64_t bad_requests; /* malformed console/sleep requests from the guest */
    /* Called when a guest sleep is interrupted by a signal (vm_pause\'s kick). */
    void (*park)(void *arg);
    void *park_arg;
    /* Called when the guest writes EMBER_PORT_READY (ember_faas_ready()). */
    void (*ready)(void *arg);
    void *ready_arg;
    uint64_t ready_count;
};

void legacy_init(struct legacy *lg, const struct guest_mem *mem, int out_fd, bool boot_timer);
/* A port access; data is the kvm_run buffer of size bytes. */
enum legacy_result legacy_pio(struct legacy *lg, uint16_t port, bool is_write, uint8_t *data,
                              uint32_t size);
/* An MMIO access outside RAM. */
enum legacy_result legacy_mmio(struct legacy *lg, uint64_t addr, bool is_write, uint8_t *data,
                               uint32_t len);
/* Writes out what the guest's console buffer holds (abi.h v2); cheap when
 * it is empty, so the vCPU loop calls it at every exit. */
void legacy_drain(struct legacy *lg);
/* Writes out what the UART and the guest's console buffer hold (before
 * console output, and at the end of the VM, whatever ended it). */
void legacy_flush(struct legacy *lg);

#endif
