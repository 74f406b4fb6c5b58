//! The API's handlers (all but adding a torrent, see `add`): each turns a request into one
//! client command or a read of the latest snapshot.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::Stream;
use serde::{Deserialize, Serialize};

use super::object::Object;
use super::{metrics, ApiFailure, AppState};
use crate::client::control::{
    parse_info_hash, ClientSnapshot, Command, ControlError, InfoHash, Limits, PeerSource,
    SeedPolicy, TorrentSnapshot,
};
use crate::client::peer_book::MAX_PINNED;
use crate::lanes::PathRules;
use crate::scion::PeerAddr;

/// At most this many snapshots per second on the event stream.
const EVENT_INTERVAL: Duration = Duration::from_millis(500);

type ApiResult<T> = Result<T, ApiFailure>;

fn info_hash(s: &str) -> ApiResult<InfoHash> {
    parse_info_hash(&s.to_ascii_lowercase()).map_err(ApiFailure::from)
}

fn find(snap: &ClientSnapshot, ih: &str) -> ApiResult<TorrentSnapshot> {
    let ih = ih.to_ascii_lowercase();
    snap.torrents
        .iter()
        .find(|t| t.info_hash == ih)
        .cloned()
        .ok_or_else(|| crate::client::control::ControlError::UnknownTorrent(ih.to_string()).into())
}

pub fn parse_peers(peers: &[String]) -> ApiResult<Vec<PeerAddr>> {
    if peers.len() > MAX_PINNED {
        return Err(ApiFailure::bad_request(format!(
            "{} peers in one request; at most {MAX_PINNED} (a torrent keeps that many given peers)",
            peers.len()
        )));
    }
    peers
        .iter()
        .map(|p| {
            p.parse::<PeerAddr>()
                .map_err(|e| ApiFailure::bad_request(format!("invalid peer {p:?}: {e}")))
        })
        .collect()
}

pub async fn list(State(s): State<AppState>) -> Json<Vec<TorrentSnapshot>> {
    Json(s.client.snapshot().torrents.clone())
}

pub async fn show(State(s): State<AppState>, Path(ih): Path<String>) -> ApiResult<Response> {
    info_hash(&ih)?;
    Ok(Json(find(&s.client.snapshot(), &ih)?).into_response())
}

pub async fn pause(State(s): State<AppState>, Path(ih): Path<String>) -> ApiResult<StatusCode> {
    let ih = info_hash(&ih)?;
    s.client.call(|r| Command::Pause(ih, r)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn resume(State(s): State<AppState>, Path(ih): Path<String>) -> ApiResult<StatusCode> {
    let ih = info_hash(&ih)?;
    s.client.call(|r| Command::Resume(ih, r)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/torrents/{ih}/recheck`: hashes every piece again.
pub async fn recheck(State(s): State<AppState>, Path(ih): Path<String>) -> ApiResult<StatusCode> {
    let ih = info_hash(&ih)?;
    s.client.call(|r| Command::Recheck(ih, r)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    out_dir: String,
}

/// `POST /api/v1/torrents/{ih}/move` `{"out_dir": D}`: 204 when the data is there (renamed),
/// 202 while it is copied across filesystems (the snapshot's `moving_to` says so until then).
pub async fn move_data(
    State(s): State<AppState>,
    Path(ih): Path<String>,
    body: Result<Json<Object<MoveBody>>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<StatusCode> {
    let info_hash = info_hash(&ih)?;
    let Json(Object(b)) = body.map_err(json_rejection)?;
    let out_dir = s.root.resolve(&b.out_dir)?;
    let progress = s
        .client
        .call(|reply| Command::Move {
            info_hash,
            out_dir,
            reply,
        })
        .await?;
    Ok(match progress {
        crate::client::control::MoveProgress::Done => StatusCode::NO_CONTENT,
        crate::client::control::MoveProgress::Copying => StatusCode::ACCEPTED,
    })
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    #[serde(default)]
    delete_data: bool,
}

pub async fn remove(
    State(s): State<AppState>,
    Path(ih): Path<String>,
    q: Result<Query<RemoveQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<StatusCode> {
    let info_hash = info_hash(&ih)?;
    // A malformed query gets the JSON error every other caller mistake gets.
    let Query(q) = q.map_err(|e| ApiFailure::bad_request(e.body_text()))?;
    s.client
        .call(|reply| Command::Remove {
            info_hash,
            delete_data: q.delete_data,
            reply,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeersBody {
    peers: Vec<String>,
}

#[derive(Serialize)]
pub struct Added {
    added: usize,
}

pub async fn add_peers(
    State(s): State<AppState>,
    Path(ih): Path<String>,
    body: Result<Json<Object<PeersBody>>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Added>> {
    let info_hash = info_hash(&ih)?;
    let Json(Object(body)) = body.map_err(json_rejection)?;
    let peers = parse_peers(&body.peers)?;
    let added = s
        .client
        .call(|reply| Command::AddPeers {
            info_hash,
            peers,
            source: PeerSource::Api,
            reply,
        })
        .await?;
    Ok(Json(Added { added }))
}

pub async fn set_limits(
    State(s): State<AppState>,
    Path(ih): Path<String>,
    body: Result<Json<Object<Limits>>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<StatusCode> {
    let ih = info_hash(&ih)?;
    let Json(Object(limits)) = body.map_err(json_rejection)?;
    s.client
        .call(|reply| Command::SetLimits {
            info_hash: Some(ih),
            limits,
            reply,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/torrents/{ih}/path_rules`: replaces all four rules (a missing one is none).
pub async fn set_path_rules(
    State(s): State<AppState>,
    Path(ih): Path<String>,
    body: Result<Json<Object<PathRules>>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<StatusCode> {
    let info_hash = info_hash(&ih)?;
    let Json(Object(rules)) = body.map_err(json_rejection)?;
    rules.compile().map_err(ControlError::from)?;
    s.client
        .call(|reply| Command::SetPathRules {
            info_hash,
            rules,
            reply,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/settings`: what can be changed, and what the daemon was started with.
#[derive(Serialize)]
pub struct Settings {
    limits: Limits,
    seed_policy: SeedPolicy,
    encryption: bt_mse::Policy,
    queue: crate::client::queue::QueueSettings,
    download_root: String,
    data_dir: String,
    http_listen: String,
    sciond: Option<String>,
    local_scion: Option<String>,
    tcp_listen: Option<String>,
}

pub async fn settings(State(s): State<AppState>) -> Json<Settings> {
    let snap = s.client.snapshot();
    Json(Settings {
        limits: snap.limits,
        seed_policy: snap.seed_policy,
        encryption: snap.encryption,
        queue: snap.queue,
        download_root: s.root.path().display().to_string(),
        data_dir: s.data_dir.display().to_string(),
        http_listen: s.listen.to_string(),
        sciond: snap.sciond.clone(),
        local_scion: snap.local_scion.clone(),
        tcp_listen: snap.tcp_listen.clone(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    limits: Option<Object<Limits>>,
    seed_policy: Option<Object<SeedPolicy>>,
    encryption: Option<bt_mse::Policy>,
    /// Only the fields given change (`null` lifts a limit).
    queue: Option<Object<crate::client::queue::QueueUpdate>>,
}

pub async fn set_settings(
    State(s): State<AppState>,
    body: Result<Json<Object<SettingsUpdate>>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<StatusCode> {
    let Json(Object(u)) = body.map_err(json_rejection)?;
    if let Some(Object(limits)) = u.limits {
        s.client
            .call(|reply| Command::SetLimits {
                info_hash: None,
                limits,
                reply,
            })
            .await?;
    }
    if let Some(Object(p)) = u.seed_policy {
        p.validate()
            .map_err(|e| ApiFailure::bad_request(e.to_string()))?;
        s.client.call(|r| Command::SetSeedPolicy(p, r)).await?;
    }
    if let Some(p) = u.encryption {
        s.client.call(|r| Command::SetEncryption(p, r)).await?;
    }
    if let Some(Object(q)) = u.queue {
        s.client.call(|r| Command::SetQueue(q, r)).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn paths(State(s): State<AppState>) -> Response {
    Json(&s.client.snapshot().paths).into_response()
}

pub async fn snapshot(State(s): State<AppState>) -> Response {
    Json(&*s.client.snapshot()).into_response()
}

/// Server-sent events: the current snapshot at once, then each new one, at most every
/// `EVENT_INTERVAL`.
pub async fn events(
    State(s): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = s.client.subscribe();
    let stream = futures_util::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first {
            tokio::time::sleep(EVENT_INTERVAL).await;
            rx.changed().await.ok()?;
        }
        let snap: Arc<ClientSnapshot> = rx.borrow_and_update().clone();
        let event = Event::default()
            .event("snapshot")
            .json_data(&*snap)
            .unwrap_or_else(|e| Event::default().comment(format!("snapshot not encoded: {e}")));
        Some((Ok(event), (rx, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(s.keep_alive))
}

pub async fn metrics(State(s): State<AppState>) -> Response {
    let text = metrics::render(&s.client.snapshot());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/yaml")],
        include_str!("../../docs/openapi.yaml"),
    )
        .into_response()
}

pub async fn ui_index() -> Response {
    asset("index.html")
}

pub async fn ui_asset(Path(path): Path<String>) -> Response {
    asset(&path)
}

/// The web UI loads only its own files and talks only to its own origin; no other site may
/// frame it (clickjacking). Inline style attributes are allowed for progress bars' widths.
const UI_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     style-src-attr 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

fn asset(path: &str) -> Response {
    match crate::web_assets::asset(path) {
        Some((bytes, content_type)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CONTENT_SECURITY_POLICY, UI_CSP),
                (header::X_FRAME_OPTIONS, "DENY"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        None => ApiFailure::not_found(format!("no UI file {path:?}")).into_response(),
    }
}

pub async fn not_found() -> ApiFailure {
    ApiFailure::not_found("no such route; see /api/v1/openapi.yaml")
}

/// A JSON body that did not parse (syntax, shape, content type), in the API's error format.
pub fn json_rejection(r: axum::extract::rejection::JsonRejection) -> ApiFailure {
    let status = match r.status() {
        StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        s => s,
    };
    ApiFailure::new(status, "bad_request", r.body_text())
}
