#!/bin/sh
# run-guest.sh: boot one SDK test guest and check its exit status and output.
#
#   run-guest.sh ember|qemu GUEST STATUS TOKEN [ARGS...]
#
# ember: runs `$EMBER run GUEST ARGS...` and expects exit status STATUS.
# qemu:  boots GUEST through its PVH note in QEMU microvm with KVM; the
#        isa-debug-exit device turns the guest's status s into (s << 1) | 1,
#        and a triple fault (STATUS "shutdown") ends QEMU with 0 (-no-reboot).
# In both cases the output (guest console plus monitor messages) must contain
# TOKEN. Exit 77 (skipped) when the monitor or KVM is not available.
set -u
mode=$1 guest=$2 status=$3 token=$4
shift 4
out=$(mktemp)
trap 'rm -f "$out"' EXIT

case "$mode" in
ember)
    [ -x "${EMBER:-}" ] || exit 77
    timeout 60 "$EMBER" run "$guest" "$@" >"$out" 2>&1
    rc=$?
    want=$status
    ;;
qemu)
    command -v qemu-system-x86_64 >/dev/null 2>&1 || exit 77
    [ -r /dev/kvm ] && [ -w /dev/kvm ] || exit 77
    append=""
    for a in "$@"; do append="$append \"$a\""; done
    timeout 60 qemu-system-x86_64 -M microvm,isa-serial=on,rtc=on -enable-kvm \
        -cpu host,-arch-capabilities -m 128 -nodefaults -no-user-config \
        -nographic -serial stdio -no-reboot \
        -device isa-debug-exit,iobase=0x501,iosize=4 \
        -kernel "$guest" -append "$append" </dev/null >"$out" 2>&1
    rc=$?
    if [ "$status" = shutdown ]; then want=0; else want=$(((status << 1 | 1) & 255)); fi
    ;;
*)
    echo "run-guest.sh: unknown mode $mode" >&2
    exit 2
    ;;
esac

cat "$out"
if [ "$rc" != "$want" ]; then
    echo "run-guest.sh: $guest: exit status $rc, expected $want" >&2
    exit 1
fi
if ! grep -qF -- "$token" "$out"; then
    echo "run-guest.sh: $guest: output lacks \"$token\"" >&2
    exit 1
fi
exit 0
