#!/usr/bin/env bash
# run-demo.sh: set up, build, and boot the demo unikernel (guest-sdk/examples/hello).
# Works on a fresh Debian 12 machine as root.
set -euo pipefail
cd "$(dirname "$0")"

./install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEMBER_TESTS=OFF
cmake --build build -j"$(nproc)"
exec ./build/monitor/ember run --timings build/guest-sdk/examples/hello "a demo" of ember
