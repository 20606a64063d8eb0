#!/usr/bin/env bash
# api_run.sh [BUILD_DIR]: runs the control-plane benchmark (ember-bench-api,
# benches/api_bench.c) against the built `ember` and the SDK's hello guest,
# and keeps the output in benches/results/api-<date>.txt.
# Targets (issue 3): API round trip median <= 50 us, p99 <= 200 us;
# exec -> socket ready <= 2 ms.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$repo/build}
cmake --build "$build" --target ember ember-bench-api guest_hello -j"$(nproc)" >/dev/null
bench=$(find "$build" -name ember-bench-api -type f -perm -u+x | head -n 1)
ember=$(find "$build" -path '*monitor/ember' -type f -perm -u+x | head -n 1)
hello=$(find "$build" -path '*guest-sdk/examples/hello' -type f | head -n 1)
mkdir -p "$repo/benches/results"
out=$repo/benches/results/api-$(date -u +%Y%m%dT%H%M%SZ).txt
"$bench" "$ember" "$hello" "${REQUESTS:-10000}" "${STARTS:-50}" | tee "$out"
echo "api_run: results in $out"
