#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ one after the other, each for a time or an execution
# count, and prints the executions reached per target. New inputs that add coverage are merged
# into the small committed corpora in fuzz/corpus/<target>/ (libFuzzer -merge=1), so the
# corpora only grow by what is new. Any crash stops that target, leaves the input in
# fuzz/artifacts/<target>/ and makes the script exit non-zero.
#
#   scripts/fuzz.sh [--seconds N | --runs N] [--no-merge] [--dev] [target...]
#
# --dev builds unoptimised (much quicker to compile, slower to run: what CI uses for its
# short run). Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and nothing else: it runs
# on the stable toolchain, with RUSTC_BOOTSTRAP=1 letting stable rustc take the -Z flags
# cargo-fuzz passes (sanitizers, coverage); no nightly toolchain is needed or used.
# FUZZ_SANITIZER (address by default, or none) is passed to `cargo fuzz -s`.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=""
runs=""
merge=1
profile=()
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --no-merge) merge=0; shift ;;
    --dev) profile=(--dev); shift ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
    esac
done
if [ -z "$seconds" ] && [ -z "$runs" ]; then
    seconds=60
fi

# Stable rustc with its unstable flags unlocked (the sanitizer runtimes ship with stable).
export RUSTC_BOOTSTRAP=1
fuzz=(cargo fuzz)
if ! "${fuzz[@]}" --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz is missing (cargo install cargo-fuzz --locked)" >&2
    exit 1
fi
sanitizer="${FUZZ_SANITIZER:-address}"
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <("${fuzz[@]}" list)
fi

"${fuzz[@]}" build "${profile[@]}" -s "$sanitizer" >&2

limit=()
[ -n "$seconds" ] && limit+=("-max_total_time=$seconds")
[ -n "$runs" ] && limit+=("-runs=$runs")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
summary=()
for t in "${targets[@]}"; do
    corpus="fuzz/corpus/$t"
    mkdir -p "$corpus" "fuzz/artifacts/$t" "$work/$t"
    log="$work/$t.log"
    echo "== $t" >&2
    start=$(date +%s.%N)
    # New inputs go to the scratch corpus (first directory); the committed one is read.
    if "${fuzz[@]}" run "${profile[@]}" -s "$sanitizer" "$t" "$work/$t" "$corpus" -- \
        "${limit[@]}" -print_final_stats=1 >"$log" 2>&1; then
        status=ok
    else
        status=CRASH
        failed+=("$t")
        tail -n 60 "$log" >&2
    fi
    end=$(date +%s.%N)
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n1)
    execs=${execs:-0}
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }')
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n1)
    if [ "$status" = ok ] && [ "$merge" = 1 ]; then
        "${fuzz[@]}" run "${profile[@]}" -s "$sanitizer" "$t" "$corpus" "$work/$t" -- -merge=1 >"$log.merge" 2>&1 ||
            { echo "fuzz.sh: merging the corpus of $t failed" >&2; tail -n 20 "$log.merge" >&2; failed+=("$t"); }
    fi
    summary+=("$(printf '%-14s %12s execs %6ss %8s exec/s  %s' "$t" "$execs" "$secs" "${rate:-?}" "$status")")
done

echo "target         executions     time   rate     result"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
