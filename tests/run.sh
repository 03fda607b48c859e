#!/usr/bin/env bash
# Runs every test layer against one build and ends with the line CI reads:
#   N passed, N failed
# (N counts test programs and scripts: each unit test binary, fault script, integration script,
# and the fuzz smoke run as one).
#
#   MR_BUILD=build/asan tests/run.sh        (what `make test` runs)
#
# MR_BUILD holds the binaries: unit tests are $MR_BUILD/tests/test_*, the CLI is
# $MR_BUILD/millrace. Layers, in order: unit, fault (tests/fault/*.sh but not _*.sh, which are
# sourced helpers), integration
# (tests/integration/*.sh), fuzz smoke (tests/fuzz/run.sh 10, built into $MR_BUILD/../fuzz).
# Each test writes a log under $MR_BUILD/test-logs/; a failure prints the log's last 40 lines.
# Every test is bounded by `timeout` (MR_TEST_TIMEOUT seconds, default 300), which kills the
# test's whole process group. MR_TEST_FILTER=REGEX runs only the tests whose name matches.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [[ -z ${MR_BUILD:-} ]]; then
    echo "usage: MR_BUILD=build/asan $0" >&2
    exit 2
fi
MR_BUILD=$(cd "$MR_BUILD" && pwd)
export MR_BUILD MR_ROOT=$root
export MILLRACE=$MR_BUILD/millrace
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
timeout_s=${MR_TEST_TIMEOUT:-300}
filter=${MR_TEST_FILTER:-}

logs=$MR_BUILD/test-logs
mkdir -p "$logs"

passed=0
failed=0
failed_names=()

# run_test NAME TIMEOUT COMMAND...: runs one test, logs it, prints PASS/FAIL with its duration.
run_test() {
    local name=$1 limit=$2
    shift 2
    if [[ -n $filter && ! $name =~ $filter ]]; then
        return 0
    fi
    local log=$logs/${name//\//_}.log
    local start=$EPOCHREALTIME rc=0
    timeout -k 10 "$limit" "$@" </dev/null >"$log" 2>&1 || rc=$?
    local secs
    secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    if [[ $rc -eq 0 ]]; then
        echo "PASS $name (${secs}s)"
        passed=$((passed + 1))
    else
        local why="exit $rc"
        [[ $rc -eq 124 || $rc -eq 137 ]] && why="timed out after ${limit}s"
        echo "FAIL $name (${secs}s, $why; log: $log)"
        tail -n 40 "$log" | sed 's/^/    /'
        failed=$((failed + 1))
        failed_names+=("$name")
    fi
}

# A check that is not a program (e.g. a layer with nothing to run) but must count as a failure.
fail_now() {
    echo "FAIL $1 ($2)"
    failed=$((failed + 1))
    failed_names+=("$1")
}

shopt -s nullglob

echo "== unit ($MR_BUILD/tests)"
units=()
for t in "$MR_BUILD"/tests/test_*; do
    if [[ -f $t && -x $t ]]; then
        units+=("$t")
    fi
done
if [[ ${#units[@]} -eq 0 ]]; then
    fail_now unit "no test binaries in $MR_BUILD/tests: run 'make MODE=asan unit-tests'"
fi
for t in "${units[@]}"; do
    run_test "unit/$(basename "$t")" "$timeout_s" "$t"
done

echo "== fault (tests/fault)"
for t in tests/fault/*.sh; do
    [[ $(basename "$t") == _* ]] && continue # shared helpers, sourced by the tests
    run_test "fault/$(basename "$t" .sh)" "$timeout_s" bash "$t"
done

echo "== integration (tests/integration)"
for t in tests/integration/*.sh; do
    [[ $(basename "$t") == _* ]] && continue
    run_test "integration/$(basename "$t" .sh)" "$timeout_s" bash "$t"
done

echo "== fuzz smoke (tests/fuzz, 10 s per target)"
fuzz_targets=(tests/fuzz/fuzz_*.c)
if [[ ${#fuzz_targets[@]} -gt 0 ]]; then
    if command -v clang-14 >/dev/null 2>&1; then
        # Building the library with fuzzer flags takes a while: allow for it on top of 10 s each.
        MR_FUZZ_BUILD=$(dirname "$MR_BUILD")/fuzz \
            run_test fuzz/smoke $((timeout_s + 30 * ${#fuzz_targets[@]})) tests/fuzz/run.sh 10
    else
        fail_now fuzz/smoke "clang-14 is not installed: run scripts/install-deps.sh test"
    fi
fi

if [[ $failed -gt 0 ]]; then
    echo "failed: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
