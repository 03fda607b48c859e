#!/usr/bin/env bash
# Installs what `make` needs on a fresh Debian 12 machine, and nothing else.
#
#   scripts/install-deps.sh build   compile millrace (make, make demo)
#   scripts/install-deps.sh test    build + unit, fault, fuzz and integration tests (make test)
#   scripts/install-deps.sh bench   build + the benchmarks (make bench)
#
# It asks dpkg which of the mode's packages are missing and installs only those (apt-get update
# first), saying what and why. When everything is present it prints nothing and returns at once,
# so every make target can call it unconditionally.
set -euo pipefail

# ---------------------------------------------------------------------------------------------
# Debian packages, one "package:why" per line. Add new dependencies here, in the list of the
# mode that needs them (later: mosquitto, postgresql, influxdb, ... under TEST_PKGS).
# ---------------------------------------------------------------------------------------------
BUILD_PKGS=(
    "build-essential:C compiler, make"
    "pkg-config:locates the libraries below"
    "libuv1-dev:event loop"
    "libyaml-dev:configuration parser"
    "libjansson-dev:JSON"
    "libmodbus-dev:Modbus TCP client (modbus input, modbus_write output)"
    "libprotobuf-c-dev:Sparkplug B payloads (protobuf)"
    "protobuf-c-compiler:protoc-c generates the Sparkplug B code at build time"
    "libssl-dev:TLS (OpenSSL) for the mqtt input's connections"
    "libpq-dev:PostgreSQL client (the postgres_cdc input)"
    "libhttp-parser-dev:HTTP/1.1 request parser (src/web/http_server.c)"
    "zlib1g-dev:gzip/deflate request bodies (the HTTP server)"
    "libcurl4-openssl-dev:HTTP client of the forward, influxdb and http outputs"
    "libdeflate-dev:gzip of whole request bodies (influxdb and http outputs, forward)"
    "librdkafka-dev:Kafka producer (kafka output); its mock cluster is the tests' Kafka peer"
    "libmosquitto-dev:MQTT client of the mqtt output (publishing, Sparkplug B edge node)"
)

TEST_PKGS=(
    "${BUILD_PKGS[@]}"
    "libcmocka-dev:unit test framework"
    "openssl:the TLS test makes a throwaway CA and broker certificate"
    "clang-14:libFuzzer targets (tests/fuzz)"
    "libclang-rt-14-dev:libFuzzer and sanitizer runtimes for clang-14"
    "clang-format:make test checks formatting (make fmt-check)"
    "mount:mount/umount for the full and read-only disk fault test (tmpfs)"
    "util-linux:mountpoint, used by the fault tests' cleanup"
    "coreutils:timeout bounds every test; dd, truncate, od, mkfifo in the fault tests"
    "prometheus:promtool lints our Prometheus exposition (test_metrics); its service is not started"
    "python3:test scripts (scripts/nab_score.py, result checks)"
    "python3-pymodbus:Modbus TCP server peer (tests/peers/modbus_peer.py)"
    "python3-serial:imported by pymodbus.server"
    "python3-serial-asyncio:imported by pymodbus.server"
    "mosquitto:MQTT broker started by the MQTT tests on their own port"
    "mosquitto-clients:mosquitto_pub in the MQTT tests"
    "influxdb:InfluxDB 1.6 server started by the influxdb output tests on their own ports; its service is not started"
    "postgresql:PostgreSQL 15 server, started by the postgres_cdc and postgresql output tests"
    "postgresql-client:psql and pg_isready for the PostgreSQL tests"
)

BENCH_PKGS=(
    "${BUILD_PKGS[@]}"
    "coreutils:df (disk in bench/RESULTS.md), timeout bounds every run"
    "libkissfft-dev:KissFFT, the peer of our FFT in bench/fft_speed.c"
    "libmicrohttpd-dev:libmicrohttpd, the peer of our HTTP server in bench/http_server.c"
    "mosquitto:MQTT broker started by bench/mqtt_ingest on its own port"
)

# npm packages come from a package.json (and its lock file) in these folders, installed with
# `npm ci` when a package-lock.json exists, `npm install` otherwise. Node and npm come from
# Debian, added to the mode's list only when such a folder exists and the command is missing (a
# machine may carry a newer nodejs whose own npm must not be replaced by Debian's).
# shellcheck disable=SC2034 # read indirectly, as NPM_DIRS_$mode
NPM_DIRS_test=(tests)
# shellcheck disable=SC2034
NPM_DIRS_build=()
# shellcheck disable=SC2034
NPM_DIRS_bench=()
NODE_PKGS=(
    "nodejs:runs the npm-based test peers"
    "npm:installs the npm-based test peers"
)

# ---------------------------------------------------------------------------------------------

usage() {
    echo "usage: $0 build|test|bench" >&2
    exit 2
}

[[ $# -eq 1 ]] || usage
mode=$1
case "$mode" in
    build) pkgs=("${BUILD_PKGS[@]}") ;;
    test) pkgs=("${TEST_PKGS[@]}") ;;
    bench) pkgs=("${BENCH_PKGS[@]}") ;;
    *) usage ;;
esac

root_dir=$(cd "$(dirname "$0")/.." && pwd)
npm_dirs_var="NPM_DIRS_${mode}[@]"
npm_dirs=()
for d in "${!npm_dirs_var}"; do
    if [[ -f "$root_dir/$d/package.json" ]]; then
        npm_dirs+=("$root_dir/$d")
    fi
done
if [[ ${#npm_dirs[@]} -gt 0 ]]; then
    for entry in "${NODE_PKGS[@]}"; do
        cmd=${entry%%:*}
        [[ $cmd == nodejs ]] && cmd=node
        command -v "$cmd" >/dev/null 2>&1 || pkgs+=("$entry")
    done
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps: dpkg-query not found: this script supports Debian 12 only" >&2
    exit 1
fi

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "install-deps: need root or sudo to run: $*" >&2
        exit 1
    fi
}

# One dpkg-query call for all names; a package dpkg has never heard of prints nothing, so it
# counts as missing like one that is removed or half-installed (status other than "ii").
names=()
declare -A why=()
for entry in "${pkgs[@]}"; do
    name=${entry%%:*}
    if [[ -z ${why[$name]+x} ]]; then
        names+=("$name")
        why[$name]=${entry#*:}
    fi
done
declare -A installed=()
while IFS='|' read -r status name; do
    if [[ $status == ii* ]]; then
        installed[$name]=1
    fi
done < <(dpkg-query -W -f='${db:Status-Abbrev}|${Package}\n' "${names[@]}" 2>/dev/null || true)

missing=()
for name in "${names[@]}"; do
    if [[ -z ${installed[$name]+x} ]]; then
        missing+=("$name")
    fi
done

if [[ ${#missing[@]} -gt 0 ]]; then
    echo "install-deps ($mode): installing missing Debian packages:"
    for name in "${missing[@]}"; do
        printf '  %-22s %s\n' "$name" "${why[$name]}"
    done
    export DEBIAN_FRONTEND=noninteractive
    # Server packages (prometheus now; mosquitto, postgresql, influxdb later) start a system
    # service on install, listening beyond 127.0.0.1. Tests start their own servers on loopback
    # with their own data, so service starts are refused for the duration of the install:
    # invoke-rc.d and deb-systemd-invoke honour a policy-rc.d that exits 101.
    policy=/usr/sbin/policy-rc.d
    added_policy=
    if [[ ! -e $policy ]]; then
        as_root sh -c "printf '#!/bin/sh\\nexit 101\\n' >$policy && chmod 755 $policy"
        added_policy=1
        trap 'as_root rm -f "$policy"' EXIT
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q -o DPkg::Lock::Timeout=120 "${missing[@]}"
    if [[ -n $added_policy ]]; then
        as_root rm -f "$policy"
        trap - EXIT
    fi
fi

# npm: reinstall only when package.json or its lock file is newer than what node_modules holds
# (npm writes node_modules/.package-lock.json on every install).
for dir in "${npm_dirs[@]}"; do
    stamp="$dir/node_modules/.package-lock.json"
    if [[ -f $stamp && ! $dir/package.json -nt $stamp &&
        ! ( -f $dir/package-lock.json && $dir/package-lock.json -nt $stamp ) ]]; then
        continue
    fi
    if [[ -f $dir/package-lock.json ]]; then
        echo "install-deps ($mode): npm ci in ${dir#"$root_dir"/} (package-lock.json changed)"
        (cd "$dir" && npm ci --no-audit --no-fund)
    else
        echo "install-deps ($mode): npm install in ${dir#"$root_dir"/} (package.json changed)"
        (cd "$dir" && npm install --no-audit --no-fund)
    fi
done
