//! Where the gateway is: the default route's next hop (from /proc/net/route), and our own
//! address toward it (the source address the kernel picks for it).

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot read the routing table: {0}")]
    Read(io::Error),
    #[error("no IPv4 default route (give --port-mapping-gateway)")]
    NoDefaultRoute,
    #[error("no route to the gateway {0}: {1}")]
    NoRoute(Ipv4Addr, io::Error),
}

/// The IPv4 default route's gateway.
pub fn default_gateway() -> Result<Ipv4Addr, GatewayError> {
    let table = std::fs::read_to_string("/proc/net/route").map_err(GatewayError::Read)?;
    parse_route_table(&table).ok_or(GatewayError::NoDefaultRoute)
}

/// The first up default route with a gateway in /proc/net/route's text (hex fields in the
/// host's byte order, which is little-endian on every platform we build for).
pub fn parse_route_table(table: &str) -> Option<Ipv4Addr> {
    const RTF_UP: u16 = 0x1;
    const RTF_GATEWAY: u16 = 0x2;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dest, gw, flags, mask) = (f.get(1)?, f.get(2)?, f.get(3)?, f.get(7)?);
        let flags = u16::from_str_radix(flags, 16).ok()?;
        let is_default = *dest == "00000000" && *mask == "00000000";
        if !is_default || flags & (RTF_UP | RTF_GATEWAY) != RTF_UP | RTF_GATEWAY {
            return None;
        }
        let gw = u32::from_str_radix(gw, 16).ok()?;
        Some(Ipv4Addr::from(gw.swap_bytes())).filter(|ip| !ip.is_unspecified())
    })
}

/// Our address on the way to `gateway` (a connected UDP socket sends nothing).
pub fn local_toward(gateway: Ipv4Addr) -> Result<Ipv4Addr, GatewayError> {
    let err = |e| GatewayError::NoRoute(gateway, e);
    let s = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).map_err(err)?;
    s.connect(SocketAddrV4::new(gateway, super::pmp::PORT))
        .map_err(err)?;
    match s.local_addr().map_err(err)? {
        std::net::SocketAddr::V4(a) => Ok(*a.ip()),
        std::net::SocketAddr::V6(_) => Err(err(io::Error::other("an IPv6 source address"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_route_is_read() {
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(
            parse_route_table(table),
            Some(Ipv4Addr::new(192, 168, 0, 1))
        );
    }

    #[test]
    fn no_default_route_is_none() {
        assert_eq!(parse_route_table("header\n"), None);
        assert_eq!(
            parse_route_table("header\neth0 00000000 00000000 0001 0 0 0 00000000\n"),
            None
        );
        assert_eq!(parse_route_table("header\ngarbage\n\n"), None);
    }
}
