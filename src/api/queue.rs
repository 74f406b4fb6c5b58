//! The queue through `/api/v1`: moving a torrent in the queue and force-starting it. The
//! queue's limits are part of `PUT /api/v1/settings` (`handlers::set_settings`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::handlers::json_rejection;
use super::object::Object;
use super::{ApiFailure, AppState};
use crate::client::control::{parse_info_hash, Command};
use crate::client::queue::Move;

type Body<T> = Result<Json<Object<T>>, axum::extract::rejection::JsonRejection>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    /// `top`, `up`, `down` or `bottom`.
    #[serde(rename = "move")]
    to: Move,
}

/// `POST /api/v1/torrents/{ih}/queue` `{"move": "top"}`: moves it in the queue.
pub async fn move_in_queue(
    State(s): State<AppState>,
    Path(ih): Path<String>,
    body: Body<MoveBody>,
) -> Result<StatusCode, ApiFailure> {
    let ih = parse_info_hash(&ih.to_ascii_lowercase())?;
    let Json(Object(b)) = body.map_err(json_rejection)?;
    s.client
        .call(|reply| Command::QueueMove {
            info_hashes: vec![ih],
            to: b.to,
            reply,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForceBody {
    force: bool,
}

/// `PUT /api/v1/torrents/{ih}/force_start` `{"force": true}`: runs it regardless of the
/// queue's limits (resuming it if paused); `false` puts it back under them.
pub async fn force_start(
    State(s): State<AppState>,
    Path(ih): Path<String>,
    body: Body<ForceBody>,
) -> Result<StatusCode, ApiFailure> {
    let info_hash = parse_info_hash(&ih.to_ascii_lowercase())?;
    let Json(Object(b)) = body.map_err(json_rejection)?;
    s.client
        .call(|reply| Command::ForceStart {
            info_hash,
            force: b.force,
            reply,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
