#!/usr/bin/env bash
# format_check.sh SRC_DIR: every C file in the repository is as clang-format
# (the root's .clang-format) would write it. Exit 77 (skipped) without
# clang-format. Fix a failure with: clang-format -i FILE...
set -euo pipefail
cd "${1:?usage: format_check.sh SRC_DIR}"
if ! command -v clang-format >/dev/null 2>&1; then
    echo "SKIPPED: clang-format is not installed (install-deps.sh installs it)"
    exit 77
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files -- '*.c' '*.h')
else
    mapfile -t files < <(find . -path './build*' -prune -o -type f \( -name '*.c' -o -name '*.h' \) -print)
fi
# One run over all files; each unformatted one shows up as FILE:LINE:COL:.
mapfile -t bad < <(clang-format --dry-run --Werror "${files[@]}" 2>&1 |
    sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: \(warning\|error\).*/\1/p' | sort -u)
echo "clang-format: ${#files[@]} files, ${#bad[@]} not formatted"
if [ "${#bad[@]}" -gt 0 ]; then
    printf '  %s\n' "${bad[@]}"
    echo "fix with: clang-format -i ${bad[*]}"
    exit 1
fi
