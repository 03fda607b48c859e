#!/usr/bin/env bash
# Guarantee: the postgresql output is exactly once through crashes and database outages. A
# simulated plant streams through a pipeline into a PostgreSQL 15 table; PostgreSQL is stopped
# for a while mid-stream and started again; millrace is killed with -9 at three random moments
# and restarted. In the end the table holds every record of the journal topic exactly once:
# the same multiset of (asset, signal, time to the microsecond, value, quality, tags), hence
# the same count and checksum per asset, and the stored next offsets equal the journal's ends.
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
    table: measurements
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
rows() { sql -c "SELECT count(*) FROM measurements" 2>/dev/null || echo 0; }
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
sql -F $'\t' -c "SELECT asset, signal, (extract(epoch FROM time) * 1000000)::bigint, value,
                 value_text, quality, tags::text FROM measurements" >"$T/table.tsv"
sql -F $'\t' -c "SELECT topic, partition, next_offset FROM millrace_output_offsets
                 WHERE output = 'outputs.db'" >"$T/offsets.tsv"
/usr/bin/python3 - "$T/journal.jsonl" "$T/table.tsv" "$T/offsets.tsv" <<'PY' || fail "exactly once"
import collections, datetime, json, sys
QUAL = {"good": 0, "uncertain": 1, "bad": 2}
def us(t):  # RFC 3339 with up to 9 fractional digits -> microseconds, rounded down
    main, _, rest = t.rstrip("Z").partition(".")
    sec = int(datetime.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S")
              .replace(tzinfo=datetime.timezone.utc).timestamp())
    return sec * 1000000 + int((rest + "000000")[:6])
def num(v):
    return float(v) if not isinstance(v, bool) else float(v)
journal, ends = collections.Counter(), collections.defaultdict(int)
for line in open(sys.argv[1]):
    j = json.loads(line)
    r = j["record"]
    v = r["value"]
    text = v if isinstance(v, str) else None
    key = (r["asset"], r["signal"], us(r["time"]), None if text is not None else num(v), text,
           QUAL[r.get("quality", "good")], json.dumps(r.get("tags", {}), sort_keys=True))
    journal[key] += 1
    ends[("store", j["partition"])] = max(ends[("store", j["partition"])], j["offset"] + 1)
table = collections.Counter()
for line in open(sys.argv[2]):
    a, s, t, v, vt, q, tags = line.rstrip("\n").split("\t")
    table[(a, s, int(t), None if v == "" else float(v), None if vt == "" else vt, int(q),
           json.dumps(json.loads(tags), sort_keys=True))] += 1
missing, extra = journal - table, table - journal
twice = {k: n for k, n in table.items() if n > journal[k]}
assert not twice, f"{len(twice)} records stored more than once, e.g. {next(iter(twice))}"
assert not missing, f"{sum(missing.values())} journal records not in the table, e.g. {next(iter(missing))}"
assert not extra, f"{sum(extra.values())} rows not in the journal, e.g. {next(iter(extra))}"
per = collections.defaultdict(lambda: [0, 0.0])
for k, n in journal.items():
    per[k[0]][0] += n
    per[k[0]][1] += n * (k[3] or 0.0)
stored = {(t, int(p)): int(n) for t, p, n in (l.rstrip("\n").split("\t") for l in open(sys.argv[3]))}
assert stored == dict(ends), f"stored offsets {stored} != journal ends {dict(ends)}"
print(f"exactly once: {sum(journal.values())} records, {len(per)} assets; per asset "
      + ", ".join(f"{a}: {n} rows sum {s:.6g}" for a, (n, s) in sorted(per.items())[:4]) + ", ...")
PY
echo "ok: postgresql output exactly once through a PostgreSQL outage and three kill -9"
