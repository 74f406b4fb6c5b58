//! Several io_uring runtimes on one SCION port (`--runtimes N`): one thread per runtime, each
//! with its own socket in a `SO_REUSEPORT` group, its own QUIC endpoint and its own client
//! (see [`crate::net::steering`] for how packets find their runtime).
//!
//! Runtime 0 is the client the process started: it owns every torrent, the TCP listener,
//! trackers, DHT, the store and the control channel. The other runtimes only serve the QUIC
//! connections the kernel steers to them, for the torrents runtime 0 hands them: every
//! complete torrent that is not paused ([`ExtraRuntimes::reconcile`]). Their snapshots are
//! folded into runtime 0's ([`ExtraRuntimes::merge`]), so the API, the web UI and the seeding
//! ratio see one client.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::control::{self, ClientHandle, ClientSide, ClientSnapshot, Command, InfoHash};
use super::driver::{Client, EngineOptions, LiveTorrent};
use super::paths::PathService;
use super::torrent::Torrent;
use super::{connect_daemon, ClientError};
use crate::engine::quic::StopWhen;
use crate::engine::tcp::TcpHub;
use crate::lanes::PathPolicy;
use crate::net::steering::{attach_reuseport_program, Mailboxes, Steering, MAX_RUNTIMES};
use crate::net::{uring, ScionNet};
use crate::quic::QuicTuning;
use crate::scion::ScionAddr;
use crate::storage::HashPool;
use crate::torrent::rate::SharedBucket;
use crate::torrent::session::LaneStats;

/// Lane ids of runtime `k` are shown as `k << LANE_ID_SHIFT | id`: unique over the process.
const LANE_ID_SHIFT: u32 = 48;

/// QUIC settings of runtime `index` of `count` (plain ones for a single runtime).
pub fn tuning(index: u8, count: u8) -> QuicTuning {
    QuicTuning {
        steering: Steering::new(index, count),
        ..QuicTuning::default()
    }
}

/// Binds one more socket per body to `addr`, the port of `first` (runtime 0's socket, bound
/// already), attaches the steering program to the group and starts a thread per extra
/// runtime k (1, 2, ...) that runs `bodies[k - 1](k, socket, mailboxes)` on its own
/// tokio-uring runtime. A body that fails stops the group ([`Mailboxes::fail`]).
pub fn spawn<F, Fut, E>(
    first: &impl AsRawFd,
    addr: SocketAddr,
    bodies: Vec<F>,
) -> Result<Arc<Mailboxes>, ClientError>
where
    F: FnOnce(u8, std::net::UdpSocket, Arc<Mailboxes>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let count = u8::try_from(bodies.len() + 1)
        .ok()
        .filter(|&n| n <= MAX_RUNTIMES)
        .ok_or_else(|| ClientError::Other(format!("at most {MAX_RUNTIMES} runtimes")))?;
    let mail = Mailboxes::new(count);
    // Bind order is the group's socket order, which the program's result indexes.
    let sockets = (1..count)
        .map(|_| uring::bind_std(addr))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Bind(format!("another socket on {addr}: {e}")))?;
    attach_reuseport_program(first, count)
        .map_err(|e| ClientError::Other(format!("cannot steer packets between runtimes: {e}")))?;
    for ((socket, body), index) in sockets.into_iter().zip(bodies).zip(1u8..) {
        let mail = mail.clone();
        std::thread::Builder::new()
            .name(format!("runtime-{index}"))
            .spawn(move || {
                let span = tracing::info_span!("runtime", index);
                let _inside = span.enter();
                if let Err(e) = tokio_uring::start(body(index, socket, mail.clone())) {
                    let why = format!("runtime {index} stopped: {e}");
                    tracing::error!("{why}");
                    mail.fail(why);
                }
            })
            .map_err(|e| ClientError::Other(format!("cannot start runtime {index}: {e}")))?;
    }
    Ok(mail)
}

/// What an extra runtime shares with runtime 0.
#[derive(Clone)]
pub struct ExtraConfig {
    pub local: ScionAddr,
    pub sciond: String,
    pub policy: PathPolicy,
    pub engine: EngineOptions,
    pub pool: Arc<HashPool>,
    /// Runtime 0's global rate limits: one budget for the whole process.
    pub global_down: SharedBucket,
    pub global_up: SharedBucket,
}

/// What the extra runtimes served, each runtime's lanes handed over when its loop ended: for
/// a single-shot seeder's summary and `-exportMetricsTo`, which cover every runtime.
#[derive(Clone, Default)]
pub struct FinalLanes {
    inner: Arc<(Mutex<Finals>, Condvar)>,
}

#[derive(Default)]
struct Finals {
    /// How many runtimes reported.
    reported: usize,
    /// Per torrent: the lanes every reporting runtime had (open and closed), and what it
    /// uploaded.
    torrents: HashMap<InfoHash, (Vec<LaneStats>, u64)>,
}

impl FinalLanes {
    /// One runtime's lanes and uploads per torrent; called once per runtime, when it ends.
    fn report(&self, torrents: Vec<(InfoHash, Vec<LaneStats>, u64)>) {
        let (lock, ready) = &*self.inner;
        let mut f = lock.lock().unwrap_or_else(PoisonError::into_inner);
        f.reported += 1;
        for (ih, lanes, up) in torrents {
            let entry = f.torrents.entry(ih).or_default();
            entry.0.extend(lanes);
            entry.1 += up;
        }
        ready.notify_all();
    }

    /// The lanes and upload of `ih` over the extra runtimes, once `runtimes` of them reported
    /// or `wait` passed (then what those that did reported, and false).
    pub fn wait_for(
        &self,
        runtimes: usize,
        ih: &InfoHash,
        wait: Duration,
    ) -> (Vec<LaneStats>, u64, bool) {
        let (lock, ready) = &*self.inner;
        let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let (f, _) = ready
            .wait_timeout_while(guard, wait, |f| f.reported < runtimes)
            .unwrap_or_else(PoisonError::into_inner);
        let all = f.reported >= runtimes;
        let (lanes, up) = f.torrents.get(ih).cloned().unwrap_or_default();
        (lanes, up, all)
    }
}

/// One extra runtime: a client without torrents of its own, driven by runtime 0 through
/// `side` (the torrents to serve), until runtime 0 tells it to shut down or the process ends.
/// Whatever ends it, it reports its lanes to `finals`.
pub async fn serve(
    index: u8,
    count: u8,
    socket: std::net::UdpSocket,
    cfg: ExtraConfig,
    mail: Arc<Mailboxes>,
    side: ClientSide,
    finals: FinalLanes,
) -> Result<(), ClientError> {
    let mut lanes = Vec::new();
    let ran = serve_until_stopped(index, count, socket, cfg, mail, side, &mut lanes).await;
    finals.report(lanes);
    ran
}

async fn serve_until_stopped(
    index: u8,
    count: u8,
    socket: std::net::UdpSocket,
    cfg: ExtraConfig,
    mail: Arc<Mailboxes>,
    side: ClientSide,
    lanes: &mut Vec<(InfoHash, Vec<LaneStats>, u64)>,
) -> Result<(), ClientError> {
    let (daemon, _) = connect_daemon(&cfg.sciond).await?;
    let as_mtu = daemon.local_mtu().await;
    let now = Instant::now();
    let paths = PathService::new(Some(daemon), cfg.policy);
    let hub = TcpHub::new(Default::default());
    let mut client = Client::new(cfg.pool, paths, hub, cfg.engine, now);
    client.local_scion = Some(cfg.local);
    client.sciond = Some(cfg.sciond);
    client.share_global_limits(cfg.global_down, cfg.global_up);
    client.attach_control(side.commands, side.snapshots);
    let mut net = ScionNet::new(cfg.local, &tuning(index, count), true)
        .map_err(|e| ClientError::Other(e.to_string()))?;
    net.set_as_mtu(as_mtu);
    tracing::info!("serving complete torrents on {}", cfg.local);
    let socket = tokio_uring::net::UdpSocket::from_std(socket);
    let ran = uring::run_shared(socket, &mut net, &mut client, Some((index, mail))).await;
    lanes.extend(client.torrents().filter_map(|(ih, t)| {
        let s = &t.phase.live()?.app.session;
        Some((
            *ih,
            s.lane_stats().into_iter().map(|(_, l)| l).collect(),
            s.bytes_up,
        ))
    }));
    ran.map_err(|e| ClientError::Other(e.to_string()))
}

/// Runtime 0's view of the extra runtimes: what each serves and what it reported.
pub struct ExtraRuntimes {
    /// Index k-1 is runtime k.
    handles: Vec<ClientHandle>,
    served: HashSet<InfoHash>,
    /// The upload total each runtime last reported for a torrent, to add only what is new.
    seen_up: HashMap<(InfoHash, u8), u64>,
    /// What each runtime uploaded of a torrent over all its servings.
    uploaded: HashMap<(InfoHash, u8), u64>,
    shutdown: Vec<oneshot::Receiver<Result<(), control::ControlError>>>,
}

impl ExtraRuntimes {
    pub fn new(handles: Vec<ClientHandle>) -> Self {
        Self {
            handles,
            served: HashSet::new(),
            seen_up: HashMap::new(),
            uploaded: HashMap::new(),
            shutdown: Vec::new(),
        }
    }

    /// Hands every complete, running torrent to the extra runtimes and takes back the ones
    /// that stopped being that (paused, removed, stopped by the seeding policy).
    pub fn reconcile(&mut self, torrents: &HashMap<InfoHash, Torrent>) {
        let wanted: HashSet<InfoHash> = torrents
            .iter()
            .filter(|(_, t)| t.serves_everywhere())
            .map(|(ih, _)| *ih)
            .collect();
        for ih in self.served.difference(&wanted) {
            for h in &self.handles {
                let (reply, _) = oneshot::channel();
                h.notify(Command::Remove {
                    info_hash: *ih,
                    delete_data: false,
                    reply,
                });
            }
        }
        // Counts of a torrent that is gone for good are not needed any more.
        self.seen_up.retain(|(ih, _), _| torrents.contains_key(ih));
        self.uploaded.retain(|(ih, _), _| torrents.contains_key(ih));
        for ih in wanted.difference(&self.served) {
            let Some(t) = torrents.get(ih) else { continue };
            let Some(live) = t.phase.live() else {
                continue;
            };
            let (data, app) = (&live.data, &live.app);
            for h in &self.handles {
                h.notify(Command::Serve(Box::new(ServedTorrent {
                    live: LiveTorrent {
                        meta: data.meta.clone(),
                        torrent_bytes: Vec::new(),
                        storage: data.storage.clone(),
                        have: app.session.have().clone(),
                        data_path: data.data_path.clone(),
                        out_dir: t.settings.out_dir.clone(),
                        peers: Vec::new(),
                        source: control::PeerSource::Incoming,
                        stop_when: StopWhen::Never,
                    },
                    down: t.down_bucket.clone(),
                    up: t.up_bucket.clone(),
                })));
            }
        }
        self.served = wanted;
    }

    /// What the other runtimes uploaded of a torrent so far (the seeding ratio counts it).
    pub fn uploaded(&self, ih: &InfoHash) -> u64 {
        (1..=self.handles.len() as u8)
            .filter_map(|k| self.uploaded.get(&(*ih, k)))
            .sum()
    }

    /// Folds the extra runtimes' latest snapshots into runtime 0's: their peers and lanes
    /// (lane ids made unique, `runtime` set), rates, lanes per path, and what each uploaded
    /// (counted from their reports since the last merge) into the totals and ratio.
    pub fn merge(&mut self, snap: &mut ClientSnapshot) {
        let index_of: HashMap<String, usize> = snap
            .torrents
            .iter()
            .enumerate()
            .map(|(i, t)| (t.info_hash.clone(), i))
            .collect();
        for (k, h) in self.handles.iter().enumerate() {
            let runtime = k as u8 + 1;
            let theirs = h.snapshot();
            for et in &theirs.torrents {
                let (Some(&i), Ok(ih)) = (
                    index_of.get(&et.info_hash),
                    control::parse_info_hash(&et.info_hash),
                ) else {
                    continue;
                };
                let last = self.seen_up.insert((ih, runtime), et.bytes_up);
                // Less than last time: the runtime serves the torrent anew, from zero.
                let new = match last {
                    Some(l) if et.bytes_up >= l => et.bytes_up - l,
                    _ => et.bytes_up,
                };
                *self.uploaded.entry((ih, runtime)).or_default() += new;
                let ours = &mut snap.torrents[i];
                ours.rate_up += et.rate_up;
                ours.rate_down += et.rate_down;
                ours.peers_connected += et.peers_connected;
                ours.peers.extend(et.peers.iter().cloned());
                ours.lanes.extend(et.lanes.iter().cloned().map(|mut l| {
                    l.id |= u64::from(runtime) << LANE_ID_SHIFT;
                    l.runtime = runtime;
                    l
                }));
            }
            merge_paths(&mut snap.paths, &theirs.paths);
        }
        let count = self.handles.len() as u8 + 1;
        for ts in &mut snap.torrents {
            let Ok(ih) = control::parse_info_hash(&ts.info_hash) else {
                continue;
            };
            ts.uploaded_by_runtime = std::iter::once(ts.bytes_up)
                .chain((1..count).map(|k| self.uploaded.get(&(ih, k)).copied().unwrap_or(0)))
                .collect();
            ts.bytes_up += self.uploaded(&ih);
            if ts.size > 0 {
                ts.ratio = ts.bytes_up as f64 / ts.size as f64;
            }
        }
    }

    /// Tells every extra runtime to close its lanes and stop.
    pub fn begin_shutdown(&mut self) {
        for h in &self.handles {
            let (tx, rx) = oneshot::channel();
            if h.notify(Command::Shutdown(tx)) {
                self.shutdown.push(rx);
            }
        }
    }

    /// Whether every extra runtime answered the shutdown.
    pub fn shut_down(&mut self) -> bool {
        self.shutdown
            .retain_mut(|rx| matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty)));
        self.shutdown.is_empty()
    }
}

/// A complete torrent runtime 0 hands an extra runtime, with runtime 0's rate-limit buckets
/// (one budget per torrent over all runtimes).
pub struct ServedTorrent {
    pub live: LiveTorrent,
    pub down: SharedBucket,
    pub up: SharedBucket,
}

/// Adds the lanes the other runtime has on each path to ours.
fn merge_paths(ours: &mut Vec<control::DestinationPaths>, theirs: &[control::DestinationPaths]) {
    for dest in theirs {
        let Some(mine) = ours.iter_mut().find(|d| d.ia == dest.ia) else {
            ours.push(dest.clone());
            continue;
        };
        for p in &dest.paths {
            match mine
                .paths
                .iter_mut()
                .find(|m| m.path.fingerprint == p.path.fingerprint)
            {
                Some(m) => m.lanes += p.lanes,
                None => mine.paths.push(p.clone()),
            }
        }
    }
}

/// Starts runtimes 1..count beside runtime 0 (whose socket is `first`), each driven through
/// a control channel of its own; hand the returned [`ExtraRuntimes`] to runtime 0's client
/// ([`Client::attach_extra_runtimes`]).
pub fn start_extra(
    first: &impl AsRawFd,
    count: u8,
    cfg: ExtraConfig,
) -> Result<(Arc<Mailboxes>, ExtraRuntimes), ClientError> {
    start_extra_reporting(first, count, cfg, FinalLanes::default())
}

/// [`start_extra`], each runtime reporting its lanes to `finals` when it ends.
pub fn start_extra_reporting(
    first: &impl AsRawFd,
    count: u8,
    cfg: ExtraConfig,
    finals: FinalLanes,
) -> Result<(Arc<Mailboxes>, ExtraRuntimes), ClientError> {
    let (handles, sides): (Vec<ClientHandle>, Vec<ClientSide>) =
        (1..count).map(|_| control::channel()).unzip();
    let addr = cfg.local.socket_addr();
    let bodies = sides
        .into_iter()
        .map(|side| {
            let (cfg, finals) = (cfg.clone(), finals.clone());
            move |index, socket, mail| serve(index, count, socket, cfg, mail, side, finals)
        })
        .collect();
    let mail = spawn(first, addr, bodies)?;
    Ok((mail, ExtraRuntimes::new(handles)))
}

/// How many runtimes to run: `requested` (default 1), or 1 without SCION, where there are no
/// QUIC connections to spread.
pub fn count(requested: Option<u8>, scion_on: bool) -> u8 {
    match requested {
        Some(n) if n > 1 && !scion_on => {
            tracing::warn!("SCION is off: --runtimes {n} ignored, TCP runs on one runtime");
            1
        }
        n => n.unwrap_or(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::control::{LaneSnapshot, Transport};
    use crate::client::phase::{MagnetPhase, Phase};

    fn lane(id: u64, bytes_up: u64) -> LaneSnapshot {
        LaneSnapshot {
            id,
            peer: "1-ff00:0:112,[127.0.0.1]:4000".into(),
            transport: Transport::Scion,
            label: String::new(),
            path: None,
            bytes_down: 0,
            bytes_up,
            rate_down: 0.0,
            rate_up: 0.0,
            latency_ms_p50: None,
            latency_ms_p90: None,
            latency_ms_p99: None,
            open: true,
            closed_reason: None,
            runtime: 0,
        }
    }

    /// Runtime 0's snapshot of one 100-byte torrent that uploaded `own` bytes on lane 1, and
    /// what runtime 1 says it uploaded (`theirs`, on its own lane 1).
    fn merged(
        extra: &mut ExtraRuntimes,
        side: &ClientSide,
        torrents: &mut HashMap<InfoHash, Torrent>,
        own: u64,
        theirs: u64,
    ) -> control::TorrentSnapshot {
        let now = Instant::now();
        let t = torrents.values_mut().next().unwrap();
        let mut ours = t.snapshot(now, 0);
        ours.size = 100;
        ours.bytes_up = own;
        ours.lanes = vec![lane(1, own)];
        let mut other = ours.clone();
        other.bytes_up = theirs;
        other.lanes = vec![lane(1, theirs)];
        side.snapshots.send_replace(Arc::new(ClientSnapshot {
            torrents: vec![other],
            ..Default::default()
        }));
        let mut snap = ClientSnapshot {
            torrents: vec![ours],
            ..Default::default()
        };
        extra.merge(&mut snap);
        snap.torrents.remove(0)
    }

    #[test]
    fn final_lanes_add_up_over_runtimes_and_say_when_one_is_missing() {
        let lane = |up| LaneStats {
            label: "via 1-ff00:0:120".into(),
            peer: None,
            bytes_down: 0,
            bytes_up: up,
            blocks_down: 0,
            block_latency: hdrhistogram::Histogram::new(3).unwrap(),
            opened: Instant::now(),
            closed: None,
        };
        let (ih, other) = ([1u8; 20], [2u8; 20]);
        let finals = FinalLanes::default();
        finals.report(vec![(ih, vec![lane(10)], 10), (other, vec![lane(99)], 99)]);
        let wait = std::time::Duration::from_millis(50);
        let (lanes, up, all) = finals.wait_for(2, &ih, wait);
        assert_eq!((lanes.len(), up, all), (1, 10, false));
        let reporter = finals.clone();
        std::thread::spawn(move || reporter.report(vec![(ih, vec![lane(5), lane(6)], 11)]));
        let (lanes, up, all) = finals.wait_for(2, &ih, std::time::Duration::from_secs(10));
        let each: Vec<u64> = lanes.iter().map(|l| l.bytes_up).collect();
        assert_eq!((each, up, all), (vec![10, 5, 6], 21, true));
    }

    #[test]
    fn a_runtime_that_fails_to_start_stops_the_group() {
        let first = uring::bind_std("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let fails = |_, _, _| async { Err::<(), _>("no SCION daemon") };
        let mail = spawn(&first, addr, vec![fails]).unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while mail.failure().is_none() && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(
            mail.failure().as_deref(),
            Some("runtime 1 stopped: no SCION daemon")
        );
    }

    /// A torrent known by its info hash only.
    fn magnet_phase(ih: &InfoHash) -> Phase {
        let hex: String = ih.iter().map(|b| format!("{b:02x}")).collect();
        Phase::Magnet(MagnetPhase {
            magnet: bt_ext::parse_magnet(&format!("magnet:?xt=urn:btih:{hex}")).unwrap(),
            fetch: None,
            failure: None,
        })
    }

    #[test]
    fn merge_adds_the_other_runtimes_uploads_and_keeps_lane_ids_apart() {
        let (handle, side) = control::channel();
        let mut extra = ExtraRuntimes::new(vec![handle]);
        let ih = [7u8; 20];
        let now = Instant::now();
        let settings =
            super::super::torrent::settings(Default::default(), false, Default::default(), &[]);
        let mut torrents = HashMap::new();
        torrents.insert(ih, Torrent::new(ih, magnet_phase(&ih), settings, now));

        let t = merged(&mut extra, &side, &mut torrents, 10, 30);
        assert_eq!(
            (t.bytes_up, t.uploaded_by_runtime.clone()),
            (40, vec![10, 30])
        );
        assert!((t.ratio - 0.4).abs() < 1e-12);
        let lanes: Vec<(u64, u8)> = t.lanes.iter().map(|l| (l.id, l.runtime)).collect();
        assert_eq!(lanes, vec![(1, 0), (1 << LANE_ID_SHIFT | 1, 1)]);

        // Only what is new since the last merge is added.
        let t = merged(&mut extra, &side, &mut torrents, 10, 50);
        assert_eq!(
            (t.bytes_up, t.uploaded_by_runtime.clone()),
            (60, vec![10, 50])
        );
        // Served anew (counting from zero again): the earlier 50 bytes still count.
        let t = merged(&mut extra, &side, &mut torrents, 10, 5);
        assert_eq!((t.bytes_up, t.uploaded_by_runtime), (65, vec![10, 55]));
        assert_eq!(extra.uploaded(&ih), 55);
    }

    #[test]
    fn merge_adds_lanes_per_path() {
        let path = |fp: &str, lanes: usize| control::KnownPath {
            path: control::PathSnapshot {
                fingerprint: fp.into(),
                hops: Vec::new(),
                mtu: Some(1472),
                latency_ms: None,
                bandwidth_kbps: None,
                expiry_unix_ms: None,
                steps: Vec::new(),
                notes: Vec::new(),
            },
            lanes,
            failed: None,
        };
        let dest = |ia: &str, paths| control::DestinationPaths {
            ia: ia.into(),
            paths,
            refreshed_unix_ms: None,
            error: None,
        };
        let mut ours = vec![dest("1-ff00:0:112", vec![path("a", 2)])];
        let theirs = vec![
            dest("1-ff00:0:112", vec![path("a", 3), path("b", 1)]),
            dest("1-ff00:0:113", vec![path("c", 4)]),
        ];
        merge_paths(&mut ours, &theirs);
        let lanes: Vec<(String, Vec<(String, usize)>)> = ours
            .iter()
            .map(|d| {
                let p = d
                    .paths
                    .iter()
                    .map(|p| (p.path.fingerprint.clone(), p.lanes));
                (d.ia.clone(), p.collect())
            })
            .collect();
        assert_eq!(
            lanes,
            vec![
                (
                    "1-ff00:0:112".into(),
                    vec![("a".into(), 5), ("b".into(), 1)]
                ),
                ("1-ff00:0:113".into(), vec![("c".into(), 4)]),
            ]
        );
    }
}
