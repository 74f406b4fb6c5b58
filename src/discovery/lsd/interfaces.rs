//! Which network interfaces LSD runs on: those of the TCP listener.

use std::io;
use std::net::{IpAddr, SocketAddr};

/// Why the interfaces cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InterfaceError {
    #[error("Local Service Discovery cannot work on the loopback address {0}; listen on a network interface, 0.0.0.0 or [::]")]
    Loopback(IpAddr),
    #[error("{0} is not an address of this host's interfaces")]
    NoSuchInterface(IpAddr),
    #[error("cannot read the network interfaces: {0}")]
    Read(io::Error),
}

/// An interface address with its subnet and interface index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Iface {
    pub ip: IpAddr,
    pub mask: IpAddr,
    /// The OS's interface index (IPv6 multicast is joined and sent by index).
    pub index: u32,
}

impl Iface {
    /// Whether `other` is on this interface's subnet.
    pub fn contains(&self, other: IpAddr) -> bool {
        match (self.ip, self.mask, other) {
            (IpAddr::V4(ip), IpAddr::V4(m), IpAddr::V4(o)) => {
                let m = u32::from(m);
                u32::from(ip) & m == u32::from(o) & m
            }
            (IpAddr::V6(ip), IpAddr::V6(m), IpAddr::V6(o)) => {
                let m = u128::from(m);
                u128::from(ip) & m == u128::from(o) & m
            }
            _ => false,
        }
    }
}

/// Which interfaces to use for a TCP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interfaces {
    /// The one holding this address.
    One(IpAddr),
    /// Every interface that is up and not loopback: IPv4 ones, and IPv6 ones too when the
    /// listener is `[::]` (dual stack).
    All { v6: bool },
}

impl Interfaces {
    pub fn for_listener(listen: SocketAddr) -> Result<Self, InterfaceError> {
        let ip = listen.ip();
        if ip.is_loopback() {
            return Err(InterfaceError::Loopback(ip));
        }
        Ok(match ip {
            IpAddr::V4(v4) if v4.is_unspecified() => Interfaces::All { v6: false },
            IpAddr::V6(v6) if v6.is_unspecified() => Interfaces::All { v6: true },
            ip => Interfaces::One(ip),
        })
    }

    /// The usable interface addresses now.
    pub fn scan(self) -> Result<Vec<Iface>, InterfaceError> {
        let all = if_addrs::get_if_addrs().map_err(InterfaceError::Read)?;
        let usable = all
            .into_iter()
            .filter(|i| i.is_oper_up() && !i.is_loopback())
            .filter_map(|i| {
                let index = i.index?;
                let (ip, mask) = match i.addr {
                    if_addrs::IfAddr::V4(a) => (IpAddr::V4(a.ip), IpAddr::V4(a.netmask)),
                    if_addrs::IfAddr::V6(a) => (IpAddr::V6(a.ip), IpAddr::V6(a.netmask)),
                };
                Some(Iface { ip, mask, index })
            });
        match self {
            Interfaces::All { v6 } => Ok(usable.filter(|i| v6 || i.ip.is_ipv4()).collect()),
            Interfaces::One(ip) => usable
                .filter(|i| i.ip == ip)
                .map(|i| vec![i])
                .next()
                .ok_or(InterfaceError::NoSuchInterface(ip)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(ip: &str, mask: &str) -> Iface {
        Iface {
            ip: ip.parse().unwrap(),
            mask: mask.parse().unwrap(),
            index: 2,
        }
    }

    #[test]
    fn subnets_match_by_mask_in_each_family() {
        let v4 = iface("10.77.0.1", "255.255.255.0");
        assert!(v4.contains("10.77.0.200".parse().unwrap()));
        assert!(!v4.contains("10.77.1.2".parse().unwrap()));
        assert!(!v4.contains("fd00::1".parse().unwrap()));
        let v6 = iface("fd79:1::1", "ffff:ffff:ffff:ffff::");
        assert!(v6.contains("fd79:1::2".parse().unwrap()));
        assert!(!v6.contains("fd79:2::2".parse().unwrap()));
        assert!(!v6.contains("10.77.0.2".parse().unwrap()));
    }

    #[test]
    fn the_listener_decides_the_interfaces() {
        let at = |s: &str| Interfaces::for_listener(s.parse().unwrap());
        assert_eq!(at("0.0.0.0:6881").unwrap(), Interfaces::All { v6: false });
        assert_eq!(at("[::]:6881").unwrap(), Interfaces::All { v6: true });
        assert!(matches!(at("10.0.0.5:6881"), Ok(Interfaces::One(_))));
        assert!(matches!(at("[fd00::5]:6881"), Ok(Interfaces::One(_))));
        assert!(matches!(
            at("127.0.0.1:6881"),
            Err(InterfaceError::Loopback(_))
        ));
        assert!(matches!(at("[::1]:6881"), Err(InterfaceError::Loopback(_))));
        // An address this host does not have is named, not silently ignored.
        let none = Interfaces::One("192.0.2.77".parse().unwrap()).scan();
        assert!(matches!(none, Err(InterfaceError::NoSuchInterface(_))));
    }
}
