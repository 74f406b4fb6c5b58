//! bwtester's data connection: one thread sends a direction's paced test packets, another
//! counts the other direction's (both sides of a test run one of each on the same socket).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bwtester::{packet_counter, send_offset, Parameters, Prg, Receiver, TestResult};
use super::scion_udp::{Route, Socket};
use crate::scion::ScionAddr;

/// What a sender did.
#[derive(Debug, Clone, Default)]
pub struct SendStats {
    /// Packets handed to the kernel.
    pub sent: i64,
    /// Packets not sent because the send deadline had passed.
    pub late: i64,
}

/// Sends `p.num_packets` test packets along `route`, packet `i` at `start + i·interval`
/// (at once when behind schedule), none after `stop`, and none once `abort` is set. Returns
/// on the first socket error, as bwtester's sender does.
pub fn send(
    socket: &mut Socket,
    route: &Route,
    p: &Parameters,
    start: Instant,
    stop: Instant,
    abort: &AtomicBool,
) -> io::Result<SendStats> {
    let prg = Prg::new(&p.prg_key)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let size = usize::try_from(p.packet_size)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "negative packet size"))?;
    let mut payload = vec![0u8; size];
    let mut stats = SendStats::default();
    let total = p.num_packets.max(0);
    for i in 0..total {
        if abort.load(Ordering::Relaxed) {
            break;
        }
        let due = start + send_offset(p, i);
        if due > stop {
            stats.late = total - i;
            break;
        }
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if Instant::now() > stop {
            stats.late = total - i;
            break;
        }
        prg.packet(packet_counter(p, i), &mut payload);
        socket.send(route, &payload)?;
        stats.sent += 1;
    }
    Ok(stats)
}

/// When a receiver stops: a deadline that may be set after it started (the client's receiver
/// runs before the server has accepted the test), or an abort.
#[derive(Debug, Default)]
pub struct ReceiveUntil {
    /// Nanoseconds after the receiver's origin; 0 while unknown.
    deadline_ns: AtomicU64,
    abort: AtomicBool,
}

impl ReceiveUntil {
    pub fn new() -> Arc<ReceiveUntil> {
        Arc::new(ReceiveUntil::default())
    }

    /// Stop at `at` (`origin` is the one given to [`receive`]).
    pub fn set(&self, origin: Instant, at: Instant) {
        let ns = at.saturating_duration_since(origin).as_nanos().max(1);
        self.deadline_ns
            .store(u64::try_from(ns).unwrap_or(u64::MAX), Ordering::Release);
    }

    pub fn abort(&self) {
        self.abort.store(true, Ordering::Release);
    }

    fn deadline(&self, origin: Instant) -> Option<Instant> {
        match self.deadline_ns.load(Ordering::Acquire) {
            0 => None,
            ns => Some(origin + Duration::from_nanos(ns)),
        }
    }
}

/// What a receiver counted, and what it ignored.
#[derive(Debug, Clone)]
pub struct Received {
    pub result: TestResult,
    /// Datagrams from any other address than the peer's data socket.
    pub foreign: u64,
    /// An example of such a sender.
    pub foreign_example: Option<ScionAddr>,
    /// Undecodable packets and SCMP messages on the data socket.
    pub undecodable: u64,
    pub scmp: u64,
}

/// Counts the test packets of `p` that arrive from exactly `peer` until all are correct, the
/// deadline in `until` passes, or it is aborted. Arrival times are nanoseconds after `origin`.
pub fn receive(
    socket: &mut Socket,
    peer: ScionAddr,
    p: &Parameters,
    origin: Instant,
    until: &ReceiveUntil,
) -> io::Result<Received> {
    let mut rx =
        Receiver::new(p).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let (mut foreign, mut foreign_example) = (0u64, None);
    loop {
        if until.abort.load(Ordering::Acquire) || rx.is_done() {
            break;
        }
        let deadline = until.deadline(origin);
        // Until the deadline is known, wake now and then to look for it.
        let wake = deadline.unwrap_or_else(|| Instant::now() + Duration::from_millis(20));
        let Some(d) = socket.recv(wake)? else {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            continue;
        };
        if d.src != peer {
            foreign += 1;
            foreign_example.get_or_insert(d.src);
            continue;
        }
        let arrival = i64::try_from(origin.elapsed().as_nanos()).unwrap_or(i64::MAX);
        rx.on_datagram(d.payload, arrival);
    }
    Ok(Received {
        result: rx.result(),
        foreign,
        foreign_example,
        undecodable: socket.skipped.undecodable,
        scmp: socket.skipped.scmp,
    })
}

/// Reads and drops whatever waits in the socket's buffer (stragglers of an earlier test).
pub fn drain(socket: &mut Socket) -> io::Result<()> {
    let until = Instant::now() + Duration::from_millis(1);
    while socket.recv(until)?.is_some() {}
    Ok(())
}
