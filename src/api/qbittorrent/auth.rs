//! Logging in to the qBittorrent API and the guard in front of every other call. The mapping
//! onto our access control: the password is the daemon's `--http-token` (any user name, as
//! the token names no user); without a token every login succeeds (the API is then loopback
//! only, as ever). A login gives an `SID` cookie; every call but `auth/login` needs a live SID
//! — or our `Authorization: Bearer TOKEN`, which is qBittorrent 5.2's API-key scheme too —
//! else 403 "Forbidden", as qBittorrent answers. Our origin rules (a loopback `Host` without a
//! token, no cross-site `Origin`) apply first, and qBittorrent's `Referer` check besides.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::super::auth::{cross_site, foreign_host, same_secret};
use super::super::AppState;
use super::{text, Params, QbtError, QbtState};

/// The cookie qBittorrent names its session by.
pub(super) const COOKIE: &str = "SID";
/// An idle session ends after this long (qBittorrent's default WebUI session timeout).
const IDLE: Duration = Duration::from_secs(3600);
/// Live sessions at most; a login past it ends the one idle longest. Bounds memory against
/// a caller that logs in in a loop.
const MAX_SESSIONS: usize = 1024;

/// Live sessions: SID → last use.
#[derive(Default)]
pub(super) struct Sessions {
    live: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    fn start(&self) -> String {
        let sid = new_sid();
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, used| now.duration_since(*used) < IDLE);
        if live.len() >= MAX_SESSIONS {
            if let Some(oldest) = live.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone()) {
                live.remove(&oldest);
            }
        }
        live.insert(sid.clone(), now);
        sid
    }

    /// True, and the session's clock restarted, when `sid` is live.
    fn touch(&self, sid: &str) -> bool {
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        match live.get_mut(sid) {
            Some(used) if now.duration_since(*used) < IDLE => {
                *used = now;
                true
            }
            Some(_) => {
                live.remove(sid);
                false
            }
            None => false,
        }
    }

    fn end(&self, sid: &str) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.remove(sid);
    }
}

/// 32 random hex digits (128 bits from the OS's generator, through rand's thread RNG).
fn new_sid() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SID cookie of a request, if it sends one.
pub(super) fn sid_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
}

/// `POST auth/login` (form `username`, `password`): "Ok." and a new SID cookie, or "Fails."
/// (200, as qBittorrent 4.6 answers a wrong password).
pub(super) async fn login(
    State(s): State<AppState>,
    Extension(q): Extension<Arc<QbtState>>,
    p: Params,
) -> Response {
    let accepted = match &s.token {
        None => true,
        Some(token) => p
            .get("password")
            .is_some_and(|pw| same_secret(pw.trim().as_bytes(), token.as_bytes())),
    };
    if !accepted {
        return text("Fails.");
    }
    let sid = q.sessions.start();
    let mut r = text("Ok.");
    let cookie = format!("{COOKIE}={sid}; HttpOnly; SameSite=Strict; path=/");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST auth/logout`: ends the session (its cookie expires).
pub(super) async fn logout(Extension(q): Extension<Arc<QbtState>>, req: Request) -> Response {
    if let Some(sid) = sid_of(req.headers()) {
        q.sessions.end(&sid);
        q.sync.forget(&sid);
    }
    let mut r = StatusCode::OK.into_response();
    let expired = format!("{COOKIE}=; path=/; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&expired) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// Our origin rules, answered in qBittorrent's plain-text form, plus its `Referer` check: a
/// request a page of another site sent (its `Origin` or `Referer` names another host than
/// `Host`) is refused.
fn refused_origin(s: &AppState, req: &Request) -> Option<QbtError> {
    let ours = if s.token.is_none() {
        foreign_host(req)
    } else {
        None
    }
    .or_else(|| cross_site(req));
    if let Some(f) = ours {
        return Some(QbtError::new(f.status, f.message));
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let referer = req.headers().get(header::REFERER)?.to_str().ok();
    let referer_host = referer
        .and_then(|r| r.split_once("://"))
        .map(|(_, rest)| rest.split('/').next().unwrap_or(""));
    if referer_host.is_some() && referer_host == host {
        return None;
    }
    Some(QbtError::new(
        StatusCode::UNAUTHORIZED,
        "cross-site request refused (Referer names another host)",
    ))
}

/// In front of `auth/login`: the origin rules only.
pub(super) async fn origin_only(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(e) = refused_origin(&s, &req) {
        return e.into_response();
    }
    next.run(req).await
}

/// In front of every other call: the origin rules, then a live SID or our bearer token.
pub(super) async fn guard(
    State(s): State<AppState>,
    Extension(q): Extension<Arc<QbtState>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(e) = refused_origin(&s, &req) {
        return e.into_response();
    }
    let by_token = s.token.as_ref().is_some_and(|expected| {
        req.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|g| same_secret(g.trim().as_bytes(), expected.as_bytes()))
    });
    let by_sid = sid_of(req.headers()).is_some_and(|sid| q.sessions.touch(&sid));
    if !(by_token || by_sid) {
        return QbtError::new(StatusCode::FORBIDDEN, "Forbidden").into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_start_touch_and_end() {
        let s = Sessions::default();
        let a = s.start();
        assert_eq!(a.len(), 32);
        assert!(s.touch(&a));
        assert!(!s.touch("nonsense"));
        s.end(&a);
        assert!(!s.touch(&a));
    }

    #[test]
    fn sessions_are_bounded() {
        let s = Sessions::default();
        let first = s.start();
        for _ in 0..MAX_SESSIONS {
            s.start();
        }
        assert!(!s.touch(&first), "the oldest session made room");
        assert_eq!(s.live.lock().unwrap().len(), MAX_SESSIONS);
    }

    #[test]
    fn the_sid_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; SID=abc ; b=2"),
        );
        assert_eq!(sid_of(&h).as_deref(), Some("abc"));
        h.insert(header::COOKIE, HeaderValue::from_static("xSID=1"));
        assert_eq!(sid_of(&h), None);
    }
}
