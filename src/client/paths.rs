//! The path service: SCION paths per destination AS, shared by every torrent and peer of the
//! client, refreshed in the background, with the failures lanes saw on each path.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quinn_proto::ConnectionError;

use super::control::{
    AsNoteSnapshot, DestinationPaths, GeoSnapshot, HopSnapshot, KnownPath, PathSnapshot,
    PathStepSnapshot,
};
use crate::engine::dialer::SharedPaths;
use crate::lanes::PathPolicy;
use crate::scion::daemon::DaemonClient;
use crate::scion::{Ia, LinkType, PathFingerprint, ScionPath};

/// Whether the way a QUIC connection ended says its path failed: it timed out, was reset, or
/// broke at the transport. A close by either application (whatever its code) or by the peer's
/// QUIC stack came over the path, so the path worked.
pub fn blames_the_path(e: &ConnectionError) -> bool {
    match e {
        ConnectionError::TimedOut
        | ConnectionError::Reset
        | ConnectionError::TransportError(_)
        | ConnectionError::VersionMismatch
        | ConnectionError::CidsExhausted => true,
        ConnectionError::ApplicationClosed(_)
        | ConnectionError::ConnectionClosed(_)
        | ConnectionError::LocallyClosed => false,
    }
}

/// How often the daemon is asked again for paths to a destination.
pub const PATH_REFRESH: Duration = Duration::from_secs(10);
/// How soon the daemon is asked again after a refresh failed (it may be restarting): the
/// paths known before stay in use meanwhile.
pub const PATH_RETRY: Duration = Duration::from_secs(1);
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

    /// A new policy for the paths asked for from now on.
    pub fn set_policy(&mut self, policy: PathPolicy) {
        self.policy = policy;
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

/// A path as the API shows it: hops as `ISD-AS#interface`, and whatever the daemon knows of
/// it (unknown values `None`, never 0).
pub fn path_snapshot(p: &ScionPath) -> PathSnapshot {
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
    PathSnapshot {
        fingerprint: p.fingerprint().to_string(),
        hops: p
            .interfaces
            .iter()
            .enumerate()
            .map(|(n, i)| HopSnapshot {
                ia: i.ia.to_string(),
                interface: i.id,
                geo: p.meta.geo.get(n).cloned().flatten().map(|g| GeoSnapshot {
                    latitude: g.latitude,
                    longitude: g.longitude,
                    address: g.address,
                }),
            })
            .collect(),
        mtu: (p.mtu > 0).then_some(p.mtu),
        latency_ms: ms(p.total_latency()),
        bandwidth_kbps: p.min_bandwidth(),
        expiry_unix_ms: p
            .expiry
            .and_then(|e| e.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis().min(u128::from(u64::MAX)) as u64),
        steps: (0..p.interfaces.len().saturating_sub(1))
            .map(|n| {
                let link = n % 2 == 0;
                PathStepSnapshot {
                    kind: if link { "link" } else { "internal" }.into(),
                    latency_ms: ms(p.latency.get(n).copied().flatten()),
                    bandwidth_kbps: p.bandwidth.get(n).copied().flatten(),
                    link_type: p
                        .meta
                        .link_types
                        .get(n / 2)
                        .filter(|t| link && **t != LinkType::Unknown)
                        .map(|t| t.as_str().into()),
                    internal_hops: p
                        .meta
                        .internal_hops
                        .get(n / 2)
                        .copied()
                        .flatten()
                        .filter(|_| !link),
                }
            })
            .collect(),
        notes: p
            .ases()
            .into_iter()
            .enumerate()
            .map(|(n, ia)| AsNoteSnapshot {
                ia: ia.to_string(),
                note: p.meta.notes.get(n).cloned().flatten(),
            })
            .collect(),
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
        // Since when refreshes fail (the first failure is warned about, the rest are not).
        let mut failing: Option<Instant> = None;
        loop {
            let found = daemon.paths(dst, !first).await.map(|all| {
                let offered = all.len();
                (policy.filter(all), offered)
            });
            if let (Some(since), Ok((_, n))) = (failing, &found) {
                tracing::warn!(
                    "path refresh for AS {dst} works again: the SCION daemon at {} answered \
                     ({n} paths) after {:.0} s of failures",
                    daemon.address(),
                    since.elapsed().as_secs_f64()
                );
                failing = None;
            }
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
                Err(e) if failing.is_none() => {
                    let known = match &*shared.borrow() {
                        Some(Ok(p)) => p.len(),
                        _ => 0,
                    };
                    tracing::warn!(
                        "path refresh for AS {dst} failed: {e}; keeping the {known} paths \
                         known, asking again every {} s",
                        PATH_RETRY.as_secs()
                    );
                    failing = Some(Instant::now());
                }
                Err(e) => tracing::debug!("path refresh for AS {dst} failed again: {e}"),
            }
            first = false;
            // Stop when nobody holds the paths any more (the service dropped them).
            if Rc::strong_count(&shared) == 1 {
                return;
            }
            let wait = if failing.is_some() {
                PATH_RETRY
            } else {
                PATH_REFRESH
            };
            tokio::time::sleep(wait).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_timeouts_resets_and_transport_failures_blame_a_path() {
        use quinn_proto::{ApplicationClose, TransportError, TransportErrorCode, VarInt};
        let app_close = |code: u32| {
            ConnectionError::ApplicationClosed(ApplicationClose {
                error_code: VarInt::from_u32(code),
                reason: bytes::Bytes::from_static(b"unknown info hash"),
            })
        };
        // A peer that closes us for any reason (a torrent it does not run, a ban) reached us.
        assert!(!blames_the_path(&app_close(0)));
        assert!(!blames_the_path(&app_close(3)));
        assert!(!blames_the_path(&ConnectionError::LocallyClosed));
        assert!(blames_the_path(&ConnectionError::TimedOut));
        assert!(blames_the_path(&ConnectionError::Reset));
        let broken = TransportError {
            code: TransportErrorCode::PROTOCOL_VIOLATION,
            frame: None,
            reason: String::new(),
        };
        assert!(blames_the_path(&ConnectionError::TransportError(broken)));
    }
    use crate::scion::{parse_ia, Geo, PathInterface, PathMeta};

    fn path() -> ScionPath {
        let ia = |s| parse_ia(s).unwrap();
        let mut p = ScionPath::local(ia("1-ff00:0:111"));
        p.dst_ia = ia("1-ff00:0:112");
        p.raw = bytes::Bytes::from_static(b"x");
        p.interfaces = [
            ("1-ff00:0:111", 1),
            ("1-ff00:0:110", 1),
            ("1-ff00:0:110", 2),
            ("1-ff00:0:112", 1),
        ]
        .into_iter()
        .map(|(s, id)| PathInterface { ia: ia(s), id })
        .collect();
        p
    }

    /// pocketscion's kind of answer: nothing but the route. Unknown is null, never 0.
    #[test]
    fn unknown_metadata_is_null() {
        let v = serde_json::to_value(path_snapshot(&path())).unwrap();
        assert_eq!(v["mtu"], serde_json::Value::Null);
        assert_eq!(v["latency_ms"], serde_json::Value::Null);
        assert_eq!(v["bandwidth_kbps"], serde_json::Value::Null);
        assert_eq!(v["expiry_unix_ms"], serde_json::Value::Null);
        assert_eq!(v["hops"][0]["geo"], serde_json::Value::Null);
        let steps = v["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[0]["kind"], "link");
        assert_eq!(steps[1]["kind"], "internal");
        for s in steps {
            for k in ["latency_ms", "bandwidth_kbps", "link_type", "internal_hops"] {
                assert_eq!(s[k], serde_json::Value::Null, "{k} in {s}");
            }
        }
        assert_eq!(
            v["notes"][1],
            serde_json::json!({"ia": "1-ff00:0:110", "note": null})
        );
        // An older daemon's snapshot (no metadata fields) still reads.
        let old = serde_json::json!({"fingerprint": "f", "hops": [{"ia": "1-ff00:0:111", "interface": 1}],
            "mtu": 1280, "latency_ms": null});
        let old: PathSnapshot = serde_json::from_value(old).unwrap();
        assert_eq!((old.mtu, old.hops[0].geo.clone()), (Some(1280), None));
    }

    #[test]
    fn known_metadata_is_placed_on_its_step() {
        let mut p = path();
        let ms = |n| Some(Duration::from_millis(n));
        p.mtu = 1472;
        p.expiry = Some(UNIX_EPOCH + Duration::from_secs(1_000));
        p.latency = vec![ms(5), ms(1), ms(7)];
        p.bandwidth = vec![Some(50_000), None, Some(100_000)];
        p.meta = PathMeta {
            geo: vec![
                None,
                Some(Geo {
                    latitude: 46.5,
                    longitude: 6.5,
                    address: "Lausanne".into(),
                }),
                None,
                None,
            ],
            link_types: vec![LinkType::Direct, LinkType::Unknown],
            internal_hops: vec![Some(2)],
            notes: vec![None, Some("core".into()), None],
        };
        let s = path_snapshot(&p);
        assert_eq!(s.mtu, Some(1472));
        assert_eq!(s.latency_ms, Some(13.0));
        assert_eq!(s.bandwidth_kbps, Some(50_000));
        assert_eq!(s.expiry_unix_ms, Some(1_000_000));
        assert_eq!(s.hops[1].geo.as_ref().unwrap().address, "Lausanne");
        assert_eq!(s.steps[0].link_type.as_deref(), Some("direct"));
        assert_eq!(s.steps[0].internal_hops, None);
        assert_eq!(
            (s.steps[1].internal_hops, s.steps[1].link_type.clone()),
            (Some(2), None)
        );
        assert_eq!(s.steps[1].bandwidth_kbps, None);
        assert_eq!(s.steps[2].link_type, None, "unknown link type");
        assert_eq!(s.notes[1].note.as_deref(), Some("core"));
        assert_eq!(s.notes[2].ia, "1-ff00:0:112");
    }
}
