#!/usr/bin/env bash
# Guarantee: an edge whose uplink is down keeps collecting within its declared disk
# (journal.max_bytes) and follows its overflow policy: with `overflow: downsample` it gives up
# the oldest segments of low-priority topics (the bulk copy of the plant data) and keeps every
# alarm/state event. When the central site comes back, everything the edge still holds is
# forwarded exactly once, and every state event arrives.
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
MILLRACE=$(realpath "$MILLRACE")
T=$(mktemp -d /tmp/mr-fwdisk.XXXXXX)
edge_pid=
central_pid=
cleanup() {
    if [[ -n $edge_pid ]]; then kill -9 "$edge_pid" 2>/dev/null || true; fi
    if [[ -n $central_pid ]]; then kill -9 "$central_pid" 2>/dev/null || true; fi
    [[ -n ${KEEP:-} ]] || rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    echo "--- edge log:" >&2
    tail -n 30 "$T/edge.log" >&2 || true
    echo "--- central log:" >&2
    tail -n 20 "$T/central.log" >&2 || true
    exit 1
}
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
RPORT=$(free_port)
EHTTP=$(free_port)
MAX=$((256 * 1024))
SEG=$((16 * 1024))

cat >"$T/central.yaml" <<YAML
journal: {dir: $T/central, fsync: always}
inputs:
  sites: {type: receive, service_address: "127.0.0.1:$RPORT"}
YAML
edge_yaml() { # $1: with the simulated plant (1) or only draining what is buffered (0)
    cat <<YAML
journal:
  dir: $T/edge
  fsync: always
  segment_bytes: $SEG
  max_bytes: $MAX
  overflow: downsample
  topics:
    plant: {priority: low}
    fwd: {priority: low}
YAML
    if [[ $1 == 1 ]]; then
        echo 'inputs:'
        echo '  plant: {type: sim, speed: 20, duration: 0, vibration: false, start: "2026-01-05T06:00:00Z"}'
    fi
    cat <<YAML
pipelines:
  fwd: {from: [plant], to: [fwd, uplink]}
  alarms:
    from: [plant]
    steps: [{type: filter, where: "signal == 'state'"}]
    to: [alarms, uplink]
outputs:
  uplink: {type: forward, url: "http://127.0.0.1:$RPORT/millrace/forward/v1", node: edge1, timeout: 2s}
YAML
}
edge_yaml 1 >"$T/edge.yaml"
edge_yaml 0 >"$T/edge_drain.yaml"
metric() {
    local text
    text=$(curl -sf "http://127.0.0.1:$EHTTP/metrics" || true)
    awk -v m="$1" 'index($0, m) == 1 {print $2; exit}' <<<"$text"
}
segment_bytes() { # bytes of every segment file of the edge journal
    find "$T/edge" -name '*.log' -printf '%s\n' | awk '{s += $1} END {print s + 0}'
}

# ---- 1. the uplink is down from the start: the edge fills its disk and sheds bulk data -----
"$MILLRACE" run "$T/edge.yaml" --set "http.listen=\"127.0.0.1:$EHTTP\"" >/dev/null 2>>"$T/edge.log" &
edge_pid=$!
for _ in $(seq 1 300); do
    grep -q "deleted the oldest segment" "$T/edge.log" 2>/dev/null && break
    sleep 0.1
done
grep -q "deleted the oldest segment" "$T/edge.log" || fail "the edge never reached max_bytes"
sleep 4
used=$(segment_bytes)
# Only closed segments are deleted: the cap holds to within one active segment per partition.
nparts=$(find "$T/edge" -mindepth 2 -maxdepth 2 -type d -regex '.*/[0-9]+' | wc -l)
limit=$((MAX + nparts * SEG))
echo "edge journal: $used bytes of segments (max_bytes $MAX, $nparts partitions)"
[[ $used -le $limit ]] || fail "the edge journal grew to $used bytes (limit $limit)"
dropped=$(metric millrace_journal_dropped_records)
[[ -n $dropped && ${dropped%.*} -gt 0 ]] || fail "millrace_journal_dropped_records not reported"
echo "dropped unread (low priority): ${dropped%.*} records"
# no grep -q at the end: with pipefail an early exit would SIGPIPE the greps before it
if grep "deleted the oldest segment" "$T/edge.log" | grep -v "low priority" >/dev/null; then
    fail "a normal-priority topic lost data"
fi
kill -TERM "$edge_pid"
wait "$edge_pid" 2>/dev/null || true
edge_pid=

# ---- 2. the link returns: what the edge holds goes across exactly once --------------------
"$MILLRACE" run "$T/central.yaml" --set 'http.listen="127.0.0.1:0"' >/dev/null 2>>"$T/central.log" &
central_pid=$!
"$MILLRACE" run "$T/edge_drain.yaml" --set "http.listen=\"127.0.0.1:$EHTTP\"" >/dev/null 2>>"$T/edge.log" &
edge_pid=$!
ok=0
for _ in $(seq 1 300); do
    lag=$(metric 'millrace_output_lag_records{output="outputs.uplink"')
    if [[ -n $lag && ${lag%.*} -eq 0 ]]; then ok=1; break; fi
    sleep 0.2
done
[[ $ok == 1 ]] || fail "the edge did not drain (lag ${lag:-?})"
sleep 1.5
kill -TERM "$edge_pid"
wait "$edge_pid" 2>/dev/null || true
edge_pid=
kill -TERM "$central_pid"
wait "$central_pid" 2>/dev/null || true
central_pid=

for t in fwd alarms; do
    "$MILLRACE" journal read --dir "$T/edge" --topic "$t" --format json >"$T/edge_$t.jsonl"
done
"$MILLRACE" journal read --dir "$T/central" --topic sites --format json >"$T/central.jsonl"
/usr/bin/python3 - "$T" <<'PY' || fail "what arrived"
import collections, json, sys
t = sys.argv[1]
load = lambda p: [json.loads(l) for l in open(p)]
fwd, alarms, central = load(f"{t}/edge_fwd.jsonl"), load(f"{t}/edge_alarms.jsonl"), load(f"{t}/central.jsonl")
ident = lambda r: json.dumps(r["record"], sort_keys=True)
c = collections.Counter(map(ident, central))
assert alarms and alarms[0]["offset"] == 0, "the alarms topic lost its beginning"
states = [ident(r) for r in alarms]
missing = [s for s in states if c[s] == 0]
assert not missing, f"{len(missing)} state events never arrived"
held = collections.Counter(map(ident, fwd + alarms))
short = [k for k, n in held.items() if c[k] < n]
assert not short, f"{len(short)} records the edge still holds are missing centrally"
extra = [k for k, n in c.items() if n > held.get(k, 0) and k not in held]
dups = sum(n - held[k] for k, n in c.items() if k in held and n > held[k])
assert dups == 0, f"{dups} records kept twice"
print(f"edge holds {len(fwd)} bulk + {len(alarms)} state records (bulk started at offset "
      f"{fwd[0]['offset'] if fwd else '-'}); central has all of them once, "
      f"plus {len(extra)} bulk records the edge gave up after sending")
PY
echo "ok: bounded disk, low priority shed first, state events kept, drained exactly once"
