//! The web UI in headless Chromium against real daemons on the real local SCION network: a
//! seeding daemon in one AS, a downloading daemon in another; `tests/web/ui_test.mjs` adds the
//! torrent through the leecher's page, watches it complete, checks the paths view, sets a
//! sequence in its path rules form (the API snapshot has it; a bad one shows the daemon's 400
//! message in the form) and clears it, pauses, resumes and removes it, then adds it again by
//! its magnet link. Needs node, npm and Debian's chromium (scripts/install-deps.sh).

mod common;

use std::path::Path;
use std::time::Duration;

use common::daemons::{state, Daemon};
use common::web::node_script;
use common::*;
use serde_json::json;

/// A daemon in `ia` whose download root is `<work>/<name>-root`.
fn start_daemon(tn: &Testnet, ia: &str, work: &Path, name: &str) -> Daemon {
    let root = work.join(format!("{name}-root"));
    std::fs::create_dir_all(&root).unwrap();
    Daemon::start(
        &work.join(format!("{name}-state")),
        &[
            format!("--download-root={}", root.display()),
            format!("--sciond={}", daemon(tn, ia)),
            format!("--local={ia},[127.0.0.1]:0"),
        ],
        &[],
    )
}

#[test]
fn web_ui_adds_watches_pauses_and_removes_a_torrent_over_scion() {
    let tn = testnet("three-paths");
    let work = tempfile::tempdir().unwrap();
    let seeder = start_daemon(&tn, LEAF_B, work.path(), "seeder");
    let leecher = start_daemon(&tn, LEAF_A, work.path(), "leecher");

    // The seeder's data and its .torrent lie in its download root; added through its API.
    let data = work.path().join("seeder-root/share/web-ui-demo.bin");
    write_random(&data, 48 << 20, 13);
    let torrent = work.path().join("seeder-root/web-ui-demo.torrent");
    make_torrent(&data, &torrent, Some(128 * 1024));
    let added = seeder.ok(
        "POST",
        "/api/v1/torrents",
        Some(json!({ "torrent_path": "web-ui-demo.torrent", "out_dir": "share" })),
    );
    let ih = added["info_hash"].as_str().expect("info_hash").to_string();
    seeder.wait_torrent(&ih, Duration::from_secs(120), |t| state(t) == "seeding");
    let seeder_addr = seeder.ok("GET", "/api/v1/settings", None)["local_scion"]
        .as_str()
        .expect("the seeder runs SCION")
        .to_string();

    // A download limit stretches the transfer over a few seconds, so the page sees it live.
    leecher.ok(
        "PUT",
        "/api/v1/settings",
        Some(json!({
            "limits": { "download_bps": 8u64 << 20, "upload_bps": null },
            "seed_policy": { "stop_at_ratio": null, "stop_after_secs": null },
        })),
    );

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-ui-screenshots");
    let out = node_script("ui_test.mjs")
        .arg(leecher.url("/"))
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
        leecher.log_text(),
        seeder.log_text()
    );
    assert!(stdout.contains("[ui_test] PASS"), "{stdout}");
    eprintln!("screenshots in {}", shots.display());

    // What the page showed happened: the file arrived intact; the torrent was removed (its data
    // kept, UI_TEST_KEEP_DATA) and added again by its magnet link: the metadata came from the
    // seeder, the check found every piece on disk.
    same_tree(&data, &work.path().join("leecher-root/web-ui-demo.bin"));
    let left = leecher.ok("GET", "/api/v1/torrents", None);
    let again: Vec<&serde_json::Value> = left
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["info_hash"] == ih.as_str())
        .collect();
    assert!(
        again.len() == 1
            && again[0]["state"] == "seeding"
            && again[0]["pieces_resumed"] == again[0]["pieces_total"],
        "the magnet link's torrent is listed once, complete from disk: {left}"
    );
}
