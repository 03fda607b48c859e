#!/usr/bin/env bash
# Guarantee: a SIGHUP that changes a window's size restarts that pipeline with the new size even
# though its saved state no longer fits (the state is discarded with a warning, reading resumes
# where it stopped), and records sent after the reload come out in windows of the new size.
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
conf() { # SIZE
    cat <<YAML
journal: {dir: $T/data, fsync: always}
http: {listen: "127.0.0.1:0"}
inputs:
  plc: {type: stdin, format: json}
pipelines:
  w:
    from: [plc]
    out_of_orderness: 0s
    steps:
      - {type: window, kind: tumbling, size: $1, aggregates: [count]}
    to: [out]
outputs:
  out: {type: stdout}
YAML
}
send() { # FROM_S TO_S: one record every 250 ms of event time
    for ((ms = $1 * 1000; ms < $2 * 1000; ms += 250)); do
        printf '{"time":%d%03d000000,"asset":"s/a/l/m1","signal":"temp","value":1}\n' $((1764000000 + ms / 1000)) $((ms % 1000)) >&3
    done
}
wait_grep() { # PATTERN FILE
    for _ in $(seq 1 100); do grep -q "$1" "$2" && return 0; sleep 0.1; done
    return 1
}
conf 1s >"$T/run.yaml"
mkfifo "$T/fifo"
exec 3<>"$T/fifo"
"$MILLRACE" run "$T/run.yaml" <"$T/fifo" >"$T/out" 2>"$T/log" &
pid=$!
send 0 5
wait_grep '"window_start":"1764000003000000000"' "$T/out" || fail "no 1 s windows before the reload"
conf 2s >"$T/run.yaml"
kill -HUP "$pid"
wait_grep "configuration reloaded" "$T/log" || fail "reload did not complete"
send 10 20
wait_grep '"window_start":"1764000016000000000"' "$T/out" || fail "no 2 s windows after the reload"
grep -q "saved operator state does not fit the current settings" "$T/log" || fail "no warning about the discarded state"
n=$(grep '"window_start":"1764000016000000000"' "$T/out" | grep -c '"value":8' || true)
[[ $n -eq 1 ]] || fail "the 2 s window [16, 18) should count 8 records: $(grep 1764000016000000000 "$T/out")"
kill -TERM "$pid"
wait "$pid" || fail "exit after SIGTERM"
pid=
echo "ok: window size changed by SIGHUP, state discarded with a warning, new windows correct"
