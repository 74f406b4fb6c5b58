//! torrent-get's fields from our snapshot. Each of Transmission's field names is one of:
//! mapped (a value computed from what the daemon knows), or known but not kept by this daemon
//! (left out of the object — `null` in the table format — rather than made up, e.g.
//! `corruptEver`, `activityDate`, `pieces`). A name Transmission does not have is an error.

use serde_json::{json, Map, Value};

use super::envelope::{RpcError, RpcResult};
use super::features::transmission_priority;
use super::ids::{complete, IdBook};
use crate::client::control::{
    ClientSnapshot, PeerSource, TorrentSnapshot, TorrentState, TrackerState,
};

/// Transmission's unit of speed in the RPC (its `speed-bytes`): kB/s of 1000 bytes.
pub const KB: u64 = 1000;

/// Every field name of Transmission 4.0's torrent-get (and 3.00's).
const KNOWN: &[&str] = &[
    "activityDate",
    "addedDate",
    "availability",
    "bandwidthPriority",
    "comment",
    "corruptEver",
    "creator",
    "dateCreated",
    "desiredAvailable",
    "doneDate",
    "downloadDir",
    "downloadedEver",
    "downloadLimit",
    "downloadLimited",
    "editDate",
    "error",
    "errorString",
    "eta",
    "etaIdle",
    "file-count",
    "files",
    "fileStats",
    "group",
    "hashString",
    "haveUnchecked",
    "haveValid",
    "honorsSessionLimits",
    "id",
    "isFinished",
    "isPrivate",
    "isStalled",
    "labels",
    "leftUntilDone",
    "magnetLink",
    "manualAnnounceTime",
    "maxConnectedPeers",
    "metadataPercentComplete",
    "name",
    "peer-limit",
    "peers",
    "peersConnected",
    "peersFrom",
    "peersGettingFromUs",
    "peersSendingToUs",
    "percentComplete",
    "percentDone",
    "pieces",
    "pieceCount",
    "pieceSize",
    "priorities",
    "primary-mime-type",
    "queuePosition",
    "rateDownload",
    "rateUpload",
    "recheckProgress",
    "secondsDownloading",
    "secondsSeeding",
    "seedIdleLimit",
    "seedIdleMode",
    "seedRatioLimit",
    "seedRatioMode",
    "sequentialDownload",
    "sizeWhenDone",
    "source",
    "startDate",
    "status",
    "trackers",
    "trackerList",
    "trackerStats",
    "totalSize",
    "torrentFile",
    "uploadedEver",
    "uploadLimit",
    "uploadLimited",
    "uploadRatio",
    "wanted",
    "webseeds",
    "webseedsSendingToUs",
];

/// Transmission's `tr_torrent_activity`.
pub mod status {
    pub const STOPPED: i64 = 0;
    pub const CHECK: i64 = 2;
    /// Queued to download (TR_STATUS_DOWNLOAD_WAIT).
    pub const DOWNLOAD_WAIT: i64 = 3;
    pub const DOWNLOAD: i64 = 4;
    /// Queued to seed (TR_STATUS_SEED_WAIT).
    pub const SEED_WAIT: i64 = 5;
    pub const SEED: i64 = 6;
}

/// The requested field names, checked.
pub fn parse_fields(v: Option<Value>) -> RpcResult<Vec<String>> {
    let Some(Value::Array(items)) = v else {
        return Err(RpcError::bad("torrent-get needs a 'fields' array"));
    };
    items
        .into_iter()
        .map(|f| match f {
            Value::String(s) if KNOWN.contains(&s.as_str()) => Ok(s),
            Value::String(s) => Err(RpcError::bad(format!("unknown torrent field {s:?}"))),
            other => Err(RpcError::bad(format!(
                "fields must be strings, not {other}"
            ))),
        })
        .collect()
}

pub struct Ctx<'a> {
    pub snap: &'a ClientSnapshot,
    pub book: &'a IdBook,
    pub data_dir: &'a std::path::Path,
}

/// One torrent as an object of the fields it has.
pub fn object(t: &TorrentSnapshot, fields: &[String], cx: &Ctx) -> Map<String, Value> {
    fields
        .iter()
        .filter_map(|f| Some((f.clone(), field(t, f, cx)?)))
        .collect()
}

/// The table format: the field names, then one row per torrent (`null` where a field is
/// not kept).
pub fn table(ts: &[&TorrentSnapshot], fields: &[String], cx: &Ctx) -> Vec<Value> {
    let mut rows = vec![Value::from(fields.to_vec())];
    rows.extend(ts.iter().map(|t| {
        Value::Array(
            fields
                .iter()
                .map(|f| field(t, f, cx).unwrap_or(Value::Null))
                .collect(),
        )
    }));
    rows
}

/// Transmission's status code.
pub fn status_code(t: &TorrentSnapshot) -> i64 {
    match t.state {
        TorrentState::Paused | TorrentState::Error => status::STOPPED,
        TorrentState::Checking => status::CHECK,
        TorrentState::FetchingMetadata | TorrentState::Downloading => status::DOWNLOAD,
        TorrentState::Seeding => status::SEED,
        TorrentState::QueuedDownload => status::DOWNLOAD_WAIT,
        TorrentState::QueuedSeed => status::SEED_WAIT,
    }
}

/// Verified bytes over all files.
fn have(t: &TorrentSnapshot) -> u64 {
    if t.files.is_empty() {
        (t.progress * t.size as f64) as u64
    } else {
        t.files.iter().map(|f| f.done).sum()
    }
}

fn limit_kb(bps: Option<u64>) -> u64 {
    bps.map_or(0, |b| b / KB)
}

/// A file's name as Transmission gives it: below the torrent's directory, so for a
/// multi-file torrent starting with the torrent's name.
fn file_name(t: &TorrentSnapshot, path: &str) -> String {
    if t.files.len() > 1 && !path.starts_with(&format!("{}/", t.name)) {
        format!("{}/{path}", t.name)
    } else {
        path.to_string()
    }
}

fn field(t: &TorrentSnapshot, name: &str, cx: &Ctx) -> Option<Value> {
    let have = have(t);
    let v = match name {
        "id" => json!(cx.book.id(&t.info_hash)?),
        "hashString" => json!(t.info_hash),
        "name" => json!(t.name),
        "status" => json!(status_code(t)),
        "error" => json!(if t.state == TorrentState::Error { 3 } else { 0 }),
        "errorString" => json!(match t.state {
            TorrentState::Error => t.error.clone().unwrap_or_default(),
            _ => String::new(),
        }),
        "totalSize" => json!(t.size),
        // Of the wanted files (not skipped).
        "sizeWhenDone" => json!(t.wanted_bytes),
        "leftUntilDone" => json!(t.wanted_bytes.saturating_sub(t.wanted_done)),
        "percentDone" => json!(t.progress),
        "haveValid" => json!(have),
        "percentComplete" => json!(if t.size == 0 { 0.0 } else { have as f64 / t.size as f64 }),
        "metadataPercentComplete" => {
            json!(if t.state == TorrentState::FetchingMetadata { 0.0 } else { 1.0 })
        }
        "rateDownload" => json!(t.rate_down.max(0.0) as u64),
        "rateUpload" => json!(t.rate_up.max(0.0) as u64),
        "downloadedEver" => json!(t.bytes_down),
        "uploadedEver" => json!(t.bytes_up),
        "uploadRatio" => json!(if t.bytes_down == 0 && t.size == 0 { -1.0 } else { t.ratio }),
        // -1: not available (done, or stopped); -2: unknown.
        "eta" => json!(match (t.eta_secs, complete(t), t.state) {
            (_, true, _) | (_, _, TorrentState::Paused | TorrentState::Error) => -1,
            (Some(s), _, _) => i64::try_from(s).unwrap_or(i64::MAX),
            (None, _, _) => -2,
        }),
        "downloadDir" => json!(t.out_dir),
        "queuePosition" => json!(t.queue_position),
        "addedDate" => json!(t.added_unix),
        "doneDate" => json!(cx.book.done_unix(&t.info_hash)),
        // Transmission's "finished": stopped by the seeding policy.
        "isFinished" => json!(
            complete(t)
                && t.state == TorrentState::Paused
                && t.error.as_deref().is_some_and(|e| e.contains("seeding goal reached"))
        ),
        "isPrivate" => json!(t.private),
        "peersConnected" => json!(t.peers_connected),
        "peersSendingToUs" => json!(t.peers.iter().filter(|p| p.rate_down > 0.0).count()),
        "peersGettingFromUs" => json!(t.peers.iter().filter(|p| p.rate_up > 0.0).count()),
        "peersFrom" => {
            let n = |s: PeerSource| t.peers.iter().filter(|p| p.source == s).count();
            json!({
                "fromCache": n(PeerSource::Resume), "fromDht": n(PeerSource::Dht),
                "fromIncoming": n(PeerSource::Incoming), "fromLpd": 0,
                "fromLtep": n(PeerSource::Magnet), "fromPex": n(PeerSource::Pex),
                "fromTracker": n(PeerSource::Tracker),
            })
        }
        "peers" => Value::Array(
            t.peers
                .iter()
                .map(|p| {
                    let (address, port) = split_addr(&p.addr);
                    json!({
                        "address": address, "port": port,
                        "clientName": p.client.clone().unwrap_or_default(),
                        "rateToClient": p.rate_down.max(0.0) as u64,
                        "rateToPeer": p.rate_up.max(0.0) as u64,
                        "isIncoming": p.source == PeerSource::Incoming,
                        "isUTP": false,
                    })
                })
                .collect(),
        ),
        "files" => Value::Array(
            t.files
                .iter()
                .map(|f| {
                    json!({"name": file_name(t, &f.path), "length": f.length, "bytesCompleted": f.done})
                })
                .collect(),
        ),
        "fileStats" => Value::Array(
            t.files
                .iter()
                .map(|f| {
                    let (priority, wanted) = transmission_priority(f.priority);
                    json!({"bytesCompleted": f.done, "wanted": wanted, "priority": priority})
                })
                .collect(),
        ),
        "file-count" => json!(t.files.len()),
        "priorities" => json!(t
            .files
            .iter()
            .map(|f| transmission_priority(f.priority).0)
            .collect::<Vec<_>>()),
        "wanted" => json!(t
            .files
            .iter()
            .map(|f| i64::from(transmission_priority(f.priority).1))
            .collect::<Vec<_>>()),
        "labels" => json!(t.tags),
        "pieceCount" => json!(t.pieces_total),
        "pieceSize" => json!(t.piece_length),
        "downloadLimit" => json!(limit_kb(t.limits.download_bps)),
        "downloadLimited" => json!(t.limits.download_bps.is_some()),
        "uploadLimit" => json!(limit_kb(t.limits.upload_bps)),
        "uploadLimited" => json!(t.limits.upload_bps.is_some()),
        // The global limits always apply on top of a torrent's own.
        "honorsSessionLimits" => json!(true),
        "bandwidthPriority" => json!(0),
        // 0: the session's ratio (the only seeding policy the daemon has).
        "seedRatioMode" => json!(0),
        "seedRatioLimit" => json!(cx.snap.seed_policy.stop_at_ratio.unwrap_or(0.0)),
        "recheckProgress" if t.state != TorrentState::Checking => json!(0.0),
        "magnetLink" => json!(magnet(t)?),
        "trackers" => Value::Array(
            tiers(t)
                .map(|(i, tier, url)| {
                    json!({"id": i, "tier": tier, "announce": url, "scrape": scrape_url(url),
                           "sitename": host(url)})
                })
                .collect(),
        ),
        "trackerList" => json!(t
            .announce
            .iter()
            .map(|tier| tier.join("\n"))
            .collect::<Vec<_>>()
            .join("\n\n")),
        "trackerStats" => Value::Array(
            tiers(t)
                .map(|(i, tier, url)| tracker_stats(t, i, tier, url))
                .collect(),
        ),
        "torrentFile" if t.size > 0 => json!(cx
            .data_dir
            .join("torrents")
            .join(&t.info_hash)
            .join("metainfo.torrent")
            .display()
            .to_string()),
        // The daemon uses no web seeds.
        "webseeds" => json!([]),
        "webseedsSendingToUs" => json!(0),
        _ => return None,
    };
    Some(v)
}

/// (index, tier, URL) of every tracker.
fn tiers(t: &TorrentSnapshot) -> impl Iterator<Item = (usize, usize, &str)> {
    t.announce
        .iter()
        .enumerate()
        .flat_map(|(tier, urls)| urls.iter().map(move |u| (tier, u.as_str())))
        .enumerate()
        .map(|(i, (tier, u))| (i, tier, u))
}

fn tracker_stats(t: &TorrentSnapshot, id: usize, tier: usize, url: &str) -> Value {
    let st = t.trackers.iter().find(|s| s.url == url);
    let n = |v: Option<u32>| v.map_or(-1, i64::from);
    let secs = |ms: Option<u64>| ms.map_or(0, |m| m / 1000);
    let working = st.is_some_and(|s| s.last_error.is_none() && s.last_success_unix_ms.is_some());
    json!({
        "id": id, "tier": tier, "announce": url, "scrape": scrape_url(url), "host": host(url),
        "sitename": host(url), "isBackup": false,
        "hasAnnounced": st.is_some_and(|s| s.last_success_unix_ms.is_some() || s.consecutive_failures > 0),
        "lastAnnounceSucceeded": working,
        "lastAnnounceResult": st.map_or(String::new(), |s| match &s.last_error {
            Some(e) => e.clone(),
            None if s.last_success_unix_ms.is_some() => "Success".into(),
            None => String::new(),
        }),
        "lastAnnounceTime": secs(st.and_then(|s| s.last_success_unix_ms)),
        "lastAnnouncePeerCount": st.map_or(0, |s| s.last_peers),
        "nextAnnounceTime": secs(st.and_then(|s| s.next_attempt_unix_ms)),
        "seederCount": n(st.and_then(|s| s.seeders.or(s.scrape.as_ref().map(|c| c.seeders)))),
        "leecherCount": n(st.and_then(|s| s.leechers.or(s.scrape.as_ref().map(|c| c.leechers)))),
        "downloadCount": n(st.and_then(|s| s.scrape.as_ref().map(|c| c.completed))),
        "hasScraped": st.is_some_and(|s| s.scrape.is_some()),
        "lastScrapeSucceeded": st.is_some_and(|s| s.scrape.is_some() && s.scrape_error.is_none()),
        "lastScrapeResult": st.and_then(|s| s.scrape_error.clone()).unwrap_or_default(),
        // tr_tracker_state: 0 inactive, 1 waiting, 2 queued, 3 active.
        "announceState": st.map_or(0, |s| match s.state {
            TrackerState::Working | TrackerState::BackingOff => 1,
            _ => 0,
        }),
    })
}

fn magnet(t: &TorrentSnapshot) -> Option<String> {
    let ih = crate::client::control::parse_info_hash(&t.info_hash).ok()?;
    let m = t.announce.iter().flatten().fold(
        bt_ext::magnet::Magnet::new(ih).with_name(&t.name),
        |m, url| m.with_tracker(url),
    );
    Some(m.to_string())
}

/// BEP 48's rule: the announce URL's last `announce` becomes `scrape`; none for a URL
/// without it (UDP trackers scrape at the same address).
fn scrape_url(url: &str) -> String {
    if url.starts_with("udp://") {
        return url.to_string();
    }
    let slash = url.rfind('/').map_or(0, |i| i + 1);
    match url[slash..].strip_prefix("announce") {
        Some(rest) => format!("{}scrape{rest}", &url[..slash]),
        None => String::new(),
    }
}

fn host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .to_string()
}

/// `IP:PORT`, `[IPv6]:PORT` or a SCION address → (address, port).
fn split_addr(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((a, p)) if p.parse::<u16>().is_ok() => (
            a.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse().unwrap_or(0),
        ),
        _ => (addr.to_string(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_checked() {
        let ok = parse_fields(Some(json!(["id", "name", "trackerStats"]))).unwrap();
        assert_eq!(ok.len(), 3);
        assert!(parse_fields(Some(json!(["id", "nope"]))).is_err());
        assert!(parse_fields(Some(json!([1]))).is_err());
        assert!(parse_fields(None).is_err());
    }

    #[test]
    fn urls_and_addresses() {
        assert_eq!(
            scrape_url("http://t.example/announce"),
            "http://t.example/scrape"
        );
        assert_eq!(
            scrape_url("http://t.example/x/announce.php?k=1"),
            "http://t.example/x/scrape.php?k=1"
        );
        assert_eq!(scrape_url("http://t.example/a"), "");
        assert_eq!(host("http://t.example:6969/announce"), "t.example");
        assert_eq!(split_addr("127.0.0.1:6881"), ("127.0.0.1".into(), 6881));
        assert_eq!(split_addr("[::1]:5"), ("::1".into(), 5));
    }

    #[test]
    fn a_torrent_maps_to_transmissions_fields() {
        let mut t = super::super::ids::tests::torrent('a', 1);
        t.state = TorrentState::Paused;
        let snap = ClientSnapshot {
            torrents: vec![t.clone()],
            ..Default::default()
        };
        let mut book = IdBook::default();
        book.observe(&snap, std::time::SystemTime::now());
        let cx = Ctx {
            snap: &snap,
            book: &book,
            data_dir: std::path::Path::new("/data"),
        };
        let fields: Vec<String> = [
            "id",
            "status",
            "leftUntilDone",
            "eta",
            "pieces",
            "downloadLimited",
        ]
        .map(String::from)
        .into();
        let o = object(&t, &fields, &cx);
        assert_eq!(o["id"], 1);
        assert_eq!(o["status"], status::STOPPED);
        assert_eq!(o["leftUntilDone"], 5, "half of 10 bytes verified");
        assert_eq!(o["eta"], -1);
        assert_eq!(o["downloadLimited"], false);
        assert!(!o.contains_key("pieces"), "not kept: left out");
        let rows = table(&[&t], &fields, &cx);
        assert_eq!(rows[0][4], "pieces");
        assert_eq!(rows[1][4], Value::Null);
    }
}
