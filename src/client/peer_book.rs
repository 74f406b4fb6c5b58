//! A torrent's peer book: every address we know for it, where it came from, and whether it may
//! be dialled now. Sans-IO: the driver reports dials, connections and failures with the time
//! and asks which peers to dial.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::control::PeerSource;
use crate::scion::PeerAddr;

/// First wait after a failed dial; doubles per consecutive failure up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Addresses kept per torrent; the least useful are dropped beyond it.
pub const DEFAULT_CAPACITY: usize = 500;
/// User-given (command line, API) addresses kept beyond the capacity; past this many, a
/// user-given address is kept like a discovered one (and may be dropped).
pub const MAX_PINNED: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Known, not being dialled.
    Idle,
    /// A dial (or its lanes) is up.
    Active,
    Banned,
}

#[derive(Debug, Clone)]
pub struct PeerEntry {
    pub addr: PeerAddr,
    pub source: PeerSource,
    pub state: PeerState,
    /// Consecutive failed dials.
    pub failures: u32,
    pub next_try: Option<Instant>,
    /// Kept forever (command line / API peers are never evicted).
    pub pinned: bool,
    /// Order of insertion: earlier entries are dialled first.
    seq: u64,
}

#[derive(Debug)]
pub struct PeerBook {
    entries: HashMap<PeerAddr, PeerEntry>,
    capacity: usize,
    pinned: usize,
    next_seq: u64,
}

impl Default for PeerBook {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl PeerBook {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            pinned: 0,
            next_seq: 0,
        }
    }

    /// Adds an address; returns whether it was new. A known address keeps its state (a ban
    /// stays a ban); a user-given source pins it.
    pub fn add(&mut self, addr: PeerAddr, source: PeerSource) -> bool {
        let pinned =
            matches!(source, PeerSource::Cli | PeerSource::Api) && self.pinned < MAX_PINNED;
        if let Some(e) = self.entries.get_mut(&addr) {
            if pinned && !e.pinned {
                e.pinned = true;
                self.pinned += 1;
            }
            return false;
        }
        if self.entries.len() >= self.capacity && !self.evict_some() && !pinned {
            return false;
        }
        self.pinned += usize::from(pinned);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(
            addr,
            PeerEntry {
                addr,
                source,
                state: PeerState::Idle,
                failures: 0,
                next_try: None,
                pinned,
                seq,
            },
        );
        true
    }

    /// Drops the least useful unpinned, inactive entries (banned first, then most failures,
    /// then the newest) — an eighth of the capacity at once, so that a stream of new
    /// addresses into a full book costs one scan per many adds, not one per add.
    fn evict_some(&mut self) -> bool {
        let mut victims: Vec<(bool, u32, u64, PeerAddr)> = self
            .entries
            .values()
            .filter(|e| !e.pinned && e.state != PeerState::Active)
            .map(|e| (e.state == PeerState::Banned, e.failures, e.seq, e.addr))
            .collect();
        if victims.is_empty() {
            return false;
        }
        let n = (self.capacity / 8).clamp(1, victims.len());
        victims.select_nth_unstable_by(n - 1, |a, b| b.cmp(a));
        for v in &victims[..n] {
            self.entries.remove(&v.3);
        }
        true
    }

    /// A remote connected to us: recorded as an active peer.
    pub fn incoming(&mut self, addr: PeerAddr) {
        self.add(addr, PeerSource::Incoming);
        if let Some(e) = self.entries.get_mut(&addr) {
            if e.state == PeerState::Idle {
                e.state = PeerState::Active;
            }
        }
    }

    /// Up to `max` peers to dial now, in the order they were added; they become active.
    pub fn take_dialable(&mut self, now: Instant, max: usize) -> Vec<PeerAddr> {
        let mut ready: Vec<&PeerEntry> = self
            .entries
            .values()
            .filter(|e| e.state == PeerState::Idle && e.next_try.is_none_or(|t| t <= now))
            .collect();
        ready.sort_by_key(|e| e.seq);
        let out: Vec<PeerAddr> = ready.into_iter().take(max).map(|e| e.addr).collect();
        for a in &out {
            if let Some(e) = self.entries.get_mut(a) {
                e.state = PeerState::Active;
            }
        }
        out
    }

    /// A dial to the peer worked (its handshake came through): backoff resets.
    pub fn connected(&mut self, addr: &PeerAddr) {
        if let Some(e) = self.entries.get_mut(addr) {
            e.failures = 0;
            e.next_try = None;
        }
    }

    /// The peer could not be reached or its lanes are gone: dial again after a backoff that
    /// doubles with each consecutive failure.
    pub fn failed(&mut self, addr: &PeerAddr, now: Instant) {
        if let Some(e) = self.entries.get_mut(addr) {
            if e.state == PeerState::Banned {
                return;
            }
            e.failures = e.failures.saturating_add(1);
            let shift = (e.failures - 1).min(16);
            let wait = FIRST_BACKOFF.saturating_mul(1u32 << shift).min(MAX_BACKOFF);
            e.next_try = Some(now + wait);
            e.state = PeerState::Idle;
        }
    }

    /// The peer disconnected cleanly: it may be dialled again at once.
    pub fn released(&mut self, addr: &PeerAddr) {
        if let Some(e) = self.entries.get_mut(addr) {
            if e.state == PeerState::Active {
                e.state = PeerState::Idle;
            }
        }
    }

    /// Never dial or accept it again (it sent corrupt data).
    pub fn ban(&mut self, addr: &PeerAddr) {
        if let Some(e) = self.entries.get_mut(addr) {
            e.state = PeerState::Banned;
        } else {
            self.add(*addr, PeerSource::Incoming);
            if let Some(e) = self.entries.get_mut(addr) {
                e.state = PeerState::Banned;
            }
        }
    }

    pub fn is_banned(&self, addr: &PeerAddr) -> bool {
        self.entries
            .get(addr)
            .is_some_and(|e| e.state == PeerState::Banned)
    }

    /// Every entry that is not active goes back to idle without backoff (resume after pause).
    pub fn reset_active(&mut self) {
        for e in self.entries.values_mut() {
            if e.state == PeerState::Active {
                e.state = PeerState::Idle;
            }
        }
    }

    pub fn get(&self, addr: &PeerAddr) -> Option<&PeerEntry> {
        self.entries.get(addr)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn count(&self, state: PeerState) -> usize {
        self.entries.values().filter(|e| e.state == state).count()
    }

    /// Pinned addresses in insertion order (saved with the torrent's settings).
    pub fn pinned(&self) -> Vec<PeerAddr> {
        let mut v: Vec<&PeerEntry> = self.entries.values().filter(|e| e.pinned).collect();
        v.sort_by_key(|e| e.seq);
        v.into_iter().map(|e| e.addr).collect()
    }

    /// When the next backed-off peer becomes dialable.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter(|e| e.state == PeerState::Idle)
            .filter_map(|e| e.next_try)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(port: u16) -> PeerAddr {
        format!("127.0.0.1:{port}").parse().unwrap()
    }

    #[test]
    fn dedupes_and_keeps_insertion_order() {
        let mut b = PeerBook::new(10);
        assert!(b.add(tcp(2), PeerSource::Cli));
        assert!(b.add(tcp(1), PeerSource::Tracker));
        assert!(!b.add(tcp(2), PeerSource::Dht));
        assert_eq!(b.len(), 2);
        assert_eq!(b.get(&tcp(2)).unwrap().source, PeerSource::Cli);
        let now = Instant::now();
        assert_eq!(b.take_dialable(now, 10), vec![tcp(2), tcp(1)]);
        // Active peers are not handed out twice.
        assert!(b.take_dialable(now, 10).is_empty());
    }

    #[test]
    fn failures_back_off_exponentially_and_success_resets() {
        let mut b = PeerBook::new(10);
        b.add(tcp(1), PeerSource::Api);
        let t0 = Instant::now();
        assert_eq!(b.take_dialable(t0, 1).len(), 1);
        b.failed(&tcp(1), t0);
        assert!(b.take_dialable(t0 + Duration::from_secs(1), 1).is_empty());
        assert_eq!(b.take_dialable(t0 + FIRST_BACKOFF, 1).len(), 1);
        b.failed(&tcp(1), t0);
        assert_eq!(
            b.get(&tcp(1)).unwrap().next_try,
            Some(t0 + FIRST_BACKOFF * 2)
        );
        for _ in 0..40 {
            b.failed(&tcp(1), t0);
        }
        assert_eq!(b.get(&tcp(1)).unwrap().next_try, Some(t0 + MAX_BACKOFF));
        b.connected(&tcp(1));
        assert_eq!(b.get(&tcp(1)).unwrap().failures, 0);
        assert_eq!(b.take_dialable(t0, 1), vec![tcp(1)]);
    }

    #[test]
    fn banned_peers_are_never_dialled() {
        let mut b = PeerBook::new(10);
        b.add(tcp(1), PeerSource::Pex);
        b.ban(&tcp(1));
        b.ban(&tcp(2)); // unknown: recorded as banned
        assert!(b.is_banned(&tcp(2)));
        b.failed(&tcp(1), Instant::now());
        b.reset_active();
        assert!(b.take_dialable(Instant::now(), 10).is_empty());
        assert!(!b.add(tcp(1), PeerSource::Api));
        assert!(b.is_banned(&tcp(1)));
        assert_eq!(b.count(PeerState::Banned), 2);
    }

    #[test]
    fn bounded_size_evicts_unpinned_but_keeps_user_peers() {
        let mut b = PeerBook::new(2);
        b.add(tcp(1), PeerSource::Tracker);
        b.add(tcp(2), PeerSource::Tracker);
        b.failed(&tcp(1), Instant::now());
        // Full: the failing tracker peer makes room.
        assert!(b.add(tcp(3), PeerSource::Dht));
        assert!(b.get(&tcp(1)).is_none());
        assert_eq!(b.len(), 2);
        b.add(tcp(4), PeerSource::Cli);
        b.add(tcp(5), PeerSource::Api);
        b.add(tcp(6), PeerSource::Api);
        assert_eq!(b.pinned(), vec![tcp(4), tcp(5), tcp(6)]);
        // Only pinned ones left: a discovered peer does not push them out.
        assert!(!b.add(tcp(7), PeerSource::Dht));
    }

    #[test]
    fn user_given_addresses_are_kept_up_to_a_bound_and_a_flood_stays_bounded() {
        let mut b = PeerBook::new(DEFAULT_CAPACITY);
        for port in 0..100_000u32 {
            let a = PeerAddr::Ip(std::net::SocketAddr::from((
                [10, (port >> 16) as u8, (port >> 8) as u8, port as u8],
                1,
            )));
            b.add(a, PeerSource::Api);
        }
        for port in 0..60_000u16 {
            b.add(tcp(port), PeerSource::Tracker);
        }
        assert_eq!(b.pinned().len(), MAX_PINNED);
        assert!(b.len() <= MAX_PINNED + DEFAULT_CAPACITY, "{}", b.len());
    }

    #[test]
    fn incoming_peers_are_recorded_as_active() {
        let mut b = PeerBook::new(10);
        b.incoming(tcp(9));
        assert_eq!(b.get(&tcp(9)).unwrap().state, PeerState::Active);
        assert!(b.take_dialable(Instant::now(), 10).is_empty());
        b.released(&tcp(9));
        assert_eq!(b.take_dialable(Instant::now(), 10), vec![tcp(9)]);
    }
}
