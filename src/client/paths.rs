//! The path service: SCION paths per destination AS, shared by every torrent and peer of the
//! client, refreshed in the background, with the failures lanes saw on each path.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::control::{DestinationPaths, HopSnapshot, KnownPath, PathSnapshot};
use crate::engine::dialer::SharedPaths;
use crate::lanes::PathPolicy;
use crate::scion::daemon::DaemonClient;
use crate::scion::{Ia, PathFingerprint, ScionPath};

/// How often the daemon is asked again for paths to a destination.
pub const PATH_REFRESH: Duration = Duration::from_secs(10);
/// How long a failure is shown for a path.
const FAILURE_SHOWN: Duration = Duration::from_secs(60);

struct Destination {
    paths: SharedPaths,
    refreshed_unix_ms: Rc<Cell<Option<u64>>>,
    failures: HashMap<PathFingerprint, (Instant, String)>,
}

pub struct PathService {
    daemon: Option<DaemonClient>,
    policy: PathPolicy,
    dests: HashMap<Ia, Destination>,
}

impl PathService {
    pub fn new(daemon: Option<DaemonClient>, policy: PathPolicy) -> Self {
        Self {
            daemon,
            policy,
            dests: HashMap::new(),
        }
    }

    pub fn has_daemon(&self) -> bool {
        self.daemon.is_some()
    }

    /// The paths to `ia`, shared with every other user; the first ask starts the refresher.
    pub fn paths_to(&mut self, ia: Ia) -> SharedPaths {
        if let Some(d) = self.dests.get(&ia) {
            return d.paths.clone();
        }
        let paths: SharedPaths = Rc::new(RefCell::new(None));
        let refreshed = Rc::new(Cell::new(None));
        match &self.daemon {
            Some(daemon) => spawn_refresher(
                daemon.clone(),
                ia,
                self.policy.clone(),
                paths.clone(),
                refreshed.clone(),
            ),
            None => *paths.borrow_mut() = Some(Err("no SCION daemon".into())),
        }
        self.dests.insert(
            ia,
            Destination {
                paths: paths.clone(),
                refreshed_unix_ms: refreshed,
                failures: HashMap::new(),
            },
        );
        paths
    }

    /// A lane on `path` failed (not a clean close).
    pub fn record_failure(&mut self, path: &ScionPath, reason: &str, now: Instant) {
        if let Some(d) = self.dests.get_mut(&path.dst_ia) {
            d.failures
                .insert(path.fingerprint(), (now, reason.to_string()));
        }
    }

    /// What the snapshot shows; `lanes_on(fingerprint)` counts the lanes on a path now.
    pub fn snapshot(
        &mut self,
        now: Instant,
        lanes_on: impl Fn(PathFingerprint) -> usize,
    ) -> Vec<DestinationPaths> {
        let mut out: Vec<DestinationPaths> = self
            .dests
            .iter_mut()
            .map(|(ia, d)| {
                d.failures
                    .retain(|_, (t, _)| now.saturating_duration_since(*t) < FAILURE_SHOWN);
                let (paths, error) = match &*d.paths.borrow() {
                    Some(Ok(p)) => (p.clone(), None),
                    Some(Err(e)) => (Vec::new(), Some(e.clone())),
                    None => (Vec::new(), None),
                };
                DestinationPaths {
                    ia: ia.to_string(),
                    paths: paths
                        .iter()
                        .map(|p| KnownPath {
                            path: path_snapshot(p),
                            lanes: lanes_on(p.fingerprint()),
                            failed: d.failures.get(&p.fingerprint()).map(|f| f.1.clone()),
                        })
                        .collect(),
                    refreshed_unix_ms: d.refreshed_unix_ms.get(),
                    error,
                }
            })
            .collect();
        out.sort_by(|a, b| a.ia.cmp(&b.ia));
        out
    }
}

/// A path as the API shows it: hops as `ISD-AS#interface`.
pub fn path_snapshot(p: &ScionPath) -> PathSnapshot {
    PathSnapshot {
        fingerprint: p.fingerprint().to_string(),
        hops: p
            .interfaces
            .iter()
            .map(|i| HopSnapshot {
                ia: i.ia.to_string(),
                interface: i.id,
            })
            .collect(),
        mtu: p.mtu,
        latency_ms: p.total_latency().map(|d| d.as_secs_f64() * 1e3),
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Re-asks the daemon for paths to `dst` every few seconds, so lanes come back when a path
/// reappears or a new one shows up.
fn spawn_refresher(
    daemon: DaemonClient,
    dst: Ia,
    policy: PathPolicy,
    shared: SharedPaths,
    refreshed: Rc<Cell<Option<u64>>>,
) {
    tokio_uring::spawn(async move {
        let mut first = true;
        loop {
            let found = daemon.paths(dst, !first).await.map(|all| {
                let offered = all.len();
                (policy.filter(all), offered)
            });
            match found {
                Ok((p, _)) if !p.is_empty() => {
                    *shared.borrow_mut() = Some(Ok(p));
                    refreshed.set(Some(unix_ms()));
                }
                Ok((_, 0)) if first => {
                    *shared.borrow_mut() = Some(Err(format!("no path to AS {dst}")))
                }
                Ok((_, n)) if first => {
                    *shared.borrow_mut() = Some(Err(format!(
                        "none of the {n} paths to AS {dst} satisfies the path policy {policy}"
                    )))
                }
                Ok(_) => {}
                Err(e) if first => {
                    *shared.borrow_mut() =
                        Some(Err(format!("path lookup for AS {dst} failed: {e}")))
                }
                Err(e) => tracing::warn!("path refresh for AS {dst} failed: {e}"),
            }
            first = false;
            // Stop when nobody holds the paths any more (the service dropped them).
            if Rc::strong_count(&shared) == 1 {
                return;
            }
            tokio::time::sleep(PATH_REFRESH).await;
        }
    });
}
