# lib.sh: what the rootfs tests share. Sourced; $work is a private
# directory removed on exit.
set -u
work=$(mktemp -d "${TMPDIR:-/tmp}/rootfs-test.$$.XXXXXX")
trap 'rm -rf "$work"' EXIT
fails=0
fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}
ok() { echo "ok: $*"; }

# A tree with nested directories, symlinks, a hardlink, empty and large
# files and odd names.
make_tree() {
    d=$1
    mkdir -p "$d/a/b/c" "$d/empty dir" "$d/etc"
    echo hello >"$d/a/hello.txt"
    : >"$d/empty"
    head -c 5000000 /dev/urandom >"$d/a/b/large.bin"
    head -c 4096 /dev/urandom >"$d/a/b/c/block.bin"
    head -c 4097 /dev/urandom >"$d/a/b/c/block+1.bin"
    printf 'x' >"$d/odd name é ☃"
    printf 'tab' >"$d/a/tab	name"
    ln -s a/hello.txt "$d/rel-link"
    ln -s /a/b "$d/abs-link"
    ln "$d/a/hello.txt" "$d/a/b/hard.txt"
    echo '{"name": "app", "v": 1}' >"$d/etc/app.json"
    printf 'CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT);\n' >"$d/etc/schema.sql"
    ln -s app.json "$d/etc/link"
    for i in $(seq 1 300); do echo "$i" >"$d/a/b/c/f$i"; done
}

# The listing fs_walk prints, made on the host: "TYPE SIZE PATH[ -> T][ SHA]".
host_listing() {
    (cd "$1" && find . -mindepth 1 \( -path ./dev -o -path ./tmp \) -prune -o -print) |
        sed 's|^\.||' | LC_ALL=C sort | while IFS= read -r p; do
        f="$1$p"
        if [ -L "$f" ]; then
            echo "l $(stat -c %s "$f") $p -> $(readlink "$f")"
        elif [ -d "$f" ]; then
            echo "d 0 $p"
        else
            echo "- $(stat -c %s "$f") $p $(sha256sum <"$f" | cut -d' ' -f1)"
        fi
    done | LC_ALL=C sort
}
