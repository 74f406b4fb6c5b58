//! qBittorrent's Web API v2 under `/api/v2/`, the part that *arr tools, autobrr and remote
//! apps speak, mapped onto the daemon's commands and snapshots. We answer as qBittorrent 4.6
//! does (its version, its field names and units, its status codes and plain-text errors), so
//! those tools can drive this daemon unchanged. One file per concern: `auth` (login, SID
//! sessions, the guard), `app` (app/* and transfer/*), `sync` (maindata with deltas),
//! `torrents` (torrents/*), `add` (torrents/add) and `fields` (our snapshot in qBittorrent's
//! names).

mod add;
mod app;
mod auth;
mod fields;
mod sync;
mod torrents;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, Query, Request};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::AppState;
use crate::client::control::{parse_info_hash, ClientSnapshot, InfoHash, TorrentSnapshot};

/// What the `/api/v2/` handlers share besides [`AppState`]: the login sessions and each
/// session's last `sync/maindata` answer.
struct QbtState {
    sessions: auth::Sessions,
    sync: sync::SyncStore,
}

/// The routes under `/api/v2/`; merged into the daemon's router, on the same listener.
pub(super) fn routes(state: AppState) -> Router<AppState> {
    let qbt = Arc::new(QbtState {
        sessions: auth::Sessions::default(),
        sync: sync::SyncStore::default(),
    });
    use torrents as t;
    // qBittorrent answers GET and POST alike on most actions; the ones that change state
    // are POST only (405 otherwise), as in its WebUI.
    let guarded = Router::new()
        .route("/api/v2/auth/logout", post(auth::logout))
        .route("/api/v2/app/version", get(app::version).post(app::version))
        .route(
            "/api/v2/app/webapiVersion",
            get(app::webapi_version).post(app::webapi_version),
        )
        .route(
            "/api/v2/app/buildInfo",
            get(app::build_info).post(app::build_info),
        )
        .route(
            "/api/v2/app/preferences",
            get(app::preferences).post(app::preferences),
        )
        .route("/api/v2/app/setPreferences", post(app::set_preferences))
        .route(
            "/api/v2/app/defaultSavePath",
            get(app::default_save_path).post(app::default_save_path),
        )
        .route(
            "/api/v2/transfer/info",
            get(app::transfer_info).post(app::transfer_info),
        )
        .route(
            "/api/v2/transfer/setDownloadLimit",
            post(app::set_download_limit),
        )
        .route(
            "/api/v2/transfer/setUploadLimit",
            post(app::set_upload_limit),
        )
        .route(
            "/api/v2/transfer/downloadLimit",
            get(app::download_limit).post(app::download_limit),
        )
        .route(
            "/api/v2/transfer/uploadLimit",
            get(app::upload_limit).post(app::upload_limit),
        )
        .route(
            "/api/v2/sync/maindata",
            get(sync::maindata).post(sync::maindata),
        )
        .route("/api/v2/torrents/info", get(t::info).post(t::info))
        .route(
            "/api/v2/torrents/properties",
            get(t::properties).post(t::properties),
        )
        .route("/api/v2/torrents/files", get(t::files).post(t::files))
        .route(
            "/api/v2/torrents/trackers",
            get(t::trackers).post(t::trackers),
        )
        .route(
            "/api/v2/torrents/pieceStates",
            get(t::piece_states).post(t::piece_states),
        )
        .route("/api/v2/torrents/add", post(add::add))
        .route("/api/v2/torrents/addPeers", post(t::add_peers))
        .route("/api/v2/torrents/delete", post(t::delete))
        .route("/api/v2/torrents/pause", post(t::pause))
        .route("/api/v2/torrents/stop", post(t::pause))
        .route("/api/v2/torrents/resume", post(t::resume))
        .route("/api/v2/torrents/start", post(t::resume))
        .route("/api/v2/torrents/recheck", post(t::recheck))
        .route("/api/v2/torrents/setCategory", post(t::set_category))
        .route("/api/v2/torrents/createCategory", post(t::create_category))
        .route("/api/v2/torrents/editCategory", post(t::create_category))
        .route(
            "/api/v2/torrents/removeCategories",
            post(t::remove_categories),
        )
        .route(
            "/api/v2/torrents/categories",
            get(t::categories).post(t::categories),
        )
        .route("/api/v2/torrents/addTags", post(t::add_tags))
        .route("/api/v2/torrents/removeTags", post(t::remove_tags))
        .route("/api/v2/torrents/createTags", post(t::create_tags))
        .route("/api/v2/torrents/deleteTags", post(t::delete_tags))
        .route("/api/v2/torrents/tags", get(t::tags).post(t::tags))
        .route("/api/v2/torrents/setShareLimits", post(t::set_share_limits))
        .route("/api/v2/torrents/topPrio", post(t::top_prio))
        .route("/api/v2/torrents/bottomPrio", post(t::bottom_prio))
        .route("/api/v2/torrents/increasePrio", post(t::increase_prio))
        .route("/api/v2/torrents/decreasePrio", post(t::decrease_prio))
        .route("/api/v2/torrents/setForceStart", post(t::set_force_start))
        .route("/api/v2/torrents/filePrio", post(t::file_prio))
        .route("/api/v2/torrents/setLocation", post(t::set_location))
        .route(
            "/api/v2/torrents/setDownloadLimit",
            post(t::set_download_limit),
        )
        .route("/api/v2/torrents/setUploadLimit", post(t::set_upload_limit))
        .route(
            "/api/v2/torrents/downloadLimit",
            get(t::download_limit).post(t::download_limit),
        )
        .route(
            "/api/v2/torrents/uploadLimit",
            get(t::upload_limit).post(t::upload_limit),
        )
        .route(
            "/api/v2/torrents/toggleSequentialDownload",
            post(t::toggle_sequential),
        )
        .route(
            "/api/v2/torrents/toggleFirstLastPiecePrio",
            post(t::toggle_first_last),
        )
        .route("/api/v2/{*rest}", axum::routing::any(not_found))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ));
    // Login is the one call without a session; the origin rules still apply to it.
    let login = Router::new()
        .route("/api/v2/auth/login", post(auth::login))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            auth::origin_only,
        ));
    login.merge(guarded).layer(Extension(qbt))
}

/// An answer as qBittorrent gives it: a status and a plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct QbtError {
    status: StatusCode,
    text: String,
}

impl QbtError {
    fn new(status: StatusCode, text: impl Into<String>) -> Self {
        Self {
            status,
            text: text.into(),
        }
    }

    /// `BadParams` in qBittorrent.
    fn bad_request(text: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, text)
    }

    /// `Conflict`: what qBittorrent answers when an action cannot be done as asked; also
    /// ours for what the daemon does not have (yet), naming it.
    fn conflict(text: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, text)
    }

    fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not Found")
    }

    /// A feature this daemon lacks: 409 naming it, never a pretended success.
    fn unsupported(what: &str) -> Self {
        Self::conflict(format!("{what} is not supported by this daemon (yet)"))
    }
}

impl IntoResponse for QbtError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
            self.text,
        )
            .into_response()
    }
}

/// A daemon error in qBittorrent's shape: unknown torrents are 404, a refused request 400,
/// the rest 409 (or 500/503 where the daemon itself failed) with our message.
impl From<crate::client::control::ControlError> for QbtError {
    fn from(e: crate::client::control::ControlError) -> Self {
        let f = super::ApiFailure::from(e);
        let status = match f.status.as_u16() {
            404 => StatusCode::NOT_FOUND,
            400 => StatusCode::BAD_REQUEST,
            500 | 503 => f.status,
            _ => StatusCode::CONFLICT,
        };
        Self::new(status, f.message)
    }
}

type QbtResult<T> = Result<T, QbtError>;

/// 200 with an empty body: what qBittorrent answers for an action that worked.
fn ok() -> Response {
    StatusCode::OK.into_response()
}

/// A JSON answer.
fn json(v: &impl serde::Serialize) -> Response {
    axum::Json(v).into_response()
}

/// Plain text, as qBittorrent sends its version strings and "Ok.".
fn text(s: impl Into<String>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        s.into(),
    )
        .into_response()
}

async fn not_found() -> QbtError {
    QbtError::not_found()
}

/// Most a form body may be (qBittorrent's are a few hashes and values; `torrents/add` takes
/// multipart and has its own limit).
const MAX_FORM: usize = 1 << 20;

/// A call's parameters: the query of a GET, the url-encoded form of a POST (plus its query).
/// Repeated names keep the last value, as qBittorrent's do.
pub(super) struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = QbtError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let mut map: HashMap<String, String> =
            Query::<Vec<(String, String)>>::try_from_uri(req.uri())
                .map(|q| q.0.into_iter().collect())
                .map_err(|e| QbtError::bad_request(e.body_text()))?;
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            return Ok(Self(map));
        }
        let form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        // Read at most MAX_FORM bytes: a longer body is refused, not held.
        let body = axum::body::to_bytes(req.into_body(), MAX_FORM)
            .await
            .map_err(|_| QbtError::new(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large"))?;
        if body.is_empty() {
            return Ok(Self(map));
        }
        if !form {
            return Err(QbtError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the parameters as application/x-www-form-urlencoded",
            ));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|e| QbtError::bad_request(format!("bad form: {e}")))?;
        map.extend(pairs);
        Ok(Self(map))
    }
}

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A parameter qBittorrent requires: 400 "Missing required parameters: NAME" without it.
    fn require(&self, name: &str) -> QbtResult<&str> {
        self.get(name)
            .ok_or_else(|| QbtError::bad_request(format!("Missing required parameters: {name}")))
    }

    /// A boolean as qBittorrent parses them (`true`/`false`, any case); `None` when absent.
    fn bool(&self, name: &str) -> QbtResult<Option<bool>> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => parse_bool(v)
                .map(Some)
                .ok_or_else(|| QbtError::bad_request(format!("{name} must be true or false"))),
        }
    }

    /// An integer parameter; `None` when absent or empty.
    fn int(&self, name: &str) -> QbtResult<Option<i64>> {
        match self.get(name).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| QbtError::bad_request(format!("{name} must be an integer"))),
        }
    }

    fn float(&self, name: &str) -> QbtResult<Option<f64>> {
        match self.get(name).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| QbtError::bad_request(format!("{name} must be a number"))),
        }
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// The torrents a `hashes` parameter names: `all`, or hashes separated by `|`. Hashes that
/// name no torrent (or are not hashes) are left out, as qBittorrent does.
fn select<'a>(snap: &'a ClientSnapshot, hashes: &str) -> Vec<&'a TorrentSnapshot> {
    if hashes.trim() == "all" {
        return snap.torrents.iter().collect();
    }
    let wanted: Vec<String> = hashes
        .split('|')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    snap.torrents
        .iter()
        .filter(|t| wanted.contains(&t.info_hash))
        .collect()
}

/// The info hashes of [`select`].
fn selected_hashes(snap: &ClientSnapshot, hashes: &str) -> Vec<InfoHash> {
    select(snap, hashes)
        .into_iter()
        .filter_map(|t| parse_info_hash(&t.info_hash).ok())
        .collect()
}

/// The one torrent a `hash` parameter names; 404 "Not Found" otherwise.
fn one<'a>(snap: &'a ClientSnapshot, p: &Params) -> QbtResult<&'a TorrentSnapshot> {
    let h = p.require("hash")?.trim().to_ascii_lowercase();
    snap.torrents
        .iter()
        .find(|t| t.info_hash == h)
        .ok_or_else(QbtError::not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_as_qbittorrent_reads_them() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("yes please"), None);
    }

    #[test]
    fn daemon_errors_keep_their_meaning() {
        use crate::client::control::ControlError as E;
        assert_eq!(QbtError::from(E::UnknownTorrent("x".into())).status, 404);
        assert_eq!(QbtError::from(E::BadRequest("x".into())).status, 400);
        assert_eq!(QbtError::from(E::Duplicate("x".into())).status, 409);
        assert_eq!(QbtError::from(E::ShuttingDown).status, 503);
    }
}
