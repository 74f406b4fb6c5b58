//! `app/*` and `transfer/*`: the version we answer as, the preferences that map onto the
//! daemon's settings (global rate limits, seeding policy, encryption; the save path read
//! only), and the global transfer counters.

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::super::AppState;
use super::fields::share_limits;
use super::{json, ok, text, Params, QbtError, QbtResult};
use crate::client::control::{ClientSnapshot, Command, Limits, SeedPolicy};

/// The qBittorrent release whose Web API we speak: 4.6's names (`pausedUP`, `torrents/pause`)
/// are the ones *arr tools and qbittorrent-api know best; 5.0's `stop`/`start` are answered
/// too.
pub(super) const APP_VERSION: &str = "v4.6.7";
pub(super) const WEBAPI_VERSION: &str = "2.9.3";

pub(super) async fn version() -> Response {
    text(APP_VERSION)
}

pub(super) async fn webapi_version() -> Response {
    text(WEBAPI_VERSION)
}

pub(super) async fn build_info() -> Response {
    json(&json!({
        "qt": "",
        "libtorrent": "",
        "boost": "",
        "openssl": "",
        "zlib": "",
        "bitness": usize::BITS,
        "app": concat!("bittorrent-over-scion ", env!("CARGO_PKG_VERSION")),
    }))
}

pub(super) async fn default_save_path(State(s): State<AppState>) -> Response {
    text(s.root.path().display().to_string())
}

/// qBittorrent's encryption setting: 0 prefer (plain allowed), 1 force on, 2 force off.
fn encryption_code(p: bt_mse::Policy) -> i64 {
    match p {
        bt_mse::Policy::Enabled => 0,
        bt_mse::Policy::Required => 1,
        bt_mse::Policy::Disabled => 2,
    }
}

fn port_of(addr: Option<&str>) -> i64 {
    addr.and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// The preferences as qBittorrent names them: ours, and fixed values for what the daemon
/// does not have (no alternative limits, no temp path).
fn preferences_of(s: &AppState, snap: &ClientSnapshot) -> Map<String, Value> {
    let (max_ratio, max_minutes) = share_limits(&snap.seed_policy);
    let q = &snap.queue;
    let v = json!({
        "save_path": s.root.path().display().to_string(),
        "temp_path_enabled": false,
        "temp_path": "",
        "create_subfolder_enabled": true,
        "auto_tmm_enabled": false,
        "dl_limit": snap.limits.download_bps.unwrap_or(0),
        "up_limit": snap.limits.upload_bps.unwrap_or(0),
        "alt_dl_limit": 0,
        "alt_up_limit": 0,
        "scheduler_enabled": false,
        "max_ratio_enabled": snap.seed_policy.stop_at_ratio.is_some(),
        "max_ratio": max_ratio,
        "max_seeding_time_enabled": snap.seed_policy.stop_after_secs.is_some(),
        "max_seeding_time": max_minutes,
        // 0: pause the torrent when a share limit is reached (what our seeding policy does).
        "max_ratio_act": 0,
        "queueing_enabled": q.enabled,
        "max_active_downloads": slots(q.max_active_downloads),
        "max_active_uploads": slots(q.max_active_seeds),
        // Not a limit of its own here: the sum of the two (-1 when either has none).
        "max_active_torrents": match (q.max_active_downloads, q.max_active_seeds) {
            (Some(d), Some(u)) => i64::from(d) + i64::from(u),
            _ => -1,
        },
        // A download with no payload for the inactive timer holds no slot (no rate
        // thresholds: only "nothing at all" counts as slow).
        "dont_count_slow_torrents": q.stalled_after_secs.is_some(),
        "slow_torrent_inactive_timer": q.stalled_after_secs.unwrap_or(60),
        "encryption": encryption_code(snap.encryption),
        "pex": true,
        "lsd": false,
        "upnp": false,
        "listen_port": port_of(snap.tcp_listen.as_deref()),
        "web_ui_address": s.listen.ip().to_string(),
        "web_ui_port": s.listen.port(),
        "web_ui_username": "admin",
        "bypass_local_auth": false,
        "incomplete_files_ext": false,
        "preallocate_all": true,
        "locale": "en",
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub(super) async fn preferences(State(s): State<AppState>) -> Response {
    json(&preferences_of(&s, &s.client.snapshot()))
}

/// A queue limit as qBittorrent writes it: -1 for none.
fn slots(n: Option<u32>) -> i64 {
    n.map_or(-1, i64::from)
}

/// A queue limit from qBittorrent: negative = none.
fn slots_of(v: &Value, key: &str) -> QbtResult<Option<u32>> {
    let n = v
        .as_i64()
        .ok_or_else(|| QbtError::bad_request(format!("{key} must be an integer")))?;
    match n {
        n if n < 0 => Ok(None),
        n => u32::try_from(n)
            .map(Some)
            .map_err(|_| QbtError::bad_request(format!("{key} is too large"))),
    }
}

/// What a `setPreferences` call asks of the daemon, checked before anything changes.
#[derive(Default)]
struct Changes {
    limits: Option<Limits>,
    seed: Option<SeedPolicy>,
    encryption: Option<bt_mse::Policy>,
    queue: Option<crate::client::queue::QueueUpdate>,
}

/// A limit in bytes/s, 0 or negative = none.
fn limit(v: &Value, key: &str) -> QbtResult<Option<u64>> {
    let n = v
        .as_i64()
        .ok_or_else(|| QbtError::bad_request(format!("{key} must be an integer")))?;
    Ok(u64::try_from(n).ok().filter(|&b| b > 0))
}

fn flag(v: &Value, key: &str) -> QbtResult<bool> {
    v.as_bool()
        .ok_or_else(|| QbtError::bad_request(format!("{key} must be true or false")))
}

/// Reads `given` against the current preferences: keys that map onto ours become changes;
/// any other key must keep its current value, else the call is refused (409) naming it —
/// nothing is pretended.
fn plan(
    given: &Map<String, Value>,
    current: &Map<String, Value>,
    snap: &ClientSnapshot,
) -> QbtResult<Changes> {
    let mut c = Changes::default();
    let mut limits = snap.limits;
    let mut seed = snap.seed_policy;
    let mut unsupported = Vec::new();
    for (key, v) in given {
        match key.as_str() {
            "dl_limit" => {
                limits.download_bps = limit(v, key)?;
                c.limits = Some(limits);
            }
            "up_limit" => {
                limits.upload_bps = limit(v, key)?;
                c.limits = Some(limits);
            }
            "max_ratio_enabled" | "max_ratio" | "max_seeding_time_enabled" | "max_seeding_time" => {
            }
            "queueing_enabled" => {
                c.queue.get_or_insert_default().enabled = Some(flag(v, key)?);
            }
            "max_active_downloads" => {
                c.queue.get_or_insert_default().max_active_downloads = Some(slots_of(v, key)?);
            }
            "max_active_uploads" => {
                c.queue.get_or_insert_default().max_active_seeds = Some(slots_of(v, key)?);
            }
            "dont_count_slow_torrents" | "slow_torrent_inactive_timer" => {}
            "encryption" => {
                c.encryption = Some(match v.as_i64() {
                    Some(0) => bt_mse::Policy::Enabled,
                    Some(1) => bt_mse::Policy::Required,
                    Some(2) => bt_mse::Policy::Disabled,
                    _ => return Err(QbtError::bad_request("encryption must be 0, 1 or 2")),
                })
            }
            other => match current.get(other) {
                Some(now) if now == v => {}
                _ => unsupported.push(other.to_string()),
            },
        }
    }
    // The enabled flags and their values come in pairs; either may come alone.
    let ratio_on = match given.get("max_ratio_enabled") {
        Some(v) => flag(v, "max_ratio_enabled")?,
        None => seed.stop_at_ratio.is_some() || given.contains_key("max_ratio"),
    };
    if given.contains_key("max_ratio_enabled") || given.contains_key("max_ratio") {
        let ratio = match given.get("max_ratio") {
            Some(v) => Some(
                v.as_f64()
                    .ok_or_else(|| QbtError::bad_request("max_ratio must be a number"))?,
            ),
            None => seed.stop_at_ratio,
        };
        // qBittorrent writes "no limit" as a negative ratio.
        seed.stop_at_ratio = ratio.filter(|r| ratio_on && *r >= 0.0);
        c.seed = Some(seed);
    }
    let time_on = match given.get("max_seeding_time_enabled") {
        Some(v) => flag(v, "max_seeding_time_enabled")?,
        None => seed.stop_after_secs.is_some() || given.contains_key("max_seeding_time"),
    };
    if given.contains_key("max_seeding_time_enabled") || given.contains_key("max_seeding_time") {
        let minutes = match given.get("max_seeding_time") {
            Some(v) => Some(
                v.as_i64()
                    .ok_or_else(|| QbtError::bad_request("max_seeding_time must be an integer"))?,
            ),
            None => seed.stop_after_secs.map(|s| (s / 60) as i64),
        };
        seed.stop_after_secs = minutes
            .filter(|m| time_on && *m >= 0)
            .map(|m| (m as u64).saturating_mul(60));
        c.seed = Some(seed);
    }
    if let Some(p) = &c.seed {
        p.validate()
            .map_err(|e| QbtError::bad_request(e.to_string()))?;
    }
    // The slow-torrent switch and its timer come in a pair too.
    if given.contains_key("dont_count_slow_torrents")
        || given.contains_key("slow_torrent_inactive_timer")
    {
        let on = match given.get("dont_count_slow_torrents") {
            Some(v) => flag(v, "dont_count_slow_torrents")?,
            None => true,
        };
        let secs = match given.get("slow_torrent_inactive_timer") {
            Some(v) => v.as_u64().filter(|s| *s > 0).ok_or_else(|| {
                QbtError::bad_request("slow_torrent_inactive_timer must be a positive integer")
            })?,
            None => snap.queue.stalled_after_secs.unwrap_or(60),
        };
        c.queue.get_or_insert_default().stalled_after_secs = Some(on.then_some(secs));
    }
    if !unsupported.is_empty() {
        unsupported.sort();
        return Err(QbtError::conflict(format!(
            "these preferences cannot be changed in this daemon: {} (the save path is its --download-root)",
            unsupported.join(", ")
        )));
    }
    Ok(c)
}

/// `app/setPreferences` (form `json` = a JSON object of preferences).
pub(super) async fn set_preferences(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let raw = p.require("json")?;
    let given: Map<String, Value> = serde_json::from_str(raw)
        .map_err(|e| QbtError::bad_request(format!("json must be a JSON object: {e}")))?;
    let snap = s.client.snapshot();
    let changes = plan(&given, &preferences_of(&s, &snap), &snap)?;
    if let Some(limits) = changes.limits {
        s.client
            .call(|reply| Command::SetLimits {
                info_hash: None,
                limits,
                reply,
            })
            .await?;
    }
    if let Some(policy) = changes.seed {
        s.client.call(|r| Command::SetSeedPolicy(policy, r)).await?;
    }
    if let Some(e) = changes.encryption {
        s.client.call(|r| Command::SetEncryption(e, r)).await?;
    }
    if let Some(q) = changes.queue {
        s.client.call(|r| Command::SetQueue(q, r)).await?;
    }
    Ok(ok())
}

/// `transfer/info`: the sums over all torrents.
pub(super) fn transfer_of(snap: &ClientSnapshot) -> Map<String, Value> {
    let sum = |f: fn(&crate::client::control::TorrentSnapshot) -> u64| -> u64 {
        snap.torrents.iter().map(f).sum()
    };
    let listening = snap.tcp_listen.is_some() || snap.local_scion.is_some();
    let v = json!({
        "dl_info_speed": sum(|t| t.rate_down as u64),
        "dl_info_data": sum(|t| t.bytes_down),
        "up_info_speed": sum(|t| t.rate_up as u64),
        "up_info_data": sum(|t| t.bytes_up),
        "dl_rate_limit": snap.limits.download_bps.unwrap_or(0),
        "up_rate_limit": snap.limits.upload_bps.unwrap_or(0),
        "dht_nodes": 0,
        "connection_status": if listening { "connected" } else { "firewalled" },
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub(super) async fn transfer_info(State(s): State<AppState>) -> Response {
    json(&transfer_of(&s.client.snapshot()))
}

pub(super) async fn download_limit(State(s): State<AppState>) -> Response {
    text(
        s.client
            .snapshot()
            .limits
            .download_bps
            .unwrap_or(0)
            .to_string(),
    )
}

pub(super) async fn upload_limit(State(s): State<AppState>) -> Response {
    text(
        s.client
            .snapshot()
            .limits
            .upload_bps
            .unwrap_or(0)
            .to_string(),
    )
}

/// The `limit` parameter: bytes/s, 0 or negative for none.
pub(super) fn limit_param(p: &Params) -> QbtResult<Option<u64>> {
    let n = p
        .int("limit")?
        .ok_or_else(|| QbtError::bad_request("Missing required parameters: limit"))?;
    Ok(u64::try_from(n).ok().filter(|&b| b > 0))
}

async fn set_global(
    s: &AppState,
    down: Option<Option<u64>>,
    up: Option<Option<u64>>,
) -> QbtResult<Response> {
    let mut limits = s.client.snapshot().limits;
    if let Some(d) = down {
        limits.download_bps = d;
    }
    if let Some(u) = up {
        limits.upload_bps = u;
    }
    s.client
        .call(|reply| Command::SetLimits {
            info_hash: None,
            limits,
            reply,
        })
        .await?;
    Ok(ok())
}

pub(super) async fn set_download_limit(
    State(s): State<AppState>,
    p: Params,
) -> QbtResult<Response> {
    let l = limit_param(&p)?;
    set_global(&s, Some(l), None).await
}

pub(super) async fn set_upload_limit(State(s): State<AppState>, p: Params) -> QbtResult<Response> {
    let l = limit_param(&p)?;
    set_global(&s, None, Some(l)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> Map<String, Value> {
        match json!({"save_path": "/root", "queueing_enabled": false, "dl_limit": 0}) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn given(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn limits_and_share_limits_map_onto_ours() {
        let snap = ClientSnapshot::default();
        let c = plan(
            &given(json!({"dl_limit": 1000, "up_limit": -1, "max_ratio_enabled": true, "max_ratio": 1.5, "max_seeding_time_enabled": true, "max_seeding_time": 10})),
            &current(),
            &snap,
        )
        .unwrap();
        assert_eq!(c.limits.unwrap().download_bps, Some(1000));
        assert_eq!(c.limits.unwrap().upload_bps, None);
        let seed = c.seed.unwrap();
        assert_eq!(seed.stop_at_ratio, Some(1.5));
        assert_eq!(seed.stop_after_secs, Some(600));
        let off = plan(
            &given(json!({"max_ratio_enabled": false})),
            &current(),
            &snap,
        )
        .unwrap();
        assert_eq!(off.seed.unwrap().stop_at_ratio, None);
    }

    #[test]
    fn what_we_lack_is_refused_unless_unchanged() {
        let snap = ClientSnapshot::default();
        assert!(plan(
            &given(json!({"save_path": "/root", "queueing_enabled": false})),
            &current(),
            &snap
        )
        .is_ok());
        let e = plan(
            &given(json!({"save_path": "/elsewhere"})),
            &current(),
            &snap,
        )
        .err()
        .unwrap();
        assert_eq!(e.status, 409);
        assert!(e.text.contains("save_path"), "{}", e.text);
        let e = plan(&given(json!({"no_such_key": 1})), &current(), &snap)
            .err()
            .unwrap();
        assert!(e.text.contains("no_such_key"), "{}", e.text);
        let e = plan(&given(json!({"dl_limit": "fast"})), &current(), &snap)
            .err()
            .unwrap();
        assert_eq!(e.status, 400);
    }
}
