//! The client of a single-shot command (`seed`, `download`, the original client's flags): SCION
//! when a daemon answers (or is required), the TCP listener, and the loop's network side.

use std::net::SocketAddr;
use std::time::Instant;

use super::args::TransferArgs;
use super::exit::{self, CliError};
use super::path_select::{candidates, choose_on_terminal};
use super::run::{client_err, daemon_address};
use crate::client::control::ClientHandle;
use crate::client::{start, Client, ClientError, EngineOptions};
use crate::lanes::{PathPolicy, Preference};
use crate::net::ScionNet;
use crate::scion::daemon::DaemonClient;
use crate::scion::{Ia, PeerAddr, ScionAddr};

/// The SCION address a start line shows as its last token (after " as "): the bound address,
/// or `none (no SCION daemon)` for a TCP-only run.
pub fn shown_scion(local: &ScionAddr, scion_on: bool) -> String {
    match scion_on {
        true => local.to_string(),
        false => "none (no SCION daemon)".to_string(),
    }
}

pub struct Single {
    pub client: Client,
    pub socket: tokio_uring::net::UdpSocket,
    pub net: ScionNet,
    pub local: ScionAddr,
    pub scion_on: bool,
    /// io_uring runtimes to seed on: `--runtimes`, or 1 when SCION is off (only QUIC lanes
    /// are spread over runtimes).
    pub runtimes: u8,
    pub tcp_addr: SocketAddr,
    pub started: Instant,
}

/// Sets up the client (the same start-up as the daemon's, `client::start`). Without a SCION
/// daemon it goes on over TCP only, unless SCION was asked for (SCION peers, `local`).
pub async fn start_single(
    t: &TransferArgs,
    scion_peers: &[ScionAddr],
    local: Option<ScionAddr>,
    tcp_listen: Option<SocketAddr>,
    opts: EngineOptions,
) -> Result<Single, CliError> {
    let mut opts = opts;
    opts.preference = t.preference.clone();
    let metadata_only = opts.metadata_only;
    let setup = start::Setup {
        sciond: daemon_address(&t.sciond),
        local,
        scion_required: !scion_peers.is_empty() || local.is_some(),
        tcp_listen,
        path_policy: t.path_policy.clone(),
        engine: opts,
        runtimes: t.runtimes,
    };
    let mut s = start::start(setup).await.map_err(|e| match e {
        ClientError::Bind(m) if tcp_listen.is_some() => exit::usage(format!("cannot bind {m}")),
        ClientError::Bind(m) => exit::other(format!("cannot bind {m}")),
        e => client_err(e),
    })?;
    // A magnet link's metadata fetch is followed by the download: ask once, there.
    if let (true, false, Some(daemon), Some(ia)) = (t.interactive, metadata_only, &s.daemon, s.ia) {
        let mut policy = t.path_policy.clone();
        choose_paths_by_hand(daemon, ia, scion_peers, &mut policy, &t.preference).await?;
        s.client.set_path_policy(policy);
    }
    Ok(Single {
        scion_on: s.scion_on(),
        client: s.client,
        socket: s.socket,
        net: s.net,
        local: s.local,
        runtimes: s.runtimes,
        tcp_addr: s.tcp_addr,
        started: s.started,
    })
}

/// `-i`: for each AS of the command line's SCION peers, the usable paths are listed and the
/// one typed on stdin is the only one lanes to that AS use.
async fn choose_paths_by_hand(
    daemon: &DaemonClient,
    ia: Ia,
    peers: &[ScionAddr],
    policy: &mut PathPolicy,
    pref: &Preference,
) -> Result<(), CliError> {
    let mut asked: Vec<Ia> = Vec::new();
    for dst in peers.iter().map(|p| p.ia) {
        if dst == ia || asked.contains(&dst) {
            continue;
        }
        asked.push(dst);
        let all = daemon
            .paths(dst, false)
            .await
            .map_err(|e| exit::daemon(format!("path lookup for AS {dst} failed: {e}")))?;
        let offered = all.len();
        let usable = candidates(all, policy, pref);
        if usable.is_empty() {
            return Err(exit::unreachable(format!(
                "none of the {offered} paths to AS {dst} satisfies the path policy {policy}"
            )));
        }
        let chosen = choose_on_terminal(dst, &usable).map_err(|e| exit::usage(e.to_string()))?;
        policy.pin(&chosen);
    }
    Ok(())
}

impl Single {
    /// The command line's peers as the first entries of a torrent's peer book: SCION peers
    /// only when SCION is up.
    pub fn book(&self, scion: &[ScionAddr], tcp: &[SocketAddr]) -> Vec<PeerAddr> {
        scion
            .iter()
            .filter(|_| self.scion_on)
            .map(|p| PeerAddr::Scion(*p))
            .chain(tcp.iter().map(|a| PeerAddr::Ip(*a)))
            .collect()
    }
}

/// SCION peers get QUIC lanes over SCION paths, IP peers a plain BitTorrent TCP connection.
pub fn split_peers(peers: &[String]) -> Result<(Vec<ScionAddr>, Vec<SocketAddr>), CliError> {
    let (mut scion, mut tcp) = (Vec::new(), Vec::new());
    for p in peers {
        match p.parse::<PeerAddr>() {
            Ok(PeerAddr::Scion(a)) => scion.push(a),
            Ok(PeerAddr::Ip(a)) => tcp.push(a),
            Err(e) => return Err(exit::usage(format!("invalid peer address {p:?}: {e}"))),
        }
    }
    Ok((scion, tcp))
}

/// Starts Local Service Discovery if asked for (`--lsd`, which needs `--tcp-listen`), for the
/// daemon and single-shot runs alike; it ends when the client's snapshots end (join it).
pub(crate) fn start_lsd(
    on: bool,
    tcp_listen: Option<&str>,
    handle: &ClientHandle,
) -> Result<Option<std::thread::JoinHandle<()>>, CliError> {
    let Some(listen) = tcp_listen.filter(|_| on) else {
        return Ok(None);
    };
    let listen = super::run::parse_tcp_listen(listen)?;
    use crate::discovery::lsd::{InterfaceError as I, LsdError as E};
    let thread = crate::discovery::spawn_lsd(handle.clone(), listen).map_err(|e| match e {
        E::Interfaces(I::Loopback(_) | I::NoSuchInterface(_)) => exit::usage(format!("--lsd: {e}")),
        E::Interfaces(I::Read(_)) | E::Socket { .. } | E::Thread(_) => {
            exit::other(format!("--lsd: {e}"))
        }
    })?;
    Ok(Some(thread))
}

/// The original client's DHT over SCION for a single-shot command (`-enableDht`): a node on
/// `-dhtPort` (none: a free port of the AS's range) of `-local`'s host, bootstrapped from
/// `-dhtBootstrapAddr` and the torrent's `nodes`. Its port and node queue go into `opts`; it
/// ends when the client's snapshots end (join the handle).
pub fn start_scion_dht(
    t: &TransferArgs,
    handle: &crate::client::ClientHandle,
    torrent_nodes: &[PeerAddr],
    opts: &mut EngineOptions,
) -> Result<Option<std::thread::JoinHandle<()>>, CliError> {
    if !t.enable_dht {
        return Ok(None);
    }
    let mut bootstrap: Vec<ScionAddr> = torrent_nodes
        .iter()
        .filter_map(|n| match n {
            PeerAddr::Scion(a) => Some(*a),
            PeerAddr::Ip(_) => None,
        })
        .collect();
    for b in &t.dht_bootstrap {
        let a = b
            .parse::<ScionAddr>()
            .map_err(|e| exit::usage(format!("-dhtBootstrapAddr {b}: {e}")))?;
        bootstrap.push(a);
    }
    let sciond = daemon_address(&t.sciond);
    let host = match t.local.as_deref() {
        Some(l) => Some(super::run::parse_local(l, &sciond)?.host),
        None => None,
    };
    let dht_opts = crate::discovery::ScionDhtOptions {
        sciond,
        host,
        port: t.dht_port.unwrap_or(0),
        bootstrap,
        state_file: None,
    };
    let (thread, addr, nodes) = crate::discovery::spawn_scion_dht(handle.clone(), dht_opts)
        .map_err(|e| exit::daemon(format!("cannot run the DHT over SCION: {e}")))?;
    tracing::info!(%addr, "DHT over SCION");
    opts.dht_scion_port = Some(addr.port);
    opts.dht_scion_nodes = Some(nodes);
    Ok(Some(thread))
}
