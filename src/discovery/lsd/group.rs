//! One BEP 14 multicast group and the socket that has joined it on our interfaces: IPv4
//! 239.192.152.143:6771 or IPv6 [ff15::efc0:988f]:6771.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use super::interfaces::Iface;
use super::message::{GROUP_V4, GROUP_V6};

/// The group of one address family.
pub struct Group {
    socket: tokio::net::UdpSocket,
    group: SocketAddr,
    joined: HashSet<Iface>,
}

impl Group {
    /// A socket on the LSD port that other programs on this host may share (libtorrent and
    /// Transmission bind it too), seeing our own datagrams (filtered by cookie) so that two
    /// clients on one host find each other; TTL / hop limit 1: datagrams never leave the link.
    /// Must run inside a tokio runtime.
    pub fn open(v6: bool) -> io::Result<Group> {
        let group = if v6 { GROUP_V6 } else { GROUP_V4.into() };
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        let any: SocketAddr = if v6 {
            s.set_only_v6(true)?;
            s.set_multicast_loop_v6(true)?;
            s.set_multicast_hops_v6(1)?;
            (Ipv6Addr::UNSPECIFIED, group.port()).into()
        } else {
            s.set_multicast_loop_v4(true)?;
            s.set_multicast_ttl_v4(1)?;
            (Ipv4Addr::UNSPECIFIED, group.port()).into()
        };
        s.bind(&any.into())?;
        s.set_nonblocking(true)?;
        Ok(Group {
            socket: tokio::net::UdpSocket::from_std(s.into())?,
            group,
            joined: HashSet::new(),
        })
    }

    pub fn is_v6(&self) -> bool {
        self.group.is_ipv6()
    }

    pub fn group(&self) -> SocketAddr {
        self.group
    }

    pub fn joined(&self) -> impl Iterator<Item = &Iface> {
        self.joined.iter()
    }

    /// Joins the group on interfaces of our family not joined yet; forgets ones that are gone.
    pub fn join(&mut self, ifaces: &[Iface]) {
        let mine: Vec<Iface> = ifaces
            .iter()
            .filter(|i| i.ip.is_ipv6() == self.is_v6())
            .copied()
            .collect();
        self.joined.retain(|i| mine.contains(i));
        let sock = SockRef::from(&self.socket);
        for i in mine {
            if self.joined.contains(&i) {
                continue;
            }
            let joined = match (self.group.ip(), i.ip) {
                (IpAddr::V4(g), IpAddr::V4(ip)) => sock.join_multicast_v4(&g, &ip),
                (IpAddr::V6(g), _) => sock.join_multicast_v6(&g, i.index),
                _ => continue,
            };
            match joined {
                Ok(()) => {}
                // Already a member through another address of the same interface.
                Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {}
                Err(e) => {
                    tracing::warn!("LSD: cannot join {} on {}: {e}", self.group, i.ip);
                    continue;
                }
            }
            tracing::info!(interface = %i.ip, group = %self.group, "LSD: listening for local peers");
            self.joined.insert(i);
        }
    }

    /// Sends `datagram` out of every joined interface (once per interface, however many
    /// addresses it has).
    pub async fn send(&self, datagram: &[u8]) {
        let sock = SockRef::from(&self.socket);
        let mut done = HashSet::new();
        for i in &self.joined {
            if !done.insert(i.index) {
                continue;
            }
            // One socket for every interface: the outgoing one is chosen per datagram.
            let chosen = match i.ip {
                IpAddr::V4(ip) => sock.set_multicast_if_v4(&ip),
                IpAddr::V6(_) => sock.set_multicast_if_v6(i.index),
            };
            let sent = match chosen {
                Ok(()) => self.socket.send_to(datagram, self.group).await.map(drop),
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                tracing::debug!(interface = %i.ip, "LSD announce not sent: {e}");
            }
        }
    }

    pub async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.try_recv_from(buf)
    }

    /// The joined interface whose subnet holds `from`, if any: only hosts on our own links are
    /// local (as libtorrent decides), whoever forged a datagram routed in from elsewhere.
    pub fn local_peer(&self, from: SocketAddr, port: u16) -> Option<SocketAddr> {
        let iface = self.joined.iter().find(|i| i.contains(from.ip()))?;
        Some(match from {
            SocketAddr::V4(a) => SocketAddr::from((*a.ip(), port)),
            // A link-local sender is only reachable through the interface it is on.
            SocketAddr::V6(a) => {
                let scope = if is_link_local(a.ip()) {
                    iface.index
                } else {
                    0
                };
                SocketAddr::V6(SocketAddrV6::new(*a.ip(), port, 0, scope))
            }
        })
    }
}

fn is_link_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}
