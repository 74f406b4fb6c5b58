//! Keeps a peer's lanes open: one QUIC connection per chosen SCION path, re-dialled with
//! backoff when a lane dies, on a fresh path set when the daemon's paths change.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use quinn_proto::ConnectionHandle;

use crate::lanes::{choose_paths, disjoint_count, PathPolicy, Preference};
use crate::scion::{PathFingerprint, ScionAddr, ScionPath};

/// How long a path that failed is avoided.
const FAILED_PATH_QUARANTINE: Duration = Duration::from_secs(15);
const REDIAL_BACKOFF: Duration = Duration::from_millis(500);
/// How often a dialer waiting for paths looks again.
const PATHS_POLL: Duration = Duration::from_millis(50);
/// How often open lanes are matched against the daemon's latest paths (see
/// [`PeerDialer::latest_paths`]).
const LATEST_PATHS_EVERY: Duration = Duration::from_secs(5);

/// How a torrent's lanes to a peer pick their paths.
#[derive(Debug, Clone, Default)]
pub struct LaneRules {
    /// Lanes per peer; None: every link-disjoint path up to the caller's default cap.
    pub max_lanes: Option<usize>,
    /// The torrent's own path rules, on top of the client-wide policy.
    pub policy: PathPolicy,
    pub preference: Preference,
}

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
    next_latest: Instant,
    /// Connections that never reached the handshake, for the "unreachable" verdict.
    pub attempts: u32,
    pub ever_connected: bool,
    /// Cap the lanes at the number of link-disjoint paths (the default without -numPaths).
    pub only_disjoint: bool,
    /// Which of the shared paths this peer's lanes may use (a torrent's own rules; the
    /// client-wide policy already filtered the shared list).
    pub policy: PathPolicy,
    pub preference: Preference,
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
            next_latest: now + LATEST_PATHS_EVERY,
            attempts: 0,
            ever_connected: false,
            only_disjoint: false,
            policy: PathPolicy::default(),
            preference: Preference::default(),
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
            Some(Ok(p)) => self.policy.filter(p.clone()),
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
        let mut want = choose_paths(&fresh, cap - self.open.len(), &avoid, &self.preference);
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
            Some(Ok(p)) if self.policy.is_empty() && self.only_disjoint => {
                disjoint_count(p).min(self.max_lanes)
            }
            Some(Ok(p)) if self.only_disjoint => {
                disjoint_count(&self.policy.filter(p.clone())).min(self.max_lanes)
            }
            Some(Ok(_)) => self.max_lanes,
            Some(Err(_)) => return None,
            None => return Some(now + PATHS_POLL),
        };
        (self.open.len() < cap).then(|| self.next_dial.max(now + PATHS_POLL))
    }

    /// Every few seconds: each open lane with the daemon's latest path of its route (same
    /// interfaces, the hop fields of the last refresh), for
    /// [`crate::net::ScionNet::refresh_path`] to move the lane onto before its own expire.
    pub fn latest_paths(&mut self, now: Instant) -> Vec<(ConnectionHandle, ScionPath)> {
        if now < self.next_latest || self.open.is_empty() {
            return Vec::new();
        }
        self.next_latest = now + LATEST_PATHS_EVERY;
        let paths = self.paths.borrow();
        let Some(Ok(paths)) = &*paths else {
            return Vec::new();
        };
        self.open
            .iter()
            .filter_map(|(&h, &fp)| {
                let p = paths.iter().find(|p| p.fingerprint() == fp)?;
                Some((h, p.clone()))
            })
            .collect()
    }

    /// New rules from the torrent: they apply from the next dial, which is now.
    pub fn set_rules(&mut self, policy: PathPolicy, preference: Preference, now: Instant) {
        self.policy = policy;
        self.preference = preference;
        self.next_dial = now;
    }

    /// The daemon's paths, when it offers some but this dialer's rules permit none of them
    /// (then it dials nothing until the rules or the paths change).
    pub fn refused_paths(&self) -> Option<Vec<ScionPath>> {
        if self.policy.is_empty() {
            return None;
        }
        match &*self.paths.borrow() {
            Some(Ok(p)) if !p.is_empty() && !p.iter().any(|p| self.policy.permits(p)) => {
                Some(p.clone())
            }
            _ => None,
        }
    }

    pub fn dialled(&mut self, h: ConnectionHandle, path: &ScionPath) {
        self.attempts += 1;
        self.open.insert(h, path.fingerprint());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scion::packet::tests::two_segment_path;
    use crate::scion::parse_ia;

    fn path(timestamp: u32) -> ScionPath {
        let mut raw = two_segment_path();
        raw[8..12].copy_from_slice(&timestamp.to_be_bytes());
        raw[16..20].copy_from_slice(&timestamp.to_be_bytes());
        let (src, dst) = (
            parse_ia("1-ff00:0:111").unwrap(),
            parse_ia("1-ff00:0:112").unwrap(),
        );
        ScionPath::from_raw(
            src,
            dst,
            raw.into(),
            Some("127.0.0.1:30001".parse().unwrap()),
        )
    }

    /// Every few seconds each open lane is paired with the daemon's latest hop fields of its
    /// route, which the path service replaced meanwhile.
    #[test]
    fn open_lanes_are_paired_with_the_latest_hop_fields_of_their_route() {
        let now = Instant::now();
        let paths: SharedPaths = Rc::new(RefCell::new(Some(Ok(vec![path(1_900_000_000)]))));
        let remote = "1-ff00:0:112,[127.0.0.1]:31000".parse().unwrap();
        let mut d = PeerDialer::new(remote, 3, paths.clone(), now);
        let first = d.due(now);
        assert_eq!(first.len(), 1);
        d.dialled(ConnectionHandle(7), &first[0]);
        *paths.borrow_mut() = Some(Ok(vec![path(1_900_000_600)]));
        assert!(d.latest_paths(now).is_empty(), "not before a few seconds");
        let latest = d.latest_paths(now + LATEST_PATHS_EVERY);
        assert_eq!(latest, vec![(ConnectionHandle(7), path(1_900_000_600))]);
        assert!(d.latest_paths(now + LATEST_PATHS_EVERY).is_empty());
    }

    /// Rules that refuse every offered path dial nothing and say so; new rules that allow
    /// the path dial it at once.
    #[test]
    fn rules_that_refuse_every_path_are_reported_until_changed() {
        let now = Instant::now();
        let paths: SharedPaths = Rc::new(RefCell::new(Some(Ok(vec![path(1_900_000_000)]))));
        let remote = "1-ff00:0:112,[127.0.0.1]:31000".parse().unwrap();
        let mut d = PeerDialer::new(remote, 3, paths, now);
        assert_eq!(d.refused_paths(), None, "no rules refuse nothing");
        let nothing: PathPolicy = "deny=1".parse().unwrap();
        d.set_rules(nothing, Preference::default(), now);
        assert!(d.due(now).is_empty());
        assert_eq!(d.refused_paths().map(|p| p.len()), Some(1));
        let later = now + Duration::from_millis(10);
        d.set_rules("allow=1".parse().unwrap(), Preference::default(), later);
        assert_eq!(d.refused_paths(), None);
        assert_eq!(
            d.due(later).len(),
            1,
            "dialled without waiting for the backoff"
        );
    }
}
