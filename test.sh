#!/usr/bin/env bash
# test.sh: set up, build, and run every test, twice:
#  1. with AddressSanitizer + UBSan (catches memory errors in the host code);
#  2. as shipped (optimised, static where libcbor.a exists, seccomp filters on: sanitizer builds run
#     without filters, so the seccomp and jailer tests only bite here).
# Works on a fresh Debian 12 machine as root.
set -euo pipefail
cd "$(dirname "$0")"

./install-deps.sh
jobs="$(nproc)"

echo "== test.sh: ASan+UBSan build"
cmake -S . -B build-test -DEMBER_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
cmake --build build-test -j"$jobs"
(cd build-test && ctest --output-on-failure)

echo "== test.sh: release build (ember static where libcbor.a exists, seccomp on)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build-release -j"$jobs"
cd build-release
ctest --output-on-failure
