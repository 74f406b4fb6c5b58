//! `torrents/*` (all but `add`): reads from the latest snapshot, actions as daemon commands.
//! Bulk actions take `hashes` (`a|b|c` or `all`) and skip hashes that name no torrent, as
//! qBittorrent does; reads of one torrent (`hash`) answer 404 for an unknown one. What the
//! daemon does not have answers 409 naming it (queueing answers qBittorrent's own "Torrent
//! queueing must be enabled").

use std::cmp::Ordering;

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::super::AppState;
use super::app::limit_param;
use super::fields;
use super::{json, ok, one, select, selected_hashes, Params, QbtError, QbtResult};
use crate::client::control::{Command, PeerSource};
use crate::scion::PeerAddr;

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Orders two field values as qBittorrent sorts its columns: numbers, strings, booleans.
fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// `torrents/info`: filter, category, tag, hashes, sort, reverse, limit, offset.
pub(super) async fn info(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let snap = s.client.snapshot();
    let now = now_unix();
    let filter = p.get("filter").unwrap_or("all");
    let wanted: Option<Vec<String>> = p.get("hashes").map(|h| {
        h.split('|')
            .filter(|x| !x.is_empty())
            .map(|x| x.trim().to_ascii_lowercase())
            .collect()
    });
    // No torrent has a category or a tag (the daemon has neither yet): an empty one
    // ("uncategorized", "untagged") matches all, any other none.
    let category_ok = p.get("category").is_none_or(str::is_empty);
    let tag_ok = p.get("tag").is_none_or(str::is_empty);
    let mut list: Vec<Map<String, Value>> = snap
        .torrents
        .iter()
        .filter(|_| category_ok && tag_ok)
        .filter(|t| fields::passes(t, filter))
        .filter(|t| {
            wanted
                .as_ref()
                .is_none_or(|w| w.is_empty() || w.contains(&t.info_hash))
        })
        .map(|t| fields::info(t, &snap, now))
        .collect();
    if let Some(col) = p.get("sort").filter(|c| !c.is_empty()) {
        if let Some(first) = list.first() {
            if !first.contains_key(col) {
                return Err(QbtError::bad_request("'sort' parameter is invalid"));
            }
        }
        list.sort_by(|a, b| compare(a.get(col), b.get(col)));
    }
    if p.bool("reverse")?.unwrap_or(false) {
        list.reverse();
    }
    let len = list.len() as i64;
    let offset = p.int("offset")?.unwrap_or(0);
    // A negative offset counts from the end.
    let start = if offset < 0 {
        (len + offset).max(0)
    } else {
        offset.min(len)
    } as usize;
    let limit = p
        .int("limit")?
        .filter(|l| *l > 0)
        .map_or(usize::MAX, |l| l as usize);
    let page: Vec<Value> = list
        .into_iter()
        .skip(start)
        .take(limit)
        .map(Value::Object)
        .collect();
    Ok(json(&page))
}

pub(super) async fn properties(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let snap = s.client.snapshot();
    Ok(json(&fields::properties(one(&snap, &p)?, now_unix())))
}

/// `torrents/files` (`indexes`: `0|2|5`, optional).
pub(super) async fn files(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let snap = s.client.snapshot();
    let t = one(&snap, &p)?;
    let indexes = match p.get("indexes").filter(|i| !i.is_empty()) {
        None => None,
        Some(list) => Some(
            list.split('|')
                .map(|i| {
                    i.trim().parse::<usize>().map_err(|_| {
                        QbtError::conflict(format!("\"{i}\" is not a valid file index."))
                    })
                })
                .collect::<QbtResult<Vec<usize>>>()?,
        ),
    };
    Ok(json(&fields::files(t, indexes.as_deref())))
}

pub(super) async fn trackers(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let snap = s.client.snapshot();
    Ok(json(&fields::trackers(one(&snap, &p)?)))
}

/// `torrents/pieceStates`: 0 missing, 1 downloading, 2 have. The snapshot counts verified
/// pieces but does not list them, so only a torrent with none or all of them is answered.
pub(super) async fn piece_states(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let snap = s.client.snapshot();
    let t = one(&snap, &p)?;
    let n = t.pieces_total as usize;
    if t.pieces_have == 0 {
        return Ok(json(&vec![0u8; n]));
    }
    if t.pieces_have >= t.pieces_total {
        return Ok(json(&vec![2u8; n]));
    }
    Err(QbtError::unsupported(
        "the state of each piece of a torrent that is partly downloaded",
    ))
}

/// `torrents/addPeers` (`hashes`, `peers` = `host:port|host:port`).
pub(super) async fn add_peers(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let hashes = p.require("hashes")?.to_string();
    let peers: Vec<PeerAddr> = p
        .require("peers")?
        .split('|')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    if peers.is_empty() {
        return Err(QbtError::bad_request("No valid peers were specified"));
    }
    let snap = s.client.snapshot();
    let mut results = Map::new();
    for ih in selected_hashes(&snap, &hashes) {
        let n = peers.len();
        let added = s
            .client
            .call(|reply| Command::AddPeers {
                info_hash: ih,
                peers: peers.clone(),
                source: PeerSource::Api,
                reply,
            })
            .await?;
        results.insert(
            crate::client::control::info_hash_hex(&ih),
            json!({"added": added, "failed": n.saturating_sub(added)}),
        );
    }
    Ok(json(&Value::Object(results)))
}

/// `torrents/delete` (`hashes`, `deleteFiles`).
pub(super) async fn delete(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let hashes = p.require("hashes")?.to_string();
    let delete_data = p.bool("deleteFiles")?.unwrap_or(false);
    let snap = s.client.snapshot();
    for info_hash in selected_hashes(&snap, &hashes) {
        s.client
            .call(|reply| Command::Remove {
                info_hash,
                delete_data,
                reply,
            })
            .await?;
    }
    Ok(ok())
}

/// `torrents/pause` and 5.0's `torrents/stop`.
pub(super) async fn pause(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let hashes = p.require("hashes")?.to_string();
    let snap = s.client.snapshot();
    for ih in selected_hashes(&snap, &hashes) {
        s.client.call(|r| Command::Pause(ih, r)).await?;
    }
    Ok(ok())
}

/// `torrents/resume` and 5.0's `torrents/start`.
pub(super) async fn resume(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let hashes = p.require("hashes")?.to_string();
    let snap = s.client.snapshot();
    for ih in selected_hashes(&snap, &hashes) {
        s.client.call(|r| Command::Resume(ih, r)).await?;
    }
    Ok(ok())
}

pub(super) async fn recheck(p: Params) -> QbtResult<Response> {
    p.require("hashes")?;
    Err(QbtError::unsupported("re-checking a torrent"))
}

/// `torrents/setCategory`: no torrent has a category, so only "none" can be set.
pub(super) async fn set_category(p: Params) -> QbtResult<Response> {
    p.require("hashes")?;
    let category = p.require("category")?;
    if category.is_empty() {
        return Ok(ok());
    }
    Err(QbtError::unsupported("categories"))
}

pub(super) async fn create_category(p: Params) -> QbtResult<Response> {
    let name = p.require("category")?;
    if name.trim().is_empty() {
        return Err(QbtError::bad_request("Category cannot be empty"));
    }
    Err(QbtError::unsupported("categories"))
}

pub(super) async fn remove_categories(p: Params) -> QbtResult<Response> {
    p.require("categories")?;
    Err(QbtError::unsupported("categories"))
}

/// `torrents/categories`: none exist.
pub(super) async fn categories() -> Response {
    json(&json!({}))
}

pub(super) async fn add_tags(p: Params) -> QbtResult<Response> {
    p.require("tags")?;
    Err(QbtError::unsupported("tags"))
}

pub(super) async fn remove_tags(p: Params) -> QbtResult<Response> {
    p.require("tags")?;
    Err(QbtError::unsupported("tags"))
}

pub(super) async fn create_tags(p: Params) -> QbtResult<Response> {
    p.require("tags")?;
    Err(QbtError::unsupported("tags"))
}

pub(super) async fn delete_tags(p: Params) -> QbtResult<Response> {
    p.require("tags")?;
    Err(QbtError::unsupported("tags"))
}

/// `torrents/tags`: none exist.
pub(super) async fn tags() -> Response {
    json(&json!([]))
}

/// `torrents/setShareLimits`: the daemon has one seeding policy for all torrents, so the
/// only per-torrent limits it can take are "use the global ones" (-2).
pub(super) async fn set_share_limits(p: Params) -> QbtResult<Response> {
    p.require("hashes")?;
    let ratio = p.float("ratioLimit")?;
    let time = p.int("seedingTimeLimit")?;
    let inactive = p.int("inactiveSeedingTimeLimit")?;
    if ratio.is_none() || time.is_none() {
        return Err(QbtError::bad_request(
            "Missing required parameters: ratioLimit, seedingTimeLimit",
        ));
    }
    let global = ratio == Some(-2.0) && time == Some(-2) && inactive.is_none_or(|i| i == -2);
    if global {
        return Ok(ok());
    }
    Err(QbtError::unsupported(
        "share limits per torrent (the daemon's seeding policy is global: app/setPreferences max_ratio, max_seeding_time)",
    ))
}

/// `topPrio`, `bottomPrio`, `increasePrio`, `decreasePrio`: what qBittorrent answers while
/// queueing is off.
pub(super) async fn queue_move(p: Params) -> QbtResult<Response> {
    p.require("hashes")?;
    Err(QbtError::conflict("Torrent queueing must be enabled"))
}

pub(super) async fn set_force_start(p: Params) -> QbtResult<Response> {
    p.require("hashes")?;
    match p.bool("value")? {
        Some(false) | None => Ok(ok()),
        Some(true) => Err(QbtError::unsupported(
            "force start (the daemon has no queue yet)",
        )),
    }
}

/// `torrents/filePrio` (`hash`, `id` = `0|3`, `priority` 0, 1, 6 or 7).
pub(super) async fn file_prio(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let snap = s.client.snapshot();
    let priority = p
        .int("priority")
        .map_err(|_| QbtError::bad_request("Priority must be an integer"))?
        .ok_or_else(|| QbtError::bad_request("Missing required parameters: priority"))?;
    if ![0, 1, 6, 7].contains(&priority) {
        return Err(QbtError::bad_request("Priority is not valid"));
    }
    let t = one(&snap, &p)?;
    if t.pieces_total == 0 {
        return Err(QbtError::conflict(
            "Torrent's metadata has not yet downloaded",
        ));
    }
    for id in p.require("id")?.split('|') {
        let i: usize = id
            .trim()
            .parse()
            .map_err(|_| QbtError::bad_request("File IDs must be integers"))?;
        if i >= t.files.len() {
            return Err(QbtError::conflict("File ID is not valid"));
        }
    }
    if priority == fields::PRIO_NORMAL {
        return Ok(ok()); // every file is fetched at normal priority already
    }
    Err(QbtError::unsupported("file priorities"))
}

/// `torrents/setLocation` (`hashes`, `location`): inside the download root only.
pub(super) async fn set_location(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let hashes = p.require("hashes")?.to_string();
    let location = p.require("location")?;
    if location.trim().is_empty() {
        return Err(QbtError::bad_request("Save path cannot be empty"));
    }
    let target = s.root.resolve(location).map_err(|e| {
        QbtError::new(
            axum::http::StatusCode::FORBIDDEN,
            format!("Cannot write to directory: {e}"),
        )
    })?;
    let snap = s.client.snapshot();
    let moving = select(&snap, &hashes)
        .into_iter()
        .any(|t| std::path::Path::new(&t.out_dir) != target);
    if !moving {
        return Ok(ok());
    }
    Err(QbtError::unsupported("moving a torrent's data"))
}

async fn set_limit(s: &AppState, p: &Params, download: bool) -> QbtResult<Response> {
    let hashes = p.require("hashes")?.to_string();
    let l = limit_param(p)?;
    let snap = s.client.snapshot();
    for t in select(&snap, &hashes) {
        let Ok(info_hash) = crate::client::control::parse_info_hash(&t.info_hash) else {
            continue;
        };
        let mut limits = t.limits;
        if download {
            limits.download_bps = l;
        } else {
            limits.upload_bps = l;
        }
        s.client
            .call(|reply| Command::SetLimits {
                info_hash: Some(info_hash),
                limits,
                reply,
            })
            .await?;
    }
    Ok(ok())
}

pub(super) async fn set_download_limit(
    State(s): State<AppState>,
    p: Params,
) -> QbtResult<Response> {
    set_limit(&s, &p, true).await
}

pub(super) async fn set_upload_limit(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    set_limit(&s, &p, false).await
}

fn limits_of(s: &AppState, p: &Params, download: bool) -> QbtResult<Response> {
    let hashes = p.require("hashes")?;
    let snap = s.client.snapshot();
    let m: Map<String, Value> = select(&snap, hashes)
        .into_iter()
        .map(|t| {
            let l = if download {
                t.limits.download_bps
            } else {
                t.limits.upload_bps
            };
            (t.info_hash.clone(), json!(l.unwrap_or(0)))
        })
        .collect();
    Ok(json(&Value::Object(m)))
}

pub(super) async fn download_limit(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    limits_of(&s, &p, true)
}

pub(super) async fn upload_limit(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    limits_of(&s, &p, false)
}

pub(super) async fn toggle_sequential(p: Params) -> QbtResult<Response> {
    p.require("hashes")?;
    Err(QbtError::unsupported("sequential download"))
}

pub(super) async fn toggle_first_last(p: Params) -> QbtResult<Response> {
    p.require("hashes")?;
    Err(QbtError::unsupported("first and last piece priority"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_sort_by_their_type() {
        assert_eq!(compare(Some(&json!(2)), Some(&json!(10))), Ordering::Less);
        assert_eq!(
            compare(Some(&json!("b")), Some(&json!("a"))),
            Ordering::Greater
        );
        assert_eq!(
            compare(Some(&json!(false)), Some(&json!(true))),
            Ordering::Less
        );
    }
}
