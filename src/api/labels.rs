//! Categories (each with a default save path inside the download root) and a torrent's
//! category and tags: `/api/v1/categories[/{name}]`, `/api/v1/torrents/{ih}/category`,
//! `/api/v1/torrents/{ih}/tags`.

use std::collections::BTreeMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::handlers::json_rejection;
use super::object::Object;
use super::{ApiFailure, AppState};
use crate::client::control::{parse_info_hash, Category, Command, TagChange};

type ApiResult<T> = Result<T, ApiFailure>;

fn info_hash(s: &str) -> ApiResult<[u8; 20]> {
    parse_info_hash(&s.to_ascii_lowercase()).map_err(ApiFailure::from)
}

/// `GET /api/v1/categories`: every category by name.
pub async fn list(State(s): State<AppState>) -> Json<BTreeMap<String, Category>> {
    Json(s.client.snapshot().categories.clone())
}

/// `PUT /api/v1/categories/{name}`: creates it or changes its save path.
pub async fn put(
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<Object<Category>>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let Json(Object(category)) = body.map_err(json_rejection)?;
    // Checked now so that a bad path is refused here; resolved again at each add (a symlink
    // made in between is caught then).
    s.root.resolve(&category.save_path)?;
    s.client
        .call(|reply| Command::SetCategory {
            name,
            category,
            reply,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/categories/{name}`: its torrents stay where they are, in no category.
pub async fn delete(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    s.client
        .call(|reply| Command::RemoveCategory { name, reply })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryBody {
    category: Option<String>,
}

/// `PUT /api/v1/torrents/{ih}/category` `{"category": "tv"}` (`null`: none). The data stays.
pub async fn set_torrent_category(
    State(s): State<AppState>,
    Path(ih): Path<String>,
    body: Result<Json<Object<CategoryBody>>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let info_hash = info_hash(&ih)?;
    let Json(Object(b)) = body.map_err(json_rejection)?;
    s.client
        .call(|reply| Command::SetTorrentCategory {
            info_hash,
            category: b.category,
            reply,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagsBody {
    tags: Option<Vec<String>>,
    add: Option<Vec<String>>,
    remove: Option<Vec<String>>,
}

/// `PUT /api/v1/torrents/{ih}/tags`: `{"tags": [...]}` replaces them, `{"add": [...]}` or
/// `{"remove": [...]}` changes them.
pub async fn set_tags(
    State(s): State<AppState>,
    Path(ih): Path<String>,
    body: Result<Json<Object<TagsBody>>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let info_hash = info_hash(&ih)?;
    let Json(Object(b)) = body.map_err(json_rejection)?;
    let change = match (b.tags, b.add, b.remove) {
        (Some(t), None, None) => TagChange::Set(t),
        (None, Some(t), None) => TagChange::Add(t),
        (None, None, Some(t)) => TagChange::Remove(t),
        _ => {
            return Err(ApiFailure::bad_request(
                "give exactly one of tags, add, remove",
            ))
        }
    };
    s.client
        .call(|reply| Command::SetTags {
            info_hash,
            change,
            reply,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
