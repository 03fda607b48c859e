#!/usr/bin/env bash
# Guarantee: bytes in a topic that are not millrace records (appended raw with `journal append`)
# do not stop a pipeline or an output: they are passed over, counted in the metrics and logged
# with topic, partition and offset, and every real record around them is delivered.
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
T=$(mktemp -d)
pid=
cleanup() {
    [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null || true
    exec 3>&- 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    tail -n 20 "$T/log" >&2 || true
    exit 1
}
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Garbage first, in the input's topic and in the topic the output drains.
seq 1 5 | sed 's/^/not a record /' | "$MILLRACE" journal append --dir "$T/data" --topic plc >/dev/null
seq 1 7 | sed 's/^/junk /' | "$MILLRACE" journal append --dir "$T/data" --topic results >/dev/null
cat >"$T/run.yaml" <<YAML
journal: {dir: $T/data, fsync: always}
http: {listen: "127.0.0.1:$port"}
inputs:
  plc: {type: stdin, format: json}
pipelines:
  p: {from: [plc], to: [results, out]}
outputs:
  out: {type: stdout}
YAML
mkfifo "$T/fifo"
exec 3<>"$T/fifo"
"$MILLRACE" run "$T/run.yaml" <"$T/fifo" >"$T/out" 2>"$T/log" &
pid=$!
for i in $(seq 1 20); do
    printf '{"time":%d000000000,"asset":"s/a/l/m1","signal":"temp","value":%d}\n' $((1764000000 + i)) "$i" >&3
done
for _ in $(seq 1 100); do [[ $(wc -l <"$T/out") -ge 20 ]] && break; sleep 0.1; done
[[ $(wc -l <"$T/out") -eq 20 ]] || fail "expected the 20 real records, got $(wc -l <"$T/out")"
grep -q junk "$T/out" && fail "raw bytes reached the output"
metrics=$(/usr/bin/python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/metrics', timeout=5).read().decode())")
grep -q '^millrace_pipeline_errors_total{pipeline="p"} 5$' <<<"$metrics" || fail "pipeline did not count 5 skipped records"
grep -q '^millrace_output_skipped_total{output="outputs.out"} 7$' <<<"$metrics" || fail "output did not count 7 skipped records"
grep -q "plc\[0\] offset 0: not a millrace record, skipped" "$T/log" || fail "pipeline skip not logged with its offset"
grep -q "results\[0\] offset 0 skipped" "$T/log" || fail "output skip not logged with its offset"
kill -TERM "$pid"
wait "$pid" || fail "exit after SIGTERM"
pid=
echo "ok: 5 + 7 raw records passed over, counted and logged; 20 records delivered"
