//! A torrent's web seeds on its session: one lane per seed (ids from [`WEB_LANE_BASE`]), their
//! HTTP jobs as tasks on the client's runtime, driven synchronously from the driver loop like
//! the TCP lanes. Jobs report into a queue and wake the loop.
//!
//! When the session closes a seed's lane, the reason decides: a ban (the seed sent data that
//! failed the hash check) drops the seed for this torrent; anything else opens a new lane
//! after a back-off.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bt_tracker::client::TrackerTls;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::fetch::{run_job, FetchEvent};
use super::response::backoff;
use super::seed::{SeedState, WebSeed};
use crate::torrent::close::CloseReason;
use crate::torrent::lane_protocol::LaneProtocol;
use crate::torrent::meta::Metainfo;
use crate::torrent::session::{LaneId, Session};
use crate::torrent::web_seeds::WebLayout;

/// First lane id of web seed lanes (TCP lanes start at 1 << 48 and count up).
pub const WEB_LANE_BASE: LaneId = 1 << 56;
/// Rounds of session ↔ seed exchange per pump (handshake, bitfield, unchoke, requests).
const EXCHANGE_ROUNDS: usize = 4;

type Inbox = Rc<RefCell<VecDeque<(LaneId, u64, FetchEvent)>>>;

/// A web seed as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSeedStatus {
    pub url: String,
    pub state: SeedState,
    pub last_error: Option<String>,
    pub bytes_down: u64,
    /// Failures in a row.
    pub failures: u32,
    /// Seconds until the next try, while backing off.
    pub retry_in_secs: Option<u64>,
}

struct SeedLane {
    seed: WebSeed,
    /// Its lane in the session, while one is open.
    lane: Option<LaneId>,
    label: String,
    /// When a closed lane may be opened again.
    reopen_at: Instant,
    reopen_failures: u32,
    tasks: HashMap<u64, JoinHandle<()>>,
}

pub struct WebSeedLanes {
    seeds: Vec<SeedLane>,
    next_lane: LaneId,
    inbox: Inbox,
    wake: Rc<Notify>,
    tls: TrackerTls,
    /// The torrent had every wanted piece at the last pump: no lane is opened.
    complete: bool,
}

impl WebSeedLanes {
    /// The web seeds of `meta` (its checked `url-list`); `wake` wakes the driver loop.
    pub fn new(meta: &Metainfo, wake: Rc<Notify>, now: Instant) -> Self {
        let layout = Arc::new(WebLayout::new(meta));
        let seeds = meta
            .web_seeds
            .iter()
            .map(|url| SeedLane {
                seed: WebSeed::new(url.clone(), meta, layout.clone()),
                lane: None,
                label: format!("web seed {url}"),
                reopen_at: now,
                reopen_failures: 0,
                tasks: HashMap::new(),
            })
            .collect();
        Self {
            seeds,
            next_lane: WEB_LANE_BASE,
            inbox: Rc::default(),
            wake,
            tls: TrackerTls::default(),
            complete: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.seeds.is_empty()
    }

    /// Whether `lane` is a web seed's.
    pub fn owns_lane(&self, lane: LaneId) -> bool {
        self.seeds.iter().any(|s| s.lane == Some(lane))
    }

    pub fn status(&self, now: Instant) -> Vec<WebSeedStatus> {
        self.seeds
            .iter()
            .map(|s| WebSeedStatus {
                url: s.seed.url().to_string(),
                state: s.seed.state(),
                last_error: s.seed.last_error().map(str::to_owned),
                bytes_down: s.seed.bytes_down(),
                failures: s.seed.failures(),
                retry_in_secs: s.seed.retry_in(now).map(|d| d.as_secs()),
            })
            .collect()
    }

    /// Moves everything forward: job reports into the seeds, lanes opened (while `enabled`:
    /// the torrent runs and this runtime dials) or noticed closed, wire bytes both ways,
    /// new jobs started.
    pub fn pump(&mut self, session: &mut Session, enabled: bool, now: Instant) {
        if self.seeds.is_empty() {
            return;
        }
        let events: Vec<_> = self.inbox.borrow_mut().drain(..).collect();
        for (lane, job, ev) in events {
            let Some(s) = self.seeds.iter_mut().find(|s| s.lane == Some(lane)) else {
                continue;
            };
            match ev {
                FetchEvent::Body(data) => s.seed.on_body(job, &data),
                FetchEvent::Done(result) => {
                    s.tasks.remove(&job);
                    s.seed.on_job_done(job, result, now);
                }
            }
        }
        if !enabled {
            self.close_lanes(session, CloseReason::Paused, now);
            return;
        }
        let open: std::collections::HashSet<LaneId> = session.lane_ids().into_iter().collect();
        self.complete = session.is_complete();
        for s in &mut self.seeds {
            if let Some(lane) = s.lane.filter(|l| !open.contains(l)) {
                lane_closed_by_session(s, lane, session, now);
            }
            if s.lane.is_none()
                && !self.complete
                && s.seed.state() != SeedState::Dropped
                && now >= s.reopen_at
            {
                let lane = self.next_lane;
                self.next_lane += 1;
                s.seed.reset_wire();
                abort(s);
                session.add_lane(lane, true, s.label.clone(), now);
                s.lane = Some(lane);
            }
            let Some(lane) = s.lane else { continue };
            s.seed.tick(now);
            for _ in 0..EXCHANGE_ROUNDS {
                let mut moved = false;
                while let Some(b) = session.poll_output(lane, now) {
                    s.seed.on_session_bytes(&b);
                    moved = true;
                }
                while let Some(b) = s.seed.poll_wire() {
                    session.on_lane_data(lane, &b, now);
                    moved = true;
                }
                if !moved {
                    break;
                }
            }
            for id in s.seed.take_aborted() {
                if let Some(t) = s.tasks.remove(&id) {
                    t.abort();
                }
            }
            while let Some(job) = s.seed.poll_job() {
                let (inbox, wake, tls, id) = (
                    self.inbox.clone(),
                    self.wake.clone(),
                    self.tls.clone(),
                    job.id,
                );
                let task = tokio::task::spawn_local(run_job(job, tls, move |ev| {
                    inbox.borrow_mut().push_back((lane, id, ev));
                    wake.notify_one();
                }));
                s.tasks.insert(id, task);
            }
            // Nothing more to fetch: once its last request ended the lane closes, so that a
            // seeding torrent is idle (not polled every loop turn); it opens again when the
            // torrent wants more (a file no longer skipped).
            if self.complete && s.tasks.is_empty() {
                session.on_lane_closed(lane, CloseReason::NothingToFetch, now);
                s.lane = None;
                s.seed.reset_wire();
                let _ = s.seed.take_aborted();
                s.reopen_at = now;
            }
        }
    }

    /// When a seed next needs a pump without an event (a back-off or a reopen ending).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.seeds
            .iter()
            .filter(|s| s.seed.state() != SeedState::Dropped)
            .filter_map(|s| match s.lane {
                Some(_) => s.seed.poll_timeout(),
                None if self.complete => None,
                None => Some(s.reopen_at),
            })
            .min()
    }

    /// Closes every lane and stops every job (pause, queue, remove); the session is told.
    pub fn close_lanes(
        &mut self,
        session: &mut impl LaneProtocol,
        reason: CloseReason,
        now: Instant,
    ) {
        for s in &mut self.seeds {
            abort(s);
            if let Some(lane) = s.lane.take() {
                session.on_lane_closed(lane, reason.clone(), now);
                s.seed.reset_wire();
                let _ = s.seed.take_aborted();
            }
            s.reopen_at = now;
        }
    }

    /// Stops every job (end of the run).
    pub fn close_all(&mut self) {
        for s in &mut self.seeds {
            abort(s);
        }
    }
}

impl Drop for WebSeedLanes {
    /// No job outlives its torrent's live phase (re-check, move, removal).
    fn drop(&mut self) {
        self.close_all();
    }
}

fn abort(s: &mut SeedLane) {
    for (_, t) in s.tasks.drain() {
        t.abort();
    }
}

/// The session closed a seed's lane: a ban drops the seed for the torrent; any other reason
/// opens a new lane after a growing delay.
fn lane_closed_by_session(s: &mut SeedLane, lane: LaneId, session: &Session, now: Instant) {
    s.lane = None;
    abort(s);
    let reason = session
        .lane_stats()
        .into_iter()
        .rev()
        .filter(|(_, l)| l.label == s.label)
        .find_map(|(_, l)| l.closed.map(|c| c.1));
    match reason {
        Some(CloseReason::SentCorruptData | CloseReason::Banned) => {
            tracing::warn!(url = %s.seed.url(), "web seed sent corrupt data: not used again");
            s.seed.drop_for(
                "sent data that failed the hash check: not used again for this torrent".into(),
            );
        }
        other => {
            s.reopen_failures += 1;
            let wait = backoff(s.reopen_failures);
            tracing::info!(lane, url = %s.seed.url(), ?other, "web seed lane closed; reopening in {wait:?}");
            s.reopen_at = now + wait;
        }
    }
}
