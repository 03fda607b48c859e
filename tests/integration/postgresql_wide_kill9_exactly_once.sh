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
PG_TABLE=wide
PG_OUTPUT_EXTRA=$'    layout: wide\n'
source tests/integration/_pg_output_kill9.sh

sql -c "SELECT to_jsonb(w) - 'time' || jsonb_build_object('us',
                 (extract(epoch FROM time) * 1000000)::bigint) FROM wide w" >"$T/table.jsonl"
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
