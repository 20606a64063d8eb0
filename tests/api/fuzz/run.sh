#!/usr/bin/env bash
# run.sh [SECONDS]: builds the request fuzz target with clang and libFuzzer
# in build-fuzz/ and fuzzes for SECONDS (default 60), starting from the
# committed corpus (new inputs go to build-fuzz/api-corpus, not the repo).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
secs=${1:-60}
build=$repo/build-fuzz
# EMBER_CMAKE_SOURCE: another top-level CMake project that includes the repo.
CC=clang cmake -S "${EMBER_CMAKE_SOURCE:-$repo}" -B "$build" -DEMBER_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target api_fuzz -j"$(nproc)"
mkdir -p "$build/api-corpus"
cp -n "$repo"/tests/api/fuzz/corpus/* "$build/api-corpus/"
bin=$(find "$build" -name api_fuzz -type f -perm -u+x | head -n 1)
"$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 "$build/api-corpus"
