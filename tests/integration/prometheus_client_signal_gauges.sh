#!/usr/bin/env bash
# Guarantee: the `prometheus_client` output exposes the latest value of the selected signals on
# /metrics (given with --http): selected asset/signal pairs only, the newest record by time wins
# (an older one arriving later does not move the gauge back), bad quality shows NaN, booleans
# 1/0, max_series caps the series with a count of what was left out, and Prometheus' own checker
# accepts the result. A bad metric name is a clear start-up error.
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
command -v promtool >/dev/null || { echo "FAIL: promtool missing: run scripts/install-deps.sh test" >&2; exit 1; }
T=$(mktemp -d)
pid=
cleanup() {
    [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null || true
    exec 3>&- 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    tail -n 20 "$T/log" >&2 || true
    exit 1
}
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
scrape() {
    curl -s --max-time 5 "http://127.0.0.1:$port/metrics" >"$T/metrics" || true
}

cat >"$T/run.yaml" <<YAML
journal: {dir: $T/data, fsync: always}
inputs:
  plc: {type: stdin, format: json}
pipelines:
  p: {from: [plc], to: [gauges]}
outputs:
  gauges:
    type: prometheus_client
    signals: ["oee*", "temp", "running"]
    assets: ["north/*"]
    max_series: 5
YAML
mkfifo "$T/fifo"
exec 3<>"$T/fifo"
"$MILLRACE" run "$T/run.yaml" --http "127.0.0.1:$port" <"$T/fifo" >/dev/null 2>"$T/log" &
pid=$!
t=1795538940
rec() { # SECONDS ASSET SIGNAL VALUE [QUALITY]
    printf '{"time":%d000000000,"asset":"%s","signal":"%s","value":%s,"quality":"%s"}\n' \
        $((t + $1)) "$2" "$3" "$4" "${5:-good}" >&3
}
rec 0 north/l1/m1 temp 20.5
rec 2 north/l1/m1 temp 22.25
rec 1 north/l1/m1 temp 99 # older than the 22.25: must not win
rec 0 north/l1/m1 oee 0.82
rec 0 north/l1/m1 running true
rec 0 north/l1/m2 temp 30 bad
rec 0 north/l1/m2 vibration 4.2 # signal not selected
rec 0 south/l1/m1 temp 11       # asset not selected
rec 0 north/l2/m1 temp 1
rec 0 north/l2/m2 temp 2        # the 6th series: over max_series
rec 0 north/l2/m3 temp 3
ok=
for _ in $(seq 1 100); do
    scrape
    if grep -q '^millrace_prometheus_series_dropped_total{output="outputs.gauges"} 2$' "$T/metrics"; then
        ok=1
        break
    fi
    sleep 0.1
done
[[ -n $ok ]] || { grep millrace_ "$T/metrics" | grep -v '^#' | head -40 >&2; fail "records never reached the gauges"; }

want() { grep -qxF "$1" "$T/metrics" || { grep '^millrace_signal' "$T/metrics" >&2; fail "missing: $1"; }; }
want 'millrace_signal{asset="north/l1/m1",signal="temp"} 22.25'
want 'millrace_signal{asset="north/l1/m1",signal="oee"} 0.82'
want 'millrace_signal{asset="north/l1/m1",signal="running"} 1'
want 'millrace_signal{asset="north/l1/m2",signal="temp"} NaN'
want 'millrace_signal{asset="north/l2/m1",signal="temp"} 1'
n=$(grep -c '^millrace_signal{' "$T/metrics")
[[ $n -eq 5 ]] || fail "expected 5 series (max_series), got $n"
! grep -q 'vibration\|south/' "$T/metrics" || fail "unselected signal or asset exposed"
promtool check metrics <"$T/metrics" >"$T/promtool" 2>&1 || { cat "$T/promtool" >&2; fail "promtool rejects the exposition"; }

# A newer value moves the gauge.
rec 5 north/l1/m1 temp 23.5
for _ in $(seq 1 100); do
    scrape
    grep -qxF 'millrace_signal{asset="north/l1/m1",signal="temp"} 23.5' "$T/metrics" && break
    sleep 0.1
done
want 'millrace_signal{asset="north/l1/m1",signal="temp"} 23.5'
kill -TERM "$pid"
wait "$pid" || fail "exit after SIGTERM"
pid=

# A metric name Prometheus cannot take: millrace refuses to start and says why.
sed 's/max_series: 5/metric: "plant-values"/' "$T/run.yaml" >"$T/bad.yaml"
rc=0
"$MILLRACE" run "$T/bad.yaml" --http "127.0.0.1:$port" </dev/null >/dev/null 2>"$T/bad.log" || rc=$?
[[ $rc -eq 1 ]] || fail "bad metric name: exit $rc, expected 1"
grep -q "metric 'plant-values' is not a Prometheus metric name" "$T/bad.log" || { cat "$T/bad.log" >&2; fail "bad metric name not explained"; }
echo "ok: selected gauges, newest wins, NaN for bad quality, max_series, promtool, bad name refused"
