#!/usr/bin/env bash
# Runs every benchmark program in $MR_BUILD/bench/ (what `make bench` builds from bench/*.c),
# RUNS times each (default 3), and writes bench/results.json and bench/RESULTS.md: machine
# description, then for every metric the median with the min–max spread.
#
#   MR_BUILD=build/release bench/run.sh
#
# The contract every bench program follows:
#   - it accepts `--dir DIR`: scratch space on the disk under test (a fresh directory under
#     MR_BENCH_DIR, default $MR_BUILD/bench-scratch, deleted afterwards);
#   - it prints its results on stdout as JSON lines, one metric per line:
#       {"bench":"raw_write","metric":"append_sync_1MiB_mib_per_s","value":741.2,
#        "unit":"MiB/s","limit":null}
#     "limit" says what the number is compared with: null (it is itself a limit, or has none),
#     a number, or "BENCH.METRIC" naming another metric of the same run (e.g. the journal's
#     records/s against "raw_write.append_sync_1MiB_records_per_s"); RESULTS.md shows the
#     median as a percentage of that limit's median. Other stdout lines are kept in the log.
#   - exit 0 on success.
# bench/NOTES.md (written by hand: how to read the numbers, targets not reached) is appended.
# Environment: MR_BENCH_RUNS (3), MR_BENCH_TIMEOUT seconds per run (900), MR_BENCH_FILTER (regex
# on program names), MR_BENCH_OUT (directory for results.json and RESULTS.md, default bench/).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [[ -z ${MR_BUILD:-} ]]; then
    echo "usage: MR_BUILD=build/release $0" >&2
    exit 2
fi
MR_BUILD=$(cd "$MR_BUILD" && pwd)
runs=${MR_BENCH_RUNS:-3}
limit_s=${MR_BENCH_TIMEOUT:-900}
filter=${MR_BENCH_FILTER:-}
out_dir=${MR_BENCH_OUT:-$root/bench}
scratch_parent=${MR_BENCH_DIR:-$MR_BUILD/bench-scratch}

mkdir -p "$scratch_parent" "$out_dir" "$MR_BUILD/bench-logs"
scratch=$(mktemp -d "$scratch_parent/run.XXXXXX")
chmod 755 "$scratch" # benches that run a peer as another user (PostgreSQL as postgres) reach it
raw=$(mktemp "${TMPDIR:-/tmp}/millrace-bench.XXXXXX")
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    rm -rf "$scratch" "$raw"
    rmdir "$scratch_parent" 2>/dev/null || true
}
trap cleanup EXIT

programs=()
shopt -s nullglob
for p in "$MR_BUILD"/bench/*; do
    name=$(basename "$p")
    if [[ -f $p && -x $p && $name != *.* ]] && [[ -z $filter || $name =~ $filter ]]; then
        programs+=("$p")
    fi
done
if [[ ${#programs[@]} -eq 0 ]]; then
    echo "bench: no programs in $MR_BUILD/bench: run 'make bench'" >&2
    exit 1
fi

failed=0
for p in "${programs[@]}"; do
    name=$(basename "$p")
    for ((r = 1; r <= runs; r++)); do
        log=$MR_BUILD/bench-logs/$name.$r.log
        dir=$scratch/$name.$r
        mkdir -p "$dir"
        printf 'bench: %s run %d/%d ... ' "$name" "$r" "$runs"
        start=$EPOCHREALTIME
        rc=0
        timeout -k 10 "$limit_s" "$p" --dir "$dir" </dev/null >"$log" 2>&1 || rc=$?
        rm -rf "$dir"
        secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
        if [[ $rc -ne 0 ]]; then
            echo "FAILED (exit $rc, ${secs}s; log: $log)"
            tail -n 20 "$log" | sed 's/^/    /'
            failed=1
            break
        fi
        echo "ok (${secs}s)"
        grep '^{' "$log" | sed "s/^/$r	/" >>"$raw" || true
    done
done

# --- machine description ------------------------------------------------------------------------
json_str() {
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "${s//$'\t'/ }"
}
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
[[ -n $cpu ]] || cpu=$(uname -m)
cores=$(nproc)
mem_kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
mem=$(awk -v k="$mem_kib" 'BEGIN { printf "%.1f GiB", k / 1048576 }')
disk=$(df -PhT "$scratch_parent" | awk 'NR == 2 { printf "%s (%s), %s, %s free", $1, $2, $3, $5 }')
kernel="$(uname -sr)"
commit=$(git describe --always --dirty 2>/dev/null || echo unknown)
when=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# --- aggregate: median and spread per metric, in first-seen order ------------------------------
# Input lines: RUN<TAB>{"bench":...}. Output lines (tab-separated):
# bench metric unit limit median min max values(comma-separated)
agg=$(awk -F'\t' '
function field(line, key,    re, s) {
    re = "\"" key "\":[ ]*(\"[^\"]*\"|[-+0-9.eE]+|null|true|false)"
    if (!match(line, re)) {
        return ""
    }
    s = substr(line, RSTART, RLENGTH)
    sub("^\"" key "\":[ ]*", "", s)
    gsub("\"", "", s)
    return s
}
{
    b = field($2, "bench"); m = field($2, "metric"); v = field($2, "value")
    if (b == "" || m == "" || v == "") {
        next
    }
    k = b SUBSEP m
    if (!(k in n)) {
        order[++count] = k
        unit[k] = field($2, "unit")
        lim[k] = field($2, "limit")
    }
    vals[k, ++n[k]] = v + 0
    list[k] = (list[k] == "" ? "" : list[k] ",") v
}
END {
    for (i = 1; i <= count; i++) {
        k = order[i]
        c = n[k]
        for (a = 1; a <= c; a++) {
            s[a] = vals[k, a]
        }
        for (a = 2; a <= c; a++) {
            x = s[a]
            for (j = a - 1; j >= 1 && s[j] > x; j--) {
                s[j + 1] = s[j]
            }
            s[j + 1] = x
        }
        med = (c % 2) ? s[(c + 1) / 2] : (s[c / 2] + s[c / 2 + 1]) / 2
        split(k, parts, SUBSEP)
        l = lim[k] == "" ? "null" : lim[k]
        printf "%s\t%s\t%s\t%s\t%.6g\t%.6g\t%.6g\t%s\n", parts[1], parts[2], unit[k], l, med, s[1], s[c], list[k]
    }
}' "$raw")

# --- results.json ---------------------------------------------------------------------------------
{
    printf '{\n  "machine": {"cpu": %s, "cores": %s, "memory": %s, "disk": %s, "kernel": %s},\n' \
        "$(json_str "$cpu")" "$cores" "$(json_str "$mem")" "$(json_str "$disk")" \
        "$(json_str "$kernel")"
    printf '  "commit": %s,\n  "date": %s,\n  "runs": %d,\n  "results": [' \
        "$(json_str "$commit")" "$(json_str "$when")" "$runs"
    sep=""
    while IFS=$'\t' read -r b m u l med lo hi values; do
        [[ -n $b ]] || continue
        if [[ $l != null && ! $l =~ ^[-+0-9.eE]+$ ]]; then
            l=$(json_str "$l")
        fi
        printf '%s\n    {"bench": "%s", "metric": "%s", "unit": "%s", "limit": %s, "median": %s, "min": %s, "max": %s, "values": [%s]}' \
            "$sep" "$b" "$m" "$u" "$l" "$med" "$lo" "$hi" "$values"
        sep=","
    done <<<"$agg"
    printf '\n  ]\n}\n'
} >"$out_dir/results.json"

# --- RESULTS.md -----------------------------------------------------------------------------------
fmt_num() {
    awk -v x="$1" 'BEGIN {
        if (x >= 1e6) { printf "%.2f M", x / 1e6 }
        else if (x >= 1e4) { printf "%.0f", x }
        else if (x >= 100) { printf "%.1f", x }
        else { printf "%.3g", x }
    }'
}
declare -A medians=()
while IFS=$'\t' read -r b m u l med lo hi values; do
    [[ -n $b ]] && medians["$b.$m"]=$med
done <<<"$agg"

{
    echo "# Benchmark results"
    echo
    echo "Generated by \`make bench\` (bench/run.sh) on $when at commit \`$commit\`."
    echo "Each value is the median of $runs runs, with the min–max spread; \"vs limit\" is the"
    echo "median as a percentage of the physical limit measured in the same run."
    echo
    echo "| machine | |"
    echo "|---|---|"
    echo "| CPU | $cpu |"
    echo "| cores | $cores |"
    echo "| memory | $mem |"
    echo "| disk (bench scratch) | $disk |"
    echo "| kernel | $kernel |"
    echo
    echo "| bench | metric | median | min–max | unit | vs limit |"
    echo "|---|---|---:|---:|---|---:|"
    while IFS=$'\t' read -r b m u l med lo hi values; do
        [[ -n $b ]] || continue
        vs="—"
        ref=""
        if [[ $l =~ ^[-+0-9.eE]+$ ]]; then
            ref=$l
        elif [[ $l != null && -n ${medians[$l]:-} ]]; then
            ref=${medians[$l]}
        elif [[ $l != null ]]; then
            vs="($l not measured)"
        fi
        if [[ -n $ref ]]; then
            vs=$(awk -v a="$med" -v b="$ref" 'BEGIN { if (b != 0) printf "%.0f %%", 100 * a / b }')
            [[ $l =~ ^[-+0-9.eE]+$ ]] || vs="$vs of $l"
        fi
        echo "| $b | $m | $(fmt_num "$med") | $(fmt_num "$lo")–$(fmt_num "$hi") | $u | $vs |"
    done <<<"$agg"
    # How to read the numbers, and what they do not reach yet: kept by hand in bench/NOTES.md.
    if [[ -f $root/bench/NOTES.md ]]; then
        echo
        cat "$root/bench/NOTES.md"
    fi
} >"$out_dir/RESULTS.md"

echo "bench: wrote ${out_dir#"$root"/}/results.json and ${out_dir#"$root"/}/RESULTS.md"
exit $failed
