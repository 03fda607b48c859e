#!/usr/bin/env bash
# Guarantee: examples/nab.yaml runs the NAB machine_temperature_system_failure series
# (tests/data/nab) to its end and exits 0 by itself, writing exactly one JSON line per input row
# with time (as in the CSV), value, anomaly_score (0..1) and alert (true/false); and
# scripts/nab_score.py (a) reproduces NAB's published Numenta score on this file (Oracle B of
# tests/data/nab/SOURCE.md) and (b) scores our detections well above the null detector.
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
PY=/usr/bin/python3
DATA=tests/data/nab/machine_temperature_system_failure.csv
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() {
    echo "FAIL: $*" >&2
    tail -n 20 "$T/log" >&2 || true
    exit 1
}
timeout 120 "$MILLRACE" run examples/nab.yaml --set "inputs.series.path=$DATA" \
    --set "outputs.detections.path=$T/out.jsonl" --set "journal.dir=$T/data" \
    --set 'http.listen="127.0.0.1:0"' >"$T/console" 2>"$T/log" || fail "exit code $?"
grep -q "every input reached its end" "$T/log" || fail "did not stop on its own"
rows=$(($(wc -l <"$DATA") - 1))
[[ $rows -eq 22695 ]] || fail "data file has $rows rows, expected 22695"
lines=$(wc -l <"$T/out.jsonl")
[[ $lines -eq $rows ]] || fail "$lines output lines for $rows input rows"

# Fields, types and times: every line, checked against the CSV row of the same position.
"$PY" - "$DATA" "$T/out.jsonl" <<'PYEOF' || fail "output lines do not match the input rows"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
out = [json.loads(l) for l in open(sys.argv[2])]
alerts = 0
for i, (r, o) in enumerate(zip(rows, out)):
    assert set(o) == {"time", "value", "anomaly_score", "alert"}, (i, o)
    assert o["time"] == r["timestamp"], (i, o["time"], r["timestamp"])
    assert o["value"] == float(r["value"]), (i, o["value"], r["value"])
    assert isinstance(o["anomaly_score"], (int, float)) and 0 <= o["anomaly_score"] <= 1, (i, o)
    assert isinstance(o["alert"], bool), (i, o)
    if i < 750:  # the window is still filling (baseline_samples: 750): not scored
        assert o["anomaly_score"] == 0 and o["alert"] is False, (i, o)
    alerts += o["alert"]
assert 1 <= alerts <= 50, alerts
print("rows ok, %d alerts" % alerts)
PYEOF

# Oracle B: NAB's published Numenta result for this file (raw 1.36013273774, TP 5, FP 5).
"$PY" scripts/nab_score.py tests/data/nab/numenta_machine_temperature_system_failure.csv \
    --threshold 0.5421876907348634 --json >"$T/oracle.json"
"$PY" - "$T/oracle.json" <<'PYEOF' || fail "scorer does not reproduce NAB's Numenta score"
import json, sys
r = json.load(open(sys.argv[1]))
assert abs(r["raw"] - 1.36013273774) < 1e-9, r["raw"]
assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (5, 5, 2263, 19672), r
assert r["null"] == -4.0 and r["perfect"] == 4.0
PYEOF

# Our detections (the alert column): measured raw -0.375 (normalised 45.3); the null
# detector is -4.0 (normalised 0). The floor leaves room for harmless changes.
"$PY" scripts/nab_score.py "$T/out.jsonl" --json >"$T/ours.json"
"$PY" - "$T/ours.json" <<'PYEOF' || fail "our NAB score is not well above the null detector"
import json, sys
r = json.load(open(sys.argv[1]))
print("ours: raw %.4f normalised %.1f TP %d FP %d" % (r["raw"], r["normalised"], r["tp"], r["fp"]))
assert r["raw"] >= -1.0 and r["normalised"] >= 37.0, r
PYEOF
echo "ok: $rows rows in, $lines lines out; NAB oracle reproduced; our score above the floor"
