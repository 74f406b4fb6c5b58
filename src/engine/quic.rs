//! BitTorrent over QUIC/SCION: glues a torrent [`Session`] to a [`ScionNet`].
//!
//! Every QUIC connection carries one lane on its first bidirectional stream. The dialler
//! opens the lanes of the peers we download from; remotes may open lanes to us at any time.

use rustc_hash::FxHashMap;
use std::time::{Duration, Instant};

use quinn_proto::{ConnectionHandle, StreamId, WriteError};

use crate::engine::dialer::PeerDialer;
use crate::engine::stream_chunks;
use crate::lanes::{PathPolicy, Preference};
use crate::net::uring::App;
use crate::net::LaneCloseCode;
use crate::net::{NetEvent, ScionNet};
use crate::quic::QuicEvent;
use crate::scion::{ScionAddr, ScionPath};
use crate::torrent::close::CloseReason;
use crate::torrent::lane_protocol::LaneProtocol;
use crate::torrent::session::{Action, LaneId, Session};

struct LaneConn {
    lane: LaneId,
    stream: Option<StreamId>,
    label: String,
    /// The remote's SCION address as the connection's route proves it.
    remote: Option<ScionAddr>,
    path: Option<ScionPath>,
    /// Flow control said no; wait for `Writable`.
    blocked: bool,
}

/// When the app stops by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopWhen {
    /// Leecher: all pieces verified.
    Complete,
    /// Seeder: never (until the process is told to stop).
    Never,
}

/// Why a download could not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No lane to the peer ever came up.
    Unreachable(String),
    /// Daemon gave no path (or an error).
    NoPath(String),
    Storage(String),
}

/// Called with the session for the live progress display.
pub type ProgressFn<S = Session> = Box<dyn FnMut(&S)>;

/// The QUIC lanes of one torrent around the protocol that runs on them: the torrent's
/// [`Session`], or a magnet link's metadata fetch.
pub struct QuicBtApp<S = Session> {
    pub session: S,
    conns: FxHashMap<ConnectionHandle, LaneConn>,
    lanes: FxHashMap<LaneId, ConnectionHandle>,
    next_lane: LaneId,
    pub dialers: Vec<PeerDialer>,
    stop_when: StopWhen,
    done: bool,
    closing_since: Option<Instant>,
    pub failure: Option<Failure>,
    /// Give up when no peer has had a working lane for this long.
    pub connect_timeout: Duration,
    pub completed_at: Option<Instant>,
    /// Called with a one-line status every `progress_every`.
    pub progress_every: Option<Duration>,
    next_progress: Instant,
    pub on_progress: Option<ProgressFn<S>>,
    /// Since when no peer has a live, handshaken lane (None while one has).
    no_peer_since: Option<Instant>,
    last_lane_error: Option<String>,
    /// Remotes whose lanes the session closed for a ban (the peer book takes them).
    pub banned: Vec<ScionAddr>,
}

impl<S: LaneProtocol> QuicBtApp<S> {
    pub fn new(session: S, dialers: Vec<PeerDialer>, stop_when: StopWhen, now: Instant) -> Self {
        Self {
            session,
            conns: FxHashMap::default(),
            lanes: FxHashMap::default(),
            next_lane: 1,
            dialers,
            stop_when,
            done: false,
            closing_since: None,
            failure: None,
            connect_timeout: Duration::from_secs(15),
            completed_at: None,
            progress_every: None,
            next_progress: now,
            on_progress: None,
            no_peer_since: Some(now),
            last_lane_error: None,
            banned: Vec::new(),
        }
    }

    fn add_lane(
        &mut self,
        net: &mut ScionNet,
        h: ConnectionHandle,
        stream: StreamId,
        outbound: bool,
        now: Instant,
    ) {
        let links = net
            .route(h)
            .map(|r| path_links(&r.path))
            .unwrap_or_default();
        let label = match net.route(h) {
            Some(r) if r.path.is_local() => "local".to_string(),
            Some(r) if !r.path.interfaces.is_empty() => r.path.to_string(),
            Some(r) => format!("{} via {}", r.path.dst_ia, r.next_hop),
            None => "?".into(),
        };
        let lane = self.next_lane;
        self.next_lane += 1;
        self.lanes.insert(lane, h);
        let path = net.route(h).map(|r| r.path.clone());
        let remote = net.remote_addr(h);
        self.conns.insert(
            h,
            LaneConn {
                lane,
                stream: Some(stream),
                label: label.clone(),
                remote,
                path,
                blocked: false,
            },
        );
        self.session.add_lane(lane, outbound, label, now);
        if let Some(r) = remote {
            // A QUIC endpoint sends and listens on one socket: its address takes connections.
            self.session
                .set_lane_remote(lane, crate::scion::PeerAddr::Scion(r), true);
        }
        self.session.set_lane_links(lane, links);
    }

    fn read(&mut self, net: &mut ScionNet, h: ConnectionHandle, id: StreamId, now: Instant) {
        let Some(lc) = self.conns.get(&h) else { return };
        let lane = lc.lane;
        if lc.stream.is_some_and(|s| s != id) {
            // One lane, one stream: its bytes must not be mixed into the lane's message stream.
            let reason = CloseReason::SecondStream;
            net.close_lane(h, LaneCloseCode::SecondStream, close_text(&reason), now);
            self.lane_lost(h, reason, now);
            return;
        }
        let Some(conn) = net.lane(h) else {
            return;
        };
        let mut stream = conn.recv_stream(id);
        let Ok(mut chunks) = stream.read(true) else {
            return;
        };
        let mut finished = false;
        loop {
            match chunks.next(usize::MAX) {
                Ok(Some(c)) => self.session.on_lane_data(lane, &c.bytes, now),
                Ok(None) => {
                    finished = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let _ = chunks.finalize();
        if finished {
            self.session
                .on_lane_closed(lane, CloseReason::StreamFinished, now);
        }
    }

    fn write(&mut self, net: &mut ScionNet, now: Instant) {
        for (&h, lc) in self.conns.iter_mut() {
            let (Some(stream), false) = (lc.stream, lc.blocked) else {
                continue;
            };
            let Some(conn) = net.lane(h) else {
                continue;
            };
            self.session.set_lane_rtt(lc.lane, conn.rtt());
            let mut send = conn.send_stream(stream);
            while let Some(chunk) = stream_chunks::next(
                &mut stream_chunks::LaneOutput {
                    session: &mut self.session,
                    lane: lc.lane,
                    now,
                },
                &stream_chunks::BUDGET,
            ) {
                let mut one = [chunk];
                match send.write_chunks(&mut one) {
                    Ok(w) => {
                        if w.chunks == 0 {
                            // Partly written: quinn only promises a `Writable` event after
                            // it said `Blocked`, so retry on the next turn instead of
                            // waiting for an event that may never come.
                            let [rest] = one;
                            self.session.unpoll_output(lc.lane, rest);
                            break;
                        }
                    }
                    Err(WriteError::Blocked) => {
                        let [rest] = one;
                        self.session.unpoll_output(lc.lane, rest);
                        lc.blocked = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
    }

    fn dial(&mut self, net: &mut ScionNet, now: Instant) {
        for d in self.dialers.iter_mut() {
            for (h, path) in d.latest_paths(now) {
                if net.refresh_path(h, &path) {
                    tracing::debug!(peer = %d.remote, %path, "lane moved onto fresher hop fields");
                }
            }
            for path in d.due(now) {
                match net.connect(now, d.remote, &path) {
                    Ok(h) => {
                        tracing::debug!(peer = %d.remote, %path, "opening lane");
                        d.dialled(h, &path);
                    }
                    Err(e) => tracing::warn!(peer = %d.remote, "cannot open lane: {e}"),
                }
            }
        }
    }

    fn handle_actions(&mut self, net: &mut ScionNet, now: Instant) {
        while let Some(a) = self.session.poll_action() {
            match a {
                Action::CloseLane { lane, reason } => {
                    if let Some(h) = self.lanes.remove(&lane) {
                        let lc = self.conns.remove(&h);
                        if reason.is_ban() {
                            self.banned.extend(lc.and_then(|lc| lc.remote));
                        }
                        net.close_lane(h, LaneCloseCode::Error, close_text(&reason), now);
                    }
                    // TCP lanes too: a storage error ends a download whatever the transport.
                    if reason.is_storage() && self.failure.is_none() {
                        self.failure = Some(Failure::Storage(reason.to_string()));
                    }
                }
                Action::Complete => {
                    self.completed_at = Some(now);
                    tracing::info!("all pieces verified");
                }
            }
        }
    }

    fn check_failure(&mut self, now: Instant) {
        if self.failure.is_some() || self.stop_when != StopWhen::Complete {
            return;
        }
        for d in &self.dialers {
            if let Some(Err(e)) = &*d.paths.borrow() {
                self.failure = Some(Failure::NoPath(e.clone()));
                return;
            }
        }
        if self.session.peer_count() > 0 {
            self.no_peer_since = None;
            return;
        }
        let since = *self.no_peer_since.get_or_insert(now);
        if self.completed_at.is_none()
            && now.saturating_duration_since(since) > self.connect_timeout
        {
            let peers: Vec<String> = self.dialers.iter().map(|d| d.remote.to_string()).collect();
            let why = self
                .last_lane_error
                .as_ref()
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default();
            let to = if peers.is_empty() {
                "any peer (none known)".to_string()
            } else {
                peers.join(", ")
            };
            self.failure = Some(Failure::Unreachable(format!(
                "no working lane to {to} for {:?}{why}",
                self.connect_timeout
            )));
        }
    }

    fn lane_lost(&mut self, h: ConnectionHandle, reason: CloseReason, now: Instant) {
        if !reason.is_orderly() {
            self.last_lane_error = Some(reason.to_string());
        }
        for d in self.dialers.iter_mut() {
            d.lost(h, now);
        }
        if let Some(lc) = self.conns.remove(&h) {
            self.lanes.remove(&lc.lane);
            tracing::info!(lane = lc.lane, path = %lc.label, "lane closed: {reason}");
            self.session.on_lane_closed(lc.lane, reason, now);
        }
    }
}

/// The reason phrase of a QUIC close we send: the reason's text, for the peer's logs.
fn close_text(reason: &CloseReason) -> bytes::Bytes {
    reason.to_string().into_bytes().into()
}

impl<S: LaneProtocol> QuicBtApp<S> {
    /// Whether the connection is one of this torrent's lanes or dials.
    pub fn owns(&self, h: ConnectionHandle) -> bool {
        self.conns.contains_key(&h) || self.dialers.iter().any(|d| d.owns(h))
    }

    /// Takes over an incoming connection whose first stream's handshake named this torrent:
    /// `buffered` is what the router already read from the stream.
    pub fn adopt(
        &mut self,
        net: &mut ScionNet,
        h: ConnectionHandle,
        stream: StreamId,
        buffered: &[u8],
        now: Instant,
    ) {
        self.add_lane(net, h, stream, false, now);
        if let Some(lc) = self.conns.get(&h) {
            self.session.on_lane_data(lc.lane, buffered, now);
        }
        self.read(net, h, stream, now);
    }

    /// Closes every lane politely and stops dialling (pause, remove, shutdown).
    pub fn close_all(&mut self, net: &mut ScionNet, reason: CloseReason, now: Instant) {
        for (h, lc) in self.conns.drain() {
            net.close_lane(h, LaneCloseCode::Done, close_text(&reason), now);
            self.session.on_lane_closed(lc.lane, reason.clone(), now);
        }
        self.lanes.clear();
        self.dialers.clear();
    }

    /// New path rules: every dialer takes them, and lanes (ours or the remote's) on a path
    /// they do not permit are closed; the dialers replace them on permitted paths.
    pub fn apply_path_rules(
        &mut self,
        net: &mut ScionNet,
        policy: &PathPolicy,
        preference: &Preference,
        now: Instant,
    ) {
        for d in self.dialers.iter_mut() {
            d.set_rules(policy.clone(), preference.clone(), now);
        }
        let refused: Vec<ConnectionHandle> = self
            .conns
            .iter()
            .filter(|(_, lc)| lc.path.as_ref().is_some_and(|p| !policy.permits(p)))
            .map(|(h, _)| *h)
            .collect();
        for h in refused {
            let Some(lc) = self.conns.remove(&h) else {
                continue;
            };
            self.lanes.remove(&lc.lane);
            let reason = CloseReason::PathNotAllowed;
            net.close_lane(h, LaneCloseCode::Done, close_text(&reason), now);
            for d in self.dialers.iter_mut() {
                d.lost(h, now);
            }
            tracing::info!(lane = lc.lane, path = %lc.label, "lane closed: {reason}");
            self.session.on_lane_closed(lc.lane, reason, now);
        }
    }

    /// Open lanes: id, the remote's SCION address and the path.
    pub fn lane_routes(&self) -> Vec<(LaneId, Option<ScionAddr>, Option<&ScionPath>)> {
        self.conns
            .values()
            .map(|lc| (lc.lane, lc.remote, lc.path.as_ref()))
            .collect()
    }

    /// Remotes that have a dialer.
    pub fn dialing(&self, remote: &ScionAddr) -> bool {
        self.dialers.iter().any(|d| d.remote == *remote)
    }
}

impl<S: LaneProtocol> QuicBtApp<S> {
    /// When this torrent's lanes next need the loop without a network event: session timers,
    /// dials, the progress display, the "unreachable" verdict, output a stream could not take.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let mut next = self.session.poll_timeout(now);
        let mut at = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        for d in &self.dialers {
            if let Some(t) = d.next_due(now) {
                at(t);
            }
        }
        if self.on_progress.is_some() && self.progress_every.is_some() {
            at(self.next_progress);
        }
        if self.stop_when == StopWhen::Complete && self.completed_at.is_none() {
            if let Some(since) = self.no_peer_since {
                at(since + self.connect_timeout);
            }
            if self.session.peer_count() == 0 {
                // The verdict needs a look even before the first lane fails.
                at(now + Duration::from_millis(100));
            }
        }
        for lc in self.conns.values() {
            if !lc.blocked && self.session.has_output(lc.lane) {
                at(now + Duration::from_millis(1));
            }
        }
        next
    }
}

impl<S: LaneProtocol> App for QuicBtApp<S> {
    fn on_event(&mut self, net: &mut ScionNet, event: NetEvent, now: Instant) {
        match event {
            NetEvent::Quic(QuicEvent::Connected(h)) => {
                let ours = self.dialers.iter_mut().find(|d| d.owns(h));
                if let Some(d) = ours {
                    d.ever_connected = true;
                    if let Some(id) = net.open_stream(h) {
                        self.add_lane(net, h, id, true, now);
                    }
                }
            }
            NetEvent::Quic(QuicEvent::StreamOpened(h, id)) => {
                if !self.conns.contains_key(&h) {
                    self.add_lane(net, h, id, false, now);
                }
                self.read(net, h, id, now);
            }
            NetEvent::Quic(QuicEvent::Readable(h, id)) => self.read(net, h, id, now),
            NetEvent::Quic(QuicEvent::Writable(h, _)) => {
                if let Some(lc) = self.conns.get_mut(&h) {
                    lc.blocked = false;
                }
            }
            NetEvent::Quic(QuicEvent::Lost(h, reason)) => {
                self.lane_lost(h, CloseReason::Quic(reason), now)
            }
            NetEvent::Quic(QuicEvent::Drained(h)) => self.lane_lost(h, CloseReason::Drained, now),
            NetEvent::PathDown { handle, reason } => {
                tracing::warn!("path down: {reason}");
                net.close_lane(handle, LaneCloseCode::PathDown, "path down", now);
                self.lane_lost(handle, CloseReason::PathDown(reason.to_string()), now);
            }
        }
    }

    fn poll(&mut self, net: &mut ScionNet, now: Instant) -> Option<Instant> {
        if let Some(since) = self.closing_since {
            // Give the close frames a moment to leave, then stop.
            if now.saturating_duration_since(since) > Duration::from_millis(200) || net.is_idle() {
                self.done = true;
            }
            return Some(now + Duration::from_millis(20));
        }
        self.dial(net, now);
        self.session.tick(now);
        self.handle_actions(net, now);
        self.write(net, now);
        self.check_failure(now);
        if let (Some(every), Some(cb)) = (self.progress_every, self.on_progress.as_mut()) {
            if now >= self.next_progress {
                self.next_progress = now + every;
                cb(&self.session);
            }
        }
        let finished = self.stop_when == StopWhen::Complete && self.completed_at.is_some();
        if finished || self.failure.is_some() {
            for (&h, _) in self.conns.iter() {
                net.close_lane(h, LaneCloseCode::Done, "done", now);
            }
            self.closing_since = Some(now);
            return Some(now + Duration::from_millis(20));
        }
        self.poll_timeout(now)
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// Link identities of a path as seen from this host: link k is named by the hops up to and
/// including it, so paths from here share link k exactly when they agree up to it. Hops are
/// full `ISD-AS#interface` pairs when the path knows them (paths we dialled), else the raw hop
/// fields' interface ids after the source AS (paths remotes dialled us on).
fn path_links(path: &ScionPath) -> Vec<u64> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    fn mix(h: &mut u64, v: u64) {
        for b in v.to_be_bytes() {
            *h = (*h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    mix(&mut h, path.src_ia.to_u64());
    let mut links = Vec::new();
    if !path.interfaces.is_empty() {
        // Interfaces come in pairs: the two ends of each inter-AS link.
        for pair in path.interfaces.chunks(2) {
            for i in pair {
                mix(&mut h, i.ia.to_u64());
                mix(&mut h, u64::from(i.id));
            }
            links.push(h);
        }
        return links;
    }
    let hops = crate::scion::packet::path_interfaces(&path.raw).unwrap_or_default();
    for (ingress, egress) in hops {
        mix(&mut h, (u64::from(ingress) << 16) | u64::from(egress));
        if egress != 0 {
            links.push(h);
        }
    }
    links
}
