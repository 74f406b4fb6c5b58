#!/usr/bin/env bash
# Idle cost of many torrents in one daemon process: TORRENTS tiny torrents (one 16 KiB piece
# each, complete on disk) are added through the HTTP API; once all seed, the daemon idles for
# IDLE_SECS with nobody connected. Prints the daemon's RSS per torrent and its idle CPU (from
# /proc/PID/stat), ROUNDS times, and the medians. No SCION network is needed (TCP only).
#   TORRENTS=1000 IDLE_SECS=30 ROUNDS=3 perf/idle_daemon.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin bittorrent-over-scion
bin=$PWD/target/release/bittorrent-over-scion
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

python3 - "$bin" "$work" "${TORRENTS:-1000}" "${IDLE_SECS:-30}" "${ROUNDS:-3}" <<'PY'
import base64, hashlib, json, os, statistics, subprocess, sys, time
sys.path.insert(0, "perf")
from procstat import call, cpu_s, mem_kib

bin_, work, n, idle, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])

def torrent(name, data):
    info = (b"d6:lengthi%de4:name%d:%s12:piece lengthi16384e6:pieces20:%se" %
            (len(data), len(name), name, hashlib.sha1(data).digest()))
    return b"d4:info" + info + b"e"

cpus, per_torrent = [], []
for r in range(rounds):
    root = os.path.join(work, f"root{r}")
    os.makedirs(root)
    p = subprocess.Popen([bin_, "daemon", "--data-dir", os.path.join(work, f"state{r}"),
                          "--download-root", root, "--http", "127.0.0.1:0",
                          "--sciond", "127.0.0.1:9", "--log-level", "WARN"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    api = "http://" + p.stdout.readline().split("http://")[1].split()[0]
    base = mem_kib(p.pid)[0]
    for i in range(n):
        name = b"t%05d.bin" % i
        data = os.urandom(16384)
        open(os.path.join(root, name.decode()), "wb").write(data)
        call(api, "POST", "/api/v1/torrents",
             {"torrent_base64": base64.b64encode(torrent(name, data)).decode(), "out_dir": ""})
    while True:
        listed = call(api, "GET", "/api/v1/torrents")
        if len(listed) == n and all(t["state"] == "seeding" for t in listed):
            break
        time.sleep(0.5)
    time.sleep(3)  # rates settle to zero
    loaded = mem_kib(p.pid)[0]
    t0, c0 = time.monotonic(), cpu_s(p.pid)
    time.sleep(idle)
    cpu = (cpu_s(p.pid) - c0) / (time.monotonic() - t0) * 100
    after = mem_kib(p.pid)[0]
    cpus.append(cpu)
    per_torrent.append((loaded - base) / n)
    print(f"round {r + 1}: RSS {base} KiB empty, {loaded} KiB with {n} torrents, {after} KiB after "
          f"{idle:.0f} s idle; {(loaded - base) / n:.0f} KiB per torrent; idle CPU {cpu:.2f} % of one core",
          flush=True)
    p.terminate()
    p.wait(60)

print(f"median of {rounds}: {statistics.median(per_torrent):.0f} KiB RSS per torrent, "
      f"idle CPU {statistics.median(cpus):.2f} % of one core")
PY
