//! Peers announced to us, per info hash, with expiry and hard caps on both dimensions.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::addr::{DhtAddr, Family};
use crate::id::InfoHash;

/// How long an announce is remembered (announcers re-announce well within this).
pub const PEER_TTL: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Clone)]
pub struct PeerStore<A> {
    map: HashMap<InfoHash, Vec<(A, Instant)>>,
    max_hashes: usize,
    max_peers_per_hash: usize,
}

impl<A: DhtAddr> PeerStore<A> {
    pub fn new(max_hashes: usize, max_peers_per_hash: usize) -> Self {
        PeerStore {
            map: HashMap::new(),
            max_hashes,
            max_peers_per_hash,
        }
    }

    /// Records `peer` for `hash`. When full, the oldest announce of that hash (or, for a new
    /// hash, the hash whose newest announce is oldest) makes room.
    pub fn add(&mut self, hash: InfoHash, peer: A, now: Instant) {
        let expires = now + PEER_TTL;
        if !self.map.contains_key(&hash) && self.map.len() >= self.max_hashes {
            self.expire(now);
            if self.map.len() >= self.max_hashes {
                let stalest = self
                    .map
                    .iter()
                    .min_by_key(|(_, peers)| peers.iter().map(|p| p.1).max())
                    .map(|(h, _)| *h);
                if let Some(h) = stalest {
                    self.map.remove(&h);
                }
            }
        }
        let peers = self.map.entry(hash).or_default();
        if let Some(p) = peers.iter_mut().find(|p| p.0 == peer) {
            p.1 = expires;
            return;
        }
        if peers.len() >= self.max_peers_per_hash {
            if let Some(oldest) = peers.iter().enumerate().min_by_key(|p| p.1 .1).map(|p| p.0) {
                peers.swap_remove(oldest);
            }
        }
        peers.push((peer, expires));
    }

    /// Up to `max` live peers of `hash` in `family`.
    pub fn get(&self, hash: &InfoHash, family: Family, max: usize, now: Instant) -> Vec<A> {
        self.map
            .get(hash)
            .map(|peers| {
                peers
                    .iter()
                    .filter(|(a, exp)| *exp > now && a.family() == family)
                    .take(max)
                    .map(|(a, _)| *a)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Drops expired announces and empty hashes.
    pub fn expire(&mut self, now: Instant) {
        self.map.retain(|_, peers| {
            peers.retain(|(_, exp)| *exp > now);
            !peers.is_empty()
        });
    }

    /// (info hashes, peers) stored.
    pub fn size(&self) -> (usize, usize) {
        (self.map.len(), self.map.values().map(Vec::len).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;
    use std::net::SocketAddr;

    fn peer(i: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], i))
    }

    #[test]
    fn caps_expiry_and_refresh() {
        let now = Instant::now();
        let mut s = PeerStore::new(2, 3);
        for i in 1..=5 {
            s.add(
                Id([1; 20]),
                peer(i),
                now + Duration::from_secs(u64::from(i)),
            );
        }
        assert_eq!(s.size(), (1, 3));
        let got = s.get(&Id([1; 20]), Family::V4, 10, now);
        assert!(got.contains(&peer(5)) && !got.contains(&peer(1)));
        assert!(s.get(&Id([1; 20]), Family::V6, 10, now).is_empty());
        s.add(Id([2; 20]), peer(1), now);
        s.add(Id([3; 20]), peer(1), now + Duration::from_secs(10));
        assert_eq!(s.size().0, 2);
        assert!(
            s.get(&Id([2; 20]), Family::V4, 10, now).is_empty(),
            "stalest hash evicted"
        );
        s.expire(now + PEER_TTL + Duration::from_secs(11));
        assert_eq!(s.size(), (0, 0));
    }
}
