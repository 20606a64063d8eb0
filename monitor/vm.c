/* vm.c: build one microVM on KVM, run its single vCPU, report how it ended.
 *
 * vm_create() opens /dev/kvm, creates the VM with an in-kernel irqchip, maps
 * guest RAM, loads the guest ELF and sets the vCPU up for the ELF's entry
 * kind; vm_run() is the KVM_RUN loop. It answers only what must be answered
 * synchronously (ports, MMIO outside RAM, see legacy.c) and turns every way a
 * guest can fail into a message and EMBER_EXIT_GUEST_FAILED: nothing a guest
 * does ends the monitor any other way.
 */
#include "monitor/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ember/abi.h>

#include "common/cpuid_cache.h"
#include "common/errmsg.h"
#include "monitor/boot_x86.h"
#include "monitor/exit_codes.h"
#include "monitor/seccomp_filter.h"
#include "monitor/timings.h"
#include "monitor/vm_ahead.h"
#include "monitor/vm_priv.h"

/* SIGUSR1 kicks the vCPU thread out of KVM_RUN for vm_pause(). */
#define VM_KICK_SIGNAL SIGUSR1

/* The in-kernel irqchip (PIC, IOAPIC, LAPIC) is what devices raise their
 * interrupts through (irqfd), and it must exist before the vCPU. It is also
 * the most expensive thing to tear down: destroying it waits for an SRCU grace
 * period per emulated device, measured at ~14 ms per VM on our development
 * hosts against ~0.5 ms for a whole VM without it. A VM with no device that
 * interrupts never needs it, so it is created only when one is configured. */
static bool vm_needs_irqchip(const struct vm_config *cfg)
{
    return cfg->ndrives > 0 || cfg->nnets > 0 || cfg->has_vsock;
}

static void park_hook(void *arg);
static void ready_hook(void *arg);

/* The VM whose vCPU this thread runs (vm_run), for the SIGBUS handler. */
static __thread struct vm *vcpu_vm;

/* In the SIGBUS handler (mem_fault.h), after a host access to guest RAM
 * found its page gone from the memory file. On the vCPU thread, vm_run()
 * sees it once the exit it is handling is done; on the main thread (a
 * device), the loop is woken to stop the VM, paused or running. */
static void mem_fault_notify(void *arg)
{
    struct vm *vm = arg;

    if (vcpu_vm == vm)
        return;
    if (__atomic_load_n(&vm->fault_async_on, __ATOMIC_ACQUIRE))
        uv_async_send(&vm->fault_async); /* async-signal-safe */
}

static void on_fault_async(uv_async_t *a)
{
    vm_stop(a->data, EMBER_EXIT_SIGBUS);
}

bool vm_mem_file_lost(const struct vm *vm, uint64_t *gpa)
{
    return vm->mem_path && mem_fault_first(&vm->mem_fault, gpa);
}

static void kick_handler(int sig)
{
    (void)sig;
}

void vm_vcpu_thread_init(void)
{
    struct sigaction sa = {.sa_handler = kick_handler};

    sigemptyset(&sa.sa_mask);
    sigaction(VM_KICK_SIGNAL, &sa, NULL);
}

static int setup_regs(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    const struct guest_mem *mem = &vm->mem;

    if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
        return errmsg(EMBER_EXIT_GENERIC, err, errlen, "KVM_GET_SREGS: %s", strerror(errno));
    if (boot_x86_gdt(mem) != 0)
        return errmsg(EMBER_EXIT_UNEXPECTED, err, errlen, "cannot write the GDT");

    if (vm->image.kind == ELF_BOOT_EMBER) {
        uint8_t entropy[32] = {0};
        struct timespec now;
        char *path_copy = NULL;
        const char *progname = cfg->progname;
        int tsc_khz = ioctl(vm->vcpu_fd, KVM_GET_TSC_KHZ, 0);

        if (getrandom(entropy, sizeof(entropy), GRND_NONBLOCK) != (ssize_t)sizeof(entropy))
            return errmsg(EMBER_EXIT_GENERIC, err, errlen, "getrandom: %s", strerror(errno));
        clock_gettime(CLOCK_REALTIME, &now);
        if (!progname) {
            path_copy = strdup(cfg->kernel_path);
            if (!path_copy)
                return errmsg(EMBER_EXIT_GENERIC, err, errlen, "out of memory");
            progname = basename(path_copy);
        }
        char *cmdline = vm_config_cmdline(cfg, true);
        struct boot_x86_args args = {
            .progname = progname,
            .cmdline = cmdline,
            .flags = (cfg->boot_timer || cfg->timings) ? EMBER_BOOT_F_TIMER : 0,
            .tsc_khz = tsc_khz > 0 ? (uint64_t)tsc_khz : 0,
            .realtime_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec,
            .entropy = entropy,
        };
        int rc = !cmdline || boot_x86_page_tables(mem) ||
                 (vm->image.guard_len &&
                  boot_x86_guard(mem, vm->image.guard_addr, vm->image.guard_len)) ||
                 boot_x86_ember_info(mem, &args);
        free(path_copy);
        free(cmdline);
        if (rc)
            return errmsg(EMBER_EXIT_BAD_CONFIG, err, errlen,
                          "command line too long (at most %u bytes with the program name)",
                          EMBER_CMDLINE_MAX - 2);
        devices_boot_info(&vm->devices, guest_mem_slice(mem, EMBER_LOW_BOOT_INFO,
                                                        sizeof(struct ember_boot_info)));
        boot_x86_regs_ember(&regs, &sregs, vm->image.entry);
    } else {
        char cmdline[EMBER_CMDLINE_MAX];
        char *line = vm_config_cmdline(cfg, false);
        int n = snprintf(cmdline, sizeof(cmdline), "%s", line ? line : "");
        free(line);
        if (!line || n >= (int)sizeof(cmdline) ||
            devices_cmdline(&vm->devices, cmdline, sizeof(cmdline)) != 0 ||
            boot_x86_pvh_info(mem, cmdline) != 0)
            return errmsg(EMBER_EXIT_BAD_CONFIG, err, errlen,
                          "command line too long (at most %u bytes)", EMBER_CMDLINE_MAX - 1);
        boot_x86_regs_pvh(&regs, &sregs, vm->image.entry);
    }
    if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs) < 0 ||
        ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs) < 0)
        return errmsg(EMBER_EXIT_GENERIC, err, errlen, "setting vCPU registers: %s",
                      strerror(errno));
    return 0;
}

struct vm *vm_alloc(const struct vm_config *cfg)
{
    struct vm *vm = calloc(1, sizeof(*vm));

    if (!vm)
        return NULL;
    vm->kvm_fd = vm->vm_fd = vm->vcpu_fd = -1;
    vm->mem_file_fd = -1;
    vm->uffd_fd = vm->uffd_sock = -1;
    vm->timings = cfg->timings;
    vm->no_seccomp = cfg->no_seccomp;
    vm->boot_timer = cfg->boot_timer;
    pthread_mutex_init(&vm->lock, NULL);
    pthread_cond_init(&vm->cond, NULL);
    return vm;
}

int vm_setup_kvm(struct vm *vm, const struct vm_kvm_want *want, char *err, size_t errlen)
{
    struct vm_shell s;
    char why[128];
    int rc;

    if (vm_shell_fits(want->shell, want)) {
        s = *want->shell;
        vm_shell_init(want->shell);
        vm->ahead = s.ahead; /* ended by vm_destroy() if nothing else */
        if (want->mem_fd >= 0 && guest_mem_remap_file(&s.mem, want->mem_fd) != 0) {
            rc = errno;
            vm_shell_release(&s);
            return errmsg(EMBER_EXIT_GENERIC, err, errlen, "guest memory (%llu MiB): %s",
                          (unsigned long long)(want->mem_size >> 20), strerror(rc));
        }
    } else {
        rc = vm_shell_build_for(&s, want, err, errlen);
        if (rc)
            return rc;
    }
    vm->kvm_fd = s.kvm_fd;
    vm->vm_fd = s.vm_fd;
    vm->vcpu_fd = s.vcpu_fd;
    vm->run = s.run;
    vm->run_size = s.run_size;
    vm->mem = s.mem;
    vm->cpuid_set = s.cpuid;
    vm->irqchip = s.irqchip;
    vm->track_dirty = s.track_dirty;
    /* A memory file can be truncated under the running VM (mem_fault.h):
     * keep its name and a descriptor to report it, and catch the SIGBUS of
     * a host access to a lost page. */
    if (want->mem_fd >= 0) {
        vm->mem_path = strdup(want->mem_path ? want->mem_path : "(unnamed)");
        /* On the number the parked vCPU thread's filter names, if any. */
        vm->mem_file_fd = vm->ahead ? vm_ahead_dup_mem_fd(vm->ahead, want->mem_fd)
                                    : fcntl(want->mem_fd, F_DUPFD_CLOEXEC, 3);
        if (!vm->mem_path || vm->mem_file_fd < 0)
            return errmsg(EMBER_EXIT_GENERIC, err, errlen, "guest memory file: %s",
                          strerror(errno));
        vm->mem_fault = (struct mem_fault_region){
            .start = vm->mem.host, .len = vm->mem.size, .notify = mem_fault_notify, .arg = vm};
        vm->mem.lost = &vm->mem_fault.first;
        if (mem_fault_watch(&vm->mem_fault, why, sizeof(why)) != 0)
            return errmsg(EMBER_EXIT_GENERIC, err, errlen, "guest memory file %s: %s", vm->mem_path,
                          why);
    }
    return 0;
}

int vm_create_devices(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen)
{
    int rc;

    if (vm->ahead)
        virtio_mmio_set_eventfd_source(vm_ahead_take_eventfd, vm->ahead);
    rc = devices_create(&vm->devices, cfg, &vm->mem, vm->vm_fd, err, errlen);
    virtio_mmio_set_eventfd_source(NULL, NULL);
    return rc;
}

void vm_finish(struct vm *vm, const struct vm_config *cfg)
{
    legacy_init(&vm->legacy, &vm->mem, STDOUT_FILENO, cfg->boot_timer);
    vm->legacy.err_fd = STDERR_FILENO;
    /* An SDK guest may register a console buffer in its boot info (abi.h). */
    vm->legacy.boot_info_gpa = vm->image.kind == ELF_BOOT_EMBER ? EMBER_LOW_BOOT_INFO : 0;
    vm->legacy.park = park_hook;
    vm->legacy.park_arg = vm;
    vm->legacy.ready = ready_hook;
    vm->legacy.ready_arg = vm;
    /* The CPUID is in; the copy was only for comparing (vm_shell.h). */
    free(vm->cpuid_set);
    vm->cpuid_set = NULL;
    timings_mark(TIMING_VM_CREATED);
}

int vm_create(const struct vm_config *cfg, struct vm **out, char *err, size_t errlen)
{
    struct vm *vm;
    int rc;
    char why[256];

    if (vm_config_check(cfg, why, sizeof(why)) != 0)
        return errmsg(EMBER_EXIT_BAD_CONFIG, err, errlen, "%s", why);
    vm = vm_alloc(cfg);
    if (!vm)
        return errmsg(EMBER_EXIT_GENERIC, err, errlen, "out of memory");
    const struct vm_kvm_want want = {
        .mem_size = (uint64_t)cfg->mem_mib << 20,
        .mem_fd = -1,
        .irqchip = vm_needs_irqchip(cfg),
        .track_dirty = cfg->track_dirty_pages,
        .boot_cpuid = true,
        .shell = cfg->shell,
    };
    rc = vm_setup_kvm(vm, &want, err, errlen);
    if (rc != 0)
        goto err;
    if (elf_load_file(cfg->kernel_path, &vm->mem, &vm->image, why, sizeof(why)) != 0) {
        rc = errmsg(EMBER_EXIT_BAD_CONFIG, err, errlen, "%s", why);
        goto err;
    }
    if (vm_create_devices(vm, cfg, why, sizeof(why)) != 0) {
        rc = errmsg(EMBER_EXIT_BAD_CONFIG, err, errlen, "%s", why);
        goto err;
    }
    devices_coalesce(&vm->devices, vm->kvm_fd, vm->vm_fd, vm->run);
    rc = setup_regs(vm, cfg, err, errlen);
    if (rc != 0)
        goto err;
    vm_finish(vm, cfg);
    *out = vm;
    return 0;
err:
    vm_destroy(vm);
    return rc;
}

void vm_destroy(struct vm *vm)
{
    if (!vm)
        return;
    /* A parked vCPU thread ends before its vCPU goes (vm_ahead.h). */
    vm_ahead_end(vm->ahead);
    devices_destroy(&vm->devices);
    if (vm->run)
        munmap(vm->run, vm->run_size);
    if (vm->vcpu_fd >= 0)
        close(vm->vcpu_fd);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    free(vm->cpuid_set);
    mem_fault_unwatch(&vm->mem_fault);
    if (vm->mem_file_fd >= 0)
        close(vm->mem_file_fd);
    free(vm->mem_path);
    guest_mem_unmap(&vm->mem);
    if (vm->uffd_sock >= 0)
        close(vm->uffd_sock);
    if (vm->uffd_fd >= 0)
        close(vm->uffd_fd);
    pthread_mutex_destroy(&vm->lock);
    pthread_cond_destroy(&vm->cond);
    free(vm);
}

static uintptr_t main_stack_frame;

void vm_note_main_stack(void *main_frame)
{
    main_stack_frame = (uintptr_t)main_frame;
}

/* The kernel maps the main stack at least 128 KiB below its arguments, and
 * main()'s frame is below them: nothing below main_frame - 128 KiB may be
 * zapped without knowing the mapping. Nothing below the stack pointer is
 * live; a page touched again comes back zeroed. */
__attribute__((noinline)) void vm_drop_setup_memory(void)
{
    const uintptr_t page = 4096, span = 64 * 1024, kernel_min = 120 * 1024;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    /* a page of margin for madvise's own frame below this one */
    uintptr_t top = (sp - page) & ~(page - 1), low = top - span;

    malloc_trim(0);
    if (!main_stack_frame || main_stack_frame < sp || main_stack_frame - sp > kernel_min)
        return;
    if (low < main_stack_frame - kernel_min)
        low = (main_stack_frame - kernel_min + page - 1) & ~(page - 1);
    if (low < top)
        (void)madvise((void *)low, top - low, MADV_DONTNEED);
}

int vm_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    sigset_t all, old;
    int rc = pthread_attr_init(&attr);

    if (rc != 0)
        return rc;
    /* The vCPU thread takes no asynchronous signal but the kick: SIGTERM and
     * friends belong to the main loop, whose handlers (libuv's signal pipe)
     * would make system calls the vCPU's seccomp filter forbids. The mask is
     * inherited from the creating thread, so set it around pthread_create. */
    sigfillset(&all);
    sigdelset(&all, VM_KICK_SIGNAL);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGSYS);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_attr_setstacksize(&attr, (size_t)VM_VCPU_STACK_KIB * 1024);
    if (rc == 0)
        rc = pthread_create(thread, &attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return rc;
}

/* The memory file of a restored VM lost pages while it ran (mem_fault.h):
 * one line that names the file, says how much of it is left and what
 * failed (what), and the process's status, EMBER_EXIT_SIGBUS (Firecracker's
 * status for a SIGBUS). Returns -1 instead, printing nothing, when the file
 * still has all its bytes and quiet_if_whole is set (the failure was not
 * the file's). */
static int mem_file_failed(struct vm *vm, const char *what, bool quiet_if_whole)
{
    struct stat st;
    bool known = fstat(vm->mem_file_fd, &st) == 0;
    int e = errno;

    if (known && (uint64_t)st.st_size >= vm->mem.size && quiet_if_whole)
        return -1;
    vm->mem_reported = true;
    legacy_flush(&vm->legacy);
    if (!known)
        fprintf(stderr,
                "ember: guest memory file %s failed while the VM ran (fstat: %s): %s; the "
                "VM is stopped\n",
                vm->mem_path, strerror(e), what);
    else if ((uint64_t)st.st_size >= vm->mem.size)
        fprintf(stderr,
                "ember: guest memory file %s could not be read while the VM ran (it has "
                "its %llu bytes now: an I/O error, or truncated and grown again): %s; the VM is "
                "stopped\n",
                vm->mem_path, (unsigned long long)vm->mem.size, what);
    else
        fprintf(stderr,
                "ember: guest memory file %s was truncated while the VM ran (%lld of its "
                "%llu bytes left): %s; the VM is stopped\n",
                vm->mem_path, (long long)st.st_size, (unsigned long long)vm->mem.size, what);
    return EMBER_EXIT_SIGBUS;
}

/* A host access to guest RAM faulted (mem_fault.h): the report. */
static int mem_file_lost(struct vm *vm, uint64_t gpa)
{
    char what[96];

    snprintf(what, sizeof(what), "the monitor's access to guest-physical 0x%llx failed",
             (unsigned long long)gpa);
    return mem_file_failed(vm, what, false);
}

/* A guest failure: one line that says the guest failed, how, and where. */
static int guest_failed(struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int guest_failed(struct vm *vm, const char *fmt, ...)
{
    struct kvm_regs regs;
    char how[256];
    va_list ap;
    int rc;

    va_start(ap, fmt);
    vsnprintf(how, sizeof(how), fmt, ap);
    va_end(ap);
    /* A guest that lost memory under it fails in whatever way follows
     * (KVM's emulator cannot read an instruction, say): name the cause. */
    if (vm->mem_path) {
        char what[300];
        snprintf(what, sizeof(what), "the guest failed (%s)", how);
        rc = mem_file_failed(vm, what, true);
        if (rc >= 0)
            return rc;
    }
    legacy_flush(&vm->legacy);
    if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &regs) == 0)
        fprintf(stderr, "ember: guest failed: %s at rip 0x%llx (rsp 0x%llx)\n", how, regs.rip,
                regs.rsp);
    else
        fprintf(stderr, "ember: guest failed: %s\n", how);
    return EMBER_EXIT_GUEST_FAILED;
}

static const char *internal_error_name(uint32_t suberror)
{
    switch (suberror) {
    case KVM_INTERNAL_ERROR_EMULATION:
        return "emulation failure";
    case KVM_INTERNAL_ERROR_SIMUL_EX:
        return "exception while delivering an exception";
    case KVM_INTERNAL_ERROR_DELIVERY_EV:
        return "event delivery failed";
    default:
        return "internal error";
    }
}

/* Parks the vCPU while a pause is requested. Called with the lock not held. */
static void pause_point(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    if (vm->pause_req) {
        vm->paused = true;
        pthread_cond_broadcast(&vm->cond);
        while (vm->pause_req)
            pthread_cond_wait(&vm->cond, &vm->lock);
        vm->paused = false;
        pthread_cond_broadcast(&vm->cond);
    }
    vm->run->immediate_exit = 0;
    pthread_mutex_unlock(&vm->lock);
}

static void bump(uint64_t *c)
{
    __atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

static void count_exit(struct vm *vm, const struct kvm_run *run)
{
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        bump(run->io.direction == KVM_EXIT_IO_OUT ? &vm->stats.exits_io_out
                                                  : &vm->stats.exits_io_in);
        break;
    case KVM_EXIT_MMIO:
        bump(run->mmio.is_write ? &vm->stats.exits_mmio_write : &vm->stats.exits_mmio_read);
        break;
    case KVM_EXIT_HLT:
        bump(&vm->stats.exits_hlt);
        break;
    case KVM_EXIT_SHUTDOWN:
        bump(&vm->stats.exits_shutdown);
        break;
    case KVM_EXIT_INTR:
        bump(&vm->stats.exits_intr);
        break;
    default:
        bump(&vm->stats.exits_other);
    }
}

uint64_t vm_mem_size(const struct vm *vm)
{
    return vm->mem.size;
}

void vm_get_stats(const struct vm *vm, struct vm_stats *out)
{
    const uint64_t *src = (const uint64_t *)&vm->stats;
    uint64_t *dst = (uint64_t *)out;

    for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    out->boot_timer_ns = __atomic_load_n(&vm->legacy.boot_timer_ns, __ATOMIC_RELAXED);
}

/* The guest called ember_faas_ready() (EMBER_PORT_READY). */
static void ready_hook(void *arg)
{
    struct vm *vm = arg;

    if (vm->on_ready)
        vm->on_ready(vm, vm->on_ready_arg);
}

void vm_set_ready_hook(struct vm *vm, void (*fn)(struct vm *vm, void *arg), void *arg)
{
    vm->on_ready = fn;
    vm->on_ready_arg = arg;
}

void vm_request_pause(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    if (!vm->finished) {
        vm->pause_req = true;
        vm->run->immediate_exit = 1;
        if (vm->running && !pthread_equal(vm->vcpu_thread, pthread_self()))
            pthread_kill(vm->vcpu_thread, VM_KICK_SIGNAL);
    }
    pthread_mutex_unlock(&vm->lock);
}

void vm_stop(struct vm *vm, int status)
{
    pthread_mutex_lock(&vm->lock);
    vm->stop_status = status;
    __atomic_store_n(&vm->stop_req, true, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&vm->lock);
    vm_request_pause(vm);
    vm_resume(vm);
}

/* A guest sleeping in the sleep port must not hold up vm_pause(): the kick
 * interrupts the host sleep, the vCPU parks, and the sleep goes on after. */
static void park_hook(void *arg)
{
    struct vm *vm = arg;

    if (__atomic_load_n(&vm->pause_req, __ATOMIC_ACQUIRE))
        pause_point(vm);
}

static int handle_exit(struct vm *vm, bool *done)
{
    struct kvm_run *run = vm->run;
    enum legacy_result r = LEGACY_CONTINUE;

    count_exit(vm, run);
    /* What the guest buffered on its console goes out at every exit (a
     * no-op when the buffer is empty): a guest that prints and then polls a
     * device register shows its output while it waits. */
    legacy_drain(&vm->legacy);
    switch (run->exit_reason) {
    case KVM_EXIT_IO: {
        uint8_t *data = (uint8_t *)run + run->io.data_offset;
        /* String I/O repeats the access count times over the data buffer. */
        for (uint32_t i = 0; i < run->io.count && r == LEGACY_CONTINUE; i++)
            r = legacy_pio(&vm->legacy, run->io.port, run->io.direction == KVM_EXIT_IO_OUT,
                           data + i * run->io.size, run->io.size);
        break;
    }
    case KVM_EXIT_MMIO:
        if (devices_mmio(&vm->devices, run->mmio.phys_addr, run->mmio.is_write, run->mmio.data,
                         run->mmio.len))
            break;
        r = legacy_mmio(&vm->legacy, run->mmio.phys_addr, run->mmio.is_write, run->mmio.data,
                        run->mmio.len);
        break;
    case KVM_EXIT_INTR:
        return 0;
    case KVM_EXIT_SHUTDOWN:
        *done = true;
        return guest_failed(vm, "triple fault (KVM_EXIT_SHUTDOWN)");
    case KVM_EXIT_INTERNAL_ERROR:
        *done = true;
        return guest_failed(vm, "KVM internal error, %s (suberror %u)",
                            internal_error_name(run->internal.suberror), run->internal.suberror);
    case KVM_EXIT_FAIL_ENTRY:
        *done = true;
        return guest_failed(vm, "VM entry failed (hardware reason 0x%llx)",
                            (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
    case KVM_EXIT_SYSTEM_EVENT:
        *done = true;
        if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ||
            run->system_event.type == KVM_SYSTEM_EVENT_RESET)
            return 0;
        return guest_failed(vm, "system event %u", run->system_event.type);
    case KVM_EXIT_HLT:
        *done = true;
        return guest_failed(vm, "halted with no way to wake up (KVM_EXIT_HLT)");
    default:
        *done = true;
        return guest_failed(vm, "unexpected exit reason %u", run->exit_reason);
    }
    if (r == LEGACY_EXIT) {
        *done = true;
        return vm->legacy.exit_status;
    }
    return 0;
}

/* The monitor's own peak RSS (VmHWM: this process only, unlike getrusage,
 * which also counts what the parent had before exec). */
static long peak_rss_kib(void)
{
    char buf[4096];
    long kib = -1;
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *p = strstr(buf, "VmHWM:");
    if (p)
        kib = strtol(p + 6, NULL, 10);
    return kib;
}

/* With --timings: the monitor's peak RSS against the guest pages that are
 * resident, so a user sees what a VM costs the host beyond its guest. */
static void print_memory(struct vm *vm)
{
    uint64_t pages = vm->mem.size / 4096, resident = 0;
    unsigned char *vec = malloc(pages);

    if (!vec || mincore(vm->mem.host, vm->mem.size, vec) != 0) {
        free(vec);
        return;
    }
    for (uint64_t i = 0; i < pages; i++)
        resident += vec[i] & 1;
    free(vec);
    fprintf(stderr, "ember: memory (KiB): rss-peak=%ld guest-resident=%lu\n", peak_rss_kib(),
            resident * 4);
}

int vm_run(struct vm *vm)
{
    bool done = false;
    int status = 0;
    uint64_t gpa;
    char why[256];

    /* A thread built ahead that does not run this VM ends before the
     * guest's first instruction (vm_ahead.h). */
    if (vm->ahead && !vm_ahead_running(vm->ahead)) {
        vm_ahead_end(vm->ahead);
        vm->ahead = NULL;
    }
    if (!vm->vcpu_filter_on)
        vm_vcpu_thread_init();
    pthread_mutex_lock(&vm->lock);
    vm->vcpu_thread = pthread_self();
    vm->running = true;
    pthread_mutex_unlock(&vm->lock);
    vcpu_vm = vm;

    /* Last step before the guest's first instruction (seccomp_filter.h),
     * unless the thread was parked with it on (vm_ahead.h). */
    if (!vm->no_seccomp && !vm->vcpu_filter_on &&
        seccomp_filter_install(vm->timings ? SECCOMP_ROLE_VCPU_TIMINGS : SECCOMP_ROLE_VCPU,
                               vm->vcpu_fd, vm->mem_file_fd, why, sizeof(why)) != 0) {
        fprintf(stderr, "ember: %s\n", why);
        done = true;
        status = EMBER_EXIT_GENERIC;
    }
    timings_mark(TIMING_FIRST_RUN);
    while (!done) {
        if (vm_mem_file_lost(vm, &gpa))
            break; /* reported below */
        if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                pause_point(vm);
                if (__atomic_load_n(&vm->stop_req, __ATOMIC_ACQUIRE)) {
                    status = vm->stop_status;
                    break;
                }
                continue;
            }
            /* A guest access to a page its memory file no longer has
             * (KVM cannot fault it in: EFAULT). */
            if (errno == EFAULT && vm->mem_path) {
                if (vm_mem_file_lost(vm, &gpa))
                    break; /* a host access found it first: reported below */
                status = mem_file_failed(
                    vm, "the guest touched a page that is gone (KVM_RUN: Bad address)", true);
                if (status >= 0)
                    break;
                errno = EFAULT;
            }
            status = EMBER_EXIT_GENERIC;
            fprintf(stderr, "ember: KVM_RUN: %s\n", strerror(errno));
            break;
        }
        /* Register stores the guest made without exiting (coalesced MMIO)
         * take effect before anything else it did. */
        devices_drain_coalesced(&vm->devices);
        status = handle_exit(vm, &done);
        /* A pause requested meanwhile has set immediate_exit: the next
         * KVM_RUN completes the exit just handled (KVM's API: state is only
         * consistent for saving once the exit has been re-entered) and
         * returns EINTR at once, then the vCPU parks. */
    }
    /* Whatever ended the loop, a host access that read zeros for a lost
     * page makes the run's outcome worthless: that is the report. */
    if (!vm->mem_reported && vm_mem_file_lost(vm, &gpa))
        status = mem_file_lost(vm, gpa);
    vcpu_vm = NULL;
    timings_mark(TIMING_EXIT);
    legacy_flush(&vm->legacy);
    pthread_mutex_lock(&vm->lock);
    vm->running = false;
    vm->finished = true;
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
    if (vm->timings) {
        timings_print(STDERR_FILENO);
        print_memory(vm);
    }
    return status;
}

bool vm_vcpu_thread_was_ahead(const struct vm *vm)
{
    return vm->ahead != NULL;
}

bool vm_has_devices(const struct vm *vm)
{
    return vm->devices.n > 0;
}

int vm_attach_loop(struct vm *vm, struct uv_loop_s *loop)
{
    /* The wake-up that stops the VM when a device's access to guest RAM
     * found its memory file truncated (mem_fault_notify). Closed with the
     * loop's other handles; it keeps no loop alive. */
    if (vm->mem_path && !vm->fault_async_on) {
        if (uv_async_init(loop, &vm->fault_async, on_fault_async) != 0)
            return -1;
        vm->fault_async.data = vm;
        uv_unref((uv_handle_t *)&vm->fault_async);
        __atomic_store_n(&vm->fault_async_on, true, __ATOMIC_RELEASE);
    }
    return devices_attach(&vm->devices, loop);
}

struct devices *vm_devices(struct vm *vm)
{
    return &vm->devices;
}

const char *vm_lost_mem_file(const struct vm *vm)
{
    uint64_t gpa;

    return vm->mem_reported || vm_mem_file_lost(vm, &gpa) ? vm->mem_path : NULL;
}

int vm_pause(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    if (vm->finished) {
        pthread_mutex_unlock(&vm->lock);
        return -1;
    }
    vm->pause_req = true;
    if (!vm->running) {
        /* Not started yet: KVM_RUN returns at once with EINTR and parks. */
        vm->run->immediate_exit = 1;
        pthread_mutex_unlock(&vm->lock);
        return 0;
    }
    /* immediate_exit covers a kick that lands before KVM_RUN is entered. */
    vm->run->immediate_exit = 1;
    pthread_kill(vm->vcpu_thread, VM_KICK_SIGNAL);
    while (!vm->paused && vm->running)
        pthread_cond_wait(&vm->cond, &vm->lock);
    pthread_mutex_unlock(&vm->lock);
    return 0;
}

int vm_resume(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    vm->pause_req = false;
    pthread_cond_broadcast(&vm->cond);
    while (vm->paused)
        pthread_cond_wait(&vm->cond, &vm->lock);
    pthread_mutex_unlock(&vm->lock);
    return 0;
}
