#!/usr/bin/env bash
# Guarantee: under --fsync always, every record `journal append` acknowledged survives kill -9 of
# the appender at any moment: after the crash it is readable at the acked partition and offset
# with its exact content, offsets stay contiguous and in input order, and `journal verify` passes.
#
# 20 rounds (10 on a 1-partition topic, 10 on a 3-partition topic with keys) append into the same
# journal directory from an endless generator and kill -9 the appender after a random 0.05-0.5 s;
# each round's acks are checked against what is read back. MR_FAULT_SEED reproduces the timing.
set -euo pipefail
# shellcheck source=tests/fault/_common.sh
source "$(dirname "$0")/_common.sh"

J=$T/journal
ROUNDS_PER_TOPIC=${MR_FAULT_ROUNDS:-10}
DEADLINE=$((SECONDS + ${MR_FAULT_BUDGET:-90}))
note "seed $MR_FAULT_SEED, journal $J"

expected=$T/expected # "TOPIC P OFFSET VALUE" for every acked record so far
round_acks=$T/round_acks # the same, for the last round only
: >"$expected"
declare -A checked_end=() # "topic/p" -> offset up to which the journal was already checked

# One round: append from the endless generator, kill -9 at a random moment, record the acks.
crash_round() {
    local round=$1 topic=$2 parts=$3 key=$4 fifo acked err gen_pid app_pid rc=0
    fifo=$T/fifo.$round
    acked=$T/acked.$round
    err=$T/append.$round.err
    mkfifo "$fifo"
    gen_records "$round" >"$fifo" &
    gen_pid=$!
    track_pid "$gen_pid"
    local args=(journal append --dir "$J" --topic "$topic" --partitions "$parts" --fsync always)
    if [[ -n $key ]]; then
        args+=(--key "$key")
    fi
    "$MILLRACE" "${args[@]}" <"$fifo" >"$acked" 2>"$err" &
    app_pid=$!
    track_pid "$app_pid"

    sleep_ms_between 50 500
    if ! kill -0 "$app_pid" 2>/dev/null; then
        wait "$app_pid" || rc=$?
        sed 's/^/    /' "$err" >&2
        fail "round $round: the appender exited by itself (status $rc) before the kill"
    fi
    kill -9 "$app_pid"
    wait "$app_pid" 2>/dev/null || true
    kill "$gen_pid" 2>/dev/null || true
    wait "$gen_pid" 2>/dev/null || true
    rm -f "$fifo"
    assert_no_sanitizer "$err"

    # Ack k of this round is input line k: one partition per round (one key), offsets in order.
    complete_lines "$acked" | awk -v r="$round" -v t="$topic" -v parts="$parts" "$REC_AWK"'
$1 != "acked" || NF != 3 || $2 !~ /^[0-9]+$/ || $3 !~ /^[0-9]+$/ {
    print "round " r ": unexpected output line: " $0 > "/dev/stderr"; bad = 1; exit 1
}
{
    if ($2 >= parts) {
        print "round " r ": ack names partition " $2 " of " parts > "/dev/stderr"; bad = 1; exit 1
    }
    if (k > 0 && ($2 != lastp || $3 != lasto + 1)) {
        print "round " r ": ack " k " is " $2 "/" $3 " after " lastp "/" lasto \
            " (one key per round: expected the next offset of the same partition)" > "/dev/stderr"
        bad = 1; exit 1
    }
    print t, $2, $3, rec_line(r, k + 0)
    lastp = $2; lasto = $3; k++
}
END { exit bad }' >"$round_acks" || fail "round $round: bad acks (see above)"
    cat "$round_acks" >>"$expected"
    if [[ -n $key ]]; then
        complete_lines "$acked" | awk -v k="$key" '{ print k, $2 }' | sort -u >>"$T/key_parts"
    fi
    echo "round $round ($topic, key '${key:-none}'): $(count_lines "$acked") acked"
}

# check_journal TOPIC PARTS ACKS FULL: the acked records in file ACKS must read back exactly;
# every stored record checked must be well formed, offsets contiguous, each round's records in
# input order. With FULL=0 only what was added since the last check is read (after each round:
# keeps the test linear); FULL=1 reads everything (at the end).
check_journal() {
    local topic=$1 parts=$2 acks=$3 full=$4 actual=$T/actual p from
    for ((p = 0; p < parts; p++)); do
        from=0
        if ((full == 0)); then
            from=${checked_end[$topic/$p]:-0}
        fi
        read_partition "$J" "$topic" "$p" "$from" >"$actual"
        awk -v topic="$topic" -v p="$p" -v from="$from" "$REC_AWK"'
FNR == NR {
    if ($1 == topic && $2 == p) { want[$3] = $4 }
    next
}
{
    if (!rec_ok($3)) {
        print topic "/" p "@" $2 ": malformed record \"" $3 "\"" > "/dev/stderr"; bad = 1
    }
    if ($1 != "?" && $1 != p) {
        print topic "/" p "@" $2 ": read returned partition " $1 > "/dev/stderr"; bad = 1
    }
    if ($2 != from + n) {
        print topic "/" p ": offset " $2 " where " from + n " was expected" > "/dev/stderr"
        bad = 1
    }
    n++
    split($3, f, "-")
    rr = substr(f[1], 2) + 0; ii = f[2] + 0
    if (n > 1 && rr == last_r && ii <= last_i) {
        print topic "/" p "@" $2 ": record " $3 " out of order" > "/dev/stderr"; bad = 1
    }
    last_r = rr; last_i = ii
    got[$2] = $3
}
END {
    for (o in want) {
        if (errors > 20) {
            print "... (more differences not shown)" > "/dev/stderr"
            break
        }
        if (!(o in got)) {
            print topic "/" p ": acked offset " o " is missing (" want[o] ")" > "/dev/stderr"
            bad = 1; errors++
        } else if (got[o] != want[o]) {
            errors++
            print topic "/" p "@" o ": reads \"" got[o] "\", acked as \"" want[o] "\"" \
                > "/dev/stderr"; bad = 1
        }
    }
    print from + n
    exit bad
}' "$acks" "$actual" >"$T/end" || fail "journal content after a kill -9 does not match the acks"
        checked_end[$topic/$p]=$(cat "$T/end")
    done
}

round=0
for spec in "single 1" "keyed 3"; do
    read -r topic parts <<<"$spec"
    for ((i = 0; i < ROUNDS_PER_TOPIC; i++)); do
        if ((SECONDS >= DEADLINE)); then
            fail "time budget exceeded after $round rounds"
        fi
        key=""
        if ((parts > 1)); then
            key="machine-$((i % 5))" # keys repeat, so a key must keep its partition
        fi
        crash_round "$round" "$topic" "$parts" "$key"
        check_journal "$topic" "$parts" "$round_acks" 0
        round=$((round + 1))
    done
done

# A key maps to one partition, whatever the round.
touch "$T/key_parts"
if [[ -n $(sort -u "$T/key_parts" | awk '{ print $1 }' | uniq -d) ]]; then
    sort -u "$T/key_parts" >&2
    fail "a key was stored in more than one partition"
fi
total_acked=$(count_lines "$expected")
((total_acked > 0)) || fail "no record was acked in $round rounds: the appender never committed"

check_journal single 1 "$expected" 1
check_journal keyed 3 "$expected" 1
verify_ok "$J"
note "PASS: $total_acked acked records in $round kill -9 rounds all read back intact; verify ok"
