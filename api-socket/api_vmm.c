/* api_vmm.c: starting, pausing and ending the microVM for the API (see
 * api_vmm.h). */
#include "api-socket/api_vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api-socket/api_log.h"
#include "mmds/mmds_stack.h"
#include "api-socket/api_metrics.h"
#include "monitor/devices.h"
#include "monitor/exit_codes.h"
#include "monitor/seccomp_filter.h"
#include "monitor/timings.h"
#include "monitor/vm.h"
#include "monitor/snapshot.h"
#include "monitor/snapshot_state.h"
#include "monitor/vm_start.h"
#include "virtio/blk_device.h"
#include "virtio/net_device.h"
#include "virtio/vsock_device.h"

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void bucket_to(const struct api_token_bucket *b, struct token_bucket_config *out)
{
    out->size = b->set ? b->size : 0;
    out->refill_time_ms = b->set ? b->refill_time : 0;
    out->one_time_burst = b->set && b->has_one_time_burst ? b->one_time_burst : 0;
}

static void bucket_from(const struct token_bucket_config *b, struct api_token_bucket *out)
{
    memset(out, 0, sizeof(*out));
    out->set = b->size != 0 || b->refill_time_ms != 0;
    out->size = b->size;
    out->refill_time = b->refill_time_ms;
    out->has_one_time_burst = b->one_time_burst != 0;
    out->one_time_burst = b->one_time_burst;
}

static void limiter_from(const struct rate_limiter_config *c, struct api_rate_limiter *out)
{
    bucket_from(&c->bandwidth, &out->bandwidth);
    bucket_from(&c->ops, &out->ops);
    out->set = out->bandwidth.set || out->ops.set;
}

/* What a restored VM is, in the API's terms (Firecracker's GET /vm/config
 * after a load gives the snapshot's machine configuration): its memory, and
 * the drives, interfaces and vsock it was restored with (overrides applied),
 * so that PATCH /drives and /network-interfaces find them. */
static int describe_restored(struct vm *vm, bool track_dirty, struct api_resources *res,
                             struct api_err *e)
{
    struct devices *d = vm_devices(vm);

    res->machine.vcpu_count = 1;
    res->machine.mem_size_mib = vm_mem_size(vm) >> 20;
    res->machine.track_dirty_pages = track_dirty;
    for (unsigned i = 0; i < d->nblk && res->ndrives < API_MAX_DEVICES; i++) {
        const struct blk_config *b = blk_get_config(d->blk[i]);
        struct api_drive *a = &res->drives[res->ndrives];
        memset(a, 0, sizeof(*a));
        snprintf(a->id, sizeof(a->id), "%s", b->id);
        a->path_on_host = strdup(b->path);
        if (!a->path_on_host)
            return api_errf(e, "out of memory");
        a->is_read_only = b->read_only;
        a->is_root_device = b->root;
        a->cache_type = b->writeback ? API_CACHE_WRITEBACK : API_CACHE_UNSAFE;
        a->io_engine = b->async ? API_IO_ASYNC : API_IO_SYNC;
        limiter_from(&b->rate_limiter, &a->rate_limiter);
        res->ndrives++;
    }
    for (unsigned i = 0; i < d->nnet && res->nnets < API_MAX_DEVICES; i++) {
        const struct net_config *n = net_get_config(d->net[i]);
        struct api_net *a = &res->nets[res->nnets++];
        memset(a, 0, sizeof(*a));
        snprintf(a->id, sizeof(a->id), "%s", n->id);
        snprintf(a->host_dev_name, sizeof(a->host_dev_name), "%s", n->host_dev_name);
        if (n->has_mac)
            snprintf(a->guest_mac, sizeof(a->guest_mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0],
                     n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
        a->mtu = n->mtu;
        limiter_from(&n->rx_rate_limiter, &a->rx_rate_limiter);
        limiter_from(&n->tx_rate_limiter, &a->tx_rate_limiter);
    }
    if (d->vsock) {
        const struct vsock_config *v = vsock_get_config(d->vsock);
        res->vsock.set = true;
        res->vsock.guest_cid = (uint32_t)v->guest_cid;
        res->vsock.uds_path = strdup(v->uds_path);
        if (!res->vsock.uds_path)
            return api_errf(e, "out of memory");
    }
    return 0;
}

static void limiter_to(const struct api_rate_limiter *l, struct rate_limiter_config *out)
{
    memset(out, 0, sizeof(*out));
    bucket_to(&l->bandwidth, &out->bandwidth);
    bucket_to(&l->ops, &out->ops);
}

int api_vm_config_from(const struct api_resources *res, bool boot_timer, bool no_seccomp,
                       struct vm_config *cfg, struct api_err *e)
{
    char err[256];

    /* The API takes any size Firecracker takes; here is where ember says
     * whether it can honour it (guest RAM lives below the 3 GiB MMIO hole). */
    if (res->machine.mem_size_mib < VM_MEM_MIB_MIN || res->machine.mem_size_mib > VM_MEM_MIB_MAX)
        return api_errf(e,
                        "Start microvm error: Invalid Memory Configuration: ember gives a guest "
                        "%u to %u MiB of memory, not %llu MiB (mem_size_mib)",
                        VM_MEM_MIB_MIN, VM_MEM_MIB_MAX,
                        (unsigned long long)res->machine.mem_size_mib);
    cfg->mem_mib = (uint32_t)res->machine.mem_size_mib;
    cfg->vcpu_count = res->machine.vcpu_count;
    cfg->track_dirty_pages = res->machine.track_dirty_pages;
    cfg->boot_timer = boot_timer;
    cfg->no_seccomp = no_seccomp;
    for (unsigned i = 0; i < res->ndrives; i++) {
        const struct api_drive *d = &res->drives[i];
        struct blk_config b;

        memset(&b, 0, sizeof(b));
        snprintf(b.id, sizeof(b.id), "%s", d->id);
        b.path = d->path_on_host; /* vm_config_add_drive copies it */
        b.read_only = d->is_read_only;
        b.writeback = d->cache_type == API_CACHE_WRITEBACK;
        b.async = d->io_engine == API_IO_ASYNC;
        b.root = d->is_root_device;
        limiter_to(&d->rate_limiter, &b.rate_limiter);
        if (vm_config_add_drive(cfg, &b, err, sizeof(err)) < 0)
            return api_errf(e, "drive \"%s\": %s", d->id, err);
    }
    for (unsigned i = 0; i < res->nnets; i++) {
        const struct api_net *a = &res->nets[i];
        struct net_config n;

        memset(&n, 0, sizeof(n));
        snprintf(n.id, sizeof(n.id), "%s", a->id);
        snprintf(n.host_dev_name, sizeof(n.host_dev_name), "%s", a->host_dev_name);
        if (a->guest_mac[0]) {
            if (net_parse_mac(a->guest_mac, n.mac) != 0)
                return api_errf(e, "network interface \"%s\": bad guest_mac %s", a->id,
                                a->guest_mac);
            n.has_mac = true;
        }
        n.mtu = a->mtu;
        limiter_to(&a->rx_rate_limiter, &n.rx_rate_limiter);
        limiter_to(&a->tx_rate_limiter, &n.tx_rate_limiter);
        if (vm_config_add_net(cfg, &n, err, sizeof(err)) < 0)
            return api_errf(e, "%s", err);
    }
    if (res->vsock.set) {
        cfg->has_vsock = true;
        cfg->vsock.guest_cid = res->vsock.guest_cid;
        cfg->vsock.buffer_bytes = res->vsock.buffer_bytes;
        cfg->vsock.uds_path = strdup(res->vsock.uds_path);
        if (!cfg->vsock.uds_path)
            return api_errf(e, "out of memory");
    }
    cfg->kernel_path = strdup(res->boot.kernel_image_path);
    if (!cfg->kernel_path)
        return api_errf(e, "out of memory");
    if (res->boot.boot_args && !(cfg->boot_args = strdup(res->boot.boot_args)))
        return api_errf(e, "out of memory");
    if (vm_config_check(cfg, err, sizeof(err)) < 0)
        return api_errf(e, "%s", err);
    return 0;
}

/* The guest console is the process's stdout; PUT /serial sends it to a file
 * or FIFO instead. Blocking on purpose: console output is not dropped. */
static int redirect_console(const char *path, struct api_err *e)
{
    struct stat st;
    int flags = O_CLOEXEC | O_NOCTTY, fd;

    if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
        flags |= O_RDWR; /* do not wait for a reader to open it */
    else
        flags |= O_WRONLY | O_APPEND | O_CREAT;
    fd = open(path, flags, 0600);
    if (fd < 0)
        return api_errf(e, "serial output %.200s: %s", path, strerror(errno));
    fflush(stdout);
    if (dup2(fd, STDOUT_FILENO) < 0) {
        close(fd);
        return api_errf(e, "serial output %.200s: %s", path, strerror(errno));
    }
    close(fd);
    return 0;
}

/* SIGSYS: count the fault. Nothing more: the handler may interrupt malloc,
 * so no metrics line can be written from it. */
static void on_seccomp_violation(int nr)
{
    (void)nr;
    api_metrics_add(API_M_SECCOMP_FAULTS, 1);
}

/* vm_start()'s hooks: the vCPU thread's name in the log, its end, and the
 * log line when the main filter cannot be installed. */
static void on_vcpu_enter(void *arg)
{
    (void)arg;
    api_log_set_thread_name("vcpu0");
}

static void on_vcpu_exit(void *arg, int status)
{
    struct api_vmm *v = arg;

    atomic_store(&v->exit_status, status);
    uv_async_send(&v->exit_async);
}

static void on_start_fatal(void *arg, const char *msg)
{
    (void)arg;
    API_ERROR("%s", msg);
}

static void on_exit_async(uv_async_t *a)
{
    struct api_vmm *v = a->data;
    /* The SIGBUS ember caught (monitor/mem_fault.h): Firecracker's metric,
     * and the reason in the log as well as on stderr. */
    const char *lost = v->vm ? vm_lost_mem_file(v->vm) : NULL;
    if (lost) {
        api_metrics_add(API_M_SIGNAL_SIGBUS, 1);
        API_ERROR("the VM is stopped: its guest memory file %s lost pages while it ran", lost);
    }
    /* Firecracker measures a load by its request; what a user waits for
     * is the guest running again (the mark is the vCPU's first KVM_RUN). */
    uint64_t first = timings_mark_ns(TIMING_FIRST_RUN);
    if (v->load_start_ns && first > v->load_start_ns)
        API_INFO("The restored guest's first instruction ran %llu us after the load request.",
                 (unsigned long long)((first - v->load_start_ns) / 1000));
    v->on_guest_exit(v, atomic_load(&v->exit_status));
}

/* The vCPU's exit counters since the last flush, and the boot time once the
 * guest has written the boot timer. */
static void sample_vcpu(struct api_vmm *v)
{
    static const enum api_metric ids[7] = {API_M_VCPU_EXIT_IO_IN,     API_M_VCPU_EXIT_IO_OUT,
                                           API_M_VCPU_EXIT_MMIO_READ, API_M_VCPU_EXIT_MMIO_WRITE,
                                           API_M_VCPU_EXIT_HLT,       API_M_VCPU_EXIT_SHUTDOWN,
                                           API_M_VCPU_EXIT_OTHER};
    struct vm_stats st;

    vm_get_stats(v->vm, &st);
    const uint64_t now[7] = {st.exits_io_in,
                             st.exits_io_out,
                             st.exits_mmio_read,
                             st.exits_mmio_write,
                             st.exits_hlt,
                             st.exits_shutdown,
                             st.exits_other + st.exits_intr};
    for (int i = 0; i < 7; i++) {
        api_metrics_add(ids[i], now[i] - v->exits_seen[i]);
        v->exits_seen[i] = now[i];
    }
    if (st.boot_timer_ns && !v->boot_time_stored && st.boot_timer_ns > v->start_mono_ns) {
        api_metrics_store(API_M_BOOT_TIME_US, (st.boot_timer_ns - v->start_mono_ns) / 1000);
        v->boot_time_stored = true;
    }
}

/* Metrics sampler: each drive's running totals into its "block_<id>"
 * group, the vsock's into "vsock". Runs on the loop thread, where the
 * devices do their I/O. */
static void sample_devices(void *arg)
{
    struct api_vmm *v = arg;
    struct devices *d;

    if (!v->vm)
        return;
    d = vm_devices(v->vm);
    for (unsigned i = 0; i < v->ndrives; i++) {
        struct blk *b = devices_find_blk(d, v->drive_ids[i]);
        struct api_block_metrics *m = api_metrics_block(v->drive_ids[i]);
        const struct blk_stats *st;
        if (!b || !m)
            continue;
        st = blk_get_stats(b);
        m->read_bytes = st->read_bytes;
        m->write_bytes = st->write_bytes;
        m->read_count = st->read_count;
        m->write_count = st->write_count;
        m->flush_count = st->flush_count;
        m->execute_fails = st->io_errors;
        m->invalid_reqs_count = st->unsupported;
        m->rate_limiter_throttled_events = st->throttled;
    }
    /* Each interface's counters as Firecracker names them ("net_<id>"; the
     * metrics writer sums them into "net"). */
    for (unsigned i = 0; i < d->nnet; i++) {
        struct net_metrics *m = api_metrics_net(net_get_config(d->net[i])->id);
        struct net_stats st;
        if (!m)
            continue;
        net_get_stats(d->net[i], &st);
#define NET_COPY(name) m->name = st.name;
        NET_METRICS_COUNTERS(NET_COPY)
#undef NET_COPY
    }
    if (d->vsock) {
        static const enum api_metric vids[8] = {API_M_VSOCK_RX_BYTES,     API_M_VSOCK_TX_BYTES,
                                                API_M_VSOCK_RX_PACKETS,   API_M_VSOCK_TX_PACKETS,
                                                API_M_VSOCK_CONNS_ADDED,  API_M_VSOCK_CONNS_REMOVED,
                                                API_M_VSOCK_CONNS_KILLED, API_M_VSOCK_FAILURES};
        struct vsock_stats vs;
        vsock_get_stats(d->vsock, &vs);
        uint64_t added = vs.conns_host + vs.conns_guest;
        const uint64_t vnow[8] = {vs.rx_bytes,
                                  vs.tx_bytes,
                                  vs.rx_packets,
                                  vs.tx_packets,
                                  added,
                                  added - vs.conns_active,
                                  vs.conns_timed_out,
                                  vs.malformed + vs.credit_violations + vs.conns_refused +
                                      vs.conns_timed_out};
        for (int i = 0; i < 8; i++) {
            api_metrics_add(vids[i], vnow[i] - v->vsock_seen[i]);
            v->vsock_seen[i] = vnow[i];
        }
        /* The budget for guest data (ember's own metrics). */
        api_metrics_store(API_M_VSOCK_TX_BUFFERED, vs.tx_buffered_bytes);
        api_metrics_store(API_M_VSOCK_TX_BUFFERED_PEAK, vs.tx_buffered_peak);
        api_metrics_add(API_M_VSOCK_CREDIT_LIMITED, vs.credit_limited - v->vsock_limited_seen);
        v->vsock_limited_seen = vs.credit_limited;
    }
    /* The MMDS responders' counters, summed, into Firecracker's "mmds". */
    if (v->nmmds) {
        static const enum api_metric ids[13] = {
#define MMDS_ID(n) API_M_MMDS_##n,
            MMDS_STATS(MMDS_ID)
#undef MMDS_ID
        };
        uint64_t sum[13] = {0};
        for (unsigned i = 0; i < v->nmmds; i++) {
            struct mmds_stats st;
            mmds_stack_get_stats(v->mmds[i], &st);
            unsigned k = 0;
#define MMDS_SUM(n) sum[k++] += st.n;
            MMDS_STATS(MMDS_SUM)
#undef MMDS_SUM
        }
        for (unsigned k = 0; k < 13; k++) {
            api_metrics_add(ids[k], sum[k] - v->mmds_seen[k]);
            v->mmds_seen[k] = sum[k];
        }
    }
    sample_vcpu(v);
}

int api_vmm_init(struct api_vmm *v, uv_loop_t *loop, const char *instance_id, bool boot_timer,
                 bool no_seccomp, void (*on_guest_exit)(struct api_vmm *, int))
{
    memset(v, 0, sizeof(*v));
    v->instance_id = instance_id;
    v->boot_timer = boot_timer;
    v->no_seccomp = no_seccomp;
    v->loop = loop;
    api_metrics_set_sampler(sample_devices, v);
    seccomp_filter_set_violation_hook(on_seccomp_violation);
    v->on_guest_exit = on_guest_exit;
    v->exit_async.data = v;
    if (uv_timer_init(loop, &v->drop_timer) != 0)
        return -1;
    v->drop_timer.data = v;
    uv_unref((uv_handle_t *)&v->drop_timer);
    return uv_async_init(loop, &v->exit_async, on_exit_async);
}

void api_vmm_prebuild(struct api_vmm *v, unsigned mem_mib)
{
    if (mem_mib == 0)
        return;
    v->prebuild_mem_mib = mem_mib;
    /* With an irqchip: every VM with a device needs one, and a FaaS VM
     * (vsock) always has a device. The thread is named like the vCPU thread
     * it becomes (vm_start()'s vcpu_enter); once parked it warms the state
     * decoder for a load (its code and heap: ~60 us of the load's first
     * decode on our development hosts; the heap goes back after a load,
     * vm_drop_setup_memory). */
    v->ahead = vm_ahead_start((uint64_t)mem_mib << 20, v->no_seccomp, on_vcpu_enter, v,
                              snapshot_state_warm);
}

/* The shell, once it is built (NULL if there is none). */
static struct vm_shell *take_shell(struct api_vmm *v)
{
    if (!v->ahead)
        return NULL;
    vm_ahead_take_shell(v->ahead, &v->shell);
    return vm_shell_ready(&v->shell) ? &v->shell : NULL;
}

/* The thread closing a shell no VM took, if there is one (only the main
 * loop's thread abandons one). The process waits for it at exit: a VM's
 * close stops KVM's worker task of that VM, and an exit in the middle of it
 * could deadlock with an at-exit hook that stops every thread (the
 * sanitizers' leak check does: it waits for the closing thread, which waits
 * for the worker the hook has stopped). */
static struct vm_ahead *released;

static void join_release(void)
{
    vm_ahead_end(released);
    released = NULL;
}

/* After a VM was made (or not): a shell it took over is its own, with the
 * thread that waits to run it (monitor/vm_ahead.h); one it did not take
 * (another memory size, no irqchip, dirty-page logging, a failed request)
 * goes back to that thread, which closes it (~14 ms with an irqchip,
 * vm_shell.h: not on the request's time) and ends. Until it has closed
 * them, the shell's VM and vCPU descriptors are open: if the new vCPU
 * thread scans its descriptors (seccomp_filter.c) in that window, its
 * filter also lets it read and write 8 bytes on those two numbers, which it
 * never does; a pool that passes the right --prebuild-mem never gets here.
 * had_shell: take_shell() gave one; made: the VM was made. */
static void drop_shell(struct api_vmm *v, bool had_shell, bool made)
{
    static bool hooked;
    struct vm_ahead *a = v->ahead;

    if (!a)
        return;
    v->ahead = NULL;
    if (had_shell && !vm_shell_ready(&v->shell)) {
        /* Taken over: the VM owns a (and ended it if it failed). */
        if (made)
            API_INFO("The microVM took over the KVM VM built ahead (%u MiB).", v->prebuild_mem_mib);
        return;
    }
    if (had_shell && made)
        API_INFO("The KVM VM built ahead (%u MiB, with an irqchip) did not fit the microVM, "
                 "which got one of its own.",
                 v->prebuild_mem_mib);
    if (!hooked)
        hooked = atexit(join_release) == 0;
    join_release(); /* one at a time */
    vm_ahead_abandon(a, &v->shell);
    released = a;
}

/* A responder's retransmission timer: armed for its next deadline, it
 * queues what must go again and tells the device. */
static void mmds_timer_arm(void *ctx);

static void on_mmds_timer(uv_timer_t *t)
{
    struct api_mmds_timer *m = t->data;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    mmds_stack_timers(m->stack, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    net_intercept_ready(m->net);
    mmds_timer_arm(m);
}

static void mmds_timer_arm(void *ctx)
{
    struct api_mmds_timer *m = ctx;
    uint64_t next = mmds_stack_next_timer(m->stack);
    if (next == UINT64_MAX) {
        uv_timer_stop(&m->timer);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t ms = next > now ? (next - now + 999999u) / 1000000u : 0;
    uv_timer_start(&m->timer, on_mmds_timer, ms, 0);
}

/* The MMDS responder in the transmit path of every interface that
 * mmds-config names. */
static int attach_mmds(struct api_vmm *v, const struct api_resources *res, struct api_err *e)
{
    struct devices *d = vm_devices(v->vm);

    for (unsigned i = 0; i < d->nnet; i++) {
        const char *id = net_get_config(d->net[i])->id;
        if (!api_mmds_on_iface(&res->mmds, id) || !res->mmds.store)
            continue;
        struct mmds_stack *s = mmds_stack_create(res->mmds.store, res->mmds.ipv4);
        if (!s)
            return api_errf(e, "network interface \"%s\": MMDS: out of memory", id);
        struct api_mmds_timer *m = &v->mmds_timer[v->nmmds];
        if (uv_timer_init(v->loop, &m->timer) != 0) {
            mmds_stack_destroy(s);
            return api_errf(e, "network interface \"%s\": MMDS: no timer", id);
        }
        m->timer.data = m;
        m->stack = s;
        m->net = d->net[i];
        mmds_stack_set_timer_hook(s, mmds_timer_arm, m);
        v->mmds[v->nmmds++] = s;
        struct net_intercept ic = mmds_stack_intercept(s);
        net_set_intercept(d->net[i], &ic);
    }
    return 0;
}

static int op_start(void *ctx, const struct api_resources *res, struct api_err *e)
{
    struct api_vmm *v = ctx;
    struct vm_config cfg;
    char err[256];
    uint64_t t0 = now_us();
    struct timespec mono;

    clock_gettime(CLOCK_MONOTONIC, &mono);
    v->start_mono_ns = (uint64_t)mono.tv_sec * 1000000000u + (uint64_t)mono.tv_nsec;
    int rc;

    if (v->started)
        return api_errf(e, API_MSG_AFTER_BOOT);
    vm_config_init(&cfg);
    if (api_vm_config_from(res, v->boot_timer, v->no_seccomp, &cfg, e) < 0) {
        vm_config_release(&cfg);
        v->create_status = EMBER_EXIT_BAD_CONFIG;
        return -1;
    }
    err[0] = '\0';
    cfg.shell = take_shell(v);
    rc = vm_create(&cfg, &v->vm, err, sizeof(err));
    drop_shell(v, cfg.shell != NULL, rc == 0);
    vm_config_release(&cfg);
    if (rc != 0) {
        v->vm = NULL;
        v->create_status = rc;
        return api_errf(e, "Start microvm error: %s", err[0] ? err : "cannot create the microVM");
    }
    if (res->serial.set && res->serial.serial_out_path &&
        redirect_console(res->serial.serial_out_path, e) < 0) {
        vm_destroy(v->vm);
        v->vm = NULL;
        return -1;
    }
    if (attach_mmds(v, res, e) < 0) {
        vm_destroy(v->vm);
        v->vm = NULL;
        return -1;
    }
    /* Devices on the loop, the vCPU thread, the main filter: as `ember run`
     * (vm_start.h). */
    const struct vm_start_hooks hooks = {
        .arg = v, .vcpu_enter = on_vcpu_enter, .vcpu_exit = on_vcpu_exit, .fatal = on_start_fatal};
    if (vm_start(v->vm, v->loop, &hooks, &v->vcpu_thread, err, sizeof(err)) != 0) {
        vm_destroy(v->vm);
        v->vm = NULL;
        return api_errf(e, "%s", err);
    }
    v->started = true;
    v->ndrives = res->ndrives;
    for (unsigned i = 0; i < res->ndrives; i++)
        snprintf(v->drive_ids[i], sizeof(v->drive_ids[i]), "%s", res->drives[i].id);
    api_metrics_store(API_M_INSTANCE_START_US, now_us() - t0);
    API_INFO("microVM started: %s, %llu MiB%s", res->boot.kernel_image_path,
             (unsigned long long)res->machine.mem_size_mib,
             vm_vcpu_thread_was_ahead(v->vm) ? ", by the vCPU thread built ahead" : "");
    return 0;
}

static int op_pause(void *ctx, struct api_err *e)
{
    struct api_vmm *v = ctx;
    if (!v->vm || vm_pause(v->vm) < 0)
        return api_errf(e, "cannot pause the microVM");
    return 0;
}

static int op_resume(void *ctx, struct api_err *e)
{
    struct api_vmm *v = ctx;
    if (!v->vm || vm_resume(v->vm) < 0)
        return api_errf(e, "cannot resume the microVM");
    return 0;
}

static int op_ctrl_alt_del(void *ctx, struct api_err *e)
{
    (void)ctx;
    /* Needs an i8042 reset request from the monitor (a vm.h call). */
    return api_errf(e, "ember does not offer SendCtrlAltDel yet: SDK guests have no keyboard "
                       "controller");
}

static int op_update_drive(void *ctx, const struct api_drive_update *u, struct api_err *e)
{
    struct api_vmm *v = ctx;
    struct rate_limiter_config rl;
    struct blk *b;
    char err[256];

    struct api_block_metrics *m = api_metrics_block(u->id);

    if (m)
        m->update_count++;
    if (!v->vm || !(b = devices_find_blk(vm_devices(v->vm), u->id))) {
        if (m)
            m->update_fails++;
        return api_errf(e,
                        "Drive config error: Unable to patch the block device: drive \"%s\" is "
                        "not attached to the microVM",
                        u->id);
    }
    if (u->has_rate_limiter)
        limiter_to(&u->rate_limiter, &rl);
    if (blk_update(b, u->path, u->has_rate_limiter ? &rl : NULL, err, sizeof(err)) < 0) {
        if (m)
            m->update_fails++;
        return api_errf(e,
                        "Drive config error: Unable to patch the block device: %s Please verify "
                        "the request arguments. (drive \"%s\")",
                        err, u->id);
    }
    API_INFO("drive \"%s\" updated", u->id);
    return 0;
}

static int op_update_net(void *ctx, const struct api_net_update *u, struct api_err *e)
{
    struct api_vmm *v = ctx;
    struct rate_limiter_config rx, tx;
    struct net *n;

    if (!v->vm || !(n = devices_find_net(vm_devices(v->vm), u->id)))
        return api_errf(e, "network interface \"%s\" is not attached to the microVM", u->id);
    if (u->has_rx)
        limiter_to(&u->rx, &rx);
    if (u->has_tx)
        limiter_to(&u->tx, &tx);
    net_update_limiters(n, u->has_rx ? &rx : NULL, u->has_tx ? &tx : NULL);
    API_INFO("network interface \"%s\" updated", u->id);
    return 0;
}

static int op_configure_logger(void *ctx, const struct api_logger_cfg *cfg, struct api_err *e)
{
    (void)ctx;
    return api_log_configure(cfg, e);
}

static int op_configure_metrics(void *ctx, const struct api_metrics_cfg *cfg, struct api_err *e)
{
    struct api_vmm *v = ctx;
    return api_metrics_configure(cfg, v->instance_id, e);
}

static int op_flush_metrics(void *ctx, struct api_err *e)
{
    (void)ctx;
    return api_metrics_flush(e);
}

static int op_snapshot_create(void *ctx, const struct api_snapshot_create *sc, struct api_err *e)
{
    struct api_vmm *v = ctx;
    char err[512];

    if (!v->vm)
        return api_errf(e, API_MSG_BEFORE_BOOT);
    if (snapshot_create(v->vm, sc->snapshot_path, sc->mem_file_path,
                        sc->diff ? SNAPSHOT_DIFF : SNAPSHOT_FULL, err, sizeof(err)) != 0)
        return api_errf(e, "Create snapshot error: %s", err);
    return 0;
}

/* The loop's turn after a load's response went out: the guest starts (the
 * parked vCPU thread gets its VM, vm_start_go), then the restore's set-up
 * memory goes back. */
static void on_drop_timer(uv_timer_t *t)
{
    struct api_vmm *v = t->data;

    vm_start_go(v->vm);
    vm_drop_setup_memory();
}

static int op_snapshot_load(void *ctx, const struct api_snapshot_load *sl,
                            struct api_resources *res, struct api_err *e)
{
    struct api_vmm *v = ctx;
    struct snapshot_net_override ovs[API_NET_OVERRIDES_MAX];
    char err[600];
    int rc;

    if (v->started)
        return api_errf(e, API_MSG_AFTER_BOOT);
    v->load_start_ns = timings_now_ns();
    for (unsigned i = 0; i < sl->nnet_overrides; i++)
        ovs[i] = (struct snapshot_net_override){sl->net_overrides[i].iface_id,
                                                sl->net_overrides[i].host_dev_name};
    struct snapshot_load ld = {
        .state_path = sl->snapshot_path,
        .mem_path = sl->mem_uffd ? NULL : sl->mem_file_path,
        .mem_uffd_path = sl->mem_uffd ? sl->mem_file_path : NULL,
        .vsock_uds_path = sl->vsock_uds_path,
        .nnet_overrides = sl->nnet_overrides,
        .net_overrides = ovs,
        .track_dirty_pages = sl->track_dirty_pages,
        .clock_realtime = sl->clock_realtime,
        .boot_timer = v->boot_timer,
        .no_seccomp = v->no_seccomp,
        .shell = NULL,
        .prepared = v->prepared,
    };
    uint64_t t_join = now_us();
    ld.shell = take_shell(v);
    uint64_t t_restore = now_us();
    rc = snapshot_restore(&ld, &v->vm, err, sizeof(err));
    uint64_t t_restored = now_us();
    drop_shell(v, ld.shell != NULL, rc == 0);
    if (rc != 0) {
        v->vm = NULL;
        v->create_status = rc;
        return api_errf(e, "Load snapshot error: %s", err);
    }
    /* Paused unless asked otherwise: the vCPU parks before its first
     * instruction, and PATCH /vm Resumed lets it go. */
    if (!sl->resume_vm)
        vm_pause(v->vm);
    const struct vm_start_hooks hooks = {.arg = v,
                                         .vcpu_enter = on_vcpu_enter,
                                         .vcpu_exit = on_vcpu_exit,
                                         .fatal = on_start_fatal,
                                         .go_later = true};
    if (vm_start(v->vm, v->loop, &hooks, &v->vcpu_thread, err, sizeof(err)) != 0) {
        vm_destroy(v->vm);
        v->vm = NULL;
        return api_errf(e, "%s", err);
    }
    v->started = true;
    /* The VM runs either way: a description short of memory is logged. */
    struct api_err de;
    if (res && describe_restored(v->vm, sl->track_dirty_pages, res, &de) < 0)
        API_ERROR("microVM restored, its configuration not recorded for the API: %s", de.msg);
    /* The guest starts on the loop's next turn (on_drop_timer), once the
     * response is written: both filters are on already. The loop's thread (main) restored the VM
     * below this frame: its pages and the restore's heap go back once the response is out (the
     * loop's next turn), not on the request's time. */
    uv_timer_start(&v->drop_timer, on_drop_timer, 0, 0);
    char steps[256];
    snapshot_format_timings(steps, sizeof(steps));
    API_INFO("microVM restored from %s (us: %s; waited for the VM built ahead %llu, restore %llu, "
             "start %llu%s)",
             sl->snapshot_path, steps, (unsigned long long)(t_restore - t_join),
             (unsigned long long)(t_restored - t_restore),
             (unsigned long long)(now_us() - t_restored),
             vm_vcpu_thread_was_ahead(v->vm) ? ", by the vCPU thread built ahead" : "");
    return 0;
}

const struct api_vmm_ops api_vmm_ops = {
    .snapshot_create = op_snapshot_create,
    .snapshot_load = op_snapshot_load,
    .start = op_start,
    .pause = op_pause,
    .resume = op_resume,
    .ctrl_alt_del = op_ctrl_alt_del,
    .update_drive = op_update_drive,
    .update_net = op_update_net,
    .configure_logger = op_configure_logger,
    .configure_metrics = op_configure_metrics,
    .flush_metrics = op_flush_metrics,
};
