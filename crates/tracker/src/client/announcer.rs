//! The announcer of one torrent: BEP 12 tiers, one tracker at a time, failover within and
//! across tiers, promotion of a tracker that answered, exponential back-off per tracker,
//! started/completed/stopped events, a scrape (BEP 48) now and then, and a status the API can
//! show. A tracker that answers a leecher with no peers is asked again soon (15 s, 30 s, 60 s …,
//! within its `interval` and never before its `min interval`) instead of after the interval.
//!
//! It only talks to the torrent through [`TorrentLink`] (stats in, peers out), so it runs
//! without the client and is tested against fake and real trackers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::seq::SliceRandom;
use scion_addr::{PeerAddr, ScionAddr};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use crate::client::tls::{TlsError, TrackerTls};
use crate::client::transport::{
    self, AnnounceError, HttpReach, ScionHttp, ScrapeError, TrackerUrl, UdpSession,
};
use crate::http::{AnnounceRequest, AnnounceResponse, Event, ResponseLimits};
use crate::udp::Retransmit;
use crate::InfoHash;

/// Transfer counters reported to trackers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    pub uploaded: u64,
    pub downloaded: u64,
    /// Bytes still missing (0 = seeding).
    pub left: u64,
}

/// A boxed future, for the object-safe [`TorrentLink`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The torrent did not take the peers a tracker gave (it is gone, or its client is stopping);
/// the torrent's own error says why.
#[derive(Debug, thiserror::Error)]
#[error("peers not taken: {0}")]
pub struct PeersNotTaken(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// The announcer's view of its torrent.
pub trait TorrentLink: Send + Sync + 'static {
    /// Current counters; `None` while they are unknown (then zeros are sent).
    fn stats(&self) -> Option<TransferStats>;
    /// Hands peers to the torrent's peer book; how many were new.
    fn add_peers(&self, peers: Vec<PeerAddr>) -> BoxFuture<'_, Result<usize, PeersNotTaken>>;
}

/// How the announcer behaves; `Default` is right for the client, tests shorten the times.
#[derive(Debug, Clone)]
pub struct AnnouncerConfig {
    pub peer_id: [u8; 20],
    /// Our BitTorrent TCP listen port.
    pub port: u16,
    /// Our SCION address: sent as `scion=` so HTTP trackers return SCION peers too.
    pub scion: Option<ScionAddr>,
    /// Reaches trackers at SCION addresses (HTTP over QUIC/SCION); none without SCION.
    pub scion_http: Option<ScionHttp>,
    /// Roots for `https://` trackers (system, webpki and `--tracker-ca`).
    pub tls: TrackerTls,
    pub numwant: u32,
    /// `key` parameter (stays the same for the announcer's life).
    pub key: u32,
    /// Overall time limit of one HTTP announce.
    pub http_timeout: Duration,
    pub udp_retransmit: Retransmit,
    pub limits: ResponseLimits,
    /// Used when a tracker sends no `interval`.
    pub default_interval: Duration,
    /// Never announce to a working tracker more often than this.
    pub min_interval: Duration,
    /// Back-off after the n-th consecutive failure: `backoff_base · 2^(n-1)`, at most `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A leecher's retry after the n-th answer in a row without peers:
    /// `empty_retry_base · 2^(n-1)`, at most the tracker's interval, at least its `min interval`.
    pub empty_retry_base: Duration,
    /// A tracker that answered is scraped (BEP 48) at most this often.
    pub scrape_interval: Duration,
    /// How long `stopped` announces may take when the announcer stops.
    pub stop_timeout: Duration,
    /// How often the torrent's stats are checked (to announce `completed` at once).
    pub stats_poll: Duration,
}

impl Default for AnnouncerConfig {
    fn default() -> Self {
        Self {
            peer_id: *b"-BS0001-000000000000",
            port: 6881,
            scion: None,
            scion_http: None,
            tls: TrackerTls::default(),
            numwant: 50,
            key: rand::random(),
            http_timeout: Duration::from_secs(20),
            udp_retransmit: Retransmit::default(),
            limits: ResponseLimits::default(),
            default_interval: Duration::from_secs(1800),
            min_interval: Duration::from_secs(60),
            backoff_base: Duration::from_secs(15),
            backoff_max: Duration::from_secs(1800),
            empty_retry_base: Duration::from_secs(15),
            scrape_interval: Duration::from_secs(300),
            stop_timeout: Duration::from_secs(5),
            stats_poll: Duration::from_secs(2),
        }
    }
}

/// What the announcer knows about one tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackerState {
    /// Not asked yet (or skipped because an earlier tracker answered).
    NotContacted,
    Working,
    /// The last attempt failed; see `last_error` and `next_attempt_unix_ms`.
    BackingOff,
    /// The URL cannot be used by this build (see `last_error`).
    Unsupported,
}

/// A tracker's counters for this torrent from its last scrape (BEP 48).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrapeCounts {
    pub seeders: u32,
    pub leechers: u32,
    /// Downloads the tracker has seen finish.
    pub completed: u32,
    pub at_unix_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerStatus {
    pub url: String,
    /// BEP 12 tier (0 = first).
    pub tier: usize,
    pub state: TrackerState,
    pub last_error: Option<String>,
    /// When the last attempt failed in the TLS handshake: why, as a type.
    pub tls_error: Option<TlsError>,
    pub warning: Option<String>,
    pub consecutive_failures: u32,
    pub last_success_unix_ms: Option<u64>,
    /// When this tracker is asked next (working: the interval; failing: the back-off).
    pub next_attempt_unix_ms: Option<u64>,
    pub interval_secs: Option<u32>,
    pub seeders: Option<u32>,
    pub leechers: Option<u32>,
    pub last_peers: usize,
    pub peers_received: u64,
    /// Answers in a row with no peers (while we lacked data): drives the short retry schedule.
    pub empty_answers: u32,
    pub scrape: Option<ScrapeCounts>,
    /// Why the last scrape failed (cleared by one that works).
    pub scrape_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncerStatus {
    /// Lowercase hex.
    pub info_hash: String,
    pub trackers: Vec<TrackerStatus>,
    pub next_announce_unix_ms: Option<u64>,
    /// Peers the torrent reported as new.
    pub peers_added: u64,
    pub completed_sent: bool,
    pub stopped: bool,
}

enum Cmd {
    AnnounceNow,
    Stop(oneshot::Sender<()>),
}

/// Controls a running announcer; dropping it stops the announcer without `stopped` events.
pub struct AnnouncerHandle {
    cmds: mpsc::UnboundedSender<Cmd>,
    status: watch::Receiver<AnnouncerStatus>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl AnnouncerHandle {
    pub fn status(&self) -> AnnouncerStatus {
        self.status.borrow().clone()
    }

    /// Wakes on every status change.
    pub fn subscribe(&self) -> watch::Receiver<AnnouncerStatus> {
        self.status.clone()
    }

    /// Announces now (still honouring back-off and `min interval`).
    pub fn announce_now(&self) {
        let _ = self.cmds.send(Cmd::AnnounceNow);
    }

    /// Sends `stopped` to the trackers that know us (bounded by `stop_timeout`) and ends.
    pub async fn stop(mut self) {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Cmd::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for AnnouncerHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The tiers of a torrent: `announce-list` if present, else `announce` (BEP 12).
pub fn tiers_from_metainfo(
    announce: Option<&str>,
    announce_list: &[Vec<String>],
) -> Vec<Vec<String>> {
    let list: Vec<Vec<String>> = announce_list
        .iter()
        .filter(|t| !t.is_empty())
        .cloned()
        .collect();
    if !list.is_empty() {
        return list;
    }
    announce
        .map(|a| vec![vec![a.to_string()]])
        .unwrap_or_default()
}

/// Starts an announcer on the current tokio runtime.
pub fn spawn(
    info_hash: InfoHash,
    tiers: Vec<Vec<String>>,
    config: AnnouncerConfig,
    link: Arc<dyn TorrentLink>,
) -> AnnouncerHandle {
    let mut entries = Vec::new();
    let mut order = Vec::new();
    let mut rng = rand::rng();
    for (t, urls) in tiers.iter().enumerate() {
        let mut tier = Vec::new();
        for u in urls {
            tier.push(entries.len());
            entries.push(Entry::new(u, t, config.scion_http.is_some()));
        }
        // BEP 12: shuffle each tier once.
        tier.shuffle(&mut rng);
        order.push(tier);
    }
    let status = AnnouncerStatus {
        info_hash: info_hash.iter().map(|b| format!("{b:02x}")).collect(),
        ..Default::default()
    };
    let (status_tx, status_rx) = watch::channel(status.clone());
    let (cmds, cmd_rx) = mpsc::unbounded_channel();
    let mut a = Announcer {
        info_hash,
        config,
        link,
        entries,
        order,
        status,
        status_tx,
        completed_pending: false,
        last_left: None,
        earliest: Instant::now(),
    };
    a.publish(None);
    let task = tokio::spawn(async move { a.run(cmd_rx).await });
    AnnouncerHandle {
        cmds,
        status: status_rx,
        task: Some(task),
    }
}

struct Entry {
    url: Result<TrackerUrl, AnnounceError>,
    udp: UdpSession,
    started: bool,
    tracker_id: Option<Vec<u8>>,
    retry_at: Option<Instant>,
    last_scrape: Option<Instant>,
    status: TrackerStatus,
}

impl Entry {
    /// `scion`: whether trackers at SCION addresses can be reached (else they are unsupported).
    fn new(url: &str, tier: usize, scion: bool) -> Self {
        let parsed = match transport::parse_tracker_url(url) {
            Ok(TrackerUrl::ScionHttp { .. }) if !scion => Err(transport::no_scion(url)),
            other => other,
        };
        let (state, err) = match &parsed {
            Ok(_) => (TrackerState::NotContacted, None),
            Err(e) => (TrackerState::Unsupported, Some(e.to_string())),
        };
        Self {
            url: parsed,
            udp: UdpSession::default(),
            started: false,
            tracker_id: None,
            retry_at: None,
            last_scrape: None,
            status: TrackerStatus {
                url: url.to_string(),
                tier,
                state,
                last_error: err,
                tls_error: None,
                warning: None,
                consecutive_failures: 0,
                last_success_unix_ms: None,
                next_attempt_unix_ms: None,
                interval_secs: None,
                seeders: None,
                leechers: None,
                last_peers: 0,
                peers_received: 0,
                empty_answers: 0,
                scrape: None,
                scrape_error: None,
            },
        }
    }
}

struct Announcer {
    info_hash: InfoHash,
    config: AnnouncerConfig,
    link: Arc<dyn TorrentLink>,
    entries: Vec<Entry>,
    /// Tiers as indices into `entries`, in the order they are tried.
    order: Vec<Vec<usize>>,
    status: AnnouncerStatus,
    status_tx: watch::Sender<AnnouncerStatus>,
    completed_pending: bool,
    last_left: Option<u64>,
    /// No announce to a working tracker before this (its `min interval`).
    earliest: Instant,
}

fn unix_ms(at: Instant) -> u64 {
    let now = Instant::now();
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let t = if at >= now {
        wall + (at - now)
    } else {
        wall.saturating_sub(now - at)
    };
    t.as_millis() as u64
}

impl Announcer {
    fn publish(&mut self, next: Option<Instant>) {
        self.status.trackers = self.entries.iter().map(|e| e.status.clone()).collect();
        self.status.next_announce_unix_ms = next.map(unix_ms);
        self.status_tx.send_replace(self.status.clone());
    }

    fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        self.config
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.config.backoff_max)
    }

    fn request(&self, e: &Entry, event: Event, stats: TransferStats) -> AnnounceRequest {
        AnnounceRequest {
            info_hash: self.info_hash,
            peer_id: self.config.peer_id,
            port: self.config.port,
            uploaded: stats.uploaded,
            downloaded: stats.downloaded,
            left: stats.left,
            event,
            numwant: (event != Event::Stopped).then_some(self.config.numwant),
            key: Some(self.config.key),
            tracker_id: e.tracker_id.clone(),
            compact: true,
            scion: self.config.scion,
        }
    }

    async fn run(&mut self, mut cmds: mpsc::UnboundedReceiver<Cmd>) {
        let mut next = Instant::now();
        let mut poll = tokio::time::interval(self.config.stats_poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => {
                    next = self.round().await;
                    self.publish(Some(next));
                }
                cmd = cmds.recv() => match cmd {
                    Some(Cmd::AnnounceNow) => next = next.min(self.earliest.max(Instant::now())),
                    Some(Cmd::Stop(done)) => {
                        self.stop().await;
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
                _ = poll.tick() => {
                    if self.check_completion() {
                        next = next.min(self.earliest.max(Instant::now()));
                    }
                }
            }
        }
    }

    /// True when the torrent just finished (left went from >0 to 0): announce `completed`.
    fn check_completion(&mut self) -> bool {
        let Some(s) = self.link.stats() else {
            return false;
        };
        let was = self.last_left.replace(s.left);
        if s.left == 0 && was.is_some_and(|l| l > 0) && !self.status.completed_sent {
            self.completed_pending = true;
            return true;
        }
        false
    }

    /// Tries trackers in tier order until one answers; when the next round is due.
    async fn round(&mut self) -> Instant {
        let stats = self.link.stats().unwrap_or_default();
        if self.last_left.is_none() {
            self.last_left = Some(stats.left);
        }
        for t in 0..self.order.len() {
            for pos in 0..self.order[t].len() {
                let i = self.order[t][pos];
                let now = Instant::now();
                let e = &self.entries[i];
                if e.url.is_err() || e.retry_at.is_some_and(|r| r > now) {
                    continue;
                }
                let event = if !e.started {
                    Event::Started
                } else if self.completed_pending {
                    Event::Completed
                } else {
                    Event::None
                };
                let req = self.request(e, event, stats);
                let result = self.announce_one(i, &req).await;
                let now = Instant::now();
                match result {
                    Ok(resp) => {
                        let next = self.on_success(i, event, resp, stats.left, now).await;
                        self.scrape_if_due(i).await;
                        // BEP 12: the tracker that answered moves to the front of its tier.
                        let tier = &mut self.order[t];
                        let idx = tier.remove(pos);
                        tier.insert(0, idx);
                        return next;
                    }
                    Err(err) => self.on_failure(i, &err, now),
                }
            }
        }
        // Nobody answered: come back when the first back-off ends.
        let soonest = self.entries.iter().filter_map(|e| e.retry_at).min();
        soonest.unwrap_or_else(|| Instant::now() + self.config.backoff_max)
    }

    async fn announce_one(
        &mut self,
        i: usize,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, AnnounceError> {
        let (http_timeout, retransmit, limits) = (
            self.config.http_timeout,
            self.config.udp_retransmit,
            self.config.limits,
        );
        let reach = HttpReach {
            scion: self.config.scion_http.as_ref(),
            tls: &self.config.tls,
        };
        let e = &mut self.entries[i];
        match &e.url {
            Ok(u @ (TrackerUrl::Http { .. } | TrackerUrl::ScionHttp { .. })) => {
                transport::http_announce(u, req, http_timeout, &limits, reach).await
            }
            Ok(u @ TrackerUrl::Udp { .. }) => {
                transport::udp_announce(u, &mut e.udp, req, &retransmit, &limits).await
            }
            Err(err) => Err(err.clone()),
        }
    }

    /// Scrapes tracker `i` unless it was scraped within `scrape_interval`; the counters (or why
    /// there are none) go into its status.
    async fn scrape_if_due(&mut self, i: usize) {
        let now = Instant::now();
        let e = &self.entries[i];
        if e.last_scrape
            .is_some_and(|at| now.saturating_duration_since(at) < self.config.scrape_interval)
        {
            return;
        }
        let reach = HttpReach {
            scion: self.config.scion_http.as_ref(),
            tls: &self.config.tls,
        };
        let (timeout, retransmit, limits) = (
            self.config.http_timeout,
            self.config.udp_retransmit,
            self.config.limits,
        );
        let e = &mut self.entries[i];
        let result = match &e.url {
            Ok(u @ TrackerUrl::Udp { .. }) => {
                transport::udp_scrape(u, &mut e.udp, &self.info_hash, &retransmit).await
            }
            Ok(u) => transport::http_scrape(u, &self.info_hash, timeout, &limits, reach).await,
            Err(err) => Err(ScrapeError::Request(err.clone())),
        };
        e.last_scrape = Some(Instant::now());
        match result {
            Ok(c) => {
                e.status.scrape = Some(ScrapeCounts {
                    seeders: c.complete,
                    leechers: c.incomplete,
                    completed: c.downloaded,
                    at_unix_ms: unix_ms(Instant::now()),
                });
                e.status.scrape_error = None;
            }
            Err(err) => {
                tracing::debug!(tracker = %e.status.url, "scrape failed: {err}");
                e.status.scrape_error = Some(err.to_string());
            }
        }
    }

    /// When to ask a tracker that just answered again: after its interval, or — when it gave a
    /// leecher no peers — on the short schedule (`empty_retry_base` doubling), kept within
    /// `[min interval, interval]`.
    fn next_after_answer(
        &self,
        empty_answers: u32,
        interval: Duration,
        min_interval: Duration,
    ) -> Duration {
        if empty_answers == 0 {
            return interval;
        }
        let exp = (empty_answers - 1).min(20);
        self.config
            .empty_retry_base
            .saturating_mul(1u32 << exp)
            .min(interval)
            .max(min_interval)
    }

    async fn on_success(
        &mut self,
        i: usize,
        event: Event,
        r: AnnounceResponse,
        left: u64,
        now: Instant,
    ) -> Instant {
        let interval = r
            .interval
            .map_or(self.config.default_interval, |s| {
                Duration::from_secs(s.into())
            })
            .max(
                r.min_interval
                    .map_or(Duration::ZERO, |s| Duration::from_secs(s.into())),
            )
            .max(self.config.min_interval);
        let n = r.peers.len();
        let empty_answers = if n == 0 && left > 0 {
            self.entries[i].status.empty_answers.saturating_add(1)
        } else {
            0
        };
        let tracker_min = r
            .min_interval
            .map_or(Duration::ZERO, |s| Duration::from_secs(s.into()));
        let next = now + self.next_after_answer(empty_answers, interval, tracker_min);
        self.earliest = now
            + r.min_interval
                .map_or(Duration::ZERO, |s| Duration::from_secs(s.into()))
                .max(self.config.min_interval);
        let added = if n > 0 {
            self.link.add_peers(r.peers).await
        } else {
            Ok(0)
        };
        if event == Event::Completed {
            self.completed_pending = false;
            self.status.completed_sent = true;
        }
        match added {
            Ok(k) => self.status.peers_added += k as u64,
            Err(err) => tracing::debug!("tracker {err}"),
        }
        let e = &mut self.entries[i];
        e.started = true;
        e.retry_at = None;
        if r.tracker_id.is_some() {
            e.tracker_id = r.tracker_id;
        }
        let s = &mut e.status;
        s.state = TrackerState::Working;
        s.last_error = None;
        s.tls_error = None;
        s.empty_answers = empty_answers;
        s.warning = r.warning;
        s.consecutive_failures = 0;
        s.last_success_unix_ms = Some(unix_ms(now));
        s.next_attempt_unix_ms = Some(unix_ms(next));
        s.interval_secs = Some(interval.as_secs() as u32);
        s.seeders = r.complete;
        s.leechers = r.incomplete;
        s.last_peers = n;
        s.peers_received += n as u64;
        tracing::debug!(tracker = %s.url, peers = n, "announce ok");
        next
    }

    fn on_failure(&mut self, i: usize, err: &AnnounceError, now: Instant) {
        let failures = self.entries[i].status.consecutive_failures + 1;
        let retry = now + self.backoff(failures);
        let e = &mut self.entries[i];
        e.retry_at = Some(retry);
        let s = &mut e.status;
        s.state = TrackerState::BackingOff;
        s.consecutive_failures = failures;
        s.last_error = Some(err.to_string());
        s.tls_error = match err {
            AnnounceError::Tls(t) => Some(*t),
            _ => None,
        };
        s.next_attempt_unix_ms = Some(unix_ms(retry));
        tracing::debug!(tracker = %s.url, "announce failed: {err}");
        self.status.trackers = self.entries.iter().map(|e| e.status.clone()).collect();
        self.status_tx.send_replace(self.status.clone());
    }

    /// `stopped` to every tracker that saw `started`, all at once, bounded by `stop_timeout`.
    async fn stop(&mut self) {
        let stats = self.link.stats().unwrap_or_default();
        let mut set = tokio::task::JoinSet::new();
        for e in self.entries.iter().filter(|e| e.started) {
            let Ok(url) = e.url.clone() else { continue };
            let req = self.request(e, Event::Stopped, stats);
            let (mut udp, cfg) = (e.udp.clone(), self.config.clone());
            set.spawn(async move {
                match &url {
                    TrackerUrl::Http { .. } | TrackerUrl::ScionHttp { .. } => {
                        transport::http_announce(
                            &url,
                            &req,
                            cfg.stop_timeout,
                            &cfg.limits,
                            HttpReach {
                                scion: cfg.scion_http.as_ref(),
                                tls: &cfg.tls,
                            },
                        )
                        .await
                        .map(drop)
                    }
                    TrackerUrl::Udp { .. } => transport::udp_announce(
                        &url,
                        &mut udp,
                        &req,
                        &cfg.udp_retransmit,
                        &cfg.limits,
                    )
                    .await
                    .map(drop),
                }
            });
        }
        let _ = tokio::time::timeout(self.config.stop_timeout, async {
            while set.join_next().await.is_some() {}
        })
        .await;
        self.status.stopped = true;
        self.publish(None);
    }
}
