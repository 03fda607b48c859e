#!/usr/bin/env bash
# Guarantees: (1) messages published to a real mosquitto broker in JSON (by path and
# flattened), plain values and InfluxDB line protocol arrive with the asset, signal, value,
# timestamp and quality the topic template and payload say; (2) with QoS 1 and a persistent
# session, restarting the broker in the middle of a numbered stream loses nothing: every number
# arrives (at least once).
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
T=$(mktemp -d)
chmod 777 "$T" # mosquitto drops to its own user when started as root and writes persistence here
BROKER=""
MR=""
PUB=""
cleanup() {
    for p in $PUB $MR $BROKER; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    tail -n 20 "$T/log" >&2 || true
    tail -n 20 "$T/broker.log" >&2 || true
    exit 1
}
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
mkdir -p "$T/mq"
chmod 777 "$T/mq"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nlog_dest stderr\n' \
    "$PORT" "$T/mq" >"$T/mosquitto.conf"

start_broker() {
    /usr/sbin/mosquitto -c "$T/mosquitto.conf" 2>>"$T/broker.log" &
    BROKER=$!
    for _ in $(seq 50); do
        if mosquitto_pub -p "$PORT" -t ping -m x 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    fail "mosquitto did not start on port $PORT"
}
stop_broker() {
    kill "$BROKER"
    wait "$BROKER" || true
    BROKER=""
}
pub() { mosquitto_pub -p "$PORT" -q 1 "$@"; }

start_broker
cat >"$T/mr.yaml" <<EOF
journal: {dir: $T/data}
http: {listen: "127.0.0.1:0"}
inputs:
  js:
    type: mqtt
    servers: ["tcp://127.0.0.1:$PORT"]
    topic_template: "plant/{site}/{line}/{machine}/{signal}"
  flat:
    type: mqtt
    servers: ["tcp://127.0.0.1:$PORT"]
    topic_template: "flat/{machine}"
    asset: s1/l2
    json_flatten: true
    json_time_format: unix_ms
  val:
    type: mqtt
    servers: ["tcp://127.0.0.1:$PORT"]
    topic_template: "raw/{machine}/{signal}"
    asset: s1/l3
    data_format: value
  lp:
    type: mqtt
    servers: ["tcp://127.0.0.1:$PORT"]
    topics: ["influx/#"]
    topic_template: "influx/{site}/{machine}"
    data_format: influx
  seq:
    type: mqtt
    servers: ["tcp://127.0.0.1:$PORT"]
    topics: ["seq/n"]
    asset: test/seq
    data_format: value
    data_type: integer
    qos: 1
    client_id: millrace-seq-test
    persistent_session: true
    reconnect_min: 50ms
    reconnect_max: 500ms
pipelines:
  all: {from: [js, flat, val, lp, seq], steps: [], to: [out]}
outputs:
  out: {type: file, path: $T/out.jsonl, format: json}
EOF
"$MILLRACE" run "$T/mr.yaml" >"$T/console" 2>"$T/log" &
MR=$!
for _ in $(seq 100); do
    [[ $(grep -c "connected to" "$T/log" || true) -ge 5 ]] && break
    sleep 0.1
done
[[ $(grep -c "connected to" "$T/log" || true) -ge 5 ]] || fail "inputs did not connect"
sleep 0.3 # subscriptions acknowledged

# (1) formats
pub -t plant/s1/l1/m1/temp -m '{"value":21.5,"time":"2026-01-01T00:00:00Z","quality":"uncertain"}'
pub -t plant/s1/l1/m1/state -m '{"value":"RUN","time":1767225600}'
pub -t flat/m2 -m '{"time":1767225601000,"spindle":{"rpm":1200,"load":0.25},"alarm":false,"note":"x"}'
pub -t raw/m3/speed -m ' 42.75 '
pub -t influx/s9/m4 -m 'press,line=l4 force=12.5,count=7i 1767225602000000000
press force=13 1767225603000000000'
pub -t raw/m3/speed -m 'not-a-number'
pub -t plant/s1/l1/m1/bad -m '{"value":'

# (2) a numbered stream with a broker restart in the middle
N=200
(
    for i in $(seq 1 $N); do
        for _ in $(seq 100); do
            pub -t seq/n -m "$i" 2>/dev/null && break
            sleep 0.1
        done
    done
) &
PUB=$!
for _ in $(seq 100); do
    [[ -s $T/out.jsonl ]] && [[ $(grep -c '"asset":"test/seq"' "$T/out.jsonl" || true) -ge 50 ]] && break
    sleep 0.1
done
stop_broker
sleep 1
start_broker
wait "$PUB" || fail "publisher failed"
PUB=""
expect_all() {
    for _ in $(seq 150); do
        n=$(grep '"asset":"test/seq"' "$T/out.jsonl" | sed 's/.*"value":\([0-9]*\).*/\1/' | sort -un | wc -l)
        [[ $n -ge $N ]] && return 0
        sleep 0.1
    done
    return 1
}
expect_all || fail "after the broker restart only $n of $N numbers arrived"
kill "$MR"
wait "$MR" || fail "millrace exited with $?"
MR=""

want() {
    grep -qF "$1" "$T/out.jsonl" || { grep -v test/seq "$T/out.jsonl" >&2; fail "missing in output: $1"; }
}
want '{"time":"2026-01-01T00:00:00.000000000Z","asset":"s1/l1/m1","signal":"temp","value":21.5,"quality":"uncertain"}'
want '{"time":"2026-01-01T00:00:00.000000000Z","asset":"s1/l1/m1","signal":"state","value":"RUN","quality":"good"}'
want '{"time":"2026-01-01T00:00:01.000000000Z","asset":"s1/l2/m2","signal":"spindle.rpm","value":1200'
want '{"time":"2026-01-01T00:00:01.000000000Z","asset":"s1/l2/m2","signal":"spindle.load","value":0.25'
want '"asset":"s1/l2/m2","signal":"alarm","value":false'
want '"asset":"s1/l3/m3","signal":"speed","value":42.75'
want '{"time":"2026-01-01T00:00:02.000000000Z","asset":"s9/m4","signal":"press.force","value":12.5,"quality":"good","tags":{"line":"l4"}}'
want '{"time":"2026-01-01T00:00:02.000000000Z","asset":"s9/m4","signal":"press.count","value":7,'
want '{"time":"2026-01-01T00:00:03.000000000Z","asset":"s9/m4","signal":"press.force","value":13'
grep -q '"signal":"note"' "$T/out.jsonl" && fail "a string leaf was flattened"
grep -q 'raw/m3/speed: expected a number' "$T/log" || fail "bad plain value not reported"
grep -q 'plant/s1/l1/m1/bad: JSON byte' "$T/log" || fail "bad JSON not reported"
grep -q 'lost the connection' "$T/log" || fail "the broker restart was not noticed"
dups=$(($(grep -c '"asset":"test/seq"' "$T/out.jsonl") - N))
echo "ok: json, flattened json, value and line protocol decoded; $N/$N numbers across a broker restart ($dups duplicates)"
