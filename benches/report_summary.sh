#!/bin/bash
# report_summary.sh DIR: the Markdown summary of a benches/report.sh run, from
# DIR/report.json (and DIR/api.txt, DIR/jailer.md), on stdout. Sections for
# benchmarks that did not run are left out.
# jq programs in single quotes: the $ and backticks are jq's and Markdown's.
# shellcheck disable=SC2016
set -euo pipefail
dir=$1
r=$dir/report.json
has() { jq -e "has(\"$1\")" "$r" >/dev/null; }
q() { jq -r "$@" "$r"; }

q '.host | "# ember benchmark report\n\n\(.date) UTC, commit `\(.commit)`; \(.cpus) CPUs, \(.mem_gib) GiB, Linux \(.kernel), KVM: \(.kvm); peer: \(.qemu).\nSizes: \(if .full then "full (`report.sh --full`)" elif .quick then "**quick smoke run (`--quick`): the numbers mean nothing**" else "default (`report.sh`; `--full` for the issue sizes)" end)." + (if (.failed | length) > 0 then "\n\n**Failed:** \(.failed | join(", ")) (see run.log)." else "" end)'
if [ "$(q '.host.kvm')" = kvm_pvm ]; then
    echo
    echo "This host's KVM is kvm_pvm (software virtualisation inside a VM): guest exits, interrupt"
    echo "delivery and KVM's own set-up and teardown cost several times what they cost on VT-x/SVM"
    echo "hardware. Compare the columns with each other, not with numbers from other machines."
fi

# ---- targets -------------------------------------------------------------------
if has fleet-density-ember || has fleet-launch-ember; then
    echo
    echo "## Targets of issue 7 (FaaS fleet)"
    echo
    echo "| target | measured | met |"
    echo "|---|---|---|"
    if has fleet-density-ember; then
        q '."fleet-density-ember".result | "| 2,000 concurrent idle function VMs, each invoked | \(.alive) alive of \(.target) started, \(.invoked_ok) invoked successfully | \(if .alive >= 2000 and .invoked_ok >= 2000 then "yes" elif .target < 2000 then "not run at 2,000 (`--full`)" else "no" end) |",
            "| host memory <= 1.5 MiB per idle VM, all included | \(.host_kib_per_vm_idle / 1024 * 100 | round / 100) MiB idle, \(.host_kib_per_vm_invoked / 1024 * 100 | round / 100) MiB after its invocation (MemAvailable drop / N, N = \(.alive)) | \(if .host_kib_per_vm_invoked <= 1536 then "yes" else "no" end) |"'
    fi
    if has fleet-launch-ember; then
        q '."fleet-launch-ember" | "| sustained launch rate >= 300 VMs/s | \(.result.sustained_vms_per_s | round) VMs/s over \(.config.duration_s) s (start, invoke once, exit) | \(if .result.sustained_vms_per_s >= 300 then "yes" else "no" end) |"'
    fi
fi

# ---- boot -----------------------------------------------------------------------
if has boot; then
    echo
    echo "## Boot: process exec -> exit (hello guest)"
    echo
    echo "| | runs | median | p99 | min | max RSS (VmHWM) |"
    echo "|---|---|---|---|---|---|"
    q '.boot.configurations[] | if .skipped then "| \(.name) | skipped: \(.skipped) | | | | |" else "| \(.name) | \(.runs) | \(.median_us / 1000 * 100 | round / 100) ms | \(.p99_us / 1000 * 100 | round / 100) ms | \(.min_us / 1000 * 100 | round / 100) ms | \(if .vmhwm_kib_median then "\(.vmhwm_kib_median | round) KiB" else "-" end) |" end'
    q '.boot | "\nember / floor: \(.ratios.ember_over_floor // "-")x; QEMU / ember: \(.ratios.qemu_over_ember // "-")x. ember overhead RSS (VmHWM - guest pages): \(.rss.ember_overhead_kib_median // "-") KiB."'
fi

# ---- fleet: launch ----------------------------------------------------------------
if has fleet-launch-ember || has fleet-launch-jailed || has fleet-launch-qemu; then
    echo
    echo "## Fleet: launch rate (one process per VM, 16 MiB guests)"
    echo
    echo "Start function VMs (\`faas-echo --max 1\`) as fast as the host allows, at most 16 VM processes"
    echo "alive at once; each is invoked once over vsock as soon as its socket appears, answers and"
    echo "exits. Cold invoke = posix_spawn -> whole response at the host. CPU = the VM processes' own"
    echo "user+system time per VM (guest time included). 'Other work': the share of the host's CPU"
    echo "that the rest of the machine used meanwhile (this host is shared; kernel workers that tear"
    echo "our VMs down count there too). A run with much of it measured less than the host can do."
    echo
    echo "| | sustained VMs/s | cold invoke p50 | p99 | lifetime p50 | response -> reaped p50 | CPU per VM | host CPU busy | of it, other work | failed |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for k in ember jailed qemu; do
        has "fleet-launch-$k" || continue
        q --arg k "$k" '."fleet-launch-\($k)" | .result as $x | def ms(v): if v == null then "-" else "\(v * 100 | round / 100) ms" end;
            "| \(if $k == "qemu" then "QEMU microvm (boot -> exit, no vsock)" elif $k == "jailed" then "ember via ember-jailer" else "ember" end) | \($x.sustained_vms_per_s | round) | \(ms($x.cold_invoke_ms.p50)) | \(ms($x.cold_invoke_ms.p99)) | \(ms($x.lifetime_ms.p50)) | \(ms($x.response_to_exit_ms.p50)) | \($x.cpu.children_cpu_ms_per_vm * 100 | round / 100) ms | \($x.host_cpu_busy * 100 | round) % | \(if $x.other_cpu_share == null then "-" else "\($x.other_cpu_share * 100 | round) %" end) | \($x.failed) |"'
    done
fi
if jq -e 'keys | map(select(startswith("fleet-sweep-"))) | length > 0' "$r" >/dev/null; then
    echo
    echo "### Launch rate against the number of VM processes alive at once (ember)"
    echo
    echo "| at once | VMs/s | cold invoke p50 | p99 | lifetime p50 | response -> reaped p50 | host CPU busy | of it, other work |"
    echo "|---|---|---|---|---|---|---|---|"
    q 'to_entries | map(select(.key | startswith("fleet-sweep-"))) | sort_by(.value.config.concurrency) | .[] | .value | .result as $x |
        "| \(.config.concurrency) | \($x.sustained_vms_per_s | round) | \($x.cold_invoke_ms.p50 * 100 | round / 100) ms | \($x.cold_invoke_ms.p99 * 100 | round / 100) ms | \($x.lifetime_ms.p50 * 100 | round / 100) ms | \($x.response_to_exit_ms.p50 * 100 | round / 100) ms | \($x.host_cpu_busy * 100 | round) % | \(if $x.other_cpu_share == null then "-" else "\($x.other_cpu_share * 100 | round) %" end) |"'
    echo
    echo "A VM process lives on after its guest exits while KVM tears the VM down (SRCU grace"
    echo "periods: 'response -> reaped'). That wait costs no CPU; it bounds the rate only when few"
    echo "processes may be alive at once. From about 8 at once the rate is bound by CPU."
fi

# ---- fleet: density -------------------------------------------------------------------
if has fleet-density-ember || has fleet-density-jailed || has fleet-density-qemu; then
    echo
    echo "## Fleet: density (idle function VMs, 16 MiB guests)"
    echo
    echo "Start N idle function VMs (32 booting at once), invoke every one once, then SIGTERM them all."
    echo "Host memory = MemAvailable drop / N (includes the kernel's KVM structures and page tables);"
    echo "monitor = the process's Pss minus the guest's resident pages; kernel = host - Pss."
    echo
    echo "| | N alive | invoked OK | host per VM idle | host per VM invoked | monitor Pss | guest resident | kernel and other | fds | threads | start rate | teardown: reaped | memory back |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for k in ember jailed qemu; do
        has "fleet-density-$k" || continue
        q --arg k "$k" '."fleet-density-\($k)".result as $x | ($x.procs_invoked // $x.procs_idle) as $p |
            def kib(v): if v == null then "-" else "\(v | round) KiB" end;
            "| \(if $k == "qemu" then "QEMU microvm (booted, stopped)" elif $k == "jailed" then "ember via ember-jailer" else "ember" end) | \($x.alive) | \(if $k == "qemu" then "n/a" else $x.invoked_ok end) | \(kib($x.host_kib_per_vm_idle)) | \(if $k == "qemu" then "-" else kib($x.host_kib_per_vm_invoked) end) | \(kib($p.monitor_pss_kib.p50)) | \(kib($p.guest_resident_kib.p50)) | \(if $k == "jailed" then "see below" else kib((if $k == "qemu" then $x.host_kib_per_vm_idle else $x.host_kib_per_vm_invoked end) - $p.pss_kib.p50) end) | \($p.fds.p50 // "-") | \($p.threads.p50 // "-") | \($x.ramp_vms_per_s | round) VMs/s | \($x.teardown_reaped_s * 100 | round / 100) s | \(if $x.teardown_memory_back_s == null then "not within 30 s" else "\($x.teardown_memory_back_s * 10 | round / 10) s" end) |"'
    done
    if has fleet-density-ember; then
        echo
        q '."fleet-density-ember".result.meminfo_kib_per_vm_invoked | "Where an invoked ember VM'"'"'s host memory goes (/proc/meminfo deltas per VM): anonymous pages \(.AnonPages | round) KiB (guest RAM and the monitor'"'"'s heap and stacks), slab \(.Slab | round) KiB (\(.SUnreclaim | round) unreclaimable: KVM, vsock sockets, epoll, eventfds), kernel stacks \(.KernelStack | round) KiB (3 tasks: main, vCPU, KVM'"'"'s nx-recovery thread), page tables \(.PageTables | round) KiB, KVM'"'"'s own page tables \(.SecPageTables | round) KiB."'
    fi
    if has fleet-density-jailed; then
        q '."fleet-density-jailed".result.meminfo_kib_per_vm_invoked | "Jailed, each VM also leaves \(.Cached / 1024 * 10 | round / 10) MiB of page cache: ember-jailer copies the ember binary into every jail (as Firecracker'"'"'s jailer does), so no two VMs share its text: the jailed monitor'"'"'s Pss holds its own copy of the binary'"'"'s pages, which are page cache, reclaimable, and so only partly in the MemAvailable drop."'
    fi
    if has fleet-density-qemu; then
        echo
        echo "QEMU cannot have a vsock device here (no vhost-vsock in this kernel): its VMs boot the same"
        echo "ELF, which finds no vsock and ends, and QEMU stays alive with everything the boot touched"
        echo "(\`-no-shutdown\`). Nothing is invoked."
    fi
fi

# ---- faas -------------------------------------------------------------------------------
if has faas; then
    echo
    echo "## Function runtime (one VM, vsock)"
    echo
    q '.faas | "| warm invocation (64 B) p50 / p99 | 1 MiB echo p50 | request MiB/s | cold start p50 / p99 |\n|---|---|---|---|\n| \(.warm_round_trip.median_us) / \(.warm_round_trip.p99_us) us | \(.throughput_1mib.echo_median_us) us | \(.throughput_1mib.request_mib_per_s) | \(.cold_start.median_us / 1000 * 100 | round / 100) / \(.cold_start.p99_us / 1000 * 100 | round / 100) ms |"'
fi

# ---- blk ---------------------------------------------------------------------------------
if has blk; then
    echo
    echo "## virtio-blk (4 KiB random reads at queue depth 1, 1 MiB sequential)"
    echo
    echo "| | 4 KiB read p50 | p99 | seq read GiB/s | seq write GiB/s |"
    echo "|---|---|---|---|---|"
    q '.blk.summary | "| host pread/pwrite | \(.host.rand4k_median_us) us | \(.host.rand4k_p99_us) us | \(.host.seqread_gib_s * 100 | round / 100) | \(.host.seqwrite_gib_s * 100 | round / 100) |",
        (["sync", "async"][] as $e | .[$e] | "| guest, \($e) engine | \(.rand4k_api_median_us) us | \(.rand4k_api_p99_us) us | \(.seqread_gib_s * 100 | round / 100) | \(.seqwrite_gib_s * 100 | round / 100) |")'
fi

# ---- api, jailer (text) ----------------------------------------------------------------
if [ -s "$dir/api.txt" ]; then
    echo
    echo "## Control plane (API socket)"
    echo
    echo '```'
    cat "$dir/api.txt"
    echo '```'
fi
if [ -s "$dir/jailer.md" ]; then
    echo
    echo "## Jailer: cold start of the hello guest, jailed and not"
    echo
    cat "$dir/jailer.md"
fi
echo
echo "Raw results: \`report.json\` next to this file (and in benches/results/$(q .host.dir)/); plots:"
echo "boot-latency.png, launch-rate.png, memory-per-vm.png."
