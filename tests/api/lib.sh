# lib.sh: helpers shared by the API suites (sourced, not run).
#
# The suites start a real `ember` on a socket in a fresh temporary folder,
# talk to it with curl --unix-socket (or api_raw_client for bytes curl will
# not send), and compare status and body exactly. Every 200 and 400 body is
# also logged for the schema check against firecracker-api.yaml (schema_run).
# Waits are bounded by polling, never measured: no test asserts a duration.

WORK=$(mktemp -d /tmp/ember-api-test.XXXXXX)
SOCK=$WORK/api.sock
SCHEMA_LOG=$WORK/schema.jsonl
PASS=0
FAIL=0
SKIP=0
EMBER_PID=
: >"$SCHEMA_LOG"

cleanup() {
    stop_ember
    rm -rf "$WORK"
}
trap cleanup EXIT

pass() { PASS=$((PASS + 1)); }
fail() {
    FAIL=$((FAIL + 1))
    echo "FAIL: $*"
}
skip() {
    SKIP=$((SKIP + 1))
    echo "SKIPPED: $*"
}

# check NAME CONDITION...: passes when the command succeeds.
check() {
    local name=$1
    shift
    if "$@"; then pass; else fail "$name"; fi
}

# pick_ember EMBER: the `ember` under test, which must answer --version.
pick_ember() {
    EMBER=$1
    VERSION=$("$EMBER" --version | sed -n 's/^ember v//p')
    if [ -z "$VERSION" ]; then
        echo "FAIL: $EMBER --version does not say 'ember v...'"
        exit 1
    fi
}

# start_ember [FLAGS...]: starts ember on $SOCK, waits for the socket.
start_ember() {
    stop_ember
    rm -f "$SOCK"
    "$EMBER" --api-sock "$SOCK" "$@" >"$WORK/stdout" 2>"$WORK/stderr" &
    EMBER_PID=$!
    wait_socket
}

wait_socket() {
    for _ in $(seq 1 1000); do
        [ -S "$SOCK" ] && return 0
        kill -0 "$EMBER_PID" 2>/dev/null || break
        sleep 0.01
    done
    echo "FAIL: ember did not open $SOCK; its stderr:"
    cat "$WORK/stderr"
    exit 1
}

stop_ember() {
    if [ -n "$EMBER_PID" ]; then
        kill "$EMBER_PID" 2>/dev/null
        wait "$EMBER_PID" 2>/dev/null
        EMBER_PID=
    fi
}

# wait_exit: waits for ember to end by itself; sets EXIT_STATUS.
wait_exit() {
    wait "$EMBER_PID"
    EXIT_STATUS=$?
    EMBER_PID=
}

alive() { kill -0 "$EMBER_PID" 2>/dev/null; }

# api METHOD PATH [BODY]: sets STATUS and RESP.
api() {
    local args=(-s -o "$WORK/resp" -w '%{http_code}' --max-time 30 --unix-socket "$SOCK" -X "$1")
    [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    STATUS=$(curl "${args[@]}" "http://localhost$2") || STATUS=000
    RESP=$(cat "$WORK/resp" 2>/dev/null)
}

json_str() {
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

schema_log() { # DEF WHAT BODY
    printf '{"what":%s,"def":"%s","body":%s}\n' "$(json_str "$2")" "$1" "$3" >>"$SCHEMA_LOG"
}

# expect METHOD PATH BODY STATUS [RESPONSE [DEFINITION]]: RESPONSE "-" skips
# the body comparison; DEFINITION names the spec schema of a 200 body.
expect() {
    local m=$1 p=$2 b=$3 st=$4 want=${5:--} def=${6:-}
    if [ -n "$b" ]; then api "$m" "$p" "$b"; else api "$m" "$p"; fi
    if [ "$STATUS" != "$st" ]; then
        fail "$m $p $b: status $STATUS, expected $st; body: $RESP"
        return 1
    fi
    if [ "$want" != "-" ] && [ "$RESP" != "$want" ]; then
        fail "$m $p $b: body $RESP"$'\n'"      expected $want"
        return 1
    fi
    if [ "$st" = 204 ] && [ -n "$RESP" ]; then
        fail "$m $p: 204 with a body: $RESP"
        return 1
    fi
    [ "$st" = 400 ] && schema_log Error "$m $p" "$RESP"
    [ -n "$def" ] && schema_log "$def" "$m $p" "$RESP"
    pass
}

# fault METHOD PATH BODY MESSAGE: expects 400 {"fault_message": MESSAGE}.
fault() {
    expect "$1" "$2" "$3" 400 "{\"fault_message\":$(json_str "$4")}" && return 0
    # EMBER_TEST_REGEN=FILE: note the source line and the message received,
    # for a maintainer updating expected messages after a deliberate change.
    if [ -n "${EMBER_TEST_REGEN:-}" ]; then
        printf '%s\t%s\n' "${BASH_LINENO[0]}" "$RESP" >>"$EMBER_TEST_REGEN"
    fi
    return 1
}

# raw INPUT_FILE [CLIENT FLAGS...]: sends raw bytes; the answer is in RAW.
raw() {
    local in=$1
    shift
    RAW=$("$RAW_CLIENT" "$SOCK" "$@" <"$in")
}

# raw_fault INPUT_FILE MESSAGE: the raw answer is a 400 with MESSAGE.
raw_fault() {
    local want
    raw "$1"
    want="{\"fault_message\":$(json_str "$2")}"
    if [[ "$RAW" == "HTTP/1.1 400 Bad Request"* && "$RAW" == *"$want" ]]; then
        pass
        schema_log Error "raw $(basename "$1")" "$want"
    else
        fail "raw $(basename "$1"): got: $RAW"$'\n'"      expected a 400 with $want"
    fi
}

# schema_run NODE_TOOLS SPEC: validates every logged body against the spec.
schema_run() {
    if ! [ -f "$2" ]; then
        fail "schema check: no specification at $2 (shared/ must sit beside the repository)"
        return
    fi
    if node "$1/check.js" "$2" "$SCHEMA_LOG"; then pass; else fail "schema check"; fi
}

summary() {
    echo "$PASS passed, $FAIL failed, $SKIP skipped"
    [ "$FAIL" -eq 0 ]
}
