//! One announce to one tracker: HTTP/1.1 over TCP (hyper's client connection; `https://` with
//! rustls, see [`super::tls`]; redirects followed, at most [`MAX_REDIRECTS`], never https → http),
//! HTTP/1.1 over a QUIC stream over SCION (a host in SCION's mangled URL form; the connection
//! comes from a [`ScionConnector`] the binary provides), or BEP 15 over a tokio UDP socket.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rand::Rng;
use url::Url;

use crate::client::tls::{TlsError, TrackerTls};
use crate::client::BoxFuture;
use crate::http::{self, AnnounceRequest, AnnounceResponse, ResponseError, ResponseLimits};
use crate::udp::{self, Retransmit, UdpError};
use crate::ScionAddr;

/// A byte stream HTTP/1.1 runs on: a TCP stream, or a QUIC stream over SCION.
pub trait HttpIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> HttpIo for T {}

/// Opens a connection for HTTP to a tracker at a SCION address. The binary implements it (it
/// owns the SCION side); without one, SCION tracker URLs fail with a clear reason.
pub trait ScionConnector: Send + Sync + 'static {
    fn connect(&self, addr: ScionAddr) -> BoxFuture<'_, Result<Box<dyn HttpIo>, AnnounceError>>;
}

/// A shareable [`ScionConnector`] (for configurations that are `Clone + Debug`).
#[derive(Clone)]
pub struct ScionHttp(pub Arc<dyn ScionConnector>);

impl std::fmt::Debug for ScionHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScionHttp")
    }
}

/// How a tracker URL is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerUrl {
    /// `http://host:port/path?query` (or `https://` when `tls`): host (for `Host:`, resolving
    /// and the certificate's name), port, path+query.
    Http {
        host: String,
        port: u16,
        target: String,
        tls: bool,
    },
    /// `udp://host:port`.
    Udp { host: String, port: u16 },
    /// `http://[<ISD-AS>,<IP>]:port/path?query`: HTTP over QUIC/SCION. `host` is the bracketed
    /// authority as written, for the `Host:` header.
    ScionHttp {
        addr: ScionAddr,
        host: String,
        target: String,
    },
}

/// Why a tracker could not be used for an announce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnounceError {
    #[error("unsupported tracker URL: {0}")]
    Unsupported(String),
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("TLS: {0}")]
    Tls(TlsError),
    #[error("more than {0} redirects")]
    TooManyRedirects(u32),
    #[error("redirect from https to a plain URL refused: {0}")]
    RedirectDowngrade(String),
    #[error("bad redirect: {0}")]
    BadRedirect(String),
    #[error("HTTP error: {0}")]
    Http(String),
    #[error("HTTP status {status}: {detail}")]
    Status { status: u16, detail: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("no answer after {attempts} attempts ({ignored} replies with a wrong transaction id ignored)")]
    UdpTimeout { attempts: u32, ignored: u32 },
    #[error("bad UDP reply: {0}")]
    UdpPacket(#[from] UdpError),
    #[error("UDP tracker replied with action {got} to a {expected} request")]
    UdpAction {
        got: &'static str,
        expected: &'static str,
    },
    #[error("tracker error: {0}")]
    TrackerError(String),
    #[error(transparent)]
    Response(#[from] ResponseError),
}

/// Classifies a tracker URL. A host in SCION's mangled form, as scion-apps writes it in URLs
/// (`[1-ff00:0:112,127.0.0.1]`, `[1-ff00:0:112,::1]` or `[1-ff00:0:112,[::1]]`), makes it an
/// HTTP-over-QUIC/SCION tracker.
pub fn parse_tracker_url(s: &str) -> Result<TrackerUrl, AnnounceError> {
    let unsupported = |why: &str| AnnounceError::Unsupported(format!("{s}: {why}"));
    if let Some(rest) = s.strip_prefix("http://") {
        if let Some(url) = parse_scion_http(rest) {
            return url.map_err(|why| unsupported(&why));
        }
    }
    let u = Url::parse(s).map_err(|e| unsupported(&e.to_string()))?;
    let host = match u.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => a.to_string(),
        None => return Err(unsupported("no host")),
    };
    match u.scheme() {
        scheme @ ("http" | "https") => {
            let tls = scheme == "https";
            let mut target = u.path().to_string();
            if let Some(q) = u.query() {
                target.push('?');
                target.push_str(q);
            }
            Ok(TrackerUrl::Http {
                host,
                port: u.port().unwrap_or(if tls { 443 } else { 80 }),
                target,
                tls,
            })
        }
        "udp" => Ok(TrackerUrl::Udp {
            host,
            port: u.port().ok_or_else(|| unsupported("udp:// needs a port"))?,
        }),
        other => Err(unsupported(&format!("scheme {other} is not supported"))),
    }
}

/// `[<ISD-AS>,<IP>]:port/target` after `http://`; `None` if the host is not in SCION form.
fn parse_scion_http(rest: &str) -> Option<Result<TrackerUrl, String>> {
    let inner = rest.strip_prefix('[')?;
    let (ia, after_comma) = inner.split_once(',')?;
    if ia.contains(']') {
        return None; // an IPv6 literal host, not SCION
    }
    // The host is an IPv4 or IPv6 literal, the latter maybe in brackets of its own.
    let (ip, after) = match after_comma.strip_prefix('[') {
        Some(v6) => {
            let (ip, tail) = v6.split_once("]]")?;
            (ip, tail)
        }
        None => after_comma.split_once(']')?,
    };
    let authority_len = rest.len() - after.len();
    Some((|| {
        let ia = scion_addr::parse_ia(ia).map_err(|e| format!("bad ISD-AS {ia:?}: {e}"))?;
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("bad host address {ip:?} in a SCION URL"))?;
        let (port, target) = match after.strip_prefix(':') {
            Some(p) => {
                let end = p.find(['/', '?']).unwrap_or(p.len());
                let port = p[..end]
                    .parse::<u16>()
                    .map_err(|_| format!("bad port {:?}", &p[..end]))?;
                (port, &p[end..])
            }
            None if after.is_empty() || after.starts_with(['/', '?']) => (80, after),
            None => return Err(format!("unexpected {after:?} after the host")),
        };
        let target = match target {
            "" => "/".to_string(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_string(),
        };
        let host = &rest[..authority_len];
        Ok(TrackerUrl::ScionHttp {
            addr: ScionAddr::new(ia, ip, port),
            host: if port == 80 {
                host.to_string()
            } else {
                format!("{host}:{port}")
            },
            target,
        })
    })())
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, AnnounceError> {
    let err = |reason: String| AnnounceError::Resolve {
        host: host.to_string(),
        reason,
    };
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| err(e.to_string()))?;
    addrs.next().ok_or_else(|| err("no addresses".into()))
}

/// A TCP connection for HTTP, with the `Host:` header for it.
async fn tcp_connect(
    host: &str,
    port: u16,
) -> Result<(tokio::net::TcpStream, String), AnnounceError> {
    let addr = resolve(host, port).await?;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| AnnounceError::Connect(format!("{addr}: {e}")))?;
    let _ = stream.set_nodelay(true);
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok((stream, host_header))
}

/// Why a URL with a SCION host cannot be used: this client has no SCION side.
pub(crate) fn no_scion(url: &str) -> AnnounceError {
    AnnounceError::Unsupported(format!(
        "{url}: a SCION address, but this client runs without SCION (no SCION daemon)"
    ))
}

/// Opens the connection an `http://` URL names — TCP, or a QUIC stream over SCION from
/// `scion` — and returns it with its `Host:` header and request target.
async fn connect_http<'u>(
    url: &'u TrackerUrl,
    scion: Option<&ScionHttp>,
    tls: &TrackerTls,
) -> Result<(Box<dyn HttpIo>, String, &'u str), AnnounceError> {
    match url {
        TrackerUrl::Http {
            host,
            port,
            target,
            tls: false,
        } => {
            let (stream, host_header) = tcp_connect(host, *port).await?;
            Ok((Box::new(stream), host_header, target))
        }
        TrackerUrl::Http {
            host,
            port,
            target,
            tls: true,
        } => {
            let (stream, host_header) = tcp_connect(host, *port).await?;
            let stream = tls.connect(host, stream).await?;
            Ok((Box::new(stream), host_header, target))
        }
        TrackerUrl::ScionHttp { addr, host, target } => {
            let connector = scion.ok_or_else(|| no_scion(host))?;
            Ok((connector.0.connect(*addr).await?, host.clone(), target))
        }
        TrackerUrl::Udp { host, .. } => Err(AnnounceError::Unsupported(format!(
            "{host}: not an http:// tracker"
        ))),
    }
}

/// Most redirects one request follows.
pub const MAX_REDIRECTS: u32 = 5;

/// How to reach trackers over HTTP: over SCION (if the binary can) and with which TLS roots.
#[derive(Debug, Clone, Copy)]
pub struct HttpReach<'a> {
    pub scion: Option<&'a ScionHttp>,
    pub tls: &'a TrackerTls,
}

/// The URL a tracker URL stands for, to resolve a relative `Location` against.
fn base_url(url: &TrackerUrl) -> Option<Url> {
    let s = match url {
        TrackerUrl::Http {
            host,
            port,
            target,
            tls,
        } => {
            let scheme = if *tls { "https" } else { "http" };
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            format!("{scheme}://{host}:{port}{target}")
        }
        // The mangled SCION host is no URL host; only absolute redirects are followed.
        TrackerUrl::ScionHttp { .. } | TrackerUrl::Udp { .. } => return None,
    };
    Url::parse(&s).ok()
}

/// Where a redirect from `from` to `location` leads; an https tracker never sends us to http.
fn follow_redirect(from: &TrackerUrl, location: &str) -> Result<TrackerUrl, AnnounceError> {
    let bad = |why: String| AnnounceError::BadRedirect(format!("{location:?}: {why}"));
    let absolute = match base_url(from) {
        Some(base) => base
            .join(location)
            .map_err(|e| bad(e.to_string()))?
            .to_string(),
        None => location.to_string(),
    };
    let to = parse_tracker_url(&absolute).map_err(|e| bad(e.to_string()))?;
    let secure = |u: &TrackerUrl| matches!(u, TrackerUrl::Http { tls: true, .. });
    match &to {
        TrackerUrl::Udp { .. } => Err(bad("not an HTTP URL".into())),
        _ if secure(from) && !secure(&to) => Err(AnnounceError::RedirectDowngrade(absolute)),
        _ => Ok(to),
    }
}

/// One request to an `http(s)://` URL (built from the URL's target), following redirects, with
/// an overall timeout and a cap on the response body.
async fn http_request(
    url: &TrackerUrl,
    reach: HttpReach<'_>,
    request: impl FnOnce(&str) -> Request,
    timeout: Duration,
    max_body: usize,
) -> Result<(u16, Bytes), AnnounceError> {
    let work = async {
        let (io, host_header, target) = connect_http(url, reach.scion, reach.tls).await?;
        let req = request(target);
        let mut reply = http_exchange(io, &host_header, req.clone(), max_body).await?;
        let mut at = url.clone();
        let mut followed = 0;
        while let Some(location) = reply.location.take() {
            if followed == MAX_REDIRECTS {
                return Err(AnnounceError::TooManyRedirects(MAX_REDIRECTS));
            }
            followed += 1;
            at = follow_redirect(&at, &location)?;
            let (io, host_header, target) = connect_http(&at, reach.scion, reach.tls).await?;
            let mut req = req.clone();
            // The new URL as given: its query carries the announce parameters already.
            req.target = target.to_string();
            reply = http_exchange(io, &host_header, req, max_body).await?;
        }
        Ok((reply.status, reply.body))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| AnnounceError::Timeout(timeout))?
}

/// What to ask on a connection: method, target, body.
#[derive(Clone)]
pub struct Request {
    method: hyper::Method,
    target: String,
    content_type: Option<&'static str>,
    body: Bytes,
}

impl Request {
    pub fn get(target: &str) -> Self {
        Self {
            method: hyper::Method::GET,
            target: target.to_string(),
            content_type: None,
            body: Bytes::new(),
        }
    }

    pub fn post(target: &str, content_type: &'static str, body: Bytes) -> Self {
        Self {
            method: hyper::Method::POST,
            target: target.to_string(),
            content_type: Some(content_type),
            body,
        }
    }
}

/// A response: status, body, and where a redirect (3xx with `Location`) points.
struct Reply {
    status: u16,
    body: Bytes,
    location: Option<String>,
}

/// One request on an open connection; the response body is read up to `max_body` bytes.
async fn http_exchange(
    io: impl HttpIo,
    host_header: &str,
    r: Request,
    max_body: usize,
) -> Result<Reply, AnnounceError> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| AnnounceError::Http(e.to_string()))?;
    let conn = tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(r.method)
        .uri(r.target)
        .header(hyper::header::HOST, host_header)
        .header(
            hyper::header::USER_AGENT,
            concat!("bittorrent-over-scion/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::CONNECTION, "close");
    if let Some(ct) = r.content_type {
        req = req.header(hyper::header::CONTENT_TYPE, ct);
    }
    let req = req
        .body(Full::new(r.body))
        .map_err(|e| AnnounceError::Http(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| AnnounceError::Http(e.to_string()))?;
    let status = resp.status().as_u16();
    let location = if resp.status().is_redirection() {
        resp.headers()
            .get(hyper::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string)
    } else {
        None
    };
    let body = Limited::new(resp.into_body(), max_body)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                AnnounceError::Response(ResponseError::TooLarge(max_body))
            } else {
                AnnounceError::Http(e.to_string())
            }
        })?
        .to_bytes();
    conn.abort();
    Ok(Reply {
        status,
        body,
        location,
    })
}

/// POSTs `body` to an `http://` URL, over TCP or, for a host in SCION form, over QUIC/SCION;
/// returns the response status (used for the original client's `-exportMetricsTo=http://…`).
pub async fn http_post(
    url: &str,
    content_type: &'static str,
    body: Bytes,
    timeout: Duration,
    scion: Option<&ScionHttp>,
) -> Result<u16, AnnounceError> {
    const MAX_REPLY: usize = 64 * 1024;
    let url = parse_tracker_url(url)?;
    let post = |target: &str| Request::post(target, content_type, body);
    let tls = TrackerTls::default();
    let reach = HttpReach { scion, tls: &tls };
    let (status, _) = http_request(&url, reach, post, timeout, MAX_REPLY).await?;
    Ok(status)
}

/// An HTTP announce.
pub async fn http_announce(
    url: &TrackerUrl,
    req: &AnnounceRequest,
    timeout: Duration,
    limits: &ResponseLimits,
    reach: HttpReach<'_>,
) -> Result<AnnounceResponse, AnnounceError> {
    let get = |target: &str| Request::get(&http::announce_url(target, req));
    let (status, body) = http_request(url, reach, get, timeout, limits.max_body).await?;
    match http::parse_announce_response(&body, limits) {
        Ok(r) => Ok(r),
        // A failure reason is the clearest message, whatever the status.
        Err(ResponseError::Failure(f)) => Err(ResponseError::Failure(f).into()),
        Err(e) if status != 200 => Err(AnnounceError::Status {
            status,
            detail: format!(
                "{e}; body starts {:?}",
                String::from_utf8_lossy(&body[..body.len().min(80)])
            ),
        }),
        Err(e) => Err(e.into()),
    }
}

/// A UDP tracker's socket (kept, so the source port the connection id is bound to stays the
/// same) and its connection id with the time it was received.
#[derive(Debug, Clone, Default)]
pub struct UdpSession {
    pub connection: Option<(u64, Instant)>,
    socket: Option<(SocketAddr, std::sync::Arc<tokio::net::UdpSocket>)>,
}

impl UdpSession {
    fn valid(&self, now: Instant) -> Option<u64> {
        self.connection
            .filter(|(_, at)| now.saturating_duration_since(*at) < udp::CONNECTION_ID_LIFETIME)
            .map(|(id, _)| id)
    }
}

/// Sends `packet` (with `tx` at the transaction id) and waits for the matching reply, with
/// BEP 15's retransmission schedule. Replies with another transaction id are ignored.
async fn udp_exchange(
    sock: &tokio::net::UdpSocket,
    packet: &[u8],
    tx: u32,
    retransmit: &Retransmit,
    v6: bool,
    max_peers: usize,
) -> Result<udp::Response, AnnounceError> {
    let mut buf = vec![0u8; 65_536];
    let mut ignored = 0;
    let mut n = 0;
    while let Some(wait) = retransmit.timeout(n) {
        sock.send(packet)
            .await
            .map_err(|e| AnnounceError::Connect(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(AnnounceError::Connect(e.to_string())),
                Ok(Ok(len)) => len,
            };
            let resp = udp::decode_response(&buf[..got], v6, max_peers)?;
            if resp.transaction_id() != tx {
                ignored += 1;
                continue;
            }
            if let udp::Response::Error { message, .. } = resp {
                return Err(AnnounceError::TrackerError(message));
            }
            return Ok(resp);
        }
        n += 1;
    }
    Err(AnnounceError::UdpTimeout {
        attempts: n,
        ignored,
    })
}

fn action_name(r: &udp::Response) -> &'static str {
    match r {
        udp::Response::Connect { .. } => "connect",
        udp::Response::Announce { .. } => "announce",
        udp::Response::Scrape { .. } => "scrape",
        udp::Response::Error { .. } => "error",
    }
}

/// The socket to a UDP tracker and a fresh connection id (connecting unless the session's id
/// is still valid).
async fn udp_connection(
    url: &TrackerUrl,
    session: &mut UdpSession,
    retransmit: &Retransmit,
) -> Result<(Arc<tokio::net::UdpSocket>, bool, u64), AnnounceError> {
    let TrackerUrl::Udp { host, port } = url else {
        return Err(AnnounceError::Unsupported("not a udp:// tracker".into()));
    };
    let addr = resolve(host, *port).await?;
    let sock = match &session.socket {
        Some((a, s)) if *a == addr => s.clone(),
        _ => {
            let bind: SocketAddr = if addr.is_ipv6() {
                "[::]:0".parse::<SocketAddr>()
            } else {
                "0.0.0.0:0".parse::<SocketAddr>()
            }
            .map_err(|_| AnnounceError::Connect("bad bind address".into()))?;
            let s = tokio::net::UdpSocket::bind(bind)
                .await
                .map_err(|e| AnnounceError::Connect(e.to_string()))?;
            s.connect(addr)
                .await
                .map_err(|e| AnnounceError::Connect(format!("{addr}: {e}")))?;
            let s = std::sync::Arc::new(s);
            session.socket = Some((addr, s.clone()));
            session.connection = None;
            s
        }
    };
    let v6 = udp::is_v6(&addr);

    let connection_id = match session.valid(Instant::now()) {
        Some(id) => id,
        None => {
            let tx: u32 = rand::rng().random();
            let mut p = Vec::with_capacity(16);
            udp::encode_connect(&mut p, tx);
            match udp_exchange(&sock, &p, tx, retransmit, v6, 0).await? {
                udp::Response::Connect { connection_id, .. } => {
                    session.connection = Some((connection_id, Instant::now()));
                    connection_id
                }
                other => {
                    return Err(AnnounceError::UdpAction {
                        got: action_name(&other),
                        expected: "connect",
                    })
                }
            }
        }
    };
    Ok((sock, v6, connection_id))
}

/// A UDP announce: connect (unless the session's id is fresh), then announce.
pub async fn udp_announce(
    url: &TrackerUrl,
    session: &mut UdpSession,
    req: &AnnounceRequest,
    retransmit: &Retransmit,
    limits: &ResponseLimits,
) -> Result<AnnounceResponse, AnnounceError> {
    let (sock, v6, connection_id) = udp_connection(url, session, retransmit).await?;
    let tx: u32 = rand::rng().random();
    let a = udp::AnnounceRequest {
        connection_id,
        transaction_id: tx,
        info_hash: req.info_hash,
        peer_id: req.peer_id,
        downloaded: req.downloaded,
        left: req.left,
        uploaded: req.uploaded,
        event: req.event,
        ip: std::net::Ipv4Addr::UNSPECIFIED,
        key: req.key.unwrap_or(0),
        num_want: req.numwant.map_or(-1, |n| n.min(i32::MAX as u32) as i32),
        port: req.port,
    };
    let mut p = Vec::with_capacity(udp::ANNOUNCE_LEN);
    udp::encode_announce(&mut p, &a);
    match udp_exchange(&sock, &p, tx, retransmit, v6, limits.max_peers).await {
        Ok(udp::Response::Announce {
            interval,
            leechers,
            seeders,
            peers,
            dropped,
            ..
        }) => Ok(AnnounceResponse {
            interval: Some(interval),
            min_interval: None,
            tracker_id: None,
            complete: Some(seeders),
            incomplete: Some(leechers),
            warning: None,
            peers: peers.into_iter().map(Into::into).collect(),
            peers_dropped: dropped,
        }),
        Ok(other) => Err(AnnounceError::UdpAction {
            got: action_name(&other),
            expected: "announce",
        }),
        Err(e) => {
            // The id may have been dropped by the tracker; reconnect next time.
            session.connection = None;
            Err(e)
        }
    }
}

/// Why a scrape gave no counters (BEP 48).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScrapeError {
    /// The announce URL's last path segment is not `announce`, so there is no scrape URL.
    #[error("this tracker has no scrape URL (its announce path does not end in /announce)")]
    NoScrapeUrl,
    #[error("the scrape does not list this torrent")]
    NotListed,
    #[error(transparent)]
    Request(#[from] AnnounceError),
}

/// Scrapes one torrent's counters (seeders, completed, leechers) from an HTTP(S) tracker,
/// over TCP or SCION like its announces.
pub async fn http_scrape(
    url: &TrackerUrl,
    info_hash: &crate::InfoHash,
    timeout: Duration,
    limits: &ResponseLimits,
    reach: HttpReach<'_>,
) -> Result<http::ScrapeStats, ScrapeError> {
    let scrape_url = |u: &TrackerUrl| -> Result<TrackerUrl, ScrapeError> {
        let mut u = u.clone();
        let target = match &mut u {
            TrackerUrl::Http { target, .. } | TrackerUrl::ScionHttp { target, .. } => target,
            TrackerUrl::Udp { .. } => return Err(ScrapeError::NoScrapeUrl),
        };
        *target = http::scrape_url(target).ok_or(ScrapeError::NoScrapeUrl)?;
        Ok(u)
    };
    let url = scrape_url(url)?;
    let get = |target: &str| Request::get(&http::scrape_request_url(target, &[*info_hash]));
    let (status, body) = http_request(&url, reach, get, timeout, limits.max_body).await?;
    let files = match http::parse_scrape_response(&body, limits) {
        Ok(f) => f,
        Err(ResponseError::Failure(f)) => {
            return Err(AnnounceError::from(ResponseError::Failure(f)).into())
        }
        Err(e) if status != 200 => {
            return Err(AnnounceError::Status {
                status,
                detail: e.to_string(),
            }
            .into())
        }
        Err(e) => return Err(AnnounceError::from(e).into()),
    };
    files
        .into_iter()
        .find(|(h, _)| h == info_hash)
        .map(|(_, s)| s)
        .ok_or(ScrapeError::NotListed)
}

/// Scrapes one torrent's counters from a UDP tracker (BEP 15), reusing the announce session.
pub async fn udp_scrape(
    url: &TrackerUrl,
    session: &mut UdpSession,
    info_hash: &crate::InfoHash,
    retransmit: &Retransmit,
) -> Result<http::ScrapeStats, ScrapeError> {
    let (sock, v6, connection_id) = udp_connection(url, session, retransmit).await?;
    let tx: u32 = rand::rng().random();
    let mut p = Vec::with_capacity(36);
    udp::encode_scrape(&mut p, connection_id, tx, &[*info_hash]);
    match udp_exchange(&sock, &p, tx, retransmit, v6, 0).await {
        Ok(udp::Response::Scrape { stats, .. }) => {
            stats.into_iter().next().ok_or(ScrapeError::NotListed)
        }
        Ok(other) => Err(AnnounceError::UdpAction {
            got: action_name(&other),
            expected: "scrape",
        }
        .into()),
        Err(e) => {
            session.connection = None;
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_urls_and_redirects() {
        let https = parse_tracker_url("https://t.example/announce").unwrap();
        assert_eq!(
            https,
            TrackerUrl::Http {
                host: "t.example".into(),
                port: 443,
                target: "/announce".into(),
                tls: true
            }
        );
        // Relative and absolute redirects; https never to http.
        assert_eq!(
            follow_redirect(&https, "/v2/announce?x=1").unwrap(),
            TrackerUrl::Http {
                host: "t.example".into(),
                port: 443,
                target: "/v2/announce?x=1".into(),
                tls: true
            }
        );
        assert!(matches!(
            follow_redirect(&https, "http://t.example/announce"),
            Err(AnnounceError::RedirectDowngrade(_))
        ));
        assert!(matches!(
            follow_redirect(&https, "udp://t.example:1"),
            Err(AnnounceError::BadRedirect(_))
        ));
        let http = parse_tracker_url("http://t.example:81/announce").unwrap();
        assert!(matches!(
            follow_redirect(&http, "https://u.example/a").unwrap(),
            TrackerUrl::Http { tls: true, .. }
        ));
    }

    #[test]
    fn classifies_urls() {
        assert_eq!(
            parse_tracker_url("http://127.0.0.1:6969/announce?x=1").unwrap(),
            TrackerUrl::Http {
                host: "127.0.0.1".into(),
                port: 6969,
                target: "/announce?x=1".into(),
                tls: false,
            }
        );
        assert_eq!(
            parse_tracker_url("udp://[::1]:6969").unwrap(),
            TrackerUrl::Udp {
                host: "::1".into(),
                port: 6969
            }
        );
        assert_eq!(
            parse_tracker_url("http://[1-ff00:0:112,127.0.0.1]:6969/announce").unwrap(),
            TrackerUrl::ScionHttp {
                addr: "1-ff00:0:112,[127.0.0.1]:6969".parse().unwrap(),
                host: "[1-ff00:0:112,127.0.0.1]:6969".into(),
                target: "/announce".into()
            }
        );
        for (url, addr, target) in [
            (
                "http://[1-ff00:0:112,::1]:7/a?k=1",
                "1-ff00:0:112,[::1]:7",
                "/a?k=1",
            ),
            (
                "http://[2-64512,[fd00::2]]:8/announce",
                "2-64512,[fd00::2]:8",
                "/announce",
            ),
            (
                "http://[1-ff00:0:112,10.0.0.1]",
                "1-ff00:0:112,[10.0.0.1]:80",
                "/",
            ),
        ] {
            match parse_tracker_url(url).unwrap() {
                TrackerUrl::ScionHttp {
                    addr: a, target: t, ..
                } => {
                    assert_eq!((a, t.as_str()), (addr.parse().unwrap(), target), "{url}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        for (bad, hint) in [
            (
                "http://[1-ff00:0:112,notanip]:6969/announce",
                "host address",
            ),
            ("http://[1-ff00:0:112,127.0.0.1]:x/announce", "port"),
            ("http://[99999999-1,127.0.0.1]:1/announce", "ISD-AS"),
            ("udp://t.example", "port"),
            ("wss://t", "scheme"),
            ("nonsense", "unsupported"),
        ] {
            let e = parse_tracker_url(bad).unwrap_err().to_string();
            assert!(e.contains(hint), "{bad}: {e}");
        }
    }
}
