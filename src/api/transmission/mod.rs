//! Transmission's RPC (`POST /transmission/rpc`, the protocol `transmission-remote`, Sonarr,
//! Radarr and mobile remotes speak; docs/rpc-spec.md of Transmission 4.0, its "old" protocol
//! with kebab-case and camelCase names), on the API's listener and behind its access rules.
//!
//! One file per concern: `handshake` (access control and the `X-Transmission-Session-Id`
//! exchange), `envelope` (the request/response frame and typed arguments), `dispatch` (method
//! name → handler), `ids` (stable numeric ids and what the RPC remembers across calls),
//! `fields` (torrent-get's field mapping), `session` (session-*, free-space, port-test),
//! `torrents` (the torrent methods) and `features` (re-check, move, labels, file choice).
//! Every method turns into commands to the client or reads of its snapshot, as the JSON API's
//! handlers do; what the daemon cannot do is answered in Transmission's error form, never
//! with a made-up success.

mod dispatch;
mod envelope;
mod features;
mod fields;
mod handshake;
mod ids;
mod session;
mod torrents;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use axum::routing::any;
use axum::Router;

use super::AppState;
use crate::client::control::ClientSnapshot;
use ids::IdBook;

/// The paths clients use: transmission-remote posts to `/transmission/rpc/`, most others to
/// `/transmission/rpc`.
const PATHS: [&str; 2] = ["/transmission/rpc", "/transmission/rpc/"];

/// What the RPC's handlers share.
#[derive(Clone)]
struct Rpc {
    app: AppState,
    shared: Arc<Shared>,
}

struct Shared {
    /// Sent back on a 409; the same for the daemon's lifetime (a new one each start).
    session_id: String,
    book: Mutex<IdBook>,
    started: SystemTime,
}

impl Rpc {
    /// The latest snapshot, with the id book brought up to date with it.
    fn snapshot(&self) -> (Arc<ClientSnapshot>, MutexGuard<'_, IdBook>) {
        let snap = self.app.client.snapshot();
        let mut book = self.book();
        book.observe(&snap, SystemTime::now());
        (snap, book)
    }

    fn book(&self) -> MutexGuard<'_, IdBook> {
        // A panic while the lock was held leaves a book that is still consistent enough to
        // hand out ids: every change to it is a single insert.
        self.shared
            .book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The RPC's routes, guarded by [`handshake::guard`].
pub(super) fn router(app: &AppState) -> Router<AppState> {
    let shared = Arc::new(Shared {
        session_id: handshake::new_session_id(),
        book: Mutex::new(IdBook::default()),
        started: SystemTime::now(),
    });
    // Ids are handed out, and completions noted, as torrents appear, not only when a client
    // asks; without a runtime (a router built for a test) requests do it alone.
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(ids::follow(app.client.subscribe(), shared.clone()));
    }
    let rpc = Rpc {
        app: app.clone(),
        shared,
    };
    let mut r = Router::new();
    for p in PATHS {
        r = r.route(p, any(dispatch::rpc));
    }
    r.route_layer(axum::middleware::from_fn_with_state(
        rpc.clone(),
        handshake::guard,
    ))
    .with_state(rpc)
}
