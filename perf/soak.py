"""The soak run behind perf/soak.sh: one daemon, 200 torrents, peers coming and going, API
load, a kill -9 and restart every KILL_EVERY seconds, for DURATION seconds. Samples the
daemon's RSS, CPU, open descriptors and threads each second into soak.csv, checks after each
restart that every piece verified before the kill is still verified, and at the end that
nothing grew past its bound. Exit status 1 if a check failed.

    python3 perf/soak.py BIN WORK DURATION KILL_EVERY OUT_PREFIX
"""
import csv
import statistics
import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, "perf")
from procstat import cpu_s, mem_kib  # noqa: E402

BIN, WORK, DURATION, KILL_EVERY, OUT = (sys.argv[1], sys.argv[2], float(sys.argv[3]),
                                        float(sys.argv[4]), sys.argv[5])
TORRENTS = 200
SEEDED = 100            # complete in the daemon's root from the start
PIECE = 16384
SIZE = 16 * PIECE       # 256 KiB each
# Bounds, compared between the first sample after the first minute (the daemon has every
# torrent and its peers by then) and the last minute of the run, per daemon process life:
RSS_GROWTH_MIB = 64     # RSS may not grow by more than this
FD_GROWTH = 64          # open descriptors: peers come and go, but the count may not creep
THREAD_GROWTH = 4       # threads are fixed: the io_uring loop, the API runtime, the hash pool

random.seed(int(os.environ.get("SOAK_SEED", "1")))
root = os.path.join(WORK, "root")
seeds = os.path.join(WORK, "seeds")     # the external seeders' copies of the leeched torrents
state = os.path.join(WORK, "state")
os.makedirs(root)
os.makedirs(seeds)
log = open(os.path.join(WORK, "daemon.log"), "a")
failures = []


def fail(msg):
    print("FAIL:", msg, flush=True)
    failures.append(msg)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torrent_bytes(name, data):
    pieces = b"".join(hashlib.sha1(data[i:i + PIECE]).digest() for i in range(0, len(data), PIECE))
    info = (b"d6:lengthi%de4:name%d:%s12:piece lengthi%de6:pieces%d:%se" %
            (len(data), len(name), name, PIECE, len(pieces), pieces))
    return b"d4:info" + info + b"e", hashlib.sha1(info).hexdigest()


# ---- the torrents -------------------------------------------------------------------------
torrents = []   # (name, info hash, .torrent path, seeded?)
for i in range(TORRENTS):
    name = b"soak%03d.bin" % i
    data = os.urandom(SIZE)
    seeded = i < SEEDED
    open(os.path.join(root if seeded else seeds, name.decode()), "wb").write(data)
    meta, ih = torrent_bytes(name, data)
    path = os.path.join(WORK, name.decode() + ".torrent")
    open(path, "wb").write(meta)
    torrents.append((name.decode(), ih, path, seeded))

tcp_port = free_port()
api = None
daemon = None


def start_daemon():
    global api, daemon
    daemon = subprocess.Popen(
        [BIN, "daemon", "--data-dir", state, "--download-root", root, "--http", "127.0.0.1:0",
         "--tcp-listen", f"127.0.0.1:{tcp_port}", "--sciond", "127.0.0.1:9",
         "--log-level", "WARN"],
        stdout=subprocess.PIPE, stderr=log, text=True)
    line = daemon.stdout.readline()
    m = re.search(r"http://(\S+)", line)
    if not m:
        raise SystemExit(f"daemon did not start: {line!r}; see {WORK}/daemon.log")
    api = "http://" + m.group(1)
    threading.Thread(target=lambda p=daemon: p.stdout.read(), daemon=True).start()


def call(method, path, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(api + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (raw.decode() if path == "/metrics" else
                              json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def pieces_have():
    """info hash -> verified pieces, from /metrics."""
    status, text = call("GET", "/metrics")
    out = {}
    if status != 200:
        return out
    for line in text.splitlines():
        if line.startswith("bts_torrent_pieces{") and 'kind="have"' in line:
            ih = re.search(r'info_hash="([0-9a-f]+)"', line).group(1)
            out[ih] = int(float(line.rsplit(" ", 1)[1]))
    return out


def add(t, peers=()):
    name, ih, path, seeded = t
    import base64
    body = {"torrent_base64": base64.b64encode(open(path, "rb").read()).decode(), "out_dir": ""}
    if peers:
        body["peers"] = list(peers)
    return call("POST", "/api/v1/torrents", body)


start_daemon()
for t in torrents:
    status, v = add(t)
    if status != 201:
        fail(f"add {t[0]}: {status} {v}")

# ---- peers coming and going ---------------------------------------------------------------
stop = threading.Event()
lock = threading.Lock()          # no churn while the daemon is being killed and restarted
counts = {"seeders": 0, "leechers": 0, "leecher_ok": 0, "api": 0, "api_5xx": 0,
          "readds": 0, "kills": 0}
env = dict(os.environ, SCION_DAEMON_ADDRESS="127.0.0.1:1")


def seeder_churn():
    """External single-shot seeders of the leeched torrents, each for 10-30 s; the daemon is
    told of each one through the API."""
    leeched = [t for t in torrents if not t[3]]
    while not stop.is_set():
        t = random.choice(leeched)
        p = subprocess.Popen([BIN, f"-inPath={t[2]}", "-seed=true",
                              f"-file={os.path.join(seeds, t[0])}"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env=env)
        addr = None
        for line in p.stdout:
            m = re.search(r" tcp (\S+)", line)
            if "seeding" in line and m:
                addr = m.group(1)
                break
        if addr:
            counts["seeders"] += 1
            with lock:
                call("POST", f"/api/v1/torrents/{t[1]}/peers", {"peers": [addr]})
        stop.wait(random.uniform(10, 30))
        p.kill()
        p.wait()


def leecher_churn():
    """Single-shot leechers of the seeded torrents from the daemon, one after another."""
    seeded = [t for t in torrents if t[3]]
    n = 0
    while not stop.is_set():
        t = random.choice(seeded)
        out = os.path.join(WORK, f"leech{n % 4}.bin")
        n += 1
        try:
            os.remove(out)
        except FileNotFoundError:
            pass
        r = subprocess.run([BIN, f"-inPath={t[2]}", f"-outPath={out}",
                            f"-peer=127.0.0.1:{tcp_port}", "-seed=false"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                           timeout=120)
        counts["leechers"] += 1
        if r.returncode == 0:
            counts["leecher_ok"] += 1
        stop.wait(random.uniform(1, 5))


def api_load():
    """About 10 calls a second: lists, single torrents, metrics, pause/resume, and now and
    then a completed leeched torrent removed with its data and added again."""
    while not stop.is_set():
        t = random.choice(torrents)
        r = random.random()
        with lock:
            if r < 0.4:
                status, _ = call("GET", "/api/v1/torrents")
            elif r < 0.7:
                status, _ = call("GET", f"/api/v1/torrents/{t[1]}")
            elif r < 0.8:
                status, _ = call("GET", "/metrics")
            elif r < 0.9 and t[3]:
                status, _ = call("POST", f"/api/v1/torrents/{t[1]}/pause")
                call("POST", f"/api/v1/torrents/{t[1]}/resume")
            elif r < 0.93 and not t[3]:
                status, v = call("GET", f"/api/v1/torrents/{t[1]}")
                if status == 200 and v.get("state") == "seeding":
                    status, _ = call("DELETE", f"/api/v1/torrents/{t[1]}?delete_data=true")
                    if status == 204:
                        status, _ = add(t)
                        counts["readds"] += 1
            else:
                status, _ = call("GET", "/api/v1/snapshot")
        counts["api"] += 1
        if isinstance(status, int) and status >= 500:
            counts["api_5xx"] += 1
        stop.wait(0.1)


# ---- sampling -----------------------------------------------------------------------------
# (t, life, rss MiB, cpu % of one core, fds, threads, anonymous rss MiB). VmRSS also counts the
# mapped data files' pages the daemon has touched; RssAnon is the heap alone, where a leak shows.
samples = []
t0 = time.monotonic()


def sample(life, last):
    pid = daemon.pid
    try:
        rss, anon = (k / 1024 for k in mem_kib(pid))
        cpu = cpu_s(pid)
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except (FileNotFoundError, ProcessLookupError):
        return last
    now = time.monotonic()
    pct = 0.0
    if last and last[0] == pid:
        pct = (cpu - last[1]) / (now - last[2]) * 100
    samples.append((now - t0, life, rss, pct, fds, threads, anon))
    return (pid, cpu, now)


workers = [threading.Thread(target=f, daemon=True)
           for f in (seeder_churn, seeder_churn, leecher_churn, api_load)]
for w in workers:
    w.start()

life = 0
last = None
next_kill = t0 + KILL_EVERY
end = t0 + DURATION
while time.monotonic() < end:
    last = sample(life, last)
    if time.monotonic() >= next_kill and time.monotonic() + 30 < end:
        with lock:
            before = pieces_have()
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
            counts["kills"] += 1
            life += 1
            start_daemon()
            # The restarted daemon checks each torrent against its resume data; wait until
            # none is still checking.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                status, v = call("GET", "/api/v1/torrents")
                if status == 200 and not any(x["state"] in ("checking", "") for x in v):
                    break
                time.sleep(0.5)
            after = pieces_have()
            lost = {ih: (n, after.get(ih)) for ih, n in before.items()
                    if after.get(ih) is None or after[ih] < n}
            print(f"kill {counts['kills']} at {time.monotonic() - t0:.0f} s: "
                  f"{sum(before.values())} pieces verified before, {sum(after.values())} after",
                  flush=True)
            if lost:
                fail(f"kill {counts['kills']}: pieces lost {lost}")
        next_kill = time.monotonic() + KILL_EVERY
    time.sleep(1)

stop.set()
for w in workers:
    w.join(timeout=150)
daemon.terminate()
daemon.wait(60)

with open(OUT + ".csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["t_s", "life", "rss_mib", "cpu_pct", "fds", "threads", "rss_anon_mib"])
    for s in samples:
        w.writerow([f"{s[0]:.1f}", s[1], f"{s[2]:.1f}", f"{s[3]:.1f}", s[4], s[5], f"{s[6]:.1f}"])

# Growth: per daemon life, the first sample a minute in against the largest of the life's
# last minute; a life shorter than two minutes is skipped.
summary = []
for lf in sorted({s[1] for s in samples}):
    xs = [s for s in samples if s[1] == lf]
    if xs[-1][0] - xs[0][0] < 120:
        continue
    start = next(s for s in xs if s[0] >= xs[0][0] + 60)
    tail = [s for s in xs if s[0] >= xs[-1][0] - 60]
    g_rss = max(s[2] for s in tail) - start[2]
    # Descriptors come and go in bursts (a leecher's connections, files opened by a re-added
    # torrent): the median of the last minute against the median of the minute after the first,
    # so creep counts and a single burst does not.
    first = [s for s in xs if start[0] <= s[0] < start[0] + 60]
    g_fd = statistics.median(s[4] for s in tail) - statistics.median(s[4] for s in first)
    g_th = max(s[5] for s in tail) - start[5]
    g_anon = max(s[6] for s in tail) - start[6]
    # The second half of the life alone: growth that levels off (warm-up) is small here, a leak
    # is about half of the whole life's.
    mid = next(s for s in xs if s[0] >= (start[0] + xs[-1][0]) / 2)
    g_anon_late = max(s[6] for s in tail) - mid[6]
    summary.append((lf, start[2], g_rss, start[4], g_fd, start[5], g_th, start[6], g_anon,
                    g_anon_late))
    if g_anon > RSS_GROWTH_MIB:
        fail(f"life {lf}: anonymous RSS grew by {g_anon:.0f} MiB (bound {RSS_GROWTH_MIB})")
    if g_rss > RSS_GROWTH_MIB:
        fail(f"life {lf}: RSS grew by {g_rss:.0f} MiB (bound {RSS_GROWTH_MIB})")
    if g_fd > FD_GROWTH:
        fail(f"life {lf}: descriptors grew by {g_fd} (bound {FD_GROWTH})")
    if g_th > THREAD_GROWTH:
        fail(f"life {lf}: threads grew by {g_th} (bound {THREAD_GROWTH})")
if counts["api_5xx"]:
    fail(f"{counts['api_5xx']} API answers were 5xx")

peak = max(samples, key=lambda s: s[2])
print(json.dumps({
    "duration_s": round(samples[-1][0]), "kills": counts["kills"], "counts": counts,
    "peak_rss_mib": round(peak[2], 1),
    "peak_anon_mib": round(max(s[6] for s in samples), 1),
    "max_fds": max(s[4] for s in samples), "max_threads": max(s[5] for s in samples),
    "mean_cpu_pct": round(sum(s[3] for s in samples) / len(samples), 1),
    "lives": [{"life": s[0], "rss_mib_at_1min": round(s[1], 1), "rss_growth_mib": round(s[2], 1),
               "fds_at_1min": s[3], "fd_growth": s[4], "threads": s[5], "thread_growth": s[6],
               "anon_mib_at_1min": round(s[7], 1), "anon_growth_mib": round(s[8], 1),
               "anon_growth_second_half_mib": round(s[9], 1)}
              for s in summary],
    "failures": failures,
}, indent=1), flush=True)
sys.exit(1 if failures else 0)
