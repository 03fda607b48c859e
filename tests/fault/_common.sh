# Shared helpers for the fault tests (sourced, not run: tests/run.sh skips tests/fault/_*.sh).
#
# Provides: a scratch dir $T removed on exit; track_pid/track_mount so the exit trap kills only
# this test's processes and unmounts only its mounts; bounded waits; the record generator and
# checker both sides agree on; helpers that read the journal through the CLI.
# shellcheck shell=bash

MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
if [[ ! -x $MILLRACE ]]; then
    echo "FAIL: millrace binary not found at '$MILLRACE' (set MILLRACE or MR_BUILD)" >&2
    exit 1
fi
MILLRACE=$(cd "$(dirname "$MILLRACE")" && pwd)/$(basename "$MILLRACE")

# A seed makes the random kill moments reproducible: MR_FAULT_SEED=1234 tests/fault/x.sh
MR_FAULT_SEED=${MR_FAULT_SEED:-$(((RANDOM << 15) | RANDOM))}
RANDOM=$MR_FAULT_SEED

T=$(mktemp -d "${TMPDIR:-/tmp}/millrace-fault.XXXXXX")
_pids=()
_mounts=()

track_pid() { _pids+=("$1"); }
track_mount() { _mounts+=("$1"); }

_cleanup() {
    local rc=$? p m
    for p in "${_pids[@]}"; do
        kill -9 "$p" 2>/dev/null || true
    done
    for p in "${_pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    for m in "${_mounts[@]}"; do
        if mountpoint -q "$m"; then
            umount "$m" || umount -l "$m" || true
        fi
    done
    if [[ $rc -ne 0 && -n ${MR_FAULT_KEEP:-} ]]; then
        echo "kept scratch dir $T" >&2
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "FAIL: $*" >&2
    echo "(seed: MR_FAULT_SEED=$MR_FAULT_SEED)" >&2
    exit 1
}

note() { echo "--- $*"; }

# Random sleep between $1 and $2 milliseconds.
sleep_ms_between() {
    local lo=$1 hi=$2 ms
    ms=$((lo + RANDOM % (hi - lo + 1)))
    sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
}

# wait_until SECONDS COMMAND...: polls COMMAND every 20 ms; returns 1 on timeout.
wait_until() {
    local limit=$1 deadline
    shift
    deadline=$((SECONDS + limit))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.02
    done
}

# Lines of FILE that are complete (newline-terminated): a process killed mid-write may leave a
# partial last line, which must not be mistaken for a shorter number.
complete_lines() {
    head -n "$(wc -l <"$1")" "$1"
}

# Number of complete lines in FILE.
count_lines() { wc -l <"$1" | tr -d ' '; }

# Fails when FILE holds a sanitizer report or a crash message.
assert_no_sanitizer() {
    if grep -Eq 'Sanitizer|runtime error:|Segmentation fault|Aborted|core dumped' "$1"; then
        sed 's/^/    /' "$1" | tail -n 40 >&2
        fail "sanitizer report or crash in $1"
    fi
}

# The records every fault test writes: line i of round r is "r<r>-<i>-<payload>", the payload
# derived from (r, i), so any record read back can be checked on its own. The awk function is
# shared by the generator and the checker.
REC_AWK='
function rec_payload(r, i,    h, n, j, s) {
    h = (i * 69069 + r * 12345 + 1) % 2147483647
    n = 1 + i % 5
    s = ""
    for (j = 0; j < n; j++) {
        s = s sprintf("%d.", (h + j * 40503) % 2147483647)
    }
    return s
}
function rec_line(r, i) {
    return "r" r "-" i "-" rec_payload(r, i)
}
function rec_ok(v,    parts) {
    if (split(v, parts, "-") != 3 || parts[1] !~ /^r[0-9]+$/ || parts[2] !~ /^[0-9]+$/) {
        return 0
    }
    return v == rec_line(substr(parts[1], 2) + 0, parts[2] + 0)
}
'

# gen_records ROUND [COUNT]: prints COUNT records of ROUND (without COUNT: until killed, paced
# at roughly 100k lines/s by a short sleep every 200 lines, so that a crash test's rounds stay
# small enough to check quickly and many small group commits happen before each kill).
gen_records() {
    awk -v r="$1" -v n="${2:--1}" "$REC_AWK"'
BEGIN {
    for (i = 0; n < 0 || i < n; i++) {
        print rec_line(r, i)
        if (n < 0 && i % 200 == 199) {
            fflush()
            system("sleep 0.001")
        }
    }
}'
}

# read_partition DIR TOPIC P [FROM]: prints "P OFFSET VALUE" for every record of partition P
# from offset FROM (default: earliest), in the order the CLI returns them (from --format json:
# fields "partition", "offset", "value").
read_partition() {
    local dir=$1 topic=$2 p=$3 from=${4:-earliest} out rc=0
    out=$T/read.$$.json
    "$MILLRACE" journal read --dir "$dir" --topic "$topic" --partition "$p" \
        --from "$from" --format json >"$out" 2>"$out.err" || rc=$?
    assert_no_sanitizer "$out.err"
    if [[ $rc -ne 0 ]] && grep -q "no topic '$topic'" "$out.err"; then
        # Killed before its first batch reached the disk: the topic holds nothing (acked
        # records missing from it are still reported by the caller's comparison).
        return 0
    fi
    if [[ $rc -ne 0 ]]; then
        cat "$out.err" >&2
        fail "journal read --topic $topic --partition $p exited $rc"
    fi
    awk '
function num(line, key,    s) {
    if (!match(line, "\"" key "\": *-?[0-9]+")) {
        return ""
    }
    s = substr(line, RSTART, RLENGTH)
    sub(/^"[a-z]+": */, "", s)
    return s
}
function str(line, key,    s) {
    if (!match(line, "\"" key "\": *\"[^\"]*\"")) {
        return ""
    }
    s = substr(line, RSTART, RLENGTH)
    sub(/^"[a-z]+": *"/, "", s)
    sub(/"$/, "", s)
    return s
}
NF > 0 {
    p = num($0, "partition"); o = num($0, "offset"); v = str($0, "value")
    if (o == "") {
        print "unparsable read output: " $0 > "/dev/stderr"
        exit 1
    }
    print (p == "" ? "?" : p), o, v
}' "$out" || fail "could not parse 'journal read --format json' output"
    rm -f "$out" "$out.err"
}

# verify_ok DIR: `journal verify` must exit 0.
verify_ok() {
    local rc=0
    "$MILLRACE" journal verify --dir "$1" >"$T/verify.out" 2>&1 || rc=$?
    assert_no_sanitizer "$T/verify.out"
    if [[ $rc -ne 0 ]]; then
        sed 's/^/    /' "$T/verify.out" >&2
        fail "journal verify --dir $1 exited $rc"
    fi
}
