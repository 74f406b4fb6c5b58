//! `sync/maindata`: the whole state at once (`full_update: true`), then, for a caller that
//! sends back the `rid` it got, only what changed since: changed fields of changed torrents,
//! `torrents_removed`, changed `server_state` fields. Each session (SID) keeps its last
//! answer; a `rid` that is not the session's last gets a full update again, as in qBittorrent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use serde_json::{json, Map, Value};

use super::super::AppState;
use super::app::transfer_of;
use super::auth::sid_of;
use super::fields::info;
use super::torrents::{categories_of, tags_of};
use super::{json, Params, QbtResult, QbtState};
use crate::client::control::ClientSnapshot;

/// Sessions whose last answer is kept at most (one per live SID in practice).
const MAX_KEPT: usize = 1024;

/// Each session's last rid and the full state it stood for.
#[derive(Default)]
pub(super) struct SyncStore {
    last: Mutex<HashMap<String, (u64, Value)>>,
}

impl SyncStore {
    pub(super) fn forget(&self, sid: &str) {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(sid);
    }

    /// Stores `full` as the session's state and returns its new rid, with what the caller's
    /// `rid` stood for when it was the session's last.
    fn advance(&self, key: &str, rid: Option<u64>, full: Value) -> (u64, Option<Value>) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let previous = last.get(key).cloned();
        let base = match (&previous, rid) {
            (Some((r, v)), Some(asked)) if *r == asked && asked != 0 => Some(v.clone()),
            _ => None,
        };
        let next = previous.map_or(1, |(r, _)| r + 1);
        if last.len() >= MAX_KEPT && !last.contains_key(key) {
            last.clear();
        }
        last.insert(key.to_string(), (next, full));
        (next, base)
    }
}

/// Free bytes on the filesystem of the download root (0 when it cannot be read).
fn free_space(root: &std::path::Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(root.as_os_str().as_bytes()) else {
        return 0;
    };
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a NUL-terminated path and a buffer of the right type for statvfs to fill.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    // SAFETY: statvfs returned 0, so it filled the buffer.
    let st = unsafe { st.assume_init() };
    // The field types differ between targets (u32 on some 32-bit ones).
    #[allow(clippy::unnecessary_cast)]
    let free = (st.f_bavail as u64).saturating_mul(st.f_frsize as u64);
    free
}

/// The whole state, as a full update lists it.
fn full_state(s: &AppState, snap: &ClientSnapshot, now_unix: u64) -> Value {
    let mut torrents = Map::new();
    let mut trackers: Map<String, Value> = Map::new();
    for t in &snap.torrents {
        torrents.insert(t.info_hash.clone(), Value::Object(info(t, snap, now_unix)));
        for url in t.announce.iter().flatten() {
            let list = trackers.entry(url.clone()).or_insert_with(|| json!([]));
            if let Value::Array(a) = list {
                a.push(Value::String(t.info_hash.clone()));
            }
        }
    }
    let mut server = transfer_of(snap);
    let down: u64 = snap.torrents.iter().map(|t| t.bytes_down).sum();
    let up: u64 = snap.torrents.iter().map(|t| t.bytes_up).sum();
    let ratio = if down == 0 {
        0.0
    } else {
        up as f64 / down as f64
    };
    let extra = json!({
        "alltime_dl": down,
        "alltime_ul": up,
        "free_space_on_disk": free_space(s.root.path()),
        "global_ratio": format!("{ratio:.2}"),
        "queueing": snap.queue.enabled,
        "refresh_interval": 1500,
        "total_peer_connections": snap.torrents.iter().map(|t| t.peers_connected).sum::<usize>(),
        "use_alt_speed_limits": false,
    });
    if let Value::Object(e) = extra {
        server.extend(e);
    }
    json!({
        "torrents": torrents,
        "categories": categories_of(s, snap),
        "tags": tags_of(snap),
        "server_state": server,
        "trackers": trackers,
    })
}

/// Fields of `now` that differ from `before` (all of them for an object that is new).
fn changed(before: Option<&Value>, now: &Map<String, Value>) -> Map<String, Value> {
    let before = before.and_then(Value::as_object);
    now.iter()
        .filter(|(k, v)| before.and_then(|b| b.get(*k)) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The delta from `base` to `full`.
fn delta(base: &Value, full: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let empty = Map::new();
    let obj = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (old_t, new_t) = (obj(base, "torrents"), obj(full, "torrents"));
    let mut torrents = Map::new();
    for (hash, t) in &new_t {
        let fields = changed(old_t.get(hash), t.as_object().unwrap_or(&empty));
        if !fields.is_empty() {
            torrents.insert(hash.clone(), Value::Object(fields));
        }
    }
    if !torrents.is_empty() {
        out.insert("torrents".into(), Value::Object(torrents));
    }
    let removed: Vec<Value> = old_t
        .keys()
        .filter(|h| !new_t.contains_key(*h))
        .map(|h| Value::String(h.clone()))
        .collect();
    if !removed.is_empty() {
        out.insert("torrents_removed".into(), Value::Array(removed));
    }
    let server = changed(base.get("server_state"), &obj(full, "server_state"));
    if !server.is_empty() {
        out.insert("server_state".into(), Value::Object(server));
    }
    let (old_c, new_c) = (obj(base, "categories"), obj(full, "categories"));
    let cats = changed(base.get("categories"), &new_c);
    if !cats.is_empty() {
        out.insert("categories".into(), Value::Object(cats));
    }
    let gone: Vec<Value> = old_c
        .keys()
        .filter(|c| !new_c.contains_key(*c))
        .map(|c| Value::String(c.clone()))
        .collect();
    if !gone.is_empty() {
        out.insert("categories_removed".into(), Value::Array(gone));
    }
    let list = |v: &Value| -> Vec<Value> {
        v.get("tags")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (old_tags, new_tags) = (list(base), list(full));
    let added: Vec<Value> = new_tags
        .iter()
        .filter(|t| !old_tags.contains(t))
        .cloned()
        .collect();
    let removed_tags: Vec<Value> = old_tags
        .iter()
        .filter(|t| !new_tags.contains(t))
        .cloned()
        .collect();
    if !added.is_empty() {
        out.insert("tags".into(), Value::Array(added));
    }
    if !removed_tags.is_empty() {
        out.insert("tags_removed".into(), Value::Array(removed_tags));
    }
    let (old_tr, new_tr) = (obj(base, "trackers"), obj(full, "trackers"));
    let trackers = changed(base.get("trackers"), &new_tr);
    if !trackers.is_empty() {
        out.insert("trackers".into(), Value::Object(trackers));
    }
    let gone: Vec<Value> = old_tr
        .keys()
        .filter(|u| !new_tr.contains_key(*u))
        .map(|u| Value::String(u.clone()))
        .collect();
    if !gone.is_empty() {
        out.insert("trackers_removed".into(), Value::Array(gone));
    }
    out
}

/// Which session the caller is: its SID, or the bearer-token caller.
fn session_key(headers: &HeaderMap) -> String {
    sid_of(headers).unwrap_or_else(|| "bearer".into())
}

pub(super) async fn maindata(
    State(s): State<AppState>,
    Extension(q): Extension<Arc<QbtState>>,
    headers: HeaderMap,
    p: Params,
) -> QbtResult<Response> {
    let rid = p.int("rid")?.and_then(|r| u64::try_from(r).ok());
    let snap = s.client.snapshot();
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let full = full_state(&s, &snap, now_unix);
    let (next, base) = q.sync.advance(&session_key(&headers), rid, full.clone());
    let mut body = match base {
        Some(base) => {
            let mut d = delta(&base, &full);
            d.insert("full_update".into(), Value::Bool(false));
            d
        }
        None => {
            let mut m = full.as_object().cloned().unwrap_or_default();
            m.insert("full_update".into(), Value::Bool(true));
            m
        }
    };
    body.insert("rid".into(), json!(next));
    Ok(json(&Value::Object(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_name_only_what_changed() {
        let a = json!({"torrents": {"aa": {"progress": 0.5, "name": "x"}, "bb": {"name": "y"}},
                       "server_state": {"dl_info_speed": 1, "up_info_speed": 0}, "trackers": {}});
        let b = json!({"torrents": {"aa": {"progress": 0.75, "name": "x"}, "cc": {"name": "z"}},
                       "server_state": {"dl_info_speed": 1, "up_info_speed": 9}, "trackers": {}});
        let d = Value::Object(delta(&a, &b));
        assert_eq!(d["torrents"]["aa"], json!({"progress": 0.75}));
        assert_eq!(d["torrents"]["cc"], json!({"name": "z"}));
        assert_eq!(d["torrents_removed"], json!(["bb"]));
        assert_eq!(d["server_state"], json!({"up_info_speed": 9}));
        assert!(d.get("trackers").is_none());
    }

    #[test]
    fn a_stale_rid_gets_a_full_update() {
        let s = SyncStore::default();
        let (r1, base) = s.advance("sid", None, json!(1));
        assert!(base.is_none());
        let (r2, base) = s.advance("sid", Some(r1), json!(2));
        assert_eq!(base, Some(json!(1)));
        assert!(r2 > r1);
        let (_, base) = s.advance("sid", Some(r1), json!(3));
        assert!(base.is_none(), "rid {r1} is no longer the last");
        let (_, base) = s.advance("other", Some(r2), json!(3));
        assert!(base.is_none(), "rids are per session");
    }
}
