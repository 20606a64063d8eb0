#!/bin/sh
# run-blk-qemu.sh: the virtio-blk driver of the SDK under QEMU microvm (PVH),
# on QEMU's own virtio-mmio transport (level-triggered interrupt lines that
# the driver acknowledges, GSIs on the second IOAPIC, device discovery at
# microvm's fixed places).
#
#   run-blk-qemu.sh GUEST      (GUEST = tests/guests/blk_data)
#
# Boot 1 fills a 4 MiB drive with waits through hlt and the interrupt only
# ("hlt:fill"), boot 2 reads it back spinning ("verify"), boot 3 checks the
# error paths ("range"). QEMU's virtio-mmio is legacy (version 1) unless
# told otherwise; the SDK drives version 2 (virtio 1.x) only, hence
# force-legacy=false. Exit 77 (skipped) without QEMU or KVM.
set -u
guest=$1
command -v qemu-system-x86_64 >/dev/null 2>&1 || exit 77
[ -r /dev/kvm ] && [ -w /dev/kvm ] || exit 77
img=$(mktemp) out=$(mktemp)
trap 'rm -f "$img" "$out"' EXIT
truncate -s 4M "$img"

boot() { # boot APPEND TOKEN
    timeout 60 qemu-system-x86_64 -M microvm,isa-serial=on,rtc=on -enable-kvm \
        -cpu host,-arch-capabilities -m 128 -nodefaults -no-user-config \
        -nographic -serial stdio -no-reboot \
        -device isa-debug-exit,iobase=0x501,iosize=4 \
        -global virtio-mmio.force-legacy=false \
        -drive file="$img",if=none,id=d0,format=raw,cache=writeback \
        -device virtio-blk-device,drive=d0 \
        -kernel "$guest" -append "$1" </dev/null >"$out" 2>&1
    rc=$?
    cat "$out"
    if [ "$rc" != 1 ]; then # status 0 through isa-debug-exit: (0 << 1) | 1
        echo "run-blk-qemu.sh: \"$1\": exit status $rc, expected 1" >&2
        exit 1
    fi
    if ! grep -qF -- "$2" "$out"; then
        echo "run-blk-qemu.sh: \"$1\": output lacks \"$2\"" >&2
        exit 1
    fi
}

boot "hlt:fill /dev/vda 11" "blk_data: fill ok 4194304"
grep -q "blk_data: hlt waits=[1-9]" "$out" || { echo "run-blk-qemu.sh: no hlt wait" >&2; exit 1; }
boot "verify /dev/vda 11" "blk_data: verify ok 4194304"
boot "range" "blk_data: range ok"
exit 0
