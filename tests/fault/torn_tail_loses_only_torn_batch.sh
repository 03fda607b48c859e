#!/usr/bin/env bash
# Guarantee: a torn or garbage tail in the newest segment costs only the torn batch. Garbage
# after the last complete batch: every record stays readable, `journal verify` reports the
# damage (exit 1, naming the file) until the next open recovers it, which logs what it dropped
# on stderr, and verify passes afterwards. A batch cut in the middle: exactly that batch's
# records are lost, every earlier record is intact, and new appends continue at its offset.
#
# Batches are found by walking the segment's Kafka RecordBatch v2 headers (baseOffset i64 at 0,
# batchLength i32 at 8, both big-endian); segments are found with `find -name '*.log'`, the
# newest being the one with the largest base offset in its name.
set -euo pipefail
# shellcheck source=tests/fault/_common.sh
source "$(dirname "$0")/_common.sh"

J=$T/journal
TOPIC=torn
N=500
expected=$T/expected # "0 OFFSET VALUE", exactly what partition 0 must hold
: >"$expected"

# append ROUND COUNT: appends COUNT records of ROUND (ack k = line k), adds them to $expected.
append() {
    local round=$1 count=$2 rc=0
    gen_records "$round" "$count" | timeout -k 5 60 "$MILLRACE" journal append --dir "$J" \
        --topic "$TOPIC" --fsync always >"$T/acked.$round" 2>"$T/append.$round.err" || rc=$?
    assert_no_sanitizer "$T/append.$round.err"
    if [[ $rc -ne 0 ]]; then
        sed 's/^/    /' "$T/append.$round.err" >&2
        fail "append round $round exited $rc"
    fi
    [[ $(count_lines "$T/acked.$round") -eq $count ]] ||
        fail "append round $round acked $(count_lines "$T/acked.$round") of $count records"
    awk -v r="$round" "$REC_AWK"'{ print $2, $3, rec_line(r, k++) }' "$T/acked.$round" \
        >>"$expected"
}

# The journal must hold exactly $expected.
check_exact() {
    read_partition "$J" "$TOPIC" 0 >"$T/actual"
    if ! diff -u "$expected" "$T/actual" >"$T/diff"; then
        head -n 40 "$T/diff" >&2
        fail "$1: partition 0 does not hold exactly the expected records"
    fi
}

newest_segment() {
    find "$J" -name '*.log' -type f | awk -F/ '{ print $NF "\t" $0 }' | sort | tail -n 1 |
        cut -f 2
}

# be_int FILE POS LEN: unsigned big-endian integer of LEN bytes at POS.
be_int() {
    od -An -v -tu1 -j "$2" -N "$3" "$1" | awk '{ for (i = 1; i <= NF; i++) v = v * 256 + $i }
        END { printf "%.0f\n", v }'
}

# walk_batches FILE: prints "POS SIZE BASE_OFFSET" per complete batch, then "end POS".
walk_batches() {
    local f=$1 size pos=0 len base i
    size=$(stat -c %s "$f")
    for ((i = 0; i < 1000000; i++)); do
        if ((pos + 12 > size)); then
            break
        fi
        len=$(be_int "$f" $((pos + 8)) 4)
        # A zero length is pre-allocated space; anything shorter than a header is not a batch.
        if ((len < 49 || pos + 12 + len > size)); then
            break
        fi
        base=$(be_int "$f" "$pos" 8)
        echo "$pos $((12 + len)) $base"
        pos=$((pos + 12 + len))
    done
    echo "end $pos"
}

# --- 1. write N records, close -------------------------------------------------------------------
append 0 "$N"
check_exact "after writing $N records"
seg=$(newest_segment)
[[ -n $seg ]] || fail "no *.log segment file under $J"
walk_batches "$seg" >"$T/batches"
end=$(awk '$1 == "end" { print $2 }' "$T/batches")
nb=$(grep -vc '^end' "$T/batches" || true)
note "segment $(basename "$seg"): $nb batches, data ends at byte $end of $(stat -c %s "$seg")"
((nb > 0)) || fail "could not find any batch in $seg (layout changed?)"

# --- 2. garbage after the last batch ------------------------------------------------------------
head -c 777 /dev/urandom >"$T/garbage"
dd if="$T/garbage" of="$seg" bs=1 seek="$end" conv=notrunc status=none
note "wrote 777 bytes of garbage at byte $end"

rc=0
"$MILLRACE" journal verify --dir "$J" >"$T/verify.torn" 2>&1 || rc=$?
assert_no_sanitizer "$T/verify.torn"
[[ $rc -eq 1 ]] || { cat "$T/verify.torn" >&2; fail "verify on a garbage tail exited $rc, not 1"; }
grep -q "$(basename "$seg")" "$T/verify.torn" ||
    { cat "$T/verify.torn" >&2; fail "verify does not say which file is damaged"; }
note "verify before recovery: $(head -n 1 "$T/verify.torn")"

# Reopening for append recovers: drops the garbage, says so, and continues at offset N.
append 1 1
# The report must say how much it dropped (777 bytes), not just that it looked.
dropped_re='(drop|truncat|torn|discard).*[^0-9]777[^0-9]'
grep -Eqi "$dropped_re" "$T/append.1.err" ||
    { cat "$T/append.1.err" >&2; fail "recovery did not report the 777 dropped bytes on stderr"; }
note "recovery said: $(grep -Ei -m1 "$dropped_re" "$T/append.1.err")"
[[ $(awk 'END { print $3 }' "$T/acked.1") -eq $N ]] ||
    fail "the record after recovery got offset $(awk 'END { print $3 }' "$T/acked.1"), not $N"
check_exact "after recovering from a garbage tail"
verify_ok "$J"

# --- 3. cut the last batch in the middle ---------------------------------------------------------
append 2 300
seg=$(newest_segment)
walk_batches "$seg" >"$T/batches"
read -r pos bsize base < <(grep -v '^end' "$T/batches" | tail -n 1)
cut=$((pos + bsize / 2))
fsize=$(stat -c %s "$seg")
end=$(awk '$1 == "end" { print $2 }' "$T/batches")
if ((fsize == end)); then
    truncate -s "$cut" "$seg"
else
    # Pre-allocated segment: a torn write leaves zeros where the rest of the batch should be.
    dd if=/dev/zero of="$seg" bs=1 seek="$cut" count=$((end - cut)) conv=notrunc status=none
fi
lost=$(awk -v b="$base" '$2 >= b' "$expected" | wc -l)
note "cut the last batch (offsets $base.., $bsize bytes at $pos) at byte $cut: $lost records lost"
awk -v b="$base" '$2 < b' "$expected" >"$T/kept" && mv "$T/kept" "$expected"

append 3 1
dropped_re="(drop|truncat|torn|discard).*[^0-9]$((end - cut))[^0-9]"
grep -Eqi "$dropped_re" "$T/append.3.err" || {
    cat "$T/append.3.err" >&2
    fail "recovery did not report the $((end - cut)) bytes of the torn batch on stderr"
}
note "recovery said: $(grep -Ei -m1 "$dropped_re" "$T/append.3.err")"
[[ $(awk 'END { print $3 }' "$T/acked.3") -eq $base ]] ||
    fail "the record after the cut got offset $(awk 'END { print $3 }' "$T/acked.3"), not $base"
check_exact "after cutting the last batch"
verify_ok "$J"

note "PASS: garbage tail dropped and reported, a cut batch lost only its own $lost records"
