//! Queueing (issue 26) with real daemon processes over TCP: a leecher limited to one active
//! download and a seeder of three torrents; queue moves, force-start and a restart, through
//! the HTTP API and the CLI client.

mod common;

use std::path::Path;
use std::time::Duration;

use common::daemons::{state, Daemon};
use common::{make_torrent, write_random};
use serde_json::{json, Value};

const PIECE: u32 = 16384;
const WAIT: Duration = Duration::from_secs(120);

fn start(work: &Path, name: &str, root: &Path) -> Daemon {
    Daemon::start_tcp(&work.join(name), root)
}

/// `NAME.bin` (random bytes) and `NAME.torrent` in the seeder's root; the .torrent copied
/// into the leecher's.
fn make(seed_root: &Path, leech_root: &Path, name: &str, len: usize, seed: u64) {
    let data = seed_root.join(format!("{name}.bin"));
    write_random(&data, len, seed);
    let torrent = seed_root.join(format!("{name}.torrent"));
    make_torrent(&data, &torrent, Some(PIECE));
    std::fs::copy(&torrent, leech_root.join(format!("{name}.torrent"))).unwrap();
}

/// Adds a .torrent of the download root, with peers.
fn add(d: &Daemon, torrent: &str, peers: &[&str]) -> String {
    let v = d.ok(
        "POST",
        "/api/v1/torrents",
        Some(json!({ "torrent_path": torrent, "out_dir": "", "peers": peers })),
    );
    v["info_hash"].as_str().unwrap().to_string()
}

fn position(t: &Value) -> u64 {
    t["queue_position"].as_u64().unwrap()
}

#[test]
fn one_download_slot_queue_moves_force_start_and_a_restart() {
    let work = tempfile::tempdir().unwrap();
    let (seed_root, leech_root) = (work.path().join("seed"), work.path().join("leech"));
    std::fs::create_dir_all(&seed_root).unwrap();
    std::fs::create_dir_all(&leech_root).unwrap();
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        make(
            &seed_root,
            &leech_root,
            name,
            6 * PIECE as usize + 100,
            i as u64,
        );
    }
    let seeder = start(work.path(), "seeder", &seed_root);
    for name in ["a", "b", "c"] {
        let ih = seeder.add_torrent_path(&format!("{name}.torrent"), "");
        seeder.wait_torrent(&ih, WAIT, |t| state(t) == "seeding");
    }
    let seeder_tcp = seeder.snapshot()["tcp_listen"]
        .as_str()
        .unwrap()
        .to_string();

    let mut d = start(work.path(), "leecher", &leech_root);
    d.ok(
        "PUT",
        "/api/v1/settings",
        Some(json!({ "queue": { "enabled": true, "max_active_downloads": 1 } })),
    );
    let q = &d.ok("GET", "/api/v1/settings", None)["queue"];
    assert_eq!(q["enabled"], true, "{q}");
    assert_eq!(q["max_active_downloads"], 1, "{q}");
    assert_eq!(q["max_active_seeds"], 3, "the default stays: {q}");

    // A has no peer, so it holds the one slot downloading nothing; B and C wait.
    let a = add(&d, "a.torrent", &[]);
    let a_t = d.wait_torrent(&a, WAIT, |t| state(t) == "downloading");
    assert_eq!(position(&a_t), 0);
    let b = add(&d, "b.torrent", &[&seeder_tcp]);
    let c = add(&d, "c.torrent", &[&seeder_tcp]);
    let b_t = d.wait_torrent(&b, WAIT, |t| state(t) == "queued_download");
    let c_t = d.wait_torrent(&c, WAIT, |t| state(t) == "queued_download");
    assert_eq!((position(&b_t), position(&c_t)), (1, 2));
    assert_eq!(
        b_t["pieces_have"], 0,
        "a queued torrent fetches nothing: {b_t:#}"
    );
    assert_eq!(state(&d.torrent(&a)), "downloading");

    // C to the top of the queue (CLI): it takes the slot, A waits; C completes, and its
    // slot goes to A, the next download in the queue, not to B.
    let (code, out, err) = d.cli(&["queue", &c[..10], "top"]);
    assert_eq!(code, 0, "{out}{err}");
    d.wait_torrent(&c, WAIT, |t| state(t) == "seeding");
    let a_t = d.wait_torrent(&a, WAIT, |t| state(t) == "downloading");
    assert_eq!(position(&a_t), 1);
    assert_eq!(position(&d.torrent(&c)), 0);
    let b_t = d.torrent(&b);
    assert_eq!((state(&b_t), position(&b_t)), ("queued_download", 2));

    // Moves through the API: B up one (before A), then down again.
    d.ok(
        "POST",
        &format!("/api/v1/torrents/{b}/queue"),
        Some(json!({ "move": "up" })),
    );
    assert_eq!(position(&d.torrent(&b)), 1);
    assert_eq!(position(&d.torrent(&a)), 2);
    // B is now ahead of A: it takes the slot and completes; A gets it back.
    d.wait_torrent(&b, WAIT, |t| state(t) == "seeding");
    d.wait_torrent(&a, WAIT, |t| state(t) == "downloading");
    d.ok(
        "POST",
        &format!("/api/v1/torrents/{b}/queue"),
        Some(json!({ "move": "bottom" })),
    );
    assert_eq!(
        [&c, &a, &b].map(|ih| position(&d.torrent(ih))),
        [0, 1, 2],
        "bottom"
    );
    let (status, v) = d.call(
        "POST",
        &format!("/api/v1/torrents/{b}/queue"),
        Some(json!({ "move": "sideways" })),
    );
    assert_eq!(status, 400, "{v}");

    // A second download beside A only by force: D waits, then is force-started (CLI).
    make(&seed_root, &leech_root, "d", 5 * PIECE as usize, 9);
    let ih = seeder.add_torrent_path("d.torrent", "");
    seeder.wait_torrent(&ih, WAIT, |t| state(t) == "seeding");
    let dd = add(&d, "d.torrent", &[&seeder_tcp]);
    d.wait_torrent(&dd, WAIT, |t| state(t) == "queued_download");
    let (code, out, err) = d.cli(&["start", "--force", &dd[..10]]);
    assert_eq!(code, 0, "{out}{err}");
    let t = d.wait_torrent(&dd, WAIT, |t| state(t) == "seeding");
    assert_eq!(t["force_start"], true);
    assert_eq!(state(&d.torrent(&a)), "downloading", "A kept its slot");

    // Positions and force-start survive a restart; A runs again, D is still forced.
    assert_eq!(d.terminate(), 0);
    d.restart();
    let q = &d.ok("GET", "/api/v1/settings", None)["queue"];
    assert_eq!(q["max_active_downloads"], 1, "{q}");
    d.wait_torrent(&a, WAIT, |t| state(t) == "downloading");
    assert_eq!(
        [&c, &a, &b, &dd].map(|ih| position(&d.torrent(ih))),
        [0, 1, 2, 3]
    );
    assert_eq!(d.torrent(&dd)["force_start"], true);
    assert_eq!(d.torrent(&b)["force_start"], false);

    // Pausing clears force; with the limit lifted every download runs.
    d.ok("POST", &format!("/api/v1/torrents/{dd}/pause"), None);
    assert_eq!(d.torrent(&dd)["force_start"], false);
    d.ok(
        "PUT",
        "/api/v1/settings",
        Some(json!({ "queue": { "enabled": false } })),
    );
    d.ok(
        "POST",
        &format!("/api/v1/torrents/{a}/peers"),
        Some(json!({ "peers": [seeder_tcp] })),
    );
    d.wait_torrent(&a, WAIT, |t| state(t) == "seeding");
}

#[test]
fn a_seed_limit_queues_complete_torrents_and_bad_settings_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let d = start(work.path(), "state", &root);
    for (i, name) in ["x", "y"].into_iter().enumerate() {
        let data = root.join(format!("{name}.bin"));
        write_random(&data, 3 * PIECE as usize, 20 + i as u64);
        make_torrent(&data, &root.join(format!("{name}.torrent")), Some(PIECE));
    }
    d.ok(
        "PUT",
        "/api/v1/settings",
        Some(json!({ "queue": { "enabled": true, "max_active_seeds": 1 } })),
    );
    let x = d.add_torrent_path("x.torrent", "");
    let y = d.add_torrent_path("y.torrent", "");
    d.wait_torrent(&x, WAIT, |t| state(t) == "seeding");
    d.wait_torrent(&y, WAIT, |t| state(t) == "queued_seed");
    // Moving Y to the top swaps them.
    d.ok(
        "POST",
        &format!("/api/v1/torrents/{y}/queue"),
        Some(json!({ "move": "top" })),
    );
    d.wait_torrent(&y, WAIT, |t| state(t) == "seeding");
    d.wait_torrent(&x, WAIT, |t| state(t) == "queued_seed");

    for bad in [
        json!({ "queue": { "stalled_after_secs": 0 } }),
        json!({ "queue": { "max_active_downloads": -1 } }),
        json!({ "queue": { "max_downloads": 1 } }),
        json!({ "queue": [true] }),
    ] {
        let (status, v) = d.call("PUT", "/api/v1/settings", Some(bad.clone()));
        assert_eq!(status, 400, "{bad} → {v}");
    }
    let (status, v) = d.call(
        "PUT",
        &format!("/api/v1/torrents/{}/force_start", "ab".repeat(20)),
        Some(json!({ "force": true })),
    );
    assert_eq!(status, 404, "{v}");
}

/// Polls the snapshot until the watch folder reported `n` files.
fn watched(d: &Daemon, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let list = d.snapshot()["watch"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if list.len() >= n {
            return list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "watch folder reported {list:?}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Puts `bytes` into the watch folder as `name` in one step (written beside it, renamed).
fn drop_file(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.part"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[test]
fn the_watch_folder_adds_torrents_and_magnets_and_sets_bad_files_aside() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let watch = work.path().join("watch");
    std::fs::create_dir_all(&root).unwrap();
    let data = root.join("w.bin");
    write_random(&data, 3 * PIECE as usize, 77);
    let torrent = work.path().join("w.torrent");
    make_torrent(&data, &torrent, Some(PIECE));
    let d = Daemon::start(
        &work.path().join("state"),
        &[
            format!("--download-root={}", root.display()),
            "--tcp-listen=127.0.0.1:0".to_string(),
            format!("--watch-dir={}", watch.display()),
        ],
        &[],
    );
    assert!(watch.is_dir(), "created by the daemon");
    drop_file(&watch, "w.torrent", &std::fs::read(&torrent).unwrap());
    let list = watched(&d, 1);
    assert_eq!(list[0]["file"], "w.torrent");
    assert_eq!(list[0]["added"], true, "{list:?}");
    assert!(watch.join(".added/w.torrent").is_file());
    assert!(!watch.join("w.torrent").exists());
    let snap = d.snapshot();
    let t = &snap["torrents"][0];
    let ih = t["info_hash"].as_str().unwrap().to_string();
    d.wait_torrent(&ih, WAIT, |t| state(t) == "seeding");

    let magnet = format!("magnet:?xt=urn:btih:{}&dn=m\n", "ab".repeat(20));
    drop_file(&watch, "m.magnet", magnet.as_bytes());
    let list = watched(&d, 2);
    assert_eq!(
        (&list[1]["file"], &list[1]["added"]),
        (&json!("m.magnet"), &json!(true))
    );
    d.torrent(&"ab".repeat(20));

    // Garbage, the same torrent again, a link to a file elsewhere, a .magnet of no link.
    drop_file(&watch, "junk.torrent", b"this is no torrent");
    watched(&d, 3);
    drop_file(&watch, "again.torrent", &std::fs::read(&torrent).unwrap());
    watched(&d, 4);
    std::os::unix::fs::symlink(&torrent, watch.join("link.torrent")).unwrap();
    watched(&d, 5);
    drop_file(&watch, "no.magnet", b"http://example.com/x");
    watched(&d, 6);
    let list = d.snapshot()["watch"].as_array().cloned().unwrap();
    let error = |name: &str| {
        let f = list
            .iter()
            .find(|f| f["file"] == name)
            .unwrap_or_else(|| panic!("{name}: {list:?}"));
        assert_eq!(f["added"], false, "{f}");
        assert!(
            watch.join(".invalid").join(name).symlink_metadata().is_ok(),
            "{name} moved aside"
        );
        f["error"].as_str().unwrap().to_string()
    };
    assert!(error("junk.torrent").contains("bad torrent"), "{list:?}");
    assert!(error("again.torrent").contains("already added"), "{list:?}");
    assert!(error("link.torrent").contains("symbolic link"), "{list:?}");
    assert!(error("no.magnet").contains("not a magnet link"), "{list:?}");
    assert_eq!(d.snapshot()["torrents"].as_array().unwrap().len(), 2);
    assert!(d.log_text().contains("watch folder: not added"));
}
