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
PG_TABLE=measurements
PG_OUTPUT_EXTRA=
source tests/integration/_pg_output_kill9.sh

sql -F $'\t' -c "SELECT asset, signal, (extract(epoch FROM time) * 1000000)::bigint, value,
                 value_text, quality, tags::text FROM measurements" >"$T/table.tsv"
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
