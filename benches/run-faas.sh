#!/bin/sh
# run-faas.sh: the function runtime's benchmark (issue 5). Builds ember, the
# faas-echo and faas-wordcount example guests and the driver if needed
# (Release-like flags of the top-level CMakeLists, no tests), then measures
# the warm invocation round trip (small body: median, p99), throughput with
# 1 MiB bodies, and the cold start (exec of ember -> first response at the
# host). JSON goes to benches/results/faas-DATE.json and stdout, a summary
# to stderr.
#
#   benches/run-faas.sh [--warm N] [--mib N] [--cold N]
#
# Defaults: 10000 warm invocations, 200 with 1 MiB bodies, 200 cold starts.
# EMBER_BENCH_BUILD: the build directory (default: build-bench at the root).
# Exit status: the driver's (0 measured, 1 a run failed, 77 no KVM).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${EMBER_BENCH_BUILD:-$root/build-bench}

if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DEMBER_TESTS=OFF >&2
fi
cmake --build "$build" -j"$(nproc)" \
    --target ember ember-bench-faas guest_faas-echo guest_faas-wordcount >&2

mkdir -p "$root/benches/results"
out=$root/benches/results/faas-$(date +%Y%m%d-%H%M%S).json
status=0
"$build/benches/ember-bench-faas" \
    --ember "$build/monitor/ember" \
    --echo "$build/guest-sdk/examples/faas-echo" \
    --wordcount "$build/guest-sdk/examples/faas-wordcount" \
    --out "$out" "$@" || status=$?
if [ -f "$out" ]; then
    cat "$out"
    echo
    echo "run-faas.sh: JSON written to $out" >&2
fi
exit "$status"
