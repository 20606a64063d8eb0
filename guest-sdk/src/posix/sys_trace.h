/* sys_trace.h: the opt-in trace of unimplemented system calls (sys_trace.c). */
#ifndef EMBER_SYS_TRACE_H
#define EMBER_SYS_TRACE_H

#include <stdint.h>

#define EMBER_SYS_NAMES 447 /* highest x86-64 number in musl's list + 1 */

extern const char *const ember_sys_names[EMBER_SYS_NAMES];

/* From the initial environment: EMBER_TRACE_SYSCALLS set, not "" or "0". */
void ember_trace_init(char *const *envp);

/* A call the SDK answers with ENOSYS: with the trace on, prints
 * "ember: trace: system call N (name) is not implemented (ENOSYS)" to
 * ember's stderr, once per call number. */
void ember_trace_enosys(uint64_t nr);

#endif /* EMBER_SYS_TRACE_H */
