/* ember/abi.h: the boot ABI shared by the ember monitor and the guest SDK.
 *
 * One C99 header, included by both sides. Rules that keep it stable:
 *  - structs only ever grow at the end; a guest checks `size` before reading
 *    a field that a newer monitor added;
 *  - a pointer into guest memory is declared with EMBER_GUEST_PTR(T): on the
 *    guest it is a real pointer, on the host an opaque guest-physical address
 *    (uint64_t) that host code can only use through the monitor's checked
 *    translation, never by dereferencing it by accident.
 *
 * How a guest is entered (ember ELF note present, see EMBER_NOTE_*):
 *  - 64-bit long mode, CPL0, paging on with an identity map of guest RAM and
 *    of the MMIO gap [3 GiB, 4 GiB), nothing else; the page at 0 is not
 *    present (NULL faults); every present entry is writable and user-
 *    accessible (U/S set), so a guest may keep these tables for good;
 *  - CS = EMBER_BOOT_CS (64-bit code), DS/ES/SS/FS/GS = EMBER_BOOT_DS;
 *  - CR0 = PE|MP|ET|NE|WP|PG, CR4 = PAE|OSFXSR|OSXMMEXCPT, EFER = LME|LMA;
 *  - RFLAGS = 0x2 (interrupts off), RIP = ELF entry point, RSP = 0 (the
 *    guest brings its own stack), RDI = guest-physical address of struct
 *    ember_boot_info, RSI = EMBER_BOOT_MAGIC;
 *  - the GDT, page tables and boot info live below 1 MiB (EMBER_LOW_*),
 *    the ELF's PT_LOAD segments at or above 1 MiB.
 *
 * Ports (32-bit `out`, value = guest-physical address or status):
 *  - EMBER_PORT_CONSOLE: address of a struct ember_console_write; the whole
 *    iovec is written to the console in one exit (v2: to ember's stdout or
 *    stderr, as `stream` says), after what the guest's console buffer holds;
 *  - EMBER_PORT_EXIT: the exit status; the VM ends and `ember` exits with it
 *    (the same port number as QEMU's isa-debug-exit, so an SDK guest also ends
 *    QEMU with status (s << 1) | 1 when that device is present);
 *  - EMBER_PORT_SLEEP: address of a struct ember_sleep; the vCPU sleeps on the
 *    host for that long (no host CPU burnt while a guest sleeps).
 *  - EMBER_PORT_READY: any value; the guest has finished initialising
 *    (ember_faas_ready()). The monitor may pause and snapshot it right there
 *    (`ember run --snapshot-on-ready`); the guest goes on after the `out`,
 *    in the original VM or in every VM restored from that snapshot.
 *
 * Restore (snapshots): the page at EMBER_LOW_RESTORE holds a struct
 * ember_restore_info, all zero at boot (the page's rest, from
 * EMBER_LOW_RESTORE_GUEST, is the guest's). Each restore bumps `generation`
 * and gives the host's wall clock with the guest TSC at the same instant,
 * fresh entropy and the vsock CID, before the guest runs again. The guest TSC continues
 * from where the snapshot left it (monotonic time does not jump); a guest
 * that sees a new generation takes its wall clock from realtime_ns/tsc and
 * reseeds its random generator with entropy.
 * MMIO:
 *  - EMBER_BOOT_TIMER_GPA: a byte write of EMBER_BOOT_TIMER_MAGIC marks "the
 *    guest reached main" (Firecracker's boot timer, same address and value).
 */
#ifndef EMBER_ABI_H
#define EMBER_ABI_H

#include <stdint.h>

#ifdef EMBER_HOST
#define EMBER_GUEST_PTR(T) uint64_t
#else
#define EMBER_GUEST_PTR(T) T
#endif

/* 2: ember_console_write.stream, ember_boot_info.console_buf (a monitor
 * speaks every version up to its own; a guest reads v2 fields only when
 * ember_boot_info.version says the monitor knows them). */
#define EMBER_ABI_VERSION 2u
#define EMBER_BOOT_MAGIC  0x524d4245u /* "EMBR" */

/* ELF note that marks an ember guest: name "EMBER", type EMBER_NOTE_GUEST,
 * descriptor struct ember_note_guest. */
#define EMBER_NOTE_NAME  "EMBER"
#define EMBER_NOTE_GUEST 0x454d4201u

struct ember_note_guest {
    uint32_t abi_version; /* EMBER_ABI_VERSION the guest was built for */
    uint32_t flags;       /* none defined yet, must be 0 */
    /* v2 (a descriptor of 16 bytes; 32-bit fields keep the note's 4-byte
     * alignment, and RAM ends below 4 GiB): guest-physical range the
     * monitor leaves out of its page tables, so that an access faults: the
     * guard below the main stack. 0 = none. Page-aligned, at or above
     * EMBER_KERNEL_MIN, at most EMBER_GUARD_MAX bytes, inside RAM. */
    uint32_t guard_addr;
    uint32_t guard_len;
    /* v3 (24 bytes): guest-physical range of the image that the ember boot
     * path never reads (the PVH entry's page tables): the monitor leaves it
     * out of the copy, as zeros, so that those pages cost the host nothing.
     * A monitor that knows only v2 loads it all, which is merely wasteful.
     * 0 = none. Page-aligned, at or above EMBER_KERNEL_MIN, inside the
     * image. */
    uint32_t noload_addr;
    uint32_t noload_len;
};
#define EMBER_NOTE_GUEST_V1_SIZE 8u
#define EMBER_GUARD_MAX          (1024u * 1024u)

/* Guest-physical layout below 1 MiB (Firecracker's where a guest could care). */
#define EMBER_LOW_GDT        0x1000u
#define EMBER_LOW_BOOT_INFO  0x6000u
#define EMBER_LOW_PVH_INFO   0x6000u /* hvm_start_info for PVH guests */
#define EMBER_LOW_PVH_MEMMAP 0x7000u
#define EMBER_LOW_PML4       0x9000u
#define EMBER_LOW_PDPT       0xa000u
#define EMBER_LOW_PD         0xb000u  /* four pages: 0xb000-0xefff */
#define EMBER_LOW_PT0        0xf000u  /* 4 KiB pages of the first 2 MiB */
#define EMBER_LOW_RESTORE    0x8000u  /* struct ember_restore_info */
#define EMBER_LOW_PT_GUARD   0x10000u /* two pages: 4 KiB pages around the guard */
#define EMBER_LOW_CMDLINE    0x20000u
#define EMBER_CMDLINE_MAX    4096u
#define EMBER_KERNEL_MIN     0x100000u   /* PT_LOADs start at or above 1 MiB */
#define EMBER_MMIO_GAP_START 0xc0000000u /* RAM ends here at most */

/* The restore page from here on is the guest's: the monitor writes only
 * struct ember_restore_info (with room left for it to grow), the SDK keeps
 * virtqueue rings there. A restored guest writes that page anyway. */
#define EMBER_LOW_RESTORE_GUEST 0x8100u

#define EMBER_BOOT_CS 0x08u
#define EMBER_BOOT_DS 0x10u

#define EMBER_PORT_CONSOLE     0x510u
#define EMBER_PORT_EXIT        0x501u
#define EMBER_PORT_SLEEP       0x511u
#define EMBER_PORT_READY       0x512u
#define EMBER_BOOT_TIMER_GPA   0xc0000000u
#define EMBER_BOOT_TIMER_MAGIC 123u

#define EMBER_BOOT_F_TIMER 0x1u /* write the boot timer just before main */

#define EMBER_MAX_DEVICES     16u
#define EMBER_DEV_NONE        0u
#define EMBER_DEV_VIRTIO_MMIO 1u

struct ember_device {
    uint32_t type;      /* EMBER_DEV_* */
    uint32_t irq;       /* GSI */
    uint64_t mmio_base; /* guest-physical */
    uint64_t mmio_size;
};

struct ember_boot_info {
    uint32_t magic;                         /* EMBER_BOOT_MAGIC */
    uint32_t version;                       /* EMBER_ABI_VERSION of the monitor */
    uint32_t size;                          /* sizeof(struct ember_boot_info) of the monitor */
    uint32_t flags;                         /* EMBER_BOOT_F_* */
    uint64_t mem_size;                      /* bytes of RAM from guest-physical 0 */
    uint64_t tsc_khz;                       /* TSC frequency, 0 if unknown */
    uint64_t realtime_ns;                   /* host CLOCK_REALTIME when the guest was entered */
    EMBER_GUEST_PTR(const char *) progname; /* NUL-terminated, argv[0] */
    EMBER_GUEST_PTR(const char *) cmdline;  /* NUL-terminated, argv[1..] */
    uint64_t cmdline_len;                   /* excluding the NUL */
    uint8_t entropy[32];                    /* seed from the host's getrandom */
    uint32_t ndevices;
    uint32_t root_drive; /* 1 + the virtio-blk index of the root drive (is_root_device), 0: none */
    struct ember_device devices[EMBER_MAX_DEVICES];
    /* v2, written by the guest (the monitor sets 0): its console buffer,
     * a struct ember_console_buf, or 0. Whenever the monitor handles
     * EMBER_PORT_CONSOLE and when the VM ends for any reason (exit, fault,
     * triple fault, a stop from the host), it first writes out the buffer's
     * `len` bytes to stdout and sets `len` to 0: a guest coalesces its
     * console writes there without an exit, and nothing it buffered is lost
     * or reordered. */
    EMBER_GUEST_PTR(struct ember_console_buf *) console_buf;
};

struct ember_console_buf {
    uint32_t size; /* bytes of data[] */
    uint32_t len;  /* bytes waiting, at most size */
    uint8_t data[];
};

/* At most EMBER_LOW_RESTORE_GUEST - EMBER_LOW_RESTORE bytes. */
struct ember_restore_info {
    uint64_t generation;  /* 0 at boot; restores so far */
    uint64_t realtime_ns; /* host CLOCK_REALTIME at the restore */
    uint64_t tsc;         /* the guest's TSC at that instant */
    uint8_t entropy[32];  /* fresh seed from the host's getrandom */
    /* The vsock device's guest CID, 0 without one. The device's transport
     * reset tells the driver to read the CID again (virtio 1.2 §5.10.6.7);
     * an ember restore never changes it, and this saves the guest that
     * config-space read, an exit to the monitor (~0.1 ms on kvm_pvm from
     * CPL3). Only ever written by a monitor that knows the field: a guest
     * reading 0 reads config space. */
    uint64_t vsock_cid;
};

struct ember_iovec {
    EMBER_GUEST_PTR(const void *) base;
    uint64_t len;
};

#define EMBER_CONSOLE_IOV_MAX 64u

struct ember_console_write {
    EMBER_GUEST_PTR(const struct ember_iovec *) iov;
    uint32_t iovcnt; /* at most EMBER_CONSOLE_IOV_MAX */
    uint32_t stream; /* v2: EMBER_CONSOLE_STDOUT or EMBER_CONSOLE_STDERR (v1: reserved, 0) */
};
#define EMBER_CONSOLE_STDOUT 0u
#define EMBER_CONSOLE_STDERR 2u

struct ember_sleep {
    uint64_t ns;
};

#endif /* EMBER_ABI_H */
