#!/bin/bash
# rootfs_tool.sh ROOTFS: ember-rootfs on the host.
#  - a tree -> EROFS: fsck.erofs passes, `inspect --sha256` lists exactly the
#    source (types, modes, sizes, link targets, digests);
#  - two builds (different times on the source, different staging) give one
#    digest; SOURCE_DATE_EPOCH changes it; --digest-file writes sha256sum's
#    format;
#  - ext4: e2fsck -fn passes, two builds one digest; cpio: inspect lists it;
#  - OCI: an image layout and a docker-save tarball with three layers,
#    whiteouts and an opaque directory;
#  - hostile archives: each refused with a message naming the entry, and
#    nothing written outside the output (the output itself not created).
rootfs=$1
. "$(dirname "$0")/lib.sh"
command -v mkfs.erofs >/dev/null || { echo "SKIPPED: mkfs.erofs missing (erofs-utils)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIPPED: python3 missing"; exit 77; }

make_tree "$work/src"
chmod 0750 "$work/src/a/b"
chmod 0600 "$work/src/etc/schema.sql"

# ---- EROFS, inspect, fsck ----
out=$("$rootfs" build --from "$work/src" -o "$work/a.erofs" --digest-file) || fail "build"
digest=$(sha256sum <"$work/a.erofs" | cut -d' ' -f1)
[ "$out" = "sha256:$digest  $work/a.erofs" ] && ok "prints the image's SHA-256" || fail "printed: $out"
[ "$(cat "$work/a.erofs.sha256")" = "$digest  a.erofs" ] && ok "--digest-file" || fail "digest file"
(cd "$work" && sha256sum -c a.erofs.sha256 >/dev/null) || fail "sha256sum -c"
fsck.erofs "$work/a.erofs" >/dev/null 2>&1 && ok "fsck.erofs passes" || fail "fsck.erofs"

expect_listing() { # the inspect format, from the source tree, dirs without sizes
    (cd "$1" && find . -mindepth 1 -print) | sed 's|^\.||' | while IFS= read -r p; do
        f="$1$p"
        m=$(stat -c %a "$f")
        m=$(printf '%04o' "0$m")
        if [ -L "$f" ]; then
            echo "l 0777 0:0 $(stat -c %s "$f") $p -> $(readlink "$f")"
        elif [ -d "$f" ]; then
            echo "d $m 0:0 - $p"
        else
            echo "- $m 0:0 $(stat -c %s "$f") $p sha256:$(sha256sum <"$f" | cut -d' ' -f1)"
        fi
    done | LC_ALL=C sort
}
"$rootfs" inspect --sha256 "$work/a.erofs" | sed -E 's/^d ([0-7]+) ([0-9:]+) [0-9]+ /d \1 \2 - /' |
    grep -v -E '^d [0-7]+ [0-9:]+ - /(dev|tmp)?$' | LC_ALL=C sort >"$work/inspect.list"
expect_listing "$work/src" >"$work/expect.list"
if cmp -s "$work/inspect.list" "$work/expect.list"; then
    ok "inspect lists the source: $(wc -l <"$work/expect.list") entries"
else
    fail "inspect differs from the source"
    diff "$work/expect.list" "$work/inspect.list" | head >&2
fi
"$rootfs" inspect "$work/a.erofs" | grep -q -E '^d 1777 0:0 [0-9]+ /tmp$' && ok "/tmp mount point" ||
    fail "no /tmp in the image"

# ---- reproducible ----
cp -a "$work/src" "$work/src2"
touch -d '2001-02-03' "$work/src2/a/hello.txt" "$work/src2/a"
"$rootfs" build --from "$work/src2" -o "$work/b.erofs" --quiet || fail "build 2"
cmp -s "$work/a.erofs" "$work/b.erofs" && ok "two builds, one digest" || fail "builds differ"
SOURCE_DATE_EPOCH=1700000000 "$rootfs" build --from "$work/src" -o "$work/c.erofs" --quiet
cmp -s "$work/a.erofs" "$work/c.erofs" && fail "SOURCE_DATE_EPOCH ignored" || ok "SOURCE_DATE_EPOCH used"
echo changed >"$work/src2/a/hello.txt"
"$rootfs" build --from "$work/src2" -o "$work/d.erofs" --quiet
[ "$(dd if="$work/a.erofs" bs=1 skip=1072 count=16 status=none | od -An -tx1)" != \
  "$(dd if="$work/d.erofs" bs=1 skip=1072 count=16 status=none | od -An -tx1)" ] &&
    ok "the UUID follows the content" || fail "same UUID for different content"

# ---- ext4 and cpio ----
"$rootfs" build --from "$work/src" -o "$work/a.ext4" --format ext4 --quiet || fail "ext4 build"
e2fsck -fn "$work/a.ext4" >/dev/null 2>&1 && ok "e2fsck -fn passes" || fail "e2fsck"
sleep 1
"$rootfs" build --from "$work/src2" -o "$work/b.ext4" --format ext4 --quiet
cp "$work/src/a/hello.txt" "$work/src2/a/hello.txt"
touch "$work/src2/a/hello.txt"
"$rootfs" build --from "$work/src2" -o "$work/b.ext4" --format ext4 --quiet
cmp -s "$work/a.ext4" "$work/b.ext4" && ok "ext4: two builds, one digest" || fail "ext4 builds differ"
debugfs -R 'stat /a/hello.txt' "$work/a.ext4" 2>/dev/null | grep -q 'mtime: 0x00000000' &&
    ok "ext4: times are the epoch" || fail "ext4 times leak"
"$rootfs" build --from "$work/src" -o "$work/a.cpio" --format cpio --quiet || fail "cpio build"
"$rootfs" inspect "$work/a.cpio" | grep -q '^- 0644 0:0 6 /a/hello.txt$' && ok "cpio" || fail "cpio listing"

# ---- OCI ----
mk_layer() { # dir -> tar.gz blob in the layout, prints the digest
    tar --sort=name --owner=0 --group=0 -C "$1" -czf "$work/layer.tgz" .
    local d
    d=$(sha256sum <"$work/layer.tgz" | cut -d' ' -f1)
    mv "$work/layer.tgz" "$work/oci/blobs/sha256/$d"
    echo "$d"
}
mkdir -p "$work/oci/blobs/sha256" "$work/l1/etc" "$work/l1/opq" "$work/l2/etc" "$work/l2/opq" "$work/l3"
echo one >"$work/l1/etc/keep"
echo gone >"$work/l1/etc/gone"
echo old >"$work/l1/opq/old"
echo v1 >"$work/l1/file"
touch "$work/l2/etc/.wh.gone" "$work/l2/opq/.wh..wh..opq"
echo new >"$work/l2/opq/new"
echo v3 >"$work/l3/file"
d1=$(mk_layer "$work/l1") d2=$(mk_layer "$work/l2") d3=$(mk_layer "$work/l3")
printf '{"schemaVersion":2,"layers":[{"digest":"sha256:%s"},{"digest":"sha256:%s"},{"digest":"sha256:%s"}]}' \
    "$d1" "$d2" "$d3" >"$work/m.json"
dm=$(sha256sum <"$work/m.json" | cut -d' ' -f1)
mv "$work/m.json" "$work/oci/blobs/sha256/$dm"
echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"digest":"sha256:%s","platform":{"os":"linux","architecture":"amd64"}}]}' \
    "$dm" >"$work/oci/index.json"
check_oci() {
    "$rootfs" inspect --sha256 "$1" >"$work/oci.list" || { fail "inspect $1"; return; }
    grep -q ' /etc/keep ' "$work/oci.list" && ! grep -q '/etc/gone' "$work/oci.list" &&
        grep -q ' /opq/new ' "$work/oci.list" && ! grep -q '/opq/old' "$work/oci.list" &&
        ! grep -q '\.wh\.' "$work/oci.list" &&
        grep -q "^- 0644 0:0 3 /file sha256:$(echo v3 | sha256sum | cut -d' ' -f1)\$" "$work/oci.list" &&
        ok "$2: layers in order, whiteouts, opaque directory" || {
        fail "$2"
        cat "$work/oci.list" >&2
    }
}
"$rootfs" build --from "$work/oci" -o "$work/oci.erofs" --quiet || fail "oci build"
check_oci "$work/oci.erofs" "OCI image layout"
tar -C "$work/oci" -cf "$work/oci.tar" .
"$rootfs" build --from "$work/oci.tar" -o "$work/ocitar.erofs" --quiet || fail "oci tar build"
check_oci "$work/ocitar.erofs" "OCI layout tarball"
mkdir -p "$work/docker"
cp "$work/oci/blobs/sha256/$d1" "$work/docker/l1.tar.gz"
cp "$work/oci/blobs/sha256/$d2" "$work/docker/l2.tar.gz"
cp "$work/oci/blobs/sha256/$d3" "$work/docker/l3.tar.gz"
echo '[{"Config":"c.json","RepoTags":["t:latest"],"Layers":["l1.tar.gz","l2.tar.gz","l3.tar.gz"]}]' \
    >"$work/docker/manifest.json"
tar -C "$work/docker" -cf "$work/docker.tar" .
"$rootfs" build --from "$work/docker.tar" -o "$work/docker.erofs" --quiet || fail "docker build"
check_oci "$work/docker.erofs" "docker save tarball"
echo tampered >>"$work/oci/blobs/sha256/$d3"
"$rootfs" build --from "$work/oci" -o "$work/t.erofs" --quiet 2>"$work/err" && fail "tampered blob accepted"
grep -q "$d3: content does not match its digest" "$work/err" && ok "a blob that does not match its digest" ||
    fail "tampered: $(cat "$work/err")"

# ---- hostile archives ----
python3 - "$work" <<'PY'
import io, sys, tarfile
w = sys.argv[1]
def tar(name, entries, mode="w"):
    with tarfile.open(f"{w}/{name}", mode) as t:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.type = e.get("type", tarfile.REGTYPE)
            ti.linkname = e.get("link", "")
            data = e.get("data", b"")
            ti.size = e.get("size", len(data)) if ti.type == tarfile.REGTYPE else 0
            ti.mode = 0o644
            if ti.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                ti.devmajor, ti.devminor = 1, 3
            t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
tar("dotdot.tar", [{"name": "a/../../evil", "data": b"x"}])
tar("abs.tar", [{"name": "/etc/evil", "data": b"x"}])
tar("dev.tar", [{"name": "dev/mem", "type": tarfile.CHRTYPE}])
tar("fifo.tar", [{"name": "p", "type": tarfile.FIFOTYPE}])
tar("symesc.tar", [{"name": "a/up", "type": tarfile.SYMTYPE, "link": "../../etc"}])
tar("symthrough.tar", [{"name": "l", "type": tarfile.SYMTYPE, "link": "/tmp"},
                       {"name": "l/evil", "data": b"x"}])
tar("hardesc.tar", [{"name": "h", "type": tarfile.LNKTYPE, "link": "../etc/passwd"}])
tar("hardmissing.tar", [{"name": "h", "type": tarfile.LNKTYPE, "link": "nothere"}])
tar("many.tar", [{"name": f"f{i}", "data": b""} for i in range(200)])
tar("big.tar", [{"name": "big", "data": b"y" * 300000}])
tar("longname.tar", [{"name": "d/" + "n" * 300, "data": b""}])
# a bomb: 100 MiB of zeroes, gzip'd to ~100 KB
import gzip
with gzip.open(f"{w}/bomb.tar.gz", "wb", compresslevel=6) as g:
    ti = tarfile.TarInfo("zeroes"); ti.size = 100 << 20
    g.write(ti.tobuf(format=tarfile.GNU_FORMAT))
    z = bytes(1 << 20)
    for _ in range(100):
        g.write(z)
    g.write(bytes(1024))
PY
hostile() { # archive, expected message, [options]
    local a=$1 want=$2
    shift 2
    rm -f "$work/h.erofs"
    # The tool stages under $TMPDIR: a private one, so that other runs on
    # the host cannot change the count of what this build left behind.
    mkdir -p "$work/tmp"
    before=$(ls "$work/tmp" | grep -c '^ember-rootfs\.' || true)
    if TMPDIR="$work/tmp" "$rootfs" build --from "$work/$a" -o "$work/h.erofs" --quiet "$@" 2>"$work/err"; then
        fail "$a accepted"
        return
    fi
    after=$(ls "$work/tmp" | grep -c '^ember-rootfs\.' || true)
    if [ "$(cat "$work/err")" = "ember-rootfs: $work/$a: $want" ] && [ ! -e "$work/h.erofs" ] &&
        [ "$before" = "$after" ] && [ ! -e /etc/evil ] && [ ! -e "$work/evil" ]; then
        ok "$a: $want"
    else
        fail "$a: got \"$(cat "$work/err")\", want \"$want\" (staging dirs before/after: $before/$after)"
    fi
}
hostile dotdot.tar "entry 'a/../../evil': path has a '..' component"
hostile abs.tar "entry '/etc/evil': absolute path"
hostile dev.tar "entry 'dev/mem': is a device node (not allowed in an image)"
hostile fifo.tar "entry 'p': is a FIFO (not allowed in an image)"
hostile symesc.tar "entry 'a/up': symlink target '../../etc' leads out of the tree"
hostile symthrough.tar "entry 'l/evil': 'l' is a symlink or not a directory"
hostile hardesc.tar "entry 'h': hardlink target '../etc/passwd': path has a '..' component"
hostile hardmissing.tar "entry 'h': hardlink to 'nothere', which is not in the tree"
hostile many.tar "entry 'f100': more than 100 entries (--max-entries)" --max-entries 100
hostile big.tar "entry 'big': 300000 bytes would take the tree past 100000 bytes (--max-bytes)" --max-bytes 100000
hostile longname.tar "entry 'd/$(printf 'n%.0s' $(seq 300))': a path component is longer than 255 bytes"
hostile bomb.tar.gz "entry 'zeroes': the archive expands more than 100 times (an archive bomb?; --max-ratio)" --max-ratio 100

# options
"$rootfs" build --from "$work/src" -o "$work/x" --format zip 2>"$work/err"
grep -q 'unknown format "zip"' "$work/err" && ok "--format checked" || fail "--format: $(cat "$work/err")"
"$rootfs" build --from "$work/nope" -o "$work/x" 2>"$work/err"
grep -q "nope: No such file or directory" "$work/err" && ok "missing source" || fail "missing: $(cat "$work/err")"
head -c 8192 /dev/zero >"$work/zero.img"
"$rootfs" inspect "$work/zero.img" 2>"$work/err" && fail "inspect of zeroes"
ok "inspect of a non-image fails: $(cat "$work/err")"
[ $fails = 0 ] || exit 1
