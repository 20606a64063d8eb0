#!/usr/bin/env bash
# install-deps.sh: installs the Debian 12 packages ember needs to build, test
# and benchmark. Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(
    # build
    build-essential cmake pkg-config clang
    # guest SDK: musl is the guest's libc
    musl-tools musl-dev
    # monitor and control plane
    libuv1-dev libhttp-parser-dev libjansson-dev libcbor-dev libssl-dev
    libseccomp-dev liburing-dev
    # ember-rootfs: libarchive reads tarballs and OCI layers, erofs-utils and
    # e2fsprogs make the images (libext2fs-dev: the ext4 time/owner fix-up)
    libarchive-dev erofs-utils e2fsprogs libext2fs-dev
    # tests (libclang-rt: libFuzzer's runtime for the fuzz targets)
    libcriterion-dev curl strace libclang-rt-14-dev iproute2 iputils-ping
    # gates in the tests: formatting and static analysis
    clang-format cppcheck
    # the API suites compare JSON and check metrics lines with python3 scripts
    python3
    # network tests and benchmarks: namespaces, taps, netem, ping, iperf3
    iproute2 iputils-ping iperf3
    # the guest's DHCP client and resolver against a real server (dnsmasq-base:
    # the binary alone, without the system service the dnsmasq package starts)
    dnsmasq-base
    # benchmarks: QEMU microvm is the side-by-side peer, gnuplot draws,
    # jq assembles benches/report.sh's JSON and summary, hyperfine times the jailer
    qemu-system-x86 gnuplot-nox jq hyperfine
)

# The API tests check responses against the OpenAPI schemas with an npm
# validator: Node.js from Debian when the machine has none.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root to install them" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
