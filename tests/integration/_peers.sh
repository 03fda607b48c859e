# Real peers for the integration tests (sourced, not run: tests/run.sh skips _*.sh).
#
# Each peer runs from the test's temp dir $T on a free 127.0.0.1 port, and its PID is kept in a
# variable (pg_pid, IX) that the sourcing test's cleanup kills. The test defines T and fail()
# before it calls these.
# shellcheck shell=bash

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- PostgreSQL 15 ---------------------------------------------------------------------------
# initdb refuses to run as root: as root the server runs as the user `postgres` (setpriv), which
# owns $T/pg. The WAL is not fsynced (a test's data dir is thrown away).
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
pg_pid=
as_pg=()

# pg_init PORT [CONF_LINE...]: a cluster in $T/pg listening on PORT, with extra
# postgresql.conf lines; exports PGHOST/PGPORT/PGUSER/PGDATABASE for psql and libpq.
pg_init() {
    local port=$1
    shift
    mkdir "$T/pg"
    if [[ $(id -u) -eq 0 ]]; then
        as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups)
        chown postgres:postgres "$T/pg"
    fi
    "${as_pg[@]}" "$PGBIN/initdb" -D "$T/pg/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
        -N >"$T/initdb.log" 2>&1 || { cat "$T/initdb.log" >&2; fail "initdb"; }
    {
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '$T/pg'"
        echo "fsync = off"
        printf '%s\n' "$@"
    } >>"$T/pg/data/postgresql.conf"
    export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres
}
start_pg() {
    "${as_pg[@]}" "$PGBIN/postgres" -D "$T/pg/data" >>"$T/pg.log" 2>&1 &
    pg_pid=$!
    for _ in $(seq 1 100); do pg_isready -q && return 0; sleep 0.1; done
    fail "postgres did not start"
}
stop_pg() {
    kill -INT "$pg_pid" # fast shutdown: clients are cut off
    wait "$pg_pid" 2>/dev/null || true
    pg_pid=
}
sql() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }

# ---- InfluxDB 1.6 ----------------------------------------------------------------------------
IX=

# influx_init PORT RPC_PORT: the configuration of an influxd with its data in $T.
influx_init() {
    INFLUX_PORT=$1
    cat >"$T/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$2"
[meta]
  dir = "$T/meta"
  logging-enabled = false
[data]
  dir = "$T/idata"
  wal-dir = "$T/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[http]
  bind-address = "127.0.0.1:$INFLUX_PORT"
  log-enabled = false
EOF
}
start_influx() {
    /usr/bin/influxd run -config "$T/influxdb.conf" >>"$T/influxd.log" 2>&1 &
    IX=$!
    for _ in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$INFLUX_PORT/ping" && return 0
        sleep 0.1
    done
    fail "influxd did not answer on port $INFLUX_PORT"
}
stop_influx() {
    kill "$IX"
    wait "$IX" || true
    IX=
}
