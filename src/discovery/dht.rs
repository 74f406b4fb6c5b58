//! The mainline DHT over UDP/IP as a discovery front end (BEP 5): one `bt-dht` node on a UDP
//! socket of its own, on a thread of its own. Every public torrent that looks for peers is
//! announced (get_peers, then announce_peer with our TCP port) when it appears and every
//! [`REANNOUNCE`] after; the peers found go into its peer book (`AddPeers`, source `dht`).
//! Private torrents (BEP 27) are left out. The routing table is saved in the data dir, so a
//! restart needs no bootstrap node.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bt_dht::udp::UdpDriver;
use bt_dht::{Config, Dht, DhtEvent, LookupId};

use crate::client::control::{
    parse_info_hash, ClientHandle, ClientSnapshot, Command, InfoHash, PeerSource,
};
use crate::scion::PeerAddr;

/// How often a torrent is announced again (BEP 5 peers expire after 30 min in most nodes).
const REANNOUNCE: Duration = Duration::from_secs(15 * 60);
/// A torrent that found no peer yet is asked again sooner: after 5 s, doubling up to 60 s.
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(60);
/// How often the routing table is saved.
const SAVE_EVERY: Duration = Duration::from_secs(5 * 60);

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
) -> std::io::Result<(JoinHandle<()>, SocketAddr)> {
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
                    Ok(s) => run(handle, s, opts).await,
                    Err(e) => tracing::error!("DHT socket: {e}"),
                }
            })
        })?;
    Ok((thread, local))
}

fn engine(opts: &DhtOptions, now: Instant) -> Dht<SocketAddr> {
    let config = || Config {
        bootstrap: opts.bootstrap.clone(),
        ..Config::default()
    };
    let saved = opts.state_file.as_ref().and_then(|p| std::fs::read(p).ok());
    match saved.map(|bytes| Dht::restore(config(), &bytes, now)) {
        Some(Ok(dht)) => dht,
        Some(Err(e)) => {
            tracing::warn!("ignoring the saved DHT table: {e}");
            Dht::new(config(), now)
        }
        None => Dht::new(config(), now),
    }
}

fn save(dht: &Dht<SocketAddr>, opts: &DhtOptions) {
    let Some(path) = &opts.state_file else { return };
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

async fn run(handle: ClientHandle, socket: tokio::net::UdpSocket, opts: DhtOptions) {
    let now = Instant::now();
    let mut driver = UdpDriver::with_socket(socket, engine(&opts, now));
    if let Err(e) = driver.dht.bootstrap(now) {
        tracing::warn!("DHT bootstrap: {e}");
    }
    tracing::info!(id = %hex(&driver.dht.id().0), "DHT node running");
    let mut snapshots = handle.subscribe();
    let mut torrents: HashMap<InfoHash, Announced> = HashMap::new();
    let mut lookups: HashMap<LookupId, InfoHash> = HashMap::new();
    let mut next_save = now + SAVE_EVERY;
    loop {
        tokio::select! {
            r = driver.step() => {
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
        }
        let now = Instant::now();
        while let Some(ev) = driver.dht.poll_event() {
            on_event(&handle, ev, &mut lookups, &mut torrents);
        }
        let snap = snapshots.borrow().clone();
        announce_due(&mut driver.dht, &snap, &mut torrents, &mut lookups, now);
        if now >= next_save {
            save(&driver.dht, &opts);
            next_save = now + SAVE_EVERY;
        }
    }
    save(&driver.dht, &opts);
}

/// Starts an announce for every torrent that wants peers and is due; forgets the others.
fn announce_due(
    dht: &mut Dht<SocketAddr>,
    snap: &ClientSnapshot,
    torrents: &mut HashMap<InfoHash, Announced>,
    lookups: &mut HashMap<LookupId, InfoHash>,
    now: Instant,
) {
    let port = snap
        .tcp_listen
        .as_deref()
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .map(|a| a.port());
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
        // Without a TCP listener there is nothing to announce; look for peers only.
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

fn on_event(
    handle: &ClientHandle,
    ev: DhtEvent<SocketAddr>,
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
            add_peers(handle, ih, peers);
        }
        // Someone announced a torrent of ours to our node: a peer, without a lookup.
        DhtEvent::PeerAnnounced { info_hash, peer } if torrents.contains_key(&info_hash.0) => {
            add_peers(handle, info_hash.0, vec![peer]);
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
fn add_peers(handle: &ClientHandle, info_hash: InfoHash, peers: Vec<SocketAddr>) {
    let peers: Vec<PeerAddr> = peers.into_iter().map(PeerAddr::Ip).collect();
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
