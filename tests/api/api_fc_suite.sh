#!/usr/bin/env bash
# api_fc_suite.sh: ember as a drop-in for Firecracker's tooling. The cases
# are ember's own, written from reading Firecracker's integration tests
# (test_api.py, test_cmd_line_start.py, test_logging.py, test_metrics.py),
# its source and micro-http: whole answers compared as its tests compare
# them, fault messages that contain the words its tests match, the metrics
# line checked by a validator written from its fcmetrics.py, its log lines,
# its HTTP rules and its command line. Its canonical config file
# (fc_vm_config.json: tests/framework/vm_config.json with an SDK guest and
# one vCPU) must boot. Cases that boot a guest need /dev/kvm and say SKIPPED
# without it; the rest always run.
#
#   api_fc_suite.sh EMBER RAW_CLIENT HELLO WAIT_GUEST SCHEMA_TOOLS SPEC
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
pick_ember "$1"
RAW_CLIENT=$2
HELLO=$3
WAITG=$4
TOOLS=$5
SPEC=$6
SAME="python3 $here/json_same.py"

BEFORE="The requested operation is not supported before starting the microVM."
DESER="An error occurred when deserializing the json body of a request: "

can_boot() {
    [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ -f "$HELLO" ] && [ -f "$WAITG" ]
}
if ! can_boot; then
    echo "NOTE: no read-write /dev/kvm or no SDK guests ($HELLO, $WAITG):" \
        "the cases that boot a guest are SKIPPED"
fi

# has METHOD PATH BODY STATUS TEXT: the answer has STATUS and its body
# contains TEXT (Firecracker's tests match fault messages by substring).
has() {
    local m=$1 p=$2 b=$3 st=$4 text=$5
    if [ -n "$b" ]; then api "$m" "$p" "$b"; else api "$m" "$p"; fi
    if [ "$STATUS" != "$st" ]; then
        fail "$m $p $b: status $STATUS, expected $st; body: $RESP"
        return 1
    fi
    if [[ "$RESP" != *"$text"* ]]; then
        fail "$m $p $b: body $RESP"$'\n'"      does not contain: $text"
        return 1
    fi
    [ "$st" = 400 ] && schema_log Error "$m $p" "$RESP"
    pass
}

# same_json NAME EXPECTED_FILE: $RESP equals the JSON in EXPECTED_FILE.
same_json() {
    local out
    if out=$(printf '%s' "$RESP" | $SAME - "$2" 2>&1); then
        pass
    else
        fail "$1: the answer differs from $2:"$'\n'"$out"
    fi
}

printf 'kernel' >"$WORK/kernel"
: >"$WORK/disk.img"
: >"$WORK/disk2.img"

echo "== GET /vm/config: Firecracker's 13 keys, null where unset"
start_ember
expect GET /vm/config "" 200 - FullVmConfiguration
cat >"$WORK/empty-config.json" <<'JSON'
{"balloon": null, "drives": [],
 "boot-source": {"kernel_image_path": "", "initrd_path": null, "boot_args": null},
 "cpu-config": null, "logger": null,
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 128, "smt": false,
                    "track_dirty_pages": false, "huge_pages": "None"},
 "metrics": null, "mmds-config": null, "network-interfaces": [], "vsock": null,
 "entropy": null, "pmem": [], "memory-hotplug": null}
JSON
same_json "GET /vm/config before any PUT" "$WORK/empty-config.json"
expect PUT /boot-source "{\"kernel_image_path\":\"$WORK/kernel\"}" 204
expect PUT /drives/data "{\"drive_id\":\"data\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\",\"rate_limiter\":{\"bandwidth\":{\"size\":1000,\"refill_time\":100},\"ops\":{\"size\":0,\"refill_time\":100}}}" 204
expect PUT /drives/rootfs "{\"drive_id\":\"rootfs\",\"is_root_device\":true,\"path_on_host\":\"$WORK/disk.img\",\"is_read_only\":true,\"rate_limiter\":{\"ops\":{\"size\":5,\"one_time_burst\":0,\"refill_time\":0}}}" 204
expect PUT /network-interfaces/1 '{"iface_id":"1","host_dev_name":"fctap1","guest_mac":"06:00:AC:10:00:02","tx_rate_limiter":{"bandwidth":{"size":1000000,"refill_time":100,"one_time_burst":42}}}' 204
expect PUT /vsock "{\"vsock_id\":\"vsock1\",\"guest_cid\":15,\"uds_path\":\"$WORK/v.sock\"}" 204
expect PUT /logger "{\"log_path\":\"$WORK/fc.log\",\"level\":\"Info\"}" 204
expect PUT /metrics "{\"metrics_path\":\"$WORK/fc.metrics\"}" 204
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":256,"cpu_template":"None"}' 204
expect GET /vm/config "" 200 - FullVmConfiguration
cat >"$WORK/full-config.json" <<JSON
{"balloon": null,
 "drives": [
  {"drive_id": "rootfs", "partuuid": null, "is_root_device": true, "cache_type": "Unsafe",
   "is_read_only": true, "path_on_host": "$WORK/disk.img", "rate_limiter": null,
   "io_engine": "Sync", "socket": null},
  {"drive_id": "data", "partuuid": null, "is_root_device": false, "cache_type": "Unsafe",
   "is_read_only": false, "path_on_host": "$WORK/disk2.img",
   "rate_limiter": {"bandwidth": {"size": 1000, "one_time_burst": null, "refill_time": 100},
                    "ops": null},
   "io_engine": "Sync", "socket": null}],
 "boot-source": {"kernel_image_path": "$WORK/kernel", "initrd_path": null, "boot_args": null},
 "cpu-config": null, "logger": null,
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 256, "smt": false,
                    "track_dirty_pages": false, "huge_pages": "None"},
 "metrics": null, "mmds-config": null,
 "network-interfaces": [
  {"iface_id": "1", "host_dev_name": "fctap1", "guest_mac": "06:00:ac:10:00:02", "mtu": null,
   "rx_rate_limiter": null,
   "tx_rate_limiter": {"bandwidth": {"size": 1000000, "one_time_burst": 42, "refill_time": 100},
                       "ops": null}}],
 "vsock": {"guest_cid": 15, "uds_path": "$WORK/v.sock"},
 "entropy": null, "pmem": [], "memory-hotplug": null}
JSON
same_json "GET /vm/config with every resource ember offers" "$WORK/full-config.json"

echo "== machine-config: sizes Firecracker accepts"
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":4096}' 204
expect GET /machine-config "" 200 '{"vcpu_count":1,"mem_size_mib":4096,"smt":false,"track_dirty_pages":false,"huge_pages":"None"}' MachineConfiguration
expect PATCH /machine-config '{"mem_size_mib":1}' 204
has PUT /actions '{"action_type":"InstanceStart"}' 400 "Invalid Memory Configuration: ember gives a guest 2 to 3072 MiB of memory, not 1 MiB"
expect GET / "" 200 - InstanceInfo
check "a refused InstanceStart leaves the microVM not started" grep -q '"Not started"' <<<"$RESP"
has PATCH /machine-config '{"mem_size_mib":0}' 400 "The memory size (MiB) is either 0, or not a multiple of the configured page size."
has PUT /machine-config '{"vcpu_count":1,"mem_size_mib":18446744073709551616}' 400 "error occurred when deserializing the json body of a request: invalid type"
has PUT /machine-config '{"mem_size_mib": 128}' 400 "missing field \`vcpu_count\` at line 1 column 21."
has PUT /machine-config '{"vcpu_count": 2}' 400 "missing field \`mem_size_mib\` at line 1 column 17."
has PUT /machine-config '{"vcpu_count":0,"mem_size_mib":128}' 400 "The number of vCPUs must be greater than 0, less than 32"
has PATCH /machine-config '{}' 400 "Empty PATCH request."
has PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"smt":"random_string"}' 400 "${DESER}invalid type"
has PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"cpu_template":"random_string"}' 400 "${DESER}unknown variant \`random_string\`"
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128}' 204

echo "== fault messages with Firecracker's words"
has PUT /boot-source '{"kernel_image_path":"inexistent_path"}' 400 "Boot source error: The kernel file cannot be opened: No such file or directory (os error 2)"
has PUT /drives/rootfs '{"drive_id":"rootfs","path_on_host":"foo.bar","is_read_only":true,"is_root_device":true}' 400 "No such file or directory"
has PUT /drives/data "{\"drive_id\":\"data\",\"path_on_host\":\"$WORK/disk2.img\",\"is_root_device\":true}" 400 "A root block device already exists"
has PUT /drives/other "{\"drive_id\":\"data\",\"path_on_host\":\"$WORK/disk2.img\",\"is_root_device\":false}" 400 "The id from the path does not match the id from the body!"
has PUT /drives/b@d "{\"drive_id\":\"b@d\",\"path_on_host\":\"$WORK/disk2.img\",\"is_root_device\":false}" 400 "API Resource IDs can only contain alphanumeric characters and underscores."
has PUT /network-interfaces/2 '{"iface_id":"2","host_dev_name":"fctap2","guest_mac":"06:00:ac:10:00:02"}' 400 "The MAC address is already in use: 06:00:ac:10:00:02"
has PUT /network-interfaces/2 '{"iface_id":"2","host_dev_name":"fctap1","guest_mac":"07:00:00:00:00:01"}' 400 "Could not create the network device"
has PUT /drives/data "{\"drive_id\":\"data\",\"path_on_host\":\"$WORK/disk2.img\",\"is_root_device\":false,\"foo\":1}" 400 "${DESER}unknown field \`foo\`, expected one of \`drive_id\`"
has PATCH /drives/data '{"drive_id":"data","path_on_host":"foo.bar"}' 400 "$BEFORE"
has PATCH /network-interfaces/1 '{"iface_id":"1"}' 400 "$BEFORE"
has PATCH /boot-source '{"kernel_image_path":"otherfile"}' 400 "Invalid request method"
has PATCH /logger '{"level":"Error"}' 400 "Invalid request method"
has PUT /metrics "{\"metrics_path\":\"$WORK/fc2.metrics\"}" 400 "Reinitialization of metrics not allowed."
has PUT /actions '{"action_type":"Frobnicate"}' 400 "${DESER}unknown variant \`Frobnicate\`"
stop_ember
start_ember
has PUT /actions '{"action_type":"InstanceStart"}' 400 "Cannot start microvm without kernel configuration."
stop_ember

echo "== metrics: Firecracker's groups and counters, ember's own in \"ember\""
CHECK="python3 $here/fc_metrics_check.py --skip ember"
check "the metrics validator rejects what Firecracker's rejects" python3 "$here/fc_metrics_check.py" --self-test
start_ember --metrics-path "$WORK/m1.json" --level Off
out=$($CHECK --devices block=0,net=0 "$WORK/m1.json") && pass || fail "the line at configuration: $out"
has PUT /actions '{"action_type":"FlushMetrics"}' 400 "$BEFORE"
expect PUT /drives/rootfs "{\"drive_id\":\"rootfs\",\"is_root_device\":true,\"path_on_host\":\"$WORK/disk.img\"}" 204
expect PUT /drives/data "{\"drive_id\":\"data\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\"}" 204
expect PUT /network-interfaces/eth0 '{"iface_id":"eth0","host_dev_name":"fctap0"}' 204
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"cpu_template":"None"}' 204
api GET /machine-config
stop_ember
out=$($CHECK --devices block=2,net=1 "$WORK/m1.json") && pass || fail "the line at exit, two drives and an interface: $out"
python3 - "$WORK/m1.json" <<'PY' && pass || fail "the line at exit counts what happened"
import json, sys
l = json.loads(open(sys.argv[1]).read().splitlines()[-1])
ok = (l["put_api_requests"]["drive_count"] == 2 and l["put_api_requests"]["network_count"] == 1
      and l["put_api_requests"]["actions_fails"] == 1 and l["get_api_requests"]["machine_cfg_count"] == 1
      and l["deprecated_api"]["deprecated_http_api_calls"] == 1
      and "block_rootfs" in l and "block_data" in l and "net_eth0" in l
      and l["ember"]["signals_sigterm"] == 1 and l["api_server"]["process_startup_time_us"] > 0)
print(json.dumps({k: l.get(k) for k in ("block_scratch", "patch_api_requests", "ember")})) if not ok else None
sys.exit(0 if ok else 1)
PY
start_ember --level Off
expect PUT /metrics "{\"metrics_path\":\"$WORK/m2.json\",\"emit_id\":true,\"properties\":{\"tenant\":\"t1\"},\"some_future_field\":1}" 204
stop_ember
out=$($CHECK "$WORK/m2.json") && pass || fail "a line with id and properties: $out"

echo "== HTTP: headers as micro-http writes them"
start_ember --level Off
# rawreq METHOD PATH [BODY]: one request, answer in RAW (headers included).
rawreq() {
    local b=${3:-}
    if [ -n "$b" ]; then
        printf '%s %s HTTP/1.1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s' "$1" "$2" "${#b}" "$b"
    else
        printf '%s %s HTTP/1.1\r\nConnection: close\r\n\r\n' "$1" "$2"
    fi >"$WORK/rawreq"
    raw "$WORK/rawreq"
}
printf 'GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n' >"$WORK/h1"
raw "$WORK/h1"
check "answers say Connection: keep-alive" grep -q $'^Connection: keep-alive\r$' <<<"$RAW"
rawreq PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"cpu_template":"None"}'
check "cpu_template: Deprecation: true" grep -q $'^Deprecation: true\r$' <<<"$RAW"
rawreq PUT /vsock '{"vsock_id":"vsock1","guest_cid":15,"uds_path":"/tmp/x.sock"}'
check "vsock_id: Deprecation: true" grep -q $'^Deprecation: true\r$' <<<"$RAW"
rawreq PUT /vsock '{"guest_cid":15,"uds_path":"/tmp/x.sock"}'
check "no deprecated field, no Deprecation header" test -n "$RAW" -a "$(grep -c '^Deprecation' <<<"$RAW")" -eq 0
has GET /machine-config/ "" 200 '"mem_size_mib"'
has GET /vm/config/ "" 200 '"machine-config"'
has PUT /drives/ '{"drive_id":"x","path_on_host":"/x","is_root_device":false}' 400 "The ID cannot be empty."
stop_ember

echo "== HTTP: versions and connections as micro-http serves them"
start_ember --level Off
printf 'GET / HTTP/2.0\r\n\r\n' >"$WORK/v2"
raw "$WORK/v2"
check "HTTP/2.0 is refused with a 400 ($(head -1 <<<"$RAW"))" grep -q '^HTTP/1.1 400' <<<"$RAW"
check "... in micro-http's words" grep -q 'Invalid HTTP Version: Unsupported HTTP version.' <<<"$RAW"
printf 'GET / HTTP/1.0\r\n\r\n' >"$WORK/v10"
raw "$WORK/v10"
check "HTTP/1.0 is served" grep -q '^HTTP/1.1 200' <<<"$RAW"
printf 'GET / HTTP/1.1\r\nX-Never: ' >"$WORK/never"
hold=()
for _ in $(seq 1 10); do
    "$RAW_CLIENT" "$SOCK" --hold <"$WORK/never" &
    hold+=($!)
done
# Wait (bounded) until ember has accepted the ten: its listener and ten
# connections are sockets among its file descriptors.
socks() { find "/proc/$EMBER_PID/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
for _ in $(seq 1 500); do
    [ "$(socks)" -ge 11 ] && break
    sleep 0.02
done
# The 11th sends nothing: a request the server never reads would make the
# kernel reset the connection when the server closes it (as with micro-http).
: >"$WORK/eleventh"
raw "$WORK/eleventh"
check "an 11th connection is answered 503 ($(head -1 <<<"$RAW"))" grep -q '^HTTP/1.1 503 Service Unavailable' <<<"$RAW"
check "... saying why" grep -q 'Too many open connections' <<<"$RAW"
kill "${hold[@]}" 2>/dev/null
wait "${hold[@]}" 2>/dev/null
for _ in $(seq 1 200); do
    api GET /
    [ "$STATUS" = 200 ] && break
    sleep 0.02
done
check "once they close, the API answers again" test "$STATUS" = 200
stop_ember

echo "== logs: Firecracker's lines at Info"
start_ember --id fc-log-1 --level Info
expect PUT /logger "{\"log_path\":\"$WORK/req.log\",\"level\":\"Info\",\"show_level\":true,\"show_log_origin\":true}" 204
api PATCH /machine-config '{"vcpu_count": 1}'
api PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 128}'
api GET /machine-config
api PUT /mmds '{"latest": {"meta-data": {"ami-id": "dummy"}}}'
api PUT /boot-source '{"kernel_image_path": "inexistent_path"}'
stop_ember
L="$WORK/req.log"
check "log: a Patch request with its body" grep -qF 'The API server received a Patch request on "/machine-config" with body "{\"vcpu_count\": 1}".' "$L"
check "log: a Put request with its body" grep -qF 'The API server received a Put request on "/machine-config" with body' "$L"
check "log: a Get request, no body" grep -qF 'The API server received a Get request on "/machine-config".' "$L"
check "log: /mmds bodies are never written" grep -qxF -e "$(grep -F 'request on "/mmds"' "$L" | head -1)" <(grep -F 'The API server received a Put request on "/mmds".' "$L")
check "log: success" grep -qF 'The request was executed successfully. Status code: 204 No Content.' "$L"
check "log: a failed request with its message" grep -qF 'Received Error. Status code: 400 Bad Request. Message: Boot source error: The kernel file cannot be opened: No such file or directory (os error 2)' "$L"
check "log: the exit line" grep -qF 'ember exiting with error. exit_code=143' "$L"
bad=$(grep -Evc '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9} \[fc-log-1:[^]:]+:(ERROR|WARN|INFO|DEBUG):[^]:]+/[^]:]+:[0-9]+\] ' "$L")
check "log: every line in Firecracker's format (time [id:thread:LEVEL:file:line]), $bad not" test "$bad" -eq 0
start_ember --log-path "$WORK/start.log" --level Info
stop_ember
check "log: the first line says what runs" grep -q '\] Running ember v' <(head -1 "$WORK/start.log")
check "log: the API socket" grep -qF "Listening on API socket (\"$SOCK\")." "$WORK/start.log"

echo "== command line: what Firecracker's jailer and SDKs pass"
# run_st WANT ARGS...: ember's exit status is WANT; stderr in $WORK/err.
run_st() {
    local want=$1
    shift
    "$EMBER" "$@" >"$WORK/out" 2>"$WORK/err" </dev/null
    local st=$?
    check "ember $* exits $want (got $st: $(head -c 200 "$WORK/err"))" test "$st" -eq "$want"
}
err_has() { check "stderr has: $1" grep -qF -- "$1" "$WORK/err"; }
"$EMBER" --version >"$WORK/out"
check "--version keeps ember's name" grep -qx "ember v$VERSION" "$WORK/out"
t0=$(python3 -c 'import time; print(int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6))')
start_ember --start-time-us "$t0" --start-time-cpu-us 0 --parent-cpu-time-us 100 \
    --http-api-max-payload-size 250 --mmds-size-limit 1000 --module api-socket --boot-timer \
    --metrics-path "$WORK/m3.json" --level Info
expect GET / "" 200 "{\"app_name\":\"ember\",\"id\":\"anonymous-instance\",\"state\":\"Not started\",\"vmm_version\":\"$VERSION\"}" InstanceInfo
long=$(head -c 240 /dev/zero | tr '\0' 'm')
has PUT /logger "{\"module\":\"$long\"}" 400 "Request payload with size 253 is larger than the limit of 250 allowed by server."
stop_ember
python3 - "$WORK/m3.json" <<'PY' && pass || fail "--parent-cpu-time-us is added to process_startup_time_cpu_us"
import json, sys
l = json.loads(open(sys.argv[1]).read().splitlines()[-1])
sys.exit(0 if l["api_server"]["process_startup_time_cpu_us"] >= 100 else 1)
PY
run_st 153 --api-sock "$WORK/x.sock" --seccomp-level 2
err_has "Arguments parsing error: Found argument 'seccomp-level' which wasn't expected, or isn't valid in this context."
run_st 153 --api-sock "$WORK/x.sock" --vmm-no-api
err_has "Found argument 'vmm-no-api' which wasn't expected, or isn't valid in this context."
run_st 153 --id a --id b
err_has "The argument 'id' was provided more than once."
run_st 153 --api-sock --id a
err_has "The argument 'api-sock' requires a value, but none was supplied."
: >"$WORK/taken.sock"
run_st 1 --api-sock "$WORK/taken.sock" --log-path "$WORK/taken.log"
err_has "Failed to open the API socket at: $WORK/taken.sock. Check that it is not already used."
check "... logged too, and the exit" grep -q "Failed to open the API socket at: .*ember exiting with error. exit_code=1" <(tr '\n' ' ' <"$WORK/taken.log")
check "... and the file is left alone" test -f "$WORK/taken.sock" -a ! -S "$WORK/taken.sock"
printf '{"latest": {"meta-data": {"ami-id": "ami-12345678", "reservation-id": "r-fea54097"}}}' >"$WORK/metadata.json"
start_ember --metadata "$WORK/metadata.json" --log-path "$WORK/md.log"
expect GET / "" 200 - InstanceInfo
check "--metadata: not started yet" grep -q '"Not started"' <<<"$RESP"
stop_ember
check "--metadata FILE: Firecracker's log line" grep -qF "Successfully added metadata to mmds from file" "$WORK/md.log"
run_st 152 --api-sock "$WORK/y.sock" --metadata "$WORK/nonexisting.json" --log-path "$WORK/md2.log"
check "a missing --metadata file: Firecracker's words" grep -qF "Unable to open or read from the mmds content file" "$WORK/md2.log"
check "... and the reason" grep -qF "No such file or directory" "$WORK/md2.log"
printf '{"latest": {"meta-data": {' >"$WORK/bad-metadata.json"
run_st 152 --api-sock "$WORK/y.sock" --metadata "$WORK/bad-metadata.json" --log-path "$WORK/md3.log"
check "invalid --metadata JSON: Firecracker's words" grep -qF "MMDS error: metadata provided not valid json" "$WORK/md3.log"
run_st 152 --api-sock "$WORK/y.sock" --metadata "$WORK/metadata.json" --mmds-size-limit 30 --log-path "$WORK/md4.log"
check "--mmds-size-limit: too big" grep -qF "Populating MMDS from file failed: The MMDS patch request doesn't fit." "$WORK/md4.log"
run_st 152 --api-sock "$WORK/y.sock" --metadata "$WORK/metadata.json" --http-api-max-payload-size 30 --log-path "$WORK/md5.log"
check "the MMDS limit defaults to the payload limit" grep -qF "Populating MMDS from file failed: The MMDS patch request doesn't fit." "$WORK/md5.log"

echo "== config file: Firecracker's canonical vm_config.json"
CANON="$here/fc_vm_config.json"
mkdir -p "$WORK/canon"
cp "$CANON" "$WORK/canon/vm_config.json"
: >"$WORK/canon/bionic.rootfs.ext4"
# An unknown top-level key is ignored with a warning, as serde ignores it;
# null and [] for devices ember does not offer are accepted.
python3 - "$CANON" "$WORK/canon/extra.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["some-future-key"] = {"x": 1}
c["pmem"] = []
c["balloon"] = None
c["network-interfaces"] = None
json.dump(c, open(sys.argv[2], "w"))
PY
python3 - "$CANON" "$WORK/canon/pmem.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["pmem"] = [{"id": "pmem0", "path_on_host": "bionic.rootfs.ext4", "root_device": False}]
json.dump(c, open(sys.argv[2], "w"))
PY
python3 - "$CANON" "$WORK/canon/bad-mc.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
del c["machine-config"]["vcpu_count"]
json.dump(c, open(sys.argv[2], "w"))
PY
(cd "$WORK/canon" && "$EMBER" --config-file pmem.json --no-api --log-path "$WORK/canon/pmem.log" >/dev/null 2>"$WORK/canon/pmem.err")
st=$?
check "a non-empty \"pmem\" list is refused (status 152, got $st)" test "$st" -eq 152
check "... with a message naming it" grep -q '"pmem": ember does not offer virtio-pmem devices' "$WORK/canon/pmem.err"
(cd "$WORK/canon" && "$EMBER" --config-file bad-mc.json --no-api --log-path "$WORK/canon/bad.log" >/dev/null 2>&1)
st=$?
check "a config file without vcpu_count is refused (status 152, got $st)" test "$st" -eq 152
check "... logged in Firecracker's words" grep -q "Configuration for VMM from one single json failed: .*missing field \`vcpu_count\`" "$WORK/canon/bad.log"
if can_boot; then
    cp "$HELLO" "$WORK/canon/hello"
    (cd "$WORK/canon" && "$EMBER" --config-file vm_config.json --no-api --log-path "$WORK/canon/boot.log" >"$WORK/canon/stdout" 2>"$WORK/canon/stderr" </dev/null)
    st=$?
    check "Firecracker's canonical config file boots (status 0, got $st; $(head -c 300 "$WORK/canon/stderr"))" test "$st" -eq 0
    check "... the guest ran" grep -qx 'Hello from ember!' "$WORK/canon/stdout"
    check "... logged as Firecracker logs it" grep -q "Successfully started microvm that was configured from one single json" "$WORK/canon/boot.log"
    (cd "$WORK/canon" && "$EMBER" --config-file extra.json --no-api --log-path "$WORK/canon/extra.log" >"$WORK/canon/stdout" 2>"$WORK/canon/stderr" </dev/null)
    st=$?
    check "unknown keys, null and [] device lists: boots (status 0, got $st; $(head -c 300 "$WORK/canon/stderr"))" test "$st" -eq 0
    check "... with a warning naming the unknown key" grep -q 'WARN.*some-future-key\|some-future-key' "$WORK/canon/extra.log"
    # With the API: GET /vm/config equals the file (test_config_start_with_api).
    python3 - "$CANON" "$WORK/canon/wait.json" "$WAITG" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["boot-source"]["kernel_image_path"] = sys.argv[3]
c["boot-source"]["boot_args"] = "60"
c["drives"][0]["is_read_only"] = True
json.dump(c, open(sys.argv[2], "w"))
PY
    rm -f "$SOCK"
    (cd "$WORK/canon" && exec "$EMBER" --api-sock "$SOCK" --config-file wait.json --level Off) >"$WORK/stdout" 2>"$WORK/stderr" &
    EMBER_PID=$!
    wait_socket
    expect GET / "" 200 - InstanceInfo
    check "started from the file: Running" grep -q '"state":"Running"' <<<"$RESP"
    expect GET /vm/config "" 200 - FullVmConfiguration
    same_json "GET /vm/config after a config-file start equals the file" "$WORK/canon/wait.json"
    stop_ember
else
    skip "Firecracker's canonical config file boots (no /dev/kvm or guests)"
    skip "GET /vm/config after a config-file start equals the file (no /dev/kvm or guests)"
fi

echo "== after boot: metrics, PATCH /drives, pause and resume"
if can_boot; then
    start_ember --metrics-path "$WORK/boot-m.json" --log-path "$WORK/boot.log" --level Info
    expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":64}' 204
    expect PUT /boot-source "{\"kernel_image_path\":\"$WAITG\",\"boot_args\":\"60\"}" 204
    head -c 1048576 /dev/zero >"$WORK/scratch.img"
    head -c 1048576 /dev/zero >"$WORK/scratch2.img"
    expect PUT /drives/scratch "{\"drive_id\":\"scratch\",\"is_root_device\":false,\"path_on_host\":\"$WORK/scratch.img\"}" 204
    expect PUT /actions '{"action_type":"InstanceStart"}' 204
    expect PUT /actions '{"action_type":"FlushMetrics"}' 204
    out=$($CHECK --devices block=1,net=0 "$WORK/boot-m.json") && pass || fail "the FlushMetrics line of a running microVM: $out"
    has PATCH /drives/scratch '{"drive_id":"scratch"}' 400 "Running method expected different backend."
    has PATCH /drives/scratch '{"drive_id":"scratch","path_on_host":"foo.bar","is_read_only":true}' 400 "unknown field \`is_read_only\`"
    has PATCH /drives/scratch '{"drive_id":"scratch","path_on_host":"foo.bar","io_engine":"Sync"}' 400 "unknown field \`io_engine\`"
    has PATCH /drives/scratch '{"drive_id":"scratch","path_on_host":"foo.bar","is_root_device":false}' 400 "unknown field \`is_root_device\`"
    has PATCH /drives/scratch '{"drive_id":"scratch","path_on_host":"foo.bar"}' 400 "Error manipulating the backing file: No such file or directory (os error 2) foo.bar"
    expect PATCH /drives/scratch "{\"drive_id\":\"scratch\",\"path_on_host\":\"$WORK/scratch2.img\"}" 204
    has PUT /boot-source "{\"kernel_image_path\":\"$WAITG\"}" 400 "The requested operation is not supported after starting the microVM"
    has PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128}' 400 "The requested operation is not supported after starting the microVM"
    expect PATCH /vm '{"state":"Paused"}' 204
    expect PATCH /vm '{"state":"Resumed"}' 204
    expect PUT /actions '{"action_type":"FlushMetrics"}' 204
    out=$($CHECK --devices block=1,net=0 "$WORK/boot-m.json") && pass || fail "the line after PATCH, pause and resume: $out"
    python3 - "$WORK/boot-m.json" <<'PY' && pass || fail "PATCH /drives and pause are counted where Firecracker counts them"
import json, sys
l = json.loads(open(sys.argv[1]).read().splitlines()[-1])
b = l["block_scratch"]
ok = (b["update_count"] == 1 and b["update_fails"] == 0 and l["patch_api_requests"]["drive_count"] == 6
      and l["patch_api_requests"]["drive_fails"] == 5 and l["ember"]["pauses"] == 1
      and l["ember"]["patch_vm_count"] == 2 and l["block"]["update_count"] == 1)
print(json.dumps({k: l.get(k) for k in ("block_scratch", "patch_api_requests", "ember")})) if not ok else None
sys.exit(0 if ok else 1)
PY
    check "log: the pause's latency, as Firecracker logs it" grep -q "'pause vm' API request took [0-9]* us." "$WORK/boot.log"
    stop_ember
else
    skip "after boot: metrics, PATCH /drives, pause and resume (no /dev/kvm or guests)"
fi

echo "== schema of every answer"
schema_run "$TOOLS" "$SPEC"
summary
