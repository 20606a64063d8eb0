#!/bin/bash
# rootfs_guest.sh ROOTFS EMBER FS_WALK FS_POSIX: images booted in ember.
#  - round trip: a tree -> an EROFS image -> fs_walk in the guest prints each
#    path, type, size and SHA-256 -> equal to the same listing on the host;
#  - fs_posix: the path system calls' rules and a SQLite-like program with its
#    database and journal in /tmp and its schema in the root;
#  - a bad image on the root drive: a message, and "/" is empty.
# Skipped (77) without /dev/kvm.
rootfs=$1 ember=$2 walk=$3 posix=$4
. "$(dirname "$0")/lib.sh"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIPPED: no /dev/kvm"; exit 77; }

make_tree "$work/src"
"$rootfs" build --from "$work/src" -o "$work/img" --quiet || fail "build"
timeout 60 "$ember" run --drive "$work/img,ro,id=rootfs,root" "$walk" >"$work/guest.out" 2>&1 ||
    fail "fs_walk exited $?: $(tail -3 "$work/guest.out")"
grep -v '^fs_walk: ' "$work/guest.out" | LC_ALL=C sort >"$work/guest.list"
host_listing "$work/src" >"$work/host.list"
if cmp -s "$work/guest.list" "$work/host.list"; then
    ok "round trip: $(wc -l <"$work/host.list") entries, the guest's listing equals the host's"
else
    fail "round trip differs:"
    diff "$work/host.list" "$work/guest.list" | head -20 >&2
fi

timeout 60 "$ember" run --drive "$work/img,ro,id=rootfs" --root rootfs "$posix" >"$work/posix.out" 2>&1
rc=$?
if [ $rc = 0 ] && grep -q 'fs_posix: [0-9]* checks ok' "$work/posix.out"; then
    ok "$(grep 'checks ok' "$work/posix.out")"
else
    fail "fs_posix exited $rc: $(tail -3 "$work/posix.out")"
fi

# A drive that is not EROFS: the guest says so and sees an empty root.
head -c 1048576 /dev/zero >"$work/zero.img"
timeout 60 "$ember" run --drive "$work/zero.img,ro,root" "$walk" >"$work/bad.out" 2>&1
if grep -q 'ember: root drive: not a usable EROFS image: no EROFS magic at byte 1024' "$work/bad.out" &&
    grep -q 'fs_walk: 0 entries' "$work/bad.out"; then
    ok "a drive without EROFS: message, empty root"
else
    fail "bad root image: $(cat "$work/bad.out")"
fi
# A corrupted image (the superblock checksum no longer matches).
cp "$work/img" "$work/corrupt.img"
printf '\377' | dd of="$work/corrupt.img" bs=1 seek=1060 conv=notrunc status=none
timeout 60 "$ember" run --drive "$work/corrupt.img,ro,root" "$walk" >"$work/c.out" 2>&1
grep -q 'superblock checksum mismatch' "$work/c.out" && ok "corrupt superblock refused" ||
    fail "corrupt image: $(cat "$work/c.out")"
# The CLI: --root names a drive that exists.
"$ember" run --drive "$work/img,ro,id=a" --root b "$walk" >"$work/cli.out" 2>&1
grep -q -- '--root: no drive with id "b"' "$work/cli.out" && ok "--root checks the id" ||
    fail "--root: $(cat "$work/cli.out")"
[ $fails = 0 ] || exit 1
