#!/usr/bin/env bash
# Guarantee: the mqtt input speaks MQTT over TLS to a real mosquitto and checks the broker by
# default: a certificate signed by tls_ca for the host it dialled is accepted and messages
# arrive; a certificate for another host name, or one signed by another CA, is refused with a
# log line saying why and nothing from that broker is kept; insecure_skip_verify accepts the
# host name mismatch (still requiring the CA). The CAs and certificates are throwaway ones the
# test makes with the openssl CLI.
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
T=$(mktemp -d)
chmod 777 "$T"
BROKER=""
MR=""
cleanup() {
    for p in $MR $BROKER; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    tail -n 30 "$T/log" >&2 || true
    tail -n 20 "$T/broker.log" >&2 || true
    exit 1
}
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- throwaway PKI: ca (trusted), other (not trusted); server certs for 127.0.0.1 / elsewhere
mkcert() { # name CN SAN ca
    openssl req -new -newkey rsa:2048 -nodes -keyout "$T/$1.key" -subj "/CN=$2" \
        -out "$T/$1.csr" 2>/dev/null
    printf 'subjectAltName=%s\n' "$3" >"$T/$1.ext"
    openssl x509 -req -in "$T/$1.csr" -CA "$T/$4.crt" -CAkey "$T/$4.key" -CAcreateserial \
        -days 2 -extfile "$T/$1.ext" -out "$T/$1.crt" 2>/dev/null
}
for ca in ca other; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/$ca.key" -subj "/CN=millrace test $ca" \
        -days 2 -out "$T/$ca.crt" 2>/dev/null
done
mkcert good 127.0.0.1 "IP:127.0.0.1,DNS:localhost" ca
mkcert wrongname broker.example "DNS:broker.example" ca
chmod 644 "$T"/*.key

P_GOOD=$(free_port)
P_NAME=$(free_port)
cat >"$T/mosquitto.conf" <<EOF
allow_anonymous true
persistence false
log_dest stderr
per_listener_settings false
listener $P_GOOD 127.0.0.1
cafile $T/ca.crt
certfile $T/good.crt
keyfile $T/good.key
listener $P_NAME 127.0.0.1
cafile $T/ca.crt
certfile $T/wrongname.crt
keyfile $T/wrongname.key
EOF
/usr/sbin/mosquitto -c "$T/mosquitto.conf" 2>>"$T/broker.log" &
BROKER=$!
pub() { # port message
    mosquitto_pub -h 127.0.0.1 -p "$1" --cafile "$T/ca.crt" --insecure -q 1 -t "tls/$2" -m 1
}
for _ in $(seq 50); do
    pub "$P_GOOD" ping 2>/dev/null && break
    sleep 0.1
done
pub "$P_GOOD" ping 2>/dev/null || fail "mosquitto did not start with TLS on port $P_GOOD"

cat >"$T/mr.yaml" <<EOF
journal: {dir: $T/data}
http: {listen: "127.0.0.1:0"}
inputs:
  good:
    type: mqtt
    servers: ["ssl://127.0.0.1:$P_GOOD"]
    topics: ["tls/#"]
    asset: tls/good
    data_format: value
    tls_ca: $T/ca.crt
    reconnect_min: 100ms
    reconnect_max: 500ms
  wrongname:
    type: mqtt
    servers: ["ssl://127.0.0.1:$P_NAME"]
    topics: ["tls/#"]
    asset: tls/wrongname
    data_format: value
    tls_ca: $T/ca.crt
    reconnect_min: 100ms
    reconnect_max: 500ms
  insecure:
    type: mqtt
    servers: ["ssl://127.0.0.1:$P_NAME"]
    topics: ["tls/#"]
    asset: tls/insecure
    data_format: value
    tls_ca: $T/ca.crt
    insecure_skip_verify: true
    reconnect_min: 100ms
    reconnect_max: 500ms
  otherca:
    type: mqtt
    servers: ["ssl://127.0.0.1:$P_GOOD"]
    topics: ["tls/#"]
    asset: tls/otherca
    data_format: value
    tls_ca: $T/other.crt
    reconnect_min: 100ms
    reconnect_max: 500ms
pipelines:
  all: {from: [good, wrongname, insecure, otherca], steps: [], to: [out]}
outputs:
  out: {type: file, path: $T/out.jsonl, format: json}
EOF
"$MILLRACE" run "$T/mr.yaml" >"$T/console" 2>"$T/log" &
MR=$!
for _ in $(seq 100); do
    [[ $(grep -c "connected to" "$T/log" || true) -ge 2 ]] && break
    sleep 0.1
done
[[ $(grep -c "connected to" "$T/log" || true) -ge 2 ]] || fail "the TLS inputs did not connect"
sleep 0.5 # subscriptions acknowledged; refused ones retried at least once
# Both listeners belong to one broker: every subscriber that got in hears all three.
for i in 1 2 3; do
    pub "$P_GOOD" "m$i/v"
done
for _ in $(seq 100); do
    [[ -s $T/out.jsonl ]] && [[ $(grep -c '"asset":"tls/' "$T/out.jsonl" || true) -ge 6 ]] && break
    sleep 0.1
done
sleep 0.5
kill "$MR"
wait "$MR" || fail "millrace exited with $?"
MR=""

n_good=$(grep -c '"asset":"tls/good"' "$T/out.jsonl" || true)
n_insecure=$(grep -c '"asset":"tls/insecure"' "$T/out.jsonl" || true)
[[ $n_good -eq 3 ]] || fail "verified TLS input kept $n_good of 3 messages"
[[ $n_insecure -eq 3 ]] || fail "insecure_skip_verify input kept $n_insecure of 3 messages"
grep -q '"asset":"tls/wrongname"' "$T/out.jsonl" && fail "a broker with another host name was trusted"
grep -q '"asset":"tls/otherca"' "$T/out.jsonl" && fail "a broker signed by an untrusted CA was trusted"
grep -Eq 'inputs.wrongname.*certificate not accepted: (hostname|IP address) mismatch' "$T/log" ||
    fail "the host name mismatch was not reported"
grep -Eq 'inputs.otherca.*certificate not accepted: (self-signed certificate in certificate chain|unable to get local issuer)' "$T/log" ||
    fail "the untrusted CA was not reported"
echo "ok: TLS verified (3/3), host name mismatch and untrusted CA refused, insecure_skip_verify accepted (3/3)"
