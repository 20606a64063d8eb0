#!/usr/bin/env bash
# install.sh DIR: installs the test-only schema validator (ajv, js-yaml, pinned
# in package-lock.json) into DIR/node_modules from the npm registry. Safe to
# run again: does nothing when DIR already has this lock file's packages.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=$1
mkdir -p "$dest"
cp "$here/check.js" "$dest/" # ours: always the current one
if [ -d "$dest/node_modules/ajv" ] && cmp -s "$here/package-lock.json" "$dest/package-lock.json"; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "schema tools: npm is not installed (it comes with Node.js)" >&2
    exit 1
fi
cp "$here/package.json" "$here/package-lock.json" "$dest/"
cd "$dest"
npm ci --no-audit --no-fund --loglevel=error
