#!/bin/bash
# run-posix.sh: the POSIX-layer benchmark of issue 13. The same program
# (benches/posix_guest.c) runs in ember and natively, ROUNDS times each, in
# one run:
#   console  100,000 line-buffered lines to a file: lines/s
#   realloc  a buffer grown in 4 KiB steps to 78 MiB (guest: --mem 256)
#   select   50 waits of 10 ms with select(): wall time and the host CPU the
#            whole ember process used (user + sys, from the kernel's
#            accounting of the child, bash's `times`)
# Medians and ratios (ember / native) as JSON on stdout and in
# benches/results/posix-DATE.json.
#
#   benches/run-posix.sh [ROUNDS]
#
# EMBER_BENCH_BUILD: the build directory (default build-bench at the root;
# build-release works). Exit status 77 without /dev/kvm.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${EMBER_BENCH_BUILD:-$root/build-bench}
rounds=${1:-5}
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "run-posix.sh: SKIPPED: no /dev/kvm" >&2; exit 77; }
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
fi
cmake --build "$build" -j2 --target ember ember-bench-posix-native guest_posix_guest >&2
ember=$build/monitor/ember
guest=$build/benches/posix_guest
native=$build/benches/ember-bench-posix-native
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# one KIND CASE ARGS...: prints "seconds cpu_seconds" (cpu: the child's
# user + sys as the kernel accounted it).
one() {
    local kind=$1
    shift
    local t
    if [ "$kind" = ember ]; then
        ( "$ember" run --mem 256 "$guest" "$@" >"$tmp/out" 2>"$tmp/err"; times >"$tmp/times" )
    else
        ( "$native" "$@" >"$tmp/out" 2>"$tmp/err"; times >"$tmp/times" )
    fi
    t=$(awk 'NF == 2 && $2 ~ /^[0-9.]+$/ { print $2 }' "$tmp/err" | tail -1)
    [ -n "$t" ] || { echo "run-posix.sh: $kind $*: failed" >&2; cat "$tmp/err" >&2; exit 1; }
    # bash `times`: line 2 is the children's "XmY.YYYs XmZ.ZZZs".
    cpu=$(sed -n 2p "$tmp/times" | awk '{ split($1, u, "m"); split($2, s, "m");
        sub("s", "", u[2]); sub("s", "", s[2]); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }')
    echo "$t $cpu"
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A res
for case in "console 100000" "realloc 78" "select 10 50"; do
    name=${case%% *}
    for kind in ember native; do
        : >"$tmp/t.$kind"
        : >"$tmp/c.$kind"
        for _ in $(seq "$rounds"); do
            # shellcheck disable=SC2086
            read -r t c < <(nice -n 10 bash -c "$(declare -f one); ember=$ember guest=$guest native=$native tmp=$tmp; one $kind $case")
            echo "$t" >>"$tmp/t.$kind"
            echo "$c" >>"$tmp/c.$kind"
        done
        res[$name.$kind.s]=$(median <"$tmp/t.$kind")
        res[$name.$kind.cpu]=$(median <"$tmp/c.$kind")
    done
done

lines=100000
mkdir -p "$root/benches/results"
out=$root/benches/results/posix-$(date +%Y%m%d-%H%M%S).json
awk -v r="$rounds" -v n="$lines" \
    -v ce="${res[console.ember.s]}" -v cn="${res[console.native.s]}" \
    -v re="${res[realloc.ember.s]}" -v rn="${res[realloc.native.s]}" \
    -v se="${res[select.ember.s]}" -v sn="${res[select.native.s]}" \
    -v sce="${res[select.ember.cpu]}" -v scn="${res[select.native.cpu]}" 'BEGIN {
    printf "{\"rounds\": %d,\n", r
    printf " \"console\": {\"lines\": %d, \"ember_s\": %s, \"native_s\": %s, \"ember_lines_per_s\": %.0f, \"native_lines_per_s\": %.0f, \"ratio\": %.2f},\n", n, ce, cn, n / ce, n / cn, ce / cn
    printf " \"realloc_4k_steps_to_78mib\": {\"ember_s\": %s, \"native_s\": %s, \"ratio\": %.2f},\n", re, rn, re / rn
    printf " \"select_50x10ms\": {\"ember_wall_s\": %s, \"native_wall_s\": %s, \"ember_host_cpu_s\": %s, \"native_cpu_s\": %s}}\n", se, sn, sce, scn
}' | tee "$out"
