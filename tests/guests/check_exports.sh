#!/usr/bin/env bash
# check_exports.sh LIBEMBER_A: the guest SDK's archive defines no global
# symbol but the SDK's API (ember_*) and what it defines in musl's place
# (_Exit, __set_thread_area, __syscall_cp_c): anything else would collide with a program's
# own names (sym_collide.c checks that it does not). New ember_* names are
# fine; any other name fails, listed.
set -euo pipefail
lib=${1:?usage: check_exports.sh LIBEMBER_A}
mapfile -t globals < <(nm -g --defined-only "$lib" | awk 'NF == 3 { print $3 }' | sort -u)
bad=()
api=0
for s in "${globals[@]}"; do
    case $s in
    ember_*) api=$((api + 1)) ;;
    _Exit | __set_thread_area | __syscall_cp_c) ;;
    *) bad+=("$s") ;;
    esac
done
if [ "$api" -lt 10 ]; then
    echo "FAIL: $lib defines only $api ember_* symbols: not the SDK?"
    exit 1
fi
if [ "${#bad[@]}" -gt 0 ]; then
    echo "FAIL: $lib exports ${#bad[@]} symbol(s) outside the SDK's API:"
    printf '  %s\n' "${bad[@]}"
    echo "make them static, or local through guest-sdk/libember.exports"
    exit 1
fi
echo "ok: ${#globals[@]} global symbols, $api ember_*, the rest: _Exit __set_thread_area __syscall_cp_c"
