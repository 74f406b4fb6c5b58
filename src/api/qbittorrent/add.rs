//! `torrents/add`: magnet links (and bare info hashes) in `urls`, .torrent files as multipart
//! parts, with qBittorrent's options. Each torrent goes through the daemon's one add path
//! (`api::add::submit`: `savepath` confined to the download root, the torrent checked). The
//! answer is qBittorrent's: "Ok." when at least one was added, "Fails." when none was, 415
//! for a file that is not a torrent. Options the daemon cannot honour are refused (409)
//! before anything is added.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};
use axum::response::Response;

use super::super::AppState;
use super::{text, Params, QbtError, QbtResult};
use crate::client::control::{parse_info_hash, Command, InfoHash, Limits};
use data_encoding::BASE64;
use serde_json::json;

/// One `torrents/add` call, read from its form.
#[derive(Default)]
struct AddForm {
    params: Vec<(String, String)>,
    /// (file name, bytes) of each .torrent part.
    files: Vec<(String, Vec<u8>)>,
}

impl AddForm {
    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, name: &str) -> QbtResult<bool> {
        match self.get(name).map(str::trim) {
            None | Some("") => Ok(false),
            Some(v) => super::parse_bool(v)
                .ok_or_else(|| QbtError::bad_request(format!("{name} must be true or false"))),
        }
    }

    /// A limit in bytes/s (absent, 0 or negative: none).
    fn limit(&self, name: &str) -> QbtResult<Option<u64>> {
        match self.get(name).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(|n| u64::try_from(n).ok().filter(|&b| b > 0))
                .map_err(|_| QbtError::bad_request(format!("{name} must be an integer"))),
        }
    }
}

/// Reads the form: multipart (files and fields; a part with a file name is a .torrent) or
/// url-encoded (fields only).
async fn read_form(req: Request) -> QbtResult<AddForm> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !multipart {
        let Params(map) = Params::from_request(req, &()).await?;
        return Ok(AddForm {
            params: map.into_iter().collect(),
            files: Vec::new(),
        });
    }
    let bad =
        |e: axum::extract::multipart::MultipartError| QbtError::new(e.status(), e.body_text());
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| QbtError::new(e.status(), e.body_text()))?;
    let mut out = AddForm::default();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        match field.file_name().map(str::to_string) {
            Some(file) => out
                .files
                .push((file, field.bytes().await.map_err(bad)?.to_vec())),
            None => out.params.push((name, field.text().await.map_err(bad)?)),
        }
    }
    Ok(out)
}

/// A `urls` line as a magnet link: a magnet link, or a bare v1 info hash (as qBittorrent
/// takes it). Anything else (an http URL of a .torrent) is refused.
fn magnet_of(line: &str) -> QbtResult<String> {
    if line.starts_with("magnet:?") {
        return Ok(line.to_string());
    }
    if line.len() == 40 && line.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(format!("magnet:?xt=urn:btih:{}", line.to_ascii_lowercase()));
    }
    Err(QbtError::unsupported(
        "adding a torrent by the URL of its .torrent file (send the file, or a magnet link)",
    ))
}

/// Where one torrent of the call comes from.
enum Source {
    Magnet(String),
    Bytes(Vec<u8>),
}

/// One torrent through the daemon's one add path, the JSON API's (`api::add`: the save path
/// confined to the download root, the torrent checked); its refusal as text.
async fn submit(s: &AppState, body: serde_json::Value) -> Result<InfoHash, String> {
    let body = body.to_string();
    // Its length declared, so it takes only its share of the upload budget.
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/torrents")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .body(axum::body::Body::from(body))
        .map_err(|e| e.to_string())?;
    match super::super::add::add(axum::extract::State(s.clone()), req).await {
        Ok(r) if r.status().is_success() => {
            // 201 {"info_hash": "..."}
            let bytes = axum::body::to_bytes(r.into_body(), 4096)
                .await
                .map_err(|e| e.to_string())?;
            let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
            parse_info_hash(v["info_hash"].as_str().unwrap_or("")).map_err(|e| e.to_string())
        }
        Ok(r) => Err(format!("answered {}", r.status())),
        Err(f) => Err(f.message),
    }
}

/// Refuses what the daemon cannot do with a torrent it adds, naming it.
fn check_options(f: &AddForm) -> QbtResult<()> {
    let set = |k: &str| f.get(k).is_some_and(|v| !v.trim().is_empty());
    if set("rename") {
        return Err(QbtError::unsupported("renaming a torrent"));
    }
    for (flag, what) in [
        (
            "skip_checking",
            "skip_checking (the daemon checks existing data)",
        ),
        ("autoTMM", "automatic torrent management"),
        ("forced", "force start"),
        ("useDownloadPath", "a separate download path"),
    ] {
        if f.flag(flag)? {
            return Err(QbtError::unsupported(what));
        }
    }
    // Share limits per torrent: only "use the global ones" (-2, or none given).
    for key in ["ratioLimit", "seedingTimeLimit", "inactiveSeedingTimeLimit"] {
        if let Some(v) = f.get(key).map(str::trim).filter(|v| !v.is_empty()) {
            if v.parse::<f64>().ok() != Some(-2.0) {
                return Err(QbtError::unsupported("share limits per torrent"));
            }
        }
    }
    Ok(())
}

pub(super) async fn add(
    axum::extract::State(s): axum::extract::State<AppState>,
    req: Request,
) -> QbtResult<Response> {
    let form = read_form(req).await?;
    check_options(&form)?;
    let paused = form.flag("paused")? || form.flag("stopped")?;
    let limits = Limits {
        download_bps: form.limit("dlLimit")?,
        upload_bps: form.limit("upLimit")?,
    };
    let out_dir = form
        .get("savepath")
        .map(str::trim)
        .filter(|p| !p.is_empty());
    // Confined before anything is added: a savepath outside the download root fails the call.
    if let Some(dir) = out_dir {
        s.root
            .resolve(dir)
            .map_err(|e| QbtError::bad_request(e.to_string()))?;
    }
    let mut sources = Vec::new();
    for line in form.get("urls").unwrap_or("").lines() {
        let line = line.trim();
        if !line.is_empty() {
            sources.push(Source::Magnet(magnet_of(line)?));
        }
    }
    for (name, bytes) in &form.files {
        if crate::torrent::meta::Metainfo::from_bytes(bytes).is_err() {
            return Err(QbtError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Error: '{name}' is not a valid torrent file."),
            ));
        }
        sources.push(Source::Bytes(bytes.clone()));
    }
    if sources.is_empty() {
        return Err(QbtError::bad_request(
            "Missing required parameters: urls or torrents",
        ));
    }
    let category = form
        .get("category")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    // qBittorrent refuses an add into a category that does not exist.
    if let Some(c) = &category {
        if !s.client.snapshot().categories.contains_key(c) {
            return Err(QbtError::conflict(format!(
                "Incorrect category name: {c:?}"
            )));
        }
    }
    let tags: Vec<String> = form
        .get("tags")
        .unwrap_or("")
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    let sequential = form.flag("sequentialDownload")?;
    let first_last = form.flag("firstLastPiecePrio")?;
    let mut added = 0;
    for source in sources {
        let mut body = json!({
            "out_dir": out_dir,
            "paused": paused,
            "limits": {"download_bps": limits.download_bps, "upload_bps": limits.upload_bps},
            "category": category,
            "tags": tags,
        });
        match source {
            Source::Magnet(m) => body["magnet"] = json!(m),
            Source::Bytes(b) => body["torrent_base64"] = json!(BASE64.encode(&b)),
        }
        match submit(&s, body).await {
            Ok(info_hash) => {
                added += 1;
                if sequential || first_last {
                    s.client
                        .call(|reply| Command::SetFileOrder {
                            info_hash,
                            sequential: Some(sequential),
                            first_last_piece: Some(first_last),
                            reply,
                        })
                        .await?;
                }
            }
            // qBittorrent's add answers only "Ok."/"Fails."; the reason goes to the log.
            Err(why) => tracing::info!("qBittorrent API: add refused: {why}"),
        }
    }
    Ok(text(if added > 0 { "Ok." } else { "Fails." }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lines_become_magnets() {
        assert_eq!(
            magnet_of("magnet:?xt=urn:btih:aa").unwrap(),
            "magnet:?xt=urn:btih:aa"
        );
        let h = "A".repeat(40);
        assert_eq!(
            magnet_of(&h).unwrap(),
            format!("magnet:?xt=urn:btih:{}", "a".repeat(40))
        );
        assert_eq!(magnet_of("http://x/y.torrent").unwrap_err().status, 409);
    }

    #[test]
    fn options_we_cannot_honour_are_refused() {
        let form = |k: &str, v: &str| AddForm {
            params: vec![(k.into(), v.into())],
            files: Vec::new(),
        };
        assert!(check_options(&form("skip_checking", "true")).is_err());
        assert!(check_options(&form("skip_checking", "false")).is_ok());
        assert!(check_options(&form("ratioLimit", "-2")).is_ok());
        assert!(check_options(&form("ratioLimit", "1.5")).is_err());
        assert_eq!(
            check_options(&form("paused", "maybe")).err(),
            None,
            "paused is read elsewhere"
        );
    }
}
