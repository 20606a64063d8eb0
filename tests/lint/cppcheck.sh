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
host=()
for d in common virtio monitor api-socket cmd jailer rootfs-builder; do
    [ -d "$d" ] && host+=("$d")
done
rc=0
cppcheck "${common[@]}" -DEMBER_HOST -I. -Iinclude "${host[@]}" || rc=1
cppcheck "${common[@]}" -Iguest-sdk/src -Iguest-sdk/include -Iinclude guest-sdk/src || rc=1
if [ $rc = 0 ]; then
    echo "cppcheck: no errors in ${host[*]} guest-sdk/src"
fi
exit $rc
