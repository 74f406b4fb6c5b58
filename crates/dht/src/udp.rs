//! A small tokio driver running one engine on one UDP/IP socket.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::engine::{Config, Dht, DhtEvent};

/// An engine and its socket. Call [`UdpDriver::step`] in a loop (it is cancel-safe, so it can
/// sit in a `select!` next to other work), then take events from [`UdpDriver::dht`].
pub struct UdpDriver {
    socket: UdpSocket,
    /// The engine: start lookups on it, drain its events.
    pub dht: Dht<SocketAddr>,
    buf: Vec<u8>,
}

impl UdpDriver {
    /// Binds `addr` and creates the engine.
    pub async fn bind(addr: SocketAddr, config: Config<SocketAddr>) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr).await?;
        Ok(Self::with_socket(socket, Dht::new(config, Instant::now())))
    }

    /// Runs `dht` on an existing socket.
    pub fn with_socket(socket: UdpSocket, dht: Dht<SocketAddr>) -> Self {
        UdpDriver {
            socket,
            dht,
            buf: vec![0; 65536],
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends what the engine queued (without waiting: a full socket buffer drops the datagram,
    /// as the network might), then waits for one datagram or the engine's next deadline.
    pub async fn step(&mut self) -> io::Result<()> {
        self.flush();
        let deadline = self
            .dht
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        tokio::select! {
            r = self.socket.recv_from(&mut self.buf) => {
                match r {
                    Ok((n, from)) => self.dht.handle_datagram(from, &self.buf[..n], Instant::now()),
                    // ICMP errors from earlier sends surface here on some systems; not fatal.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused
                        || e.kind() == io::ErrorKind::ConnectionReset => {}
                    Err(e) => return Err(e),
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
        self.dht.handle_timeout(Instant::now());
        self.flush();
        Ok(())
    }

    fn flush(&mut self) {
        while let Some((to, bytes)) = self.dht.poll_transmit() {
            let _ = self.socket.try_send_to(&bytes, to);
        }
    }

    /// Drives the engine until it reports an event.
    pub async fn next_event(&mut self) -> io::Result<DhtEvent<SocketAddr>> {
        loop {
            if let Some(e) = self.dht.poll_event() {
                return Ok(e);
            }
            self.step().await?;
        }
    }
}
