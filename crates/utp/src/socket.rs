//! The socket-level demultiplexer: one UDP socket, many connections, told apart by the
//! sender's address and the connection id in the header. Like the connections, it touches no
//! socket and no clock.
//!
//! A SYN costs us a connection's state before the sender has proven it receives our packets
//! (its address may be forged), so accepted connections stay half-open, invisible to the
//! application, until the peer's next packet; at most [`EndpointConfig::max_half_open`] are
//! kept, the oldest evicted first.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::conn::{Config, Connection};
use crate::error::{PacketError, UtpError};
use crate::packet::{encode, Header, Packet, PacketType, HEADER_LEN};

/// Names a connection of an [`Endpoint`]; never reused by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(pub u64);

/// Limits of an [`Endpoint`].
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub conn: Config,
    /// Connections at most, half-open ones included; SYNs beyond are answered with a RESET.
    pub max_connections: usize,
    /// Accepted connections that heard only a SYN.
    pub max_half_open: usize,
    /// RESETs queued for packets of unknown connections; more are not answered.
    pub max_pending_resets: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            conn: Config::default(),
            max_connections: 1024,
            max_half_open: 64,
            max_pending_resets: 64,
        }
    }
}

/// What became of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatagramEvent {
    /// Handed to a connection the application knows.
    Routed(Handle),
    /// A peer's connection is established: [`Endpoint::accept`] returns it.
    Accepted(Handle),
    /// A SYN opened (or repeated to) a half-open connection.
    HalfOpen,
    Dropped(Dropped),
}

/// Why a datagram was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Dropped {
    #[error(transparent)]
    Malformed(#[from] PacketError),
    #[error("uTP: packet for no connection of ours")]
    UnknownConnection,
    #[error("uTP: SYN refused, {0} connections already")]
    Full(usize),
}

/// What the demultiplexer did, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointStats {
    pub malformed: u64,
    pub unknown: u64,
    pub refused: u64,
    pub half_open_evicted: u64,
    pub resets_not_sent: u64,
}

#[derive(Debug)]
struct Entry<A> {
    remote: A,
    conn: Connection,
    /// The application knows it (opened by it, or accepted and established).
    visible: bool,
}

/// All uTP connections on one UDP socket; `A` is the peer's address.
#[derive(Debug)]
pub struct Endpoint<A> {
    config: EndpointConfig,
    epoch: Instant,
    rng: StdRng,
    conns: HashMap<Handle, Entry<A>>,
    // Keyed by what peers choose: std's DoS-resistant hasher.
    routes: HashMap<(A, u16), Handle>,
    /// Every connection, for round-robin transmission.
    order: Vec<Handle>,
    cursor: usize,
    half_open: VecDeque<Handle>,
    accepted: VecDeque<Handle>,
    resets: VecDeque<(A, [u8; HEADER_LEN])>,
    next: u64,
    stats: EndpointStats,
}

impl<A: Copy + Eq + Hash> Endpoint<A> {
    /// `epoch` starts the microsecond clock of every connection; `seed` seeds connection ids
    /// and initial sequence numbers.
    pub fn new(config: EndpointConfig, epoch: Instant, seed: u64) -> Self {
        Self {
            config,
            epoch,
            rng: StdRng::seed_from_u64(seed),
            conns: HashMap::new(),
            routes: HashMap::new(),
            order: Vec::new(),
            cursor: 0,
            half_open: VecDeque::new(),
            accepted: VecDeque::new(),
            resets: VecDeque::new(),
            next: 0,
            stats: EndpointStats::default(),
        }
    }

    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// Connections, half-open ones included.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    pub fn half_open(&self) -> usize {
        self.half_open.len()
    }

    fn insert(&mut self, remote: A, recv_id: u16, conn: Connection, visible: bool) -> Handle {
        let h = Handle(self.next);
        self.next += 1;
        self.routes.insert((remote, recv_id), h);
        self.order.push(h);
        self.conns.insert(
            h,
            Entry {
                remote,
                conn,
                visible,
            },
        );
        h
    }

    /// Opens a connection to `to`; its SYN goes out through [`Endpoint::poll_transmit`].
    pub fn connect(&mut self, to: A, now: Instant) -> Result<Handle, UtpError> {
        if self.conns.len() >= self.config.max_connections {
            return Err(UtpError::TooManyConnections(self.conns.len()));
        }
        for _ in 0..16 {
            let id: u16 = self.rng.random();
            if self.routes.contains_key(&(to, id)) {
                continue;
            }
            let seq = self.rng.random();
            let conn = Connection::connect(id, seq, now, self.epoch, self.config.conn.clone());
            return Ok(self.insert(to, id, conn, true));
        }
        Err(UtpError::NoConnectionId)
    }

    /// The next established incoming connection.
    pub fn accept(&mut self) -> Option<Handle> {
        self.accepted.pop_front()
    }

    pub fn connection(&self, h: Handle) -> Option<&Connection> {
        self.conns.get(&h).map(|e| &e.conn)
    }

    pub fn connection_mut(&mut self, h: Handle) -> Option<&mut Connection> {
        self.conns.get_mut(&h).map(|e| &mut e.conn)
    }

    pub fn remote(&self, h: Handle) -> Option<A> {
        self.conns.get(&h).map(|e| e.remote)
    }

    /// Forgets a connection; one still open is reset (the RESET is queued).
    pub fn remove(&mut self, h: Handle) -> Option<Connection> {
        let mut e = self.conns.remove(&h)?;
        self.routes.remove(&(e.remote, e.conn.recv_id()));
        self.order.retain(|&x| x != h);
        self.half_open.retain(|&x| x != h);
        self.accepted.retain(|&x| x != h);
        if !e.conn.is_closed() {
            e.conn.abort();
            let mut out = Vec::new();
            if e.conn.poll_transmit(self.epoch, &mut out) {
                self.queue_raw(e.remote, &out);
            }
        }
        Some(e.conn)
    }

    fn queue_raw(&mut self, to: A, bytes: &[u8]) {
        if self.resets.len() >= self.config.max_pending_resets {
            self.stats.resets_not_sent += 1;
            return;
        }
        let mut b = [0u8; HEADER_LEN];
        let n = bytes.len().min(HEADER_LEN);
        b[..n].copy_from_slice(&bytes[..n]);
        self.resets.push_back((to, b));
    }

    fn queue_reset(&mut self, to: A, p: &Packet<'_>, now: Instant) {
        let header = Header {
            ty: PacketType::Reset,
            conn_id: p.header.conn_id,
            timestamp_us: now.saturating_duration_since(self.epoch).as_micros() as u32,
            timestamp_diff_us: 0,
            wnd_size: 0,
            seq_nr: self.rng.random(),
            ack_nr: p.header.seq_nr,
        };
        let mut out = Vec::with_capacity(HEADER_LEN);
        encode(&header, None, &[], &mut out);
        self.queue_raw(to, &out);
    }

    /// Takes one datagram from `from`.
    pub fn handle_datagram(&mut self, from: A, data: &[u8], now: Instant) -> DatagramEvent {
        let p = match Packet::decode(data) {
            Ok(p) => p,
            Err(e) => {
                self.stats.malformed += 1;
                return DatagramEvent::Dropped(e.into());
            }
        };
        let id = p.header.conn_id;
        match p.header.ty {
            PacketType::Syn => self.on_syn(from, &p, now),
            PacketType::Reset => {
                // The peer names the connection by the id it sends on (ours to receive on) or
                // by the one it receives on (ours to send on).
                let found = [id, id.wrapping_sub(1), id.wrapping_add(1)]
                    .into_iter()
                    .filter_map(|k| self.routes.get(&(from, k)).copied())
                    .find(|h| {
                        self.conns
                            .get(h)
                            .is_some_and(|e| e.conn.recv_id() == id || e.conn.send_id() == id)
                    });
                match found {
                    Some(h) => self.route(h, &p, now),
                    None => {
                        self.stats.unknown += 1;
                        DatagramEvent::Dropped(Dropped::UnknownConnection)
                    }
                }
            }
            _ => match self.routes.get(&(from, id)).copied() {
                Some(h) => self.route(h, &p, now),
                None => {
                    self.stats.unknown += 1;
                    self.queue_reset(from, &p, now);
                    DatagramEvent::Dropped(Dropped::UnknownConnection)
                }
            },
        }
    }

    fn on_syn(&mut self, from: A, p: &Packet<'_>, now: Instant) -> DatagramEvent {
        let recv_id = p.header.conn_id.wrapping_add(1);
        if let Some(h) = self.routes.get(&(from, recv_id)).copied() {
            return self.route(h, p, now);
        }
        if self.conns.len() >= self.config.max_connections {
            self.stats.refused += 1;
            self.queue_reset(from, p, now);
            return DatagramEvent::Dropped(Dropped::Full(self.conns.len()));
        }
        if self.half_open.len() >= self.config.max_half_open {
            // The oldest half-open one goes: a flood churns through the slots while an honest
            // peer's first packet arrives a round trip after its SYN.
            if let Some(old) = self.half_open.pop_front() {
                self.forget(old);
                self.stats.half_open_evicted += 1;
            }
        }
        let seq = self.rng.random();
        let conn = Connection::accept(p, seq, now, self.epoch, self.config.conn.clone());
        let h = self.insert(from, recv_id, conn, false);
        self.half_open.push_back(h);
        DatagramEvent::HalfOpen
    }

    /// Drops a connection the application never saw, without a word to the peer.
    fn forget(&mut self, h: Handle) {
        if let Some(e) = self.conns.remove(&h) {
            self.routes.remove(&(e.remote, e.conn.recv_id()));
            self.order.retain(|&x| x != h);
        }
        self.half_open.retain(|&x| x != h);
    }

    fn route(&mut self, h: Handle, p: &Packet<'_>, now: Instant) -> DatagramEvent {
        let Some(e) = self.conns.get_mut(&h) else {
            return DatagramEvent::Dropped(Dropped::UnknownConnection);
        };
        e.conn.handle_packet(p, now);
        if e.visible {
            return DatagramEvent::Routed(h);
        }
        if e.conn.is_established() {
            e.visible = true;
            self.half_open.retain(|&x| x != h);
            self.accepted.push_back(h);
            return DatagramEvent::Accepted(h);
        }
        if e.conn.is_closed() {
            self.forget(h);
        }
        DatagramEvent::HalfOpen
    }

    /// The next datagram to send: RESETs first, then the connections in turn. Writes it into
    /// `out` and returns where it goes.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<A> {
        out.clear();
        if let Some((to, b)) = self.resets.pop_front() {
            out.extend_from_slice(&b);
            return Some(to);
        }
        let n = self.order.len();
        for k in 0..n {
            let i = (self.cursor + k) % n;
            let h = self.order[i];
            let Some(e) = self.conns.get_mut(&h) else {
                continue;
            };
            if e.conn.poll_transmit(now, out) {
                self.cursor = (i + 1) % n;
                return Some(e.remote);
            }
        }
        None
    }

    /// The earliest timer of any connection.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conns
            .values()
            .filter_map(|e| e.conn.poll_timeout())
            .min()
    }

    /// Runs the timers due at `now`; half-open connections that expire are forgotten.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut dead = Vec::new();
        for (&h, e) in &mut self.conns {
            if e.conn.poll_timeout().is_some_and(|t| t <= now) {
                e.conn.handle_timeout(now);
                if e.conn.is_closed() && !e.visible {
                    dead.push(h);
                }
            }
        }
        for h in dead {
            self.forget(h);
        }
    }
}
