//! BitTorrent over TCP (BEP 3/6/10, plain or MSE/PE-encrypted), on the same torrent
//! [`Session`] as the QUIC/SCION lanes and in the same tokio-uring thread.
//!
//! Every TCP connection is one lane. A listener task accepts connections, a dial task per IP
//! peer connects (and reconnects while we still want data); each connection has a reader task
//! (bytes → event queue) and a writer task (a queue of `Bytes` chunks from
//! [`LaneProtocol::poll_output`] → `write_all`, so piece data leaves as the storage's own `Bytes`
//! without another copy). The synchronous part, [`TcpLanes`] (one per torrent), moves events
//! into the session and output into the queues from the driver loop; the listener and the
//! event queue ([`TcpHub`]) are shared by all torrents of a client.
//!
//! Before a connection becomes a lane, [`super::mse`] runs the encryption handshake the
//! client's [`Policy`] asks for (an incoming one may be plain or MSE on the same port); an RC4
//! lane's reader decrypts what it reads and its writer encrypts a copy of each chunk.
//!
//! Lane ids start at [`TCP_LANE_BASE`], far above the QUIC app's (which count up from 1).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bt_mse::{req2_hash, Policy, Rc4Stream};
use bytes::Bytes;
use tokio::sync::Notify;
use tokio_uring::net::{TcpListener, TcpStream};

use crate::engine::liveness::{Liveness, LivenessRules};
use crate::engine::mse::{self, EncryptionError, Negotiated};
use crate::torrent::close::CloseReason;
use crate::torrent::lane_protocol::LaneProtocol;
use crate::torrent::session::LaneId;

/// First lane id of TCP lanes (QUIC lanes count up from 1).
pub const TCP_LANE_BASE: LaneId = 1 << 48;
/// Bytes queued for a connection's writer before we stop taking output from the session.
const QUEUE_HIGH: usize = 1 << 20;
const READ_BUF: usize = 64 * 1024;
/// Bytes read from one connection and not yet taken by the driver before its reader waits:
/// a peer that floods faster than the loop decodes costs at most this much memory.
const MAX_UNREAD: usize = 256 * 1024;
/// Chunks (block headers and blocks) handed to one `writev`.
const WRITEV_MAX: usize = 64;
/// Wait between connection attempts to an IP peer.
const REDIAL_AFTER: Duration = Duration::from_secs(2);
/// Incoming connections in their first handshake at once; more are closed at once (each
/// costs a Diffie-Hellman exponentiation and up to ~70 KiB).
const MAX_INCOMING_HANDSHAKES: usize = 256;
/// How long stopping waits for handshakes to see their socket shut down.
const HANDSHAKE_STOP: Duration = Duration::from_secs(2);

/// What the connection tasks report to the driver loop. Dials are tagged with the
/// [`TcpLanes`] that made them (`owner`); accepted connections have no owner until the
/// client's handshake router assigns them to a torrent.
pub enum TcpEvent {
    Opened {
        lane: LaneId,
        outbound: bool,
        peer: SocketAddr,
        conn: Rc<Conn>,
        dial: Option<(u32, usize)>,
    },
    Data(LaneId, Vec<u8>),
    Closed(LaneId, String),
    DialFailed(u32, usize, String),
}

/// What the driver and a connection's tasks share.
pub struct Conn {
    stream: TcpStream,
    queue: RefCell<VecDeque<Bytes>>,
    queued: Cell<usize>,
    closed: Cell<bool>,
    wake_writer: Notify,
    read_gate: Rc<ReadGate>,
    encrypted: bool,
}

impl Conn {
    /// Whether the lane is RC4-encrypted (MSE).
    pub fn encrypted(&self) -> bool {
        self.encrypted
    }

    pub fn close(&self) {
        if !self.closed.replace(true) {
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
            self.wake_writer.notify_one();
            self.read_gate.resume.notify_one();
        }
    }
}

/// Backpressure between a connection's reader task and the driver (see [`MAX_UNREAD`]).
#[derive(Default)]
struct ReadGate {
    unread: Cell<usize>,
    resume: Notify,
}

/// Removes a reader's gate when its task ends.
struct ForgetGate(Rc<Hub>, LaneId);

impl Drop for ForgetGate {
    fn drop(&mut self) {
        self.0.gates.borrow_mut().remove(&self.1);
    }
}

struct Hub {
    events: RefCell<VecDeque<TcpEvent>>,
    /// Per lane: what its reader queued and the driver has not taken yet.
    gates: RefCell<HashMap<LaneId, Rc<ReadGate>>>,
    /// Wakes the driver loop (see [`crate::net::uring::App::wake_handle`]).
    wake: Rc<Notify>,
    next_lane: Cell<LaneId>,
    next_owner: Cell<u32>,
    /// Listening sockets and their accept loops (see [`TcpHub::stop_listening`]).
    listeners: RefCell<Vec<(RawFd, tokio::task::JoinHandle<()>)>>,
    stop_listening: Cell<bool>,
    encryption: Cell<Policy>,
    /// HASH('req2', info hash) → info hash, with how many TcpLanes registered it: the
    /// torrents an incoming MSE stream may ask for.
    skeys: RefCell<HashMap<[u8; 20], Registered>>,
    /// Sockets in an encryption handshake (shut down when we stop).
    handshakes: RefCell<HashMap<u64, RawFd>>,
    next_handshake: Cell<u64>,
    incoming_handshakes: Cell<usize>,
}

/// An info hash incoming MSE streams may name, and how many TcpLanes registered it.
type Registered = ([u8; 20], usize);

/// A socket in its handshake, known to the hub until dropped (drop it before the stream).
struct HandshakeSlot {
    hub: Rc<Hub>,
    id: u64,
    incoming: bool,
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        self.hub.handshakes.borrow_mut().remove(&self.id);
        if self.incoming {
            let n = self.hub.incoming_handshakes.get();
            self.hub.incoming_handshakes.set(n.saturating_sub(1));
        }
    }
}

impl Hub {
    fn push(&self, ev: TcpEvent) {
        self.events.borrow_mut().push_back(ev);
        self.wake.notify_one();
    }

    fn track_handshake(self: &Rc<Self>, fd: RawFd, incoming: bool) -> HandshakeSlot {
        let id = self.next_handshake.get();
        self.next_handshake.set(id + 1);
        self.handshakes.borrow_mut().insert(id, fd);
        if incoming {
            self.incoming_handshakes
                .set(self.incoming_handshakes.get() + 1);
        }
        HandshakeSlot {
            hub: self.clone(),
            id,
            incoming,
        }
    }

    /// The info hash an incoming MSE stream asks for, if it is one of ours.
    fn find_skey(&self, req2: &[u8; 20]) -> Option<[u8; 20]> {
        self.skeys.borrow().get(req2).map(|(ih, _)| *ih)
    }

    /// Runs the first handshake of an accepted connection (plain or MSE, as the policy
    /// allows); a lane if it succeeds.
    fn answer(self: &Rc<Self>, stream: TcpStream, peer: SocketAddr) {
        if self.incoming_handshakes.get() >= MAX_INCOMING_HANDSHAKES {
            tracing::info!(%peer, "TCP peer closed: too many handshakes at once");
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        let slot = self.track_handshake(stream.as_raw_fd(), true);
        let hub = self.clone();
        tokio_uring::spawn(async move {
            let policy = hub.encryption.get();
            let lookup = |req2: &[u8; 20]| hub.find_skey(req2);
            let r = mse::answer(&stream, policy, &lookup).await;
            drop(slot);
            match r {
                Ok(neg) => hub.start_conn(stream, peer, false, None, neg),
                Err(e) => {
                    tracing::info!(%peer, "TCP peer refused: {e}");
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                }
            }
        });
    }

    /// Connects to `addr` for torrent `skey` with the encryption the policy asks for: MSE
    /// first unless disabled, and plain again after a failed MSE handshake when enabled.
    async fn connect(
        self: &Rc<Self>,
        addr: SocketAddr,
        skey: [u8; 20],
    ) -> Result<(TcpStream, Negotiated), EncryptionError> {
        let policy = self.encryption.get();
        let stream = TcpStream::connect(addr)
            .await
            .map_err(EncryptionError::Connect)?;
        if !policy.dials_encrypted() {
            return Ok((stream, Negotiated::plain()));
        }
        let slot = self.track_handshake(stream.as_raw_fd(), false);
        let r = mse::dial(&stream, skey, policy.allowed()).await;
        drop(slot);
        match r {
            Ok(neg) => Ok((stream, neg)),
            Err(e) if policy.falls_back_to_plaintext() => {
                tracing::info!(peer = %addr, "MSE failed ({e}); dialling plain BitTorrent");
                let _ = stream.shutdown(std::net::Shutdown::Both);
                drop(stream);
                let plain = TcpStream::connect(addr)
                    .await
                    .map_err(EncryptionError::Connect)?;
                Ok((plain, Negotiated::plain()))
            }
            Err(e) => {
                let _ = stream.shutdown(std::net::Shutdown::Both);
                Err(e)
            }
        }
    }

    fn start_conn(
        self: &Rc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        outbound: bool,
        dial: Option<(u32, usize)>,
        neg: Negotiated,
    ) {
        let _ = stream.set_nodelay(true);
        let (mut send_key, mut recv_key): (Option<Rc4Stream>, Option<Rc4Stream>) = match neg.streams
        {
            Some((s, r)) => (Some(s), Some(r)),
            None => (None, None),
        };
        let lane = self.next_lane.get();
        self.next_lane.set(lane + 1);
        let gate = Rc::new(ReadGate::default());
        self.gates.borrow_mut().insert(lane, gate.clone());
        let conn = Rc::new(Conn {
            stream,
            queue: RefCell::new(VecDeque::new()),
            queued: Cell::new(0),
            closed: Cell::new(false),
            wake_writer: Notify::new(),
            read_gate: gate.clone(),
            encrypted: send_key.is_some(),
        });
        self.push(TcpEvent::Opened {
            lane,
            outbound,
            peer,
            conn: conn.clone(),
            dial,
        });
        if !neg.payload.is_empty() {
            gate.unread.set(neg.payload.len());
            self.push(TcpEvent::Data(lane, neg.payload));
        }
        let (hub, c) = (self.clone(), conn.clone());
        tokio_uring::spawn(async move {
            // However the reader ends, its lane's gate goes.
            let _forget = ForgetGate(hub.clone(), lane);
            // The kernel fills spare capacity: no zeroing of 64 KiB per read.
            let mut buf = Vec::with_capacity(READ_BUF);
            loop {
                while gate.unread.get() > MAX_UNREAD && !c.closed.get() {
                    gate.resume.notified().await;
                }
                if c.closed.get() {
                    return;
                }
                buf.clear();
                let (res, b) = c.stream.read(buf).await;
                buf = b;
                match res {
                    Ok(0) => {
                        hub.push(TcpEvent::Closed(
                            lane,
                            "remote closed the connection".into(),
                        ));
                        return;
                    }
                    Ok(n) => {
                        if let Some(k) = &mut recv_key {
                            k.apply(&mut buf[..n]);
                        }
                        // A full read hands its buffer over; a short one is copied out, so
                        // a queued event never holds 64 KiB for a few bytes.
                        let data = if n >= READ_BUF / 2 {
                            let mut d = std::mem::replace(&mut buf, Vec::with_capacity(READ_BUF));
                            d.truncate(n);
                            d
                        } else {
                            buf[..n].to_vec()
                        };
                        gate.unread.set(gate.unread.get() + n);
                        hub.push(TcpEvent::Data(lane, data));
                    }
                    Err(e) => {
                        hub.push(TcpEvent::Closed(lane, format!("read error: {e}")));
                        return;
                    }
                }
                if c.closed.get() {
                    return;
                }
            }
        });
        let hub = self.clone();
        tokio_uring::spawn(async move {
            let mut batch: Vec<Bytes> = Vec::with_capacity(WRITEV_MAX);
            loop {
                {
                    let mut q = conn.queue.borrow_mut();
                    while batch.len() < WRITEV_MAX {
                        let Some(chunk) = q.pop_front() else { break };
                        // RC4 needs its own copy: the chunk may be the storage's bytes.
                        let chunk = match &mut send_key {
                            Some(k) => {
                                let mut v = chunk.to_vec();
                                k.apply(&mut v);
                                Bytes::from(v)
                            }
                            None => chunk,
                        };
                        batch.push(chunk);
                    }
                }
                if batch.is_empty() {
                    if conn.closed.get() {
                        return;
                    }
                    conn.wake_writer.notified().await;
                    continue;
                }
                let len: usize = batch.iter().map(Bytes::len).sum();
                let res = write_all_vectored(&conn.stream, &mut batch).await;
                conn.queued.set(conn.queued.get().saturating_sub(len));
                if let Err(e) = res {
                    if !conn.closed.get() {
                        hub.push(TcpEvent::Closed(lane, format!("write error: {e}")));
                    }
                    return;
                }
                // Room in the queue: the driver may take more output.
                if conn.queued.get() < QUEUE_HIGH / 2 {
                    hub.wake.notify_one();
                }
            }
        });
    }
}

/// Writes every chunk of `batch` with as few `writev`s as the socket allows (one io_uring
/// operation for many 16 KiB blocks and their headers); `batch` is empty afterwards.
async fn write_all_vectored(stream: &TcpStream, batch: &mut Vec<Bytes>) -> std::io::Result<()> {
    while !batch.is_empty() {
        let (res, mut rest) = stream.writev(std::mem::take(batch)).await;
        let mut n = res?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let done = rest
            .iter()
            .take_while(|b| {
                let whole = n >= b.len();
                if whole {
                    n -= b.len();
                }
                whole
            })
            .count();
        rest.drain(..done);
        if let Some(first) = rest.first_mut() {
            bytes::Buf::advance(first, n);
        }
        *batch = rest;
    }
    Ok(())
}

struct LaneConn {
    conn: Rc<Conn>,
    peer: SocketAddr,
    liveness: Liveness,
    dial: Option<usize>,
}

/// The TCP side every torrent of a client shares: the listener, the connection tasks and the
/// queue of their events.
#[derive(Clone)]
pub struct TcpHub {
    hub: Rc<Hub>,
}

impl TcpHub {
    pub fn new(wake: Rc<Notify>) -> Self {
        Self {
            hub: Rc::new(Hub {
                events: RefCell::new(VecDeque::new()),
                gates: RefCell::new(HashMap::new()),
                wake,
                next_lane: Cell::new(TCP_LANE_BASE),
                next_owner: Cell::new(1),
                listeners: RefCell::new(Vec::new()),
                stop_listening: Cell::new(false),
                encryption: Cell::new(Policy::default()),
                skeys: RefCell::new(HashMap::new()),
                handshakes: RefCell::new(HashMap::new()),
                next_handshake: Cell::new(0),
                incoming_handshakes: Cell::new(0),
            }),
        }
    }

    /// The encryption policy of connections made or accepted from now on.
    pub fn set_encryption(&self, policy: Policy) {
        self.hub.encryption.set(policy);
    }

    pub fn encryption(&self) -> Policy {
        self.hub.encryption.get()
    }

    /// Listens on `addr` (must be called inside the tokio-uring runtime).
    pub fn listen(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let fd = listener.as_raw_fd();
        let hub = self.hub.clone();
        let accepting = tokio_uring::spawn(async move {
            loop {
                let accepted = listener.accept().await;
                if hub.stop_listening.get() {
                    return;
                }
                match accepted {
                    Ok((stream, peer)) => {
                        tracing::info!(%peer, "accepted TCP peer");
                        hub.answer(stream, peer);
                    }
                    Err(e) => {
                        tracing::warn!("TCP accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        self.hub.listeners.borrow_mut().push((fd, accepting));
        Ok(local)
    }

    /// Stops accepting: completes each pending accept and waits for the accept loops (an
    /// in-flight accept must not be abandoned when the runtime ends; see
    /// [`crate::net::uring::complete_pending`]); false if one did not end in time.
    pub async fn stop_listening(&self) -> bool {
        self.hub.stop_listening.set(true);
        let (fds, loops): (Vec<RawFd>, Vec<_>) =
            std::mem::take(&mut *self.hub.listeners.borrow_mut())
                .into_iter()
                .unzip();
        let accepts = crate::net::uring::complete_pending(&fds, loops, "TCP accept loops").await;
        accepts && self.stop_handshakes().await
    }

    /// Shuts down the sockets still in an encryption handshake, so their pending reads
    /// complete before the runtime ends; false if some did not end in time.
    async fn stop_handshakes(&self) -> bool {
        for &fd in self.hub.handshakes.borrow().values() {
            // SAFETY: a registered socket is open (its slot goes before its stream).
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
        let until = Instant::now() + HANDSHAKE_STOP;
        while !self.hub.handshakes.borrow().is_empty() {
            if Instant::now() > until {
                tracing::warn!("TCP handshakes did not stop within {HANDSHAKE_STOP:?}");
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    pub fn pop_event(&self) -> Option<TcpEvent> {
        let ev = self.hub.events.borrow_mut().pop_front()?;
        if let TcpEvent::Data(lane, data) = &ev {
            if let Some(g) = self.hub.gates.borrow().get(lane) {
                g.unread.set(g.unread.get().saturating_sub(data.len()));
                if g.unread.get() <= MAX_UNREAD {
                    g.resume.notify_one();
                }
            }
        }
        Some(ev)
    }

    pub fn wake_handle(&self) -> Rc<Notify> {
        self.hub.wake.clone()
    }
}

struct Dial {
    addr: SocketAddr,
    /// Connecting or connected.
    busy: bool,
    next_try: Instant,
    last_error: Option<String>,
}

/// The TCP side: listener, dials and connections, driven synchronously from the event loop.
pub struct TcpLanes {
    hub: Rc<Hub>,
    /// Tags this torrent's dials in the shared hub's events.
    owner: u32,
    lanes: HashMap<LaneId, LaneConn>,
    dials: Vec<Dial>,
    /// The torrent: the SKEY of our MSE handshakes, and what incoming ones may ask for.
    info_hash: [u8; 20],
    /// Whether to keep (re)connecting to IP peers.
    pub dial_enabled: bool,
    /// Keep-alive interval and silent-peer timeout.
    pub liveness: LivenessRules,
}

impl TcpLanes {
    /// The TCP lanes of torrent `info_hash` on a client's shared hub (incoming MSE streams
    /// may name it while these lanes exist).
    pub fn new(hub: &TcpHub, info_hash: [u8; 20]) -> Self {
        let owner = hub.hub.next_owner.get();
        hub.hub.next_owner.set(owner + 1);
        hub.hub
            .skeys
            .borrow_mut()
            .entry(req2_hash(&info_hash))
            .or_insert((info_hash, 0))
            .1 += 1;
        Self {
            hub: hub.hub.clone(),
            owner,
            info_hash,
            lanes: HashMap::new(),
            dials: Vec::new(),
            dial_enabled: true,
            liveness: LivenessRules::default(),
        }
    }

    /// The tag of this torrent's dials in [`TcpEvent`]s.
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// An IP peer to connect to (and reconnect to after a loss).
    pub fn add_peer(&mut self, addr: SocketAddr, now: Instant) {
        if self.dials.iter().any(|d| d.addr == addr) {
            return;
        }
        self.dials.push(Dial {
            addr,
            busy: false,
            next_try: now,
            last_error: None,
        });
    }

    pub fn peers(&self) -> Vec<SocketAddr> {
        self.dials.iter().map(|d| d.addr).collect()
    }

    pub fn last_error(&self) -> Option<String> {
        self.dials.iter().find_map(|d| d.last_error.clone())
    }

    fn dial(&mut self, now: Instant) {
        if !self.dial_enabled {
            return;
        }
        for (i, d) in self.dials.iter_mut().enumerate() {
            if d.busy || now < d.next_try {
                continue;
            }
            d.busy = true;
            let (hub, addr, owner, skey) = (self.hub.clone(), d.addr, self.owner, self.info_hash);
            tracing::info!(peer = %addr, "connecting over TCP");
            tokio_uring::spawn(async move {
                match hub.connect(addr, skey).await {
                    Ok((s, neg)) => hub.start_conn(s, addr, true, Some((owner, i)), neg),
                    Err(e) => hub.push(TcpEvent::DialFailed(owner, i, e.to_string())),
                }
            });
        }
    }

    fn lost(&mut self, lane: LaneId, now: Instant) -> Option<LaneConn> {
        let lc = self.lanes.remove(&lane)?;
        lc.conn.close();
        if let Some(d) = lc.dial.and_then(|i| self.dials.get_mut(i)) {
            d.busy = false;
            d.next_try = now + REDIAL_AFTER;
        }
        Some(lc)
    }

    /// Feeds one event of this torrent's connections into the session (the client routes
    /// events here by owner, and accepted connections once their handshake named this
    /// torrent).
    pub fn on_event(&mut self, ev: TcpEvent, session: &mut impl LaneProtocol, now: Instant) {
        match ev {
            TcpEvent::Opened {
                lane,
                outbound,
                peer,
                conn,
                dial,
            } => {
                let rc4 = if conn.encrypted { " (rc4)" } else { "" };
                session.add_lane(lane, outbound, format!("tcp {peer}{rc4}"), now);
                // A peer we dialled listens on that address; an incoming one names its
                // listen port in its extension handshake.
                session.set_lane_remote(lane, crate::scion::PeerAddr::Ip(peer), outbound);
                self.lanes.insert(
                    lane,
                    LaneConn {
                        conn,
                        peer,
                        liveness: Liveness::new(now),
                        dial: dial.map(|d| d.1),
                    },
                );
            }
            TcpEvent::Data(lane, data) => {
                if let Some(lc) = self.lanes.get_mut(&lane) {
                    lc.liveness.received(now);
                    session.on_lane_data(lane, &data, now);
                }
            }
            TcpEvent::Closed(lane, reason) => {
                if let Some(lc) = self.lost(lane, now) {
                    tracing::info!(lane, peer = %lc.peer, "TCP lane closed: {reason}");
                    if let Some(d) = lc.dial.and_then(|i| self.dials.get_mut(i)) {
                        d.last_error = Some(reason.clone());
                    }
                    session.on_lane_closed(lane, CloseReason::Tcp(reason), now);
                }
            }
            TcpEvent::DialFailed(_, i, e) => {
                if let Some(d) = self.dials.get_mut(i) {
                    tracing::warn!(peer = %d.addr, "TCP connect failed: {e}");
                    d.busy = false;
                    d.next_try = now + REDIAL_AFTER;
                    d.last_error = Some(e);
                }
            }
        }
    }

    pub fn owns_lane(&self, lane: LaneId) -> bool {
        self.lanes.contains_key(&lane)
    }

    /// Open lanes and their remote address.
    pub fn lane_peers(&self) -> Vec<(LaneId, SocketAddr)> {
        self.lanes.iter().map(|(id, l)| (*id, l.peer)).collect()
    }

    /// When a dial waiting for its retry time is due (for `poll_timeout`).
    pub fn next_dial(&self) -> Option<Instant> {
        if !self.dial_enabled {
            return None;
        }
        self.dials
            .iter()
            .filter(|d| !d.busy)
            .map(|d| d.next_try)
            .min()
    }

    /// Closes every lane and stops dialling (pause, remove). The session is told.
    pub fn close_lanes(
        &mut self,
        session: &mut impl LaneProtocol,
        reason: CloseReason,
        now: Instant,
    ) {
        self.dial_enabled = false;
        let ids: Vec<LaneId> = self.lanes.keys().copied().collect();
        for lane in ids {
            if self.lost(lane, now).is_some() {
                session.on_lane_closed(lane, reason.clone(), now);
            }
        }
    }

    /// Keep-alive or silence deadline of the open lanes (for `poll_timeout`).
    pub fn next_liveness_deadline(&self) -> Option<Instant> {
        self.lanes
            .values()
            .map(|l| l.liveness.next_deadline(&self.liveness))
            .min()
    }

    /// Dials, closes what the session dropped, moves session output to the writers, sends
    /// keep-alives and times out silent peers.
    pub fn pump_out(&mut self, session: &mut impl LaneProtocol, now: Instant) {
        self.dial(now);
        let open: std::collections::HashSet<LaneId> = session.lane_ids().into_iter().collect();
        let gone: Vec<LaneId> = self
            .lanes
            .keys()
            .filter(|l| !open.contains(l))
            .copied()
            .collect();
        for lane in gone {
            self.lost(lane, now);
        }
        let mut silent = Vec::new();
        for (&lane, lc) in self.lanes.iter_mut() {
            if lc.liveness.is_silent(&self.liveness, now) {
                silent.push(lane);
                continue;
            }
            let mut pushed = false;
            while lc.conn.queued.get() < QUEUE_HIGH {
                let Some(chunk) = session.poll_output(lane, now) else {
                    break;
                };
                lc.conn.queued.set(lc.conn.queued.get() + chunk.len());
                lc.conn.queue.borrow_mut().push_back(chunk);
                pushed = true;
            }
            // Only between whole messages: nothing queued, nothing pending in the session.
            if !pushed
                && lc.conn.queued.get() == 0
                && !session.has_output(lane)
                && lc.liveness.keepalive_due(&self.liveness, now)
            {
                lc.conn
                    .queue
                    .borrow_mut()
                    .push_back(Bytes::from_static(&[0, 0, 0, 0]));
                lc.conn.queued.set(4);
                pushed = true;
            }
            if pushed {
                lc.liveness.sent(now);
                lc.conn.wake_writer.notify_one();
            }
        }
        if silent.is_empty() {
            return;
        }
        let why = CloseReason::Silent(self.liveness.silent_timeout);
        for lane in silent {
            if let Some(lc) = self.lanes.get(&lane) {
                tracing::info!(lane, peer = %lc.peer, "TCP lane closed: {why}");
            }
            if self.lost(lane, now).is_some() {
                session.on_lane_closed(lane, why.clone(), now);
            }
        }
    }

    /// Closes every connection (end of the run).
    pub fn close_all(&mut self) {
        for lc in self.lanes.values() {
            lc.conn.close();
        }
        self.dial_enabled = false;
    }

    /// Whether it has IP peers it keeps dialling.
    pub fn is_dialing(&self) -> bool {
        self.dial_enabled && !self.dials.is_empty()
    }

    pub fn lane_count(&self) -> usize {
        self.lanes.len()
    }
}

impl Drop for TcpLanes {
    /// Incoming MSE streams can no longer name this torrent (unless other lanes of it remain).
    fn drop(&mut self) {
        let mut skeys = self.hub.skeys.borrow_mut();
        let key = req2_hash(&self.info_hash);
        if let Some(entry) = skeys.get_mut(&key) {
            entry.1 -= 1;
            if entry.1 == 0 {
                skeys.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stopping completes the pending accept of every listener (nothing is left in flight
    /// for the runtime's end), and the port no longer takes connections.
    #[test]
    fn stop_listening_ends_every_accept_loop() {
        tokio_uring::start(async {
            let hub = TcpHub::new(Rc::new(Notify::new()));
            let a = hub.listen("127.0.0.1:0".parse().unwrap()).unwrap();
            let b = hub.listen("127.0.0.1:0".parse().unwrap()).unwrap();
            // Let both loops submit their accept.
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(hub.stop_listening().await, "an accept loop kept running");
            for addr in [a, b] {
                assert!(
                    std::net::TcpStream::connect(addr).is_err(),
                    "{addr} still accepts"
                );
            }
        });
    }
}
