//! The client: one process running many torrents over shared sockets (see `control` for the
//! commands and snapshots front ends use to talk to it).
//!
//! * [`Client`] (in `driver`) owns what torrents share and is the event loop's app.
//! * `router`: incoming lanes are held until their handshake names a torrent.
//! * `torrent`: one torrent's state machine; `peer_book`: the peers it knows.
//! * `paths`: SCION paths per destination AS, for every torrent.
//! * `wanted`: file priorities → piece priorities, skipped files, wanted progress.
//! * `resume`: fast-resume data, the store trait, the start-up check decision.
//! * `labels`: category and tag names; `mover`: moving data across filesystems.
//! * `queue`: the queueing policy (which torrents run under the active limits), sans-IO.

pub mod checker;
pub mod control;
pub mod driver;
pub mod labels;
pub mod magnet;
pub mod mover;
pub mod paths;
pub mod peer_book;
pub mod phase;
pub mod queue;
pub mod resume;
pub mod router;
pub mod runtimes;
pub mod start;
pub mod stream;
pub mod torrent;
pub mod trackers;
pub mod wanted;
pub mod web_seeds;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

pub use control::{channel, ClientHandle, ClientSide};
pub use driver::{Client, EngineOptions, LiveTorrent, DEFAULT_MAX_LANES};
pub use resume::{FileStamp, ResumeData, ResumeStore, SavedTorrent, SavedTorrentSettings};

use crate::engine::tcp::TcpHub;
use crate::lanes::PathPolicy;
use crate::net::uring;
use crate::scion::daemon::DaemonClient;
use crate::scion::{parse_ia, Ia, ScionAddr};

/// What the daemon's client runs with.
pub struct ClientConfig {
    /// SCION daemon address; None: the default (`SCION_DAEMON_ADDRESS` or the standard port).
    pub sciond: Option<String>,
    /// Our SCION address; None: 127.0.0.1 with a free port in the AS's range.
    pub local: Option<ScionAddr>,
    /// TCP listen address; None: the SCION address's IP and port (or any free port).
    pub tcp_listen: Option<SocketAddr>,
    /// Where state lives (the store decides the layout); created if missing.
    pub data_dir: PathBuf,
    /// Torrent list and fast-resume data; None: nothing survives a restart.
    pub store: Option<Box<dyn ResumeStore>>,
    pub path_policy: PathPolicy,
    pub engine: EngineOptions,
    /// io_uring runtimes on the SCION port (see [`runtimes`]); 1 without SCION.
    pub runtimes: u8,
}

impl ClientConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            sciond: None,
            local: None,
            tcp_listen: None,
            data_dir,
            store: None,
            path_policy: PathPolicy::default(),
            engine: EngineOptions::default(),
            runtimes: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("SCION daemon: {0}")]
    Daemon(String),
    #[error("cannot bind {0}")]
    Bind(String),
    /// The local address is not in the SCION daemon's AS.
    #[error("{0}")]
    WrongAs(String),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Other(String),
}

/// The SCION side of a client: the bound socket and our address, or a placeholder socket when
/// there is no SCION daemon (TCP only).
pub struct ScionSide {
    pub socket: tokio_uring::net::UdpSocket,
    pub local: ScionAddr,
    pub daemon: Option<DaemonClient>,
}

pub async fn connect_daemon(addr: &str) -> Result<(DaemonClient, Ia), ClientError> {
    let d = DaemonClient::connect(addr).await.map_err(|e| {
        ClientError::Daemon(format!("cannot reach the SCION daemon at {addr}: {e}"))
    })?;
    let ia = d
        .local_ia()
        .await
        .map_err(|e| ClientError::Daemon(format!("SCION daemon at {addr} did not answer: {e}")))?;
    Ok((d, ia))
}

/// Binds our SCION/UDP socket: the given address, or when it has no port (or there is no
/// address, then on 127.0.0.1) a free port inside the AS's port range: routers of a real AS
/// (and pocketscion's) only deliver to ports in that range, so an ephemeral port picked by
/// the kernel would receive nothing.
pub async fn bind_local(
    daemon: &DaemonClient,
    ia: Ia,
    local: Option<ScionAddr>,
) -> Result<(tokio_uring::net::UdpSocket, ScionAddr), ClientError> {
    if let Some(l) = local {
        if l.ia != ia {
            return Err(ClientError::WrongAs(format!(
                "local address is in AS {} but the SCION daemon serves AS {ia}",
                l.ia
            )));
        }
        if l.port != 0 {
            warn_outside_dispatched_range(daemon, l.port).await;
            let s = uring::bind(l.socket_addr())
                .map_err(|e| ClientError::Bind(format!("{}: {e}", l.socket_addr())))?;
            return Ok((s, l));
        }
    }
    let host = local.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |l| l.host);
    let mut last = None;
    for port in port_candidates(daemon).await {
        match uring::bind(SocketAddr::new(host, port)) {
            Ok(s) => {
                let port = s.local_addr().map(|a| a.port()).unwrap_or(port);
                return Ok((s, ScionAddr::new(ia, host, port)));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(ClientError::Other(format!("no free UDP port: {last:?}")))
}

/// A port the user chose outside the AS's dispatched range gets a warning: routers of
/// current scionproto (SCIONLab's included) deliver to such a port only through a SCION
/// dispatcher on the host (port 30041), which passes packets on to it; without one nothing
/// arrives. (scionproto v0.14.0's router delivers to any port, by a bug.) Bound anyway: the
/// host may run a dispatcher.
pub async fn warn_outside_dispatched_range(daemon: &DaemonClient, port: u16) {
    if let Ok((lo, hi)) = daemon.port_range().await {
        if lo > 0 && hi >= lo && !(lo..=hi).contains(&port) {
            tracing::warn!(
                "port {port} is outside the dispatched port range {lo}-{hi} of the AS: its \
                 routers deliver to it only through a SCION dispatcher on this host (port \
                 30041); give no port (or 0) to get one inside the range"
            );
        }
    }
}

/// Ports to try for a SCION/UDP socket: up to 200 of the AS's dispatched range from a random
/// start, or just 0 (any) when the daemon names no narrower range.
pub async fn port_candidates(daemon: &DaemonClient) -> Vec<u16> {
    let (lo, hi) = daemon.port_range().await.unwrap_or((0, 0));
    if lo > 0 && hi >= lo && !(lo <= 1024 && hi == 65535) {
        let span = u32::from(hi - lo) + 1;
        let start = rand::random::<u32>() % span;
        (0..span.min(200))
            .map(|k| lo + ((start + k) % span) as u16)
            .collect()
    } else {
        vec![0]
    }
}

/// A UDP socket for the driver when SCION is off (nothing is sent on it).
pub fn placeholder_socket() -> Result<ScionSide, ClientError> {
    let host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let s = uring::bind(SocketAddr::new(host, 0))
        .map_err(|e| ClientError::Other(format!("cannot bind a UDP socket: {e}")))?;
    let port = s.local_addr().map(|a| a.port()).unwrap_or(0);
    let ia = parse_ia("0-0").map_err(|e| ClientError::Other(e.to_string()))?;
    Ok(ScionSide {
        socket: s,
        local: ScionAddr::new(ia, host, port),
        daemon: None,
    })
}

/// Listens for TCP peers on `want`, or when that was only a default, on any free port of the
/// same IP.
pub fn listen_tcp(
    hub: &TcpHub,
    want: SocketAddr,
    explicit: bool,
) -> Result<SocketAddr, ClientError> {
    match hub.listen(want) {
        Ok(a) => Ok(a),
        Err(_) if !explicit => hub
            .listen(SocketAddr::new(want.ip(), 0))
            .map_err(|e| ClientError::Bind(format!("TCP {}: {e}", want.ip()))),
        Err(e) => Err(ClientError::Bind(format!("TCP {want}: {e}"))),
    }
}

/// Runs the daemon's client until a `Shutdown` command: binds the sockets, loads the saved
/// torrents, executes commands and publishes snapshots. Blocks (starts tokio-uring).
pub fn run(cfg: ClientConfig, side: ClientSide) -> Result<(), ClientError> {
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| ClientError::Io(format!("cannot create {}: {e}", cfg.data_dir.display())))?;
    tokio_uring::start(run_async(cfg, side))
}

async fn run_async(mut cfg: ClientConfig, side: ClientSide) -> Result<(), ClientError> {
    let setup = start::Setup {
        sciond: cfg
            .sciond
            .clone()
            .unwrap_or_else(DaemonClient::default_address),
        local: cfg.local,
        scion_required: cfg.local.is_some(),
        tcp_listen: cfg.tcp_listen,
        path_policy: cfg.path_policy.clone(),
        engine: cfg.engine.clone(),
        runtimes: Some(cfg.runtimes),
    };
    let start::Started {
        mut client,
        socket,
        mut net,
        local,
        runtimes: count,
        started: now,
        ..
    } = start::start(setup).await?;
    if let Some(store) = cfg.store.take() {
        client.set_store(store);
    }
    client.load_saved(now);
    client.attach_control(side.commands, side.snapshots);
    tracing::info!(
        tcp = ?client.tcp_listen,
        scion = ?client.local_scion,
        torrents = client.torrent_count(),
        "client running"
    );
    let shared = match (count > 1, &client.sciond) {
        (true, Some(sciond)) => {
            let (global_down, global_up) = client.global_limits();
            let extra = runtimes::ExtraConfig {
                local,
                sciond: sciond.clone(),
                policy: cfg.path_policy.clone(),
                engine: cfg.engine.clone(),
                pool: client.pool(),
                global_down,
                global_up,
            };
            let (mail, extra) = runtimes::start_extra(&socket, count, extra)?;
            client.attach_extra_runtimes(extra);
            Some((0, mail))
        }
        _ => None,
    };
    let ran = uring::run_shared(socket, &mut net, &mut client, shared).await;
    client.stop_listening().await;
    ran.map_err(|e| ClientError::Other(e.to_string()))
}
