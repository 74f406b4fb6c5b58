//! The tracker's sockets: UDP worker threads (one SO_REUSEPORT socket each, blocking loop, no
//! allocation per request), an HTTP/1.1 server (hyper on a small tokio runtime), and a
//! housekeeping thread that expires peers.

use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use socket2::{Domain, Protocol, Socket, Type};

use crate::server::core::{Remote, Tracker, TrackerConfig};
use crate::server::swarm::CompactLists;

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub tracker: TrackerConfig,
    pub http: Option<SocketAddr>,
    pub udp: Option<SocketAddr>,
    /// UDP worker threads (sockets); default: the number of CPUs.
    pub udp_threads: usize,
    /// tokio worker threads for HTTP.
    pub http_threads: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            tracker: TrackerConfig::default(),
            http: None,
            udp: None,
            udp_threads: cpus,
            http_threads: cpus,
        }
    }
}

/// A running tracker; stops (and joins its threads) on [`RunningServer::stop`] or drop.
pub struct RunningServer {
    pub http_addr: Option<SocketAddr>,
    pub udp_addr: Option<SocketAddr>,
    tracker: Arc<Tracker>,
    stop: Arc<AtomicBool>,
    http_stop: Option<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl RunningServer {
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// The tracker itself, for more front ends (HTTP over QUIC/SCION) on the same swarms.
    pub fn shared_tracker(&self) -> Arc<Tracker> {
        self.tracker.clone()
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(tx) = self.http_stop.take() {
            let _ = tx.send(());
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds the sockets and starts serving; returns once everything listens.
pub fn start(config: ServerConfig) -> io::Result<RunningServer> {
    let tracker = Arc::new(Tracker::new(config.tracker.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();

    let udp_addr = match config.udp {
        Some(addr) => {
            let first = bind_udp(addr)?;
            let bound = first.local_addr()?;
            let mut sockets = vec![first];
            for _ in 1..config.udp_threads.max(1) {
                sockets.push(bind_udp(bound)?);
            }
            for (i, s) in sockets.into_iter().enumerate() {
                let (t, stop) = (tracker.clone(), stop.clone());
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("tracker-udp-{i}"))
                        .spawn(move || udp_worker(s, &t, &stop))?,
                );
            }
            Some(bound)
        }
        None => None,
    };

    let (http_addr, http_stop) = match config.http {
        Some(addr) => {
            let listener = std::net::TcpListener::bind(addr)?;
            listener.set_nonblocking(true)?;
            let bound = listener.local_addr()?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(config.http_threads.max(1))
                .thread_name("tracker-http")
                .enable_all()
                .build()?;
            let (tx, rx) = tokio::sync::oneshot::channel();
            let t = tracker.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("tracker-http-main".into())
                    .spawn(move || {
                        rt.block_on(async move {
                            match tokio::net::TcpListener::from_std(listener) {
                                Ok(l) => serve_http(l, t, rx).await,
                                Err(e) => tracing::error!("tracker HTTP listener: {e}"),
                            }
                        });
                        rt.shutdown_timeout(Duration::from_secs(1));
                    })?,
            );
            (Some(bound), Some(tx))
        }
        None => (None, None),
    };

    let (t, s) = (tracker.clone(), stop.clone());
    threads.push(
        std::thread::Builder::new()
            .name("tracker-expiry".into())
            .spawn(move || housekeeping(&t, &s))?,
    );
    Ok(RunningServer {
        http_addr,
        udp_addr,
        tracker,
        stop,
        http_stop,
        threads,
    })
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(false)?;
    }
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(s.into())
}

fn udp_worker(sock: UdpSocket, tracker: &Tracker, stop: &AtomicBool) {
    let mut buf = [0u8; 2048];
    let mut out = Vec::with_capacity(2048);
    let mut scratch = CompactLists::default();
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                // ICMP errors from earlier sends surface here on Linux; keep serving.
                tracing::debug!("tracker UDP receive: {e}");
                continue;
            }
        };
        tracker.handle_udp(&buf[..n], from, Instant::now(), &mut out, &mut scratch);
        if !out.is_empty() {
            if let Err(e) = sock.send_to(&out, from) {
                tracing::debug!("tracker UDP send to {from}: {e}");
            }
        }
    }
}

fn housekeeping(tracker: &Tracker, stop: &AtomicBool) {
    let every = (tracker.config().interval / 2).max(Duration::from_secs(1));
    let mut next = Instant::now() + every;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if Instant::now() >= next {
            let n = tracker.expire(Instant::now());
            if n > 0 {
                tracing::debug!("expired {n} peers");
            }
            next = Instant::now() + every;
        }
    }
}

async fn serve_http(
    listener: tokio::net::TcpListener,
    tracker: Arc<Tracker>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    // Bounds the connections served at once; beyond it, accepting waits.
    let slots = Arc::new(tokio::sync::Semaphore::new(4096));
    loop {
        let permit = tokio::select! {
            _ = &mut stop => return,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let (stream, remote) = tokio::select! {
            _ = &mut stop => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!("tracker HTTP accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let t = tracker.clone();
        tokio::spawn(async move {
            serve_http_connection(t, stream, Remote::Ip(remote)).await;
            drop(permit);
        });
    }
}

/// Serves HTTP/1.1 requests on one connection (a TCP stream, or a QUIC stream over SCION)
/// until the client closes it, it idles, or two minutes pass.
pub async fn serve_http_connection<IO>(tracker: Arc<Tracker>, io: IO, remote: Remote)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let t = tracker.clone();
        async move { Ok::<_, Infallible>(respond(&t, &req, remote)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(16 * 1024)
        .serve_connection(TokioIo::new(io), svc);
    let _ = tokio::time::timeout(Duration::from_secs(120), conn).await;
}

fn respond<B>(
    t: &Tracker,
    req: &hyper::Request<B>,
    remote: Remote,
) -> hyper::Response<Full<Bytes>> {
    let reply = if req.method() == hyper::Method::GET {
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        t.handle_http(target.as_bytes(), remote, Instant::now())
    } else {
        crate::server::core::HttpReply {
            status: 405,
            body: crate::http::failure("only GET is served"),
        }
    };
    let mut resp = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap_or(hyper::StatusCode::OK);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    resp
}
