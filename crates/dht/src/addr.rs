//! The address kinds the engine runs over, and their compact forms on the wire.

use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};

use scion_addr::{compact, ScionAddr};

/// The IP family of an address (of the host part, for SCION addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) fn index(self) -> usize {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }

    fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// An address the DHT can send to: a UDP/IP socket address or a SCION/UDP address.
///
/// The engine only needs the compact form (for `nodes`, `values`, `ip`), the family (BEP 32
/// `nodes` vs `nodes6`) and the host without the port (tokens, rate limits).
pub trait DhtAddr: Copy + Eq + Hash + Ord + Debug + Display + Send + Sync + 'static {
    /// Names the address kind in saved state (`ip`, `scion`).
    const KIND: &'static str;
    /// The family of the (host) IP.
    fn family(&self) -> Family;
    /// The UDP port.
    fn port(&self) -> u16;
    /// The same host on another port.
    fn with_port(self, port: u16) -> Self;
    /// The host's IP.
    fn ip(&self) -> IpAddr;
    /// Length of the compact form for `family`.
    fn compact_len(family: Family) -> usize;
    /// Appends the compact form.
    fn write_compact(&self, out: &mut Vec<u8>);
    /// Decodes one compact form of exactly 6/18 (IP) or 14/26 (SCION) bytes.
    fn read_compact(b: &[u8]) -> Option<Self>;

    /// Whether we can ever send to this address (no port 0, no unspecified or multicast host).
    fn is_usable(&self) -> bool {
        let ip = self.ip();
        self.port() != 0 && !ip.is_unspecified() && !ip.is_multicast()
    }
}

/// Plain UDP/IP: BEP 5 compact forms (4 or 16 address bytes + port).
impl DhtAddr for SocketAddr {
    const KIND: &'static str = "ip";
    fn family(&self) -> Family {
        Family::of(self.ip())
    }
    fn port(&self) -> u16 {
        SocketAddr::port(self)
    }
    fn with_port(self, port: u16) -> Self {
        SocketAddr::new(self.ip(), port)
    }
    fn ip(&self) -> IpAddr {
        SocketAddr::ip(self)
    }
    fn compact_len(family: Family) -> usize {
        match family {
            Family::V4 => compact::IP_V4_LEN,
            Family::V6 => compact::IP_V6_LEN,
        }
    }
    fn write_compact(&self, out: &mut Vec<u8>) {
        // An IPv4-mapped IPv6 peer (dual-stack socket) goes out in the 6-byte form.
        let a = match self.ip() {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => SocketAddr::new(IpAddr::V4(v4), self.port()),
                None => *self,
            },
            IpAddr::V4(_) => *self,
        };
        compact::write_ip(a, out)
    }
    fn read_compact(b: &[u8]) -> Option<Self> {
        compact::read_ip(b)
    }
}

/// SCION/UDP: the netsys-lab/dht form, ISD-AS (8 bytes BE) + IPv4/IPv6 host + port.
impl DhtAddr for ScionAddr {
    const KIND: &'static str = "scion";
    fn family(&self) -> Family {
        // No IPv4-mapped special case: the SCION form keeps the host's 16 bytes.
        if self.host.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
    fn port(&self) -> u16 {
        self.port
    }
    fn with_port(self, port: u16) -> Self {
        ScionAddr::with_port(self, port)
    }
    fn ip(&self) -> IpAddr {
        self.host
    }
    fn compact_len(family: Family) -> usize {
        match family {
            Family::V4 => compact::SCION_V4_LEN,
            Family::V6 => compact::SCION_V6_LEN,
        }
    }
    fn write_compact(&self, out: &mut Vec<u8>) {
        compact::write_scion(self, out)
    }
    fn read_compact(b: &[u8]) -> Option<Self> {
        compact::read_scion(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_lengths_match_the_wire_forms() {
        assert_eq!(SocketAddr::compact_len(Family::V4), 6);
        assert_eq!(SocketAddr::compact_len(Family::V6), 18);
        assert_eq!(ScionAddr::compact_len(Family::V4), 14);
        assert_eq!(ScionAddr::compact_len(Family::V6), 26);
        let a: ScionAddr = "19-ffaa:1:e4b,[1.2.3.4]:80".parse().unwrap();
        let mut out = Vec::new();
        a.write_compact(&mut out);
        assert_eq!(
            out,
            b"\x00\x13\xff\xaa\x00\x01\x0e\x4b\x01\x02\x03\x04\x00\x50"
        );
        assert_eq!(ScionAddr::read_compact(&out), Some(a));
    }

    #[test]
    fn mapped_v4_is_written_short() {
        let a: SocketAddr = "[::ffff:1.2.3.4]:5".parse().unwrap();
        assert_eq!(a.family(), Family::V4);
        let mut out = Vec::new();
        a.write_compact(&mut out);
        assert_eq!(out, [1, 2, 3, 4, 0, 5]);
    }

    #[test]
    fn unusable_addresses() {
        let zero_port: SocketAddr = "1.2.3.4:0".parse().unwrap();
        assert!(!zero_port.is_usable());
        let unspecified: SocketAddr = "0.0.0.0:6881".parse().unwrap();
        assert!(!unspecified.is_usable());
        let ok: SocketAddr = "127.0.0.1:6881".parse().unwrap();
        assert!(ok.is_usable());
    }
}
