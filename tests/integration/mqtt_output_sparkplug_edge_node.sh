#!/usr/bin/env bash
# Guarantees: the mqtt output publishing as a Sparkplug B edge node is understood by a
# THIRD-PARTY host (npm sparkplug-payload + mqtt, tests/peers/sparkplug_host.js, through a real
# mosquitto): NBIRTH carries bdSeq and Node Control/Rebirth, DBIRTH names every signal of the
# device with an alias and datatype, DDATA carries values by alias, seq runs 0,1,2.. (mod 256)
# without a gap in every session, a new signal gets a new DBIRTH first, the host's NCMD Rebirth
# is answered with NBIRTH + DBIRTH; millrace killed with -9 -> the broker publishes its NDEATH
# (the will) with the bdSeq of that session's NBIRTH; after the restart every value the mqtt
# input took in reaches the host (at least once).
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
HOST_PEER=tests/peers/sparkplug_host.js
[[ -d tests/node_modules/sparkplug-payload && -d tests/node_modules/mqtt ]] ||
    { echo "FAIL: tests/node_modules/sparkplug-payload missing: run scripts/install-deps.sh test" >&2; exit 1; }
T=$(mktemp -d)
chmod 777 "$T" # mosquitto drops to its own user when started as root
BROKER=""
MR=""
HOST=""
PUB=""
cleanup() {
    for p in $PUB $MR $HOST $BROKER; do
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    [[ -n ${KEEP:-} ]] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    tail -n 20 "$T/log" >&2 || true
    tail -n 20 "$T/host.jsonl" >&2 || true
    exit 1
}
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nlog_dest stderr\n' \
    "$PORT" >"$T/mosquitto.conf"
/usr/sbin/mosquitto -c "$T/mosquitto.conf" 2>>"$T/broker.log" &
BROKER=$!
for _ in $(seq 50); do
    mosquitto_pub -p "$PORT" -t ping -m x 2>/dev/null && break
    sleep 0.1
done
mosquitto_pub -p "$PORT" -t ping -m x 2>/dev/null || fail "mosquitto did not start on port $PORT"

node "$HOST_PEER" "$PORT" Plant1 rebirth >"$T/host.jsonl" 2>"$T/host.err" &
HOST=$!
for _ in $(seq 100); do
    grep -q subscribed "$T/host.jsonl" 2>/dev/null && break
    sleep 0.1
done
grep -q subscribed "$T/host.jsonl" || fail "the third-party host did not subscribe: $(cat "$T/host.err")"

# Values come in through the mqtt input (persistent session: the broker keeps what arrives
# while millrace is down) and leave through the Sparkplug edge node.
cat >"$T/mr.yaml" <<YAML
journal: {dir: $T/data} # a kill -9 of the process keeps what was written
http: {listen: "127.0.0.1:0"}
inputs:
  line:
    type: mqtt
    servers: ["tcp://127.0.0.1:$PORT"]
    topic_template: "in/{machine}/{signal}"
    asset: hall2
    data_format: value
    qos: 1
    client_id: millrace-in
    persistent_session: true
    reconnect_min: 50ms
    reconnect_max: 200ms
pipelines:
  up: {from: [line], steps: [], to: [scada]}
outputs:
  scada:
    type: mqtt
    servers: ["tcp://127.0.0.1:$PORT"]
    client_id: millrace-edge
    keep_alive: 5s
    sparkplug: {group_id: Plant1, edge_node_id: mr1}
YAML
start_mr() {
    "$MILLRACE" run "$T/mr.yaml" >>"$T/console" 2>>"$T/log" &
    MR=$!
    for _ in $(seq 150); do
        [[ $(grep -c "connected to" "$T/log" || true) -ge $1 ]] && return 0
        sleep 0.1
    done
    fail "millrace did not connect (start $1)"
}
# seen VALUE: a DDATA of the host's log carried VALUE for any metric
seen() {
    for _ in $(seq 600); do
        # one grep: with pipefail, `grep | grep -q` fails when grep -q stops reading early
        grep -q "\"type\":\"DDATA\".*\"value\":$1[,}]" "$T/host.jsonl" && return 0
        sleep 0.1
    done
    fail "value $1 never reached the host"
}

N=2000
start_mr 2 # input and output connected
sleep 0.3
seq 1 $N | mosquitto_pub -p "$PORT" -q 1 -t in/press7/temp -l &
PUB=$!
seen 200
kill -9 "$MR" # mid-stream: the input and the output are both busy
wait "$MR" 2>/dev/null || true
MR=""
for _ in $(seq 100); do
    grep -q '"type":"NDEATH"' "$T/host.jsonl" && break
    sleep 0.1
done
grep -q '"type":"NDEATH"' "$T/host.jsonl" || fail "no NDEATH after kill -9"
at_kill=$(grep -c '"type":"DDATA"' "$T/host.jsonl" || true)
wait "$PUB" || fail "mosquitto_pub failed"
start_mr 4
seen $N
mosquitto_pub -p "$PORT" -q 1 -t in/press7/rpm -m 1500.5 # a new signal: a new DBIRTH first
seen 1500.5
kill "$MR"
wait "$MR" || fail "millrace exited with $?"
MR=""
sleep 0.3
echo "killed with -9 after $at_kill DDATA of $N"

/usr/bin/python3 - "$T/host.jsonl" "$N" <<'PY' || fail "the host's view is wrong (above)"
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"topic"')]
errors = []
def err(m):
    errors.append(m)
sessions = []  # per NBIRTH: bdSeq, births, data, death
cur = None
expect_seq = None
aliases = {}
temps = set()
for m in msgs:
    t = m["type"]
    if "error" in m:
        err("undecodable %s: %s" % (m["topic"], m["error"]))
        continue
    if m["node"] != "mr1":
        err("unexpected node %s" % m["node"])
    if t == "NBIRTH":
        names = {x["name"]: x for x in m["metrics"]}
        if "bdSeq" not in names or "Node Control/Rebirth" not in names:
            err("NBIRTH without bdSeq or Node Control/Rebirth: %s" % m)
        if m["seq"] != 0:
            err("NBIRTH seq %s" % m["seq"])
        cur = {"bdseq": names.get("bdSeq", {}).get("value"), "dbirths": 0, "ddata": 0}
        sessions.append(cur)
        expect_seq = 1
        continue
    if t == "NDEATH":
        bd = [x["value"] for x in m["metrics"] if x["name"] == "bdSeq"]
        if cur is None or not bd or bd[0] != cur["bdseq"]:
            err("NDEATH bdSeq %s does not match the NBIRTH's %s" % (bd, cur and cur["bdseq"]))
        else:
            cur["death"] = True
        continue
    if cur is None:
        err("%s before any NBIRTH" % t)
        continue
    if m["seq"] != expect_seq:
        err("seq gap in session %d: expected %s, got %s (%s)" % (len(sessions), expect_seq, m["seq"], t))
    expect_seq = (m["seq"] + 1) % 256
    if m["device"] != "hall2.press7":
        err("device %s" % m["device"])
    if t == "DBIRTH":
        cur["dbirths"] += 1
        aliases = {}
        for x in m["metrics"]:
            if x["name"] is None or x["alias"] is None or x["type"] is None:
                err("DBIRTH metric without name/alias/type: %s" % x)
            aliases[x["alias"]] = (x["name"], x["type"])
    elif t == "DDATA":
        cur["ddata"] += 1
        for x in m["metrics"]:
            if x["alias"] not in aliases:
                err("DDATA alias %s not in the last DBIRTH" % x["alias"])
                continue
            name, typ = aliases[x["alias"]]
            if typ != x["type"]:
                err("alias %s: DBIRTH says %s, DDATA %s" % (x["alias"], typ, x["type"]))
            if name == "temp":
                temps.add(x["value"])
if len(sessions) < 3:
    err("expected NBIRTHs of two sessions and one rebirth, got %d" % len(sessions))
if not any(s.get("death") for s in sessions):
    err("no NDEATH matched a session's bdSeq")
missing = [v for v in range(1, int(sys.argv[2]) + 1) if float(v) not in temps]
if missing:
    err("temp values missing at the host: %s" % missing[:10])
rpm_births = [m for m in msgs if m["type"] == "DBIRTH" and any(x["name"] == "rpm" for x in m["metrics"])]
if not rpm_births:
    err("no DBIRTH declared the new signal rpm")
for e in errors[:20]:
    print(e)
if errors:
    sys.exit(1)
ddata = sum(s["ddata"] for s in sessions)
print("sessions %d, dbirths %d, ddata %d (%d values sent again after the kill: at least once)" %
      (len(sessions), sum(s["dbirths"] for s in sessions), ddata, ddata - int(sys.argv[2]) - 1))
PY
deaths=$(grep -c '"type":"NDEATH"' "$T/host.jsonl")
echo "ok: a third-party Sparkplug host decoded births, DDATA by alias with continuous seq, a rebirth on its NCMD, $deaths NDEATH (kill -9 will and clean stop), all $N values after a kill -9 mid-stream"
