//! The control plane between the client's event loop (its own io_uring thread) and its front
//! ends (HTTP API, CLI, web UI). Front ends send [`Command`]s and read [`ClientSnapshot`]s; they
//! never reach into torrent state. The snapshot types are also the HTTP API's JSON shapes.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use crate::lanes::PathRules;
use crate::scion::PeerAddr;
pub use bt_tracker::client::{TrackerState, TrackerStatus};

/// A torrent's v1 info hash.
pub type InfoHash = [u8; 20];

/// Why a command failed; the HTTP API maps each kind to one status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no torrent with info hash {0}")]
    UnknownTorrent(String),
    #[error("torrent {0} is already added")]
    Duplicate(String),
    #[error("bad torrent: {0}")]
    BadTorrent(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("bad path rules: {0}")]
    PathRules(#[from] crate::lanes::PathRulesError),
    /// The data on disk stands in the way (a link out of the torrent's directory, an
    /// existing file longer than the torrent says): the caller can fix it, we cannot.
    #[error("{0}")]
    DataConflict(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("the client is shutting down")]
    ShuttingDown,
}

impl From<crate::storage::StorageError> for ControlError {
    fn from(e: crate::storage::StorageError) -> Self {
        use crate::storage::StorageError as E;
        match e {
            E::LinkOutside(_)
            | E::SizeMismatch { .. }
            | E::UnsafePath(_)
            | E::NotADirectory(_)
            | E::NameTooLong(_) => ControlError::DataConflict(e.to_string()),
            e => ControlError::Storage(e.to_string()),
        }
    }
}

pub type Reply<T> = oneshot::Sender<Result<T, ControlError>>;

/// The file choice a torrent is added with (`Default`: every file, rarest first).
#[derive(Debug, Clone, Default)]
pub struct AddFiles {
    /// Priorities of some of its files by index (as in the snapshot's `files`); every file
    /// not named is `normal`. Checked against the torrent once its metainfo is parsed.
    pub priorities: Vec<(usize, FilePriority)>,
    pub sequential: bool,
    pub first_last_piece: bool,
}

/// How much a file of a torrent is wanted (libtorrent's and qBittorrent's levels): `skip` is
/// not downloaded (and not created on disk), the others are fetched higher first.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum FilePriority {
    Skip,
    Low,
    #[default]
    Normal,
    High,
}

impl FilePriority {
    pub const ALL: [FilePriority; 4] = [Self::Skip, Self::Low, Self::Normal, Self::High];

    /// Its lowercase name, as the API writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
        }
    }

    /// The name back; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// Which files of a torrent are fetched and in what order; saved with the torrent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChoice {
    /// One per file as the snapshot lists them (padding files left out); empty while every
    /// file is `normal`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priorities: Vec<FilePriority>,
    /// Pieces in index order instead of rarest first (within a priority).
    #[serde(default)]
    pub sequential: bool,
    /// Each wanted file's first and last piece before anything else.
    #[serde(default)]
    pub first_last_piece: bool,
}

impl FileChoice {
    /// The priority of file `i` (`normal` where none was set).
    pub fn priority(&self, i: usize) -> FilePriority {
        self.priorities.get(i).copied().unwrap_or_default()
    }

    /// Sets the priority of file `i` of `files`; indexes out of range are refused before
    /// anything changes.
    pub fn set(
        &mut self,
        files: usize,
        changes: &[(usize, FilePriority)],
    ) -> Result<(), ControlError> {
        if let Some((i, _)) = changes.iter().find(|(i, _)| *i >= files) {
            return Err(ControlError::BadRequest(format!(
                "no file {i}: the torrent has {files} files (0 to {})",
                files.saturating_sub(1)
            )));
        }
        if self.priorities.len() != files {
            self.priorities.resize(files, FilePriority::Normal);
        }
        for &(i, p) in changes {
            self.priorities[i] = p;
        }
        if self.priorities.iter().all(|p| *p == FilePriority::Normal) {
            self.priorities.clear();
        }
        Ok(())
    }
}

/// Where a torrent's metadata comes from.
#[derive(Debug, Clone)]
pub enum TorrentSource {
    /// The bytes of a .torrent file.
    Metainfo(Vec<u8>),
    /// A magnet URI (metadata fetched from peers).
    Magnet(String),
}

/// Byte-rate limits; `None` = unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
// A misspelt field from an API caller is an error, not a silently ignored limit.
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub download_bps: Option<u64>,
    pub upload_bps: Option<u64>,
}

/// When a complete torrent stops seeding; both `None` = seed forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
// A misspelt field from an API caller is an error, not a silently ignored limit.
#[serde(deny_unknown_fields)]
pub struct SeedPolicy {
    pub stop_at_ratio: Option<f64>,
    pub stop_after_secs: Option<u64>,
}

/// The longest seeding time a policy may name: a hundred years. Anything longer is "forever"
/// (`null`) in all but name, and far enough past it a deadline no longer fits in the clock.
pub const MAX_SEED_SECS: u64 = 100 * 365 * 24 * 3600;

/// A settings value outside its range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error("seed_policy.stop_at_ratio must be a finite number >= 0, not {0}")]
    SeedRatio(f64),
    #[error(
        "seed_policy.stop_after_secs must be at most {MAX_SEED_SECS} (100 years; null = forever), not {0}"
    )]
    SeedTime(u64),
    /// A saved category whose name is not valid (edited by hand): dropped.
    #[error("{0}")]
    Category(String),
    /// Saved queue settings out of range (edited by hand): the defaults instead.
    #[error("{0}")]
    Queue(String),
}

impl SeedPolicy {
    /// Checks every field's range: what the API accepts and what a restart loads.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if let Some(r) = self.stop_at_ratio.filter(|r| !r.is_finite() || *r < 0.0) {
            return Err(SettingsError::SeedRatio(r));
        }
        if let Some(secs) = self.stop_after_secs.filter(|&s| s > MAX_SEED_SECS) {
            return Err(SettingsError::SeedTime(secs));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct AddTorrent {
    pub source: TorrentSource,
    /// Output directory, already checked to lie inside the download root.
    pub out_dir: PathBuf,
    pub paused: bool,
    pub peers: Vec<PeerAddr>,
    pub limits: Limits,
    /// Which of its files to fetch, in what order.
    pub files: AddFiles,
    /// Already checked to compile.
    pub path_rules: PathRules,
    /// Its category (which must exist) and tags.
    pub labels: Labels,
}

pub enum Command {
    Add(Box<AddTorrent>, Reply<InfoHash>),
    Pause(InfoHash, Reply<()>),
    Resume(InfoHash, Reply<()>),
    Remove {
        info_hash: InfoHash,
        delete_data: bool,
        reply: Reply<()>,
    },
    /// Peers for a running torrent's peer book; replies how many were new. Discovery
    /// sources (trackers, DHT, PEX) are front ends too: they only add peers this way.
    AddPeers {
        info_hash: InfoHash,
        peers: Vec<PeerAddr>,
        source: PeerSource,
        reply: Reply<usize>,
    },
    /// `None`: the global limits.
    SetLimits {
        info_hash: Option<InfoHash>,
        limits: Limits,
        reply: Reply<()>,
    },
    SetSeedPolicy(SeedPolicy, Reply<()>),
    /// The MSE/PE policy of TCP connections made or accepted from now on.
    SetEncryption(bt_mse::Policy, Reply<()>),
    /// Replaces a torrent's path rules; lanes on paths they no longer allow are closed.
    SetPathRules {
        info_hash: InfoHash,
        rules: PathRules,
        reply: Reply<()>,
    },
    /// Sets the priority of some of a torrent's files (index as in the snapshot's `files`);
    /// a skipped file is no longer fetched, a file no longer skipped is fetched (its pieces
    /// kept in the parts file moved into it). Indexes out of range: `BadRequest`, nothing set.
    SetFilePriorities {
        info_hash: InfoHash,
        priorities: Vec<(usize, FilePriority)>,
        reply: Reply<()>,
    },
    /// Sequential mode and first/last-piece priority of a torrent (`None`: unchanged).
    SetFileOrder {
        info_hash: InfoHash,
        sequential: Option<bool>,
        first_last_piece: Option<bool>,
        reply: Reply<()>,
    },
    /// A reader of a file that may still be downloading (the API's stream route).
    Stream(super::stream::StreamCommand),
    /// What the trackers of a torrent answered lately (from the daemon's tracker front end),
    /// shown in its snapshot. No reply.
    TrackerStatus {
        info_hash: InfoHash,
        trackers: Vec<TrackerStatus>,
    },
    /// The port mappings on the home gateway (from the port-mapping front end), shown in
    /// the snapshot. No reply.
    PortMapping(Vec<crate::discovery::portmap::MappingStatus>),
    /// From runtime 0 to another runtime of the daemon: serve this complete torrent to the
    /// QUIC peers the kernel steers here (runtime 0 owns it; `Remove` takes it back).
    Serve(Box<super::runtimes::ServedTorrent>),
    /// Hashes every piece again (state `checking`); pieces that no longer verify are
    /// downloaded again.
    Recheck(InfoHash, Reply<()>),
    /// Creates a category or changes its save path (checked by the caller to lie inside the
    /// download root). A bad name: `BadRequest`.
    SetCategory {
        name: String,
        category: Category,
        reply: Reply<()>,
    },
    /// Deletes a category; its torrents stay where they are, in no category. Unknown:
    /// `BadRequest`.
    RemoveCategory {
        name: String,
        reply: Reply<()>,
    },
    /// Puts a torrent in a category (`None`: in none); its data does not move. A category
    /// that does not exist: `BadRequest`.
    SetTorrentCategory {
        info_hash: InfoHash,
        category: Option<String>,
        reply: Reply<()>,
    },
    /// Replaces, adds to or removes from a torrent's tags. A bad tag: `BadRequest`.
    SetTags {
        info_hash: InfoHash,
        change: TagChange,
        reply: Reply<()>,
    },
    /// Moves a torrent's data to another directory (checked by the caller to lie inside the
    /// download root): renamed at once on one filesystem, else copied and verified while it
    /// keeps running from the old place (its snapshot's `moving_to` says so until it is done).
    Move {
        info_hash: InfoHash,
        out_dir: PathBuf,
        reply: Reply<MoveProgress>,
    },
    /// Force-starts a torrent (runs regardless of the queue's limits; also resumes it if
    /// paused) or, with `force: false`, puts it back under them.
    ForceStart {
        info_hash: InfoHash,
        force: bool,
        reply: Reply<()>,
    },
    /// Moves torrents in the queue; an unknown info hash: `UnknownTorrent`, nothing moves.
    QueueMove {
        info_hashes: Vec<InfoHash>,
        to: super::queue::Move,
        reply: Reply<()>,
    },
    /// Changes the queue settings (checked by the caller).
    SetQueue(super::queue::QueueUpdate, Reply<()>),
    /// What the watch folder did with the files dropped into it lately (from its front end),
    /// shown in the snapshot. No reply.
    WatchReport(Vec<WatchFile>),
    /// Save state, tell peers, stop.
    Shutdown(Reply<()>),
}

/// A category: a label with a default save path for the torrents added into it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Relative to the download root ("" = the root itself); a torrent added into the
    /// category without an `out_dir` goes here.
    #[serde(default)]
    pub save_path: String,
}

/// A file dropped into the watch folder and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchFile {
    /// Its name in the watch folder (now moved into `.added/` or `.invalid/`).
    pub file: String,
    pub added: bool,
    /// Why it was not added.
    pub error: Option<String>,
    pub at_unix: u64,
}

/// A torrent's category and tags, saved with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub tags: std::collections::BTreeSet<String>,
}

/// How far a [`Command::Move`] got when it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveProgress {
    /// The data is at its new place (renamed, or already there).
    Done,
    /// It is being copied to the new place; the torrent runs from the old one until then.
    Copying,
}

/// How [`Command::SetTags`] changes a torrent's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagChange {
    Set(Vec<String>),
    Add(Vec<String>),
    Remove(Vec<String>),
}

/// Where a peer address came from (shown per peer; decides nothing about trust).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerSource {
    Cli,
    Api,
    Incoming,
    Resume,
    Tracker,
    Dht,
    Pex,
    Magnet,
    /// Local Service Discovery (BEP 14): announced on the LAN.
    Lsd,
}

/// A torrent's state machine, as seen from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TorrentState {
    FetchingMetadata,
    Checking,
    Downloading,
    Seeding,
    Paused,
    Error,
    /// Waiting for a download slot (queueing is on and the limit is reached).
    QueuedDownload,
    /// Complete, waiting for a seed slot.
    QueuedSeed,
}

/// One interface a path crosses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HopSnapshot {
    pub ia: String,
    pub interface: u16,
    /// Where the router at this interface is, if its AS announces it.
    #[serde(default)]
    pub geo: Option<GeoSnapshot>,
}

/// A router's announced position (WGS 84) and civic address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeoSnapshot {
    pub latitude: f32,
    pub longitude: f32,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathSnapshot {
    /// Stable id of the route (ISD-AS + interfaces).
    pub fingerprint: String,
    /// Interfaces crossed in order, `ISD-AS#interface`; empty inside one AS.
    pub hops: Vec<HopSnapshot>,
    /// Path MTU in bytes; `None` when the daemon does not say.
    pub mtu: Option<u16>,
    /// Sum of the links' latencies; `None` unless every one is known.
    pub latency_ms: Option<f64>,
    /// The smallest known bandwidth along the path, kbit/s.
    #[serde(default)]
    pub bandwidth_kbps: Option<u64>,
    /// When the path's hop fields expire.
    #[serde(default)]
    pub expiry_unix_ms: Option<u64>,
    /// What the daemon knows of each step between consecutive hops (`hops.len() - 1`).
    #[serde(default)]
    pub steps: Vec<PathStepSnapshot>,
    /// Each AS's note, in path order.
    #[serde(default)]
    pub notes: Vec<AsNoteSnapshot>,
}

/// The step from `hops[i]` to `hops[i + 1]`: a link between two ASes, or the crossing of a
/// transit AS from its ingress to its egress interface. Unknown values are `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathStepSnapshot {
    /// `link` (between ASes) or `internal` (inside one AS).
    pub kind: String,
    pub latency_ms: Option<f64>,
    pub bandwidth_kbps: Option<u64>,
    /// For a link: `direct`, `multihop` or `opennet`.
    #[serde(default)]
    pub link_type: Option<String>,
    /// For a transit AS: hops inside it.
    #[serde(default)]
    pub internal_hops: Option<u32>,
}

/// One AS's note on the path (`None`: it announced none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AsNoteSnapshot {
    pub ia: String,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// QUIC over SCION.
    Scion,
    /// Plain BitTorrent over TCP.
    Tcp,
}

/// One lane: a QUIC connection on one SCION path, or one TCP connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaneSnapshot {
    pub id: u64,
    pub peer: String,
    pub transport: Transport,
    /// Short label telling it apart from the peer's other lanes (e.g. `via 1-ff00:0:120`).
    pub label: String,
    pub path: Option<PathSnapshot>,
    pub bytes_down: u64,
    pub bytes_up: u64,
    /// Bytes per second over the last few seconds.
    pub rate_down: f64,
    pub rate_up: f64,
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p90: Option<f64>,
    pub latency_ms_p99: Option<f64>,
    pub open: bool,
    pub closed_reason: Option<String>,
    /// The io_uring runtime carrying it (0 unless the daemon runs with `--runtimes`).
    #[serde(default)]
    pub runtime: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerSnapshot {
    pub addr: String,
    pub transport: Transport,
    /// From the BEP 10 handshake `v` (or the peer id), if known.
    pub client: Option<String>,
    pub source: PeerSource,
    pub lanes: usize,
    pub bytes_down: u64,
    pub bytes_up: u64,
    pub rate_down: f64,
    pub rate_up: f64,
}

/// A web seed (BEP 19 `url-list`) of a torrent: where it is, why it last failed, what it gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSeedSnapshot {
    pub url: String,
    pub state: WebSeedState,
    /// Why it last failed (or why it is ignored or dropped).
    pub last_error: Option<String>,
    /// Piece data it delivered (counted in the torrent's `bytes_down` too).
    pub bytes_down: u64,
    /// Failures in a row.
    pub failures: u32,
    /// Seconds until it is asked again, while backing off.
    pub retry_in_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebSeedState {
    /// Waiting to be asked for data.
    Idle,
    /// Requests in flight.
    Downloading,
    /// It failed: asked again after `retry_in_secs`.
    BackingOff,
    /// It sent data that failed the hash check: not used again for this torrent.
    Dropped,
    /// Its `url-list` entry is not usable (`last_error` says why).
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileSnapshot {
    pub path: String,
    pub length: u64,
    /// Verified bytes of this file.
    pub done: u64,
    #[serde(default)]
    pub priority: FilePriority,
    /// `done / length` (1 for an empty file).
    #[serde(default)]
    pub progress: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TorrentSnapshot {
    /// Lowercase hex.
    pub info_hash: String,
    pub name: String,
    /// Total bytes (0 while fetching metadata).
    pub size: u64,
    pub state: TorrentState,
    /// Why the torrent is in `Error`, or the last problem worth showing.
    pub error: Option<String>,
    /// Verified fraction of the wanted bytes (files not skipped), 0..=1.
    pub progress: f64,
    /// Bytes of the files not skipped (`size` when none is).
    #[serde(default)]
    pub wanted_bytes: u64,
    /// Verified bytes of the files not skipped.
    #[serde(default)]
    pub wanted_done: u64,
    /// Pieces in order instead of rarest first.
    #[serde(default)]
    pub sequential: bool,
    /// Each wanted file's first and last piece first.
    #[serde(default)]
    pub first_last_piece: bool,
    pub pieces_have: u32,
    /// Pieces found verified when the torrent went live this run (trusted from fast-resume
    /// data or hashed on disk); `pieces_have - pieces_resumed` came from peers since.
    pub pieces_resumed: u32,
    /// Pieces hashed on disk when it started this run (0: fast-resume data was trusted for
    /// every piece).
    pub pieces_checked: u32,
    pub pieces_total: u32,
    pub piece_length: u64,
    pub bytes_down: u64,
    pub bytes_up: u64,
    pub rate_down: f64,
    pub rate_up: f64,
    pub ratio: f64,
    pub eta_secs: Option<u64>,
    pub out_dir: String,
    pub added_unix: u64,
    pub limits: Limits,
    /// Its own path rules (on top of the daemon's `--path-policy`), as given.
    #[serde(default)]
    pub path_rules: PathRules,
    pub files: Vec<FileSnapshot>,
    pub peers: Vec<PeerSnapshot>,
    pub lanes: Vec<LaneSnapshot>,
    /// Peer book: known addresses, connected now, banned.
    pub peers_known: usize,
    pub peers_connected: usize,
    pub peers_banned: usize,
    /// The torrent's tracker tiers (BEP 12), from its metainfo.
    #[serde(default)]
    pub announce: Vec<Vec<String>>,
    /// Each tracker's last answer or failure, once the tracker front end reported it.
    #[serde(default)]
    pub trackers: Vec<TrackerStatus>,
    /// Its web seeds (BEP 19), usable or not.
    #[serde(default)]
    pub web_seeds: Vec<WebSeedSnapshot>,
    /// BEP 27: peers only from its trackers (no DHT, no peer exchange).
    #[serde(default)]
    pub private: bool,
    /// Bytes each io_uring runtime uploaded of it (index = runtime), when the daemon runs
    /// several (`--runtimes`); empty with one.
    #[serde(default)]
    pub uploaded_by_runtime: Vec<u64>,
    /// Its place in the queue (0 = first), over every torrent.
    #[serde(default)]
    pub queue_position: u32,
    /// Force-started: runs regardless of the queue's limits.
    #[serde(default)]
    pub force_start: bool,
    /// A running download that received no payload for the queue's stalled time (it holds
    /// no download slot).
    #[serde(default)]
    pub stalled: bool,
    /// Its category, if it is in one.
    #[serde(default)]
    pub category: Option<String>,
    /// Its tags, sorted.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where its data is being copied to, while a move across filesystems runs.
    #[serde(default)]
    pub moving_to: Option<String>,
}

/// A path the path service knows to a destination AS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownPath {
    pub path: PathSnapshot,
    /// Lanes on it now, over all torrents.
    pub lanes: usize,
    /// Why it is being avoided, while it is.
    pub failed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationPaths {
    pub ia: String,
    pub paths: Vec<KnownPath>,
    pub refreshed_unix_ms: Option<u64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientSnapshot {
    pub at_unix_ms: u64,
    /// Our SCION address, if SCION is up.
    pub local_scion: Option<String>,
    pub tcp_listen: Option<String>,
    pub sciond: Option<String>,
    pub limits: Limits,
    pub seed_policy: SeedPolicy,
    /// MSE/PE policy of TCP connections.
    #[serde(default)]
    pub encryption: bt_mse::Policy,
    /// The port mappings asked of the home gateway (`--port-mapping`; empty when off).
    #[serde(default)]
    pub port_mapping: Vec<crate::discovery::portmap::MappingStatus>,
    pub torrents: Vec<TorrentSnapshot>,
    pub paths: Vec<DestinationPaths>,
    /// Every category by name.
    #[serde(default)]
    pub categories: std::collections::BTreeMap<String, Category>,
    /// The queue's limits.
    #[serde(default)]
    pub queue: super::queue::QueueSettings,
    /// The watch folder's latest files (`daemon --watch-dir`), oldest first.
    #[serde(default)]
    pub watch: Vec<WatchFile>,
}

/// The front ends' side: cloneable, usable from any thread or runtime.
#[derive(Clone)]
pub struct ClientHandle {
    commands: mpsc::UnboundedSender<Command>,
    snapshots: watch::Receiver<Arc<ClientSnapshot>>,
}

/// The event loop's side.
pub struct ClientSide {
    pub commands: mpsc::UnboundedReceiver<Command>,
    pub snapshots: watch::Sender<Arc<ClientSnapshot>>,
}

pub fn channel() -> (ClientHandle, ClientSide) {
    let (ctx, crx) = mpsc::unbounded_channel();
    let (stx, srx) = watch::channel(Arc::new(ClientSnapshot::default()));
    (
        ClientHandle {
            commands: ctx,
            snapshots: srx,
        },
        ClientSide {
            commands: crx,
            snapshots: stx,
        },
    )
}

impl ClientHandle {
    /// Sends a command built around a fresh reply channel and waits for the answer.
    pub async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ControlError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .map_err(|_| ControlError::ShuttingDown)?;
        rx.await.map_err(|_| ControlError::ShuttingDown)?
    }

    /// Sends a command that has no reply; false when the client is gone.
    pub fn notify(&self, cmd: Command) -> bool {
        self.commands.send(cmd).is_ok()
    }

    /// The latest published state.
    pub fn snapshot(&self) -> Arc<ClientSnapshot> {
        self.snapshots.borrow().clone()
    }

    /// A receiver that wakes on every new snapshot (for live streams).
    pub fn subscribe(&self) -> watch::Receiver<Arc<ClientSnapshot>> {
        self.snapshots.clone()
    }
}

/// Lowercase hex of an info hash.
pub fn info_hash_hex(h: &InfoHash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 40 hex digits.
pub fn parse_info_hash(s: &str) -> Result<InfoHash, ControlError> {
    let bad = || ControlError::BadRequest(format!("invalid info hash {s:?}: need 40 hex digits"));
    if s.len() != 40 {
        return Err(bad());
    }
    let mut out = [0u8; 20];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_hash_hex_round_trip() {
        let h = [0xabu8; 20];
        assert_eq!(parse_info_hash(&info_hash_hex(&h)).unwrap(), h);
        assert!(parse_info_hash("zz").is_err());
        assert!(parse_info_hash(&"g".repeat(40)).is_err());
    }

    #[test]
    fn state_serialises_snake_case() {
        let s = serde_json::to_string(&TorrentState::FetchingMetadata).unwrap();
        assert_eq!(s, "\"fetching_metadata\"");
    }
}
