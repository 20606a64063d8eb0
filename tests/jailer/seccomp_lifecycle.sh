#!/bin/bash
# seccomp_lifecycle.sh: real VM lifecycles under `strace -f`, with ember's
# filters on. For every thread that installed a filter, each system call it
# made afterwards must be in that filter's list (seccomp_probe list ROLE):
# the lists must hold everything a boot really needs, so no false kill. The
# runs must also end as they do without filters (arguments are checked by
# the filters themselves: a call with a forbidden argument would end in 148).
# Scenarios: hello (plain, --timings, arguments), sleep, faults, abort, OOM,
# virtio-blk (Sync, io_uring, --timings), vsock echo through `ember invoke`.
# Prints, per role, the calls seen and the allowed calls never seen.
#
# usage: seccomp_lifecycle.sh EMBER SECCOMP_PROBE HELLO GUEST_DIR [--sanitize]
set -u
EMBER=$1 PROBE=$2 HELLO=$3 GUESTS=$4
if [ "${5:-}" = --sanitize ]; then
    echo "SKIPPED: sanitizer builds install no seccomp filter"; exit 77
fi
work=$(mktemp -d /tmp/ember-seccomp-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0

if ! command -v strace >/dev/null; then
    echo "SKIPPED: strace is not installed"; exit 77
fi
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "SKIPPED: /dev/kvm is not usable"; exit 77
fi
for role in vcpu vcpu_timings main; do
    "$PROBE" list $role | sort > "$work/allowed-$role"
done
if [ ! -s "$work/allowed-vcpu" ]; then
    echo "FAIL: no allowed list from $PROBE"; exit 1
fi
truncate -s 1M "$work/disk.img"

# name, expected status, ember arguments
scenarios=(
    "hello|0|run $HELLO"
    "hello-timings|0|run --timings $HELLO"
    "hello-args|0|run --mem 16 $HELLO a b"
    "time|0|run $GUESTS/time_mono"
    "null-deref|255|run $GUESTS/null_deref"
    "div-zero|255|run $GUESTS/div_zero"
    "triple-fault|160|run $GUESTS/triple_fault"
    "abort|134|run $GUESTS/abort"
    "oom|0|run --mem 8 $GUESTS/oom"
    "virtio-sync|0|run --drive $work/disk.img,id=victim $GUESTS/virtio_hostile"
    "virtio-io_uring|0|run --drive $work/disk.img,async $GUESTS/virtio_hostile"
    "virtio-timings|0|run --timings --drive $work/disk.img $GUESTS/virtio_hostile"
)

# vsock: the guest echoes what `ember invoke` sends through the Unix socket.
vsock_run() {
    "$EMBER" invoke --uds "$work/v.sock" --port 5000 --wait --timeout 10000 \
        <<<"ping" >"$work/invoke.out" 2>&1 &
    local inv=$!
    strace -f -qq -o "$work/$1.trace" "$EMBER" run --vsock "$work/v.sock" \
        "$GUESTS/vsock_echo_raw" 5000 1 >"$work/$1.out" 2>"$work/$1.err"
    local st=$?
    if ! wait $inv || ! grep -q ping "$work/invoke.out"; then
        echo "FAIL: $1: ember invoke: $(cat "$work/invoke.out")"
        fail=1
    fi
    return $st
}
scenarios+=("vsock|0|vsock_run")

# An API load into the VM built ahead: its vCPU thread (monitor/vm_ahead.h)
# installed its filter before the load, on descriptor numbers the load then
# filled; the guest answers through vsock, then SIGTERM ends the process.
api_run() {
    local snap="$work/snap" api="$work/api.sock" pid st
    "$EMBER" run --mem 16 --snapshot-on-ready "$snap" --vsock "$work/orig.sock" \
        "$GUESTS/snap_test" serve >/dev/null 2>"$work/$1.snap.err" || {
        echo "FAIL: $1: no snapshot: $(cat "$work/$1.snap.err")"; fail=1; return 1; }
    strace -f -qq -o "$work/$1.trace" "$EMBER" --api-sock "$api" --prebuild-mem 16 \
        >"$work/$1.out" 2>"$work/$1.err" &
    pid=$!
    for _ in $(seq 500); do [ -S "$api" ] && break; sleep 0.01; done
    curl -s --unix-socket "$api" -X PUT http://localhost/snapshot/load -d \
        "{\"snapshot_path\": \"$snap/state\", \"mem_backend\": {\"backend_type\": \"File\",
          \"backend_path\": \"$snap/mem\"}, \"vsock_override\": {\"uds_path\": \"$work/v.sock\"},
          \"resume_vm\": true}" >"$work/$1.load" 2>&1
    "$EMBER" invoke --uds "$work/v.sock" --wait --timeout 10000 <<<"ping" \
        >"$work/invoke.out" 2>&1
    if ! grep -q ping "$work/invoke.out"; then
        echo "FAIL: $1: ember invoke: $(cat "$work/invoke.out") $(cat "$work/$1.load")"
        fail=1
    fi
    if ! grep -q "by the vCPU thread built ahead" "$work/$1.err"; then
        echo "FAIL: $1: the vCPU thread built ahead did not run the VM"
        fail=1
    fi
    # strace's child is ember
    kill -TERM "$(cat /proc/$pid/task/$pid/children)"
    wait $pid
    st=$?
    # SIGTERM ends the API process with 128 + 15, as Firecracker's.
    [ $st = 143 ] && return 0
    return $st
}
if command -v curl >/dev/null; then
    scenarios+=("api-load|0|api_run")
else
    echo "note: curl is not installed: no API load scenario"
fi

for s in "${scenarios[@]}"; do
    IFS='|' read -r name want args <<<"$s"
    if [ "$args" = vsock_run ] || [ "$args" = api_run ]; then
        "$args" "$name"
    else
        # shellcheck disable=SC2086
        strace -f -qq -o "$work/$name.trace" "$EMBER" $args >"$work/$name.out" 2>"$work/$name.err"
    fi
    got=$?
    if [ "$got" != "$want" ]; then
        echo "FAIL: $name: status $got, expected $want: $(tail -2 "$work/$name.err")"
        fail=1
    fi
    timings=0
    case "$args" in *--timings*) timings=1 ;; esac
    # pid -> role (vcpu if it runs KVM_RUN after its filter), calls after it.
    awk -v timings=$timings -v out="$work/$name" '
        { pid = $1; name = "" }
        $2 ~ /^[a-z_0-9]+\(/ { name = substr($2, 1, index($2, "(") - 1) }
        $2 == "<..." { name = $3 }
        name == "" { next }
        filtered[pid] { used[pid, name] = 1; names[name] = 1
                        if (name == "ioctl" && /KVM_RUN/) vcpu[pid] = 1 }
        # strace -f splits a call that another thread interrupts:
        # "seccomp(... <unfinished ...>" then "<... seccomp resumed>) = 0".
        name == "seccomp" && /SECCOMP_SET_MODE_FILTER/ { pending[pid] = 1 }
        name == "seccomp" && pending[pid] && / = 0$/ { filtered[pid] = 1; pending[pid] = 0 }
        END {
            for (k in used) {
                split(k, p, SUBSEP)
                role = vcpu[p[1]] ? (timings ? "vcpu_timings" : "vcpu") : "main"
                print p[2] > (out "." role ".used")
            }
            n = 0; for (pid in filtered) n++
            print n > (out ".threads")
        }' "$work/$name.trace"
    if [ "$(cat "$work/$name.threads")" = 0 ]; then
        echo "FAIL: $name: no thread installed a filter"
        fail=1
    fi
    for role in vcpu vcpu_timings main; do
        [ -f "$work/$name.$role.used" ] || continue
        sort -u "$work/$name.$role.used" -o "$work/$name.$role.used"
        cat "$work/$name.$role.used" >> "$work/seen-$role"
        missing=$(comm -23 "$work/$name.$role.used" "$work/allowed-$role")
        if [ -n "$missing" ]; then
            echo "FAIL: $name: the $role thread called what its filter lacks:" $missing
            fail=1
        fi
    done
done

for role in vcpu vcpu_timings main; do
    [ -f "$work/seen-$role" ] || continue
    sort -u "$work/seen-$role" -o "$work/seen-$role"
    echo "$role: seen:" $(cat "$work/seen-$role")
    echo "$role: allowed, not seen in these runs:" $(comm -13 "$work/seen-$role" "$work/allowed-$role")
done
[ $fail = 0 ] && echo "PASS: every call made after a filter went in is in its list"
exit $fail
