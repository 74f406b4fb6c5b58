//! The web UI's file tree and play links in headless Chromium against a real daemon (with an
//! API token) that downloaded a torrent with a folder from a real seeder (our single-shot
//! client over TCP): `tests/web/files_test.mjs` folds a folder, skips and wants files by their
//! checkboxes, a folder's checkbox and a priority select, turns the order toggles on — each
//! read back from the API — and fetches a play link without the token (206 for a range, 200
//! for the whole file, byte for byte the file). Needs node, npm and Debian's chromium
//! (scripts/install-deps.sh).

mod common;

use std::path::Path;
use std::time::Duration;

use common::clients::{free_port, our_tcp_seeder, NO_DAEMON};
use common::daemons::{state, Daemon};
use common::web::node_script;
use common::{make_torrent, write_random};
use serde_json::json;

const TOKEN: &str = "files-ui-token";

#[test]
fn the_file_tree_sets_priorities_and_the_play_link_streams() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src/album");
    write_random(&src.join("clip.mp4"), 2_000_003, 1);
    write_random(&src.join("extras/notes.txt"), 100_001, 2);
    write_random(&src.join("extras/photos/a.bin"), 300_007, 3);
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    make_torrent(&src, &root.join("album.torrent"), Some(64 * 1024));
    let (_seeder, seeder_addr) =
        our_tcp_seeder(&root.join("album.torrent"), &src, None, work.path());
    let d = Daemon::start(
        &work.path().join("state"),
        &[
            format!("--download-root={}", root.display()),
            format!("--tcp-listen=127.0.0.1:{}", free_port()),
        ],
        &[
            ("SCION_DAEMON_ADDRESS", NO_DAEMON.to_string()),
            ("BTS_HTTP_TOKEN", TOKEN.to_string()),
        ],
    );
    let added = d.ok(
        "POST",
        "/api/v1/torrents",
        Some(json!({"torrent_path": "album.torrent", "out_dir": "dl", "peers": [seeder_addr]})),
    );
    let ih = added["info_hash"].as_str().unwrap().to_string();
    d.wait_torrent(&ih, Duration::from_secs(120), |t| state(t) == "seeding");
    let files = d.ok("GET", &format!("/api/v1/torrents/{ih}/files"), None);
    let play = files
        .as_array()
        .unwrap()
        .iter()
        .position(|f| f["path"] == "clip.mp4")
        .expect("clip.mp4 is listed");

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-files-screenshots");
    let out = node_script("files_test.mjs")
        .arg(d.url("/"))
        .arg(&ih)
        .arg(play.to_string())
        .arg(src.join("clip.mp4"))
        .arg(&shots)
        .env("UI_TEST_TOKEN", TOKEN)
        .output()
        .expect("node is needed for the web UI test (scripts/install-deps.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("[files_test] PASS"),
        "files_test.mjs failed ({}):\n{stdout}\n{stderr}\n--- daemon log:\n{}",
        out.status,
        d.log_text()
    );
    // What the page set is what the daemon keeps.
    let t = d.torrent(&ih);
    assert_eq!(t["sequential"], true, "{t}");
    assert_eq!(t["files"][0]["priority"], "high", "{t}");
}
