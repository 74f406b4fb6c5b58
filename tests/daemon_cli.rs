//! The `daemon` subcommand as a process: the ready line, where state lives, access rules, and a
//! clean exit on SIGTERM/SIGINT.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod common;

use common::bin;

struct Daemon {
    child: Child,
    addr: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a daemon and waits for its ready line; returns it and the line.
fn start(args: &[&str], envs: &[(&str, &Path)]) -> (Daemon, String) {
    let mut all = vec!["daemon".to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    let envs: Vec<(String, String)> = envs
        .iter()
        .map(|(k, v)| (k.to_string(), v.display().to_string()))
        .collect();
    let (child, line) = common::daemons::spawn_ready(&all, &envs, None)
        .unwrap_or_else(|why| panic!("the daemon printed no ready line: {why}"));
    let addr = common::daemons::api_of(&line);
    (Daemon { child, addr }, line)
}

fn get(addr: &str, path: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut r = agent.get(format!("http://{addr}{path}")).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

fn stop_with(d: &mut Daemon, signal: i32) -> i32 {
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(d.child.id() as i32, signal) };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(s) = d.child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "daemon did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serves_the_api_keeps_state_in_the_data_dir_and_stops_on_sigterm() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("state");
    let (mut daemon, line) = start(
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert!(
        line.ends_with(&format!("(data dir {})", data.display())),
        "{line}"
    );
    assert!(
        data.join("torrents").is_dir(),
        "the store lives in the data dir"
    );
    assert!(data.join("downloads").is_dir(), "the default download root");

    let (status, body) = get(&daemon.addr, "/api/v1/settings");
    assert_eq!(status, 200, "{body}");
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    let root = data.join("downloads").canonicalize().unwrap();
    assert_eq!(s["download_root"], root.to_str().unwrap());
    assert_eq!(s["http_listen"], daemon.addr.as_str());

    let o = Command::new(bin())
        .args(["list", "--api", &format!("http://{}", daemon.addr)])
        .env_remove("BTS_HTTP_TOKEN")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // A second daemon on the same data dir would overwrite the first one's state: refused.
    let o = Command::new(bin())
        .args(["daemon", "--http", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("BTS_HTTP_TOKEN")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(err.contains("in use by another daemon"), "{err}");

    assert_eq!(stop_with(&mut daemon, libc::SIGTERM), 0);
}

#[test]
fn sigint_stops_it_too_and_the_data_dir_defaults_to_xdg() {
    let d = tempfile::tempdir().unwrap();
    let (mut daemon, line) = start(&["--http", "127.0.0.1:0"], &[("XDG_DATA_HOME", d.path())]);
    let want = d.path().join("bittorrent-over-scion");
    assert!(
        line.ends_with(&format!("(data dir {})", want.display())),
        "{line}"
    );
    assert!(want.join("torrents").is_dir());
    assert_eq!(stop_with(&mut daemon, libc::SIGINT), 0);
}

#[test]
fn a_token_is_required_off_loopback() {
    let d = tempfile::tempdir().unwrap();
    let o = Command::new(bin())
        .args(["daemon", "--http", "0.0.0.0:0", "--data-dir"])
        .arg(d.path())
        .env_remove("BTS_HTTP_TOKEN")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--http-token"), "{err}");
}

#[test]
fn with_a_token_every_call_needs_it() {
    let d = tempfile::tempdir().unwrap();
    let (mut daemon, _) = start(
        &[
            "--data-dir",
            d.path().to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
            "--http-token",
            "t0k",
        ],
        &[],
    );
    assert_eq!(get(&daemon.addr, "/api/v1/torrents").0, 401);
    assert_eq!(get(&daemon.addr, "/api/v1/torrents?token=t0k").0, 200);
    assert_eq!(stop_with(&mut daemon, libc::SIGTERM), 0);
}
