//! The SCION/UDP socket under scion-apps' bwtester protocol: a plain blocking UDP socket in
//! the AS, datagrams wrapped by our SCION codec ([`packet::UdpEncoder`], one header template
//! per destination and path) and sent to the path's first-hop router (or straight to a host
//! of our own AS); received packets decoded and checked by [`packet::decode_checked`].
//!
//! bwtester needs what the QUIC stack hides: a test's packets go over one fixed path, the
//! server answers over the reverse of the path of the client's request (via the router that
//! delivered it), and a receiver filters by the exact sender address. Blocking sockets with
//! one thread per direction keep the sender's pacing independent of any event loop.
//!
//! No GRO here: bwtester's test packets are equal-sized, and a coalesced batch would reach the
//! receiver as one datagram.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::scion::packet::{self, Decoded, PacketError, ScmpMessage, UdpEncoder};
use crate::scion::{Ia, ScionAddr, ScionPath};

/// Longest single wait in the kernel; deadlines are checked at least this often.
const POLL: Duration = Duration::from_millis(50);
/// Kernel buffers: a paced sender never needs more, a receiver rides out scheduling gaps.
const SOCKET_BUFFER: usize = 4 << 20;
/// Largest datagram read (anything longer is truncated and counted as a wrong size).
const RECV_BUF: usize = 65536 + 1024;

/// Where and how datagrams to one destination go: its address, the underlay next hop and a
/// header template for the path.
#[derive(Debug, Clone)]
pub struct Route {
    pub dst: ScionAddr,
    /// The first-hop router, or the destination host itself in our own AS.
    pub next_hop: SocketAddr,
    encoder: UdpEncoder,
}

impl Route {
    /// To `dst` from `local` over `path` (a daemon path, or [`ScionPath::local`]).
    pub fn over(local: &ScionAddr, dst: ScionAddr, path: &ScionPath) -> Result<Route, PacketError> {
        let next_hop = match path.first_hop {
            Some(h) if !path.is_local() => h,
            None if !path.is_local() => {
                return Err(PacketError::InvalidPath("the daemon gave no first hop"))
            }
            _ => dst.socket_addr(),
        };
        Ok(Route {
            dst,
            next_hop,
            encoder: UdpEncoder::new(local, &dst, &path.raw)?,
        })
    }

    /// To `dst` from `local` over the reverse of `received_path`, the path of a packet that
    /// the underlay address `from` delivered: via that router, or (same AS, empty path)
    /// straight to `dst`'s host and port.
    pub fn reply(
        local: &ScionAddr,
        dst: ScionAddr,
        received_path: &[u8],
        from: SocketAddr,
    ) -> Result<Route, PacketError> {
        let reversed = packet::reverse_path(received_path)?;
        let next_hop = if reversed.is_empty() {
            dst.socket_addr()
        } else {
            from
        };
        Ok(Route {
            dst,
            next_hop,
            encoder: UdpEncoder::new(local, &dst, &reversed)?,
        })
    }

    /// SCION and UDP header bytes in front of every payload.
    pub fn overhead(&self) -> usize {
        self.encoder.overhead()
    }
}

/// One SCION/UDP datagram for us.
#[derive(Debug)]
pub struct Datagram<'a> {
    pub src: ScionAddr,
    /// The raw path it came over (empty from our own AS).
    pub path: &'a [u8],
    /// The underlay sender: the router that delivered it, or the host in our own AS.
    pub from: SocketAddr,
    pub payload: &'a [u8],
}

/// What a socket received that was not a SCION/UDP datagram.
#[derive(Debug, Default, Clone)]
pub struct Skipped {
    /// Not a SCION packet we can read (or a bad UDP checksum).
    pub undecodable: u64,
    /// SCMP messages (errors from routers, mostly).
    pub scmp: u64,
    /// The last SCMP error, described.
    pub last_scmp: Option<String>,
}

/// A blocking SCION/UDP socket.
pub struct Socket {
    inner: std::net::UdpSocket,
    local: ScionAddr,
    buf: Vec<u8>,
    out: Vec<u8>,
    read_timeout: Option<Duration>,
    pub skipped: Skipped,
}

impl Socket {
    /// Binds `host:port` in AS `ia` (port 0: the kernel picks one).
    pub fn bind(ia: Ia, host: IpAddr, port: u16) -> io::Result<Socket> {
        let addr = SocketAddr::new(host, port);
        let domain = if addr.is_ipv4() {
            socket2::Domain::IPV4
        } else {
            socket2::Domain::IPV6
        };
        let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
        let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = s.set_send_buffer_size(SOCKET_BUFFER);
        s.bind(&addr.into())?;
        let inner: std::net::UdpSocket = s.into();
        let port = inner.local_addr()?.port();
        Ok(Socket {
            inner,
            local: ScionAddr::new(ia, host, port),
            buf: vec![0; RECV_BUF],
            out: Vec::with_capacity(RECV_BUF),
            read_timeout: None,
            skipped: Skipped::default(),
        })
    }

    /// Binds the first of `ports` that is free (0 lets the kernel pick), skipping `except`.
    pub fn bind_first_free(
        ia: Ia,
        host: IpAddr,
        ports: &[u16],
        except: &[u16],
    ) -> io::Result<Socket> {
        let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no port to try");
        for &p in ports.iter().filter(|p| !except.contains(p)) {
            match Socket::bind(ia, host, p) {
                Ok(s) if except.contains(&s.local.port) => continue,
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub fn local(&self) -> ScionAddr {
        self.local
    }

    /// Another handle on the same socket (for a second thread), with its own buffers.
    pub fn try_clone(&self) -> io::Result<Socket> {
        Ok(Socket {
            inner: self.inner.try_clone()?,
            local: self.local,
            buf: vec![0; RECV_BUF],
            out: Vec::with_capacity(RECV_BUF),
            // The kernel's timeout is the socket's, shared with the original: set it anew.
            read_timeout: None,
            skipped: Skipped::default(),
        })
    }

    /// Sends `payload` along `route`. A full buffer or an unreachable next hop drops the
    /// datagram (as the network might); other errors are returned.
    pub fn send(&mut self, route: &Route, payload: &[u8]) -> io::Result<()> {
        self.out.clear();
        route
            .encoder
            .encode(payload, &mut self.out)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        match self.inner.send_to(&self.out, route.next_hop) {
            Ok(_) => Ok(()),
            Err(e) if is_transient(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The next SCION/UDP datagram for us, or `None` once `deadline` has passed (the kernel's
    /// wait may end a little past it with a datagram, which is returned, never dropped). SCMP messages and undecodable packets
    /// are counted in [`Socket::skipped`] and skipped.
    pub fn recv(&mut self, deadline: Instant) -> io::Result<Option<Datagram<'_>>> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let wait = (deadline - now).clamp(Duration::from_micros(100), POLL);
            if self.read_timeout != Some(wait) {
                self.inner.set_read_timeout(Some(wait))?;
                self.read_timeout = Some(wait);
            }
            let (n, from) = match self.inner.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) || is_transient(&e) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            let base = self.buf.as_ptr() as usize;
            let span = |s: &[u8]| (s.as_ptr() as usize - base, s.len());
            match packet::decode_checked(&self.buf[..n]) {
                Ok(Decoded::Udp {
                    src, path, payload, ..
                }) => {
                    let ((p, pl), (d, dl)) = (span(path), span(payload));
                    return Ok(Some(Datagram {
                        src,
                        path: &self.buf[p..p + pl],
                        from,
                        payload: &self.buf[d..d + dl],
                    }));
                }
                Ok(Decoded::Scmp { src, message, .. }) => {
                    self.skipped.scmp += 1;
                    if message.is_error() {
                        self.skipped.last_scmp = Some(describe_scmp(&message, src.ia));
                    }
                }
                Err(_) => self.skipped.undecodable += 1,
            }
        }
    }
}

/// What the bwtester sides ask the SCION daemon, once, before any socket is bound.
#[derive(Debug, Clone)]
pub struct DaemonAnswers {
    /// Our AS.
    pub ia: Ia,
    /// The AS's dispatched port range, if the daemon told it.
    pub port_range: Option<(u16, u16)>,
    /// Ports to try for a socket of ours: a random stretch of that range, or `[0]` when the
    /// range is every port (see [`crate::client::port_candidates`]).
    pub port_candidates: Vec<u16>,
    /// Paths to the AS asked for (the empty path for our own AS).
    pub paths: Vec<ScionPath>,
}

/// A daemon that cannot be asked.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct DaemonFailed(pub String);

/// Asks the daemon at `addr` for our AS, its port range and (with `dst`) the paths to `dst`.
/// Blocking: runs the gRPC client on a runtime of its own (an error inside another runtime).
pub fn ask_daemon(addr: &str, dst: Option<Ia>) -> Result<DaemonAnswers, DaemonFailed> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(DaemonFailed(
            "the bwtester sides block; call them outside an async runtime".into(),
        ));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DaemonFailed(format!("cannot start a runtime: {e}")))?;
    rt.block_on(async {
        let (daemon, ia) = crate::client::connect_daemon(addr)
            .await
            .map_err(|e| DaemonFailed(e.to_string()))?;
        let port_range = daemon.port_range().await.ok();
        let port_candidates = crate::client::port_candidates(&daemon).await;
        let paths = match dst {
            None => Vec::new(),
            Some(d) if d == ia => vec![ScionPath::local(ia)],
            Some(d) => daemon.paths(d, false).await.map_err(|e| {
                DaemonFailed(format!(
                    "path lookup at the SCION daemon {addr} failed: {e}"
                ))
            })?,
        };
        Ok(DaemonAnswers {
            ia,
            port_range,
            port_candidates,
            paths,
        })
    })
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
    ) || e.raw_os_error() == Some(105) // ENOBUFS
}

fn describe_scmp(m: &ScmpMessage<'_>, from: Ia) -> String {
    let what = match m {
        ScmpMessage::DestinationUnreachable { code, .. } => {
            format!("destination unreachable ({code:?})")
        }
        ScmpMessage::PacketTooBig { mtu, .. } => format!("packet too big (MTU {mtu})"),
        ScmpMessage::ParameterProblem { code, .. } => format!("parameter problem ({code:?})"),
        ScmpMessage::ExternalInterfaceDown { ia, interface, .. } => {
            format!("external interface down ({ia}#{interface})")
        }
        ScmpMessage::InternalConnectivityDown {
            ia,
            ingress,
            egress,
            ..
        } => format!("internal connectivity down ({ia} {ingress}>{egress})"),
        ScmpMessage::Informational { msg_type, code } | ScmpMessage::Unknown { msg_type, code } => {
            format!("SCMP type {msg_type} code {code}")
        }
    };
    format!("SCMP {what} from {from}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scion::parse_ia;
    use std::net::Ipv4Addr;

    #[test]
    fn same_as_datagrams_round_trip_and_deadlines_hold() {
        let ia = parse_ia("1-ff00:0:111").unwrap();
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut a = Socket::bind(ia, lo, 0).unwrap();
        let mut b = Socket::bind(ia, lo, 0).unwrap();
        let to_b = Route::over(&a.local(), b.local(), &ScionPath::local(ia)).unwrap();
        assert_eq!(to_b.next_hop, b.local().socket_addr());
        a.send(&to_b, b"hello").unwrap();
        // Garbage on the underlay is skipped and counted.
        std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .send_to(b"not scion", b.local().socket_addr())
            .unwrap();
        let b_local = b.local();
        let d = b
            .recv(Instant::now() + Duration::from_secs(2))
            .unwrap()
            .expect("datagram");
        assert_eq!(d.src, a.local());
        assert_eq!(d.payload, b"hello");
        assert!(d.path.is_empty());
        let back = Route::reply(&b_local, d.src, d.path, d.from).unwrap();
        assert_eq!(back.next_hop, a.local().socket_addr());
        let start = Instant::now();
        assert!(b
            .recv(Instant::now() + Duration::from_millis(120))
            .unwrap()
            .is_none());
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(120) && waited < Duration::from_secs(1));
        assert_eq!(b.skipped.undecodable, 1);
    }
}
