#!/usr/bin/env bash
# Guarantees of the http_listener input, with curl as the client against `millrace run`:
# (1) line protocol (several lines, gzip body, precision ms), JSON (one object, an array) and a
#     Telegraf-style write (POST /write?db=telegraf, gzip, basic auth, tags and several fields)
#     are committed to the journal with exactly the asset, signal, value, time, quality and tags
#     they say, and answered 204 / 200 {"accepted": n} only then;
# (2) a body with a malformed line is answered 400 naming that line, and NOTHING of it is kept
#     (not even its good lines); an oversized body gets 413, wrong credentials 401, an unknown
#     path 404, a wrong method 405; the process keeps running and a good request afterwards is
#     accepted.
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
T=$(mktemp -d)
MR=""
cleanup() {
    if [[ -n $MR ]]; then
        kill "$MR" 2>/dev/null || true
        wait "$MR" 2>/dev/null || true
    fi
    rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    tail -n 20 "$T/log" >&2 || true
    exit 1
}
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
P1=$(free_port)
P2=$(free_port)
while [[ $P2 == "$P1" ]]; do P2=$(free_port); done

cat >"$T/mr.yaml" <<EOF
journal: {dir: $T/data}
inputs:
  plant:
    type: http_listener
    service_address: "127.0.0.1:$P1"
    asset: site1
    asset_tags: [line, machine]
    database_tag: db
    max_body_size: 64KiB
  telegraf:
    type: http_listener
    service_address: "127.0.0.1:$P2"
    asset_tags: [host]
    basic_username: telegraf
    basic_password: s3cret
EOF
"$MILLRACE" run "$T/mr.yaml" >"$T/console" 2>"$T/log" &
MR=$!
for _ in $(seq 100); do
    [[ $(grep -c "listening on" "$T/log" || true) -ge 2 ]] && break
    kill -0 "$MR" 2>/dev/null || fail "millrace exited"
    sleep 0.1
done
[[ $(grep -c "listening on" "$T/log" || true) -ge 2 ]] || fail "the listeners did not start"

U1="http://127.0.0.1:$P1"
U2="http://127.0.0.1:$P2"
# req EXPECTED_STATUS CURL_ARGS...: the answer's body is left in $T/body.
req() {
    local want=$1 got
    shift
    got=$(curl -sS -m 10 -o "$T/body" -w '%{http_code}' "$@") || fail "curl $*"
    [[ $got == "$want" ]] || fail "curl $*: status $got, expected $want: $(cat "$T/body")"
}

# (1) line protocol, several lines, gzip, precision ms
printf '%s\n' \
    'press,line=l1,machine=m1 force=12.5,count=7i,ok=true 1767225600000' \
    'press,line=l1,machine=m2,shift=A force=13,note="die change" 1767225601000' \
    '' \
    '# a comment line' \
    'press,line=l2,machine=m1 force=-0.5 1767225601500' | gzip >"$T/lp.gz"
req 204 -H 'Content-Encoding: gzip' --data-binary @"$T/lp.gz" "$U1/write?db=plant&precision=ms"
[[ ! -s $T/body ]] || fail "204 with a body"

# JSON: one object, then an array
req 200 -H 'Content-Type: application/json' --data-binary \
    '{"asset":"site1/l3/oven","signal":"temp","value":181.25,"time":"2026-01-01T00:00:02Z","quality":"uncertain","tags":{"unit":"degC"}}' \
    "$U1/api/v1/ingest"
grep -qx '{"accepted":1}' "$T/body" || fail "JSON single: $(cat "$T/body")"
req 200 --data-binary \
    '[{"asset":"site1/l3/oven","signal":"door_open","value":false,"time":1767225603000000000},
      {"asset":"site1/l3/oven","signal":"recipe","value":"R-17","time":"2026-01-01T00:00:03Z"},
      {"asset":"site1/l3/oven","signal":"count","value":42,"time":"2026-01-01T00:00:03.25Z","quality":"bad"}]' \
    "$U1/api/v1/ingest"
grep -qx '{"accepted":3}' "$T/body" || fail "JSON array: $(cat "$T/body")"

# (2) a malformed line: 400 naming line 3, nothing of the body kept
printf '%s\n' \
    'bad,line=l9,machine=m9 good=1 1767225604000000000' \
    'bad,line=l9,machine=m9 good=2 1767225604000000001' \
    'bad,line=l9,machine=m9 good=abc 1767225604000000002' |
    req 400 --data-binary @- "$U1/write"
grep -q '"error":"line 3: column 29: field value is not a number' "$T/body" ||
    fail "400 does not name line 3: $(cat "$T/body")"
grep -q "(at 'abc')" "$T/body" || fail "400 does not quote the text: $(cat "$T/body")"
grep -q 'nothing of this request was kept' "$T/body" || fail "400 body: $(cat "$T/body")"
# a bad JSON item
req 400 --data-binary '[{"asset":"a","signal":"s","value":1},{"asset":"a","value":2}]' \
    "$U1/api/v1/ingest"
grep -q 'item 2: missing \\"signal\\"' "$T/body" || fail "JSON 400: $(cat "$T/body")"
# bad precision
req 400 --data-binary 'x,line=a,machine=b v=1 1' "$U1/write?precision=h"
grep -q "precision 'h'" "$T/body" || fail "precision 400: $(cat "$T/body")"
# too large (64 KiB limit): 413
head -c 100000 /dev/zero | tr '\0' 'x' >"$T/big"
req 413 --data-binary @"$T/big" "$U1/write"
# endpoints and methods
req 204 "$U1/ping"
req 204 -I "$U1/ping"
req 404 --data-binary 'x' "$U1/nowhere"
req 405 "$U1/write"
# still running, and a good request afterwards is accepted (InfluxDB 2 path, precision s)
kill -0 "$MR" || fail "millrace died"
req 204 --data-binary 'after,line=l1,machine=m1 v=1 1767225606' "$U1/api/v2/write?bucket=b1&org=o&precision=s"

# (1) Telegraf's influxdb output: gzip, basic auth, its User-Agent, ns timestamps, no precision
printf '%s\n' \
    'cpu,cpu=cpu-total,host=edge1 usage_idle=98.5,usage_user=1.25 1767225607000000000' \
    'mem,host=edge1 used_percent=42.5,available=8123456789i 1767225607000000000' | gzip >"$T/tg.gz"
TG=(-H 'Content-Encoding: gzip' -H 'Content-Type: text/plain; charset=utf-8' -H 'User-Agent: Telegraf/1.28.5')
req 401 "${TG[@]}" --data-binary @"$T/tg.gz" "$U2/write?db=telegraf"
req 401 "${TG[@]}" -u telegraf:wrong --data-binary @"$T/tg.gz" "$U2/write?db=telegraf"
req 204 "${TG[@]}" -u telegraf:s3cret --data-binary @"$T/tg.gz" "$U2/write?db=telegraf"
req 204 "$U2/ping" # no credentials needed, as InfluxDB

kill -TERM "$MR"
wait "$MR" || fail "millrace exited with $?"
MR=""

"$MILLRACE" journal read --dir "$T/data" --topic plant --format json >"$T/plant.jsonl"
"$MILLRACE" journal read --dir "$T/data" --topic telegraf --format json >"$T/telegraf.jsonl"
/usr/bin/python3 - "$T/plant.jsonl" "$T/telegraf.jsonl" <<'PY' || fail "journal content"
import json, sys

def load(path):
    out = []
    for line in open(path):
        r = json.loads(line)["record"]
        out.append((r["time"], r["asset"], r["signal"], r["value"], r["quality"],
                    tuple(sorted(r.get("tags", {}).items()))))
    return out

db = (("db", "plant"),)
want_plant = [
    ("2026-01-01T00:00:00.000000000Z", "site1/l1/m1", "press.force", 12.5, "good", db),
    ("2026-01-01T00:00:00.000000000Z", "site1/l1/m1", "press.count", 7, "good", db),
    ("2026-01-01T00:00:00.000000000Z", "site1/l1/m1", "press.ok", True, "good", db),
    ("2026-01-01T00:00:01.000000000Z", "site1/l1/m2", "press.force", 13, "good", db + (("shift", "A"),)),
    ("2026-01-01T00:00:01.000000000Z", "site1/l1/m2", "press.note", "die change", "good", db + (("shift", "A"),)),
    ("2026-01-01T00:00:01.500000000Z", "site1/l2/m1", "press.force", -0.5, "good", db),
    ("2026-01-01T00:00:02.000000000Z", "site1/l3/oven", "temp", 181.25, "uncertain", (("unit", "degC"),)),
    ("2026-01-01T00:00:03.000000000Z", "site1/l3/oven", "door_open", False, "good", ()),
    ("2026-01-01T00:00:03.000000000Z", "site1/l3/oven", "recipe", "R-17", "good", ()),
    ("2026-01-01T00:00:03.250000000Z", "site1/l3/oven", "count", 42, "bad", ()),
    ("2026-01-01T00:00:06.000000000Z", "site1/l1/m1", "after.v", 1, "good", (("db", "b1"),)),
]
want_tg = [
    ("2026-01-01T00:00:07.000000000Z", "edge1", "cpu.usage_idle", 98.5, "good", (("cpu", "cpu-total"),)),
    ("2026-01-01T00:00:07.000000000Z", "edge1", "cpu.usage_user", 1.25, "good", (("cpu", "cpu-total"),)),
    ("2026-01-01T00:00:07.000000000Z", "edge1", "mem.used_percent", 42.5, "good", ()),
    ("2026-01-01T00:00:07.000000000Z", "edge1", "mem.available", 8123456789, "good", ()),
]
# Partitions of a topic are read one after the other: compare in time, asset, signal order.
key = lambda r: (r[0], r[1], r[2])
got_plant, got_tg = sorted(load(sys.argv[1]), key=key), sorted(load(sys.argv[2]), key=key)
want_plant.sort(key=key)
want_tg.sort(key=key)
for name, got, want in (("plant", got_plant, want_plant), ("telegraf", got_tg, want_tg)):
    if got != want:
        print(f"topic {name}:\n got  {got}\n want {want}", file=sys.stderr)
        sys.exit(1)
assert not any(r[2].startswith("bad.") for r in got_plant), "a line of the refused body was kept"
print(f"journal: {len(got_plant)} + {len(got_tg)} records exactly as sent")
PY
echo "ok: line protocol (gzip, ms), JSON single and batch, Telegraf-style write kept exactly; 400 names the line and keeps nothing; 413, 401, 404, 405 answered; still accepting afterwards"
