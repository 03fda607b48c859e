#!/usr/bin/env bash
# Guarantee: examples/edge.yaml reduces what leaves the machine (the `uplink` topic) to a small
# fraction of what came in (10 kHz vibration blocks and analog tags), the reduction is reported
# in /metrics (millrace_pipeline_bytes_in_total / bytes_out_total of the pipeline), and nothing
# an engineer needs is lost: per second vibration features, states and every part counter
# change, and each analog tag at least once a minute (heartbeat).
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
T=$(mktemp -d)
pid=
cleanup() {
    [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    tail -n 20 "$T/log" >&2 || true
    exit 1
}
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$MILLRACE" run examples/edge.yaml --set "journal.dir=$T/data" --set inputs.press.speed=30 \
    --set inputs.press.duration=4m --set inputs.press.start=2026-01-05T06:00:00Z \
    --set "http.listen=\"127.0.0.1:$port\"" >"$T/console" 2>"$T/log" &
pid=$!
# While it runs: the byte counters of the pipeline, read over HTTP.
metrics=
for _ in $(seq 1 100); do
    metrics=$(/usr/bin/python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/metrics', timeout=2).read().decode())" 2>/dev/null || true)
    if grep -q 'millrace_pipeline_bytes_out_total{pipeline="edge"} [1-9]' <<<"$metrics"; then
        break
    fi
    sleep 0.1
done
grep -q 'millrace_pipeline_bytes_in_total{pipeline="edge"} [1-9]' <<<"$metrics" ||
    fail "no bytes_in counter for the edge pipeline"
grep -q 'millrace_pipeline_bytes_out_total{pipeline="edge"} [1-9]' <<<"$metrics" ||
    fail "no bytes_out counter for the edge pipeline"
wait "$pid" || fail "exit code $?"
pid=
"$MILLRACE" journal topics --dir "$T/data" >"$T/topics"
in=$(awk '$1 == "press" { print $5 }' "$T/topics")
out=$(awk '$1 == "uplink" { print $5 }' "$T/topics")
[[ -n $in && -n $out && $in -gt 0 && $out -gt 0 ]] || fail "topics: $(cat "$T/topics")"
"$MILLRACE" journal read --dir "$T/data" --topic uplink --format json >"$T/uplink.jsonl"
/usr/bin/python3 - "$T/uplink.jsonl" "$in" "$out" <<'PY' || fail "uplink content"
import json, sys
from collections import defaultdict
rows = [json.loads(l)["record"] for l in open(sys.argv[1])]
bytes_in, bytes_out = int(sys.argv[2]), int(sys.argv[3])
print(f"press topic {bytes_in} bytes, uplink {bytes_out} bytes: {100 * bytes_out / bytes_in:.2f} %")
assert bytes_out < bytes_in / 20, "the uplink is not much smaller than the input"
sigs = defaultdict(list)
for r in rows:
    sigs[r["signal"]].append(r)
assert "vibration" not in sigs, "raw vibration blocks left the edge"
assert len(sigs["vibration.rms"]) >= 200, "vibration features missing"  # one per second of 4 min
assert sigs["state"] and sigs["good_count"], "events missing"
counts = [r["value"] for r in sigs["good_count"]]
assert counts == sorted(counts) and len(set(counts)) == len(counts), "a counter change was dropped"
assert counts[-1] - counts[0] == len(counts) - 1, "a part counter change was dropped"
for name in ("temperature", "power"):
    t = sorted(r["time"] for r in sigs[name])
    assert len(t) >= 4, f"{name}: {len(t)} values in 4 minutes"
print("features, events, counters and heartbeats all there")
PY
echo ok
