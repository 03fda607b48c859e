#!/usr/bin/env bash
# Guarantees, through `millrace run` against a real InfluxDB 1.6:
# (1) records InfluxDB refuses for good (a field type conflict: the field already holds strings)
#     go to the dead-letter topic deadletter.historian with InfluxDB's reason in an mr.reject
#     header, and do not block the rest: every other record reaches InfluxDB;
# (2) `millrace outputs` (and GET /api/v1/outputs behind it) shows each output's state, records
#     delivered, rejected and waiting: the live output "ok" with nothing waiting, an output whose
#     destination is down "retrying"/"circuit_open" with its last error and every record waiting;
# (3) with millrace stopped, `millrace outputs CONFIG` reads the journal: "not running", the
#     same records still waiting for the dead destination (nothing lost);
# (4) bad use gets a clear message and its exit code: nothing listening (1), unknown option (2).
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
source tests/integration/_peers.sh
T=$(mktemp -d)
MR=""
cleanup() {
    for p in $MR $IX; do
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    tail -n 30 "$T/log" >&2 || true
    tail -n 10 "$T/influxd.log" >&2 || true
    exit 1
}
PORT=$(free_port)
RPC=$(free_port)
HTTP=$(free_port)
DEAD=$(free_port) # nothing listens here: the destination that is down
influx_init "$PORT" "$RPC"
start_influx
curl -sf -o /dev/null -XPOST "http://127.0.0.1:$PORT/query" --data-urlencode 'q=CREATE DATABASE plant'
# press.count already holds a string in this shard: numbers for it are a type conflict.
T0=1767225600000000000
curl -sf -o /dev/null -XPOST "http://127.0.0.1:$PORT/write?db=plant" \
    --data-binary "press,site=s1 count=\"jammed\" $((T0 - 1000000000))" || fail "cannot seed InfluxDB"

N=100 # records of each signal
/usr/bin/python3 - "$N" "$T0" >"$T/records.jsonl" <<'EOF'
import sys
n, t0 = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    print('{"time":%d,"asset":"s1","signal":"press.count","value":%d}' % (t0 + i * 1000000, i))
    print('{"time":%d,"asset":"s1","signal":"oven.temp","value":%d.5}' % (t0 + i * 1000000, i))
EOF
cat >"$T/mr.yaml" <<EOF
journal: {dir: $T/data}
http: {listen: "127.0.0.1:$HTTP"}
inputs:
  plant: {type: file, path: $T/records.jsonl, format: json, follow: true}
pipelines:
  p: {from: [plant], to: [historian, offsite]}
outputs:
  historian:
    type: influxdb
    urls: ["http://127.0.0.1:$PORT"]
    database: plant
    asset_path_tags: [site]
  offsite:
    type: influxdb
    urls: ["http://127.0.0.1:$DEAD"]
    database: plant
    timeout: 1s
    delivery: {retry_min: 50ms, retry_max: 200ms, circuit_failures: 3, circuit_open: 1s}
EOF
"$MILLRACE" run "$T/mr.yaml" >/dev/null 2>"$T/log" &
MR=$!

status() { "$MILLRACE" outputs --http "127.0.0.1:$HTTP" --json 2>>"$T/log" || true; }
field() { # $1 output name, $2 python expression over o (the output's object)
    status | /usr/bin/python3 -c 'import json,sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    print(""); sys.exit(0)
o = [x for x in doc["outputs"] if x["name"] == sys.argv[1]]
print(eval(sys.argv[2]) if o else "")' "$1" "$2" 2>/dev/null || true
}
for _ in $(seq 300); do
    [[ $(field historian 'o[0]["delivered"] + o[0]["rejected"]') == $((2 * N)) &&
        $(field offsite 'o[0]["state"]') == circuit_open ]] && break
    kill -0 "$MR" 2>/dev/null || fail "millrace exited"
    sleep 0.1
done

# ---- (1) dead letters; the rest delivered -------------------------------------------------------
temps=$(curl -sf -G "http://127.0.0.1:$PORT/query" --data-urlencode db=plant \
    --data-urlencode 'q=SELECT count(temp), sum(temp) FROM oven' | /usr/bin/python3 -c 'import json,sys
r = json.load(sys.stdin)["results"][0]
v = r["series"][0]["values"][0] if "series" in r else [0, 0, 0]
print(v[1], v[2])')
[[ $temps == "$N $((N * (N - 1) / 2 + N / 2))" ]] ||
    fail "InfluxDB holds count, sum of oven.temp = $temps, want $N and $((N * (N - 1) / 2 + N / 2))"
"$MILLRACE" journal read --dir "$T/data" --topic deadletter.historian --format json >"$T/dlq.jsonl"
[[ $(wc -l <"$T/dlq.jsonl") -eq $N ]] || fail "dead-letter topic holds $(wc -l <"$T/dlq.jsonl") records, want $N"
/usr/bin/python3 - "$T/dlq.jsonl" "$N" <<'EOF' || fail "dead-letter records are not the refused ones"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
n = int(sys.argv[2])
assert sorted(r["record"]["value"] if "record" in r else r["value"] for r in recs) == list(range(n)), "values"
for r in recs:
    text = json.dumps(r)
    assert "press.count" in text, text
    assert "mr.reject" in text and "conflict" in text, text
EOF
echo "(1) $N conflicting records in deadletter.historian with the reason; $N others in InfluxDB"

# ---- (2) the status of a running process ----------------------------------------------------------
[[ $(field historian 'o[0]["state"], o[0]["delivered"], o[0]["rejected"], o[0]["lag_records"]') == \
    "('ok', $N, $N, 0)" ]] || fail "historian status: $(status)"
[[ $(field historian 'o[0]["dead_letter_topic"]') == deadletter.historian ]] || fail "dead-letter topic name"
[[ $(field offsite 'o[0]["delivered"], o[0]["lag_records"]') == "(0, $((2 * N)))" ]] ||
    fail "offsite status: $(status)"
[[ $(field offsite 'o[0]["retries"] >= 3 and o[0]["backlog_age_seconds"] > 0') == True ]] ||
    fail "offsite retries/backlog age: $(status)"
[[ $(field offsite 'o[0]["last_error"]["message"]') == *"127.0.0.1:$DEAD"* ]] ||
    fail "offsite last error does not name the destination: $(status)"
"$MILLRACE" outputs --http "127.0.0.1:$HTTP" >"$T/table" || fail "millrace outputs failed"
grep -Eq "^historian +influxdb +ok +$N +0 +0s +$N\$" "$T/table" || fail "table: $(cat "$T/table")"
grep -Eq "^offsite +influxdb +circuit_open +0 +$((2 * N)) " "$T/table" || fail "table: $(cat "$T/table")"
grep -q "^offsite: last error" "$T/table" || fail "table without offsite's last error: $(cat "$T/table")"
cat "$T/table"

# ---- (3) stopped: read from the journal ----------------------------------------------------------
kill "$MR"
wait "$MR" || fail "millrace did not stop cleanly"
MR=""
"$MILLRACE" outputs "$T/mr.yaml" >"$T/table" || fail "millrace outputs CONFIG failed"
grep -q "no millrace answers" "$T/table" || fail "offline view does not say so: $(cat "$T/table")"
grep -Eq "^historian +influxdb +not running +- +0 " "$T/table" || fail "offline: $(cat "$T/table")"
grep -Eq "^offsite +influxdb +not running +- +$((2 * N)) " "$T/table" || fail "offline: $(cat "$T/table")"
echo "(3) stopped: offsite still has $((2 * N)) records waiting in the journal"

# ---- (4) bad use ---------------------------------------------------------------------------------
rc=0
"$MILLRACE" outputs --http "127.0.0.1:$HTTP" 2>"$T/err" || rc=$?
[[ $rc -eq 1 ]] && grep -q "no millrace answers" "$T/err" || fail "nothing listening: rc $rc, $(cat "$T/err")"
rc=0
"$MILLRACE" outputs --bogus 2>"$T/err" || rc=$?
[[ $rc -eq 2 ]] && grep -q "usage" "$T/err" || fail "unknown option: rc $rc"
echo "PASS"
