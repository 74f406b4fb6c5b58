//! Link shaping: per-direction bandwidth caps, one-way delay and random loss for topology
//! links, enforced in userspace in front of pocketscion's simulated dataplane.
//!
//! pocketscion moves a packet across the whole simulated network in one synchronous call (the
//! router of the source AS runs every AS's routing logic and hands the packet to the destination
//! AS's router socket), so there is no point inside it where a packet could wait for a link.
//! Instead, when any link of the topology carries attributes, every AS gets a *front end*: a UDP
//! socket that the daemons advertise as the AS's router. It reads the packet's SCION path, walks
//! the links the packet is going to cross, and lets it pass each link's shaper in turn (queueing
//! it on a timer where a link is busy or delays), and only then hands it to pocketscion, which
//! forwards it in one go as before. The front end also delivers packets to the AS's hosts (it is
//! registered as the AS's receiver), so hosts see one router address both ways.
//!
//! Each direction of a shaped link is a token bucket (rate `bandwidth_mbit`, a burst of a few
//! packets) feeding a FIFO queue bounded in time ([`QUEUE`]); packets that would wait longer are
//! dropped (tail drop). `delay_ms` is added after the queue, `loss` drops packets at random as
//! they enter the link. Packets whose path crosses no shaped link are handed to pocketscion at
//! once, without a copy.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BinaryHeap, HashMap},
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use anyhow::{ensure, Context};
use pocketscion::{
    network::{local::receivers::Receiver, scion::routing::ScionNetworkTime},
    state::PocketScionState,
};
use sciparse::{
    core::view::View, dataplane_path::view::ScionDpPathViewRef, identifier::isd_asn::IsdAsn,
    packet::view::ScionRawPacketView,
};
use tokio::{net::UdpSocket, time::Instant};

use crate::topology::{LinkSpec, Topology};

/// How long a packet may wait in a capped link's queue before it is dropped instead (the queue
/// holds this much traffic at the link's rate, but never less than [`MIN_QUEUE_BYTES`]).
pub(crate) const QUEUE: Duration = Duration::from_millis(50);
/// Smallest queue of a capped link, so that very slow links still buffer a few packets.
const MIN_QUEUE_BYTES: f64 = 8.0 * 1500.0;
/// Token bucket depth: an idle link lets this many bytes through back to back (four
/// 1500-byte packets).
const BURST_BYTES: f64 = 4.0 * 1500.0;
/// Size of the packet that GCRA always admits on top of its burst tolerance.
const PACKET_BYTES: f64 = 1500.0;
/// A standard SCION path has at most 64 hop fields, so it crosses at most 63 links.
const MAX_HOPS: usize = 64;

/// What a link enforces, in each direction separately.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LinkShape {
    /// Rate cap in bytes per second (SCION packet bytes, as sent on the underlay).
    pub(crate) bytes_per_sec: Option<f64>,
    /// One-way delay added to every packet.
    pub(crate) delay: Duration,
    /// Probability that a packet is lost.
    pub(crate) loss: f64,
}

impl LinkShape {
    /// The shape of a link, or `None` if it has nothing to enforce.
    pub(crate) fn of(spec: &LinkSpec) -> Option<LinkShape> {
        let shape = LinkShape {
            bytes_per_sec: spec.bandwidth_mbit.map(|mbit| mbit * 1e6 / 8.0),
            delay: Duration::from_secs_f64(spec.delay_ms.unwrap_or(0.0) / 1e3),
            loss: spec.loss.unwrap_or(0.0),
        };
        let active = shape.bytes_per_sec.is_some() || !shape.delay.is_zero() || shape.loss > 0.0;
        active.then_some(shape)
    }
}

/// One direction of a shaped link: loss, a token bucket with a bounded queue (virtual
/// scheduling: only the time the bucket is next full of tokens is kept), then delay.
#[derive(Debug)]
pub(crate) struct Bucket {
    shape: LinkShape,
    /// Nanoseconds of link time per byte (0 when uncapped).
    ns_per_byte: f64,
    /// Burst tolerance: how far ahead of `tat` a packet may leave.
    burst: Duration,
    /// Longest wait in the queue.
    queue: Duration,
    /// Theoretical arrival time (GCRA): when the link would be idle with a full bucket.
    tat: Instant,
    rng: u64,
}

impl Bucket {
    pub(crate) fn new(shape: LinkShape, seed: u64) -> Bucket {
        let (ns_per_byte, burst, queue) = match shape.bytes_per_sec {
            Some(rate) => (
                1e9 / rate,
                Duration::from_secs_f64((BURST_BYTES - PACKET_BYTES) / rate),
                QUEUE.max(Duration::from_secs_f64(MIN_QUEUE_BYTES / rate)),
            ),
            None => (0.0, Duration::ZERO, Duration::ZERO),
        };
        Bucket {
            shape,
            ns_per_byte,
            burst,
            queue,
            tat: Instant::now(),
            rng: seed ^ 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// A packet of `len` bytes enters the link at `at`: returns when it reaches the far end, or
    /// `None` if it is lost or the queue is full.
    pub(crate) fn enter(&mut self, at: Instant, len: usize) -> Option<Instant> {
        if self.shape.loss > 0.0 && self.random() < self.shape.loss {
            return None;
        }
        let mut leaves = at;
        if self.shape.bytes_per_sec.is_some() {
            let tat = self.tat.max(at);
            leaves = tat.checked_sub(self.burst).map_or(at, |t| t.max(at));
            if leaves.saturating_duration_since(at) > self.queue {
                return None;
            }
            self.tat = tat + Duration::from_nanos((len as f64 * self.ns_per_byte) as u64);
        }
        Some(leaves + self.shape.delay)
    }

    /// Uniform in [0, 1) (splitmix64; good enough for loss, no dependency).
    fn random(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One direction of a link, named by the interface it leaves from.
struct Direction {
    /// `ISD-AS#IFID` of the sending end, for logs.
    name: String,
    /// The AS at the receiving end.
    to: IsdAsn,
    /// The opposite direction of the same link (index into `Shaper::dirs`).
    reverse: usize,
    /// Mirrors pocketscion's link flag: a packet never waits for a link that is down.
    up: AtomicBool,
    /// `None`: the link has no attributes.
    bucket: Option<Mutex<Bucket>>,
    dropped: AtomicU64,
}

/// The shaping layer of one testnet: every link direction, and the front ends that use them.
pub(crate) struct Shaper {
    dirs: Vec<Direction>,
    /// (AS, egress interface) → direction.
    by_egress: HashMap<(IsdAsn, u16), usize>,
}

impl Shaper {
    /// The shaper for `topology`, or `None` if no link has attributes (then pocketscion's own
    /// router sockets serve the hosts, exactly as without shaping).
    pub(crate) fn new(topology: &Topology) -> anyhow::Result<Option<Arc<Shaper>>> {
        let mut dirs = Vec::new();
        let mut by_egress = HashMap::new();
        let mut any = false;
        for link in &topology.links {
            let (a, b) = link.ends()?;
            let shape = LinkShape::of(link);
            any |= shape.is_some();
            for (from, to) in [(a, b), (b, a)] {
                let index = dirs.len();
                by_egress.insert((from.ia, from.id), index);
                dirs.push(Direction {
                    name: from.to_string(),
                    to: to.ia,
                    reverse: index ^ 1,
                    up: AtomicBool::new(true),
                    bucket: shape.map(|s| Mutex::new(Bucket::new(s, index as u64))),
                    dropped: AtomicU64::new(0),
                });
            }
        }
        ensure!(
            dirs.len() <= usize::from(u16::MAX),
            "too many links to shape"
        );
        Ok(any.then(|| Arc::new(Shaper { dirs, by_egress })))
    }

    /// Follows pocketscion's link flag for the link with an end at `ia#interface`.
    pub(crate) fn set_up(&self, ia: IsdAsn, interface: u16, up: bool) {
        if let Some(&d) = self.by_egress.get(&(ia, interface)) {
            self.dirs[d].up.store(up, Relaxed);
            self.dirs[self.dirs[d].reverse].up.store(up, Relaxed);
        }
    }

    /// Packets dropped so far (queue full or random loss) on the direction leaving
    /// `ia#interface`; `None` if there is no such direction or it is not shaped.
    pub(crate) fn dropped(&self, ia: IsdAsn, interface: u16) -> Option<u64> {
        let dir = &self.dirs[*self.by_egress.get(&(ia, interface))?];
        dir.bucket.as_ref()?;
        Some(dir.dropped.load(Relaxed))
    }

    /// The link directions a packet sent from a host in `from` is going to cross, in order,
    /// written to `out`; returns how many, and whether any of them is shaped. Stops at the first
    /// hop that leads nowhere known (pocketscion will drop or answer that packet itself).
    fn route(
        &self,
        from: IsdAsn,
        packet: &ScionRawPacketView,
        out: &mut [u16; MAX_HOPS],
    ) -> (usize, bool) {
        let ScionDpPathViewRef::Standard(path) = packet.header().path() else {
            return (0, false);
        };
        let current = usize::from(path.curr_hop_field_idx());
        let (mut at, mut n, mut shaped, mut index) = (from, 0, false, 0);
        for (info, hops) in path.segments() {
            for hop in hops {
                index += 1;
                if index <= current {
                    continue;
                }
                let egress = hop.egress_interface(info);
                if egress == 0 {
                    continue; // end of a segment (or of the path) inside this AS
                }
                let Some(&d) = self.by_egress.get(&(at, egress)) else {
                    return (n, shaped);
                };
                if n == MAX_HOPS {
                    return (n, shaped);
                }
                out[n] = d as u16;
                n += 1;
                shaped |= self.dirs[d].bucket.is_some();
                at = self.dirs[d].to;
            }
        }
        (n, shaped)
    }

    /// A packet from a host of `ia` arrived at the front end.
    fn ingress(&self, fe: &FrontEnd, bytes: &mut [u8], timers: &mut Timers) {
        let packet = match ScionRawPacketView::try_from_mut_slice(bytes) {
            Ok((packet, _)) => packet,
            Err(e) => {
                tracing::debug!(ia = %fe.ia, error = ?e, "front end: not a SCION packet");
                return;
            }
        };
        let mut route = [0u16; MAX_HOPS];
        let (n, shaped) = self.route(fe.ia, packet, &mut route);
        if !shaped {
            fe.dispatch(packet);
            return;
        }
        let flight = Flight {
            packet: packet.to_boxed(),
            route: route[..n].into(),
            next: 0,
        };
        self.advance(fe, flight, Instant::now(), timers);
    }

    /// Moves a packet that reached the next link of its route at `at` as far as it gets without
    /// waiting: queued on a timer, dropped, or (past its last shaped link) handed to pocketscion.
    fn advance(&self, fe: &FrontEnd, mut flight: Flight, at: Instant, timers: &mut Timers) {
        while let Some(&d) = flight.route.get(flight.next) {
            let dir = &self.dirs[usize::from(d)];
            if !dir.up.load(Relaxed) {
                break; // pocketscion drops it there and answers with SCMP, without delay
            }
            flight.next += 1;
            let Some(bucket) = &dir.bucket else {
                continue;
            };
            let len = flight.packet.as_slice().len();
            match lock(bucket).enter(at, len) {
                None => {
                    dir.dropped.fetch_add(1, Relaxed);
                    tracing::trace!(link = %dir.name, "shaper dropped a packet");
                    return;
                }
                Some(arrives) if arrives > at => {
                    timers.push(arrives, flight);
                    return;
                }
                Some(_) => {}
            }
        }
        fe.dispatch(&mut flight.packet);
    }
}

fn lock(bucket: &Mutex<Bucket>) -> MutexGuard<'_, Bucket> {
    bucket.lock().unwrap_or_else(|e| e.into_inner())
}

/// A packet on its way through shaped links.
struct Flight {
    packet: Box<ScionRawPacketView>,
    /// Directions it crosses (indices into `Shaper::dirs`); `next` is the one it reaches next.
    route: Box<[u16]>,
    next: usize,
}

/// Packets waiting for a link, earliest first (FIFO among equal times).
#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Pending>,
    seq: u64,
}

struct Pending {
    at: Instant,
    seq: u64,
    flight: Flight,
}

impl Timers {
    fn push(&mut self, at: Instant, flight: Flight) {
        self.seq += 1;
        self.heap.push(Pending {
            at,
            seq: self.seq,
            flight,
        });
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest packet on top.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The router socket that hosts of one AS see while shaping is on.
struct FrontEnd {
    ia: IsdAsn,
    socket: Arc<UdpSocket>,
    pocket: PocketScionState,
}

impl FrontEnd {
    /// Hands a packet to pocketscion as if the AS's router had received it from a host.
    fn dispatch(&self, packet: &mut ScionRawPacketView) {
        self.pocket
            .dispatch_to_network_sim(self.ia, 0, ScionNetworkTime::now(), packet);
    }

    async fn run(self, shaper: Arc<Shaper>) {
        let mut buf = vec![0u8; 65536];
        let mut timers = Timers::default();
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        loop {
            let now = Instant::now();
            while timers.heap.peek().is_some_and(|p| p.at <= now) {
                if let Some(p) = timers.heap.pop() {
                    shaper.advance(&self, p.flight, p.at, &mut timers);
                }
            }
            let next = timers.heap.peek().map(|p| p.at);
            if let Some(at) = next {
                if sleep.deadline() != at {
                    sleep.as_mut().reset(at);
                }
            }
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, _)) => shaper.ingress(&self, &mut buf[..len], &mut timers),
                    Err(e) => tracing::debug!(ia = %self.ia, error = %e, "front end: receive failed"),
                },
                () = &mut sleep, if next.is_some() => {}
            }
        }
    }
}

/// Delivers packets that pocketscion routed to hosts of an AS, from the AS's front-end socket.
struct Deliver {
    socket: Arc<UdpSocket>,
}

impl Receiver for Deliver {
    fn receive_packet(&self, packet: &ScionRawPacketView) {
        // As pocketscion's router socket does: the UDP destination port, or for SCMP what
        // sciparse derives from the message.
        let dst = packet
            .try_classify()
            .ok()
            .and_then(|p| p.dst_socket_addr())
            .and_then(|a| a.socket_addr());
        let Some(dst) = dst else {
            tracing::debug!("front end: packet without a host destination");
            return;
        };
        if let Err(e) = self.socket.try_send_to(packet.as_slice(), dst) {
            tracing::debug!(error = %e, %dst, "front end: delivery failed");
        }
    }
}

/// Binds one front-end socket per AS on 127.0.0.1; returns their addresses (to advertise as
/// the ASes' routers) and the sockets for [`start`].
pub(crate) async fn bind(
    ases: impl IntoIterator<Item = IsdAsn>,
) -> anyhow::Result<BTreeMap<IsdAsn, Arc<UdpSocket>>> {
    let mut sockets = BTreeMap::new();
    for ia in ases {
        let socket = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .with_context(|| format!("cannot bind the front-end socket of {ia}"))?;
        sockets.insert(ia, Arc::new(socket));
    }
    Ok(sockets)
}

/// Registers the front ends as the ASes' receivers and starts them on the current runtime.
/// They run until the runtime shuts down.
pub(crate) fn start(
    shaper: &Arc<Shaper>,
    pocket: &PocketScionState,
    sockets: BTreeMap<IsdAsn, Arc<UdpSocket>>,
) -> anyhow::Result<()> {
    for (ia, socket) in sockets {
        // Address-range receivers take precedence over the router socket's wildcard one.
        for net in ["0.0.0.0/0", "::/0"] {
            let deliver = Arc::new(Deliver {
                socket: socket.clone(),
            });
            pocket
                .add_sim_receiver(ia, net.parse()?, deliver)
                .with_context(|| format!("cannot register the front end of {ia}"))?;
        }
        let fe = FrontEnd {
            ia,
            socket,
            pocket: pocket.clone(),
        };
        tokio::spawn(fe.run(shaper.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capped(mbit: f64) -> LinkShape {
        LinkShape {
            bytes_per_sec: Some(mbit * 1e6 / 8.0),
            delay: Duration::ZERO,
            loss: 0.0,
        }
    }

    /// Offers `len`-byte packets every `gap` for `count` packets; returns the arrival times.
    fn offer(
        bucket: &mut Bucket,
        start: Instant,
        gap: Duration,
        len: usize,
        count: u32,
    ) -> Vec<Instant> {
        (0..count)
            .filter_map(|i| bucket.enter(start + gap * i, len))
            .collect()
    }

    #[test]
    fn a_capped_link_carries_its_rate_and_drops_the_excess() {
        let mut b = Bucket::new(capped(10.0), 1);
        let start = Instant::now();
        // 2 s of 1250-byte packets at 20 Mbit/s (one every 0.5 ms): twice the cap.
        let out = offer(&mut b, start, Duration::from_micros(500), 1250, 4000);
        let span = (*out.last().unwrap() - out[0]).as_secs_f64();
        let mbit = (out.len() - 1) as f64 * 1250.0 * 8.0 / span / 1e6;
        assert!((9.9..10.1).contains(&mbit), "{mbit} Mbit/s");
        // About half is dropped; nothing waits longer than the queue allows.
        assert!((1900..2100).contains(&out.len()), "{}", out.len());
        for (i, t) in out.iter().enumerate() {
            assert!(*t >= start, "{i}");
        }
        let last_sent = start + Duration::from_micros(500) * 3999;
        assert!(*out.last().unwrap() <= last_sent + QUEUE + Duration::from_millis(2));
    }

    #[test]
    fn an_idle_link_passes_a_short_burst_at_once() {
        let mut b = Bucket::new(capped(10.0), 1);
        let start = Instant::now() + Duration::from_secs(1);
        let out = offer(&mut b, start, Duration::ZERO, 1500, 6);
        assert_eq!(out.len(), 6, "the queue holds them");
        assert_eq!(out[..4], [start; 4], "a burst of four goes through at once");
        assert!(out[4] > start);
    }

    #[test]
    fn traffic_below_the_cap_is_not_delayed() {
        let mut b = Bucket::new(capped(10.0), 1);
        let start = Instant::now();
        let gap = Duration::from_millis(2); // 1250 B per 2 ms = 5 Mbit/s
        for i in 0..500 {
            let at = start + gap * i;
            assert_eq!(b.enter(at, 1250), Some(at), "packet {i}");
        }
    }

    #[test]
    fn delay_and_loss() {
        let shape = LinkShape {
            bytes_per_sec: None,
            delay: Duration::from_millis(30),
            loss: 0.25,
        };
        let mut b = Bucket::new(shape, 7);
        let start = Instant::now();
        let out = offer(&mut b, start, Duration::from_micros(10), 1000, 20_000);
        let kept = out.len() as f64 / 20_000.0;
        assert!((0.73..0.77).contains(&kept), "{kept}");
        assert!(out.iter().all(|t| *t >= start + Duration::from_millis(30)));
    }

    #[test]
    fn links_without_attributes_are_not_shaped() {
        let t = Topology::builtin("three-paths").unwrap();
        assert!(Shaper::new(&t).unwrap().is_none());
        let t = Topology::builtin("three-paths-capped").unwrap();
        let shaper = Shaper::new(&t).unwrap().unwrap();
        let ia = |s| crate::parse_ia(s).unwrap();
        for k in 1..=3 {
            let d = shaper.by_egress[&(ia("1-ff00:0:111"), k)];
            assert!(shaper.dirs[d].bucket.is_some());
            let back = shaper.dirs[d].reverse;
            assert!(shaper.dirs[back].bucket.is_some());
            assert_eq!(shaper.dirs[back].to, ia("1-ff00:0:111"));
            let d = shaper.by_egress[&(ia("1-ff00:0:112"), k)];
            assert!(shaper.dirs[d].bucket.is_none());
        }
    }
}
