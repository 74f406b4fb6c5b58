//! Who may call the RPC, in Transmission's order: our Host and Origin rules (403), the token
//! (401; Transmission's clients send it as HTTP basic auth, the password being the token, any
//! user name), then the `X-Transmission-Session-Id` exchange (409 with the id in the header,
//! which the client sends back on every request; a page of another site cannot read it).

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use data_encoding::BASE64;
use rand::Rng;

use super::super::auth::{cross_site, foreign_host, same_secret};
use super::Rpc;

pub const SESSION_HEADER: &str = "x-transmission-session-id";

/// 48 random letters and digits, as Transmission's own ids are.
pub fn new_session_id() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..48)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

pub async fn guard(State(rpc): State<Rpc>, req: Request, next: Next) -> Response {
    let token = rpc.app.token.clone();
    if token.is_none() {
        if let Some(f) = foreign_host(&req) {
            return f.into_response();
        }
    }
    if let Some(f) = cross_site(&req) {
        return f.into_response();
    }
    if let Some(expected) = &token {
        let ok = given_token(&req).is_some_and(|g| same_secret(g.as_bytes(), expected.as_bytes()));
        if !ok {
            return unauthorized();
        }
    }
    let sent = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok());
    if sent.is_none_or(|s| !same_secret(s.trim().as_bytes(), rpc.shared.session_id.as_bytes())) {
        return conflict(&rpc.shared.session_id);
    }
    next.run(req).await
}

/// The token from `Authorization: Basic` (its password), `Authorization: Bearer`, or
/// `?token=`; trimmed, as the JSON API takes it.
fn given_token(req: &Request) -> Option<String> {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(v) = auth {
        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = BASE64.decode(rest.trim().as_bytes()).ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (_user, password) = text.split_once(':')?;
            return Some(password.trim().to_string());
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(rest.trim().to_string());
        }
    }
    req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "token")
            .map(|(_, v)| v.trim().to_string())
    })
}

/// 401 asking for basic auth: curl (and so transmission-remote) sends credentials only once
/// asked this way.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"bittorrent-over-scion\""),
        )],
        "<h1>401: Unauthorized</h1><p>Send the daemon's token as the password (HTTP basic \
         auth, any user name) or as 'Authorization: Bearer TOKEN'.</p>",
    )
        .into_response()
}

fn conflict(session_id: &str) -> Response {
    let body = format!(
        "<h1>409: Conflict</h1><p>Your request had an invalid session-id header.</p>\
         <p>Send it back with every request:</p><p><code>X-Transmission-Session-Id: {session_id}</code></p>"
    );
    let mut r = (StatusCode::CONFLICT, body).into_response();
    if let Ok(v) = HeaderValue::from_str(session_id) {
        r.headers_mut().insert(SESSION_HEADER, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn req(auth: Option<&str>, uri: &str) -> Request {
        let mut b = axum::http::Request::builder().uri(uri);
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn tokens_come_from_basic_bearer_or_query() {
        let basic = format!("Basic {}", BASE64.encode(b"anyone:s3cret "));
        assert_eq!(
            given_token(&req(Some(&basic), "/")).as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            given_token(&req(Some("Bearer  s3cret"), "/")).as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            given_token(&req(None, "/transmission/rpc?token=s3cret")).as_deref(),
            Some("s3cret")
        );
        // A password with a colon keeps it; no colon at all is no password.
        let colon = format!("Basic {}", BASE64.encode(b"u:a:b"));
        assert_eq!(given_token(&req(Some(&colon), "/")).as_deref(), Some("a:b"));
        let none = format!("Basic {}", BASE64.encode(b"nocolon"));
        assert_eq!(given_token(&req(Some(&none), "/")), None);
        assert_eq!(given_token(&req(Some("Basic !!!"), "/")), None);
    }

    #[test]
    fn session_ids_are_random_and_header_safe() {
        let (a, b) = (new_session_id(), new_session_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 48);
        assert!(HeaderValue::from_str(&a).is_ok());
    }
}
