//! The torrent methods: torrent-get, -add, -remove, -start(-now), -stop, -set, the queue
//! moves, and the ones whose daemon feature does not exist (rename-path, reannounce), which
//! are refused by name. Each checks all of its arguments before it
//! changes anything.

use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use data_encoding::{BASE64, BASE64_NOPAD};

use super::super::add;
use super::envelope::{Args, RpcError, RpcResult};
use super::features::{self, FileArgs};
use super::fields::{self, Ctx};
use super::ids::Ids;
use super::session::limit;
use super::Rpc;
use crate::api::{ApiFailure, MAX_BODY};
use crate::client::control::{
    info_hash_hex, parse_info_hash, Command, FilePriority, InfoHash, Limits,
};
use crate::client::queue::Move;

/// How long torrent-add waits for the new torrent to show in the snapshot (for its name).
const ADD_SHOWS_WITHIN: Duration = Duration::from_secs(5);
/// How long a .torrent named by URL may take to download.
const URL_TIMEOUT: Duration = Duration::from_secs(30);

pub fn get(rpc: &Rpc, mut args: Args) -> RpcResult<Map<String, Value>> {
    let ids = Ids::parse(args.take("ids"))?;
    let fields = fields::parse_fields(args.take("fields"))?;
    let format = args.string("format")?;
    args.finish("torrent-get")?;
    let table = match format.as_deref() {
        None | Some("objects") => false,
        Some("table") => true,
        Some(other) => {
            return Err(RpcError::bad(format!(
                "format must be objects or table, not {other:?}"
            )))
        }
    };
    let now = SystemTime::now();
    let (snap, book) = rpc.snapshot();
    let ts = ids.select(&snap, &book, now, false)?;
    let cx = Ctx {
        snap: &snap,
        book: &book,
        data_dir: &rpc.app.data_dir,
    };
    let torrents = if table {
        fields::table(&ts, &fields, &cx)
    } else {
        ts.iter()
            .map(|t| Value::Object(fields::object(t, &fields, &cx)))
            .collect()
    };
    let mut m = Map::new();
    m.insert("torrents".into(), Value::Array(torrents));
    if ids == Ids::RecentlyActive {
        m.insert("removed".into(), json!(book.recently_removed(now)));
    }
    Ok(m)
}

/// The info hashes `ids` selects; an id that names no torrent is an error.
pub(super) fn selected(rpc: &Rpc, args: &mut Args) -> RpcResult<Vec<InfoHash>> {
    let ids = Ids::parse(args.take("ids"))?;
    let (snap, book) = rpc.snapshot();
    ids.select(&snap, &book, SystemTime::now(), true)?
        .iter()
        .map(|t| parse_info_hash(&t.info_hash).map_err(RpcError::from))
        .collect()
}

/// torrent-start (under the queue), torrent-start-now (force-started: past the queue),
/// torrent-stop.
pub async fn start_stop(rpc: &Rpc, mut args: Args, method: &str) -> RpcResult<Map<String, Value>> {
    let hashes = selected(rpc, &mut args)?;
    args.finish(method)?;
    for info_hash in hashes {
        match method {
            "torrent-stop" => {
                rpc.app
                    .client
                    .call(|r| Command::Pause(info_hash, r))
                    .await?
            }
            "torrent-start-now" => {
                rpc.app
                    .client
                    .call(|reply| Command::ForceStart {
                        info_hash,
                        force: true,
                        reply,
                    })
                    .await?
            }
            _ => {
                rpc.app
                    .client
                    .call(|r| Command::Resume(info_hash, r))
                    .await?
            }
        }
    }
    Ok(Map::new())
}

/// queue-move-top, -up, -down, -bottom (`ids`).
pub async fn queue_move(rpc: &Rpc, mut args: Args, method: &str) -> RpcResult<Map<String, Value>> {
    let info_hashes = selected(rpc, &mut args)?;
    args.finish(method)?;
    let to = match method {
        "queue-move-top" => Move::Top,
        "queue-move-up" => Move::Up,
        "queue-move-down" => Move::Down,
        _ => Move::Bottom,
    };
    move_to(rpc, info_hashes, to).await?;
    Ok(Map::new())
}

async fn move_to(rpc: &Rpc, info_hashes: Vec<InfoHash>, to: Move) -> RpcResult<()> {
    if info_hashes.is_empty() {
        return Ok(());
    }
    rpc.app
        .client
        .call(|reply| Command::QueueMove {
            info_hashes,
            to,
            reply,
        })
        .await?;
    Ok(())
}

pub async fn remove(rpc: &Rpc, mut args: Args) -> RpcResult<Map<String, Value>> {
    let hashes = selected(rpc, &mut args)?;
    let delete_data = args.bool("delete-local-data")?.unwrap_or(false);
    args.finish("torrent-remove")?;
    for info_hash in hashes {
        rpc.app
            .client
            .call(|reply| Command::Remove {
                info_hash,
                delete_data,
                reply,
            })
            .await?;
    }
    Ok(Map::new())
}

/// Methods whose daemon feature does not exist: their arguments are still checked (a
/// bad id or a path outside the download root is named as such), then they are refused.
pub fn missing(rpc: &Rpc, mut args: Args, method: &str) -> RpcResult<Map<String, Value>> {
    selected(rpc, &mut args)?;
    let why = match method {
        "torrent-reannounce" => {
            "the daemon announces on its own schedule; there is no manual announce"
        }
        "torrent-rename-path" => {
            args.string("path")?;
            args.string("name")?;
            "the daemon does not rename a torrent's files"
        }
        _ => "the daemon has no such method",
    };
    args.finish(method)?;
    Err(RpcError::unsupported(method, why))
}

/// torrent-set: limits (kB/s), and the file and label arguments as far as the daemon has them.
pub async fn set(rpc: &Rpc, mut args: Args) -> RpcResult<Map<String, Value>> {
    let hashes = selected(rpc, &mut args)?;
    let down = args.count("downloadLimit")?;
    let down_on = args.bool("downloadLimited")?;
    let up = args.count("uploadLimit")?;
    let up_on = args.bool("uploadLimited")?;
    if args.bool("honorsSessionLimits")? == Some(false) {
        return Err(RpcError::unsupported(
            "honorsSessionLimits = false",
            "the global limits always apply to every torrent",
        ));
    }
    if args.int("bandwidthPriority")?.is_some_and(|p| p != 0) {
        return Err(RpcError::unsupported(
            "bandwidthPriority",
            "the daemon has no bandwidth priorities",
        ));
    }
    if args.int("seedRatioMode")?.is_some_and(|m| m != 0) {
        return Err(RpcError::unsupported(
            "seedRatioMode other than 0 (global)",
            "torrents follow the session's seeding policy",
        ));
    }
    let files = FileArgs::take(&mut args)?;
    let labels = args.strings("labels")?;
    let position = args.count("queuePosition")?;
    if let Some(loc) = args.string("location")? {
        rpc.app.root.resolve(&loc)?;
        return Err(RpcError::unsupported(
            "torrent-set location",
            "it says where the data already lies, which the daemon does not adopt; move it \
             with torrent-set-location (move: true)",
        ));
    }
    let refused = [
        (
            "seedRatioLimit",
            "torrents follow the session's seeding policy",
        ),
        ("seedIdleLimit", "the daemon has no idle seeding limit"),
        ("seedIdleMode", "the daemon has no idle seeding limit"),
        ("peer-limit", "the daemon has no per-torrent peer limit"),
        ("group", "the daemon has no bandwidth groups"),
        (
            "sequentialDownload",
            "the daemon has no sequential mode yet",
        ),
        ("trackerAdd", "a torrent's trackers come from its metainfo"),
        (
            "trackerRemove",
            "a torrent's trackers come from its metainfo",
        ),
        (
            "trackerReplace",
            "a torrent's trackers come from its metainfo",
        ),
        ("trackerList", "a torrent's trackers come from its metainfo"),
    ];
    for (k, why) in refused {
        if args.has(k) {
            return Err(RpcError::unsupported(k, why));
        }
    }
    args.finish("torrent-set")?;
    let snap = rpc.app.client.snapshot();
    let selected_again = hashes.clone();
    // Every torrent's file changes are checked before anything is set.
    let mut plans = Vec::new();
    for ih in hashes {
        let hex = info_hash_hex(&ih);
        let t = snap.torrents.iter().find(|t| t.info_hash == hex);
        let current: Vec<FilePriority> = t
            .map(|t| t.files.iter().map(|f| f.priority).collect())
            .unwrap_or_default();
        if !files.is_empty() {
            files.changes(&current)?;
        }
        plans.push((ih, t.map(|t| t.limits).unwrap_or_default(), current));
    }
    let limits_given = down.is_some() || down_on.is_some() || up.is_some() || up_on.is_some();
    for (ih, current_limits, current_files) in plans {
        if limits_given {
            let limits = Limits {
                download_bps: limit(current_limits.download_bps, down, down_on),
                upload_bps: limit(current_limits.upload_bps, up, up_on),
            };
            rpc.app
                .client
                .call(|reply| Command::SetLimits {
                    info_hash: Some(ih),
                    limits,
                    reply,
                })
                .await?;
        }
        if !files.is_empty() {
            features::set_files(rpc, ih, &current_files, &files).await?;
        }
        if let Some(l) = &labels {
            features::set_labels(rpc, ih, l.clone()).await?;
        }
    }
    if let Some(p) = position {
        // Several torrents given one position go there together, in their queue order.
        let to = Move::To(u32::try_from(p).unwrap_or(u32::MAX));
        move_to(rpc, selected_again, to).await?;
    }
    Ok(Map::new())
}

/// torrent-add, through the JSON API's own add (`POST /api/v1/torrents` in process), so a
/// torrent added here is checked exactly as one added there.
pub async fn add(rpc: &Rpc, mut args: Args) -> RpcResult<Map<String, Value>> {
    let filename = args.string("filename")?;
    let metainfo = args.string("metainfo")?;
    let dir = args.string("download-dir")?;
    let paused = args.bool("paused")?.unwrap_or(false);
    let cookies = args.string("cookies")?;
    let files = FileArgs::take(&mut args)?;
    let labels = args.strings("labels")?;
    if args.int("bandwidthPriority")?.is_some_and(|p| p != 0) {
        return Err(RpcError::unsupported(
            "bandwidthPriority",
            "the daemon has no bandwidth priorities",
        ));
    }
    if args.has("peer-limit") {
        return Err(RpcError::unsupported(
            "peer-limit",
            "the daemon has no per-torrent peer limit",
        ));
    }
    args.finish("torrent-add")?;
    if let Some(d) = &dir {
        rpc.app.root.resolve(d)?; // before anything is fetched or read
    }
    // The number of files, where the metainfo is at hand (not for a magnet link).
    let (mut body, info_hash, file_count) = match (filename, metainfo) {
        (None, Some(b64)) => {
            let (ih, n) = info_hash_of(&decode_base64(&b64)?)?;
            (json!({ "torrent_base64": b64 }), ih, Some(n))
        }
        (Some(f), None) if f.starts_with("magnet:") => {
            let ih = bt_ext::parse_magnet(&f)
                .map(|m| m.info_hash)
                .map_err(|e| RpcError::bad(format!("invalid magnet link: {e}")))?;
            (json!({ "magnet": f }), ih, None)
        }
        (Some(f), None) => {
            let bytes = if f.starts_with("http://") || f.starts_with("https://") {
                fetch(f, cookies).await?
            } else {
                read_file(rpc, &f).await?
            };
            let (ih, n) = info_hash_of(&bytes)?;
            (
                json!({ "torrent_base64": BASE64.encode(&bytes) }),
                ih,
                Some(n),
            )
        }
        _ => {
            return Err(RpcError::bad(
                "torrent-add needs one of 'filename' and 'metainfo'",
            ))
        }
    };
    // File choice is set before the torrent starts: it is added paused, then started.
    let file_changes = match (files.is_empty(), file_count) {
        (true, _) => Vec::new(),
        (false, Some(n)) => files.changes(&vec![FilePriority::Normal; n])?,
        (false, None) => {
            return Err(RpcError::unsupported(
                "torrent-add of a magnet link with file arguments",
                "its files are not known before its metadata arrives; set them with \
                 torrent-set then",
            ))
        }
    };
    body["paused"] = json!(paused || !file_changes.is_empty());
    if let Some(l) = labels {
        body["tags"] = json!(l);
    }
    if let Some(d) = dir {
        body["out_dir"] = json!(d);
    }
    let hex = info_hash_hex(&info_hash);
    let key = match json_api_add(rpc, body).await {
        Ok(()) => "torrent-added",
        Err(f) if f.kind == "duplicate" => "torrent-duplicate",
        Err(f) => return Err(f.into()),
    };
    if key == "torrent-added" && !file_changes.is_empty() {
        rpc.app
            .client
            .call(|reply| Command::SetFilePriorities {
                info_hash,
                priorities: file_changes,
                reply,
            })
            .await?;
        if !paused {
            rpc.app
                .client
                .call(|r| Command::Resume(info_hash, r))
                .await?;
        }
    }
    let (id, name) = shown(rpc, &hex).await;
    let mut m = Map::new();
    m.insert(
        key.into(),
        json!({"id": id, "name": name, "hashString": hex}),
    );
    Ok(m)
}

/// `POST /api/v1/torrents` with a JSON body, answered in process.
async fn json_api_add(rpc: &Rpc, body: Value) -> Result<(), ApiFailure> {
    let bytes = body.to_string().into_bytes();
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/api/v1/torrents")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, bytes.len())
        .body(Body::from(bytes))
        .map_err(|e| ApiFailure::bad_request(e.to_string()))?;
    let resp = add::add(State(rpc.app.clone()), req).await?;
    if resp.status().is_success() {
        return Ok(());
    }
    // An answer other than an error value (503 busy): its JSON body says why.
    let status = resp.status();
    let text = axum::body::to_bytes(resp.into_body(), 64 << 10)
        .await
        .unwrap_or_default();
    let why = serde_json::from_slice::<Value>(&text)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("the daemon answered {status}"));
    Err(ApiFailure::new(status, "busy", why))
}

fn decode_base64(s: &str) -> RpcResult<Vec<u8>> {
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64
        .decode(compact.as_bytes())
        .or_else(|_| BASE64_NOPAD.decode(compact.as_bytes()))
        .map_err(|e| RpcError::bad(format!("metainfo is not base64: {e}")))
}

/// The info hash and the number of files (padding files left out, as the snapshot lists
/// them) of a .torrent.
fn info_hash_of(metainfo: &[u8]) -> RpcResult<(InfoHash, usize)> {
    crate::torrent::meta::Metainfo::from_bytes(metainfo)
        .map(|m| (m.info_hash, m.files.iter().filter(|f| !f.pad).count()))
        .map_err(|e| RpcError::bad(format!("invalid or corrupt torrent file: {e}")))
}

/// A .torrent file named by path: only under the download root.
async fn read_file(rpc: &Rpc, requested: &str) -> RpcResult<Vec<u8>> {
    let path = rpc.app.root.resolve(requested)?;
    let cant = |e: std::io::Error| RpcError::bad(format!("cannot read {requested:?}: {e}"));
    let meta = tokio::fs::metadata(&path).await.map_err(cant)?;
    if !meta.is_file() || meta.len() > MAX_BODY as u64 {
        return Err(RpcError::bad(format!(
            "{requested:?} is not a .torrent file"
        )));
    }
    tokio::fs::read(&path).await.map_err(cant)
}

/// The new torrent's id and name, once the snapshot shows it (its hash as its name if it
/// does not within [`ADD_SHOWS_WITHIN`]).
async fn shown(rpc: &Rpc, hex: &str) -> (i64, String) {
    let mut rx = rpc.app.client.subscribe();
    let wait = async {
        loop {
            let name = rx
                .borrow_and_update()
                .torrents
                .iter()
                .find(|t| t.info_hash == hex)
                .map(|t| t.name.clone());
            if let Some(n) = name {
                return Some(n);
            }
            if rx.changed().await.is_err() {
                return None;
            }
        }
    };
    let name = tokio::time::timeout(ADD_SHOWS_WITHIN, wait)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| hex.to_string());
    let (_snap, mut book) = rpc.snapshot();
    (book.ensure(hex), name)
}

/// A .torrent by URL (plain HTTP; this build has no TLS client for it), at most the API's
/// body limit.
async fn fetch(url: String, cookies: Option<String>) -> RpcResult<Vec<u8>> {
    let shown = url.clone();
    let get = move || -> Result<Vec<u8>, String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(URL_TIMEOUT))
            .build()
            .into();
        let mut req = agent.get(&url);
        if let Some(c) = &cookies {
            req = req.header("Cookie", c);
        }
        let mut resp = req.call().map_err(|e| e.to_string())?;
        resp.body_mut()
            .with_config()
            .limit(MAX_BODY as u64)
            .read_to_vec()
            .map_err(|e| e.to_string())
    };
    tokio::task::spawn_blocking(get)
        .await
        .map_err(|e| RpcError::bad(format!("cannot fetch {shown}: {e}")))?
        .map_err(|e| RpcError::bad(format!("cannot fetch {shown}: {e}")))
}
