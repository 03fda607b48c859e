#!/usr/bin/env bash
# Guarantee: a running `millrace run` serves its metrics at http.listen /metrics in a format
# Prometheus' own checker accepts, and the pipeline's progress there is true: records in equals
# what was sent, lag is 0, and late records are counted per policy; unknown paths answer 404; a
# busy port is reported and the engine keeps running.
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
command -v promtool >/dev/null || { echo "FAIL: promtool missing: run scripts/install-deps.sh test" >&2; exit 1; }
T=$(mktemp -d)
pid=
pid2=
cleanup() {
    [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null || true
    [[ -n $pid2 ]] && kill -9 "$pid2" 2>/dev/null || true
    exec 3>&- 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    tail -n 20 "$T/log" >&2 || true
    exit 1
}
get() { # PATH -> body on stdout, "HTTP <code>" on stderr
    /usr/bin/python3 - "$port" "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}{sys.argv[2]}", timeout=5) as r:
        sys.stdout.write(r.read().decode())
        print(f"HTTP {r.status}", file=sys.stderr)
except urllib.error.HTTPError as e:
    print(f"HTTP {e.code}", file=sys.stderr)
PY
}
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cat >"$T/run.yaml" <<YAML
journal: {dir: $T/data, fsync: always}
http: {listen: "127.0.0.1:$port"}
inputs:
  plc: {type: stdin, format: json}
pipelines:
  p:
    from: [plc]
    out_of_orderness: 0s
    steps:
      - {type: window, kind: tumbling, size: 1s, aggregates: [count], late: drop}
    to: [results]
YAML
mkfifo "$T/fifo"
exec 3<>"$T/fifo"
"$MILLRACE" run "$T/run.yaml" <"$T/fifo" >/dev/null 2>"$T/log" &
pid=$!
for _ in $(seq 1 100); do grep -q "metrics at http://127.0.0.1:$port/metrics" "$T/log" && break; sleep 0.1; done
grep -q "metrics at http://127.0.0.1:$port/metrics" "$T/log" || fail "no metrics address logged"

# 100 records in order over 10 s of event time; once they are processed (the watermark moves
# after each batch), 3 records of an already closed window.
for i in $(seq 0 99); do
    printf '{"time":%d00000000,"asset":"s/a/l/m1","signal":"temp","value":%d}\n' $((17640000000 + i)) "$i" >&3
done
for _ in $(seq 1 100); do
    get /metrics 2>/dev/null | grep -q '^millrace_pipeline_records_in_total{pipeline="p"} 100$' && break
    sleep 0.1
done
for i in 1 2 3; do
    printf '{"time":%d00000000,"asset":"s/a/l/m1","signal":"temp","value":0}\n' $((17640000000 + i)) >&3
done
ok=
for _ in $(seq 1 100); do
    get /metrics >"$T/metrics" 2>/dev/null || true
    if grep -q '^millrace_pipeline_records_in_total{pipeline="p"} 103$' "$T/metrics" &&
        grep -q '^millrace_pipeline_lag_records{pipeline="p"} 0$' "$T/metrics" &&
        grep -q '^millrace_late_records_total{.*policy="drop".*} 3$' "$T/metrics"; then
        ok=1
        break
    fi
    sleep 0.1
done
[[ -n $ok ]] || { grep -E 'pipeline|late' "$T/metrics" >&2 || true; fail "metrics do not show 103 records in, lag 0, 3 late"; }
promtool check metrics <"$T/metrics" >"$T/promtool" 2>&1 || { cat "$T/promtool" >&2; fail "promtool rejects the exposition"; }
get /nope 2>"$T/code" >/dev/null || true
grep -q "HTTP 404" "$T/code" || fail "unknown path: $(cat "$T/code")"

# A second engine with the same port, given by --http instead of the file: a warning naming
# that address, and it runs anyway.
sed -e "s|$T/data|$T/data2|" -e '/^http:/d' "$T/run.yaml" >"$T/run2.yaml"
"$MILLRACE" run "$T/run2.yaml" --http "127.0.0.1:$port" </dev/null >/dev/null 2>"$T/log2" &
pid2=$!
for _ in $(seq 1 100); do grep -q "running:" "$T/log2" && break; sleep 0.1; done
grep -q "metrics are not served over HTTP: cannot listen on 127.0.0.1:$port" "$T/log2" || fail "busy port not reported: $(cat "$T/log2")"
kill -TERM "$pid2" 2>/dev/null || true # stdin is empty: it may have finished already
wait "$pid2" || fail "second engine failed"
pid2=
kill -TERM "$pid"
wait "$pid" || fail "exit after SIGTERM"
pid=
echo "ok: /metrics true and valid, 404 for unknown paths, busy port reported"
