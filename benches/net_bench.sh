#!/bin/bash
# net_bench.sh: the guest SDK's TCP/IP stack over virtio-net and a tap,
# next to the same workload between two network namespaces over veth (the
# host kernel's own figure), in one run:
#   - TCP throughput both directions (net_server G/S, net_peer down/up)
#   - small-message request/response latency (64 B echo, p50/p99)
#   - HTTP requests/s (the http-server example, one keep-alive connection)
#   - UDP echo packets/s (64 B, 32 in flight)
#   - cold start: `ember run` of a guest that brings the network up
#     (socket + bind with ip=) vs the hello example without a network
# plus vsock's warm invocation round trip (ember-bench-faas) as the RR
# yardstick. Medians of RUNS rounds; each round measures the guest, veth
# and vsock back to back, so a host whose load drifts moves all three
# together and the ratios stay comparable. JSON on stdout, a summary on
# stderr.
#
# usage: benches/net_bench.sh [BUILD_DIR] (default build-release); RUNS=5.
# LOAD=N runs N CPU-bound loops (nice 0) for the whole run: a noisy host
# (on a 2-CPU machine LOAD=1 takes one CPU's worth from everything else).
# Needs root, /dev/net/tun, /dev/kvm; exits 77 otherwise.
set -u
B=${1:-build-release}
RUNS=${RUNS:-5}
LOAD=${LOAD:-0}
EMBER=$B/monitor/ember
PEER=$B/benches/ember-bench-net-peer
SRV_HOST=$B/benches/ember-bench-net-server-host
HTTP_HOST=$B/benches/ember-bench-http-server-host
SRV_GUEST=$B/benches/net_server
HTTP_GUEST=$B/guest-sdk/examples/http-server
HELLO=$B/guest-sdk/examples/hello
FAAS=$B/benches/ember-bench-faas
ECHO=$B/guest-sdk/examples/faas-echo
WC=$B/guest-sdk/examples/faas-wordcount
for f in "$EMBER" "$PEER" "$SRV_HOST" "$HTTP_HOST" "$SRV_GUEST" "$HTTP_GUEST" "$HELLO"; do
    [ -x "$f" ] || { echo "net_bench: $f missing (build $B first)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] && [ -c /dev/net/tun ] && [ -w /dev/kvm ] ||
    { echo "SKIPPED: net_bench needs root, /dev/net/tun and /dev/kvm" >&2; exit 77; }

DOWN=${DOWN:-67108864}
UP=${UP:-67108864}
RR_N=${RR_N:-2000}
UDP_N=${UDP_N:-20000}
HTTP_N=${HTTP_N:-2000}
COLD_N=${COLD_N:-15}

A=embench-a-$$ V1=embench-v1-$$ V2=embench-v2-$$ TAP=ebt$$
GIP=10.79.0.2 HIP=10.79.0.1 VIP1=10.80.0.1 VIP2=10.80.0.2
IPARG="ip=$GIP::$HIP:255.255.255.0::eth0:off"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    for n in $A $V1 $V2; do ip netns del "$n" 2>/dev/null; done
}
trap cleanup EXIT
for n in $A $V1 $V2; do ip netns add "$n" && ip -n "$n" link set lo up; done
ip -n $A tuntap add dev $TAP mode tap
ip -n $A addr add $HIP/24 dev $TAP
ip -n $A link set $TAP up
ip -n $V1 link add veth0 type veth peer name veth1 netns $V2
ip -n $V1 addr add $VIP1/24 dev veth0
ip -n $V2 addr add $VIP2/24 dev veth1
ip -n $V1 link set veth0 up
ip -n $V2 link set veth1 up

median() { sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
wait_line() { # file token
    for _ in $(seq 400); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.025; done
    echo "net_bench: no \"$2\" in $1" >&2
    cat "$1" >&2
    exit 1
}
# peer NS HOST PORT mode n [size] -> net_peer's values on one line
peer() {
    ip netns exec "$1" "$PEER" "$4" "$2" "$3" "$5" ${6:-} | awk '{printf "%s ", $2} END {print ""}'
}
declare -A S # name -> the values of the rounds, one a line
add() { S[$1]+="$2"$'\n'; }
med() { printf '%s' "${S[$1]:-}" | grep -v '^$' | median; }

TMP=$(mktemp -d /tmp/embench-$$.XXXX)
# The guest: net_server in one VM, the http-server in another.
ip netns exec $A "$EMBER" run --mem 512 --net $TAP "$SRV_GUEST" "$IPARG" 5201 >"$TMP/g.out" 2>&1 &
G_PID=$!
PIDS+=($G_PID)
wait_line "$TMP/g.out" "net_server ready"
ip netns exec $V2 "$SRV_HOST" 5201 >"$TMP/h.out" 2>&1 &
H_PID=$!
PIDS+=($H_PID)
wait_line "$TMP/h.out" "net_server ready"

for _ in $(seq "$LOAD"); do
    sh -c 'while :; do :; done' &
    PIDS+=($!)
done
vsock_rr() {
    [ -x "$FAAS" ] || return 0
    "$FAAS" --ember "$EMBER" --echo "$ECHO" --wordcount "$WC" --warm "$RR_N" \
        --mib 1 --cold 1 2>/dev/null | python3 -c "
import json,sys
print('%.1f' % json.load(sys.stdin)['warm_round_trip']['median_us'])" 2>/dev/null
}
for _ in $(seq "$RUNS"); do
    add g_down "$(peer $A $GIP 5201 down $DOWN)"
    add v_down "$(peer $V1 $VIP2 5201 down $DOWN)"
    add g_up "$(peer $A $GIP 5201 up $UP)"
    add v_up "$(peer $V1 $VIP2 5201 up $UP)"
    read -r a b <<<"$(peer $A $GIP 5201 rr $RR_N 64)"
    add g_rr "$a"
    add g_rr99 "$b"
    read -r a b <<<"$(peer $V1 $VIP2 5201 rr $RR_N 64)"
    add v_rr "$a"
    add v_rr99 "$b"
    add vsock_rr "$(vsock_rr)"
    add g_udp "$(peer $A $GIP 5201 udp $UDP_N | awk '{print $1}')"
    add v_udp "$(peer $V1 $VIP2 5201 udp $UDP_N | awk '{print $1}')"
done
declare -A R
for k in g_down v_down g_up v_up g_rr g_rr99 v_rr v_rr99 vsock_rr g_udp v_udp; do
    R[$k]=$(med $k)
done
ip netns exec $A "$PEER" udp $GIP 5201 1 >/dev/null 2>&1
kill "$G_PID" "$H_PID" 2>/dev/null
wait "$G_PID" "$H_PID" 2>/dev/null

ip netns exec $A "$EMBER" run --net $TAP "$HTTP_GUEST" "$IPARG" 8080 >"$TMP/hg.out" 2>&1 &
G_PID=$!
PIDS+=($G_PID)
wait_line "$TMP/hg.out" "listening on port"
ip netns exec $V2 "$HTTP_HOST" 8080 >"$TMP/hh.out" 2>&1 &
H_PID=$!
PIDS+=($H_PID)
wait_line "$TMP/hh.out" "listening on port"
for _ in $(seq "$RUNS"); do
    add g_http "$(peer $A $GIP 8080 http $HTTP_N)"
    add v_http "$(peer $V1 $VIP2 8080 http $HTTP_N)"
done
R[g_http]=$(med g_http)
R[v_http]=$(med v_http)
kill "$G_PID" "$H_PID" 2>/dev/null
wait "$G_PID" "$H_PID" 2>/dev/null

# Cold start: wall time of `ember run` to exit, network up vs none.
wall_us() { # command...: its wall time in microseconds
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000))
}
for _ in $(seq "$COLD_N"); do
    add cold_net "$(wall_us ip netns exec $A "$EMBER" run --net $TAP "$SRV_GUEST" up "$IPARG")"
    add cold_tap "$(wall_us ip netns exec $A "$EMBER" run --net $TAP "$HELLO")"
    add cold_none "$(wall_us ip netns exec $A "$EMBER" run "$HELLO")"
done
R[cold_net_us]=$(med cold_net)
R[cold_tap_nouse_us]=$(med cold_tap)
R[cold_none_us]=$(med cold_none)

diff_us() { [ -n "$1" ] && [ -n "$2" ] && echo $(($1 - $2)) || echo null; }
ratio() { python3 -c "import sys; a,b=sys.argv[1:]; print('%.3f'%(float(a)/float(b)) if a and b and float(b) else 'null')" "$1" "$2"; }
cat <<EOF
{
  "tcp_down_MBps": {"guest": ${R[g_down]:-null}, "veth": ${R[v_down]:-null}, "ratio": $(ratio "${R[g_down]}" "${R[v_down]}")},
  "tcp_up_MBps": {"guest": ${R[g_up]:-null}, "veth": ${R[v_up]:-null}, "ratio": $(ratio "${R[g_up]}" "${R[v_up]}")},
  "rr_64B_us": {"guest_p50": ${R[g_rr]:-null}, "guest_p99": ${R[g_rr99]:-null}, "veth_p50": ${R[v_rr]:-null}, "veth_p99": ${R[v_rr99]:-null}, "vsock_warm_p50": ${R[vsock_rr]:-null}, "guest_over_vsock": $(ratio "${R[g_rr]}" "${R[vsock_rr]}")},
  "udp_echo_pps": {"guest": ${R[g_udp]:-null}, "veth": ${R[v_udp]:-null}, "ratio": $(ratio "${R[g_udp]}" "${R[v_udp]}")},
  "http_rps": {"guest": ${R[g_http]:-null}, "veth": ${R[v_http]:-null}, "ratio": $(ratio "${R[g_http]}" "${R[v_http]}")},
  "cold_start_us": {"net_up": ${R[cold_net_us]:-null}, "tap_unused": ${R[cold_tap_nouse_us]:-null}, "no_net": ${R[cold_none_us]:-null}, "net_up_minus_tap_unused": $(diff_us "${R[cold_net_us]}" "${R[cold_tap_nouse_us]}"), "net_up_minus_no_net": $(diff_us "${R[cold_net_us]}" "${R[cold_none_us]}")},
  "runs": $RUNS,
  "load_loops": $LOAD
}
EOF
{
    echo "net_bench (medians of $RUNS rounds, $LOAD load loops; guest = SDK stack over virtio-net/tap, veth = two host namespaces)"
    printf '  TCP guest->host %s MB/s vs veth %s (%s)\n' "${R[g_down]}" "${R[v_down]}" "$(ratio "${R[g_down]}" "${R[v_down]}")"
    printf '  TCP host->guest %s MB/s vs veth %s (%s)\n' "${R[g_up]}" "${R[v_up]}" "$(ratio "${R[g_up]}" "${R[v_up]}")"
    printf '  RR 64 B p50 %s us (p99 %s) vs veth %s, vsock warm %s (%s)\n' "${R[g_rr]}" "${R[g_rr99]}" "${R[v_rr]}" "${R[vsock_rr]}" "$(ratio "${R[g_rr]}" "${R[vsock_rr]}")"
    printf '  UDP echo %s pps vs veth %s\n' "${R[g_udp]}" "${R[v_udp]}"
    printf '  HTTP %s req/s vs veth %s\n' "${R[g_http]}" "${R[v_http]}"
    printf '  cold start: network up %s us, tap unused %s us, no network %s us\n' "${R[cold_net_us]}" "${R[cold_tap_nouse_us]}" "${R[cold_none_us]}"
} >&2
