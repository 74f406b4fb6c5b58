//! The daemon's encryption policy end to end: `--encryption` at start, `PUT /api/v1/settings`
//! while it runs (applied to the next connection, shown by GET and the snapshot), and the
//! saved setting after a restart without the flag. The test plays the peer over raw TCP.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::clients::{free_port, NO_DAEMON};
use common::daemons::Daemon;
use serde_json::json;

/// Connects to `addr`, sends `hello` and waits until the daemon closes the connection.
fn refused(addr: &str, hello: &[u8]) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(hello).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

fn wait_for_log(d: &Daemon, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !d.log_text().contains(what) {
        assert!(
            Instant::now() < deadline,
            "no {what:?} in the daemon's log:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn encryption(d: &Daemon) -> String {
    let s = d.ok("GET", "/api/v1/settings", None);
    assert_eq!(
        s["encryption"],
        d.ok("GET", "/api/v1/snapshot", None)["encryption"],
        "settings and snapshot disagree"
    );
    s["encryption"].as_str().unwrap().to_string()
}

#[test]
fn policy_from_flag_api_and_saved_settings() {
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    let tcp = format!("127.0.0.1:{}", free_port());
    let args = |flag: Option<&str>| {
        let mut a = vec![
            format!("--download-root={}", work.path().join("root").display()),
            format!("--tcp-listen={tcp}"),
        ];
        a.extend(flag.map(|p| format!("--encryption={p}")));
        a
    };
    let envs = [("SCION_DAEMON_ADDRESS", NO_DAEMON.to_string())];
    let mut d = Daemon::start(&state, &args(Some("required")), &envs);
    assert_eq!(encryption(&d), "required");

    // A plain BitTorrent handshake (for any torrent) is refused, with the reason logged.
    let mut plain = b"\x13BitTorrent protocol".to_vec();
    plain.extend([0u8; 48]);
    refused(&tcp, &plain);
    wait_for_log(
        &d,
        "plain BitTorrent handshake refused: encryption is required",
    );

    // Changed while running: the next MSE start is refused.
    d.ok(
        "PUT",
        "/api/v1/settings",
        Some(json!({ "encryption": "disabled" })),
    );
    assert_eq!(encryption(&d), "disabled");
    refused(&tcp, &[0x5a; 96]);
    wait_for_log(&d, "MSE handshake refused: encryption is disabled");

    // Saved: a restart without the flag keeps it; the flag wins over it.
    assert_eq!(d.terminate(), 0);
    drop(d);
    let mut d = Daemon::start(&state, &args(None), &envs);
    assert_eq!(encryption(&d), "disabled");
    assert_eq!(d.terminate(), 0);
    drop(d);
    let d = Daemon::start(&state, &args(Some("enabled")), &envs);
    assert_eq!(encryption(&d), "enabled");
}
