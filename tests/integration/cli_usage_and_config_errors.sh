#!/usr/bin/env bash
# Guarantee: every command answers --help, usage mistakes exit 2 with a message naming the
# problem, and `config check` names file:line:column of bad settings (exit 1) without crashing.
set -euo pipefail
cd "$(dirname "$0")/../.."
MILLRACE=${MILLRACE:-${MR_BUILD:-build/asan}/millrace}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

expect_exit() { # expect_exit CODE PATTERN -- command...
    local want=$1 pattern=$2 rc=0
    shift 3
    "$@" >"$T/out" 2>&1 || rc=$?
    [[ $rc -eq $want ]] || { cat "$T/out" >&2; fail "'$*' exited $rc, want $want"; }
    grep -qE -- "$pattern" "$T/out" || { cat "$T/out" >&2; fail "'$*' output lacks /$pattern/"; }
}

expect_exit 0 '^millrace ' -- "$MILLRACE" version
expect_exit 2 'usage: millrace' -- "$MILLRACE"
expect_exit 2 "unknown command 'frobnicate'" -- "$MILLRACE" frobnicate
for cmd in version demo journal config "journal append" "journal read" "journal topics" \
    "journal verify" "config check" "config docs"; do
    # shellcheck disable=SC2086
    expect_exit 0 'usage' -- "$MILLRACE" $cmd --help
done
expect_exit 2 'topic' -- "$MILLRACE" journal append --dir "$T/j"
expect_exit 2 'fsync' -- "$MILLRACE" journal append --dir "$T/j" --topic t --fsync sometimes
expect_exit 2 'duration' -- "$MILLRACE" demo --duration fast

# A good example passes; a bad file names each problem with file:line:column.
expect_exit 0 'ok' -- "$MILLRACE" config check examples/stdio.yaml
cat >"$T/bad.yaml" <<'YAML'
journal:
  fsync: sometimes
  segmnt_bytes: 64MiB
inputs:
  a:
    type: stdin
    formt: json
YAML
expect_exit 1 'bad.yaml:2:10' -- "$MILLRACE" config check "$T/bad.yaml"
grep -q "did you mean 'segment_bytes'" "$T/out" || fail "no hint for segmnt_bytes"
grep -q "did you mean 'format'" "$T/out" || fail "no hint for formt"
# --set overrides reach the checker and are named in errors
expect_exit 1 'set journal.fsync' -- "$MILLRACE" config check examples/stdio.yaml \
    --set journal.fsync=sometimes
# Broken YAML: a clear message with line and column, not a crash
printf 'journal:\n  dir: "unclosed\n' >"$T/broken.yaml"
expect_exit 1 'broken.yaml:[0-9]+:[0-9]+' -- "$MILLRACE" config check "$T/broken.yaml"
expect_exit 1 'nosuch.yaml' -- "$MILLRACE" config check "$T/nosuch.yaml"
echo "cli usage and config errors: ok"
