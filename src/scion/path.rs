//! A SCION path as handed out by the daemon: the encoded dataplane path, the first hop in the
//! local AS, the interfaces it crosses and whatever metadata the daemon knows.

use std::{
    fmt,
    hash::{Hash, Hasher},
    net::SocketAddr,
    time::{Duration, SystemTime},
};

use bytes::Bytes;

use super::{addr::Ia, meta::PathMeta, packet};

/// One interface a path crosses: `ia#id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathInterface {
    /// The AS the interface belongs to.
    pub ia: Ia,
    /// The interface id inside that AS.
    pub id: u16,
}

impl fmt::Display for PathInterface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.ia, self.id)
    }
}

/// An inter-AS link, as the two interfaces at its ends (smaller first, so direction-free).
pub type Link = (PathInterface, PathInterface);

/// A stable identifier of a path's route (not of its hop-field MACs or expiry): equal for the
/// same sequence of interfaces, across runs and machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathFingerprint(pub u64);

impl fmt::Display for PathFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A SCION path from the local AS to `dst_ia`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScionPath {
    /// Source AS (the local AS).
    pub src_ia: Ia,
    /// Destination AS.
    pub dst_ia: Ia,
    /// The encoded dataplane path (SCION path type), empty when `src_ia == dst_ia`.
    pub raw: Bytes,
    /// Underlay address of the border router to send to; `None`: the destination is in the local
    /// AS, send directly to the host.
    pub first_hop: Option<SocketAddr>,
    /// Interfaces crossed, in order: egress of the source AS, ingress and egress of each transit
    /// AS, ingress of the destination AS. Empty for the same-AS path (or if the daemon gave none).
    pub interfaces: Vec<PathInterface>,
    /// Path MTU in bytes as given by the daemon (0 if unknown).
    pub mtu: u16,
    /// When the path's hop fields expire.
    pub expiry: Option<SystemTime>,
    /// Latency per link (`interfaces.len() - 1` entries: inter-AS and intra-AS links
    /// alternating) when the daemon knows it; empty if it gave none.
    pub latency: Vec<Option<Duration>>,
    /// Bandwidth per link in kbit/s, same layout as `latency`.
    pub bandwidth: Vec<Option<u64>>,
    /// Geo, link types, internal hops and notes, when the daemon knows them.
    pub meta: PathMeta,
}

impl ScionPath {
    /// The empty path for talking to a host in the local AS.
    pub fn local(ia: Ia) -> Self {
        Self {
            src_ia: ia,
            dst_ia: ia,
            raw: Bytes::new(),
            first_hop: None,
            interfaces: Vec::new(),
            mtu: 0,
            expiry: None,
            latency: Vec::new(),
            bandwidth: Vec::new(),
            meta: PathMeta::default(),
        }
    }

    /// A path from its raw bytes and first hop only; interfaces and metadata left empty, expiry
    /// taken from the hop fields.
    pub fn from_raw(src_ia: Ia, dst_ia: Ia, raw: Bytes, first_hop: Option<SocketAddr>) -> Self {
        let expiry = packet::path_expiry(&raw);
        Self {
            src_ia,
            dst_ia,
            raw,
            first_hop,
            interfaces: Vec::new(),
            mtu: 0,
            expiry,
            latency: Vec::new(),
            bandwidth: Vec::new(),
            meta: PathMeta::default(),
        }
    }

    /// True for the same-AS (empty) path.
    pub fn is_local(&self) -> bool {
        self.raw.is_empty()
    }

    /// Stable id of the route, from the interfaces (or, if the daemon gave none, from the
    /// interface ids in the raw hop fields).
    pub fn fingerprint(&self) -> PathFingerprint {
        let mut h = Fnv64::new();
        h.write_u64(self.src_ia.to_u64());
        h.write_u64(self.dst_ia.to_u64());
        if !self.interfaces.is_empty() || self.raw.is_empty() {
            for i in &self.interfaces {
                h.write_u64(i.ia.to_u64());
                h.write_u16(i.id);
            }
        } else {
            h.write_u8(0xff);
            for (ingress, egress) in packet::path_interfaces(&self.raw).unwrap_or_default() {
                h.write_u16(ingress);
                h.write_u16(egress);
            }
        }
        PathFingerprint(h.finish())
    }

    /// The inter-AS links crossed, each as its two interfaces, smaller first.
    pub fn links(&self) -> Vec<Link> {
        self.interfaces
            .chunks_exact(2)
            .map(|c| {
                let (a, b) = (c[0], c[1]);
                if a <= b {
                    (a, b)
                } else {
                    (b, a)
                }
            })
            .collect()
    }

    /// Whether the two paths cross a common inter-AS link (equivalently, a common interface).
    /// Paths for which this is false are interface-disjoint.
    pub fn shares_link_with(&self, other: &ScionPath) -> bool {
        self.interfaces
            .iter()
            .any(|i| other.interfaces.iter().any(|j| i == j))
    }

    /// Number of inter-AS links crossed (0 for the same-AS path). Falls back on the raw hop
    /// fields when the daemon gave no interfaces.
    pub fn hop_count(&self) -> usize {
        if !self.interfaces.is_empty() {
            return self.interfaces.len() / 2;
        }
        packet::path_as_count(&self.raw).map_or(0, |n| n.saturating_sub(1))
    }

    /// The ASes crossed, the source first (none if the daemon gave no interfaces).
    pub fn ases(&self) -> Vec<Ia> {
        let first = self.interfaces.first().map(|i| i.ia);
        first
            .into_iter()
            .chain(self.interfaces.iter().skip(1).step_by(2).map(|i| i.ia))
            .collect()
    }

    /// Whether the path is expired at `now` (a path without known expiry never is).
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expiry.is_some_and(|e| e <= now)
    }

    /// Sum of the per-link latencies, `None` if any is unknown, none was given or the sum
    /// overflows.
    pub fn total_latency(&self) -> Option<Duration> {
        if self.latency.is_empty() {
            return None;
        }
        self.latency
            .iter()
            .try_fold(Duration::ZERO, |acc, l| acc.checked_add((*l)?))
    }

    /// Smallest known per-link bandwidth in kbit/s.
    pub fn min_bandwidth(&self) -> Option<u64> {
        self.bandwidth.iter().flatten().copied().min()
    }
}

impl fmt::Display for ScionPath {
    /// `1-ff00:0:111#1 > 1-ff00:0:120#2 > 1-ff00:0:120#3 > 1-ff00:0:112#1`, or
    /// `local 1-ff00:0:111` for the empty path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_local() {
            return write!(f, "local {}", self.src_ia);
        }
        if self.interfaces.is_empty() {
            return write!(f, "{} > {} (interfaces unknown)", self.src_ia, self.dst_ia);
        }
        for (n, i) in self.interfaces.iter().enumerate() {
            if n > 0 {
                f.write_str(" > ")?;
            }
            write!(f, "{i}")?;
        }
        Ok(())
    }
}

/// FNV-1a, 64 bit: tiny, deterministic across runs and platforms (unlike std's SipHash keys).
struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv64 {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    // Fixed byte order so fingerprints agree across platforms.
    fn write_u16(&mut self, v: u16) {
        self.write(&v.to_be_bytes());
    }

    fn write_u64(&mut self, v: u64) {
        self.write(&v.to_be_bytes());
    }
}

impl Hash for ScionPath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
        self.first_hop.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scion::addr::parse_ia;

    fn intf(ia: &str, id: u16) -> PathInterface {
        PathInterface {
            ia: parse_ia(ia).unwrap(),
            id,
        }
    }

    fn path(ifs: &[(&str, u16)]) -> ScionPath {
        let interfaces: Vec<_> = ifs.iter().map(|(ia, id)| intf(ia, *id)).collect();
        ScionPath {
            src_ia: interfaces[0].ia,
            dst_ia: interfaces[interfaces.len() - 1].ia,
            raw: Bytes::from_static(&[0; 4]),
            first_hop: Some("127.0.0.1:30001".parse().unwrap()),
            interfaces,
            mtu: 1472,
            expiry: None,
            latency: vec![
                Some(Duration::from_millis(1)),
                Some(Duration::from_millis(2)),
                None,
            ],
            bandwidth: vec![Some(1000), None, Some(10)],
            meta: Default::default(),
        }
    }

    #[test]
    fn display_links_and_disjointness() {
        let a = path(&[
            ("1-ff00:0:111", 1),
            ("1-ff00:0:120", 2),
            ("1-ff00:0:120", 3),
            ("1-ff00:0:112", 1),
        ]);
        let b = path(&[
            ("1-ff00:0:111", 2),
            ("1-ff00:0:130", 1),
            ("1-ff00:0:130", 2),
            ("1-ff00:0:112", 2),
        ]);
        let c = path(&[
            ("1-ff00:0:111", 3),
            ("1-ff00:0:120", 4),
            ("1-ff00:0:120", 3),
            ("1-ff00:0:112", 1),
        ]);
        assert_eq!(
            a.to_string(),
            "1-ff00:0:111#1 > 1-ff00:0:120#2 > 1-ff00:0:120#3 > 1-ff00:0:112#1"
        );
        assert_eq!(a.hop_count(), 2);
        assert_eq!(a.ases().len(), 3);
        assert_eq!(a.ases()[1].to_string(), "1-ff00:0:120");
        assert_eq!(a.links().len(), 2);
        assert_eq!(
            a.links()[1],
            (intf("1-ff00:0:112", 1), intf("1-ff00:0:120", 3))
        );
        assert!(!a.shares_link_with(&b));
        assert!(a.shares_link_with(&c));
        assert!(c.shares_link_with(&a));
        assert!(a.shares_link_with(&a));
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        // The fingerprint ignores the raw bytes, hop MACs and metadata.
        let mut a2 = a.clone();
        a2.raw = Bytes::from_static(&[1; 4]);
        a2.mtu = 1;
        assert_eq!(a.fingerprint(), a2.fingerprint());
        // And is stable across runs/platforms.
        assert_eq!(a.fingerprint().to_string().len(), 16);
        assert_eq!(a.total_latency(), None);
        assert_eq!(a.min_bandwidth(), Some(10));
    }

    #[test]
    fn local_path() {
        let ia = parse_ia("1-ff00:0:111").unwrap();
        let p = ScionPath::local(ia);
        assert!(p.is_local());
        assert_eq!(p.hop_count(), 0);
        assert_eq!(p.to_string(), "local 1-ff00:0:111");
        assert!(p.links().is_empty());
        assert!(!p.shares_link_with(&p));
        assert_eq!(p.fingerprint(), ScionPath::local(ia).fingerprint());
        assert!(!p.is_expired(SystemTime::now()));
    }
}
