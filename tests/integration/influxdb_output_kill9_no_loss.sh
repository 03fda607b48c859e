#!/usr/bin/env bash
# Guarantee: every record the journal accepted reaches InfluxDB exactly once (as one point),
# through an InfluxDB outage and kill -9 of millrace during delivery: the influxdb output
# answers OK only after InfluxDB confirmed a write (204), the cursor moves only after that, and
# a replay after a crash rewrites the same series+time (idempotent), so nothing is lost and
# nothing is doubled. A real InfluxDB 1.6 on free 127.0.0.1 ports, data in a temp dir.
#
#  1. millrace reads N records from a JSON-lines file into the journal and delivers them;
#  2. InfluxDB is stopped mid-stream (the output retries; the journal buffers);
#  3. millrace is killed with -9, InfluxDB started again, millrace restarted (without the file
#     input: only draining) and killed with -9 twice more during the catch-up;
#  4. InfluxDB then holds exactly N points, with the right sum, and the journal exactly N records.
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
influx_init "$PORT" "$RPC"
points() { # number of points in InfluxDB (0 when it has none yet)
    curl -sf -G "http://127.0.0.1:$PORT/query" --data-urlencode db=plant \
        --data-urlencode 'q=SELECT count(count), sum(count) FROM press' |
        /usr/bin/python3 -c 'import json,sys
r = json.load(sys.stdin)["results"][0]
print(r["series"][0]["values"][0][1] if "series" in r else 0, r["series"][0]["values"][0][2] if "series" in r else 0)'
}
journal_count() {
    "$MILLRACE" journal read --dir "$T/data" --topic plant --format json 2>/dev/null | wc -l
}

N=60000
/usr/bin/python3 - "$N" >"$T/records.jsonl" <<'EOF'
import sys
n = int(sys.argv[1])
t0 = 1767225600000000000
for i in range(n):
    print('{"time":%d,"asset":"plant/hall 2/press,1","signal":"press.count","value":%d,'
          '"tags":{"shift":"A b"}}' % (t0 + i * 1000, i))
EOF
want_sum=$((N * (N - 1) / 2))

mr_yaml() { # $1: 1 with the file input, 0 draining only
    echo "journal: {dir: $T/data, fsync: always}"
    if [[ $1 == 1 ]]; then
        echo "inputs:"
        echo "  plant: {type: file, path: $T/records.jsonl, format: json, pace: fast}"
    fi
    cat <<YAML
pipelines:
  p: {from: [plant], to: [historian]}
outputs:
  historian:
    type: influxdb
    urls: ["http://127.0.0.1:$PORT"]
    database: plant
    timeout: 1s
    asset_path_tags: [site, hall, machine]
YAML
}
mr_yaml 1 >"$T/ingest.yaml"
mr_yaml 0 >"$T/drain.yaml"
start_mr() { # $1: config
    "$MILLRACE" run "$1" --set 'http.listen="127.0.0.1:0"' >/dev/null 2>>"$T/log" &
    MR=$!
}
kill9_mr() {
    kill -9 "$MR" 2>/dev/null || true
    wait "$MR" 2>/dev/null || true
    MR=""
}

# ---- 1. flowing ------------------------------------------------------------------------------
start_influx
start_mr "$T/ingest.yaml"
for _ in $(seq 200); do
    read -r got _ <<<"$(points)"
    [[ $got -gt 0 ]] && break
    sleep 0.05
done
[[ $got -gt 0 ]] || fail "nothing arrived in InfluxDB"
# ---- 2. InfluxDB away mid-stream ---------------------------------------------------------------
stop_influx
echo "InfluxDB stopped with $got of $N points written"
for _ in $(seq 300); do
    [[ $(journal_count) -ge $N ]] && break
    sleep 0.1
done
[[ $(journal_count) -eq $N ]] || fail "journal holds $(journal_count) of $N records"
# ---- 3. kill -9 while it retries; InfluxDB back; kill -9 twice during the catch-up -------------
kill9_mr
start_influx
start_mr "$T/drain.yaml"
for k in 1 2; do
    sleep 0."$((1 + RANDOM % 4))"
    kill9_mr
    read -r got _ <<<"$(points)"
    echo "killed millrace with -9 during catch-up ($k): $got of $N points in InfluxDB"
    start_mr "$T/drain.yaml"
done
for _ in $(seq 600); do
    read -r got _ <<<"$(points)"
    [[ $got -ge $N ]] && break
    sleep 0.1
done
sleep 0.5 # a late duplicate would show now
kill "$MR"
wait "$MR" || fail "millrace exited with $?"
MR=""
# ---- 4. exactly N points, right values --------------------------------------------------------
read -r got sum <<<"$(points)"
[[ $got -eq $N ]] || fail "InfluxDB holds $got points, the journal $N records"
[[ $sum -eq $want_sum ]] || fail "sum of values $sum, expected $want_sum"
[[ $(journal_count) -eq $N ]] || fail "journal holds $(journal_count) records, expected $N"
tags=$(curl -sf -G "http://127.0.0.1:$PORT/query" --data-urlencode db=plant \
    --data-urlencode 'q=SHOW TAG VALUES FROM press WITH KEY IN ("hall", "machine", "shift")')
for v in '"hall 2"' '"press,1"' '"A b"'; do
    grep -qF "$v" <<<"$tags" || fail "tag value $v missing: $tags"
done
echo "ok: $N/$N records in InfluxDB exactly once (sum $sum) across an outage and 3 kill -9"
