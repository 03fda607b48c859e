#!/usr/bin/env bash
# Guarantee: on the simulator's drifting lathe (tool wear, +0.01 mm/h), the `spc` step of the
# demo trips a Nelson rule and sends an `adjust` command, with an offset back toward target,
# well before the first part leaves tolerance (which it then does: the simulator does not obey
# the command, so the comparison means something); commands respect the 10-minute cool-down.
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() {
    echo "FAIL: $*" >&2
    tail -n 20 "$T/log" >&2 || true
    exit 1
}
timeout 300 "$MILLRACE" run tests/data/quality_drift.yaml --set "journal.dir=$T/data" \
    --set "outputs.out.path=$T/out.jsonl" --set 'http.listen="127.0.0.1:0"' \
    >"$T/console" 2>"$T/log" || fail "exit code $?"
[[ -s $T/out.jsonl ]] || fail "no results"
/usr/bin/python3 - "$T/out.jsonl" <<'PY' || fail "outcome"
import json, sys
from datetime import datetime

def at(r):
    return datetime.strptime(r["time"][:19], "%Y-%m-%dT%H:%M:%S")

rows = [json.loads(line) for line in open(sys.argv[1])]
dims = [r for r in rows if r["signal"] == "dimension"]
out = [r for r in dims if not 19.98 <= r["value"] <= 20.02]
cmds = [r for r in rows if r["signal"] == "command"]
assert dims and out, "the drift never took a part out of tolerance: nothing to compare"
assert cmds, "no command"
first = cmds[0]
assert first["value"] == "adjust", first
tags = first["tags"]
assert tags["characteristic"] == "dimension" and tags["rule"].startswith("nelson"), tags
assert float(tags["offset"]) < 0, "the diameter drifts up: the offset must pull it down"
lead = (at(out[0]) - at(first)).total_seconds()
print(f"first adjust {first['time'][11:19]} ({tags['rule']}), first part out of tolerance "
      f"{out[0]['time'][11:19]}: {lead / 60:.0f} min earlier; {len(cmds)} commands")
assert lead >= 15 * 60, "the adjust did not come well before the first bad part"
for a, b in zip(cmds, cmds[1:]):
    assert (at(b) - at(a)).total_seconds() >= 600 - 1, "cool-down not respected"
alerts = [r for r in rows if r["signal"] == "alert" and r["tags"]["detector"] == "spc"]
assert alerts and alerts[0]["time"] == first["time"], "the first violation raised no alert"
for k in ("feature", "value", "baseline", "threshold", "rule", "window_start", "window_end"):
    assert k in alerts[0]["tags"], f"alert without {k}"
PY
echo "ok"
