/* boot_pvh.c: turn a PVH hvm_start_info into a struct ember_boot_info.
 *
 * A PVH loader (QEMU microvm, Firecracker, Xen) enters ember_entry_pvh with
 * EBX = struct hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h).
 * The rest of the SDK only reads ember_boot_info, so this file fills one:
 *  - mem_size: end of the RAM entry of the memory map that holds the image
 *    (version >= 1); without a map, the CMOS extended-memory registers, or
 *    32 MiB;
 *  - cmdline: cmdline_paddr (left in place, below 1 MiB); progname "ember";
 *  - tsc_khz: 0 here, sys_time.c asks CPUID;
 *  - realtime_ns: the CMOS real-time clock, if one answers;
 *  - entropy: RDRAND, or the TSC if there is none (weak; documented).
 * Runs at CPL3 during start-up.
 */
#include "sdk.h"

#define XEN_HVM_START_MAGIC_VALUE 0x336ec578u
#define E820_RAM                  1u

struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr; /* version >= 1 */
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

/* MC146818 RTC / CMOS at ports 0x70/0x71. */
static uint8_t cmos_read(uint8_t reg)
{
    outb(0x70, reg);
    return inb(0x71);
}

static uint64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Howard Hinnant's algorithm: days since 1970-01-01. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (uint64_t)(era * 146097 + (int64_t)doe - 719468);
}

static unsigned bcd(uint8_t v, int binary)
{
    return binary ? v : (unsigned)(v & 0xf) + (unsigned)(v >> 4) * 10;
}

static uint64_t rtc_realtime_ns(void)
{
    uint8_t status_b = cmos_read(0x0b);
    if (status_b == 0xff) /* nothing at the port */
        return 0;
    for (unsigned i = 0; i < 100000 && (cmos_read(0x0a) & 0x80); i++) /* update in progress */
        ;
    int binary = (status_b & 0x04) != 0;
    unsigned sec = bcd(cmos_read(0x00), binary);
    unsigned min = bcd(cmos_read(0x02), binary);
    uint8_t hour_raw = cmos_read(0x04);
    unsigned day = bcd(cmos_read(0x07), binary);
    unsigned mon = bcd(cmos_read(0x08), binary);
    unsigned year = bcd(cmos_read(0x09), binary);
    unsigned century = bcd(cmos_read(0x32), binary);
    unsigned hour = bcd(hour_raw & 0x7f, binary);
    if (!(status_b & 0x02) && (hour_raw & 0x80)) /* 12-hour clock, PM */
        hour = (hour % 12) + 12;
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
        return 0;
    unsigned full_year = (century >= 19 && century <= 30 ? century * 100 : 2000) + year;
    uint64_t days = days_from_civil(full_year, mon, day);
    return ((days * 24 + hour) * 60 + min) * 60 * 1000000000ull + (uint64_t)sec * 1000000000ull + 0;
}

static uint64_t cmos_mem_size(void)
{
    /* Registers 0x34/0x35: RAM above 16 MiB in 64 KiB units (QEMU sets it). */
    uint64_t above16 = ((uint64_t)cmos_read(0x35) << 8 | cmos_read(0x34)) << 16;
    if (above16 == 0 || above16 == 0xffffull << 16)
        return 32ull << 20;
    return (16ull << 20) + above16;
}

static uint64_t memmap_size(const struct hvm_start_info *si)
{
    const struct hvm_memmap_table_entry *e = (const void *)(uintptr_t)si->memmap_paddr;
    uint64_t size = 0;
    for (uint32_t i = 0; i < si->memmap_entries && i < 128; i++) {
        uint64_t start = e[i].addr, end = e[i].addr + e[i].size;
        if (e[i].type == E820_RAM && start <= EMBER_KERNEL_MIN && end > EMBER_KERNEL_MIN)
            size = end;
    }
    return size;
}

int ember_pvh_boot_info(uintptr_t addr, struct ember_boot_info *bi)
{
    if (addr < PAGE_SIZE || addr >= EMBER_MMIO_GAP_START)
        return -1;
    const struct hvm_start_info *si = (const void *)addr;
    if (si->magic != XEN_HVM_START_MAGIC_VALUE)
        return -1;

    sdk_memset(bi, 0, sizeof(*bi));
    bi->magic = EMBER_BOOT_MAGIC;
    bi->version = EMBER_ABI_VERSION;
    bi->size = sizeof(*bi);
    bi->flags = 0; /* never the boot timer: no ember monitor to read it */

    uint64_t mem = 0;
    if (si->version >= 1 && si->memmap_paddr >= PAGE_SIZE && si->memmap_entries > 0)
        mem = memmap_size(si);
    if (mem == 0)
        mem = cmos_mem_size();
    bi->mem_size = mem;

    bi->progname = "ember";
    if (si->cmdline_paddr >= PAGE_SIZE && si->cmdline_paddr < EMBER_MMIO_GAP_START) {
        bi->cmdline = (const char *)(uintptr_t)si->cmdline_paddr;
        bi->cmdline_len = sdk_strnlen(bi->cmdline, EMBER_CMDLINE_MAX);
    } else {
        bi->cmdline = "";
    }

    bi->tsc_khz = 0;
    bi->realtime_ns = rtc_realtime_ns();

    if (ember_cpu_has_rdrand()) {
        ember_random_fill(bi->entropy, sizeof(bi->entropy));
    } else {
        for (unsigned i = 0; i < sizeof(bi->entropy); i++)
            bi->entropy[i] = (uint8_t)(rdtsc() * 0x9e3779b97f4a7c15ull >> 56);
    }
    return 0;
}
