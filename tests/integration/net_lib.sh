# net_lib.sh: what the network suites share, sourced after they set NS, TAP
# and HOST and define skip(): a network namespace with a tap whose host side
# is HOST/24 (net_ns_up), in_ns to run in it, and the PASS/FAIL counters.
in_ns() { ip netns exec "$NS" "$@"; }

net_ns_up() {
    ip netns add "$NS" || skip "cannot create a network namespace"
    in_ns ip link set lo up
    in_ns ip tuntap add dev "$TAP" mode tap || skip "cannot create a tap"
    in_ns ip addr add "$HOST/24" dev "$TAP"
    in_ns ip link set "$TAP" up
}

# Ends every process still in the namespace, then deletes it: a server
# started with `in_ns ... &` is a child of the subshell that $! names, so
# killing $! alone would leave it running after the suite.
net_ns_down() {
    local pids i
    pids=$(ip netns pids "$NS" 2>/dev/null)
    [ -n "$pids" ] && kill $pids 2>/dev/null
    for i in 1 2 3 4 5 6 7 8 9 10; do
        [ -z "$(ip netns pids "$NS" 2>/dev/null)" ] && break
        sleep 0.1
    done
    pids=$(ip netns pids "$NS" 2>/dev/null)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    ip netns del "$NS" 2>/dev/null
}

PASS=0
FAIL=0
ok() {
    echo "PASS: $1"
    PASS=$((PASS + 1))
}
bad() {
    echo "FAIL: $1" >&2
    FAIL=$((FAIL + 1))
}
