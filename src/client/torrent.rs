//! One torrent of the client: its settings, peer book, rate limits and what the API shows,
//! around its [`Phase`] (magnet link → checking → live; see `client::phase`), which owns the
//! metainfo, storage, session and lanes of the phase it is in.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::control::{
    info_hash_hex, ControlError, FilePriority, FileSnapshot, InfoHash, LaneSnapshot, Limits,
    PeerSnapshot, PeerSource, TorrentSnapshot, TorrentState, Transport,
};
use super::paths::path_snapshot;
use super::peer_book::{PeerBook, PeerState};
use super::phase::Phase;
use super::resume::SavedTorrentSettings;
use super::wanted;
use crate::lanes::{CompiledRules, PathRules, Preference};
use crate::metrics::Percentiles;
use crate::net::ScionNet;
use crate::scion::{PeerAddr, ScionPath};
use crate::torrent::meta::Metainfo;
use crate::torrent::rate::SharedBucket;

/// Bytes of the last snapshot, for rates.
#[derive(Default)]
struct RateMemo {
    at: Option<Instant>,
    down: u64,
    up: u64,
    lanes: HashMap<(u64, String), (u64, u64)>,
    rate_down: f64,
    rate_up: f64,
}

pub struct Torrent {
    pub info_hash: InfoHash,
    pub settings: SavedTorrentSettings,
    /// Where it is in its life, with what that phase owns.
    pub phase: Phase,
    /// Why it paused itself (the seeding policy), shown until it is resumed.
    pub pause_note: Option<String>,
    pub book: PeerBook,
    /// Verified pieces when the torrent went live (resumed or found on disk).
    pub pieces_resumed: u32,
    /// Pieces hashed at start this run.
    pub pieces_checked: u32,
    /// Verified pieces at the last resume save (None: never saved).
    pub saved_have: Option<u32>,
    pub added: Instant,
    /// When the torrent next needs a poll while it has no lanes (None: only on an event).
    pub poll_due: Option<Instant>,
    /// Something happened to it since its last poll (command, check done, new peers).
    pub dirty: bool,
    /// Since when it has been seeding (for the seeding policy's time limit).
    pub seeding_since: Option<Instant>,
    /// Its own rate limits (the client's global ones apply on top).
    pub down_bucket: SharedBucket,
    pub up_bucket: SharedBucket,
    rates: RateMemo,
    cached_snapshot: Option<TorrentSnapshot>,
    /// Last tracker statuses reported by the tracker front end.
    pub trackers: Vec<super::control::TrackerStatus>,
    /// `settings.path_rules`, parsed.
    pub rules: CompiledRules,
    /// Waiting for a queue slot: its lanes are closed as when paused (see `client::queue`).
    pub queued: bool,
    /// Payload bytes received when they last grew, and when (for the queue's stalled rule).
    pub payload_seen: (u64, Instant),
    /// It runs and received no payload for the queue's stalled time.
    pub stalled: bool,
}

impl Torrent {
    pub fn new(
        info_hash: InfoHash,
        phase: Phase,
        settings: SavedTorrentSettings,
        now: Instant,
    ) -> Self {
        let down_bucket = SharedBucket::new(settings.limits.download_bps, now);
        let up_bucket = SharedBucket::new(settings.limits.upload_bps, now);
        // The API and the store let only rules that compile through.
        let rules = settings.path_rules.compile().unwrap_or_else(|e| {
            tracing::error!(info_hash = %info_hash_hex(&info_hash), "path rules ignored: {e}");
            CompiledRules::default()
        });
        Self {
            info_hash,
            settings,
            phase,
            pause_note: None,
            book: PeerBook::default(),
            pieces_resumed: 0,
            pieces_checked: 0,
            saved_have: None,
            added: now,
            poll_due: None,
            dirty: true,
            seeding_since: None,
            down_bucket,
            up_bucket,
            rates: RateMemo::default(),
            cached_snapshot: None,
            trackers: Vec::new(),
            rules,
            queued: false,
            payload_seen: (0, now),
            stalled: false,
        }
    }

    /// Counts what it starts its live phase with, and hands its file choice to the session.
    pub fn went_live(&mut self) {
        if let Some(l) = self.phase.live() {
            self.pieces_resumed = l.app.session.have().count_ones();
        }
        self.saved_have.get_or_insert(self.pieces_resumed);
        self.apply_file_choice();
        self.dirty = true;
    }

    /// Gives its session the piece priorities and order its file choice makes.
    fn apply_file_choice(&mut self) {
        let files = &self.settings.files;
        if let Some(l) = self.phase.live_mut() {
            let prio = wanted::piece_priorities(&l.data.meta, files);
            l.app.session.set_piece_priorities(prio, files.sequential);
        }
        self.cached_snapshot = None;
        self.dirty = true;
    }

    /// Sets the priority of some of its files (index as in its snapshot's `files`). The
    /// storage moves first — a file wanted again comes out of the parts file before its
    /// pieces are asked for; a skipped file none of whose pieces is verified yet is deleted —
    /// then the picker follows. Indexes out of range change nothing.
    pub fn set_file_priorities(
        &mut self,
        changes: &[(usize, FilePriority)],
    ) -> Result<(), ControlError> {
        let meta = self.meta().cloned().ok_or_else(|| {
            ControlError::BadRequest(
                "its files are not known until its metadata has arrived".into(),
            )
        })?;
        let mut choice = self.settings.files.clone();
        choice.set(wanted::visible_count(&meta), changes)?;
        let skipped = wanted::skipped_files(&meta, &choice);
        let have = self.phase.live().map(|l| l.app.session.have().clone());
        if let Some(data) = self.phase.data() {
            for (i, (&skip, f)) in skipped.iter().zip(&meta.files).enumerate() {
                // Only a live torrent knows which pieces are verified (not one being checked).
                let unused = have
                    .as_ref()
                    .is_some_and(|h| wanted::file_done(&meta, f, h) == 0);
                data.storage.set_skipped(i, skip, unused)?;
            }
        }
        self.settings.files = choice;
        self.apply_file_choice();
        Ok(())
    }

    /// Turns sequential mode and first/last-piece priority on or off (`None`: unchanged).
    pub fn set_file_order(&mut self, sequential: Option<bool>, first_last_piece: Option<bool>) {
        if let Some(on) = sequential {
            self.settings.files.sequential = on;
        }
        if let Some(on) = first_last_piece {
            self.settings.files.first_last_piece = on;
        }
        self.apply_file_choice();
    }

    /// The state the API shows (read from its phase and whether the queue holds it back,
    /// never stored beside them).
    pub fn state(&self) -> TorrentState {
        let state = self.phase.state(self.settings.paused);
        if !self.queued {
            return state;
        }
        match (&self.phase, state) {
            (Phase::Live(l), TorrentState::Downloading | TorrentState::Seeding) => {
                match l.app.session.is_complete() {
                    true => TorrentState::QueuedSeed,
                    false => TorrentState::QueuedDownload,
                }
            }
            // A queued magnet link has no fetch: its phase reads as paused.
            (Phase::Magnet(_), TorrentState::Paused) if !self.settings.paused => {
                TorrentState::QueuedDownload
            }
            (_, s) => s,
        }
    }

    pub fn meta(&self) -> Option<&Arc<Metainfo>> {
        self.phase.meta()
    }

    /// What the API shows as its error: a failure of its phase, why it paused itself, or
    /// what keeps its path rules from dialling.
    pub fn error(&self) -> Option<String> {
        self.phase
            .failure()
            .or_else(|| self.pause_note.clone())
            .or_else(|| self.path_problem())
    }

    /// Display name: the metainfo's, else the magnet link's `dn`, else the info hash.
    pub fn name(&self) -> String {
        match &self.phase {
            Phase::Magnet(m) => m
                .magnet
                .display_name
                .clone()
                .unwrap_or_else(|| info_hash_hex(&self.info_hash)),
            p => p.meta().map_or_else(String::new, |m| m.name.clone()),
        }
    }

    /// Tracker tiers (BEP 12): the metainfo's, else the magnet link's `tr` (one tier each).
    pub fn announce(&self) -> Vec<Vec<String>> {
        match (&self.phase, self.meta()) {
            (_, Some(m)) => {
                bt_tracker::client::tiers_from_metainfo(m.announce.as_deref(), &m.announce_list)
            }
            (Phase::Magnet(m), None) => m.magnet.trackers.iter().map(|t| vec![t.clone()]).collect(),
            _ => Vec::new(),
        }
    }

    /// Applies new limits to its buckets and remembers them.
    pub fn set_limits(&mut self, limits: super::control::Limits, now: Instant) {
        self.settings.limits = limits;
        self.down_bucket.set_rate(limits.download_bps, now);
        self.up_bucket.set_rate(limits.upload_bps, now);
    }

    /// The order its lanes pick paths in: its own preference, else the client's.
    pub fn preference(&self, client: &Preference) -> Preference {
        if self.rules.preference.is_default() {
            client.clone()
        } else {
            self.rules.preference.clone()
        }
    }

    /// New path rules (already compiled from `rules`): remembered, and applied to its lanes
    /// and dialers at once.
    pub fn set_path_rules(
        &mut self,
        net: &mut ScionNet,
        rules: PathRules,
        compiled: CompiledRules,
        client_preference: &Preference,
        now: Instant,
    ) {
        self.settings.path_rules = rules;
        self.rules = compiled;
        let pref = self.preference(client_preference);
        if let Some(l) = self.phase.live_mut() {
            l.app.apply_path_rules(net, &self.rules.policy, &pref, now);
        }
        if let Some(f) = self.phase.fetch_mut() {
            f.app.apply_path_rules(net, &self.rules.policy, &pref, now);
        }
        self.dirty = true;
    }

    /// Whether an incoming lane on `path` (as we answer on it) is allowed by its rules.
    pub fn permits(&self, path: Option<&ScionPath>) -> bool {
        self.rules.policy.is_empty() || path.is_some_and(|p| self.rules.policy.permits(p))
    }

    /// What keeps it from dialling peers, when its path rules refuse every path the daemon
    /// offers to them: one line per destination AS.
    pub fn path_problem(&self) -> Option<String> {
        let quic = self.phase.live().map(|l| &l.app.dialers);
        let fetch = self.phase.fetch().map(|f| &f.app.dialers);
        let mut lines: Vec<String> = Vec::new();
        for d in quic.into_iter().chain(fetch).flatten() {
            let Some(rule) = d.refused_paths().and_then(|p| self.rules.refusal(&p)) else {
                continue;
            };
            let line = format!("no path to {} allowed by the torrent's {rule}", d.remote.ia);
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
        (!lines.is_empty()).then(|| lines.join("; "))
    }

    /// Whether its lanes run (incoming lanes are accepted, peers dialled).
    pub fn is_live(&self) -> bool {
        matches!(
            self.state(),
            TorrentState::Downloading | TorrentState::Seeding
        )
    }

    /// Whether the daemon's other runtimes serve it too: complete and running.
    pub fn serves_everywhere(&self) -> bool {
        // Not with files skipped: the other runtimes' sessions would fetch the missing pieces.
        self.state() == TorrentState::Seeding
            && self.phase.live().is_some_and(|l| l.app.session.has_all())
    }

    /// Whether incoming lanes are taken: it runs, or it fetches its metadata.
    pub fn accepts_lanes(&self) -> bool {
        self.is_live() || self.phase.fetch().is_some()
    }

    pub fn pieces_have(&self) -> u32 {
        self.phase
            .live()
            .map_or(0, |l| l.app.session.have().count_ones())
    }

    /// Whether it has lanes or dials under way (then it is polled on every loop turn).
    pub fn is_busy(&self) -> bool {
        match &self.phase {
            Phase::Live(l) => {
                l.app.session.lane_count() > 0
                    || !l.app.dialers.is_empty()
                    || l.tcp.lane_count() > 0
                    || l.tcp.is_dialing()
            }
            Phase::Magnet(m) => m.fetch.as_ref().is_some_and(|f| f.is_busy()),
            Phase::Fetched(_) | Phase::Checking(_) => false,
        }
    }

    /// Adds peers to the book; returns how many were new.
    pub fn add_peers(&mut self, peers: &[PeerAddr], source: PeerSource) -> usize {
        peers.iter().filter(|p| self.book.add(**p, source)).count()
    }

    /// [`Torrent::snapshot`], reusing the last one while the torrent is idle and nothing it
    /// shows changed: a thousand idle torrents cost a clone each per publish, not a rebuild.
    pub fn snapshot_cached(&mut self, now: Instant, added_unix: u64) -> TorrentSnapshot {
        let idle = !self.is_busy() && !matches!(self.phase, Phase::Checking(_));
        if let Some(c) = self.cached_snapshot.as_ref().filter(|_| idle) {
            let (down, up) = self.phase.live().map_or((0, 0), |l| {
                (l.app.session.bytes_down, l.app.session.bytes_up)
            });
            // Anything a lane could have changed between two publishes shows in these.
            let unchanged = c.rate_down == 0.0
                && c.rate_up == 0.0
                && c.lanes.is_empty()
                && c.bytes_down == down
                && c.bytes_up == up
                && c.state == self.state()
                && c.error == self.error()
                && c.limits == self.settings.limits
                && c.path_rules == self.settings.path_rules
                && c.pieces_have == self.pieces_have()
                && c.queue_position == self.settings.queue_position
                && c.force_start == self.settings.force_start
                && c.stalled == self.stalled
                && c.peers_known == self.book.len()
                && c.peers_banned == self.book.count(PeerState::Banned)
                && c.trackers == self.trackers
                && c.web_seeds == super::web_seeds::snapshot(&self.phase, now)
                && c.category == self.settings.labels.category
                && c.tags.iter().eq(&self.settings.labels.tags);
            if unchanged {
                return c.clone();
            }
        }
        let s = self.snapshot(now, added_unix);
        self.cached_snapshot = Some(s.clone());
        s
    }

    pub fn snapshot(&mut self, now: Instant, added_unix: u64) -> TorrentSnapshot {
        let (name, size, piece_length, total) = match self.meta() {
            Some(m) => (
                m.name.clone(),
                m.total_length,
                u64::from(m.piece_length),
                m.num_pieces(),
            ),
            None => (self.name(), 0, 0, 0),
        };
        let have = self.pieces_have();
        let mut lanes = Vec::new();
        let mut peers: HashMap<String, PeerSnapshot> = HashMap::new();
        let (mut bytes_down, mut bytes_up) = (0, 0);
        let dt = self
            .rates
            .at
            .map(|t| now.saturating_duration_since(t).as_secs_f64())
            .filter(|d| *d > 0.05);
        let mut memo = HashMap::new();
        if let Some(live) = self.phase.live() {
            let app = &live.app;
            let s = &app.session;
            bytes_down = s.bytes_down;
            bytes_up = s.bytes_up;
            let routes: HashMap<u64, (Option<String>, Option<&ScionPath>)> = app
                .lane_routes()
                .into_iter()
                .map(|(id, r, p)| (id, (r.map(|a| a.to_string()), p)))
                .collect();
            let tcp_peers: HashMap<u64, SocketAddr> = live.tcp.lane_peers().into_iter().collect();
            for (id, l) in s.lane_stats() {
                // Web seeds are listed as such (`web_seeds`), not as peers.
                if l.closed.is_some() || live.web.owns_lane(id) {
                    continue;
                }
                let (peer, transport, path) = match (routes.get(&id), tcp_peers.get(&id)) {
                    (Some((r, p)), _) => (r.clone().unwrap_or_default(), Transport::Scion, *p),
                    (None, Some(a)) => (a.to_string(), Transport::Tcp, None),
                    (None, None) => (String::new(), Transport::Tcp, None),
                };
                let key = (id, l.label.clone());
                let prev = self.rates.lanes.get(&key).copied().unwrap_or((0, 0));
                memo.insert(key, (l.bytes_down, l.bytes_up));
                let rate = |now_b: u64, prev_b: u64| {
                    dt.map(|d| now_b.saturating_sub(prev_b) as f64 / d)
                        .unwrap_or(0.0)
                };
                let (rd, ru) = (rate(l.bytes_down, prev.0), rate(l.bytes_up, prev.1));
                let pct = Percentiles::of(&l.block_latency);
                let p = |v: f64| (pct.count > 0).then_some(v);
                let e = peers.entry(peer.clone()).or_insert_with(|| PeerSnapshot {
                    addr: peer.clone(),
                    transport: transport.clone(),
                    client: None,
                    source: self
                        .book
                        .get(
                            &peer
                                .parse()
                                .unwrap_or(PeerAddr::Ip(([0, 0, 0, 0], 0).into())),
                        )
                        .map(|e| e.source)
                        .unwrap_or(PeerSource::Incoming),
                    lanes: 0,
                    bytes_down: 0,
                    bytes_up: 0,
                    rate_down: 0.0,
                    rate_up: 0.0,
                });
                if e.client.is_none() {
                    e.client = s.lane_client(id).map(str::to_owned);
                }
                e.lanes += 1;
                e.bytes_down += l.bytes_down;
                e.bytes_up += l.bytes_up;
                e.rate_down += rd;
                e.rate_up += ru;
                lanes.push(LaneSnapshot {
                    id,
                    peer,
                    transport,
                    label: l.label.clone(),
                    path: path.map(path_snapshot),
                    bytes_down: l.bytes_down,
                    bytes_up: l.bytes_up,
                    rate_down: rd,
                    rate_up: ru,
                    latency_ms_p50: p(pct.p50_ms),
                    latency_ms_p90: p(pct.p90_ms),
                    latency_ms_p99: p(pct.p99_ms),
                    open: true,
                    closed_reason: None,
                    runtime: 0,
                });
            }
        }
        if let Some(dt) = dt {
            self.rates.rate_down = bytes_down.saturating_sub(self.rates.down) as f64 / dt;
            self.rates.rate_up = bytes_up.saturating_sub(self.rates.up) as f64 / dt;
        }
        if dt.is_some() || self.rates.at.is_none() {
            self.rates.at = Some(now);
            self.rates.down = bytes_down;
            self.rates.up = bytes_up;
            self.rates.lanes = memo;
        }
        let files = self.file_progress();
        let wanted = files.iter().filter(|f| f.priority != FilePriority::Skip);
        let (wanted_bytes, wanted_done) =
            wanted.fold((0, 0), |(w, d), f| (w + f.length, d + f.done));
        let left = wanted_bytes.saturating_sub(wanted_done);
        let eta_secs = (self.rates.rate_down > 1.0 && left > 0)
            .then(|| (left as f64 / self.rates.rate_down) as u64);
        let mut peers: Vec<PeerSnapshot> = peers.into_values().collect();
        peers.sort_by(|a, b| a.addr.cmp(&b.addr));
        let peers_connected = peers.len();
        TorrentSnapshot {
            info_hash: info_hash_hex(&self.info_hash),
            name,
            size,
            state: self.state(),
            error: self.error(),
            progress: match (total, wanted_bytes) {
                (0, _) => 0.0,
                // Everything skipped: nothing left to fetch.
                (_, 0) => 1.0,
                _ => wanted_done as f64 / wanted_bytes as f64,
            },
            wanted_bytes,
            wanted_done,
            sequential: self.settings.files.sequential,
            first_last_piece: self.settings.files.first_last_piece,
            pieces_have: have,
            pieces_resumed: self.pieces_resumed,
            pieces_checked: self.pieces_checked,
            pieces_total: total,
            piece_length,
            bytes_down,
            bytes_up,
            rate_down: self.rates.rate_down,
            rate_up: self.rates.rate_up,
            ratio: if size == 0 {
                0.0
            } else {
                bytes_up as f64 / size as f64
            },
            eta_secs,
            out_dir: self.settings.out_dir.display().to_string(),
            added_unix,
            limits: self.settings.limits,
            path_rules: self.settings.path_rules.clone(),
            files,
            peers,
            lanes,
            peers_known: self.book.len(),
            peers_connected,
            peers_banned: self.book.count(PeerState::Banned),
            web_seeds: super::web_seeds::snapshot(&self.phase, now),
            announce: self.announce(),
            trackers: self.trackers.clone(),
            queue_position: self.settings.queue_position,
            force_start: self.settings.force_start,
            stalled: self.stalled,
            private: self.meta().is_some_and(|m| m.private),
            uploaded_by_runtime: Vec::new(),
            category: self.settings.labels.category.clone(),
            tags: self.settings.labels.tags.iter().cloned().collect(),
            moving_to: None,
        }
    }

    /// Verified bytes per file.
    fn file_progress(&self) -> Vec<FileSnapshot> {
        let Some(meta) = self.meta() else {
            return Vec::new();
        };
        let have = self.phase.live().map(|l| l.app.session.have());
        wanted::visible_files(meta)
            .enumerate()
            .map(|(k, (_, f))| {
                let done = have.map_or(0, |h| wanted::file_done(meta, f, h));
                FileSnapshot {
                    path: f.path.to_string_lossy().into_owned(),
                    length: f.length,
                    done,
                    priority: self.settings.files.priority(k),
                    progress: match f.length {
                        0 => 1.0,
                        n => done as f64 / n as f64,
                    },
                }
            })
            .collect()
    }
}

/// The settings a torrent is created with.
pub fn settings(
    out_dir: PathBuf,
    paused: bool,
    limits: Limits,
    peers: &[PeerAddr],
) -> SavedTorrentSettings {
    SavedTorrentSettings {
        out_dir,
        paused,
        limits,
        peers: peers.iter().map(|p| p.to_string()).collect(),
        added_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        magnet: None,
        files: Default::default(),
        path_rules: Default::default(),
        labels: Default::default(),
        // The client puts a new torrent last in the queue.
        queue_position: u32::MAX,
        force_start: false,
    }
}
