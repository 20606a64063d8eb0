#!/bin/bash
# report_plots.sh DIR: the plots of a benches/report.sh run, from
# DIR/report.json, as PNG in DIR: boot-latency.png (distribution of exec ->
# exit per configuration), launch-rate.png (VMs completed per second over a
# launch run) and memory-per-vm.png (host memory per idle VM against N).
set -euo pipefail
dir=$1
r=$dir/report.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
has() { jq -e "has(\"$1\")" "$r" >/dev/null; }
style='set terminal pngcairo size 900,560 font "DejaVu Sans,11" noenhanced
set grid lc rgb "#dddddd"
set key top left box opaque
set border lc rgb "#555555"'

# Boot latency: the empirical CDF of each configuration's runs.
if has boot; then
    plots=()
    for name in floor ember qemu-microvm; do
        jq -r --arg n "$name" '.boot.configurations[] | select(.name == $n and .samples_us != null)
            | .samples_us | sort | . as $s | range(0; length) | "\($s[.] / 1000) \((. + 1) / ($s | length))"' \
            "$r" >"$tmp/boot-$name.dat"
        [ -s "$tmp/boot-$name.dat" ] || continue
        label=$name
        [ "$name" = floor ] && label="raw-KVM floor"
        [ "$name" = qemu-microvm ] && label="QEMU microvm"
        plots+=("\"$tmp/boot-$name.dat\" using 1:2 with steps lw 2 title \"$label\"")
    done
    if [ "${#plots[@]}" -gt 0 ]; then
        gnuplot <<EOF
$style
set output "$dir/boot-latency.png"
set title "Boot: process exec -> exit of the hello guest (each run)"
set xlabel "exec -> exit (ms, log scale)"
set ylabel "fraction of runs"
set logscale x
set yrange [0:1.02]
set key bottom right
plot $(IFS=,; echo "${plots[*]}")
EOF
    fi
fi

# Launch rate over time.
plots=()
for k in ember jailed qemu; do
    has "fleet-launch-$k" || continue
    # Seconds of the run only: the drain after it is not a launch rate.
    jq -r --arg k "$k" '."fleet-launch-\($k)" | .config.duration_s as $d | .result.per_second
        | to_entries[] | select(.key < $d) | "\(.key + 0.5) \(.value)"' \
        "$r" >"$tmp/launch-$k.dat"
    [ -s "$tmp/launch-$k.dat" ] || continue
    label=$k
    [ "$k" = jailed ] && label="ember via ember-jailer"
    [ "$k" = qemu ] && label="QEMU microvm (boot -> exit, no vsock)"
    plots+=("\"$tmp/launch-$k.dat\" using 1:2 with linespoints lw 2 pt 7 ps 0.6 title \"$label\"")
done
if [ "${#plots[@]}" -gt 0 ]; then
    gnuplot <<EOF
$style
set output "$dir/launch-rate.png"
set title "Launch: function VMs started, invoked once and exited, per second (16 MiB, 16 alive at most)"
set xlabel "time since start (s)"
set ylabel "VMs completed per second"
set yrange [0:*]
set key outside top center horizontal
set arrow from graph 0, first 300 to graph 1, first 300 nohead dt 2 lc rgb "#aa0000"
set label "target 300/s" at graph 0.86, first 285 tc rgb "#aa0000"
plot $(IFS=,; echo "${plots[*]}")
EOF
fi

# Memory per VM against N.
plots=()
for k in ember jailed qemu; do
    has "fleet-density-$k" || continue
    # Points below N = 10 are mostly the host's own noise: left out.
    jq -r --arg k "$k" '."fleet-density-\($k)".result.curve[:-1][] | select(.n >= 10)
        | "\(.n) \(.host_kib_per_vm / 1024)"' \
        "$r" >"$tmp/mem-$k.dat"
    [ -s "$tmp/mem-$k.dat" ] || continue
    label=$k
    [ "$k" = jailed ] && label="ember via ember-jailer"
    [ "$k" = qemu ] && label="QEMU microvm (booted, stopped)"
    plots+=("\"$tmp/mem-$k.dat\" using 1:2 with linespoints lw 2 pt 7 ps 0.7 title \"$label\"")
done
if [ "${#plots[@]}" -gt 0 ]; then
    gnuplot <<EOF
$style
set output "$dir/memory-per-vm.png"
set title "Density: host memory per idle function VM (MemAvailable drop / N, 16 MiB guests)"
set xlabel "idle VMs alive (N)"
set ylabel "MiB per VM (log scale)"
set logscale y
set yrange [0.1:64]
set xrange [0:*]
set key outside top center horizontal
set arrow from graph 0, first 1.5 to graph 1, first 1.5 nohead dt 2 lc rgb "#aa0000"
set label "target 1.5 MiB" at graph 0.01, first 1.7 tc rgb "#aa0000"
plot $(IFS=,; echo "${plots[*]}")
EOF
fi
