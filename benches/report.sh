#!/bin/bash
# report.sh: runs every benchmark in benches/ and writes one report: the raw
# results as JSON (and the text of those that have no JSON), a Markdown
# summary that puts ember, the raw-KVM floor and QEMU microvm side by side,
# and gnuplot plots, into benches/results/<date>/. The summary and plots are
# copied to benches/latest/ (with report.json), which the README shows.
#
#   benches/report.sh [--full | --quick] [--only LIST] [--no-latest]
#
# Default sizes take ~10-15 minutes on a 2-core development machine; --full
# uses the issue's sizes (fleet launch for 60 s per configuration, 2000
# idle VMs for density) and takes longer; --quick is a smoke run of the
# whole pipeline (a few minutes, numbers not meaningful, implies
# --no-latest). --only runs some of: boot, api,
# faas, blk, jailer, launch, sweep, density (comma-separated); the summary
# then shows what ran. CI never runs this (it needs root, KVM, minutes).
#
# Needs: root (the jailer), /dev/kvm, qemu-system-x86_64 (else QEMU is
# skipped and the summary says so), hyperfine (jailer bench), jq, gnuplot.
# EMBER_BENCH_BUILD: the build directory (default: build-bench at the root).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${EMBER_BENCH_BUILD:-$root/build-bench}
qemu=${QEMU:-$(command -v qemu-system-x86_64 || true)}
full=0
only=boot,api,faas,blk,jailer,launch,sweep,density
latest=1
while [ $# -gt 0 ]; do
    case $1 in
    --full) full=1 ;;
    --quick) full=-1 latest=0 ;;
    --only) only=$2; shift ;;
    --only=*) only=${1#--only=} ;;
    --no-latest) latest=0 ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "report.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
wants() { case ",$only," in *",$1,"*) return 0 ;; esac; return 1; }

for tool in jq gnuplot; do
    command -v $tool >/dev/null || { echo "report.sh: $tool not found (./install-deps.sh)" >&2; exit 77; }
done
if [ ! -w /dev/kvm ]; then
    echo "report.sh: SKIPPED: /dev/kvm is not usable" >&2
    exit 77
fi

if [ "$full" = 1 ]; then
    boot_runs=1000 qemu_runs=300 jail_runs=300 launch_s=60 qemu_launch_s=60 sweep_s=20
    dens_n=2000 dens_jail_n=2000 dens_qemu_n=200
elif [ "$full" = -1 ]; then
    boot_runs=20 qemu_runs=5 jail_runs=10 launch_s=3 qemu_launch_s=3 sweep_s=2
    dens_n=40 dens_jail_n=20 dens_qemu_n=5
else
    boot_runs=300 qemu_runs=100 jail_runs=100 launch_s=30 qemu_launch_s=20 sweep_s=8
    dens_n=1000 dens_jail_n=500 dens_qemu_n=100
fi

date=$(date -u +%Y%m%d-%H%M%S)
out=$root/benches/results/$date
mkdir -p "$out"
log=$out/run.log
echo "report.sh: results go to $out (log: $log)" >&2

# Whatever happens, no VM of ours outlives the run: every driver runs in a
# process group of its own, killed on the way out.
pgids=()
cleanup() {
    # TERM first: the fleet driver then kills its VMs (a group of their own).
    for g in "${pgids[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
    sleep 1
    for g in "${pgids[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# run NAME CMD...: one benchmark in its own process group, output to the
# log; a failure is recorded and the report goes on.
failed=()
run() {
    local name=$1
    shift
    echo "report.sh: $name ..." >&2
    echo "=== $name: $*" >>"$log"
    setsid -w "$@" >>"$log" 2>&1 &
    local pid=$!
    pgids+=("$pid")
    if ! wait "$pid"; then
        failed+=("$name")
        echo "report.sh: $name failed (see $log)" >&2
    fi
    kill -KILL -- "-$pid" 2>/dev/null || true
    pgids=()
}

if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DEMBER_TESTS=OFF >>"$log" 2>&1
fi
cmake --build "$build" -j"$(nproc)" --target ember ember-jailer ember-bench-floor ember-bench-boot \
    ember-bench-api ember-bench-faas ember-bench-blk ember-bench-fleet guest_hello \
    guest_faas-echo guest_faas-wordcount guest_blk_guest >>"$log" 2>&1
ember=$build/monitor/ember
jailer=$build/jailer/ember-jailer
echo_elf=$build/guest-sdk/examples/faas-echo
fleet=$build/benches/ember-bench-fleet
qemu_arg=()
[ -n "$qemu" ] && qemu_arg=(--qemu "$qemu")

if wants boot; then
    run boot "$build/benches/ember-bench-boot" --ember "$ember" \
        --guest "$build/guest-sdk/examples/hello" --floor "$build/benches/ember-bench-floor" \
        --qemu "${qemu:-/nonexistent}" --runs "$boot_runs" --qemu-runs "$qemu_runs" \
        --out "$out/boot.json"
fi
if wants api; then
    run api sh -c "\"$build/benches/ember-bench-api\" \"$ember\" \
        \"$build/guest-sdk/examples/hello\" 10000 50 >\"$out/api.txt\""
fi
if wants faas; then
    run faas "$build/benches/ember-bench-faas" --ember "$ember" --echo "$echo_elf" \
        --wordcount "$build/guest-sdk/examples/faas-wordcount" --out "$out/faas.json"
fi
if wants blk; then
    run blk "$build/benches/ember-bench-blk" --ember "$ember" \
        --guest "$build/benches/blk_guest" --out "$out/blk.json"
fi
if wants jailer; then
    if [ "$(id -u)" = 0 ] && command -v hyperfine >/dev/null; then
        touch "$out/.jailer-start"
        run jailer env EMBER_BENCH_BUILD="$build" sh -c \
            "\"$root/benches/jailer_bench.sh\" $jail_runs >\"$out/jailer.md\""
        # jailer_bench.sh keeps a dated copy next to the results; this run's is ours.
        find "$root/benches" -maxdepth 1 -name 'jailer_results-*.md' -newer "$out/.jailer-start" \
            -delete
        rm -f "$out/.jailer-start"
    else
        echo "report.sh: jailer benchmark skipped (needs root and hyperfine)" >&2
    fi
fi
if wants launch; then
    run launch-ember "$fleet" --mode launch --kind ember --ember "$ember" --guest "$echo_elf" \
        --duration "$launch_s" --concurrency 16 --out "$out/fleet-launch-ember.json"
    if [ "$(id -u)" = 0 ]; then
        run launch-jailed "$fleet" --mode launch --kind jailed --ember "$ember" \
            --jailer "$jailer" --guest "$echo_elf" --duration "$launch_s" --concurrency 16 \
            --out "$out/fleet-launch-jailed.json"
    fi
    if [ -n "$qemu" ]; then
        run launch-qemu "$fleet" --mode launch --kind qemu "${qemu_arg[@]}" --guest "$echo_elf" \
            --duration "$qemu_launch_s" --concurrency 16 --out "$out/fleet-launch-qemu.json"
    fi
fi
if wants sweep; then
    # How launch rate and latency depend on how many VM processes the
    # launcher lets live at once (the teardown linger shows at low counts).
    for c in 1 2 4 8 16 32 64; do
        run "sweep-c$c" "$fleet" --mode launch --kind ember --ember "$ember" --guest "$echo_elf" \
            --duration "$sweep_s" --concurrency "$c" --label "ember-c$c" \
            --out "$out/fleet-sweep-c$c.json"
    done
fi
if wants density; then
    run density-ember "$fleet" --mode density --kind ember --ember "$ember" --guest "$echo_elf" \
        --count "$dens_n" --out "$out/fleet-density-ember.json"
    if [ "$(id -u)" = 0 ]; then
        run density-jailed "$fleet" --mode density --kind jailed --ember "$ember" \
            --jailer "$jailer" --guest "$echo_elf" --count "$dens_jail_n" \
            --out "$out/fleet-density-jailed.json"
    fi
    if [ -n "$qemu" ]; then
        run density-qemu "$fleet" --mode density --kind qemu "${qemu_arg[@]}" --guest "$echo_elf" \
            --count "$dens_qemu_n" --out "$out/fleet-density-qemu.json"
    fi
fi

# ---- one JSON with everything ------------------------------------------------
host_json=$(jq -n --arg kernel "$(uname -r)" --arg cpus "$(nproc)" \
    --arg mem "$(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)" \
    --arg kvm "$(if [ -d /sys/module/kvm_pvm ]; then echo kvm_pvm; elif [ -d /sys/module/kvm_intel ]; then echo kvm_intel; elif [ -d /sys/module/kvm_amd ]; then echo kvm_amd; else echo unknown; fi)" \
    --arg commit "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --arg qemu "$( [ -n "$qemu" ] && "$qemu" --version | head -1 || echo none)" \
    --arg date "$(date -u -d "${date:0:8} ${date:9:2}:${date:11:2}:${date:13:2}" '+%Y-%m-%d %H:%M:%S')" \
    --arg dir "$date" --argjson full "$full" --arg failed "${failed[*]:-}" \
    '{date: $date, dir: $dir, kernel: $kernel, cpus: ($cpus|tonumber), mem_gib: ($mem|tonumber), kvm: $kvm,
      commit: $commit, qemu: $qemu, full: ($full == 1), quick: ($full == -1),
      failed: ($failed | split(" ") | map(select(. != "")))}')
{
    echo "{\"host\": $host_json"
    for f in "$out"/*.json; do
        [ -s "$f" ] || continue
        name=$(basename "$f" .json)
        jq -e . "$f" >/dev/null 2>&1 || continue
        printf ', "%s": ' "$name"
        cat "$f"
    done
    echo "}"
} | jq . >"$out/report.json.tmp" && mv "$out/report.json.tmp" "$out/report.json"

"$root/benches/report_summary.sh" "$out" >"$out/summary.md"
"$root/benches/report_plots.sh" "$out" >>"$log" 2>&1 || echo "report.sh: plots failed (see $log)" >&2

if [ "$latest" = 1 ]; then
    mkdir -p "$root/benches/latest"
    cp "$out/summary.md" "$root/benches/latest/summary.md"
    cp "$out/report.json" "$root/benches/latest/report.json"
    for p in boot-latency launch-rate memory-per-vm; do
        [ -f "$out/$p.png" ] && cp "$out/$p.png" "$root/benches/latest/$p.png"
    done
fi
echo "report.sh: summary: $out/summary.md" >&2
if [ "${#failed[@]}" -gt 0 ]; then
    echo "report.sh: failed: ${failed[*]}" >&2
    exit 1
fi
