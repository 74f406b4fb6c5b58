#!/usr/bin/env bash
# The main job, end to end on one machine: start the local SCION network (three link-disjoint
# paths between two ASes), seed a file in one AS, download it in the other over all paths at
# once, and print the results.
#   SIZE_MIB=256 scripts/demo.sh
#   scripts/demo.sh --ui     then also: a seeding and a downloading daemon on the same network,
#                            the same file again at 8 MiB/s, and the downloader's web UI left
#                            running (http://127.0.0.1:7878/) until Ctrl-C
#   scripts/demo.sh --scionproto
#                            the same over scionproto's own border routers, control services and
#                            daemons (v0.14.0, built by install-deps.sh) instead of pocketscion;
#                            `paths` then shows the metadata topologies/three-paths.toml announces
set -euo pipefail
ui=0
backend=pocketscion
for arg in "$@"; do
  case "$arg" in
    --ui) ui=1 ;;
    --scionproto) backend=scionproto ;;
    *) echo "usage: $0 [--ui] [--scionproto]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# Where install-deps.sh put scionproto's binaries (SCIONPROTO_BIN), for the testnet.
. scripts/scionproto-env.sh
cargo build --release --workspace --quiet
# Our SCION ports: inside the ASes' dispatched range (31000-32767) on scionproto, where its
# routers deliver to a host's own port; pocketscion's routers deliver to any port.
if [ "$backend" = scionproto ]; then seed_port=31500 ui_port=31501 wait_s=180; else seed_port=43000 ui_port=43001 wait_s=60; fi
bin=target/release/bittorrent-over-scion
work=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "== starting the local SCION network (topologies/three-paths, $backend)"
target/release/scion-testnet --backend "$backend" --topology three-paths --state "$work/state.json" \
  >"$work/testnet.log" 2>&1 &
for _ in $(seq 1 $((wait_s * 2))); do grep -q "testnet ready" "$work/testnet.log" 2>/dev/null && break; sleep 0.5; done
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
  -file="$work/data.bin" -local="$seeder_as,[127.0.0.1]:$seed_port" -logLevel=WARN >"$work/seeder.log" 2>&1 &
sleep 1

echo "== downloading in $leecher_as over every disjoint path"
SCION_DAEMON_ADDRESS=$(daemon $leecher_as) $bin -inPath="$work/data.torrent" -outPath="$work/out.bin" \
  -peer="$seeder_as,[127.0.0.1]:$seed_port" -seed=false -logLevel=WARN -exportMetricsTo="$work/paths.csv"

echo "== per-path metrics (-exportMetricsTo)"
cat "$work/paths.csv"
if cmp -s "$work/data.bin" "$work/out.bin"; then
  echo "== OK: download is byte-identical ($(sha256sum "$work/out.bin" | cut -c1-16)…)"
else
  echo "== FAILED: download differs" >&2
  exit 1
fi

[ "$ui" = 1 ] || exit 0

echo "== the daemons and the web UI"
mkdir -p "$work/seed-root"
ln "$work/data.bin" "$work/seed-root/data.bin"
SCION_DAEMON_ADDRESS=$(daemon $seeder_as) $bin daemon --data-dir "$work/seeder-state" \
  --download-root "$work/seed-root" --http 127.0.0.1:7879 \
  --local "$seeder_as,[127.0.0.1]:$ui_port" --log-level WARN >"$work/seeder-daemon.log" 2>&1 &
SCION_DAEMON_ADDRESS=$(daemon $leecher_as) $bin daemon --data-dir "$work/leecher-state" \
  --http "${UI_HTTP:-127.0.0.1:7878}" --local "$leecher_as,[127.0.0.1]:0" --log-level WARN \
  >"$work/leecher-daemon.log" 2>&1 &
api=http://${UI_HTTP:-127.0.0.1:7878}
for _ in $(seq 1 100); do
  $bin ls --api http://127.0.0.1:7879 >/dev/null 2>&1 && $bin ls --api "$api" >/dev/null 2>&1 && break
  sleep 0.2
done
$bin add "$work/data.torrent" --api http://127.0.0.1:7879
# 8 MiB/s, so the transfer lasts long enough to watch.
python3 - "$api" <<'PY'
import json, sys, urllib.request
body = json.dumps({"limits": {"download_bps": 8 << 20, "upload_bps": None},
                   "seed_policy": {"stop_at_ratio": None, "stop_after_secs": None}}).encode()
req = urllib.request.Request(sys.argv[1] + "/api/v1/settings", data=body, method="PUT",
                             headers={"Content-Type": "application/json"})
urllib.request.urlopen(req).read()
PY
$bin add "$work/data.torrent" --peer "$seeder_as,[127.0.0.1]:$ui_port" --api "$api"
echo "== open $api/ in a browser: the torrent's page shows which SCION paths carry its bytes"
echo "   (the CLI works too: $bin ls --api $api). Ctrl-C stops the daemons and the network."
wait
