#!/bin/bash
# net_dns_suite.sh: the guest SDK's DHCP client and resolver against a real
# server: dnsmasq (DHCP and DNS) on the host side of a tap in a network
# namespace this script creates (and deletes), and a TCP server there that
# the guest reaches by name (getaddrinfo through the /etc/resolv.conf the
# SDK serves). Cases: no ip= (DHCP), ip=dhcp with a hostname, a short name
# through the lease's search domain, a static ip=
# with a DNS field, a lease that renews while the guest runs, a root image
# with its own /etc/resolv.conf (it wins) and one with an /etc but none
# (the SDK's), and a VM without a network device (no /etc/resolv.conf).
#
# usage: net_dns_suite.sh EMBER NET_DNS_GUEST [EMBER_ROOTFS]
# Exit 77 (skipped, said loudly) without root, /dev/net/tun, KVM, ip,
# dnsmasq or python3.
set -u
EMBER=$1 GUEST=$2 ROOTFS=${3:-}
skip() {
    echo "SKIPPED: net DNS/DHCP suite: $*" >&2
    exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, taps)"
[ -c /dev/net/tun ] || skip "needs /dev/net/tun"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "needs /dev/kvm"
for t in ip python3; do
    command -v $t >/dev/null || skip "needs $t"
done
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ -x "$DNSMASQ" ] || skip "needs dnsmasq (./install-deps.sh: dnsmasq-base)"

NS=ember-dns-$$
TAP=edns$$
HOST=10.79.0.1
NAME=svc.ember.test
TMP=$(mktemp -d /tmp/ember-netdns-$$.XXXX)

cleanup() {
    [ -n "${DNSMASQ_PID:-}" ] && kill "$DNSMASQ_PID" 2>/dev/null
    [ -n "${TCPD:-}" ] && kill "$TCPD" 2>/dev/null
    wait 2>/dev/null
    net_ns_down 2>/dev/null || ip netns del "$NS" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

. "$(dirname "$0")/net_lib.sh"
net_ns_up

# dnsmasq: leases of 2 minutes (its shortest) from .50-.99, this host as
# router and DNS server, one name. No system files, no upstream servers.
in_ns "$DNSMASQ" --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --interface="$TAP" --bind-interfaces --listen-address=$HOST \
    --dhcp-range=10.79.0.50,10.79.0.99,255.255.255.0,2m --dhcp-authoritative \
    --dhcp-option=option:router,$HOST --dhcp-option=option:dns-server,$HOST --domain=ember.test \
    --host-record=$NAME,$HOST --dhcp-leasefile="$TMP/leases" --pid-file="$TMP/dnsmasq.pid" \
    --log-dhcp --log-queries --log-facility="$TMP/dnsmasq.log" 2>"$TMP/dnsmasq.err" &
DNSMASQ_PID=$!
# A TCP server the guest reaches by name: answers "pong <line>".
in_ns python3 -c '
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7070)); s.listen(8)
def serve(c):
    f = c.makefile("rb"); line = f.readline().decode().strip()
    c.sendall(("pong " + line + "\n").encode()); c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
' $HOST >"$TMP/tcpd.log" 2>&1 &
TCPD=$!
for _ in $(seq 100); do
    in_ns python3 -c "
import socket,sys
socket.create_connection(('$HOST',7070),timeout=1).close()" 2>/dev/null && break
    sleep 0.05
done
kill -0 $DNSMASQ_PID 2>/dev/null || { cat "$TMP/dnsmasq.err" >&2; skip "dnsmasq did not start"; }

run_guest() { # out-file mac guest-args... (ember's own options in $EMBER_OPTS)
    local out=$1 mac=$2
    shift 2
    # shellcheck disable=SC2086
    in_ns timeout 120 "$EMBER" run --net "$TAP,mac=$mac" ${EMBER_OPTS:-} "$GUEST" "$@" \
        >"$out" 2>"$out.err"
}
has() { # file pattern what
    grep -qE "$2" "$1" || { echo "  $3: no line matching '$2' in:" >&2; sed 's/^/    /' "$1" "$1.err" >&2; return 1; }
}
check() { # name command...
    local n=$1
    shift
    if "$@"; then ok "$n"; else bad "$n"; fi
}

# ---- no ip=: DHCP ----------------------------------------------------------------
dhcp_ok() {
    local o=$TMP/dhcp.out
    run_guest "$o" 06:00:0a:4f:00:01 $NAME 7070 || { echo "  guest failed: $?" >&2; cat "$o" "$o.err" >&2; return 1; }
    has "$o" "^addr 10\.79\.0\.(5[0-9]|[6-9][0-9]) mask 255\.255\.255\.0 gw $HOST dns $HOST 0\.0\.0\.0$" "leased addresses" &&
        has "$o" "^resolv.conf: nameserver $HOST$" "resolv.conf from the lease" &&
        has "$o" "^resolv.conf: search ember.test$" "the lease's search domain" &&
        has "$o" "^resolved $NAME $HOST$" "getaddrinfo by name" &&
        has "$o" "^reply pong ping$" "TCP by name" &&
        grep -qi "06:00:0a:4f:00:01" "$TMP/leases" ||
        { echo "  dnsmasq has no lease for the guest:" >&2; cat "$TMP/leases" >&2; return 1; }
}
check "no ip=: DHCP lease, resolv.conf, getaddrinfo and connect by name" dhcp_ok

# ---- ip=dhcp with a hostname (Linux's field 5) ------------------------------------
hostname_ok() {
    local o=$TMP/host.out
    run_guest "$o" 06:00:0a:4f:00:02 "ip=::::fn-dhcp-$$:eth0:dhcp" $NAME 7070 || return 1
    has "$o" "^reply pong ping$" "TCP by name" &&
        grep -q "fn-dhcp-$$" "$TMP/leases" ||
        { echo "  dnsmasq's leases lack the hostname:" >&2; cat "$TMP/leases" >&2; return 1; }
}
check "ip=dhcp with a hostname: the server records it" hostname_ok

# ---- a short name through the lease's search domain (option 15) ------------------
search_ok() {
    local o=$TMP/search.out
    run_guest "$o" 06:00:0a:4f:00:08 svc 7070 || { cat "$o" "$o.err" >&2; return 1; }
    has "$o" "^resolved svc $HOST$" "getaddrinfo of a short name" &&
        has "$o" "^reply pong ping$" "TCP by the short name"
}
check "a short name resolves through the lease's search domain" search_ok

# ---- a path lookup in /etc does not bring the network up --------------------------
probe_ok() {
    local o=$TMP/probe.out
    run_guest "$o" 06:00:0a:4f:00:07 probe || return 1
    has "$o" "^probe: /etc/localtime No such file or directory, /etc a directory, entries: \. \.\. resolv\.conf$" \
        "probe" || return 1
    ! grep -qi "DHCPDISCOVER.*06:00:0a:4f:00:07" "$TMP/dnsmasq.log" ||
        { echo "  a lookup of /etc/localtime started DHCP" >&2; return 1; }
}
check "stat of /etc/localtime and a listing of /etc leave the network down" probe_ok

# ---- static ip= with DNS0 ---------------------------------------------------------------
static_ok() {
    local o=$TMP/static.out
    run_guest "$o" 06:00:0a:4f:00:03 "ip=10.79.0.7::$HOST:255.255.255.0::eth0:off:$HOST" \
        $NAME 7070 || return 1
    has "$o" "^addr 10\.79\.0\.7 mask 255\.255\.255\.0 gw $HOST dns $HOST" "static addresses" &&
        has "$o" "^resolv.conf: nameserver $HOST$" "resolv.conf from ip=" &&
        has "$o" "^reply pong ping$" "TCP by name" &&
        ! grep -qi "06:00:0a:4f:00:03" "$TMP/leases"
}
check "static ip= with DNS0: resolv.conf from ip=, no DHCP" static_ok

# ---- a lease that renews ---------------------------------------------------------------
# 2-minute lease: T1 at 60 s. The guest sleeps 75 s and must still hold
# its address; dnsmasq logs a second DHCPACK to it (the renewal).
renew_ok() {
    local o=$TMP/renew.out mac=06:00:0a:4f:00:04
    run_guest "$o" $mac $NAME 7070 75 || return 1
    has "$o" "^after 75 s: addr 10\.79\.0\." "address kept" || return 1
    local acks
    acks=$(grep -ci "DHCPACK.*$mac" "$TMP/dnsmasq.log")
    [ "$acks" -ge 2 ] || { echo "  $acks DHCPACKs to $mac in dnsmasq's log, want 2 (bind, renew)" >&2; return 1; }
    grep -i "DHCPREQUEST.*$mac" "$TMP/dnsmasq.log" | tail -n 1 | grep -q "10\.79\.0\." ||
        { echo "  the renewal did not name the leased address" >&2; return 1; }
}
if [ "${EMBER_NET_DNS_QUICK:-0}" = 1 ]; then
    echo "SKIPPED: lease renewal (EMBER_NET_DNS_QUICK=1)"
else
    check "a 2-minute lease renews at T1 while the guest runs" renew_ok
fi

# ---- a root image: its /etc/resolv.conf wins; without one, the SDK's ----------
# ip= names 10.79.0.254 as DNS0, where nothing answers: only the image's
# file (naming dnsmasq) lets the name resolve.
image_ok() {
    local o=$TMP/image.out
    mkdir -p "$TMP/img1/etc" "$TMP/img2/etc"
    printf 'nameserver %s\noptions timeout:1\n' $HOST >"$TMP/img1/etc/resolv.conf"
    printf 'fn\n' >"$TMP/img2/etc/hostname"
    "$ROOTFS" build --from "$TMP/img1" -o "$TMP/img1.erofs" --quiet &&
        "$ROOTFS" build --from "$TMP/img2" -o "$TMP/img2.erofs" --quiet || return 1
    EMBER_OPTS="--drive $TMP/img1.erofs,ro,root" run_guest "$o" 06:00:0a:4f:00:05 \
        "ip=10.79.0.8::$HOST:255.255.255.0::eth0:off:10.79.0.254" $NAME 7070 ||
        { cat "$o" "$o.err" >&2; return 1; }
    has "$o" "^resolv.conf: nameserver $HOST$" "the image's resolv.conf" &&
        has "$o" "^resolv.conf: options timeout:1$" "the image's resolv.conf" &&
        has "$o" "^reply pong ping$" "TCP by name" || return 1
    o=$TMP/image2.out
    EMBER_OPTS="--drive $TMP/img2.erofs,ro,root" run_guest "$o" 06:00:0a:4f:00:06 \
        "ip=10.79.0.9::$HOST:255.255.255.0::eth0:off:$HOST" $NAME 7070 ||
        { cat "$o" "$o.err" >&2; return 1; }
    has "$o" "^resolv.conf: nameserver $HOST$" "the SDK's resolv.conf in the image's /etc" &&
        has "$o" "^reply pong ping$" "TCP by name" || return 1
    o=$TMP/image3.out
    EMBER_OPTS="--drive $TMP/img2.erofs,ro,root" run_guest "$o" 06:00:0a:4f:00:09 probe || return 1
    has "$o" "^probe: .*/etc a directory, entries: \. \.\. hostname resolv\.conf$" \
        "a listing of the image's /etc with the SDK's resolv.conf"
}
if [ -x "$ROOTFS" ]; then
    check "a root image's /etc/resolv.conf wins; an /etc without one gets the SDK's" image_ok
else
    echo "SKIPPED: root image cases (no ember-rootfs given)"
fi

# ---- no network device ---------------------------------------------------------------
nonet_ok() {
    local o=$TMP/nonet.out
    timeout 60 "$EMBER" run "$GUEST" >"$o" 2>"$o.err" || { cat "$o" "$o.err" >&2; return 1; }
    has "$o" "^no network: ENODEV; /etc/resolv.conf No such file or directory$" "no device"
}
check "no network device: no /etc/resolv.conf" nonet_ok

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
