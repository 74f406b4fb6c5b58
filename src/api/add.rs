//! `POST /api/v1/torrents`: a torrent as JSON (base64 .torrent, a .torrent path inside the
//! download root, or a magnet link), as raw `application/x-bittorrent` bytes, or as a browser's
//! `multipart/form-data` upload. All three end in one [`AddRequest`] and one `Command::Add`.

use std::time::Duration;

use axum::body::Body;
use axum::extract::multipart::Field;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use data_encoding::{BASE64, BASE64_NOPAD};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::handlers::{json_rejection, parse_peers};
use super::object::Object;
use super::{ApiFailure, AppState, MAX_BODY};
use crate::client::control::{
    info_hash_hex, AddTorrent, Command, ControlError, Labels, Limits, TorrentSource,
};
use crate::lanes::PathRules;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AddJson {
    torrent_base64: Option<String>,
    torrent_path: Option<String>,
    magnet: Option<String>,
    out_dir: Option<String>,
    #[serde(default)]
    paused: bool,
    #[serde(default)]
    peers: Vec<String>,
    limits: Option<Object<Limits>>,
    path_rules: Option<Object<PathRules>>,
    category: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

pub(super) enum Source {
    Bytes(Vec<u8>),
    /// Inside the download root, checked before reading.
    Path(String),
    Magnet(String),
}

/// One add, whichever way it came (this API's three forms, Transmission's `torrent-add`).
pub(super) struct AddRequest {
    pub source: Source,
    pub out_dir: Option<String>,
    pub paused: bool,
    pub peers: Vec<String>,
    pub limits: Limits,
    pub path_rules: PathRules,
    /// A category that exists; without `out_dir` the torrent goes to its save path.
    pub category: Option<String>,
    pub tags: Vec<String>,
}

impl AddRequest {
    /// `source` into the download root, started, with no peers, limits or rules.
    pub fn new(source: Source) -> Self {
        Self {
            source,
            out_dir: None,
            paused: false,
            peers: Vec::new(),
            limits: Limits::default(),
            path_rules: PathRules::default(),
            category: None,
            tags: Vec::new(),
        }
    }
}

#[derive(Serialize)]
struct Created {
    info_hash: String,
}

/// Bytes of upload bodies held in memory at once, across all uploads: two of the largest
/// (`MAX_BODY`). Each upload takes its declared length from this budget before its body is
/// read and gives it back once the torrent is added or refused; one that does not fit waits.
pub(super) const UPLOAD_BUDGET: usize = 2 * MAX_BODY;
/// How long an upload waits for room in [`UPLOAD_BUDGET`] before it is answered 503.
const UPLOAD_WAIT: Duration = Duration::from_secs(30);
/// How long an upload's body may take at least (see [`body_deadline`]).
pub(super) const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// The slowest upload rate a large body gets time for, in bytes a second.
pub(super) const MIN_UPLOAD_RATE: usize = 256 << 10;

/// How long an upload's body may take to arrive: a caller that trickles it (or stops sending
/// it) would otherwise hold its share of the upload budget, and a connection, for ever.
fn body_deadline(base: Duration, declared: Option<usize>) -> Duration {
    let len = declared.unwrap_or(MAX_BODY);
    base + Duration::from_secs((len / MIN_UPLOAD_RATE) as u64)
}

/// The `Retry-After` of that 503, in seconds.
const UPLOAD_RETRY_AFTER: &str = "5";

/// The semaphore behind [`UPLOAD_BUDGET`], one permit a byte.
pub(super) fn upload_budget() -> Semaphore {
    Semaphore::new(UPLOAD_BUDGET)
}

pub async fn add(State(s): State<AppState>, req: Request) -> Result<Response, ApiFailure> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let declared = declared_length(req.headers())?;
    let cost = upload_cost(declared, content_type.starts_with("application/json"));
    // Held until the torrent is added or refused: the body, and the client's parse of it.
    let _room = match tokio::time::timeout(UPLOAD_WAIT, s.uploads.acquire_many(cost)).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) | Err(_) => return Ok(busy()),
    };
    let read = async {
        if content_type.starts_with("application/x-bittorrent") {
            from_raw(req, declared).await
        } else if content_type.starts_with("multipart/form-data") {
            from_multipart(req, declared).await
        } else if content_type.starts_with("application/json") {
            let Json(Object(body)) = Json::<Object<AddJson>>::from_request(req, &())
                .await
                .map_err(json_rejection)?;
            from_json(body)
        } else {
            Err(ApiFailure::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "bad_request",
                "send application/json, application/x-bittorrent or multipart/form-data",
            ))
        }
    };
    let deadline = body_deadline(s.body_timeout, declared);
    let request = tokio::time::timeout(deadline, read).await.map_err(|_| {
        ApiFailure::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!("the body did not arrive within {} s", deadline.as_secs()),
        )
    })??;
    let info_hash = submit(&s, request).await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            info_hash: info_hash_hex(&info_hash),
        }),
    )
        .into_response())
}

/// The body's `Content-Length`, refused (413) past `MAX_BODY` before anything is read.
fn declared_length(headers: &HeaderMap) -> Result<Option<usize>, ApiFailure> {
    let Some(v) = headers.get(header::CONTENT_LENGTH) else {
        return Ok(None);
    };
    let n = v
        .to_str()
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .ok_or_else(|| ApiFailure::bad_request("Content-Length is not a number"))?;
    if n > MAX_BODY as u64 {
        return Err(too_large());
    }
    Ok(Some(n as usize))
}

fn too_large() -> ApiFailure {
    ApiFailure::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "bad_request",
        format!("the body is larger than {MAX_BODY} bytes"),
    )
}

/// What an upload takes from [`UPLOAD_BUDGET`]: its declared length (the largest allowed when
/// it declares none, as a chunked body may be). A JSON body is held about four times over
/// (the text, the base64 string, its compacted copy and the decoded bytes).
fn upload_cost(declared: Option<usize>, json: bool) -> u32 {
    let len = declared.unwrap_or(MAX_BODY);
    let held = if json { len.saturating_mul(4) } else { len };
    // UPLOAD_BUDGET fits in u32 (128 MiB).
    held.min(UPLOAD_BUDGET) as u32
}

/// 503 with `Retry-After`: the upload budget stayed full for [`UPLOAD_WAIT`].
fn busy() -> Response {
    let mut r = ApiFailure::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        format!("too many large uploads at once; try again in {UPLOAD_RETRY_AFTER} s"),
    )
    .into_response();
    r.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_static(UPLOAD_RETRY_AFTER),
    );
    r
}

/// The body into one buffer sized from its declared length: no second copy, and never more
/// than `MAX_BODY` bytes.
async fn read_body(body: Body, declared: Option<usize>) -> Result<Vec<u8>, ApiFailure> {
    let mut buf = Vec::with_capacity(declared.unwrap_or(0));
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk =
            chunk.map_err(|e| ApiFailure::bad_request(format!("cannot read the body: {e}")))?;
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// A form's file field into one buffer, chunk by chunk (the form's declared length bounds it).
async fn read_field(mut field: Field<'_>, declared: Option<usize>) -> Result<Vec<u8>, ApiFailure> {
    let mut buf = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| ApiFailure::new(e.status(), "bad_request", e.body_text()))?
    {
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

fn from_json(b: AddJson) -> Result<AddRequest, ApiFailure> {
    let source = match (b.torrent_base64, b.torrent_path, b.magnet) {
        (Some(b64), None, None) => Source::Bytes(decode_base64(&b64)?),
        (None, Some(p), None) => Source::Path(p),
        (None, None, Some(m)) => Source::Magnet(m),
        _ => {
            return Err(ApiFailure::bad_request(
                "give exactly one of torrent_base64, torrent_path, magnet",
            ))
        }
    };
    Ok(AddRequest {
        source,
        out_dir: b.out_dir,
        paused: b.paused,
        peers: b.peers,
        limits: b.limits.map(|Object(l)| l).unwrap_or_default(),
        path_rules: b.path_rules.map(|Object(r)| r).unwrap_or_default(),
        category: b.category,
        tags: b.tags,
    })
}

fn decode_base64(s: &str) -> Result<Vec<u8>, ApiFailure> {
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64
        .decode(compact.as_bytes())
        .or_else(|_| BASE64_NOPAD.decode(compact.as_bytes()))
        .map_err(|e| ApiFailure::bad_request(format!("torrent_base64 is not base64: {e}")))
}

/// The query of a raw upload: `?out_dir=D&paused=true&peer=P&peer=Q`, and the path rules
/// `sequence`, `acl`, `path_policy`, `preference`.
fn options_from_pairs(
    pairs: Vec<(String, String)>,
    req: &mut AddRequest,
) -> Result<(), ApiFailure> {
    for (k, v) in pairs {
        match k.as_str() {
            "out_dir" => req.out_dir = Some(v),
            "paused" => req.paused = parse_bool(&v)?,
            "peer" => req.peers.push(v),
            "magnet" => req.source = Source::Magnet(v),
            "sequence" => req.path_rules.sequence = Some(v),
            "acl" => req.path_rules.acl = Some(v),
            "path_policy" => req.path_rules.path_policy = Some(v),
            "preference" => req.path_rules.preference = Some(v),
            "category" => req.category = Some(v),
            "tag" => req.tags.push(v),
            "token" => {}
            other => {
                return Err(ApiFailure::bad_request(format!(
                    "unknown option {other:?} (out_dir, paused, peer, sequence, acl, \
                     path_policy, preference, category, tag)"
                )))
            }
        }
    }
    Ok(())
}

fn parse_bool(v: &str) -> Result<bool, ApiFailure> {
    match v {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" | "" => Ok(false),
        _ => Err(ApiFailure::bad_request(format!(
            "paused must be true or false, not {v:?}"
        ))),
    }
}

async fn from_raw(req: Request, declared: Option<usize>) -> Result<AddRequest, ApiFailure> {
    let pairs = Query::<Vec<(String, String)>>::try_from_uri(req.uri())
        .map_err(|e| ApiFailure::bad_request(e.body_text()))?
        .0;
    let bytes = read_body(req.into_body(), declared).await?;
    let mut r = AddRequest::new(Source::Bytes(bytes));
    options_from_pairs(pairs, &mut r)?;
    Ok(r)
}

async fn from_multipart(req: Request, declared: Option<usize>) -> Result<AddRequest, ApiFailure> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiFailure::new(e.status(), "bad_request", e.body_text())
    };
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| ApiFailure::new(e.status(), "bad_request", e.body_text()))?;
    let mut torrent = None;
    let mut pairs = Vec::new();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        if name == "torrent" {
            torrent = Some(read_field(field, declared).await?);
        } else {
            pairs.push((name, field.text().await.map_err(bad)?));
        }
    }
    let mut r = AddRequest::new(Source::Bytes(Vec::new()));
    options_from_pairs(pairs, &mut r)?;
    match (torrent, &r.source) {
        (Some(t), Source::Bytes(_)) => r.source = Source::Bytes(t),
        (None, Source::Magnet(_)) => {}
        _ => {
            return Err(ApiFailure::bad_request(
                "the form needs a 'torrent' file field (or a 'magnet' field)",
            ))
        }
    }
    Ok(r)
}

/// Checks every caller-given value, then hands the torrent to the client.
pub(super) async fn submit(s: &AppState, r: AddRequest) -> Result<[u8; 20], ApiFailure> {
    // Without an out_dir, a torrent added into a category goes to the category's save path.
    let category_path = match &r.category {
        Some(c) => match s.client.snapshot().categories.get(c) {
            Some(cat) => Some(cat.save_path.clone()),
            None => return Err(ControlError::BadRequest(format!("no category {c:?}")).into()),
        },
        None => None,
    };
    let out_dir = s.root.resolve(
        r.out_dir
            .as_deref()
            .or(category_path.as_deref())
            .unwrap_or(""),
    )?;
    let peers = parse_peers(&r.peers)?;
    r.path_rules.compile().map_err(ControlError::from)?;
    let source = match r.source {
        Source::Bytes(b) if b.is_empty() => {
            return Err(ApiFailure::bad_request("the .torrent is empty"))
        }
        Source::Bytes(b) => TorrentSource::Metainfo(b),
        Source::Path(p) => TorrentSource::Metainfo(read_torrent_file(s, &p).await?),
        Source::Magnet(m) => {
            if !m.starts_with("magnet:?") {
                return Err(ApiFailure::bad_request(
                    "a magnet link starts with 'magnet:?'",
                ));
            }
            TorrentSource::Magnet(m)
        }
    };
    let add = AddTorrent {
        source,
        out_dir,
        paused: r.paused,
        peers,
        limits: r.limits,
        files: Default::default(),
        path_rules: r.path_rules,
        labels: Labels {
            category: r.category,
            tags: r.tags.into_iter().collect(),
        },
    };
    Ok(s.client
        .call(|reply| Command::Add(Box::new(add), reply))
        .await?)
}

async fn read_torrent_file(s: &AppState, requested: &str) -> Result<Vec<u8>, ApiFailure> {
    let path = s.root.resolve(requested)?;
    let cant = |e: std::io::Error| {
        ApiFailure::bad_request(format!("cannot read torrent_path {requested:?}: {e}"))
    };
    let meta = tokio::fs::metadata(&path).await.map_err(cant)?;
    if !meta.is_file() || meta.len() > MAX_BODY as u64 {
        return Err(ApiFailure::bad_request(format!(
            "torrent_path {requested:?} is not a .torrent file"
        )));
    }
    tokio::fs::read(&path).await.map_err(cant)
}
