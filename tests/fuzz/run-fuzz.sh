#!/usr/bin/env bash
# run-fuzz.sh [SECONDS] [TARGET...]: builds every fuzz target with clang and
# libFuzzer in build-fuzz/ (the code under test instrumented: -DEMBER_FUZZ=ON)
# and fuzzes each for SECONDS (default 60), one after the other, starting from
# the committed corpus; new inputs go to build-fuzz/corpus/<target>, not the
# repository. Prints, per target, the executions, the edges covered (cov)
# and the features (ft) at the end, and stops at the first crash (its input
# is left in build-fuzz/crash-*). Targets: virtqueue elf vsock api (default),
# and dhcp.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(virtqueue elf vsock api)
build=$repo/build-fuzz
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache)
CC=clang cmake -S "$repo" -B "$build" -DEMBER_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "${launcher[@]}" >/dev/null
bins=()
for t in "${targets[@]}"; do
  case $t in
  api) bins+=(api_fuzz) ;;
  virtqueue | elf | vsock | dhcp) bins+=("fuzz_$t") ;;
  *) echo "run-fuzz.sh: unknown target $t" >&2; exit 2 ;;
  esac
done
cmake --build "$build" -j"$(nproc)" --target "${bins[@]}" >/dev/null
summary=()
for t in "${targets[@]}"; do
  corpus=$build/corpus/$t
  mkdir -p "$corpus"
  case $t in
  api)
    bin=$build/tests/api/api_fuzz
    cp -n "$repo"/tests/api/fuzz/corpus/* "$corpus/"
    ;;
  *)
    bin=$build/tests/fuzz/fuzz_$t
    cp -n "$repo/tests/fuzz/corpus/$t"/* "$corpus/"
    ;;
  esac
  if [ "$t" = elf ]; then
    # Real guests too, from a gcc build if there is one (the guest SDK is
    # not built with clang).
    for g in "$repo"/build-test/guest-sdk/examples/hello "$repo"/build-test/tests/guests/args; do
      [ -f "$g" ] && cp -n "$g" "$corpus/guest-$(basename "$g")"
    done
  fi
  maxlen=65536
  [ "$t" = vsock ] && maxlen=16384 # a packet sequence: longer inputs only run slower
  log=$build/fuzz-$t.log
  echo "== $t: ${secs}s"
  (cd "$build" && "$bin" -max_total_time="$secs" -max_len="$maxlen" -timeout=10 \
    -print_final_stats=1 "$corpus" >"$log" 2>&1) || {
    tail -n 40 "$log"
    echo "run-fuzz.sh: $t failed (log: $log)" >&2
    exit 1
  }
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  summary+=("$(printf '%-10s execs %-10s cov %-6s ft %s' "$t" "$execs" "$cov" "$ft")")
done
echo "== run-fuzz.sh: ${secs}s per target"
printf '%s\n' "${summary[@]}"
