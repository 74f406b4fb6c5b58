//! Runs what the command line asked for: seed, download, create, info, paths, bwtest.

use std::cell::RefCell;
use std::fs;
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::args::{BwtestArgs, Command, CreateArgs, Mode, TransferArgs};
use super::exit::{self, CliError};
use super::report;
use crate::bwtest::{BwClient, BwServer};
use crate::engine::dialer::{PeerDialer, SharedPaths};
use crate::engine::liveness::LivenessRules;
use crate::engine::quic::{Failure, QuicBtApp, StopWhen};
use crate::engine::tcp::{BtApp, TcpLanes};
use crate::engine::verify::PoolVerifier;
use crate::lanes::PathPolicy;
use crate::net::{uring, ScionNet};
use crate::quic::QuicTuning;
use crate::scion::daemon::DaemonClient;
use crate::scion::{parse_ia, Ia, PeerAddr, ScionAddr, ScionPath};
use crate::storage::{self, HashPool, MmapStorage, Storage};
use crate::torrent::meta::{self, Metainfo};
use crate::torrent::session::{Session, SessionConfig};

/// Lanes per peer when `-numPaths` is not given: every link-disjoint path, up to this cap.
pub const DEFAULT_MAX_LANES: usize = 8;
const PATH_REFRESH: Duration = Duration::from_secs(10);

pub fn load_torrent(path: &std::path::Path) -> Result<Arc<Metainfo>, CliError> {
    let bytes = fs::read(path)
        .map_err(|e| exit::bad_torrent(format!("cannot read torrent {}: {e}", path.display())))?;
    Metainfo::from_bytes(&bytes)
        .map(Arc::new)
        .map_err(|e| exit::bad_torrent(format!("invalid torrent {}: {e}", path.display())))
}

fn parse_scion(s: &str, what: &str) -> Result<ScionAddr, CliError> {
    match s.parse::<PeerAddr>() {
        Ok(PeerAddr::Scion(a)) => Ok(a),
        Ok(PeerAddr::Ip(a)) => Err(exit::usage(format!(
            "{what} {a} is an IP address; a SCION address ISD-AS,[IP]:Port is needed here"
        ))),
        Err(e) => Err(exit::usage(format!("invalid {what} {s:?}: {e}"))),
    }
}

fn daemon_address(explicit: &Option<String>) -> String {
    explicit
        .clone()
        .unwrap_or_else(DaemonClient::default_address)
}

async fn connect_daemon(addr: &str) -> Result<(DaemonClient, Ia), CliError> {
    let d = DaemonClient::connect(addr)
        .await
        .map_err(|e| exit::daemon(format!("cannot reach the SCION daemon at {addr}: {e}")))?;
    let ia = d
        .local_ia()
        .await
        .map_err(|e| exit::daemon(format!("SCION daemon at {addr} did not answer: {e}")))?;
    Ok((d, ia))
}

/// Binds our SCION/UDP socket: the given address, or 127.0.0.1 with a free port inside the
/// AS's port range (routers of a real AS only deliver to ports in that range).
async fn bind_local(
    daemon: &DaemonClient,
    ia: Ia,
    local: Option<ScionAddr>,
) -> Result<(tokio_uring::net::UdpSocket, ScionAddr), CliError> {
    if let Some(l) = local {
        if l.ia != ia {
            return Err(exit::usage(format!(
                "local address is in AS {} but the SCION daemon serves AS {ia}",
                l.ia
            )));
        }
        let s = uring::bind(l.socket_addr())
            .map_err(|e| exit::usage(format!("cannot bind {}: {e}", l.socket_addr())))?;
        let port = s.local_addr().map(|a| a.port()).unwrap_or(l.port);
        return Ok((s, l.with_port(port)));
    }
    let host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (lo, hi) = daemon.port_range().await.unwrap_or((0, 0));
    let candidates: Vec<u16> = if lo > 0 && hi >= lo && !(lo <= 1024 && hi == 65535) {
        let span = u32::from(hi - lo) + 1;
        let start = rand::random::<u32>() % span;
        (0..span.min(200))
            .map(|k| lo + ((start + k) % span) as u16)
            .collect()
    } else {
        vec![0]
    };
    let mut last = None;
    for port in candidates {
        match uring::bind(SocketAddr::new(host, port)) {
            Ok(s) => {
                let port = s.local_addr().map(|a| a.port()).unwrap_or(port);
                return Ok((s, ScionAddr::new(ia, host, port)));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(exit::other(format!("no free UDP port: {last:?}")))
}

/// Re-asks the daemon for paths to `dst` every few seconds, so lanes come back when a path
/// reappears or a new one shows up.
fn spawn_path_refresher(daemon: DaemonClient, dst: Ia, policy: PathPolicy, shared: SharedPaths) {
    tokio_uring::spawn(async move {
        let mut first = true;
        loop {
            let found = daemon.paths(dst, !first).await.map(|all| {
                let offered = all.len();
                (policy.filter(all), offered)
            });
            match found {
                Ok((p, _)) if !p.is_empty() => *shared.borrow_mut() = Some(Ok(p)),
                Ok((_, 0)) if first => {
                    *shared.borrow_mut() = Some(Err(format!("no path to AS {dst}")))
                }
                Ok((_, n)) if first => {
                    *shared.borrow_mut() = Some(Err(format!(
                        "none of the {n} paths to AS {dst} satisfies the path policy {policy}"
                    )))
                }
                Ok(_) => {}
                Err(e) if first => {
                    *shared.borrow_mut() =
                        Some(Err(format!("path lookup for AS {dst} failed: {e}")))
                }
                Err(e) => tracing::warn!("path refresh for AS {dst} failed: {e}"),
            }
            first = false;
            tokio::time::sleep(PATH_REFRESH).await;
        }
    });
}

fn open_storage(meta: &Metainfo, t: &TransferArgs) -> Result<Arc<MmapStorage>, CliError> {
    let res = match t.mode {
        Mode::Seed => {
            let file = t
                .file
                .as_ref()
                .ok_or_else(|| exit::usage("seeding needs the data: -file / --path"))?;
            MmapStorage::open_readonly(meta, file)
        }
        Mode::Download => {
            let out = t
                .out
                .as_ref()
                .ok_or_else(|| exit::usage("downloading needs -outPath / --path"))?;
            MmapStorage::create(meta, out)
        }
    };
    res.map(Arc::new).map_err(|e| exit::storage(e.to_string()))
}

pub fn transfer(t: TransferArgs) -> Result<(), CliError> {
    if t.enable_dht {
        tracing::warn!("the DHT is not supported yet; -enableDht is ignored");
    }
    let torrent = t
        .torrent
        .clone()
        .ok_or_else(|| exit::usage("a torrent is required: -inPath / --torrent"))?;
    let meta = load_torrent(&torrent)?;
    // SCION peers get QUIC lanes over SCION paths, IP peers a plain BitTorrent TCP connection.
    let mut peers: Vec<ScionAddr> = Vec::new();
    let mut tcp_peers: Vec<SocketAddr> = Vec::new();
    for p in &t.peers {
        match p.parse::<PeerAddr>() {
            Ok(PeerAddr::Scion(a)) => peers.push(a),
            Ok(PeerAddr::Ip(a)) => tcp_peers.push(a),
            Err(e) => return Err(exit::usage(format!("invalid peer address {p:?}: {e}"))),
        }
    }
    let tcp_listen = t
        .tcp_listen
        .as_deref()
        .map(|a| {
            a.parse::<SocketAddr>()
                .map_err(|e| exit::usage(format!("invalid TCP listen address {a:?}: {e}")))
        })
        .transpose()?;
    let local = t
        .local
        .as_deref()
        .map(|l| parse_scion(l, "local address"))
        .transpose()?;
    let liveness = liveness_rules(&t)?;
    if t.mode == Mode::Download && peers.is_empty() && tcp_peers.is_empty() {
        return Err(exit::usage(
            "downloading needs at least one peer: -peer / --peer",
        ));
    }
    let storage = open_storage(&meta, &t)?;
    let ip = IpPeers {
        peers: tcp_peers,
        listen: tcp_listen,
        liveness,
    };
    tokio_uring::start(run_transfer(t, meta, peers, ip, local, storage))
}

/// The TCP side of a transfer.
struct IpPeers {
    peers: Vec<SocketAddr>,
    listen: Option<SocketAddr>,
    liveness: LivenessRules,
}

/// `--keepalive` / `--peer-timeout` (seconds) over the defaults.
fn liveness_rules(t: &TransferArgs) -> Result<LivenessRules, CliError> {
    let defaults = LivenessRules::default();
    let secs = |v: Option<f64>, default: Duration, what: &str| -> Result<Duration, CliError> {
        v.map_or(Ok(default), |s| {
            Duration::try_from_secs_f64(s)
                .map_err(|_| exit::usage(format!("{what}: {s} is not a number of seconds")))
        })
    };
    let keepalive = secs(t.keepalive, defaults.keepalive_every, "keep-alive interval")?;
    let timeout = secs(t.peer_timeout, defaults.silent_timeout, "peer timeout")?;
    LivenessRules::new(keepalive, timeout).map_err(exit::usage)
}

async fn run_transfer(
    t: TransferArgs,
    meta: Arc<Metainfo>,
    peers: Vec<ScionAddr>,
    ip: IpPeers,
    local: Option<ScionAddr>,
    storage: Arc<MmapStorage>,
) -> Result<(), CliError> {
    let daemon_addr = daemon_address(&t.sciond);
    // Without a daemon, SCION is skipped when nothing asked for it (only IP peers, no -local).
    let scion = match connect_daemon(&daemon_addr).await {
        Ok((daemon, ia)) => Some((daemon, ia)),
        Err(e) if peers.is_empty() && local.is_none() => {
            tracing::warn!("{e}; continuing without SCION (TCP only)");
            None
        }
        Err(e) => return Err(e),
    };
    let (socket, local, daemon) = match scion {
        Some((daemon, ia)) => {
            let (socket, local) = bind_local(&daemon, ia, local).await?;
            (socket, local, Some(daemon))
        }
        None => {
            // The driver still wants a socket; nothing is sent on it.
            let host = IpAddr::V4(Ipv4Addr::LOCALHOST);
            let s = uring::bind(SocketAddr::new(host, 0))
                .map_err(|e| exit::other(format!("cannot bind a UDP socket: {e}")))?;
            let port = s.local_addr().map(|a| a.port()).unwrap_or(0);
            let ia = parse_ia("0-0").map_err(|e| exit::other(e.to_string()))?;
            (s, ScionAddr::new(ia, host, port), None)
        }
    };
    let scion_on = daemon.is_some();

    let started = Instant::now();
    let pool =
        HashPool::new(0).map_err(|e| exit::other(format!("cannot start hash workers: {e}")))?;
    // Only data that was on disk can hold verified pieces (resume); fresh files are skipped.
    let have = storage::verify_where(&*storage, &meta, &pool, |p| storage.may_hold(p), |_, _| {});
    let resumed = have.count_ones();
    let n = meta.num_pieces();
    match t.mode {
        Mode::Seed if resumed < n => tracing::warn!(
            "only {resumed} of {n} pieces of the data match the torrent; seeding those"
        ),
        Mode::Download if resumed > 0 => {
            tracing::info!("resuming: {resumed} of {n} pieces already verified on disk")
        }
        _ => {}
    }

    let mut peer_id = *b"-BS0100-000000000000";
    for b in &mut peer_id[8..] {
        *b = b"0123456789abcdefghijklmnopqrstuvwxyz"[rand::random::<u32>() as usize % 36];
    }
    let mut cfg = SessionConfig::new(peer_id);
    cfg.upload = true;
    let verifier = PoolVerifier::new(pool, storage.clone(), meta.clone());
    let session = Session::new(
        meta.clone(),
        Box::new(storage.clone()) as Box<dyn Storage>,
        Box::new(verifier),
        have,
        cfg,
        started,
    );

    let mut dialers = Vec::new();
    for p in peers.iter().filter(|_| scion_on) {
        let shared: SharedPaths = Rc::new(RefCell::new(None));
        let Some(daemon) = &daemon else { break };
        spawn_path_refresher(daemon.clone(), p.ia, t.path_policy.clone(), shared.clone());
        let max = t.num_paths.unwrap_or(DEFAULT_MAX_LANES);
        let mut d = PeerDialer::new(*p, max, shared, started);
        // Default lane count: every link-disjoint path (known once the paths arrive).
        d.only_disjoint = t.num_paths.is_none();
        dialers.push(d);
    }

    let complete_at_start = resumed == n;
    let stop_when = match (t.mode, t.keep_seeding) {
        (Mode::Download, false) => StopWhen::Complete,
        _ => StopWhen::Never,
    };
    let quic = QuicBtApp::new(session, dialers, stop_when, started);
    let mut tcp = TcpLanes::new(started);
    tcp.liveness = ip.liveness;
    let want = ip.listen.unwrap_or(if scion_on {
        local.socket_addr()
    } else {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
    });
    let tcp_addr = match tcp.listen(want) {
        Ok(a) => a,
        // Default address taken: any free port on the same IP.
        Err(_) if ip.listen.is_none() => tcp
            .listen(SocketAddr::new(want.ip(), 0))
            .map_err(|e| exit::other(format!("cannot listen on TCP {}: {e}", want.ip())))?,
        Err(e) => return Err(exit::usage(format!("cannot listen on TCP {want}: {e}"))),
    };
    for a in &ip.peers {
        tcp.add_peer(*a, started);
    }
    let mut app = BtApp { quic, tcp };
    let tuning = QuicTuning::default();
    let mut net = ScionNet::new(local, &tuning, true).map_err(|e| exit::other(e.to_string()))?;

    // The SCION address stays the last token (after " as ").
    let scion_shown = if scion_on {
        local.to_string()
    } else {
        "none (no SCION daemon)".to_string()
    };
    println!(
        "{} {} ({} pieces, {} bytes) tcp {tcp_addr} as {scion_shown}",
        if t.mode == Mode::Seed {
            "seeding"
        } else {
            "downloading"
        },
        meta.name,
        n,
        meta.total_length
    );
    report::attach_progress(&mut app.quic, std::io::stderr().is_terminal());
    if !(t.mode == Mode::Download && complete_at_start && !t.keep_seeding) {
        uring::run(socket, &mut net, &mut app)
            .await
            .map_err(|e| exit::other(e.to_string()))?;
    }
    let summary = report::Summary::collect(&app.quic, &meta, resumed, started, &local);
    if t.print_metrics || t.mode == Mode::Download {
        print!("{summary}");
    }
    if let Some(csv) = &t.export_metrics {
        summary
            .write_csv(csv)
            .map_err(|e| exit::other(format!("cannot write {}: {e}", csv.display())))?;
    }
    if let Some(json) = &t.metrics_json {
        summary
            .write_json(json)
            .map_err(|e| exit::other(format!("cannot write {}: {e}", json.display())))?;
    }
    match app.quic.failure.take() {
        None => Ok(()),
        Some(Failure::Unreachable(m)) => Err(exit::unreachable(format!("peer unreachable: {m}"))),
        Some(Failure::NoPath(m)) => Err(exit::unreachable(m)),
        Some(Failure::Storage(m)) => Err(exit::storage(m)),
    }
}

/// The subcommands that are not transfers.
pub fn tool(cmd: Command) -> Result<(), CliError> {
    match cmd {
        Command::Create(c) => create(c),
        Command::Info { torrent } => info(&torrent),
        Command::Paths {
            destination,
            scion,
            refresh,
        } => tokio_uring::start(paths(destination, daemon_address(&scion.sciond), refresh)),
        Command::Bwtest(b) => tokio_uring::start(bwtest(b)),
        Command::Tracker(t) => super::tracker::run(t),
        Command::Download(_) | Command::Seed(_) => unreachable!("handled by transfer"),
    }
}

fn create(c: CreateArgs) -> Result<(), CliError> {
    let bytes = meta::create(&c.source, c.piece_length, c.announce, c.private, c.comment)
        .map_err(|e| exit::usage(format!("cannot create torrent: {e}")))?;
    fs::write(&c.output, &bytes)
        .map_err(|e| exit::storage(format!("cannot write {}: {e}", c.output.display())))?;
    let m = Metainfo::from_bytes(&bytes).map_err(|e| exit::other(e.to_string()))?;
    println!(
        "{} info hash {} ({} pieces of {} bytes)",
        c.output.display(),
        m.info_hash_hex(),
        m.num_pieces(),
        m.piece_length
    );
    Ok(())
}

fn info(path: &std::path::Path) -> Result<(), CliError> {
    let m = load_torrent(path)?;
    println!("name:         {}", m.name);
    println!("info hash:    {}", m.info_hash_hex());
    println!("size:         {} bytes", m.total_length);
    println!(
        "pieces:       {} x {} bytes",
        m.num_pieces(),
        m.piece_length
    );
    println!("private:      {}", m.private);
    if let Some(a) = &m.announce {
        println!("announce:     {a}");
    }
    for tier in &m.announce_list {
        println!("announce-list tier: {}", tier.join(" "));
    }
    if let Some(c) = &m.comment {
        println!("comment:      {c}");
    }
    if let Some(c) = &m.created_by {
        println!("created by:   {c}");
    }
    println!("files:");
    for f in m.files.iter().filter(|f| !f.pad) {
        println!("  {:>14}  {}", f.length, f.path.display());
    }
    let pads = m.files.iter().filter(|f| f.pad).count();
    if pads > 0 {
        println!("  (and {pads} BEP 47 padding files, not stored)");
    }
    Ok(())
}

async fn paths(dest: String, daemon_addr: String, refresh: bool) -> Result<(), CliError> {
    let dst = parse_ia(&dest).map_err(|e| exit::usage(format!("invalid ISD-AS {dest:?}: {e}")))?;
    let (daemon, ia) = connect_daemon(&daemon_addr).await?;
    let paths = daemon
        .paths(dst, refresh)
        .await
        .map_err(|e| exit::daemon(format!("path lookup failed: {e}")))?;
    if paths.is_empty() {
        return Err(exit::unreachable(format!("no path from {ia} to {dst}")));
    }
    println!("{} path(s) from {ia} to {dst}:", paths.len());
    for (i, p) in paths.iter().enumerate() {
        println!("[{i}] {p}");
        print_path_details(p);
    }
    Ok(())
}

fn print_path_details(p: &ScionPath) {
    let expiry = p
        .expiry
        .and_then(|e| e.duration_since(std::time::SystemTime::now()).ok())
        .map(|d| format!("in {}s", d.as_secs()))
        .unwrap_or_else(|| "unknown".into());
    let latency = p
        .total_latency()
        .map(|l| format!("{:.1} ms", l.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "unknown".into());
    let bw = p
        .min_bandwidth()
        .map(|b| format!("{b} kbit/s"))
        .unwrap_or_else(|| "unknown".into());
    println!(
        "    hops {}  mtu {}  expires {expiry}  latency {latency}  bandwidth {bw}  next hop {}",
        p.hop_count(),
        p.mtu,
        p.first_hop
            .map(|h| h.to_string())
            .unwrap_or_else(|| "direct".into())
    );
}

async fn bwtest(b: BwtestArgs) -> Result<(), CliError> {
    let daemon_addr = daemon_address(&b.scion.sciond);
    let (daemon, ia) = connect_daemon(&daemon_addr).await?;
    let local = b
        .local
        .as_deref()
        .map(|l| parse_scion(l, "local address"))
        .transpose()?;
    let (socket, local) = bind_local(&daemon, ia, local).await?;
    let tuning = QuicTuning::default();
    if b.server {
        let mut net =
            ScionNet::new(local, &tuning, true).map_err(|e| exit::other(e.to_string()))?;
        println!("bwtest server listening on {local}");
        let mut app = BwServer::default();
        return uring::run(socket, &mut net, &mut app)
            .await
            .map_err(|e| exit::other(e.to_string()));
    }
    let peer = b
        .peer
        .as_deref()
        .ok_or_else(|| exit::usage("bwtest needs --server or --peer ISD-AS,[IP]:Port"))
        .and_then(|p| parse_scion(p, "peer address"))?;
    let all = if peer.ia == ia {
        vec![ScionPath::local(ia)]
    } else {
        daemon
            .paths(peer.ia, false)
            .await
            .map_err(|e| exit::daemon(format!("path lookup failed: {e}")))?
    };
    if all.is_empty() {
        return Err(exit::unreachable(format!(
            "no path from {ia} to {}",
            peer.ia
        )));
    }
    let chosen = crate::lanes::choose_paths(&all, b.paths.max(1), &Default::default());
    let mut net = ScionNet::new(local, &tuning, false).map_err(|e| exit::other(e.to_string()))?;
    let now = Instant::now();
    let mut app = BwClient::start(
        &mut net,
        peer,
        &chosen,
        Duration::from_secs_f64(b.duration.max(0.1)),
        now,
    )
    .map_err(|e| exit::other(e.to_string()))?;
    uring::run(socket, &mut net, &mut app)
        .await
        .map_err(|e| exit::other(e.to_string()))?;
    let results = app.results();
    let mut total = 0.0;
    println!(
        "bwtest {local} -> {peer}, {} path(s), {:.1} s",
        results.len(),
        b.duration
    );
    for r in &results {
        total += r.goodput_mbit;
        println!(
            "  {:<60} {:>10.1} Mbit/s  {:>12} bytes  rtt {}",
            r.path, r.goodput_mbit, r.bytes, r.rtt
        );
        if let Some(e) = &r.error {
            println!("    error: {e}");
        }
    }
    println!("total goodput: {total:.1} Mbit/s");
    if results.iter().all(|r| r.bytes == 0) {
        return Err(exit::unreachable(format!("no data from {peer}")));
    }
    Ok(())
}
