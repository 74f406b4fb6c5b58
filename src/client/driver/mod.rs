//! The [`Client`]: many torrents over one SCION/UDP socket (QUIC endpoint), one TCP listener,
//! one SHA-1 pool and one path service, driven by [`crate::net::uring::run`] as its [`App`].
//!
//! Incoming lanes belong to nobody until their handshake names an info hash (the router);
//! outgoing lanes belong to the torrent that dialled them. Commands from the front ends arrive
//! on a queue that wakes the loop; a snapshot of everything is published every second and after
//! each command.
//!
//! Split by concern: `transitions` (a torrent's phases), `routing` (whose lane is it),
//! `polling` (one loop turn for the torrents), `commands` (what the front ends ask),
//! `persist` (what survives a restart), `seeding` (the seeding policy), `ops` (re-check,
//! categories and tags), `moving` (moving a torrent's data); this file holds the
//! client's state, its snapshots and the loop's entry points.

mod commands;
mod moving;
mod ops;
mod persist;
mod polling;
mod queueing;
mod routing;
mod seeding;
mod transitions;

use commands::{touched_by, Touches};
use persist::save_one;
use seeding::{seed_goal, SeedGoal};

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quinn_proto::{ConnectionHandle, StreamId};
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
use crate::net::LaneCloseCode;
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

/// Streaming: readers' windows and their waits for pieces.
mod stream;

/// Lanes per SCION peer when not configured: every link-disjoint path, up to this cap.
pub const DEFAULT_MAX_LANES: usize = 8;
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);
const RESUME_EVERY: Duration = Duration::from_secs(10);
/// How long close frames get to leave at shutdown.
const CLOSE_GRACE: Duration = Duration::from_millis(200);
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
    /// Stream readers waiting for a piece (see `stream`).
    stream_waiters: Vec<stream::Waiter>,
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
    /// Categories by name (saved with the client settings).
    categories: std::collections::BTreeMap<String, super::control::Category>,
    /// What the port-mapping front end last reported.
    port_mapping: Vec<crate::discovery::portmap::MappingStatus>,
    /// Moves across filesystems under way, and why the last move of a torrent failed.
    moves: HashMap<InfoHash, super::mover::MoveJob>,
    move_errors: HashMap<InfoHash, String>,
    next_snapshot: Instant,
    /// A state change worth publishing before the next periodic snapshot.
    publish_due: bool,
    next_resume: Instant,
    shutting_down: Option<(Instant, Vec<super::control::Reply<()>>)>,
    done: bool,
    wake: Rc<Notify>,
    /// The other runtimes on our port, if there are several (see `client::runtimes`).
    extra: Option<super::runtimes::ExtraRuntimes>,
    /// The queue's limits (see `client::queue`), whether something it reads changed since
    /// it was last applied, and when it is next applied by the clock.
    queue: super::queue::QueueSettings,
    queue_due: bool,
    next_queue: Instant,
    /// What the watch folder last reported.
    watch_files: Vec<super::control::WatchFile>,
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
            stream_waiters: Vec::new(),
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
            categories: Default::default(),
            port_mapping: Vec::new(),
            moves: HashMap::new(),
            move_errors: HashMap::new(),
            next_snapshot: now,
            publish_due: false,
            next_resume: now + RESUME_EVERY,
            shutting_down: None,
            done: false,
            wake,
            extra: None,
            queue: Default::default(),
            queue_due: true,
            next_queue: now,
            watch_files: Vec::new(),
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
        self.show_moves(&mut torrents);
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
            port_mapping: self.port_mapping.clone(),
            torrents,
            paths: self
                .paths
                .snapshot(now, |fp| on_path.get(&fp).copied().unwrap_or(0)),
            categories: self.categories.clone(),
            queue: self.queue,
            watch: self.watch_files.clone(),
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
                net.close_lane(handle, LaneCloseCode::PathDown, "path down", now);
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
        let moves_due = self.pump_moves(net, now);
        // Before dialling: a torrent that must wait for a slot dials nobody.
        self.queue_due |= commanded || self.publish_due;
        self.pump_queue(net, now);
        self.dial_from_book(now);
        let mut next = self.poll_torrents(net, now);
        // A download that just completed frees its slot at once.
        self.queue_due |= self.publish_due;
        if self.pump_queue(net, now) {
            next = Some(now);
        }
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
            let closed = net.is_idle() && extras_done;
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
        next = [next, moves_due, self.queue_deadline()]
            .into_iter()
            .flatten()
            .min();
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
