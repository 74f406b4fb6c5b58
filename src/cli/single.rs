//! The client of a single-shot command (`seed`, `download`, the original client's flags): SCION
//! when a daemon answers (or is required), the TCP listener, and the loop's network side.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use super::args::TransferArgs;
use super::exit::{self, CliError};
use super::path_select::{candidates, choose_on_terminal};
use super::run::{bind_local, client_err, connect_daemon, daemon_address};
use crate::client::paths::PathService;
use crate::client::{self, Client, ClientError, EngineOptions};
use crate::engine::tcp::TcpHub;
use crate::lanes::{PathPolicy, Preference};
use crate::net::ScionNet;
use crate::scion::daemon::DaemonClient;
use crate::scion::{Ia, PeerAddr, ScionAddr};
use crate::storage::HashPool;

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

/// Sets up the client. Without a SCION daemon it goes on over TCP only, unless SCION was
/// asked for (SCION peers, `local`).
pub async fn start_single(
    t: &TransferArgs,
    scion_peers: &[ScionAddr],
    local: Option<ScionAddr>,
    tcp_listen: Option<SocketAddr>,
    opts: EngineOptions,
) -> Result<Single, CliError> {
    let daemon_addr = daemon_address(&t.sciond);
    let mut opts = opts;
    opts.preference = t.preference.clone();
    let mut policy = t.path_policy.clone();
    let scion = match connect_daemon(&daemon_addr).await {
        Ok((daemon, ia)) => {
            // A magnet link's metadata fetch is followed by the download: ask once, there.
            if t.interactive && !opts.metadata_only {
                choose_paths_by_hand(&daemon, ia, scion_peers, &mut policy, &t.preference).await?;
            }
            let (socket, local) = bind_local(&daemon, ia, local).await?;
            client::ScionSide {
                socket,
                local,
                daemon: Some(daemon),
            }
        }
        Err(e) if scion_peers.is_empty() && local.is_none() => {
            tracing::warn!("{e}; continuing without SCION (TCP only)");
            client::placeholder_socket().map_err(client_err)?
        }
        Err(e) => return Err(e),
    };
    let scion_on = scion.daemon.is_some();
    let local = scion.local;
    let started = Instant::now();
    let pool = HashPool::new(0)
        .map(Arc::new)
        .map_err(|e| exit::other(format!("cannot start hash workers: {e}")))?;
    let paths = PathService::new(scion.daemon.clone(), policy);
    let hub = TcpHub::new(Default::default());
    let mut client = Client::new(pool, paths, hub.clone(), opts, started);
    let want = tcp_listen.unwrap_or(if scion_on {
        local.socket_addr()
    } else {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
    });
    let tcp_addr = match client::listen_tcp(&hub, want, tcp_listen.is_some()) {
        Ok(a) => a,
        Err(ClientError::Bind(m)) if tcp_listen.is_some() => {
            return Err(exit::usage(format!("cannot listen on {m}")))
        }
        Err(ClientError::Bind(m)) => return Err(exit::other(format!("cannot listen on {m}"))),
        Err(e) => return Err(client_err(e)),
    };
    client.tcp_listen = Some(tcp_addr);
    client.local_scion = scion_on.then_some(local);
    client.sciond = scion_on.then_some(daemon_addr);
    let runtimes = client::runtimes::count(t.runtimes, scion_on);
    let tuning = client::runtimes::tuning(0, runtimes);
    let mut net = ScionNet::new(local, &tuning, true).map_err(|e| exit::other(e.to_string()))?;
    if let Some(daemon) = &scion.daemon {
        net.set_as_mtu(daemon.local_mtu().await);
    }
    Ok(Single {
        client,
        socket: scion.socket,
        net,
        local,
        scion_on,
        runtimes,
        tcp_addr,
        started,
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
