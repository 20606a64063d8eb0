/* sys_signal.h: signals, interval timers and interruptible waits (see
 * sys_signal.c). */
#ifndef EMBER_SYS_SIGNAL_H
#define EMBER_SYS_SIGNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ember/wait.h>

#include "sdk.h"

#define EMBER_PID 1 /* getpid(), gettid() */

struct sig_state;
/* NULL until a program uses signals (a handler, a mask, a timer, a signal
 * that stays pending): then every system-call return looks at it. */
extern struct sig_state *ember_sig;

/* The signal system calls (rt_sigaction, rt_sigprocmask, rt_sigpending,
 * rt_sigsuspend, sigaltstack, kill, tkill, tgkill, rt_sigqueueinfo, pause,
 * alarm, getitimer, setitimer). */
long ember_sys_signal(struct ember_syscall_frame *f);

/* Sends sig to the guest with si_code code: 0, -EINVAL, or does not return
 * (a default action that ends the guest). */
long ember_sig_raise(int sig, int code);

/* Delivery on the way back from a system call (only when ember_sig is set
 * and f is a real `syscall` frame); also completes rt_sigreturn. */
long ember_sig_return(struct ember_syscall_frame *f, long ret);

/* True if a signal is pending and not blocked (after firing due timers). */
bool ember_sig_deliverable(void);

/* Waits until ready(arg) or the timeout passes (0), or a signal is to be
 * delivered (-EINTR). arm (may be NULL) is ember_wait_armed's hook; NULL
 * also says that nothing outside the guest can make ready() true, so the
 * wait sleeps on the host instead of waiting for an interrupt. */
long ember_sig_wait(bool (*ready)(void *), void (*arm)(void *), void *arg, uint64_t timeout_ns);

/* pselect6/ppoll/epoll_pwait/sigsuspend: the mask during the wait
 * (set == NULL: unchanged). pop restores the old one unless a signal is to
 * be delivered, whose sigreturn will. 0 or -errno. */
long ember_sig_mask_push(const void *set, size_t size);
void ember_sig_mask_pop(void);

#endif /* EMBER_SYS_SIGNAL_H */
