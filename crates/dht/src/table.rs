//! The Kademlia routing table of BEP 5: k-buckets over the 160-bit id space that split when the
//! bucket holding our own id fills, node states (good / questionable / bad), a replacement cache
//! per bucket, and the buckets due for a refresh.
//!
//! Only nodes that answered one of our queries enter a bucket, so addresses handed to us in
//! `nodes` lists (which anyone can make up) never displace live nodes.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::id::Id;

/// Nodes per bucket.
pub const K: usize = 8;
/// A node that has not been heard from for this long is questionable (BEP 5).
pub const GOOD_FOR: Duration = Duration::from_secs(15 * 60);
/// A bucket unchanged for this long is refreshed (BEP 5).
pub const REFRESH_AFTER: Duration = Duration::from_secs(15 * 60);
/// Failed queries in a row after which a node is bad.
pub const MAX_FAILURES: u8 = 2;

/// What we know about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node<A> {
    pub id: Id,
    pub addr: A,
    /// Last time it answered a query of ours or sent us one (after having answered before).
    pub last_seen: Instant,
    /// Queries in a row it failed to answer.
    pub failures: u8,
}

/// BEP 5 node states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Good,
    Questionable,
    Bad,
}

impl<A> Node<A> {
    pub fn state(&self, now: Instant) -> NodeState {
        if self.failures >= MAX_FAILURES {
            NodeState::Bad
        } else if now.saturating_duration_since(self.last_seen) < GOOD_FOR {
            NodeState::Good
        } else {
            NodeState::Questionable
        }
    }
}

#[derive(Debug, Clone)]
struct Bucket<A> {
    nodes: Vec<Node<A>>,
    /// Verified nodes waiting for a slot, most recent last.
    replacements: Vec<Node<A>>,
    last_changed: Instant,
}

impl<A> Bucket<A> {
    fn new(now: Instant) -> Self {
        Bucket {
            nodes: Vec::with_capacity(K),
            replacements: Vec::new(),
            last_changed: now,
        }
    }
}

/// What happened to a node that answered us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted<A> {
    /// Known or newly added.
    InTable,
    /// The bucket is full of live-looking nodes: the newcomer waits in the replacement cache;
    /// the caller should ping these questionable nodes so dead ones make room.
    Cached { ping: Vec<A> },
    /// Not taken (our own id, or the id is already known at another address).
    Rejected,
}

/// A routing table for one address family.
#[derive(Debug, Clone)]
pub struct Table<A> {
    own: Id,
    buckets: Vec<Bucket<A>>,
}

impl<A: Copy + Eq> Table<A> {
    pub fn new(own: Id, now: Instant) -> Self {
        Table {
            own,
            buckets: vec![Bucket::new(now)],
        }
    }

    /// Number of nodes in buckets.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.nodes.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of buckets (grows by splitting).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    fn index(&self, id: &Id) -> usize {
        self.own.common_prefix_len(id).min(self.buckets.len() - 1)
    }

    /// The node with this id, if in a bucket.
    pub fn get(&self, id: &Id) -> Option<&Node<A>> {
        self.buckets[self.index(id)]
            .nodes
            .iter()
            .find(|n| n.id == *id)
    }

    fn contains_addr(&self, addr: &A) -> bool {
        self.buckets
            .iter()
            .flat_map(|b| &b.nodes)
            .any(|n| n.addr == *addr)
    }

    /// Whether a node with this id would get a bucket slot now (used to decide whether a node
    /// that queried us is worth a verifying ping).
    pub fn has_room_for(&self, id: &Id, now: Instant) -> bool {
        if *id == self.own || self.get(id).is_some() {
            return false;
        }
        let i = self.index(id);
        let b = &self.buckets[i];
        b.nodes.len() < K
            || self.can_split(i)
            || b.nodes.iter().any(|n| n.state(now) != NodeState::Good)
    }

    fn can_split(&self, i: usize) -> bool {
        i == self.buckets.len() - 1 && self.buckets.len() < 160
    }

    /// A node sent us a query: refresh it if we already know it at that address.
    pub fn heard_query(&mut self, id: &Id, addr: &A, now: Instant) {
        let i = self.index(id);
        if let Some(n) = self.buckets[i]
            .nodes
            .iter_mut()
            .find(|n| n.id == *id && n.addr == *addr)
        {
            n.last_seen = now;
        }
    }

    /// A node answered one of our queries.
    pub fn heard_response(&mut self, id: Id, addr: A, now: Instant) -> Inserted<A> {
        if id == self.own {
            return Inserted::Rejected;
        }
        loop {
            let i = self.index(&id);
            let can_split = self.can_split(i);
            let b = &mut self.buckets[i];
            if let Some(n) = b.nodes.iter_mut().find(|n| n.id == id) {
                if n.addr != addr {
                    return Inserted::Rejected;
                }
                n.last_seen = now;
                n.failures = 0;
                return Inserted::InTable;
            }
            let fresh = Node {
                id,
                addr,
                last_seen: now,
                failures: 0,
            };
            if b.nodes.len() < K {
                if self.contains_addr(&addr) {
                    return Inserted::Rejected;
                }
                let b = &mut self.buckets[i];
                b.replacements.retain(|r| r.id != id);
                b.nodes.push(fresh);
                b.last_changed = now;
                return Inserted::InTable;
            }
            if let Some(bad) = b.nodes.iter().position(|n| n.state(now) == NodeState::Bad) {
                b.nodes[bad] = fresh;
                b.last_changed = now;
                return Inserted::InTable;
            }
            if can_split {
                self.split(now);
                continue;
            }
            b.replacements.retain(|r| r.id != id && r.addr != addr);
            if b.replacements.len() >= K {
                b.replacements.remove(0);
            }
            b.replacements.push(fresh);
            let ping = b
                .nodes
                .iter()
                .filter(|n| n.state(now) == NodeState::Questionable)
                .map(|n| n.addr)
                .collect();
            return Inserted::Cached { ping };
        }
    }

    /// Splits the last bucket: nodes sharing one more bit with us move to a new last bucket.
    fn split(&mut self, now: Instant) {
        let depth = self.buckets.len() - 1;
        let own = self.own;
        let last = &mut self.buckets[depth];
        let (near, far): (Vec<_>, Vec<_>) = last
            .nodes
            .drain(..)
            .partition(|n| own.common_prefix_len(&n.id) > depth);
        let (near_r, far_r): (Vec<_>, Vec<_>) = last
            .replacements
            .drain(..)
            .partition(|n| own.common_prefix_len(&n.id) > depth);
        last.nodes = far;
        last.replacements = far_r;
        let mut next = Bucket::new(now);
        next.nodes = near;
        next.replacements = near_r;
        self.buckets.push(next);
    }

    /// A query to `addr` went unanswered. A node that turns bad is swapped for the freshest
    /// replacement, if any.
    pub fn failed(&mut self, addr: &A, now: Instant) {
        for b in &mut self.buckets {
            if let Some(pos) = b.nodes.iter().position(|n| n.addr == *addr) {
                let n = &mut b.nodes[pos];
                n.failures = n.failures.saturating_add(1);
                if n.state(now) == NodeState::Bad {
                    if let Some(r) = b.replacements.pop() {
                        b.nodes[pos] = r;
                        b.last_changed = now;
                    }
                }
                return;
            }
        }
    }

    /// Up to `n` non-bad nodes closest to `target`.
    pub fn closest(&self, target: &Id, n: usize, now: Instant) -> Vec<(Id, A)> {
        let mut all: Vec<(Id, A)> = self
            .buckets
            .iter()
            .flat_map(|b| &b.nodes)
            .filter(|node| node.state(now) != NodeState::Bad)
            .map(|node| (node.id, node.addr))
            .collect();
        all.sort_by_key(|(id, _)| id.distance(target));
        all.truncate(n);
        all
    }

    /// All nodes in buckets (for saving).
    pub fn nodes(&self) -> impl Iterator<Item = &Node<A>> {
        self.buckets.iter().flat_map(|b| &b.nodes)
    }

    /// Random targets inside each bucket that has not changed for [`REFRESH_AFTER`]; marks
    /// those buckets changed so they are not refreshed again right away.
    pub fn due_refreshes(&mut self, now: Instant, rng: &mut impl Rng) -> Vec<Id> {
        let last = self.buckets.len() - 1;
        let own = self.own;
        let mut out = Vec::new();
        for (i, b) in self.buckets.iter_mut().enumerate() {
            if now.saturating_duration_since(b.last_changed) >= REFRESH_AFTER {
                b.last_changed = now;
                out.push(if i == last {
                    // The last bucket covers every id sharing at least `i` bits with us.
                    own.random_at_distance(i + rng.random_range(0..(160 - i).max(1)), &mut *rng)
                } else {
                    own.random_at_distance(i, &mut *rng)
                });
            }
        }
        out
    }

    /// Questionable nodes, least recently seen first (to ping them before they go stale).
    pub fn questionable(&self, now: Instant, max: usize) -> Vec<A> {
        let mut q: Vec<&Node<A>> = self
            .nodes()
            .filter(|n| n.state(now) == NodeState::Questionable)
            .collect();
        q.sort_by_key(|n| n.last_seen);
        q.into_iter().take(max).map(|n| n.addr).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(1)
    }

    #[test]
    fn splits_around_own_id_and_keeps_k_per_far_bucket() {
        let now = Instant::now();
        let mut r = rng();
        let own = Id::random(&mut r);
        let mut t = Table::new(own, now);
        for port in 0..2000u16 {
            t.heard_response(Id::random(&mut r), port, now);
        }
        // Half the random ids fall into the farthest bucket: it holds exactly K.
        assert!(t.bucket_count() > 5, "{}", t.bucket_count());
        assert_eq!(t.buckets[0].nodes.len(), K);
        assert!(t.buckets[0].replacements.len() <= K);
        assert!(t.len() <= K * t.bucket_count());
        for (i, b) in t.buckets.iter().enumerate() {
            for n in &b.nodes {
                let cpl = own.common_prefix_len(&n.id);
                assert!(cpl == i || (i == t.bucket_count() - 1 && cpl >= i));
            }
        }
    }

    #[test]
    fn bad_nodes_give_way_to_replacements() {
        let now = Instant::now();
        let own = Id::ZERO;
        let mut t = Table::new(own, now);
        // Fill the far bucket (ids starting with bit 1); force one split first.
        t.heard_response(Id([0x01; 20]), 1000u16, now);
        let far = |i: u8| {
            let mut b = [i; 20];
            b[0] = 0x80 | i;
            Id(b)
        };
        for i in 0..K as u8 {
            assert_eq!(
                t.heard_response(far(i), u16::from(i), now),
                Inserted::InTable
            );
        }
        let later = now + GOOD_FOR + Duration::from_secs(1);
        match t.heard_response(far(100), 100, later) {
            Inserted::Cached { ping } => assert_eq!(ping.len(), K),
            other => panic!("{other:?}"),
        }
        t.failed(&3, later);
        assert!(t.get(&far(3)).is_some());
        t.failed(&3, later);
        assert!(t.get(&far(3)).is_none(), "bad node replaced");
        assert_eq!(t.get(&far(100)).map(|n| n.addr), Some(100));
    }

    #[test]
    fn same_id_elsewhere_and_own_id_are_rejected() {
        let now = Instant::now();
        let own = Id([9; 20]);
        let mut t = Table::new(own, now);
        assert_eq!(t.heard_response(own, 1u16, now), Inserted::Rejected);
        assert_eq!(t.heard_response(Id([1; 20]), 1, now), Inserted::InTable);
        assert_eq!(t.heard_response(Id([1; 20]), 2, now), Inserted::Rejected);
        assert_eq!(t.heard_response(Id([2; 20]), 1, now), Inserted::Rejected);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn closest_and_refresh() {
        let now = Instant::now();
        let mut r = rng();
        let mut t = Table::new(Id::random(&mut r), now);
        for port in 0..100u16 {
            t.heard_response(Id::random(&mut r), port, now);
        }
        let target = Id::random(&mut r);
        let c = t.closest(&target, K, now);
        assert_eq!(c.len(), K);
        assert!(c
            .windows(2)
            .all(|w| w[0].0.distance(&target) <= w[1].0.distance(&target)));
        assert!(t.due_refreshes(now, &mut r).is_empty());
        let later = now + REFRESH_AFTER;
        assert_eq!(t.due_refreshes(later, &mut r).len(), t.bucket_count());
        assert!(t.due_refreshes(later, &mut r).is_empty());
        assert_eq!(t.questionable(later, 3).len(), 3);
    }
}
