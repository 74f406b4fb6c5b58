//! QUIC over SCION, sans-IO: underlay datagrams in, underlay datagrams out.
//!
//! This is the middle of the data path: it decodes SCION packets, maps (remote, path) to the
//! synthetic QUIC remote that pins a connection to its path, feeds QUIC, and encodes QUIC's
//! datagrams into SCION packets addressed to the first-hop router (or to the host itself in the
//! local AS). SCMP errors that say a path broke are turned into [`NetEvent::PathDown`].
//! The socket driver ([`super::uring`]) only moves bytes between this and the kernel.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use quinn_proto::ConnectionHandle;

use crate::quic::remotes::{route_key, PathKey, RemoteTable};
use crate::quic::{QuicEndpoint, QuicEvent, QuicTuning};
use crate::scion::packet::{self, Decoded, UdpEncoder};
use crate::scion::{ScionAddr, ScionPath};

use super::steering::Steering;

/// How to reach one (remote, path).
#[derive(Debug)]
pub struct Route {
    pub path: ScionPath,
    /// Underlay address to send to: first-hop router, or the host in the local AS.
    pub next_hop: SocketAddr,
    encoder: UdpEncoder,
    /// Hop-field interfaces (ingress, egress) of the first packet received on this route; tests
    /// and metrics use it to prove which path the remote's packets took.
    pub received_interfaces: Option<Vec<(u16, u16)>>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    /// The largest UDP payload QUIC may send on it (see [`ScionNet::max_payload`]), for a
    /// connection the remote opens on it.
    max_payload: Option<u16>,
}

impl Route {
    fn new(
        path: ScionPath,
        next_hop: SocketAddr,
        encoder: UdpEncoder,
        max_payload: Option<u16>,
    ) -> Self {
        Self {
            path,
            next_hop,
            encoder,
            max_payload,
            received_interfaces: None,
            bytes_sent: 0,
            bytes_received: 0,
            packets_sent: 0,
            packets_received: 0,
        }
    }
}

#[derive(Debug)]
pub enum NetEvent {
    Quic(QuicEvent),
    /// A router reported a link on this connection's path as down (SCMP).
    PathDown {
        handle: ConnectionHandle,
        reason: String,
    },
}

/// Where a batch written by [`ScionNet::poll_datagram`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    pub next_hop: SocketAddr,
    /// `Some(n)`: the buffer holds several SCION packets of `n` bytes each (the last may be
    /// shorter), to be sent with UDP GSO or split by the caller.
    pub segment_size: Option<usize>,
}

/// With several runtimes on one port: how well the kernel's steering matched connections.
#[derive(Debug, Default, Clone, Copy)]
pub struct SteeringStats {
    /// SCION packets this runtime's socket received.
    pub received: u64,
    /// Of those, the ones that belonged to another runtime and were passed on.
    pub passed_on: u64,
}

/// Counters for what could not be used.
#[derive(Debug, Default, Clone, Copy)]
pub struct NetErrors {
    pub undecodable: u64,
    pub not_for_us: u64,
    pub bad_path: u64,
    pub scmp: u64,
}

/// A received datagram (a GRO batch of up to ~40 SCION packets) copied once, on the first
/// QUIC payload found in it; each payload is then split off that copy (quinn wants to own
/// and decrypt it in place) without another allocation or copy.
struct RxCopy<'a> {
    src: &'a [u8],
    copy: Option<BytesMut>,
    /// Offset in `src` where `copy` starts.
    at: usize,
}

impl<'a> RxCopy<'a> {
    fn new(src: &'a [u8]) -> Self {
        Self {
            src,
            copy: None,
            at: 0,
        }
    }

    /// `part`, a slice of the datagram after every part taken before, as owned bytes.
    fn take(&mut self, part: &[u8]) -> BytesMut {
        let off = (part.as_ptr() as usize).wrapping_sub(self.src.as_ptr() as usize);
        if off < self.at || off + part.len() > self.src.len() {
            // Not a later part of this datagram (cannot happen with the decoder's slices).
            return BytesMut::from(part);
        }
        let src = self.src;
        let copy = self.copy.get_or_insert_with(|| BytesMut::from(src));
        copy.advance(off - self.at);
        self.at = off + part.len();
        copy.split_to(part.len())
    }
}

pub struct ScionNet {
    local: ScionAddr,
    pub(super) quic: QuicEndpoint,
    remotes: RemoteTable<ScionAddr, Route>,
    /// Received raw path -> its direction-independent key, so the per-packet cost is a hash of
    /// the path bytes instead of parsing its hop fields.
    rx_keys: HashMap<(ScionAddr, Bytes), SocketAddr>,
    /// The last hit of `rx_keys`: a bulk transfer's packets come in runs from one remote on
    /// one path, and comparing against the last one skips the hash and the key copy.
    last_rx: Option<((ScionAddr, Bytes), SocketAddr)>,
    events: VecDeque<NetEvent>,
    quic_buf: Vec<u8>,
    pub errors: NetErrors,
    pub steering_stats: SteeringStats,
    /// When remotes without a connection are next dropped.
    next_prune: Option<Instant>,
    /// Set when several runtimes share the port (see [`super::steering`]).
    steering: Option<Steering>,
    /// Packets of another runtime's connections, and SCMP messages every runtime must see:
    /// (runtime, underlay source, SCION packet). The driver passes them on.
    misdirected: Vec<(u8, SocketAddr, Vec<u8>)>,
    /// The local AS's MTU (the SCION daemon's): bounds the packets of connections whose
    /// path MTU is unknown (dialled by the remote, or in the local AS).
    as_mtu: Option<u16>,
}

/// How long before its hop fields expire a connection moves onto fresher ones of its route
/// (see [`ScionNet::refresh_path`]).
pub const REFRESH_BEFORE_EXPIRY: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// How often remotes whose connections are gone (or never came up) are dropped.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl ScionNet {
    pub fn new(local: ScionAddr, tuning: &QuicTuning, accept: bool) -> anyhow::Result<Self> {
        Ok(Self {
            local,
            quic: QuicEndpoint::new(tuning, accept)?,
            remotes: RemoteTable::default(),
            rx_keys: HashMap::new(),
            last_rx: None,
            events: VecDeque::new(),
            quic_buf: Vec::with_capacity(64 * 1024),
            errors: NetErrors::default(),
            steering_stats: SteeringStats::default(),
            next_prune: None,
            steering: tuning.steering,
            misdirected: Vec::new(),
            as_mtu: None,
        })
    }

    /// Sets the local AS's MTU (see [`crate::scion::daemon::AsInfo::mtu`]).
    pub fn set_as_mtu(&mut self, mtu: Option<u16>) {
        self.as_mtu = mtu;
    }

    pub fn local(&self) -> ScionAddr {
        self.local
    }

    /// Opens a QUIC connection to `remote` pinned to `path`.
    pub fn connect(
        &mut self,
        now: Instant,
        remote: ScionAddr,
        path: &ScionPath,
    ) -> anyhow::Result<ConnectionHandle> {
        let next_hop = match path.first_hop {
            Some(hop) => hop,
            None if path.is_local() => remote.socket_addr(),
            None => anyhow::bail!("path {path} has no first hop"),
        };
        let key_ids = interface_ids(&path.raw)?;
        let encoder = UdpEncoder::new(&self.local, &remote, &path.raw)?;
        let max_payload = self.max_payload(path, &encoder);
        // Every connection to one remote on one route shares its key: quinn-proto drops a
        // client's packets that come from another remote than its own, so a second connection
        // (another torrent with the same peer) must not take the key away from the first. A
        // reconnect (after failover, or with a refreshed path) updates the route in place, so
        // it never keeps a stale next hop.
        let key = match self.remotes.lookup(&remote, &key_ids) {
            Some(key) => {
                if let Some(r) = self.remotes.get_mut(&key) {
                    r.route.path = path.clone();
                    r.route.next_hop = next_hop;
                    r.route.encoder = encoder;
                    r.route.max_payload = max_payload;
                }
                key
            }
            None => self.remotes.key_for(&remote, key_ids, || {
                Route::new(path.clone(), next_hop, encoder, max_payload)
            }),
        };
        self.quic.connect_within(now, key, max_payload)
    }

    /// The largest UDP payload whose SCION packet on `path` fits its MTU (the daemon's), or
    /// for a path without one (dialled by the remote, or in the local AS) the local AS's
    /// MTU; `None` when neither is known.
    fn max_payload(&self, path: &ScionPath, encoder: &UdpEncoder) -> Option<u16> {
        let mtu = match (path.mtu, self.as_mtu) {
            (0, as_mtu) => as_mtu?,
            (p, Some(a)) => p.min(a),
            (p, None) => p,
        };
        let overhead = u16::try_from(encoder.overhead()).unwrap_or(u16::MAX);
        let max = mtu.saturating_sub(overhead);
        if max < crate::quic::config::QUIC_MIN_UDP_PAYLOAD {
            tracing::debug!(
                %path, mtu, overhead,
                "the MTU leaves less than QUIC's 1200-byte minimum: its packets exceed it"
            );
        }
        Some(max)
    }

    /// Moves connection `handle` onto `path` if it is the same route (the same interfaces)
    /// with hop fields that expire later, once its own expire within [`REFRESH_BEFORE_EXPIRY`]:
    /// hop fields expire (scionproto's ~6 h after their beacon), the route does not, and a
    /// lane should not die with them. The remote answers on the fresher path as soon as it
    /// sees it (see [`Self::key_for_incoming`]). Returns whether it moved.
    pub fn refresh_path(&mut self, handle: ConnectionHandle, path: &ScionPath) -> bool {
        let Some(key) = self.quic.connection(handle).map(|c| c.remote_address()) else {
            return false;
        };
        let Ok(ids) = interface_ids(&path.raw) else {
            return false;
        };
        let local = self.local;
        let Some(r) = self.remotes.get_mut(&key) else {
            return false;
        };
        let soon = std::time::SystemTime::now() + REFRESH_BEFORE_EXPIRY;
        let expires_soon = r.route.path.expiry.is_some_and(|e| e < soon);
        if r.path_key != ids || !expires_soon || !fresher(path, &r.route.path) {
            return false;
        }
        let Ok(encoder) = UdpEncoder::new(&local, &r.addr, &path.raw) else {
            return false;
        };
        if let Some(hop) = path.first_hop {
            r.route.next_hop = hop;
        }
        r.route.path = path.clone();
        r.route.encoder = encoder;
        true
    }

    /// The route a connection is pinned to.
    /// A lane's QUIC connection, for its stream I/O.
    pub fn lane(&mut self, handle: ConnectionHandle) -> Option<&mut quinn_proto::Connection> {
        self.quic.connection(handle)
    }

    /// Opens the stream a lane's bytes go on.
    pub fn open_stream(&mut self, handle: ConnectionHandle) -> Option<quinn_proto::StreamId> {
        self.quic.open_bi(handle)
    }

    /// Closes a lane with one of our close codes; `reason` is for the peer's logs.
    pub fn close_lane(
        &mut self,
        handle: ConnectionHandle,
        code: super::LaneCloseCode,
        reason: impl Into<bytes::Bytes>,
        now: Instant,
    ) {
        if let Some(c) = self.quic.connection(handle) {
            c.close(now, code.var_int(), reason.into());
        }
    }

    /// Whether no lane is open or closing.
    pub fn is_idle(&self) -> bool {
        self.quic.is_idle()
    }

    pub fn route(&mut self, handle: ConnectionHandle) -> Option<&Route> {
        let key = self.quic.connection(handle)?.remote_address();
        self.remotes.get(&key).map(|r| &r.route)
    }

    /// The SCION address of a connection's remote.
    pub fn remote_addr(&mut self, handle: ConnectionHandle) -> Option<ScionAddr> {
        let key = self.quic.connection(handle)?.remote_address();
        self.remotes.get(&key).map(|r| r.addr)
    }

    /// Feeds one datagram received from the underlay.
    /// Takes one underlay datagram: a SCION packet, or several back to back when the socket
    /// coalesced them (UDP GRO).
    pub fn on_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let mut rest = data;
        let mut rx = RxCopy::new(data);
        while !rest.is_empty() {
            let n = packet::first_packet_len(rest).unwrap_or(rest.len());
            let (pkt, tail) = rest.split_at(n);
            if !self.steer_away(from, pkt) {
                self.on_packet(now, from, pkt, &mut rx);
            }
            rest = tail;
        }
    }

    /// A packet another runtime passed on (see [`ScionNet::take_misdirected`]): handled here,
    /// never passed on again.
    pub fn on_passed_packet(&mut self, now: Instant, from: SocketAddr, pkt: &[u8]) {
        self.on_packet(now, from, pkt, &mut RxCopy::new(pkt));
    }

    /// Packets to pass to other runtimes: (runtime index, underlay source, SCION packet).
    pub fn take_misdirected(&mut self) -> Vec<(u8, SocketAddr, Vec<u8>)> {
        std::mem::take(&mut self.misdirected)
    }

    /// With several runtimes: queues a packet that belongs to another runtime's connection
    /// (true: not for us), and a copy of each SCMP message for every other runtime (their
    /// connections may use the path it reports on).
    fn steer_away(&mut self, from: SocketAddr, pkt: &[u8]) -> bool {
        let Some(s) = self.steering else {
            return false;
        };
        self.steering_stats.received += 1;
        match s.owner(pkt) {
            Some(owner) if owner != s.index => {
                self.misdirected.push((owner, from, pkt.to_vec()));
                self.steering_stats.passed_on += 1;
                true
            }
            Some(_) => false,
            None => {
                if super::steering::is_scmp(pkt) {
                    for other in (0..s.count).filter(|&i| i != s.index) {
                        self.misdirected.push((other, from, pkt.to_vec()));
                    }
                }
                false
            }
        }
    }

    fn on_packet(&mut self, now: Instant, from: SocketAddr, data: &[u8], rx: &mut RxCopy) {
        match packet::decode(data) {
            Ok(Decoded::Udp {
                src,
                dst,
                path,
                payload,
            }) => {
                if dst.port != self.local.port || dst.ia != self.local.ia {
                    self.errors.not_for_us += 1;
                    return;
                }
                let Some(key) = self.key_for_incoming(src, path, from) else {
                    self.errors.bad_path += 1;
                    return;
                };
                let mut max_payload = None;
                if let Some(r) = self.remotes.get_mut(&key).map(|r| &mut r.route) {
                    r.bytes_received += payload.len() as u64;
                    r.packets_received += 1;
                    max_payload = r.max_payload;
                }
                self.quic
                    .handle_datagram_within(now, key, rx.take(payload), max_payload);
            }
            Ok(Decoded::Scmp { message, .. }) => {
                self.errors.scmp += 1;
                if !message.is_error() {
                    return;
                }
                let reason = format!("{message:?}");
                let hit: Vec<ConnectionHandle> = self
                    .quic
                    .connections()
                    .filter(|(_, c)| {
                        self.remotes
                            .get(&c.remote_address())
                            .is_some_and(|r| message.affects_path(&r.route.path))
                    })
                    .map(|(h, _)| *h)
                    .collect();
                for handle in hit {
                    self.events.push_back(NetEvent::PathDown {
                        handle,
                        reason: short_reason(&reason),
                    });
                }
            }
            Err(_) => self.errors.undecodable += 1,
        }
    }

    fn key_for_incoming(
        &mut self,
        src: ScionAddr,
        path: &[u8],
        from: SocketAddr,
    ) -> Option<SocketAddr> {
        if let Some(((s, p), k)) = &self.last_rx {
            if *s == src && p[..] == *path {
                return Some(*k);
            }
        }
        // Borrowed lookup would need raw_entry; the copy is only a few dozen bytes.
        let cache_key = (src, Bytes::copy_from_slice(path));
        if let Some(&k) = self.rx_keys.get(&cache_key) {
            self.last_rx = Some((cache_key, k));
            return Some(k);
        }
        let ids: PathKey = interface_ids(path).ok()?;
        let received = packet::path_interfaces(path).ok()?;
        let key = match self.remotes.lookup(&src, &ids) {
            Some(k) => {
                self.follow_fresher_path(k, src, path, from);
                k
            }
            None => {
                // A remote that dialled us: answer on the reversed path via the router that
                // delivered the packet (or straight to the host in the local AS).
                let reversed = packet::reverse_path(path).ok()?;
                let encoder = UdpEncoder::new(&self.local, &src, &reversed).ok()?;
                let mut p = ScionPath::from_raw(self.local.ia, src.ia, reversed, Some(from));
                if p.is_local() {
                    p.first_hop = None;
                }
                let max_payload = self.max_payload(&p, &encoder);
                self.remotes
                    .key_for(&src, ids, || Route::new(p, from, encoder, max_payload))
            }
        };
        if let Some(r) = self.remotes.get_mut(&key).map(|r| &mut r.route) {
            r.received_interfaces.get_or_insert(received);
        }
        if self.rx_keys.len() > 4096 {
            self.rx_keys.clear();
        }
        self.rx_keys.insert(cache_key.clone(), key);
        self.last_rx = Some((cache_key, key));
        Some(key)
    }

    /// A known remote sent on new hop fields of a route we have: when they expire later than
    /// the ones we answer on (it refreshed its path), answer on them, reversed, via the router
    /// that delivered them. Hop fields that expire earlier (a late packet) change nothing.
    fn follow_fresher_path(
        &mut self,
        key: SocketAddr,
        src: ScionAddr,
        path: &[u8],
        from: SocketAddr,
    ) {
        let Ok(reversed) = packet::reverse_path(path) else {
            return;
        };
        let local = self.local;
        let Some(r) = self.remotes.get_mut(&key).map(|r| &mut r.route) else {
            return;
        };
        let p = ScionPath::from_raw(local.ia, src.ia, reversed, Some(from));
        if p.is_local() || !fresher(&p, &r.path) {
            return;
        }
        let Ok(encoder) = UdpEncoder::new(&local, &src, &p.raw) else {
            return;
        };
        // Keep what the daemon told us about the route (interfaces, MTU, metadata).
        r.path.raw = p.raw;
        r.path.expiry = p.expiry;
        r.next_hop = from;
        r.encoder = encoder;
    }

    /// Runs QUIC timers and collects events; call after feeding datagrams or writing streams.
    pub fn drive(&mut self, now: Instant) {
        self.quic.drive(now);
        while let Some(ev) = self.quic.poll_event() {
            self.events.push_back(NetEvent::Quic(ev));
        }
        if self.next_prune.is_none_or(|t| now >= t) {
            self.next_prune = Some(now + PRUNE_EVERY);
            self.prune_remotes();
        }
    }

    /// Drops remotes no connection uses: every unauthenticated (source, path) that sent us a
    /// packet got one, and closed connections leave theirs behind.
    fn prune_remotes(&mut self) {
        if self.remotes.len() <= self.quic.connections().count() {
            return;
        }
        let live: std::collections::HashSet<SocketAddr> = self
            .quic
            .connections()
            .map(|(_, c)| c.remote_address())
            .collect();
        if self.remotes.retain(|k| live.contains(k)) > 0 {
            let remotes = &self.remotes;
            self.rx_keys.retain(|_, k| remotes.get(k).is_some());
            self.last_rx = None;
        }
    }

    /// Remotes known (for tests of the pruning).
    pub fn remote_count(&self) -> usize {
        self.remotes.len()
    }

    pub fn poll_event(&mut self) -> Option<NetEvent> {
        self.events.pop_front()
    }

    /// Writes the next SCION packet (or, with [`Self::set_max_datagrams`] > 1, a batch of
    /// equal-sized SCION packets for one next hop) into `out`, cleared first.
    pub fn poll_datagram(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<Outgoing> {
        loop {
            let t = self.quic.poll_transmit(now, &mut self.quic_buf)?;
            let Some(route) = self.remotes.get_mut(&t.destination).map(|r| &mut r.route) else {
                continue; // route was replaced; QUIC will time the old connection out
            };
            out.clear();
            let segment = t.segment_size.unwrap_or(t.size).max(1);
            let mut packets = 0u64;
            let encoded = self.quic_buf[..t.size]
                .chunks(segment)
                .try_for_each(|chunk| {
                    packets += 1;
                    route.encoder.encode(chunk, out)
                });
            if encoded.is_err() {
                continue; // QUIC sees a loss
            }
            route.bytes_sent += t.size as u64;
            route.packets_sent += packets;
            return Some(Outgoing {
                next_hop: route.next_hop,
                segment_size: (packets > 1).then(|| route.encoder.overhead() + segment),
            });
        }
    }

    /// Lets QUIC hand over up to `n` datagrams per [`Self::poll_datagram`] (for UDP GSO).
    pub fn set_max_datagrams(&mut self, n: usize) {
        self.quic.set_max_datagrams(n);
    }

    pub fn next_timeout(&mut self) -> Option<Instant> {
        self.quic.next_timeout()
    }
}

/// Whether `new` has other hop fields than `current` that expire later, and not implausibly
/// far ahead (hop fields live at most 24 h after their beacon): such a path replaces the
/// current one of the same route.
fn fresher(new: &ScionPath, current: &ScionPath) -> bool {
    let (Some(new_expiry), Some(current_expiry)) = (new.expiry, current.expiry) else {
        return false;
    };
    let horizon = std::time::SystemTime::now() + std::time::Duration::from_secs(25 * 3600);
    new.raw != current.raw && new_expiry > current_expiry && new_expiry < horizon
}

fn interface_ids(raw: &[u8]) -> anyhow::Result<PathKey> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let hops = packet::path_interfaces(raw)?;
    Ok(route_key(&hops))
}

fn short_reason(debug: &str) -> String {
    // SCMP debug output carries the quoted packet; keep the message readable.
    let cut = debug.find(", quote").unwrap_or(debug.len());
    debug[..cut].to_string()
}
