#!/bin/sh
# run-boot.sh: the boot benchmark of issue 2. Builds ember, the hello guest, the
# raw-KVM floor and the driver if needed (Release-like flags of the top-level
# CMakeLists, no tests), then times exec->exit of the floor, ember and QEMU
# microvm, interleaved. JSON goes to benches/results/boot-DATE.json and stdout,
# a summary to stderr.
#
#   benches/run-boot.sh [--runs N] [--qemu-runs N] [--warmup N] [--probes N]
#                       [--ember-baseline PATH]
#
# --ember-baseline adds another ember build as a fourth configuration,
# interleaved with the others (e.g. one configured with -DEMBER_DEPS_PREFIX=
# a directory without libcbor.a, which links libcbor and glibc dynamically:
# what static linking buys).
# EMBER_BENCH_BUILD: the build directory (default: build-bench at the root).
# QEMU: the qemu-system-x86_64 to compare with (default: the one on PATH; if
# there is none, QEMU is skipped with a message).
# Exit status: the driver's (0 measured, 1 a boot failed, 77 no KVM).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${EMBER_BENCH_BUILD:-$root/build-bench}
qemu=${QEMU:-$(command -v qemu-system-x86_64 || true)}

if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DEMBER_TESTS=OFF >&2
fi
cmake --build "$build" -j"$(nproc)" \
    --target ember ember-bench-floor ember-bench-boot guest_hello >&2

if [ -z "$qemu" ]; then
    echo "run-boot.sh: qemu-system-x86_64 not found: QEMU microvm will be skipped" >&2
fi

mkdir -p "$root/benches/results"
out=$root/benches/results/boot-$(date +%Y%m%d-%H%M%S).json
status=0
"$build/benches/ember-bench-boot" \
    --ember "$build/monitor/ember" \
    --guest "$build/guest-sdk/examples/hello" \
    --floor "$build/benches/ember-bench-floor" \
    --qemu "$qemu" \
    --out "$out" "$@" || status=$?
if [ -f "$out" ]; then
    cat "$out"
    echo
    echo "run-boot.sh: JSON written to $out" >&2
fi
exit "$status"
