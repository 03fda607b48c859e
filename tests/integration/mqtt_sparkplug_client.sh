#!/usr/bin/env bash
# Guarantees: Sparkplug B published by a third-party edge node (npm sparkplug-client, through a
# real mosquitto) arrives in millrace with the asset (group/node/device), signal (metric name),
# value, type and timestamp the payloads say, metrics sent by alias only included; a sequence
# gap makes millrace publish an NCMD Node Control/Rebirth that the third-party node understands
# (it rebirths and its next data arrives); its NDEATH makes its metrics bad quality; the
# decoder's counters are on /metrics.
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
NODE_PEER=tests/peers/sparkplug_edge_node.js
[[ -d tests/node_modules/sparkplug-client ]] ||
    { echo "FAIL: tests/node_modules/sparkplug-client missing: run scripts/install-deps.sh test" >&2; exit 1; }
T=$(mktemp -d)
chmod 777 "$T" # mosquitto drops to its own user when started as root
BROKER=""
MR=""
cleanup() {
    for p in $MR $BROKER; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    tail -n 20 "$T/log" >&2 || true
    tail -n 20 "$T/node.log" >&2 || true
    exit 1
}
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
HPORT=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n' \
    "$PORT" >"$T/mosquitto.conf"
/usr/sbin/mosquitto -c "$T/mosquitto.conf" 2>>"$T/broker.log" &
BROKER=$!
for _ in $(seq 50); do
    mosquitto_pub -p "$PORT" -t ping -m x 2>/dev/null && break
    sleep 0.1
done
mosquitto_pub -p "$PORT" -t ping -m x 2>/dev/null || fail "mosquitto did not start on port $PORT"

cat >"$T/mr.yaml" <<YAML
journal: {dir: $T/data}
http: {listen: "127.0.0.1:$HPORT"}
inputs:
  spb:
    type: mqtt
    servers: ["tcp://127.0.0.1:$PORT"]
    data_format: sparkplug_b
    asset: site1
pipelines:
  all: {from: [spb], steps: [], to: [out]}
outputs:
  out: {type: file, path: $T/out.jsonl, format: json}
YAML
"$MILLRACE" run "$T/mr.yaml" >"$T/console" 2>"$T/log" &
MR=$!
for _ in $(seq 100); do
    grep -q "connected to" "$T/log" && break
    sleep 0.1
done
grep -q "connected to" "$T/log" || fail "millrace did not connect"
sleep 0.3 # subscription acknowledged

timeout 20 node "$NODE_PEER" "$PORT" >"$T/node.log" 2>&1 || fail "the sparkplug-client edge node failed"
grep -q "rebirth requested" "$T/node.log" || fail "the edge node never got a rebirth request"

want() {
    for _ in $(seq 50); do
        grep -qF "$1" "$T/out.jsonl" 2>/dev/null && return 0
        sleep 0.1
    done
    cat "$T/out.jsonl" >&2 || true
    fail "missing in output: $1"
}
D=site1/Plant1/Edge1
# births (T0 = 2027-01-15T08:00:00Z): the node's and the device's metrics
want '{"time":"2027-01-15T08:00:00.000000000Z","asset":"'$D'","signal":"Uptime","value":100,"quality":"good"}'
want '{"time":"2027-01-15T08:00:00.000000000Z","asset":"'$D'/Press7","signal":"Temperature","value":20.5,"quality":"good"}'
want '{"time":"2027-01-15T08:00:00.000000000Z","asset":"'$D'/Press7","signal":"Running","value":true,"quality":"good"}'
want '{"time":"2027-01-15T08:00:00.000000000Z","asset":"'$D'/Press7","signal":"Mode","value":"AUTO","quality":"good"}'
# data by alias only, metric timestamps
want '{"time":"2027-01-15T08:00:01.000000000Z","asset":"'$D'/Press7","signal":"Temperature","value":21.75,"quality":"good"}'
want '{"time":"2027-01-15T08:00:01.000000000Z","asset":"'$D'/Press7","signal":"Running","value":false,"quality":"good"}'
# after the gap (still decoded), and after the rebirth the third-party node did on our NCMD
want '{"time":"2027-01-15T08:00:02.000000000Z","asset":"'$D'/Press7","signal":"Temperature","value":22.0,"quality":"good"}'
want '{"time":"2027-01-15T08:00:02.500000000Z","asset":"'$D'/Press7","signal":"Temperature","value":20.5,"quality":"good"}'
want '{"time":"2027-01-15T08:00:03.000000000Z","asset":"'$D'/Press7","signal":"Temperature","value":23.5,"quality":"good"}'
# the node's NDEATH: its and its device's metrics go bad, last value kept, at the receive time
want '"asset":"'$D'/Press7","signal":"Temperature","value":23.5,"quality":"bad"}'
want '"asset":"'$D'","signal":"Uptime","value":100,"quality":"bad"}'
grep -q 'bdSeq\|Node Control' "$T/out.jsonl" && fail "protocol metrics (bdSeq, Node Control) became records"
grep -q "asked Plant1/Edge1 for a rebirth: sequence gap" "$T/log" || fail "the rebirth request was not logged"

metrics() {
    /usr/bin/python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
        "http://127.0.0.1:$HPORT/metrics"
}
metrics >"$T/metrics" || fail "GET /metrics failed"
grep -q '^millrace_sparkplug_seq_gaps_total{instance="inputs.spb",plugin="mqtt"} 1$' "$T/metrics" ||
    fail "seq gap not counted: $(grep sparkplug "$T/metrics")"
grep -q '^millrace_sparkplug_rebirths_total{instance="inputs.spb",plugin="mqtt"} 1$' "$T/metrics" ||
    fail "rebirth request not counted"
kill "$MR"
wait "$MR" || fail "millrace exited with $?"
MR=""
n=$(wc -l <"$T/out.jsonl")
echo "ok: $n records from the sparkplug-client edge node (births, data by alias, rebirth on our NCMD), counters on /metrics"
