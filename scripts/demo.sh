#!/usr/bin/env bash
# The main job, end to end on one machine: start the local SCION network (three link-disjoint
# paths between two ASes), seed a file in one AS, download it in the other over all paths at
# once, and print the results.
#   SIZE_MIB=256 scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --workspace --quiet
bin=target/release/bittorrent-over-scion
work=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "== starting the local SCION network (topologies/three-paths)"
target/release/scion-testnet --topology three-paths --state "$work/state.json" >"$work/testnet.log" 2>&1 &
for _ in $(seq 1 120); do grep -q "testnet ready" "$work/testnet.log" 2>/dev/null && break; sleep 0.5; done
grep -q "testnet ready" "$work/testnet.log" || { cat "$work/testnet.log"; exit 1; }
daemon() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ases'][sys.argv[2]]['daemon'])" "$work/state.json" "$1"; }
seeder_as=1-ff00:0:112
leecher_as=1-ff00:0:111

echo "== paths from $leecher_as to $seeder_as"
SCION_DAEMON_ADDRESS=$(daemon $leecher_as) $bin paths $seeder_as

size=${SIZE_MIB:-256}
echo "== creating ${size} MiB of data and a torrent"
head -c $((size * 1024 * 1024)) /dev/urandom >"$work/data.bin"
$bin create "$work/data.bin" -o "$work/data.torrent"

echo "== seeding in $seeder_as"
SCION_DAEMON_ADDRESS=$(daemon $seeder_as) $bin -inPath="$work/data.torrent" -seed=true \
  -file="$work/data.bin" -local="$seeder_as,[127.0.0.1]:43000" -logLevel=WARN >"$work/seeder.log" 2>&1 &
sleep 1

echo "== downloading in $leecher_as over every disjoint path"
SCION_DAEMON_ADDRESS=$(daemon $leecher_as) $bin -inPath="$work/data.torrent" -outPath="$work/out.bin" \
  -peer="$seeder_as,[127.0.0.1]:43000" -seed=false -logLevel=WARN -exportMetricsTo="$work/paths.csv"

echo "== per-path metrics (-exportMetricsTo)"
cat "$work/paths.csv"
if cmp -s "$work/data.bin" "$work/out.bin"; then
  echo "== OK: download is byte-identical ($(sha256sum "$work/out.bin" | cut -c1-16)…)"
else
  echo "== FAILED: download differs" >&2
  exit 1
fi
