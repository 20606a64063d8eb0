/* cpu_defs.h: constants shared by the SDK's assembly and C (x86-64 only).
 *
 * Assembly cannot include <ember/abi.h> (it declares C structs), so the few
 * ABI numbers the entry code needs are repeated here; boot_start.c checks them
 * against abi.h with _Static_assert. Architectural constants cite the Intel
 * SDM, Vol. 3A.
 */
#ifndef EMBER_CPU_DEFS_H
#define EMBER_CPU_DEFS_H

/* ABI (see <ember/abi.h>). */
#define CPU_BOOT_MAGIC  0x524d4245
#define CPU_ABI_VERSION 2
#define CPU_NOTE_GUEST  0x454d4201

/* The SDK's own GDT (SDM §3.4.5, §5.8.8 for the SYSCALL/SYSRET layout:
 * STAR[47:32] = kernel CS, SS = +8; STAR[63:48] = base, user SS = base + 8,
 * 64-bit user CS = base + 16). The boot selectors match EMBER_BOOT_CS/DS. */
#define GDT_KCODE   0x08
#define GDT_KDATA   0x10
#define GDT_UCODE32 0x18
#define GDT_UDATA   0x20
#define GDT_UCODE   0x28
#define GDT_TSS     0x30 /* 16-byte system descriptor */
#define GDT_SIZE    0x40
#define USER_CS     (GDT_UCODE | 3)
#define USER_DS     (GDT_UDATA | 3)

/* RFLAGS (SDM §2.3). The application runs with IOPL = 3 so that `out` works
 * on the system-call path on machines where `syscall` does not reach CPL0.
 * IF stays 0: no interrupt source is set up yet. */
#define RFLAGS_FIXED 0x2
#define RFLAGS_TF    0x100
#define RFLAGS_IF    0x200
#define RFLAGS_DF    0x400
#define RFLAGS_IOPL3 0x3000
#define RFLAGS_NT    0x4000
#define RFLAGS_AC    0x40000
#define RFLAGS_USER  (RFLAGS_FIXED | RFLAGS_IOPL3)
/* Cleared on `syscall` entry (IA32_FMASK). IOPL is deliberately kept. */
#define SYSCALL_FMASK (RFLAGS_TF | RFLAGS_IF | RFLAGS_DF | RFLAGS_NT | RFLAGS_AC)

/* Control registers (SDM §2.5). */
#define CR0_PE             0x1
#define CR0_MP             0x2
#define CR0_ET             0x10
#define CR0_NE             0x20
#define CR0_WP             0x10000
#define CR0_PG             0x80000000
#define CR0_BOOT           (CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG)
#define CR4_PAE            0x20
#define CR4_OSFXSR         0x200
#define CR4_OSXMMEXCPT     0x400
#define CR4_FSGSBASE       0x10000
#define CR4_FSGSBASE_SHIFT 16
#define CR4_SMEP           0x100000
#define CR4_SMAP           0x200000

/* MSRs (SDM Vol. 4). */
#define MSR_EFER         0xc0000080
#define MSR_STAR         0xc0000081
#define MSR_LSTAR        0xc0000082
#define MSR_FMASK        0xc0000084
#define MSR_FS_BASE      0xc0000100
#define MSR_TSC_DEADLINE 0x6e0
#define EFER_SCE         0x1
#define EFER_LME         0x100

/* Linux x86-64 system-call number and arch_prctl code the assembly uses. */
#define SYS_ARCH_PRCTL 158
#define ARCH_SET_FS    0x1002

/* Paging (SDM §4.5): present, writable, user. */
#define PTE_P   0x1
#define PTE_W   0x2
#define PTE_U   0x4
#define PTE_PWT 0x8
#define PTE_PCD 0x10
#define PTE_PS  0x80
#define PTE_RAM (PTE_P | PTE_W | PTE_U)

/* Stacks owned by the SDK. The boot stack shares its page with the top of
 * the main stack (cpu_entry.S, ember.ld) and is reused by the system-call
 * path after start-up; both need far less than this (the deepest chain,
 * ember_start -> build_process_stack -> die -> console, is ~600 bytes; check
 * with -fstack-usage when changing them). */
#define BOOT_STACK_SIZE 1536
#define IST_STACK_SIZE  16384 /* both IST stacks: IST1, then IST2 at the top */
#define IST2_STACK_SIZE 256   /* interrupt stubs push 6 quadwords; in IST1's top page */

/* Local APIC EOI register, xAPIC MMIO (SDM Vol. 3A §11.8.5). */
#define LAPIC_EOI_GPA 0xfee000b0

/* Number of exception vectors with a handler. */
#define EXC_VECTORS 32

#endif
