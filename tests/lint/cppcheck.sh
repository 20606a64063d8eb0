#!/usr/bin/env bash
# cppcheck.sh SRC_DIR: cppcheck over the shipped code (host parts and the
# guest SDK), errors only: what cppcheck rates as bugs (out-of-bounds access,
# leaks, use after free, uninitialised reads, ...). Its style and warning
# classes, and its cross-file analysis (ctu*), guess too often on this code
# (a NULL check after an mmap() that cannot return NULL, an error struct
# only written to) to gate on. A real finding that is a false alarm all the
# same is silenced where it is, with a reason:
#   // cppcheck-suppress ID  (why)
# Exit 77 (skipped) without cppcheck.
set -euo pipefail
cd "${1:?usage: cppcheck.sh SRC_DIR}"
if ! command -v cppcheck >/dev/null 2>&1; then
    echo "SKIPPED: cppcheck is not installed (install-deps.sh installs it)"
    exit 77
fi
common=(-q --error-exitcode=1 --inline-suppr --std=c11 -D__x86_64__
    --suppress=missingIncludeSystem --suppress=unknownMacro
    --suppress=ctuuninitvar --suppress=ctunullpointer --suppress=ctuArrayIndex)
# The host parts: every folder with a line in the layout's edge list but
# include/ (headers), tests/ and benches/ (criterion macros, deliberate faults).
host=()
while IFS=: read -r part _; do
    case $part in
    '' | \#* | include | tests | benches | internal | generated | guest) continue ;;
    esac
    [ -d "$part" ] && host+=("$part")
done <tests/layout/allowed_edges.txt
rc=0
cppcheck "${common[@]}" -DEMBER_HOST -I. -Iinclude "${host[@]}" || rc=1
cppcheck "${common[@]}" -Iguest-sdk/src -Iguest-sdk/include -Iinclude guest-sdk/src || rc=1
if [ $rc = 0 ]; then
    echo "cppcheck: no errors in ${host[*]} guest-sdk/src"
fi
exit $rc
