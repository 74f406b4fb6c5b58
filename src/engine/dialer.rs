//! Keeps a peer's lanes open: one QUIC connection per chosen SCION path, re-dialled with
//! backoff when a lane dies, on a fresh path set when the daemon's paths change.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use quinn_proto::ConnectionHandle;

use crate::lanes::{choose_paths, disjoint_count};
use crate::scion::{PathFingerprint, ScionAddr, ScionPath};

/// How long a path that failed is avoided.
const FAILED_PATH_QUARANTINE: Duration = Duration::from_secs(15);
const REDIAL_BACKOFF: Duration = Duration::from_millis(500);
/// How often a dialer waiting for paths looks again.
const PATHS_POLL: Duration = Duration::from_millis(50);

/// Paths to one destination AS, refreshed in the background by the daemon task.
pub type SharedPaths = Rc<RefCell<Option<Result<Vec<ScionPath>, String>>>>;

pub struct PeerDialer {
    pub remote: ScionAddr,
    pub max_lanes: usize,
    pub paths: SharedPaths,
    /// Open (or opening) lanes and their path.
    open: HashMap<ConnectionHandle, PathFingerprint>,
    failed: HashMap<PathFingerprint, Instant>,
    next_dial: Instant,
    /// Connections that never reached the handshake, for the "unreachable" verdict.
    pub attempts: u32,
    pub ever_connected: bool,
    /// Cap the lanes at the number of link-disjoint paths (the default without -numPaths).
    pub only_disjoint: bool,
}

impl PeerDialer {
    pub fn new(remote: ScionAddr, max_lanes: usize, paths: SharedPaths, now: Instant) -> Self {
        Self {
            remote,
            max_lanes: max_lanes.max(1),
            paths,
            open: HashMap::new(),
            failed: HashMap::new(),
            next_dial: now,
            attempts: 0,
            ever_connected: false,
            only_disjoint: false,
        }
    }

    pub fn owns(&self, h: ConnectionHandle) -> bool {
        self.open.contains_key(&h)
    }

    pub fn lane_count(&self) -> usize {
        self.open.len()
    }

    /// A lane died: its path is avoided for a while, and a replacement is dialled soon.
    pub fn lost(&mut self, h: ConnectionHandle, now: Instant) {
        if let Some(fp) = self.open.remove(&h) {
            self.failed.insert(fp, now);
            self.next_dial = now + REDIAL_BACKOFF;
        }
    }

    /// Paths to dial now (the caller connects and reports the handles with `dialled`).
    pub fn due(&mut self, now: Instant) -> Vec<ScionPath> {
        if now < self.next_dial {
            return Vec::new();
        }
        let paths = match &*self.paths.borrow() {
            Some(Ok(p)) => p.clone(),
            _ => return Vec::new(),
        };
        let cap = if self.only_disjoint {
            disjoint_count(&paths).min(self.max_lanes)
        } else {
            self.max_lanes
        };
        if self.open.len() >= cap {
            return Vec::new();
        }
        self.failed
            .retain(|_, t| now.saturating_duration_since(*t) < FAILED_PATH_QUARANTINE);
        let in_use: HashSet<PathFingerprint> = self.open.values().copied().collect();
        let avoid: HashSet<PathFingerprint> =
            self.failed.keys().chain(in_use.iter()).copied().collect();
        let fresh: Vec<ScionPath> = paths
            .into_iter()
            .filter(|p| !in_use.contains(&p.fingerprint()))
            .collect();
        let mut want = choose_paths(&fresh, cap - self.open.len(), &avoid);
        // Never re-dial a quarantined path while lanes are up: wait for it to recover.
        if !self.open.is_empty() {
            want.retain(|p| !self.failed.contains_key(&p.fingerprint()));
        }
        self.next_dial = now + REDIAL_BACKOFF;
        want
    }

    /// When [`PeerDialer::due`] may have paths to dial: None while every lane it wants is
    /// open. Paths arrive from a background task that does not wake the loop, so while they
    /// are unknown it asks to be polled again soon.
    pub fn next_due(&self, now: Instant) -> Option<Instant> {
        let cap = match &*self.paths.borrow() {
            Some(Ok(p)) if self.only_disjoint => disjoint_count(p).min(self.max_lanes),
            Some(Ok(_)) => self.max_lanes,
            Some(Err(_)) => return None,
            None => return Some(now + PATHS_POLL),
        };
        (self.open.len() < cap).then(|| self.next_dial.max(now + PATHS_POLL))
    }

    pub fn dialled(&mut self, h: ConnectionHandle, path: &ScionPath) {
        self.attempts += 1;
        self.open.insert(h, path.fingerprint());
    }
}
