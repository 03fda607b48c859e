#!/usr/bin/env bash
# Guarantee: a windowed pipeline killed with kill -9 at random moments, many times, and restarted
# each time, leaves in its output topic every window result exactly once with the values of an
# uninterrupted run over the same input (checkpoints + de-duplicated replay).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/fault/_common.sh

KILLS=${MR_FAULT_KILLS:-10}
note "seed $MR_FAULT_SEED, $KILLS kills"

# Deterministic input: 12 machines x 2 signals, 10 ms apart in event time, a little out of
# order (records swap with their neighbour now and then), about 400 s of plant.
gen_input() {
    # (awk numbers are doubles: the ns timestamp is printed as seconds and a 9-digit fraction)
    awk 'BEGIN {
        for (k = 0; k < 20000; k++) {
            for (m = 0; m < 12; m++) {
                for (s = 0; s < 2; s++) {
                    ms = 1000 + k * 20
                    if ((k * 7 + m * 3 + s) % 11 == 0) { ms -= 300 }   # 300 ms late
                    sec = 1764000000 + int(ms / 1000)
                    frac = (ms % 1000) * 1000000 + m * 1000 + s
                    v = ((k * 31 + m * 17 + s * 5) % 1000) / 10.0
                    printf "{\"time\":%d%09d,\"asset\":\"site/area/line%d/m%d\",\"signal\":\"%s\",\"value\":%.1f}\n", sec, frac, m % 2, m, (s ? "temp" : "power"), v
                }
            }
        }
    }'
}

cat >"$T/ingest.yaml" <<YAML
journal: {dir: $T/data, fsync: always, topics: {raw: {partitions: 4}}}
inputs:
  raw: {type: stdin, format: json}
YAML
cat >"$T/windows.yaml" <<YAML
journal: {dir: DIR, fsync: always}
pipelines:
  windows:
    from: [raw]
    out_of_orderness: 500ms
    idle_timeout: 2s
    checkpoint_interval: 100ms
    steps:
      - type: window
        kind: tumbling
        size: 1s
        aggregates: [count, sum, mean, min, max]
    to: [results]
YAML

gen_input >"$T/input.jsonl"
"$MILLRACE" run "$T/ingest.yaml" <"$T/input.jsonl" >"$T/ingest.out" 2>"$T/ingest.log" &
pid=$!
track_pid "$pid"
wait_until 120 grep -q "input finished" "$T/ingest.log" || fail "ingest did not finish"
kill -TERM "$pid" 2>/dev/null || true # it also stops by itself once stdin ends
wait "$pid" || fail "ingest run failed"
assert_no_sanitizer "$T/ingest.log"
cp -a "$T/data" "$T/ref"

# Runs windows.yaml on DIR until the results topic stops growing for 4 s (the last windows
# close by the idle timeout), then stops it with SIGTERM.
run_to_end() {
    local dir=$1 log=$2 last=-1 same=0 p cur
    sed "s|DIR|$dir|" "$T/windows.yaml" >"$T/w.yaml"
    "$MILLRACE" run "$T/w.yaml" >/dev/null 2>>"$log" &
    p=$!
    track_pid "$p"
    for _ in $(seq 1 300); do
        sleep 0.5
        cur=$(stat -c %s "$dir"/results/*/*.log 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
        if [[ $cur == "$last" ]]; then
            same=$((same + 1))
            [[ $same -ge 8 ]] && break
        else
            same=0
            last=$cur
        fi
    done
    kill -TERM "$p"
    wait "$p" || fail "pipeline run on $dir failed"
}

note "uninterrupted reference run"
run_to_end "$T/ref" "$T/ref.log"
assert_no_sanitizer "$T/ref.log"

note "crash run: kill -9 $KILLS times"
sed "s|DIR|$T/data|" "$T/windows.yaml" >"$T/c.yaml"
for k in $(seq 1 "$KILLS"); do
    "$MILLRACE" run "$T/c.yaml" >/dev/null 2>>"$T/crash.log" &
    p=$!
    track_pid "$p"
    sleep_ms_between 30 400
    kill -9 "$p"
    wait "$p" 2>/dev/null || true
done
run_to_end "$T/data" "$T/crash.log"
assert_no_sanitizer "$T/crash.log"
grep -q "restored checkpoint" "$T/crash.log" || fail "no run restored a checkpoint"

dump() { # DIR -> sorted window results, one JSON record per line, without journal offsets
    local dir=$1
    "$MILLRACE" journal read --dir "$dir" --topic results --partition 0 --format json |
        /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line).get("record")
    if r is not None:
        print(json.dumps(r, sort_keys=True))
' | sort
}
dump "$T/ref" >"$T/ref.txt"
dump "$T/data" >"$T/crash.txt"
nref=$(count_lines "$T/ref.txt")
[[ $nref -gt 1000 ]] || fail "reference run produced only $nref results"
if ! cmp -s "$T/ref.txt" "$T/crash.txt"; then
    diff "$T/ref.txt" "$T/crash.txt" | head -n 20 >&2
    fail "results after $KILLS kills differ from the uninterrupted run ($(count_lines "$T/crash.txt") vs $nref)"
fi
dups=$(uniq -d "$T/crash.txt" | wc -l)
[[ $dups -eq 0 ]] || fail "$dups duplicated results"
restores=$(grep -c "restored checkpoint" "$T/crash.log")
skipped=$(sed -n 's/.*; \([0-9]*\) results already written.*/\1/p' "$T/crash.log" | awk '{ s += $1 } END { print s + 0 }')
note "restarts from a checkpoint: $restores; results written before a kill and skipped on replay: $skipped"
note "ok: $nref window results, identical to the uninterrupted run after $KILLS kill -9"
