#!/usr/bin/env bash
# api_http_suite.sh: the API of a real `ember` before boot, over its Unix
# socket: every endpoint, every validation error with its exact
# fault_message, the endpoints ember does not offer, malformed and hostile
# HTTP, slow and many clients, and the schema of every answer. Needs no KVM.
#
#   api_http_suite.sh EMBER RAW_CLIENT SCHEMA_TOOLS SPEC
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
pick_ember "$1"
RAW_CLIENT=$2
TOOLS=$3
SPEC=$4

AFTER="The requested operation is not supported after starting the microVM."
BEFORE="The requested operation is not supported before starting the microVM."
DEFAULT_MC='{"vcpu_count":1,"mem_size_mib":128,"smt":false,"track_dirty_pages":false,"huge_pages":"None"}'
ID_RULE='an id is 1 to 64 characters of A-Z, a-z, 0-9 and _'
MC_FIELDS='vcpu_count, mem_size_mib, smt, track_dirty_pages, cpu_template, huge_pages'

start_ember

echo "== informational GETs"
expect GET / "" 200 "{\"app_name\":\"ember\",\"id\":\"anonymous-instance\",\"state\":\"Not started\",\"vmm_version\":\"$VERSION\"}" InstanceInfo
expect GET "/?verbose=1" "" 200 - InstanceInfo
expect GET /version "" 200 "{\"firecracker_version\":\"$VERSION\"}" FirecrackerVersion
expect GET /machine-config "" 200 "$DEFAULT_MC" MachineConfiguration
expect GET /vm/config "" 200 "{\"machine-config\":$DEFAULT_MC,\"drives\":[],\"network-interfaces\":[]}" FullVmConfiguration

echo "== machine-config"
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":256}' 204
expect GET /machine-config "" 200 '{"vcpu_count":1,"mem_size_mib":256,"smt":false,"track_dirty_pages":false,"huge_pages":"None"}' MachineConfiguration
expect PATCH /machine-config '{"mem_size_mib":512}' 204
expect PATCH /machine-config '{}' 204
expect GET /machine-config "" 200 '{"vcpu_count":1,"mem_size_mib":512,"smt":false,"track_dirty_pages":false,"huge_pages":"None"}'
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":300,"smt":false,"track_dirty_pages":false,"cpu_template":"None","huge_pages":"None"}' 204
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"smt":null}' 204
fault PUT /machine-config '{"mem_size_mib":64}' 'missing field "vcpu_count"'
fault PUT /machine-config '{"vcpu_count":1}' 'missing field "mem_size_mib"'
fault PUT /machine-config '{"vcpu_count":2,"mem_size_mib":128}' 'field "vcpu_count" must be 1: ember runs single-vCPU microVMs'
fault PUT /machine-config '{"vcpu_count":0,"mem_size_mib":128}' 'field "vcpu_count" must be between 1 and 32, not 0'
fault PUT /machine-config '{"vcpu_count":33,"mem_size_mib":128}' 'field "vcpu_count" must be between 1 and 32, not 33'
fault PUT /machine-config '{"vcpu_count":"1","mem_size_mib":128}' 'field "vcpu_count" must be an integer, not a string'
fault PUT /machine-config '{"vcpu_count":1.5,"mem_size_mib":128}' 'field "vcpu_count" must be an integer, not a number with a fraction'
fault PUT /machine-config '{"vcpu_count":true,"mem_size_mib":128}' 'field "vcpu_count" must be an integer, not a boolean'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":1}' 'field "mem_size_mib" must be between 2 and 3072, not 1'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":4096}' 'field "mem_size_mib" must be between 2 and 3072, not 4096'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":-5}' 'field "mem_size_mib" must be between 2 and 3072, not -5'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":[128]}' 'field "mem_size_mib" must be an integer, not an array'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":99999999999999999999}' "invalid JSON body: too big integer near '99999999999999999999' (line 1, column 51)"
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":1e400}' "invalid JSON body: real number overflow near '1e400' (line 1, column 36)"
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"smt":true}' 'field "smt": ember does not offer simultaneous multithreading'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"smt":"no"}' 'field "smt" must be a boolean, not a string'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"track_dirty_pages":true}' 'field "track_dirty_pages": ember does not offer dirty page tracking'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"cpu_template":"T2"}' 'field "cpu_template": ember does not offer CPU templates'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"cpu_template":"X9"}' 'field "cpu_template" must be one of: C3, T2, T2S, T2CL, T2A, V1N1, None'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"huge_pages":"2M"}' 'field "huge_pages": ember does not offer huge pages'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"foo":1}' "unknown field \"foo\" (expected one of: $MC_FIELDS)"
fault PATCH /machine-config '{"mem_size_mib":"big"}' 'field "mem_size_mib" must be an integer, not a string'
fault PATCH /machine-config '{"vcpu_count":4}' 'field "vcpu_count" must be 1: ember runs single-vCPU microVMs'
fault PUT /machine-config '[1]' 'the request body must be a JSON object, not an array'
fault PUT /machine-config '"x"' "invalid JSON body: '[' or '{' expected near '\"x\"' (line 1, column 3)"
fault PUT /machine-config '' 'the request body is empty'
fault PUT /machine-config '{"vcpu_count":1,"vcpu_count":1,"mem_size_mib":128}' "invalid JSON body: duplicate object key near '\"vcpu_count\"' (line 1, column 28)"
fault PUT /machine-config '{"vcpu_count":1' "invalid JSON body: '}' expected near end of file (line 1, column 15)"
# A failed update changes nothing.
expect GET /machine-config "" 200 "$DEFAULT_MC"

echo "== boot-source"
printf 'not an ELF' >"$WORK/kernel"
fault PUT /boot-source '{}' 'missing field "kernel_image_path"'
fault PUT /boot-source '{"kernel_image_path":""}' 'field "kernel_image_path" must not be empty'
fault PUT /boot-source '{"kernel_image_path":7}' 'field "kernel_image_path" must be a string, not an integer'
fault PUT /boot-source '{"kernel_image_path":"/nonexistent/vmlinux"}' 'kernel image /nonexistent/vmlinux: No such file or directory'
fault PUT /boot-source "{\"kernel_image_path\":\"$WORK\"}" "kernel image $WORK: not a regular file"
fault PUT /boot-source "{\"kernel_image_path\":\"$WORK/kernel\",\"initrd_path\":\"/x\"}" 'field "initrd_path": ember does not offer an initrd'
fault PUT /boot-source "{\"kernel_image_path\":\"$WORK/kernel\",\"boot_args\":1}" 'field "boot_args" must be a string, not an integer'
long=$(printf 'a%.0s' $(seq 1 4096))
fault PUT /boot-source "{\"kernel_image_path\":\"$WORK/kernel\",\"boot_args\":\"$long\"}" 'field "boot_args" is longer than 4095 bytes'
fault PUT /boot-source "{\"kernel_image_path\":\"$WORK/kernel\",\"root\":1}" 'unknown field "root" (expected one of: kernel_image_path, boot_args, initrd_path)'
expect PUT /boot-source "{\"kernel_image_path\":\"$WORK/kernel\",\"boot_args\":\"console=ttyS0\"}" 204

echo "== drives"
truncate -s 1M "$WORK/disk.img"
truncate -s 1M "$WORK/disk2.img"
D="{\"drive_id\":\"rootfs\",\"is_root_device\":true,\"path_on_host\":\"$WORK/disk.img\""
expect PUT /drives/rootfs "$D}" 204
expect PUT /drives/rootfs "$D,\"is_read_only\":true,\"cache_type\":\"Writeback\",\"io_engine\":\"Async\",\"partuuid\":\"0eaa91a0-01\",\"rate_limiter\":{\"bandwidth\":{\"size\":1000,\"refill_time\":100,\"one_time_burst\":5},\"ops\":{\"size\":10,\"refill_time\":100}}}" 204
fault PUT /drives/other "$D}" 'the id in the path ("other") does not match the drive_id in the body ("rootfs")'
fault PUT /drives/bad-id '{"drive_id":"bad-id","is_root_device":false}' "invalid drive id \"bad-id\": $ID_RULE"
id65=$(printf 'a%.0s' $(seq 1 65))
fault PUT "/drives/$id65" "{\"drive_id\":\"$id65\"}" "invalid drive id \"$id65\": $ID_RULE"
fault PUT /drives/d1 '{"drive_id":"d1"}' 'missing field "is_root_device"'
fault PUT /drives/d1 '{"drive_id":"d1","is_root_device":false}' 'missing field "path_on_host"'
fault PUT /drives/d1 '{"is_root_device":false}' 'missing field "drive_id"'
fault PUT /drives/d1 '{"drive_id":"d1","is_root_device":false,"path_on_host":"/nonexistent.img"}' 'drive "d1": /nonexistent.img: No such file or directory'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK\"}" "drive \"d1\": $WORK: not a regular file or block device"
fault PUT /drives/d1 '{"drive_id":"d1","is_root_device":false,"socket":"/run/vhost.sock"}' 'field "socket": ember does not offer vhost-user block devices'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\",\"cache_type\":\"Fast\"}" 'field "cache_type" must be one of: Unsafe, Writeback'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\",\"io_engine\":\"Uring\"}" 'field "io_engine" must be one of: Sync, Async'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\",\"rate_limiter\":{\"bandwidth\":{\"size\":-1,\"refill_time\":100}}}" 'field "rate_limiter.bandwidth.size" must be between 0 and 9223372036854775807, not -1'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\",\"rate_limiter\":{\"ops\":{\"size\":1}}}" 'missing field "rate_limiter.ops.refill_time"'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\",\"rate_limiter\":{\"ops\":{\"size\":1,\"refill_time\":1,\"burst\":1}}}" 'unknown field "rate_limiter.ops.burst" (expected one of: size, refill_time, one_time_burst)'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\",\"rate_limiter\":{\"iops\":{}}}" 'unknown field "rate_limiter.iops" (expected one of: bandwidth, ops)'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\",\"rate_limiter\":5}" 'field "rate_limiter" must be an object, not an integer'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":true,\"path_on_host\":\"$WORK/disk2.img\"}" 'drive "d1": drive "rootfs" is already the root device'
expect PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\"}" 204
fault PATCH /drives/rootfs "{\"drive_id\":\"rootfs\",\"path_on_host\":\"$WORK/disk2.img\"}" "$BEFORE"

echo "== network-interfaces"
N='"host_dev_name":"tap0","guest_mac":"06:00:AC:10:00:02"'
expect PUT /network-interfaces/eth0 "{\"iface_id\":\"eth0\",$N,\"mtu\":1500}" 204
expect PUT /network-interfaces/eth0 "{\"iface_id\":\"eth0\",$N,\"rx_rate_limiter\":{\"bandwidth\":{\"size\":1,\"refill_time\":1}},\"tx_rate_limiter\":{\"ops\":{\"size\":1,\"refill_time\":1}}}" 204
fault PUT /network-interfaces/eth1 '{"iface_id":"eth1","host_dev_name":"tap0"}' 'network interface "eth1": host device tap0 is already used by network interface "eth0"'
fault PUT /network-interfaces/eth1 '{"iface_id":"eth1","host_dev_name":"tap1","guest_mac":"06:00:ac:10:00:02"}' 'network interface "eth1": guest MAC 06:00:ac:10:00:02 is already used by network interface "eth0"'
fault PUT /network-interfaces/eth1 '{"iface_id":"eth1"}' 'missing field "host_dev_name"'
fault PUT /network-interfaces/eth1 '{"iface_id":"eth1","host_dev_name":"tap1","mtu":67}' 'field "mtu" must be between 68 and 65535, not 67'
fault PUT /network-interfaces/eth1 '{"iface_id":"eth1","host_dev_name":"tap1","guest_mac":"06:00:AC:10:00"}' 'field "guest_mac" must be a MAC address such as 06:00:AC:10:00:02'
fault PUT /network-interfaces/eth1 '{"iface_id":"eth1","host_dev_name":"tap_with_a_long_name"}' 'field "host_dev_name" must be 1 to 15 characters'
fault PUT /network-interfaces/eth1 '{"iface_id":"eth2","host_dev_name":"tap1"}' 'the id in the path ("eth1") does not match the iface_id in the body ("eth2")'
fault PUT /network-interfaces/eth.1 '{"iface_id":"eth.1","host_dev_name":"tap1"}' "invalid network interface id \"eth.1\": $ID_RULE"
fault PUT /network-interfaces/eth1 '{"iface_id":"eth1","host_dev_name":"tap1","allow_mmds_requests":true}' 'unknown field "allow_mmds_requests" (expected one of: iface_id, host_dev_name, guest_mac, mtu, rx_rate_limiter, tx_rate_limiter)'
fault PATCH /network-interfaces/eth0 '{"iface_id":"eth0"}' "$BEFORE"

echo "== vsock"
expect PUT /vsock "{\"guest_cid\":3,\"uds_path\":\"$WORK/v.sock\"}" 204
expect PUT /vsock "{\"guest_cid\":4294967295,\"uds_path\":\"$WORK/v.sock\",\"vsock_id\":\"vsock0\"}" 204
fault PUT /vsock "{\"guest_cid\":2,\"uds_path\":\"$WORK/v.sock\"}" 'field "guest_cid" must be between 3 and 4294967295, not 2'
fault PUT /vsock "{\"guest_cid\":4294967296,\"uds_path\":\"$WORK/v.sock\"}" 'field "guest_cid" must be between 3 and 4294967295, not 4294967296'
fault PUT /vsock '{"guest_cid":3}' 'missing field "uds_path"'
fault PUT /vsock '{"guest_cid":3,"uds_path":""}' 'field "uds_path" must be 1 to 107 bytes'
# ember_buffer_bytes: ember's own field (the per-VM vsock buffer budget).
expect PUT /vsock "{\"guest_cid\":3,\"uds_path\":\"$WORK/v.sock\",\"ember_buffer_bytes\":1048576}" 204
fault PUT /vsock "{\"guest_cid\":3,\"uds_path\":\"$WORK/v.sock\",\"ember_buffer_bytes\":100}" 'field "ember_buffer_bytes" must be between 4096 and 4294967296, not 100'
fault PUT /vsock "{\"guest_cid\":3,\"uds_path\":\"$WORK/v.sock\",\"buffer_bytes\":4096}" 'unknown field "buffer_bytes" (expected one of: guest_cid, uds_path, vsock_id, ember_buffer_bytes)'
expect PUT /vsock "{\"guest_cid\":3,\"uds_path\":\"$WORK/v.sock\"}" 204
expect GET /vm/config "" 200 - FullVmConfiguration

echo "== device limits"
# Eight drives (VM_DRIVES_MAX) and sixteen virtio devices (EMBER_MAX_DEVICES)
# at most: rootfs and d1 are there, six more drives fit.
for i in $(seq 2 7); do
    expect PUT "/drives/x$i" "{\"drive_id\":\"x$i\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\"}" 204
done
fault PUT /drives/x8 "{\"drive_id\":\"x8\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\"}" 'cannot add drive "x8": a microVM has at most 8 drives'
expect PUT /drives/x7 "{\"drive_id\":\"x7\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk.img\"}" 204
# 8 drives, eth0 and vsock: six more interfaces make sixteen devices.
for i in $(seq 1 6); do
    expect PUT "/network-interfaces/eth$i" "{\"iface_id\":\"eth$i\",\"host_dev_name\":\"tap$i\"}" 204
done
fault PUT /network-interfaces/eth7 '{"iface_id":"eth7","host_dev_name":"tap7"}' 'cannot add network interface "eth7": a microVM has at most 16 devices'
expect GET /vm/config "" 200 - FullVmConfiguration

echo "== serial, logger, metrics"
expect PUT /serial "{\"serial_out_path\":\"$WORK/serial.out\"}" 204
expect PUT /serial '{}' 204
fault PUT /serial '{"rate_limiter":{"size":1,"refill_time":1}}' 'field "rate_limiter": ember does not offer serial rate limiting'
fault PUT /serial '{"serial_out_path":""}' 'field "serial_out_path" must not be empty'
fault PUT /logger '{"level":"Loud"}' 'field "level" must be one of: Error, Warning, Info, Debug, Trace, Off'
fault PUT /logger '{"log_path":"/nonexistent/dir/ember.log"}' 'log /nonexistent/dir/ember.log: No such file or directory'
fault PUT /logger '{"show_level":1}' 'field "show_level" must be a boolean, not an integer'
expect PUT /logger "{\"level\":\"debug\",\"log_path\":\"$WORK/ember.log\",\"show_level\":true,\"show_log_origin\":true}" 204
expect GET / "" 200 - InstanceInfo
check "logger: a Debug line with level and origin" \
    grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{9} \[anonymous-instance:main:DEBUG:api-socket/api_main\.c:[0-9]+\] The API server received a GET request on "/"\.$' "$WORK/ember.log"
expect PUT /logger '{"level":"Warning"}' 204
fault PUT /metrics '{}' 'missing field "metrics_path"'
fault PUT /metrics "{\"metrics_path\":\"$WORK/m\",\"properties\":{\"a\":1}}" 'field "properties.a" must be a string'
fault PUT /metrics '{"metrics_path":"/nonexistent/dir/m"}' 'metrics /nonexistent/dir/m: No such file or directory'
expect PUT /metrics "{\"metrics_path\":\"$WORK/metrics\",\"emit_id\":true,\"properties\":{\"tenant\":\"t1\"}}" 204
fault PUT /metrics "{\"metrics_path\":\"$WORK/metrics2\"}" 'Reinitialization of metrics not allowed.'
expect PUT /actions '{"action_type":"FlushMetrics"}' 204
check "metrics: a line at configuration and one per FlushMetrics" test "$(wc -l <"$WORK/metrics")" -eq 2
check "metrics: emit_id and properties" grep -q '"id":"anonymous-instance","properties":{"tenant":"t1"}' "$WORK/metrics"
expect GET /vm/config "" 200 - FullVmConfiguration

echo "== actions and post-boot-only operations before boot"
fault PUT /actions '{"action_type":"Explode"}' 'field "action_type" must be one of: FlushMetrics, InstanceStart, SendCtrlAltDel'
fault PUT /actions '{}' 'missing field "action_type"'
fault PUT /actions '{"action_type":"FlushMetrics","payload":1}' 'unknown field "payload" (expected one of: action_type)'
fault PUT /actions '{"action_type":"SendCtrlAltDel"}' "$BEFORE"
fault PATCH /vm '{"state":"Paused"}' "$BEFORE"
fault PATCH /vm '{"state":"Resumed"}' "$BEFORE"
fault PATCH /vm '{"state":"Frozen"}' 'field "state" must be one of: Paused, Resumed'
fault PATCH /drives/nope '{"drive_id":"nope"}' "$BEFORE"

echo "== endpoints ember does not offer"
no() { fault "$1" "$2" '{}' "ember does not offer $3 ($1 $2)."; }
for m in GET PUT PATCH; do no $m /balloon "the balloon device"; done
no GET /balloon/statistics "the balloon device"
no PATCH /balloon/statistics "the balloon device"
no PATCH /balloon/hinting/start "the balloon device"
no GET /balloon/hinting/status "the balloon device"
no PATCH /balloon/hinting/stop "the balloon device"
no PUT /cpu-config "custom CPU templates"
no PUT /pmem/pmem0 "virtio-pmem devices"
no PATCH /pmem/pmem0 "virtio-pmem devices"
for m in GET PUT PATCH; do no $m /hotplug/memory "memory hotplug"; done
for m in GET PUT PATCH; do no $m /mmds "the microVM metadata service (MMDS)"; done
no PUT /mmds/config "the microVM metadata service (MMDS)"
no PUT /entropy "the entropy device"
no PUT /snapshot/create "snapshots"
no PUT /snapshot/load "snapshots"

echo "== every path and method of the specification answers"
node -e '
const yaml = require(process.argv[1] + "/node_modules/js-yaml");
const spec = yaml.load(require("fs").readFileSync(process.argv[2], "utf8"));
for (const [p, ops] of Object.entries(spec.paths))
  for (const m of Object.keys(ops))
    console.log(m.toUpperCase() + " " + p.replace(/\{[^}]*\}/g, "x1"));
' "$TOOLS" "$SPEC" >"$WORK/spec-ops" || fail "cannot list the specification's paths"
while read -r m p; do
    api "$m" "$p" '{}'
    if [ "$STATUS" = 000 ] || [[ "$RESP" == *"Invalid request method and/or path"* ]]; then
        fail "$m $p is in the specification but ember does not route it: $STATUS $RESP"
    else
        pass
    fi
done <"$WORK/spec-ops"
check "the specification has paths" test "$(wc -l <"$WORK/spec-ops")" -gt 30

echo "== unknown paths and methods"
fault GET /nope "" 'Invalid request method and/or path: GET /nope.'
fault DELETE /machine-config "" 'Invalid request method and/or path: DELETE /machine-config.'
fault POST /actions '{"action_type":"FlushMetrics"}' 'Invalid request method and/or path: POST /actions.'
fault GET /drives/rootfs "" 'Invalid request method and/or path: GET /drives/rootfs.'
fault GET /machine-config/ "" 'Invalid request method and/or path: GET /machine-config/.'
fault PUT /drives/a/b '{}' 'Invalid request method and/or path: PUT /drives/a/b.'
fault PUT /drives/ '{"drive_id":""}' "invalid drive id \"\": $ID_RULE"

echo "== malformed and hostile requests"
printf 'GARBAGE / HTTP/1.1\r\n\r\n' >"$WORK/r1"
raw_fault "$WORK/r1" 'Malformed HTTP request: invalid HTTP method.'
printf 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n' >"$WORK/r2"
raw_fault "$WORK/r2" 'Malformed HTTP request: invalid character in content-length header.'
printf 'GET /%s HTTP/1.1\r\n\r\n' "$(printf 'a%.0s' $(seq 1 3000))" >"$WORK/r3"
raw_fault "$WORK/r3" 'The request URL is longer than 2048 bytes.'
{ printf 'GET / HTTP/1.1\r\nX-Big: '; printf 'a%.0s' $(seq 1 20000); printf '\r\n\r\n'; } >"$WORK/r4"
raw_fault "$WORK/r4" 'Malformed HTTP request: too many header bytes seen; overflow detected.'
printf 'PUT /logger HTTP/1.1\r\nContent-Length: 51201\r\n\r\n{' >"$WORK/r5"
raw_fault "$WORK/r5" 'Request payload with size 51201 is larger than the limit of 51200 allowed by server.'
printf 'PUT /logger HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n' >"$WORK/r6"
for _ in $(seq 1 30); do printf '800\r\n%s\r\n' "$(printf 'a%.0s' $(seq 1 2048))"; done >>"$WORK/r6"
raw_fault "$WORK/r6" 'Request payload with size 53248 is larger than the limit of 51200 allowed by server.'
printf 'GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n' >"$WORK/r7"
raw_fault "$WORK/r7" 'Malformed HTTP request: protocol upgrades are not supported.'
# A body of exactly the limit is accepted (a 51200-byte logger body).
pad=$((51200 - 13)) # 13: the length of {"module":""}
body="{\"module\":\"$(head -c "$pad" /dev/zero | tr '\0' 'm')\"}"
check "a body of exactly 51200 bytes is read" test "${#body}" -eq 51200
expect PUT /logger "$body" 204
expect PUT /logger '{"level":"Warning"}' 204
printf '{"kernel_image_path":"\xff\xfe"}' >"$WORK/b1"
fault PUT /boot-source "$(cat "$WORK/b1")" "invalid JSON body: unable to decode byte 0xff near '\"' (line 1, column 22)"
fault PUT /boot-source '{"kernel_image_path":"a\u0000b"}' "invalid JSON body: \\u0000 is not allowed without JSON_ALLOW_NUL near '\"a\\u0000b\"' (line 1, column 31)"
deep=$(head -c 3000 /dev/zero | tr '\0' '[')
fault PUT /machine-config "{\"vcpu_count\":$deep" "invalid JSON body: maximum parsing depth reached near '[' (line 1, column 2062)"
# Truncated: the client goes away in the middle of a body; nothing to answer.
printf 'PUT /machine-config HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"vcpu' >"$WORK/r8"
raw "$WORK/r8"
check "a truncated body gets no answer" test -z "$RAW"
# Pipelined: three requests in one write, three answers in order.
printf 'GET /version HTTP/1.1\r\n\r\nPUT /machine-config HTTP/1.1\r\nContent-Length: 13\r\n\r\n{"smt":false}GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n' >"$WORK/r9"
raw "$WORK/r9"
codes=$(grep -o 'HTTP/1.1 [0-9]*' <<<"$RAW" | tr '\n' ' ')
check "pipelined requests: three answers in order ($codes)" test "$codes" = "HTTP/1.1 200 HTTP/1.1 400 HTTP/1.1 400 "
check "pipelined requests: the right bodies" grep -q 'firecracker_version.*missing field.*GET /nope' <<<"$(tr -d '\r\n' <<<"$RAW")"
# HTTP/1.0 without keep-alive: one answer, then the server closes.
printf 'GET /version HTTP/1.0\r\n\r\n' >"$WORK/r10"
raw "$WORK/r10"
check "HTTP/1.0: answered and closed" grep -q '"firecracker_version"' <<<"$RAW"
# curl sends Expect: 100-continue for bodies over 1 KiB: answered at once.
big="{\"module\":\"$(head -c 3000 /dev/zero | tr '\0' 'm')\"}"
expect PUT /logger "$big" 204
expect PUT /logger '{"level":"Warning"}' 204

echo "== slow and many clients"
printf 'GET /version HTTP/1.1\r\nConnection: close\r\n\r\n' >"$WORK/slow"
"$RAW_CLIENT" "$SOCK" --byte-delay-ms 50 <"$WORK/slow" >"$WORK/slow.out" &
slow_pid=$!
printf 'GET / HTTP/1.1\r\nX-Never: ' >"$WORK/never"
for _ in $(seq 1 8); do "$RAW_CLIENT" "$SOCK" --hold <"$WORK/never" & done
hold_pids=$(jobs -p | grep -v "^$slow_pid\$" | grep -v "^$EMBER_PID\$")
expect GET / "" 200 - InstanceInfo
for i in $(seq 1 40); do
    curl -s --max-time 30 --unix-socket "$SOCK" -o "$WORK/many.$i" -w '%{http_code}\n' http://localhost/ >"$WORK/many.status.$i" &
done
wait $(jobs -p | grep -v "^$EMBER_PID\$" | grep -v "^$slow_pid\$" | grep -v -F "$hold_pids") 2>/dev/null
ok_many=$(cat "$WORK"/many.status.* | grep -c '^200$')
check "40 clients at once, 8 stalled ones and a slow one: all answered ($ok_many/40)" test "$ok_many" -eq 40
wait "$slow_pid"
check "the one-byte-at-a-time client is answered too" grep -q '"firecracker_version"' "$WORK/slow.out"
kill $hold_pids 2>/dev/null
wait $hold_pids 2>/dev/null

echo "== after all that"
expect GET / "" 200 "{\"app_name\":\"ember\",\"id\":\"anonymous-instance\",\"state\":\"Not started\",\"vmm_version\":\"$VERSION\"}" InstanceInfo
check "ember is still running" alive
expect PUT /actions '{"action_type":"FlushMetrics"}' 204
check "metrics count the requests by resource" grep -q '"put_api_requests":{[^}]*"unsupported_count":18,' "$WORK/metrics"
check "metrics count HTTP errors" grep -Eq '"http_errors":[1-9]' "$WORK/metrics"

echo "== a fresh instance: InstanceStart with no boot source, --id"
start_ember --id vm-17 --http-api-max-payload-size 100
expect GET / "" 200 "{\"app_name\":\"ember\",\"id\":\"vm-17\",\"state\":\"Not started\",\"vmm_version\":\"$VERSION\"}" InstanceInfo
fault PUT /actions '{"action_type":"InstanceStart"}' 'cannot start the microVM: no boot source is configured (PUT /boot-source first)'
fault PUT /logger "{\"module\":\"$(printf 'm%.0s' $(seq 1 100))\"}" 'Request payload with size 113 is larger than the limit of 100 allowed by server.'
expect GET / "" 200 - InstanceInfo
stop_ember
check "the socket file is removed at exit" test ! -e "$SOCK"

echo "== schema of every answer"
schema_run "$TOOLS" "$SPEC"
summary
