//! The async `quinn` crate over SCION: an [`AsyncUdpSocket`] that wraps QUIC datagrams in
//! SCION/UDP. It carries the small request/response side channels (HTTP to and from trackers
//! over QUIC/SCION), where quinn's async streams and hyper fit; bulk lanes run on the io_uring
//! driver (`net::scion_net`). Remotes get synthetic socket addresses from the same
//! [`RemoteTable`] the lanes use: one per (SCION address, path).

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::io::ReadBuf;

use crate::quic::remotes::{route_key, RemoteTable};
use crate::scion::packet::{self, Decoded, UdpEncoder};
use crate::scion::{ScionAddr, ScionPath};

/// Remotes not heard from or sent to for this long are forgotten once the table is big (QUIC
/// connections here idle out much sooner).
const ROUTE_IDLE: Duration = Duration::from_secs(120);
/// Table size from which idle remotes are pruned (every sender of a packet gets an entry).
const PRUNE_FROM: usize = 1024;

/// How to reach one (remote, path).
struct Route {
    encoder: UdpEncoder,
    next_hop: SocketAddr,
    last_used: Instant,
}

impl Route {
    fn new(encoder: UdpEncoder, next_hop: SocketAddr) -> Self {
        Self {
            encoder,
            next_hop,
            last_used: Instant::now(),
        }
    }
}

pub struct ScionQuinnSocket {
    io: tokio::net::UdpSocket,
    local: ScionAddr,
    routes: Mutex<RemoteTable<ScionAddr, Route>>,
    /// Whole SCION packets are received here, then their payload is copied to quinn's buffer.
    rx: Mutex<Vec<u8>>,
}

impl fmt::Debug for ScionQuinnSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScionQuinnSocket")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl ScionQuinnSocket {
    pub fn new(io: tokio::net::UdpSocket, local: ScionAddr) -> Self {
        Self {
            io,
            local,
            routes: Mutex::new(RemoteTable::default()),
            rx: Mutex::new(vec![0; 65536]),
        }
    }

    pub fn local(&self) -> ScionAddr {
        self.local
    }

    fn routes(&self) -> MutexGuard<'_, RemoteTable<ScionAddr, Route>> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The address quinn dials to reach `dst` over `path`.
    pub fn route_to(&self, dst: &ScionAddr, path: &ScionPath) -> io::Result<SocketAddr> {
        let key = path_key(&path.raw).map_err(io::Error::other)?;
        let encoder = UdpEncoder::new(&self.local, dst, &path.raw).map_err(io::Error::other)?;
        let next_hop = path.first_hop.unwrap_or(dst.socket_addr());
        Ok(self
            .routes()
            .key_for(dst, key, || Route::new(encoder, next_hop)))
    }

    /// The SCION address a synthetic address stands for.
    pub fn remote(&self, key: SocketAddr) -> Option<ScionAddr> {
        self.routes().get(&key).map(|r| r.addr)
    }

    /// The synthetic address of a datagram's sender; a remote that dialled us is answered on
    /// the reversed path via the router that delivered it (or straight, in the local AS).
    fn key_for_incoming(
        &self,
        src: ScionAddr,
        path: &[u8],
        from: SocketAddr,
    ) -> Option<SocketAddr> {
        let key = path_key(path).ok()?;
        let mut routes = self.routes();
        let now = Instant::now();
        if let Some(k) = routes.lookup(&src, &key) {
            if let Some(r) = routes.get_mut(&k) {
                r.route.last_used = now;
            }
            return Some(k);
        }
        if routes.len() >= PRUNE_FROM {
            let idle: Vec<SocketAddr> = routes
                .iter()
                .filter(|(_, r)| now.saturating_duration_since(r.route.last_used) > ROUTE_IDLE)
                .map(|(k, _)| *k)
                .collect();
            for k in idle {
                routes.remove(&k);
            }
        }
        let reversed = packet::reverse_path(path).ok()?;
        let encoder = UdpEncoder::new(&self.local, &src, &reversed).ok()?;
        let next_hop = if reversed.is_empty() {
            src.socket_addr()
        } else {
            from
        };
        Some(routes.key_for(&src, key, || Route::new(encoder, next_hop)))
    }
}

fn path_key(raw: &[u8]) -> Result<Vec<u16>, packet::PacketError> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    Ok(route_key(&packet::path_interfaces(raw)?))
}

impl AsyncUdpSocket for ScionQuinnSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Writable(self))
    }

    fn try_send(&self, t: &Transmit) -> io::Result<()> {
        let (packet, next_hop) = {
            let mut routes = self.routes();
            let Some(r) = routes.get_mut(&t.destination) else {
                // Not ours to send to (a remote we forgot): dropped, as the network might.
                return Ok(());
            };
            let mut out = Vec::with_capacity(r.route.encoder.overhead() + t.contents.len());
            if r.route.encoder.encode(t.contents, &mut out).is_err() {
                return Ok(());
            }
            r.route.last_used = Instant::now();
            (out, r.route.next_hop)
        };
        match self.io.try_send_to(&packet, next_hop) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(e),
            // An unreachable hop or a full buffer: lost like any datagram; QUIC recovers.
            Err(e) => {
                tracing::debug!(%next_hop, "SCION/QUIC datagram not sent: {e}");
                Ok(())
            }
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let (Some(buf), Some(m)) = (bufs.first_mut(), meta.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        let mut rx = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let mut rb = ReadBuf::new(&mut rx[..]);
            let from = match self.io.poll_recv_from(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(from)) => from,
                // ICMP errors of earlier sends surface here: not this socket's failure.
                Poll::Ready(Err(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    continue
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            };
            let Ok(Decoded::Udp {
                src, path, payload, ..
            }) = packet::decode_checked(rb.filled())
            else {
                continue; // SCMP or garbage
            };
            if payload.len() > buf.len() {
                continue;
            }
            let Some(addr) = self.key_for_incoming(src, path, from) else {
                continue;
            };
            buf[..payload.len()].copy_from_slice(payload);
            *m = RecvMeta {
                addr,
                len: payload.len(),
                stride: payload.len(),
                ecn: None,
                dst_ip: None,
            };
            return Poll::Ready(Ok(1));
        }
    }

    /// An IPv6 address (with the real port): quinn refuses IPv6 remotes on an IPv4 socket, and
    /// every remote here is a synthetic IPv6 address.
    fn local_addr(&self) -> io::Result<SocketAddr> {
        let port = self.io.local_addr()?.port();
        Ok(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port))
    }
}

/// Write readiness of the socket, for quinn's sender.
#[derive(Debug)]
struct Writable(Arc<ScionQuinnSocket>);

impl UdpPoller for Writable {
    fn poll_writable(self: Pin<&mut Self>, cx: &mut Context) -> Poll<io::Result<()>> {
        self.0.io.poll_send_ready(cx)
    }
}
