/* floor.c: the floor of a KVM boot on this host.
 *
 * Opens /dev/kvm, creates a VM with 2 MiB of RAM and one vCPU, runs a few
 * real-mode instructions that end in HLT, and exits: the least any monitor
 * must do to run a guest. benches/run-boot.sh times it next to ember and QEMU.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#define MEM_SIZE  (2u << 20)
#define CODE_ADDR 0x1000u

static int die(const char *what)
{
    perror(what);
    return 1;
}

int main(void)
{
    /* mov $42, %al; out %al, $0xf4 is not needed: the floor ends at HLT. */
    static const uint8_t code[] = {0xb0, 0x2a, 0x04, 0x01, 0xf4}; /* mov al,42; add al,1; hlt */
    struct kvm_userspace_memory_region region;
    struct kvm_sregs sregs;
    struct kvm_regs regs;
    struct kvm_run *run;
    int kvm, vm, vcpu, size;
    uint8_t *mem;

    kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        return die("/dev/kvm");
    vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        return die("KVM_CREATE_VM");
    mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
               -1, 0);
    if (mem == MAP_FAILED)
        return die("mmap");
    memcpy(mem + CODE_ADDR, code, sizeof(code));
    region = (struct kvm_userspace_memory_region){
        .slot = 0, .memory_size = MEM_SIZE, .userspace_addr = (uint64_t)(uintptr_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return die("KVM_SET_USER_MEMORY_REGION");
    if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000) < 0)
        return die("KVM_SET_TSS_ADDR");
    vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (vcpu < 0 || size <= 0)
        return die("KVM_CREATE_VCPU");
    run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED)
        return die("mmap kvm_run");
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
        return die("KVM_GET_SREGS");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
        return die("KVM_SET_SREGS");
    memset(&regs, 0, sizeof(regs));
    regs.rip = CODE_ADDR;
    regs.rflags = 0x2;
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
        return die("KVM_SET_REGS");
    if (ioctl(vcpu, KVM_RUN, 0) < 0)
        return die("KVM_RUN");
    if (run->exit_reason != KVM_EXIT_HLT) {
        fprintf(stderr, "floor: unexpected exit reason %u\n", run->exit_reason);
        return 1;
    }
    return 0;
}
