#!/usr/bin/env bash
# Builds and runs every libFuzzer target, tests/fuzz/fuzz_NAME.c, for SECONDS each.
#
#   tests/fuzz/run.sh SECONDS        (make fuzz: 300; make test's smoke run: 10)
#
# The library (src/**/*.c except src/cli) is compiled with the same clang-14 fuzzer and sanitizer
# flags as the target, into $MR_FUZZ_BUILD (default build/fuzz), and only rebuilt when a source
# or a header it includes changed. Each target runs on a scratch copy of its seed corpus,
# tests/fuzz/corpus/NAME/, so the checked-in corpus only grows when someone copies a useful input
# in by hand. Any crash, leak, UB report or timeout fails the run; the reproducer is kept in
# $MR_FUZZ_BUILD/artifacts/NAME/ and its path printed with the command that replays it.
# Optional per-target extras: tests/fuzz/NAME.dict (a libFuzzer dictionary).
# FUZZ_ONLY=NAME runs just tests/fuzz/fuzz_NAME.c (a glob works too: FUZZ_ONLY='mqtt*').
set -euo pipefail

if [[ $# -ne 1 || ! $1 =~ ^[0-9]+$ || $1 -eq 0 ]]; then
    echo "usage: $0 SECONDS" >&2
    exit 2
fi
seconds=$1

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=${MR_FUZZ_BUILD:-$root/build/fuzz}
CC=${FUZZ_CC:-clang-14}

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz: $CC not found: run scripts/install-deps.sh test" >&2
    exit 1
fi

# -fno-sanitize-recover turns UBSan's reports into crashes libFuzzer keeps a reproducer for.
# shellcheck disable=SC2054 # commas belong to -fsanitize=
flags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
    -std=c11 -D_GNU_SOURCE -DMR_VERSION='"fuzz"' -Iinclude -Isrc)
# The library links what the Makefile's PKGS name: one list, never two to keep in step.
pkgs=$(make -s --no-print-directory print-pkgs)
# shellcheck disable=SC2207,SC2086
pkg_cflags=($(pkg-config --cflags $pkgs))
# shellcheck disable=SC2207,SC2086
pkg_libs=($(pkg-config --libs $pkgs) -lhttp_parser -lpthread -lm)
# protoc-c output (the Sparkplug B schema), as the Makefile generates it.
flags+=(-I"$out/gen")

shopt -s nullglob
targets=(tests/fuzz/fuzz_${FUZZ_ONLY:-*}.c)
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "fuzz: no targets in tests/fuzz/"
    exit 0
fi

# True when $2 (an object) is missing or older than its source or any header its .d lists.
stale() {
    local src=$1 obj=$2 dep
    [[ -f $obj && -f $obj.d && ! $src -nt $obj ]] || return 0
    # shellcheck disable=SC2013 # make-style dependency lists: space-separated paths
    for dep in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$obj.d"); do
        [[ -e $dep && ! $dep -nt $obj ]] || return 0
    done
    return 1
}

compile() {
    local src=$1 obj=$2
    mkdir -p "$(dirname "$obj")"
    if stale "$src" "$obj"; then
        "$CC" "${flags[@]}" "${pkg_cflags[@]}" -MMD -MF "$obj.d" -c "$src" -o "$obj"
    fi
}

echo "fuzz: building library with $CC into ${out#"$root"/}"
lib_objs=()
mkdir -p "$out/gen"
while IFS= read -r proto; do
    base=$(basename "$proto" .proto)
    if [[ ! -f $out/gen/$base.pb-c.c || $proto -nt $out/gen/$base.pb-c.c ]]; then
        protoc-c --proto_path="$(dirname "$proto")" --c_out="$out/gen" "$base.proto"
    fi
    if ! compile "$out/gen/$base.pb-c.c" "$out/obj/gen/$base.pb-c.o"; then
        echo "FAIL fuzz: generated $base.pb-c.c does not build with $CC"
        exit 1
    fi
    lib_objs+=("$out/obj/gen/$base.pb-c.o")
done < <(find src -name '*.proto' | sort)
while IFS= read -r src; do
    obj=$out/obj/${src%.c}.o
    if ! compile "$src" "$obj"; then
        echo "FAIL fuzz: library source $src does not build with $CC"
        exit 1
    fi
    lib_objs+=("$obj")
done < <(find src -name '*.c' ! -path 'src/cli/*' | sort)

failed=0
for target in "${targets[@]}"; do
    base=$(basename "$target" .c)
    name=${base#fuzz_}
    bin=$out/$base
    obj=$out/obj/$base.o
    if ! compile "$target" "$obj" ||
        ! "$CC" "${flags[@]}" "$obj" "${lib_objs[@]}" "${pkg_libs[@]}" -o "$bin"; then
        echo "FAIL fuzz $name: does not build"
        failed=1
        continue
    fi

    scratch=$(mktemp -d "${TMPDIR:-/tmp}/millrace-fuzz-$name.XXXXXX")
    for seed_dir in "tests/fuzz/corpus/$name" "tests/fuzz/corpus/$base"; do
        if [[ -d $seed_dir ]]; then
            cp -r "$seed_dir/." "$scratch/"
        fi
    done
    artifacts=$out/artifacts/$name
    rm -rf "$artifacts"
    mkdir -p "$artifacts"
    extra=()
    if [[ -f tests/fuzz/$name.dict ]]; then
        extra+=("-dict=tests/fuzz/$name.dict")
    fi

    echo "fuzz: $name for ${seconds}s ($(find "$scratch" -type f | wc -l) seed inputs)"
    rc=0
    # The outer timeout is a backstop for a target that hangs before libFuzzer's own clock runs.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        timeout -k 10 $((seconds + 120)) "$bin" -max_total_time="$seconds" -timeout=25 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "${extra[@]}" "$scratch" >"$out/$name.log" 2>&1 || rc=$?
    rm -rf "$scratch"

    repro=("$artifacts"/*)
    if [[ $rc -ne 0 || ${#repro[@]} -gt 0 ]]; then
        failed=1
        tail -n 40 "$out/$name.log"
        echo "FAIL fuzz $name (exit $rc); log: $out/$name.log"
        for r in "${repro[@]}"; do
            echo "  reproducer: $r"
            echo "  replay:     $bin $r"
        done
    else
        echo "PASS fuzz $name: $(grep -Eo 'stat::number_of_executed_units: *[0-9]+' \
            "$out/$name.log" | grep -Eo '[0-9]+$' || echo '?') runs"
    fi
done
exit $failed
