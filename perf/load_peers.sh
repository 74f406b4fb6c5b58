#!/usr/bin/env bash
# Resource bound under many hostile peers (not in CI; results in README "Robustness" and
# FUZZING.md). Starts our single-shot seeder, opens N connections to it (half idle after the
# handshake, half flooding requests, cancels and haves without ever reading), samples the
# seeder's VmRSS, then checks that an honest leecher still downloads byte-identically while
# the connections are open and that the seeder is still up.
#
# TCP (default): the seeder runs TCP only, the peers are one Python process.
# --quic: QUIC/SCION on the local SCION network (scion-testnet, topology two-as): the seeder
# in one AS, the N lanes from the same AS (examples/quic_load.rs, quinn over SCION), the
# honest leecher in the other AS.
#
#   [BIN=path/to/bittorrent-over-scion] perf/load_peers.sh [--quic] [--peers N] [--size-mib M] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."

peers=1000
size_mib=64
seconds=20
quic=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quic) quic=1; shift ;;
    --peers) peers="$2"; shift 2 ;;
    --size-mib) size_mib="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    *) echo "usage: $0 [--quic] [--peers N] [--size-mib M] [--seconds S]" >&2; exit 2 ;;
    esac
done
ulimit -n $((peers * 2 + 256))

# BIN overrides the binary (default: a release build).
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
fi
if [ "$quic" = 1 ]; then
    cargo build --release --quiet -p scion-testnet
    cargo build --release --quiet --example quic_load
fi
bin="${BIN:-${CARGO_TARGET_DIR:-target}/release/bittorrent-over-scion}"
work=$(mktemp -d)
seeder_pid=""
testnet_pid=""
cleanup() {
    [ -n "$seeder_pid" ] && kill "$seeder_pid" 2>/dev/null || true
    [ -n "$testnet_pid" ] && kill "$testnet_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

head -c $((size_mib << 20)) /dev/urandom >"$work/data.bin"
"$bin" create "$work/data.bin" -o "$work/x.torrent" --piece-length 262144 >/dev/null
info_hash=$("$bin" info "$work/x.torrent" | sed -n 's/^info hash: *//p')
if [ "$quic" = 1 ]; then
    tdir=${CARGO_TARGET_DIR:-target}/release
    "$tdir/scion-testnet" --topology two-as --state "$work/state.json" >"$work/testnet.log" 2>&1 &
    testnet_pid=$!
    for _ in $(seq 1 120); do grep -q "testnet ready" "$work/testnet.log" 2>/dev/null && break; sleep 0.5; done
    grep -q "testnet ready" "$work/testnet.log" || { cat "$work/testnet.log" >&2; exit 1; }
    ases=($(python3 -c "import json,sys; print(' '.join(sorted(json.load(open(sys.argv[1]))['ases'])))" "$work/state.json"))
    daemon() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ases'][sys.argv[2]]['daemon'])" "$work/state.json" "$1"; }
    seed_daemon=$(daemon "${ases[0]}")
    leech_daemon=$(daemon "${ases[1]}")
    SCION_DAEMON_ADDRESS=$seed_daemon "$bin" -inPath="$work/x.torrent" -seed=true \
        -file="$work/data.bin" -local="${ases[0]},[127.0.0.1]:0" >"$work/seeder.out" 2>"$work/seeder.err" &
else
    SCION_DAEMON_ADDRESS=127.0.0.1:1 "$bin" -inPath="$work/x.torrent" -seed=true \
        -file="$work/data.bin" >"$work/seeder.out" 2>"$work/seeder.err" &
fi
seeder_pid=$!
for _ in $(seq 100); do
    grep -q seeding "$work/seeder.out" 2>/dev/null && break
    sleep 0.1
done
if [ "$quic" = 1 ]; then
    addr=$(sed -n 's/^seeding.* as \(.*\)$/\1/p' "$work/seeder.out" | head -n1)
else
    addr=$(sed -n 's/.* tcp \([^ ]*\).*/\1/p' "$work/seeder.out" | head -n1)
fi
[ -n "$addr" ] || { echo "seeder did not start" >&2; cat "$work/seeder.err" >&2; exit 1; }
rss() { awk '/VmRSS/ { print $2 }' "/proc/$seeder_pid/status"; }
echo "seeder pid $seeder_pid at $addr; RSS at start $(rss) KiB"

if [ "$quic" = 1 ]; then
    # The hostile lanes: quinn over SCION from the seeder's AS (no router in between).
    "${CARGO_TARGET_DIR:-target}/release/examples/quic_load" --sciond "$seed_daemon" --target "$addr" \
        --info-hash "$info_hash" --pieces $(((size_mib << 20) / 262144)) --peers "$peers" &
    load_pid=$!
else
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
fi
# RSS sampled each second for the whole run (the load, then the honest download).
( while kill -0 "$seeder_pid" 2>/dev/null; do
    { awk '/VmRSS/ { print $2 }' "/proc/$seeder_pid/status" >>"$work/rss"; } 2>/dev/null || true
    sleep 1
  done ) &
peak() { sort -n "$work/rss" | tail -n1; }
sleep "$seconds"
echo "seeder RSS under load: now $(rss) KiB, peak $(peak) KiB after ${seconds} s"
start=$(date +%s.%N)
SCION_DAEMON_ADDRESS=${leech_daemon:-127.0.0.1:1} "$bin" -inPath="$work/x.torrent" -outPath="$work/out.bin" \
    -peer="$addr" -seed=false >"$work/leech.out" 2>"$work/leech.err" ||
    { echo "FAIL: the honest leecher failed" >&2; tail "$work/leech.err" >&2; kill "$load_pid"; exit 1; }
end=$(date +%s.%N)
kill "$load_pid" 2>/dev/null || true
cmp "$work/data.bin" "$work/out.bin" || { echo "FAIL: download differs" >&2; exit 1; }
kill -0 "$seeder_pid" || { echo "FAIL: the seeder died" >&2; exit 1; }
echo "honest leecher: ${size_mib} MiB byte-identical in $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s under load; seeder still up, RSS $(rss) KiB (peak $(peak) KiB over the whole run)"
