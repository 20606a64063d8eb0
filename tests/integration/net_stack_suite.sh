#!/bin/bash
# net_stack_suite.sh: the guest SDK's TCP/IP stack against the host's own
# tools, over a real tap in a network namespace this script creates (and
# deletes): ping, curl to the http-server example (keep-alive and not,
# bodies up to 16 MiB compared by SHA-256, uploads echoed back), the
# http-client example downloading from python3's http.server, UDP echo
# from python3, and the same transfers again under tc netem loss, delay
# and reordering.
#
# usage: net_stack_suite.sh EMBER HTTP_SERVER HTTP_CLIENT UDP_ECHO
# Exit 77 (skipped, said loudly) without root, /dev/net/tun, KVM, ip, curl
# or python3.
set -u
EMBER=$1 SERVER=$2 CLIENT=$3 UDPECHO=$4
skip() {
    echo "SKIPPED: net stack suite: $*" >&2
    exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, taps)"
[ -c /dev/net/tun ] || skip "needs /dev/net/tun"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "needs /dev/kvm"
for t in ip curl python3 sha256sum; do
    command -v $t >/dev/null || skip "needs $t"
done

# Why netem cannot be had here: a kernel built without it and without
# modules (our development machines) cannot load sch_netem.
netem_why() {
    if [ -r /proc/config.gz ] && zcat /proc/config.gz | grep -q '^# CONFIG_NET_SCH_NETEM is not set'; then
        if zcat /proc/config.gz | grep -q '^# CONFIG_MODULES is not set'; then
            echo "the kernel has no CONFIG_NET_SCH_NETEM and no module support"
        else
            echo "the kernel has no CONFIG_NET_SCH_NETEM"
        fi
    else
        echo "sch_netem not loaded; modprobe sch_netem"
    fi
}

NS=ember-ns-$$
TAP=ens$$
HOST=10.78.0.1
GUEST=10.78.0.2
IPARG="ip=$GUEST::$HOST:255.255.255.0::eth0:off"
TMP=$(mktemp -d /tmp/ember-netstack-$$.XXXX)
VM=

cleanup() {
    [ -n "$VM" ] && kill "$VM" 2>/dev/null
    [ -n "${HTTPD:-}" ] && kill "$HTTPD" 2>/dev/null
    wait 2>/dev/null
    net_ns_down 2>/dev/null || ip netns del "$NS" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

. "$(dirname "$0")/net_lib.sh"
net_ns_up
check() { # name, command...
    local n=$1
    shift
    if "$@"; then ok "$n"; else bad "$n"; fi
}

# A guest in the background; waits (capped) for a line of its output.
start_vm() { # token guest args...
    local token=$1
    shift
    in_ns "$EMBER" run --net "$TAP" "$@" >"$TMP/vm.out" 2>"$TMP/vm.err" &
    VM=$!
    for _ in $(seq 200); do
        grep -q "$token" "$TMP/vm.out" 2>/dev/null && return 0
        kill -0 $VM 2>/dev/null || break
        sleep 0.05
    done
    echo "guest did not start:" >&2
    cat "$TMP/vm.out" "$TMP/vm.err" >&2
    return 1
}
stop_vm() {
    wait "$VM"
    local st=$?
    VM=
    [ $st = 0 ] || { echo "  exit status $st" >&2; tail -n 5 "$TMP/vm.out" "$TMP/vm.err" >&2; }
    return $st
}

pattern_sha() { # the http-server's /bytes/N body: byte i = i % 251
    python3 -c "
import hashlib,sys
n=int(sys.argv[1]); b=bytes(i%251 for i in range(251))*(n//251+1)
print(hashlib.sha256(b[:n]).hexdigest())" "$1"
}
url() { echo "http://$GUEST:8080$1"; }

download_ok() { # size
    local want got
    want=$(pattern_sha "$1")
    got=$(in_ns curl -sS -m 60 "$(url /bytes/$1)" | sha256sum | cut -d' ' -f1)
    [ "$want" = "$got" ] || { echo "  /bytes/$1: sha256 $got, want $want" >&2; return 1; }
}
upload_ok() { # size
    head -c "$1" /dev/urandom >"$TMP/up.bin"
    local want got
    want=$(sha256sum <"$TMP/up.bin" | cut -d' ' -f1)
    got=$(in_ns curl -sS -m 60 --data-binary @"$TMP/up.bin" \
        -H 'Content-Type: application/octet-stream' "$(url /echo)" | sha256sum | cut -d' ' -f1)
    [ "$want" = "$got" ] || { echo "  echo of $1 bytes: sha256 $got, want $want" >&2; return 1; }
}
keepalive_ok() { # n requests over one connection
    local args=() i
    for i in $(seq "$1"); do args+=("$(url /)"); done
    local out
    out=$(in_ns curl -sS -m 60 "${args[@]}" 2>&1)
    [ "$(grep -c 'hello from ember' <<<"$out")" = "$1" ]
}
close_ok() { # n requests, each its own connection
    local i
    for i in $(seq "$1"); do
        [ "$(in_ns curl -sS -m 10 -H 'Connection: close' "$(url /)")" = "hello from ember" ] || return 1
    done
}
http10_ok() {
    [ "$(in_ns curl -sS -m 10 --http1.0 "$(url /)")" = "hello from ember" ]
}

# ---- the server ----------------------------------------------------------------
if start_vm "listening on port 8080" "$SERVER" "$IPARG"; then
    check "ping the guest" in_ns ping -c 5 -i 0.2 -W 2 -q $GUEST
    check "ping with 1400-byte payloads" in_ns ping -c 3 -i 0.2 -W 2 -q -s 1400 $GUEST
    check "100 requests over one keep-alive connection" keepalive_ok 100
    check "30 requests with Connection: close" close_ok 30
    check "HTTP/1.0 request" http10_ok
    for n in 0 1 1460 65536 1048577 16777216; do
        check "download of $n bytes, compared by hash" download_ok $n
    done
    for n in 1 100000 16777216; do
        check "upload of $n bytes echoed back" upload_ok $n
    done
    check "a 404" [ "$(in_ns curl -s -o /dev/null -w '%{http_code}' "$(url /nope)")" = 404 ]

    # Loss, delay and reordering on the host side of the tap (sch_netem may
    # be a module not yet loaded).
    command -v modprobe >/dev/null && modprobe -q sch_netem 2>/dev/null
    if in_ns tc qdisc add dev "$TAP" root netem delay 2ms 1ms loss 3% reorder 10% 50% 2>/dev/null
    then
        check "download of 4 MiB under netem loss/delay/reorder" download_ok 4194304
        check "upload of 4 MiB under netem loss/delay/reorder" upload_ok 4194304
        check "20 keep-alive requests under netem" keepalive_ok 20
        in_ns tc qdisc del dev "$TAP" root
    else
        echo "SKIPPED: netem (tc qdisc netem unavailable: $(netem_why))" >&2
    fi
    in_ns curl -s -m 5 "$(url /stats)" | sed 's/^/  guest: /'
    in_ns curl -s -m 5 "$(url /quit)" >/dev/null
    check "server guest exits 0" stop_vm
else
    bad "http-server guest starts"
    kill "$VM" 2>/dev/null
    VM=
fi

# ---- the client: downloads from a host server ---------------------------------------
mkdir -p "$TMP/www"
head -c 8388608 /dev/urandom >"$TMP/www/file.bin"
printf 'small\n' >"$TMP/www/small.txt"
(cd "$TMP/www" && exec ip netns exec "$NS" python3 -m http.server 8000 --bind $HOST \
    >"$TMP/httpd.log" 2>&1) &
HTTPD=$!
for _ in $(seq 100); do
    in_ns curl -s -o /dev/null "http://$HOST:8000/small.txt" && break
    sleep 0.05
done
fnv() {
    python3 -c "
import sys
h=0xcbf29ce484222325
for b in open(sys.argv[1],'rb').read():
    h=((h^b)*0x100000001b3)&0xffffffffffffffff
print('%016x'%h)" "$1"
}
client_ok() { # file [count]
    local want
    want="bytes $(stat -c %s "$TMP/www/$1") fnv1a64 $(fnv "$TMP/www/$1")"
    in_ns timeout 120 "$EMBER" run --net "$TAP" "$CLIENT" "$IPARG" \
        "http://$HOST:8000/$1" >"$TMP/client.out" 2>"$TMP/client.err" || {
        cat "$TMP/client.out" "$TMP/client.err" >&2
        return 1
    }
    grep -q "200" "$TMP/client.out" && grep -q "$want" "$TMP/client.out" || {
        echo "  client printed: $(cat "$TMP/client.out"); want $want" >&2
        return 1
    }
}
check "guest client downloads a small file from the host" client_ok small.txt
check "guest client downloads 8 MiB from the host, compared by hash" client_ok file.bin
if in_ns tc qdisc add dev "$TAP" root netem delay 1ms loss 2% reorder 10% 50% 2>/dev/null; then
    check "guest client downloads 8 MiB under netem" client_ok file.bin
    in_ns tc qdisc del dev "$TAP" root
else
    echo "SKIPPED: netem for the client (tc qdisc netem unavailable: $(netem_why))" >&2
fi
kill $HTTPD 2>/dev/null
wait $HTTPD 2>/dev/null
HTTPD=

# ---- UDP echo ------------------------------------------------------------------------------
udp_ok() {
    in_ns python3 - "$GUEST" <<'EOF'
import socket, sys, os
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for i in range(200):
    m = os.urandom(1 + i * 7 % 1400)
    for attempt in range(3):
        s.sendto(m, (sys.argv[1], 7))
        try:
            r, _ = s.recvfrom(2048)
            break
        except socket.timeout:
            r = None
    if r != m:
        print("datagram", i, "came back wrong", file=sys.stderr)
        sys.exit(1)
s.sendto(b"quit", (sys.argv[1], 7))
EOF
}
if start_vm "udp-echo ready" "$UDPECHO" "$IPARG"; then
    check "200 UDP datagrams echoed" udp_ok
    check "UDP echo guest exits 0" stop_vm
else
    bad "UDP echo guest starts"
    kill "$VM" 2>/dev/null
    VM=
fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
