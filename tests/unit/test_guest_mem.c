/* test_guest_mem.c: the one checked translation of guest-physical ranges. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/guest_mem.h"

static struct guest_mem mem;

static void setup(void)
{
    cr_assert_eq(guest_mem_map(&mem, 1 << 20), 0);
}

static void teardown(void)
{
    guest_mem_unmap(&mem);
}

TestSuite(guest_mem, .init = setup, .fini = teardown);

Test(guest_mem, inside_is_translated)
{
    cr_expect_eq(guest_mem_slice(&mem, 0, 1 << 20), mem.host);
    cr_expect_eq(guest_mem_slice(&mem, 4096, 16), mem.host + 4096);
    cr_expect_eq(guest_mem_slice(&mem, (1 << 20) - 1, 1), mem.host + (1 << 20) - 1);
    cr_expect_eq(guest_mem_slice(&mem, 1 << 20, 0), mem.host + (1 << 20));
}

Test(guest_mem, outside_and_overflow_are_refused)
{
    cr_expect_null(guest_mem_slice(&mem, 1 << 20, 1));
    cr_expect_null(guest_mem_slice(&mem, (1 << 20) - 1, 2));
    cr_expect_null(guest_mem_slice(&mem, UINT64_MAX, 2));
    cr_expect_null(guest_mem_slice(&mem, 16, UINT64_MAX));
    cr_expect_null(guest_mem_slice(&mem, UINT64_MAX - 4095, 8192));
}

Test(guest_mem, strings_are_bounded)
{
    cr_expect_eq(guest_mem_put_string(&mem, 0x100, "abc", 3), 0);
    cr_expect_str_eq((char *)mem.host + 0x100, "abc");
    cr_expect_eq(guest_mem_put_string(&mem, 0x100, "abcd", 3), -1);
    cr_expect_eq(guest_mem_put_string(&mem, (1 << 20) - 3, "abc", 8), -1);
}

/* A memory file over anonymous RAM (monitor/vm_shell.h): same address and
 * size, the file's bytes, copy-on-write (the file stays as it was). */
Test(guest_mem, remap_file_keeps_the_address)
{
    char path[64];
    uint8_t *at = mem.host;
    snprintf(path, sizeof(path), "/tmp/ember-guest-mem-remap-%d", (int)getpid());
    FILE *f = fopen(path, "w+");
    cr_assert(f);
    int fd = fileno(f);
    cr_assert_eq(ftruncate(fd, 1 << 20), 0);
    cr_assert_eq(pwrite(fd, "snapshot", 8, 8192), 8);
    memset(mem.host, 0x55, 4096); /* anonymous pages the remap replaces */

    cr_assert_eq(guest_mem_remap_file(&mem, fd), 0);
    cr_expect_eq(mem.host, at);
    cr_expect_eq(mem.size, 1u << 20);
    cr_expect(mem.file_backed);
    cr_expect_eq(mem.host[0], 0);
    cr_expect_eq(memcmp(mem.host + 8192, "snapshot", 8), 0);
    mem.host[8192] = 'S';
    char back[8];
    cr_assert_eq(pread(fd, back, 8, 8192), 8);
    cr_expect_eq(memcmp(back, "snapshot", 8), 0, "a guest write reached the file");

    /* Only anonymous RAM is replaced. */
    errno = 0;
    cr_expect_eq(guest_mem_remap_file(&mem, fd), -1);
    cr_expect_eq(errno, EINVAL);
    fclose(f);
    unlink(path);
}
