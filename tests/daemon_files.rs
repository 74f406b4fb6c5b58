//! File choice end to end (issue 26): a real daemon downloads a multi-file torrent from a real
//! seeder (our single-shot client over TCP) with its middle file skipped — the file is never
//! created, the pieces it shares with its neighbours are kept in the parts file, the other
//! files verify byte for byte and the torrent counts as complete — then the file is wanted
//! again and arrives; restarts keep the choice and the parts data. Hostile priorities and
//! bodies are refused with 400.

mod common;

use std::path::Path;
use std::time::Duration;

use common::clients::{free_port, our_tcp_seeder, NO_DAEMON};
use common::daemons::{state, Daemon};
use common::{make_torrent, write_random};
use serde_json::json;

const PIECE: u32 = 64 * 1024;

/// A PUT with a raw body (for bodies that are not JSON at all).
fn put_raw(d: &Daemon, path: &str, body: &str) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    agent
        .put(&d.url(path))
        .header("content-type", "application/json")
        .send(body)
        .unwrap()
        .status()
        .as_u16()
}

fn same(a: &Path, b: &Path) {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(x == y, "{} differs from {}", b.display(), a.display());
}

#[test]
fn a_skipped_file_is_not_created_and_arrives_once_wanted() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src/multi");
    // Sizes off the piece grid: b shares its first piece with a and its last with c.
    write_random(&src.join("a.bin"), 300_001, 1);
    write_random(&src.join("sub/b.bin"), 500_003, 2);
    write_random(&src.join("c.bin"), 200_007, 3);
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let torrent = root.join("multi.torrent");
    make_torrent(&src, &torrent, Some(PIECE));
    let (_seeder, seeder_addr) = our_tcp_seeder(&torrent, &src, None, work.path());

    let state_dir = work.path().join("state");
    let args = vec![
        format!("--download-root={}", root.display()),
        format!("--tcp-listen=127.0.0.1:{}", free_port()),
    ];
    let envs = [("SCION_DAEMON_ADDRESS", NO_DAEMON.to_string())];
    let mut d = Daemon::start(&state_dir, &args, &envs);
    let added = d.ok(
        "POST",
        "/api/v1/torrents",
        Some(json!({
            "torrent_path": "multi.torrent",
            "out_dir": "dl",
            "paused": true,
            "peers": [seeder_addr],
        })),
    );
    let ih = added["info_hash"].as_str().unwrap().to_string();
    d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "paused");
    let list = d.files(&ih);
    let paths: Vec<&str> = list.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["a.bin", "c.bin", "sub/b.bin"], "{list:?}");
    let b_index = 2;

    // Hostile input first: nothing of it may change anything.
    let files_path = format!("/api/v1/torrents/{ih}/files");
    for bad in [
        json!({"priorities": {"3": "skip"}}),
        json!({"priorities": {"0": "urgent"}}),
        json!({"priorities": {"-1": "skip"}}),
        json!({"priorities": {"0": 0}}),
        json!({"priorities": ["skip", "skip", "skip", "skip"]}),
        json!({"priorities": "skip"}),
        json!({"prio": {"0": "skip"}}),
        json!([{"0": "skip"}]),
    ] {
        let (status, body) = d.call("PUT", &files_path, Some(bad.clone()));
        assert_eq!(status, 400, "{bad} answered {status}: {body}");
        assert_eq!(body["kind"], "bad_request", "{bad}: {body}");
    }
    for garbage in [
        "{not json",
        "",
        "null",
        "{\"priorities\": {\"0\": \"skip\"}",
    ] {
        assert_eq!(put_raw(&d, &files_path, garbage), 400, "{garbage:?}");
    }
    let (status, _) = d.call(
        "PUT",
        &format!("/api/v1/torrents/{}/files", "0".repeat(40)),
        Some(json!({"priorities": {"0": "skip"}})),
    );
    assert_eq!(status, 404);
    assert!(d.files(&ih).iter().all(|f| f["priority"] == "normal"));

    // Skip b (by the CLI) and fetch the rest.
    let (code, out, err) = d.cli(&["prio", &ih[..8], &b_index.to_string(), "--skip"]);
    assert_eq!(code, 0, "{out}{err}");
    let data = root.join("dl/multi");
    assert!(
        !data.join("sub/b.bin").exists(),
        "a skipped file is not on disk"
    );
    d.ok("POST", &format!("/api/v1/torrents/{ih}/resume"), None);
    let t = d.wait_torrent(&ih, Duration::from_secs(120), |t| state(t) == "seeding");
    assert_eq!(t["wanted_bytes"], 300_001 + 200_007, "{t}");
    assert_eq!(t["progress"], 1.0);
    assert!(t["pieces_have"].as_u64() < t["pieces_total"].as_u64());
    assert!(!data.join("sub/b.bin").exists());
    same(&src.join("a.bin"), &data.join("a.bin"));
    same(&src.join("c.bin"), &data.join("c.bin"));
    let parts = root.join("dl").join(format!(".{ih}.parts"));
    assert!(parts.exists(), "b's share of the edge pieces is kept aside");
    let list = d.files(&ih);
    assert_eq!(list[b_index]["priority"], "skip");
    assert_eq!(list[0]["progress"], 1.0);
    let (code, table, _) = d.cli(&["files", &ih[..8]]);
    assert_eq!(code, 0);
    assert!(
        table
            .lines()
            .any(|l| l.contains("skip") && l.ends_with("sub/b.bin")),
        "{table}"
    );

    // A restart keeps the choice, creates nothing, loses no parts data.
    assert_eq!(d.terminate(), 0);
    d.restart();
    let t = d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");
    assert_eq!(t["files"][b_index]["priority"], "skip");
    assert!(!data.join("sub/b.bin").exists());
    assert!(parts.exists());

    // Wanted again: it comes out of the parts file and the rest is fetched.
    d.ok(
        "PUT",
        &files_path,
        Some(json!({"priorities": {b_index.to_string(): "high"}})),
    );
    let t = d.wait_torrent(&ih, Duration::from_secs(120), |t| {
        state(t) == "seeding" && t["pieces_have"] == t["pieces_total"]
    });
    assert_eq!(t["wanted_bytes"], 300_001 + 500_003 + 200_007);
    same(&src.join("sub/b.bin"), &data.join("sub/b.bin"));
    same(&src.join("a.bin"), &data.join("a.bin"));
    same(&src.join("c.bin"), &data.join("c.bin"));
    assert!(!parts.exists(), "nothing is kept aside any more");

    // Sequential mode and first/last-piece priority are saved too.
    d.ok(
        "PUT",
        &format!("/api/v1/torrents/{ih}/options"),
        Some(json!({"sequential": true, "first_last_piece": true})),
    );
    let (status, _) = d.call(
        "PUT",
        &format!("/api/v1/torrents/{ih}/options"),
        Some(json!({"sequential": "yes"})),
    );
    assert_eq!(status, 400);
    assert_eq!(d.terminate(), 0);
    d.restart();
    let t = d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");
    assert_eq!(t["sequential"], true);
    assert_eq!(t["first_last_piece"], true);
    assert_eq!(t["files"][b_index]["priority"], "high");
}
