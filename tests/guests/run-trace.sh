#!/bin/sh
# run-trace.sh GUEST: boots GUEST (posix_times) with --trace-syscalls and
# checks that its unimplemented fork() is named exactly once on ember's
# stderr, nothing of the trace on stdout, and that without the flag there
# is no trace at all. Exit 77 (skipped) without the monitor or /dev/kvm.
set -u
guest=$1
[ -x "${EMBER:-}" ] || { echo "run-trace.sh: SKIPPED: no ember monitor in the build" >&2; exit 77; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "run-trace.sh: SKIPPED: no /dev/kvm" >&2; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "run-trace.sh: $*" >&2; cat "$tmp/err" >&2; exit 1; }
timeout 60 "$EMBER" run --trace-syscalls "$guest" >"$tmp/out" 2>"$tmp/err" || fail "guest failed"
want="ember: trace: system call 57 (fork) is not implemented (ENOSYS)"
[ "$(grep -cF "$want" "$tmp/err")" = 1 ] || fail "want one \"$want\" on stderr"
grep -q "ember: trace" "$tmp/out" && fail "trace on stdout"
timeout 60 "$EMBER" run --env EMBER_TRACE_SYSCALLS=0 "$guest" >"$tmp/out" 2>"$tmp/err" || fail "guest failed"
grep -q "ember: trace" "$tmp/err" && fail "EMBER_TRACE_SYSCALLS=0 traced"
cat "$tmp/out"
echo "run-trace.sh: ok"
exit 0
