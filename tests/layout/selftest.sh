#!/usr/bin/env bash
# selftest.sh CHECKER: check_includes.sh on a small tree with one break of
# each kind; every one must be reported, with its message, and nothing else.
set -euo pipefail
checker=${1:?usage: selftest.sh CHECKER}
t=$(mktemp -d "${TMPDIR:-/tmp}/ember-layout-$$.XXXXXX")
trap 'rm -rf "$t"' EXIT
mkdir -p "$t"/{tests/layout,include/ember,common,virtio,monitor,api-socket,newpart,guest-sdk/src/posix,guest-sdk/include/ember}
cp "$(dirname "$checker")/allowed_edges.txt" "$t/tests/layout/"
touch "$t/include/ember/abi.h" "$t/common/guest_mem.h" "$t/virtio/queue.h" "$t/monitor/vm.h" \
    "$t/monitor/vm_priv.h" "$t/guest-sdk/src/posix/sys_fd.h" "$t/guest-sdk/include/ember/guest.h"
printf '#include "common/guest_mem.h"\n#include "monitor/vm.h"\n' >"$t/virtio/queue.c"
printf '#include "queue.h"\n#include <ember/guest.h>\n#include <ember/abi.h>\n' >"$t/virtio/mmio.c"
printf '#include "monitor/vm_priv.h"\n#include "monitor/nothere.h"\n' >"$t/api-socket/api_vmm.c"
printf '#include "monitor/vm_priv.h"\n#include "virtio/queue.h"\n' >"$t/monitor/vm.c"
printf '#include "common/guest_mem.h"\n' >"$t/newpart/x.c"
printf '#include "posix/sys_fd.h"\n#include "sys_fd.h"\n#include <ember/guest.h>\n' >"$t/guest-sdk/src/posix/sys_fd.c"
out=$(GIT_DIR=/nonexistent "$checker" "$t") || true
want='virtio/queue.c:2: "monitor/vm.h": virtio/ may not include from monitor/ (allowed: common include)
virtio/mmio.c:1: "queue.h": include by path from the repository root ("virtio/queue.h"?)
virtio/mmio.c:2: <ember/guest.h>: host code takes <ember/*.h> from include/ (the ABI) only
api-socket/api_vmm.c:1: "monitor/vm_priv.h" is internal to monitor/
api-socket/api_vmm.c:2: "monitor/nothere.h": no such file from the repository root
newpart/x.c:1: part newpart/ has no line in tests/layout/allowed_edges.txt
guest-sdk/src/posix/sys_fd.c:2: "sys_fd.h": the SDK includes its own headers relative to guest-sdk/src
13 include(s) checked, 7 violation(s)'
if [ "$(sort <<<"$out")" != "$(sort <<<"$want")" ]; then
    echo "FAIL: check_includes.sh said:"
    echo "$out"
    echo "expected:"
    echo "$want"
    exit 1
fi
echo "ok: 7 violations reported as expected"
