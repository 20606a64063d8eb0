#!/bin/bash
# jailer_bench.sh: cold start of the hello guest, jailed against unjailed,
# side by side (issue 6), and what ember's seccomp filter costs. hyperfine
# times exec -> exit of each variant; the jail is cleaned up and rebuilt
# (guest copied in) before every jailed run, outside the timing, so each
# jailed run pays the whole jailer: copy of ember, rlimits, cgroups, mount
# namespace, pivot_root, mknod, setuid, exec.
#
#   benches/jailer_bench.sh [RUNS]        (default 300; needs root and KVM)
#
# EMBER_BENCH_BUILD: the build directory (default: build-bench at the root).
# Writes the hyperfine table and the medians to stdout and to
# benches/jailer_results-DATE.md.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${EMBER_BENCH_BUILD:-$root/build-bench}
runs=${1:-300}

if [ "$(id -u)" != 0 ]; then
    echo "jailer_bench.sh: needs root (the jailer does)" >&2; exit 77
fi
command -v hyperfine >/dev/null || { echo "jailer_bench.sh: hyperfine not found" >&2; exit 77; }
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DEMBER_TESTS=OFF >&2
fi
cmake --build "$build" -j"$(nproc)" --target ember ember-jailer guest_hello >&2

ember=$build/monitor/ember
jailer=$build/jailer/ember-jailer
hello=$build/guest-sdk/examples/hello
base=$(mktemp -d /tmp/ember-jailer-bench-XXXXXX)
parent=ember-bench-$$
trap '"$jailer" --cleanup --id bench --exec-file "$ember" --chroot-base-dir "$base" \
        --parent-cgroup "$parent" >/dev/null 2>&1 || true
      for h in cpu pids; do rmdir /sys/fs/cgroup/$h/$parent 2>/dev/null || true; done
      rm -rf "$base"' EXIT

root_dir=$base/ember/bench/root
# Run before every timed run, not timed: a fresh jail with the guest in it.
prepare=$base/prepare.sh
cat >"$prepare" <<PREP
#!/bin/sh
"$jailer" --cleanup --id bench --exec-file "$ember" --chroot-base-dir "$base" \
    --parent-cgroup "$parent" && mkdir -p "$root_dir" && cp "$hello" "$root_dir/hello"
PREP
chmod +x "$prepare"
jail="$jailer --id bench --exec-file $ember --uid 10000 --gid 10000 --chroot-base-dir $base \
--parent-cgroup $parent"
out=$root/benches/jailer_results-$(date +%Y%m%d-%H%M%S).md

hyperfine -N --warmup 20 --runs "$runs" --export-markdown "$out" --export-json "$base/h.json" \
    --prepare "$prepare" \
    -n "ember run hello" "$ember run $hello" \
    -n "ember run --no-seccomp hello" "$ember run --no-seccomp $hello" \
    -n "jailed" "$jail -- run /hello" \
    -n "jailed + cgroups v1 (cpu, pids)" \
        "$jail --cgroup cpu.shares=512 --cgroup pids.max=64 -- run /hello" \
    -n "jailed --no-seccomp" "$jail -- run --no-seccomp /hello" \
    >&2
# Medians: this host is shared and noisy, a mean is pulled by the outliers.
{
    echo
    echo "Medians (ms), $runs runs each:"
    awk -F'"' '/"command":/ {c = $4} /"median":/ {split($0, a, ": "); sub(",", "", a[2]);
        printf "- %s: %.2f\n", c, a[2] * 1000}' "$base/h.json"
} >>"$out"
cat "$out"
