#!/usr/bin/env bash
# Tracker throughput on loopback: our `tracker` subcommand vs Debian's opentracker, UDP (BEP 15)
# and HTTP announces, driven by the same load generator (crates/tracker/examples/tracker_load.rs:
# a bounded number of announces over 1000 torrents, numwant 50; it stops by itself).
# Each server is pinned to CPU 0 (so the figures are per core), the generator to CPU 1.
# RUNS runs per case; prints medians and the ratio ours/opentracker as a markdown table
# (also written to perf/tracker-last-run.md).
#
#   perf/tracker_bench.sh            # REQ_UDP=200000 REQ_HTTP=20000 RUNS=3
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
REQ_UDP=${REQ_UDP:-200000}
REQ_HTTP=${REQ_HTTP:-20000}
RUNS=${RUNS:-3}
TORRENTS=1000

command -v opentracker >/dev/null || { echo "opentracker is missing: run scripts/install-deps.sh" >&2; exit 1; }
command -v taskset >/dev/null || { echo "taskset (util-linux) is missing" >&2; exit 1; }
# Our server is the crate's example wrapper (same code as `bittorrent-over-scion tracker`,
# without the client's dependencies, so this builds quickly).
PROFILE=${PROFILE:-release}
cargo build --profile "$PROFILE" -q -p bt-tracker --example tracker_load --example tracker_server
dir=$PROFILE; [ "$PROFILE" = dev ] && dir=debug
SERVER=$CARGO_TARGET_DIR/$dir/examples/tracker_server
LOAD=$CARGO_TARGET_DIR/$dir/examples/tracker_load

work=$(mktemp -d)
# opentracker chroots there and drops to "nobody", which must be able to read the whitelist.
chmod 755 "$work"
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
# opentracker (Debian) is a whitelist build; ours gets the same allow-list so both check it.
"$LOAD" hashes $TORRENTS > "$work/whitelist.txt"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_server() { # name port
  case $1 in
    ours) taskset -c 0 "$SERVER" --http "127.0.0.1:$2" --udp "127.0.0.1:$2" --udp-threads 1 \
            --interval 1800 --allow "$work/whitelist.txt" --max-peers-per-host 1000000 \
            >"$work/ours.log" 2>&1 & ;; # the load comes from one host; opentracker has no cap
    opentracker) taskset -c 0 opentracker -i 127.0.0.1 -p "$2" -P "$2" -d "$work" -w whitelist.txt \
            -u nobody >"$work/ot.log" 2>&1 & ;;
  esac
  server_pid=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return; fi
    sleep 0.05
  done
  echo "$1 did not start" >&2; cat "$work"/*.log >&2; exit 1
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

declare -A RATE P99
for proto in udp http; do
  for server in ours opentracker; do
    port=$(free_port)
    start_server $server "$port"
    rates=() p99s=()
    for run in $(seq "$RUNS"); do
      if [ $proto = udp ]; then
        line=$(taskset -c 1 "$LOAD" udp "127.0.0.1:$port" --requests "$REQ_UDP" --window 64 --torrents $TORRENTS)
      else
        line=$(taskset -c 1 "$LOAD" http "127.0.0.1:$port" --requests "$REQ_HTTP" --conns 8 --torrents $TORRENTS)
      fi
      echo "$server $proto run $run: $line" >&2
      rates+=("$(echo "$line" | field rate)")
      p99s+=("$(echo "$line" | field p99_us)")
    done
    RATE[$server.$proto]=$(printf '%s\n' "${rates[@]}" | median)
    P99[$server.$proto]=$(printf '%s\n' "${p99s[@]}" | median)
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
  done
done

{
  echo "| protocol | ours announces/s | opentracker announces/s | ratio ours/opentracker | ours p99 (µs) | opentracker p99 (µs) |"
  echo "|---|---|---|---|---|---|"
  for proto in udp http; do
    o=${RATE[ours.$proto]} t=${RATE[opentracker.$proto]}
    ratio=$(awk -v a="$o" -v b="$t" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    echo "| $proto | $o | $t | $ratio | ${P99[ours.$proto]} | ${P99[opentracker.$proto]} |"
  done
  echo
  echo "medians of $RUNS runs; UDP $REQ_UDP announces (64 in flight), HTTP $REQ_HTTP (8 connections, one request each); server on CPU 0, load on CPU 1; profile $PROFILE; $(nproc) CPUs, $(uname -r)"
} | tee perf/tracker-last-run.md
