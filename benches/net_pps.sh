#!/bin/sh
# net_pps.sh: the virtio-net device's raw packet rate (issue 15), next to
# the host kernel's own figure in the same run: 64-byte UDP datagrams
#   flood  the peer sends N datagrams as fast as it can (an ember guest:
#          the device's TX path, one kick per frame, as a naive driver does);
#   echo   the host sends N datagrams to the peer's echo port, at most W
#          unanswered (a guest: RX and TX paths, round trips);
# between the host and an ember guest (tests/guests/net_echo_raw.c behind a
# tap in a namespace of its own) and between two namespaces over veth.
# Medians of R runs and the ratios go to benches/results/net-pps-DATE.json
# and stdout; needs root (namespaces, taps), else exits 77.
#
#   benches/net_pps.sh [--packets N] [--window W] [--runs R]
#
# EMBER_BENCH_BUILD: the build directory (default: build-bench at the root).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${EMBER_BENCH_BUILD:-$root/build-bench}
packets=20000
window=32
runs=5
while [ $# -gt 0 ]; do
    case $1 in
    --packets) packets=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "usage: $0 [--packets N] [--window W] [--runs R]" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ] || ! command -v ip >/dev/null; then
    echo "SKIPPED: net_pps needs root, /dev/net/tun and ip(8)" >&2
    exit 77
fi
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DEMBER_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
fi
cmake --build "$build" -j2 --target ember ember-bench-net-pps guest_net_pps_guest >&2
ember=$build/monitor/ember
[ -x "$ember" ] || ember=$build/cmd/ember
tool=$build/benches/ember-bench-net-pps
guest=$build/benches/net_pps_guest

tag=$$
ns_g=embpps-g-$tag ns_a=embpps-a-$tag ns_b=embpps-b-$tag
tap=eptap$tag
work=$(mktemp -d /tmp/ember-net-pps.XXXXXX)
ember_pid= server_pid=
cleanup() {
    [ -n "$ember_pid" ] && kill "$ember_pid" 2>/dev/null || true
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    for ns in $ns_g $ns_a $ns_b; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The guest behind a tap.
ip netns add "$ns_g"
ip -n "$ns_g" link set lo up
ip -n "$ns_g" tuntap add dev "$tap" mode tap
ip -n "$ns_g" addr add 10.78.0.1/24 dev "$tap"
ip -n "$ns_g" link set "$tap" up
ip netns exec "$ns_g" "$ember" run --net "$tap,mac=06:00:0a:4e:00:02" "$guest" 10.78.0.2 \
    >"$work/guest.out" 2>"$work/guest.err" &
ember_pid=$!
for _ in $(seq 1 500); do
    grep -q "net-echo: up" "$work/guest.out" 2>/dev/null && break
    sleep 0.01
done
grep -q "net-echo: up" "$work/guest.out" || { cat "$work/guest.err" >&2; exit 1; }

# Two namespaces over veth, the same tool as the peer.
ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add "va$tag" netns "$ns_a" type veth peer name "vb$tag" netns "$ns_b"
ip -n "$ns_a" addr add 10.79.0.1/24 dev "va$tag"
ip -n "$ns_b" addr add 10.79.0.2/24 dev "vb$tag"
ip -n "$ns_a" link set "va$tag" up
ip -n "$ns_b" link set "vb$tag" up
ip netns exec "$ns_b" "$tool" server 10.79.0.2 &
server_pid=$!
sleep 0.2

run() { # NS LOCAL PEER MODE FILE
    for _ in $(seq 1 "$runs"); do
        if [ "$4" = flood ]; then
            nice -n 10 ip netns exec "$1" "$tool" flood "$2" "$3" "$packets"
        else
            nice -n 10 ip netns exec "$1" "$tool" echo "$2" "$3" "$packets" "$window"
        fi
    done >"$5"
}
run "$ns_g" 10.78.0.1 10.78.0.2 flood "$work/ember-flood"
run "$ns_g" 10.78.0.1 10.78.0.2 echo "$work/ember-echo"
run "$ns_a" 10.79.0.1 10.79.0.2 flood "$work/veth-flood"
run "$ns_a" 10.79.0.1 10.79.0.2 echo "$work/veth-echo"

mkdir -p "$root/benches/results"
out=$root/benches/results/net-pps-$(date +%Y%m%d-%H%M%S).json
python3 - "$work" "$packets" "$window" "$runs" >"$out" <<'PY'
import json, statistics, sys
work, packets, window, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
res = {"benchmark": "net_pps", "packets": packets, "window": window, "runs": runs}
for peer in ("ember", "veth"):
    for mode in ("flood", "echo"):
        rows = [json.loads(l) for l in open(f"{work}/{peer}-{mode}") if l.strip()]
        res[f"{peer}_{mode}"] = {"pps_median": statistics.median(r["pps"] for r in rows),
                                 "lost_total": sum(r["lost"] for r in rows),
                                 "samples_pps": [r["pps"] for r in rows]}
for mode in ("flood", "echo"):
    v = res[f"veth_{mode}"]["pps_median"]
    res[f"ratio_{mode}"] = round(res[f"ember_{mode}"]["pps_median"] / v, 3) if v else None
print(json.dumps(res, indent=1))
PY
cat "$out"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("net_pps: guest flood %.0f pps (veth %.0f, ratio %s), echo W=%d %.0f pps (veth %.0f, ratio %s)" % (r["ember_flood"]["pps_median"], r["veth_flood"]["pps_median"], r["ratio_flood"], r["window"], r["ember_echo"]["pps_median"], r["veth_echo"]["pps_median"], r["ratio_echo"]))' "$out" >&2
