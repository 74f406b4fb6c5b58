//! Synthetic QUIC remote addresses: one per (remote address, path).
//!
//! quinn-proto identifies a connection's remote by `SocketAddr`. Over SCION the same host can
//! be reached on several paths, and each lane must stay on its own path, so the driver hands
//! quinn-proto a made-up address (a unique IPv6 ULA) per (remote, path) and keeps what it means
//! here. The path key is direction-independent (the hop fields' interfaces in order, taken in
//! whichever direction sorts first), so a reply that arrives on the reversed path finds the
//! connection that was opened on the forward path, while two routes that merely cross the same
//! interface ids in another order or through other ASes stay apart.

use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

/// Direction-independent identity of a path (see [`route_key`]). Empty for the same-AS case.
pub type PathKey = Vec<u16>;

/// The key of a route from its hop fields' (ingress, egress) interfaces in travel order: the
/// sequence itself or its reversal (hops reversed, ingress and egress swapped), whichever is
/// smaller, so both directions of one route share it. Order and the zero interfaces at segment
/// ends are kept: unlike a sorted id list, routes through different ASes that happen to use the
/// same interface numbers do not collide.
pub fn route_key(hops: &[(u16, u16)]) -> PathKey {
    let forward: Vec<u16> = hops.iter().flat_map(|&(i, e)| [i, e]).collect();
    let reverse: Vec<u16> = hops.iter().rev().flat_map(|&(i, e)| [e, i]).collect();
    forward.min(reverse)
}

pub fn path_key(interfaces: impl IntoIterator<Item = u16>) -> PathKey {
    let mut ids: Vec<u16> = interfaces.into_iter().filter(|&i| i != 0).collect();
    ids.sort_unstable();
    ids
}

/// What a synthetic key stands for.
#[derive(Debug, Clone)]
pub struct Remote<A, R> {
    pub addr: A,
    pub path_key: PathKey,
    /// How to send to it: path bytes, next hop, ... (the driver's business).
    pub route: R,
}

pub struct RemoteTable<A, R> {
    /// Keyed by the synthetic addresses this table hands out, hence FxHash.
    by_key: FxHashMap<SocketAddr, Remote<A, R>>,
    by_route: HashMap<(A, PathKey), SocketAddr>,
    next: u64,
}

impl<A: Hash + Eq + Clone, R> Default for RemoteTable<A, R> {
    fn default() -> Self {
        Self {
            by_key: FxHashMap::default(),
            by_route: HashMap::new(),
            next: 1,
        }
    }
}

impl<A: Hash + Eq + Clone, R> RemoteTable<A, R> {
    /// The key for (addr, path), creating it with `route` if it is new.
    pub fn key_for(
        &mut self,
        addr: &A,
        path_key: PathKey,
        route: impl FnOnce() -> R,
    ) -> SocketAddr {
        if let Some(k) = self.by_route.get(&(addr.clone(), path_key.clone())) {
            return *k;
        }
        let key = synthetic(self.next);
        self.next += 1;
        self.by_route.insert((addr.clone(), path_key.clone()), key);
        self.by_key.insert(
            key,
            Remote {
                addr: addr.clone(),
                path_key,
                route: route(),
            },
        );
        key
    }

    pub fn lookup(&self, addr: &A, path_key: &PathKey) -> Option<SocketAddr> {
        self.by_route
            .get(&(addr.clone(), path_key.clone()))
            .copied()
    }

    pub fn get(&self, key: &SocketAddr) -> Option<&Remote<A, R>> {
        self.by_key.get(key)
    }

    pub fn get_mut(&mut self, key: &SocketAddr) -> Option<&mut Remote<A, R>> {
        self.by_key.get_mut(key)
    }

    pub fn remove(&mut self, key: &SocketAddr) {
        if let Some(r) = self.by_key.remove(key) {
            self.by_route.remove(&(r.addr, r.path_key));
        }
    }

    /// Drops every entry whose key `keep` rejects; returns how many went.
    pub fn retain(&mut self, mut keep: impl FnMut(&SocketAddr) -> bool) -> usize {
        let before = self.by_key.len();
        self.by_key.retain(|k, _| keep(k));
        let by_key = &self.by_key;
        self.by_route.retain(|_, k| by_key.contains_key(k));
        before - self.by_key.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&SocketAddr, &Remote<A, R>)> {
        self.by_key.iter()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

fn synthetic(n: u64) -> SocketAddr {
    let [a, b, c, d] = [
        (n >> 48) as u16,
        (n >> 32) as u16,
        (n >> 16) as u16,
        n as u16,
    ];
    SocketAddr::V6(SocketAddrV6::new(
        Ipv6Addr::new(0xfd5c, 0x1011, 0, 0, a, b, c, d),
        1,
        0,
        0,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_and_reversed_path_share_a_key() {
        let mut t: RemoteTable<&str, u8> = RemoteTable::default();
        let fwd = t.key_for(&"peer", path_key([3, 0, 7, 2]), || 1);
        let rev = t.lookup(&"peer", &path_key([2, 7, 3]));
        assert_eq!(Some(fwd), rev);
    }

    #[test]
    fn route_keys_match_in_both_directions_and_keep_order() {
        // 111#1 -> 120#2, 120#3 -> 112#1 as two segments meeting in 120.
        let fwd = [(0, 1), (2, 0), (0, 3), (1, 0)];
        let rev = [(0, 1), (3, 0), (0, 2), (1, 0)];
        assert_eq!(route_key(&fwd), route_key(&rev));
        // Same interface ids, other order: another route.
        let other = [(0, 3), (2, 0), (0, 1), (1, 0)];
        assert_ne!(route_key(&fwd), route_key(&other));
        assert_eq!(path_key([3, 2, 1, 1]), path_key([1, 1, 2, 3]));
        assert!(route_key(&[]).is_empty());
    }

    #[test]
    fn distinct_paths_and_peers_get_distinct_keys() {
        let mut t: RemoteTable<&str, u8> = RemoteTable::default();
        let a = t.key_for(&"peer", path_key([1, 2]), || 1);
        let b = t.key_for(&"peer", path_key([3, 4]), || 2);
        let c = t.key_for(&"other", path_key([1, 2]), || 3);
        assert!(a != b && b != c && a != c);
        assert_eq!(t.get(&b).map(|r| r.route), Some(2));
        t.remove(&b);
        assert!(t.get(&b).is_none());
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn retain_drops_both_directions_of_the_mapping() {
        let mut t: RemoteTable<&str, u8> = RemoteTable::default();
        let a = t.key_for(&"a", path_key([1]), || 1);
        let b = t.key_for(&"b", path_key([2]), || 2);
        assert_eq!(t.retain(|k| *k == a), 1);
        assert!(t.get(&b).is_none() && t.lookup(&"b", &path_key([2])).is_none());
        assert_eq!(t.lookup(&"a", &path_key([1])), Some(a));
    }
}
