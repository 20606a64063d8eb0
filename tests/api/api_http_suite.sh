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
expect GET /vm/config "" 200 "{\"balloon\":null,\"drives\":[],\"boot-source\":{\"kernel_image_path\":\"\",\"initrd_path\":null,\"boot_args\":null},\"cpu-config\":null,\"logger\":null,\"machine-config\":$DEFAULT_MC,\"metrics\":null,\"mmds-config\":null,\"network-interfaces\":[],\"vsock\":null,\"entropy\":null,\"pmem\":[],\"memory-hotplug\":null}" FullVmConfiguration

echo "== machine-config"
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":256}' 204
expect GET /machine-config "" 200 '{"vcpu_count":1,"mem_size_mib":256,"smt":false,"track_dirty_pages":false,"huge_pages":"None"}' MachineConfiguration
expect PATCH /machine-config '{"mem_size_mib":512}' 204
fault PATCH /machine-config '{}' 'Empty PATCH request.'
expect GET /machine-config "" 200 '{"vcpu_count":1,"mem_size_mib":512,"smt":false,"track_dirty_pages":false,"huge_pages":"None"}'
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":300,"smt":false,"track_dirty_pages":false,"cpu_template":"None","huge_pages":"None"}' 204
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"smt":null}' 204
fault PUT /machine-config '{"mem_size_mib":64}' 'An error occurred when deserializing the json body of a request: missing field `vcpu_count` at line 1 column 19.'
fault PUT /machine-config '{"vcpu_count":1}' 'An error occurred when deserializing the json body of a request: missing field `mem_size_mib` at line 1 column 16.'
fault PUT /machine-config '{"vcpu_count":2,"mem_size_mib":128}' 'Machine config error: field "vcpu_count" must be 1: ember runs single-vCPU microVMs'
fault PUT /machine-config '{"vcpu_count":0,"mem_size_mib":128}' 'Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled.'
fault PUT /machine-config '{"vcpu_count":33,"mem_size_mib":128}' 'Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled.'
fault PUT /machine-config '{"vcpu_count":"1","mem_size_mib":128}' 'An error occurred when deserializing the json body of a request: invalid type: string "1", expected an integer (field "vcpu_count").'
fault PUT /machine-config '{"vcpu_count":1.5,"mem_size_mib":128}' 'An error occurred when deserializing the json body of a request: invalid type: floating point `1.5`, expected an integer (field "vcpu_count").'
fault PUT /machine-config '{"vcpu_count":true,"mem_size_mib":128}' 'An error occurred when deserializing the json body of a request: invalid type: boolean `true`, expected an integer (field "vcpu_count").'
# Any size Firecracker takes; InstanceStart says what ember can give.
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":1}' 204
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":4096}' 204
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128}' 204
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":-5}' 'An error occurred when deserializing the json body of a request: invalid value: integer `-5`, expected an integer from 0 to 9223372036854775807 (field "mem_size_mib").'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":[128]}' 'An error occurred when deserializing the json body of a request: invalid type: sequence, expected an integer (field "mem_size_mib").'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":99999999999999999999}' "An error occurred when deserializing the json body of a request: invalid type: too big integer near '99999999999999999999' at line 1 column 51."
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":1e400}' "An error occurred when deserializing the json body of a request: real number overflow near '1e400' at line 1 column 36."
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"smt":true}' 'Machine config error: field "smt": ember does not offer simultaneous multithreading'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"smt":"no"}' 'An error occurred when deserializing the json body of a request: invalid type: string "no", expected a boolean (field "smt").'
# Dirty-page tracking (for Diff snapshots) is offered; PUT resets it.
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"track_dirty_pages":true}' 204
expect GET /machine-config "" 200 '{"vcpu_count":1,"mem_size_mib":128,"smt":false,"track_dirty_pages":true,"huge_pages":"None"}'
expect PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128}' 204
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"cpu_template":"T2"}' 'Machine config error: field "cpu_template": ember does not offer CPU templates'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"cpu_template":"X9"}' 'An error occurred when deserializing the json body of a request: unknown variant `X9`, expected one of `C3`, `T2`, `T2S`, `T2CL`, `T2A`, `V1N1`, `None` (field "cpu_template").'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"huge_pages":"2M"}' 'Machine config error: field "huge_pages": ember does not offer huge pages'
fault PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"foo":1}' 'An error occurred when deserializing the json body of a request: unknown field `foo`, expected one of `vcpu_count`, `mem_size_mib`, `smt`, `track_dirty_pages`, `cpu_template`, `huge_pages`.'
fault PATCH /machine-config '{"mem_size_mib":"big"}' 'An error occurred when deserializing the json body of a request: invalid type: string "big", expected an integer (field "mem_size_mib").'
fault PATCH /machine-config '{"vcpu_count":4}' 'Machine config error: field "vcpu_count" must be 1: ember runs single-vCPU microVMs'
fault PUT /machine-config '[1]' 'An error occurred when deserializing the json body of a request: invalid type: sequence, expected a JSON object.'
fault PUT /machine-config '"x"' "An error occurred when deserializing the json body of a request: '[' or '{' expected near '\"x\"' at line 1 column 3."
fault PUT /machine-config '' 'Empty PUT request.'
fault PUT /machine-config '{"vcpu_count":1,"vcpu_count":1,"mem_size_mib":128}' "An error occurred when deserializing the json body of a request: duplicate object key near '\"vcpu_count\"' at line 1 column 28."
fault PUT /machine-config '{"vcpu_count":1' "An error occurred when deserializing the json body of a request: '}' expected near end of file at line 1 column 15."
# A failed update changes nothing.
expect GET /machine-config "" 200 "$DEFAULT_MC"

echo "== boot-source"
printf 'not an ELF' >"$WORK/kernel"
fault PUT /boot-source '{}' 'An error occurred when deserializing the json body of a request: missing field `kernel_image_path` at line 1 column 2.'
fault PUT /boot-source '{"kernel_image_path":""}' 'Boot source error: The kernel file cannot be opened: No such file or directory (os error 2): field "kernel_image_path" is empty'
fault PUT /boot-source '{"kernel_image_path":7}' 'An error occurred when deserializing the json body of a request: invalid type: integer `7`, expected a string (field "kernel_image_path").'
fault PUT /boot-source '{"kernel_image_path":"/nonexistent/vmlinux"}' 'Boot source error: The kernel file cannot be opened: No such file or directory (os error 2): /nonexistent/vmlinux'
fault PUT /boot-source "{\"kernel_image_path\":\"$WORK\"}" "Boot source error: The kernel file cannot be opened: not a regular file: $WORK"
fault PUT /boot-source "{\"kernel_image_path\":\"$WORK/kernel\",\"initrd_path\":\"/x\"}" 'Boot source error: field "initrd_path": ember does not offer an initrd'
fault PUT /boot-source "{\"kernel_image_path\":\"$WORK/kernel\",\"boot_args\":1}" 'An error occurred when deserializing the json body of a request: invalid type: integer `1`, expected a string (field "boot_args").'
long=$(printf 'a%.0s' $(seq 1 4096))
fault PUT /boot-source "{\"kernel_image_path\":\"$WORK/kernel\",\"boot_args\":\"$long\"}" 'Boot source error: The kernel command line is invalid: field "boot_args" is longer than 4095 bytes'
fault PUT /boot-source "{\"kernel_image_path\":\"$WORK/kernel\",\"root\":1}" 'An error occurred when deserializing the json body of a request: unknown field `root`, expected one of `kernel_image_path`, `boot_args`, `initrd_path`.'
expect PUT /boot-source "{\"kernel_image_path\":\"$WORK/kernel\",\"boot_args\":\"console=ttyS0\"}" 204

echo "== drives"
truncate -s 1M "$WORK/disk.img"
truncate -s 1M "$WORK/disk2.img"
D="{\"drive_id\":\"rootfs\",\"is_root_device\":true,\"path_on_host\":\"$WORK/disk.img\""
expect PUT /drives/rootfs "$D}" 204
expect PUT /drives/rootfs "$D,\"is_read_only\":true,\"cache_type\":\"Writeback\",\"io_engine\":\"Async\",\"partuuid\":\"0eaa91a0-01\",\"rate_limiter\":{\"bandwidth\":{\"size\":1000,\"refill_time\":100,\"one_time_burst\":5},\"ops\":{\"size\":10,\"refill_time\":100}}}" 204
fault PUT /drives/other "$D}" 'The id from the path does not match the id from the body! ("other" in the path, drive_id "rootfs" in the body)'
fault PUT /drives/bad-id '{"drive_id":"bad-id","is_root_device":false}' 'API Resource IDs can only contain alphanumeric characters and underscores. (invalid drive id "bad-id": an id is 1 to 64 characters of A-Z, a-z, 0-9 and _)'
id65=$(printf 'a%.0s' $(seq 1 65))
fault PUT "/drives/$id65" "{\"drive_id\":\"$id65\"}" 'API Resource IDs can only contain alphanumeric characters and underscores. (invalid drive id "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": an id is 1 to 64 characters of A-Z, a-z, 0-9 and _)'
fault PUT /drives/d1 '{"drive_id":"d1"}' 'An error occurred when deserializing the json body of a request: missing field `is_root_device` at line 1 column 17.'
fault PUT /drives/d1 '{"drive_id":"d1","is_root_device":false}' 'An error occurred when deserializing the json body of a request: missing field `path_on_host` at line 1 column 40.'
fault PUT /drives/d1 '{"is_root_device":false}' 'An error occurred when deserializing the json body of a request: missing field `drive_id` at line 1 column 24.'
fault PUT /drives/d1 '{"drive_id":"d1","is_root_device":false,"path_on_host":"/nonexistent.img"}' 'Drive config error: Unable to create the virtio block device: Error manipulating the backing file: No such file or directory (os error 2) /nonexistent.img (drive "d1")'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK\"}" "Drive config error: Unable to create the virtio block device: Error manipulating the backing file: not a regular file or block device $WORK (drive \"d1\")"
fault PUT /drives/d1 '{"drive_id":"d1","is_root_device":false,"socket":"/run/vhost.sock"}' 'Drive config error: field "socket": ember does not offer vhost-user block devices'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\",\"cache_type\":\"Fast\"}" 'An error occurred when deserializing the json body of a request: unknown variant `Fast`, expected one of `Unsafe`, `Writeback` (field "cache_type").'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\",\"io_engine\":\"Uring\"}" 'An error occurred when deserializing the json body of a request: unknown variant `Uring`, expected one of `Sync`, `Async` (field "io_engine").'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\",\"rate_limiter\":{\"bandwidth\":{\"size\":-1,\"refill_time\":100}}}" 'An error occurred when deserializing the json body of a request: invalid value: integer `-1`, expected an integer from 0 to 9223372036854775807 (field "rate_limiter.bandwidth.size").'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\",\"rate_limiter\":{\"ops\":{\"size\":1}}}" 'An error occurred when deserializing the json body of a request: missing field `refill_time` (in "rate_limiter.ops").'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\",\"rate_limiter\":{\"ops\":{\"size\":1,\"refill_time\":1,\"burst\":1}}}" 'An error occurred when deserializing the json body of a request: unknown field `burst`, expected one of `size`, `refill_time`, `one_time_burst` (in "rate_limiter.ops").'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\",\"rate_limiter\":{\"iops\":{}}}" 'An error occurred when deserializing the json body of a request: unknown field `iops`, expected one of `bandwidth`, `ops` (in "rate_limiter").'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\",\"rate_limiter\":5}" 'An error occurred when deserializing the json body of a request: invalid type: integer `5`, expected an object (field "rate_limiter").'
fault PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":true,\"path_on_host\":\"$WORK/disk2.img\"}" 'Drive config error: A root block device already exists! (drive "rootfs" is the root device, not "d1")'
expect PUT /drives/d1 "{\"drive_id\":\"d1\",\"is_root_device\":false,\"path_on_host\":\"$WORK/disk2.img\"}" 204
fault PATCH /drives/rootfs "{\"drive_id\":\"rootfs\",\"path_on_host\":\"$WORK/disk2.img\"}" "$BEFORE"

echo "== network-interfaces"
N='"host_dev_name":"tap0","guest_mac":"06:00:AC:10:00:02"'
expect PUT /network-interfaces/eth0 "{\"iface_id\":\"eth0\",$N,\"mtu\":1500}" 204
expect PUT /network-interfaces/eth0 "{\"iface_id\":\"eth0\",$N,\"rx_rate_limiter\":{\"bandwidth\":{\"size\":1,\"refill_time\":1}},\"tx_rate_limiter\":{\"ops\":{\"size\":1,\"refill_time\":1}}}" 204
fault PUT /network-interfaces/eth1 '{"iface_id":"eth1","host_dev_name":"tap0"}' 'Network config error: Could not create the network device: host device tap0 is already used by network interface "eth0"'
fault PUT /network-interfaces/eth1 '{"iface_id":"eth1","host_dev_name":"tap1","guest_mac":"06:00:ac:10:00:02"}' 'Network config error: The MAC address is already in use: 06:00:ac:10:00:02 (by network interface "eth0")'
fault PUT /network-interfaces/eth1 '{"iface_id":"eth1"}' 'An error occurred when deserializing the json body of a request: missing field `host_dev_name` at line 1 column 19.'
fault PUT /network-interfaces/eth1 '{"iface_id":"eth1","host_dev_name":"tap1","mtu":67}' 'An error occurred when deserializing the json body of a request: invalid value: integer `67`, expected an integer from 68 to 65535 (field "mtu").'
fault PUT /network-interfaces/eth1 '{"iface_id":"eth1","host_dev_name":"tap1","guest_mac":"06:00:AC:10:00"}' 'field "guest_mac" must be a MAC address such as 06:00:AC:10:00:02'
fault PUT /network-interfaces/eth1 '{"iface_id":"eth1","host_dev_name":"tap_with_a_long_name"}' 'field "host_dev_name" must be 1 to 15 characters'
fault PUT /network-interfaces/eth1 '{"iface_id":"eth2","host_dev_name":"tap1"}' 'The id from the path does not match the id from the body! ("eth1" in the path, iface_id "eth2" in the body)'
fault PUT /network-interfaces/eth.1 '{"iface_id":"eth.1","host_dev_name":"tap1"}' 'API Resource IDs can only contain alphanumeric characters and underscores. (invalid network interface id "eth.1": an id is 1 to 64 characters of A-Z, a-z, 0-9 and _)'
fault PUT /network-interfaces/eth1 '{"iface_id":"eth1","host_dev_name":"tap1","allow_mmds_requests":true}' 'An error occurred when deserializing the json body of a request: unknown field `allow_mmds_requests`, expected one of `iface_id`, `host_dev_name`, `guest_mac`, `mtu`, `rx_rate_limiter`, `tx_rate_limiter`.'
fault PATCH /network-interfaces/eth0 '{"iface_id":"eth0"}' "$BEFORE"

echo "== mmds"
expect GET /mmds "" 200 '{}'
fault PATCH /mmds '{"a":"b"}' 'The MMDS data store is not initialized.'
expect PUT /mmds '{"latest":{"meta-data":{"ami-id":"ami-1","keep":"k"}},"n":1}' 204
expect GET /mmds "" 200 '{"latest":{"meta-data":{"ami-id":"ami-1","keep":"k"}},"n":1}'
expect PATCH /mmds '{"latest":{"meta-data":{"ami-id":null,"new":{"x":"y"}}},"n":[1,2]}' 204
expect GET /mmds "" 200 '{"latest":{"meta-data":{"keep":"k","new":{"x":"y"}}},"n":[1,2]}'
fault PUT /mmds '[1]' 'An error occurred when deserializing the json body of a request: invalid type: sequence, expected a JSON object.'
fault PUT /mmds/config '{}' 'field "network_interfaces" is missing'
fault PUT /mmds/config '{"network_interfaces":[]}' 'The list of network interface IDs that allow forwarding MMDS requests is empty.'
fault PUT /mmds/config '{"network_interfaces":["eth9"]}' 'The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface.'
fault PUT /mmds/config '{"network_interfaces":[7]}' 'field "network_interfaces"[0] must be a string'
fault PUT /mmds/config '{"network_interfaces":["eth0"],"version":"V3"}' 'An error occurred when deserializing the json body of a request: unknown variant `V3`, expected one of `V1`, `V2` (field "version").'
fault PUT /mmds/config '{"network_interfaces":["eth0"],"ipv4_address":"10.0.0.1"}' 'The MMDS IPv4 address is not link local.'
fault PUT /mmds/config '{"network_interfaces":["eth0"],"ipv4_address":"169.254.1"}' 'field "ipv4_address": "169.254.1" is not an IPv4 address'
fault PUT /mmds/config '{"network_interfaces":["eth0"],"allow":true}' 'An error occurred when deserializing the json body of a request: unknown field `allow`, expected one of `version`, `network_interfaces`, `ipv4_address`, `imds_compat`.'
expect PUT /mmds/config '{"network_interfaces":["eth0"],"version":"V2","ipv4_address":"169.254.170.2"}' 204
api GET /vm/config
check "GET /vm/config shows mmds-config" grep -q '"mmds-config":{"version":"V2","network_interfaces":\["eth0"\],"ipv4_address":"169.254.170.2","imds_compat":false}' <<<"$RESP"

echo "== vsock"
expect PUT /vsock "{\"guest_cid\":3,\"uds_path\":\"$WORK/v.sock\"}" 204
expect PUT /vsock "{\"guest_cid\":4294967295,\"uds_path\":\"$WORK/v.sock\",\"vsock_id\":\"vsock0\"}" 204
fault PUT /vsock "{\"guest_cid\":2,\"uds_path\":\"$WORK/v.sock\"}" 'An error occurred when deserializing the json body of a request: invalid value: integer `2`, expected an integer from 3 to 4294967295 (field "guest_cid").'
fault PUT /vsock "{\"guest_cid\":4294967296,\"uds_path\":\"$WORK/v.sock\"}" 'An error occurred when deserializing the json body of a request: invalid value: integer `4294967296`, expected an integer from 3 to 4294967295 (field "guest_cid").'
fault PUT /vsock '{"guest_cid":3}' 'An error occurred when deserializing the json body of a request: missing field `uds_path` at line 1 column 15.'
fault PUT /vsock '{"guest_cid":3,"uds_path":""}' 'field "uds_path" must be 1 to 107 bytes'
# ember_buffer_bytes: ember's own field (the per-VM vsock buffer budget).
expect PUT /vsock "{\"guest_cid\":3,\"uds_path\":\"$WORK/v.sock\",\"ember_buffer_bytes\":1048576}" 204
fault PUT /vsock "{\"guest_cid\":3,\"uds_path\":\"$WORK/v.sock\",\"ember_buffer_bytes\":100}" 'An error occurred when deserializing the json body of a request: invalid value: integer `100`, expected an integer from 4096 to 4294967296 (field "ember_buffer_bytes").'
fault PUT /vsock "{\"guest_cid\":3,\"uds_path\":\"$WORK/v.sock\",\"buffer_bytes\":4096}" 'An error occurred when deserializing the json body of a request: unknown field `buffer_bytes`, expected one of `guest_cid`, `uds_path`, `vsock_id`, `ember_buffer_bytes`.'
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
fault PUT /logger '{"show_level":1}' 'An error occurred when deserializing the json body of a request: invalid type: integer `1`, expected a boolean (field "show_level").'
expect PUT /logger "{\"level\":\"debug\",\"log_path\":\"$WORK/ember.log\",\"show_level\":true,\"show_log_origin\":true}" 204
expect GET / "" 200 - InstanceInfo
check "logger: the request's line with level and origin" \
    grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{9} \[anonymous-instance:main:INFO:api-socket/api_request_log\.c:[0-9]+\] The API server received a Get request on "/"\.$' "$WORK/ember.log"
expect PUT /logger '{"level":"Warning"}' 204
fault PUT /metrics '{}' 'An error occurred when deserializing the json body of a request: missing field `metrics_path` at line 1 column 2.'
fault PUT /metrics "{\"metrics_path\":\"$WORK/m\",\"properties\":{\"a\":1}}" 'field "properties.a" must be a string'
fault PUT /metrics '{"metrics_path":"/nonexistent/dir/m"}' 'Metrics error: Cannot initialize the metrics system due to bad user input: metrics /nonexistent/dir/m: No such file or directory'
expect PUT /metrics "{\"metrics_path\":\"$WORK/metrics\",\"emit_id\":true,\"properties\":{\"tenant\":\"t1\"}}" 204
fault PUT /metrics "{\"metrics_path\":\"$WORK/metrics2\"}" 'Metrics error: Cannot initialize the metrics system due to bad user input: Reinitialization of metrics not allowed.'
fault PUT /actions '{"action_type":"FlushMetrics"}' "$BEFORE"
check "metrics: a line at configuration" test "$(wc -l <"$WORK/metrics")" -eq 1
check "metrics: emit_id and properties" grep -q '"id":"anonymous-instance","properties":{"tenant":"t1"}' "$WORK/metrics"
expect GET /vm/config "" 200 - FullVmConfiguration

echo "== actions and post-boot-only operations before boot"
fault PUT /actions '{"action_type":"Explode"}' 'An error occurred when deserializing the json body of a request: unknown variant `Explode`, expected one of `FlushMetrics`, `InstanceStart`, `SendCtrlAltDel` (field "action_type").'
fault PUT /actions '{}' 'An error occurred when deserializing the json body of a request: missing field `action_type` at line 1 column 2.'
fault PUT /actions '{"action_type":"FlushMetrics","payload":1}' 'An error occurred when deserializing the json body of a request: unknown field `payload`, expected one of `action_type`.'
fault PUT /actions '{"action_type":"SendCtrlAltDel"}' "$BEFORE"
fault PATCH /vm '{"state":"Paused"}' "$BEFORE"
fault PATCH /vm '{"state":"Resumed"}' "$BEFORE"
fault PATCH /vm '{"state":"Frozen"}' 'An error occurred when deserializing the json body of a request: unknown variant `Frozen`, expected one of `Paused`, `Resumed` (field "state").'
fault PATCH /drives/nope '{"drive_id":"nope"}' "$BEFORE"

echo "== endpoints ember does not offer"
no() {
    local body='{}'
    [ "$1" = GET ] && body=
    fault "$1" "$2" "$body" "ember does not offer $3 ($1 $2)."
}
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
no PUT /entropy "the entropy device"

echo "== snapshots before boot (tests/integration/test_snapshot.c boots and restores)"
fault PUT /snapshot/create '{"snapshot_path":"/nonexistent/s","mem_file_path":"/nonexistent/m"}' 'The requested operation is not supported before starting the microVM.'
fault PUT /snapshot/create '{"snapshot_path":"/s","mem_file_path":"/m","snapshot_type":"Half"}' 'An error occurred when deserializing the json body of a request: unknown variant `Half`, expected one of `Full`, `Diff` (field "snapshot_type").'
fault PUT /snapshot/load '{"snapshot_path":"/s","mem_backend":{"backend_type":"Uffd","backend_path":"/u"}}' 'Loading a microVM snapshot not allowed after configuring boot-specific resources.'
fault PUT /snapshot/load '{"snapshot_path":"/s","mem_backend":{"backend_type":"Mmap","backend_path":"/u"}}' 'An error occurred when deserializing the json body of a request: unknown variant `Mmap`, expected one of `File`, `Uffd` (field "mem_backend.backend_type").'
fault PUT /snapshot/load '{"snapshot_path":"/s","mem_file_path":"/m","mem_backend":{"backend_type":"File","backend_path":"/m"}}' 'Load snapshot error: exactly one of mem_file_path and mem_backend must be given'
fault PUT /snapshot/load '{"snapshot_path":"/s"}' 'Load snapshot error: exactly one of mem_file_path and mem_backend must be given'

echo "== every path and method of the specification answers"
node -e '
const yaml = require(process.argv[1] + "/node_modules/js-yaml");
const spec = yaml.load(require("fs").readFileSync(process.argv[2], "utf8"));
for (const [p, ops] of Object.entries(spec.paths))
  for (const m of Object.keys(ops))
    console.log(m.toUpperCase() + " " + p.replace(/\{[^}]*\}/g, "x1"));
' "$TOOLS" "$SPEC" >"$WORK/spec-ops" || fail "cannot list the specification's paths"
while read -r m p; do
    if [ "$m" = GET ]; then api "$m" "$p"; else api "$m" "$p" '{}'; fi
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
expect GET /machine-config/ "" 200 "$DEFAULT_MC" MachineConfiguration
fault PUT /drives/a/b '{}' 'Invalid request method and/or path: PUT /drives/a/b.'
fault PUT /drives/ '{"drive_id":""}' 'The ID cannot be empty.'

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
fault PUT /boot-source "$(cat "$WORK/b1")" "An error occurred when deserializing the json body of a request: unable to decode byte 0xff near '\"' at line 1 column 22."
fault PUT /boot-source '{"kernel_image_path":"a\u0000b"}' "An error occurred when deserializing the json body of a request: \\u0000 is not allowed without JSON_ALLOW_NUL near '\"a\\u0000b\"' at line 1 column 31."
deep=$(head -c 3000 /dev/zero | tr '\0' '[')
fault PUT /machine-config "{\"vcpu_count\":$deep" "An error occurred when deserializing the json body of a request: maximum parsing depth reached near '[' at line 1 column 2062."
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
# At most 10 connections at once (micro-http's limit, api_fc_suite.sh checks
# the 503): 7 stalled clients and a slow one leave two for 40 clients in turn.
printf 'GET /version HTTP/1.1\r\nConnection: close\r\n\r\n' >"$WORK/slow"
"$RAW_CLIENT" "$SOCK" --byte-delay-ms 50 <"$WORK/slow" >"$WORK/slow.out" &
slow_pid=$!
printf 'GET / HTTP/1.1\r\nX-Never: ' >"$WORK/never"
for _ in $(seq 1 7); do "$RAW_CLIENT" "$SOCK" --hold <"$WORK/never" & done
hold_pids=$(jobs -p | grep -v "^$slow_pid\$" | grep -v "^$EMBER_PID\$")
expect GET / "" 200 - InstanceInfo
for i in $(seq 1 40); do
    curl -s --max-time 30 --unix-socket "$SOCK" -o "$WORK/many.$i" -w '%{http_code}\n' http://localhost/ >"$WORK/many.status.$i"
done
ok_many=$(cat "$WORK"/many.status.* | grep -c '^200$')
check "40 clients, 7 stalled ones and a slow one: all answered ($ok_many/40)" test "$ok_many" -eq 40
wait "$slow_pid"
check "the one-byte-at-a-time client is answered too" grep -q '"firecracker_version"' "$WORK/slow.out"
kill $hold_pids 2>/dev/null
wait $hold_pids 2>/dev/null

echo "== after all that"
expect GET / "" 200 "{\"app_name\":\"ember\",\"id\":\"anonymous-instance\",\"state\":\"Not started\",\"vmm_version\":\"$VERSION\"}" InstanceInfo
check "ember is still running" alive
stop_ember
check "metrics count the requests by resource" grep -Eq '"put_api_requests":\{[^}]*"mmds_count":[1-9]' "$WORK/metrics"
check "metrics count HTTP errors (in ember's group)" grep -Eq '"api_http_errors":[1-9]' "$WORK/metrics"

echo "== a fresh instance: InstanceStart with no boot source, --id"
start_ember --id vm-17 --http-api-max-payload-size 100
expect GET / "" 200 "{\"app_name\":\"ember\",\"id\":\"vm-17\",\"state\":\"Not started\",\"vmm_version\":\"$VERSION\"}" InstanceInfo
fault PUT /actions '{"action_type":"InstanceStart"}' 'Start microvm error: Cannot start microvm without kernel configuration. (PUT /boot-source first)'
fault PUT /logger "{\"module\":\"$(printf 'm%.0s' $(seq 1 100))\"}" 'Request payload with size 113 is larger than the limit of 100 allowed by server.'
expect GET / "" 200 - InstanceInfo
stop_ember
check "the socket file is removed at exit" test ! -e "$SOCK"

echo "== MMDS size limit and --metadata"
printf '{"big":"%s"}' "$(printf 'x%.0s' $(seq 1 80))" >"$WORK/md-big.json"
printf '{"k":"v"}' >"$WORK/md.json"
start_ember --mmds-size-limit 64 --metadata "$WORK/md.json"
expect GET /mmds "" 200 '{"k":"v"}'
fault PUT /mmds "$(cat "$WORK/md-big.json")" "The MMDS patch request doesn't fit."
fault PATCH /mmds "$(cat "$WORK/md-big.json")" "The MMDS patch request doesn't fit."
expect GET /mmds "" 200 '{"k":"v"}'
stop_ember
"$EMBER" --api-sock "$SOCK" --mmds-size-limit 64 --metadata "$WORK/md-big.json" 2>"$WORK/err" && fail "--metadata over the limit started"
check "--metadata over the limit: message" grep -q "^ember: --metadata $WORK/md-big.json: Populating MMDS from file failed: The MMDS patch request doesn't fit.\$" "$WORK/err"
"$EMBER" --api-sock "$SOCK" --metadata "$WORK/nope.json" 2>"$WORK/err" && fail "--metadata of a missing file started"
check "--metadata of a missing file: message" grep -q "^ember: Unable to open or read from the mmds content file: $WORK/nope.json: No such file or directory" "$WORK/err"
"$EMBER" --api-sock "$SOCK" --mmds-size-limit 0 2>"$WORK/err" && fail "--mmds-size-limit 0 accepted"
check "--mmds-size-limit 0: message" grep -q "^ember: invalid --mmds-size-limit '0'" "$WORK/err"

echo "== schema of every answer"
schema_run "$TOOLS" "$SPEC"
summary
