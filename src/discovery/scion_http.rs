//! HTTP over QUIC over SCION, as scion-apps' `shttp` does it: HTTP/1.1 on one bidirectional
//! QUIC stream per request, ALPN `qs`. A [`ScionQuicEndpoint`] (async `quinn` on a SCION/UDP
//! socket of its own, [`ScionQuinnSocket`]) dials trackers for the announcer
//! ([`ScionConnector`]) and the metrics export, and serves the tracker server's SCION side
//! ([`ScionQuicEndpoint::serve_tracker`]). With another ALPN it is a plain QUIC-over-SCION
//! client: the tests and `examples/quic_load.rs` play lanes' peers with it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bt_tracker::client::{AnnounceError, BoxFuture, HttpIo, ScionConnector};
use bt_tracker::server::{serve_http_connection, Remote, Tracker};
use tokio::sync::Mutex;

use super::scion_udp::{bind_in_as, PathCache};
use crate::net::scion_quinn::ScionQuinnSocket;
use crate::quic::config::{self, QuicTuning};
use crate::scion::ScionAddr;

/// ALPN of HTTP/1.1 on a QUIC stream (scion-apps `shttp`).
pub const ALPN_HTTP: &[u8] = b"qs";
/// How long an HTTP connection may idle before QUIC closes it.
const IDLE: Duration = Duration::from_secs(30);
/// Requests served at once by the tracker's SCION side; beyond it, accepting waits.
const MAX_SERVING: usize = 4096;

pub struct ScionQuicEndpoint {
    endpoint: quinn::Endpoint,
    socket: Arc<ScionQuinnSocket>,
    paths: Mutex<PathCache>,
}

impl ScionQuicEndpoint {
    /// Binds in the AS of the SCION daemon at `sciond`; `serve` also accepts connections.
    pub async fn bind(
        sciond: &str,
        host: Option<IpAddr>,
        port: u16,
        serve: bool,
    ) -> std::io::Result<Self> {
        Self::bind_alpn(sciond, host, port, ALPN_HTTP, serve).await
    }

    /// The same endpoint for another application protocol (tests play lanes' peers with it).
    pub async fn bind_alpn(
        sciond: &str,
        host: Option<IpAddr>,
        port: u16,
        alpn: &[u8],
        serve: bool,
    ) -> std::io::Result<Self> {
        let (io, local, daemon) = bind_in_as(sciond, host, port).await?;
        let socket = Arc::new(ScionQuinnSocket::new(io, local));
        let tuning = QuicTuning {
            idle_timeout: IDLE,
            receive_window: 1 << 20,
            ..QuicTuning::default()
        };
        let server = if serve {
            Some(config::server_config_alpn(&tuning, alpn).map_err(std::io::Error::other)?)
        } else {
            None
        };
        let mut endpoint = quinn::Endpoint::new_with_abstract_socket(
            config::endpoint_config(&tuning),
            server,
            socket.clone(),
            Arc::new(quinn::TokioRuntime),
        )?;
        endpoint.set_default_client_config(
            config::client_config_alpn(&tuning, alpn).map_err(std::io::Error::other)?,
        );
        Ok(Self {
            endpoint,
            socket,
            paths: Mutex::new(PathCache::new(daemon, local.ia)),
        })
    }

    pub fn local_addr(&self) -> ScionAddr {
        self.socket.local()
    }

    /// A QUIC connection to `addr` over the daemon's first path to its AS.
    pub async fn connect(&self, addr: ScionAddr) -> Result<quinn::Connection, AnnounceError> {
        let path = self
            .paths
            .lock()
            .await
            .path_to(addr.ia)
            .await
            .ok_or_else(|| {
                AnnounceError::Connect(format!("{addr}: no SCION path to {}", addr.ia))
            })?;
        let key = self
            .socket
            .route_to(&addr, &path)
            .map_err(|e| AnnounceError::Connect(format!("{addr}: {e}")))?;
        self.endpoint
            .connect(key, config::SERVER_NAME)
            .map_err(|e| AnnounceError::Connect(format!("{addr}: {e}")))?
            .await
            .map_err(|e| AnnounceError::Connect(format!("{addr} over SCION: {e}")))
    }

    /// A QUIC connection to `addr` with one stream open for an HTTP exchange.
    pub async fn open(&self, addr: ScionAddr) -> Result<HttpStream, AnnounceError> {
        let conn = self.connect(addr).await?;
        let (send, recv) = conn
            .open_bi()
            .await
            .map_err(|e| AnnounceError::Connect(format!("{addr}: {e}")))?;
        Ok(tokio::io::join(recv, send))
    }

    /// The next connection attempt with the SCION address it comes from (its handshake is the
    /// caller's to await); `None` once the endpoint is closed.
    pub async fn accept_incoming(&self) -> Option<(quinn::Incoming, ScionAddr)> {
        loop {
            let incoming = self.endpoint.accept().await?;
            match self.socket.remote(incoming.remote_address()) {
                Some(remote) => return Some((incoming, remote)),
                None => incoming.refuse(),
            }
        }
    }

    /// Serves `tracker` to every connection until the endpoint is closed: each bidirectional
    /// stream carries HTTP/1.1 requests from the connection's SCION address.
    pub async fn serve_tracker(&self, tracker: Arc<Tracker>) {
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_SERVING));
        while let Some((incoming, remote)) = self.accept_incoming().await {
            let (tracker, slots) = (tracker.clone(), slots.clone());
            tokio::spawn(async move {
                let conn = match incoming.await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!(%remote, "tracker over SCION: handshake failed: {e}");
                        return;
                    }
                };
                while let Ok((send, recv)) = conn.accept_bi().await {
                    let Ok(permit) = slots.clone().acquire_owned().await else {
                        return;
                    };
                    let t = tracker.clone();
                    tokio::spawn(async move {
                        let io = tokio::io::join(recv, send);
                        serve_http_connection(t, io, Remote::Scion(remote)).await;
                        drop(permit);
                    });
                }
            });
        }
    }
}

/// One HTTP exchange's QUIC stream (its halves keep the connection open while in use).
pub type HttpStream = tokio::io::Join<quinn::RecvStream, quinn::SendStream>;

/// The announcer's way to trackers over SCION: binds the endpoint at first use (a client with
/// no SCION tracker never opens the socket) and keeps it.
pub struct LazyScionHttp {
    sciond: String,
    host: Option<IpAddr>,
    endpoint: tokio::sync::OnceCell<Arc<ScionQuicEndpoint>>,
}

impl LazyScionHttp {
    pub fn new(sciond: String, host: Option<IpAddr>) -> Self {
        Self {
            sciond,
            host,
            endpoint: tokio::sync::OnceCell::new(),
        }
    }

    async fn endpoint(&self) -> Result<Arc<ScionQuicEndpoint>, AnnounceError> {
        self.endpoint
            .get_or_try_init(|| async {
                ScionQuicEndpoint::bind(&self.sciond, self.host, 0, false)
                    .await
                    .map(Arc::new)
                    .map_err(|e| {
                        AnnounceError::Connect(format!(
                            "cannot open a SCION socket for HTTP (SCION daemon {}): {e}",
                            self.sciond
                        ))
                    })
            })
            .await
            .cloned()
    }
}

impl ScionConnector for LazyScionHttp {
    fn connect(&self, addr: ScionAddr) -> BoxFuture<'_, Result<Box<dyn HttpIo>, AnnounceError>> {
        Box::pin(async move {
            let endpoint = self.endpoint().await?;
            let stream = endpoint.open(addr).await?;
            Ok(Box::new(stream) as Box<dyn HttpIo>)
        })
    }
}
