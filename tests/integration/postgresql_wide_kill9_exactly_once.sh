#!/usr/bin/env bash
# Guarantee: the postgresql output's wide layout (one row per asset and time, one column per
# signal) is exactly once through crashes and database outages. A simulated plant streams into
# a PostgreSQL 15 table with layout: wide; PostgreSQL is stopped for a while mid-stream and
# started again; millrace is killed with -9 at three random moments and restarted. In the end
# every (asset, time to the microsecond, signal) of the journal topic has its cell holding the
# journal's last value for it, no other cell is set, there is one row per (asset, time), and
# the stored next offsets equal the journal's ends. Columns were added as signals appeared.
#
# PostgreSQL runs from a temp dir on a free port on 127.0.0.1 (tests/integration/_peers.sh).
# (TimescaleDB is not in Debian: this covers plain PostgreSQL.)
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
MILLRACE=$(realpath "$MILLRACE")
source tests/integration/_peers.sh
T=$(mktemp -d /tmp/mr-pgout.XXXXXX)
chmod 755 "$T"
mr_pid=
cleanup() {
    if [[ -n $mr_pid ]]; then kill -9 "$mr_pid" 2>/dev/null || true; fi
    if [[ -n $pg_pid ]]; then
        kill "$pg_pid" 2>/dev/null || true
        wait "$pg_pid" 2>/dev/null || true
    fi
    [[ -n ${KEEP:-} ]] || rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    echo "--- millrace log:" >&2
    tail -n 30 "$T/log" >&2 || true
    echo "--- postgres log:" >&2
    tail -n 20 "$T/pg.log" >&2 || true
    exit 1
}

PORT=$(free_port)
HTTP=$(free_port)
pg_init "$PORT"
start_pg

run_yaml() { # $1: with the simulated plant (1) or only draining what the journal holds (0)
    echo "journal: {dir: $T/data, fsync: always, topics: {store: {partitions: 2}}}"
    if [[ $1 == 1 ]]; then
        echo 'inputs:'
        echo '  plant: {type: sim, speed: 20, duration: 0, vibration: false, start: "2026-01-05T06:00:00Z"}'
    fi
    cat <<YAML
pipelines:
  store: {from: [plant], to: [store, db]}
outputs:
  db:
    type: postgresql
    connection: "host=127.0.0.1 port=$PORT dbname=postgres user=postgres"
    table: wide
    layout: wide
    timeout: 2s
YAML
}
run_yaml 1 >"$T/run.yaml"
run_yaml 0 >"$T/drain.yaml"

start_millrace() { # $1: config file
    "$MILLRACE" run "$1" --set "http.listen=\"127.0.0.1:$HTTP\"" >/dev/null 2>>"$T/log" &
    mr_pid=$!
}
kill9() {
    kill -9 "$mr_pid" 2>/dev/null || true
    wait "$mr_pid" 2>/dev/null || true
    mr_pid=
}
rows() { sql -c "SELECT count(*) FROM wide" 2>/dev/null || echo 0; }
metric() { # $1: metric name prefix (empty when millrace does not answer)
    local text
    text=$(curl -sf "http://127.0.0.1:$HTTP/metrics" || true)
    awk -v m="$1" 'index($0, m) == 1 {print $2; exit}' <<<"$text"
}

# ---- 1. rows flow --------------------------------------------------------------------
start_millrace "$T/run.yaml"
for _ in $(seq 1 150); do [[ $(rows) -ge 200 ]] && break; sleep 0.2; done
[[ $(rows) -ge 200 ]] || fail "no rows arrived in PostgreSQL"
echo "flowing: $(rows) rows"

# ---- 2. PostgreSQL stopped mid-stream: millrace buffers, says so, catches up ---------------
stop_pg
sleep 3
grep -q "cannot write to PostgreSQL" "$T/log" || fail "the outage was not reported"
lag=$(metric 'millrace_output_lag_records{output="outputs.db"')
echo "PostgreSQL down for 3 s: backlog ${lag:-?} records"
[[ -n $lag && ${lag%.*} -gt 0 ]] || fail "no backlog reported while PostgreSQL is down"
start_pg
before=$(rows)
for _ in $(seq 1 150); do [[ $(rows) -gt $before ]] && break; sleep 0.2; done
[[ $(rows) -gt $before ]] || fail "no catch-up after PostgreSQL came back"
grep -q "PostgreSQL is back" "$T/log" || fail "the recovery was not reported"

# ---- 3. kill -9 at random moments, three times --------------------------------------
RANDOM=${SEED:-$$}
echo "seed $RANDOM"
for round in 1 2 3; do
    sleep "0.$((RANDOM % 9 + 1))"
    kill9
    echo "round $round: killed with $(rows) rows in the table"
    start_millrace "$T/run.yaml"
    sleep 0.5
done
sleep 1
kill9

# ---- 4. drain what the journal holds, then compare ------------------------------------
start_millrace "$T/drain.yaml"
done_=0
for _ in $(seq 1 300); do
    lag=$(metric 'millrace_output_lag_records{output="outputs.db"' || true)
    if [[ -n $lag && ${lag%.*} -eq 0 ]]; then done_=1; break; fi
    sleep 0.2
done
[[ $done_ == 1 ]] || fail "still a backlog of ${lag:-?} records"
kill -TERM "$mr_pid"
wait "$mr_pid" || fail "millrace exited with $? on SIGTERM"
mr_pid=
grep -q "AddressSanitizer\|runtime error" "$T/log" && fail "sanitizer report"
echo "replays that found records already in the table: $(grep -c "already in the table: skipped" "$T/log" || true)"

"$MILLRACE" journal read --dir "$T/data" --topic store --format json >"$T/journal.jsonl"
sql -c "SELECT to_jsonb(w) - 'time' || jsonb_build_object('us',
                 (extract(epoch FROM time) * 1000000)::bigint) FROM wide w" >"$T/table.jsonl"
sql -F $'\t' -c "SELECT topic, partition, next_offset FROM millrace_output_offsets
                 WHERE output = 'outputs.db'" >"$T/offsets.tsv"
/usr/bin/python3 - "$T/journal.jsonl" "$T/table.jsonl" "$T/offsets.tsv" <<'PY' || fail "exactly once"
import collections, datetime, json, sys
def us(t):  # RFC 3339 with up to 9 fractional digits -> microseconds, rounded down
    main, _, rest = t.rstrip("Z").partition(".")
    sec = int(datetime.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S")
              .replace(tzinfo=datetime.timezone.utc).timestamp())
    return sec * 1000000 + int((rest + "000000")[:6])
def val(v):
    return v if isinstance(v, str) else float(v)
expected, ends, nrec = {}, collections.defaultdict(int), 0
for line in open(sys.argv[1]):  # in offset order per partition; an asset stays in one partition
    j = json.loads(line)
    r = j["record"]
    expected[(r["asset"], us(r["time"]), r["signal"])] = val(r["value"])
    ends[("store", j["partition"])] = max(ends[("store", j["partition"])], j["offset"] + 1)
    nrec += 1
cells, rows = {}, collections.Counter()
for line in open(sys.argv[2]):
    row = json.loads(line)
    a, t = row.pop("asset"), row.pop("us")
    rows[(a, t)] += 1
    for s, v in row.items():
        if v is not None:
            cells[(a, t, s)] = val(v)
twice = [k for k, n in rows.items() if n > 1]
assert not twice, f"{len(twice)} (asset, time) rows more than once, e.g. {twice[0]}"
assert set(rows) == {(a, t) for a, t, _ in expected}, "rows differ from the journal's (asset, time)"
missing = [k for k in expected if k not in cells]
assert not missing, f"{len(missing)} journal values not in the table, e.g. {missing[0]}"
wrong = [k for k in expected if cells[k] != expected[k]]
assert not wrong, f"{len(wrong)} cells differ, e.g. {wrong[0]}: {cells[wrong[0]]} != {expected[wrong[0]]}"
extra = [k for k in cells if k not in expected]
assert not extra, f"{len(extra)} cells not in the journal, e.g. {extra[0]}"
stored = {(t, int(p)): int(n) for t, p, n in (l.rstrip("\n").split("\t") for l in open(sys.argv[3]))}
assert stored == dict(ends), f"stored offsets {stored} != journal ends {dict(ends)}"
print(f"exactly once: {nrec} records in {len(rows)} rows, {len(cells)} cells, "
      f"{len({s for _, _, s in cells})} signal columns")
PY
grep -q 'added column for signal' "$T/log" || fail "no column was added"
echo "ok: postgresql output (layout wide) exactly once through a PostgreSQL outage and three kill -9"
