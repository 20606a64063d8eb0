#!/usr/bin/env bash
# make_corpus.sh: writes the seed corpus of the request fuzz target (one file
# per request kind: byte 0 = VM state flags, byte 1 = split point, then the
# raw HTTP). Run again after adding a seed; the files are committed.
set -euo pipefail
dir=$(cd "$(dirname "$0")" && pwd)/corpus
mkdir -p "$dir"
n=0
seed() { # FLAGS METHOD PATH [BODY]
    local body=${4:-} req
    if [ -n "$body" ]; then
        req=$(printf '%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' "$2" "$3" "${#body}" "$body")
    else
        req=$(printf '%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n' "$2" "$3")
    fi
    n=$((n + 1))
    { printf "\\x$(printf %02x "$1")\\x$(printf %02x $((n * 7 % 256)))"; printf '%s' "$req"; } >"$dir/seed-$(printf %03d $n)"
}
seed 0 GET /
seed 0 GET /version
seed 0 GET /vm/config
seed 0 GET /machine-config
seed 0 PUT /machine-config '{"vcpu_count":1,"mem_size_mib":256,"smt":false,"track_dirty_pages":false,"cpu_template":"None","huge_pages":"None"}'
seed 0 PATCH /machine-config '{"mem_size_mib":512}'
seed 0 PUT /boot-source '{"kernel_image_path":"/etc/hostname","boot_args":"a b c","initrd_path":null}'
seed 0 PUT /drives/rootfs '{"drive_id":"rootfs","is_root_device":true,"path_on_host":"/etc/hostname","is_read_only":true,"cache_type":"Writeback","io_engine":"Async","partuuid":"x","rate_limiter":{"bandwidth":{"size":1,"refill_time":2,"one_time_burst":3},"ops":{"size":4,"refill_time":5}}}'
seed 1 PATCH /drives/rootfs '{"drive_id":"rootfs","path_on_host":"/etc/hostname","rate_limiter":{"ops":{"size":4,"refill_time":5}}}'
seed 0 PUT /network-interfaces/eth0 '{"iface_id":"eth0","host_dev_name":"tap0","guest_mac":"06:00:AC:10:00:02","mtu":1500,"rx_rate_limiter":{"ops":{"size":1,"refill_time":1}}}'
seed 1 PATCH /network-interfaces/eth0 '{"iface_id":"eth0","tx_rate_limiter":{"bandwidth":{"size":1,"refill_time":1}}}'
seed 0 PUT /vsock '{"guest_cid":3,"uds_path":"/tmp/v.sock","vsock_id":"v"}'
seed 0 PUT /logger '{"level":"Debug","log_path":"/tmp/log","show_level":true,"show_log_origin":true,"module":"api"}'
seed 0 PUT /metrics '{"metrics_path":"/tmp/m","emit_id":true,"properties":{"a":"b"}}'
seed 0 PUT /serial '{"serial_out_path":"/tmp/s"}'
seed 0 PUT /actions '{"action_type":"InstanceStart"}'
seed 1 PUT /actions '{"action_type":"FlushMetrics"}'
seed 1 PUT /actions '{"action_type":"SendCtrlAltDel"}'
seed 1 PATCH /vm '{"state":"Paused"}'
seed 3 PATCH /vm '{"state":"Resumed"}'
seed 0 PUT /balloon '{"amount_mib":1,"deflate_on_oom":true}'
seed 0 PUT /snapshot/load '{"snapshot_path":"/x"}'
seed 0 GET /mmds
seed 0 DELETE /machine-config
seed 0 PUT /machine-config '{"vcpu_count":1,"mem_size_mib":99999999999999999999}'
seed 0 PUT /machine-config '{"vcpu_count":"1","mem_size_mib":1.5,"x":[[[[{}]]]]}'
seed 0 PUT /boot-source $'{"kernel_image_path":"\xff\xfe"}'
# Pipelined, chunked and Expect: 100-continue.
n=$((n + 1))
printf '\x00\x11GET / HTTP/1.1\r\n\r\nPUT /machine-config HTTP/1.1\r\nContent-Length: 13\r\n\r\n{"smt":false}GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n' >"$dir/seed-$(printf %03d $n)"
n=$((n + 1))
printf '\x00\x05PUT /logger HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n5\r\n{"lev\r\nF\r\nel":"Warning"}\r\n0\r\n\r\n' >"$dir/seed-$(printf %03d $n)"
n=$((n + 1))
printf '\x00\x00GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n' >"$dir/seed-$(printf %03d $n)"
n=$((n + 1))
printf '\x00\x00PUT /logger HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n{' >"$dir/seed-$(printf %03d $n)"
echo "make_corpus: $n seeds in $dir"
