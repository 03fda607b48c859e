#!/usr/bin/env bash
# Guarantee: a full or read-only disk gives a clear error, never a crash or lost acked data:
# appending to a full disk stops with "no space left on device" (exit 1, no sanitizer report),
# every record acked before it stays readable and `journal verify` passes; once space is freed,
# appends work again; on a read-only disk reads work and appends fail saying "read-only".
#
# Needs root (mounts a 2 MiB tmpfs under the scratch dir; unmounted on exit). If the mount is not
# permitted the test fails: it is never skipped.
set -euo pipefail
# shellcheck source=tests/fault/_common.sh
source "$(dirname "$0")/_common.sh"

MNT=$T/mnt
J=$MNT/journal
TOPIC=full
SIZE=${MR_FAULT_TMPFS_SIZE:-2m}
mkdir -p "$MNT"
if ! mount -t tmpfs -o "size=$SIZE,mode=0755" millrace-fault "$MNT" 2>"$T/mount.err"; then
    cat "$T/mount.err" >&2
    fail "cannot mount a tmpfs at $MNT (this test needs root and mount permission)"
fi
track_mount "$MNT"
note "tmpfs of $SIZE at $MNT (seed $MR_FAULT_SEED)"

# Space we can hand back later to show that appends recover.
dd if=/dev/zero of="$MNT/filler" bs=64k count=8 status=none

expected=$T/expected # "P OFFSET VALUE" of every acked record
: >"$expected"

# add_acks ROUND ACKFILE: acks of ROUND (ack k = input line k) appended to $expected.
add_acks() {
    complete_lines "$2" | awk -v r="$1" "$REC_AWK"'
$1 != "acked" || NF != 3 {
    print "unexpected append output: " $0 > "/dev/stderr"; exit 1
}
{ print $2, $3, rec_line(r, k++) }' >>"$expected" || fail "bad ack output in $2"
}

# Every acked record must be read back exactly, and nothing else may be stored.
check_acked() {
    read_partition "$J" "$TOPIC" 0 >"$T/actual"
    if ! diff -q <(awk '{ print $2, $3 }' "$expected") <(awk '{ print $2, $3 }' "$T/actual") \
        >/dev/null; then
        # Unacked records may have reached the disk before the error: allow a longer read, but
        # every acked record must be there, in place.
        awk 'FNR == NR { got[$2] = $3; next }
             !($2 in got) || got[$2] != $3 {
                 if (++bad <= 20) {
                     print "acked offset " $2 " (" $3 ") reads back as \"" got[$2] "\"" \
                         > "/dev/stderr"
                 }
             }
             END { if (bad > 20) { print "... " bad " acked records differ" > "/dev/stderr" } }
             END { exit bad > 0 }' "$T/actual" "$expected" || fail "$1: acked records lost or changed"
    fi
}

# --- 1. fill the disk ------------------------------------------------------------------------------
note "appending until the disk is full"
rc=0
gen_records 0 | timeout -k 5 30 "$MILLRACE" journal append --dir "$J" --topic "$TOPIC" \
    --fsync always >"$T/acked.0" 2>"$T/append.0.err" || rc=$?
assert_no_sanitizer "$T/append.0.err"
if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    fail "the appender hung on a full disk (killed after 30 s)"
fi
if [[ $rc -ne 1 ]]; then
    sed 's/^/    /' "$T/append.0.err" >&2
    fail "appending to a full disk exited $rc, expected 1"
fi
if ! grep -qi 'no space left on device' "$T/append.0.err"; then
    sed 's/^/    /' "$T/append.0.err" >&2
    fail "the full-disk error does not say 'no space left on device'"
fi
note "appender stopped with: $(grep -i -m1 'no space' "$T/append.0.err")"
add_acks 0 "$T/acked.0"
acked=$(count_lines "$expected")
((acked > 0)) || fail "nothing was acked before the disk filled (tmpfs $SIZE): test is void"
note "$acked records acked before the disk filled ($(df -k "$MNT" | awk 'NR == 2 { print $4 }') KiB free)"
check_acked "after ENOSPC"
verify_ok "$J"

# --- 2. free space: appends work again ---------------------------------------------------------------
rm -f "$MNT/filler"
note "space freed; appending 200 more records"
rc=0
gen_records 1 200 | timeout -k 5 30 "$MILLRACE" journal append --dir "$J" --topic "$TOPIC" \
    --fsync always >"$T/acked.1" 2>"$T/append.1.err" || rc=$?
assert_no_sanitizer "$T/append.1.err"
if [[ $rc -ne 0 ]]; then
    sed 's/^/    /' "$T/append.1.err" >&2
    fail "append after freeing space exited $rc"
fi
[[ $(count_lines "$T/acked.1") -eq 200 ]] ||
    fail "append after freeing space acked $(count_lines "$T/acked.1") of 200 records"
add_acks 1 "$T/acked.1"
check_acked "after freeing space"
verify_ok "$J"

# --- 3. read-only disk ---------------------------------------------------------------------------------
mount -o remount,ro "$MNT" || fail "cannot remount $MNT read-only"
note "remounted read-only"
check_acked "on a read-only disk"
rc=0
gen_records 2 10 | timeout -k 5 30 "$MILLRACE" journal append --dir "$J" --topic "$TOPIC" \
    --fsync always >"$T/acked.2" 2>"$T/append.2.err" || rc=$?
assert_no_sanitizer "$T/append.2.err"
if [[ $rc -ne 1 ]]; then
    sed 's/^/    /' "$T/append.2.err" >&2
    fail "append on a read-only disk exited $rc, expected 1"
fi
if ! grep -Eqi 'read-only|read only' "$T/append.2.err"; then
    sed 's/^/    /' "$T/append.2.err" >&2
    fail "the read-only error does not say 'read-only'"
fi
[[ $(count_lines "$T/acked.2") -eq 0 ]] || fail "records were acked on a read-only disk"
note "appender refused with: $(grep -Ei -m1 'read.only' "$T/append.2.err")"
verify_ok "$J"

note "PASS: full disk and read-only disk give clear errors; $(count_lines "$expected") acked records intact"
