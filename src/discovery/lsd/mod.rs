//! Local Service Discovery (BEP 14) as a discovery front end: every public torrent that looks
//! for peers is announced to the multicast group 239.192.152.143:6771 (and [ff15::efc0:988f]:6771)
//! on the local network, with our TCP listener's port, and announces heard from hosts on our own subnets
//! become peers (`AddPeers`, source `lsd`) of the torrents we have. Private torrents (BEP 27)
//! are left out both ways.
//!
//! The interfaces are those of `--tcp-listen`: its address when it names one, else every
//! interface that is up and not loopback — IPv4 ones for `0.0.0.0`, IPv6 ones too for `[::]`
//! (the IPv6 group is [ff15::efc0:988f]:6771) — looked at again every minute, so an interface
//! that comes up later is joined. Datagrams go out with TTL 1: they never leave the link.

mod group;
mod interfaces;
mod message;
mod schedule;

pub use interfaces::InterfaceError;
pub use message::{Announce, LsdParseError, GROUP_V4, GROUP_V6, MAX_DATAGRAM};

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::client::control::{
    parse_info_hash, ClientHandle, ClientSnapshot, Command, InfoHash, PeerSource,
};
use crate::scion::PeerAddr;
use group::Group;
use interfaces::Interfaces;
use schedule::{Heard, Schedule};

/// How often the interface list is read again.
const RESCAN: Duration = Duration::from_secs(60);

/// Why LSD cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LsdError {
    #[error(transparent)]
    Interfaces(#[from] InterfaceError),
    #[error("cannot open the LSD socket on port {port}: {source}", port = GROUP_V4.port())]
    Socket { source: io::Error },
    #[error("cannot start the LSD thread: {0}")]
    Thread(io::Error),
}

/// Starts LSD on a thread of its own; it ends when the client is gone. `tcp_listen` is the
/// TCP listener's address as configured (it decides the interfaces; the announced port is the
/// bound one, from the snapshot). The interfaces and sockets are checked before it returns.
pub fn spawn_lsd(handle: ClientHandle, tcp_listen: SocketAddr) -> Result<JoinHandle<()>, LsdError> {
    let interfaces = Interfaces::for_listener(tcp_listen)?;
    let ifaces = interfaces.scan()?;
    let families: Vec<bool> = match interfaces {
        Interfaces::All { v6 } => [false].into_iter().chain(v6.then_some(true)).collect(),
        Interfaces::One(ip) => vec![ip.is_ipv6()],
    };
    // The sockets are tokio's, so they are opened on the thread and runtime that drive them
    // (the caller may be inside a runtime of its own); how that went is sent back, so that a
    // socket error is the caller's error.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("bts-lsd".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return drop(ready_tx.send(Err(LsdError::Thread(e)))),
            };
            rt.block_on(async move {
                let opened = families.into_iter().map(Group::open).collect();
                let groups = match opened {
                    Ok(groups) => groups,
                    Err(source) => return drop(ready_tx.send(Err(LsdError::Socket { source }))),
                };
                let mut lsd = Lsd {
                    interfaces,
                    groups,
                    cookie: format!("{:08x}", rand::random::<u32>()),
                    schedule: Schedule::default(),
                    heard: Heard::default(),
                };
                lsd.join(&ifaces);
                if lsd.groups.iter().all(|g| g.joined().next().is_none()) {
                    tracing::warn!(
                        "LSD: no network interface is up yet; looking again every minute"
                    );
                }
                let _ = ready_tx.send(Ok(()));
                lsd.run(handle).await
            })
        })
        .map_err(LsdError::Thread)?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(LsdError::Thread(io::Error::other(
            "the LSD thread ended while starting",
        ))),
    }
}

struct Lsd {
    interfaces: Interfaces,
    /// IPv4, and IPv6 when the listener is on an IPv6 address or `[::]`.
    groups: Vec<Group>,
    cookie: String,
    schedule: Schedule,
    heard: Heard,
}

impl Lsd {
    fn join(&mut self, ifaces: &[interfaces::Iface]) {
        for g in &mut self.groups {
            g.join(ifaces);
        }
    }

    async fn run(mut self, handle: ClientHandle) {
        let mut snapshots = handle.subscribe();
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let mut next_scan = Instant::now() + RESCAN;
        // What the snapshot says, read only when it changes (not per datagram): the public
        // torrents looking for peers, and our TCP port — nothing is announced (nor falls due)
        // before the listener's port is known.
        let (mut ours, mut port) = what_to_announce(&snapshots.borrow());
        loop {
            let deadline = self
                .schedule
                .next_deadline()
                .unwrap_or(next_scan)
                .min(next_scan);
            tokio::select! {
                r = recv_any(&self.groups, &mut buf) => match r {
                    Ok((g, n, from)) => self.on_datagram(&handle, &ours, g, &buf[..n], from),
                    Err(e) => tracing::debug!("LSD receive: {e}"),
                },
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        break; // the client is gone
                    }
                    (ours, port) = what_to_announce(&snapshots.borrow_and_update());
                }
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
            let now = Instant::now();
            if now >= next_scan {
                match self.interfaces.scan() {
                    Ok(ifaces) => self.join(&ifaces),
                    Err(e) => tracing::warn!("LSD: {e}"),
                }
                next_scan = now + RESCAN;
            }
            self.schedule.track(&ours, now);
            if let Some(port) = port {
                for ih in self.schedule.take_due(now) {
                    self.announce(ih, port).await;
                }
            }
        }
    }

    /// One datagram per torrent, group and interface, as libtorrent and Transmission send
    /// them (some read only the first `Infohash` of a datagram).
    async fn announce(&self, ih: InfoHash, port: u16) {
        let announce = Announce {
            port,
            info_hashes: vec![ih],
            cookie: Some(self.cookie.clone()),
        };
        for g in &self.groups {
            g.send(&announce.encode(g.group())).await;
        }
    }

    fn on_datagram(
        &mut self,
        handle: &ClientHandle,
        ours: &HashSet<InfoHash>,
        group: usize,
        datagram: &[u8],
        from: SocketAddr,
    ) {
        let announce = match Announce::parse(datagram) {
            Ok(a) => a,
            Err(e) => return tracing::debug!(%from, "LSD: ignoring a datagram: {e}"),
        };
        if announce.cookie.as_deref() == Some(self.cookie.as_str()) {
            return; // our own, looped back
        }
        let Some(peer) = self.groups[group].local_peer(from, announce.port) else {
            return tracing::debug!(%from, "LSD: ignoring a datagram from outside our subnets");
        };
        let now = Instant::now();
        for ih in announce.info_hashes {
            if ours.contains(&ih) && self.heard.is_new(ih, peer, now) {
                tracing::debug!(%peer, info_hash = %data_encoding::HEXLOWER.encode(&ih), "LSD peer");
                add_peer(handle, ih, PeerAddr::Ip(peer));
            }
        }
    }
}

/// The next datagram on any group: (which group, its length, its sender).
async fn recv_any(groups: &[Group], buf: &mut [u8]) -> io::Result<(usize, usize, SocketAddr)> {
    loop {
        let ready = match groups {
            [g] => g.readable().await.map(|()| 0),
            [a, b] => tokio::select! {
                r = a.readable() => r.map(|()| 0),
                r = b.readable() => r.map(|()| 1),
            },
            _ => std::future::pending().await,
        }?;
        match groups[ready].try_recv(buf) {
            Ok((n, from)) => return Ok((ready, n, from)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The public torrents looking for peers, and the port our TCP listener is bound to; no
/// torrents while the port is unknown.
fn what_to_announce(snap: &ClientSnapshot) -> (HashSet<InfoHash>, Option<u16>) {
    let port = snap
        .tcp_listen
        .as_deref()
        .and_then(|l| l.parse::<SocketAddr>().ok())
        .map(|a| a.port());
    let torrents = snap
        .torrents
        .iter()
        .filter(|t| port.is_some() && super::wants_peers(t) && !t.private)
        .filter_map(|t| parse_info_hash(&t.info_hash).ok())
        .collect();
    (torrents, port)
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
