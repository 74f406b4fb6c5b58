//! session-get, session-set and session-stats onto our global settings, and free-space.
//! Speeds are Transmission's kB/s (1000 bytes). The daemon keeps no value for a limit that is
//! off, so a limit given without its `-enabled` flag turns the limit on, and one that is off
//! reads 0. Keys for features the daemon does not have read as "off" where that is true
//! (`alt-speed-enabled`, `utp-enabled`, …); setting one to what it already is succeeds,
//! anything else is refused by name.

use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::envelope::{Args, RpcError, RpcResult};
use super::fields::KB;
use super::Rpc;
use crate::client::control::{Command, Limits, SeedPolicy};
use crate::client::queue::{QueueSettings, QueueUpdate};

/// The protocol this module follows (Transmission 4.0's, its old names).
const RPC_VERSION: i64 = 17;
const RPC_VERSION_SEMVER: &str = "5.3.0";
/// The oldest protocol whose clients work with it.
const RPC_VERSION_MINIMUM: i64 = 14;

/// Transmission's keys for features the daemon does not have, and the value that says so.
const ABSENT: &[(&str, bool)] = &[
    ("alt-speed-enabled", false),
    ("alt-speed-time-enabled", false),
    ("blocklist-enabled", false),
    ("idle-seeding-limit-enabled", false),
    ("incomplete-dir-enabled", false),
    ("lpd-enabled", false),
    ("port-forwarding-enabled", false),
    ("peer-port-random-on-start", false),
    ("rename-partial-files", false),
    ("script-torrent-added-enabled", false),
    ("script-torrent-done-enabled", false),
    ("script-torrent-done-seeding-enabled", false),
    ("trash-original-torrent-files", false),
    ("utp-enabled", false),
    ("start-added-torrents", true),
];

/// Transmission's queue keys for ours. Transmission has a switch per queue, the daemon one
/// switch and a limit per queue that may be none: a queue reads as on when queueing is on
/// and it has a limit. A size read while its queue is off is the size it gets when turned on.
fn queue_keys(q: &QueueSettings) -> [(&'static str, Value); 6] {
    let default = QueueSettings::default();
    let stalled = q.stalled_after_secs;
    [
        (
            "download-queue-enabled",
            json!(q.enabled && q.max_active_downloads.is_some()),
        ),
        (
            "download-queue-size",
            json!(q.max_active_downloads.or(default.max_active_downloads)),
        ),
        (
            "seed-queue-enabled",
            json!(q.enabled && q.max_active_seeds.is_some()),
        ),
        (
            "seed-queue-size",
            json!(q.max_active_seeds.or(default.max_active_seeds)),
        ),
        ("queue-stalled-enabled", json!(stalled.is_some())),
        (
            "queue-stalled-minutes",
            json!(stalled
                .or(default.stalled_after_secs)
                .map(|s| s.div_ceil(60))),
        ),
    ]
}

/// The queue change session-set asks for, if it names a queue key.
fn queue_update(q: &QueueSettings, args: &mut Args) -> RpcResult<Option<QueueUpdate>> {
    let dl_on = args.bool("download-queue-enabled")?;
    let dl_size = args.count("download-queue-size")?;
    let seed_on = args.bool("seed-queue-enabled")?;
    let seed_size = args.count("seed-queue-size")?;
    let stalled_on = args.bool("queue-stalled-enabled")?;
    let stalled_minutes = args.count("queue-stalled-minutes")?;
    let given = [dl_on, seed_on, stalled_on].iter().any(Option::is_some)
        || [dl_size, seed_size, stalled_minutes]
            .iter()
            .any(Option::is_some);
    if !given {
        return Ok(None);
    }
    let default = QueueSettings::default();
    let size = |v: Option<u64>, now: Option<u32>, default: Option<u32>| -> RpcResult<Option<u32>> {
        match v {
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| RpcError::bad(format!("queue size {n} is too large"))),
            None => Ok(now.or(default)),
        }
    };
    let dl_size = size(
        dl_size,
        q.max_active_downloads,
        default.max_active_downloads,
    )?;
    let seed_size = size(seed_size, q.max_active_seeds, default.max_active_seeds)?;
    let dl_on = dl_on.unwrap_or(q.enabled && q.max_active_downloads.is_some());
    let seed_on = seed_on.unwrap_or(q.enabled && q.max_active_seeds.is_some());
    let stalled_on = stalled_on.unwrap_or(q.stalled_after_secs.is_some());
    let stalled_secs = match stalled_minutes {
        Some(0) => return Err(RpcError::bad("queue-stalled-minutes must be at least 1")),
        Some(m) => Some(m.saturating_mul(60)),
        None => q.stalled_after_secs.or(default.stalled_after_secs),
    };
    let on = dl_on || seed_on;
    Ok(Some(QueueUpdate {
        enabled: Some(on),
        // With both queues off the limits are kept for the next time one is turned on.
        max_active_downloads: on.then_some(dl_on.then_some(dl_size).flatten()),
        max_active_seeds: on.then_some(seed_on.then_some(seed_size).flatten()),
        stalled_after_secs: Some(stalled_secs.filter(|_| stalled_on)),
    }))
}

/// Transmission's encryption names for our policies: `tolerated` (plain preferred) is the
/// nearest to our `disabled`, which is stricter (it refuses encrypted peers).
fn encryption_name(p: bt_mse::Policy) -> &'static str {
    match p {
        bt_mse::Policy::Disabled => "tolerated",
        bt_mse::Policy::Enabled => "preferred",
        bt_mse::Policy::Required => "required",
    }
}

fn encryption_policy(name: &str) -> RpcResult<bt_mse::Policy> {
    match name {
        "tolerated" => Ok(bt_mse::Policy::Disabled),
        "preferred" => Ok(bt_mse::Policy::Enabled),
        "required" => Ok(bt_mse::Policy::Required),
        other => Err(RpcError::bad(format!(
            "encryption must be required, preferred or tolerated, not {other:?}"
        ))),
    }
}

fn all_keys(rpc: &Rpc) -> Map<String, Value> {
    let snap = rpc.app.client.snapshot();
    let kb = |b: Option<u64>| b.map_or(0, |b| b / KB);
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put(
        "version",
        json!(format!(
            "4.0.6 (bittorrent-over-scion {})",
            env!("CARGO_PKG_VERSION")
        )),
    );
    put("rpc-version", json!(RPC_VERSION));
    put("rpc-version-semver", json!(RPC_VERSION_SEMVER));
    put("rpc-version-minimum", json!(RPC_VERSION_MINIMUM));
    put("session-id", json!(rpc.shared.session_id));
    put("config-dir", json!(rpc.app.data_dir.display().to_string()));
    put(
        "download-dir",
        json!(rpc.app.root.path().display().to_string()),
    );
    put("speed-limit-down", json!(kb(snap.limits.download_bps)));
    put(
        "speed-limit-down-enabled",
        json!(snap.limits.download_bps.is_some()),
    );
    put("speed-limit-up", json!(kb(snap.limits.upload_bps)));
    put(
        "speed-limit-up-enabled",
        json!(snap.limits.upload_bps.is_some()),
    );
    put("encryption", json!(encryption_name(snap.encryption)));
    put(
        "seedRatioLimit",
        json!(snap.seed_policy.stop_at_ratio.unwrap_or(0.0)),
    );
    put(
        "seedRatioLimited",
        json!(snap.seed_policy.stop_at_ratio.is_some()),
    );
    if let Some(port) = snap
        .tcp_listen
        .as_deref()
        .and_then(|a| a.rsplit_once(':'))
        .and_then(|(_, p)| p.parse::<u16>().ok())
    {
        put("peer-port", json!(port));
    }
    for (k, v) in queue_keys(&snap.queue) {
        put(k, v);
    }
    for (k, v) in ABSENT {
        put(k, json!(v));
    }
    put(
        "units",
        json!({
            "speed-units": ["kB/s", "MB/s", "GB/s", "TB/s"], "speed-bytes": KB,
            "size-units": ["kB", "MB", "GB", "TB"], "size-bytes": KB,
            "memory-units": ["KiB", "MiB", "GiB", "TiB"], "memory-bytes": 1024,
        }),
    );
    m
}

pub fn get(rpc: &Rpc, mut args: Args) -> RpcResult<Map<String, Value>> {
    let fields = args.strings("fields")?;
    args.finish("session-get")?;
    let mut all = all_keys(rpc);
    let Some(fields) = fields else {
        return Ok(all);
    };
    // Transmission answers the keys it has among those asked for.
    Ok(fields
        .into_iter()
        .filter_map(|f| Some((f.clone(), all.remove(&f)?)))
        .collect())
}

/// A limit from a value in kB/s and an on/off flag, either of which may be absent (the
/// session's and each torrent's limits alike).
pub(super) fn limit(
    current: Option<u64>,
    value_kb: Option<u64>,
    enabled: Option<bool>,
) -> Option<u64> {
    match (value_kb, enabled) {
        (_, Some(false)) => None,
        (Some(v), _) => Some(v.saturating_mul(KB)),
        (None, Some(true)) => current.or(Some(0)),
        (None, None) => current,
    }
}

pub async fn set(rpc: &Rpc, mut args: Args) -> RpcResult<Map<String, Value>> {
    let snap = rpc.app.client.snapshot();
    let down = args.count("speed-limit-down")?;
    let down_on = args.bool("speed-limit-down-enabled")?;
    let up = args.count("speed-limit-up")?;
    let up_on = args.bool("speed-limit-up-enabled")?;
    let encryption = args
        .string("encryption")?
        .as_deref()
        .map(encryption_policy)
        .transpose()?;
    let ratio = args.real("seedRatioLimit")?;
    let ratio_on = args.bool("seedRatioLimited")?;
    let queue = queue_update(&snap.queue, &mut args)?;
    if let Some(dir) = args.string("download-dir")? {
        let asked = rpc.app.root.resolve(&dir)?;
        if asked != rpc.app.root.path() {
            return Err(RpcError::unsupported(
                "download-dir",
                "the download root is fixed when the daemon starts (--download-root); give \
                 download-dir to torrent-add to put a torrent below it",
            ));
        }
    }
    for (k, v) in ABSENT {
        if let Some(given) = args.bool(k)? {
            if given != *v {
                return Err(RpcError::unsupported(
                    format!("{k} = {given}"),
                    "the daemon has no such feature",
                ));
            }
        }
    }
    // Keys Transmission has that map onto nothing here, refused by name before any change.
    let rest: Vec<String> = args.0.keys().cloned().collect();
    if let Some(k) = rest.first() {
        return Err(if KNOWN_UNMAPPED.contains(&k.as_str()) {
            RpcError::unsupported(k.clone(), "the daemon has no such setting")
        } else {
            RpcError::bad(format!("session-set: unknown argument {k:?}"))
        });
    }

    let limits = Limits {
        download_bps: limit(snap.limits.download_bps, down, down_on),
        upload_bps: limit(snap.limits.upload_bps, up, up_on),
    };
    if limits != snap.limits {
        rpc.app
            .client
            .call(|reply| Command::SetLimits {
                info_hash: None,
                limits,
                reply,
            })
            .await?;
    }
    if ratio.is_some() || ratio_on.is_some() {
        let stop_at_ratio = match (ratio, ratio_on) {
            (_, Some(false)) => None,
            (Some(r), _) => Some(r),
            (None, _) => snap.seed_policy.stop_at_ratio.or(Some(2.0)),
        };
        let policy = SeedPolicy {
            stop_at_ratio,
            ..snap.seed_policy
        };
        policy
            .validate()
            .map_err(|e| RpcError::bad(e.to_string()))?;
        rpc.app
            .client
            .call(|r| Command::SetSeedPolicy(policy, r))
            .await?;
    }
    if let Some(p) = encryption {
        rpc.app
            .client
            .call(|r| Command::SetEncryption(p, r))
            .await?;
    }
    if let Some(q) = queue {
        rpc.app.client.call(|r| Command::SetQueue(q, r)).await?;
    }
    Ok(Map::new())
}

/// Transmission's session keys the daemon has no counterpart for.
const KNOWN_UNMAPPED: &[&str] = &[
    "alt-speed-down",
    "alt-speed-up",
    "alt-speed-time-begin",
    "alt-speed-time-end",
    "alt-speed-time-day",
    "blocklist-url",
    "cache-size-mb",
    "default-trackers",
    "dht-enabled",
    "idle-seeding-limit",
    "incomplete-dir",
    "peer-limit-global",
    "peer-limit-per-torrent",
    "peer-port",
    "pex-enabled",
    "script-torrent-added-filename",
    "script-torrent-done-filename",
    "script-torrent-done-seeding-filename",
];

pub fn stats(rpc: &Rpc, args: Args) -> RpcResult<Map<String, Value>> {
    args.finish("session-stats")?;
    let (snap, book) = rpc.snapshot();
    let active = snap
        .torrents
        .iter()
        .filter(|t| super::fields::status_code(t) != super::fields::status::STOPPED)
        .count();
    let sum = |f: fn(&crate::client::control::TorrentSnapshot) -> f64| -> u64 {
        snap.torrents.iter().map(|t| f(t).max(0.0) as u64).sum()
    };
    let (run_down, run_up) = book.this_run(&snap);
    let seconds = SystemTime::now()
        .duration_since(rpc.shared.started)
        .map_or(0, |d| d.as_secs());
    let total_down: u64 = snap.torrents.iter().map(|t| t.bytes_down).sum();
    let total_up: u64 = snap.torrents.iter().map(|t| t.bytes_up).sum();
    let m = json!({
        "activeTorrentCount": active,
        "pausedTorrentCount": snap.torrents.len() - active,
        "torrentCount": snap.torrents.len(),
        "downloadSpeed": sum(|t| t.rate_down),
        "uploadSpeed": sum(|t| t.rate_up),
        // This run: bytes moved by the torrents still present, since the daemon started.
        "current-stats": {
            "downloadedBytes": run_down, "uploadedBytes": run_up,
            "filesAdded": snap.torrents.len(), "secondsActive": seconds, "sessionCount": 1,
        },
        // The torrents present, over their whole lives (the daemon keeps no history of
        // removed torrents or of its runs, so secondsActive and sessionCount are this run's).
        "cumulative-stats": {
            "downloadedBytes": total_down, "uploadedBytes": total_up,
            "filesAdded": snap.torrents.len(), "secondsActive": seconds, "sessionCount": 1,
        },
    });
    Ok(m.as_object().cloned().unwrap_or_default())
}

/// free-space: only for directories under the download root.
pub fn free_space(rpc: &Rpc, mut args: Args) -> RpcResult<Map<String, Value>> {
    let path = args
        .string("path")?
        .ok_or_else(|| RpcError::bad("free-space needs a 'path'"))?;
    args.finish("free-space")?;
    let dir = rpc.app.root.resolve(&path)?;
    let (free, total) =
        statvfs(&dir).map_err(|e| RpcError::bad(format!("{}: {e}", dir.display())))?;
    let m = json!({"path": path, "size-bytes": free, "total_size": total});
    Ok(m.as_object().cloned().unwrap_or_default())
}

/// (bytes free to unprivileged users, total bytes) of the filesystem holding `dir`.
fn statvfs(dir: &std::path::Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a NUL-terminated path and a buffer of the right type, written by the call.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled the buffer.
    let st = unsafe { st.assume_init() };
    let frsize = st.f_frsize;
    Ok((
        st.f_bavail.saturating_mul(frsize),
        st.f_blocks.saturating_mul(frsize),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_combine_value_and_flag() {
        assert_eq!(limit(Some(5000), None, Some(false)), None);
        assert_eq!(limit(None, Some(10), None), Some(10_000));
        assert_eq!(limit(None, Some(10), Some(true)), Some(10_000));
        assert_eq!(limit(Some(5000), None, Some(true)), Some(5000));
        assert_eq!(limit(Some(5000), None, None), Some(5000));
        assert_eq!(limit(None, None, None), None);
    }

    fn args(v: Value) -> Args {
        match v {
            Value::Object(m) => Args(m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn queue_keys_map_both_switches_onto_the_one() {
        let off = QueueSettings::default();
        let keys: Map<String, Value> = queue_keys(&off)
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect();
        assert_eq!(keys["download-queue-enabled"], json!(false));
        assert_eq!(keys["download-queue-size"], json!(3));
        assert_eq!(keys["queue-stalled-minutes"], json!(30));
        // Turning the download queue on leaves the seed queue off, as it read.
        let u = queue_update(
            &off,
            &mut args(json!({"download-queue-enabled": true, "download-queue-size": 1})),
        )
        .unwrap()
        .unwrap();
        let on = off.updated(&u);
        assert!(on.enabled);
        assert_eq!(on.max_active_downloads, Some(1));
        assert_eq!(on.max_active_seeds, None);
        let keys: Map<String, Value> = queue_keys(&on)
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect();
        assert_eq!(keys["download-queue-enabled"], json!(true));
        assert_eq!(keys["seed-queue-enabled"], json!(false));
        // Stalled off; minutes 0 refused; nothing queue-related: no change.
        let u = queue_update(&on, &mut args(json!({"queue-stalled-enabled": false})))
            .unwrap()
            .unwrap();
        assert_eq!(on.updated(&u).stalled_after_secs, None);
        assert!(queue_update(&on, &mut args(json!({"queue-stalled-minutes": 0}))).is_err());
        assert_eq!(queue_update(&on, &mut args(json!({}))).unwrap(), None);
    }

    #[test]
    fn encryption_names_round_trip() {
        for p in [
            bt_mse::Policy::Disabled,
            bt_mse::Policy::Enabled,
            bt_mse::Policy::Required,
        ] {
            assert_eq!(encryption_policy(encryption_name(p)).unwrap(), p);
        }
        assert!(encryption_policy("plain").is_err());
    }

    #[test]
    fn free_space_of_a_real_directory() {
        let d = tempfile::tempdir().unwrap();
        let (free, total) = statvfs(d.path()).unwrap();
        assert!(total > 0 && free <= total);
        assert!(statvfs(&d.path().join("missing")).is_err());
    }
}
