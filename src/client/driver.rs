//! The [`Client`]: many torrents over one SCION/UDP socket (QUIC endpoint), one TCP listener,
//! one SHA-1 pool and one path service, driven by [`crate::net::uring::run`] as its [`App`].
//!
//! Incoming lanes belong to nobody until their handshake names an info hash (the router);
//! outgoing lanes belong to the torrent that dialled them. Commands from the front ends arrive
//! on a queue that wakes the loop; a snapshot of everything is published every second and after
//! each command.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quinn_proto::{ConnectionHandle, StreamId, VarInt};
use tokio::sync::{watch, Notify};

use super::checker::Checker;
use super::control::{
    info_hash_hex, AddTorrent, ClientSnapshot, Command, ControlError, InfoHash, Limits, PeerSource,
    SeedPolicy, TorrentSource,
};
use super::paths::PathService;
use super::peer_book::PeerState;
use super::phase::{CheckingPhase, FetchedPhase, LivePhase, MagnetPhase, Phase, TorrentData};
use super::resume::{self, plan_check, ClientSettings, ResumeData, ResumeStore, SavedTorrent};
use super::router::{LaneRouter, PendingTcp, Sniff};
use super::torrent::{self, Torrent};
use crate::engine::dialer::{LaneRules, PeerDialer};
use crate::engine::liveness::LivenessRules;
use crate::engine::quic::{Failure, QuicBtApp, StopWhen};
use crate::engine::tcp::{TcpEvent, TcpHub, TcpLanes};
use crate::engine::verify::PoolVerifier;
use crate::lanes::Preference;
use crate::net::uring::App;
use crate::net::{NetEvent, ScionNet};
use crate::quic::QuicEvent;
use crate::scion::{PeerAddr, ScionAddr};
use crate::storage::{Allocation, DataPlace, HashPool, MmapStorage, Storage, StorageError};
use crate::torrent::close::CloseReason;
use crate::torrent::lane_protocol::LaneProtocol;
use crate::torrent::meta::Metainfo;
use crate::torrent::rate::{Limiter, SharedBucket};
use crate::torrent::session::{LaneId, PeerId, Session, SessionConfig};
use crate::wire::Bitfield;

/// Lanes per SCION peer when not configured: every link-disjoint path, up to this cap.
pub const DEFAULT_MAX_LANES: usize = 8;
/// Peers dialled at once per torrent.
const MAX_ACTIVE_PEERS: usize = 50;
/// Peer exchange fills a torrent's peer book up to this size (the book has its own cap).
const MAX_BOOK_FROM_PEX: usize = 500;
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);
const RESUME_EVERY: Duration = Duration::from_secs(10);
/// How long close frames get to leave at shutdown.
const CLOSE_GRACE: Duration = Duration::from_millis(200);
/// QUIC application close code for a lane whose handshake named no torrent of ours.
const CLOSE_UNKNOWN_TORRENT: u32 = 3;

/// How the client's torrents behave.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Lanes per SCION peer; None: every link-disjoint path up to [`DEFAULT_MAX_LANES`].
    pub max_lanes: Option<usize>,
    /// Which usable path lanes take first (`--preference`).
    pub preference: Preference,
    pub liveness: LivenessRules,
    /// Stop the client when every torrent's app finished (single-shot download).
    pub exit_when_finished: bool,
    /// Stop once every torrent knows its metadata (a single-shot magnet download fetches it
    /// first, then runs as with a .torrent); a fetch with no peer for `connect_timeout`
    /// fails.
    pub metadata_only: bool,
    /// How long a metadata-only fetch may go without a peer.
    pub connect_timeout: Option<Duration>,
    /// Our DHT nodes' UDP ports, if they run (see [`SessionConfig::dht_port`]).
    pub dht_port: Option<u16>,
    pub dht_scion_port: Option<u16>,
    /// Where DHT nodes named by peers (BEP 5 `port`) go: the DHT over IP and over SCION.
    pub dht_ip_nodes: Option<crate::discovery::dht::NodeSender<SocketAddr>>,
    pub dht_scion_nodes: Option<crate::discovery::dht::NodeSender<ScionAddr>>,
    /// MSE/PE policy of TCP connections; None: the saved setting (daemon) or the default.
    pub encryption: Option<bt_mse::Policy>,
}

/// How a torrent that is ready to run is set up (single-shot commands pass their own).
pub struct LiveTorrent {
    pub meta: Arc<Metainfo>,
    pub torrent_bytes: Vec<u8>,
    pub storage: Arc<MmapStorage>,
    pub have: Bitfield,
    pub data_path: PathBuf,
    pub out_dir: PathBuf,
    pub peers: Vec<PeerAddr>,
    pub source: PeerSource,
    pub stop_when: StopWhen,
}

pub struct Client {
    torrents: HashMap<InfoHash, Torrent>,
    pool: Arc<HashPool>,
    paths: PathService,
    tcp: TcpHub,
    pub tcp_listen: Option<SocketAddr>,
    /// Our SCION address, if SCION is up.
    pub local_scion: Option<ScionAddr>,
    pub sciond: Option<String>,
    peer_id: PeerId,
    opts: EngineOptions,
    /// Which torrent every lane belongs to.
    router: LaneRouter,
    commands: Rc<RefCell<VecDeque<Command>>>,
    snapshots: Option<watch::Sender<Arc<ClientSnapshot>>>,
    store: Option<Box<dyn ResumeStore>>,
    limits: Limits,
    /// The global limits' buckets, shared by every torrent's session.
    global_down: SharedBucket,
    global_up: SharedBucket,
    seed_policy: SeedPolicy,
    next_snapshot: Instant,
    /// A state change worth publishing before the next periodic snapshot.
    publish_due: bool,
    next_resume: Instant,
    shutting_down: Option<(Instant, Vec<super::control::Reply<()>>)>,
    done: bool,
    wake: Rc<Notify>,
    /// The other runtimes on our port, if there are several (see `client::runtimes`).
    extra: Option<super::runtimes::ExtraRuntimes>,
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn new_peer_id() -> PeerId {
    let mut id = *b"-BS0100-000000000000";
    for b in &mut id[8..] {
        *b = b"0123456789abcdefghijklmnopqrstuvwxyz"[rand::random::<u32>() as usize % 36];
    }
    id
}

impl Client {
    /// A client over an existing hash pool, path service and TCP hub (call inside the
    /// tokio-uring runtime).
    pub fn new(
        pool: Arc<HashPool>,
        paths: PathService,
        tcp: TcpHub,
        opts: EngineOptions,
        now: Instant,
    ) -> Self {
        let wake = tcp.wake_handle();
        tcp.set_encryption(opts.encryption.unwrap_or_default());
        Self {
            torrents: HashMap::new(),
            pool,
            paths,
            tcp,
            tcp_listen: None,
            local_scion: None,
            sciond: None,
            peer_id: new_peer_id(),
            opts,
            router: LaneRouter::default(),
            commands: Rc::new(RefCell::new(VecDeque::new())),
            snapshots: None,
            store: None,
            limits: Limits::default(),
            global_down: SharedBucket::new(None, now),
            global_up: SharedBucket::new(None, now),
            seed_policy: SeedPolicy::default(),
            next_snapshot: now,
            publish_due: false,
            next_resume: now + RESUME_EVERY,
            shutting_down: None,
            done: false,
            wake,
            extra: None,
        }
    }

    /// Takes commands from `rx` (a task moves them to the loop and wakes it) and publishes
    /// snapshots on `tx`.
    pub fn attach_control(
        &mut self,
        mut rx: tokio::sync::mpsc::UnboundedReceiver<Command>,
        tx: watch::Sender<Arc<ClientSnapshot>>,
    ) {
        let (queue, wake) = (self.commands.clone(), self.wake.clone());
        tokio_uring::spawn(async move {
            while let Some(c) = rx.recv().await {
                queue.borrow_mut().push_back(c);
                wake.notify_one();
            }
        });
        self.snapshots = Some(tx);
        // The first snapshot says the client runs with its saved torrents loaded.
        self.publish(Instant::now());
    }

    /// Replaces the path policy before any path was asked for (`-i` pins paths by hand once
    /// the SCION daemon is known).
    pub fn set_path_policy(&mut self, policy: crate::lanes::PathPolicy) {
        self.paths.set_policy(policy);
    }

    pub fn set_store(&mut self, store: Box<dyn ResumeStore>) {
        self.store = Some(store);
    }

    pub fn torrent(&self, ih: &InfoHash) -> Option<&Torrent> {
        self.torrents.get(ih)
    }

    pub fn torrent_mut(&mut self, ih: &InfoHash) -> Option<&mut Torrent> {
        self.torrents.get_mut(ih)
    }

    /// The shared SHA-1 pool (single-shot commands check their data on it before the loop).
    pub fn pool(&self) -> Arc<HashPool> {
        self.pool.clone()
    }

    /// How this client's torrents behave.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    pub fn torrent_count(&self) -> usize {
        self.torrents.len()
    }

    pub fn torrents(&self) -> impl Iterator<Item = (&InfoHash, &Torrent)> {
        self.torrents.iter()
    }

    fn session_config(&self) -> SessionConfig {
        let mut cfg = SessionConfig::new(self.peer_id);
        cfg.upload = true;
        cfg.dht_port = self.opts.dht_port;
        cfg.dht_scion_port = self.opts.dht_scion_port;
        cfg.tcp_port = self.tcp_listen.map(|a| a.port());
        // -numPaths caps the lanes we serve a peer as well as those we dial.
        cfg.max_served_lanes = self.opts.max_lanes;
        cfg
    }

    /// Adds a torrent whose data is already checked (single-shot commands check before the
    /// loop starts, as they always did); it goes live at once.
    pub fn add_live(&mut self, t: LiveTorrent, now: Instant) -> InfoHash {
        let buckets = (SharedBucket::new(None, now), SharedBucket::new(None, now));
        let (peers, source) = (t.peers.clone(), t.source);
        let tor = self.insert_live(t, buckets, now);
        for p in &peers {
            tor.book.add(*p, source);
        }
        tor.info_hash
    }

    /// Adds a checked torrent straight into the live phase, with the given own-limit buckets.
    fn insert_live(
        &mut self,
        t: LiveTorrent,
        buckets: (SharedBucket, SharedBucket),
        now: Instant,
    ) -> &mut Torrent {
        let ih = t.meta.info_hash;
        let settings = torrent::settings(t.out_dir, false, Limits::default(), &t.peers);
        let data = TorrentData {
            meta: t.meta,
            torrent_bytes: t.torrent_bytes,
            data_path: t.data_path,
            storage: t.storage,
        };
        let live = self.new_live(data, t.have, &buckets, false, t.stop_when, now);
        let mut tor = Torrent::new(ih, Phase::Live(Box::new(live)), settings, now);
        (tor.down_bucket, tor.up_bucket) = buckets;
        self.register_live(ih, &mut tor);
        self.torrents.entry(ih).insert_entry(tor).into_mut()
    }

    /// The data paths (with the torrent's name) of every torrent that has its data, but
    /// `except`'s.
    fn data_paths_in_use(&self, except: &InfoHash) -> Vec<(String, PathBuf)> {
        self.torrents
            .iter()
            .filter(|(ih, _)| *ih != except)
            .filter_map(|(_, t)| Some((t.name(), t.phase.data()?.data_path.clone())))
            .collect()
    }

    /// Adds a torrent from its .torrent bytes: it is checked (trusting `resume` where the
    /// files did not change) on the shared pool, then runs (or stays paused).
    pub fn add_torrent(
        &mut self,
        bytes: Vec<u8>,
        settings: resume::SavedTorrentSettings,
        resume: Option<ResumeData>,
        peers: &[(PeerAddr, PeerSource)],
        now: Instant,
    ) -> Result<InfoHash, ControlError> {
        let meta = Metainfo::from_bytes(&bytes)
            .map(Arc::new)
            .map_err(|e| ControlError::BadTorrent(e.to_string()))?;
        let ih = meta.info_hash;
        if self.torrents.contains_key(&ih) {
            return Err(ControlError::Duplicate(info_hash_hex(&ih)));
        }
        let in_use = self.data_paths_in_use(&ih);
        let checking = prepare_data(&settings, meta, bytes, resume.as_ref(), &in_use)?;
        let pieces_checked = checking.checker.progress().1 as u32;
        let mut t = Torrent::new(ih, Phase::Checking(checking), settings, now);
        t.pieces_checked = pieces_checked;
        add_known_peers(&mut t, peers);
        self.torrents.insert(ih, t);
        Ok(ih)
    }

    /// Adds a magnet link: the torrent exists with its info hash only and fetches its
    /// metadata from the peers it learns of (the link's `x.pe`, `peers`, trackers from `tr`),
    /// then is checked and runs like any other.
    pub fn add_magnet(
        &mut self,
        uri: &str,
        mut settings: resume::SavedTorrentSettings,
        peers: &[(PeerAddr, PeerSource)],
        now: Instant,
    ) -> Result<InfoHash, ControlError> {
        let magnet = bt_ext::parse_magnet(uri)
            .map_err(|e| ControlError::BadTorrent(format!("bad magnet link: {e}")))?;
        let ih = magnet.info_hash;
        if self.torrents.contains_key(&ih) {
            return Err(ControlError::Duplicate(info_hash_hex(&ih)));
        }
        settings.magnet = Some(uri.trim().to_string());
        let link_peers = magnet.peers.clone();
        let trackers = magnet.trackers.len();
        let phase = Phase::Magnet(MagnetPhase {
            magnet,
            fetch: None,
            failure: None,
        });
        let mut t = Torrent::new(ih, phase, settings, now);
        for p in &link_peers {
            t.book.add(*p, PeerSource::Magnet);
        }
        add_known_peers(&mut t, peers);
        tracing::info!(
            info_hash = %info_hash_hex(&ih),
            peers = t.book.len(),
            trackers,
            "magnet link: fetching metadata"
        );
        let paused = t.settings.paused;
        self.torrents.insert(ih, t);
        if !paused {
            self.start_fetch(&ih, now);
        }
        Ok(ih)
    }

    /// Starts (again) fetching a magnet torrent's metadata.
    fn start_fetch(&mut self, ih: &InfoHash, now: Instant) {
        let client_name = self.session_config().client_name;
        let Some(t) = self.torrents.get_mut(ih) else {
            return;
        };
        let Phase::Magnet(m) = &mut t.phase else {
            return;
        };
        let fetch = super::magnet::Fetch::new(
            *ih,
            self.peer_id,
            client_name,
            &self.tcp,
            self.opts.liveness,
            now,
        );
        self.router.add_dialer(fetch.tcp.owner(), *ih);
        m.fetch = Some(Box::new(fetch));
        m.failure = None;
        t.book.reset_active();
        t.dirty = true;
    }

    /// A magnet torrent's metadata arrived: its fetch lanes close, its .torrent is written
    /// from the info dictionary, and it is checked, then runs, dialling its peers again.
    fn finish_fetch(&mut self, net: &mut ScionNet, ih: &InfoHash, info: &[u8], now: Instant) {
        let in_use = self.data_paths_in_use(ih);
        let Some(t) = self.torrents.get_mut(ih) else {
            return;
        };
        let Phase::Magnet(m) = &mut t.phase else {
            return;
        };
        if let Some(mut f) = m.fetch.take() {
            f.close(net, CloseReason::MetadataComplete, now);
            self.router.remove_dialer(f.tcp.owner());
        }
        self.router.forget_lanes_of(ih);
        t.book.reset_active();
        let trackers: Vec<String> = t.announce().into_iter().flatten().collect();
        let metadata_only = self.opts.metadata_only;
        let next = bt_ext::torrent_file(info, &trackers)
            .map_err(|e| ControlError::BadTorrent(e.to_string()))
            .and_then(|bytes| {
                let meta = Metainfo::from_bytes(&bytes)
                    .map(Arc::new)
                    .map_err(|e| ControlError::BadTorrent(e.to_string()))?;
                if meta.info_hash != *ih {
                    return Err(ControlError::BadTorrent(
                        "the fetched metadata names another info hash".into(),
                    ));
                }
                if metadata_only {
                    // The caller takes the .torrent and goes on with it.
                    return Ok(Phase::Fetched(FetchedPhase {
                        meta,
                        torrent_bytes: bytes,
                    }));
                }
                let checking = prepare_data(&t.settings, meta, bytes, None, &in_use)?;
                t.pieces_checked = checking.checker.progress().1 as u32;
                Ok(Phase::Checking(checking))
            });
        match next {
            Ok(phase) => {
                t.phase = phase;
                tracing::info!(torrent = %t.name(), "metadata fetched");
            }
            Err(e) => {
                let failure = super::magnet::FetchFailure::Unusable(e.to_string());
                tracing::warn!(info_hash = %info_hash_hex(ih), "{failure}");
                if let Phase::Magnet(m) = &mut t.phase {
                    m.failure = Some(failure);
                }
            }
        }
        t.dirty = true;
        self.publish_due = true;
        self.save_torrent_list();
        if metadata_only {
            self.done = self
                .torrents
                .values()
                .all(|t| matches!(t.phase, Phase::Fetched(_)) || t.phase.failure().is_some());
        }
    }

    /// The session and lanes of a checked torrent (`buckets`: its own rate limits).
    fn new_live(
        &mut self,
        data: TorrentData,
        have: Bitfield,
        buckets: &(SharedBucket, SharedBucket),
        paused: bool,
        stop_when: StopWhen,
        now: Instant,
    ) -> LivePhase {
        let verifier =
            PoolVerifier::new(self.pool.clone(), data.storage.clone(), data.meta.clone());
        let mut session = Session::new(
            data.meta.clone(),
            Box::new(data.storage.clone()) as Box<dyn Storage>,
            Box::new(verifier),
            have,
            self.session_config(),
            now,
        );
        session.set_rate_limits(
            Limiter::new(vec![buckets.0.clone(), self.global_down.clone()]),
            Limiter::new(vec![buckets.1.clone(), self.global_up.clone()]),
        );
        let mut tcp = TcpLanes::new(&self.tcp, data.meta.info_hash);
        tcp.liveness = self.opts.liveness;
        tcp.dial_enabled = !paused;
        LivePhase {
            data,
            app: QuicBtApp::new(session, Vec::new(), stop_when, now),
            tcp,
        }
    }

    /// Registers a torrent that just went live (its TCP lanes' owner tag).
    fn register_live(&mut self, ih: InfoHash, t: &mut Torrent) {
        if let Some(l) = t.phase.live() {
            self.router.add_dialer(l.tcp.owner(), ih);
        }
        t.went_live();
    }

    fn owner_of(&mut self, h: ConnectionHandle) -> Option<InfoHash> {
        if let Some(ih) = self.router.quic_owner(h) {
            return Some(ih);
        }
        let ih = self
            .torrents
            .iter()
            .find(|(_, t)| {
                t.phase.live().is_some_and(|l| l.app.owns(h))
                    || t.phase.fetch().is_some_and(|f| f.app.owns(h))
            })
            .map(|(ih, _)| *ih)?;
        self.router.set_quic_owner(h, ih);
        Some(ih)
    }

    /// Reads what an incoming lane's first stream holds; hands the lane over once the
    /// handshake names a live torrent, refuses it if it names another.
    fn route_quic(&mut self, net: &mut ScionNet, h: ConnectionHandle, id: StreamId, now: Instant) {
        let mut data = Vec::new();
        let mut finished = false;
        if let Some(conn) = net.quic.connection(h) {
            let mut stream = conn.recv_stream(id);
            if let Ok(mut chunks) = stream.read(true) {
                loop {
                    match chunks.next(usize::MAX) {
                        Ok(Some(c)) => data.extend_from_slice(&c.bytes),
                        Ok(None) => {
                            finished = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let _ = chunks.finalize();
            };
        }
        let Some(verdict) = self.router.push_quic(h, id, &data) else {
            return; // only the first stream carries the lane
        };
        let refuse = |net: &mut ScionNet, why: &str| {
            if let Some(c) = net.quic.connection(h) {
                c.close(
                    now,
                    VarInt::from_u32(CLOSE_UNKNOWN_TORRENT),
                    why.as_bytes().to_vec().into(),
                );
            }
        };
        match verdict {
            Sniff::NeedMore if finished => {
                self.router.take_pending_quic(h);
                refuse(net, "closed before the handshake");
            }
            Sniff::NeedMore => {}
            Sniff::NotBitTorrent => {
                self.router.take_pending_quic(h);
                tracing::debug!("incoming lane: not a BitTorrent handshake; closed");
                refuse(net, "not a BitTorrent handshake");
            }
            Sniff::Torrent(ih) => {
                let Some((stream, pending)) = self.router.take_pending_quic(h) else {
                    return;
                };
                let remote = net.remote_addr(h);
                let banned =
                    |t: &Torrent| remote.is_some_and(|r| t.book.is_banned(&PeerAddr::Scion(r)));
                match self
                    .torrents
                    .get_mut(&ih)
                    .filter(|t| t.accepts_lanes() && !banned(t))
                {
                    Some(t) if !t.permits(net.route(h).map(|r| &r.path)) => {
                        tracing::debug!(
                            info_hash = %info_hash_hex(&ih),
                            "incoming lane on a path the torrent's rules do not allow; closed"
                        );
                        refuse(net, "path not allowed by the torrent's path rules");
                    }
                    Some(t) => {
                        if let Some(r) = remote {
                            t.book.incoming(PeerAddr::Scion(r));
                        }
                        if let Some(l) = t.phase.live_mut() {
                            l.app.adopt(net, h, stream, &pending.buffered, now);
                        } else if let Some(f) = t.phase.fetch_mut() {
                            f.app.adopt(net, h, stream, &pending.buffered, now);
                        }
                        self.router.set_quic_owner(h, ih);
                    }
                    None => {
                        tracing::debug!(
                            info_hash = %info_hash_hex(&ih),
                            "incoming lane for a torrent we do not run; closed"
                        );
                        refuse(net, "unknown info hash");
                    }
                }
            }
        }
    }

    fn handle_tcp_event(&mut self, ev: TcpEvent, now: Instant) {
        let lane = match &ev {
            TcpEvent::Opened {
                lane,
                dial: None,
                conn,
                peer,
                ..
            } => {
                self.router.tcp_incoming(*lane, conn.clone(), *peer);
                return;
            }
            TcpEvent::Opened {
                lane,
                dial: Some((owner, _)),
                ..
            } => {
                if let Some(ih) = self.router.dialer_owner(*owner) {
                    self.router.set_tcp_owner(*lane, ih);
                }
                *lane
            }
            TcpEvent::DialFailed(owner, ..) => {
                if let Some(ih) = self.router.dialer_owner(*owner) {
                    self.deliver_tcp(&ih, ev, now);
                }
                return;
            }
            TcpEvent::Data(lane, _) | TcpEvent::Closed(lane, _) => *lane,
        };
        if let Some(ih) = self.router.tcp_owner(lane) {
            if matches!(ev, TcpEvent::Closed(..)) {
                self.router.tcp_gone(lane);
            }
            self.deliver_tcp(&ih, ev, now);
            return;
        }
        match ev {
            TcpEvent::Data(lane, data) => self.route_tcp(lane, &data, now),
            TcpEvent::Closed(lane, _) => self.router.tcp_gone(lane),
            // A dial of a torrent removed meanwhile.
            TcpEvent::Opened { conn, .. } => conn.close(),
            TcpEvent::DialFailed(..) => {}
        }
    }

    fn deliver_tcp(&mut self, ih: &InfoHash, ev: TcpEvent, now: Instant) {
        let Some(t) = self.torrents.get_mut(ih) else {
            if let TcpEvent::Opened { conn, .. } = ev {
                conn.close();
            }
            return;
        };
        t.dirty = true;
        match &mut t.phase {
            Phase::Live(l) => l.tcp.on_event(ev, &mut l.app.session, now),
            Phase::Magnet(MagnetPhase { fetch: Some(f), .. }) => {
                f.tcp.on_event(ev, &mut f.app.session, now)
            }
            _ => {
                if let TcpEvent::Opened { conn, .. } = ev {
                    conn.close();
                }
            }
        }
    }

    fn route_tcp(&mut self, lane: LaneId, data: &[u8], now: Instant) {
        let Some(verdict) = self.router.push_tcp(lane, data) else {
            return;
        };
        match verdict {
            Sniff::NeedMore => {}
            Sniff::NotBitTorrent => {
                if let Some(p) = self.router.take_pending_tcp(lane) {
                    tracing::debug!(peer = %p.peer, "TCP peer: not a BitTorrent handshake; closed");
                    p.conn.close();
                }
            }
            Sniff::Torrent(ih) => {
                let Some(PendingTcp {
                    conn,
                    peer,
                    lane: pending,
                }) = self.router.take_pending_tcp(lane)
                else {
                    return;
                };
                let Some(t) = self.torrents.get_mut(&ih).filter(|t| t.accepts_lanes()) else {
                    tracing::debug!(
                        %peer,
                        info_hash = %info_hash_hex(&ih),
                        "TCP peer asked for a torrent we do not run; closed"
                    );
                    conn.close();
                    return;
                };
                t.book.incoming(PeerAddr::Ip(peer));
                self.router.set_tcp_owner(lane, ih);
                let opened = TcpEvent::Opened {
                    lane,
                    outbound: false,
                    peer,
                    conn,
                    dial: None,
                };
                self.deliver_tcp(&ih, opened, now);
                self.deliver_tcp(&ih, TcpEvent::Data(lane, pending.buffered), now);
            }
        }
    }

    /// Starts dialling the peers the book releases (into the torrent's lanes, or into its
    /// metadata fetch's while it has no metadata).
    fn dial_from_book(&mut self, now: Instant) {
        let scion_on = self.local_scion.is_some() && self.paths.has_daemon();
        for t in self.torrents.values_mut() {
            let due = t.dirty || t.poll_due.is_some_and(|d| d <= now);
            if !due || !t.accepts_lanes() {
                continue;
            }
            let room = MAX_ACTIVE_PEERS.saturating_sub(t.book.count(PeerState::Active));
            if room == 0 {
                continue;
            }
            let rules = LaneRules {
                max_lanes: self.opts.max_lanes,
                policy: t.rules.policy.clone(),
                preference: t.preference(&self.opts.preference),
            };
            for addr in t.book.take_dialable(now, room) {
                let dialed = match &mut t.phase {
                    Phase::Live(l) => dial(
                        &mut l.app,
                        &mut l.tcp,
                        addr,
                        scion_on,
                        &rules,
                        &mut self.paths,
                        now,
                    ),
                    Phase::Magnet(MagnetPhase { fetch: Some(f), .. }) => dial(
                        &mut f.app,
                        &mut f.tcp,
                        addr,
                        scion_on,
                        &rules,
                        &mut self.paths,
                        now,
                    ),
                    _ => true,
                };
                if !dialed {
                    t.book.failed(&addr, now);
                }
            }
        }
    }

    fn pump_checkers(&mut self, now: Instant) {
        let mut ready = Vec::new();
        for (ih, t) in self.torrents.iter_mut() {
            let Some(c) = t.phase.checker_mut() else {
                continue;
            };
            if c.checker.pump(&self.pool, &*c.data.storage, &c.data.meta) {
                ready.push(*ih);
            }
        }
        // A torrent that finished its check is news: publish it now, not at the next tick.
        self.publish_due |= !ready.is_empty();
        for ih in ready {
            let Some(mut t) = self.torrents.remove(&ih) else {
                continue;
            };
            // Checking → Live: the checked data moves into the live phase.
            t.phase = match t.phase {
                Phase::Checking(c) => {
                    let buckets = (t.down_bucket.clone(), t.up_bucket.clone());
                    let have = c.checker.into_have();
                    let paused = t.settings.paused;
                    Phase::Live(Box::new(self.new_live(
                        c.data,
                        have,
                        &buckets,
                        paused,
                        StopWhen::Never,
                        now,
                    )))
                }
                other => other,
            };
            self.register_live(ih, &mut t);
            self.torrents.insert(ih, t);
        }
    }

    /// Moves each live torrent's session (and each magnet torrent's fetch) forward.
    fn poll_torrents(&mut self, net: &mut ScionNet, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut goal_reached = false;
        let mut publish_due = false;
        let mut fetched = Vec::new();
        for (ih, t) in self.torrents.iter_mut() {
            // Idle torrents (no lanes, no dials) are left alone until an event or their
            // deadline: a thousand of them cost nothing per loop turn.
            if !t.dirty && !t.is_busy() && t.poll_due.is_none_or(|d| d > now) {
                next = [next, t.poll_due].into_iter().flatten().min();
                continue;
            }
            t.dirty = false;
            let before = t.state();
            let (due, goal) = match &mut t.phase {
                Phase::Magnet(m) => {
                    let Some(f) = &mut m.fetch else { continue };
                    let poll = poll_fetch(f, net, &self.opts, now);
                    if let Some(info) = poll.info {
                        fetched.push((*ih, info));
                    }
                    if let Some(failure) = poll.failure {
                        m.failure = Some(failure);
                        self.done = true;
                    }
                    (poll.due, SeedGoal::Never)
                }
                Phase::Live(l) => {
                    let other_runtimes = self.extra.as_ref().map_or(0, |e| e.uploaded(ih));
                    let poll = poll_live(l, net, &mut t.book, &self.opts, other_runtimes, now);
                    let goal = match l.app.session.is_complete() && !t.settings.paused {
                        true if l.storage_failure().is_none() => {
                            let since = *t.seeding_since.get_or_insert(now);
                            seed_goal(&self.seed_policy, poll.ratio, since, now)
                        }
                        _ => {
                            t.seeding_since = None;
                            SeedGoal::Never
                        }
                    };
                    (poll.due, goal)
                }
                Phase::Fetched(_) | Phase::Checking(_) => continue,
            };
            let goal_due = match goal {
                SeedGoal::At(at) => Some(at),
                _ => None,
            };
            t.poll_due = [due, t.book.next_deadline(), goal_due]
                .into_iter()
                .flatten()
                .min();
            if let SeedGoal::Reached(why) = goal {
                tracing::info!(torrent = %t.name(), "seeding goal reached ({why}): pausing");
                t.settings.paused = true;
                Self::stop_lanes(t, net, CloseReason::SeedingGoalReached, now);
                t.pause_note = Some(format!("paused: seeding goal reached ({why})"));
                t.poll_due = None;
                goal_reached = true;
            }
            // Downloading → seeding (or failed) is news worth publishing at once.
            publish_due |= t.state() != before;
            next = [next, t.poll_due].into_iter().flatten().min();
        }
        for (ih, info) in fetched {
            self.finish_fetch(net, &ih, &info, now);
        }
        if goal_reached {
            self.save_torrent_list();
        }
        self.publish_due |= publish_due || goal_reached;
        next
    }

    /// Saves resume data of torrents whose verified set changed (all with `force`), after
    /// their data is on disk.
    fn save_resume(&mut self, force: bool) {
        let Some(store) = &mut self.store else { return };
        for t in self.torrents.values_mut() {
            save_one(store.as_mut(), t, force);
        }
    }

    fn save_torrent_list(&mut self) {
        let Some(store) = &mut self.store else { return };
        let list: Vec<SavedTorrent<'_>> = self
            .torrents
            .values()
            .map(|t| SavedTorrent {
                info_hash: t.info_hash,
                name: t.meta().map_or("", |m| m.name.as_str()),
                torrent: t.phase.torrent_bytes(),
                settings: &t.settings,
            })
            .collect();
        if let Err(e) = store.save_torrents(&list) {
            tracing::warn!("cannot save the torrent list: {e}");
        }
    }

    fn stop_lanes(t: &mut Torrent, net: &mut ScionNet, reason: CloseReason, now: Instant) {
        match &mut t.phase {
            Phase::Live(l) => {
                l.app.close_all(net, reason.clone(), now);
                l.tcp.close_lanes(&mut l.app.session, reason, now);
            }
            Phase::Magnet(m) => {
                if let Some(mut f) = m.fetch.take() {
                    f.close(net, reason, now);
                }
            }
            Phase::Fetched(_) | Phase::Checking(_) => {}
        }
        t.book.reset_active();
    }

    fn handle_command(&mut self, net: &mut ScionNet, cmd: Command, now: Instant) {
        if self.shutting_down.is_some() {
            match cmd {
                // Answered when the shutdown is done.
                Command::Shutdown(reply) => self.begin_shutdown(net, Some(reply), now),
                cmd => reject_shutting_down(cmd),
            }
            return;
        }
        match cmd {
            Command::Add(add, reply) => {
                let r = self.add_command(*add, now);
                // A caller that reads the snapshot after the reply sees the command's effect.
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::Pause(ih, reply) => {
                let r = self.with_torrent(&ih, |t| {
                    t.settings.paused = true;
                    Ok(())
                });
                if r.is_ok() {
                    if let Some(t) = self.torrents.get_mut(&ih) {
                        Self::stop_lanes(t, net, CloseReason::Paused, now);
                        if let Some(store) = &mut self.store {
                            save_one(store.as_mut(), t, true);
                        }
                    }
                    self.save_torrent_list();
                }
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::Resume(ih, reply) => {
                let r = self.with_torrent(&ih, |t| {
                    if let Some(d) = t.phase.data() {
                        // Stays paused if its space cannot be had.
                        d.storage.allocate()?;
                    }
                    t.settings.paused = false;
                    t.pause_note = None;
                    if let Some(l) = t.phase.live_mut() {
                        l.tcp.dial_enabled = true;
                    }
                    Ok(())
                });
                let refetch = self.torrents.get(&ih).is_some_and(|t| {
                    let idle_magnet =
                        matches!(t.phase, Phase::Magnet(MagnetPhase { fetch: None, .. }));
                    idle_magnet && !t.settings.paused
                });
                if refetch {
                    self.start_fetch(&ih, now);
                }
                if r.is_ok() {
                    self.save_torrent_list();
                }
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::Remove {
                info_hash,
                delete_data,
                reply,
            } => {
                let r = match self.torrents.remove(&info_hash) {
                    None => Err(ControlError::UnknownTorrent(info_hash_hex(&info_hash))),
                    Some(mut t) => {
                        Self::stop_lanes(&mut t, net, CloseReason::Removed, now);
                        self.router.forget_torrent(&info_hash);
                        if let Some(store) = &mut self.store {
                            if let Err(e) = store.remove(&info_hash) {
                                tracing::warn!("cannot forget the torrent's resume data: {e}");
                            }
                        }
                        let storage = t.phase.data().map(|d| d.storage.clone());
                        drop(t);
                        if let Some(storage) = storage.filter(|_| delete_data) {
                            storage.delete_files();
                        }
                        self.save_torrent_list();
                        Ok(())
                    }
                };
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::AddPeers {
                info_hash,
                peers,
                source,
                reply,
            } => {
                let r = self.with_torrent(&info_hash, |t| Ok(t.add_peers(&peers, source)));
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::SetLimits {
                info_hash,
                limits,
                reply,
            } => {
                let r = match info_hash {
                    None => {
                        self.set_global_limits(limits, now);
                        self.save_client_settings();
                        Ok(())
                    }
                    Some(ih) => self.with_torrent(&ih, |t| {
                        t.set_limits(limits, now);
                        Ok(())
                    }),
                };
                if r.is_ok() && info_hash.is_some() {
                    self.save_torrent_list();
                }
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::SetPathRules {
                info_hash,
                rules,
                reply,
            } => {
                let client_pref = self.opts.preference.clone();
                let r = rules.compile().map_err(ControlError::from).and_then(|c| {
                    self.with_torrent(&info_hash, |t| {
                        t.set_path_rules(net, rules.normalized(), c, &client_pref, now);
                        Ok(())
                    })
                });
                if r.is_ok() {
                    self.save_torrent_list();
                }
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::SetSeedPolicy(p, reply) => {
                self.seed_policy = p;
                self.save_client_settings();
                self.publish(now);
                let _ = reply.send(Ok(()));
            }
            Command::SetEncryption(p, reply) => {
                self.tcp.set_encryption(p);
                self.save_client_settings();
                self.publish(now);
                let _ = reply.send(Ok(()));
            }
            Command::TrackerStatus {
                info_hash,
                trackers,
            } => {
                if let Some(t) = self.torrents.get_mut(&info_hash) {
                    t.trackers = trackers;
                }
            }
            Command::Serve(served) => self.serve(*served, now),
            Command::Shutdown(reply) => self.begin_shutdown(net, Some(reply), now),
        }
    }

    /// On another runtime: serves a complete torrent runtime 0 handed over,
    /// within runtime 0's rate limits for it.
    fn serve(&mut self, s: super::runtimes::ServedTorrent, now: Instant) {
        let ih = s.live.meta.info_hash;
        if self.torrents.contains_key(&ih) {
            return;
        }
        let t = self.insert_live(s.live, (s.down, s.up), now);
        // It only answers peers that come to it: runtime 0 dials.
        if let Some(l) = t.phase.live_mut() {
            l.tcp.dial_enabled = false;
        }
        tracing::info!(torrent = %t.name(), "seeding on this runtime");
    }

    /// Stops accepting TCP peers; call when its run ended, before its runtime goes.
    pub async fn stop_listening(&self) {
        let _ = self.tcp.stop_listening().await;
    }

    /// Makes this client's global limits runtime 0's (on another runtime).
    pub fn share_global_limits(&mut self, down: SharedBucket, up: SharedBucket) {
        self.global_down = down;
        self.global_up = up;
    }

    /// Runtime 0's global limit buckets, for the other runtimes to share.
    pub fn global_limits(&self) -> (SharedBucket, SharedBucket) {
        (self.global_down.clone(), self.global_up.clone())
    }

    /// Gives this client (runtime 0) other runtimes to hand its complete torrents to.
    pub fn attach_extra_runtimes(&mut self, extra: super::runtimes::ExtraRuntimes) {
        self.extra = Some(extra);
    }

    fn with_torrent<T>(
        &mut self,
        ih: &InfoHash,
        f: impl FnOnce(&mut Torrent) -> Result<T, ControlError>,
    ) -> Result<T, ControlError> {
        match self.torrents.get_mut(ih) {
            Some(t) => f(t),
            None => Err(ControlError::UnknownTorrent(info_hash_hex(ih))),
        }
    }

    fn add_command(&mut self, add: AddTorrent, now: Instant) -> Result<InfoHash, ControlError> {
        let mut settings = torrent::settings(add.out_dir, add.paused, add.limits, &add.peers);
        settings.path_rules = add.path_rules.normalized();
        let peers: Vec<(PeerAddr, PeerSource)> =
            add.peers.iter().map(|p| (*p, PeerSource::Api)).collect();
        let ih = match add.source {
            TorrentSource::Metainfo(bytes) => {
                self.add_torrent(bytes, settings, None, &peers, now)?
            }
            TorrentSource::Magnet(uri) => self.add_magnet(&uri, settings, &peers, now)?,
        };
        self.save_torrent_list();
        Ok(ih)
    }

    /// Saves state, closes every lane politely, and stops the loop shortly after.
    pub fn begin_shutdown(
        &mut self,
        net: &mut ScionNet,
        reply: Option<super::control::Reply<()>>,
        now: Instant,
    ) {
        if let Some((_, replies)) = &mut self.shutting_down {
            replies.extend(reply);
            return;
        }
        tracing::info!("shutting down");
        self.save_resume(true);
        self.save_torrent_list();
        for t in self.torrents.values_mut() {
            Self::stop_lanes(t, net, CloseReason::ShuttingDown, now);
            if let Some(l) = t.phase.live_mut() {
                l.tcp.close_all();
            }
        }
        if let Some(extra) = &mut self.extra {
            extra.begin_shutdown();
        }
        self.shutting_down = Some((now, reply.into_iter().collect()));
    }

    fn set_global_limits(&mut self, limits: Limits, now: Instant) {
        self.limits = limits;
        self.global_down.set_rate(limits.download_bps, now);
        self.global_up.set_rate(limits.upload_bps, now);
    }

    fn save_client_settings(&mut self) {
        let settings = ClientSettings {
            limits: self.limits,
            seed_policy: self.seed_policy,
            encryption: Some(self.tcp.encryption()),
        };
        if let Some(store) = &mut self.store {
            if let Err(e) = store.save_client_settings(&settings) {
                tracing::warn!("cannot save the client settings: {e}");
            }
        }
    }

    /// Loads the client settings and every torrent the store remembers.
    pub fn load_saved(&mut self, now: Instant) {
        if let Some(s) = self.store.as_mut().and_then(|s| s.load_client_settings()) {
            let (s, rejected) = s.validated();
            for e in rejected {
                tracing::warn!("saved client settings: {e}; using the default instead");
            }
            self.seed_policy = s.seed_policy;
            // A policy given on the command line wins over the saved one.
            if let (None, Some(p)) = (self.opts.encryption, s.encryption) {
                self.tcp.set_encryption(p);
            }
            self.set_global_limits(s.limits, now);
        }
        let Some(store) = &mut self.store else { return };
        let saved = store.load_all();
        let mut loaded = Vec::new();
        for (bytes, settings) in saved {
            let ih = Metainfo::from_bytes(&bytes).map(|m| m.info_hash).ok();
            let resume = ih.and_then(|ih| store.load_resume(&ih));
            loaded.push((bytes, settings, resume));
        }
        for (bytes, settings, resume) in loaded {
            let added = match (bytes.is_empty(), settings.magnet.clone()) {
                (true, Some(uri)) => self.add_magnet(&uri, settings, &[], now),
                _ => self.add_torrent(bytes, settings, resume, &[], now),
            };
            if let Err(e) = added {
                tracing::warn!("cannot load a saved torrent: {e}");
            }
        }
    }

    pub fn snapshot(&mut self, now: Instant) -> ClientSnapshot {
        let mut torrents: Vec<_> = self
            .torrents
            .values_mut()
            .map(|t| {
                let added = t.settings.added_unix;
                t.snapshot_cached(now, added)
            })
            .collect();
        torrents.sort_by(|a, b| a.name.cmp(&b.name).then(a.info_hash.cmp(&b.info_hash)));
        let mut on_path: HashMap<crate::scion::PathFingerprint, usize> = HashMap::new();
        for t in self.torrents.values() {
            if let Some(l) = t.phase.live() {
                for p in l.app.lane_routes().into_iter().filter_map(|r| r.2) {
                    *on_path.entry(p.fingerprint()).or_default() += 1;
                }
            }
        }
        ClientSnapshot {
            at_unix_ms: unix_now().as_millis() as u64,
            local_scion: self.local_scion.map(|a| a.to_string()),
            tcp_listen: self.tcp_listen.map(|a| a.to_string()),
            sciond: self.sciond.clone(),
            limits: self.limits,
            seed_policy: self.seed_policy,
            encryption: self.tcp.encryption(),
            torrents,
            paths: self
                .paths
                .snapshot(now, |fp| on_path.get(&fp).copied().unwrap_or(0)),
        }
    }

    /// Hands the other runtimes what they should serve, and publishes a snapshot (with
    /// theirs folded in) if a front end listens.
    fn publish(&mut self, now: Instant) {
        self.next_snapshot = now + SNAPSHOT_EVERY;
        if let Some(extra) = &mut self.extra {
            extra.reconcile(&self.torrents);
        }
        if self.snapshots.is_none() {
            return;
        }
        let mut snap = self.snapshot(now);
        if let Some(extra) = &mut self.extra {
            extra.merge(&mut snap);
        }
        if let Some(tx) = &self.snapshots {
            tx.send_replace(Arc::new(snap));
        }
    }

    /// A lane died of its path: the path service remembers a failure on that path.
    fn note_path_failure(
        &mut self,
        net: &mut ScionNet,
        h: ConnectionHandle,
        why: &str,
        now: Instant,
    ) {
        if let Some(r) = net.route(h) {
            let path = r.path.clone();
            self.paths.record_failure(&path, why, now);
        }
    }
}

/// What one poll of a magnet torrent's fetch gave.
struct FetchPoll {
    /// When it next needs a poll.
    due: Option<Instant>,
    /// The info dictionary, once a peer gave it whole.
    info: Option<Vec<u8>>,
    /// A metadata-only run found no peer within its connect timeout.
    failure: Option<super::magnet::FetchFailure>,
}

fn poll_fetch(
    f: &mut super::magnet::Fetch,
    net: &mut ScionNet,
    opts: &EngineOptions,
    now: Instant,
) -> FetchPoll {
    let d = f.app.poll(net, now);
    f.tcp.pump_out(&mut f.app.session, now);
    let info = f.app.session.take_info();
    let give_up = opts.connect_timeout.filter(|_| opts.metadata_only);
    let failure = give_up
        .filter(|limit| f.peerless_for(now) > *limit)
        .map(|_| super::magnet::FetchFailure::NoPeer(f.problem()));
    let due = [d, f.tcp.next_dial(), f.tcp.next_liveness_deadline()]
        .into_iter()
        .flatten()
        .min();
    FetchPoll { due, info, failure }
}

/// What one poll of a live torrent gave.
struct LivePoll {
    /// When it next needs a poll (its peer book's deadline aside).
    due: Option<Instant>,
    /// Uploaded over its size, on every runtime (the seeding policy's ratio).
    ratio: f64,
}

/// Moves a live torrent's lanes forward; what its session learnt goes to the peer book and
/// the DHT.
fn poll_live(
    l: &mut LivePhase,
    net: &mut ScionNet,
    book: &mut super::peer_book::PeerBook,
    opts: &EngineOptions,
    other_runtimes: u64,
    now: Instant,
) -> LivePoll {
    let (app, tcp) = (&mut l.app, &mut l.tcp);
    let d = app.poll(net, now);
    tcp.pump_out(&mut app.session, now);
    for node in app.session.take_dht_nodes() {
        // A full queue drops the node: the DHT has enough to do.
        match (node, &opts.dht_ip_nodes, &opts.dht_scion_nodes) {
            (PeerAddr::Ip(a), Some(tx), _) => drop(tx.try_send(a)),
            (PeerAddr::Scion(a), _, Some(tx)) => drop(tx.try_send(a)),
            _ => {}
        }
    }
    let learnt = app.session.take_pex_peers();
    let pex_new = if book.len() < MAX_BOOK_FROM_PEX {
        learnt
            .iter()
            .filter(|p| book.add(**p, PeerSource::Pex))
            .count()
    } else {
        0
    };
    for a in app.banned.drain(..) {
        book.ban(&PeerAddr::Scion(a));
    }
    if let Some(Failure::Unreachable(m)) = &mut app.failure {
        if !tcp.peers().is_empty() && !m.contains("TCP peers") {
            let peers: Vec<String> = tcp.peers().iter().map(|p| p.to_string()).collect();
            let why = tcp
                .last_error()
                .map(|e| format!(" (last TCP error: {e})"))
                .unwrap_or_default();
            *m = format!("{m}; TCP peers {}{why}", peers.join(", "));
        }
    }
    if app.is_done() {
        tcp.close_all();
    }
    let size = l.data.meta.total_length;
    let ratio = (app.session.bytes_up + other_runtimes) as f64 / size.max(1) as f64;
    let due = [
        d,
        // New peers from PEX are dialled on the next turn.
        (pex_new > 0).then_some(now),
        tcp.next_dial(),
        tcp.next_liveness_deadline(),
    ]
    .into_iter()
    .flatten()
    .min();
    LivePoll { due, ratio }
}

/// Where a seeding torrent stands against the seeding policy.
#[derive(Debug, PartialEq)]
enum SeedGoal {
    Never,
    /// Not yet; the time limit is due then.
    At(Instant),
    Reached(String),
}

/// Starts dialling one peer: SCION lanes through the path service, or TCP. False when it
/// cannot be dialled at all (SCION is not up).
fn dial<S: LaneProtocol>(
    app: &mut QuicBtApp<S>,
    tcp: &mut TcpLanes,
    addr: PeerAddr,
    scion_on: bool,
    rules: &LaneRules,
    paths: &mut PathService,
    now: Instant,
) -> bool {
    match addr {
        PeerAddr::Scion(a) if scion_on => {
            if !app.dialing(&a) {
                let shared = paths.paths_to(a.ia);
                let max = rules.max_lanes.unwrap_or(DEFAULT_MAX_LANES);
                let mut d = PeerDialer::new(a, max, shared, now);
                d.only_disjoint = rules.max_lanes.is_none();
                d.policy = rules.policy.clone();
                d.preference = rules.preference.clone();
                app.dialers.push(d);
            }
            true
        }
        PeerAddr::Scion(a) => {
            tracing::warn!(peer = %a, "SCION is not available; cannot dial");
            false
        }
        PeerAddr::Ip(a) => {
            tcp.add_peer(a, now);
            true
        }
    }
}

/// Puts peers into a new torrent's book: the given ones, then those saved with its settings.
fn add_known_peers(t: &mut Torrent, peers: &[(PeerAddr, PeerSource)]) {
    for (p, s) in peers {
        t.book.add(*p, *s);
    }
    for p in t.settings.peers.clone() {
        if let Ok(a) = p.parse::<PeerAddr>() {
            t.book.add(a, PeerSource::Resume);
        }
    }
}

/// A torrent's data place and storage, and the check that starts its life with metadata
/// (trusting `resume` where the files did not change).
fn prepare_data(
    settings: &resume::SavedTorrentSettings,
    meta: Arc<Metainfo>,
    bytes: Vec<u8>,
    resume: Option<&ResumeData>,
    in_use: &[(String, PathBuf)],
) -> Result<CheckingPhase, ControlError> {
    // One data path per torrent: two torrents sharing files would write into each other's
    // pieces, and removing one with its data would delete the other's.
    let wanted = settings.out_dir.join(&meta.name);
    if let Some((name, _)) = in_use
        .iter()
        .find(|(_, p)| p.starts_with(&wanted) || wanted.starts_with(p))
    {
        return Err(ControlError::DataConflict(format!(
            "{} would share files with torrent {name:?}; add it in another directory",
            wanted.display()
        )));
    }
    // Everything of the torrent lives below its out_dir, never through a link out of it.
    let place = DataPlace::below(&settings.out_dir, &meta.name)?;
    let data_path = place.data_path();
    // Stamped before the storage opens the files: reserving space may touch their mtime.
    let paths = meta
        .files
        .iter()
        .map(|f| Ok(place.display(&place.relative(&meta, f)?)))
        .collect::<Result<Vec<_>, StorageError>>()?;
    let stamps = resume::stamp_files(&meta, &data_path, paths.iter().map(|p| p.as_path()));
    // A paused torrent takes no disk space until it is resumed.
    let allocation = match settings.paused {
        true => Allocation::Sparse,
        false => Allocation::Full,
    };
    let storage = MmapStorage::create_in(&meta, place, allocation).map(Arc::new)?;
    let plan = plan_check(&meta, resume, &stamps, |p| storage.may_hold(p));
    tracing::info!(
        torrent = %meta.name,
        resumed = plan.resumed,
        trusted = plan.trusted.count_ones(),
        recheck = plan.recheck.len(),
        "checking"
    );
    Ok(CheckingPhase {
        data: TorrentData {
            meta,
            torrent_bytes: bytes,
            data_path,
            storage,
        },
        checker: Checker::new(plan.trusted, plan.recheck),
    })
}

fn seed_goal(policy: &SeedPolicy, ratio: f64, since: Instant, now: Instant) -> SeedGoal {
    if let Some(r) = policy.stop_at_ratio {
        if ratio >= r {
            return SeedGoal::Reached(format!("ratio {ratio:.2} >= {r}"));
        }
    }
    // A deadline past what the clock can hold is never reached (policies are validated, but
    // the clock's own range is the platform's).
    match policy
        .stop_after_secs
        .and_then(|secs| Some((secs, since.checked_add(Duration::from_secs(secs))?)))
    {
        Some((secs, at)) if now >= at => SeedGoal::Reached(format!("seeded for {secs} s")),
        Some((_, at)) => SeedGoal::At(at),
        None => SeedGoal::Never,
    }
}

fn save_one(store: &mut dyn ResumeStore, t: &mut Torrent, force: bool) {
    let Some(LivePhase { app, data, .. }) = t.phase.live() else {
        return;
    };
    let (storage, meta) = (&data.storage, &data.meta);
    let have = app.session.have().clone();
    let n = have.count_ones();
    if !force && t.saved_have == Some(n) {
        return;
    }
    // The data first: a piece recorded as verified must be on disk.
    if let Err(e) = storage.sync() {
        tracing::warn!(torrent = %meta.name, "cannot sync data; resume data not saved: {e}");
        return;
    }
    let stamps = resume::stamp_files(meta, &data.data_path, storage.paths());
    let Some(r) = resume::resume_data(&have, stamps) else {
        tracing::warn!(torrent = %meta.name, "cannot stat the data files; resume data not saved");
        return;
    };
    match store.save_resume(&t.info_hash, &r) {
        Ok(()) => t.saved_have = Some(n),
        Err(e) => tracing::warn!(torrent = %meta.name, "cannot save resume data: {e}"),
    }
}

/// Which torrents a command may change (and so need a poll afterwards).
enum Touches {
    None,
    One(InfoHash),
    All,
}

fn touched_by(cmd: &Command) -> Touches {
    match cmd {
        // A new torrent starts dirty; a tracker report only changes what is shown.
        Command::Add(..)
        | Command::TrackerStatus { .. }
        | Command::Serve(_)
        | Command::SetEncryption(..) => Touches::None,
        Command::Pause(ih, _) | Command::Resume(ih, _) => Touches::One(*ih),
        Command::Remove { info_hash, .. }
        | Command::AddPeers { info_hash, .. }
        | Command::SetPathRules { info_hash, .. } => Touches::One(*info_hash),
        Command::SetLimits {
            info_hash: Some(ih),
            ..
        } => Touches::One(*ih),
        Command::SetLimits {
            info_hash: None, ..
        }
        | Command::SetSeedPolicy(..)
        | Command::Shutdown(_) => Touches::All,
    }
}

fn reject_shutting_down(cmd: Command) {
    let e = ControlError::ShuttingDown;
    match cmd {
        Command::Add(_, r) => {
            let _ = r.send(Err(e));
        }
        Command::Pause(_, r)
        | Command::Resume(_, r)
        | Command::SetSeedPolicy(_, r)
        | Command::SetEncryption(_, r) => {
            let _ = r.send(Err(e));
        }
        Command::Remove { reply, .. }
        | Command::SetLimits { reply, .. }
        | Command::SetPathRules { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Command::AddPeers { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Command::TrackerStatus { .. } | Command::Serve(_) => {}
        Command::Shutdown(_) => unreachable!("handled by begin_shutdown"),
    }
}

impl App for Client {
    fn on_event(&mut self, net: &mut ScionNet, event: NetEvent, now: Instant) {
        let h = match &event {
            NetEvent::Quic(
                QuicEvent::Connected(h)
                | QuicEvent::StreamOpened(h, _)
                | QuicEvent::Readable(h, _)
                | QuicEvent::Writable(h, _)
                | QuicEvent::Lost(h, _)
                | QuicEvent::Drained(h),
            ) => *h,
            NetEvent::PathDown { handle, .. } => *handle,
        };
        match &event {
            NetEvent::Quic(QuicEvent::Lost(_, e)) if super::paths::blames_the_path(e) => {
                self.note_path_failure(net, h, &e.to_string(), now);
            }
            NetEvent::PathDown { reason, .. } => {
                let why = format!("path down ({reason})");
                self.note_path_failure(net, h, &why, now);
            }
            _ => {}
        }
        let gone = matches!(
            event,
            NetEvent::Quic(QuicEvent::Lost(..) | QuicEvent::Drained(_))
        );
        if let Some(ih) = self.owner_of(h) {
            if let Some(t) = self.torrents.get_mut(&ih) {
                t.dirty = true;
                if let Some(l) = t.phase.live_mut() {
                    l.app.on_event(net, event, now);
                } else if let Some(f) = t.phase.fetch_mut() {
                    f.app.on_event(net, event, now);
                }
            }
            if gone {
                self.router.quic_gone(h);
            }
            return;
        }
        match event {
            NetEvent::Quic(QuicEvent::StreamOpened(h, id) | QuicEvent::Readable(h, id)) => {
                self.route_quic(net, h, id, now)
            }
            NetEvent::Quic(QuicEvent::Lost(h, _) | QuicEvent::Drained(h)) => {
                self.router.quic_gone(h);
            }
            NetEvent::PathDown { handle, .. } => {
                self.router.quic_gone(handle);
                if let Some(c) = net.quic.connection(handle) {
                    c.close(now, VarInt::from_u32(2), b"path down".to_vec().into());
                }
            }
            // An incoming connection is routed when its first stream speaks.
            NetEvent::Quic(QuicEvent::Connected(_) | QuicEvent::Writable(..)) => {}
        }
    }

    fn poll(&mut self, net: &mut ScionNet, now: Instant) -> Option<Instant> {
        let mut commanded = false;
        loop {
            let Some(cmd) = self.commands.borrow_mut().pop_front() else {
                break;
            };
            let touches = touched_by(&cmd);
            self.handle_command(net, cmd, now);
            commanded = true;
            // Only the torrents a command concerns get a poll: with a thousand torrents, an
            // API call or a tracker report must not walk them all.
            match touches {
                Touches::One(ih) => {
                    if let Some(t) = self.torrents.get_mut(&ih) {
                        t.dirty = true;
                    }
                }
                Touches::All => self.torrents.values_mut().for_each(|t| t.dirty = true),
                Touches::None => {}
            }
        }
        while let Some(ev) = self.tcp.pop_event() {
            self.handle_tcp_event(ev, now);
        }
        self.pump_checkers(now);
        self.dial_from_book(now);
        let mut next = self.poll_torrents(net, now);
        if now >= self.next_resume {
            self.save_resume(false);
            self.next_resume = now + RESUME_EVERY;
        }
        if commanded || self.publish_due || now >= self.next_snapshot {
            self.publish_due = false;
            self.publish(now);
        }
        if let Some((since, _)) = &self.shutting_down {
            let extras_done = self.extra.as_mut().is_none_or(|e| e.shut_down());
            let closed = net.quic.is_idle() && extras_done;
            if now.saturating_duration_since(*since) > CLOSE_GRACE || closed {
                self.done = true;
                if let Some((_, replies)) = self.shutting_down.take() {
                    for r in replies {
                        let _ = r.send(Ok(()));
                    }
                }
            }
            return Some(now + Duration::from_millis(20));
        }
        if self.opts.exit_when_finished
            && !self.torrents.is_empty()
            && self
                .torrents
                .values()
                .all(|t| t.phase.live().is_some_and(|l| l.app.is_done()))
        {
            self.done = true;
        }
        if self
            .torrents
            .values()
            .any(|t| matches!(t.phase, Phase::Checking(_)))
        {
            // Hash results arrive from worker threads, which cannot wake this loop.
            next = Some(now + Duration::from_millis(5));
        }
        if self.snapshots.is_some() {
            next = [next, Some(self.next_snapshot)].into_iter().flatten().min();
        }
        if self.store.is_some() {
            next = [next, Some(self.next_resume)].into_iter().flatten().min();
        }
        next
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn wake_handle(&self) -> Option<Rc<Notify>> {
        Some(self.wake.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::control::MAX_SEED_SECS;

    #[test]
    fn a_seed_deadline_past_the_clock_is_never_reached() {
        let now = Instant::now();
        let forever = SeedPolicy {
            stop_at_ratio: None,
            stop_after_secs: Some(u64::MAX),
        };
        assert!(matches!(
            seed_goal(&forever, 0.0, now, now),
            SeedGoal::Never
        ));
        let longest = SeedPolicy {
            stop_after_secs: Some(MAX_SEED_SECS),
            ..forever
        };
        assert!(matches!(seed_goal(&longest, 0.0, now, now), SeedGoal::At(at) if at > now));
        let short = SeedPolicy {
            stop_after_secs: Some(5),
            ..forever
        };
        let later = now + Duration::from_secs(5);
        assert!(matches!(
            seed_goal(&short, 0.0, now, later),
            SeedGoal::Reached(_)
        ));
    }
}
