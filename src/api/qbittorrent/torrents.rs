//! `torrents/*` (all but `add`): reads from the latest snapshot, actions as daemon commands.
//! Bulk actions take `hashes` (`a|b|c` or `all`) and skip hashes that name no torrent, as
//! qBittorrent does; reads of one torrent (`hash`) answer 404 for an unknown one. What the
//! daemon does not have answers 409 naming it (queue moves while queueing is off answer
//! qBittorrent's own "Torrent queueing must be enabled").

use std::cmp::Ordering;

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::super::AppState;
use super::app::limit_param;
use super::fields;
use super::{json, ok, one, select, selected_hashes, Params, QbtError, QbtResult};
use crate::client::control::{
    Category, ClientSnapshot, Command, FilePriority, PeerSource, TagChange,
};
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
    // An empty category or tag means "in none" ("uncategorized", "untagged").
    let category = p.get("category");
    let tag = p.get("tag");
    let mut list: Vec<Map<String, Value>> = snap
        .torrents
        .iter()
        .filter(|t| category.is_none_or(|c| t.category.as_deref().unwrap_or("") == c))
        .filter(|t| {
            tag.is_none_or(|g| {
                if g.is_empty() {
                    t.tags.is_empty()
                } else {
                    t.tags.iter().any(|x| x == g)
                }
            })
        })
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

pub(super) async fn recheck(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let hashes = p.require("hashes")?.to_string();
    let snap = s.client.snapshot();
    for ih in selected_hashes(&snap, &hashes) {
        s.client.call(|r| Command::Recheck(ih, r)).await?;
    }
    Ok(ok())
}

/// A category's save path as the daemon keeps it: relative to the download root, checked to
/// lie inside it (qBittorrent's answer to one it cannot use: 409).
fn category_path(s: &AppState, save_path: &str) -> QbtResult<String> {
    let abs = s
        .root
        .resolve(save_path.trim())
        .map_err(|e| QbtError::conflict(format!("Cannot make save path: {e}")))?;
    Ok(abs
        .strip_prefix(s.root.path())
        .map(|r| r.display().to_string())
        .unwrap_or_default())
}

/// `torrents/setCategory` (`hashes`, `category`; "" = none). A category that does not exist
/// is qBittorrent's 409 "Incorrect category name".
pub(super) async fn set_category(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let hashes = p.require("hashes")?.to_string();
    let name = p.require("category")?.trim().to_string();
    let snap = s.client.snapshot();
    if !name.is_empty() && !snap.categories.contains_key(&name) {
        return Err(QbtError::conflict("Incorrect category name"));
    }
    let category = Some(name).filter(|n| !n.is_empty());
    for info_hash in selected_hashes(&snap, &hashes) {
        let category = category.clone();
        s.client
            .call(|reply| Command::SetTorrentCategory {
                info_hash,
                category,
                reply,
            })
            .await?;
    }
    Ok(ok())
}

/// `torrents/createCategory` and `editCategory` (`category`, `savePath`).
pub(super) async fn create_category(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let name = p.require("category")?.trim().to_string();
    if name.is_empty() {
        return Err(QbtError::bad_request("Category cannot be empty"));
    }
    let save_path = category_path(&s, p.get("savePath").unwrap_or(""))?;
    s.client
        .call(|reply| Command::SetCategory {
            name,
            category: Category { save_path },
            reply,
        })
        .await
        .map_err(|e| QbtError::conflict(format!("Unable to create category: {e}")))?;
    Ok(ok())
}

/// `torrents/removeCategories` (`categories`, one a line).
pub(super) async fn remove_categories(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let names: Vec<String> = p
        .require("categories")?
        .lines()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    let snap = s.client.snapshot();
    for name in names
        .into_iter()
        .filter(|n| snap.categories.contains_key(n))
    {
        s.client
            .call(|reply| Command::RemoveCategory { name, reply })
            .await?;
    }
    Ok(ok())
}

/// `torrents/categories`: `{name: {name, savePath}}`, the save path absolute.
pub(super) async fn categories(State(s): State<AppState>) -> Response {
    let snap = s.client.snapshot();
    json(&categories_of(&s, &snap))
}

pub(super) fn categories_of(s: &AppState, snap: &ClientSnapshot) -> Value {
    let m: Map<String, Value> = snap
        .categories
        .iter()
        .map(|(name, c)| {
            let path = s.root.path().join(&c.save_path).display().to_string();
            (name.clone(), json!({"name": name, "savePath": path}))
        })
        .collect();
    Value::Object(m)
}

/// A `tags` parameter: comma-separated, blanks dropped.
fn tag_list(p: &Params) -> QbtResult<Vec<String>> {
    Ok(p.require("tags")?
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect())
}

async fn change_tags(s: &AppState, hashes: &str, change: TagChange) -> QbtResult<()> {
    let snap = s.client.snapshot();
    for info_hash in selected_hashes(&snap, hashes) {
        let change = change.clone();
        s.client
            .call(|reply| Command::SetTags {
                info_hash,
                change,
                reply,
            })
            .await?;
    }
    Ok(())
}

/// `torrents/addTags` (`hashes`, `tags`).
pub(super) async fn add_tags(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let hashes = p.require("hashes")?.to_string();
    change_tags(&s, &hashes, TagChange::Add(tag_list(&p)?)).await?;
    Ok(ok())
}

/// `torrents/removeTags` (`hashes`, `tags`; none given: all of them).
pub(super) async fn remove_tags(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let hashes = p.require("hashes")?.to_string();
    let tags = match p.get("tags") {
        None => Vec::new(),
        Some(_) => tag_list(&p)?,
    };
    let change = if tags.is_empty() {
        TagChange::Set(Vec::new())
    } else {
        TagChange::Remove(tags)
    };
    change_tags(&s, &hashes, change).await?;
    Ok(ok())
}

/// `torrents/createTags`: tags here exist only on torrents, so one cannot be made alone.
pub(super) async fn create_tags(p: Params) -> QbtResult<Response> {
    p.require("tags")?;
    Err(QbtError::unsupported(
        "a tag on no torrent (tags exist on torrents here: use torrents/addTags)",
    ))
}

/// `torrents/deleteTags`: removes them from every torrent.
pub(super) async fn delete_tags(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let tags = tag_list(&p)?;
    if !tags.is_empty() {
        change_tags(&s, "all", TagChange::Remove(tags)).await?;
    }
    Ok(ok())
}

/// `torrents/tags`: every tag some torrent has, sorted.
pub(super) async fn tags(State(s): State<AppState>) -> Response {
    json(&tags_of(&s.client.snapshot()))
}

pub(super) fn tags_of(snap: &ClientSnapshot) -> Vec<String> {
    let all: std::collections::BTreeSet<&String> =
        snap.torrents.iter().flat_map(|t| &t.tags).collect();
    all.into_iter().cloned().collect()
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

/// `topPrio`, `bottomPrio`, `increasePrio`, `decreasePrio` (`hashes`): moves them in the
/// queue; qBittorrent's 409 "Torrent queueing must be enabled" while queueing is off.
async fn queue_move(s: AppState, p: Params, to: crate::client::queue::Move) -> QbtResult<Response> {
    let hashes = p.require("hashes")?.to_string();
    let snap = s.client.snapshot();
    if !snap.queue.enabled {
        return Err(QbtError::conflict("Torrent queueing must be enabled"));
    }
    let info_hashes = selected_hashes(&snap, &hashes);
    if !info_hashes.is_empty() {
        s.client
            .call(|reply| Command::QueueMove {
                info_hashes,
                to,
                reply,
            })
            .await?;
    }
    Ok(ok())
}

pub(super) async fn top_prio(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    queue_move(s, p, crate::client::queue::Move::Top).await
}

pub(super) async fn bottom_prio(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    queue_move(s, p, crate::client::queue::Move::Bottom).await
}

/// `increasePrio`: one place nearer the front of the queue.
pub(super) async fn increase_prio(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    queue_move(s, p, crate::client::queue::Move::Up).await
}

pub(super) async fn decrease_prio(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    queue_move(s, p, crate::client::queue::Move::Down).await
}

/// `setForceStart` (`hashes`, `value`): true runs them regardless of the queue (resuming a
/// paused one, as qBittorrent does); false puts them back under it.
pub(super) async fn set_force_start(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let hashes = p.require("hashes")?.to_string();
    let force = p.bool("value")?.unwrap_or(false);
    let snap = s.client.snapshot();
    for info_hash in selected_hashes(&snap, &hashes) {
        s.client
            .call(|reply| Command::ForceStart {
                info_hash,
                force,
                reply,
            })
            .await?;
    }
    Ok(ok())
}

/// Our priority for qBittorrent's: 0 skip, 1 normal, 6 high, 7 maximal (our high).
fn priority_of(qbt: i64) -> Option<FilePriority> {
    match qbt {
        0 => Some(FilePriority::Skip),
        1 => Some(FilePriority::Normal),
        6 | 7 => Some(FilePriority::High),
        _ => None,
    }
}

/// `torrents/filePrio` (`hash`, `id` = `0|3`, `priority` 0, 1, 6 or 7).
pub(super) async fn file_prio(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let snap = s.client.snapshot();
    let priority = p
        .int("priority")
        .map_err(|_| QbtError::bad_request("Priority must be an integer"))?
        .ok_or_else(|| QbtError::bad_request("Missing required parameters: priority"))?;
    let priority =
        priority_of(priority).ok_or_else(|| QbtError::bad_request("Priority is not valid"))?;
    let t = one(&snap, &p)?;
    if t.pieces_total == 0 {
        return Err(QbtError::conflict(
            "Torrent's metadata has not yet downloaded",
        ));
    }
    let mut priorities = Vec::new();
    for id in p.require("id")?.split('|') {
        let i: usize = id
            .trim()
            .parse()
            .map_err(|_| QbtError::bad_request("File IDs must be integers"))?;
        if i >= t.files.len() {
            return Err(QbtError::conflict("File ID is not valid"));
        }
        priorities.push((i, priority));
    }
    let info_hash = crate::client::control::parse_info_hash(&t.info_hash)?;
    s.client
        .call(|reply| Command::SetFilePriorities {
            info_hash,
            priorities,
            reply,
        })
        .await?;
    Ok(ok())
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
    for info_hash in selected_hashes(&snap, &hashes) {
        let out_dir = target.clone();
        s.client
            .call(|reply| Command::Move {
                info_hash,
                out_dir,
                reply,
            })
            .await?;
    }
    Ok(ok())
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

/// Flips sequential mode (`sequential`) or first/last-piece priority of each torrent named.
async fn toggle(s: &AppState, p: &Params, sequential: bool) -> QbtResult<Response> {
    let hashes = p.require("hashes")?;
    let snap = s.client.snapshot();
    for t in select(&snap, hashes) {
        let Ok(info_hash) = crate::client::control::parse_info_hash(&t.info_hash) else {
            continue;
        };
        let (seq, fl) = if sequential {
            (Some(!t.sequential), None)
        } else {
            (None, Some(!t.first_last_piece))
        };
        s.client
            .call(|reply| Command::SetFileOrder {
                info_hash,
                sequential: seq,
                first_last_piece: fl,
                reply,
            })
            .await?;
    }
    Ok(ok())
}

pub(super) async fn toggle_sequential(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    toggle(&s, &p, true).await
}

pub(super) async fn toggle_first_last(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    toggle(&s, &p, false).await
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
