#!/usr/bin/env bash
# Resource bound under many hostile TCP peers (not in CI; results in README "Robustness" and
# FUZZING.md). Starts our single-shot seeder (TCP only), opens N connections to it (half idle
# after the handshake, half flooding requests, cancels and haves without ever reading),
# samples the seeder's VmRSS, then checks that an honest leecher still downloads
# byte-identically while the connections are open and that the seeder is still up.
#
#   [BIN=path/to/bittorrent-over-scion] perf/load_peers.sh [--peers N] [--size-mib M] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."

peers=1000
size_mib=64
seconds=20
while [ $# -gt 0 ]; do
    case "$1" in
    --peers) peers="$2"; shift 2 ;;
    --size-mib) size_mib="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    *) echo "usage: $0 [--peers N] [--size-mib M] [--seconds S]" >&2; exit 2 ;;
    esac
done
ulimit -n $((peers * 2 + 256))

# BIN overrides the binary (default: a release build).
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
fi
bin="${BIN:-${CARGO_TARGET_DIR:-target}/release/bittorrent-over-scion}"
work=$(mktemp -d)
seeder_pid=""
cleanup() {
    [ -n "$seeder_pid" ] && kill "$seeder_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

head -c $((size_mib << 20)) /dev/urandom >"$work/data.bin"
"$bin" create "$work/data.bin" -o "$work/x.torrent" --piece-length 262144 >/dev/null
info_hash=$("$bin" info "$work/x.torrent" | sed -n 's/^info hash: *//p')
SCION_DAEMON_ADDRESS=127.0.0.1:1 "$bin" -inPath="$work/x.torrent" -seed=true \
    -file="$work/data.bin" >"$work/seeder.out" 2>"$work/seeder.err" &
seeder_pid=$!
for _ in $(seq 100); do
    grep -q seeding "$work/seeder.out" 2>/dev/null && break
    sleep 0.1
done
addr=$(sed -n 's/.* tcp \([^ ]*\).*/\1/p' "$work/seeder.out" | head -n1)
[ -n "$addr" ] || { echo "seeder did not start" >&2; cat "$work/seeder.err" >&2; exit 1; }
rss() { awk '/VmRSS/ { print $2 }' "/proc/$seeder_pid/status"; }
echo "seeder pid $seeder_pid at $addr; RSS at start $(rss) KiB"

# The hostile peers: one Python process with non-blocking sockets (never reads).
/usr/bin/python3 - "$addr" "$info_hash" "$peers" "$seconds" "$size_mib" <<'PY' &
import os, socket, struct, sys, time
addr, ih, n, secs, size_mib = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
host, port = addr.rsplit(":", 1)
pieces = (size_mib << 20) // 262144
def hs(i):
    return b"\x13BitTorrent protocol" + bytes([0, 0, 0, 0, 0, 0x10, 0, 4]) + ih + b"-LD0001-" + b"%012d" % i
flood = bytearray(struct.pack(">IB", 1, 2))
for r in range(20000):
    idx, beg = r % pieces, (r % 16) * 16384
    flood += struct.pack(">IBIII", 13, 6, idx, beg, 16384)
    flood += struct.pack(">IBIII", 13, 8, idx, beg, 16384)
    flood += struct.pack(">IBI", 5, 4, idx)
conns = []
for i in range(n):
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(hs(i))
    s.setblocking(False)
    conns.append((s, i % 2 == 1, memoryview(bytes(flood))))
print(f"load: {n} connections open ({n // 2} flooding)", flush=True)
end = time.time() + secs
closed = 0
while time.time() < end:
    for k, (s, floods, buf) in enumerate(conns):
        if not floods or s is None:
            continue
        try:
            sent = s.send(buf if len(buf) else memoryview(bytes(flood)))
            conns[k] = (s, floods, (buf if len(buf) else memoryview(bytes(flood)))[sent:])
        except BlockingIOError:
            pass
        except OSError:
            conns[k] = (None, floods, buf)
            closed += 1
    time.sleep(0.01)
print(f"load: done; {closed} flooding connections were closed by the seeder", flush=True)
time.sleep(600)  # keep the sockets open until killed
PY
load_pid=$!
peak=0
for _ in $(seq "$seconds"); do
    sleep 1
    r=$(rss)
    [ "$r" -gt "$peak" ] && peak=$r
done
echo "seeder RSS under load: now $(rss) KiB, peak $peak KiB (sampled each second)"
start=$(date +%s.%N)
SCION_DAEMON_ADDRESS=127.0.0.1:1 "$bin" -inPath="$work/x.torrent" -outPath="$work/out.bin" \
    -peer="$addr" -seed=false >"$work/leech.out" 2>"$work/leech.err" ||
    { echo "FAIL: the honest leecher failed" >&2; tail "$work/leech.err" >&2; kill "$load_pid"; exit 1; }
end=$(date +%s.%N)
kill "$load_pid" 2>/dev/null || true
cmp "$work/data.bin" "$work/out.bin" || { echo "FAIL: download differs" >&2; exit 1; }
kill -0 "$seeder_pid" || { echo "FAIL: the seeder died" >&2; exit 1; }
echo "honest leecher: ${size_mib} MiB byte-identical in $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s under load; seeder still up, RSS $(rss) KiB (peak $peak KiB)"
