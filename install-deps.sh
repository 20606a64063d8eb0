#!/usr/bin/env bash
# install-deps.sh: installs the Debian 12 packages ember needs to build, test
# and benchmark. Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(
    # build (dpkg-dev: apt-get source, to build libcbor.a below)
    build-essential dpkg-dev cmake pkg-config clang
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

# A static `ember` (the default, EMBER_STATIC) needs libcbor.a, and Debian 12
# ships libcbor only as a shared library. So this script builds the archive
# from Debian's own source package of the installed version (Debian's
# patches applied) into a prefix of ember's own, which CMake prefers
# (monitor/CMakeLists.txt; without it ember links dynamically and says so).
# The prefix holds the version it was built from: a second run with the
# same libcbor-dev does nothing.
deps_prefix="${EMBER_DEPS_PREFIX:-/usr/local/lib/ember-deps}"
cbor_stamp="$deps_prefix/libcbor.version"

cbor_wanted() { # the source version of the installed libcbor-dev
    dpkg-query -W -f='${source:Version}' libcbor-dev 2>/dev/null || true
}
cbor_is_current() {
    local v
    v="$(cbor_wanted)"
    [ -n "$v" ] && [ -f "$deps_prefix/lib/libcbor.a" ] && [ -f "$cbor_stamp" ] &&
        [ "$(cat "$cbor_stamp")" = "$v" ]
}

# Debian's source packages: a deb-src twin of every deb entry the machine
# has, in a file of its own (the system's files are left as they are).
# Returns 0 when it added one (apt's lists need an update).
enable_deb_src() {
    local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
    if grep -Eqs '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' "${files[@]}"; then
        return 1 # already there
    fi
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        echo "install-deps: enabling Debian source packages (/etc/apt/sources.list.d/ember-deb-src.sources)"
        {
            echo "# Added by ember's install-deps.sh: Debian's source packages, to build"
            echo "# libcbor.a (Debian 12 ships libcbor only as a shared library)."
            sed -n -e 's/^Types:.*$/Types: deb-src/' -e '/^#/d' -e p /etc/apt/sources.list.d/debian.sources
        } >/etc/apt/sources.list.d/ember-deb-src.sources
    elif grep -Eqs '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
        echo "install-deps: enabling Debian source packages (/etc/apt/sources.list.d/ember-deb-src.list)"
        {
            echo "# Added by ember's install-deps.sh: Debian's source packages, to build"
            echo "# libcbor.a (Debian 12 ships libcbor only as a shared library)."
            sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list
        } >/etc/apt/sources.list.d/ember-deb-src.list
    else
        echo "install-deps: no Debian apt source found to add deb-src entries for" >&2
        return 1
    fi
    return 0
}

# In a subshell: its work directory goes when it ends, however it ends.
build_static_libcbor() (
    want="$(cbor_wanted)"
    work="$(mktemp -d /tmp/ember-libcbor.XXXXXX)"
    trap 'rm -rf "$work"' EXIT
    chmod 755 "$work" # apt's _apt user downloads into it
    echo "install-deps: building a static libcbor $want from Debian's source into $deps_prefix"
    if ! (cd "$work" && apt-get source -q "libcbor=$want" >fetch.log 2>&1); then
        if ! grep -Eq 'Can not find version|Unable to find a source package' "$work/fetch.log"; then
            grep '^E:' "$work/fetch.log" >&2 || cat "$work/fetch.log" >&2
            exit 1
        fi
        echo "install-deps: libcbor $want is not in the source lists; building the archive's current libcbor"
        (cd "$work" && apt-get source -q libcbor >fetch.log 2>&1) || {
            grep '^E:' "$work/fetch.log" >&2 || cat "$work/fetch.log" >&2
            exit 1
        }
    fi
    src="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'libcbor-*' | head -n1)"
    [ -n "$src" ] || {
        echo "install-deps: apt-get source libcbor unpacked nothing" >&2
        exit 1
    }
    # PIC: the tests link the same archive into (PIE) executables.
    cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
        -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DWITH_TESTS=OFF -DWITH_EXAMPLES=OFF \
        -DCMAKE_INSTALL_PREFIX="$deps_prefix.new" -DCMAKE_INSTALL_LIBDIR=lib >"$work/build.log" 2>&1 &&
        cmake --build "$work/build" -j"$(nproc)" >>"$work/build.log" 2>&1 &&
        rm -rf "$deps_prefix.new" &&
        cmake --install "$work/build" >>"$work/build.log" 2>&1 || {
        cat "$work/build.log" >&2
        exit 1
    }
    [ -f "$deps_prefix.new/lib/libcbor.a" ] || {
        echo "install-deps: libcbor's build installed no libcbor.a" >&2
        exit 1
    }
    # The version the archive was built from: the source directory's
    # changelog, which is the fallback's version when it is not $want.
    dpkg-parsechangelog -l "$src/debian/changelog" -S Version >"$deps_prefix.new/libcbor.version"
    if [ "$(cat "$deps_prefix.new/libcbor.version")" != "$want" ]; then
        # Keep the wanted version in the stamp so later runs do not rebuild
        # the same fallback again, and say what was built.
        echo "install-deps: note: libcbor.a is $(cat "$deps_prefix.new/libcbor.version"), libcbor-dev is $want"
        echo "$want" >"$deps_prefix.new/libcbor.version"
    fi
    rm -rf "$deps_prefix"
    mv "$deps_prefix.new" "$deps_prefix"
    echo "install-deps: static libcbor in $deps_prefix/lib/libcbor.a"
)

# Where Debian's source packages cannot be fetched (a mirror that serves
# only binary packages), ember links libcbor dynamically. That is recorded
# too, so later runs do not try again; remove the file to retry.
cbor_failed="$deps_prefix.unavailable"
cbor_settled() {
    cbor_is_current || { [ -f "$cbor_failed" ] && [ "$(cat "$cbor_failed")" = "$(cbor_wanted)" ]; }
}
cbor_state() {
    if cbor_is_current; then
        echo "static libcbor $(cat "$cbor_stamp") in $deps_prefix"
    else
        echo "no static libcbor (its source could not be fetched before: remove $cbor_failed to retry), ember links libcbor dynamically"
    fi
}

if [ "${#missing[@]}" -eq 0 ] && cbor_settled; then
    echo "install-deps: all ${#packages[@]} packages present, $(cbor_state)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    if [ "${#missing[@]}" -ne 0 ]; then
        echo "install-deps: missing packages: ${missing[*]}; run as root to install them" >&2
        exit 1
    fi
    echo "install-deps: all ${#packages[@]} packages present" \
        "(no static libcbor in $deps_prefix: run as root to build it, or ember links libcbor dynamically)" >&2
    exit 0
fi

lists_updated=0
if enable_deb_src || [ "${#missing[@]}" -ne 0 ]; then
    apt-get update
    lists_updated=1
fi
if [ "${#missing[@]}" -ne 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
if ! cbor_settled; then
    # Source lists that were never fetched are fetched once and tried again.
    if build_static_libcbor ||
        { [ "$lists_updated" -eq 0 ] && apt-get update && build_static_libcbor; }; then
        rm -f "$cbor_failed"
    else
        mkdir -p "$(dirname "$cbor_failed")"
        cbor_wanted >"$cbor_failed"
        echo "install-deps: WARNING: could not build a static libcbor from Debian's source;" \
            "ember will link libcbor and glibc dynamically (slower start, more memory per VM)." \
            "Remove $cbor_failed to try again." >&2
    fi
fi
