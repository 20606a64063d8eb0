#!/bin/sh
# run-blk.sh: the virtio-blk benchmark of issue 4. Builds ember, the in-guest
# half (benches/blk_guest.c) and the driver (benches/blk_bench.c) if needed,
# then compares 4 KiB random reads at queue depth 1 and 1 MiB sequential
# reads and writes from inside the guest (Sync and Async engines) with a host
# pread/pwrite loop on the same file, in the same run. JSON goes to
# benches/results/blk-DATE.json and stdout, a summary to stderr.
#
#   benches/run-blk.sh [--size MIB] [--rand N] [--hlt N] [--passes N] [--rounds N] [--dir DIR]
#
# EMBER_BENCH_BUILD: the build directory (default: build-bench at the root).
# Exit status: the driver's (0 measured, 1 a run failed, 77 no KVM).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${EMBER_BENCH_BUILD:-$root/build-bench}

if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DEMBER_TESTS=OFF >&2
fi
cmake --build "$build" -j"$(nproc)" --target ember ember-bench-blk guest_blk_guest >&2

mkdir -p "$root/benches/results"
out=$root/benches/results/blk-$(date +%Y%m%d-%H%M%S).json
exec "$build/benches/ember-bench-blk" --ember "$build/monitor/ember" \
    --guest "$build/benches/blk_guest" --out "$out" "$@"
