/* cpu_entry.S: how an SDK guest starts, and the two ways back into the SDK.
 *
 * Everything here that runs at CPL0 is short and loop-free: on machines whose
 * KVM emulates CPL0 guest code instruction by instruction (kvm_pvm, see
 * KVM-HERE.md) each instruction costs ~0.5 us, while CPL3 code runs natively.
 * So CPL0 only does what needs privilege (descriptor tables, control
 * registers, MSRs) and then drops to CPL3 with `iretq`; the rest of start-up
 * (boot_start.c) runs at CPL3.
 *
 *  - ember_entry64: the ELF entry point for ember (64-bit, CPL0, paging on,
 *    RDI = boot info, RSI = EMBER_BOOT_MAGIC, RSP = 0), see <ember/abi.h>.
 *  - ember_entry_pvh: the PVH entry (XEN_ELFNOTE_PHYS32_ENTRY; 32-bit
 *    protected mode, paging off, EBX = struct hvm_start_info), for QEMU
 *    microvm, Firecracker and other PVH loaders.
 *  - ember_syscall_entry: the `syscall` target (IA32_LSTAR).
 *  - ember_exc_<n>: exception entry stubs for vectors 0-31 (IST1).
 *  - ember_irq_stubs: device interrupt entry (IST2), see cpu_irq.c.
 *
 * Both boot paths load the SDK's own GDT, TSS and IDT. The PVH path also
 * loads the SDK's page tables (a PVH loader enters with paging off); the
 * ember path keeps the monitor's, which <ember/abi.h> defines as a complete,
 * user-accessible identity map that a guest may keep.
 *
 * Where the code goes (ember.ld): what runs at CPL3 on every boot (the
 * system-call entry, the jump to _start, __set_thread_area) is in
 * .text.ember_hot, packed with the rest of start-up into the first text
 * pages; the CPL0 code (.text.ember_entry) and the exception stubs and trap
 * sites (.text.ember_cold) go with what a restored function runs (a wait
 * executes its trap site at CPL3). On kvm_pvm CPL0 code is read by KVM's
 * instruction emulator, which does not fault pages in for CPL3; at CPL3
 * every first touch of a page costs ~22 us.
 */
#include "arch/cpu_defs.h"

/* ---- ELF notes (collected into PT_NOTE by ember.ld) ---------------------- */

    .section .note.ember, "a", @note
    .balign 4
    .long 6                 /* namesz: "EMBER\0" */
    .long 24                /* descsz: struct ember_note_guest (v3) */
    .long CPU_NOTE_GUEST
    .asciz "EMBER"
    .balign 4
    .long CPU_ABI_VERSION   /* abi_version */
    .long 0                 /* flags */
    .long __ember_stack_guard_lo /* guard_addr: the main stack's guard (ember.ld) */
    .long __ember_stack_guard_len
    .long __ember_noload_lo /* noload_addr: the PVH page tables below (ember.ld) */
    .long __ember_noload_len

    .section .note.Xen, "a", @note
    .balign 4
    .long 4                 /* namesz: "Xen\0" */
    .long 4                 /* descsz */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long ember_entry_pvh

/* ---- Boot code ----------------------------------------------------------- */

    .section .text.ember_entry, "ax"

    .code32
    .globl ember_entry_pvh
    .type ember_entry_pvh, @function
ember_entry_pvh:
    /* PVH (xen/include/public/arch-x86/hvm/start_info.h): 32-bit flat
     * protected mode, paging off, EBX = hvm_start_info. Enable long mode
     * with the SDK's identity page tables (SDM Vol. 3A §9.8.5). */
    rdtsc
    mov %eax, ember_entry_tsc
    mov %edx, ember_entry_tsc + 4
    mov %ebx, %edi
    xor %esi, %esi          /* not EMBER_BOOT_MAGIC: boot_start.c reads PVH */
    lgdt ember_gdtr
    mov $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
    mov %eax, %cr4
    mov $ember_pml4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov $CR0_BOOT, %eax
    mov %eax, %cr0
    ljmp $GDT_KCODE, $1f
    .code64
1:  mov %edi, %edi          /* upper halves are undefined after the switch */
    mov %esi, %esi
    mov $GDT_KDATA, %eax    /* the loader's data selectors meant its GDT */
    mov %eax, %ss
    mov %eax, %ds
    mov %eax, %es
    jmp ember_entry_common
    .size ember_entry_pvh, . - ember_entry_pvh

    .globl ember_entry64
    .type ember_entry64, @function
ember_entry64:
    /* ember: RDI = boot info, RSI = EMBER_BOOT_MAGIC. The TSC at entry is
     * where CLOCK_MONOTONIC starts.
     * No CR3 load: the monitor's page tables stay (abi.h: an identity map of
     * RAM and the MMIO gap, user-accessible, NULL absent). Loading the SDK's
     * own would only add work (on kvm_pvm a second shadow root). The MMIO
     * gap is not marked uncached there, which is harmless: every device
     * access is trapped and emulated by the monitor, whatever the cache type
     * (and KVM makes non-RAM uncacheable in EPT).
     * No segment reloads: SS/DS/ES hold EMBER_BOOT_DS with a flat data
     * descriptor in their hidden parts (abi.h), which is exactly what the
     * SDK's GDT has at that selector; the `iretq` below loads SS for CPL3. */
    rdtsc
    mov %eax, ember_entry_tsc
    mov %edx, ember_entry_tsc + 4
    lgdt ember_gdtr(%rip)
ember_entry_common:
    mov $GDT_TSS, %eax
    ltr %ax
    lidt ember_idtr(%rip)   /* gates are written later, at CPL3 */

    /* CR4: SSE state (OSFXSR, OSXMMEXCPT) and, where CPUID.(7,0):EBX[0]
     * says it exists, FSGSBASE so that arch_prctl(ARCH_SET_FS) works with
     * wrfsbase at any privilege (ember_cr4_fsgsbase tells the C side).
     * Branch-free, and leaf 0 is not asked whether leaf 7 exists. CPUs without
     * leaf 7 answer with their highest leaf (Intel: 5 or 6, whose EBX bit
     * 0 is 0 on those parts) or zeros (AMD), i.e. "no FSGSBASE". */
    mov $1, %eax            /* leaf 1 for the C side (HWCAP, RDRAND): */
    cpuid                   /* cheaper here than at CPL3 on kvm_pvm */
    mov %ecx, ember_cpuid1 + 8(%rip)
    mov %edx, ember_cpuid1 + 12(%rip)
    mov $7, %eax
    xor %ecx, %ecx
    cpuid
    and $1, %ebx            /* CPUID.(7,0):EBX[0] = FSGSBASE */
    mov %ebx, ember_cr4_fsgsbase(%rip)
    shl $CR4_FSGSBASE_SHIFT, %ebx
    /* The whole of CR4 (both entry paths arrive with PAE, OSFXSR and
     * OSXMMEXCPT at most): notably no SMEP/SMAP, CPL0 code runs from user
     * pages. */
    mov $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
    or %ebx, %eax
    mov %rax, %cr4

    /* SYSCALL (SDM Vol. 3A §5.8.8): EFER.SCE, selectors, target, flag mask.
     * The handler never uses sysret (it #GPs on some hypervisors); the
     * STAR user half is still set as the architecture defines it. */
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_SCE, %eax
    wrmsr
    mov $MSR_STAR, %ecx
    xor %eax, %eax
    mov $(((GDT_UCODE32 | 3) << 16) | GDT_KCODE), %edx
    wrmsr
    mov $MSR_LSTAR, %ecx
    mov $ember_syscall_entry, %eax
    xor %edx, %edx
    wrmsr
    mov $MSR_FMASK, %ecx
    mov $SYSCALL_FMASK, %eax
    wrmsr

    /* Drop to CPL3 for good: C start-up runs there (boot_start.c) on the
     * boot stack, with RDI and RSI still holding the loader's values. RSP is
     * 8 below a 16-byte boundary, as after a call. */
    mov $ember_boot_stack_top, %esp
    pushq $USER_DS
    pushq $(ember_boot_stack_top - 8)
    pushq $RFLAGS_USER
    pushq $USER_CS
    pushq $ember_start
    iretq
    .size ember_entry64, . - ember_entry64

/* ---- System calls -------------------------------------------------------- */

/* `syscall` lands here with RCX = user RIP, R11 = user RFLAGS, RSP = user
 * stack. On hardware this runs at CPL0; under kvm_pvm it runs at CPL3 (CS is
 * the user selector). The code is correct in both cases: it uses no
 * privileged instruction, switches to its own stack (the user's red zone is
 * left untouched), and returns with `iretq` when it runs at CPL0 (never
 * sysretq: it #GPs under kvm_pvm). When it finds itself at CPL3 there is no
 * privilege to drop and it returns with popfq + jmp, half the cost of the
 * round trip there (~20 us instead of ~40 us). Single vCPU, interrupts
 * masked: one global for the
 * user RSP is enough. Linux's syscall ABI: RAX = number and result, args in
 * RDI RSI RDX R10 R8 R9, RCX and R11 clobbered, everything else preserved
 * (including XMM registers: the C side is built -mgeneral-regs-only). */
    .section .text.ember_hot, "ax"
    .globl ember_syscall_entry
    .type ember_syscall_entry, @function
ember_syscall_entry:
    mov %rsp, ember_user_rsp(%rip)
    lea ember_syscall_stack_top(%rip), %rsp
    cld
    pushq $USER_DS              /* iretq frame */
    pushq ember_user_rsp(%rip)
    push %r11
    pushq $USER_CS
    push %rcx
    push %r9                    /* struct ember_syscall_frame */
    push %r8
    push %r10
    push %rdx
    push %rsi
    push %rdi
    push %rax
    mov %rsp, %rdi
    call ember_syscall          /* 12 quadwords pushed: RSP is aligned */
    add $8, %rsp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %r10
    pop %r8
    pop %r9
    mov %cs, %ecx
    test $3, %ecx
    jnz 1f
    mov (%rsp), %rcx            /* as Linux: RCX = RIP, R11 = RFLAGS */
    mov 16(%rsp), %r11
    iretq                       /* CPL0 (hardware): back to CPL3 */
1:  /* Already at CPL3 (kvm_pvm): no privilege to drop, so no iretq, which
     * costs ~20 us there. Restore RFLAGS from our stack (never touch the
     * user's red zone), then RSP, and jump. */
    pushq 16(%rsp)
    popfq
    mov (%rsp), %rcx
    mov 16(%rsp), %r11
    mov 24(%rsp), %rsp
    jmp *%rcx
    .size ember_syscall_entry, . - ember_syscall_entry

/* void ember_jump_to_start(uintptr_t sp, void (*entry)(void)): enter musl's
 * _start (crt1.o) on the initial process stack built by boot_start.c, with
 * the registers the x86-64 psABI (§3.4.1) defines at process entry: RSP at
 * argc, RBP = 0 (outermost frame), RDX = 0 (no atexit function). */
    .globl ember_jump_to_start
    .type ember_jump_to_start, @function
ember_jump_to_start:
    mov %rdi, %rsp
    xor %ebp, %ebp
    xor %edx, %edx
    jmp *%rsi
    .size ember_jump_to_start, . - ember_jump_to_start

/* int __set_thread_area(void *tp): musl's hook that sets the thread pointer
 * (src/thread/x86_64/__set_thread_area.s does arch_prctl(ARCH_SET_FS)).
 * libember defines it, and since this object is always linked (it holds the
 * entry points) the linker never takes musl's copy from libc.a. With
 * CR4.FSGSBASE on, `wrfsbase` is allowed at CPL3 on any CPU that has it
 * (SDM Vol. 2D, WRFSBASE), so the thread pointer costs no system call (one
 * trap fewer at start-up, ~20 us on kvm_pvm). Without FSGSBASE it makes
 * the system call as musl would. Returns 0, as the system call does. */
    .globl __set_thread_area
    .type __set_thread_area, @function
__set_thread_area:
    cmpl $0, ember_cr4_fsgsbase(%rip)
    je 1f
    wrfsbase %rdi
    mov %rdi, ember_fs_base(%rip)
    xor %eax, %eax
    ret
1:  mov %rdi, %rsi
    mov $ARCH_SET_FS, %edi
    mov $SYS_ARCH_PRCTL, %eax
    syscall
    ret
    .size __set_thread_area, . - __set_thread_area

/* ---- Privileged helper reachable from CPL3 -------------------------------- */

    .section .text.ember_cold, "ax"

/* void ember_wrmsr_trap(uint32_t msr, uint64_t value): writes an MSR from
 * CPL3 through the #UD handler, which recognises this one `ud2` and executes
 * `wrmsr` at CPL0 (5 instructions there). Used where the system-call path
 * cannot rely on CPL0 (kvm_pvm) and the CPU lacks another way (FSGSBASE). */
    .globl ember_wrmsr_trap
    .type ember_wrmsr_trap, @function
ember_wrmsr_trap:
    mov %edi, %ecx
    mov %esi, %eax
    mov %rsi, %rdx
    shr $32, %rdx
ember_wrmsr_site:
    ud2
    ret
    .size ember_wrmsr_trap, . - ember_wrmsr_trap

/* void ember_hlt_trap(uint32_t irq_count_seen, uint64_t tsc_deadline) and
 * void ember_lidt_trap(const void *idtr): `hlt` and `lidt` for CPL3, through
 * the #UD handler (below). cpu_irq.c uses them. Caller-saved registers
 * (RAX, RCX, RDX) are clobbered. */
    .globl ember_hlt_trap
    .type ember_hlt_trap, @function
ember_hlt_trap:
ember_hlt_site:
    ud2
    ret
    .size ember_hlt_trap, . - ember_hlt_trap

    .globl ember_lidt_trap
    .type ember_lidt_trap, @function
ember_lidt_trap:
ember_lidt_site:
    ud2
    ret
    .size ember_lidt_trap, . - ember_lidt_trap

/* void ember_mmio_batch_trap(struct ember_mmio_op *ops, uint32_t n): n
 * 32-bit MMIO accesses, in order, from CPL0 in one trap ({u64 addr; u32
 * value; u32 write}: a read stores into value). On kvm_pvm an MMIO access
 * from CPL3 costs ~70 us and from CPL0 ~10 us, so device set-up batches its
 * register accesses here; on hardware both are cheap and this is merely one
 * trap instead of none. */
    .globl ember_mmio_batch_trap
    .type ember_mmio_batch_trap, @function
ember_mmio_batch_trap:
ember_mmio_site:
    ud2
    ret
    .size ember_mmio_batch_trap, . - ember_mmio_batch_trap

/* ---- Interrupts ------------------------------------------------------------ */

/* Device interrupts (cpu_irq.c sets the gates up on first use: vector
 * IRQ_VECTOR_BASE + GSI, and the TSC-deadline timer). Every stub is 16 bytes
 * (cpu_irq.c computes its address) and records "GSI n fired" in
 * ember_irq_pending, counts in ember_irq_count, and EOIs the local APIC.
 * Loop-free, a few instructions at CPL0. The gates use IST2: an interrupt
 * taken while an exception is being handled on IST1 must not reset that
 * stack under it. Single vCPU: one instruction is atomic against the
 * application, no lock prefix needed. */
    .macro IRQ gsi
    .balign 16
    push %rax
    mov $\gsi, %eax
    jmp ember_irq_common
    .endm

    .balign 16
    .globl ember_irq_stubs
ember_irq_stubs:
    .irp g, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23
    IRQ \g
    .endr
    .irp g, 24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    IRQ \g
    .endr
    IRQ 63                          /* index 48: the deadline timer */
    .balign 16
    .globl ember_irq_spurious
ember_irq_spurious:                 /* SDM Vol. 3A §11.9: no EOI */
    iretq

ember_irq_common:
    bts %rax, ember_irq_pending(%rip)
    incl ember_irq_count(%rip)
    mov $LAPIC_EOI_GPA, %eax
    movl $0, (%rax)
    pop %rax
    iretq

/* ---- Exceptions ---------------------------------------------------------- */

/* Each stub makes the frame uniform (error code or 0, then the vector) and
 * jumps to the common part, which saves the general registers as a struct
 * ember_fault_frame and calls ember_fault() (cpu_fault.c), which reports and
 * ends the guest. The CPU aligns the IST stack to 16 bytes before pushing its
 * 5-quadword frame; 2 + 15 more keep the call aligned. */
    .macro EXC vec, has_err
    .globl ember_exc_\vec
ember_exc_\vec:
    .if \has_err == 0
    pushq $0
    .endif
    pushq $\vec
    jmp ember_exc_common
    .endm

    /* #UD: three `ud2` sites are requests from the SDK for one privileged
     * step (loop-free, a handful of instructions at CPL0); any other #UD is
     * a fault. The iretq returns after the ud2 to CPL3, or to CPL0 when the
     * request came from the system-call path on hardware. */
    .globl ember_exc_6
ember_exc_6:
    cmpq $ember_wrmsr_site, (%rsp)  /* the ember_wrmsr_trap `ud2`? */
    je 2f
    cmpq $ember_hlt_site, (%rsp)    /* ember_hlt_trap? */
    je 3f
    cmpq $ember_lidt_site, (%rsp)   /* ember_lidt_trap? */
    je 4f
    cmpq $ember_mmio_site, (%rsp)   /* ember_mmio_batch_trap? */
    je 7f
    pushq $0
    pushq $6
    jmp ember_exc_common
2:  wrmsr
    addq $2, (%rsp)
    iretq
3:  /* Sleep until an interrupt, unless one came after the caller read
     * ember_irq_count (EDI): interrupts are off here (interrupt gate), and
     * `sti; hlt` opens them only for the hlt (the STI shadow, SDM Vol. 2B
     * STI), so no wake-up is lost between the check and the hlt. RSI: TSC
     * deadline to arm (IA32_TSC_DEADLINE, SDM Vol. 3A §11.5.4.1), 0 = none. */
    cmpl %edi, ember_irq_count(%rip)
    jne 5f
    test %rsi, %rsi
    jz 6f
    mov $MSR_TSC_DEADLINE, %ecx
    mov %esi, %eax
    mov %rsi, %rdx
    shr $32, %rdx
    wrmsr
6:  sti
    hlt
    cli
5:  addq $2, (%rsp)
    iretq
4:  lidt (%rdi)
    addq $2, (%rsp)
    iretq
7:  /* RDI = ops, ESI = n (caller-saved RAX, RDX, RSI, RDI are clobbered). */
    test %esi, %esi
    jz 9f
8:  mov (%rdi), %rax
    cmpl $0, 12(%rdi)
    je 10f
    mov 8(%rdi), %edx
    movl %edx, (%rax)
    jmp 11f
10: movl (%rax), %edx
    mov %edx, 8(%rdi)
11: add $16, %rdi
    dec %esi
    jnz 8b
9:  addq $2, (%rsp)
    iretq

    EXC 0, 0
    EXC 1, 0
    EXC 2, 0
    EXC 3, 0
    EXC 4, 0
    EXC 5, 0
    EXC 7, 0
    EXC 8, 1
    EXC 9, 0
    EXC 10, 1
    EXC 11, 1
    EXC 12, 1
    EXC 13, 1
    EXC 14, 1
    EXC 15, 0
    EXC 16, 0
    EXC 17, 1
    EXC 18, 0
    EXC 19, 0
    EXC 20, 0
    EXC 21, 1
    EXC 22, 0
    EXC 23, 0
    EXC 24, 0
    EXC 25, 0
    EXC 26, 0
    EXC 27, 0
    EXC 28, 0
    EXC 29, 1
    EXC 30, 1
    EXC 31, 0

ember_exc_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    cld
    mov %rsp, %rdi
    call ember_fault            /* does not return */
    ud2

    .section .rodata
    .balign 8
    .globl ember_exc_stubs
ember_exc_stubs:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad ember_exc_\v
    .endr

/* ---- Descriptor tables and TSS ------------------------------------------- */

    .section .data.ember_hot, "aw"
    .balign 16
    .globl ember_gdt
ember_gdt:
    .quad 0                         /* null */
    .quad 0x00af9a000000ffff        /* 0x08 kernel code, 64-bit */
    .quad 0x00cf92000000ffff        /* 0x10 kernel data */
    .quad 0x00cffa000000ffff        /* 0x18 user code, 32-bit (SYSRET layout) */
    .quad 0x00cff2000000ffff        /* 0x20 user data */
    .quad 0x00affa000000ffff        /* 0x28 user code, 64-bit */
    .quad ember_tss_desc_lo         /* 0x30 TSS: computed by ember.ld */
    .quad ember_tss_desc_hi
ember_gdt_end:

    .balign 8
    .skip 6                         /* so that the base is 8-aligned */
ember_gdtr:                         /* also read by lgdt in 32-bit mode */
    .word ember_gdt_end - ember_gdt - 1
    .quad ember_gdt

    .balign 8
    .skip 6
ember_idtr:
    .word EXC_VECTORS * 16 - 1     /* vectors 0-31 only, see ember_idt */
    .quad ember_idt

    /* 64-bit TSS (SDM Vol. 3A §8.7): RSP0 and IST1 (all exception gates use
     * IST1, so a fault never runs on the application's stack or red zone). */
    .balign 16
    .globl ember_tss, ember_tss_end
ember_tss:
    .long 0
    .quad ember_ist1_stack_top      /* RSP0 */
    .quad 0                         /* RSP1 */
    .quad 0                         /* RSP2 */
    .quad 0
    .quad ember_ist1_stack_top      /* IST1 */
    .quad ember_ist2_stack_top      /* IST2: interrupts */
    .quad 0, 0, 0, 0, 0             /* IST3-7 */
    .quad 0
    .word 0
    .word ember_tss_iomap - ember_tss
    /* I/O permission bitmap (SDM Vol. 1 §19.5.2): ports 0-0xfff allowed at
     * CPL3. With IOPL = 3 hardware never reads it, but kvm_pvm checks CPL3
     * port I/O against it and ignores IOPL. Ports above 0xfff are denied
     * (the SDK uses none: devices are MMIO). */
ember_tss_iomap:
    .fill 0x1000 / 8, 1, 0
    .byte 0xff                      /* the bitmap ends with all ones */
ember_tss_end:

/* ---- Page tables ---------------------------------------------------------- */

/* Identity map of [0, 4 GiB), generated at assembly time so that CPL0 runs no
 * loop: 4 KiB pages for the first 2 MiB with page 0 absent (NULL faults),
 * 2 MiB pages above. Every entry has the user bit: the application runs at
 * CPL3. [3 GiB, 4 GiB) is the MMIO hole (EMBER_MMIO_GAP_START): uncached.
 * Only the PVH entry uses them; the ember note's no-load range names their
 * seven pages, so that ember (whose own page tables the ember entry keeps)
 * does not copy 28 KiB per VM that the guest never reads. */
    .section .ember.pagetables, "aw"
    .balign 4096
    .globl ember_pml4
ember_pml4:
    .quad ember_pdpt + PTE_RAM
    .fill 511, 8, 0
ember_pdpt:
    .quad ember_pd + PTE_RAM
    .quad ember_pd + 4096 + PTE_RAM
    .quad ember_pd + 8192 + PTE_RAM
    .quad ember_pd + 12288 + PTE_RAM
    .fill 508, 8, 0
ember_pd:
    .quad ember_pt0 + PTE_RAM
    .set addr, 0x200000
    .rept 1535
    .quad addr + PTE_RAM + PTE_PS
    .set addr, addr + 0x200000
    .endr
    .rept 512
    .quad addr + PTE_RAM + PTE_PS + PTE_PCD + PTE_PWT
    .set addr, addr + 0x200000
    .endr
ember_pt0:
    .quad 0                         /* page 0: not present */
    .set addr, 0x1000
    .rept 511
    .quad addr + PTE_RAM
    .set addr, addr + 0x1000
    .endr

/* ---- Stacks and the IDT ---------------------------------------------------- */

/* The page that holds the top of the main thread's stack also holds the
 * boot stack, which the system-call path reuses once start-up is over: one
 * page for both (ember.ld places it, with the rest of the main stack below
 * it, and boot_start.c builds the initial process stack at
 * __ember_main_stack_top). On kvm_pvm each first touch of a page costs
 * ~22 us. */
    .section .ember.stack_page, "aw", @nobits
    .balign 4096
    .skip 4096 - BOOT_STACK_SIZE
    .globl ember_main_stack_top
ember_main_stack_top:               /* grows down, below this page too */
    .skip BOOT_STACK_SIZE
    .globl ember_boot_stack_top, ember_syscall_stack_top
ember_boot_stack_top:
ember_syscall_stack_top:

/* The IDT has gates for vectors 0-31 only, and IDTR's limit says so: a
 * vector above 31 (none is set up) is beyond the limit and raises #GP
 * (SDM Vol. 3A §6.10), which its gate reports. 512 bytes instead of 4 KiB
 * keep it in the page of the other start-up data. */
    .section .ember.bss.idt, "aw", @nobits
    .balign 16
    .globl ember_idt
ember_idt:                          /* written by boot_start.c */
    .skip EXC_VECTORS * 16

/* Both stacks' tops in one page: every wait (IST1, the hlt request) and
 * every interrupt (IST2) writes there, and a VM restored from a snapshot
 * copies each page written. IST2 is small (the stubs push 6 quadwords, and
 * nothing nests on it: interrupt gates clear IF). */
    .section .ember.bss.ist, "aw", @nobits
    .balign 4096
ember_ist1_stack:
    .skip IST_STACK_SIZE - IST2_STACK_SIZE
    .globl ember_ist1_stack_top
ember_ist1_stack_top:
ember_ist2_stack:
    .skip IST2_STACK_SIZE
    .globl ember_ist2_stack_top
ember_ist2_stack_top:

    .section .data.ember_hot, "aw"
    .balign 8
    .globl ember_user_rsp
ember_user_rsp:
    .quad 0
    .globl ember_entry_tsc
ember_entry_tsc:                    /* TSC at the first guest instruction */
    .quad 0
    .globl ember_cr4_fsgsbase
ember_cr4_fsgsbase:                 /* 1 if CR4.FSGSBASE was set */
    .long 0
    .globl ember_cpuid1
ember_cpuid1:                       /* CPUID leaf 1: EAX EBX ECX EDX */
    .long 0, 0, 0, 0

    .section .note.GNU-stack, "", @progbits
