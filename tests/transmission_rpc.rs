//! Transmission's RPC (`/transmission/rpc`) end to end: Debian's real `transmission-remote`
//! (3.00, installed by scripts/install-deps.sh) drives a real daemon through a whole cycle —
//! add by file and by magnet into a directory, a real download from our seeder, list, info,
//! files, limits, stop, start, verify, labels, file choice, move, remove with data — and raw
//! HTTP checks the session-id handshake, basic auth onto the token, and bad input.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use btscion::client::control::info_hash_hex;
use common::clients::{free_port, our_tcp_seeder, NO_DAEMON};
use common::daemons::{state, Daemon};
use common::{info_hash_of, random_torrent};
use serde_json::{json, Value};

const TOKEN: &str = "tr-s3cret";

fn start(work: &Path) -> (Daemon, String) {
    let tcp = format!("127.0.0.1:{}", free_port());
    let args = vec![
        format!("--download-root={}", work.join("root").display()),
        format!("--tcp-listen={tcp}"),
    ];
    let envs = [
        ("SCION_DAEMON_ADDRESS", NO_DAEMON.to_string()),
        ("BTS_HTTP_TOKEN", TOKEN.to_string()),
    ];
    (Daemon::start(&work.join("state"), &args, &envs), tcp)
}

/// `transmission-remote HOST:PORT -n user:TOKEN ARGS`: (success, stdout + stderr).
fn remote(d: &Daemon, args: &[&str]) -> (bool, String) {
    let o = Command::new("transmission-remote")
        .arg(&d.api)
        .arg("-n")
        .arg(format!("anyone:{TOKEN}"))
        .args(args)
        .output()
        .expect("transmission-remote (run scripts/install-deps.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

fn remote_ok(d: &Daemon, args: &[&str]) -> String {
    let (ok, out) = remote(d, args);
    assert!(
        ok,
        "transmission-remote {args:?} failed:\n{out}\nlog:\n{}",
        d.log_text()
    );
    out
}

/// Runs `args` until its output satisfies `done` (the daemon publishes state changes a
/// moment after it made them).
fn remote_until(d: &Daemon, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = remote_ok(d, args);
        if done(&out) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "{args:?} never got there:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `-l` line of the torrent named `name`.
fn list_line(out: &str, name: &str) -> Option<String> {
    out.lines()
        .find(|l| l.trim_end().ends_with(name))
        .map(str::to_string)
}

#[test]
fn transmission_remote_drives_a_whole_cycle() {
    let work = tempfile::tempdir().unwrap();
    let (d, tcp) = start(work.path());
    let root = work.path().join("root");

    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let (data, torrent) = random_torrent(&src, 3 << 20, 26, Some(1 << 18));
    let ih = info_hash_hex(&info_hash_of(&torrent));

    // Add by file (transmission-remote sends it as metainfo) into <root>/films.
    let out = remote_ok(&d, &["-a", torrent.to_str().unwrap(), "-w", "films"]);
    assert!(out.contains("responded: \"success\""), "{out}");
    let t = d.torrent(&ih);
    assert_eq!(t["out_dir"], root.join("films").display().to_string());

    // A real download: our seeder dials the daemon's TCP port.
    let (_seeder, _) = our_tcp_seeder(&torrent, &data, Some(&tcp), work.path());
    d.wait_torrent(&ih, Duration::from_secs(120), |t| state(t) == "seeding");
    common::same_tree(&data, &root.join("films").join("data.bin"));

    // List: the id, 100 %, the size (kB of 1000 bytes), done; "Idle" once the seeder's
    // rate has decayed (Transmission's word for seeding with nobody to serve).
    let out = remote_until(&d, &["-l"], |o| {
        list_line(o, "data.bin").is_some_and(|l| l.contains("Idle"))
    });
    let line = list_line(&out, "data.bin").unwrap();
    let id = line
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('*')
        .to_string();
    assert!(id.parse::<u32>().is_ok(), "{line}");
    for want in ["100%", "3.15 MB", "Done"] {
        assert!(line.contains(want), "no {want:?} in {line}");
    }

    // Info and files.
    let info = remote_ok(&d, &["-t", &id, "-i"]);
    for want in [
        "Name: data.bin".to_string(),
        format!("Hash: {ih}"),
        format!("Location: {}", root.join("films").display()),
        "Percent Done: 100%".to_string(),
        "State: Idle".to_string(),
    ] {
        assert!(info.contains(&want), "no {want:?} in:\n{info}");
    }
    let files = remote_ok(&d, &["-t", &id, "-f"]);
    assert!(files.contains("data.bin (1 files)"), "{files}");
    let row = files
        .lines()
        .find(|l| l.trim_start().starts_with("0:"))
        .unwrap();
    assert!(
        row.contains("100%") && row.contains("Normal") && row.contains("Yes"),
        "{row}"
    );

    // The same id by hash.
    let by_hash = remote_ok(&d, &["-t", &ih, "-i"]);
    assert!(by_hash.contains(&format!("Id: {id}")), "{by_hash}");

    // Limits, in kB/s of 1000 bytes.
    remote_ok(&d, &["-t", &id, "-d", "100", "-u", "50"]);
    let t = d.torrent(&ih);
    assert_eq!(
        t["limits"],
        json!({"download_bps": 100_000, "upload_bps": 50_000})
    );
    let info = remote_ok(&d, &["-t", &id, "-i"]);
    assert!(info.contains("Download Limit: 100 kB/s"), "{info}");
    assert!(info.contains("Upload Limit: 50 kB/s"), "{info}");
    remote_ok(&d, &["-t", &id, "-D"]);
    assert_eq!(d.torrent(&ih)["limits"]["download_bps"], Value::Null);

    // Stop and start.
    remote_ok(&d, &["-t", &id, "-S"]);
    assert_eq!(state(&d.torrent(&ih)), "paused");
    remote_until(&d, &["-l"], |o| {
        list_line(o, "data.bin").is_some_and(|l| l.contains("Stopped"))
    });
    remote_ok(&d, &["-t", &id, "-s"]);
    d.wait_torrent(&ih, Duration::from_secs(30), |t| state(t) == "seeding");

    // Verify: the data is hashed again (checking), then it seeds again, every piece there.
    let out = remote_ok(&d, &["-t", &id, "-v"]);
    assert!(out.contains("responded: \"success\""), "{out}");
    let t = d.wait_torrent(&ih, Duration::from_secs(60), |t| {
        state(t) == "seeding" && t["pieces_checked"] == t["pieces_total"]
    });
    assert_eq!(t["pieces_have"], t["pieces_total"]);

    // Labels are our tags.
    remote_ok(&d, &["-t", &id, "-L", "linux,iso"]);
    assert_eq!(d.torrent(&ih)["tags"], json!(["iso", "linux"]));
    let info = remote_ok(&d, &["-t", &id, "-i"]);
    assert!(info.contains("Labels: iso, linux"), "{info}");

    // File choice: not wanted is our skip, wanted again is normal, then high.
    remote_ok(&d, &["-t", &id, "-G", "0"]);
    assert_eq!(d.torrent(&ih)["files"][0]["priority"], "skip");
    let files = remote_ok(&d, &["-t", &id, "-f"]);
    let row = files
        .lines()
        .find(|l| l.trim_start().starts_with("0:"))
        .unwrap();
    assert!(row.contains(" No "), "{row}");
    remote_ok(&d, &["-t", &id, "-g", "0", "-ph", "0"]);
    assert_eq!(d.torrent(&ih)["files"][0]["priority"], "high");
    let files = remote_ok(&d, &["-t", &id, "-f"]);
    let row = files
        .lines()
        .find(|l| l.trim_start().starts_with("0:"))
        .unwrap();
    assert!(row.contains("High") && row.contains("Yes"), "{row}");

    // Move: the data goes to <root>/moved, the torrent seeds from there.
    remote_ok(&d, &["-t", &id, "--move", "moved"]);
    d.wait_torrent(&ih, Duration::from_secs(60), |t| {
        t["out_dir"] == root.join("moved").display().to_string() && t["moving_to"].is_null()
    });
    common::same_tree(&data, &root.join("moved").join("data.bin"));
    assert!(!root.join("films").join("data.bin").exists());
    let (ok, out) = remote(&d, &["-t", &id, "--move", "/etc"]);
    assert!(!ok && out.contains("outside the download root"), "{out}");

    // By magnet, paused, into <root>/mags: listed under the link's name.
    let (_, torrent2) = random_torrent(&work.path().join("src2"), 100_000, 27, None);
    let ih2 = info_hash_hex(&info_hash_of(&torrent2));
    let magnet = format!("magnet:?xt=urn:btih:{ih2}&dn=from-a-link");
    remote_ok(&d, &["-a", &magnet, "-w", "mags", "-S"]);
    let t2 = d.torrent(&ih2);
    assert_eq!(t2["out_dir"], root.join("mags").display().to_string());
    assert_eq!(state(&t2), "paused");
    let out = remote_ok(&d, &["-l"]);
    let line2 = list_line(&out, "from-a-link").unwrap_or_else(|| panic!("{out}"));
    assert!(line2.contains("Stopped"), "{line2}");
    let id2 = line2
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('*');
    assert_ne!(id2, id);

    // A download dir outside the download root: refused, nothing written there.
    let outside = work.path().join("outside");
    let (ok, out) = remote(
        &d,
        &[
            "-a",
            torrent2.to_str().unwrap(),
            "-w",
            outside.to_str().unwrap(),
        ],
    );
    assert!(!ok && out.contains("outside the download root"), "{out}");
    assert!(!outside.exists());

    // Remove with data: gone from the daemon and from disk; the magnet one stays.
    remote_ok(&d, &["-t", &id, "--remove-and-delete"]);
    let (status, _) = d.call("GET", &format!("/api/v1/torrents/{ih}"), None);
    assert_eq!(status, 404);
    assert!(!root.join("moved").join("data.bin").exists());
    let out = remote_ok(&d, &["-l"]);
    assert!(list_line(&out, "data.bin").is_none(), "{out}");
    assert!(list_line(&out, "from-a-link").is_some(), "{out}");
    // Ids stay: the magnet torrent keeps its id.
    let again = remote_ok(&d, &["-t", id2, "-i"]);
    assert!(again.contains("Name: from-a-link"), "{again}");
}

/// A raw RPC call: (status, session-id header, body as JSON or text).
fn post(d: &Daemon, headers: &[(&str, String)], body: &str) -> (u16, Option<String>, Value) {
    let mut b = ureq::http::Request::builder()
        .method("POST")
        .uri(d.url("/transmission/rpc"));
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut r = agent
        .run(b.body(body.as_bytes().to_vec()).unwrap())
        .unwrap();
    let sid = r
        .headers()
        .get("x-transmission-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    let text = r.body_mut().read_to_string().unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (r.status().as_u16(), sid, v)
}

fn basic(password: &str) -> String {
    use data_encoding::BASE64;
    format!(
        "Basic {}",
        BASE64.encode(format!("user:{password}").as_bytes())
    )
}

#[test]
fn handshake_auth_and_bad_input() {
    let work = tempfile::tempdir().unwrap();
    let (d, _) = start(work.path());
    let auth = ("authorization", basic(TOKEN));
    let get = r#"{"method":"session-get","tag":5}"#;

    // No credentials, a wrong password: 401 asking for basic auth.
    let (s, _, _) = post(&d, &[], get);
    assert_eq!(s, 401);
    let (s, _, _) = post(&d, &[("authorization", basic("wrong"))], get);
    assert_eq!(s, 401);
    // Authenticated, no session id: 409 with the id; a wrong one: 409 again.
    let (s, sid, _) = post(&d, std::slice::from_ref(&auth), get);
    assert_eq!(s, 409);
    let sid = sid.expect("a session id on the 409");
    let (s, sid2, _) = post(
        &d,
        &[auth.clone(), ("x-transmission-session-id", "nope".into())],
        get,
    );
    assert_eq!((s, sid2.as_deref()), (409, Some(sid.as_str())));
    // The right one: the session, with our tag.
    let h = [auth.clone(), ("x-transmission-session-id", sid.clone())];
    let (s, _, v) = post(&d, &h, get);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"], "success");
    assert_eq!(v["tag"], 5);
    assert_eq!(v["arguments"]["session-id"], sid.as_str());
    assert_eq!(
        v["arguments"]["download-dir"],
        work.path()
            .join("root")
            .canonicalize()
            .unwrap()
            .display()
            .to_string()
    );
    // The bearer token works too; a page of another site does not.
    let (s, _, _) = post(
        &d,
        &[
            ("authorization", format!("Bearer {TOKEN}")),
            ("x-transmission-session-id", sid.clone()),
        ],
        get,
    );
    assert_eq!(s, 200);
    let mut cross = h.to_vec();
    cross.push(("origin", "http://evil.example".into()));
    let (s, _, _) = post(&d, &cross, get);
    assert_eq!(s, 403);

    // Bad input: Transmission's error answer (HTTP 200, result not "success"), never a crash.
    let outside = work.path().join("elsewhere");
    let cases = [
        ("not json", "not JSON".to_string()),
        (
            r#"{"method":"torrent-frobnicate"}"#,
            "method name not recognized".into(),
        ),
        (r#"{"arguments":{}}"#, "no method name".into()),
        (
            r#"{"method":"torrent-get","arguments":{"fields":"id"}}"#,
            "fields".into(),
        ),
        (
            r#"{"method":"torrent-get","arguments":{"fields":["id","bogus"]}}"#,
            "unknown torrent field \"bogus\"".into(),
        ),
        (
            r#"{"method":"torrent-get","arguments":{"fields":["id"],"color":1}}"#,
            "unknown argument \"color\"".into(),
        ),
        (
            r#"{"method":"torrent-stop","arguments":{"ids":[99]}}"#,
            "no torrent with id 99".into(),
        ),
        (
            r#"{"method":"torrent-set","arguments":{"downloadLimit":"fast"}}"#,
            "downloadLimit must be an integer".into(),
        ),
        (
            r#"{"method":"session-set","arguments":{"speed-limit-down":-1}}"#,
            "must not be negative".into(),
        ),
        (
            r#"{"method":"session-set","arguments":{"alt-speed-enabled":true}}"#,
            "not supported".into(),
        ),
        (
            r#"{"method":"session-set","arguments":{"download-dir":"/tmp"}}"#,
            "outside the download root".into(),
        ),
        (
            r#"{"method":"torrent-add","arguments":{"metainfo":"%%%"}}"#,
            "metainfo is not base64".into(),
        ),
        (
            r#"{"method":"torrent-add","arguments":{"metainfo":"aGVsbG8="}}"#,
            "invalid or corrupt torrent file".into(),
        ),
        (
            &*format!(
                r#"{{"method":"torrent-add","arguments":{{"filename":"magnet:?xt=urn:btih:{}","download-dir":"{}"}}}}"#,
                "a".repeat(40),
                outside.display()
            ),
            "outside the download root".into(),
        ),
        (
            r#"{"method":"torrent-add","arguments":{"filename":"../../etc/passwd"}}"#,
            "'..'".into(),
        ),
        (
            r#"{"method":"free-space","arguments":{"path":"/"}}"#,
            "outside the download root".into(),
        ),
        (
            r#"{"method":"port-test"}"#,
            "port-test is not supported".into(),
        ),
    ];
    for (body, want) in cases {
        let (s, _, v) = post(&d, &h, body);
        assert_eq!(s, 200, "{body}: {v}");
        let result = v["result"].as_str().unwrap_or_default();
        assert!(result != "success" && result.contains(&want), "{body}: {v}");
    }
    assert!(!outside.exists());
    assert!(d.snapshot()["torrents"].as_array().unwrap().is_empty());

    // What does work: queue moves (served since queueing landed; no ids, nothing moves), free
    // space of the root, stats, a table-format get.
    let (_, _, v) = post(
        &d,
        &h,
        r#"{"method":"queue-move-top","arguments":{"ids":[]}}"#,
    );
    assert_eq!(v["result"], "success", "{v}");
    let (_, _, v) = post(&d, &h, r#"{"method":"free-space","arguments":{"path":""}}"#);
    assert_eq!(v["result"], "success", "{v}");
    assert!(v["arguments"]["size-bytes"].as_u64().unwrap() > 0);
    let (_, _, v) = post(&d, &h, r#"{"method":"session-stats"}"#);
    assert_eq!(v["arguments"]["torrentCount"], 0, "{v}");
    let (_, _, v) = post(
        &d,
        &h,
        r#"{"method":"torrent-get","arguments":{"fields":["id","name"],"format":"table"}}"#,
    );
    assert_eq!(v["arguments"]["torrents"], json!([["id", "name"]]), "{v}");
    // Session limits through session-set show in our settings.
    let (_, _, v) = post(
        &d,
        &h,
        r#"{"method":"session-set","arguments":{"speed-limit-down":250,"speed-limit-down-enabled":true,"encryption":"required"}}"#,
    );
    assert_eq!(v["result"], "success", "{v}");
    let s = d.ok("GET", "/api/v1/settings", None);
    assert_eq!(s["limits"]["download_bps"], 250_000);
    assert_eq!(s["encryption"], "required");
}
