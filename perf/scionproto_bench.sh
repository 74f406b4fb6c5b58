#!/usr/bin/env bash
# Issue 21's measurements on scionproto's own routers, control services and daemons (the
# scionproto backend of scion-testnet, topology three-paths by default), side by side in one run. Not in
# CI; results go to perf/RESULTS.md by hand.
#
#   perf/scionproto_bench.sh                       # RUNS=3, 5 s per bwtest, 256 MiB download
#   RUNS=1 RATES="100 400" SIZE_MIB=64 perf/scionproto_bench.sh   # quick look
#   TOPOLOGY=three-paths-capped RATES="20 40" SIZE_MIB=32 perf/scionproto_bench.sh
#       # links of 50 Mbit/s (tc): where the links, not the routers' CPU, are the limit
#
# (1) scion-apps' bwtestclient and our bwtest (bwtester protocol) against the same
#     scion-apps bwtestserver, client->server, at each rate of RATES (Mbit/s, 1000-byte
#     packets): the highest achieved rate with < 1 % loss (their client picks one path).
# (2) our QUIC bwtest (--paths 1 and 3) between the two leaf ASes.
# (3) a SIZE_MIB download across ASes with -numPaths 1 and 3 (default: all disjoint paths).
# Each figure is the median of RUNS runs; every run's raw figure is printed too.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
SIZE_MIB=${SIZE_MIB:-256}
RATES=${RATES:-"50 100 200 400 800"}
TOPOLOGY=${TOPOLOGY:-three-paths}
. scripts/scionproto-env.sh
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  scripts/install-deps.sh >&2
  cargo build --release --workspace --bins --quiet
fi
BIN=target/release/bittorrent-over-scion
THEIR_CLIENT=$SCION_APPS_BIN/bwtestclient
THEIR_SERVER=$SCION_APPS_BIN/bwtestserver
WORK=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
log() { echo "[$(date -u +%T)] $*" >&2; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }

log "starting scionproto $TOPOLOGY"
target/release/scion-testnet --backend scionproto --topology "$TOPOLOGY" --state "$WORK/state.json" \
  >"$WORK/testnet.log" 2>&1 &
for _ in $(seq 1 360); do grep -q "testnet ready" "$WORK/testnet.log" 2>/dev/null && break; sleep 0.5; done
grep -q "testnet ready" "$WORK/testnet.log" || { cat "$WORK/testnet.log" >&2; exit 1; }
daemon() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ases'][sys.argv[2]]['daemon'])" "$WORK/state.json" "$1"; }
SERVER_AS=1-ff00:0:112
CLIENT_AS=1-ff00:0:111

# ---------------------------------------------------------------- (1) bwtester protocol
# Achieved Mbit/s and loss % of the client->server direction from a bwtestclient-style report.
c2s() {
  awk '/^C->S results/ {s=1} s && /Achieved bandwidth:/ {split($0,a,"/ "); sub(/ Mbps.*/,"",a[2]); bw=a[2]}
       s && /Loss rate:/ {sub(/.*Loss rate: /,""); sub(/%.*/,""); print bw, $0; exit}'
}
port=31600
SCION_DAEMON_ADDRESS=$(daemon $SERVER_AS) "$THEIR_SERVER" --listen "127.0.0.1:$port" >"$WORK/their-server.log" 2>&1 &
their_server=$!
sleep 2
server="$SERVER_AS,[127.0.0.1]:$port"
echo "== (1) bwtester protocol, $CLIENT_AS -> $SERVER_AS, scion-apps bwtestserver $SCION_APPS_VERSION"
printf '%-10s %8s %22s %22s\n' client rate "achieved Mbit/s (runs)" "loss % (runs)"
for who in theirs ours; do
  best=0
  for rate in $RATES; do
    bws=() losses=()
    for _ in $(seq 1 "$RUNS"); do
      params="$DURATION,1000,?,${rate}Mbps"
      if [ $who = theirs ]; then
        out=$(SCION_DAEMON_ADDRESS=$(daemon $CLIENT_AS) timeout 120 "$THEIR_CLIENT" -s "$server" -cs "$params" -sc "1,1000,?,1Mbps" 2>&1 || true)
      else
        out=$(SCION_DAEMON_ADDRESS=$(daemon $CLIENT_AS) timeout 120 "$BIN" bwtest -s "$server" -cs "$params" -sc "1,1000,?,1Mbps" 2>&1 || true)
      fi
      read -r bw loss < <(echo "$out" | c2s || true) || true
      bws+=("${bw:-0}") losses+=("${loss:-100}")
      sleep 1
    done
    mbw=$(printf '%s\n' "${bws[@]}" | median)
    mloss=$(printf '%s\n' "${losses[@]}" | median)
    printf '%-10s %8s %22s %22s\n' "$who" "$rate" "$mbw (${bws[*]})" "$mloss (${losses[*]})"
    if awk -v l="$mloss" 'BEGIN {exit !(l < 1)}'; then best=$mbw; fi
  done
  echo "   $who: highest achieved with < 1 % loss: $best Mbit/s"
done
kill "$their_server" 2>/dev/null || true

# ---------------------------------------------------------------- (2) QUIC bwtest
echo "== (2) our QUIC bwtest, $CLIENT_AS -> $SERVER_AS, ${DURATION} s"
qport=31610
SCION_DAEMON_ADDRESS=$(daemon $SERVER_AS) "$BIN" bwtest --server --local "$SERVER_AS,[127.0.0.1]:$qport" >"$WORK/quic-server.log" 2>&1 &
sleep 1
for paths in 1 3; do
  runs=()
  for _ in $(seq 1 "$RUNS"); do
    out=$(SCION_DAEMON_ADDRESS=$(daemon $CLIENT_AS) timeout $((DURATION + 60)) "$BIN" bwtest --peer "$SERVER_AS,[127.0.0.1]:$qport" \
      --duration "$DURATION" --paths "$paths" 2>&1 || true)
    runs+=("$(echo "$out" | sed -n 's/.*total goodput: *\([0-9.]*\).*/\1/p' | tail -1)")
  done
  echo "   --paths $paths: median $(printf '%s\n' "${runs[@]}" | median) Mbit/s (${runs[*]})"
done

# ---------------------------------------------------------------- (3) download
echo "== (3) ${SIZE_MIB} MiB download across ASes"
head -c $((SIZE_MIB << 20)) /dev/urandom >"$WORK/data.bin"
"$BIN" create "$WORK/data.bin" -o "$WORK/data.torrent" >/dev/null
sport=31620
SCION_DAEMON_ADDRESS=$(daemon $SERVER_AS) "$BIN" -inPath="$WORK/data.torrent" -seed=true -file="$WORK/data.bin" \
  -local="$SERVER_AS,[127.0.0.1]:$sport" -logLevel=WARN >"$WORK/seeder.log" 2>&1 &
sleep 1
for paths in 1 3; do
  runs=()
  for _ in $(seq 1 "$RUNS"); do
    rm -f "$WORK/out.bin"
    out=$(SCION_DAEMON_ADDRESS=$(daemon $CLIENT_AS) timeout 600 "$BIN" -inPath="$WORK/data.torrent" -outPath="$WORK/out.bin" \
      -peer="$SERVER_AS,[127.0.0.1]:$sport" -seed=false -numPaths="$paths" -logLevel=WARN 2>&1 || true)
    cmp -s "$WORK/data.bin" "$WORK/out.bin" || { echo "download with -numPaths $paths differs:" >&2; echo "$out" >&2; exit 1; }
    runs+=("$(echo "$out" | sed -n 's/^downloaded .*: \([0-9.]*\) Mbit\/s.*/\1/p' | tail -1)")
  done
  echo "   -numPaths $paths: median $(printf '%s\n' "${runs[@]}" | median) Mbit/s (${runs[*]}), byte-identical"
done
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
