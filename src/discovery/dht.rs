//! The mainline DHT as a discovery front end (BEP 5), over UDP/IP and over SCION/UDP: each is
//! one `bt-dht` node on a socket of its own, on a thread of its own. Every public torrent that
//! looks for peers is announced (get_peers, then announce_peer with our port: TCP for the IP
//! DHT, the QUIC socket's for the SCION DHT) when it appears and every [`REANNOUNCE`] after;
//! the peers found go into its peer book (`AddPeers`, source `dht`). Private torrents (BEP 27)
//! are left out. The routing tables are saved in the data dir, so a restart needs no bootstrap
//! node.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bt_dht::udp::UdpDriver;
use bt_dht::{Config, Dht, DhtAddr, DhtEvent, LookupId, Want};

use super::scion_udp::ScionUdp;
use crate::client::control::{
    parse_info_hash, ClientHandle, ClientSnapshot, Command, InfoHash, PeerSource,
};
use crate::scion::{PeerAddr, ScionAddr};

/// How often a torrent is announced again (BEP 5 peers expire after 30 min in most nodes).
const REANNOUNCE: Duration = Duration::from_secs(15 * 60);
/// A torrent that found no peer yet is asked again sooner: after 5 s, doubling up to 60 s.
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(60);
/// How often the routing table is saved.
const SAVE_EVERY: Duration = Duration::from_secs(5 * 60);
/// DHT nodes from peers' `port` messages waiting for the node (more are dropped).
const NODE_QUEUE: usize = 256;

/// Where the client hands the DHT nodes its peers name in BEP 5 `port` messages.
pub type NodeSender<A> = tokio::sync::mpsc::Sender<A>;
type NodeReceiver<A> = tokio::sync::mpsc::Receiver<A>;

/// Where and how the DHT node runs.
#[derive(Debug, Clone)]
pub struct DhtOptions {
    /// The UDP address to bind (e.g. 0.0.0.0:6881).
    pub listen: SocketAddr,
    /// Nodes to ask when the routing table is empty (IP:port).
    pub bootstrap: Vec<SocketAddr>,
    /// Where the routing table is kept between runs (None: not kept).
    pub state_file: Option<PathBuf>,
}

/// Binds the DHT socket (so a port in use is an error here) and starts the node on a thread of
/// its own; it ends, saving its table, when the client is gone. Returns the bound address.
pub fn spawn_dht(
    handle: ClientHandle,
    opts: DhtOptions,
) -> std::io::Result<(JoinHandle<()>, SocketAddr, NodeSender<SocketAddr>)> {
    let (tx, rx) = tokio::sync::mpsc::channel(NODE_QUEUE);
    let socket = UdpSocket::bind(opts.listen)?;
    socket.set_nonblocking(true)?;
    let local = socket.local_addr()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name("bts-dht".into())
        .spawn(move || {
            rt.block_on(async move {
                match tokio::net::UdpSocket::from_std(socket) {
                    Ok(s) => {
                        let dht =
                            engine(opts.bootstrap.clone(), opts.listen.ip(), &opts.state_file);
                        let node = IpNode(UdpDriver::with_socket(s, dht));
                        run(handle, node, rx, opts.state_file).await
                    }
                    Err(e) => tracing::error!("DHT socket: {e}"),
                }
            })
        })?;
    Ok((thread, local, tx))
}

/// Where and how the DHT node over SCION runs.
#[derive(Debug, Clone)]
pub struct ScionDhtOptions {
    /// The SCION daemon of our AS.
    pub sciond: String,
    /// Our host (None: 127.0.0.1) and port (0: a free one of the AS's dispatched range).
    pub host: Option<std::net::IpAddr>,
    pub port: u16,
    /// Nodes to ask while the routing table is empty (`ISD-AS,[IP]:port`).
    pub bootstrap: Vec<ScionAddr>,
    pub state_file: Option<PathBuf>,
}

/// Like [`spawn_dht`] for the DHT over SCION (the original client's address format, see
/// `bt_dht`), on a SCION/UDP socket of its own. Returns its SCION address.
pub fn spawn_scion_dht(
    handle: ClientHandle,
    opts: ScionDhtOptions,
) -> std::io::Result<(JoinHandle<()>, ScionAddr, NodeSender<ScionAddr>)> {
    let (tx, rx) = tokio::sync::mpsc::channel(NODE_QUEUE);
    // Bound on the node's own runtime and thread (the caller may be inside a runtime), the
    // outcome sent back so that a bind error is the caller's error.
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("bts-dht-scion".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = bound_tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                let socket = match ScionUdp::bind(&opts.sciond, opts.host, opts.port).await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = bound_tx.send(Err(e));
                        return;
                    }
                };
                let _ = bound_tx.send(Ok(socket.local_addr()));
                let dht = engine(
                    opts.bootstrap.clone(),
                    socket.local_addr().host,
                    &opts.state_file,
                );
                let node = ScionNode { socket, dht };
                run(handle, node, rx, opts.state_file).await
            })
        })?;
    let local = bound_rx
        .recv()
        .map_err(|_| std::io::Error::other("the DHT thread ended before binding"))??;
    Ok((thread, local, tx))
}

/// Runs a DHT node over SCION that serves the DHT and looks up nothing itself (a bootstrap
/// node for an AS, `dht-node`; tests run many of them). Ends only on a socket error.
pub async fn run_scion_node(
    socket: ScionUdp,
    bootstrap: Vec<ScionAddr>,
    state_file: Option<PathBuf>,
) -> std::io::Result<()> {
    let dht = engine(bootstrap, socket.local_addr().host, &state_file);
    let mut node = ScionNode { socket, dht };
    if let Err(e) = node.dht.bootstrap(Instant::now()) {
        tracing::warn!("DHT bootstrap: {e}");
    }
    let mut next_save = Instant::now() + SAVE_EVERY;
    loop {
        node.step().await?;
        while let Some(ev) = node.dht.poll_event() {
            if let DhtEvent::Bootstrapped { nodes } = ev {
                tracing::info!(nodes, "DHT bootstrapped");
            }
        }
        if Instant::now() >= next_save {
            save(&node.dht, &state_file);
            next_save = Instant::now() + SAVE_EVERY;
        }
    }
}

/// A DHT engine and the socket it runs on.
trait Node {
    type Addr: DhtAddr;
    fn dht(&mut self) -> &mut Dht<Self::Addr>;
    /// Sends what the engine queued, then waits for a datagram or the engine's deadline.
    /// Cancel-safe.
    async fn step(&mut self) -> std::io::Result<()>;
    fn peer(a: Self::Addr) -> PeerAddr;
    /// The port peers should connect to, from the client's snapshot.
    fn announce_port(snap: &ClientSnapshot) -> Option<u16>;
}

struct IpNode(UdpDriver);

impl Node for IpNode {
    type Addr = SocketAddr;
    fn dht(&mut self) -> &mut Dht<SocketAddr> {
        &mut self.0.dht
    }
    async fn step(&mut self) -> std::io::Result<()> {
        self.0.step().await
    }
    fn peer(a: SocketAddr) -> PeerAddr {
        PeerAddr::Ip(a)
    }
    fn announce_port(snap: &ClientSnapshot) -> Option<u16> {
        let tcp = snap.tcp_listen.as_deref()?;
        tcp.parse::<SocketAddr>().ok().map(|a| a.port())
    }
}

struct ScionNode {
    socket: ScionUdp,
    dht: Dht<ScionAddr>,
}

impl Node for ScionNode {
    type Addr = ScionAddr;
    fn dht(&mut self) -> &mut Dht<ScionAddr> {
        &mut self.dht
    }
    async fn step(&mut self) -> std::io::Result<()> {
        while let Some((to, bytes)) = self.dht.poll_transmit() {
            self.socket.send_to(&to, &bytes).await?;
        }
        let deadline = self
            .dht
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        tokio::select! {
            r = self.socket.recv_from() => {
                let (from, payload) = r?;
                self.dht.handle_datagram(from, &payload, Instant::now());
            }
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
        self.dht.handle_timeout(Instant::now());
        Ok(())
    }
    fn peer(a: ScionAddr) -> PeerAddr {
        PeerAddr::Scion(a)
    }
    fn announce_port(snap: &ClientSnapshot) -> Option<u16> {
        let quic = snap.local_scion.as_deref()?;
        quic.parse::<ScionAddr>().ok().map(|a| a.port)
    }
}

/// BEP 32: which address families a node on `ip` can reach (a `::` socket is dual-stack).
fn families_of(ip: std::net::IpAddr) -> Want {
    match ip {
        std::net::IpAddr::V4(_) => Want {
            n4: true,
            n6: false,
        },
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => Want { n4: true, n6: true },
        std::net::IpAddr::V6(_) => Want {
            n4: false,
            n6: true,
        },
    }
}

/// A node on `local_ip`: restored from `state_file` if that holds a usable table.
fn engine<A: DhtAddr>(
    bootstrap: Vec<A>,
    local_ip: std::net::IpAddr,
    state_file: &Option<PathBuf>,
) -> Dht<A> {
    let now = Instant::now();
    let config = || Config {
        bootstrap: bootstrap.clone(),
        families: families_of(local_ip),
        ..Config::default()
    };
    let saved = state_file.as_ref().and_then(|p| std::fs::read(p).ok());
    match saved.map(|bytes| Dht::restore(config(), &bytes, now)) {
        Some(Ok(dht)) => dht,
        Some(Err(e)) => {
            tracing::warn!("ignoring the saved DHT table: {e}");
            Dht::new(config(), now)
        }
        None => Dht::new(config(), now),
    }
}

fn save<A: DhtAddr>(dht: &Dht<A>, state_file: &Option<PathBuf>) {
    let Some(path) = state_file else { return };
    let tmp = path.with_extension("tmp");
    let written = std::fs::write(&tmp, dht.save()).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        tracing::warn!("cannot save the DHT table to {}: {e}", path.display());
    }
}

/// What the node knows about one torrent.
struct Announced {
    next: Instant,
    peers_found: usize,
    /// Lookups in a row that found no peer.
    empty_rounds: u32,
}

async fn run<N: Node>(
    handle: ClientHandle,
    mut node: N,
    mut nodes: NodeReceiver<N::Addr>,
    state_file: Option<PathBuf>,
) {
    let now = Instant::now();
    if let Err(e) = node.dht().bootstrap(now) {
        tracing::warn!("DHT bootstrap: {e}");
    }
    tracing::info!(kind = N::Addr::KIND, id = %hex(&node.dht().id().0), "DHT node running");
    let mut snapshots = handle.subscribe();
    let mut torrents: HashMap<InfoHash, Announced> = HashMap::new();
    let mut lookups: HashMap<LookupId, InfoHash> = HashMap::new();
    let mut next_save = now + SAVE_EVERY;
    loop {
        tokio::select! {
            r = node.step() => {
                if let Err(e) = r {
                    tracing::error!("DHT socket failed: {e}; the DHT stops");
                    break;
                }
            }
            changed = snapshots.changed() => {
                if changed.is_err() {
                    break; // the client is gone
                }
            }
            Some(addr) = nodes.recv() => node.dht().add_node(addr, Instant::now()),
        }
        let now = Instant::now();
        while let Some(ev) = node.dht().poll_event() {
            on_event::<N>(&handle, ev, &mut lookups, &mut torrents);
        }
        let snap = snapshots.borrow().clone();
        let port = N::announce_port(&snap);
        announce_due(node.dht(), &snap, port, &mut torrents, &mut lookups, now);
        if now >= next_save {
            save(node.dht(), &state_file);
            next_save = now + SAVE_EVERY;
        }
    }
    save(node.dht(), &state_file);
}

/// Starts an announce for every torrent that wants peers and is due; forgets the others.
fn announce_due<A: DhtAddr>(
    dht: &mut Dht<A>,
    snap: &ClientSnapshot,
    port: Option<u16>,
    torrents: &mut HashMap<InfoHash, Announced>,
    lookups: &mut HashMap<LookupId, InfoHash>,
    now: Instant,
) {
    let wanted: Vec<InfoHash> = snap
        .torrents
        .iter()
        .filter(|t| super::wants_peers(t) && !t.private)
        .filter_map(|t| parse_info_hash(&t.info_hash).ok())
        .collect();
    torrents.retain(|ih, _| wanted.contains(ih));
    for ih in wanted {
        let due = torrents.get(&ih).is_none_or(|a| a.next <= now);
        if !due || lookups.values().any(|l| *l == ih) {
            continue;
        }
        // Without a listener there is nothing to announce; look for peers only.
        let started = match port {
            Some(p) => dht.announce(bt_dht::Id(ih), Some(p), now),
            None => dht.get_peers(bt_dht::Id(ih), now),
        };
        match started {
            Ok(id) => {
                lookups.insert(id, ih);
                let a = torrents.entry(ih).or_insert(Announced {
                    next: now,
                    peers_found: 0,
                    empty_rounds: 0,
                });
                a.next = now + REANNOUNCE;
            }
            Err(e) => tracing::debug!("DHT announce not started: {e}"),
        }
    }
}

fn on_event<N: Node>(
    handle: &ClientHandle,
    ev: DhtEvent<N::Addr>,
    lookups: &mut HashMap<LookupId, InfoHash>,
    torrents: &mut HashMap<InfoHash, Announced>,
) {
    match ev {
        DhtEvent::PeersFound {
            info_hash, peers, ..
        } => {
            let ih = info_hash.0;
            if let Some(a) = torrents.get_mut(&ih) {
                a.peers_found += peers.len();
            }
            tracing::debug!(info_hash = %hex(&ih), peers = peers.len(), "DHT peers");
            add_peers(handle, ih, peers.into_iter().map(N::peer).collect());
        }
        // Someone announced a torrent of ours to our node: a peer, without a lookup.
        DhtEvent::PeerAnnounced { info_hash, peer } if torrents.contains_key(&info_hash.0) => {
            add_peers(handle, info_hash.0, vec![N::peer(peer)]);
        }
        DhtEvent::LookupDone {
            lookup,
            responded,
            announced_to,
            ..
        } => {
            if let Some(ih) = lookups.remove(&lookup) {
                tracing::debug!(
                    info_hash = %hex(&ih),
                    responded,
                    announced_to = announced_to.len(),
                    "DHT announce done"
                );
                if let Some(a) = torrents.get_mut(&ih).filter(|a| a.peers_found == 0) {
                    let wait = RETRY_FIRST.saturating_mul(1 << a.empty_rounds.min(4));
                    a.next = Instant::now() + wait.min(RETRY_MAX);
                    a.empty_rounds += 1;
                }
            }
        }
        DhtEvent::Bootstrapped { nodes } => tracing::info!(nodes, "DHT bootstrapped"),
        DhtEvent::PeerAnnounced { .. } => {}
    }
}

/// Hands peers to the client without waiting: the node goes on answering meanwhile.
fn add_peers(handle: &ClientHandle, info_hash: InfoHash, peers: Vec<PeerAddr>) {
    let handle = handle.clone();
    tokio::spawn(async move {
        let _ = handle
            .call(|reply| Command::AddPeers {
                info_hash,
                peers,
                source: PeerSource::Dht,
                reply,
            })
            .await;
    });
}

fn hex(b: &[u8]) -> String {
    crate::client::control::info_hash_hex(b.try_into().unwrap_or(&[0; 20]))
}
