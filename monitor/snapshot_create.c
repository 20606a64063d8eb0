/* snapshot_create.c: capture a paused VM into a memory file and a state
 * file (snapshot.h).
 *
 * What is saved, and why each piece (the order a restore sets them back is
 * in snapshot_restore.c):
 *  - vCPU: general and special registers, XSAVE area (or the legacy FPU
 *    state), XCR0, the local APIC, pending events (exceptions, NMIs,
 *    interrupt shadow), the run state (halted or not), debug registers, the
 *    MSRs a 64-bit guest programs (syscall entry, GS base, PAT, TSC and its
 *    deadline), and the CPUID the guest was shown;
 *  - VM: the in-kernel PIC and IOAPIC when they exist, kvmclock, TSC rate;
 *  - devices: every virtio-mmio transport with its queues, plus the blob of
 *    each device model; the configuration needed to build them again;
 *  - the memory file's SHA-256 and size.
 * The vCPU must be parked outside KVM_RUN (vm_pause re-enters KVM_RUN with
 * immediate_exit first, so an exit's I/O has completed, as KVM's API asks).
 */
#include "monitor/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "monitor/exit_codes.h"
#include "monitor/snapshot_mem.h"
#include "monitor/vm_priv.h"

/* MSRs worth carrying (Intel SDM Vol. 4, table 2-2), IA32_TSC first so that
 * the TSC deadline after it is set against the restored TSC. Those KVM does
 * not list (KVM_GET_MSR_INDEX_LIST) are skipped. */
static const uint32_t wanted_msrs[] = {
    0x00000010, /* IA32_TSC */
    0x00000174, /* IA32_SYSENTER_CS */
    0x00000175, /* IA32_SYSENTER_ESP */
    0x00000176, /* IA32_SYSENTER_EIP */
    0x00000277, /* IA32_PAT */
    0xc0000081, /* STAR */
    0xc0000082, /* LSTAR */
    0xc0000083, /* CSTAR */
    0xc0000084, /* FMASK */
    0xc0000102, /* KERNEL_GS_BASE */
    0xc0000103, /* TSC_AUX */
    0x000006e0, /* IA32_TSC_DEADLINE */
    0x000001a0, /* IA32_MISC_ENABLE */
};

static int fail(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "snapshot: %s: %s", what, strerror(errno));
    return -1;
}

static int save_msrs(struct vm *vm, struct snapshot_vcpu *c, char *err, size_t errlen)
{
    struct {
        struct kvm_msr_list h;
        uint32_t idx[1024];
    } list = {.h.nmsrs = 1024};
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e[SNAPSHOT_MSRS_MAX];
    } msrs;
    uint32_t n = 0;

    if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &list) < 0)
        return fail(err, errlen, "KVM_GET_MSR_INDEX_LIST");
    memset(&msrs, 0, sizeof(msrs));
    for (size_t w = 0; w < sizeof(wanted_msrs) / sizeof(wanted_msrs[0]); w++)
        for (uint32_t i = 0; i < list.h.nmsrs && i < 1024; i++)
            if (list.idx[i] == wanted_msrs[w]) {
                msrs.e[n++].index = wanted_msrs[w];
                break;
            }
    /* KVM_GET_MSRS stops at the first MSR it cannot read: drop that one and
     * go on with the rest. */
    c->nmsrs = 0;
    for (uint32_t from = 0; from < n;) {
        struct {
            struct kvm_msrs h;
            struct kvm_msr_entry e[SNAPSHOT_MSRS_MAX];
        } part;
        memset(&part, 0, sizeof(part));
        part.h.nmsrs = n - from;
        memcpy(part.e, &msrs.e[from], (n - from) * sizeof(part.e[0]));
        int got = ioctl(vm->vcpu_fd, KVM_GET_MSRS, &part);
        if (got < 0)
            return fail(err, errlen, "KVM_GET_MSRS");
        memcpy(&c->msrs[c->nmsrs], part.e, (size_t)got * sizeof(part.e[0]));
        c->nmsrs += (uint32_t)got;
        from += (uint32_t)got + 1;
    }
    return 0;
}

static int save_vcpu(struct vm *vm, struct snapshot_vcpu *c, char *err, size_t errlen)
{
    struct {
        struct kvm_cpuid2 h;
        struct kvm_cpuid_entry2 e[CPUID_MAX_ENTRIES];
    } cpuid = {.h.nent = CPUID_MAX_ENTRIES};

    if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &c->regs) < 0)
        return fail(err, errlen, "KVM_GET_REGS");
    if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &c->sregs) < 0)
        return fail(err, errlen, "KVM_GET_SREGS");
    c->has_xsave = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0 &&
                   ioctl(vm->vcpu_fd, KVM_GET_XSAVE, &c->xsave) == 0;
    if (!c->has_xsave && ioctl(vm->vcpu_fd, KVM_GET_FPU, &c->fpu) < 0)
        return fail(err, errlen, "KVM_GET_FPU");
    c->has_xcrs = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0 &&
                  ioctl(vm->vcpu_fd, KVM_GET_XCRS, &c->xcrs) == 0;
    c->has_lapic = vm->irqchip;
    if (c->has_lapic && ioctl(vm->vcpu_fd, KVM_GET_LAPIC, &c->lapic) < 0)
        return fail(err, errlen, "KVM_GET_LAPIC");
    if (ioctl(vm->vcpu_fd, KVM_GET_VCPU_EVENTS, &c->events) < 0)
        return fail(err, errlen, "KVM_GET_VCPU_EVENTS");
    if (ioctl(vm->vcpu_fd, KVM_GET_MP_STATE, &c->mp_state) < 0)
        return fail(err, errlen, "KVM_GET_MP_STATE");
    if (ioctl(vm->vcpu_fd, KVM_GET_DEBUGREGS, &c->debugregs) < 0)
        return fail(err, errlen, "KVM_GET_DEBUGREGS");
    if (ioctl(vm->vcpu_fd, KVM_GET_CPUID2, &cpuid) < 0)
        return fail(err, errlen, "KVM_GET_CPUID2");
    c->ncpuid = cpuid.h.nent <= CPUID_MAX_ENTRIES ? cpuid.h.nent : CPUID_MAX_ENTRIES;
    memcpy(c->cpuid, cpuid.e, c->ncpuid * sizeof(c->cpuid[0]));
    return save_msrs(vm, c, err, errlen);
}

static int save_vm(struct vm *vm, struct snapshot_vm *v, char *err, size_t errlen)
{
    int khz;

    v->irqchip = vm->irqchip;
    if (vm->irqchip) {
        v->pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
        v->pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
        v->ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
        if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &v->pic_master) < 0 ||
            ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &v->pic_slave) < 0 ||
            ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &v->ioapic) < 0)
            return fail(err, errlen, "KVM_GET_IRQCHIP");
    }
    v->has_pit = false; /* ember creates no PIT (KVM_CREATE_PIT2) */
    if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &v->clock) < 0)
        return fail(err, errlen, "KVM_GET_CLOCK");
    khz = ioctl(vm->vcpu_fd, KVM_GET_TSC_KHZ, 0);
    v->tsc_khz = khz > 0 ? (uint64_t)khz : 0;
    return 0;
}

static int save_devices(struct vm *vm, struct snapshot_state *st, char *err, size_t errlen)
{
    struct devices *d = &vm->devices;

    st->ndevices = d->n;
    for (unsigned i = 0; i < d->n; i++) {
        struct virtio_mmio *t = d->transport[i];
        st->devices[i].device_id = t->ops->device_id;
        st->devices[i].base = t->base;
        st->devices[i].gsi = t->gsi;
        virtio_mmio_save(t, &st->devices[i].t);
    }
    st->ndrives = d->nblk;
    for (unsigned i = 0; i < d->nblk; i++) {
        const struct blk_config *bc = blk_get_config(d->blk[i]);
        struct snapshot_drive *sd = &st->drives[i];
        memcpy(sd->id, bc->id, sizeof(sd->id));
        sd->path = strdup(bc->path);
        sd->read_only = bc->read_only;
        sd->writeback = bc->writeback;
        sd->async = bc->async;
        if (!sd->path) {
            snprintf(err, errlen, "snapshot: out of memory");
            return -1;
        }
    }
    st->nnets = d->nnet;
    for (unsigned i = 0; i < d->nnet; i++) {
        const struct net_config *nc = net_get_config(d->net[i]);
        struct snapshot_net *sn = &st->nets[i];
        memcpy(sn->id, nc->id, sizeof(sn->id));
        memcpy(sn->host_dev_name, nc->host_dev_name, sizeof(sn->host_dev_name));
        sn->has_mac = nc->has_mac;
        memcpy(sn->mac, nc->mac, sizeof(sn->mac));
        sn->mtu = nc->mtu;
    }
    if (d->vsock) {
        const struct vsock_config *vc = vsock_get_config(d->vsock);
        st->has_vsock = true;
        st->vsock_cid = vc->guest_cid;
        st->vsock_uds_path = strdup(vc->uds_path);
        if (!st->vsock_uds_path) {
            snprintf(err, errlen, "snapshot: out of memory");
            return -1;
        }
    }
    return 0;
}

/* Pages the guest wrote since the last call (KVM_GET_DIRTY_LOG clears the
 * log as it reads it). */
static uint64_t *dirty_pages(struct vm *vm, char *err, size_t errlen)
{
    size_t words = (vm->mem.size / 4096 + 63) / 64;
    uint64_t *bits = calloc(words, sizeof(uint64_t));
    struct kvm_dirty_log log = {.slot = 0};

    if (!bits) {
        snprintf(err, errlen, "snapshot: out of memory");
        return NULL;
    }
    log.dirty_bitmap = bits;
    if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
        fail(err, errlen, "KVM_GET_DIRTY_LOG");
        free(bits);
        return NULL;
    }
    /* The devices' writes into guest RAM (used rings, buffers they filled)
     * happen on the host, which KVM's log does not see. */
    guest_mem_take_host_dirty(&vm->mem, bits, words);
    return bits;
}

static int write_file(const char *path, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    char tmp[4200];
    int fd;

    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "snapshot: %s: %s", path, strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    if (off != len || fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "snapshot: %s: %s", path, strerror(errno ? errno : EIO));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int snapshot_create(struct vm *vm, const char *state_path, const char *mem_path,
                    enum snapshot_type type, char *err, size_t errlen)
{
    struct snapshot_state *st = calloc(1, sizeof(*st));
    uint64_t *pages = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = -1;

    if (!st) {
        snprintf(err, errlen, "snapshot: out of memory");
        return -1;
    }
    pthread_mutex_lock(&vm->lock);
    bool quiet = (vm->paused || !vm->running) && !vm->finished;
    pthread_mutex_unlock(&vm->lock);
    if (!quiet) {
        snprintf(err, errlen, "snapshot: the VM must be paused");
        goto out;
    }
    if (type == SNAPSHOT_DIFF && !vm->track_dirty) {
        snprintf(err, errlen,
                 "snapshot: a Diff snapshot needs dirty-page tracking (track_dirty_pages)");
        goto out;
    }
    st->type = type;
    st->mem_size = vm->mem.size;
    st->boot_kind = vm->image.kind;
    st->generation = vm->generation;
    if (save_vcpu(vm, &st->vcpu, err, errlen) != 0 || save_vm(vm, &st->vm, err, errlen) != 0 ||
        save_devices(vm, st, err, errlen) != 0)
        goto out;
    /* Every snapshot starts a new dirty interval, so that the next Diff
     * holds what changed since this one. */
    if (vm->track_dirty) {
        pages = dirty_pages(vm, err, errlen);
        if (!pages)
            goto out;
    }
    if (snapshot_mem_write(&vm->mem, mem_path, type == SNAPSHOT_DIFF ? pages : NULL, st->mem_sha256,
                           err, errlen) != 0)
        goto out;
    uint64_t gpa;
    if (vm_mem_file_lost(vm, &gpa)) {
        snprintf(err, errlen,
                 "snapshot: guest memory file %s was truncated while the VM ran (guest-physical "
                 "0x%llx is lost): %s would not hold the guest's memory",
                 vm->mem_path, (unsigned long long)gpa, mem_path);
        goto out;
    }
    if (type == SNAPSHOT_FULL) {
        int fd = open(mem_path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            snapshot_mem_stamp(mem_path, fd, st->mem_sha256);
            close(fd);
        }
    }
    buf = snapshot_state_encode(st, &len);
    if (!buf) {
        snprintf(err, errlen, "snapshot: encoding the state failed");
        goto out;
    }
    rc = write_file(state_path, buf, len, err, errlen);
out:
    free(buf);
    free(pages);
    snapshot_state_release(st);
    free(st);
    return rc;
}
