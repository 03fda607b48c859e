#!/usr/bin/env bash
# Guarantee: on the simulator's developing bearing fault, millrace's predictive maintenance
# raises its alert (kurtosis against the machine's own baseline) well before the vibration
# velocity reaches ISO 10816-3 zone C, which it does reach later in the same run (so the
# comparison means something); the zone C alert carries its evidence; no alert comes before
# the fault exists; and the BPFO amplitude of the envelope spectrum grows with the fault.
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
timeout 300 "$MILLRACE" run tests/data/bearing_fault.yaml --set "journal.dir=$T/data" \
    --set "outputs.out.path=$T/out.jsonl" --set 'http.listen="127.0.0.1:0"' \
    >"$T/console" 2>"$T/log" || fail "exit code $?"
[[ -s $T/out.jsonl ]] || fail "no results"
/usr/bin/python3 - "$T/out.jsonl" <<'PY' || fail "outcome"
import json, sys
from datetime import datetime, timezone

def secs(t):  # seconds since the simulated start (06:00:00Z)
    d = datetime.strptime(t[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return (d - datetime(2026, 1, 5, 6, 0, tzinfo=timezone.utc)).total_seconds()

rows = [json.loads(line) for line in open(sys.argv[1])]
alerts = [r for r in rows if r["signal"] == "alert"]
zone_c = [secs(r["time"]) for r in rows
          if r["signal"] == "vibration.iso_zone" and r["value"] in ("C", "D")]
bpfo = [(secs(r["time"]), r["value"]) for r in rows if r["signal"] == "vibration.bpfo_amp"]
detector = [a for a in alerts if a["tags"]["detector"] == "zscore"]
iso = [a for a in alerts if a["tags"]["detector"] == "iso10816"]
assert detector, "the detector raised no alert"
assert zone_c, "the velocity never reached zone C: the comparison would be empty"
first = secs(detector[0]["time"])
fault = 120.0
print(f"fault at {fault:.0f} s, detector alert at {first:.0f} s, zone C at {zone_c[0]:.0f} s")
assert first >= fault, f"alert before the fault exists ({first} s)"
assert first < zone_c[0] - 60, "the detector was not at least a minute ahead of zone C"
tags = detector[0]["tags"]
for k in ("feature", "value", "baseline", "threshold", "detector", "severity", "window_start",
          "window_end"):
    assert k in tags, f"alert without {k}"
assert tags["feature"] == "vibration.kurtosis"
assert int(tags["window_end"]) - int(tags["window_start"]) == 1_000_000_000, tags
assert iso, "no zone C alert"
t = iso[0]["tags"]
assert t["zone"] == "C" and t["threshold"] == "2.8" and t["severity"] == "warning", t
assert float(t["value"]) > 2.8 and int(t["window_start"]) < int(t["window_end"])
assert 1.5 < float(t["baseline"]) < 2.8, t  # the healthy machine, zone B
assert len(iso) <= 3, f"{len(iso)} zone alerts: the boundary flaps"
healthy = [v for s, v in bpfo if s < fault]
severe = [v for s, v in bpfo if s > fault + 420]
ratio = (sum(severe) / len(severe)) / (sum(healthy) / len(healthy))
print(f"BPFO envelope amplitude grew {ratio:.0f}x")
assert ratio > 10
PY
echo "ok"
