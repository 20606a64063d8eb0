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
