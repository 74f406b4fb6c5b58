//! `GET`/`HEAD /api/v1/torrents/{ih}/files/{index}/stream`: a torrent's file over HTTP with
//! range requests, while the torrent downloads — for a media player, a `<video>` element, or
//! `curl -r`. Each piece is read once it is verified (never unverified data); the pieces a
//! reader is about to read are the picker's streaming deadlines, so they come first, and a
//! seek (a new range request) moves them. A skipped file is wanted again by a GET that reads
//! it (HEAD and refused ranges change nothing).
//!
//! `range` parses the `Range` header, `content_type` names the type, `link` makes and checks
//! the signed play links, `reader` reads the pieces as they come.

mod content_type;
pub mod link;
mod range;
mod reader;

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{ApiFailure, AppState};
use crate::client::control::{parse_info_hash, Command};
use crate::client::stream::{StreamCommand, StreamError, StreamFile};
use range::RangeError;

/// How long a reader waits for one piece before it gives up (no peer has it, or the torrent
/// stalled): before the answer's headers a 504, later the connection is cut.
pub const PIECE_WAIT: Duration = Duration::from_secs(60);

impl From<StreamError> for ApiFailure {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Control(c) => c.into(),
            e @ StreamError::NoSuchFile { .. } => ApiFailure::not_found(e.to_string()),
            // The file is there but its bytes cannot come now.
            e @ (StreamError::NoMetadata
            | StreamError::Paused(_)
            | StreamError::Skipped(_)
            | StreamError::Failed(_)) => {
                ApiFailure::new(StatusCode::CONFLICT, "unavailable", e.to_string())
            }
        }
    }
}

/// The stream route.
pub async fn stream(
    State(s): State<AppState>,
    Path((ih, index)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let info_hash = parse_info_hash(&ih.to_ascii_lowercase())?;
    let index: usize = index.parse().map_err(|_| {
        ApiFailure::bad_request(format!("{index:?} is not a file index (0, 1, ...)"))
    })?;
    // Only a GET that will read wants a skipped file: HEAD and refused ranges change nothing.
    let mut file = open(&s, info_hash, index, false).await?;
    let range_header = headers
        .get(header::RANGE)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let (status, bytes) = match range::parse(range_header, file.length) {
        Ok(None) => (StatusCode::OK, 0..file.length),
        Ok(Some(r)) => (StatusCode::PARTIAL_CONTENT, r),
        Err(e @ RangeError::Unsatisfiable { .. }) => {
            let mut r = ApiFailure::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "bad_range",
                e.to_string(),
            )
            .into_response();
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                value(&format!("bytes */{}", file.length)),
            );
            return Ok(r);
        }
        Err(e) => return Err(ApiFailure::bad_request(e.to_string())),
    };
    let mut out = HeaderMap::new();
    describe(&mut out, &file, bytes.end - bytes.start);
    if status == StatusCode::PARTIAL_CONTENT {
        let range = format!("bytes {}-{}/{}", bytes.start, bytes.end - 1, file.length);
        out.insert(header::CONTENT_RANGE, value(&range));
    }
    if method == Method::HEAD || bytes.is_empty() {
        return Ok((status, out, Body::empty()).into_response());
    }
    if file.skipped {
        file = open(&s, info_hash, index, true).await?;
    }
    // Nothing is answered before the first piece is there: a torrent that cannot deliver it
    // gets a clear error instead of a stalled body.
    let mut reader = reader::Reader::new(s.client.clone(), info_hash, file, bytes);
    reader.ready().await?;
    Ok((status, out, Body::from_stream(reader.into_stream())).into_response())
}

/// Where file `index` lies (see `StreamCommand::Open`).
async fn open(
    s: &AppState,
    info_hash: crate::client::control::InfoHash,
    file: usize,
    want: bool,
) -> Result<StreamFile, ApiFailure> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    s.client.notify(Command::Stream(StreamCommand::Open {
        info_hash,
        file,
        want,
        reply: tx,
    }));
    let gone = || ApiFailure::from(crate::client::control::ControlError::ShuttingDown);
    Ok(rx.await.map_err(|_| gone())??)
}

/// The headers every answer with the file's bytes carries.
fn describe(out: &mut HeaderMap, file: &StreamFile, length: u64) {
    out.insert(header::CONTENT_TYPE, value(content_type::of(&file.path)));
    out.insert(header::CONTENT_LENGTH, value(&length.to_string()));
    out.insert(header::ACCEPT_RANGES, value("bytes"));
    let name = file.path.rsplit('/').next().unwrap_or(&file.path);
    out.insert(
        header::CONTENT_DISPOSITION,
        value(&format!("inline; filename*=UTF-8''{}", percent(name))),
    );
    // A torrent's file is never a page of the daemon's origin (see `content_type`).
    out.insert(header::X_CONTENT_TYPE_OPTIONS, value("nosniff"));
    out.insert(header::CONTENT_SECURITY_POLICY, value("sandbox"));
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// RFC 8187 value characters: letters, digits and `!#$&+-.^_`|~`; everything else `%XX`.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_percent_encoded_for_content_disposition() {
        assert_eq!(percent("Ep 1 (ü).mkv"), "Ep%201%20%28%C3%BC%29.mkv");
        assert_eq!(percent("a\"b;\r\n"), "a%22b%3B%0D%0A");
    }

    #[test]
    fn each_stream_error_has_its_status() {
        let cases = [
            (StreamError::NoSuchFile { index: 3, count: 1 }, 404),
            (StreamError::NoMetadata, 409),
            (StreamError::Paused(1), 409),
            (StreamError::Skipped(1), 409),
            (StreamError::Failed("disk".into()), 409),
            (
                StreamError::Control(crate::client::control::ControlError::UnknownTorrent(
                    "x".into(),
                )),
                404,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(ApiFailure::from(e).status.as_u16(), status);
        }
    }
}
