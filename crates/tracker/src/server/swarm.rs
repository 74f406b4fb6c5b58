//! The in-memory swarms: one per info hash, sharded by hash so UDP worker threads rarely
//! contend. Peers are keyed by the address the request came from with the announced port
//! (an IP socket address as opentracker does, or a SCION address for announces that came over
//! SCION), so a peer id cannot evict someone else's entry.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use scion_addr::compact;
use scion_addr::ScionAddr;

use crate::http::ScrapeStats;
use crate::InfoHash;

const SHARDS: usize = 64;
/// Entries one host may hold in one swarm by default: enough for a few clients behind one
/// NAT, too few for one address to fill a swarm with fake peers (each announcing another port)
/// and make every answer its own.
pub const DEFAULT_MAX_PEERS_PER_HOST: usize = 8;

/// One peer of a swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub id: [u8; 20],
    /// The IP address the request came from, with the announced port; `None` for a peer that
    /// announced over SCION (its host address is only meaningful inside its AS).
    pub ip: Option<SocketAddr>,
    /// Its SCION address: the `scion` parameter of an IP announce, or where a SCION announce
    /// came from.
    pub scion: Option<ScionAddr>,
    pub seeder: bool,
    pub last_seen: Instant,
}

/// What identifies a peer within a swarm (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerKey {
    Ip(SocketAddr),
    Scion(ScionAddr),
}

/// The host behind a peer entry, for the per-host cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum HostKey {
    Ip(std::net::IpAddr),
    Scion(scion_addr::Ia, std::net::IpAddr),
}

impl Peer {
    fn host(&self) -> Option<HostKey> {
        match (self.ip, self.scion) {
            (Some(ip), _) => Some(HostKey::Ip(ip.ip())),
            (None, Some(s)) => Some(HostKey::Scion(s.ia, s.host)),
            (None, None) => None,
        }
    }

    pub fn key(&self) -> Option<PeerKey> {
        match (self.ip, self.scion) {
            (Some(ip), _) => Some(PeerKey::Ip(ip)),
            (None, Some(s)) => Some(PeerKey::Scion(s)),
            (None, None) => None,
        }
    }
}

#[derive(Default)]
struct Swarm {
    peers: Vec<Peer>,
    index: HashMap<PeerKey, usize>,
    /// Entries per host (see [`DEFAULT_MAX_PEERS_PER_HOST`]).
    per_host: HashMap<HostKey, usize>,
    seeders: u32,
    /// `completed` events seen.
    downloaded: u32,
}

impl Swarm {
    fn remove_at(&mut self, i: usize) {
        let p = self.peers.swap_remove(i);
        if let Some(k) = p.key() {
            self.index.remove(&k);
        }
        if let Some(h) = p.host() {
            if let std::collections::hash_map::Entry::Occupied(mut e) = self.per_host.entry(h) {
                *e.get_mut() -= 1;
                if *e.get() == 0 {
                    e.remove();
                }
            }
        }
        if p.seeder {
            self.seeders -= 1;
        }
        if let Some(k) = self.peers.get(i).and_then(Peer::key) {
            self.index.insert(k, i);
        }
    }

    fn stats(&self) -> ScrapeStats {
        ScrapeStats {
            complete: self.seeders,
            downloaded: self.downloaded,
            incomplete: self.peers.len() as u32 - self.seeders,
        }
    }
}

/// Which peers a requester can use and how they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// IPv4 and IPv6 peers by their IP address (an IP-only client).
    Ip,
    /// SCION peers by their SCION address, the rest by IP (a SCION-capable client).
    IpAndScion,
}

/// Output buffers for the compact lists; reused between requests.
#[derive(Debug, Default)]
pub struct CompactLists {
    pub peers: Vec<u8>,
    pub peers6: Vec<u8>,
    pub peers_scion: Vec<u8>,
    pub peers6_scion: Vec<u8>,
    /// The selected peers (for non-compact responses).
    pub selected: Vec<Peer>,
}

impl CompactLists {
    pub fn clear(&mut self) {
        self.peers.clear();
        self.peers6.clear();
        self.peers_scion.clear();
        self.peers6_scion.clear();
        self.selected.clear();
    }
}

/// What an announce did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceOutcome {
    pub stats: ScrapeStats,
    pub selected: usize,
}

/// One announce's facts as the store needs them.
#[derive(Debug, Clone, Copy)]
pub struct PeerUpdate {
    pub info_hash: InfoHash,
    pub peer: Peer,
    pub stopped: bool,
    pub completed: bool,
}

pub struct Swarms {
    shards: Vec<Mutex<HashMap<InfoHash, Swarm>>>,
    max_peers_per_swarm: usize,
    max_peers_per_host: usize,
    max_swarms_per_shard: usize,
}

impl Swarms {
    pub fn new(max_peers_per_swarm: usize, max_swarms: usize, max_peers_per_host: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            max_peers_per_swarm,
            max_peers_per_host,
            max_swarms_per_shard: max_swarms.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, h: &InfoHash) -> &Mutex<HashMap<InfoHash, Swarm>> {
        &self.shards[usize::from(h[0] ^ h[19]) % SHARDS]
    }

    /// Records the peer (or removes it on `stopped`) and selects up to `numwant` others into
    /// `out`, starting at a random place. `v6_only`/`v4_only` restrict IP peers to one family
    /// (UDP responses carry one entry size).
    pub fn announce(
        &self,
        u: &PeerUpdate,
        numwant: usize,
        wanted: Wanted,
        family: Option<bool>,
        start: usize,
        out: &mut CompactLists,
    ) -> AnnounceOutcome {
        // A peer without an address others could reach (port 0) is not recorded, but still
        // gets peers.
        let key = u.peer.key();
        let mut shard = self
            .shard(&u.info_hash)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !shard.contains_key(&u.info_hash)
            && (u.stopped || key.is_none() || shard.len() >= self.max_swarms_per_shard)
        {
            return AnnounceOutcome {
                stats: ScrapeStats::default(),
                selected: 0,
            };
        }
        let swarm = shard.entry(u.info_hash).or_default();
        match key.and_then(|k| swarm.index.get(&k).copied()) {
            Some(i) if u.stopped => swarm.remove_at(i),
            Some(i) => {
                let old = &mut swarm.peers[i];
                if old.seeder != u.peer.seeder {
                    if u.peer.seeder {
                        swarm.seeders += 1;
                    } else {
                        swarm.seeders -= 1;
                    }
                }
                *old = u.peer;
            }
            None if u.stopped || key.is_none() => {}
            None => {
                let host = u.peer.host();
                let host_full = host
                    .and_then(|h| swarm.per_host.get(&h))
                    .is_some_and(|&n| n >= self.max_peers_per_host);
                if swarm.peers.len() < self.max_peers_per_swarm && !host_full {
                    if let Some(h) = host {
                        *swarm.per_host.entry(h).or_default() += 1;
                    }
                    if let Some(k) = key {
                        swarm.index.insert(k, swarm.peers.len());
                    }
                    swarm.peers.push(u.peer);
                    if u.peer.seeder {
                        swarm.seeders += 1;
                    }
                }
            }
        }
        if u.completed {
            swarm.downloaded = swarm.downloaded.saturating_add(1);
        }
        let stats = swarm.stats();
        let mut selected = 0;
        let n = swarm.peers.len();
        if !u.stopped && n > 0 {
            let start = start % n;
            for k in 0..n {
                if selected >= numwant {
                    break;
                }
                let p = &swarm.peers[(start + k) % n];
                if (key.is_some() && p.key() == key) || (u.peer.seeder && p.seeder) {
                    continue;
                }
                if select(p, wanted, family, out) {
                    selected += 1;
                }
            }
        }
        if swarm.peers.is_empty() && swarm.downloaded == 0 {
            shard.remove(&u.info_hash);
        }
        AnnounceOutcome { stats, selected }
    }

    /// Counters for a torrent (zero if unknown).
    pub fn scrape(&self, h: &InfoHash) -> ScrapeStats {
        let shard = self.shard(h).lock().unwrap_or_else(|e| e.into_inner());
        shard.get(h).map(Swarm::stats).unwrap_or_default()
    }

    /// The peers of a torrent (tests, diagnostics).
    pub fn peers(&self, h: &InfoHash) -> Vec<Peer> {
        let shard = self.shard(h).lock().unwrap_or_else(|e| e.into_inner());
        shard.get(h).map(|s| s.peers.clone()).unwrap_or_default()
    }

    /// Drops peers not seen for `ttl`; returns how many.
    pub fn expire(&self, now: Instant, ttl: Duration) -> usize {
        let mut removed = 0;
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.retain(|_, s| {
                let mut i = 0;
                while i < s.peers.len() {
                    if now.saturating_duration_since(s.peers[i].last_seen) > ttl {
                        s.remove_at(i);
                        removed += 1;
                    } else {
                        i += 1;
                    }
                }
                !s.peers.is_empty() || s.downloaded > 0
            });
        }
        removed
    }
}

/// Writes `p` into the list it belongs to; false if the requester cannot use it.
fn select(p: &Peer, wanted: Wanted, family: Option<bool>, out: &mut CompactLists) -> bool {
    if let (Wanted::IpAndScion, Some(s)) = (wanted, &p.scion) {
        let list = if s.host.is_ipv4() {
            &mut out.peers_scion
        } else {
            &mut out.peers6_scion
        };
        compact::write_scion(s, list);
        out.selected.push(*p);
        return true;
    }
    // A SCION-only peer is of no use to an IP-only requester.
    let Some(ip) = p.ip else {
        return false;
    };
    let v6 = ip.is_ipv6();
    if family.is_some_and(|want_v6| want_v6 != v6) {
        return false;
    }
    compact::write_ip(ip, if v6 { &mut out.peers6 } else { &mut out.peers });
    out.selected.push(*p);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str, scion: Option<&str>, seeder: bool, now: Instant) -> Peer {
        Peer {
            id: [1; 20],
            ip: Some(ip.parse().unwrap()),
            scion: scion.map(|s| s.parse().unwrap()),
            seeder,
            last_seen: now,
        }
    }

    fn upd(p: Peer) -> PeerUpdate {
        PeerUpdate {
            info_hash: [9; 20],
            peer: p,
            stopped: false,
            completed: false,
        }
    }

    #[test]
    fn ip_clients_get_ip_scion_clients_get_scion() {
        let s = Swarms::new(100, 100, 100);
        let now = Instant::now();
        let mut out = CompactLists::default();
        let a = peer(
            "10.0.0.1:1",
            Some("1-ff00:0:112,[127.0.0.1]:43000"),
            true,
            now,
        );
        let b = peer("[::1]:2", None, false, now);
        s.announce(&upd(a), 50, Wanted::IpAndScion, None, 0, &mut out);
        s.announce(&upd(b), 50, Wanted::Ip, None, 0, &mut out);
        // b (IP-only) sees a by its IP address.
        assert_eq!(out.peers.len(), 6);
        assert!(out.peers_scion.is_empty());
        // A SCION-capable leecher sees a under peers_scion and b in peers6.
        out.clear();
        let c = peer("10.0.0.3:3", Some("1-ff00:0:113,[127.0.0.1]:1"), false, now);
        let o = s.announce(&upd(c), 50, Wanted::IpAndScion, None, 0, &mut out);
        assert_eq!(
            (out.peers_scion.len(), out.peers6.len(), out.peers.len()),
            (14, 18, 0)
        );
        assert_eq!(
            o.stats,
            ScrapeStats {
                complete: 1,
                downloaded: 0,
                incomplete: 2
            }
        );
        // UDP over IPv4: only IPv4 entries.
        out.clear();
        let d = peer("10.0.0.4:4", None, false, now);
        s.announce(&upd(d), 50, Wanted::Ip, Some(false), 0, &mut out);
        assert_eq!((out.peers.len(), out.peers6.len()), (12, 0));
    }

    #[test]
    fn stop_expiry_and_caps() {
        let s = Swarms::new(2, 100, 100);
        let t0 = Instant::now();
        let mut out = CompactLists::default();
        for i in 1..=3 {
            s.announce(
                &upd(peer(&format!("10.0.0.{i}:1"), None, false, t0)),
                50,
                Wanted::Ip,
                None,
                0,
                &mut out,
            );
        }
        assert_eq!(s.peers(&[9; 20]).len(), 2, "capped at 2 peers");
        let mut stop = upd(peer("10.0.0.1:1", None, false, t0));
        stop.stopped = true;
        s.announce(&stop, 50, Wanted::Ip, None, 0, &mut out);
        assert_eq!(s.peers(&[9; 20]).len(), 1);
        assert_eq!(
            s.expire(t0 + Duration::from_secs(10), Duration::from_secs(5)),
            1
        );
        assert!(s.peers(&[9; 20]).is_empty());
        assert_eq!(s.scrape(&[9; 20]), ScrapeStats::default());
    }

    #[test]
    fn scion_only_peers_are_keyed_by_scion_address_and_hidden_from_ip_clients() {
        let s = Swarms::new(100, 100, 100);
        let now = Instant::now();
        let mut out = CompactLists::default();
        let scion_peer = |addr: &str| Peer {
            id: [2; 20],
            ip: None,
            scion: Some(addr.parse().unwrap()),
            seeder: false,
            last_seen: now,
        };
        // Same host and port in two ASes: two peers, not one entry overwritten.
        s.announce(
            &upd(scion_peer("1-ff00:0:111,[127.0.0.1]:9")),
            50,
            Wanted::IpAndScion,
            None,
            0,
            &mut out,
        );
        s.announce(
            &upd(scion_peer("1-ff00:0:112,[127.0.0.1]:9")),
            50,
            Wanted::IpAndScion,
            None,
            0,
            &mut out,
        );
        assert_eq!(s.peers(&[9; 20]).len(), 2);
        out.clear();
        let o = s.announce(
            &upd(peer("10.0.0.1:1", None, false, now)),
            50,
            Wanted::Ip,
            None,
            0,
            &mut out,
        );
        assert_eq!(
            (o.selected, out.peers.len()),
            (0, 0),
            "an IP client cannot use SCION-only peers"
        );
        out.clear();
        let o = s.announce(
            &upd(scion_peer("1-ff00:0:113,[127.0.0.1]:9")),
            50,
            Wanted::IpAndScion,
            None,
            0,
            &mut out,
        );
        assert_eq!(o.selected, 3);
        assert_eq!((out.peers_scion.len(), out.peers.len()), (28, 6));
        // Stopping removes exactly that peer.
        let mut stop = upd(scion_peer("1-ff00:0:111,[127.0.0.1]:9"));
        stop.stopped = true;
        s.announce(&stop, 50, Wanted::IpAndScion, None, 0, &mut out);
        let left: Vec<_> = s
            .peers(&[9; 20])
            .iter()
            .filter_map(|p| p.scion)
            .map(|a| a.ia.to_string())
            .collect();
        assert!(
            !left.contains(&"1-ff00:0:111".to_string()) && left.len() == 2,
            "{left:?}"
        );
    }
}
