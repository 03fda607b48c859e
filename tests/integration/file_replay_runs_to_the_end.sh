#!/usr/bin/env bash
# Guarantee: replaying a CSV file (examples/file_replay.yaml) through a windowed pipeline, as
# fast as possible, `millrace run` exits 0 by itself once the file is consumed, after closing
# every window, including the last one that no later record would ever close; every row is
# counted exactly once; the file output holds the results.
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
rows=$(($(wc -l <examples/data/press3.csv) - 1))
timeout 120 "$MILLRACE" run examples/file_replay.yaml --set inputs.press3_log.pace=fast \
    --set "journal.dir=$T/data" --set "outputs.archive.path=$T/archive.jsonl" \
    --set 'http.listen="127.0.0.1:0"' >"$T/console" 2>"$T/log" || fail "exit code $?"
grep -q "every input reached its end" "$T/log" || fail "did not stop on its own"
[[ -s $T/archive.jsonl ]] || fail "file output is empty"
# Per signal, the counts of all 1-minute windows add up to the number of rows.
for sig in temperature pressure; do
    total=$(grep "\"signal\":\"$sig.count\"" "$T/archive.jsonl" | sed 's/.*"value":\([0-9]*\).*/\1/' |
        awk '{ s += $1 } END { print s + 0 }')
    [[ $total -eq $rows ]] || fail "$sig: windows count $total rows, the file has $rows"
done
last=$(tail -n 1 examples/data/press3.csv | cut -d, -f1)
grep -q "\"signal\":\"temperature.count\"" "$T/archive.jsonl" || fail "no results"
n=$(grep -c '"signal":"temperature.mean"' "$T/archive.jsonl")
echo "ok: $rows rows replayed, $n one-minute windows (the last closed at the end of the file, last row $last)"
