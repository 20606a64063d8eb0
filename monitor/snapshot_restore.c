/* snapshot_restore.c: a new VM from a snapshot (snapshot.h).
 *
 * Order: everything that can refuse the snapshot comes first (state file,
 * memory file size and digest, device layout against the state), then the
 * KVM VM is built exactly as at boot but with guest RAM mapped from the
 * memory file MAP_PRIVATE, then the state goes back in: VM-wide (irqchip,
 * kvmclock), then the vCPU in the order KVM needs (CPUID before anything
 * that depends on features; special registers, which carry the APIC base,
 * before the MSRs and the LAPIC; XCR0 before the XSAVE area it qualifies;
 * the IA32_TSC MSR before the TSC deadline). The restore costs a dozen
 * ioctls and no page of guest memory is read until the guest touches it.
 *
 * After the state is in, the guest is told it was restored (ember/abi.h,
 * struct ember_restore_info): a new generation, the host's wall clock
 * against its TSC, fresh entropy.
 */
#include "monitor/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ember/abi.h>
#include "monitor/exit_codes.h"
#include "monitor/snapshot_mem.h"
#include "monitor/snapshot_uffd.h"
#include "monitor/timings.h"
#include "monitor/vm_priv.h"

enum step {
    STEP_STATE,  /* read and check the state file */
    STEP_MEMCHK, /* memory file: size and digest */
    STEP_KVM,    /* KVM VM, memory slot, irqchip, vCPU */
    STEP_DEV,    /* devices built and their transports restored */
    STEP_VCPU,   /* vCPU and VM state set */
    STEP_COUNT,
};
static const char *const step_names[STEP_COUNT] = {"state", "mem-check", "kvm", "devices",
                                                   "vcpu-state"};
static uint64_t step_ns[STEP_COUNT];
static uint64_t step_t; /* timings_now_ns() at the end of the last step */

/* Step s ends now. */
#define STEP_AT(s)                                                                                 \
    do {                                                                                           \
        uint64_t n_ = timings_now_ns();                                                            \
        step_ns[s] = n_ - step_t;                                                                  \
        step_t = n_;                                                                               \
    } while (0)
static bool mem_hashed;
static bool cpuid_kept; /* the shell's CPUID was the snapshot's (vm_shell.h) */

static int refuse(char *err, size_t errlen, int code, const char *path, const char *why)
{
    snprintf(err, errlen, "snapshot \"%s\": %s", path, why);
    return code;
}

static int read_state(const char *path, uint8_t **buf, size_t *len, char *why, size_t whylen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t off = 0;

    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > SNAPSHOT_STATE_MAX) {
        snprintf(why, whylen,
                 S_ISREG(st.st_mode) ? "too big (%lld bytes, at most %u)" : "not a regular file",
                 (long long)st.st_size, SNAPSHOT_STATE_MAX);
        close(fd);
        return -1;
    }
    *buf = malloc((size_t)st.st_size + 1);
    if (!*buf) {
        close(fd);
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    while (off < (size_t)st.st_size) {
        ssize_t n = read(fd, *buf + off, (size_t)st.st_size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fd);
    *len = off;
    return 0;
}

/* What the state says must agree with itself and with what this monitor
 * builds: RAM size, devices in ember's order and layout. */
static int check_layout(const struct snapshot_state *st, char *why, size_t whylen)
{
    unsigned want = st->ndrives + st->nnets + (st->has_vsock ? 1u : 0u);

    if (st->mem_size % (1u << 20) || st->mem_size < ((uint64_t)VM_MEM_MIB_MIN << 20) ||
        st->mem_size > ((uint64_t)VM_MEM_MIB_MAX << 20)) {
        snprintf(why, whylen, "corrupted: guest memory size %llu is not a MiB count from %u to %u",
                 (unsigned long long)st->mem_size, VM_MEM_MIB_MIN, VM_MEM_MIB_MAX);
        return -1;
    }
    if (st->ndevices != want) {
        snprintf(why, whylen, "corrupted: %u devices, but the configuration has %u", st->ndevices,
                 want);
        return -1;
    }
    if (st->ndevices && !st->vm.irqchip) {
        snprintf(why, whylen, "corrupted: devices without an irqchip");
        return -1;
    }
    for (unsigned i = 0; i < st->ndevices; i++) {
        const struct snapshot_device *d = &st->devices[i];
        /* ember's order: drives, network interfaces, vsock. */
        uint32_t id = i < st->ndrives               ? 2u /* VIRTIO_ID_BLOCK */
                      : i < st->ndrives + st->nnets ? 1u /* VIRTIO_ID_NET */
                                                    : 19u /* VIRTIO_ID_VSOCK */;
        if (d->device_id != id || d->base != DEVICES_MMIO_BASE + (uint64_t)i * VIRTIO_MMIO_WINDOW ||
            d->gsi != DEVICES_GSI_BASE + i) {
            snprintf(why, whylen, "corrupted: device %u is not where ember puts it", i);
            return -1;
        }
    }
    if (st->vcpu.ncpuid == 0) {
        snprintf(why, whylen, "corrupted: no CPUID");
        return -1;
    }
    return 0;
}

static int build_config(const struct snapshot_state *st, const struct snapshot_load *ld,
                        struct vm_config *cfg, char *why, size_t whylen)
{
    vm_config_init(cfg);
    cfg->mem_mib = (uint32_t)(st->mem_size >> 20);
    cfg->timings = ld->timings;
    cfg->boot_timer = ld->boot_timer;
    cfg->no_seccomp = ld->no_seccomp;
    cfg->track_dirty_pages = ld->track_dirty_pages;
    if (ld->clock_realtime && !(st->vm.clock.flags & KVM_CLOCK_REALTIME)) {
        snprintf(why, whylen,
                 "clock_realtime requested but not present in the snapshot state (the "
                 "snapshot's host gave kvmclock no real time: its clocksource was not the TSC, "
                 "or its Linux was older than 5.16)");
        return -1;
    }
    for (uint32_t i = 0; i < st->ndrives; i++) {
        struct blk_config d;
        memset(&d, 0, sizeof(d));
        memcpy(d.id, st->drives[i].id, sizeof(d.id));
        d.path = st->drives[i].path;
        d.read_only = st->drives[i].read_only;
        d.writeback = st->drives[i].writeback;
        d.async = st->drives[i].async;
        if (vm_config_add_drive(cfg, &d, why, whylen) != 0)
            return -1;
    }
    for (unsigned i = 0; i < ld->nnet_overrides; i++) {
        bool found = false;
        for (uint32_t j = 0; j < st->nnets; j++)
            found |= strcmp(st->nets[j].id, ld->net_overrides[i].iface_id) == 0;
        if (!found) {
            snprintf(why, whylen, "network_overrides: the snapshot has no interface \"%s\"",
                     ld->net_overrides[i].iface_id);
            return -1;
        }
    }
    for (uint32_t i = 0; i < st->nnets; i++) {
        struct net_config n;
        memset(&n, 0, sizeof(n));
        memcpy(n.id, st->nets[i].id, sizeof(n.id));
        memcpy(n.host_dev_name, st->nets[i].host_dev_name, sizeof(n.host_dev_name));
        for (unsigned k = 0; k < ld->nnet_overrides; k++)
            if (strcmp(ld->net_overrides[k].iface_id, n.id) == 0) {
                if (strlen(ld->net_overrides[k].host_dev_name) >= sizeof(n.host_dev_name)) {
                    snprintf(why, whylen, "network_overrides: tap name too long");
                    return -1;
                }
                snprintf(n.host_dev_name, sizeof(n.host_dev_name), "%s",
                         ld->net_overrides[k].host_dev_name);
            }
        n.has_mac = st->nets[i].has_mac;
        memcpy(n.mac, st->nets[i].mac, sizeof(n.mac));
        n.mtu = st->nets[i].mtu;
        if (vm_config_add_net(cfg, &n, why, whylen) != 0)
            return -1;
    }
    if (st->has_vsock) {
        cfg->has_vsock = true;
        cfg->vsock.guest_cid = st->vsock_cid;
        cfg->vsock.uds_path = strdup(ld->vsock_uds_path ? ld->vsock_uds_path : st->vsock_uds_path);
        if (!cfg->vsock.uds_path) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
    }
    return 0;
}

static int set_msrs(struct vm *vm, const struct snapshot_vcpu *c)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e[SNAPSHOT_MSRS_MAX];
    } msrs;

    memset(&msrs, 0, sizeof(msrs));
    msrs.h.nmsrs = c->nmsrs;
    memcpy(msrs.e, c->msrs, c->nmsrs * sizeof(c->msrs[0]));
    return ioctl(vm->vcpu_fd, KVM_SET_MSRS, &msrs) == (int)c->nmsrs ? 0 : -1;
}

/* Whether the CPUID a shell set (vm_shell.h) is the snapshot's, entry for
 * entry: then KVM_SET_CPUID2 (~0.1 ms here) would change nothing. */
static bool cpuid_in_place(const struct kvm_cpuid2 *set, const struct snapshot_vcpu *c)
{
    return set && set->nent == c->ncpuid &&
           memcmp(set->entries, c->cpuid, c->ncpuid * sizeof(c->cpuid[0])) == 0;
}

static int set_state(struct vm *vm, const struct snapshot_state *st, bool clock_realtime, char *why,
                     size_t whylen)
{
    const struct snapshot_vcpu *c = &st->vcpu;
    const char *what;

#define TRY(call, name)                                                                            \
    do {                                                                                           \
        what = name;                                                                               \
        if ((call) < 0)                                                                            \
            goto fail;                                                                             \
    } while (0)

    if (st->vm.irqchip) {
        TRY(ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &st->vm.pic_master), "KVM_SET_IRQCHIP");
        TRY(ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &st->vm.pic_slave), "KVM_SET_IRQCHIP");
        TRY(ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &st->vm.ioapic), "KVM_SET_IRQCHIP");
    }
    /* kvmclock goes on from where it was, or (clock_realtime, checked in
     * build_config) from where it would be now: KVM adds the wall-clock
     * time since the snapshot's KVM_GET_CLOCK. */
    struct kvm_clock_data clock = {.clock = st->vm.clock.clock};
    if (clock_realtime) {
        clock.flags = KVM_CLOCK_REALTIME;
        clock.realtime = st->vm.clock.realtime;
    }
    TRY(ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock), "KVM_SET_CLOCK");
    cpuid_kept = cpuid_in_place(vm->cpuid_set, c);
    if (!cpuid_kept) {
        /* On the heap: 10 KiB of stack would stay dirty, so private, in
         * every VM's process for its whole life. */
        struct kvm_cpuid2 *cpuid =
            calloc(1, sizeof(*cpuid) + c->ncpuid * sizeof(struct kvm_cpuid_entry2));
        int rc = -1;

        if (cpuid) {
            cpuid->nent = c->ncpuid;
            memcpy(cpuid->entries, c->cpuid, c->ncpuid * sizeof(c->cpuid[0]));
            rc = ioctl(vm->vcpu_fd, KVM_SET_CPUID2, cpuid);
            free(cpuid);
        } else {
            errno = ENOMEM;
        }
        TRY(rc, "KVM_SET_CPUID2");
    }
    TRY(ioctl(vm->vcpu_fd, KVM_SET_SREGS, &c->sregs), "KVM_SET_SREGS");
    TRY(set_msrs(vm, c), "KVM_SET_MSRS");
    TRY(ioctl(vm->vcpu_fd, KVM_SET_REGS, &c->regs), "KVM_SET_REGS");
    if (c->has_xcrs)
        TRY(ioctl(vm->vcpu_fd, KVM_SET_XCRS, &c->xcrs), "KVM_SET_XCRS");
    if (c->has_xsave)
        TRY(ioctl(vm->vcpu_fd, KVM_SET_XSAVE, &c->xsave), "KVM_SET_XSAVE");
    else
        TRY(ioctl(vm->vcpu_fd, KVM_SET_FPU, &c->fpu), "KVM_SET_FPU");
    if (c->has_lapic)
        TRY(ioctl(vm->vcpu_fd, KVM_SET_LAPIC, &c->lapic), "KVM_SET_LAPIC");
    TRY(ioctl(vm->vcpu_fd, KVM_SET_MP_STATE, &c->mp_state), "KVM_SET_MP_STATE");
    TRY(ioctl(vm->vcpu_fd, KVM_SET_VCPU_EVENTS, &c->events), "KVM_SET_VCPU_EVENTS");
    TRY(ioctl(vm->vcpu_fd, KVM_SET_DEBUGREGS, &c->debugregs), "KVM_SET_DEBUGREGS");
#undef TRY
    return 0;
fail:
    snprintf(why, whylen, "%s: %s (the state does not fit this host's KVM)", what, strerror(errno));
    return -1;
}

/* ember/abi.h: struct ember_restore_info, for SDK guests. */
static int tell_guest(struct vm *vm, const struct snapshot_state *st, char *why, size_t whylen)
{
    struct ember_restore_info *ri;
    struct timespec now;
    uint64_t tsc = 0;

    if (st->boot_kind != ELF_BOOT_EMBER)
        return 0;
    ri = guest_mem_slice(&vm->mem, EMBER_LOW_RESTORE, sizeof(*ri));
    if (!ri) {
        snprintf(why, whylen, "corrupted: no room for the restore page");
        return -1;
    }
    /* The guest TSC as it reads now, next to the wall clock: whether or not
     * KVM honoured the restored IA32_TSC (kvm_pvm does not: the guest TSC
     * there is the host's, so monotonic time includes the time the snapshot
     * waited, as CLOCK_BOOTTIME would after a suspend). */
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = 0x10 /* IA32_TSC */};
    if (ioctl(vm->vcpu_fd, KVM_GET_MSRS, &m) != 1) {
        snprintf(why, whylen, "KVM_GET_MSRS: %s", strerror(errno));
        return -1;
    }
    tsc = m.e.data;
    if (getrandom(ri->entropy, sizeof(ri->entropy), GRND_NONBLOCK) !=
        (ssize_t)sizeof(ri->entropy)) {
        snprintf(why, whylen, "getrandom: %s", strerror(errno));
        return -1;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    ri->realtime_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    ri->tsc = tsc;
    ri->vsock_cid = st->has_vsock ? st->vsock_cid : 0;
    /* Last: a guest reads the generation first (it cannot run now anyway). */
    __atomic_store_n(&ri->generation, vm->generation, __ATOMIC_RELEASE);
    return 0;
}

/* The checks of a snapshot, before any VM is built: the state file read,
 * decoded and laid out as ember builds it, the memory file's size and
 * digest. *mem_fd is the memory file, open. */
static int check_snapshot(const char *state_path, const char *mem_path, struct snapshot_state *st,
                          int *mem_fd, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char why[512];
    struct stat ms;
    int rc;

    *mem_fd = -1;
    rc = read_state(state_path, &buf, &len, why, sizeof(why));
    if (rc == 0)
        rc = snapshot_state_decode(buf, len, st, why, sizeof(why));
    free(buf);
    if (rc != 0 || check_layout(st, why, sizeof(why)) != 0)
        return refuse(err, errlen, EMBER_EXIT_BAD_CONFIG, state_path, why);
    STEP_AT(STEP_STATE);
    if (!mem_path) { /* the Uffd backend: the handler has the memory */
        STEP_AT(STEP_MEMCHK);
        return 0;
    }
    *mem_fd = open(mem_path, O_RDONLY | O_CLOEXEC);
    if (*mem_fd < 0 || fstat(*mem_fd, &ms) != 0) {
        snprintf(why, sizeof(why), "memory file %s: %s", mem_path, strerror(errno));
        return refuse(err, errlen, EMBER_EXIT_BAD_CONFIG, state_path, why);
    }
    if (!S_ISREG(ms.st_mode) || (uint64_t)ms.st_size != st->mem_size) {
        snprintf(why, sizeof(why), "memory file %s is %lld bytes, the snapshot's guest has %llu",
                 mem_path, (long long)ms.st_size, (unsigned long long)st->mem_size);
        return refuse(err, errlen, EMBER_EXIT_BAD_CONFIG, state_path, why);
    }
    if (snapshot_mem_verify(mem_path, *mem_fd, st->mem_size, st->mem_sha256, &mem_hashed, why,
                            sizeof(why)) != 0)
        return refuse(err, errlen, EMBER_EXIT_BAD_CONFIG, state_path, why);
    STEP_AT(STEP_MEMCHK);
    return 0;
}

int snapshot_prepare(const char *state_path, const char *mem_path, struct snapshot_prepared *out,
                     char *err, size_t errlen)
{
    struct snapshot_state *st = calloc(1, sizeof(*st));
    int mem_fd = -1, rc;

    out->st = NULL;
    out->mem_fd = -1;
    if (!st)
        return refuse(err, errlen, EMBER_EXIT_GENERIC, state_path, "out of memory");
    step_t = timings_now_ns();
    rc = check_snapshot(state_path, mem_path, st, &mem_fd, err, errlen);
    if (rc != 0) {
        if (mem_fd >= 0)
            close(mem_fd);
        snapshot_state_release(st);
        free(st);
        return rc;
    }
    out->st = st;
    out->mem_fd = mem_fd;
    out->mem_size = st->mem_size;
    return 0;
}

void snapshot_prepared_release(struct snapshot_prepared *p)
{
    if (p->mem_fd >= 0)
        close(p->mem_fd);
    if (p->st) {
        snapshot_state_release(p->st);
        free(p->st);
    }
    p->st = NULL;
    p->mem_fd = -1;
}

int snapshot_restore(const struct snapshot_load *ld, struct vm **out, char *err, size_t errlen)
{
    struct snapshot_state *own = NULL;
    const struct snapshot_state *st;
    struct vm_config cfg;
    struct vm *vm = NULL;
    char why[512];
    int mem_fd = -1, rc;

    vm_config_init(&cfg);
    step_t = timings_now_ns();
    if (ld->prepared && !ld->mem_uffd_path) {
        st = ld->prepared->st;
        mem_fd = ld->prepared->mem_fd;
        step_ns[STEP_STATE] = step_ns[STEP_MEMCHK] = 0;
    } else {
        own = calloc(1, sizeof(*own));
        if (!own)
            return refuse(err, errlen, EMBER_EXIT_GENERIC, ld->state_path, "out of memory");
        rc = check_snapshot(ld->state_path, ld->mem_uffd_path ? NULL : ld->mem_path, own, &mem_fd,
                            err, errlen);
        if (rc != 0)
            goto out;
        st = own;
    }
    if (build_config(st, ld, &cfg, why, sizeof(why)) != 0) {
        rc = refuse(err, errlen, EMBER_EXIT_BAD_CONFIG, ld->state_path, why);
        goto out;
    }
    vm = vm_alloc(&cfg);
    if (!vm) {
        rc = refuse(err, errlen, EMBER_EXIT_GENERIC, ld->state_path, "out of memory");
        goto out;
    }
    const struct vm_kvm_want want = {
        .mem_size = st->mem_size,
        .mem_fd = mem_fd,
        .mem_path = ld->mem_path,
        .irqchip = st->vm.irqchip,
        .track_dirty = ld->track_dirty_pages,
        .shell = ld->shell,
    };
    rc = vm_setup_kvm(vm, &want, why, sizeof(why));
    if (rc != 0) {
        rc = refuse(err, errlen, rc, ld->state_path, why);
        goto out;
    }
    /* Before anything reads or writes guest memory (the devices' rings,
     * the restore page): every first touch from here on is the handler's. */
    if (ld->mem_uffd_path && snapshot_uffd_attach(vm, ld->mem_uffd_path, why, sizeof(why)) != 0) {
        rc = refuse(err, errlen, EMBER_EXIT_GENERIC, ld->state_path, why);
        goto out;
    }
    STEP_AT(STEP_KVM);
    if (vm_create_devices(vm, &cfg, why, sizeof(why)) != 0) {
        rc = refuse(err, errlen, EMBER_EXIT_BAD_CONFIG, ld->state_path, why);
        goto out;
    }
    for (unsigned i = 0; i < vm->devices.n; i++)
        if (virtio_mmio_restore(vm->devices.transport[i], &st->devices[i].t, why, sizeof(why)) !=
            0) {
            rc = refuse(err, errlen, EMBER_EXIT_BAD_CONFIG, ld->state_path, why);
            goto out;
        }
    devices_coalesce(&vm->devices, vm->kvm_fd, vm->vm_fd, vm->run);
    STEP_AT(STEP_DEV);
    vm->image.kind = st->boot_kind;
    vm->generation = st->generation + 1;
    if (set_state(vm, st, ld->clock_realtime, why, sizeof(why)) != 0 ||
        tell_guest(vm, st, why, sizeof(why)) != 0) {
        rc = refuse(err, errlen, EMBER_EXIT_GENERIC, ld->state_path, why);
        goto out;
    }
    if (vm->devices.vsock)
        vsock_transport_reset(vm->devices.vsock);
    STEP_AT(STEP_VCPU);
    vm_finish(vm, &cfg);
    *out = vm;
    vm = NULL;
    rc = 0;
out:
    if (vm)
        vm_destroy(vm);
    vm_config_release(&cfg);
    if (own) {
        if (mem_fd >= 0)
            close(mem_fd);
        snapshot_state_release(own);
        free(own);
    }
    /* The state and its buffers were the biggest allocations of the
     * process; their pages go back, so that each of thousands of restored
     * VMs keeps only what it uses (every KiB here is per VM): after a
     * failure here, and once the VM runs with the set-up's other memory
     * (vm_drop_setup_memory(), which the starters call after vm_start():
     * off the restore's time). */
    if (rc != 0)
        malloc_trim(0);
    return rc;
}

void snapshot_format_timings(char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    for (int i = 0; i < STEP_COUNT && off < len; i++) {
        int n = snprintf(buf + off, len - off, "%s%s=%.1f", i ? " " : "", step_names[i],
                         step_ns[i] / 1000.0);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    if (off < len)
        snprintf(buf + off, len - off, "%s%s", cpuid_kept ? " (CPUID kept)" : "",
                 mem_hashed ? " (memory file hashed)" : "");
}

void snapshot_print_timings(int fd)
{
    char buf[256];

    snapshot_format_timings(buf, sizeof(buf));
    dprintf(fd, "ember: restore (us): %s\n", buf);
}
