//! The daemon's qBittorrent Web API v2 (`/api/v2/`), end to end: the real PyPI
//! `qbittorrent-api` client (tests/qbittorrent/arr_cycle.py) drives a real daemon through an
//! *arr-style cycle with real downloads from our TCP seeders, and raw HTTP checks the SID
//! handshake, the origin rules and bad input.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::clients::{our_tcp_seeder, NO_DAEMON};
use common::daemons::Daemon;
use common::{info_hash_of, random_torrent};

const TOKEN: &str = "qbt-test-token";

/// The venv's python with qbittorrent-api (`QBITTORRENT_API_PYTHON`, exported by
/// scripts/scionproto-env.sh).
fn python() -> PathBuf {
    let p = std::env::var_os("QBITTORRENT_API_PYTHON").map(PathBuf::from).expect(
        "QBITTORRENT_API_PYTHON is not set: run scripts/install-deps.sh, then `. scripts/scionproto-env.sh`",
    );
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-deps.sh",
        p.display()
    );
    p
}

fn hex(h: &[u8; 20]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn daemon(work: &Path, token: Option<&str>) -> Daemon {
    let mut envs = vec![("SCION_DAEMON_ADDRESS", NO_DAEMON.to_string())];
    if let Some(t) = token {
        envs.push(("BTS_HTTP_TOKEN", t.to_string()));
    }
    Daemon::start(
        &work.join("state"),
        &[
            format!("--download-root={}", work.join("root").display()),
            "--tcp-listen=127.0.0.1:0".to_string(),
        ],
        &envs,
    )
}

#[test]
fn an_arr_cycle_through_qbittorrent_api() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // Torrent A, added by magnet link; torrent B, added by file.
    std::fs::create_dir_all(w.join("a")).unwrap();
    std::fs::create_dir_all(w.join("b")).unwrap();
    let (data_a, torrent_a) = random_torrent(&w.join("a"), 3 * 1024 * 1024 + 17, 31, None);
    let (data_b, torrent_b) = random_torrent(&w.join("b"), 2 * 1024 * 1024 + 5, 32, None);
    let (_seed_a, addr_a) = our_tcp_seeder(&torrent_a, &data_a, None, &w.join("a"));
    let (_seed_b, addr_b) = our_tcp_seeder(&torrent_b, &data_b, None, &w.join("b"));
    let (ih_a, ih_b) = (
        hex(&info_hash_of(&torrent_a)),
        hex(&info_hash_of(&torrent_b)),
    );
    let d = daemon(w, Some(TOKEN));
    let magnet = format!("magnet:?xt=urn:btih:{ih_a}&dn=data.bin&x.pe={addr_a}");

    let out = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/qbittorrent/arr_cycle.py"))
        .args(["--url", &format!("http://{}", d.api)])
        .args(["--password", TOKEN])
        .args(["--magnet", &magnet, "--magnet-hash", &ih_a])
        .arg("--torrent")
        .arg(&torrent_b)
        .args(["--torrent-hash", &ih_b, "--peer", &addr_b])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the qbittorrent-api cycle failed:\n{stdout}\n{}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log_text()
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    assert_eq!(summary["steps"].as_array().unwrap().len(), 10, "{summary}");
    assert_eq!(summary["steps"][9], "deleted with data", "{summary}");

    // On disk: A downloaded byte for byte under root/tv (its category's save path); B, moved
    // to root/archive, deleted with its data there, none left in root/movies.
    let root = w.join("root");
    assert_eq!(
        std::fs::read(root.join("tv/data.bin")).unwrap(),
        std::fs::read(&data_a).unwrap(),
        "torrent A's data differs"
    );
    assert!(
        !root.join("archive/data.bin").exists(),
        "torrent B's data was not deleted"
    );
    assert!(
        !root.join("movies/data.bin").exists(),
        "torrent B's data was left at its old place"
    );
}

/// One raw HTTP exchange: (status, Set-Cookie, body).
fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Option<String>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let mut b = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut r = agent.run(b.body(body).unwrap()).expect("an HTTP answer");
    let cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    (
        r.status().as_u16(),
        cookie,
        r.body_mut().read_to_string().unwrap_or_default(),
    )
}

struct Api {
    base: String,
    cookie: String,
}

impl Api {
    fn form(&self, path: &str, form: &str) -> (u16, String) {
        let (s, _, b) = http(
            "POST",
            &format!("{}{path}", self.base),
            &[
                ("cookie", &self.cookie),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            form.as_bytes().to_vec(),
        );
        (s, b)
    }

    fn get(&self, path: &str) -> (u16, String) {
        let (s, _, b) = http(
            "GET",
            &format!("{}{path}", self.base),
            &[("cookie", &self.cookie)],
            vec![],
        );
        (s, b)
    }

    /// `torrents/add` as multipart with one .torrent part and some fields.
    fn add_file(&self, torrent: &[u8], fields: &[(&str, &str)]) -> (u16, String) {
        let boundary = "qbt-test-boundary";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"torrents\"; filename=\"x.torrent\"\r\nContent-Type: application/x-bittorrent\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(torrent);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let ct = format!("multipart/form-data; boundary={boundary}");
        let (s, _, b) = http(
            "POST",
            &format!("{}/api/v2/torrents/add", self.base),
            &[("cookie", &self.cookie), ("content-type", &ct)],
            body,
        );
        (s, b)
    }
}

fn login(base: &str, password: &str) -> (u16, Option<String>, String) {
    http(
        "POST",
        &format!("{base}/api/v2/auth/login"),
        &[("content-type", "application/x-www-form-urlencoded")],
        format!("username=admin&password={password}").into_bytes(),
    )
}

#[test]
fn sid_origin_rules_and_bad_input_over_raw_http() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let d = daemon(w, Some(TOKEN));
    let base = format!("http://{}", d.api);

    // No SID: 403 "Forbidden", as qBittorrent answers.
    let (s, _, b) = http("GET", &format!("{base}/api/v2/app/version"), &[], vec![]);
    assert_eq!((s, b.as_str()), (403, "Forbidden"));
    // A wrong password: "Fails.", no cookie.
    let (s, cookie, b) = login(&base, "wrong");
    assert_eq!((s, b.as_str(), cookie), (200, "Fails.", None));
    // The token as password: "Ok." and an SID cookie.
    let (s, cookie, b) = login(&base, TOKEN);
    assert_eq!((s, b.as_str()), (200, "Ok."));
    let cookie = cookie.expect("a Set-Cookie");
    assert!(cookie.starts_with("SID="), "{cookie}");
    let sid = cookie.split(';').next().unwrap().to_string();
    let api = Api {
        base: base.clone(),
        cookie: sid.clone(),
    };
    assert_eq!(api.get("/api/v2/app/version"), (200, "v4.6.7".to_string()));
    // A made-up SID is refused; our bearer token works without one.
    let (s, _, _) = http(
        "GET",
        &format!("{base}/api/v2/app/version"),
        &[("cookie", "SID=0123456789abcdef0123456789abcdef")],
        vec![],
    );
    assert_eq!(s, 403);
    let bearer = format!("Bearer {TOKEN}");
    let (s, _, b) = http(
        "GET",
        &format!("{base}/api/v2/app/webapiVersion"),
        &[("authorization", &bearer)],
        vec![],
    );
    assert_eq!((s, b.as_str()), (200, "2.9.3"));

    // Origin rules: a page of another site can neither log in nor act with a SID.
    let (s, _, _) = http(
        "POST",
        &format!("{base}/api/v2/auth/login"),
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", "http://evil.example"),
        ],
        format!("username=a&password={TOKEN}").into_bytes(),
    );
    assert_eq!(s, 403, "a cross-site login");
    let (s, _, _) = http(
        "POST",
        &format!("{base}/api/v2/torrents/pause"),
        &[
            ("cookie", &sid),
            ("content-type", "application/x-www-form-urlencoded"),
            ("referer", "http://evil.example/page"),
        ],
        b"hashes=all".to_vec(),
    );
    assert_eq!(s, 401, "a cross-site Referer");

    // Missing and malformed parameters, unknown hashes.
    let (s, b) = api.get("/api/v2/torrents/properties");
    assert_eq!((s, b.as_str()), (400, "Missing required parameters: hash"));
    let (s, b) = api.get(&format!(
        "/api/v2/torrents/properties?hash={}",
        "ab".repeat(20)
    ));
    assert_eq!((s, b.as_str()), (404, "Not Found"));
    assert_eq!(api.get("/api/v2/torrents/files?hash=nonsense").0, 404);
    assert_eq!(
        api.form("/api/v2/torrents/pause", "hashes=nonsense|zz").0,
        200
    );
    assert_eq!(api.get("/api/v2/torrents/info?limit=many").0, 400);
    assert_eq!(
        api.get("/api/v2/torrents/pause?hashes=all").0,
        405,
        "GET on an action"
    );
    assert_eq!(api.form("/api/v2/app/setPreferences", "json=%5B1").0, 400);
    assert_eq!(api.get("/api/v2/nothing/here").0, 404);

    // torrents/add: a savepath outside the download root writes nothing there.
    let (_, torrent) = random_torrent(w, 100_000, 7, None);
    let bytes = std::fs::read(&torrent).unwrap();
    let outside = w.join("outside");
    let (s, b) = api.add_file(&bytes, &[("savepath", outside.to_str().unwrap())]);
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("outside the download root"), "{b}");
    let (s, _) = api.add_file(&bytes, &[("savepath", "../escape")]);
    assert_eq!(s, 400);
    assert!(!outside.exists() && !w.join("escape").exists());
    assert_eq!(api.get("/api/v2/torrents/info").1, "[]");
    // Not a torrent: 415 naming the file.
    let (s, b) = api.add_file(b"not bencode", &[]);
    assert_eq!(
        (s, b.as_str()),
        (415, "Error: 'x.torrent' is not a valid torrent file.")
    );
    // Nothing to add.
    assert_eq!(api.form("/api/v2/torrents/add", "savepath=x").0, 400);

    // A torrent added paused inside the root; then what the daemon cannot do is a 409.
    let (s, b) = api.add_file(&bytes, &[("savepath", "inbox"), ("paused", "true")]);
    assert_eq!((s, b.as_str()), (200, "Ok."));
    let ih = hex(&info_hash_of(&torrent));
    let (_, info) = api.get("/api/v2/torrents/info");
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info[0]["hash"], ih.as_str());
    assert_eq!(info[0]["state"], "pausedDL");
    assert!(info[0]["save_path"]
        .as_str()
        .unwrap()
        .ends_with("/root/inbox"));
    assert_eq!(api.get("/api/v2/torrents/info?sort=no_such_column").0, 400);
    let (s, b) = api.form("/api/v2/torrents/topPrio", &format!("hashes={ih}"));
    assert_eq!((s, b.as_str()), (409, "Torrent queueing must be enabled"));
    let (s, _) = api.form(
        "/api/v2/torrents/setLocation",
        &format!("hashes={ih}&location=%2Fetc"),
    );
    assert_eq!(s, 403, "a location outside the root");
    let (s, b) = api.form(
        "/api/v2/torrents/createCategory",
        "category=tv&savePath=%2Fetc",
    );
    assert_eq!(s, 409, "a category saving outside the root");
    assert!(b.starts_with("Cannot make save path"), "{b}");
    let (s, b) = api.form(
        "/api/v2/torrents/setCategory",
        &format!("hashes={ih}&category=nosuch"),
    );
    assert_eq!((s, b.as_str()), (409, "Incorrect category name"));
    let (s, b) = api.form(
        "/api/v2/torrents/setShareLimits",
        &format!("hashes={ih}&ratioLimit=2&seedingTimeLimit=-2"),
    );
    assert_eq!(s, 409, "{b}");

    // Logging out ends the SID.
    assert_eq!(api.form("/api/v2/auth/logout", "").0, 200);
    assert_eq!(api.get("/api/v2/app/version").0, 403);
}

#[test]
fn without_a_token_any_login_works_and_foreign_hosts_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let d = daemon(work.path(), None);
    let base = format!("http://{}", d.api);
    let (s, cookie, b) = login(&base, "anything");
    assert_eq!((s, b.as_str()), (200, "Ok."));
    assert!(cookie.is_some_and(|c| c.starts_with("SID=")));
    // DNS rebinding: a page whose name resolves to 127.0.0.1 sends that name as Host.
    let (s, _, _) = http(
        "POST",
        &format!("{base}/api/v2/auth/login"),
        &[
            ("host", "evil.example"),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        b"username=a&password=b".to_vec(),
    );
    assert_eq!(s, 403);
}
