#!/usr/bin/env bash
# Fast resume against a cold re-check, in the daemon: a SIZE_MIB torrent (default 1 GiB) whose
# data is complete on disk is added (the daemon hashes every piece: "cold check"), the daemon
# is stopped cleanly and started again ("restart": the fast-resume data is trusted, nothing is
# hashed). Times are from the API call (cold) or the daemon's ready line and its exec (restart)
# to the torrent seeding; RUNS rounds, medians printed. No SCION network is needed (TCP only).
#   RUNS=3 SIZE_MIB=1024 perf/resume_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin bittorrent-over-scion
bin=$PWD/target/release/bittorrent-over-scion
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
size=${SIZE_MIB:-1024}
runs=${RUNS:-3}

mkdir -p "$work/root"
head -c $((size * 1024 * 1024)) /dev/urandom >"$work/root/data.bin"
"$bin" create "$work/root/data.bin" -o "$work/data.torrent" >/dev/null

python3 - "$bin" "$work" "$runs" "$size" <<'PY'
import json, os, signal, statistics, subprocess, sys, time, base64
sys.path.insert(0, "perf")
from procstat import call

bin_, work, runs, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def start(state):
    global spawned
    spawned = time.monotonic()
    p = subprocess.Popen([bin_, "daemon", "--data-dir", state, "--download-root",
                          os.path.join(work, "root"), "--http", "127.0.0.1:0",
                          # no SCION daemon there: the client runs TCP only
                          "--sciond", "127.0.0.1:9", "--log-level", "WARN"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    ready = time.monotonic()
    api = "http://" + line.split("http://")[1].split()[0]
    return p, api, ready

def wait_seeding(api, ih):
    while True:
        t = call(api, "GET", "/api/v1/torrents/" + ih)
        if t["state"] == "seeding":
            return t
        time.sleep(0.005)

cold, warm, whole = [], [], []
torrent = base64.b64encode(open(os.path.join(work, "data.torrent"), "rb").read()).decode()
for r in range(runs):
    state = os.path.join(work, f"state{r}")
    p, api, _ = start(state)
    t0 = time.monotonic()
    ih = call(api, "POST", "/api/v1/torrents", {"torrent_base64": torrent, "out_dir": ""})["info_hash"]
    t = wait_seeding(api, ih)
    cold.append(time.monotonic() - t0)
    assert t["pieces_checked"] == t["pieces_total"], t
    p.send_signal(signal.SIGTERM); assert p.wait(30) == 0

    p, api, ready = start(state)
    t = wait_seeding(api, ih)
    warm.append(time.monotonic() - ready)
    whole.append(time.monotonic() - spawned)
    assert t["pieces_checked"] == 0 and t["pieces_resumed"] == t["pieces_total"], t
    p.send_signal(signal.SIGTERM); assert p.wait(30) == 0
    print(f"run {r + 1}: cold check {cold[-1]:.3f} s, restart {warm[-1]:.3f} s after the "
          f"ready line, {whole[-1]:.3f} s after exec "
          f"({t['pieces_total']} pieces)", flush=True)

print(f"{size} MiB, median of {runs}: cold check {statistics.median(cold):.3f} s "
      f"({size / statistics.median(cold):.0f} MiB/s, page cache warm), "
      f"restart with fast resume {statistics.median(warm) * 1000:.0f} ms after the ready line "
      f"({statistics.median(whole) * 1000:.0f} ms after exec), 0 pieces hashed")
PY
