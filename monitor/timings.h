/* timings.h: the start-up timeline `ember run --timings` prints.
 *
 * Microseconds since the monitor's first user-space instruction (a
 * constructor), so a user sees where the time of a boot goes.
 */
#ifndef EMBER_TIMINGS_H
#define EMBER_TIMINGS_H

#include <stdint.h>

enum timing_mark {
    TIMING_VM_CREATED, /* KVM VM, memory, vCPU, guest loaded */
    TIMING_FIRST_RUN,  /* first KVM_RUN: the guest's first instruction */
    TIMING_GUEST_MAIN, /* the guest's boot-timer write, just before main */
    TIMING_EXIT,       /* the guest's exit */
    TIMING_COUNT,
};

uint64_t timings_now_ns(void);
/* Makes now the start (a process forked to run a VM: the restore server's
 * children count from their fork). */
void timings_restart(void);
/* Records the first occurrence of a mark. */
void timings_mark(enum timing_mark m);
/* CLOCK_MONOTONIC (timings_now_ns()) of the mark, 0 if never reached. */
uint64_t timings_mark_ns(enum timing_mark m);
/* Microseconds from process start to the mark, or -1 if never reached. */
int64_t timings_us(enum timing_mark m);
/* Prints one line: "ember: timings (us since start): vm-created=... ..." */
void timings_print(int fd);

#endif
