/* api_vmm.h: the router's side effects, backed by the monitor (monitor/vm.h).
 *
 * InstanceStart turns the API's resources into a struct vm_config (the same
 * path as `ember run`), calls vm_create() on the API thread (a failure is a
 * 400 with vm_create's message), and runs vm_run() on a new vCPU thread. When
 * the guest ends, that thread wakes the loop through a uv_async and the
 * process exits with the guest's status once metrics and logs are flushed.
 * The API thread never waits for the guest: pause and resume only wait for
 * the vCPU to leave KVM_RUN (vm_pause kicks it). The devices are served by
 * the same loop as the API (vm_attach_loop), so PATCH /drives updates a live
 * device on the thread that does its I/O, and metrics read its counters there.
 */
#ifndef EMBER_API_VMM_H
#define EMBER_API_VMM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <uv.h>

#include "api-socket/api_router.h"
#include "monitor/vm_config.h"
#include "monitor/vm_ahead.h"
#include "monitor/vm_shell.h"

struct vm;
struct net;
struct snapshot_prepared;

struct api_vmm {
    uv_async_t exit_async; /* signalled by the vCPU thread when vm_run returns */
    uv_timer_t drop_timer; /* a load's set-up memory given back, after its response */
    struct vm *vm;
    pthread_t vcpu_thread;
    bool started;
    int create_status; /* vm_create's EMBER_EXIT_* code of the last failure */
    _Atomic int exit_status;
    bool boot_timer;        /* --boot-timer */
    bool no_seccomp;        /* --no-seccomp */
    uv_loop_t *loop;        /* the main loop: the API and the device backends */
    uint64_t exits_seen[7]; /* vCPU exit counters already added */
    uint64_t vsock_seen[8]; /* vsock counters already added */
    uint64_t vsock_limited_seen;
    /* The drives of the running VM, whose counters the sampler copies into
     * their "block_<id>" metrics groups. */
    char drive_ids[API_MAX_DEVICES][API_ID_MAX + 1];
    unsigned ndrives;
    uint64_t start_mono_ns; /* CLOCK_MONOTONIC at InstanceStart, for boot_time_us */
    bool boot_time_stored;
    const char *instance_id;
    struct mmds_stack *mmds[VM_NETS_MAX]; /* the MMDS responders, one per named interface */
    unsigned nmmds;
    /* The KVM VM built ahead (api_vmm_prebuild()) by the vCPU thread that
     * waits to run it (monitor/vm_ahead.h); NULL: none, or taken over. */
    struct vm_ahead *ahead;
    struct vm_shell shell; /* its shell, once taken from it for a request */
    unsigned prebuild_mem_mib;
    uint64_t load_start_ns; /* timings_now_ns() when PUT /snapshot/load arrived; 0: none */
    /* A snapshot checked ahead (the restore server's child,
     * api_main_restored()): the load uses it; or NULL. */
    const struct snapshot_prepared *prepared;
    /* Each responder's retransmission timer and its interface. */
    struct api_mmds_timer {
        uv_timer_t timer;
        struct mmds_stack *stack;
        struct net *net;
    } mmds_timer[VM_NETS_MAX];
    uint64_t mmds_seen[13]; /* MMDS counters (all responders) already added */
    /* Called on the loop thread when the guest has ended. */
    void (*on_guest_exit)(struct api_vmm *v, int status);
};

extern const struct api_vmm_ops api_vmm_ops;

/* Registers the exit async on loop. Returns 0 or a negative libuv error. */
int api_vmm_init(struct api_vmm *v, uv_loop_t *loop, const char *instance_id, bool boot_timer,
                 bool no_seccomp, void (*on_guest_exit)(struct api_vmm *, int));

/* Starts building the KVM VM with mem_mib MiB of RAM, its irqchip and vCPU
 * while the API waits for its first request (vm_shell.h), on the thread that
 * will run the vCPU, which then parks with its seccomp filter on
 * (vm_ahead.h); InstanceStart and PUT /snapshot/load take them over when
 * their guest has that much memory. Otherwise (or if the build fails) they
 * build their own. mem_mib 0: nothing is built ahead. */
void api_vmm_prebuild(struct api_vmm *v, unsigned mem_mib);

/* The vm_config for res: cfg must have been vm_config_init()ed; on failure it
 * is left for the caller to release. Returns 0 or -1 with e set. */
int api_vm_config_from(const struct api_resources *res, bool boot_timer, bool no_seccomp,
                       struct vm_config *cfg, struct api_err *e);

#endif
