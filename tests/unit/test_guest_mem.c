/* test_guest_mem.c: the one checked translation of guest-physical ranges. */
#include <criterion/criterion.h>
#include <stdint.h>

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
