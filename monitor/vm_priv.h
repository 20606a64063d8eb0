/* vm_priv.h: the inside of struct vm, shared by the monitor's own files only
 * (vm.c builds and runs it, vm_start.c starts it with its devices, legacy.c
 * answers the guest's port and MMIO accesses). */
#ifndef EMBER_VM_PRIV_H
#define EMBER_VM_PRIV_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/guest_mem.h"
#include "monitor/boot_elf.h"
#include "monitor/devices.h"
#include "monitor/legacy.h"
#include "monitor/mem_fault.h"
#include "monitor/vm.h"
#include "monitor/vm_shell.h"
#include "monitor/vm_start.h"

struct vm {
    int kvm_fd;
    int vm_fd;
    int vcpu_fd;
    struct kvm_run *run;
    size_t run_size;
    struct guest_mem mem;
    struct elf_image image;
    struct legacy legacy;
    struct devices devices;
    struct vm_stats stats; /* updated with relaxed atomics by the vCPU thread */
    bool boot_timer;       /* report the boot-timer write */
    bool timings;
    bool no_seccomp;     /* --no-seccomp: neither vm_run() nor vm_start() installs a filter */
    bool vcpu_filter_on; /* the vCPU thread's filter is on already (vm_ahead.h) */
    /* The shell's parked vCPU thread (vm_ahead.h) until vm_start() hands
     * the VM to it or ends it; freed by vm_destroy(). */
    struct vm_ahead *ahead;
    struct vm_start_hooks start_hooks; /* vm_start()'s, for the vCPU thread */
    pthread_t *go_thread;              /* a hand-over vm_start() left to vm_start_go(), or NULL */

    /* Pause/resume (vm_pause from another thread). */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t vcpu_thread;
    bool running;  /* vm_run is in its loop */
    bool finished; /* vm_run has returned */
    bool pause_req;
    bool paused;
    bool stop_req; /* vm_stop(): vm_run returns stop_status at the next park */
    int stop_status;

    bool irqchip;                 /* KVM_CREATE_IRQCHIP was made */
    bool track_dirty;             /* guest RAM slot has KVM_MEM_LOG_DIRTY_PAGES */
    struct kvm_cpuid2 *cpuid_set; /* until vm_finish(): the CPUID the shell set, or NULL */
    uint64_t generation;          /* restores in this VM's line (ember/abi.h, ember_restore_info) */
    void (*on_ready)(struct vm *vm, void *arg);
    void *on_ready_arg;

    /* A restored VM's memory file (mem_fault.h): its name for messages, a
     * descriptor to see its size, guest RAM watched for SIGBUS, and the
     * main loop's wake-up to stop the VM when a device's access faulted. */
    char *mem_path;  /* NULL: anonymous RAM */
    int mem_file_fd; /* -1 with it */
    struct mem_fault_region mem_fault;
    uv_async_t fault_async;
    bool fault_async_on; /* fault_async is initialised on the loop */
    bool mem_reported;   /* vm_run() has said so (vCPU thread) */

    /* A VM loaded with the Uffd memory backend (snapshot_uffd.h): its
     * userfaultfd and the connection to the page-fault handler, both kept
     * open for the VM's life (closed, the range would silently turn into
     * zero-filled memory if the handler went away). -1 without. */
    int uffd_fd, uffd_sock;
};

/* The steps of building a VM, shared by vm_create() (boot) and
 * snapshot_restore() (restore): allocate, then KVM VM, guest memory
 * (anonymous, or mem_fd, the file mem_path, mapped copy-on-write and
 * watched for truncation) and vCPU, then (after the guest's state is in
 * place) the legacy devices and the hooks. */
struct vm *vm_alloc(const struct vm_config *cfg);
struct vm_kvm_want {
    uint64_t mem_size;
    int mem_fd;           /* -1: anonymous RAM */
    const char *mem_path; /* mem_fd's name, for messages (mem_fault.h) */
    bool irqchip;
    bool track_dirty;
    bool boot_cpuid;        /* set the CPUID a booting guest gets (vm_shell.c) */
    struct vm_shell *shell; /* built ahead: taken over if it fits, else left alone; or NULL */
};
int vm_setup_kvm(struct vm *vm, const struct vm_kvm_want *want, char *err, size_t errlen);
/* vm_shell.c: a shell built to want (vm_shell_build() is one for a boot of
 * anonymous RAM with an irqchip); whether a shell built ahead fits want
 * (without dirty-page logging: a shell's slot has none). */
int vm_shell_build_for(struct vm_shell *s, const struct vm_kvm_want *want, char *err,
                       size_t errlen);
bool vm_shell_fits(const struct vm_shell *s, const struct vm_kvm_want *want);
/* devices_create() for vm, whose devices take their interrupt and queue
 * eventfds from those the parked vCPU thread's filter names, if it has
 * one (vm_ahead.h). */
int vm_create_devices(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen);
/* For a vCPU thread, before its filter: the kick signal's handler. */
void vm_vcpu_thread_init(void);
/* Whether a host access to guest RAM found its memory file truncated
 * (mem_fault.h); *gpa is the first page that faulted. */
bool vm_mem_file_lost(const struct vm *vm, uint64_t *gpa);
void vm_finish(struct vm *vm, const struct vm_config *cfg);

#endif
