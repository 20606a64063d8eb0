/* vm_shell.c: the KVM VM, irqchip and vCPU, built ahead of the guest
 * (vm_shell.h). vm_setup_kvm() (vm.c) builds every VM through here, with a
 * shell made on the spot when none was made ahead.
 */
#include "monitor/vm_shell.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/cpuid_cache.h"
#include "common/errmsg.h"
#include "monitor/exit_codes.h"
#include "monitor/vm_priv.h"

#define KVM_API_EXPECTED 12
/* Three pages below the 4 GiB boundary that KVM needs for its VMX real-mode
 * TSS; inside the MMIO gap, never RAM. */
#define VM_TSS_ADDR 0xfffbd000u

void vm_shell_init(struct vm_shell *s)
{
    memset(s, 0, sizeof(*s));
    s->kvm_fd = s->vm_fd = s->vcpu_fd = -1;
}

bool vm_shell_ready(const struct vm_shell *s)
{
    return s->vcpu_fd >= 0;
}

void vm_shell_release(struct vm_shell *s)
{
    guest_mem_unmap(&s->mem);
    if (s->run)
        munmap(s->run, s->run_size);
    if (s->vcpu_fd >= 0)
        close(s->vcpu_fd);
    if (s->vm_fd >= 0)
        close(s->vm_fd);
    if (s->kvm_fd >= 0)
        close(s->kvm_fd);
    free(s->cpuid);
    vm_shell_init(s);
}

/* The CPUID a booting guest gets: KVM's supported set with a single-vCPU
 * topology (room for CPUID_MAX_ENTRIES). 0 or an errno. */
static int boot_cpuid(int kvm_fd, struct kvm_cpuid2 *cpuid)
{
    int rc = cpuid_cache_get(kvm_fd, cpuid);

    if (rc)
        return rc;
    for (uint32_t i = 0; i < cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
        if (e->function == 1) {
            e->ebx &= 0x00ffffffu;                        /* initial APIC id 0 */
            e->ebx = (e->ebx & 0xff00ffffu) | (1u << 16); /* one logical CPU */
            e->ecx |= 1u << 31;                           /* running under a hypervisor */
        }
        /* Extended topology (Intel SDM Vol. 2A, CPUID leaves 0BH and 1FH):
         * EDX is the x2APIC id, the host CPU's that KVM answered on; the
         * guest's only vCPU has id 0, as leaf 1 says. (It also makes the
         * CPUID of two boots on one host the same, which a restore into a
         * shell relies on to keep the shell's, vm_shell.h.) */
        if (e->function == 0xb || e->function == 0x1f)
            e->edx = 0;
    }
    return 0;
}

/* The boot CPUID, set, and what KVM then holds (KVM_GET_CPUID2). */
static int set_boot_cpuid(struct vm_shell *s, char *err, size_t errlen)
{
    size_t sz = sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *cpuid = calloc(1, sz);
    int rc;

    if (!cpuid)
        return errmsg(EMBER_EXIT_GENERIC, err, errlen, "setting CPUID: out of memory");
    rc = boot_cpuid(s->kvm_fd, cpuid);
    if (rc == 0 && ioctl(s->vcpu_fd, KVM_SET_CPUID2, cpuid) < 0)
        rc = errno;
    if (rc == 0) {
        cpuid->nent = CPUID_MAX_ENTRIES;
        if (ioctl(s->vcpu_fd, KVM_GET_CPUID2, cpuid) < 0)
            rc = errno;
    }
    if (rc) {
        free(cpuid);
        return errmsg(EMBER_EXIT_GENERIC, err, errlen, "setting CPUID: %s", strerror(rc));
    }
    s->cpuid = cpuid;
    return 0;
}

static int build(struct vm_shell *s, const struct vm_kvm_want *w, char *err, size_t errlen)
{
    int mmap_size;

    s->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (s->kvm_fd < 0)
        return errmsg(EMBER_EXIT_GENERIC, err, errlen, "/dev/kvm: %s", strerror(errno));
    if (ioctl(s->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_EXPECTED)
        return errmsg(EMBER_EXIT_GENERIC, err, errlen, "/dev/kvm: unsupported KVM API version");
    s->vm_fd = ioctl(s->kvm_fd, KVM_CREATE_VM, 0);
    if (s->vm_fd < 0)
        return errmsg(EMBER_EXIT_GENERIC, err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
    if ((w->mem_fd < 0 ? guest_mem_map(&s->mem, w->mem_size)
                       : guest_mem_map_file(&s->mem, w->mem_fd, w->mem_size)) != 0)
        return errmsg(EMBER_EXIT_GENERIC, err, errlen, "guest memory (%llu MiB): %s",
                      (unsigned long long)(w->mem_size >> 20), strerror(errno));
    /* KVM_MEM_LOG_DIRTY_PAGES: KVM_GET_DIRTY_LOG then says which pages the
     * guest wrote, for Diff snapshots (snapshot_create.c). */
    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .flags = w->track_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
        .guest_phys_addr = 0,
        .memory_size = s->mem.size,
        .userspace_addr = (uint64_t)(uintptr_t)s->mem.host,
    };
    s->track_dirty = w->track_dirty;
    if (w->track_dirty && guest_mem_track_host_writes(&s->mem) != 0)
        return errmsg(EMBER_EXIT_GENERIC, err, errlen, "out of memory");
    /* The slot first, then the irqchip (vm_shell.h: a slot set after the
     * irqchip waits for an SRCU grace period), then the vCPU (KVM's API:
     * the vCPU's LAPIC is in the kernel only if the irqchip exists when the
     * vCPU is created). */
    if (ioctl(s->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0 ||
        ioctl(s->vm_fd, KVM_SET_TSS_ADDR, VM_TSS_ADDR) < 0 ||
        (w->irqchip && ioctl(s->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0))
        return errmsg(EMBER_EXIT_GENERIC, err, errlen, "setting up the VM: %s", strerror(errno));
    s->irqchip = w->irqchip;
    s->vcpu_fd = ioctl(s->vm_fd, KVM_CREATE_VCPU, 0);
    mmap_size = ioctl(s->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (s->vcpu_fd < 0 || mmap_size <= 0)
        return errmsg(EMBER_EXIT_GENERIC, err, errlen, "KVM_CREATE_VCPU: %s", strerror(errno));
    s->run_size = (size_t)mmap_size;
    s->run = mmap(NULL, s->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->vcpu_fd, 0);
    if (s->run == MAP_FAILED) {
        s->run = NULL;
        return errmsg(EMBER_EXIT_GENERIC, err, errlen, "mapping kvm_run: %s", strerror(errno));
    }
    return w->boot_cpuid ? set_boot_cpuid(s, err, errlen) : 0;
}

int vm_shell_build_for(struct vm_shell *s, const struct vm_kvm_want *w, char *err, size_t errlen)
{
    int rc;

    vm_shell_init(s);
    rc = build(s, w, err, errlen);
    if (rc)
        vm_shell_release(s);
    return rc;
}

/* A KVM_RUN with immediate_exit set: KVM returns EINTR before entering the
 * guest (KVM's API), so no guest state changes and the vCPU still counts as
 * never run (KVM_SET_CPUID2 stays allowed), but the kernel's one-time work
 * of a VM's first KVM_RUN is done here, ahead: Linux 6.13 and later create
 * the VM's NX huge page recovery task then (a fork, ~0.2-0.3 ms of the
 * restored vCPU's first KVM_RUN on our development hosts), plus the first
 * vcpu_load. On older kernels it costs one ioctl. Its result is ignored:
 * EINTR is the expected answer and any other failure will show again, with
 * a message, at the real run. */
static void warm_first_run(struct vm_shell *s)
{
    s->run->immediate_exit = 1;
    (void)ioctl(s->vcpu_fd, KVM_RUN, 0);
    s->run->immediate_exit = 0;
}

int vm_shell_build(struct vm_shell *s, uint64_t mem_size, char *err, size_t errlen)
{
    const struct vm_kvm_want w = {
        .mem_size = mem_size, .mem_fd = -1, .irqchip = true, .boot_cpuid = true};
    int rc = vm_shell_build_for(s, &w, err, errlen);

    if (rc == 0)
        warm_first_run(s);
    return rc;
}

bool vm_shell_fits(const struct vm_shell *s, const struct vm_kvm_want *w)
{
    return s && vm_shell_ready(s) && s->irqchip == w->irqchip && s->mem.size == w->mem_size &&
           !s->track_dirty && !w->track_dirty && !s->mem.file_backed &&
           (!w->boot_cpuid || s->cpuid);
}
