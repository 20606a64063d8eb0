#!/bin/sh
# run-side-by-side.sh: one program, built with ember-cc and natively for the
# host, run both ways; their standard output must be the same and both must
# end with STATUS.
#
#   run-side-by-side.sh GUEST NATIVE STATUS [KEY=VALUE...] -- [ARGS...]
#
# The guest runs as `$EMBER run --env KEY=VALUE... GUEST ARGS...`, the native
# program as `env -i KEY=VALUE... NATIVE ARGS...`: the same environment and
# arguments. ember's own messages go to its standard error and are not
# compared. Exit 77 (skipped) when the monitor is not available.
set -u
guest=$1 native=$2 status=$3
shift 3
envs=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    envs="$envs $1"
    shift
done
[ $# -gt 0 ] && shift
[ -x "${EMBER:-}" ] || { echo "run-side-by-side.sh: SKIPPED: no ember monitor in the build" >&2; exit 77; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "run-side-by-side.sh: SKIPPED: no /dev/kvm" >&2; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

set --  "$@"
enva=""
for kv in $envs; do enva="$enva --env $kv"; done
# shellcheck disable=SC2086
timeout 60 "$EMBER" run $enva "$guest" "$@" >"$tmp/ember.out" 2>"$tmp/ember.err"
rc_ember=$?
# shellcheck disable=SC2086
timeout 60 env -i $envs "$native" "$@" >"$tmp/native.out" 2>"$tmp/native.err"
rc_native=$?
cat "$tmp/ember.out"
cat "$tmp/ember.err" >&2
fail=0
if ! diff -u "$tmp/native.out" "$tmp/ember.out" >"$tmp/diff"; then
    echo "run-side-by-side.sh: output differs (native -, ember +):" >&2
    cat "$tmp/diff" >&2
    fail=1
fi
if [ "$rc_ember" != "$status" ] || [ "$rc_native" != "$status" ]; then
    echo "run-side-by-side.sh: exit status ember $rc_ember, native $rc_native, expected $status" >&2
    fail=1
fi
exit $fail
