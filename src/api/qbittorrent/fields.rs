//! Our torrent snapshot in qBittorrent's names and units: its state strings, the fields of
//! `torrents/info` (and of each torrent in `sync/maindata`), `properties`, `files`,
//! `trackers`, and the filters of `torrents/info`. Sizes are bytes, rates bytes/s, times Unix
//! seconds, limits bytes/s with 0 (info) or -1 (properties) for none, as qBittorrent writes
//! them. What we do not track is written as qBittorrent writes "unknown" (-1, 0 or "").

use serde_json::{json, Map, Value};

use crate::client::control::{
    ClientSnapshot, FilePriority, SeedPolicy, TorrentSnapshot, TorrentState, TrackerState,
};

/// qBittorrent's "infinite" ETA: 100 days.
pub(super) const ETA_INFINITE: u64 = 8_640_000;

/// All pieces verified (a torrent with no metadata yet is not).
fn complete(t: &TorrentSnapshot) -> bool {
    t.pieces_total > 0 && t.pieces_have >= t.pieces_total
}

/// qBittorrent's state string. Stalled means live but moving no data right now.
pub(super) fn state(t: &TorrentSnapshot) -> &'static str {
    let done = complete(t);
    if t.moving_to.is_some() {
        return "moving";
    }
    match t.state {
        TorrentState::FetchingMetadata if t.force_start => "forcedMetaDL",
        TorrentState::FetchingMetadata => "metaDL",
        TorrentState::Downloading if t.force_start => "forcedDL",
        TorrentState::Seeding if t.force_start => "forcedUP",
        TorrentState::QueuedDownload => "queuedDL",
        TorrentState::QueuedSeed => "queuedUP",
        TorrentState::Checking if done => "checkingUP",
        TorrentState::Checking => "checkingDL",
        TorrentState::Downloading if t.rate_down > 0.0 => "downloading",
        TorrentState::Downloading => "stalledDL",
        TorrentState::Seeding if t.rate_up > 0.0 => "uploading",
        TorrentState::Seeding => "stalledUP",
        TorrentState::Paused if done => "pausedUP",
        TorrentState::Paused => "pausedDL",
        TorrentState::Error => "error",
    }
}

/// Does `t` pass `torrents/info`'s `filter`? An unknown filter passes everything, as in
/// qBittorrent.
pub(super) fn passes(t: &TorrentSnapshot, filter: &str) -> bool {
    let s = state(t);
    let downloading = matches!(
        s,
        "downloading"
            | "metaDL"
            | "stalledDL"
            | "checkingDL"
            | "pausedDL"
            | "queuedDL"
            | "forcedDL"
            | "forcedMetaDL"
    );
    let seeding = matches!(
        s,
        "uploading" | "stalledUP" | "checkingUP" | "queuedUP" | "forcedUP"
    );
    let paused = matches!(s, "pausedUP" | "pausedDL");
    let active = matches!(
        s,
        "downloading"
            | "metaDL"
            | "forcedMetaDL"
            | "uploading"
            | "forcedDL"
            | "forcedUP"
            | "moving"
    );
    match filter {
        "downloading" => downloading,
        "seeding" => seeding,
        "completed" => complete(t),
        "paused" | "stopped" => paused,
        "resumed" | "running" => !paused,
        "active" => active,
        "inactive" => !active,
        "stalled" => matches!(s, "stalledUP" | "stalledDL"),
        "stalled_uploading" => s == "stalledUP",
        "stalled_downloading" => s == "stalledDL",
        "checking" => matches!(s, "checkingUP" | "checkingDL"),
        "errored" => s == "error",
        "moving" => s == "moving",
        _ => true,
    }
}

/// Verified bytes.
fn completed(t: &TorrentSnapshot) -> u64 {
    t.files.iter().map(|f| f.done).sum()
}

fn limit_or_zero(l: Option<u64>) -> u64 {
    l.unwrap_or(0)
}

/// Our link to it: its info hash, name and trackers.
fn magnet_uri(t: &TorrentSnapshot) -> String {
    let mut m = format!("magnet:?xt=urn:btih:{}", t.info_hash);
    m.push_str("&dn=");
    m.push_str(&percent(&t.name));
    for url in t.announce.iter().flatten() {
        m.push_str("&tr=");
        m.push_str(&percent(url));
    }
    m
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn content_path(t: &TorrentSnapshot) -> String {
    std::path::Path::new(&t.out_dir)
        .join(&t.name)
        .display()
        .to_string()
}

/// The tracker qBittorrent calls current: the first that works, else "".
fn current_tracker(t: &TorrentSnapshot) -> String {
    t.trackers
        .iter()
        .find(|s| s.state == TrackerState::Working)
        .map(|s| s.url.clone())
        .unwrap_or_default()
}

/// Seeds and leechers the trackers know of (the largest counts any of them gave).
fn swarm(t: &TorrentSnapshot) -> (u64, u64) {
    let seeds = t
        .trackers
        .iter()
        .filter_map(|s| s.scrape.map(|c| c.seeders).or(s.seeders))
        .max()
        .unwrap_or(0);
    let leechers = t
        .trackers
        .iter()
        .filter_map(|s| s.scrape.map(|c| c.leechers).or(s.leechers))
        .max()
        .unwrap_or(0);
    (u64::from(seeds), u64::from(leechers))
}

/// Connected peers that sent us data (seeds, as far as we can tell) and the others.
fn connected(t: &TorrentSnapshot) -> (usize, usize) {
    let seeds = t.peers.iter().filter(|p| p.bytes_down > 0).count();
    (seeds, t.peers.len().saturating_sub(seeds))
}

/// qBittorrent's `priority`: the queue position counted from 1, or 0 while queueing is off
/// and for complete torrents (qBittorrent shows seeds' positions as 0 too).
fn queue_priority(t: &TorrentSnapshot, snap: &ClientSnapshot) -> i64 {
    match snap.queue.enabled && !complete(t) {
        true => i64::from(t.queue_position) + 1,
        false => 0,
    }
}

/// The daemon's seeding policy as qBittorrent's global share limits: ratio (-1 none) and
/// minutes (-1 none).
pub(super) fn share_limits(p: &SeedPolicy) -> (f64, i64) {
    let ratio = p.stop_at_ratio.unwrap_or(-1.0);
    let minutes = p.stop_after_secs.map_or(-1, |s| (s / 60) as i64);
    (ratio, minutes)
}

/// One torrent as `torrents/info` and `sync/maindata` list it.
pub(super) fn info(
    t: &TorrentSnapshot,
    snap: &ClientSnapshot,
    now_unix: u64,
) -> Map<String, Value> {
    let done = completed(t);
    let (num_complete, num_incomplete) = swarm(t);
    let (num_seeds, num_leechs) = connected(t);
    let (max_ratio, max_seeding_time) = share_limits(&snap.seed_policy);
    let v = json!({
        "added_on": t.added_unix,
        "amount_left": t.wanted_bytes.saturating_sub(t.wanted_done),
        "auto_tmm": false,
        "availability": -1,
        "category": t.category.clone().unwrap_or_default(),
        "comment": "",
        "completed": done,
        "completion_on": -1,
        "content_path": content_path(t),
        "dl_limit": limit_or_zero(t.limits.download_bps),
        "dlspeed": t.rate_down as u64,
        "download_path": "",
        "downloaded": t.bytes_down,
        "downloaded_session": t.bytes_down,
        "eta": t.eta_secs.unwrap_or(ETA_INFINITE).min(ETA_INFINITE),
        "f_l_piece_prio": t.first_last_piece,
        "force_start": t.force_start,
        "hash": t.info_hash,
        "infohash_v1": t.info_hash,
        "infohash_v2": "",
        "inactive_seeding_time_limit": -2,
        "last_activity": now_unix,
        "magnet_uri": magnet_uri(t),
    });
    // Two halves: one json! of all of them passes serde_json's macro recursion limit.
    let rest = json!({
        "max_inactive_seeding_time": -1,
        "max_ratio": max_ratio,
        "max_seeding_time": max_seeding_time,
        "name": t.name,
        "num_complete": num_complete,
        "num_incomplete": num_incomplete,
        "num_leechs": num_leechs,
        "num_seeds": num_seeds,
        "priority": queue_priority(t, snap),
        "private": t.private,
        "progress": t.progress,
        "ratio": t.ratio,
        "ratio_limit": -2,
        "reannounce": 0,
        "root_path": content_path(t),
        "save_path": t.out_dir,
        "seeding_time": 0,
        "seeding_time_limit": -2,
        "seen_complete": 0,
        "seq_dl": t.sequential,
        // qBittorrent's size is what is wanted (skipped files left out).
        "size": t.wanted_bytes,
        "state": state(t),
        "super_seeding": false,
        "tags": t.tags.join(", "),
        "time_active": now_unix.saturating_sub(t.added_unix),
        "total_size": t.size,
        "tracker": current_tracker(t),
        "trackers_count": t.announce.iter().flatten().count(),
        "up_limit": limit_or_zero(t.limits.upload_bps),
        "uploaded": t.bytes_up,
        "uploaded_session": t.bytes_up,
        "upspeed": t.rate_up as u64,
    });
    let mut m = match v {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Value::Object(r) = rest {
        m.extend(r);
    }
    m
}

/// `torrents/properties`.
pub(super) fn properties(t: &TorrentSnapshot, now_unix: u64) -> Value {
    let elapsed = now_unix.saturating_sub(t.added_unix);
    let (seeds_total, peers_total) = swarm(t);
    let (seeds, peers) = connected(t);
    let per_sec = |bytes: u64| bytes.checked_div(elapsed).unwrap_or(0);
    let limit = |l: Option<u64>| l.map_or(-1, |b| b as i64);
    json!({
        "addition_date": t.added_unix,
        "comment": "",
        "completion_date": -1,
        "created_by": "",
        "creation_date": -1,
        "dl_limit": limit(t.limits.download_bps),
        "dl_speed": t.rate_down as u64,
        "dl_speed_avg": per_sec(t.bytes_down),
        "download_path": "",
        "eta": t.eta_secs.unwrap_or(ETA_INFINITE).min(ETA_INFINITE),
        "hash": t.info_hash,
        "infohash_v1": t.info_hash,
        "infohash_v2": "",
        "isPrivate": t.private,
        "last_seen": -1,
        "name": t.name,
        "nb_connections": t.peers_connected,
        "nb_connections_limit": -1,
        "peers": peers,
        "peers_total": peers_total,
        "piece_size": t.piece_length,
        "pieces_have": t.pieces_have,
        "pieces_num": t.pieces_total,
        "reannounce": 0,
        "save_path": t.out_dir,
        "seeding_time": 0,
        "seeds": seeds,
        "seeds_total": seeds_total,
        "share_ratio": t.ratio,
        "time_elapsed": elapsed,
        "total_downloaded": t.bytes_down,
        "total_downloaded_session": t.bytes_down,
        "total_size": t.size,
        "total_uploaded": t.bytes_up,
        "total_uploaded_session": t.bytes_up,
        "total_wasted": 0,
        "up_limit": limit(t.limits.upload_bps),
        "up_speed": t.rate_up as u64,
        "up_speed_avg": per_sec(t.bytes_up),
    })
}

/// qBittorrent's file priority for one of ours: 0 skip, 1 normal (and our low, which it
/// lacks), 6 high.
fn priority_code(p: FilePriority) -> i64 {
    match p {
        FilePriority::Skip => 0,
        FilePriority::Low | FilePriority::Normal => 1,
        FilePriority::High => 6,
    }
}

/// `torrents/files`: each file with its piece range. `indexes`: only those (qBittorrent's
/// `indexes` parameter), else all.
pub(super) fn files(t: &TorrentSnapshot, indexes: Option<&[usize]>) -> Value {
    let pl = t.piece_length.max(1);
    let mut offset = 0u64;
    let mut out = Vec::new();
    for (i, f) in t.files.iter().enumerate() {
        let first = offset / pl;
        let last = (offset + f.length.max(1) - 1) / pl;
        offset += f.length;
        if indexes.is_some_and(|ix| !ix.contains(&i)) {
            continue;
        }
        let progress = f.progress;
        out.push(json!({
            "index": i,
            "name": f.path,
            "size": f.length,
            "progress": progress,
            "priority": priority_code(f.priority),
            "is_seed": progress >= 1.0,
            "piece_range": [first, last],
            "availability": -1,
        }));
    }
    Value::Array(out)
}

/// qBittorrent's tracker status: 0 disabled, 1 not contacted, 2 working, 3 updating, 4 not
/// working.
fn tracker_status(s: &TrackerState) -> u8 {
    match s {
        TrackerState::NotContacted => 1,
        TrackerState::Working => 2,
        TrackerState::BackingOff => 4,
        TrackerState::Unsupported => 0,
    }
}

/// `torrents/trackers`: qBittorrent's three pseudo-trackers (DHT, PeX, LSD) first, then each
/// tracker of the torrent with what it last answered.
pub(super) fn trackers(t: &TorrentSnapshot) -> Value {
    // DHT and PeX run unless the torrent is private; we have no local peer discovery.
    let pseudo = |url: &str, on: bool| {
        json!({
            "url": url, "status": if on { 2 } else { 0 }, "tier": -1,
            "num_peers": 0, "num_seeds": 0, "num_leeches": 0, "num_downloaded": 0,
            "msg": if on { "" } else { "This torrent is private" },
        })
    };
    let mut out = vec![
        pseudo("** [DHT] **", !t.private),
        pseudo("** [PeX] **", !t.private),
        pseudo("** [LSD] **", false),
    ];
    for (tier, urls) in t.announce.iter().enumerate() {
        for url in urls {
            let st = t.trackers.iter().find(|s| &s.url == url);
            let msg = st
                .and_then(|s| s.last_error.clone().or_else(|| s.warning.clone()))
                .unwrap_or_default();
            let scrape = st.and_then(|s| s.scrape);
            out.push(json!({
                "url": url,
                "status": st.map_or(1, |s| tracker_status(&s.state)),
                "tier": tier,
                "num_peers": st.map_or(0, |s| s.last_peers),
                "num_seeds": scrape.map_or(-1, |c| i64::from(c.seeders)),
                "num_leeches": scrape.map_or(-1, |c| i64::from(c.leechers)),
                "num_downloaded": scrape.map_or(-1, |c| i64::from(c.completed)),
                "msg": msg,
            }));
        }
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_unreserved() {
        assert_eq!(percent("a b/c~"), "a%20b%2Fc~");
    }
}
