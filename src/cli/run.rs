//! Runs what the command line asked for: seed, download, create, info, paths, bwtest.

use std::fs;
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::args::{BwtestArgs, Command, CreateArgs, Mode, TransferArgs};
use super::exit::{self, CliError};
use super::report;
use crate::bwtest::{BwClient, BwServer};
use crate::client::control::{self, PeerSource};
use crate::client::{self, Client, ClientError, EngineOptions, LiveTorrent};
use crate::engine::liveness::LivenessRules;
use crate::engine::quic::{Failure, StopWhen};
use crate::lanes::{PathPolicy, Preference};
use crate::net::steering::MAX_RUNTIMES;
use crate::net::{uring, ScionNet};
use crate::quic::QuicTuning;
use crate::scion::daemon::DaemonClient;
use crate::scion::{parse_ia, Ia, PeerAddr, ScionAddr, ScionPath};
use crate::storage::{self, MmapStorage, Storage};
use crate::torrent::meta::{self, Metainfo};

/// How long a seeder on several runtimes waits for the others' lanes after its loop ended.
const FINAL_LANES_WAIT: Duration = Duration::from_secs(5);

/// Lanes per peer when `-numPaths` is not given: every link-disjoint path, up to this cap.
pub const DEFAULT_MAX_LANES: usize = client::DEFAULT_MAX_LANES;

pub fn load_torrent(path: &std::path::Path) -> Result<Arc<Metainfo>, CliError> {
    let bytes = fs::read(path)
        .map_err(|e| exit::bad_torrent(format!("cannot read torrent {}: {e}", path.display())))?;
    Metainfo::from_bytes(&bytes)
        .map(Arc::new)
        .map_err(|e| exit::bad_torrent(format!("invalid torrent {}: {e}", path.display())))
}

pub(crate) fn parse_scion(s: &str, what: &str) -> Result<ScionAddr, CliError> {
    match s.parse::<PeerAddr>() {
        Ok(PeerAddr::Scion(a)) => Ok(a),
        Ok(PeerAddr::Ip(a)) => Err(exit::usage(format!(
            "{what} {a} is an IP address; a SCION address ISD-AS,[IP]:Port is needed here"
        ))),
        Err(e) => Err(exit::usage(format!("invalid {what} {s:?}: {e}"))),
    }
}

/// `--tcp-listen`: where to accept BitTorrent over TCP, `IP:Port`.
pub(crate) fn parse_tcp_listen(a: &str) -> Result<SocketAddr, CliError> {
    a.parse::<SocketAddr>()
        .map_err(|e| exit::usage(format!("invalid TCP listen address {a:?}: {e}")))
}

/// `-local`: a SCION address; an empty IP (`19-ffaa:1:c3f,[]:43000`, as in the original
/// client's README) means this host's default address in that AS: the source IP the kernel
/// picks to reach the SCION daemon.
pub(crate) fn parse_local(s: &str, daemon: &str) -> Result<ScionAddr, CliError> {
    let Some((ia, port)) = s.split_once(",[]:") else {
        return parse_scion(s, "local address");
    };
    let ia = parse_ia(ia).map_err(|e| exit::usage(format!("invalid local address {s:?}: {e}")))?;
    let port: u16 = port
        .parse()
        .map_err(|e| exit::usage(format!("invalid local address {s:?}: port: {e}")))?;
    let ip = default_source_ip(daemon).map_err(|e| {
        exit::usage(format!(
            "local address {s:?} has no IP and none could be chosen towards the SCION daemon at {daemon}: {e}"
        ))
    })?;
    Ok(ScionAddr::new(ia, ip, port))
}

/// The source IP the kernel would use towards `daemon` (`host:port`); nothing is sent.
pub(crate) fn default_source_ip(daemon: &str) -> std::io::Result<IpAddr> {
    use std::net::ToSocketAddrs;
    let authority = daemon
        .trim()
        .strip_prefix("http://")
        .unwrap_or(daemon.trim());
    let to = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("the daemon address resolves to nothing"))?;
    let any: SocketAddr = if to.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = std::net::UdpSocket::bind(any)?;
    s.connect(to)?;
    Ok(s.local_addr()?.ip())
}

pub(crate) fn daemon_address(explicit: &Option<String>) -> String {
    explicit
        .clone()
        .unwrap_or_else(DaemonClient::default_address)
}

pub(crate) async fn connect_daemon(addr: &str) -> Result<(DaemonClient, Ia), CliError> {
    client::connect_daemon(addr).await.map_err(client_err)
}

pub(crate) async fn bind_local(
    daemon: &DaemonClient,
    ia: Ia,
    local: Option<ScionAddr>,
) -> Result<(tokio_uring::net::UdpSocket, ScionAddr), CliError> {
    client::bind_local(daemon, ia, local)
        .await
        .map_err(client_err)
}

/// Maps the client's set-up errors to the exit codes the commands always used.
pub(crate) fn client_err(e: ClientError) -> CliError {
    match e {
        ClientError::Daemon(m) => exit::daemon(m),
        ClientError::Bind(m) => exit::usage(format!("cannot bind {m}")),
        ClientError::WrongAs(m) => exit::usage(m),
        ClientError::Io(m) | ClientError::Other(m) => exit::other(m),
    }
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
    let torrent = t
        .torrent
        .clone()
        .ok_or_else(|| exit::usage("a torrent is required: -inPath / --torrent"))?;
    check_runtimes(&t)?;
    // From here on the first SIGINT/SIGTERM stops whichever client runs (a magnet link's
    // metadata fetch, then the transfer) cleanly; one that comes before a client runs stops
    // the next one as soon as it starts.
    let stopper = super::signals::Stopper::install()
        .map_err(|e| exit::other(format!("signal handlers: {e}")))?;
    let mut t = t;
    let meta = match torrent.to_str().filter(|s| s.starts_with("magnet:")) {
        Some(uri) => super::magnet::metadata_of_magnet(&mut t, uri, &stopper)?,
        None => load_torrent(&torrent)?,
    };
    if let (Some(path), false) = (&t.save_torrent, t.torrent_is_magnet()) {
        return Err(exit::usage(format!(
            "--save-torrent {} is for magnet links; the torrent is a file already",
            path.display()
        )));
    }
    let (peers, tcp_peers) = super::single::split_peers(&t.peers)?;
    let tcp_listen = t.tcp_listen.as_deref().map(parse_tcp_listen).transpose()?;
    let local = t
        .local
        .as_deref()
        .map(|l| parse_local(l, &daemon_address(&t.sciond)))
        .transpose()?;
    let liveness = liveness_rules(&t)?;
    if t.mode == Mode::Download
        && peers.is_empty()
        && tcp_peers.is_empty()
        && !meta.has_trackers()
        && meta.web_seeds.is_empty()
        && !t.enable_dht
        && !t.lsd
    {
        return Err(exit::usage(
            "downloading needs at least one peer (-peer / --peer), a torrent with trackers \
             or web seeds, the DHT (-enableDht) or Local Service Discovery (--lsd)",
        ));
    }
    let storage = open_storage(&meta, &t)?;
    let ip = IpPeers {
        peers: tcp_peers,
        listen: tcp_listen,
        liveness,
    };
    tokio_uring::start(run_transfer(t, meta, peers, ip, local, storage, stopper))
}

/// `--runtimes`: 1 to [`MAX_RUNTIMES`], more than one only for seeding.
fn check_runtimes(t: &TransferArgs) -> Result<(), CliError> {
    match t.runtimes {
        Some(n) if n == 0 || n > MAX_RUNTIMES => Err(exit::usage(format!(
            "--runtimes {n}: from 1 to {MAX_RUNTIMES}"
        ))),
        Some(n) if n > 1 && t.mode != Mode::Seed => Err(exit::usage("--runtimes is for seeding")),
        _ => Ok(()),
    }
}

/// The TCP side of a transfer.
struct IpPeers {
    peers: Vec<SocketAddr>,
    listen: Option<SocketAddr>,
    liveness: LivenessRules,
}

/// `--keepalive` / `--peer-timeout` (seconds) over the defaults.
pub(crate) fn liveness_rules(t: &TransferArgs) -> Result<LivenessRules, CliError> {
    let defaults = LivenessRules::default();
    let secs = |v: Option<f64>, default: Duration, what: &str| -> Result<Duration, CliError> {
        v.map_or(Ok(default), |s| {
            Duration::try_from_secs_f64(s)
                .map_err(|_| exit::usage(format!("{what}: {s} is not a number of seconds")))
        })
    };
    let keepalive = secs(t.keepalive, defaults.keepalive_every, "keep-alive interval")?;
    let timeout = secs(t.peer_timeout, defaults.silent_timeout, "peer timeout")?;
    LivenessRules::new(keepalive, timeout).map_err(|e| exit::usage(e.to_string()))
}

async fn run_transfer(
    t: TransferArgs,
    meta: Arc<Metainfo>,
    peers: Vec<ScionAddr>,
    ip: IpPeers,
    local: Option<ScionAddr>,
    storage: Arc<MmapStorage>,
    stopper: super::signals::Stopper,
) -> Result<(), CliError> {
    let mut opts = EngineOptions {
        // 0 is the original client's default: no cap (here: every link-disjoint path).
        max_lanes: t.num_paths.filter(|&n| n > 0),
        liveness: ip.liveness,
        exit_when_finished: true,
        encryption: t.encryption,
        ..Default::default()
    };
    // Trackers and the DHT, if any, feed peers into the torrent's book, as in the daemon.
    // They end (trackers with `stopped`) when the client's snapshots end, below.
    let (handle, side) = control::channel();
    let dht = super::single::start_scion_dht(&t, &handle, &meta.nodes, &mut opts)?;
    let single = super::single::start_single(&t, &peers, local, ip.listen, opts).await?;
    // The command line's peers are the first entries of the torrent's peer book.
    let book = single.book(&peers, &ip.peers);
    let super::single::Single {
        mut client,
        socket,
        mut net,
        local,
        scion_on,
        runtimes,
        tcp_addr,
        started,
    } = single;
    let pool = client.pool();
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

    let complete_at_start = resumed == n;
    let stop_when = match (t.mode, t.keep_seeding) {
        (Mode::Download, false) => StopWhen::Complete,
        _ => StopWhen::Never,
    };
    let data_path = t.file.clone().or(t.out.clone()).unwrap_or_default();
    let ih = client.add_live(
        LiveTorrent {
            meta: meta.clone(),
            torrent_bytes: Vec::new(),
            storage: storage.clone(),
            have,
            out_dir: data_path.clone(),
            data_path,
            peers: book,
            source: PeerSource::Cli,
            stop_when,
        },
        started,
    );
    // Before the start line, which scripts wait for before they may send a signal.
    stopper.stops(&handle);
    let scion_shown = super::single::shown_scion(&local, scion_on);
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
    report::attach_progress(app_of(&mut client, &ih)?, std::io::stderr().is_terminal());
    // Commands reach the loop this way: the trackers' and the DHT's peers, and a signal's
    // shutdown.
    client.attach_control(side.commands, side.snapshots);
    let lsd = super::single::start_lsd(t.lsd, t.tcp_listen.as_deref(), &handle)?;
    let portmap = super::portmap::start(&t.port_mapping, None, &handle)?;
    let trackers = if meta.has_trackers() {
        let tls = crate::discovery::tracker_tls(&t.tracker_ca)?;
        Some(
            crate::discovery::spawn_trackers(handle, tls)
                .map_err(|e| exit::other(format!("cannot start the tracker client: {e}")))?,
        )
    } else {
        None
    };
    // Seeding on several runtimes: the others serve the (complete) torrent too, and hand
    // over their lanes for the summary when they end.
    let finals = client::runtimes::FinalLanes::default();
    let shared = if runtimes > 1 {
        let (global_down, global_up) = client.global_limits();
        let cfg = client::runtimes::ExtraConfig {
            local,
            sciond: daemon_address(&t.sciond),
            policy: t.path_policy.clone(),
            engine: client.options().clone(),
            pool: pool.clone(),
            global_down,
            global_up,
        };
        let (mail, extra) =
            client::runtimes::start_extra_reporting(&socket, runtimes, cfg, finals.clone())
                .map_err(client_err)?;
        client.attach_extra_runtimes(extra);
        Some((0, mail))
    } else {
        None
    };
    if !(t.mode == Mode::Download && complete_at_start && !t.keep_seeding) {
        let ran = uring::run_shared(socket, &mut net, &mut client, shared).await;
        client.stop_listening().await;
        ran.map_err(|e| exit::other(e.to_string()))?;
    }
    if let Ok(mut bar) = super::PROGRESS_BAR.lock() {
        if let Some(bar) = bar.take() {
            bar.finish_and_clear();
        }
    }
    let interrupted = stopper.signalled();
    if interrupted {
        // Hands what was written to the OS; a restart re-verifies it anyway.
        if let Err(e) = storage.flush() {
            tracing::warn!("cannot flush the data: {e}");
        }
    }
    // A download is done only once its data is on disk: the pieces were verified in the page
    // cache, and `fdatasync` of each written file is what can still fail (a disk whose cache
    // cannot be flushed, a network filesystem that lost its server). Then: exit code 5.
    let unsynced = if t.mode == Mode::Download && !interrupted {
        storage.sync().err()
    } else {
        None
    };
    let quic = app_of(&mut client, &ih)?;
    let mut summary = report::Summary::collect(quic, &meta, resumed, started, &local);
    if runtimes > 1 {
        // The loop ended once every other runtime had shut down; each reports right after.
        let others = usize::from(runtimes - 1);
        let (lanes, up, all) = finals.wait_for(others, &ih, FINAL_LANES_WAIT);
        if !all {
            tracing::warn!("not every runtime reported its lanes; the summary misses some");
        }
        summary.add_runtime_lanes(&lanes, up, Instant::now());
    }
    if t.print_metrics || t.mode == Mode::Download {
        print!("{summary}");
    }
    if let Some(target) = &t.export_metrics {
        super::export::export_csv(&summary, target, &t.sciond, local.host)?;
    }
    if let Some(json) = &t.metrics_json {
        summary
            .write_json(json)
            .map_err(|e| exit::other(format!("cannot write {}: {e}", json.display())))?;
    }
    let failure = quic.failure.take();
    let tracker_report = client
        .torrent_mut(&ih)
        .map(|t| tracker_report(&t.trackers))
        .unwrap_or_default();
    // Ends the snapshots: the tracker client says `stopped` and returns.
    drop(client);
    // The port-mapping thread removes its mapping from the gateway before it ends.
    for t in trackers.into_iter().chain(dht).chain(lsd).chain(portmap) {
        let _ = t.join();
    }
    if let (None, Some(e)) = (&failure, &unsynced) {
        return Err(exit::storage(format!(
            "cannot flush the downloaded data to disk: {e}; every verified piece was written, \
             but it may not survive a crash: run again to re-check it"
        )));
    }
    match failure {
        None if interrupted && !summary.complete => Err(exit::interrupted(format!(
            "stopped by a signal with {} of {} pieces verified; run again to resume",
            summary.pieces_resumed + summary.pieces_downloaded,
            summary.pieces
        ))),
        None => Ok(()),
        Some(Failure::Unreachable(m)) => Err(exit::unreachable(format!(
            "peer unreachable: {m}{tracker_report}"
        ))),
        Some(Failure::NoPath(m)) => Err(exit::unreachable(m)),
        Some(Failure::Storage(m)) => Err(exit::storage(m)),
    }
}

/// "; trackers: URL: state (error), ..." for a failure message; empty without trackers.
pub(crate) fn tracker_report(trackers: &[crate::client::control::TrackerStatus]) -> String {
    if trackers.is_empty() {
        return String::new();
    }
    let each: Vec<String> = trackers
        .iter()
        .map(|s| {
            let state = serde_json::to_value(&s.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            match &s.last_error {
                Some(e) => format!("{}: {state} ({e})", s.url),
                None => format!("{}: {state}, {} peers", s.url, s.peers_received),
            }
        })
        .collect();
    format!("; trackers: {}", each.join(", "))
}

fn app_of<'a>(
    c: &'a mut Client,
    ih: &crate::client::control::InfoHash,
) -> Result<&'a mut crate::engine::quic::QuicBtApp, CliError> {
    c.torrent_mut(ih)
        .and_then(|t| t.phase.live_mut())
        .map(|l| &mut l.app)
        .ok_or_else(|| exit::other("the torrent did not start"))
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
            path_policy,
            filter,
        } => {
            let policy = filter.policy(path_policy.unwrap_or_default());
            let pref = filter.preference();
            let sciond = daemon_address(&scion.sciond);
            tokio_uring::start(paths(destination, sciond, refresh, policy, pref))
        }
        Command::Bwtest(b) => {
            if super::bwtester::is_bwtester(&b)? {
                super::bwtester::run(b)
            } else {
                tokio_uring::start(bwtest(b))
            }
        }
        Command::Tracker(t) => super::tracker::run(t),
        Command::Daemon(d) => crate::daemon::run(d),
        Command::DhtNode(d) => dht_node(d),
        Command::Remote(r) => super::remote::run(r),
        Command::Download(_) | Command::Seed(_) => unreachable!("handled by transfer"),
    }
}

/// `dht-node`: a bare DHT node over SCION until it is killed.
fn dht_node(d: super::args::DhtNodeArgs) -> Result<(), CliError> {
    let bootstrap = d
        .bootstrap
        .iter()
        .map(|b| {
            b.parse::<ScionAddr>()
                .map_err(|e| exit::usage(format!("--bootstrap {b}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| exit::other(e.to_string()))?;
    rt.block_on(async {
        let sciond = daemon_address(&d.scion.sciond);
        let socket = crate::discovery::scion_udp::ScionUdp::bind(&sciond, d.host, d.port)
            .await
            .map_err(|e| exit::daemon(format!("cannot bind the DHT socket: {e}")))?;
        println!("dht node on {}", socket.local_addr());
        crate::discovery::dht::run_scion_node(socket, bootstrap, d.state)
            .await
            .map_err(|e| exit::other(format!("DHT socket: {e}")))
    })
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
    for w in &m.web_seeds {
        println!("web seed:     {w}");
    }
    for w in &m.web_seeds_ignored {
        println!("web seed:     {} (ignored: {})", w.url, w.reason);
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

/// `paths`: what the daemon offers, filtered by the policy and in preference order (the
/// order lanes pick from).
async fn paths(
    dest: String,
    daemon_addr: String,
    refresh: bool,
    policy: PathPolicy,
    pref: Preference,
) -> Result<(), CliError> {
    let dst = parse_ia(&dest).map_err(|e| exit::usage(format!("invalid ISD-AS {dest:?}: {e}")))?;
    let (daemon, ia) = connect_daemon(&daemon_addr).await?;
    let all = daemon
        .paths(dst, refresh)
        .await
        .map_err(|e| exit::daemon(format!("path lookup failed: {e}")))?;
    if all.is_empty() {
        return Err(exit::unreachable(format!("no path from {ia} to {dst}")));
    }
    let offered = all.len();
    let paths = super::path_select::candidates(all, &policy, &pref);
    if paths.is_empty() {
        return Err(exit::unreachable(format!(
            "none of the {offered} paths from {ia} to {dst} satisfies the path policy {policy}"
        )));
    }
    println!("{} path(s) from {ia} to {dst}:", paths.len());
    for (i, p) in paths.iter().enumerate() {
        println!("[{i}] {p}");
        print_path_details(p);
    }
    Ok(())
}

fn print_path_details(p: &ScionPath) {
    for line in super::pathinfo::describe(p, std::time::SystemTime::now()) {
        println!("    {line}");
    }
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
        let mut app = super::signals::UntilSignal::new(BwServer::default())
            .map_err(|e| exit::other(format!("signal handlers: {e}")))?;
        println!("bwtest server listening on {local}");
        uring::run(socket, &mut net, &mut app)
            .await
            .map_err(|e| exit::other(e.to_string()))?;
        println!("bwtest server stopped");
        return Ok(());
    }
    let peer = b
        .peer
        .as_deref()
        .ok_or_else(|| {
            exit::usage("bwtest needs --server, --peer ADDR (quic) or -s ADDR (bwtester)")
        })
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
    let policy = b
        .select
        .filter
        .policy(b.path_policy.clone().unwrap_or_default());
    let pref = b.select.filter.preference();
    let offered = all.len();
    let all = super::path_select::candidates(all, &policy, &pref);
    if all.is_empty() {
        return Err(exit::unreachable(format!(
            "none of the {offered} paths from {ia} to {} satisfies the path policy {policy}",
            peer.ia
        )));
    }
    let chosen = if b.select.interactive {
        let p = super::path_select::choose_on_terminal(peer.ia, &all)
            .map_err(|e| exit::usage(e.to_string()))?;
        vec![p]
    } else {
        let paths = b.paths.unwrap_or(1).max(1);
        crate::lanes::choose_paths(&all, paths, &Default::default(), &pref)
    };
    let mut net = ScionNet::new(local, &tuning, false).map_err(|e| exit::other(e.to_string()))?;
    let now = Instant::now();
    let duration = b.duration.unwrap_or(5.0);
    let mut app = BwClient::start(
        &mut net,
        peer,
        &chosen,
        Duration::from_secs_f64(duration.max(0.1)),
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
        duration
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_local_ip_is_the_source_address_towards_the_daemon() {
        let a = parse_local("19-ffaa:1:c3f,[]:43000", "127.0.0.1:30255").unwrap();
        assert_eq!(a.to_string(), "19-ffaa:1:c3f,[127.0.0.1]:43000");
        let b = parse_local("1-ff00:0:112,[127.0.0.2]:5", "127.0.0.1:30255").unwrap();
        assert_eq!(b.port, 5);
        assert!(parse_local("1-ff00:0:112,[]:x", "127.0.0.1:30255").is_err());
    }
}
