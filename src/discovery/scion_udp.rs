//! A plain SCION/UDP socket for the DHT over SCION, on a port of its own as in the original
//! client (its QUIC socket stays QUIC-only): datagrams are wrapped in SCION/UDP headers with a
//! path from the SCION daemon (cached per destination AS, [`PathCache`]) and sent to the path's
//! first border router, or straight to a host of our own AS. [`bind_in_as`] also binds the
//! HTTP-over-QUIC/SCION side channel's socket.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::scion::daemon::DaemonClient;
use crate::scion::packet::{self, Decoded};
use crate::scion::{Ia, ScionAddr, ScionPath};

/// How long a destination AS's path is used before asking the daemon again (paths are
/// valid for hours; this also recovers from a path that went down).
const PATH_TTL: Duration = Duration::from_secs(60);
/// How long a failed lookup is remembered (no daemon query per datagram to a dead AS).
const NO_PATH_TTL: Duration = Duration::from_secs(10);

pub struct ScionUdp {
    socket: tokio::net::UdpSocket,
    local: ScionAddr,
    paths: PathCache,
    buf: Vec<u8>,
    out: Vec<u8>,
}

/// Binds a UDP socket in the daemon's AS on `host` (127.0.0.1 by default) and `port`, or with
/// port 0 a free port of the AS's dispatched range (routers deliver only there).
pub async fn bind_in_as(
    daemon_addr: &str,
    host: Option<IpAddr>,
    port: u16,
) -> io::Result<(tokio::net::UdpSocket, ScionAddr, DaemonClient)> {
    let (daemon, ia) = crate::client::connect_daemon(daemon_addr)
        .await
        .map_err(io::Error::other)?;
    let host = host.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let ports = match port {
        0 => crate::client::port_candidates(&daemon).await,
        p => {
            crate::client::warn_outside_dispatched_range(&daemon, p).await;
            vec![p]
        }
    };
    let mut last = io::Error::other("no port to try");
    for port in ports {
        match tokio::net::UdpSocket::bind(SocketAddr::new(host, port)).await {
            Ok(socket) => {
                let port = socket.local_addr()?.port();
                return Ok((socket, ScionAddr::new(ia, host, port), daemon));
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// One path per destination AS from the SCION daemon, cached for a while.
pub struct PathCache {
    local_ia: Ia,
    daemon: DaemonClient,
    paths: HashMap<Ia, (Instant, Option<ScionPath>)>,
}

impl PathCache {
    pub fn new(daemon: DaemonClient, local_ia: Ia) -> Self {
        Self {
            local_ia,
            daemon,
            paths: HashMap::new(),
        }
    }

    /// A path to `ia` (the empty path for our own AS); `None` if the daemon knows none.
    pub async fn path_to(&mut self, ia: Ia) -> Option<ScionPath> {
        let now = Instant::now();
        if let Some((at, p)) = self.paths.get(&ia) {
            let ttl = if p.is_some() { PATH_TTL } else { NO_PATH_TTL };
            if now.saturating_duration_since(*at) < ttl {
                return p.clone();
            }
        }
        let path = if ia == self.local_ia {
            Some(ScionPath::local(ia))
        } else {
            match self.daemon.paths(ia, false).await {
                Ok(paths) => paths.into_iter().next(),
                Err(e) => {
                    tracing::debug!(%ia, "no SCION path: {e}");
                    None
                }
            }
        };
        self.paths.insert(ia, (now, path.clone()));
        path
    }
}

impl ScionUdp {
    /// Binds as [`bind_in_as`] does.
    pub async fn bind(daemon_addr: &str, host: Option<IpAddr>, port: u16) -> io::Result<Self> {
        let (socket, local, daemon) = bind_in_as(daemon_addr, host, port).await?;
        Ok(Self {
            socket,
            local,
            paths: PathCache::new(daemon, local.ia),
            buf: vec![0; 65536],
            out: Vec::with_capacity(2048),
        })
    }

    pub fn local_addr(&self) -> ScionAddr {
        self.local
    }

    /// Sends one datagram; a destination without a path is dropped (as the network might).
    pub async fn send_to(&mut self, dst: &ScionAddr, payload: &[u8]) -> io::Result<()> {
        let Some(path) = self.paths.path_to(dst.ia).await else {
            return Ok(());
        };
        self.out.clear();
        if let Err(e) = packet::encode_udp(&self.local, dst, &path.raw, payload, &mut self.out) {
            tracing::debug!(%dst, "cannot encode a DHT datagram: {e}");
            return Ok(());
        }
        let next_hop = path.first_hop.unwrap_or(dst.socket_addr());
        match self.socket.send_to(&self.out, next_hop).await {
            Ok(_) => Ok(()),
            // A full buffer or an unreachable hop: dropped, as the network might.
            Err(e) if e.kind() != io::ErrorKind::PermissionDenied => {
                tracing::debug!(%dst, "DHT datagram not sent: {e}");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The next SCION/UDP datagram for us: (sender, payload). SCMP messages and garbage are
    /// skipped. Cancel-safe.
    pub async fn recv_from(&mut self) -> io::Result<(ScionAddr, Vec<u8>)> {
        loop {
            let n = match self.socket.recv_from(&mut self.buf).await {
                Ok((n, _)) => n,
                Err(e)
                    if e.kind() == io::ErrorKind::ConnectionRefused
                        || e.kind() == io::ErrorKind::ConnectionReset =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            if let Ok(Decoded::Udp { src, payload, .. }) = packet::decode_checked(&self.buf[..n]) {
                return Ok((src, payload.to_vec()));
            }
        }
    }
}
