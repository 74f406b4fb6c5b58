#!/usr/bin/env bash
# Side-by-side performance measurements (see perf/README.md, results in perf/RESULTS.md).
#
#   perf/bench.sh                      # everything, default sizes
#   SIZE_MIB=128 BULK_MIB=32 QUINN_MIB=256 RUNS=1 perf/bench.sh   # quick run
#
# Env:  RUNS=3           runs per measurement (the median is reported)
#       QUINN_MIB=1024   bytes moved by the quinn loopback reference
#       BW_DURATION=5    seconds per bwtest run
#       SIZE_MIB=1024    torrent size for the download comparison (b)
#       BULK_MIB=256     torrent size for the bulk-seeding test (c); disk: (LEECHERS+1) x BULK_MIB
#       LEECHERS=8       leechers at once in (c)
#       BULK_RUNTIMES="1 2"   seeder io_uring runtimes (-runtimes) measured in (c)
#       SECTIONS="hash transport download bulk multipath"   which parts to run
#       SKIP_BUILD=1     do not run cargo build
#       TRANSMISSION=0   skip the Transmission seeder comparison even if installed
#       BIN_DIR=target/release   where the binaries are; TESTNET=path overrides scion-testnet
#       WORK=dir         scratch dir (default target/perf-work; deleted at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
QUINN_MIB=${QUINN_MIB:-1024}
BW_DURATION=${BW_DURATION:-5}
SIZE_MIB=${SIZE_MIB:-1024}
BULK_MIB=${BULK_MIB:-256}
LEECHERS=${LEECHERS:-8}
BULK_RUNTIMES=${BULK_RUNTIMES:-"1 2"}
SECTIONS=${SECTIONS:-"hash transport download bulk multipath"}
TRANSMISSION=${TRANSMISSION:-1}
WORK=${WORK:-$ROOT/target/perf-work}
BIN_DIR=${BIN_DIR:-$ROOT/target/release}
BIN=$BIN_DIR/bittorrent-over-scion
TESTNET=${TESTNET:-$BIN_DIR/scion-testnet}
QUINN=$BIN_DIR/examples/quinn_loopback
PY=/usr/bin/python3
CLK_TCK=$(getconf CLK_TCK)
PAGE_KIB=$(($(getconf PAGESIZE) / 1024))
AS_A=1-ff00:0:111
AS_B=1-ff00:0:112

has() { [[ " $SECTIONS " == *" $1 "* ]]; }
log() { echo "[$(date -u +%T)] $*" >&2; }

if [[ -z "${SKIP_BUILD:-}" ]]; then
  # --bins too: a target-selection flag alone (--examples) would build only the examples
  log "cargo build --release --workspace --bins --examples"
  cargo build --release --workspace --bins --examples --quiet
fi
[[ -x /usr/bin/time ]] || { log "installing Debian time"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }

rm -rf "$WORK"
mkdir -p "$WORK"
RES=$WORK/results.tsv # section \t name \t metric \t value
: >"$RES"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "${KEEP_WORK:-}" ]] || rm -rf "$WORK"
}
trap cleanup EXIT

rec() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RES"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }
# utime+stime of a live process, seconds
cpu_s() { awk -v t="$CLK_TCK" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# background sampler: peak RssAnon and VmRSS (KiB) of pid $1 into file $2
rss_sampler() {
  local pid=$1 out=$2 anon=0 tot=0 a t
  while kill -0 "$pid" 2>/dev/null; do
    a=$(awk '/^RssAnon:/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    t=$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    ((${a:-0} > anon)) && anon=$a
    ((${t:-0} > tot)) && tot=$t
    # atomic: a reader never sees a truncated file
    echo "$anon $tot" >"$out.tmp" && mv -f "$out.tmp" "$out"
    sleep 0.1
  done
}
wait_port() { # udp|tcp port
  for _ in $(seq 1 100); do
    if [[ $1 == udp ]]; then ss -Hlun "sport = :$2" | grep -q . && return 0
    else ss -Hltn "sport = :$2" | grep -q . && return 0; fi
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- testnet
TN_PID=
TN_TOPO=
start_testnet() { # [topology]: (re)starts the local SCION network unless it already runs that one
  local topo=${1:-three-paths}
  [[ -n "$TN_PID" && "$TN_TOPO" == "$topo" ]] && return
  if [[ -n "$TN_PID" ]]; then kill "$TN_PID" 2>/dev/null || true; wait "$TN_PID" 2>/dev/null || true; fi
  log "starting scion-testnet ($topo)"
  rm -f "$WORK/state.json"
  "$TESTNET" --topology "$topo" --state "$WORK/state.json" >"$WORK/testnet.log" 2>&1 &
  TN_PID=$!
  TN_TOPO=$topo
  PIDS+=("$TN_PID")
  for _ in $(seq 1 240); do grep -q "testnet ready" "$WORK/testnet.log" 2>/dev/null && break; sleep 0.5; done
  grep -q "testnet ready" "$WORK/testnet.log" || { cat "$WORK/testnet.log" >&2; TN_PID=; return 1; }
}
daemon() { $PY -c "import json,sys; print(json.load(open(sys.argv[1]))['ases'][sys.argv[2]]['daemon'])" "$WORK/state.json" "$1"; }
NO_DAEMON=127.0.0.1:1 # nothing listens: our binary runs TCP-only

PORT=43100
next_port() { PORT=$((PORT + 7)); echo $PORT; }

# ---------------------------------------------------------------- (h) hashing
if has hash; then
  log "(h) SHA-1 on 256 KiB pieces: openssl speed vs our hash function (criterion), x $RUNS"
  for _ in $(seq "$RUNS"); do
    # "sha1  ...  <kB/s at 262144 bytes>" (openssl's k = 1000 bytes)
    o=$(openssl speed -bytes 262144 -seconds 2 sha1 2>/dev/null | awk '$1=="sha1" {sub(/k$/, "", $NF); print $NF}')
    [[ -n "$o" ]] && rec hash openssl_sha1 mb_per_s "$(echo "$o / 1000" | bc -l | xargs printf %.0f)"
  done
  for _ in $(seq "$RUNS"); do
    # criterion: "thrpt:  [low mid high]"; take mid, in MiB/s or GiB/s -> MB/s
    line=$(cargo bench --quiet --bench sha1 -- --warm-up-time 1 --measurement-time 2 btscion_pool_fn 2>/dev/null | grep -m1 thrpt || true)
    v=$(echo "$line" | sed -n 's/.*thrpt: *\[[^ ]* [^ ]* \([0-9.]*\) \([MG]\)iB\/s.*/\1 \2/p')
    if [[ -n "$v" ]]; then
      read -r num unit <<<"$v"
      mult=$([[ $unit == G ]] && echo 1073.741824 || echo 1.048576)
      rec hash ours_sha1 mb_per_s "$(echo "$num * $mult" | bc -l | xargs printf %.0f)"
    fi
  done
fi

# ---------------------------------------------------------------- (a) transport
bwtest_run() { # server_as client_as paths -> prints goodput
  local sas=$1 cas=$2 paths=$3 port out
  port=$(next_port)
  SCION_DAEMON_ADDRESS=$(daemon "$sas") "$BIN" bwtest --server --local "$sas,[127.0.0.1]:$port" >"$WORK/bwserver.log" 2>&1 &
  local spid=$!
  PIDS+=("$spid")
  wait_port udp "$port" || sleep 1
  out=$(SCION_DAEMON_ADDRESS=$(daemon "$cas") timeout $((BW_DURATION + 60)) "$BIN" bwtest --peer "$sas,[127.0.0.1]:$port" \
    --duration "$BW_DURATION" --paths "$paths" 2>&1) || true
  kill "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  echo "$out" >>"$WORK/bwtest.log"
  echo "$out" | sed -n 's/.*total goodput: *\([0-9.]*\).*/\1/p' | tail -1
}

# RUNS bwtest runs, each recorded as goodput_mbit. args: section name server_as client_as paths
bwtest_series() {
  local g
  for _ in $(seq "$RUNS"); do
    g=$(bwtest_run "$3" "$4" "$5")
    log "  $2: ${g:-FAILED} Mbit/s"
    if [[ -n "$g" ]]; then rec "$1" "$2" goodput_mbit "$g"; fi
  done
}

if has transport; then
  log "(a) quinn loopback reference, ${QUINN_MIB} MiB x $RUNS"
  [[ -x "$QUINN" ]] || log "  $QUINN missing (cargo build --release --examples)"
  for _ in $(seq "$RUNS"); do
    [[ -x "$QUINN" ]] || break
    g=$("$QUINN" "$QUINN_MIB" | sed -n 's/.*goodput_mbit=\([0-9.]*\).*/\1/p')
    log "  quinn, one process: $g Mbit/s"
    rec transport quinn_loopback goodput_mbit "$g"
    # The fair reference: quinn's server and client as two processes, as our bwtest runs.
    "$QUINN" server 127.0.0.1:0 >"$WORK/quinn-server.log" 2>&1 &
    qpid=$!
    for _ in $(seq 50); do grep -q listening "$WORK/quinn-server.log" && break; sleep 0.1; done
    qaddr=$(sed -n 's/^listening //p' "$WORK/quinn-server.log")
    g=$("$QUINN" client "$qaddr" "$QUINN_MIB" | sed -n 's/.*goodput_mbit=\([0-9.]*\).*/\1/p')
    wait "$qpid" || true
    log "  quinn, two processes: $g Mbit/s"
    rec transport quinn_two_process goodput_mbit "$g"
  done
  start_testnet
  for spec in "same_as $AS_A $AS_A 1" "cross_as_1path $AS_B $AS_A 1" "cross_as_3paths $AS_B $AS_A 3"; do
    read -r name sas cas paths <<<"$spec"
    log "(a) bwtest $name (server $sas, client $cas, --paths $paths) x $RUNS"
    bwtest_series transport "ours_$name" "$sas" "$cas" "$paths"
  done
fi

# ---------------------------------------------------------------- helpers for torrents
make_data() { # path MiB
  head -c $(($2 * 1024 * 1024)) /dev/urandom >"$1"
}

# Runs our seeder in the background: sets SEED_PID. args: torrent data port as [runtimes]
start_our_seeder() {
  SCION_DAEMON_ADDRESS=$(daemon "$4") "$BIN" -inPath="$1" -seed=true -file="$2" \
    -local="$4,[127.0.0.1]:$3" -runtimes="${5:-1}" -logLevel=WARN >"$WORK/seeder.$3.log" 2>&1 &
  SEED_PID=$!
  PIDS+=("$SEED_PID")
  wait_port udp "$3" || sleep 1
}

# Our seeder without SCION, BitTorrent over TCP on 127.0.0.1:port: sets SEED_PID. args: torrent data port
start_our_tcp_seeder() {
  SCION_DAEMON_ADDRESS=$NO_DAEMON "$BIN" -inPath="$1" -seed=true -file="$2" \
    -tcpListen="127.0.0.1:$3" -logLevel=WARN >"$WORK/seeder.$3.log" 2>&1 &
  SEED_PID=$!
  PIDS+=("$SEED_PID")
  wait_port tcp "$3" || sleep 1
}

# One of our leechers under /usr/bin/time with an RSS sampler. args: torrent out peer daemon tag
# writes $WORK/leech.<tag>.{time,rss,log}
our_leecher() {
  local torrent=$1 out=$2 peer=$3 daemon_addr=$4 tag=$5
  SCION_DAEMON_ADDRESS=$daemon_addr /usr/bin/time -f "%e %U %S %M" -o "$WORK/leech.$tag.time" \
    "$BIN" -inPath="$torrent" -outPath="$out" -peer="$peer" -seed=false -logLevel=WARN \
    >"$WORK/leech.$tag.log" 2>&1 &
  local tpid=$! cpid=
  for _ in $(seq 1 50); do cpid=$(pgrep -P "$tpid" | head -1) && [[ -n "$cpid" ]] && break; sleep 0.02; done
  [[ -n "$cpid" ]] && rss_sampler "$cpid" "$WORK/leech.$tag.rss" &
  wait "$tpid"
}

# One download with our seeder and leecher; records under section download, name $1.
# args: name transport(scion|tcp) run
our_download() {
  local name=$1 transport=$2 i=$3 port peer daemon_addr
  port=$(next_port)
  if [[ $transport == scion ]]; then
    start_our_seeder "$WORK/dl/data.torrent" "$WORK/dl/src/data.bin" "$port" "$AS_A"
    peer="$AS_A,[127.0.0.1]:$port"; daemon_addr=$(daemon "$AS_A")
  else
    start_our_tcp_seeder "$WORK/dl/data.torrent" "$WORK/dl/src/data.bin" "$port"
    peer="127.0.0.1:$port"; daemon_addr=$NO_DAEMON
  fi
  rss_sampler "$SEED_PID" "$WORK/seed.rss" &
  c0=$(cpu_s "$SEED_PID")
  rm -f "$WORK/dl/out.bin"
  t0=$(now)
  if our_leecher "$WORK/dl/data.torrent" "$WORK/dl/out.bin" "$peer" "$daemon_addr" "$name$i"; then
    t1=$(now)
    c1=$(cpu_s "$SEED_PID")
    read -r _ lu ls lmax <"$WORK/leech.$name$i.time"
    read -r lanon _ <"$WORK/leech.$name$i.rss" || lanon=0
    read -r sanon stot <"$WORK/seed.rss" || { sanon=0; stot=0; }
    wall=$(echo "$t1 - $t0" | bc -l)
    gib=$(echo "$bytes / 1073741824" | bc -l)
    rec download "$name" wall_s "$(printf %.3f "$wall")"
    # Like libtorrent's figure: from the start of the transfer to every piece verified (the
    # leecher's own report), without process start and exit.
    xfer=$(sed -n 's/.* bytes in \([0-9.]*\) s:.*/\1/p' "$WORK/leech.$name$i.log" | head -1)
    [[ -n "$xfer" ]] && rec download "$name" transfer_s "$xfer"
    rec download "$name" goodput_mbit "$(echo "$bytes * 8 / $wall / 1000000" | bc -l | xargs printf %.1f)"
    rec download "$name" leecher_cpu_s_per_gib "$(echo "($lu + $ls) / $gib" | bc -l | xargs printf %.2f)"
    rec download "$name" seeder_cpu_s_per_gib "$(echo "($c1 - $c0) / $gib" | bc -l | xargs printf %.2f)"
    rec download "$name" leecher_peak_rss_mib "$((lmax / 1024))"
    rec download "$name" leecher_peak_anon_mib "$((lanon / 1024))"
    rec download "$name" seeder_peak_rss_mib "$((stot / 1024))"
    rec download "$name" seeder_peak_anon_mib "$((sanon / 1024))"
    cmp -s "$WORK/dl/src/data.bin" "$WORK/dl/out.bin" || log "  WARNING: $name: output differs"
    log "  $name: ${wall}s, leecher cpu $lu+$ls s, seeder cpu $(echo "$c1 - $c0" | bc -l) s"
  else
    log "  $name: leecher FAILED (see $WORK/leech.$name$i.log)"; tail -5 "$WORK/leech.$name$i.log" >&2 || true
  fi
  kill "$SEED_PID" 2>/dev/null || true; wait "$SEED_PID" 2>/dev/null || true
  rm -f "$WORK/dl/out.bin"
}

# ---------------------------------------------------------------- (b) download
# One libtorrent download over TCP (seeder and leecher in separate processes); records under
# section download, name libtorrent_tcp. Its wall_s is the script's figure, from adding the
# torrent to every piece verified (no process start or exit), hence also its transfer_s.
lt_download() {
  local port spid c0 c1 out wall lu ls lmax sanon stot gib
  port=$(next_port)
  $PY "$ROOT/perf/lt_transfer.py" seed "$WORK/dl/data.torrent" "$WORK/dl/src" "$port" >"$WORK/lt_seed.log" 2>&1 &
  spid=$!
  PIDS+=("$spid")
  for _ in $(seq 1 1200); do grep -q seeding "$WORK/lt_seed.log" 2>/dev/null && break; sleep 0.1; done
  rss_sampler "$spid" "$WORK/ltseed.rss" &
  mkdir -p "$WORK/dl/lt_out"
  c0=$(cpu_s "$spid")
  if out=$(/usr/bin/time -f "%e %U %S %M" -o "$WORK/ltleech.time" $PY "$ROOT/perf/lt_transfer.py" get "$WORK/dl/data.torrent" "$WORK/dl/lt_out" "$port" $((port + 1))); then
    c1=$(cpu_s "$spid")
    wall=$(echo "$out" | sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p')
    read -r _ lu ls lmax <"$WORK/ltleech.time"
    read -r sanon stot <"$WORK/ltseed.rss" || { sanon=0; stot=0; }
    gib=$(echo "$bytes / 1073741824" | bc -l)
    rec download libtorrent_tcp wall_s "$wall"
    rec download libtorrent_tcp transfer_s "$wall"
    rec download libtorrent_tcp goodput_mbit "$(echo "$bytes * 8 / $wall / 1000000" | bc -l | xargs printf %.1f)"
    rec download libtorrent_tcp leecher_cpu_s_per_gib "$(echo "($lu + $ls) / $gib" | bc -l | xargs printf %.2f)"
    rec download libtorrent_tcp seeder_cpu_s_per_gib "$(echo "($c1 - $c0) / $gib" | bc -l | xargs printf %.2f)"
    rec download libtorrent_tcp leecher_peak_rss_mib "$((lmax / 1024))"
    rec download libtorrent_tcp seeder_peak_rss_mib "$((stot / 1024))"
    rec download libtorrent_tcp seeder_peak_anon_mib "$((sanon / 1024))"
    log "  libtorrent: $out"
  else
    log "  libtorrent: FAILED"
  fi
  kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true
  rm -rf "$WORK/dl/lt_out"
}

if has download; then
  start_testnet
  log "(b) creating ${SIZE_MIB} MiB of data and a torrent"
  mkdir -p "$WORK/dl/src"
  make_data "$WORK/dl/src/data.bin" "$SIZE_MIB"
  "$BIN" create "$WORK/dl/src/data.bin" -o "$WORK/dl/data.torrent" >/dev/null
  bytes=$((SIZE_MIB * 1024 * 1024))
  has_lt=0
  if $PY -c "import libtorrent" 2>/dev/null; then
    has_lt=1
  else
    log "  python3-libtorrent missing: apt-get install python3-libtorrent"
  fi
  # Interleaved, so that a change in the machine's load hits every row alike.
  for i in $(seq "$RUNS"); do
    our_download ours "scion" "$i"
    our_download ours_tcp "tcp" "$i"
    if [[ $has_lt == 1 ]]; then lt_download; fi
  done

  # Transmission as the seeder (TCP), libtorrent as the leecher: seeder CPU/GiB and RSS.
  if [[ "$TRANSMISSION" == 1 ]] && command -v transmission-cli >/dev/null; then
    for i in $(seq "$RUNS"); do
      port=$(next_port)
      cfg=$WORK/tr_cfg
      rm -rf "$cfg"; mkdir -p "$cfg"
      cat >"$cfg/settings.json" <<JSON
{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "port-forwarding-enabled": false,
 "utp-enabled": false, "peer-port": $port, "bind-address-ipv4": "127.0.0.1", "encryption": 0,
 "speed-limit-up-enabled": false, "speed-limit-down-enabled": false, "ratio-limit-enabled": false}
JSON
      transmission-cli -g "$cfg" -p "$port" -w "$WORK/dl/src" "$WORK/dl/data.torrent" >"$WORK/tr.log" 2>&1 &
      spid=$!
      PIDS+=("$spid")
      # wait for the verification of the local data to finish (it says "Seeding")
      for _ in $(seq 1 600); do grep -q "Seeding" "$WORK/tr.log" 2>/dev/null && break; sleep 0.1; done
      rss_sampler "$spid" "$WORK/trseed.rss" &
      mkdir -p "$WORK/dl/tr_out"
      c0=$(cpu_s "$spid")
      if out=$(timeout 600 $PY "$ROOT/perf/lt_transfer.py" get "$WORK/dl/data.torrent" "$WORK/dl/tr_out" "$port" $((port + 1))); then
        c1=$(cpu_s "$spid")
        wall=$(echo "$out" | sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p')
        read -r sanon stot <"$WORK/trseed.rss" || { sanon=0; stot=0; }
        gib=$(echo "$bytes / 1073741824" | bc -l)
        rec download transmission_seed_lt_leech wall_s "$wall"
        rec download transmission_seed_lt_leech seeder_cpu_s_per_gib "$(echo "($c1 - $c0) / $gib" | bc -l | xargs printf %.2f)"
        rec download transmission_seed_lt_leech seeder_peak_rss_mib "$((stot / 1024))"
        rec download transmission_seed_lt_leech seeder_peak_anon_mib "$((sanon / 1024))"
        log "  transmission seeder -> libtorrent: $out"
      else
        log "  transmission: FAILED (see $WORK/tr.log)"
      fi
      kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true
      rm -rf "$WORK/dl/tr_out"
    done
  else
    log "  Transmission not measured (TRANSMISSION=0 or transmission-cli missing)"
  fi
  rm -rf "$WORK/dl"
fi

# ---------------------------------------------------------------- (c) bulk seeding
if has bulk; then
  start_testnet
  log "(c) bulk: 1 seeder, $LEECHERS leechers, ${BULK_MIB} MiB each"
  mkdir -p "$WORK/bulk"
  make_data "$WORK/bulk/data.bin" "$BULK_MIB"
  "$BIN" create "$WORK/bulk/data.bin" -o "$WORK/bulk/data.torrent" >/dev/null
  bytes=$((BULK_MIB * 1024 * 1024 * LEECHERS))
  for i in $(seq "$RUNS"); do
  # 1 and 2 io_uring runtimes in the seeder, alternated so both see the same noise.
  for rt in $BULK_RUNTIMES; do
    name="ours_1x${LEECHERS}"; [[ $rt == 1 ]] || name="ours_1x${LEECHERS}_${rt}runtimes"
    port=$(next_port)
    start_our_seeder "$WORK/bulk/data.torrent" "$WORK/bulk/data.bin" "$port" "$AS_A" "$rt"
    rss_sampler "$SEED_PID" "$WORK/bulkseed.rss" &
    c0=$(cpu_s "$SEED_PID")
    t0=$(now)
    lp=()
    for k in $(seq "$LEECHERS"); do
      our_leecher "$WORK/bulk/data.torrent" "$WORK/bulk/out$k.bin" "$AS_A,[127.0.0.1]:$port" "$(daemon "$AS_A")" "bulk$i.$rt.$k" &
      lp+=($!)
    done
    ok=1
    for p in "${lp[@]}"; do wait "$p" || ok=0; done
    t1=$(now)
    c1=$(cpu_s "$SEED_PID")
    read -r sanon stot <"$WORK/bulkseed.rss" || { sanon=0; stot=0; }
    wall=$(echo "$t1 - $t0" | bc -l)
    gib=$(echo "$bytes / 1073741824" | bc -l)
    if [[ $ok == 1 ]]; then
      rec bulk "$name" wall_s "$(printf %.3f "$wall")"
      rec bulk "$name" aggregate_upload_mbit "$(echo "$bytes * 8 / $wall / 1000000" | bc -l | xargs printf %.1f)"
      rec bulk "$name" seeder_cpu_s_per_gib "$(echo "($c1 - $c0) / $gib" | bc -l | xargs printf %.2f)"
      rec bulk "$name" seeder_peak_rss_mib "$((stot / 1024))"
      rec bulk "$name" seeder_peak_anon_mib "$((sanon / 1024))"
      log "  bulk ($rt runtimes): ${wall}s for $LEECHERS x ${BULK_MIB} MiB, seeder cpu $(echo "$c1 - $c0" | bc -l) s"
    else
      log "  bulk ($rt runtimes): a leecher FAILED"; tail -3 "$WORK"/leech.bulk"$i.$rt".*.log >&2 || true
    fi
    kill "$SEED_PID" 2>/dev/null || true; wait "$SEED_PID" 2>/dev/null || true
    rm -f "$WORK"/bulk/out*.bin
  done
  done
  rm -rf "$WORK/bulk"
fi

# ---------------------------------------------------------------- (d) multipath
# three-paths-capped: each of the three disjoint paths 111 <-> 112 is capped at R = 50 Mbit/s
# (SCION packet bytes) in scion-testnet's link shaper.
if has multipath && ! start_testnet three-paths-capped; then
  log "(d) SKIPPED: scion-testnet cannot start three-paths-capped (rebuild it: cargo build --release -p scion-testnet)"
elif has multipath; then
  for n in 1 2 3; do
    log "(d) bwtest cross AS on three-paths-capped, --paths $n x $RUNS"
    bwtest_series multipath "capped_${n}paths" "$AS_B" "$AS_A" "$n"
  done
fi

# ---------------------------------------------------------------- report
summary() { # section name metric -> median
  awk -F'\t' -v s="$1" -v n="$2" -v m="$3" '$1==s && $2==n && $3==m {print $4}' "$RES" | median
}
{
  echo
  echo "## perf/bench.sh $(date -u +%FT%TZ), medians of $RUNS, $(nproc) cores"
  echo
  echo "| section | what | metric | median | runs |"
  echo "|---|---|---|---|---|"
  cut -f1-3 "$RES" | awk '!seen[$0]++' | while IFS=$'\t' read -r s n m; do
    all=$(awk -F'\t' -v s="$s" -v n="$n" -v m="$m" '$1==s && $2==n && $3==m {printf "%s ", $4}' "$RES")
    echo "| $s | $n | $m | $(summary "$s" "$n" "$m") | ${all% } |"
  done
  echo
  ratio() { # label num den
    if [[ "$2" != n/a && "$3" != n/a && -n "$2" && -n "$3" ]]; then
      echo "ratio $1 = $(echo "$2 / $3" | bc -l | xargs printf %.2f)"
    fi
  }
  # Ratios against quinn as two processes (the fair reference); the one-process figure is
  # reported for comparison with older runs.
  q=$(summary transport quinn_two_process goodput_mbit)
  ratio "quinn_one_process/quinn_two_processes" "$(summary transport quinn_loopback goodput_mbit)" "$q"
  ratio "ours_same_as/quinn" "$(summary transport ours_same_as goodput_mbit)" "$q"
  ratio "ours_cross_as_1path/quinn" "$(summary transport ours_cross_as_1path goodput_mbit)" "$q"
  ratio "ours_cross_as_3paths/quinn" "$(summary transport ours_cross_as_3paths goodput_mbit)" "$q"
  ratio "sha1 ours/openssl" "$(summary hash ours_sha1 mb_per_s)" "$(summary hash openssl_sha1 mb_per_s)"
  ratio "download_wall ours/libtorrent" "$(summary download ours wall_s)" "$(summary download libtorrent_tcp wall_s)"
  ratio "download_transfer ours/libtorrent" "$(summary download ours transfer_s)" "$(summary download libtorrent_tcp transfer_s)"
  ratio "download_wall ours_tcp/libtorrent" "$(summary download ours_tcp wall_s)" "$(summary download libtorrent_tcp wall_s)"
  ratio "seeder_cpu_per_gib ours/libtorrent" "$(summary download ours seeder_cpu_s_per_gib)" "$(summary download libtorrent_tcp seeder_cpu_s_per_gib)"
  ratio "seeder_cpu_per_gib ours/transmission" "$(summary download ours seeder_cpu_s_per_gib)" "$(summary download transmission_seed_lt_leech seeder_cpu_s_per_gib)"
  ratio "seeder_cpu_per_gib ours_tcp/transmission" "$(summary download ours_tcp seeder_cpu_s_per_gib)" "$(summary download transmission_seed_lt_leech seeder_cpu_s_per_gib)"
  ratio "leecher_cpu_per_gib ours/libtorrent" "$(summary download ours leecher_cpu_s_per_gib)" "$(summary download libtorrent_tcp leecher_cpu_s_per_gib)"
  ratio "bulk aggregate 2runtimes/1runtime" "$(summary bulk "ours_1x${LEECHERS}_2runtimes" aggregate_upload_mbit)" "$(summary bulk "ours_1x${LEECHERS}" aggregate_upload_mbit)"
  ratio "multipath 3paths/1path" "$(summary multipath capped_3paths goodput_mbit)" "$(summary multipath capped_1paths goodput_mbit)"
  ratio "multipath 3paths/3R (R=50)" "$(summary multipath capped_3paths goodput_mbit)" 150
  echo "(cross-AS goodput is bounded by the simulated routers: ~25-35k packets/s, i.e. roughly 300-420 Mbit/s at ~1200-byte payloads)"
} | tee "$ROOT/perf/last-run.md"
