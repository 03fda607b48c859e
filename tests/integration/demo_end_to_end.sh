#!/usr/bin/env bash
# Guarantee: `millrace demo` runs the built-in plant (six machines) through the journal and the
# engine, prints a live summary with every machine's state, parts, windowed temperature and
# vibration RMS, stops cleanly at --duration (exit 0), and a second run continues from the
# checkpoints instead of starting over.
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() {
    echo "FAIL: $*" >&2
    tail -n 40 "$T/out" >&2 || true
    exit 1
}

"$MILLRACE" demo --print-config >"$T/demo.yaml"
cmp -s "$T/demo.yaml" examples/demo.yaml || fail "--print-config differs from examples/demo.yaml"

"$MILLRACE" demo --duration 12s --speed 30 --data-dir "$T/data" >"$T/out" 2>&1 ||
    fail "demo exited non-zero"
grep -q "event time" "$T/out" || fail "no summary table printed"
# The last table lists all six machines with a state and numbers in every column.
last=$(awk '/event time/ { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' "$T/out")
for m in press1 weld1 paint1 saw2 lathe2 inspect2; do
    row=$(grep "/$m " <<<"$last" || true)
    [[ -n $row ]] || fail "machine $m missing from the summary"
    grep -Eq "(RUNNING|IDLE|DOWN|SETUP|PLANNED_STOP)" <<<"$row" || fail "$m has no state: $row"
    [[ $(awk '{ for (i = 2; i <= NF; i++) if ($i == "-") n++ } END { print n + 0 }' <<<"$row") -eq 0 ]] ||
        fail "$m has empty columns: $row"
done
grep -q "pipelines checkpointed" "$T/out" || fail "no orderly stop"
"$MILLRACE" journal verify --dir "$T/data" >/dev/null || fail "journal verify failed"

"$MILLRACE" demo --duration 3s --speed 30 --data-dir "$T/data" >"$T/out2" 2>&1 ||
    { cat "$T/out2"; fail "second demo run failed"; }
grep -q "restored checkpoint" "$T/out2" || fail "second run did not resume from its checkpoints"
echo "demo end to end: ok"
