//! Local Service Discovery (BEP 14) as a discovery front end: every public torrent that looks
//! for peers is announced to the IPv4 multicast group 239.192.152.143:6771 on the local
//! network, with our TCP listener's port, and announces heard from hosts on our own subnets
//! become peers (`AddPeers`, source `lsd`) of the torrents we have. Private torrents (BEP 27)
//! are left out both ways.
//!
//! The interfaces are those of `--tcp-listen`: its address when it names one, else every IPv4
//! interface that is up and not loopback (looked at again every minute, so an interface that
//! comes up later is joined). Datagrams go out with TTL 1: they never leave the link.

mod message;
mod schedule;

pub use message::{Announce, LsdParseError, GROUP_V4, MAX_DATAGRAM};

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::client::control::{
    parse_info_hash, ClientHandle, ClientSnapshot, Command, InfoHash, PeerSource,
};
use crate::scion::PeerAddr;
use schedule::{Heard, Schedule};

/// How often the interface list is read again.
const RESCAN: Duration = Duration::from_secs(60);

/// Why LSD cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LsdError {
    #[error("Local Service Discovery needs an IPv4 TCP listener (--tcp-listen), not {0}")]
    NotIpv4(IpAddr),
    #[error("Local Service Discovery cannot work on the loopback address {0}; listen on a network interface or on 0.0.0.0")]
    Loopback(Ipv4Addr),
    #[error("{0} is not an address of this host's interfaces")]
    NoSuchInterface(Ipv4Addr),
    #[error("cannot read the network interfaces: {0}")]
    Interfaces(io::Error),
    #[error("cannot open the LSD socket on port {port}: {source}", port = GROUP_V4.port())]
    Socket { source: io::Error },
    #[error("cannot start the LSD thread: {0}")]
    Thread(io::Error),
}

/// An IPv4 interface address and its subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Subnet {
    ip: Ipv4Addr,
    mask: Ipv4Addr,
}

impl Subnet {
    fn contains(&self, other: Ipv4Addr) -> bool {
        let m = u32::from(self.mask);
        u32::from(self.ip) & m == u32::from(other) & m
    }
}

/// Which interfaces to use for a TCP listener on `listen`.
#[derive(Debug, Clone, Copy)]
enum Interfaces {
    /// The one holding this address.
    One(Ipv4Addr),
    /// Every IPv4 interface that is up and not loopback.
    All,
}

impl Interfaces {
    fn for_listener(listen: SocketAddr) -> Result<Self, LsdError> {
        match listen.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => Ok(Interfaces::All),
            IpAddr::V4(ip) if ip.is_loopback() => Err(LsdError::Loopback(ip)),
            IpAddr::V4(ip) => Ok(Interfaces::One(ip)),
            IpAddr::V6(ip) if ip.is_unspecified() => Ok(Interfaces::All),
            ip => Err(LsdError::NotIpv4(ip)),
        }
    }

    fn scan(self) -> Result<Vec<Subnet>, LsdError> {
        let all = if_addrs::get_if_addrs().map_err(LsdError::Interfaces)?;
        let v4 = all.into_iter().filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(a) if !a.ip.is_loopback() && i.is_oper_up() => Some(Subnet {
                ip: a.ip,
                mask: a.netmask,
            }),
            _ => None,
        });
        match self {
            Interfaces::All => Ok(v4.collect()),
            Interfaces::One(ip) => v4
                .filter(|s| s.ip == ip)
                .map(|s| vec![s])
                .next()
                .ok_or(LsdError::NoSuchInterface(ip)),
        }
    }
}

/// Opens the group socket and starts LSD on a thread of its own; it ends when the client is
/// gone. `tcp_listen` is the TCP listener's bound address (what the announces name).
pub fn spawn_lsd(handle: ClientHandle, tcp_listen: SocketAddr) -> Result<JoinHandle<()>, LsdError> {
    let interfaces = Interfaces::for_listener(tcp_listen)?;
    let subnets = interfaces.scan()?;
    let socket = group_socket().map_err(|source| LsdError::Socket { source })?;
    let mut lsd = Lsd {
        interfaces,
        joined: HashSet::new(),
        cookie: format!("{:08x}", rand::random::<u32>()),
        schedule: Schedule::default(),
        heard: Heard::default(),
    };
    lsd.join(SockRef::from(&socket), subnets);
    if lsd.joined.is_empty() {
        tracing::warn!("LSD: no IPv4 network interface is up yet; looking again every minute");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LsdError::Thread)?;
    std::thread::Builder::new()
        .name("bts-lsd".into())
        .spawn(move || rt.block_on(lsd.run(socket, handle)))
        .map_err(LsdError::Thread)
}

/// A UDP socket on the LSD port that other programs on this host may share (libtorrent and
/// Transmission bind it too), seeing our own datagrams (filtered by cookie) so that two
/// clients on one host find each other.
fn group_socket() -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, GROUP_V4.port())).into())?;
    s.set_multicast_loop_v4(true)?;
    s.set_multicast_ttl_v4(1)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

struct Lsd {
    interfaces: Interfaces,
    joined: HashSet<Subnet>,
    cookie: String,
    schedule: Schedule,
    heard: Heard,
}

impl Lsd {
    /// Joins the group on interfaces not joined yet; forgets ones that are gone.
    fn join(&mut self, socket: SockRef<'_>, subnets: Vec<Subnet>) {
        self.joined.retain(|s| subnets.contains(s));
        for s in subnets {
            if self.joined.contains(&s) {
                continue;
            }
            match socket.join_multicast_v4(GROUP_V4.ip(), &s.ip) {
                // Already a member through another address of the same interface.
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {}
                Err(e) => {
                    tracing::warn!("LSD: cannot join the group on {}: {e}", s.ip);
                    continue;
                }
            }
            tracing::info!(interface = %s.ip, "LSD: listening for local peers");
            self.joined.insert(s);
        }
    }

    async fn run(mut self, socket: std::net::UdpSocket, handle: ClientHandle) {
        let socket = match tokio::net::UdpSocket::from_std(socket) {
            Ok(s) => s,
            Err(e) => return tracing::error!("LSD socket: {e}"),
        };
        let mut snapshots = handle.subscribe();
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let mut next_scan = Instant::now() + RESCAN;
        loop {
            let deadline = self
                .schedule
                .next_deadline()
                .unwrap_or(next_scan)
                .min(next_scan);
            tokio::select! {
                r = socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        let snap = snapshots.borrow().clone();
                        self.on_datagram(&handle, &snap, &buf[..n], from);
                    }
                    Err(e) => tracing::debug!("LSD receive: {e}"),
                },
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        break; // the client is gone
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
            let now = Instant::now();
            if now >= next_scan {
                match self.interfaces.scan() {
                    Ok(subnets) => self.join(SockRef::from(&socket), subnets),
                    Err(e) => tracing::warn!("LSD: {e}"),
                }
                next_scan = now + RESCAN;
            }
            let snap = snapshots.borrow().clone();
            // Nothing is announced (nor falls due) before the listener's port is known.
            let port = tcp_port(&snap);
            let wanted = port.map(|_| announced_torrents(&snap)).unwrap_or_default();
            self.schedule.track(&wanted, now);
            if let Some(port) = port {
                for ih in self.schedule.take_due(now) {
                    self.announce(&socket, ih, port).await;
                }
            }
        }
    }

    /// One datagram per torrent and interface, as libtorrent and Transmission send them (some
    /// read only the first `Infohash` of a datagram).
    async fn announce(&self, socket: &tokio::net::UdpSocket, ih: InfoHash, port: u16) {
        let datagram = Announce {
            port,
            info_hashes: vec![ih],
            cookie: Some(self.cookie.clone()),
        }
        .encode(GROUP_V4);
        for s in &self.joined {
            // One socket for every interface: the outgoing one is chosen per datagram.
            let sent = match SockRef::from(socket).set_multicast_if_v4(&s.ip) {
                Ok(()) => socket.send_to(&datagram, GROUP_V4).await.map(drop),
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                tracing::debug!(interface = %s.ip, "LSD announce not sent: {e}");
            }
        }
    }

    fn on_datagram(
        &mut self,
        handle: &ClientHandle,
        snap: &ClientSnapshot,
        datagram: &[u8],
        from: SocketAddr,
    ) {
        let IpAddr::V4(src) = from.ip() else { return };
        // Only hosts on our own subnets (as libtorrent): a datagram routed in from elsewhere
        // is not local, whoever forged it.
        if !self.joined.iter().any(|s| s.contains(src)) {
            return;
        }
        let announce = match Announce::parse(datagram) {
            Ok(a) => a,
            Err(e) => return tracing::debug!(%from, "LSD: ignoring a datagram: {e}"),
        };
        if announce.cookie.as_deref() == Some(self.cookie.as_str()) {
            return; // our own, looped back
        }
        let ours = announced_torrents(snap);
        let peer = SocketAddr::from((src, announce.port));
        let now = Instant::now();
        for ih in announce.info_hashes {
            if ours.contains(&ih) && self.heard.is_new(ih, peer, now) {
                tracing::debug!(%peer, info_hash = %data_encoding::HEXLOWER.encode(&ih), "LSD peer");
                add_peer(handle, ih, PeerAddr::Ip(peer));
            }
        }
    }
}

/// Public torrents looking for peers.
fn announced_torrents(snap: &ClientSnapshot) -> Vec<InfoHash> {
    snap.torrents
        .iter()
        .filter(|t| super::wants_peers(t) && !t.private)
        .filter_map(|t| parse_info_hash(&t.info_hash).ok())
        .collect()
}

/// The port our TCP listener is bound to, if there is one.
fn tcp_port(snap: &ClientSnapshot) -> Option<u16> {
    let listen = snap.tcp_listen.as_deref()?;
    listen.parse::<SocketAddr>().ok().map(|a| a.port())
}

/// Hands the peer to the client without waiting: LSD goes on reading meanwhile.
fn add_peer(handle: &ClientHandle, info_hash: InfoHash, peer: PeerAddr) {
    let handle = handle.clone();
    tokio::spawn(async move {
        let _ = handle
            .call(|reply| Command::AddPeers {
                info_hash,
                peers: vec![peer],
                source: PeerSource::Lsd,
                reply,
            })
            .await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_match_by_mask() {
        let s = Subnet {
            ip: Ipv4Addr::new(10, 77, 0, 1),
            mask: Ipv4Addr::new(255, 255, 255, 0),
        };
        assert!(s.contains(Ipv4Addr::new(10, 77, 0, 200)));
        assert!(!s.contains(Ipv4Addr::new(10, 77, 1, 2)));
    }

    #[test]
    fn the_listener_decides_the_interfaces() {
        let at = |s: &str| Interfaces::for_listener(s.parse().unwrap());
        assert!(matches!(at("0.0.0.0:6881"), Ok(Interfaces::All)));
        assert!(matches!(at("[::]:6881"), Ok(Interfaces::All)));
        assert!(matches!(at("10.0.0.5:6881"), Ok(Interfaces::One(_))));
        assert!(matches!(at("127.0.0.1:6881"), Err(LsdError::Loopback(_))));
        assert!(matches!(at("[fe80::1]:6881"), Err(LsdError::NotIpv4(_))));
        // An address this host does not have is named, not silently ignored.
        let none = Interfaces::One(Ipv4Addr::new(192, 0, 2, 77)).scan();
        assert!(matches!(none, Err(LsdError::NoSuchInterface(_))));
    }
}
