//! The web UI in headless Chromium against real daemons on the real local SCION network: a
//! seeding daemon in one AS, a downloading daemon in another; `tests/web/ui_test.mjs` adds the
//! torrent through the leecher's page, watches it complete, checks the paths view, pauses,
//! resumes and removes it. Needs node, npm and Debian's chromium (scripts/install-deps.sh).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request (Connection: close); returns the status and the body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(rest)
        } else {
            rest.to_string()
        },
    ))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn get_json(port: u16, path: &str) -> Value {
    let (status, body) = http(port, "GET", path, None).expect("daemon answers");
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

struct Daemon {
    proc: Proc,
    port: u16,
}

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.proc.stderr_log).unwrap_or_default()
    }
}

/// Starts `bittorrent-over-scion daemon` in `ia` and waits until its API answers.
fn start_daemon(tn: &Testnet, ia: &str, work: &Path, name: &str) -> Daemon {
    let data_dir = work.join(format!("{name}-state"));
    let root = work.join(format!("{name}-root"));
    std::fs::create_dir_all(&root).unwrap();
    let port = free_tcp_port();
    let log = work.join(format!("{name}.log"));
    let child = Command::new(bin())
        .arg("daemon")
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--download-root")
        .arg(&root)
        .arg("--http")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--sciond")
        .arg(daemon(tn, ia))
        .arg("--local")
        .arg(format!("{ia},[127.0.0.1]:0"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start the daemon");
    let mut d = Daemon {
        proc: Proc {
            child,
            stderr_log: log,
        },
        port,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = http(port, "GET", "/api/v1/settings", None) {
            return d;
        }
        if let Ok(Some(status)) = d.proc.child.try_wait() {
            panic!("{name} daemon exited ({status}):\n{}", d.log());
        }
        assert!(
            Instant::now() < deadline,
            "{name} daemon's API did not answer:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_for_state(d: &Daemon, ih: &str, state: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let t = get_json(d.port, &format!("/api/v1/torrents/{ih}"));
        if t["state"] == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "torrent {ih} never reached {state}: {t}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn web_tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web")
}

/// `npm ci` once (playwright-core from the committed lock file); never downloads a browser.
fn ensure_node_modules() {
    let dir = web_tests_dir();
    if dir.join("node_modules/playwright-core").is_dir() {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .output()
        .expect("npm is needed for the web UI test (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "npm ci in tests/web failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn web_ui_adds_watches_pauses_and_removes_a_torrent_over_scion() {
    let tn = testnet("three-paths");
    let work = tempfile::tempdir().unwrap();
    let seeder = start_daemon(&tn, LEAF_B, work.path(), "seeder");
    let leecher = start_daemon(&tn, LEAF_A, work.path(), "leecher");

    // The seeder's data already lies in its download root; the torrent is added by its API.
    let data = work.path().join("seeder-root/share/web-ui-demo.bin");
    write_random(&data, 48 << 20, 13);
    let torrent = work.path().join("web-ui-demo.torrent");
    make_torrent(&data, &torrent, Some(128 * 1024));
    let (status, body) = http(
        seeder.port,
        "POST",
        "/api/v1/torrents",
        Some(&json!({ "torrent_path": torrent, "out_dir": "share" })),
    )
    .unwrap();
    assert_eq!(status, 201, "seeder add: {body}\n{}", seeder.log());
    let ih = serde_json::from_str::<Value>(&body).unwrap()["info_hash"]
        .as_str()
        .expect("info_hash")
        .to_string();
    wait_for_state(&seeder, &ih, "seeding", Duration::from_secs(120));
    let seeder_addr = get_json(seeder.port, "/api/v1/settings")["local_scion"]
        .as_str()
        .expect("the seeder runs SCION")
        .to_string();

    // A download limit stretches the transfer over a few seconds, so the page sees it live.
    let limits = json!({
        "limits": { "download_bps": 8u64 << 20, "upload_bps": null },
        "seed_policy": { "stop_at_ratio": null, "stop_after_secs": null },
    });
    let (status, body) = http(leecher.port, "PUT", "/api/v1/settings", Some(&limits)).unwrap();
    assert!(
        (200..300).contains(&status),
        "leecher settings: {status} {body}"
    );

    ensure_node_modules();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-ui-screenshots");
    let out = Command::new("node")
        .arg(web_tests_dir().join("ui_test.mjs"))
        .arg(format!("http://127.0.0.1:{}/", leecher.port))
        .arg(&torrent)
        .arg(&shots)
        .arg(&seeder_addr)
        // Keep the download so its bytes can be compared with the source below.
        .env("UI_TEST_KEEP_DATA", "1")
        .output()
        .expect("node is needed for the web UI test (scripts/install-deps.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ui_test.mjs failed ({}):\n{stdout}\n{stderr}\n--- leecher log:\n{}\n--- seeder log:\n{}",
        out.status,
        leecher.log(),
        seeder.log()
    );
    assert!(stdout.contains("[ui_test] PASS"), "{stdout}");
    eprintln!("screenshots in {}", shots.display());

    // What the page showed happened: the file arrived intact, and the torrent is gone.
    same_tree(&data, &work.path().join("leecher-root/web-ui-demo.bin"));
    let left = get_json(leecher.port, "/api/v1/torrents");
    assert!(
        left.as_array()
            .unwrap()
            .iter()
            .all(|t| t["info_hash"] != ih.as_str()),
        "removed torrent still listed: {left}"
    );
}
