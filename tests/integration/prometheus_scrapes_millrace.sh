#!/usr/bin/env bash
# Guarantee: a real Prometheus (Debian's, started here on 127.0.0.1 with its data in a temp dir)
# scrapes a running millrace and its query API returns what millrace exposes: the latest value
# of a signal from the `prometheus_client` output and millrace's own delivery metrics.
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
command -v prometheus >/dev/null || { echo "FAIL: prometheus missing: run scripts/install-deps.sh test" >&2; exit 1; }
T=$(mktemp -d)
pid=
prom=
cleanup() {
    [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null || true
    [[ -n $prom ]] && kill -9 "$prom" 2>/dev/null || true
    exec 3>&- 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    tail -n 15 "$T/log" "$T/prom.log" >&2 || true
    exit 1
}
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port=$(free_port)
pport=$(free_port)

cat >"$T/run.yaml" <<YAML
journal: {dir: $T/data, fsync: always}
inputs:
  plc: {type: stdin, format: json}
pipelines:
  p: {from: [plc], to: [gauges]}
outputs:
  gauges: {type: prometheus_client, signals: ["oee", "temp"]}
YAML
mkfifo "$T/fifo"
exec 3<>"$T/fifo"
"$MILLRACE" run "$T/run.yaml" --http "127.0.0.1:$port" <"$T/fifo" >/dev/null 2>"$T/log" &
pid=$!
now=$(date +%s)
printf '{"time":%d000000000,"asset":"north/l1/m1","signal":"oee","value":0.875}\n' "$now" >&3
printf '{"time":%d000000000,"asset":"north/l1/m2","signal":"temp","value":61.5}\n' "$now" >&3

cat >"$T/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: millrace
    static_configs: [{targets: ["127.0.0.1:$port"]}]
YAML
promtool check config "$T/prometheus.yml" >/dev/null || fail "our scrape config is invalid"
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" \
    --web.listen-address="127.0.0.1:$pport" >"$T/prom.log" 2>&1 &
prom=$!

query() { # PROMQL -> the first result's value, or nothing
    curl -s --max-time 5 -G "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1" |
        /usr/bin/python3 -c 'import json,sys
d = json.load(sys.stdin)
r = d.get("data", {}).get("result", [])
print(r[0]["value"][1] if r else "")' 2>/dev/null || true
}
got=
for _ in $(seq 1 300); do
    got=$(query 'millrace_signal{asset="north/l1/m1",signal="oee"}')
    [[ -n $got ]] && break
    sleep 0.1
done
[[ $got == 0.875 ]] || fail "Prometheus query for the oee gauge returned '${got}', expected 0.875"
got=$(query 'millrace_signal{asset="north/l1/m2",signal="temp"}')
[[ $got == 61.5 ]] || fail "Prometheus query for the temp gauge returned '${got}', expected 61.5"
got=$(query 'up{job="millrace"}')
[[ $got == 1 ]] || fail "Prometheus does not see millrace up: '$got'"
got=$(query 'millrace_output_state{output="outputs.gauges"}')
[[ $got == 0 ]] || fail "millrace_output_state via Prometheus: '$got', expected 0"
got=$(query 'millrace_output_delivered_total{output="outputs.gauges"}')
[[ $got == 2 ]] || fail "millrace_output_delivered_total via Prometheus: '$got', expected 2"
kill -TERM "$pid"
wait "$pid" || fail "millrace exit after SIGTERM"
pid=
echo "ok: Prometheus scraped millrace; its query API returns the signal gauges and delivery metrics"
