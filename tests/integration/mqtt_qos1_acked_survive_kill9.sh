#!/usr/bin/env bash
# Guarantee: with QoS 1, a persistent session and journal fsync: always, nothing the broker was
# told was delivered (PUBACK) is lost when millrace is killed with -9 in the middle of a stream:
# the mqtt input acknowledges a message only after the journal committed it, so whatever a kill
# interrupts the broker still holds and delivers again. Delivery is at least once: messages
# committed but not yet acknowledged at the kill are delivered again after the restart; the
# test counts those duplicates and reports them (they must stay a small fraction).
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
T=$(mktemp -d)
chmod 777 "$T"
BROKER=""
MR=""
PUB=""
cleanup() {
    for p in $PUB $MR $BROKER; do
        kill -9 "$p" 2>/dev/null || true
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
# No limit on what the broker queues for the offline persistent session.
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nlog_dest stderr\n' \
    "$PORT" >"$T/mosquitto.conf"
/usr/sbin/mosquitto -c "$T/mosquitto.conf" 2>>"$T/broker.log" &
BROKER=$!
for _ in $(seq 50); do
    mosquitto_pub -p "$PORT" -t ping -m x 2>/dev/null && break
    sleep 0.1
done
mosquitto_pub -p "$PORT" -t ping -m x 2>/dev/null || fail "mosquitto did not start on port $PORT"

cat >"$T/mr.yaml" <<EOF
journal: {dir: $T/data, fsync: always}
http: {listen: "127.0.0.1:0"}
inputs:
  seq:
    type: mqtt
    servers: ["tcp://127.0.0.1:$PORT"]
    topics: ["seq/n"]
    asset: test/seq
    data_format: value
    data_type: integer
    qos: 1
    client_id: millrace-kill9-test
    persistent_session: true
    reconnect_min: 50ms
    reconnect_max: 200ms
EOF
start_mr() {
    "$MILLRACE" run "$T/mr.yaml" >>"$T/console" 2>>"$T/log" &
    MR=$!
    for _ in $(seq 100); do
        [[ $(grep -c "connected to" "$T/log" || true) -ge $1 ]] && return 0
        sleep 0.1
    done
    fail "millrace did not connect (start $1)"
}
count() {
    "$MILLRACE" journal read --dir "$T/data" --topic seq --format json 2>/dev/null |
        grep -c '"asset":"test/seq"' || true
}

start_mr 1 # the persistent session exists from here on: the broker queues while we are away
sleep 0.3
N=30000
seq 1 $N >"$T/numbers"
mosquitto_pub -p "$PORT" -q 1 -t seq/n -l <"$T/numbers" 2>>"$T/pub.log" &
PUB=$!
# Kill -9 three times while the stream runs, restarting each time.
for k in 1 2 3; do
    sleep 0."$((3 + RANDOM % 5))"
    kill -9 "$MR"
    wait "$MR" 2>/dev/null || true
    MR=""
    echo "killed millrace with -9 ($k); journal holds $(count) records"
    start_mr $((k + 1))
done
wait "$PUB" || fail "publisher failed"
PUB=""
for _ in $(seq 300); do
    n=$("$MILLRACE" journal read --dir "$T/data" --topic seq --format json 2>/dev/null |
        sed -n 's/.*"value":\([0-9]*\).*/\1/p' | sort -un | wc -l)
    [[ $n -ge $N ]] && break
    sleep 0.1
done
kill "$MR"
wait "$MR" || fail "millrace exited with $?"
MR=""
"$MILLRACE" journal read --dir "$T/data" --topic seq --format json |
    sed -n 's/.*"value":\([0-9]*\).*/\1/p' >"$T/got"
distinct=$(sort -un "$T/got" | wc -l)
total=$(wc -l <"$T/got")
if [[ $distinct -ne $N ]]; then
    sort -u "$T/got" >"$T/got.sorted"
    sort -u "$T/numbers" >"$T/numbers.sorted"
    missing=$(comm -13 "$T/got.sorted" "$T/numbers.sorted" | sed -n '1,5p' | tr '\n' ' ')
    fail "after 3 kills only $distinct of $N numbers are in the journal (missing e.g. $missing)"
fi
dups=$((total - N))
# At least once: what was committed but not yet acknowledged at a kill comes again (how much
# depends on how soon the host reports commits; see docs/EDGE_MQTT.md). Never most of it.
[[ $dups -le $((N / 3)) ]] || fail "$dups duplicates for $N messages and 3 kills"
echo "ok: $N/$N QoS 1 messages in the journal across 3 kill -9 of millrace ($dups duplicates)"
