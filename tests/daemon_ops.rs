//! Running the daemon unattended (issue 26): re-check on demand, driven through the HTTP API
//! and the CLI client of real daemon processes (TCP only; no SCION network needed).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::daemons::{state, Daemon};
use common::{make_torrent, write_random};
use serde_json::json;

const PIECE: usize = 16384;

/// A download root holding `data.bin` (`len` random bytes) and its `data.torrent`.
fn root_with_data(root: &Path, len: usize) -> PathBuf {
    std::fs::create_dir_all(root).unwrap();
    let data = root.join("data.bin");
    write_random(&data, len, 42);
    make_torrent(&data, &root.join("data.torrent"), Some(PIECE as u32));
    data
}

fn start(work: &Path, name: &str, root: &Path) -> Daemon {
    Daemon::start_tcp(&work.join(name), root)
}

/// Flips one byte of `file` at `at` on disk (behind the daemon's back).
fn corrupt(file: &Path, at: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[at] ^= 0xff;
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn recheck_finds_a_corrupt_piece_and_downloads_it_again() {
    let work = tempfile::tempdir().unwrap();
    let len = 8 * PIECE + 1000;
    let root = work.path().join("root");
    let data = root_with_data(&root, len);
    let original = std::fs::read(&data).unwrap();
    let d = start(work.path(), "state", &root);
    let ih = d.add_torrent_path("data.torrent", "");
    let t = d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");
    let total = t["pieces_total"].as_u64().unwrap();
    assert_eq!(t["pieces_have"], total);

    corrupt(&data, 3 * PIECE + 17);
    // Nothing notices until asked: the data was verified once.
    assert_eq!(d.torrent(&ih)["pieces_have"], total);
    let (code, out, err) = d.cli(&["recheck", &ih[..8]]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, format!("re-checking {ih}\n"));
    let t = d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) != "checking");
    assert_eq!(state(&t), "downloading", "{t:#}");
    assert_eq!(t["pieces_have"], total - 1, "{t:#}");
    assert_eq!(t["pieces_checked"], total);
    assert!(t["progress"].as_f64().unwrap() < 1.0);
    let file = &t["files"][0];
    assert_eq!(file["done"], (len - PIECE) as u64, "{t:#}");

    // A seeder of the same data gives the piece back.
    let seed_root = work.path().join("seed-root");
    root_with_data(&seed_root, len);
    let seeder = start(work.path(), "seeder", &seed_root);
    assert_eq!(seeder.add_torrent_path("data.torrent", ""), ih);
    seeder.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");
    let tcp = seeder.snapshot()["tcp_listen"]
        .as_str()
        .unwrap()
        .to_string();
    d.ok(
        "POST",
        &format!("/api/v1/torrents/{ih}/peers"),
        Some(json!({ "peers": [tcp] })),
    );
    let t = d.wait_torrent(&ih, Duration::from_secs(120), |t| state(t) == "seeding");
    assert_eq!(t["pieces_have"], total);
    assert!(std::fs::read(&data).unwrap() == original, "data differs");
}

#[test]
fn recheck_answers_unknown_torrents_and_bad_hashes() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let d = start(work.path(), "state", &root);
    let (status, v) = d.call(
        "POST",
        &format!("/api/v1/torrents/{}/recheck", "ab".repeat(20)),
        None,
    );
    assert_eq!(status, 404, "{v}");
    let (status, v) = d.call("POST", "/api/v1/torrents/nothex/recheck", None);
    assert_eq!(status, 400, "{v}");
    // A magnet link without metadata has nothing to check.
    let magnet = format!("magnet:?xt=urn:btih:{}", "cd".repeat(20));
    let v = d.ok(
        "POST",
        "/api/v1/torrents",
        Some(json!({ "magnet": magnet, "paused": true })),
    );
    let ih = v["info_hash"].as_str().unwrap();
    let (status, v) = d.call("POST", &format!("/api/v1/torrents/{ih}/recheck"), None);
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("no metadata"), "{v}");
}

#[test]
fn categories_and_tags_are_kept_across_a_restart() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    root_with_data(&root, 3 * PIECE);
    std::fs::create_dir_all(work.path().join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(work.path().join("elsewhere"), root.join("out")).unwrap();
    let mut d = start(work.path(), "state", &root);

    // Created from the CLI and the API; a save path outside the root is refused.
    let (code, out, err) = d.cli(&["category", "tv shows", "--save-path", "media/tv"]);
    assert_eq!(code, 0, "{out}{err}");
    d.ok(
        "PUT",
        "/api/v1/categories/films",
        Some(json!({ "save_path": "media/films" })),
    );
    for bad in ["../x", "/etc", "out/x"] {
        let (status, v) = d.call(
            "PUT",
            "/api/v1/categories/bad",
            Some(json!({ "save_path": bad })),
        );
        assert_eq!(status, 400, "{bad}: {v}");
    }
    let (status, v) = d.call("PUT", "/api/v1/categories/a%2F%2Fb", Some(json!({})));
    assert_eq!(status, 400, "{v}");
    let (status, _) = d.call("PUT", "/api/v1/categories/x", Some(json!({ "path": "y" })));
    assert_eq!(status, 400, "unknown fields are refused");
    let cats = d.ok("GET", "/api/v1/categories", None);
    assert_eq!(
        cats,
        json!({ "films": { "save_path": "media/films" }, "tv shows": { "save_path": "media/tv" } })
    );

    // Added into a category without out_dir: its data goes to the category's path.
    let (status, v) = d.call(
        "POST",
        "/api/v1/torrents",
        Some(json!({ "torrent_path": "data.torrent", "category": "nope" })),
    );
    assert_eq!(status, 400, "{v}");
    let v = d.ok(
        "POST",
        "/api/v1/torrents",
        Some(json!({ "torrent_path": "data.torrent", "category": "tv shows", "tags": ["hd"] })),
    );
    let ih = v["info_hash"].as_str().unwrap().to_string();
    let t = d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) != "checking");
    let root_canon = root.canonicalize().unwrap();
    assert_eq!(t["out_dir"], root_canon.join("media/tv").to_str().unwrap());
    assert!(root.join("media/tv/data.bin").exists());
    assert_eq!(t["category"], "tv shows");
    assert_eq!(t["tags"], json!(["hd"]));

    // Tags: added (CLI), removed, replaced; a bad one changes nothing.
    let (code, out, err) = d.cli(&["tag", &ih[..8], "new", "4k"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, format!("tags [4k, hd, new] for {ih}\n"));
    let (code, _, _) = d.cli(&["tag", &ih[..8], "--remove", "hd"]);
    assert_eq!(code, 0);
    let (status, _) = d.call(
        "PUT",
        &format!("/api/v1/torrents/{ih}/tags"),
        Some(json!({ "add": ["a,b"] })),
    );
    assert_eq!(status, 400);
    let (status, _) = d.call(
        "PUT",
        &format!("/api/v1/torrents/{ih}/tags"),
        Some(json!({ "add": [], "remove": [] })),
    );
    assert_eq!(status, 400);
    assert_eq!(d.torrent(&ih)["tags"], json!(["4k", "new"]));
    // Into another category: the data stays where it is.
    let (code, out, err) = d.cli(&["category", "films", "--torrent", &ih[..8]]);
    assert_eq!(code, 0, "{out}{err}");
    let (status, _) = d.call(
        "PUT",
        &format!("/api/v1/torrents/{ih}/category"),
        Some(json!({ "category": "nope" })),
    );
    assert_eq!(status, 400);
    let t = d.torrent(&ih);
    assert_eq!(t["category"], "films");
    assert_eq!(t["out_dir"], root_canon.join("media/tv").to_str().unwrap());

    // All of it survives a restart.
    assert_eq!(d.terminate(), 0);
    d.restart();
    let t = d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) != "checking");
    assert_eq!(t["category"], "films");
    assert_eq!(t["tags"], json!(["4k", "new"]));
    assert_eq!(d.ok("GET", "/api/v1/categories", None), cats);
    let (code, out, _) = d.cli(&["category"]);
    assert_eq!(code, 0);
    assert_eq!(out, "films\tmedia/films\ntv shows\tmedia/tv\n");

    // A deleted category leaves its torrents in none.
    let (code, out, err) = d.cli(&["category", "films", "--delete"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(d.torrent(&ih)["category"], serde_json::Value::Null);
    let (status, _) = d.call("DELETE", "/api/v1/categories/films", None);
    assert_eq!(status, 400, "already gone");
    assert_eq!(d.terminate(), 0);
    d.restart();
    assert_eq!(d.torrent(&ih)["category"], serde_json::Value::Null);
    assert_eq!(
        d.ok("GET", "/api/v1/categories", None),
        json!({ "tv shows": { "save_path": "media/tv" } })
    );
}

#[test]
fn move_relocates_a_seeding_torrent_inside_the_root_only() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let data = root_with_data(&root, 5 * PIECE + 7);
    let original = std::fs::read(&data).unwrap();
    std::fs::create_dir_all(work.path().join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(work.path().join("elsewhere"), root.join("out")).unwrap();
    let mut d = start(work.path(), "state", &root);
    let ih = d.add_torrent_path("data.torrent", "");
    let t = d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");
    let total = t["pieces_total"].clone();
    let move_to = |dir: &str| {
        d.call(
            "POST",
            &format!("/api/v1/torrents/{ih}/move"),
            Some(json!({ "out_dir": dir })),
        )
    };

    // Never outside the root, not through a link out of it, not onto something that is there.
    for bad in ["../x", "/tmp", "out", "out/deeper"] {
        let (status, v) = move_to(bad);
        assert_eq!(status, 400, "{bad}: {v}");
    }
    std::fs::create_dir_all(root.join("taken")).unwrap();
    std::fs::write(root.join("taken/data.bin"), b"someone else's").unwrap();
    let (status, v) = move_to("taken");
    assert_eq!(status, 409, "{v}");
    assert_eq!(
        std::fs::read(root.join("taken/data.bin")).unwrap(),
        b"someone else's"
    );
    assert!(data.exists(), "a refused move leaves the data where it was");
    let (status, _) = d.call(
        "POST",
        &format!("/api/v1/torrents/{ih}/move"),
        Some(json!({ "out_dir": "x", "to": "y" })),
    );
    assert_eq!(status, 400, "unknown fields are refused");

    // One filesystem: renamed at once, still seeding, nothing hashed again.
    let (code, out, err) = d.cli(&["move", &ih[..8], "archive/2026"]);
    assert_eq!(code, 0, "{out}{err}");
    let moved = root.join("archive/2026/data.bin");
    assert!(!data.exists() && moved.exists());
    assert!(std::fs::read(&moved).unwrap() == original);
    let t = d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");
    assert_eq!(t["pieces_have"], total);
    assert!(t["moving_to"].is_null());
    let canon = root.canonicalize().unwrap().join("archive/2026");
    assert_eq!(t["out_dir"], canon.to_str().unwrap());
    assert!(out.contains("moved to"), "{out}");

    // The new place survives a restart (and its fast-resume data is trusted there).
    assert_eq!(d.terminate(), 0);
    d.restart();
    let t = d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");
    assert_eq!(t["out_dir"], canon.to_str().unwrap());
    assert_eq!(t["pieces_checked"], 0, "{t:#}");
}
