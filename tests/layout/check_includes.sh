#!/usr/bin/env bash
# check_includes.sh SRC_DIR: fails when an #include in the tree breaks the
# layout (README.md, "Layout"; allowed_edges.txt):
#  - host code includes by path from the repository root ("virtio/queue.h"),
#    never by a bare name, and only files that exist (or are generated);
#  - an include that crosses parts follows an edge in allowed_edges.txt;
#  - a part's internal headers (*_priv.h, the "internal:" list) are included
#    from their own folder only;
#  - host code takes <ember/*.h> from include/ (the ABI) only;
#  - the guest SDK's own includes resolve from guest-sdk/src.
# Prints every violation, then "N include(s) checked, M violation(s)".
set -euo pipefail
src=${1:?usage: check_includes.sh SRC_DIR}
cd "$src"
rules=tests/layout/allowed_edges.txt

declare -A allowed=() internal=() generated=()
guest_prefixes=()
while IFS= read -r line; do
    line=${line%%#*}
    [[ $line =~ ^[[:space:]]*$ ]] && continue
    key=${line%%:*}
    val=${line#*:}
    case $key in
    internal) for h in $val; do internal[$h]=1; done ;;
    generated) for h in $val; do generated[$h]=1; done ;;
    guest) for p in $val; do guest_prefixes+=("$p"); done ;;
    *) allowed[$key]=" $val " ;;
    esac
done <"$rules"

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files -- '*.c' '*.h' '*.S')
else
    mapfile -t files < <(find . -path './build*' -prune -o -type f \( -name '*.c' -o -name '*.h' -o -name '*.S' \) -print | sed 's|^\./||' | sort)
fi

bad=0
n=0
violation() {
    echo "$1:$2: $3"
    bad=$((bad + 1))
}
# edge FILE LINE FROM TO WHAT: FROM may include from TO?
edge() {
    [ "$4" = "$3" ] && return 0
    if [ -z "${allowed[$3]+x}" ]; then
        violation "$1" "$2" "part $3/ has no line in $rules"
    elif [[ ${allowed[$3]} != *" * "* && ${allowed[$3]} != *" $4 "* ]]; then
        local may
        read -r -a may <<<"${allowed[$3]}"
        violation "$1" "$2" "$5: $3/ may not include from $4/ (allowed: ${may[*]})"
    fi
}
is_guest() {
    local f=$1 p
    for p in "${guest_prefixes[@]}"; do
        [[ $f == "$p"* ]] && return 0
    done
    return 1
}

for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    part=${f%%/*}
    dir=${f%/*}
    guest=0
    is_guest "$f" && guest=1
    while IFS=: read -r lineno text; do
        n=$((n + 1))
        if [[ $text =~ \#[[:space:]]*include[[:space:]]*\<(ember/[^>]+)\> ]]; then
            h=${BASH_REMATCH[1]}
            if [ $guest = 1 ]; then
                [ -f "include/$h" ] || [ -f "guest-sdk/include/$h" ] ||
                    violation "$f" "$lineno" "<$h>: no such header in include/ or guest-sdk/include/"
            elif [ ! -f "include/$h" ]; then
                violation "$f" "$lineno" "<$h>: host code takes <ember/*.h> from include/ (the ABI) only"
            else
                edge "$f" "$lineno" "$part" include "<$h>"
            fi
            continue
        fi
        [[ $text =~ \#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]] || continue
        h=${BASH_REMATCH[1]}
        if [ $guest = 1 ]; then
            if [[ $f == guest-sdk/src/* ]]; then
                [ -f "guest-sdk/src/$h" ] ||
                    violation "$f" "$lineno" "\"$h\": the SDK includes its own headers relative to guest-sdk/src"
            else
                [ -f "$dir/$h" ] || [ -f "guest-sdk/include/$h" ] || [ -f "include/$h" ] ||
                    violation "$f" "$lineno" "\"$h\": no such header beside $f"
            fi
            continue
        fi
        if [[ $h != */* ]]; then
            violation "$f" "$lineno" "\"$h\": include by path from the repository root (\"$part/$h\"?)"
            continue
        fi
        if [ ! -f "$h" ] && [ -z "${generated[$h]+x}" ]; then
            violation "$f" "$lineno" "\"$h\": no such file from the repository root"
            continue
        fi
        to=${h%%/*}
        hdir=${h%/*}
        base=${h##*/}
        if { [[ $base == *_priv.h ]] || [ -n "${internal[$h]+x}" ]; } && [ "$hdir" != "$dir" ]; then
            violation "$f" "$lineno" "\"$h\" is internal to $hdir/"
            continue
        fi
        edge "$f" "$lineno" "$part" "$to" "\"$h\""
    done < <(grep -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]' "$f" || true)
done
echo "$n include(s) checked, $bad violation(s)"
[ $bad = 0 ]
