/* vm_ahead.c: the vCPU thread built ahead with its shell, parked with its
 * seccomp filter on (vm_ahead.h). */
#include "monitor/vm_ahead.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "monitor/seccomp_filter.h"
#include "monitor/vm_priv.h"

enum ahead_state {
    AHEAD_PARKED,  /* waiting for a VM, or for its end */
    AHEAD_RUN,     /* runs vm */
    AHEAD_END,     /* end now; vm_ahead_end() joins and frees */
    AHEAD_ABANDON, /* release the shell and end; vm_ahead_end() joins and frees */
};

struct vm_ahead {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    enum ahead_state state;
    bool built;        /* the thread is done building (the shell may be empty) */
    bool usable;       /* shell built, numbers reserved, filter on (unless no_seccomp) */
    bool short_of_fds; /* a VM's descriptor found no reserved number */
    bool filter_on;    /* the thread's vCPU filter is on */
    bool filtered;     /* abandoned: the thread may now run beside a guest */
    bool no_seccomp;
    uint64_t mem_size;
    void (*enter)(void *);
    void *enter_arg;
    int (*idle)(void); /* its result is of no use here */
    struct vm_shell shell;
    int vcpu_fd; /* the shell's, which the filter names */
    /* Reserved numbers; -1 once a VM's descriptor is on it (the VM owns it). */
    int efd[VM_AHEAD_EVENTFDS];
    int mem_fd;
    /* AHEAD_RUN */
    struct vm *vm;
    void (*exit_hook)(void *, int);
    void *exit_arg;
};

static void close_reserved(struct vm_ahead *a)
{
    for (unsigned i = 0; i < VM_AHEAD_EVENTFDS; i++)
        if (a->efd[i] >= 0)
            close(a->efd[i]);
    if (a->mem_fd >= 0)
        close(a->mem_fd);
}

static void ahead_free(struct vm_ahead *a)
{
    close_reserved(a);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    free(a);
}

/* The numbers the filter will name: idle eventfds (anonymous inodes, so the
 * filter's descriptor scan counts them, seccomp_filter.c) and, for the
 * memory file, a copy of the /dev/kvm descriptor (a character device: not
 * in the scan; fstat, the one call the filter allows on it, says nothing
 * worth hiding). */
static int reserve(struct vm_ahead *a)
{
    for (unsigned i = 0; i < VM_AHEAD_EVENTFDS; i++) {
        a->efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (a->efd[i] < 0)
            return -1;
    }
    a->mem_fd = fcntl(a->shell.kvm_fd, F_DUPFD_CLOEXEC, 3);
    return a->mem_fd < 0 ? -1 : 0;
}

/* The thread's stack below the caller's frame goes back: building the
 * shell and the warm-up went deeper than the KVM_RUN loop ever does, and
 * each page they left dirty would stay private to this VM. */
static __attribute__((noinline)) void drop_stack_below(uintptr_t low)
{
    const uintptr_t page = 4096;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    /* a page of margin for madvise's own frame below this one */
    uintptr_t top = (sp - page) & ~(page - 1);

    low = (low + page - 1) & ~(page - 1);
    if (low && low < top)
        (void)madvise((void *)low, top - low, MADV_DONTNEED);
}

static void *ahead_main(void *arg)
{
    struct vm_ahead *a = arg;
    char err[256];
    uintptr_t stack_low = 0;
    pthread_attr_t at;
    bool ok;

    /* Its stack's bounds, while every call is allowed (glibc answers for
     * a thread it created from its own records). */
    if (pthread_getattr_np(pthread_self(), &at) == 0) {
        void *base;
        size_t size;
        if (pthread_attr_getstack(&at, &base, &size) == 0)
            stack_low = (uintptr_t)base;
        pthread_attr_destroy(&at);
    }
    if (a->enter)
        a->enter(a->enter_arg);
    /* A failure leaves the shell empty: the request then builds its own VM
     * and reports what went wrong there. */
    (void)vm_shell_build(&a->shell, a->mem_size, err, sizeof(err));
    a->vcpu_fd = a->shell.vcpu_fd;
    if (vm_shell_ready(&a->shell))
        a->shell.ahead = a; /* whoever takes the shell over ends the thread */
    ok = vm_shell_ready(&a->shell) && reserve(a) == 0;
    if (ok) {
        vm_vcpu_thread_init();
        /* A failure leaves the thread unusable; the usual vCPU thread
         * then installs the filter after the load, and says why not. */
        if (!a->no_seccomp)
            ok = a->filter_on = seccomp_filter_install(SECCOMP_ROLE_VCPU, a->vcpu_fd, a->mem_fd,
                                                       err, sizeof(err)) == 0;
    }
    pthread_mutex_lock(&a->lock);
    a->built = true;
    a->usable = ok;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    if (ok && a->idle)
        (void)a->idle();
    drop_stack_below(stack_low);
    pthread_mutex_lock(&a->lock);
    while (a->state == AHEAD_PARKED)
        pthread_cond_wait(&a->cond, &a->lock);
    enum ahead_state st = a->state;
    pthread_mutex_unlock(&a->lock);
    if (st == AHEAD_RUN) {
        /* a is the VM's now (vm_destroy frees it after the join). */
        struct vm *vm = a->vm;
        void (*hook)(void *, int) = a->exit_hook;
        void *hook_arg = a->exit_arg;
        vm->vcpu_filter_on = !a->no_seccomp;
        hook(hook_arg, vm_run(vm));
    } else if (st == AHEAD_ABANDON) {
        /* A thread whose filter did not go on ahead takes one before it
         * goes on (the guest may run meanwhile): the vCPU role's, which
         * allows closing and unmapping. The caller waits for it. */
        if (!a->filter_on && !a->no_seccomp)
            (void)seccomp_filter_install(SECCOMP_ROLE_VCPU, a->vcpu_fd, -1, err, sizeof(err));
        pthread_mutex_lock(&a->lock);
        a->filtered = true;
        pthread_cond_broadcast(&a->cond);
        pthread_mutex_unlock(&a->lock);
        vm_shell_release(&a->shell); /* a is freed by vm_ahead_end() */
    }
    return NULL;
}

struct vm_ahead *vm_ahead_start(uint64_t mem_size, bool no_seccomp, void (*enter)(void *),
                                void *arg, int (*idle)(void))
{
    struct vm_ahead *a = calloc(1, sizeof(*a));

    if (!a)
        return NULL;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    a->state = AHEAD_PARKED;
    a->no_seccomp = no_seccomp;
    a->mem_size = mem_size;
    a->enter = enter;
    a->enter_arg = arg;
    a->idle = idle;
    a->vcpu_fd = a->mem_fd = -1;
    for (unsigned i = 0; i < VM_AHEAD_EVENTFDS; i++)
        a->efd[i] = -1;
    vm_shell_init(&a->shell);
    /* With the vCPU thread's signal mask and stack (vm.c). */
    if (vm_thread_start(&a->thread, ahead_main, a) != 0) {
        ahead_free(a);
        return NULL;
    }
    return a;
}

void vm_ahead_take_shell(struct vm_ahead *a, struct vm_shell *out)
{
    pthread_mutex_lock(&a->lock);
    while (!a->built)
        pthread_cond_wait(&a->cond, &a->lock);
    *out = a->shell;
    vm_shell_init(&a->shell);
    pthread_mutex_unlock(&a->lock);
}

static void set_state(struct vm_ahead *a, enum ahead_state st)
{
    pthread_mutex_lock(&a->lock);
    a->state = st;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

bool vm_ahead_running(const struct vm_ahead *a)
{
    return a->state == AHEAD_RUN;
}

void vm_ahead_abandon(struct vm_ahead *a, struct vm_shell *s)
{
    pthread_mutex_lock(&a->lock);
    while (!a->built)
        pthread_cond_wait(&a->cond, &a->lock);
    if (vm_shell_ready(s)) { /* else the thread's own (never taken, or given back) */
        a->shell = *s;
        vm_shell_init(s);
    }
    a->state = AHEAD_ABANDON;
    pthread_cond_broadcast(&a->cond);
    while (!a->filtered)
        pthread_cond_wait(&a->cond, &a->lock);
    pthread_mutex_unlock(&a->lock);
}

void vm_ahead_end(struct vm_ahead *a)
{
    if (!a)
        return;
    if (a->state != AHEAD_RUN) {
        if (a->state != AHEAD_ABANDON)
            set_state(a, AHEAD_END);
        pthread_join(a->thread, NULL);
    }
    ahead_free(a);
}

int vm_ahead_take_eventfd(void *arg)
{
    struct vm_ahead *a = arg;

    for (unsigned i = 0; i < VM_AHEAD_EVENTFDS; i++) {
        int fd = a->efd[i];
        if (fd >= 0) {
            a->efd[i] = -1;
            return fd;
        }
    }
    a->short_of_fds = true;
    return -1;
}

int vm_ahead_dup_mem_fd(struct vm_ahead *a, int fd)
{
    int to = a->mem_fd;

    if (to >= 0 && dup3(fd, to, O_CLOEXEC) == to) {
        a->mem_fd = -1;
        return to;
    }
    a->short_of_fds = true;
    return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

bool vm_ahead_fits(const struct vm_ahead *a, const struct vm *vm)
{
    /* The thread's filter is the vCPU role's (no --timings), on unless
     * no_seccomp, and names the shell's vCPU fd. */
    return a->usable && !a->short_of_fds && a->vcpu_fd == vm->vcpu_fd &&
           a->no_seccomp == vm->no_seccomp && !vm->timings;
}

void vm_ahead_run(struct vm_ahead *a, struct vm *vm, void (*exit_hook)(void *, int), void *arg,
                  pthread_t *thread)
{
    pthread_mutex_lock(&a->lock);
    a->vm = vm;
    a->exit_hook = exit_hook;
    a->exit_arg = arg;
    a->state = AHEAD_RUN;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    *thread = a->thread;
}
