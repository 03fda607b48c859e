# The scenario both postgresql output guarantees run (sourced, not run: tests/run.sh skips
# _*.sh): a simulated plant streams through a pipeline into the table $PG_TABLE (output `db`,
# with the extra output settings $PG_OUTPUT_EXTRA, each line indented four spaces); PostgreSQL is
# stopped mid-stream and started again (the outage and the recovery must be reported, a backlog
# shown); millrace is killed with -9 at three random moments (SEED) and restarted; then it
# drains what the journal holds and stops. Leaves the journal topic in $T/journal.jsonl and the
# stored offsets in $T/offsets.tsv for the sourcing test to compare with its table; defines T,
# fail() (with both logs), sql() and the cleanup. Needs MILLRACE and _peers.sh sourced first.
# shellcheck shell=bash

T=$(mktemp -d /tmp/mr-pgout.XXXXXX)
chmod 755 "$T"
mr_pid=
cleanup() {
    if [[ -n $mr_pid ]]; then kill -9 "$mr_pid" 2>/dev/null || true; fi
    if [[ -n $pg_pid ]]; then
        kill "$pg_pid" 2>/dev/null || true
        wait "$pg_pid" 2>/dev/null || true
    fi
    [[ -n ${KEEP:-} ]] || rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    echo "--- millrace log:" >&2
    tail -n 30 "$T/log" >&2 || true
    echo "--- postgres log:" >&2
    tail -n 20 "$T/pg.log" >&2 || true
    exit 1
}

PORT=$(free_port)
HTTP=$(free_port)
pg_init "$PORT"
start_pg

run_yaml() { # $1: with the simulated plant (1) or only draining what the journal holds (0)
    echo "journal: {dir: $T/data, fsync: always, topics: {store: {partitions: 2}}}"
    if [[ $1 == 1 ]]; then
        echo 'inputs:'
        echo '  plant: {type: sim, speed: 20, duration: 0, vibration: false, start: "2026-01-05T06:00:00Z"}'
    fi
    cat <<YAML
pipelines:
  store: {from: [plant], to: [store, db]}
outputs:
  db:
    type: postgresql
    connection: "host=127.0.0.1 port=$PORT dbname=postgres user=postgres"
    table: $PG_TABLE
$PG_OUTPUT_EXTRA    timeout: 2s
YAML
}
run_yaml 1 >"$T/run.yaml"
run_yaml 0 >"$T/drain.yaml"

start_millrace() { # $1: config file
    "$MILLRACE" run "$1" --set "http.listen=\"127.0.0.1:$HTTP\"" >/dev/null 2>>"$T/log" &
    mr_pid=$!
}
kill9() {
    kill -9 "$mr_pid" 2>/dev/null || true
    wait "$mr_pid" 2>/dev/null || true
    mr_pid=
}
rows() { sql -c "SELECT count(*) FROM $PG_TABLE" 2>/dev/null || echo 0; }
metric() { # $1: metric name prefix (empty when millrace does not answer)
    local text
    text=$(curl -sf "http://127.0.0.1:$HTTP/metrics" || true)
    awk -v m="$1" 'index($0, m) == 1 {print $2; exit}' <<<"$text"
}

# ---- 1. rows flow --------------------------------------------------------------------
start_millrace "$T/run.yaml"
for _ in $(seq 1 150); do [[ $(rows) -ge 200 ]] && break; sleep 0.2; done
[[ $(rows) -ge 200 ]] || fail "no rows arrived in PostgreSQL"
echo "flowing: $(rows) rows"

# ---- 2. PostgreSQL stopped mid-stream: millrace buffers, says so, catches up ---------------
stop_pg
sleep 3
grep -q "cannot write to PostgreSQL" "$T/log" || fail "the outage was not reported"
lag=$(metric 'millrace_output_lag_records{output="outputs.db"')
echo "PostgreSQL down for 3 s: backlog ${lag:-?} records"
[[ -n $lag && ${lag%.*} -gt 0 ]] || fail "no backlog reported while PostgreSQL is down"
start_pg
before=$(rows)
for _ in $(seq 1 150); do [[ $(rows) -gt $before ]] && break; sleep 0.2; done
[[ $(rows) -gt $before ]] || fail "no catch-up after PostgreSQL came back"
grep -q "PostgreSQL is back" "$T/log" || fail "the recovery was not reported"

# ---- 3. kill -9 at random moments, three times --------------------------------------
RANDOM=${SEED:-$$}
echo "seed $RANDOM"
for round in 1 2 3; do
    sleep "0.$((RANDOM % 9 + 1))"
    kill9
    echo "round $round: killed with $(rows) rows in the table"
    start_millrace "$T/run.yaml"
    sleep 0.5
done
sleep 1
kill9

# ---- 4. drain what the journal holds, then compare ------------------------------------
start_millrace "$T/drain.yaml"
done_=0
for _ in $(seq 1 300); do
    lag=$(metric 'millrace_output_lag_records{output="outputs.db"' || true)
    if [[ -n $lag && ${lag%.*} -eq 0 ]]; then done_=1; break; fi
    sleep 0.2
done
[[ $done_ == 1 ]] || fail "still a backlog of ${lag:-?} records"
kill -TERM "$mr_pid"
wait "$mr_pid" || fail "millrace exited with $? on SIGTERM"
mr_pid=
grep -q "AddressSanitizer\|runtime error" "$T/log" && fail "sanitizer report"
echo "replays that found records already in the table: $(grep -c "already in the table: skipped" "$T/log" || true)"

"$MILLRACE" journal read --dir "$T/data" --topic store --format json >"$T/journal.jsonl"
sql -F $'\t' -c "SELECT topic, partition, next_offset FROM millrace_output_offsets
                 WHERE output = 'outputs.db'" >"$T/offsets.tsv"
