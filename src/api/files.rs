//! A torrent's files: `GET`/`PUT /api/v1/torrents/{ih}/files` (list, priorities) and
//! `PUT /api/v1/torrents/{ih}/options` (sequential mode, first/last-piece priority).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::handlers::json_rejection;
use super::object::Object;
use super::{ApiFailure, AppState};
use crate::client::control::{parse_info_hash, Command, FilePriority, InfoHash};

type ApiResult<T> = Result<T, ApiFailure>;

fn info_hash(s: &str) -> ApiResult<InfoHash> {
    parse_info_hash(&s.to_ascii_lowercase()).map_err(ApiFailure::from)
}

/// One file as `GET .../files` lists it.
#[derive(Serialize)]
pub struct FileEntry {
    index: usize,
    path: String,
    length: u64,
    done: u64,
    progress: f64,
    priority: FilePriority,
}

pub async fn list(
    State(s): State<AppState>,
    Path(ih): Path<String>,
) -> ApiResult<Json<Vec<FileEntry>>> {
    let ih = crate::client::control::info_hash_hex(&info_hash(&ih)?);
    let snap = s.client.snapshot();
    let t = snap
        .torrents
        .iter()
        .find(|t| t.info_hash == ih)
        .ok_or_else(|| crate::client::control::ControlError::UnknownTorrent(ih.clone()))?;
    Ok(Json(
        t.files
            .iter()
            .enumerate()
            .map(|(index, f)| FileEntry {
                index,
                path: f.path.clone(),
                length: f.length,
                done: f.done,
                progress: f.progress,
                priority: f.priority,
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrioritiesBody {
    priorities: Value,
}

/// Most files one request may name (a torrent with more is rare; the body limit holds too).
const MAX_CHANGES: usize = 1 << 20;

/// `{"0": "skip", "3": "high"}` (some files by index) or `["skip", "normal", ...]` (file `i`
/// gets entry `i`) into (index, priority) pairs; anything else is a 400 that says why.
pub fn parse_priorities(v: &Value) -> Result<Vec<(usize, FilePriority)>, ApiFailure> {
    let prio = |key: &str, v: &Value| -> Result<FilePriority, ApiFailure> {
        v.as_str().and_then(FilePriority::parse).ok_or_else(|| {
            ApiFailure::bad_request(format!(
                "priority of file {key}: {v} is not one of \"skip\", \"low\", \"normal\", \"high\""
            ))
        })
    };
    let out: Vec<(usize, FilePriority)> = match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let i = k.parse::<usize>().map_err(|_| {
                    ApiFailure::bad_request(format!("{k:?} is not a file index (0, 1, ...)"))
                })?;
                Ok((i, prio(k, v)?))
            })
            .collect::<Result<_, ApiFailure>>()?,
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| Ok((i, prio(&i.to_string(), v)?)))
            .collect::<Result<_, ApiFailure>>()?,
        _ => {
            return Err(ApiFailure::bad_request(
                "priorities is an object {\"INDEX\": PRIORITY} or a list of priorities",
            ))
        }
    };
    if out.len() > MAX_CHANGES {
        return Err(ApiFailure::bad_request("too many files in one request"));
    }
    Ok(out)
}

/// `PUT .../files`: sets the named files' priorities (others keep theirs).
pub async fn set_priorities(
    State(s): State<AppState>,
    Path(ih): Path<String>,
    body: Result<Json<Object<PrioritiesBody>>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<StatusCode> {
    let info_hash = info_hash(&ih)?;
    let Json(Object(body)) = body.map_err(json_rejection)?;
    let priorities = parse_priorities(&body.priorities)?;
    s.client
        .call(|reply| Command::SetFilePriorities {
            info_hash,
            priorities,
            reply,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionsBody {
    sequential: Option<bool>,
    first_last_piece: Option<bool>,
}

/// `PUT .../options`: sequential mode and first/last-piece priority (one left out: unchanged).
pub async fn set_options(
    State(s): State<AppState>,
    Path(ih): Path<String>,
    body: Result<Json<Object<OptionsBody>>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<StatusCode> {
    let info_hash = info_hash(&ih)?;
    let Json(Object(body)) = body.map_err(json_rejection)?;
    s.client
        .call(|reply| Command::SetFileOrder {
            info_hash,
            sequential: body.sequential,
            first_last_piece: body.first_last_piece,
            reply,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_by_index_or_as_a_list() {
        use FilePriority::*;
        let v: Value = serde_json::from_str(r#"{"0": "skip", "3": "high"}"#).unwrap();
        let mut got = parse_priorities(&v).unwrap();
        got.sort();
        assert_eq!(got, vec![(0, Skip), (3, High)]);
        let v: Value = serde_json::from_str(r#"["low", "normal"]"#).unwrap();
        assert_eq!(parse_priorities(&v).unwrap(), vec![(0, Low), (1, Normal)]);
        for bad in [
            r#"{"0": "urgent"}"#,
            r#"{"-1": "skip"}"#,
            r#"{"x": "skip"}"#,
            r#"{"0": 1}"#,
            r#"["skip", null]"#,
            r#""skip""#,
            r#"7"#,
            r#"{"99999999999999999999999": "skip"}"#,
        ] {
            let v: Value = serde_json::from_str(bad).unwrap();
            let e = parse_priorities(&v).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
