#!/usr/bin/env bash
# Guarantee: the modbus input decodes every data type in every byte order from a real Modbus TCP
# server (pymodbus, values encoded independently by Python's struct module); when the server is
# killed its signals turn bad-quality (no invented values), and after a restart they recover;
# the modbus_write output writes an allowed setpoint and command into the server's registers and
# refuses (logs, counts, never writes) what the allow-list does not name or its bounds exclude.
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
PEER=tests/peers/modbus_peer.py
T=$(mktemp -d)
pid=
srv=
cleanup() {
    [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null || true
    [[ -n $srv ]] && kill -9 "$srv" 2>/dev/null || true
    exec 3>&- 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    echo "--- millrace log:" >&2
    tail -n 30 "$T/log" >&2 || true
    echo "--- server log:" >&2
    tail -n 10 "$T/server.log" >&2 || true
    exit 1
}
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_server() {
    /usr/bin/python3 "$PEER" serve "$port" >>"$T/server.log" 2>&1 &
    srv=$!
    for _ in $(seq 1 100); do
        ss -Hltn "sport = :$port" | grep -q . && return 0
        kill -0 "$srv" 2>/dev/null || fail "the pymodbus server did not start"
        sleep 0.1
    done
    fail "the pymodbus server is not listening on $port"
}
stop_server() {
    kill -9 "$srv"
    wait "$srv" 2>/dev/null || true
    srv=
}
# check.py MODE FROM_LINE: MODE good = every mapped signal arrived with its expected value and
# good quality after line FROM_LINE; bad = every signal arrived with bad quality.
cat >"$T/check.py" <<'PY'
import json, math, sys
mode, first, expected = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
seen = {}
with open(sys.argv[4]) as f:
    for i, line in enumerate(f):
        if i < first:
            continue
        r = json.loads(line)
        if r["asset"] == "plant/press/line1/press3" and r["signal"] in expected:
            if r["quality"] == ("good" if mode == "good" else "bad"):
                seen[r["signal"]] = r["value"]
wrong = []
for sig, want in expected.items():
    if sig not in seen:
        wrong.append("%s: missing" % sig)
    elif mode == "good":
        got = seen[sig]
        ok = (abs(got - want) <= 1e-9 * max(1.0, abs(want))
              if isinstance(want, float) else got == want)
        if not ok or type(got) is not type(want):
            wrong.append("%s: got %r, want %r" % (sig, got, want))
if wrong:
    print("; ".join(wrong))
    sys.exit(1)
print(len(seen))
PY
expected=$(/usr/bin/python3 "$PEER" expected)
nsig=$(/usr/bin/python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])))' "$expected")
check() { # mode from_line -> waits up to 15 s
    for _ in $(seq 1 75); do
        /usr/bin/python3 "$T/check.py" "$1" "$2" "$expected" "$T/out" >"$T/check.out" 2>&1 && return 0
        sleep 0.2
    done
    fail "$1 values after line $2: $(cat "$T/check.out")"
}

{
    cat <<YAML
journal: {dir: $T/data, fsync: never}
http: {listen: "127.0.0.1:0"}
inputs:
  commands: {type: stdin, format: json}
  press3_plc:
    type: modbus
    controller: tcp://127.0.0.1:$port
    slave_id: 1
    asset: plant/press/line1/press3
    interval: 200ms
    timeout: 300ms
    retries: 1
    reconnect_min: 100ms
    reconnect_max: 400ms
YAML
    /usr/bin/python3 "$PEER" yaml | sed 's/^/    /'
    cat <<YAML
pipelines:
  read: {from: [press3_plc], to: [console]}
  control: {from: [commands], to: [press3_control]}
outputs:
  console: {type: stdout}
  press3_control:
    type: modbus_write
    controller: tcp://127.0.0.1:$port
    timeout: 300ms
    writes:
      - {signal: speed_setpoint, asset: plant/press/line1/press3, address: 200,
         data_type: UINT16, scale: 0.1, min: 0, max: 1200}
      - {signal: command, command: halt, register: coil, address: 10, constant: 1}
YAML
} >"$T/run.yaml"

start_server
mkfifo "$T/fifo"
exec 3<>"$T/fifo"
"$MILLRACE" run "$T/run.yaml" <"$T/fifo" >"$T/out" 2>"$T/log" &
pid=$!

# 1. Every data type in every byte order, decoded right.
check good 0
echo "ok: $nsig signals decoded (every data type x byte order, coils, discrete inputs)"

# 2. Server killed: the same signals turn bad; restarted: they recover.
stop_server
mark=$(wc -l <"$T/out")
check bad "$mark"
echo "ok: server killed, all $nsig signals reported bad-quality"
start_server
mark=$(wc -l <"$T/out")
check good "$mark"
echo "ok: server restarted, all $nsig signals good again"

# 3. Writes: allowed ones land, the rest are refused and never written.
cmd() { printf '{"time":%d,"asset":"%s","signal":"%s","value":%s}\n' "$(date +%s%N)" "$1" "$2" "$3" >&3; }
cmd plant/press/line1/press3 speed_setpoint 5000    # above max 1200: refused
cmd plant/press/line1/press9 speed_setpoint 500     # another asset: not in the allow-list
cmd plant/press/line1/press3 valve_open 1           # not in the allow-list
cmd plant/press/line1/press3 command '"restart"'    # command not in the allow-list
cmd plant/press/line1/press3 speed_setpoint 1150    # allowed: register 200 = 11500
cmd plant/press/line1/press3 command '"halt"'       # allowed: coil 10 on
for _ in $(seq 1 75); do
    hr=$(/usr/bin/python3 "$PEER" read "$port" hr 200 1 2>/dev/null || true)
    co=$(/usr/bin/python3 "$PEER" read "$port" co 10 1 2>/dev/null || true)
    [[ $hr == 11500 && $co == 1 ]] && break
    sleep 0.2
done
[[ $hr == 11500 ]] || fail "holding register 200 is '$hr', expected 11500"
[[ $co == 1 ]] || fail "coil 10 is '$co', expected 1"
for _ in $(seq 1 50); do
    [[ $(grep -c "refused" "$T/log") -ge 4 ]] && break
    sleep 0.1
done
grep -q "refused plant/press/line1/press3/speed_setpoint: the value is outside \[min, max\]" "$T/log" ||
    fail "out-of-bounds setpoint not refused"
grep -q "refused plant/press/line1/press9/speed_setpoint: not in the allow-list" "$T/log" ||
    fail "other asset not refused"
grep -q "refused plant/press/line1/press3/valve_open: not in the allow-list" "$T/log" ||
    fail "unlisted signal not refused"
grep -q "refused plant/press/line1/press3/command: not in the allow-list" "$T/log" ||
    fail "unlisted command not refused"
# Nothing else was written: registers next to the target keep their values.
around=$(/usr/bin/python3 "$PEER" read "$port" hr 199 3)
[[ $around == "0 11500 0" ]] || fail "registers 199..201 are '$around'"
echo "ok: setpoint 1150 -> HR200=11500 and halt -> coil 10 written; 4 refused, logged, not written"

kill -TERM "$pid"
wait "$pid" || fail "millrace exited with $?"
pid=
