#!/usr/bin/env bash
# Soak (not in CI): one daemon (TCP only, no SCION network) with 200 torrents of 256 KiB — 100
# complete in its download root, 100 leeched from external single-shot seeders that come and
# go (two at a time, each for 10-30 s, told to the daemon through the API) — single-shot
# leechers downloading the seeded ones from it one after another, about 10 API calls a second
# (lists, torrents, metrics, snapshots, pause/resume, completed torrents removed with their data
# and added again), and a kill -9 and restart every KILL_EVERY seconds. The daemon's RSS, CPU,
# open descriptors and threads are sampled each second (perf/soak-<tag>.csv) and plotted
# (perf/soak-<tag>.png, gnuplot). Checks (exit 1 if one fails): after each restart every piece
# verified before the kill is still verified; per daemon life, from a minute in to its last
# minute, RSS and its anonymous part (RssAnon: the heap, without mapped data files) each grow by
# at most 64 MiB, descriptors by at most 64 and threads by at most 4; no API answer is a 5xx.
# See perf/README.md.
#   perf/soak.sh                              # one hour, a kill every 180 s
#   DURATION=600 KILL_EVERY=120 TAG=short nice perf/soak.sh
# BIN= names the binary; by default target/release's is copied first (built only if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-3600}
KILL_EVERY=${KILL_EVERY:-180}
TAG=${TAG:-$(( DURATION / 60 ))min}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; if [[ -n "${KEEP_WORK:-}" ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi' EXIT
command -v gnuplot >/dev/null || { echo "gnuplot is needed (apt-get install gnuplot-nox)" >&2; exit 1; }
if [[ -z "${BIN:-}" ]]; then
  [[ -x target/release/bittorrent-over-scion ]] ||
    cargo build --release --quiet --bin bittorrent-over-scion
  cp target/release/bittorrent-over-scion "$work/"
  BIN=$work/bittorrent-over-scion
fi
out=perf/soak-$TAG
status=0
python3 perf/soak.py "$BIN" "$work" "$DURATION" "$KILL_EVERY" "$out" | tee "$out.log" || status=$?
gnuplot <<GP
set datafile separator ","
set terminal pngcairo size 1200,900 font ",10"
set output "$out.png"
set multiplot layout 4,1 title "perf/soak.sh: 200 torrents, peers coming and going, API load, kill -9 every ${KILL_EVERY} s (${DURATION} s)"
set xlabel "s"
set key off
set ylabel "RSS MiB"
set key top left
plot "$out.csv" using 1:3 every ::1 with lines lw 1.5 title "VmRSS", "$out.csv" using 1:7 every ::1 with lines lw 1.5 title "RssAnon"
set key off
set ylabel "CPU % of one core"
plot "$out.csv" using 1:4 every ::1 with lines
set ylabel "open descriptors"
plot "$out.csv" using 1:5 every ::1 with lines lw 1.5
set ylabel "threads"
plot "$out.csv" using 1:6 every ::1 with lines lw 1.5
unset multiplot
GP
echo "wrote $out.csv, $out.png, $out.log" >&2
exit $status
