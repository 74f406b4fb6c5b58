//! The I/O of a web seed job: one HTTP/1.1 GET with a `Range` header per span (hyper's client
//! connection over TCP, or over rustls for `https://` with the trackers' roots), redirects
//! followed, the head checked by [`super::response::check_head`], the body streamed back as it
//! arrives. Runs as a task on the client's runtime; what it learns goes into a sink.

use std::time::Duration;

use bt_tracker::client::{AnnounceError, HttpIo, TrackerTls};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use super::response::{check_head, range_header, FetchError};
use super::seed::Job;
use crate::torrent::picker::BLOCK_LEN;

/// Connecting (with TLS) and getting the answer's head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(15);
/// A body that brings less than a block in this long is too slow: its requests are better
/// asked of someone else.
pub const SLOW_AFTER: Duration = Duration::from_secs(15);
/// Redirects followed per request.
pub const MAX_REDIRECTS: u32 = 5;

/// What a job reports.
#[derive(Debug)]
pub enum FetchEvent {
    Body(Bytes),
    Done(Result<(), FetchError>),
}

/// Performs `job`, reporting body bytes (in stream order) and then its end to `sink`.
pub async fn run_job(job: Job, tls: TrackerTls, mut sink: impl FnMut(FetchEvent)) {
    for span in &job.spans {
        let result = match &span.url {
            // A padding file: zeros, never on the server.
            None => {
                sink(FetchEvent::Body(Bytes::from(vec![0u8; span.len as usize])));
                Ok(())
            }
            Some(url) => fetch_span(url, span.start, span.len, &tls, &mut sink).await,
        };
        if let Err(e) = result {
            sink(FetchEvent::Done(Err(e)));
            return;
        }
    }
    sink(FetchEvent::Done(Ok(())));
}

async fn fetch_span(
    url: &str,
    start: u64,
    len: u64,
    tls: &TrackerTls,
    sink: &mut impl FnMut(FetchEvent),
) -> Result<(), FetchError> {
    let mut at = url::Url::parse(url).map_err(|e| FetchError::BadRedirect(e.to_string()))?;
    let mut hops = 0;
    let resp = loop {
        let resp = tokio::time::timeout(HEAD_TIMEOUT, request(&at, start, len, tls))
            .await
            .map_err(|_| FetchError::Timeout(HEAD_TIMEOUT))??;
        if !resp.status().is_redirection() {
            break resp;
        }
        let Some(location) = resp
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|l| l.to_str().ok())
        else {
            break resp;
        };
        if hops == MAX_REDIRECTS {
            return Err(FetchError::TooManyRedirects(MAX_REDIRECTS));
        }
        hops += 1;
        at = at
            .join(location)
            .map_err(|e| FetchError::BadRedirect(format!("{location:?}: {e}")))?;
        if !matches!(at.scheme(), "http" | "https") {
            return Err(FetchError::BadRedirect(format!(
                "{location:?}: not http(s)"
            )));
        }
    };
    let content_range = resp
        .headers()
        .get(hyper::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok());
    // A 200 (`Accepted::Whole`) is read like a 206: its first `len` bytes are ours.
    check_head(resp.status().as_u16(), content_range, start, len)?;
    let mut body = resp.into_body();
    let mut got: u64 = 0;
    let mut deadline = Instant::now() + SLOW_AFTER;
    while got < len {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .map_err(|_| FetchError::TooSlow(SLOW_AFTER))?;
        let Some(frame) = frame else { break };
        // A connection that ends inside the body is a short body, whatever hyper calls it.
        let frame = frame.map_err(|e| match got < len {
            true => FetchError::ShortBody { got, want: len },
            false => FetchError::Http(e.to_string()),
        })?;
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        // A 200 for the whole file: only our range of it is read.
        data.truncate((len - got).min(data.len() as u64) as usize);
        let before = got / u64::from(BLOCK_LEN);
        got += data.len() as u64;
        if got / u64::from(BLOCK_LEN) > before || got == len {
            deadline = Instant::now() + SLOW_AFTER;
        }
        sink(FetchEvent::Body(data));
    }
    if got < len {
        return Err(FetchError::ShortBody { got, want: len });
    }
    Ok(())
}

/// Connects to `url`'s host and sends the GET; returns the answer with its body unread.
async fn request(
    url: &url::Url,
    start: u64,
    len: u64,
    tls: &TrackerTls,
) -> Result<hyper::Response<hyper::body::Incoming>, FetchError> {
    let host = url
        .host_str()
        .ok_or_else(|| FetchError::Resolve(url.to_string()))?;
    // IPv6 literals come bracketed from the URL.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(80);
    let addr = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| FetchError::Resolve(format!("{bare}: {e}")))?
        .next()
        .ok_or_else(|| FetchError::Resolve(format!("{bare}: no addresses")))?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| FetchError::Connect(format!("{addr}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn HttpIo> = if url.scheme() == "https" {
        Box::new(tls.connect(bare, tcp).await.map_err(|e| match e {
            AnnounceError::Tls(t) => FetchError::Tls(t.to_string()),
            other => FetchError::Connect(other.to_string()),
        })?)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| FetchError::Http(e.to_string()))?;
    // The connection's driver: ends with the connection (Connection: close).
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let host_header = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let req = hyper::Request::get(target)
        .header(hyper::header::HOST, host_header)
        .header(hyper::header::RANGE, range_header(start, len))
        .header(
            hyper::header::USER_AGENT,
            concat!("bittorrent-over-scion/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| FetchError::Http(e.to_string()))?;
    sender
        .send_request(req)
        .await
        .map_err(|e| FetchError::Http(e.to_string()))
}
