//! Play links. A browser's `<video>` (or a player the URL is handed to) cannot send the API's
//! `Authorization` header, and the token must not ride in such URLs: they end up in browser
//! history, players' logs and proxies' logs. So the API hands out a signature for one
//! torrent's stream route instead: `?sig=EXPIRES.MAC`, the MAC an HMAC-SHA256 of the info hash
//! and the expiry under a key drawn at random when the daemon starts. It opens `GET`/`HEAD
//! .../files/{index}/stream` of that torrent only, for [`LIFETIME`] or until the daemon
//! restarts; it says nothing about the token.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ring::hmac;
use serde::{Deserialize, Serialize};

use super::super::{auth, ApiFailure, AppState};

/// How long a play link works: a long film, with pauses.
pub const LIFETIME: Duration = Duration::from_secs(6 * 3600);

fn key() -> &'static hmac::Key {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    KEY.get_or_init(|| hmac::Key::new(hmac::HMAC_SHA256, &rand::random::<[u8; 32]>()))
}

fn message(info_hash: &str, expires: u64) -> String {
    format!("bts-stream\n{info_hash}\n{expires}")
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// `EXPIRES.MAC` for `info_hash` (lowercase hex).
pub fn sign(info_hash: &str, expires: u64) -> String {
    let tag = hmac::sign(key(), message(info_hash, expires).as_bytes());
    format!("{expires}.{}", data_encoding::HEXLOWER.encode(tag.as_ref()))
}

/// Whether `sig` opens `info_hash`'s streams at `now` (seconds since the epoch).
pub fn verify(info_hash: &str, sig: &str, now: u64) -> bool {
    let Some((expires, mac)) = sig.split_once('.') else {
        return false;
    };
    let (Ok(expires), Ok(mac)) = (
        expires.parse::<u64>(),
        data_encoding::HEXLOWER_PERMISSIVE.decode(mac.as_bytes()),
    ) else {
        return false;
    };
    expires >= now && hmac::verify(key(), message(info_hash, expires).as_bytes(), &mac).is_ok()
}

#[derive(Serialize)]
pub struct Access {
    /// For the stream URL's query: `.../stream?sig=...`.
    sig: String,
    expires_unix: u64,
}

/// `GET /api/v1/torrents/{ih}/stream_access` (behind the token): a signature for the
/// torrent's play links.
pub async fn access(
    State(s): State<AppState>,
    Path(ih): Path<String>,
) -> Result<Json<Access>, ApiFailure> {
    let ih = ih.to_ascii_lowercase();
    crate::client::control::parse_info_hash(&ih)?;
    if !s
        .client
        .snapshot()
        .torrents
        .iter()
        .any(|t| t.info_hash == ih)
    {
        return Err(crate::client::control::ControlError::UnknownTorrent(ih).into());
    }
    let expires = now_unix() + LIFETIME.as_secs();
    Ok(Json(Access {
        sig: sign(&ih, expires),
        expires_unix: expires,
    }))
}

#[derive(Deserialize)]
struct SigQuery {
    sig: Option<String>,
}

/// In front of the stream route: a valid `sig` for the torrent in the path lets the request
/// through without the token; otherwise the API's usual access control decides (a request
/// with a bad `sig` and no other credentials is told its link is no good).
pub async fn check(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let sig = Query::<SigQuery>::try_from_uri(req.uri())
        .ok()
        .and_then(|q| q.0.sig)
        .filter(|_| s.token.is_some());
    let Some(sig) = sig else {
        return auth::check(State(s), req, next).await;
    };
    // /api/v1/torrents/{ih}/files/{index}/stream
    let ih = req
        .uri()
        .path()
        .split('/')
        .nth(4)
        .unwrap_or_default()
        .to_ascii_lowercase();
    if verify(&ih, &sig, now_unix()) {
        return next.run(req).await;
    }
    let other_credentials = req.headers().contains_key(header::AUTHORIZATION)
        || req.uri().query().is_some_and(|q| q.contains("token="));
    if other_credentials {
        return auth::check(State(s), req, next).await;
    }
    let mut r = ApiFailure::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "unauthorized",
        "the play link has expired or is not valid for this torrent: get a new one",
    )
    .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_opens_its_torrent_until_it_expires() {
        let ih = "ab".repeat(20);
        let other = "cd".repeat(20);
        let sig = sign(&ih, 1000);
        assert!(verify(&ih, &sig, 999));
        assert!(verify(&ih, &sig, 1000));
        assert!(!verify(&ih, &sig, 1001), "expired");
        assert!(!verify(&other, &sig, 999), "another torrent");
        // A later expiry with the old MAC, a cut MAC, garbage.
        let mac = sig.split_once('.').unwrap().1;
        assert!(!verify(&ih, &format!("2000.{mac}"), 999));
        assert!(!verify(&ih, &sig[..sig.len() - 2], 999));
        for bad in ["", ".", "1000", "1000.", "x.00", "1000.zz"] {
            assert!(!verify(&ih, bad, 0), "{bad:?}");
        }
    }
}
