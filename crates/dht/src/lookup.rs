//! One iterative Kademlia lookup (find_node / get_peers, then announce_peer): a bounded
//! candidate list sorted by distance to the target, at most `alpha` queries in flight, done when
//! the `k` closest live candidates have all answered.

use std::collections::HashSet;
use std::time::Instant;

use crate::id::Id;

/// Candidates kept per lookup (the closest; farther ones are dropped).
pub const MAX_CANDIDATES: usize = 64;
/// Distinct peers remembered per lookup (to report each once).
pub const MAX_PEERS_SEEN: usize = 2048;

/// Identifies a lookup in events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(pub u64);

/// What a lookup is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKind {
    /// find_node towards the target.
    FindNode,
    /// get_peers for the info hash.
    GetPeers,
    /// get_peers, then announce_peer to the closest nodes that gave us a token. With
    /// `implied_port`, receivers take the port the announce came from (our DHT port).
    Announce { port: u16, implied_port: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    New,
    InFlight,
    Responded,
    Failed,
}

#[derive(Debug, Clone)]
struct Candidate<A> {
    /// Unknown for bootstrap addresses until they answer.
    id: Option<Id>,
    distance: Id,
    addr: A,
    state: State,
    token: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Searching,
    Announcing { in_flight: usize },
}

#[derive(Debug)]
pub struct Lookup<A> {
    pub target: Id,
    pub kind: LookupKind,
    /// Started by the engine itself (bucket refresh): no events.
    pub internal: bool,
    /// A bootstrap lookup (reported as `Bootstrapped`).
    pub bootstrap: bool,
    /// Seeded from the configured bootstrap nodes.
    pub from_config: bool,
    pub started: Instant,
    pub phase: Phase,
    pub responded: usize,
    pub announced_to: Vec<A>,
    pub peers_found: usize,
    candidates: Vec<Candidate<A>>,
    peers_seen: HashSet<A>,
}

impl<A: Copy + Eq + std::hash::Hash> Lookup<A> {
    pub fn new(target: Id, kind: LookupKind, started: Instant) -> Self {
        Lookup {
            target,
            kind,
            internal: false,
            bootstrap: false,
            from_config: false,
            started,
            phase: Phase::Searching,
            responded: 0,
            announced_to: Vec::new(),
            peers_found: 0,
            candidates: Vec::new(),
            peers_seen: HashSet::new(),
        }
    }

    pub fn candidate_count(&self) -> usize {
        self.candidates.len()
    }

    /// Adds a node to ask (ignored if its address or id is already a candidate).
    pub fn add(&mut self, id: Option<Id>, addr: A) {
        if self
            .candidates
            .iter()
            .any(|c| c.addr == addr || (id.is_some() && c.id == id))
        {
            return;
        }
        let distance = id.map_or(Id::ZERO, |id| id.distance(&self.target));
        let pos = self.candidates.partition_point(|c| c.distance <= distance);
        if pos >= MAX_CANDIDATES {
            return;
        }
        self.candidates.insert(
            pos,
            Candidate {
                id,
                distance,
                addr,
                state: State::New,
                token: None,
            },
        );
        if self.candidates.len() > MAX_CANDIDATES {
            // Drop the farthest one we are not waiting on.
            if let Some(i) = self
                .candidates
                .iter()
                .rposition(|c| matches!(c.state, State::New | State::Failed))
            {
                self.candidates.remove(i);
            } else {
                self.candidates.truncate(MAX_CANDIDATES);
            }
        }
    }

    fn closest_live(&mut self, k: usize) -> impl Iterator<Item = &mut Candidate<A>> {
        self.candidates
            .iter_mut()
            .filter(|c| c.state != State::Failed)
            .take(k)
    }

    /// Up to `budget` new candidates among the `k` closest live ones, marked in flight.
    pub fn next_queries(&mut self, alpha: usize, k: usize, budget: usize) -> Vec<A> {
        let in_flight = self
            .candidates
            .iter()
            .filter(|c| c.state == State::InFlight)
            .count();
        let n = alpha.saturating_sub(in_flight).min(budget);
        let mut out = Vec::new();
        for c in self.closest_live(k) {
            if out.len() >= n {
                break;
            }
            if c.state == State::New {
                c.state = State::InFlight;
                out.push(c.addr);
            }
        }
        out
    }

    /// Whether nothing among the `k` closest live candidates is left to ask or waited on.
    pub fn search_done(&mut self, k: usize) -> bool {
        self.closest_live(k).all(|c| c.state == State::Responded)
    }

    /// `addr` answered with its id (and a token for get_peers).
    pub fn responded(&mut self, addr: &A, id: Id, token: Option<Vec<u8>>) {
        let Some(i) = self
            .candidates
            .iter()
            .position(|c| c.addr == *addr && c.state == State::InFlight)
        else {
            return;
        };
        self.responded += 1;
        let mut c = self.candidates.remove(i);
        c.state = State::Responded;
        c.token = token;
        c.id = Some(id);
        c.distance = id.distance(&self.target);
        // Another candidate may already carry this id (a node listed under two addresses).
        if self
            .candidates
            .iter()
            .any(|o| o.id == Some(id) && o.state == State::Responded)
        {
            return;
        }
        self.candidates.retain(|o| o.id != Some(id));
        let pos = self
            .candidates
            .partition_point(|o| o.distance <= c.distance);
        self.candidates.insert(pos, c);
    }

    /// `addr` did not answer (or answered with an error).
    pub fn failed(&mut self, addr: &A) {
        if let Some(c) = self
            .candidates
            .iter_mut()
            .find(|c| c.addr == *addr && c.state == State::InFlight)
        {
            c.state = State::Failed;
        }
    }

    /// The `k` closest responders that gave a token (announce_peer targets).
    pub fn announce_targets(&self, k: usize) -> Vec<(A, Vec<u8>)> {
        self.candidates
            .iter()
            .filter(|c| c.state != State::Failed)
            .take(k)
            .filter_map(|c| c.token.clone().map(|t| (c.addr, t)))
            .collect()
    }

    /// The peers in `values` not reported before.
    pub fn new_peers(&mut self, values: impl IntoIterator<Item = A>) -> Vec<A> {
        let mut out = Vec::new();
        for p in values {
            if self.peers_seen.len() >= MAX_PEERS_SEEN {
                break;
            }
            if self.peers_seen.insert(p) {
                out.push(p);
            }
        }
        self.peers_found += out.len();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> Id {
        let mut x = [0u8; 20];
        x[0] = b;
        Id(x)
    }

    #[test]
    fn queries_closest_first_and_finishes() {
        let now = Instant::now();
        let mut l = Lookup::new(Id::ZERO, LookupKind::GetPeers, now);
        for i in 1..=20u8 {
            l.add(Some(id(i)), u16::from(i));
        }
        assert_eq!(l.next_queries(3, 8, 100), vec![1, 2, 3]);
        assert!(l.next_queries(3, 8, 100).is_empty(), "alpha in flight");
        l.responded(&1, id(1), Some(b"tok".to_vec()));
        l.failed(&2);
        assert_eq!(l.next_queries(3, 8, 100), vec![4, 5]);
        // A closer node shows up.
        l.add(Some(Id([0; 20])), 99);
        for a in [3, 4, 5] {
            l.responded(&a, id(a as u8), None);
        }
        assert!(!l.search_done(8));
        let mut rounds = 0;
        while !l.search_done(8) {
            for a in l.next_queries(3, 8, 100) {
                let i = if a == 99 { Id::ZERO } else { id(a as u8) };
                l.responded(&a, i, Some(vec![a as u8]));
            }
            rounds += 1;
            assert!(rounds < 10);
        }
        let targets = l.announce_targets(8);
        assert_eq!(
            targets.len(),
            5,
            "of the 8 closest live, 3..5 gave no token"
        );
        assert_eq!(targets[0].0, 99);
    }

    #[test]
    fn bounded_candidates_and_peers() {
        let now = Instant::now();
        let mut l = Lookup::new(Id::ZERO, LookupKind::FindNode, now);
        for i in 0..1000u32 {
            let mut x = [0xffu8; 20];
            x[..4].copy_from_slice(&i.to_be_bytes());
            l.add(Some(Id(x)), i);
        }
        assert_eq!(l.candidate_count(), MAX_CANDIDATES);
        assert_eq!(l.next_queries(3, 8, 100), vec![0, 1, 2]);
        assert_eq!(l.new_peers([1u32, 2, 2, 3]).len(), 3);
        assert!(l.new_peers([1u32]).is_empty());
        assert_eq!(l.new_peers(0..10_000u32).len(), MAX_PEERS_SEEN - 3);
    }
}
