#!/usr/bin/env bash
# api_cli_suite.sh: the command line of `ember` in API mode: flags, exit
# codes (0, 1, 152, 153), config-file errors, the log line format and metrics
# as JSON lines to a file and to a FIFO. Needs no KVM.
#
#   api_cli_suite.sh EMBER SCHEMA_TOOLS
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
pick_ember "$1"
TOOLS=$2

# run_status WANT ARGS...: runs ember to its end; checks the exit status.
run_status() {
    local want=$1
    shift
    "$EMBER" "$@" >"$WORK/out" 2>"$WORK/err" </dev/null
    local st=$?
    if [ "$st" -eq "$want" ]; then
        pass
    else
        fail "ember $*: exit status $st, expected $want; stderr: $(head -c 300 "$WORK/err")"
    fi
}
stderr_has() { check "stderr of the last run has: $1" grep -qF -- "$1" "$WORK/err"; }

echo "== flags and exit codes"
run_status 0 --version
check "--version prints the version" grep -qx "ember v$VERSION" "$WORK/out"
run_status 0 --help
check "--help lists --api-sock" grep -q -- "--api-sock PATH" "$WORK/out"
run_status 153 --bogus
stderr_has "ember: Arguments parsing error: Found argument 'bogus' which wasn't expected, or isn't valid in this context."
run_status 153 stray
stderr_has "ember: Arguments parsing error: Found argument 'stray' which wasn't expected, or isn't valid in this context."
run_status 153 --api-sock
stderr_has "ember: Arguments parsing error: The argument 'api-sock' requires a value, but none was supplied."
run_status 153 --level Loud
stderr_has "ember: invalid --level 'Loud': Error, Warning, Info, Debug, Trace or Off"
run_status 153 --id "bad id"
stderr_has "ember: invalid --id 'bad id': 1 to 64 characters of A-Z, a-z, 0-9 and -"
run_status 153 --http-api-max-payload-size 0
stderr_has "ember: invalid --http-api-max-payload-size '0': a number of bytes from 1 to 67108864"
run_status 153 --prebuild-mem 1
stderr_has "ember: invalid --prebuild-mem '1': 0, or a MiB count from 2 to 3072"
run_status 153 --prebuild-mem 3073
stderr_has "ember: invalid --prebuild-mem '3073': 0, or a MiB count from 2 to 3072"
run_status 153 --prebuild-mem lots
stderr_has "ember: invalid --prebuild-mem 'lots': 0, or a MiB count from 2 to 3072"
run_status 153 --start-time-us -5
stderr_has "ember: invalid --start-time-us '-5'"
run_status 153 --no-api
stderr_has "ember: Arguments parsing error: Argument 'config-file' required, but not found. (--no-api needs --config-file)"
run_status 153 --show-level=yes
stderr_has "ember: --show-level takes no value"
: >"$WORK/taken.sock"
run_status 1 --api-sock "$WORK/taken.sock"
stderr_has "ember: Failed to open the API socket at: $WORK/taken.sock. Check that it is not already used."
run_status 1 --api-sock "$WORK/a.sock" --log-path /nonexistent/dir/log
stderr_has "ember: log /nonexistent/dir/log: No such file or directory"
run_status 1 --api-sock "$WORK/a.sock" --metrics-path /nonexistent/dir/m
stderr_has "ember: metrics /nonexistent/dir/m: No such file or directory"

echo "== config file errors (152)"
printf 'not an ELF' >"$WORK/kernel"
cfg() { printf '%s' "$1" >"$WORK/config.json"; }
run_status 152 --config-file "$WORK/missing.json" --no-api
stderr_has "ember: config file $WORK/missing.json: unable to open $WORK/missing.json: No such file or directory"
cfg '{"boot-source": '
run_status 152 --config-file "$WORK/config.json" --no-api
stderr_has "ember: config file $WORK/config.json: unexpected token near end of file (line 1, column 16)"
cfg '[]'
run_status 152 --config-file "$WORK/config.json" --no-api
stderr_has "ember: config file $WORK/config.json: the configuration must be a JSON object"
cfg '{"boot_source": {}}'
run_status 152 --config-file "$WORK/config.json" --no-api
stderr_has 'config file: ignoring the unknown key "boot_source"'
stderr_has '"boot-source" is missing: the config file must name the guest to boot'
cfg "{\"boot-source\": {\"kernel_image_path\": \"$WORK/kernel\"}, \"balloon\": {\"amount_mib\": 1, \"deflate_on_oom\": false}}"
run_status 152 --config-file "$WORK/config.json" --no-api
stderr_has '"balloon": ember does not offer the balloon device'
cfg '{"machine-config": {"vcpu_count": 1, "mem_size_mib": 128}}'
run_status 152 --config-file "$WORK/config.json" --no-api
stderr_has '"boot-source" is missing: the config file must name the guest to boot'
cfg "{\"boot-source\": {\"kernel_image_path\": \"$WORK/kernel\"}, \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 128}}"
run_status 152 --config-file "$WORK/config.json" --no-api
stderr_has '"machine-config": Machine config error: field "vcpu_count" must be 1: ember runs single-vCPU microVMs'
cfg "{\"boot-source\": {\"kernel_image_path\": \"$WORK/kernel\"}, \"drives\": [{\"drive_id\": \"a\", \"is_root_device\": false, \"path_on_host\": \"$WORK/nope.img\"}]}"
run_status 152 --config-file "$WORK/config.json" --no-api
stderr_has "\"drives\"[0]: Drive config error: Unable to create the virtio block device: Error manipulating the backing file: No such file or directory (os error 2) $WORK/nope.img (drive \"a\")"
cfg "{\"boot-source\": {\"kernel_image_path\": \"$WORK/kernel\"}, \"network-interfaces\": {}}"
run_status 152 --config-file "$WORK/config.json" --no-api
stderr_has '"network-interfaces" must be an array'
# A guest that is not an ELF is rejected by the monitor's loader: 152 too.
cfg "{\"boot-source\": {\"kernel_image_path\": \"$WORK/kernel\"}}"
run_status 152 --config-file "$WORK/config.json" --no-api
stderr_has "$WORK/kernel"

echo "== logs"
start_ember --id vm-42 --log-path "$WORK/ember.log" --level Debug --show-level --show-log-origin
api GET /
stop_ember
check "log: a line per event with time, id, thread, level and origin" \
    grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9} \[vm-42:main:INFO:api-socket/api_main\.c:[0-9]+\] Running ember v' "$WORK/ember.log"
check "log: the request at Info, in Firecracker's words" grep -Eq '\[vm-42:main:INFO:api-socket/api_request_log\.c:[0-9]+\] The API server received a Get request on "/"\.$' "$WORK/ember.log"
check "log: SIGTERM" grep -q 'received SIGTERM, exiting' "$WORK/ember.log"
start_ember --log-path "$WORK/plain.log"
stop_ember
check "log: no level nor origin by default" grep -Eq '^[^ ]+ \[anonymous-instance:main\] Running ember v' "$WORK/plain.log"
start_ember --log-path "$WORK/quiet.log" --level Off
stop_ember
check "log: --level Off writes nothing" test ! -s "$WORK/quiet.log"

echo "== metrics"
# FlushMetrics needs a running microVM (as in Firecracker): api_fc_suite.sh
# flushes after boot; here the lines at configuration and at exit.
start_ember --metrics-path "$WORK/metrics.json" --level Off
for _ in 1 2 3; do api GET /; done
api PUT /machine-config '{"vcpu_count":3,"mem_size_mib":128}'
api PUT /actions '{"action_type":"FlushMetrics"}'
check "metrics: FlushMetrics before boot is refused" test "$STATUS" = 400
stop_ember
check "metrics: lines at start and at exit" test "$(wc -l <"$WORK/metrics.json")" -eq 2
node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const [first, last] = lines;
const want = (c, m) => { if (!c) { console.log("FAIL metrics: " + m); process.exitCode = 1; } };
want(first.get_api_requests.instance_info_count === 0, "the first line counts nothing yet");
want(last.get_api_requests.instance_info_count === 3, "three GET / before exit");
want(last.put_api_requests.machine_cfg_count === 1 && last.put_api_requests.machine_cfg_fails === 1, "one failed PUT /machine-config");
want(last.put_api_requests.actions_count === 1 && last.put_api_requests.actions_fails === 1, "one refused FlushMetrics");
want(last.ember.signals_sigterm === 1, "SIGTERM is counted (in ember'"'"'s group) in the line at exit");
want(last.api_server.process_startup_time_us > 0, "process_startup_time_us is set");
for (const l of lines) want(typeof l.utc_timestamp_ms === "number" && l.vcpu && l.block && l.net && l.vsock && l.seccomp && l.vmm && l.ember, "every group on every line");
' "$WORK/metrics.json"
check "metrics: counters are deltas per resource and method" test $? -eq 0
mkfifo "$WORK/metrics.fifo"
start_ember --metrics-path "$WORK/metrics.fifo" --level Off
head -n 1 "$WORK/metrics.fifo" >"$WORK/fifo.out" &
reader=$!
wait "$reader"
check "metrics to a FIFO: the first line read" test "$(grep -c '"utc_timestamp_ms"' "$WORK/fifo.out")" -eq 1
stop_ember
# Nobody reads the FIFOs: ember must not block, it drops and counts lines.
mkfifo "$WORK/log.fifo"
start_ember --metrics-path "$WORK/metrics.fifo" --log-path "$WORK/log.fifo" --level Info
for _ in $(seq 1 300); do api GET /; done
check "log and metrics to FIFOs nobody reads: the API still answers" test "$STATUS" = 200
stop_ember
check "... and ember exits at SIGTERM" test ! -e "$SOCK"

summary
