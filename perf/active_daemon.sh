#!/usr/bin/env bash
# Cost of active peers in one daemon process: the real `daemon` runs in 1-ff00:0:111 of a local
# SCION network (scion-testnet, three-paths) with one complete SIZE_MIB torrent added through
# the HTTP API. Once it seeds and has idled IDLE_SECS (idle RSS, RssAnon and CPU recorded), K of
# our single-shot leechers download the torrent from it at once over QUIC/SCION (odd-numbered
# ones from 1-ff00:0:111, even-numbered from 1-ff00:0:112), while the daemon's VmRSS and RssAnon
# are sampled every 100 ms. Per K: peak minus idle divided by K (MiB per active peer), the
# daemon's CPU s (utime + stime, /proc/PID/stat) per GiB it uploaded (bytes_up from the API),
# and the wall time until every leecher is done. Every output is compared with the data (cmp).
# A fresh daemon for every K and runtime count (`daemon --runtimes N`, RUNTIMES) in every round;
# ROUNDS rounds; medians.
#   PEERS="1 4 8" RUNTIMES="1" SIZE_MIB=256 IDLE_SECS=5 ROUNDS=3 perf/active_daemon.sh
#   PEERS=8 RUNTIMES="1 2" perf/active_daemon.sh    # the daemon on 1 and on 2 runtimes
# BIN= / TESTNET= name the binaries; by default target/release's are copied to the scratch dir
# first (built only if missing), so a rebuild meanwhile does not change what runs.
# Disk: (1 + max K) x SIZE_MIB in a mktemp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
tn=
# KEEP_WORK=1 keeps the scratch dir (daemon and leecher logs) and prints its path.
trap '[[ -z "$tn" ]] || kill "$tn" 2>/dev/null; wait 2>/dev/null; if [[ -n "${KEEP_WORK:-}" ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi' EXIT

missing=
[[ -n "${BIN:-}" || -x target/release/bittorrent-over-scion ]] || missing=1
[[ -n "${TESTNET:-}" || -x target/release/scion-testnet ]] || missing=1
[[ -z "$missing" ]] || cargo build --release --quiet -p bittorrent-over-scion -p scion-testnet \
  --bin bittorrent-over-scion --bin scion-testnet
[[ -n "${BIN:-}" ]] || { cp target/release/bittorrent-over-scion "$work/"; BIN=$work/bittorrent-over-scion; }
[[ -n "${TESTNET:-}" ]] || { cp target/release/scion-testnet "$work/"; TESTNET=$work/scion-testnet; }

"$TESTNET" --topology three-paths --state "$work/state.json" >"$work/testnet.log" 2>&1 &
tn=$!
for _ in $(seq 240); do grep -q "testnet ready" "$work/testnet.log" && break; sleep 0.5; done
grep -q "testnet ready" "$work/testnet.log" || { cat "$work/testnet.log" >&2; exit 1; }

python3 - "$BIN" "$work" "${PEERS:-1 4 8}" "${SIZE_MIB:-256}" "${IDLE_SECS:-5}" "${ROUNDS:-3}" "${RUNTIMES:-1}" <<'PY'
import base64, json, os, socket, statistics, subprocess, sys, threading, time
sys.path.insert(0, "perf")
from procstat import call, cpu_s, mem_kib

bin_, work, peers, size_mib, idle, rounds = sys.argv[1], sys.argv[2], [int(k) for k in sys.argv[3].split()], int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
runtimes = [int(n) for n in sys.argv[7].split()]
MiB, GiB = 1 << 20, 1 << 30
AS_D, AS_B = "1-ff00:0:111", "1-ff00:0:112"
sciond = {ia: a["daemon"] for ia, a in json.load(open(os.path.join(work, "state.json")))["ases"].items()}

def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

root = os.path.join(work, "root")
os.makedirs(root)
data = os.path.join(root, "data.bin")
with open(data, "wb") as f:
    for _ in range(size_mib):
        f.write(os.urandom(MiB))
torrent = os.path.join(work, "data.torrent")
subprocess.run([bin_, "create", data, "-o", torrent], check=True, stdout=subprocess.DEVNULL)
torrent_b64 = base64.b64encode(open(torrent, "rb").read()).decode()

def measure(r, k, n):
    """One fresh daemon on n runtimes, idle, then k leechers at once. Returns a dict of figures."""
    local = f"{AS_D},[127.0.0.1]:{free_udp_port()}"
    log = open(os.path.join(work, f"daemon.{r}.{n}.{k}.log"), "w")
    d = subprocess.Popen([bin_, "daemon", "--data-dir", os.path.join(work, f"state.{r}.{n}.{k}"),
                          "--download-root", root, "--http", "127.0.0.1:0", "--local", local,
                          "--sciond", sciond[AS_D], "--log-level", "INFO", "--runtimes", str(n)],
                         stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = d.stdout.readline()
        if "http://" not in line:
            sys.exit(f"daemon did not start, see {log.name}: {open(log.name).read()[-2000:]}")
        api = "http://" + line.split("http://")[1].split()[0]
        ih = call(api, "POST", "/api/v1/torrents", {"torrent_base64": torrent_b64, "out_dir": ""})["info_hash"]
        while (t := call(api, "GET", f"/api/v1/torrents/{ih}"))["state"] != "seeding":
            if t["state"] == "error":
                sys.exit(f"torrent in error: {t['error']}")
            time.sleep(0.2)
        time.sleep(3)  # rates settle to zero
        c0, t0 = cpu_s(d.pid), time.monotonic()
        time.sleep(idle)
        idle_cpu = (cpu_s(d.pid) - c0) / (time.monotonic() - t0) * 100
        idle_rss, idle_anon = mem_kib(d.pid)

        peak, done = [idle_rss, idle_anon], threading.Event()
        def sample():
            while not done.is_set():
                rss, anon = mem_kib(d.pid)
                peak[0], peak[1] = max(peak[0], rss), max(peak[1], anon)
                time.sleep(0.1)
        sampler = threading.Thread(target=sample)
        sampler.start()
        up0, c0, t0 = call(api, "GET", f"/api/v1/torrents/{ih}")["bytes_up"], cpu_s(d.pid), time.monotonic()
        leechers = []
        for i in range(1, k + 1):
            ia = AS_D if i % 2 else AS_B
            out = os.path.join(work, f"out{i}.bin")
            llog = os.path.join(work, f"leech.{r}.{n}.{k}.{i}.log")
            p = subprocess.Popen([bin_, f"-inPath={torrent}", f"-outPath={out}", f"-peer={local}",
                                  "-seed=false", "-logLevel=WARN"],
                                 env=dict(os.environ, SCION_DAEMON_ADDRESS=sciond[ia]),
                                 stdout=open(llog, "w"), stderr=subprocess.STDOUT)
            leechers.append((p, out, llog, ia))
        for p, *_ in leechers:
            p.wait(timeout=900)
        wall, cpu = time.monotonic() - t0, cpu_s(d.pid) - c0
        done.set()
        sampler.join()
        for p, out, llog, ia in leechers:
            if p.returncode != 0 or subprocess.run(["cmp", "-s", data, out]).returncode != 0:
                sys.exit(f"FAILED: round {r + 1}, K={k}, leecher in {ia} exited {p.returncode} or "
                         f"its output differs from the data; its log:\n{open(llog).read()[-3000:]}")
            os.remove(out)
        time.sleep(1.5)  # the API's snapshot is published once a second
        up = call(api, "GET", f"/api/v1/torrents/{ih}")["bytes_up"] - up0
        after_rss, after_anon = mem_kib(d.pid)
    finally:
        d.terminate()
        d.wait(60)
    return dict(idle_rss=idle_rss, idle_anon=idle_anon, idle_cpu=idle_cpu, peak_rss=peak[0],
                peak_anon=peak[1], after_rss=after_rss, after_anon=after_anon, wall=wall, cpu=cpu,
                up=up, rss_per_peer=(peak[0] - idle_rss) / 1024 / k,
                anon_per_peer=(peak[1] - idle_anon) / 1024 / k, cpu_per_gib=cpu / (up / GiB),
                mbit=k * size_mib * MiB * 8 / wall / 1e6)

rows = [(n, k) for n in runtimes for k in peers]
res = {row: [] for row in rows}
for r in range(rounds):
    for n, k in rows:
        m = measure(r, k, n)
        res[(n, k)].append(m)
        print(f"round {r + 1}, {n} runtime(s), K={k}: idle RSS {m['idle_rss'] / 1024:.1f} MiB (anon {m['idle_anon'] / 1024:.1f}), "
              f"idle CPU {m['idle_cpu']:.2f} %; peak RSS {m['peak_rss'] / 1024:.1f} MiB (anon "
              f"{m['peak_anon'] / 1024:.1f}), after {m['after_rss'] / 1024:.1f} (anon {m['after_anon'] / 1024:.1f}); "
              f"{m['wall']:.2f} s wall, daemon CPU {m['cpu']:.2f} s for {m['up'] / MiB:.0f} MiB uploaded "
              f"({k} x {size_mib} MiB wanted)", flush=True)

med = lambda k, key: statistics.median(m[key] for m in res[k])
runs = lambda k, key, f: " / ".join(f % m[key] for m in res[k])
print(f"\nDaemon in {AS_D}, one {size_mib} MiB torrent, K leechers at once over QUIC/SCION "
      f"(odd ones in {AS_D}, even ones in {AS_B}); medians of {rounds} rounds, {os.cpu_count()} cores\n")
print("| runtimes | K | idle RSS / RssAnon | peak RSS / RssAnon | RSS per active peer | RssAnon per active peer "
      "| daemon CPU s per GiB uploaded | wall | aggregate |")
print("|---|---|---|---|---|---|---|---|---|")
for k in rows:
    print(f"| {k[0]} | {k[1]} | {med(k, 'idle_rss') / 1024:.1f} / {med(k, 'idle_anon') / 1024:.1f} MiB "
          f"| {med(k, 'peak_rss') / 1024:.1f} / {med(k, 'peak_anon') / 1024:.1f} MiB "
          f"| {med(k, 'rss_per_peer'):.1f} MiB ({runs(k, 'rss_per_peer', '%.1f')}) "
          f"| {med(k, 'anon_per_peer'):.1f} MiB ({runs(k, 'anon_per_peer', '%.1f')}) "
          f"| {med(k, 'cpu_per_gib'):.2f} ({runs(k, 'cpu_per_gib', '%.2f')}) "
          f"| {med(k, 'wall'):.2f} s ({runs(k, 'wall', '%.2f')}) | {med(k, 'mbit'):.0f} Mbit/s |")
all_ = [m for k in rows for m in res[k]]
print(f"\nidle with the torrent (all {len(all_)} daemons): CPU median "
      f"{statistics.median(m['idle_cpu'] for m in all_):.2f} % of one core over {idle:.0f} s")
PY
