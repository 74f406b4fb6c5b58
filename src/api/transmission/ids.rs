//! What Transmission's clients expect the server to remember between calls, which our
//! snapshot does not hold: a small numeric id per torrent (handed out as torrents appear,
//! stable for the daemon's lifetime, never reused — a torrent removed and added again gets
//! its old one back), the ids of torrents removed lately (`recently-active`'s `removed`), when
//! a torrent was seen to complete (`doneDate`), and each torrent's byte counters when the
//! daemon first showed it (session-stats' `current-stats`). Also: `ids` arguments and the
//! torrents they select.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::watch;

use super::envelope::{RpcError, RpcResult};
use super::Shared;
use crate::client::control::{ClientSnapshot, TorrentSnapshot, TorrentState};

/// How long a torrent counts as recently active (or recently removed) after it last was.
const RECENT: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct IdBook {
    next: i64,
    by_hash: HashMap<String, Known>,
}

#[derive(Debug)]
struct Known {
    id: i64,
    present: bool,
    removed_at: Option<SystemTime>,
    /// Seen incomplete this run (so a later complete snapshot is a completion we saw).
    seen_incomplete: bool,
    done_unix: Option<u64>,
    /// (down, up) when first seen this run.
    baseline: (u64, u64),
    last_active: Option<SystemTime>,
}

impl IdBook {
    /// Brings the book up to date with a snapshot taken at `now`.
    pub fn observe(&mut self, snap: &ClientSnapshot, now: SystemTime) {
        for k in self.by_hash.values_mut() {
            if k.present {
                k.present = false;
                k.removed_at = Some(now); // undone below for those still there
            }
        }
        // New torrents get ids in the order they were added.
        let mut order: Vec<&TorrentSnapshot> = snap.torrents.iter().collect();
        order.sort_by(|a, b| (a.added_unix, &a.info_hash).cmp(&(b.added_unix, &b.info_hash)));
        for t in order {
            let next = &mut self.next;
            let k = self.by_hash.entry(t.info_hash.clone()).or_insert_with(|| {
                *next += 1;
                Known {
                    id: *next,
                    present: true,
                    removed_at: None,
                    seen_incomplete: false,
                    done_unix: None,
                    baseline: (t.bytes_down, t.bytes_up),
                    last_active: None,
                }
            });
            k.present = true;
            k.removed_at = None;
            if complete(t) {
                if k.seen_incomplete && k.done_unix.is_none() {
                    k.done_unix = Some(unix(now));
                }
            } else {
                k.seen_incomplete = true;
                k.done_unix = None;
            }
            if active(t) {
                k.last_active = Some(now);
            }
        }
    }

    /// The torrent's id, handed out now if it has none yet (a torrent just added, before
    /// the snapshot shows it).
    pub fn ensure(&mut self, info_hash: &str) -> i64 {
        if let Some(k) = self.by_hash.get(info_hash) {
            return k.id;
        }
        self.next += 1;
        self.by_hash.insert(
            info_hash.to_string(),
            Known {
                id: self.next,
                present: false,
                removed_at: None,
                seen_incomplete: false,
                done_unix: None,
                baseline: (0, 0),
                last_active: None,
            },
        );
        self.next
    }

    pub fn id(&self, info_hash: &str) -> Option<i64> {
        self.by_hash.get(info_hash).map(|k| k.id)
    }

    /// When the torrent was seen to complete this run (0: not complete, or complete before).
    pub fn done_unix(&self, info_hash: &str) -> u64 {
        self.by_hash
            .get(info_hash)
            .and_then(|k| k.done_unix)
            .unwrap_or(0)
    }

    /// Bytes (down, up) moved this run by torrents still present.
    pub fn this_run(&self, snap: &ClientSnapshot) -> (u64, u64) {
        snap.torrents.iter().fold((0, 0), |(d, u), t| {
            let (bd, bu) = self
                .by_hash
                .get(&t.info_hash)
                .map(|k| k.baseline)
                .unwrap_or_default();
            (
                d + t.bytes_down.saturating_sub(bd),
                u + t.bytes_up.saturating_sub(bu),
            )
        })
    }

    /// Ids of torrents removed within the last minute.
    pub fn recently_removed(&self, now: SystemTime) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .by_hash
            .values()
            .filter(|k| k.removed_at.is_some_and(|at| within(at, now)))
            .map(|k| k.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    fn recently_active(&self, t: &TorrentSnapshot, now: SystemTime) -> bool {
        let added = UNIX_EPOCH + Duration::from_secs(t.added_unix);
        within(added, now)
            || self
                .by_hash
                .get(&t.info_hash)
                .and_then(|k| k.last_active)
                .is_some_and(|at| within(at, now))
    }
}

fn within(at: SystemTime, now: SystemTime) -> bool {
    now.duration_since(at).map_or(true, |d| d <= RECENT)
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Every wanted byte verified (a torrent without metadata is not).
pub fn complete(t: &TorrentSnapshot) -> bool {
    t.size > 0 && t.progress >= 1.0
}

/// Moving data, checking, or looking for its metadata.
fn active(t: &TorrentSnapshot) -> bool {
    t.rate_down > 0.0
        || t.rate_up > 0.0
        || matches!(
            t.state,
            TorrentState::Checking | TorrentState::FetchingMetadata
        )
}

/// Keeps the book up to date as snapshots are published, until the client is gone.
pub async fn follow(mut rx: watch::Receiver<Arc<ClientSnapshot>>, shared: Arc<Shared>) {
    loop {
        let snap = rx.borrow_and_update().clone();
        shared
            .book
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(&snap, SystemTime::now());
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// An `ids` argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Ids {
    All,
    RecentlyActive,
    /// Numeric ids and info hashes (lowercase).
    Listed(Vec<Sel>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Sel {
    Id(i64),
    Hash(String),
}

impl Ids {
    /// Absent: all torrents; a number; `recently-active`; a hash; or an array of numbers and
    /// hashes.
    pub fn parse(v: Option<Value>) -> RpcResult<Ids> {
        let one = |v: &Value| -> RpcResult<Sel> {
            match v {
                Value::Number(n) => n
                    .as_i64()
                    .map(Sel::Id)
                    .ok_or_else(|| RpcError::bad(format!("invalid torrent id {n}"))),
                Value::String(s) if s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    Ok(Sel::Hash(s.to_ascii_lowercase()))
                }
                // Some clients send numeric ids as text.
                Value::String(s) if s.parse::<i64>().is_ok() => {
                    Ok(Sel::Id(s.parse().unwrap_or_default()))
                }
                other => Err(RpcError::bad(format!(
                    "ids: {other} is neither a torrent id nor a 40-digit info hash"
                ))),
            }
        };
        match v {
            None => Ok(Ids::All),
            Some(Value::String(s)) if s == "recently-active" => Ok(Ids::RecentlyActive),
            Some(Value::Array(items)) => Ok(Ids::Listed(
                items.iter().map(one).collect::<RpcResult<_>>()?,
            )),
            Some(v) => Ok(Ids::Listed(vec![one(&v)?])),
        }
    }

    /// The torrents selected, in id order. With `strict`, an id or hash that names no torrent
    /// is an error (for actions); otherwise it is skipped (torrent-get, as Transmission does).
    pub fn select<'a>(
        &self,
        snap: &'a ClientSnapshot,
        book: &IdBook,
        now: SystemTime,
        strict: bool,
    ) -> RpcResult<Vec<&'a TorrentSnapshot>> {
        let mut out: Vec<&TorrentSnapshot> = match self {
            Ids::All => snap.torrents.iter().collect(),
            Ids::RecentlyActive => snap
                .torrents
                .iter()
                .filter(|t| book.recently_active(t, now))
                .collect(),
            Ids::Listed(sels) => {
                let mut v = Vec::new();
                for s in sels {
                    let found = snap.torrents.iter().find(|t| match s {
                        Sel::Id(id) => book.id(&t.info_hash) == Some(*id),
                        Sel::Hash(h) => t.info_hash == *h,
                    });
                    match found {
                        Some(t)
                            if v.iter()
                                .any(|x: &&TorrentSnapshot| x.info_hash == t.info_hash) => {}
                        Some(t) => v.push(t),
                        None if strict => {
                            return Err(RpcError::bad(match s {
                                Sel::Id(id) => format!("no torrent with id {id}"),
                                Sel::Hash(h) => format!("no torrent with info hash {h}"),
                            }))
                        }
                        None => {}
                    }
                }
                v
            }
        };
        out.sort_by_key(|t| book.id(&t.info_hash).unwrap_or(i64::MAX));
        Ok(out)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn torrent(ih: char, added: u64) -> TorrentSnapshot {
        serde_json::from_value(json!({
            "info_hash": ih.to_string().repeat(40), "name": "n", "size": 10,
            "state": "downloading", "error": null, "progress": 0.5, "pieces_have": 0,
            "wanted_bytes": 10, "wanted_done": 5,
            "pieces_resumed": 0, "pieces_checked": 0, "pieces_total": 1, "piece_length": 16,
            "bytes_down": 5, "bytes_up": 0, "rate_down": 0.0, "rate_up": 0.0, "ratio": 0.0,
            "eta_secs": null, "out_dir": "/d", "added_unix": added,
            "limits": {"download_bps": null, "upload_bps": null},
            "files": [], "peers": [], "lanes": [], "peers_known": 0, "peers_connected": 0,
            "peers_banned": 0
        }))
        .unwrap()
    }

    fn snap(ts: Vec<TorrentSnapshot>) -> ClientSnapshot {
        ClientSnapshot {
            torrents: ts,
            ..Default::default()
        }
    }

    #[test]
    fn ids_follow_addition_and_stay_for_the_daemons_life() {
        let now = SystemTime::now();
        let mut b = IdBook::default();
        b.observe(&snap(vec![torrent('b', 20), torrent('a', 10)]), now);
        assert_eq!(b.id(&"a".repeat(40)), Some(1));
        assert_eq!(b.id(&"b".repeat(40)), Some(2));
        // a removed, c added: c is 3, a's id is not reused, and a is listed as removed.
        b.observe(&snap(vec![torrent('b', 20), torrent('c', 5)]), now);
        assert_eq!(b.id(&"c".repeat(40)), Some(3));
        assert_eq!(b.recently_removed(now), vec![1]);
        assert!(b.recently_removed(now + RECENT * 2).is_empty());
        // a back: its old id.
        b.observe(&snap(vec![torrent('a', 30)]), now);
        assert_eq!(b.id(&"a".repeat(40)), Some(1));
    }

    #[test]
    fn completion_is_dated_only_when_seen() {
        let now = SystemTime::now();
        let mut b = IdBook::default();
        let mut done = torrent('a', 1);
        done.progress = 1.0;
        b.observe(&snap(vec![done.clone()]), now);
        assert_eq!(b.done_unix(&done.info_hash), 0, "complete when first seen");
        let mut t = torrent('b', 1);
        b.observe(&snap(vec![t.clone()]), now);
        t.progress = 1.0;
        b.observe(&snap(vec![t.clone()]), now);
        assert_eq!(b.done_unix(&t.info_hash), unix(now));
    }

    #[test]
    fn ids_arguments_select() {
        let now = SystemTime::now();
        let s = snap(vec![torrent('a', 1), torrent('b', 2)]);
        let mut b = IdBook::default();
        b.observe(&s, now);
        let names = |ids: &Ids, strict| -> RpcResult<Vec<String>> {
            Ok(ids
                .select(&s, &b, now, strict)?
                .iter()
                .map(|t| t.info_hash[..1].to_string())
                .collect())
        };
        assert_eq!(names(&Ids::parse(None).unwrap(), true).unwrap(), ["a", "b"]);
        assert_eq!(
            names(&Ids::parse(Some(json!(2))).unwrap(), true).unwrap(),
            ["b"]
        );
        let both = Ids::parse(Some(json!([2, "A".repeat(40)]))).unwrap();
        assert_eq!(names(&both, true).unwrap(), ["a", "b"]);
        assert_eq!(
            names(&Ids::parse(Some(json!("b".repeat(40)))).unwrap(), true).unwrap(),
            ["b"]
        );
        let missing = Ids::parse(Some(json!([9]))).unwrap();
        assert!(names(&missing, true).is_err());
        assert!(names(&missing, false).unwrap().is_empty());
        assert!(Ids::parse(Some(json!("nope"))).is_err());
        assert!(Ids::parse(Some(json!([true]))).is_err());
        // Both were added long ago and are idle.
        assert!(
            names(&Ids::parse(Some(json!("recently-active"))).unwrap(), true)
                .unwrap()
                .is_empty()
        );
    }
}
