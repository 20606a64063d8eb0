#!/usr/bin/env bash
# test.sh: set up, build with AddressSanitizer + UBSan, and run every test.
# Works on a fresh Debian 12 machine as root.
set -euo pipefail
cd "$(dirname "$0")"

./install-deps.sh
cmake -S . -B build-test -DEMBER_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
cmake --build build-test -j"$(nproc)"
cd build-test
ctest --output-on-failure
