//! When each torrent is announced on the local network, and which heard peers are new: no
//! I/O, the caller passes the time.
//!
//! A torrent is announced when it starts looking for peers, twice more 2 s and 4 s later (a
//! datagram can be lost, and a peer that just joined the group hears the repeat — what
//! libtorrent does), then every [`INTERVAL`]. Datagrams go out at most [`BURST`] per
//! [`PACE`], so a daemon with thousands of torrents does not flood the LAN.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// BEP 14: "announce ... every 5 minutes".
pub const INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Gaps before the repeats of a first announce.
const REPEATS: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(4)];
/// At most this many announces per [`PACE`].
pub const BURST: usize = 10;
pub const PACE: Duration = Duration::from_secs(1);
/// A peer heard again within this time is not handed to the client again.
const HEARD_AGAIN: Duration = Duration::from_secs(60);
/// Peers remembered for [`HEARD_AGAIN`]; past it, the oldest are forgotten.
const HEARD_MAX: usize = 4096;

type InfoHash = [u8; 20];

#[derive(Debug)]
struct Due {
    at: Instant,
    /// Announces sent so far.
    sent: usize,
}

/// Which torrents to announce, and when.
#[derive(Debug, Default)]
pub struct Schedule {
    torrents: HashMap<InfoHash, Due>,
    /// When the current burst started and how much of it is used.
    burst: Option<(Instant, usize)>,
}

impl Schedule {
    /// Brings the set of announced torrents up to date: new ones are due now, torrents no
    /// longer looking for peers are forgotten (and announced afresh if they come back).
    pub fn track(&mut self, wanted: &HashSet<InfoHash>, now: Instant) {
        self.torrents.retain(|ih, _| wanted.contains(ih));
        for ih in wanted {
            self.torrents.entry(*ih).or_insert(Due { at: now, sent: 0 });
        }
    }

    /// The torrents to announce now (oldest due first, at most what the pace allows); each is
    /// rescheduled as sent.
    pub fn take_due(&mut self, now: Instant) -> Vec<InfoHash> {
        let room = match self.burst {
            Some((start, used)) if now < start + PACE => BURST - used,
            _ => BURST,
        };
        let mut due: Vec<(Instant, InfoHash)> = self
            .torrents
            .iter()
            .filter(|(_, d)| d.at <= now)
            .map(|(ih, d)| (d.at, *ih))
            .collect();
        due.sort();
        due.truncate(room);
        for (_, ih) in &due {
            if let Some(d) = self.torrents.get_mut(ih) {
                d.at = now + REPEATS.get(d.sent).copied().unwrap_or(INTERVAL);
                d.sent += 1;
            }
        }
        if !due.is_empty() {
            self.burst = match self.burst {
                Some((start, used)) if now < start + PACE => Some((start, used + due.len())),
                _ => Some((now, due.len())),
            };
        }
        due.into_iter().map(|(_, ih)| ih).collect()
    }

    /// When [`take_due`](Self::take_due) next has something to return.
    pub fn next_deadline(&self) -> Option<Instant> {
        let earliest = self.torrents.values().map(|d| d.at).min()?;
        match self.burst {
            Some((start, used)) if used >= BURST => Some(earliest.max(start + PACE)),
            _ => Some(earliest),
        }
    }
}

/// Remembers which (torrent, peer) pairs were handed to the client lately, so a peer that
/// announces every few seconds (or a LAN host flooding us) costs one command a minute.
#[derive(Debug, Default)]
pub struct Heard {
    last: HashMap<(InfoHash, SocketAddr), Instant>,
}

impl Heard {
    /// Whether this peer is news for this torrent; records it.
    pub fn is_new(&mut self, ih: InfoHash, peer: SocketAddr, now: Instant) -> bool {
        if let Some(t) = self.last.get(&(ih, peer)) {
            if now.saturating_duration_since(*t) < HEARD_AGAIN {
                return false;
            }
        }
        if self.last.len() >= HEARD_MAX {
            self.last
                .retain(|_, t| now.saturating_duration_since(*t) < HEARD_AGAIN);
            if self.last.len() >= HEARD_MAX {
                if let Some(oldest) = self.last.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k) {
                    self.last.remove(&oldest);
                }
            }
        }
        self.last.insert((ih, peer), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ih(n: u8) -> InfoHash {
        [n; 20]
    }

    fn set(hashes: &[InfoHash]) -> HashSet<InfoHash> {
        hashes.iter().copied().collect()
    }

    #[test]
    fn a_new_torrent_is_announced_now_then_repeated_then_every_interval() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.track(&set(&[ih(1)]), t0);
        assert_eq!(s.next_deadline(), Some(t0));
        assert_eq!(s.take_due(t0), vec![ih(1)]);
        assert!(s.take_due(t0).is_empty());
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(s.next_deadline(), Some(t1));
        assert_eq!(s.take_due(t1), vec![ih(1)]);
        let t2 = t1 + Duration::from_secs(4);
        assert!(s.take_due(t2 - Duration::from_millis(1)).is_empty());
        assert_eq!(s.take_due(t2), vec![ih(1)]);
        assert_eq!(s.next_deadline(), Some(t2 + INTERVAL));
        assert_eq!(s.take_due(t2 + INTERVAL), vec![ih(1)]);
    }

    #[test]
    fn a_torrent_that_leaves_is_forgotten_and_announced_afresh_on_return() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.track(&set(&[ih(1), ih(2)]), t0);
        assert_eq!(s.take_due(t0).len(), 2);
        s.track(&set(&[ih(2)]), t0);
        s.track(&set(&[ih(1), ih(2)]), t0 + Duration::from_millis(10));
        assert_eq!(s.take_due(t0 + Duration::from_millis(10)), vec![ih(1)]);
        s.track(&set(&[]), t0);
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn announces_are_paced() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        let many: HashSet<InfoHash> = (0..25).map(ih).collect();
        s.track(&many, t0);
        assert_eq!(s.take_due(t0).len(), BURST);
        assert!(s.take_due(t0 + Duration::from_millis(500)).is_empty());
        assert_eq!(s.next_deadline(), Some(t0 + PACE));
        assert_eq!(s.take_due(t0 + PACE).len(), BURST);
        // The last 5 firsts go before the repeats that fall due at the same time.
        assert_eq!(s.take_due(t0 + PACE * 2).len(), BURST);
        assert!(s.torrents.values().all(|d| d.sent >= 1));
        assert_eq!(s.torrents.values().filter(|d| d.sent == 2).count(), 5);
    }

    #[test]
    fn a_peer_is_news_once_a_minute() {
        let t0 = Instant::now();
        let mut h = Heard::default();
        let p: SocketAddr = "10.0.0.2:6881".parse().unwrap();
        assert!(h.is_new(ih(1), p, t0));
        assert!(!h.is_new(ih(1), p, t0 + Duration::from_secs(30)));
        assert!(h.is_new(ih(2), p, t0 + Duration::from_secs(30)));
        assert!(h.is_new(ih(1), p, t0 + HEARD_AGAIN));
    }

    #[test]
    fn a_flood_of_peers_stays_bounded() {
        let t0 = Instant::now();
        let mut h = Heard::default();
        for i in 0..(HEARD_MAX as u32 + 100) {
            let p = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1000 + (i % 7) as u16));
            assert!(h.is_new(ih((i % 3) as u8), p, t0));
        }
        assert!(h.last.len() <= HEARD_MAX);
    }
}
