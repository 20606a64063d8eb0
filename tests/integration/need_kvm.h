/* need_kvm.h: need_kvm(), the first line of a criterion test that boots a
 * VM: without a usable /dev/kvm the test is skipped, loudly, with the reason
 * (never passed silently). */
#ifndef EMBER_TEST_NEED_KVM_H
#define EMBER_TEST_NEED_KVM_H

#include <criterion/criterion.h>
#include <stdio.h>

#include "tests/integration/proc.h"

static inline void need_kvm(void)
{
    const char *why = spawn_kvm_unusable();

    if (why) {
        fprintf(stderr, "SKIPPED: integration test needs KVM: %s\n", why);
        cr_skip_test("needs KVM: %s", why);
    }
}

#endif
