//! The daemon commands (`add`, `list`, `show`, `pause`, `resume`, `recheck`, `remove`,
//! `add-peer`, `path-rules`): a
//! thin client of the daemon's HTTP API. Blocking `ureq`: one request per command needs no
//! async runtime. Human tables by default, the API's JSON with `--json`.

use std::time::Duration;

use data_encoding::BASE64;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use super::args::{ApiOpts, PathRulesArgs, RemoteCommand};
use super::exit::{self, CliError};
use crate::client::control::{Category, Limits, TorrentSnapshot, TorrentState, Transport};
use crate::lanes::PathRules;

pub fn run(cmd: RemoteCommand) -> Result<(), CliError> {
    match cmd {
        RemoteCommand::Add {
            torrent,
            out_dir,
            category,
            tags,
            paused,
            peers,
            rules,
            api,
        } => {
            let labels = json!({ "category": category, "tags": tags });
            add(
                &Api::new(&api),
                &torrent,
                out_dir,
                paused,
                peers,
                &rules,
                labels,
            )
        }
        RemoteCommand::PathRules {
            torrent,
            rules,
            api,
        } => set_path_rules(&Api::new(&api), &torrent, &rules),
        RemoteCommand::List { api } => list(&Api::new(&api)),
        RemoteCommand::Show { torrent, api } => show(&Api::new(&api), &torrent),
        RemoteCommand::Pause { torrent, api } => simple(&Api::new(&api), &torrent, "pause"),
        RemoteCommand::Resume { torrent, api } => simple(&Api::new(&api), &torrent, "resume"),
        RemoteCommand::Recheck { torrent, api } => recheck(&Api::new(&api), &torrent),
        RemoteCommand::Start {
            torrent,
            force,
            api,
        } => start(&Api::new(&api), &torrent, force),
        RemoteCommand::Queue { torrent, to, api } => queue(&Api::new(&api), &torrent, &to),
        RemoteCommand::Category {
            name,
            save_path,
            delete,
            torrent,
            api,
        } => category(&Api::new(&api), name, save_path, delete, torrent),
        RemoteCommand::Move {
            torrent,
            out_dir,
            api,
        } => move_data(&Api::new(&api), &torrent, &out_dir),
        RemoteCommand::Tag {
            torrent,
            tags,
            remove,
            set,
            api,
        } => tag(&Api::new(&api), &torrent, tags, remove, set),
        RemoteCommand::Remove {
            torrent,
            delete_data,
            api,
        } => remove(&Api::new(&api), &torrent, delete_data),
        RemoteCommand::AddPeer {
            torrent,
            peers,
            api,
        } => add_peer(&Api::new(&api), &torrent, peers),
        RemoteCommand::Settings {
            encryption,
            queue,
            api,
        } => settings(&Api::new(&api), encryption, &queue),
        RemoteCommand::Files { torrent, api } => files(&Api::new(&api), &torrent),
        RemoteCommand::Prio {
            torrent,
            indexes,
            level,
            sequential,
            first_last_piece,
            api,
        } => prio(
            &Api::new(&api),
            &torrent,
            &indexes,
            &level,
            (sequential, first_last_piece),
        ),
    }
}

struct Api {
    base: String,
    token: Option<String>,
    json: bool,
    agent: ureq::Agent,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    kind: String,
}

impl Api {
    fn new(o: &ApiOpts) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Self {
            base: o.api.trim_end_matches('/').to_string(),
            token: o.token.clone(),
            json: o.json,
            agent,
        }
    }

    /// Sends one request; a non-2xx answer becomes the mapped `CliError`.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Vec<u8>, CliError> {
        let url = format!("{}{path}", self.base);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let bytes = match body {
            Some((content_type, bytes)) => {
                req = req.header("Content-Type", content_type);
                bytes
            }
            None => Vec::new(),
        };
        let req = req
            .body(bytes)
            .map_err(|e| exit::usage(format!("invalid --api URL {url:?}: {e}")))?;
        let mut resp = match self.agent.run(req) {
            Ok(r) => r,
            Err(ureq::Error::BadUri(e)) => {
                return Err(exit::usage(format!("invalid --api URL {url:?}: {e}")))
            }
            Err(e) => return Err(exit::api_unreachable(&self.base, e)),
        };
        let status = resp.status().as_u16();
        let bytes = resp
            .body_mut()
            .read_to_vec()
            .map_err(|e| exit::api_unreachable(&self.base, e))?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => exit::from_api(status, &b.kind, &b.error),
            Err(_) => exit::from_api(status, "", String::from_utf8_lossy(&bytes).trim()),
        })
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<(T, Vec<u8>), CliError> {
        let bytes = self.call("GET", path, None)?;
        let v = serde_json::from_slice(&bytes)
            .map_err(|e| exit::other(format!("unexpected answer from the daemon: {e}")))?;
        Ok((v, bytes))
    }

    fn send_json(
        &self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Vec<u8>, CliError> {
        self.call(
            method,
            path,
            Some(("application/json", body.to_string().into_bytes())),
        )
    }

    /// The info hash a user means: 40 hex digits, or a unique prefix of one, or an exact name.
    fn resolve(&self, given: &str) -> Result<String, CliError> {
        let lower = given.to_ascii_lowercase();
        if lower.len() == 40 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(lower);
        }
        let (list, _) = self.get::<Vec<TorrentSnapshot>>("/api/v1/torrents")?;
        let by_prefix: Vec<&TorrentSnapshot> = list
            .iter()
            .filter(|t| !lower.is_empty() && t.info_hash.starts_with(&lower))
            .collect();
        let matches = if by_prefix.is_empty() {
            list.iter().filter(|t| t.name == given).collect()
        } else {
            by_prefix
        };
        match matches.as_slice() {
            [one] => Ok(one.info_hash.clone()),
            [] => Err(exit::from_api(
                404,
                "unknown_torrent",
                &format!("no torrent matches {given:?}"),
            )),
            many => Err(exit::usage(format!(
                "{given:?} is ambiguous: {}",
                many.iter()
                    .map(|t| format!("{} ({})", t.info_hash, t.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    fn print_json(&self, bytes: &[u8]) {
        match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(v) => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
            Err(_) => println!("{}", String::from_utf8_lossy(bytes)),
        }
    }
}

fn add(
    api: &Api,
    torrent: &str,
    out_dir: Option<String>,
    paused: bool,
    peers: Vec<String>,
    rules: &PathRulesArgs,
    labels: serde_json::Value,
) -> Result<(), CliError> {
    let mut body = json!({ "paused": paused, "peers": peers, "path_rules": rules_json(rules) });
    body["category"] = labels["category"].clone();
    body["tags"] = labels["tags"].clone();
    if torrent.starts_with("magnet:") {
        body["magnet"] = json!(torrent);
    } else {
        let bytes = std::fs::read(torrent)
            .map_err(|e| exit::bad_torrent(format!("cannot read torrent {torrent}: {e}")))?;
        body["torrent_base64"] = json!(BASE64.encode(&bytes));
    }
    if let Some(d) = out_dir {
        body["out_dir"] = json!(d);
    }
    let answer = api.send_json("POST", "/api/v1/torrents", &body)?;
    if api.json {
        api.print_json(&answer);
    } else {
        #[derive(Deserialize)]
        struct Created {
            info_hash: String,
        }
        let c: Created = serde_json::from_slice(&answer)
            .map_err(|e| exit::other(format!("unexpected answer from the daemon: {e}")))?;
        println!(
            "added {}{}",
            c.info_hash,
            if paused { " (paused)" } else { "" }
        );
    }
    Ok(())
}

fn list(api: &Api) -> Result<(), CliError> {
    let (list, raw) = api.get::<Vec<TorrentSnapshot>>("/api/v1/torrents")?;
    if api.json {
        api.print_json(&raw);
        return Ok(());
    }
    print!("{}", table(&list));
    Ok(())
}

/// The `list` table.
pub fn table(list: &[TorrentSnapshot]) -> String {
    let mut out = format!(
        "{:<8}  {:<32}  {:>9}  {:>6}  {:<17}  {:>11}  {:>11}  {:>5}\n",
        "ID", "NAME", "SIZE", "DONE", "STATE", "DOWN", "UP", "PEERS"
    );
    for t in list {
        out += &format!(
            "{:<8}  {:<32}  {:>9}  {:>5.1}%  {:<17}  {:>11}  {:>11}  {:>5}\n",
            t.info_hash.get(..8).unwrap_or(&t.info_hash),
            clip(&t.name, 32),
            bytes(t.size),
            t.progress * 100.0,
            state(t.state),
            rate(t.rate_down),
            rate(t.rate_up),
            t.peers_connected
        );
    }
    if list.is_empty() {
        out += "(no torrents)\n";
    }
    out
}

fn show(api: &Api, given: &str) -> Result<(), CliError> {
    let ih = api.resolve(given)?;
    let (t, raw) = api.get::<TorrentSnapshot>(&format!("/api/v1/torrents/{ih}"))?;
    if api.json {
        api.print_json(&raw);
    } else {
        print!("{}", details(&t));
    }
    Ok(())
}

/// One tracker in `show`: URL and state, then the scrape's counters (or why there are none).
fn tracker_line(t: &crate::client::control::TrackerStatus) -> String {
    use crate::client::control::TrackerState as S;
    let state = match t.state {
        S::NotContacted => "not contacted".to_string(),
        S::Working => format!("working, {} peers last", t.last_peers),
        S::BackingOff => format!(
            "failing ({})",
            t.last_error.as_deref().unwrap_or("no reason given")
        ),
        S::Unsupported => format!(
            "unsupported ({})",
            t.last_error.as_deref().unwrap_or("no reason given")
        ),
    };
    let scrape = match (&t.scrape, &t.scrape_error) {
        (Some(c), _) => format!(
            "{} seeders, {} leechers, {} completed",
            c.seeders, c.leechers, c.completed
        ),
        (None, Some(e)) => format!("no scrape: {e}"),
        (None, None) => "not scraped".to_string(),
    };
    format!("  [{}] {}: {state}; {scrape}\n", t.tier, t.url)
}

/// One web seed in `show`: URL, state (and why), bytes it gave.
fn web_seed_line(w: &crate::client::control::WebSeedSnapshot) -> String {
    use crate::client::control::WebSeedState as S;
    let why = w.last_error.as_deref().unwrap_or("no reason given");
    let state = match w.state {
        S::Idle => "idle".to_string(),
        S::Downloading => "downloading".to_string(),
        S::BackingOff => match w.retry_in_secs {
            Some(s) => format!("backing off ({why}; next try in {s} s)"),
            None => format!("backing off ({why})"),
        },
        S::Dropped => format!("dropped ({why})"),
        S::Ignored => format!("ignored ({why})"),
    };
    format!("  {}: {state}; {} down\n", w.url, bytes(w.bytes_down))
}

/// The `show` text.
pub fn details(t: &TorrentSnapshot) -> String {
    let mut o = String::new();
    let mut line = |k: &str, v: String| o += &format!("{k:<11} {v}\n");
    line("name:", t.name.clone());
    line("info hash:", t.info_hash.clone());
    let err = t
        .error
        .as_ref()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default();
    line("state:", format!("{}{err}", state(t.state)));
    line(
        "progress:",
        format!(
            "{:.1}% of {} ({} of {} pieces of {})",
            t.progress * 100.0,
            bytes(t.size),
            t.pieces_have,
            t.pieces_total,
            bytes(t.piece_length)
        ),
    );
    line(
        "transfer:",
        format!(
            "down {} at {}, up {} at {}, ratio {:.2}{}",
            bytes(t.bytes_down),
            rate(t.rate_down),
            bytes(t.bytes_up),
            rate(t.rate_up),
            t.ratio,
            t.eta_secs
                .map(|s| format!(", eta {s} s"))
                .unwrap_or_default()
        ),
    );
    line("limits:", limits(&t.limits));
    line("path rules:", path_rules(&t.path_rules));
    line(
        "out dir:",
        match &t.moving_to {
            Some(to) => format!("{} (moving to {to})", t.out_dir),
            None => t.out_dir.clone(),
        },
    );
    line(
        "category:",
        t.category.clone().unwrap_or_else(|| "none".into()),
    );
    line(
        "tags:",
        if t.tags.is_empty() {
            "none".into()
        } else {
            t.tags.join(", ")
        },
    );
    line(
        "peers:",
        format!(
            "{} connected, {} known, {} banned",
            t.peers_connected, t.peers_known, t.peers_banned
        ),
    );
    if !t.files.is_empty() {
        o += "\nFILES\n";
        for f in &t.files {
            let pct = if f.length == 0 {
                100.0
            } else {
                f.done as f64 * 100.0 / f.length as f64
            };
            o += &format!("  {:>9}  {:>5.1}%  {}\n", bytes(f.length), pct, f.path);
        }
    }
    if !t.trackers.is_empty() {
        o += "\nTRACKERS\n";
        for tr in &t.trackers {
            o += &tracker_line(tr);
        }
    }
    if !t.web_seeds.is_empty() {
        o += "\nWEB SEEDS\n";
        for w in &t.web_seeds {
            o += &web_seed_line(w);
        }
    }
    if !t.peers.is_empty() {
        o += &format!(
            "\n  {:<40}  {:<5}  {:<8}  {:<16}  {:>5}  {:>9}  {:>9}\n",
            "PEER", "VIA", "SOURCE", "CLIENT", "LANES", "DOWN", "UP"
        );
        for p in &t.peers {
            o += &format!(
                "  {:<40}  {:<5}  {:<8}  {:<16}  {:>5}  {:>9}  {:>9}\n",
                clip(&p.addr, 40),
                transport(&p.transport),
                serde_json::to_value(p.source)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                clip(p.client.as_deref().unwrap_or("-"), 16),
                p.lanes,
                bytes(p.bytes_down),
                bytes(p.bytes_up)
            );
        }
    }
    if !t.lanes.is_empty() {
        o += &format!(
            "\n  {:<28}  {:<24}  {:>9}  {:>11}  {:>20}  {:<6}\n",
            "LANE PEER", "PATH", "DOWN", "RATE", "LATENCY p50/p90/p99", "STATE"
        );
        // A lane is named by the hop that tells its path apart (`via 1-ff00:0:120`), as in
        // the single-shot live line; `--json` has the whole path.
        let labels: Vec<&str> = t.lanes.iter().map(|l| l.label.as_str()).collect();
        let names = super::live::short_names(&labels);
        for (l, name) in t.lanes.iter().zip(&names) {
            let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
            o += &format!(
                "  {:<28}  {:<24}  {:>9}  {:>11}  {:>17} ms  {:<6}\n",
                clip(&l.peer, 28),
                clip(name, 24),
                bytes(l.bytes_down),
                rate(l.rate_down),
                format!(
                    "{}/{}/{}",
                    ms(l.latency_ms_p50),
                    ms(l.latency_ms_p90),
                    ms(l.latency_ms_p99)
                ),
                if l.open { "open" } else { "closed" }
            );
        }
    }
    o
}

fn rules_json(r: &PathRulesArgs) -> serde_json::Value {
    json!({
        "sequence": r.sequence,
        "acl": r.acl,
        "path_policy": r.path_policy,
        "preference": r.preference,
    })
}

fn set_path_rules(api: &Api, given: &str, rules: &PathRulesArgs) -> Result<(), CliError> {
    let ih = api.resolve(given)?;
    api.send_json(
        "PUT",
        &format!("/api/v1/torrents/{ih}/path_rules"),
        &rules_json(rules),
    )?;
    done(api, &ih, "path rules set for")
}

/// A torrent's rules on one line ("none" without any).
fn path_rules(r: &PathRules) -> String {
    let parts: Vec<String> = [
        ("sequence", &r.sequence),
        ("acl", &r.acl),
        ("path-policy", &r.path_policy),
        ("preference", &r.preference),
    ]
    .into_iter()
    .filter_map(|(name, v)| v.as_ref().map(|v| format!("{name} \"{v}\"")))
    .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn simple(api: &Api, given: &str, action: &str) -> Result<(), CliError> {
    let ih = api.resolve(given)?;
    api.call("POST", &format!("/api/v1/torrents/{ih}/{action}"), None)?;
    done(api, &ih, &format!("{action}d"))
}

/// `start`: resume, or with --force set its force-start flag (which also resumes it).
fn start(api: &Api, given: &str, force: Option<bool>) -> Result<(), CliError> {
    let ih = api.resolve(given)?;
    match force {
        None => {
            api.call("POST", &format!("/api/v1/torrents/{ih}/resume"), None)?;
            done(api, &ih, "started")
        }
        Some(force) => {
            let path = format!("/api/v1/torrents/{ih}/force_start");
            api.send_json("PUT", &path, &json!({ "force": force }))?;
            done(
                api,
                &ih,
                if force {
                    "force-started"
                } else {
                    "no longer forced"
                },
            )
        }
    }
}

/// `queue`: moves a torrent in the queue.
fn queue(api: &Api, given: &str, to: &str) -> Result<(), CliError> {
    let ih = api.resolve(given)?;
    let path = format!("/api/v1/torrents/{ih}/queue");
    api.send_json("POST", &path, &json!({ "move": to }))?;
    done(api, &ih, &format!("moved {to} in the queue"))
}

fn recheck(api: &Api, given: &str) -> Result<(), CliError> {
    let ih = api.resolve(given)?;
    api.call("POST", &format!("/api/v1/torrents/{ih}/recheck"), None)?;
    done(api, &ih, "re-checking")
}

/// `category`: list, create or change, delete, or put a torrent in one (see its help).
fn category(
    api: &Api,
    name: Option<String>,
    save_path: Option<String>,
    delete: bool,
    torrent: Option<String>,
) -> Result<(), CliError> {
    let path = |n: &str| format!("/api/v1/categories/{}", url_segment(n));
    match (name, torrent) {
        (name, Some(t)) => {
            let ih = api.resolve(&t)?;
            let body = json!({ "category": name });
            api.send_json("PUT", &format!("/api/v1/torrents/{ih}/category"), &body)?;
            match name {
                Some(n) => done(api, &ih, &format!("category {n:?} set for")),
                None => done(api, &ih, "no category for"),
            }
        }
        (Some(n), None) if delete => {
            api.call("DELETE", &path(&n), None)?;
            println!("category {n:?} deleted");
            Ok(())
        }
        (Some(n), None) => {
            let save_path = save_path.unwrap_or_default();
            api.send_json("PUT", &path(&n), &json!({ "save_path": save_path }))?;
            println!("category {n:?} saves to {save_path:?}");
            Ok(())
        }
        (None, None) => {
            let (list, raw) =
                api.get::<std::collections::BTreeMap<String, Category>>("/api/v1/categories")?;
            if api.json {
                api.print_json(&raw);
            } else if list.is_empty() {
                println!("(no categories)");
            } else {
                for (n, c) in list {
                    println!(
                        "{n}\t{}",
                        if c.save_path.is_empty() {
                            "."
                        } else {
                            &c.save_path
                        }
                    );
                }
            }
            Ok(())
        }
    }
}

/// `move`: the data is moved when it answers, or being copied (then `show` says where to).
fn move_data(api: &Api, given: &str, out_dir: &str) -> Result<(), CliError> {
    let ih = api.resolve(given)?;
    api.send_json(
        "POST",
        &format!("/api/v1/torrents/{ih}/move"),
        &json!({ "out_dir": out_dir }),
    )?;
    let (t, _) = api.get::<TorrentSnapshot>(&format!("/api/v1/torrents/{ih}"))?;
    match t.moving_to {
        Some(to) => done(api, &ih, &format!("copying to {to}:")),
        None => done(api, &ih, &format!("moved to {}:", t.out_dir)),
    }
}

/// `tag`: adds tags to a torrent, removes them, or replaces them all.
fn tag(api: &Api, given: &str, tags: Vec<String>, remove: bool, set: bool) -> Result<(), CliError> {
    let ih = api.resolve(given)?;
    let key = match (remove, set) {
        (true, _) => "remove",
        (_, true) => "tags",
        _ => "add",
    };
    api.send_json(
        "PUT",
        &format!("/api/v1/torrents/{ih}/tags"),
        &json!({ key: tags }),
    )?;
    let (t, _) = api.get::<TorrentSnapshot>(&format!("/api/v1/torrents/{ih}"))?;
    done(api, &ih, &format!("tags [{}] for", t.tags.join(", ")))
}

/// A category name as one URL path segment (it may hold '/', spaces, anything).
fn url_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn remove(api: &Api, given: &str, delete_data: bool) -> Result<(), CliError> {
    let ih = api.resolve(given)?;
    api.call(
        "DELETE",
        &format!("/api/v1/torrents/{ih}?delete_data={delete_data}"),
        None,
    )?;
    done(
        api,
        &ih,
        if delete_data {
            "removed (data deleted)"
        } else {
            "removed (data kept)"
        },
    )
}

fn done(api: &Api, ih: &str, what: &str) -> Result<(), CliError> {
    if api.json {
        println!("{}", json!({ "info_hash": ih, "done": what }));
    } else {
        println!("{what} {ih}");
    }
    Ok(())
}

fn add_peer(api: &Api, given: &str, peers: Vec<String>) -> Result<(), CliError> {
    let ih = api.resolve(given)?;
    let answer = api.send_json(
        "POST",
        &format!("/api/v1/torrents/{ih}/peers"),
        &json!({ "peers": peers }),
    )?;
    if api.json {
        api.print_json(&answer);
    } else {
        #[derive(Deserialize)]
        struct Added {
            added: usize,
        }
        let a: Added = serde_json::from_slice(&answer)
            .map_err(|e| exit::other(format!("unexpected answer from the daemon: {e}")))?;
        println!("{} new peer(s) for {ih}", a.added);
    }
    Ok(())
}

/// `settings`: sets the encryption policy if one is given, then prints the settings (one
/// `name: value` line each, values as JSON).
fn settings(
    api: &Api,
    encryption: Option<bt_mse::Policy>,
    queue: &super::args::QueueArgs,
) -> Result<(), CliError> {
    if let Some(p) = encryption {
        api.send_json(
            "PUT",
            "/api/v1/settings",
            &serde_json::json!({ "encryption": p }),
        )?;
    }
    let mut q = serde_json::Map::new();
    if let Some(on) = queue.queueing {
        q.insert("enabled".into(), json!(on));
    }
    for (key, v) in [
        ("max_active_downloads", queue.max_active_downloads),
        ("max_active_seeds", queue.max_active_seeds),
        ("stalled_after_secs", queue.stalled_after_secs),
    ] {
        if let Some(super::args::Slots(v)) = v {
            q.insert(key.into(), json!(v));
        }
    }
    if !q.is_empty() {
        api.send_json("PUT", "/api/v1/settings", &json!({ "queue": q }))?;
    }
    let (v, bytes): (serde_json::Value, _) = api.get("/api/v1/settings")?;
    if api.json {
        api.print_json(&bytes);
        return Ok(());
    }
    for (name, value) in v.as_object().into_iter().flatten() {
        match value.as_str() {
            Some(s) => println!("{name}: {s}"),
            None => println!("{name}: {value}"),
        }
    }
    print_port_mapping(api)
}

/// The port mappings (daemon `--port-mapping`), one line each, from the snapshot.
fn print_port_mapping(api: &Api) -> Result<(), CliError> {
    let (snap, _): (serde_json::Value, _) = api.get("/api/v1/snapshot")?;
    let list: Vec<crate::discovery::portmap::MappingStatus> =
        serde_json::from_value(snap["port_mapping"].clone()).unwrap_or_default();
    if list.is_empty() {
        println!("port_mapping: none");
    }
    for line in super::portmap::lines(&list) {
        println!("port_mapping: {line}");
    }
    Ok(())
}

/// `files`: one line per file (index, priority, size, progress, path).
fn files(api: &Api, given: &str) -> Result<(), CliError> {
    let ih = api.resolve(given)?;
    let (list, bytes): (Vec<serde_json::Value>, _) =
        api.get(&format!("/api/v1/torrents/{ih}/files"))?;
    if api.json {
        api.print_json(&bytes);
        return Ok(());
    }
    print!("{}", files_table(&list));
    Ok(())
}

/// The table `files` prints.
pub fn files_table(list: &[serde_json::Value]) -> String {
    let mut out = format!(
        "{:>5}  {:<8} {:>10} {:>7}  PATH\n",
        "INDEX", "PRIORITY", "SIZE", "DONE"
    );
    for f in list {
        out.push_str(&format!(
            "{:>5}  {:<8} {:>10} {:>6.1}%  {}\n",
            f["index"].as_u64().unwrap_or(0),
            f["priority"].as_str().unwrap_or("?"),
            bytes(f["length"].as_u64().unwrap_or(0)),
            f["progress"].as_f64().unwrap_or(0.0) * 100.0,
            f["path"].as_str().unwrap_or(""),
        ));
    }
    out
}

/// `prio`: sets the given files' priority, then sequential / first-last-piece if given.
fn prio(
    api: &Api,
    given: &str,
    indexes: &[usize],
    level: &crate::cli::args::PrioLevel,
    (sequential, first_last_piece): (Option<bool>, Option<bool>),
) -> Result<(), CliError> {
    let name = match (level.skip, level.low, level.normal, level.high) {
        (true, ..) => Some("skip"),
        (_, true, ..) => Some("low"),
        (_, _, true, _) => Some("normal"),
        (.., true) => Some("high"),
        _ => None,
    };
    let options = sequential.is_some() || first_last_piece.is_some();
    match (name, indexes.is_empty()) {
        (Some(_), true) => return Err(exit::usage("name the files (their indexes) to set")),
        (None, false) => {
            return Err(exit::usage(
                "give the priority: --skip, --low, --normal or --high",
            ))
        }
        (None, true) if !options => {
            return Err(exit::usage(
                "nothing to set: file indexes with --skip/--low/--normal/--high, \
                 --sequential or --first-last-piece",
            ))
        }
        _ => {}
    }
    let ih = api.resolve(given)?;
    if let Some(name) = name {
        let priorities: serde_json::Map<String, serde_json::Value> = indexes
            .iter()
            .map(|i| (i.to_string(), json!(name)))
            .collect();
        api.send_json(
            "PUT",
            &format!("/api/v1/torrents/{ih}/files"),
            &json!({ "priorities": priorities }),
        )?;
    }
    if options {
        let mut body = serde_json::Map::new();
        if let Some(on) = sequential {
            body.insert("sequential".into(), json!(on));
        }
        if let Some(on) = first_last_piece {
            body.insert("first_last_piece".into(), json!(on));
        }
        api.send_json(
            "PUT",
            &format!("/api/v1/torrents/{ih}/options"),
            &serde_json::Value::Object(body),
        )?;
    }
    done(api, &ih, "set")
}

fn state(s: TorrentState) -> &'static str {
    match s {
        TorrentState::FetchingMetadata => "fetching metadata",
        TorrentState::Checking => "checking",
        TorrentState::Downloading => "downloading",
        TorrentState::Seeding => "seeding",
        TorrentState::Paused => "paused",
        TorrentState::Error => "error",
        TorrentState::QueuedDownload => "queued (download)",
        TorrentState::QueuedSeed => "queued (seed)",
    }
}

fn transport(t: &Transport) -> &'static str {
    match t {
        Transport::Scion => "scion",
        Transport::Tcp => "tcp",
    }
}

fn limits(l: &Limits) -> String {
    let one = |v: Option<u64>| v.map_or("unlimited".to_string(), |b| rate(b as f64));
    format!("down {}, up {}", one(l.download_bps), one(l.upload_bps))
}

/// 1536 → "1.5 KiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn rate(bps: f64) -> String {
    format!("{}/s", bytes(bps.max(0.0) as u64))
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(width.saturating_sub(1)).collect();
        c.push('…');
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }
}
