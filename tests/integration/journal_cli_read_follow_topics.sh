#!/usr/bin/env bash
# Guarantee: what `journal append` acknowledged, `journal read` returns exactly (from earliest,
# from an offset, from a timestamp), `--follow` delivers records appended later by another
# process and exits 0 on SIGTERM, and `journal topics` reports partitions and offsets.
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
T=$(mktemp -d)
follower=
cleanup() {
    [[ -n $follower ]] && kill "$follower" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

seq 1 1000 | sed 's/^/line-/' >"$T/first"
"$MILLRACE" journal append --dir "$T/j" --topic press --fsync always <"$T/first" >"$T/acks1"
[[ $(wc -l <"$T/acks1") -eq 1000 ]] || fail "expected 1000 acks"
[[ $(tail -n 1 "$T/acks1") == "acked 0 999" ]] || fail "last ack is '$(tail -n 1 "$T/acks1")'"

"$MILLRACE" journal read --dir "$T/j" --topic press --from earliest --format value >"$T/read1"
cmp -s "$T/first" "$T/read1" || fail "read back differs from what was appended"
"$MILLRACE" journal read --dir "$T/j" --topic press --from 990 --format value >"$T/tail"
[[ $(head -n 1 "$T/tail") == line-991 && $(wc -l <"$T/tail") -eq 10 ]] || fail "--from 990"
"$MILLRACE" journal read --dir "$T/j" --topic press --from 5 --format json | head -n 1 >"$T/j5" || true
grep -q '"offset":5,' "$T/j5" && grep -q '"value":"line-6"' "$T/j5" || fail "json: $(cat "$T/j5")"

# A timestamp after everything so far: nothing older is returned.
sleep 0.05
mark=$(($(date +%s%3N) + 1))
sleep 0.05
"$MILLRACE" journal read --dir "$T/j" --topic press --from "@$mark" --format value >"$T/none"
[[ ! -s $T/none ]] || fail "--from @now returned old records"

# Follow from the timestamp, then append more from another process.
"$MILLRACE" journal read --dir "$T/j" --topic press --from "@$mark" --follow --format value \
    >"$T/followed" 2>"$T/follow.err" &
follower=$!
sleep 0.3
seq 1 50 | sed 's/^/late-/' >"$T/second"
"$MILLRACE" journal append --dir "$T/j" --topic press <"$T/second" >/dev/null
for _ in $(seq 1 100); do
    [[ $(wc -l <"$T/followed") -ge 50 ]] && break
    sleep 0.1
done
kill -TERM "$follower"
rc=0
wait "$follower" || rc=$?
follower=
[[ $rc -eq 0 ]] || fail "follower exited $rc on SIGTERM: $(cat "$T/follow.err")"
cmp -s "$T/second" "$T/followed" || fail "follow returned: $(head -n 3 "$T/followed")"

"$MILLRACE" journal topics --dir "$T/j" >"$T/topics"
grep -E '^press +1 +0 +1049 ' "$T/topics" >/dev/null || { cat "$T/topics"; fail "topics row"; }
"$MILLRACE" journal read --dir "$T/j" --topic nosuch >/dev/null 2>"$T/err" && fail "unknown topic"
grep -q "no topic 'nosuch'" "$T/err" || fail "unknown topic message: $(cat "$T/err")"
echo "journal CLI read/follow/topics: ok"
