//! Per-connection PEX bookkeeping: what we told the peer, when we may tell it more, and how
//! much of what it tells us we take.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use scion_addr::PeerAddr;

use super::{PexFlags, PexMessage};

/// BEP 11: at most one message per minute.
pub const SEND_INTERVAL: Duration = Duration::from_secs(60);
/// BEP 11: at most 50 added and 50 dropped peers per message.
pub const MAX_PEERS_PER_MESSAGE: usize = 50;
/// Messages arriving sooner than this after the last accepted one are ignored (a flood).
/// Shorter than [`SEND_INTERVAL`] to allow for the sender's timer jitter.
pub const MIN_RECEIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Added peers taken from one received message (libtorrent sends up to 100); the rest is
/// ignored.
pub const MAX_RECEIVED_PER_MESSAGE: usize = 100;

/// What a received PEX message yields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// New peers for the peer book.
    pub added: Vec<(PeerAddr, PexFlags)>,
    /// Peers the sender is no longer connected to (a hint, not a reason to forget them).
    pub dropped: Vec<PeerAddr>,
    /// The message came too soon and was ignored entirely.
    pub rate_limited: bool,
    /// Entries beyond the caps that were ignored.
    pub truncated: usize,
}

/// PEX state of one connection.
#[derive(Debug, Clone, Default)]
pub struct PexState {
    /// Peers we announced as added and not yet as dropped.
    told: BTreeSet<PeerAddr>,
    last_sent: Option<Instant>,
    last_received: Option<Instant>,
}

impl PexState {
    pub fn new() -> Self {
        Self::default()
    }

    /// The earliest time [`Self::poll_message`] may return a message.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.last_sent.map(|t| t + SEND_INTERVAL)
    }

    /// The next message for this peer, if one is due and something changed. `connected` is
    /// the swarm we are connected to (listen addresses, with flags); `this_peer` is the
    /// receiver's own address, never sent back to it.
    pub fn poll_message(
        &mut self,
        now: Instant,
        connected: &BTreeMap<PeerAddr, PexFlags>,
        this_peer: Option<&PeerAddr>,
    ) -> Option<PexMessage> {
        if self.poll_timeout().is_some_and(|t| now < t) {
            return None;
        }
        let added: Vec<(PeerAddr, PexFlags)> = connected
            .iter()
            .filter(|(a, _)| Some(*a) != this_peer && !self.told.contains(*a))
            .take(MAX_PEERS_PER_MESSAGE)
            .map(|(a, f)| (*a, *f))
            .collect();
        let dropped: Vec<PeerAddr> = self
            .told
            .iter()
            .filter(|a| !connected.contains_key(*a))
            .take(MAX_PEERS_PER_MESSAGE)
            .copied()
            .collect();
        let msg = PexMessage { added, dropped };
        if msg.is_empty() {
            return None;
        }
        for (a, _) in &msg.added {
            self.told.insert(*a);
        }
        for a in &msg.dropped {
            self.told.remove(a);
        }
        self.last_sent = Some(now);
        Some(msg)
    }

    /// A message from this peer: rate-limited and capped.
    pub fn on_message(&mut self, now: Instant, msg: PexMessage) -> Received {
        if self
            .last_received
            .is_some_and(|t| now.saturating_duration_since(t) < MIN_RECEIVE_INTERVAL)
        {
            return Received {
                rate_limited: true,
                truncated: msg.added.len() + msg.dropped.len(),
                ..Received::default()
            };
        }
        self.last_received = Some(now);
        let truncated = msg.added.len().saturating_sub(MAX_RECEIVED_PER_MESSAGE)
            + msg.dropped.len().saturating_sub(MAX_RECEIVED_PER_MESSAGE);
        let mut added = msg.added;
        added.truncate(MAX_RECEIVED_PER_MESSAGE);
        let mut dropped = msg.dropped;
        dropped.truncate(MAX_RECEIVED_PER_MESSAGE);
        Received {
            added,
            dropped,
            rate_limited: false,
            truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(range: std::ops::Range<u16>) -> BTreeMap<PeerAddr, PexFlags> {
        range
            .map(|i| (PeerAddr::Ip(([10, 0, 0, 1], i).into()), PexFlags(0)))
            .collect()
    }

    #[test]
    fn diffs_once_a_minute_in_batches_of_fifty() {
        let t0 = Instant::now();
        let mut s = PexState::new();
        let mut swarm = peers(1..121);
        let me = PeerAddr::Ip(([10, 0, 0, 1], 1).into());
        let m = s.poll_message(t0, &swarm, Some(&me)).unwrap();
        assert_eq!(m.added.len(), 50);
        assert!(m.added.iter().all(|(a, _)| *a != me));
        assert_eq!(s.poll_timeout(), Some(t0 + SEND_INTERVAL));
        assert!(s
            .poll_message(t0 + Duration::from_secs(59), &swarm, Some(&me))
            .is_none());
        let t1 = t0 + SEND_INTERVAL;
        let m = s.poll_message(t1, &swarm, Some(&me)).unwrap();
        assert_eq!(m.added.len(), 50);
        // 19 left to add; 60 of the told ones leave the swarm.
        swarm.retain(|a, _| a.port() > 60);
        let t2 = t1 + SEND_INTERVAL;
        let m = s.poll_message(t2, &swarm, Some(&me)).unwrap();
        assert_eq!((m.added.len(), m.dropped.len()), (19, 50));
        let m = s
            .poll_message(t2 + SEND_INTERVAL, &swarm, Some(&me))
            .unwrap();
        assert_eq!((m.added.len(), m.dropped.len()), (0, 9));
        assert!(s
            .poll_message(t2 + 2 * SEND_INTERVAL, &swarm, Some(&me))
            .is_none());
    }

    #[test]
    fn receiving_is_rate_limited_and_capped() {
        let t0 = Instant::now();
        let mut s = PexState::new();
        let flood = PexMessage {
            added: peers(1..301).into_iter().collect(),
            dropped: peers(1..3).into_keys().collect(),
        };
        let r = s.on_message(t0, flood.clone());
        assert_eq!((r.added.len(), r.dropped.len(), r.truncated), (100, 2, 200));
        assert!(!r.rate_limited);
        let r = s.on_message(t0 + Duration::from_secs(5), flood.clone());
        assert!(r.rate_limited && r.added.is_empty());
        let r = s.on_message(t0 + MIN_RECEIVE_INTERVAL, flood);
        assert!(!r.rate_limited);
    }
}
