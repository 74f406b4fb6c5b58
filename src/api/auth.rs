//! Access control in front of every API route: the bearer token (when configured) and a
//! cross-site check, so a web page in the user's browser cannot drive a token-less daemon on
//! localhost through form posts.

use axum::extract::{Query, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiFailure, AppState};

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

pub async fn check(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if s.token.is_none() {
        if let Some(f) = foreign_host(&req) {
            return f.into_response();
        }
    }
    if let Some(f) = cross_site(&req) {
        return f.into_response();
    }
    if let Some(expected) = &s.token {
        let from_header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        let given = from_header.or_else(|| {
            Query::<TokenQuery>::try_from_uri(req.uri())
                .ok()
                .and_then(|q| q.0.token)
        });
        let ok = given.is_some_and(|g| same_secret(g.trim().as_bytes(), expected.as_bytes()));
        if !ok {
            let mut r = ApiFailure::unauthorized().into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    next.run(req).await
}

/// A request whose `Host` is not a loopback address or name. Without a token the API listens
/// on loopback only, so such a request came through DNS rebinding: a page of another site
/// whose name the attacker made resolve to 127.0.0.1, sending that name as `Host` (and as
/// `Origin`, so the cross-site check alone would pass it). Refused for reads too: after
/// rebinding the page could read the answers. Clients that send no `Host` (HTTP/1.0) are
/// not browsers and pass.
pub(super) fn foreign_host(req: &Request) -> Option<ApiFailure> {
    let host = req.headers().get(header::HOST)?;
    let ok = host
        .to_str()
        .ok()
        .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
        .is_some_and(|a| is_loopback_name(a.host()));
    if ok {
        return None;
    }
    Some(ApiFailure::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "Host {:?} is not a loopback address or name: refused (DNS rebinding); a daemon reached by another name needs --http-token",
            host.to_str().unwrap_or("(not text)")
        ),
    ))
}

/// `localhost`, a name under `.localhost` (RFC 6761; browsers resolve them to loopback
/// themselves), or a loopback IP literal (`127.0.0.0/8`, `[::1]`).
fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A state-changing request sent by a page of another origin (its `Origin` names another host
/// than the request's `Host`).
pub(super) fn cross_site(req: &Request) -> Option<ApiFailure> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let origin = req.headers().get(header::ORIGIN)?.to_str().ok();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let origin_host = origin.and_then(|o| o.split_once("://")).map(|(_, h)| h);
    if origin_host.is_some() && origin_host == host {
        return None;
    }
    Some(ApiFailure::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "cross-site request refused",
    ))
}

/// Compares in time independent of where the inputs differ.
pub(super) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names() {
        for ok in [
            "localhost",
            "LOCALHOST.",
            "ui.localhost",
            "127.0.0.1",
            "127.3.2.1",
            "[::1]",
        ] {
            assert!(is_loopback_name(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "localhost.evil.example",
            "10.0.0.1",
            "[::2]",
            "0.0.0.0",
            "",
        ] {
            assert!(!is_loopback_name(bad), "{bad}");
        }
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }
}
