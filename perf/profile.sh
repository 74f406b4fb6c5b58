#!/usr/bin/env bash
# CPU profile of one seeder and one leecher moving a torrent inside one AS of the local SCION
# network: perf record (cpu-clock, DWARF call graphs) of each process, then a flame graph
# (inferno, if installed) or a text report (perf report --stdio).
#
#   perf/profile.sh                       # PROFILE_MIB=512 by default
#   PROFILE_MIB=256 OUT=/tmp/prof perf/profile.sh
#
# Output in $OUT (default target/perf-profile): seeder.perf.data, leecher.perf.data,
# seeder.svg / leecher.svg (with inferno) and seeder.txt / leecher.txt (always).
# Needs: linux-perf (apt-get install linux-perf); optional: cargo install inferno.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MIB=${PROFILE_MIB:-512}
OUT=${OUT:-$ROOT/target/perf-profile}
FREQ=${FREQ:-499}
# DWARF unwinding: the release profile keeps line tables but no frame pointers, so `-g`
# (frame pointers) would give truncated Rust stacks. 16 KiB of stack per sample.
CALLGRAPH=${CALLGRAPH:-dwarf,16384}
BIN=$ROOT/target/release/bittorrent-over-scion
AS=1-ff00:0:111
PORT=${PORT:-43500}

command -v perf >/dev/null || { echo "perf missing: apt-get install linux-perf" >&2; exit 1; }
perf stat -e cpu-clock true >/dev/null 2>&1 || { echo "perf cannot sample here (perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid)); see perf/README.md for valgrind --tool=callgrind" >&2; exit 1; }
[[ -n "${SKIP_BUILD:-}" ]] || cargo build --release --workspace --quiet

rm -rf "$OUT"; mkdir -p "$OUT"
work=$OUT/work; mkdir -p "$work"
pids=()
cleanup() { for p in "${pids[@]:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$ROOT/target/release/scion-testnet" --topology three-paths --state "$work/state.json" >"$work/testnet.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 240); do grep -q "testnet ready" "$work/testnet.log" 2>/dev/null && break; sleep 0.5; done
grep -q "testnet ready" "$work/testnet.log" || { cat "$work/testnet.log"; exit 1; }
daemon=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ases'][sys.argv[2]]['daemon'])" "$work/state.json" "$AS")
export SCION_DAEMON_ADDRESS=$daemon

head -c $((MIB * 1024 * 1024)) /dev/urandom >"$work/data.bin"
"$BIN" create "$work/data.bin" -o "$work/data.torrent" >/dev/null

echo "== perf record: seeder"
perf record -e cpu-clock -F "$FREQ" --call-graph "$CALLGRAPH" -o "$OUT/seeder.perf.data" -- \
  "$BIN" -inPath="$work/data.torrent" -seed=true -file="$work/data.bin" -local="$AS,[127.0.0.1]:$PORT" -logLevel=WARN \
  >"$work/seeder.log" 2>&1 &
perf_seed=$!
pids+=("$perf_seed")
sleep 2
echo "== perf record: leecher (${MIB} MiB)"
perf record -e cpu-clock -F "$FREQ" --call-graph "$CALLGRAPH" -o "$OUT/leecher.perf.data" -- \
  "$BIN" -inPath="$work/data.torrent" -outPath="$work/out.bin" -peer="$AS,[127.0.0.1]:$PORT" -seed=false -logLevel=WARN \
  2>&1 | tail -20
# stop the seeder (perf's child), perf then writes its file
seeder=$(pgrep -P "$perf_seed" | head -1 || true)
[[ -n "$seeder" ]] && kill -INT "$seeder" 2>/dev/null || true
wait "$perf_seed" 2>/dev/null || true
rm -f "$work/out.bin" "$work/data.bin"

for role in seeder leecher; do
  perf report -i "$OUT/$role.perf.data" --stdio --no-children --percent-limit 1.5 2>/dev/null >"$OUT/$role.txt" || true
  if command -v inferno-collapse-perf >/dev/null && command -v inferno-flamegraph >/dev/null; then
    perf script -i "$OUT/$role.perf.data" 2>/dev/null | inferno-collapse-perf | inferno-flamegraph >"$OUT/$role.svg"
    echo "flame graph: $OUT/$role.svg"
  fi
  echo "== $role: top symbols (self time) -> $OUT/$role.txt"
  grep -E '^ +[0-9.]+%' "$OUT/$role.txt" | head -15
done
