#!/bin/bash
# run-rootfs.sh: the root file system's benchmark (issue 14), all in one run:
#  - build time of one tree (~100 MB in 10,000 files, 100 directories) with
#    ember-rootfs (erofs, ext4), and, on the same tree, mkfs.erofs, mke2fs -d
#    and tar alone: median of ROUNDS runs each, and ember-rootfs / tool ratios;
#  - guest cold start: `ember run` exec -> exit, and the guest's own time to
#    main and to its first file read, for no root drive, a 1-file root and a
#    10,000-file root (the mount must not grow with the number of files);
#  - guest sequential read throughput of a 256 MiB file (1 MiB and 64 KiB reads);
#  - guest stat() of the 10,000 paths, per second.
# JSON to benches/results/rootfs-DATE.json and stdout, a summary to stderr.
#
#   benches/run-rootfs.sh [--rounds N] [--dir DIR]
#
# EMBER_BENCH_BUILD: the build directory (default: build-bench at the root).
# Exit 77 without /dev/kvm.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${EMBER_BENCH_BUILD:-$root/build-bench}
rounds=3 dir=${TMPDIR:-/tmp}
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) echo "usage: run-rootfs.sh [--rounds N] [--dir DIR]" >&2; exit 2 ;;
    esac
done
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "run-rootfs.sh: SKIPPED: no /dev/kvm" >&2; exit 77; }
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DEMBER_TESTS=OFF >&2
fi
cmake --build "$build" -j2 --target ember ember-rootfs guest_fs_guest >&2
ember=$build/monitor/ember rootfs=$build/rootfs-builder/ember-rootfs guest=$build/benches/fs_guest
work=$(mktemp -d "$dir/rootfs-bench.$$.XXXXXX")
trap 'rm -rf "$work"' EXIT

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
time_ms() { # command... -> median ms over $rounds runs
    local i t0 t1
    for i in $(seq "$rounds"); do
        t0=$(now)
        "$@" >/dev/null 2>&1 || { echo "run-rootfs.sh: failed: $*" >&2; exit 1; }
        t1=$(now)
        echo $(((t1 - t0) / 1000))
    done | median | awk '{printf "%.1f", $1 / 1000}'
}

echo "run-rootfs.sh: making the tree" >&2
python3 - "$work/tree" <<'PY'
import os, random, sys
r = random.Random(14)
root = sys.argv[1]
total = 0
os.makedirs(root + "/etc")
with open(root + "/etc/app.json", "w") as f:
    f.write('{"name": "bench"}\n')
paths = []
for d in range(100):
    dp = f"{root}/d{d:03}"
    os.makedirs(dp)
    for i in range(100):
        n = r.randint(0, 20000)
        p = f"{dp}/file-{i:04}.dat"
        with open(p, "wb") as f:
            f.write(r.randbytes(n))
        total += n
        paths.append(p[len(root):])
with open(root + "/etc/paths.txt", "w") as f:
    f.write("\n".join(paths) + "\n")
print(f"tree: {len(paths)} files, {total / 1e6:.1f} MB", file=sys.stderr)
PY
bytes=$(du -sb "$work/tree" | cut -f1)

echo "run-rootfs.sh: build times" >&2
t_rootfs_erofs=$(time_ms "$rootfs" build --from "$work/tree" -o "$work/a.erofs" --quiet)
t_mkfs_erofs=$(time_ms mkfs.erofs --quiet -T0 -x-1 --all-root "$work/b.erofs" "$work/tree")
t_rootfs_ext4=$(time_ms "$rootfs" build --from "$work/tree" -o "$work/a.ext4" --format ext4 --quiet)
ext4_size=$(stat -c %s "$work/a.ext4")
t_mke2fs=$(time_ms mke2fs -q -F -t ext4 -b 4096 -d "$work/tree" "$work/b.ext4" "$((ext4_size / 1024))k")
t_tar=$(time_ms tar -C "$work/tree" -cf "$work/t.tar" .)
erofs_size=$(stat -c %s "$work/a.erofs")

echo "run-rootfs.sh: cold start" >&2
mkdir -p "$work/small/etc"
cp "$work/tree/etc/app.json" "$work/small/etc/"
"$rootfs" build --from "$work/small" -o "$work/small.erofs" --quiet
cold() { # label, guest args..., [-- drive]: sets cold_wall_<label>, cold_first_<label>
    local label=$1 drive=$2
    shift 2
    local i t0 t1 walls="" firsts="" out
    for i in $(seq $((rounds * 5))); do
        t0=$(now)
        if [ -n "$drive" ]; then
            out=$(nice -n 10 "$ember" run --drive "$drive,ro,root" "$guest" "$@")
        else
            out=$(nice -n 10 "$ember" run "$guest" "$@")
        fi
        t1=$(now)
        walls="$walls $(((t1 - t0) / 1000))"
        f=$(echo "$out" | sed -n 's/^first_file_ns=//p')
        [ -z "$f" ] && f=$(echo "$out" | sed -n 's/^main_ns=//p')
        firsts="$firsts $((f / 1000))"
    done
    eval "cold_wall_$label=$(echo $walls | tr ' ' '\n' | median)"
    eval "cold_first_$label=$(echo $firsts | tr ' ' '\n' | median)"
}
cold none "" none
cold small "$work/small.erofs" cold /etc/app.json
cold big "$work/a.erofs" cold /etc/app.json

echo "run-rootfs.sh: sequential reads, stat" >&2
mkdir -p "$work/large"
head -c $((256 << 20)) /dev/urandom >"$work/large/big.bin"
"$rootfs" build --from "$work/large" -o "$work/large.erofs" --quiet
seq_1m=$("$ember" run --mem 512 --drive "$work/large.erofs,ro,root" "$guest" seq /big.bin 1048576 |
    sed -n 's/^seq_mbps=//p' | median)
seq_64k=$("$ember" run --mem 512 --drive "$work/large.erofs,ro,root" "$guest" seq /big.bin 65536 |
    sed -n 's/^seq_mbps=//p' | median)
"$ember" run --drive "$work/a.erofs,ro,root" "$guest" stat /etc/paths.txt >"$work/stat.out"
stat_ps=$(sed -n 's/^stat_per_s=//p' "$work/stat.out" | median)
stat_direct_ps=$(sed -n 's/^stat_direct_per_s=//p' "$work/stat.out" | median)

mkdir -p "$root/benches/results"
out=$root/benches/results/rootfs-$(date +%Y%m%d-%H%M%S).json
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
cat >"$out" <<JSON
{
  "benchmark": "rootfs",
  "rounds": $rounds,
  "tree": {"files": 10000, "dirs": 101, "bytes": $bytes},
  "build_ms": {
    "ember_rootfs_erofs": $t_rootfs_erofs, "mkfs_erofs": $t_mkfs_erofs,
    "ember_rootfs_ext4": $t_rootfs_ext4, "mke2fs_d": $t_mke2fs, "tar": $t_tar,
    "ratio_erofs": $(ratio "$t_rootfs_erofs" "$t_mkfs_erofs"),
    "ratio_ext4": $(ratio "$t_rootfs_ext4" "$t_mke2fs")
  },
  "image_bytes": {"erofs": $erofs_size, "ext4": $ext4_size},
  "cold_start_us": {
    "exec_to_exit": {"no_root": $cold_wall_none, "root_1_file": $cold_wall_small, "root_10000_files": $cold_wall_big},
    "guest_to_first_file_read": {"root_1_file": $cold_first_small, "root_10000_files": $cold_first_big},
    "guest_to_main_no_root": $cold_first_none
  },
  "seq_read_mb_per_s": {"read_1MiB": $seq_1m, "read_64KiB": $seq_64k},
  "stat_per_s_10000_paths": $stat_ps,
  "stat_direct_per_s_10000_paths": $stat_direct_ps,
  "load_average_1min": $(cut -d' ' -f1 /proc/loadavg)
}
JSON
cat "$out"
cat >&2 <<SUMMARY
rootfs: tree $((bytes / 1000000)) MB / 10000 files; medians of $rounds (cold start: $((rounds * 5)))
  build   ember-rootfs erofs ${t_rootfs_erofs} ms vs mkfs.erofs ${t_mkfs_erofs} ms ($(ratio "$t_rootfs_erofs" "$t_mkfs_erofs")x)
          ember-rootfs ext4  ${t_rootfs_ext4} ms vs mke2fs -d ${t_mke2fs} ms ($(ratio "$t_rootfs_ext4" "$t_mke2fs")x); tar ${t_tar} ms
  cold    exec->exit: no root ${cold_wall_none} us, 1-file root ${cold_wall_small} us, 10000-file root ${cold_wall_big} us
          guest to first file read: 1-file ${cold_first_small} us, 10000-file ${cold_first_big} us
  seq     ${seq_1m} MB/s (1 MiB reads), ${seq_64k} MB/s (64 KiB reads)
  stat    ${stat_ps} /s over 10000 paths (${stat_direct_ps} /s without the syscall trap)
  load    $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: times are inflated by it)
SUMMARY
