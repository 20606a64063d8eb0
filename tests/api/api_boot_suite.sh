#!/usr/bin/env bash
# api_boot_suite.sh: boots SDK guests through the API and the config file:
# the getting-started sequence, the post-boot rules against a running guest,
# pause and resume, a rejected guest, serial output, metrics at exit, and a
# GET /vm/config fed back as a config file. Needs /dev/kvm and the guests:
# without them it says SKIPPED and exits 77 (ctest shows the test skipped).
#
#   api_boot_suite.sh EMBER HELLO WAIT_GUEST SCHEMA_TOOLS SPEC
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
HELLO=$2
WAITG=$3
TOOLS=$4
SPEC=$5

if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
    echo "SKIPPED: api_boot_suite needs read-write access to /dev/kvm (uid $(id -u))"
    exit 77
fi
if [ "$(id -u)" -ne 0 ] || ! [ -c /dev/net/tun ]; then
    echo "SKIPPED: api_boot_suite boots a guest with a network interface: needs root and /dev/net/tun (uid $(id -u))"
    exit 77
fi
for g in "$HELLO" "$WAITG"; do
    if ! [ -f "$g" ]; then
        echo "SKIPPED: api_boot_suite: guest $g was not built (is guest-sdk in the build?)"
        exit 77
    fi
done
pick_ember "$1"

AFTER="The requested operation is not supported after starting the microVM."

# wait_output TEXT: polls the guest console (bounded) until TEXT shows up.
wait_output() {
    for _ in $(seq 1 2000); do
        grep -qF "$1" "$WORK/stdout" && return 0
        alive || break
        sleep 0.01
    done
    return 1
}

echo "== getting started: machine-config, boot-source, InstanceStart"
start_ember --level Warning
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":64}' 204
expect PUT /boot-source "{\"kernel_image_path\":\"$HELLO\",\"boot_args\":\"a b --exit 3\"}" 204
expect GET / "" 200 - InstanceInfo
expect PUT /actions '{"action_type":"InstanceStart"}' 204
wait_exit
check "ember exits with the guest's status (3, got $EXIT_STATUS)" test "$EXIT_STATUS" -eq 3
check "the guest's output" grep -qx 'Hello from ember!' "$WORK/stdout"
check "the guest's arguments" grep -qx 'argv\[3\] = "--exit"' "$WORK/stdout"
check "the socket is removed when the guest ends" test ! -e "$SOCK"

echo "== a guest the monitor rejects, then a good one"
printf 'not an ELF' >"$WORK/bad-kernel"
start_ember --level Off
expect PUT /boot-source "{\"kernel_image_path\":\"$WORK/bad-kernel\"}" 204
expect PUT /actions '{"action_type":"InstanceStart"}' 400
check "vm_create's message names the file: $RESP" grep -qF "$WORK/bad-kernel" <<<"$RESP"
expect GET / "" 200 "{\"app_name\":\"ember\",\"id\":\"anonymous-instance\",\"state\":\"Not started\",\"vmm_version\":\"$VERSION\"}" InstanceInfo
expect PUT /boot-source "{\"kernel_image_path\":\"$HELLO\"}" 204
expect PUT /actions '{"action_type":"InstanceStart"}' 204
wait_exit
check "the retried start boots (status $EXIT_STATUS)" test "$EXIT_STATUS" -eq 0

echo "== after boot: a running guest"
truncate -s 1M "$WORK/disk.img" "$WORK/disk2.img"
start_ember --level Info --log-path "$WORK/ember.log" --metrics-path "$WORK/metrics.json"
expect PUT /boot-source "{\"kernel_image_path\":\"$WAITG\",\"boot_args\":\"60\"}" 204
expect PUT /drives/rootfs "{\"drive_id\":\"rootfs\",\"is_root_device\":true,\"path_on_host\":\"$WORK/disk.img\"}" 204
# The interface's tap is made by ember itself (TUNSETIFF creates it) under a
# name of this run's own, so that no other tap on the host is taken.
TAP="ebs$$"
expect PUT /network-interfaces/eth0 "{\"iface_id\":\"eth0\",\"host_dev_name\":\"$TAP\"}" 204
expect PUT /actions '{"action_type":"InstanceStart"}' 204
check "the guest runs" wait_output "api_wait: up"
expect GET / "" 200 "{\"app_name\":\"ember\",\"id\":\"anonymous-instance\",\"state\":\"Running\",\"vmm_version\":\"$VERSION\"}" InstanceInfo
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":256}' "$AFTER"
fault PATCH /machine-config '{"mem_size_mib":256}' "$AFTER"
fault PUT /boot-source "{\"kernel_image_path\":\"$HELLO\"}" "$AFTER"
fault PUT /drives/d2 "{\"drive_id\":\"d2\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\"}" "$AFTER"
fault PUT /network-interfaces/eth1 '{"iface_id":"eth1","host_dev_name":"tap1"}' "$AFTER"
fault PUT /vsock "{\"guest_cid\":3,\"uds_path\":\"$WORK/v.sock\"}" "$AFTER"
fault PUT /logger '{"level":"Debug"}' "$AFTER"
fault PUT /metrics "{\"metrics_path\":\"$WORK/m2\"}" "$AFTER"
fault PUT /serial "{\"serial_out_path\":\"$WORK/s\"}" "$AFTER"
fault PUT /actions '{"action_type":"InstanceStart"}' "$AFTER"
# A body is parsed before the state is looked at; its fields after.
fault PUT /machine-config '{"vcpu_count":1' "An error occurred when deserializing the json body of a request: '}' expected near end of file at line 1 column 15."
expect GET /machine-config "" 200 - MachineConfiguration
expect GET /vm/config "" 200 - FullVmConfiguration
expect PATCH /drives/rootfs "{\"drive_id\":\"rootfs\",\"path_on_host\":\"$WORK/disk2.img\"}" 204
expect PATCH /drives/rootfs '{"drive_id":"rootfs","rate_limiter":{"ops":{"size":100,"refill_time":1000}}}' 204
fault PATCH /drives/nope '{"drive_id":"nope"}' 'Drive config error: Unable to patch the block device: drive "nope" does not exist. Please verify the request arguments.'
fault PATCH /drives/rootfs '{"drive_id":"rootfs","is_read_only":true}' 'An error occurred when deserializing the json body of a request: unknown field `is_read_only`, expected one of `drive_id`, `path_on_host`, `rate_limiter`.'
fault PATCH /drives/rootfs '{"drive_id":"rootfs","path_on_host":"/nonexistent.img"}' 'Drive config error: Unable to patch the block device: Error manipulating the backing file: No such file or directory (os error 2) /nonexistent.img Please verify the request arguments. (drive "rootfs")'
expect PATCH /network-interfaces/eth0 '{"iface_id":"eth0","rx_rate_limiter":{"bandwidth":{"size":1000,"refill_time":100}}}' 204
fault PATCH /network-interfaces/nope '{"iface_id":"nope"}' 'Network config error: Unable to update the net device: network interface "nope" does not exist'
fault PATCH /network-interfaces/eth0 '{"iface_id":"eth0","host_dev_name":"tap9"}' 'An error occurred when deserializing the json body of a request: unknown field `host_dev_name`, expected one of `iface_id`, `rx_rate_limiter`, `tx_rate_limiter`.'
expect GET /vm/config "" 200 - FullVmConfiguration
check "GET /vm/config shows the patched drive" grep -qF "$WORK/disk2.img" <<<"$RESP"
fault PUT /actions '{"action_type":"SendCtrlAltDel"}' 'ember does not offer SendCtrlAltDel yet: SDK guests have no keyboard controller'
expect PUT /actions '{"action_type":"FlushMetrics"}' 204

echo "== pause and resume"
expect PATCH /vm '{"state":"Paused"}' 204
expect GET / "" 200 "{\"app_name\":\"ember\",\"id\":\"anonymous-instance\",\"state\":\"Paused\",\"vmm_version\":\"$VERSION\"}" InstanceInfo
expect PATCH /vm '{"state":"Paused"}' 204
expect PATCH /vm '{"state":"Resumed"}' 204
expect GET / "" 200 "{\"app_name\":\"ember\",\"id\":\"anonymous-instance\",\"state\":\"Running\",\"vmm_version\":\"$VERSION\"}" InstanceInfo
expect PATCH /vm '{"state":"Resumed"}' 204
check "the guest is still running" alive
kill -TERM "$EMBER_PID"
wait_exit
check "SIGTERM ends ember with 128+15 (got $EXIT_STATUS)" test "$EXIT_STATUS" -eq 143
check "log: the start" grep -q '\] microVM started: ' "$WORK/ember.log"
check "log: pause and resume" grep -q "'pause vm' API request took" "$WORK/ember.log"
check "metrics: lines at configuration, FlushMetrics and exit" test "$(wc -l <"$WORK/metrics.json")" -ge 3
check "metrics: pauses counted" grep -q '"pauses":1' "$WORK/metrics.json"

echo "== serial output to a file"
start_ember --level Off
expect PUT /boot-source "{\"kernel_image_path\":\"$HELLO\"}" 204
expect PUT /serial "{\"serial_out_path\":\"$WORK/serial.out\"}" 204
expect PUT /actions '{"action_type":"InstanceStart"}' 204
wait_exit
check "the guest console went to serial_out_path" grep -qx 'Hello from ember!' "$WORK/serial.out"
check "and not to stdout" test ! -s "$WORK/stdout"

echo "== metrics at exit when the guest ends"
start_ember --level Off --metrics-path "$WORK/m-exit.json"
expect PUT /boot-source "{\"kernel_image_path\":\"$HELLO\"}" 204
expect PUT /actions '{"action_type":"InstanceStart"}' 204
wait_exit
check "metrics: a line at start and one at exit" test "$(wc -l <"$WORK/m-exit.json")" -eq 2
check "metrics: InstanceStart counted in the line at exit" grep -q '"actions_count":1,' <<<"$(tail -n 1 "$WORK/m-exit.json")"

echo "== config file, with and without the API"
cat >"$WORK/config.json" <<JSON
{
  "boot-source": {"kernel_image_path": "$HELLO", "boot_args": "cfg --exit 5"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 64, "smt": false},
  "drives": [{"drive_id": "rootfs", "is_root_device": true, "path_on_host": "$WORK/disk.img"}],
  "network-interfaces": [],
  "logger": {"level": "Warning"}
}
JSON
"$EMBER" --config-file "$WORK/config.json" --no-api >"$WORK/stdout" 2>"$WORK/stderr" </dev/null
st=$?
check "--config-file --no-api: the guest's status (5, got $st)" test "$st" -eq 5
check "--config-file --no-api: the guest's arguments" grep -qx 'argv\[1\] = "cfg"' "$WORK/stdout"
cat >"$WORK/config-wait.json" <<JSON
{"boot-source": {"kernel_image_path": "$WAITG", "boot_args": "60"}, "logger": {"level": "Off"}}
JSON
rm -f "$SOCK"
"$EMBER" --api-sock "$SOCK" --config-file "$WORK/config-wait.json" >"$WORK/stdout" 2>"$WORK/stderr" &
EMBER_PID=$!
wait_socket
expect GET / "" 200 "{\"app_name\":\"ember\",\"id\":\"anonymous-instance\",\"state\":\"Running\",\"vmm_version\":\"$VERSION\"}" InstanceInfo
fault PUT /boot-source "{\"kernel_image_path\":\"$HELLO\"}" "$AFTER"
expect GET /vm/config "" 200 - FullVmConfiguration
stop_ember

echo "== GET /vm/config is a config file"
start_ember --level Off
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":96}' 204
expect PUT /boot-source "{\"kernel_image_path\":\"$HELLO\",\"boot_args\":\"round trip --exit 9\"}" 204
expect PUT /drives/rootfs "{\"drive_id\":\"rootfs\",\"is_root_device\":true,\"path_on_host\":\"$WORK/disk.img\",\"rate_limiter\":{\"ops\":{\"size\":5,\"refill_time\":10}}}" 204
expect PUT /vsock "{\"guest_cid\":3,\"uds_path\":\"$WORK/v.sock\"}" 204
expect GET /vm/config "" 200 - FullVmConfiguration
printf '%s' "$RESP" >"$WORK/exported.json"
stop_ember
"$EMBER" --config-file "$WORK/exported.json" --no-api >"$WORK/stdout" 2>"$WORK/stderr" </dev/null
st=$?
check "the exported configuration boots (status 9, got $st)" test "$st" -eq 9
check "with its arguments" grep -qx 'argv\[2\] = "trip"' "$WORK/stdout"

echo "== PUT /vsock: a function answers through the Unix-socket bridge"
FAAS="$(dirname "$HELLO")/faas-echo"
if [ -f "$FAAS" ]; then
    start_ember --level Off --metrics-path "$WORK/m-vsock.json"
    expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":16}' 204
    expect PUT /boot-source "{\"kernel_image_path\":\"$FAAS\"}" 204
    expect PUT /vsock "{\"guest_cid\":3,\"uds_path\":\"$WORK/fn.sock\"}" 204
    expect PUT /actions '{"action_type":"InstanceStart"}' 204
    out=$(printf 'payload through the api' | "$EMBER" invoke --uds "$WORK/fn.sock" --wait --timeout 10000)
    check "ember invoke gets the echo back (got \"$out\")" test "$out" = "payload through the api"
    expect PUT /actions '{"action_type":"FlushMetrics"}' 204
    check "metrics: vsock bytes counted" grep -Eq '"vsock":\{[^}]*"rx_bytes_count":[1-9]' "$WORK/m-vsock.json"
    stop_ember
else
    echo "SKIPPED: $FAAS was not built"
fi

echo "== schema of every answer"
schema_run "$TOOLS" "$SPEC"
summary
