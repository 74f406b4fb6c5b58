//! The daemon's HTTP API over real HTTP, against a test double of the client loop: status
//! codes, error bodies, access control, path confinement, SSE framing, metrics text.

mod api_support;

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use api_support::{make_torrent, Fake};
use btscion::api::{self, ApiConfig, ApiError};
use btscion::client::control;
use data_encoding::BASE64;
use serde_json::{json, Value};

struct Resp {
    status: u16,
    content_type: String,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn kind(&self) -> String {
        self.json()["kind"].as_str().unwrap_or("").to_string()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Resp {
    let mut b = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut r = agent().run(b.body(body).unwrap()).expect("HTTP answer");
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    Resp {
        status: r.status().as_u16(),
        content_type,
        body: r.body_mut().read_to_string().unwrap(),
    }
}

fn get(f: &Fake, path: &str) -> Resp {
    send("GET", &format!("{}{path}", f.base), &[], vec![])
}

fn post_json(f: &Fake, path: &str, body: Value) -> Resp {
    send(
        "POST",
        &format!("{}{path}", f.base),
        &[("content-type", "application/json")],
        body.to_string().into_bytes(),
    )
}

fn add_b64(f: &Fake, torrent: &[u8], extra: Value) -> Resp {
    let mut body = json!({ "torrent_base64": BASE64.encode(torrent) });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    post_json(f, "/api/v1/torrents", body)
}

#[test]
fn a_torrent_through_its_life() {
    let f = Fake::start(None);
    let t = make_torrent(f.dir.path(), "a.bin", 1);
    let r = add_b64(
        &f,
        &t,
        json!({ "out_dir": "movies", "paused": true, "peers": ["127.0.0.1:6881"],
                "limits": { "download_bps": 1000, "upload_bps": null } }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let ih = r.json()["info_hash"].as_str().unwrap().to_string();
    assert_eq!(ih.len(), 40);
    assert_eq!(f.seen().out_dirs, vec![f.root.join("movies")]);

    let list = get(&f, "/api/v1/torrents").json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["info_hash"], ih.as_str());
    assert_eq!(list[0]["state"], "paused");
    assert_eq!(list[0]["limits"]["download_bps"], 1000);

    // Upper-case info hashes are the same torrent.
    let one = get(&f, &format!("/api/v1/torrents/{}", ih.to_uppercase()));
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["name"], "a.bin");

    let r = post_json(&f, &format!("/api/v1/torrents/{ih}/resume"), json!({}));
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    assert_eq!(
        get(&f, &format!("/api/v1/torrents/{ih}")).json()["state"],
        "downloading"
    );
    let r = post_json(&f, &format!("/api/v1/torrents/{ih}/pause"), json!({}));
    assert_eq!(r.status, 204);
    assert_eq!(
        get(&f, &format!("/api/v1/torrents/{ih}")).json()["state"],
        "paused"
    );

    let peers = json!({ "peers": ["127.0.0.1:6881", "1-ff00:0:112,[127.0.0.1]:40001"] });
    let r = post_json(&f, &format!("/api/v1/torrents/{ih}/peers"), peers);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({ "added": 1 }));

    let r = send(
        "PUT",
        &format!("{}/api/v1/torrents/{ih}/limits", f.base),
        &[("content-type", "application/json")],
        br#"{"download_bps": null, "upload_bps": 5000}"#.to_vec(),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let one = get(&f, &format!("/api/v1/torrents/{ih}")).json();
    assert_eq!(
        one["limits"],
        json!({ "download_bps": null, "upload_bps": 5000 })
    );

    let r = send(
        "DELETE",
        &format!("{}/api/v1/torrents/{ih}?delete_data=true", f.base),
        &[],
        vec![],
    );
    assert_eq!(r.status, 204);
    assert_eq!(f.seen().removed, vec![(ih.clone(), true)]);
    let r = get(&f, &format!("/api/v1/torrents/{ih}"));
    assert_eq!((r.status, r.kind()), (404, "unknown_torrent".into()));
    let r = post_json(&f, &format!("/api/v1/torrents/{ih}/pause"), json!({}));
    assert_eq!((r.status, r.kind()), (404, "unknown_torrent".into()));
}

#[test]
fn every_way_to_add_a_torrent() {
    let f = Fake::start(None);
    let a = make_torrent(f.dir.path(), "a.bin", 1);
    let b = make_torrent(f.dir.path(), "b.bin", 2);
    let c = make_torrent(f.dir.path(), "c.bin", 3);

    // Raw bytes, options in the query.
    let r = send(
        "POST",
        &format!(
            "{}/api/v1/torrents?out_dir=raw&paused=true&peer=127.0.0.1:7000&peer=127.0.0.1:7001",
            f.base
        ),
        &[("content-type", "application/x-bittorrent")],
        a.clone(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let list = get(&f, "/api/v1/torrents").json();
    assert_eq!(list[0]["state"], "paused");
    assert_eq!(f.seen().peers, vec!["127.0.0.1:7000", "127.0.0.1:7001"]);

    // A browser's form upload.
    let boundary = "XyZboundary";
    let mut form = Vec::new();
    form.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"out_dir\"\r\n\r\nform\r\n")
            .as_bytes(),
    );
    form.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"torrent\"; filename=\"b.torrent\"\r\nContent-Type: application/x-bittorrent\r\n\r\n"
        )
        .as_bytes(),
    );
    form.extend_from_slice(&b);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let r = send(
        "POST",
        &format!("{}/api/v1/torrents", f.base),
        &[("content-type", &ct)],
        form,
    );
    assert_eq!(r.status, 201, "{}", r.body);

    // A .torrent file inside the download root.
    std::fs::write(f.root.join("c.torrent"), &c).unwrap();
    let r = post_json(
        &f,
        "/api/v1/torrents",
        json!({ "torrent_path": "c.torrent" }),
    );
    assert_eq!(r.status, 201, "{}", r.body);

    assert_eq!(
        f.seen().out_dirs,
        vec![f.root.join("raw"), f.root.join("form"), f.root.clone()]
    );
    assert_eq!(
        get(&f, "/api/v1/torrents").json().as_array().unwrap().len(),
        3
    );

    // What is refused, and how.
    let r = add_b64(&f, &a, json!({}));
    assert_eq!((r.status, r.kind()), (409, "duplicate".into()));
    let r = add_b64(&f, b"d4:spam", json!({}));
    assert_eq!((r.status, r.kind()), (422, "bad_torrent".into()));
    let r = post_json(&f, "/api/v1/torrents", json!({ "paused": true }));
    assert_eq!((r.status, r.kind()), (400, "bad_request".into()));
    let r = post_json(
        &f,
        "/api/v1/torrents",
        json!({ "magnet": "magnet:?xt=urn:btih:00", "torrent_path": "c.torrent" }),
    );
    assert_eq!((r.status, r.kind()), (400, "bad_request".into()));
    let r = add_b64(&f, &a, json!({ "peers": ["not an address"] }));
    assert_eq!((r.status, r.kind()), (400, "bad_request".into()));
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("not an address"));
    let r = post_json(&f, "/api/v1/torrents", json!({ "torrent_base64": "!!!" }));
    assert_eq!((r.status, r.kind()), (400, "bad_request".into()));
    let r = post_json(&f, "/api/v1/torrents", json!({ "unknown_field": 1 }));
    assert_eq!((r.status, r.kind()), (400, "bad_request".into()));
    let r = send(
        "POST",
        &format!("{}/api/v1/torrents", f.base),
        &[("content-type", "application/json")],
        b"{not json".to_vec(),
    );
    assert_eq!((r.status, r.kind()), (400, "bad_request".into()));
    let r = send(
        "POST",
        &format!("{}/api/v1/torrents", f.base),
        &[("content-type", "text/plain")],
        b"x".to_vec(),
    );
    assert_eq!(r.status, 415);
    let r = post_json(&f, "/api/v1/torrents", json!({ "magnet": "http://x" }));
    assert_eq!((r.status, r.kind()), (400, "bad_request".into()));
}

#[test]
fn caller_paths_never_leave_the_download_root() {
    let f = Fake::start(None);
    let t = make_torrent(f.dir.path(), "a.bin", 1);
    let outside = f.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, f.root.join("escape")).unwrap();
    std::fs::write(outside.join("x.torrent"), &t).unwrap();

    for out_dir in [
        "..",
        "../outside",
        "a/../../outside",
        "/etc",
        outside.to_str().unwrap(),
        "escape",
        "escape/deeper",
    ] {
        let r = add_b64(&f, &t, json!({ "out_dir": out_dir }));
        assert_eq!(
            (r.status, r.kind()),
            (400, "bad_request".into()),
            "{out_dir}"
        );
    }
    for path in [
        "/etc/passwd",
        "../outside/x.torrent",
        "escape/x.torrent",
        outside.join("x.torrent").to_str().unwrap(),
    ] {
        let r = post_json(&f, "/api/v1/torrents", json!({ "torrent_path": path }));
        assert_eq!((r.status, r.kind()), (400, "bad_request".into()), "{path}");
    }
    let r = send(
        "POST",
        &format!("{}/api/v1/torrents?out_dir=../x", f.base),
        &[("content-type", "application/x-bittorrent")],
        t.clone(),
    );
    assert_eq!(r.status, 400);
    assert!(f.seen().out_dirs.is_empty(), "nothing reached the client");

    // An absolute path inside the root is fine.
    let inside = f.root.join("ok");
    let r = add_b64(&f, &t, json!({ "out_dir": inside.to_str().unwrap() }));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(f.seen().out_dirs, vec![inside]);
}

#[test]
fn a_token_guards_every_api_call() {
    let f = Fake::start(Some("s3cret"));
    for path in [
        "/api/v1/torrents",
        "/api/v1/snapshot",
        "/metrics",
        "/api/v1/events",
    ] {
        let r = get(&f, path);
        assert_eq!((r.status, r.kind()), (401, "unauthorized".into()), "{path}");
    }
    let url = format!("{}/api/v1/torrents", f.base);
    let r = send("GET", &url, &[("authorization", "Bearer wrong")], vec![]);
    assert_eq!(r.status, 401);
    let r = send("GET", &url, &[("authorization", "Bearer s3cret")], vec![]);
    assert_eq!(r.status, 200);
    let r = get(&f, "/api/v1/torrents?token=s3cret");
    assert_eq!(r.status, 200);
    let r = get(&f, "/api/v1/torrents?token=s3cre");
    assert_eq!(r.status, 401);
    let r = send(
        "POST",
        &url,
        &[("content-type", "application/json")],
        b"{}".to_vec(),
    );
    assert_eq!(
        r.status, 401,
        "mutating calls are checked before anything else"
    );
    // The UI's static files are public (they hold no data).
    let r = get(&f, "/");
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/html"));
}

#[test]
fn non_loopback_without_a_token_is_refused() {
    let (handle, _side) = control::channel();
    let d = tempfile::tempdir().unwrap();
    let mut cfg = ApiConfig::new(
        "0.0.0.0:0".parse().unwrap(),
        d.path().join("dl"),
        d.path().to_path_buf(),
    );
    assert!(matches!(
        api::router(&cfg, handle.clone()),
        Err(ApiError::InsecureListen(_))
    ));
    cfg.token = Some(String::new());
    assert!(matches!(
        api::router(&cfg, handle.clone()),
        Err(ApiError::EmptyToken)
    ));
    cfg.token = Some("t".into());
    assert!(api::router(&cfg, handle).is_ok());
}

#[test]
fn cross_site_posts_are_refused() {
    let f = Fake::start(None);
    let t = make_torrent(f.dir.path(), "a.bin", 1);
    let url = format!("{}/api/v1/torrents", f.base);
    let host = f.base.trim_start_matches("http://").to_string();
    let r = send(
        "POST",
        &url,
        &[
            ("content-type", "application/x-bittorrent"),
            ("origin", "http://evil.example"),
        ],
        t.clone(),
    );
    assert_eq!((r.status, r.kind()), (403, "forbidden".into()));
    let same = format!("http://{host}");
    let r = send(
        "POST",
        &url,
        &[
            ("content-type", "application/x-bittorrent"),
            ("origin", &same),
        ],
        t,
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn settings_read_and_change() {
    let f = Fake::start(None);
    let s = get(&f, "/api/v1/settings").json();
    assert_eq!(s["download_root"], f.root.to_str().unwrap());
    assert_eq!(s["local_scion"], "1-ff00:0:111,[127.0.0.1]:40000");
    assert_eq!(
        s["limits"],
        json!({ "download_bps": null, "upload_bps": null })
    );
    let r = send(
        "PUT",
        &format!("{}/api/v1/settings", f.base),
        &[("content-type", "application/json")],
        json!({ "limits": { "download_bps": 100, "upload_bps": 200 },
                "seed_policy": { "stop_at_ratio": 2.0, "stop_after_secs": null },
                "encryption": "required" })
        .to_string()
        .into_bytes(),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let s = get(&f, "/api/v1/settings").json();
    assert_eq!(
        s["limits"],
        json!({ "download_bps": 100, "upload_bps": 200 })
    );
    assert_eq!(s["seed_policy"]["stop_at_ratio"], 2.0);
    assert_eq!(s["encryption"], "required");
    let r = send(
        "PUT",
        &format!("{}/api/v1/settings", f.base),
        &[("content-type", "application/json")],
        br#"{"download_root": "/"}"#.to_vec(),
    );
    assert_eq!(
        (r.status, r.kind()),
        (400, "bad_request".into()),
        "read-only"
    );
    // A misspelt field or an array where an object belongs is refused, not silently taken
    // (the limit would not be what the caller believes).
    for body in [
        json!({ "seed_policy": { "stop_at_ratio": 1.0, "stop_after_sec": 60 } }),
        json!({ "limits": { "download_bps": 1, "upload": 1 } }),
        // An array is not an object, though serde's derived structs take one by position.
        json!({ "limits": [1, 2] }),
        json!([{ "download_bps": 1, "upload_bps": 1 }, null]),
        json!({ "encryption": "forced" }),
    ] {
        let r = send(
            "PUT",
            &format!("{}/api/v1/settings", f.base),
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        );
        assert_eq!((r.status, r.kind()), (400, "bad_request".into()), "{body}");
    }
    assert_eq!(
        get(&f, "/api/v1/settings").json()["seed_policy"]["stop_at_ratio"],
        2.0,
        "unchanged by the refused calls"
    );
    assert_eq!(get(&f, "/api/v1/settings").json()["encryption"], "required");
}

#[test]
fn snapshot_paths_and_errors_are_json() {
    let f = Fake::start(None);
    let s = get(&f, "/api/v1/snapshot");
    assert_eq!(s.status, 200);
    assert!(s.content_type.starts_with("application/json"));
    assert_eq!(s.json()["tcp_listen"], "127.0.0.1:40000");
    assert_eq!(get(&f, "/api/v1/paths").json(), json!([]));
    let r = get(&f, "/api/v1/nope");
    assert_eq!((r.status, r.kind()), (404, "not_found".into()));
    let r = get(&f, "/api/v1/torrents/xyz");
    assert_eq!((r.status, r.kind()), (400, "bad_request".into()));
    let r = get(&f, "/ui/missing.js");
    assert_eq!(r.status, 404);
    let r = get(&f, "/api/v1/openapi.yaml");
    assert_eq!(r.status, 200);
    assert!(
        r.body.starts_with("openapi: 3"),
        "{}",
        &r.body[..40.min(r.body.len())]
    );
    for route in [
        "/api/v1/torrents/{info_hash}/pause",
        "/api/v1/events",
        "/metrics",
        "/api/v1/settings",
        "/api/v1/torrents/{info_hash}/path_rules",
    ] {
        assert!(
            r.body.contains(&format!("  {route}:")),
            "openapi lacks {route}"
        );
    }
}

fn put_json(f: &Fake, path: &str, body: Value) -> Resp {
    send(
        "PUT",
        &format!("{}{path}", f.base),
        &[("content-type", "application/json")],
        body.to_string().into_bytes(),
    )
}

/// A torrent's path rules: given on add, replaced later, shown in its snapshot; rules that
/// do not parse are refused with the rule and the problem named, and reach no torrent.
#[test]
fn path_rules_on_add_and_while_running() {
    let f = Fake::start(None);
    let bad = add_b64(
        &f,
        &make_torrent(f.dir.path(), "pr-bad.bin", 2),
        json!({ "path_rules": { "sequence": "1-ff00:0:120#" } }),
    );
    assert_eq!((bad.status, bad.kind().as_str()), (400, "bad_request"));
    assert!(bad.body.contains("sequence: "), "{}", bad.body);
    assert!(get(&f, "/api/v1/torrents")
        .json()
        .as_array()
        .unwrap()
        .is_empty());

    let rules = json!({ "sequence": "0 1-ff00:0:120 0", "preference": "hops" });
    let r = add_b64(
        &f,
        &make_torrent(f.dir.path(), "pr.bin", 3),
        json!({ "path_rules": rules }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let ih = r.json()["info_hash"].as_str().unwrap().to_string();
    let shown = &get(&f, "/api/v1/torrents").json()[0]["path_rules"];
    assert_eq!(shown["sequence"], "0 1-ff00:0:120 0");
    assert_eq!(shown["preference"], "hops");
    assert!(shown["acl"].is_null() && shown["path_policy"].is_null());

    let url = format!("/api/v1/torrents/{ih}/path_rules");
    let r = put_json(
        &f,
        &url,
        json!({ "acl": "- 1-ff00:0:130; +", "sequence": " " }),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let shown = &get(&f, "/api/v1/torrents").json()[0]["path_rules"];
    assert_eq!(shown["acl"], "- 1-ff00:0:130; +");
    assert!(shown["sequence"].is_null(), "blank is none: {shown}");
    assert!(
        shown["preference"].is_null(),
        "all four are replaced: {shown}"
    );

    for (body, names) in [
        (json!({ "acl": "+ 1" }), "acl: "),
        (json!({ "preference": "speed" }), "preference: "),
        (json!({ "path_policy": "colour=blue" }), "path_policy: "),
        (json!({ "sequnce": "0*" }), "unknown field"),
        (json!(["0*"]), "object"),
    ] {
        let r = put_json(&f, &url, body.clone());
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.contains(names), "{body}: {}", r.body);
    }
    assert_eq!(
        get(&f, "/api/v1/torrents").json()[0]["path_rules"]["acl"],
        "- 1-ff00:0:130; +",
        "refused rules change nothing"
    );
    let other = format!("/api/v1/torrents/{}/path_rules", "ab".repeat(20));
    assert_eq!(put_json(&f, &other, json!({})).status, 404);
}

/// Reads the event stream on a thread: one message per line.
fn stream_lines(url: String) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let resp = agent.get(&url).call().expect("event stream");
        let ct = resp
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap();
        let _ = tx.send(format!("content-type: {ct}"));
        let reader = BufReader::new(resp.into_body().into_reader());
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The next `data:` of a `snapshot` event.
fn next_snapshot(rx: &mpsc::Receiver<String>) -> Value {
    let mut event = None;
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("an event in time");
        if let Some(e) = line.strip_prefix("event: ") {
            event = Some(e.to_string());
        } else if let Some(d) = line.strip_prefix("data: ") {
            assert_eq!(event.as_deref(), Some("snapshot"));
            return serde_json::from_str(d).unwrap();
        }
    }
}

#[test]
fn event_stream_sends_snapshots_and_keep_alives() {
    let f = Fake::start_with(None, Duration::from_millis(300));
    let rx = stream_lines(format!("{}/api/v1/events", f.base));
    let ct = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(ct, "content-type: text/event-stream");
    let first = next_snapshot(&rx);
    assert_eq!(first["torrents"], json!([]));

    let t = make_torrent(f.dir.path(), "a.bin", 1);
    assert_eq!(add_b64(&f, &t, json!({})).status, 201);
    let second = next_snapshot(&rx);
    assert_eq!(second["torrents"][0]["name"], "a.bin");

    // Nothing changes now: keep-alive comments arrive.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let line = rx.recv_timeout(Duration::from_secs(5)).expect("keep-alive");
        if line.starts_with(':') {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no keep-alive");
    }
}

#[test]
fn event_stream_is_rate_limited() {
    let f = Fake::start(None);
    let rx = stream_lines(format!("{}/api/v1/events", f.base));
    next_snapshot(&rx);
    // Ten changes in a burst come out as at most a few events.
    for i in 0..10u8 {
        let t = make_torrent(f.dir.path(), &format!("t{i}.bin"), i);
        assert_eq!(add_b64(&f, &t, json!({})).status, 201);
    }
    let start = std::time::Instant::now();
    let mut last = next_snapshot(&rx);
    let mut events = 1;
    while last["torrents"].as_array().unwrap().len() < 10 {
        last = next_snapshot(&rx);
        events += 1;
    }
    assert!(events <= 4, "{events} events for one burst");
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn metrics_in_prometheus_text() {
    let f = Fake::start(None);
    let t = make_torrent(f.dir.path(), "a.bin", 1);
    let ih = add_b64(&f, &t, json!({})).json()["info_hash"]
        .as_str()
        .unwrap()
        .to_string();
    let r = get(&f, "/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        r.content_type
    );
    let m = r.body;
    for want in [
        "# TYPE bts_torrent_downloaded_bytes_total counter".to_string(),
        format!("bts_torrent_downloaded_bytes_total{{info_hash=\"{ih}\"}} 16384"),
        format!("bts_torrent_info{{info_hash=\"{ih}\",name=\"a.bin\"}} 1"),
        format!("bts_torrent_state{{info_hash=\"{ih}\",state=\"downloading\"}} 1"),
        format!("bts_torrent_state{{info_hash=\"{ih}\",state=\"paused\"}} 0"),
        format!("bts_torrent_progress_ratio{{info_hash=\"{ih}\"}} 0.25"),
        format!("bts_torrent_peers{{info_hash=\"{ih}\",kind=\"connected\"}} 1"),
        "# TYPE bts_lane_downloaded_bytes_total counter".to_string(),
        format!(
            "bts_lane_downloaded_bytes_total{{info_hash=\"{ih}\",label=\"via 1-ff00:0:110\",path=\"1-ff00:0:111#1>1-ff00:0:110#2\",peer=\"1-ff00:0:112,[127.0.0.1]:40001\",transport=\"scion\"}} 16384"
        ),
        "quantile=\"0.99\",transport=\"scion\"} 0.009".to_string(),
        "bts_torrents 1".to_string(),
    ] {
        assert!(m.contains(&want), "missing {want:?} in\n{m}");
    }
}

#[test]
fn the_ui_is_served() {
    let f = Fake::start(None);
    let r = get(&f, "/");
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/html"));
    assert_eq!(r.body.as_bytes(), btscion::web_assets::asset("").unwrap().0);
    // No other site may frame it or make it load foreign code.
    let (status, head) = raw_head(&f, "/");
    assert_eq!(status, 200);
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("content-security-policy:") && head.contains("frame-ancestors 'none'"),
        "{head}"
    );
    assert!(head.contains("script-src 'self'"), "{head}");
    assert!(head.contains("x-frame-options: deny"), "{head}");
}

/// Status and header block of a GET.
fn raw_head(f: &Fake, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(f.base.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    let head = out.split("\r\n\r\n").next().unwrap_or("").to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head)
}

/// A raw HTTP/1.1 request (so the `Host` header is exactly ours); returns status and body.
fn raw(f: &Fake, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = f.base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {out:?}"));
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

#[test]
fn dns_rebinding_is_refused_without_a_token() {
    let f = Fake::start(None);
    let port = f.base.rsplit(':').next().unwrap().to_string();
    let evil = format!("evil.example:{port}");
    let evil_origin = format!("http://{evil}");
    // A page whose name was rebound to 127.0.0.1: Host and Origin agree, and both are foreign.
    for (method, path) in [
        ("GET", "/api/v1/settings"),
        (
            "POST",
            "/api/v1/torrents/0000000000000000000000000000000000000000/pause",
        ),
        (
            "DELETE",
            "/api/v1/torrents/0000000000000000000000000000000000000000",
        ),
    ] {
        let (status, body) = raw(
            &f,
            method,
            path,
            &[("Host", &evil), ("Origin", &evil_origin)],
        );
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert!(
            body.contains("forbidden") && body.contains("rebinding"),
            "{body}"
        );
    }
    // The names a local user reaches the daemon by still work.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
    ] {
        let (status, body) = raw(&f, "GET", "/api/v1/settings", &[("Host", &host)]);
        assert_eq!(status, 200, "{host}: {body}");
    }
    // With a token the token is the guard, whatever name the daemon is reached by.
    let t = Fake::start(Some("s3cret"));
    let port = t.base.rsplit(':').next().unwrap().to_string();
    let (status, body) = raw(
        &t,
        "GET",
        "/api/v1/settings",
        &[
            ("Host", &format!("myserver:{port}")),
            ("Authorization", "Bearer s3cret"),
        ],
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_configured_token_with_spaces_around_it_matches() {
    let f = Fake::start(Some("  s3cret \n"));
    let url = format!("{}/api/v1/torrents", f.base);
    let r = send("GET", &url, &[("authorization", "Bearer s3cret")], vec![]);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = send("GET", &url, &[("authorization", "Bearer s3cret2")], vec![]);
    assert_eq!(r.status, 401);
}

#[test]
fn a_malformed_query_gets_a_json_error() {
    let f = Fake::start(None);
    let r = send(
        "DELETE",
        &format!(
            "{}/api/v1/torrents/{}?delete_data=maybe",
            f.base,
            "00".repeat(20)
        ),
        &[],
        vec![],
    );
    assert_eq!(
        (r.status, r.kind()),
        (400, "bad_request".into()),
        "{}",
        r.body
    );
    assert!(r.content_type.starts_with("application/json"));
    assert!(
        r.json()["error"].as_str().unwrap().contains("delete_data"),
        "{}",
        r.body
    );
}

#[test]
fn a_flood_of_peers_in_one_call_is_refused() {
    let f = Fake::start(None);
    let ih = "00".repeat(20);
    let many: Vec<String> = (0..1001)
        .map(|i| format!("10.0.{}.{}:6881", i / 256, i % 256))
        .collect();
    let r = post_json(
        &f,
        &format!("/api/v1/torrents/{ih}/peers"),
        json!({ "peers": many }),
    );
    assert_eq!(
        (r.status, r.kind()),
        (400, "bad_request".into()),
        "{}",
        r.body
    );
    assert!(
        r.json()["error"].as_str().unwrap().contains("at most 1000"),
        "{}",
        r.body
    );
    assert!(f.seen().peers.is_empty(), "nothing reached the client");
}

/// Reads until the server closes the connection; the bytes it sent. Fails the test if it is
/// still open after `limit` (a bound on a hang, not a timing assertion).
fn read_until_closed(s: &mut std::net::TcpStream, limit: Duration) -> Vec<u8> {
    use std::io::Read;
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
}

#[test]
fn half_sent_and_silent_connections_are_closed() {
    use std::io::Write;
    let f = Fake::start_configured(None, |c| c.header_timeout = Duration::from_millis(500));
    let addr = f.base.trim_start_matches("http://").to_string();
    let mut half = std::net::TcpStream::connect(&addr).unwrap();
    half.write_all(b"GET /api/v1/settings HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    let mut silent = std::net::TcpStream::connect(&addr).unwrap();
    for s in [&mut half, &mut silent] {
        let got = read_until_closed(s, Duration::from_secs(20));
        assert!(!String::from_utf8_lossy(&got).contains("200 OK"));
    }
    // A kept-alive connection that goes quiet after a request is closed too.
    let mut kept = std::net::TcpStream::connect(&addr).unwrap();
    kept.write_all(b"GET /api/v1/settings HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let got = read_until_closed(&mut kept, Duration::from_secs(20));
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
}

#[test]
fn connections_past_the_cap_are_closed_and_the_api_keeps_working() {
    use std::io::Write;
    let f = Fake::start_configured(None, |c| c.max_connections = 4);
    let addr = f.base.trim_start_matches("http://").to_string();
    let idle: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200)); // let the server take all four
    let mut extra = std::net::TcpStream::connect(&addr).unwrap();
    let _ = extra.write_all(b"GET /api/v1/settings HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let got = read_until_closed(&mut extra, Duration::from_secs(20));
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    drop(idle);
    // Their slots come back once the server sees them closed; until then a new connection is
    // closed at once (a reset is "not yet", not a failure).
    let status = || -> Option<u16> {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(&addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        s.write_all(
            b"GET /api/v1/settings HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.split(' ').nth(1)?.parse().ok()
    };
    let mut ok = false;
    for _ in 0..100 {
        if status() == Some(200) {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        ok,
        "the API answers again once the idle connections are gone"
    );
}

#[test]
fn an_upload_whose_body_trickles_is_answered_408_and_gives_its_room_back() {
    use std::io::Write;
    let f = Fake::start_configured(None, |c| c.body_timeout = Duration::from_millis(500));
    let addr = f.base.trim_start_matches("http://").to_string();
    // Declares 1,000 bytes, sends ten, then nothing: the deadline is 0.5 s (+0 s for 1,000
    // bytes at the minimum rate).
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.write_all(
        b"POST /api/v1/torrents HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/x-bittorrent\r\nContent-Length: 1000\r\n\r\nd8:announce",
    )
    .unwrap();
    let got = read_until_closed(&mut slow, Duration::from_secs(20));
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"kind\":\"timeout\""), "{text}");
    // An upload that arrives in time is added (nothing of the budget stayed with the slow one).
    let t = make_torrent(f.dir.path(), "t.bin", 9);
    let r = add_b64(&f, &t, json!({}));
    assert_eq!(r.status, 201, "{}", r.body);
}
