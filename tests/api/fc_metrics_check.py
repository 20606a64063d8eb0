#!/usr/bin/env python3
"""fc_metrics_check.py: does a metrics line have the shape Firecracker's
tooling requires?

    fc_metrics_check.py [--skip GROUP]... [--devices block=N,net=M] FILE
    fc_metrics_check.py --self-test

FILE holds JSON lines (a metrics file); the last line is checked. The rules
are those of Firecracker's own validator (tests/host_tools/fcmetrics.py:
validate_fc_metrics and FcDeviceMetrics), restated here:
  - every group below is present with exactly the listed fields (no field
    missing, none added), each a number, or for a latency aggregate an
    object of exactly min_us, max_us and sum_us;
  - utc_timestamp_ms is a number of milliseconds since the Unix epoch
    (checked against this host's clock, within a minute);
  - "id" (a string) and "properties" (an object of strings) may be present;
  - a group named block_<drive_id> has the fields of "block", and
    net_<iface_id> those of "net"; "block" and "net" are the sums of their
    per-device groups (for aggregates: of sum_us), and --devices says how
    many per-device groups there must be;
  - nothing else at the top level, except the groups named by --skip (for
    ember: its own group "ember", which must then hold only numbers).
Prints what is wrong and exits 1, or exits 0.
"""
import json
import sys
import time

AGG = ("min_us", "max_us", "sum_us")

BLOCK = [
    "activate_fails", "cfg_fails", "no_avail_buffer", "event_fails", "execute_fails",
    "invalid_reqs_count", "flush_count", "queue_event_count", "rate_limiter_event_count",
    "update_count", "update_fails", "read_bytes", "write_bytes", "read_count", "write_count",
    "rate_limiter_throttled_events", "io_engine_throttled_events", "remaining_reqs_count",
    "read_agg*", "write_agg*",
]
NET = [
    "activate_fails", "cfg_fails", "no_rx_avail_buffer", "no_tx_avail_buffer", "event_fails",
    "rx_queue_event_count", "rx_event_rate_limiter_count", "rx_rate_limiter_throttled",
    "rx_tap_event_count", "rx_bytes_count", "rx_packets_count", "rx_fails", "rx_count",
    "tap_read_fails", "tap_write_fails", "tx_bytes_count", "tx_malformed_frames", "tx_fails",
    "tx_count", "tx_packets_count", "tx_queue_event_count", "tx_rate_limiter_event_count",
    "tx_rate_limiter_throttled", "tx_spoofed_mac_count", "tx_remaining_reqs_count",
    "tap_write_agg*",
]
# A trailing "*" marks a latency aggregate.
GROUPS = {
    "api_server": ["process_startup_time_us", "process_startup_time_cpu_us"],
    "balloon": [
        "activate_fails", "inflate_count", "stats_updates_count", "stats_update_fails",
        "deflate_count", "event_fails", "free_page_report_count", "free_page_report_freed",
        "free_page_report_fails", "free_page_hint_count", "free_page_hint_freed",
        "free_page_hint_fails",
    ],
    "block": BLOCK,
    "deprecated_api": ["deprecated_http_api_calls"],
    "get_api_requests": [
        "instance_info_count", "machine_cfg_count", "mmds_count", "vmm_version_count",
        "hotplug_memory_count",
    ],
    "i8042": [
        "error_count", "missed_read_count", "missed_write_count", "read_count", "reset_count",
        "write_count",
    ],
    "latencies_us": [
        "full_create_snapshot", "diff_create_snapshot", "load_snapshot", "pause_vm",
        "resume_vm", "vmm_full_create_snapshot", "vmm_diff_create_snapshot",
        "vmm_load_snapshot", "vmm_pause_vm", "vmm_resume_vm",
    ],
    "logger": ["missed_metrics_count", "metrics_fails", "missed_log_count",
               "rate_limited_log_count"],
    "mmds": [
        "rx_accepted", "rx_accepted_err", "rx_accepted_unusual", "rx_bad_eth",
        "rx_invalid_token", "rx_no_token", "rx_count", "tx_bytes", "tx_count", "tx_errors",
        "tx_frames", "connections_created", "connections_destroyed",
    ],
    "net": NET,
    "patch_api_requests": [
        f"{r}_{k}" for r in ("drive", "network", "machine_cfg", "mmds", "hotplug_memory", "pmem")
        for k in ("count", "fails")
    ],
    "put_api_requests": [
        f"{r}_{k}"
        for r in ("actions", "boot_source", "drive", "logger", "machine_cfg", "cpu_cfg",
                  "metrics", "network", "mmds", "vsock", "pmem", "serial", "hotplug_memory")
        for k in ("count", "fails")
    ],
    "seccomp": ["num_faults"],
    "vcpu": [
        "exit_io_in", "exit_io_out", "exit_mmio_read", "exit_mmio_write", "failures",
        "kvmclock_ctrl_fails", "exit_io_in_agg*", "exit_io_out_agg*", "exit_mmio_read_agg*",
        "exit_mmio_write_agg*",
    ],
    "vmm": ["panic_count"],
    "uart": [
        "error_count", "flush_count", "missed_read_count", "missed_write_count", "read_count",
        "write_count", "rate_limiter_dropped_bytes",
    ],
    "signals": ["sigbus", "sigsegv", "sigxfsz", "sigxcpu", "sigpipe", "sighup", "sigill"],
    "vsock": [
        "activate_fails", "cfg_fails", "rx_queue_event_fails", "tx_queue_event_fails",
        "ev_queue_event_fails", "muxer_event_fails", "conn_event_fails",
        "rx_queue_event_count", "tx_queue_event_count", "rx_bytes_count", "tx_bytes_count",
        "rx_packets_count", "tx_packets_count", "conns_added", "conns_killed",
        "conns_removed", "killq_resync", "tx_flush_fails", "tx_write_fails", "rx_read_fails",
    ],
    "entropy": [
        "activate_fails", "entropy_event_fails", "entropy_event_count", "entropy_bytes",
        "host_rng_fails", "entropy_rate_limiter_throttled", "rate_limiter_event_count",
    ],
    "interrupts": ["triggers", "config_updates"],
    "pmem": [
        "activate_fails", "cfg_fails", "event_fails", "queue_event_count",
        "rate_limiter_throttled_events", "rate_limiter_event_count",
    ],
    "memory_hotplug": [
        "activate_fails", "queue_event_fails", "queue_event_count", "plug_count", "plug_bytes",
        "plug_fails", "plug_agg*", "unplug_count", "unplug_bytes", "unplug_fails",
        "unplug_discard_fails", "unplug_agg*", "state_count", "state_fails", "state_agg*",
        "unplug_all_count", "unplug_all_fails", "unplug_all_agg*",
    ],
}


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_group(name, group, fields, errors):
    if not isinstance(group, dict):
        errors.append(f"{name}: not an object")
        return
    want = {f.rstrip("*"): f.endswith("*") for f in fields}
    for f, agg in want.items():
        if f not in group:
            errors.append(f"{name}.{f}: required, missing")
        elif agg:
            v = group[f]
            if not isinstance(v, dict) or set(v) != set(AGG) or not all(
                is_number(v[k]) for k in AGG
            ):
                errors.append(f"{name}.{f}: must be {{min_us, max_us, sum_us}}, not {v!r}")
        elif not is_number(group[f]):
            errors.append(f"{name}.{f}: must be a number, not {group[f]!r}")
    for f in group:
        if f not in want:
            errors.append(f"{name}.{f}: not a field of Firecracker's {name} group")


def check_sums(kind, line, errors):
    devices = {k: v for k, v in line.items() if k.startswith(kind + "_")}
    agg = line.get(kind)
    if not isinstance(agg, dict):
        return len(devices)
    fields = BLOCK if kind == "block" else NET
    for f in fields:
        key = f.rstrip("*")
        if f.endswith("*"):
            total = sum(d.get(key, {}).get("sum_us", 0) for d in devices.values()
                        if isinstance(d, dict) and isinstance(d.get(key), dict))
            have = agg.get(key, {}).get("sum_us") if isinstance(agg.get(key), dict) else None
        else:
            total = sum(d.get(key, 0) for d in devices.values()
                        if isinstance(d, dict) and is_number(d.get(key, 0)))
            have = agg.get(key)
        if devices and have != total:
            errors.append(f"{kind}.{key} is {have}, the sum of its devices is {total}")
    return len(devices)


def check(line, skip=(), devices=None, now_ms=None):
    errors = []
    if not isinstance(line, dict):
        return ["the line is not a JSON object"]
    ts = line.get("utc_timestamp_ms")
    if not is_number(ts):
        errors.append("utc_timestamp_ms: required number, missing")
    else:
        now_ms = now_ms if now_ms is not None else time.time() * 1000
        if abs(now_ms - ts) > 60_000:
            errors.append(f"utc_timestamp_ms: {ts} is not the time since the epoch in ms")
    for name, fields in GROUPS.items():
        if name not in line:
            errors.append(f"{name}: required group, missing")
        else:
            check_group(name, line[name], fields, errors)
    for key, value in line.items():
        if key in GROUPS or key == "utc_timestamp_ms":
            continue
        if key == "id":
            if not isinstance(value, str):
                errors.append("id: must be a string")
        elif key == "properties":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                errors.append("properties: must be an object of strings")
        elif key.startswith("block_"):
            check_group(key, value, BLOCK, errors)
        elif key.startswith("net_"):
            check_group(key, value, NET, errors)
        elif key in skip:
            if not isinstance(value, dict) or not all(is_number(v) for v in value.values()):
                errors.append(f"{key}: a skipped group must be an object of numbers")
        else:
            errors.append(f"{key}: not a group of Firecracker's metrics")
    counts = {kind: check_sums(kind, line, errors) for kind in ("block", "net")}
    for kind, n in (devices or {}).items():
        if counts.get(kind) != n:
            errors.append(f"{n} {kind}_<id> groups expected, found {counts.get(kind)}")
    return errors


def self_test():
    """The validator must reject what Firecracker's rejects."""
    good = {"utc_timestamp_ms": time.time() * 1000}
    for name, fields in GROUPS.items():
        good[name] = {f.rstrip("*"): ({k: 0 for k in AGG} if f.endswith("*") else 0)
                      for f in fields}
    good["block_rootfs"] = json.loads(json.dumps(good["block"]))
    good["block_rootfs"]["read_bytes"] = 5
    good["block"]["read_bytes"] = 5
    good["ember"] = {"x": 1}
    failures = []
    if check(good, skip=("ember",), devices={"block": 1, "net": 0}):
        failures.append("a good line is rejected: " + "; ".join(check(good, skip=("ember",))))
    cases = {
        "a missing field": lambda d: d["api_server"].pop("process_startup_time_us"),
        "a missing group": lambda d: d.pop("vmm"),
        "an extra field": lambda d: d["vcpu"].__setitem__("exit_hlt", 1),
        "an extra group": lambda d: d.__setitem__("extra", {}),
        "a group not skipped": lambda d: d.__setitem__("ember2", {"x": 1}),
        "a bad aggregate": lambda d: d["vcpu"].__setitem__("exit_io_in_agg", 0),
        "a wrong sum": lambda d: d["block"].__setitem__("read_bytes", 4),
        "a string counter": lambda d: d["seccomp"].__setitem__("num_faults", "0"),
        "a bad timestamp": lambda d: d.__setitem__("utc_timestamp_ms", 5),
    }
    for what, spoil in cases.items():
        bad = json.loads(json.dumps(good))
        spoil(bad)
        if not check(bad, skip=("ember",)):
            failures.append(f"{what} is not caught")
    for f in failures:
        print("self-test:", f)
    return 1 if failures else 0


def main(argv):
    skip, devices, path = [], None, None
    args = iter(argv[1:])
    for a in args:
        if a == "--self-test":
            return self_test()
        if a == "--skip":
            skip.append(next(args))
        elif a == "--devices":
            devices = {k: int(v) for k, v in (p.split("=") for p in next(args).split(","))}
        else:
            path = a
    if not path:
        print(__doc__, file=sys.stderr)
        return 2
    with open(path, encoding="utf-8") as f:
        lines = [l for l in f.read().splitlines() if l.strip()]
    if not lines:
        print(f"{path}: no metrics line")
        return 1
    errors = check(json.loads(lines[-1]), skip=tuple(skip), devices=devices)
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
