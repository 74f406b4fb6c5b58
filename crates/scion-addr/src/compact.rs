//! The compact binary address forms, decided here once for the DHT, trackers and PEX.
//!
//! * IP peers (BEP 23 / BEP 7 / BEP 11): IPv4 (4) or IPv6 (16) bytes + port (2), big-endian.
//! * SCION peers, the form netsys-lab/dht (the original client's DHT) uses: ISD-AS as 8 bytes
//!   big-endian + IPv4 (4) or IPv6 (16) + port (2): 14 or 26 bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::{Ia, ScionAddr};

/// Length of a compact IPv4 peer (`ip4 port`).
pub const IP_V4_LEN: usize = 6;
/// Length of a compact IPv6 peer (`ip6 port`).
pub const IP_V6_LEN: usize = 18;
/// Length of a compact SCION peer with an IPv4 host (`ia ip4 port`).
pub const SCION_V4_LEN: usize = 14;
/// Length of a compact SCION peer with an IPv6 host (`ia ip6 port`).
pub const SCION_V6_LEN: usize = 26;

/// A compact list whose length is not a multiple of its entry size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("compact address list of {len} bytes is not a multiple of {entry}")]
pub struct CompactLenError {
    pub len: usize,
    pub entry: usize,
}

fn write_ip_port(ip: IpAddr, port: u16, out: &mut Vec<u8>) {
    match ip {
        IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
    out.extend_from_slice(&port.to_be_bytes());
}

fn read_ip_port(b: &[u8]) -> Option<(IpAddr, u16)> {
    let (ip, port) = match b.len() {
        6 => (
            IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&b[..4]).ok()?)),
            &b[4..],
        ),
        18 => (
            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&b[..16]).ok()?)),
            &b[16..],
        ),
        _ => return None,
    };
    Some((ip, u16::from_be_bytes([port[0], port[1]])))
}

/// Appends the compact form of an IP peer (6 or 18 bytes).
pub fn write_ip(addr: SocketAddr, out: &mut Vec<u8>) {
    write_ip_port(addr.ip(), addr.port(), out);
}

/// Decodes one compact IP peer of exactly 6 or 18 bytes.
pub fn read_ip(b: &[u8]) -> Option<SocketAddr> {
    read_ip_port(b).map(|(ip, port)| SocketAddr::new(ip, port))
}

/// Appends the compact form of a SCION peer (14 or 26 bytes).
pub fn write_scion(addr: &ScionAddr, out: &mut Vec<u8>) {
    out.extend_from_slice(&addr.ia.0.to_be_bytes());
    write_ip_port(addr.host, addr.port, out);
}

/// Decodes one compact SCION peer of exactly 14 or 26 bytes.
pub fn read_scion(b: &[u8]) -> Option<ScionAddr> {
    if b.len() != SCION_V4_LEN && b.len() != SCION_V6_LEN {
        return None;
    }
    let ia = u64::from_be_bytes(b[..8].try_into().ok()?);
    let (host, port) = read_ip_port(&b[8..])?;
    Some(ScionAddr::new(Ia::from_u64(ia), host, port))
}

/// Splits a compact list into entries of `entry` bytes and decodes each with `read`.
pub fn read_list<T>(
    b: &[u8],
    entry: usize,
    read: impl Fn(&[u8]) -> Option<T>,
) -> Result<Vec<T>, CompactLenError> {
    if entry == 0 || !b.len().is_multiple_of(entry) {
        return Err(CompactLenError {
            len: b.len(),
            entry,
        });
    }
    Ok(b.chunks_exact(entry).filter_map(read).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scion_round_trip_v4_and_v6() {
        for s in ["1-ff00:0:112,[127.0.0.1]:43000", "19-ffaa:1:c3f,[::1]:6881"] {
            let a: ScionAddr = s.parse().unwrap();
            let mut out = Vec::new();
            write_scion(&a, &mut out);
            assert_eq!(
                out.len(),
                if a.host.is_ipv4() {
                    SCION_V4_LEN
                } else {
                    SCION_V6_LEN
                }
            );
            assert_eq!(read_scion(&out), Some(a));
        }
    }

    #[test]
    fn scion_layout_is_ia_ip_port_big_endian() {
        let a: ScionAddr = "1-ff00:0:112,[10.0.0.1]:258".parse().unwrap();
        let mut out = Vec::new();
        write_scion(&a, &mut out);
        assert_eq!(
            out,
            [0, 1, 0xff, 0, 0, 0, 1, 0x12, 10, 0, 0, 1, 1, 2].to_vec()
        );
    }

    #[test]
    fn ip_round_trip_and_bad_lengths() {
        let a: SocketAddr = "[::1]:80".parse().unwrap();
        let mut out = Vec::new();
        write_ip(a, &mut out);
        assert_eq!(read_ip(&out), Some(a));
        assert_eq!(read_ip(&out[..5]), None);
        assert_eq!(read_scion(&[0; 13]), None);
        assert!(read_list(&[0; 7], IP_V4_LEN, read_ip).is_err());
        assert_eq!(read_list(&[1; 12], IP_V4_LEN, read_ip).unwrap().len(), 2);
    }
}
