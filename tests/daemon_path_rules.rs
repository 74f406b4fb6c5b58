//! A daemon torrent's own path rules, end to end: two real daemons on pocketscion's
//! three-paths topology (paths between the leaves 111 and 112 via 110, 120 and 130), driven
//! through the API and the CLI client. Rules that allow no path say so and move no byte; a
//! sequence allowing one path puts every lane on it; new rules while running move the lanes;
//! a restart keeps the rules.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::daemons::{state, Daemon};
use common::{daemon, make_torrent, same_tree, testnet, write_random, LEAF_A, LEAF_B};
use serde_json::{json, Value};

const TRANSITS: [&str; 3] = ["1-ff00:0:110", "1-ff00:0:120", "1-ff00:0:130"];

/// The transit AS of an open SCION lane.
fn transit(lane: &Value) -> &'static str {
    let hops = lane["path"]["hops"].as_array().cloned().unwrap_or_default();
    TRANSITS
        .into_iter()
        .find(|t| hops.iter().any(|h| h["ia"] == *t))
        .unwrap_or("none")
}

/// Open lanes: (transit AS, bytes down).
fn lanes(t: &Value) -> Vec<(&'static str, u64)> {
    t["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["open"] == true && l["transport"] == "scion")
        .map(|l| (transit(l), l["bytes_down"].as_u64().unwrap_or(0)))
        .collect()
}

/// Every open lane is via `only`, and they carried at least `bytes` since they opened.
fn all_via(t: &Value, only: &str, bytes: u64) -> bool {
    let l = lanes(t);
    !l.is_empty()
        && l.iter().all(|(via, _)| *via == only)
        && l.iter().map(|x| x.1).sum::<u64>() >= bytes
}

fn wait(d: &Daemon, ih: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let t = d.torrent(ih);
        if ok(&t) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: never happened: {:#}\nlanes {:?}",
            t,
            lanes(&t)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn seed(tn: &common::Testnet, work: &Path) -> (Daemon, String) {
    let root = work.join("seed-root");
    write_random(&root.join("payload.bin"), 24 << 20, 77);
    make_torrent(
        &root.join("payload.bin"),
        &root.join("payload.torrent"),
        Some(1 << 16),
    );
    let seeder = Daemon::start(
        &work.join("seeder"),
        &[
            format!("--local={LEAF_A},[127.0.0.1]:0"),
            format!("--download-root={}", root.display()),
            format!("--sciond={}", daemon(tn, LEAF_A)),
        ],
        &[],
    );
    let ih = seeder.add_torrent_path("payload.torrent", "");
    let deadline = Instant::now() + Duration::from_secs(60);
    while state(&seeder.torrent(&ih)) != "seeding" || !seeder.snapshot()["local_scion"].is_string()
    {
        assert!(Instant::now() < deadline, "the seeder never seeded");
        std::thread::sleep(Duration::from_millis(100));
    }
    let addr = seeder.snapshot()["local_scion"]
        .as_str()
        .unwrap()
        .to_string();
    (seeder, addr)
}

#[test]
fn a_torrents_sequence_picks_its_path_moves_it_while_running_and_survives_a_restart() {
    let tn = testnet("three-paths");
    let work = tempfile::tempdir().unwrap();
    let (_seeder, seeder_addr) = seed(&tn, work.path());
    let root = work.path().join("leech-root");
    let mut leecher = Daemon::start(
        &work.path().join("leecher"),
        &[
            format!("--local={LEAF_B},[127.0.0.1]:0"),
            format!("--download-root={}", root.display()),
            format!("--sciond={}", daemon(&tn, LEAF_B)),
        ],
        &[],
    );
    let torrent = std::fs::read(work.path().join("seed-root/payload.torrent")).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("payload.torrent"), &torrent).unwrap();

    // Rules that allow none of the daemon's paths: said in the torrent's error, no byte moves.
    let (code, out, err) = leecher.cli(&[
        "add",
        &root.join("payload.torrent").display().to_string(),
        "--peer",
        &seeder_addr,
        "--sequence",
        "0 1-ff00:0:999 0",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let ih = leecher.snapshot()["torrents"][0]["info_hash"]
        .as_str()
        .unwrap()
        .to_string();
    // Slow enough that the rules can be changed twice before it completes.
    leecher.ok(
        "PUT",
        &format!("/api/v1/torrents/{ih}/limits"),
        Some(json!({ "download_bps": 1_000_000 })),
    );
    let t = wait(&leecher, &ih, "no-path error", |t| t["error"].is_string());
    assert_eq!(
        t["error"],
        format!("no path to {LEAF_A} allowed by the torrent's sequence")
    );
    assert_eq!(t["bytes_down"], 0);
    assert!(lanes(&t).is_empty());

    // Only the path via 120: lanes there, bytes there, the error gone.
    let rules = format!("/api/v1/torrents/{ih}/path_rules");
    leecher.ok(
        "PUT",
        &rules,
        Some(json!({ "sequence": "0 1-ff00:0:120 0" })),
    );
    let t = wait(&leecher, &ih, "bytes via 120", |t| {
        all_via(t, "1-ff00:0:120", 1 << 20)
    });
    assert!(t["error"].is_null(), "{}", t["error"]);
    assert_eq!(t["path_rules"]["sequence"], "0 1-ff00:0:120 0");
    assert!(t["progress"].as_f64().unwrap() < 1.0, "too fast to move");

    // Moved while running, by the CLI client: lanes on 120 closed, bytes now via 130 only.
    let (code, out, err) = leecher.cli(&["path-rules", &ih, "--sequence", "0 1-ff00:0:130 0"]);
    assert_eq!(code, 0, "{out}{err}");
    let t = wait(&leecher, &ih, "bytes via 130", |t| {
        all_via(t, "1-ff00:0:130", 1 << 20)
    });
    assert!(t["progress"].as_f64().unwrap() < 1.0, "too fast to move");
    leecher.ok(
        "PUT",
        &format!("/api/v1/torrents/{ih}/limits"),
        Some(json!({ "download_bps": null })),
    );
    let t = wait(&leecher, &ih, "complete", |t| state(t) == "seeding");
    assert!(
        lanes(&t).iter().all(|(via, _)| *via == "1-ff00:0:130"),
        "{:?}",
        lanes(&t)
    );
    same_tree(
        &work.path().join("seed-root/payload.bin"),
        &root.join("payload.bin"),
    );

    // A restart keeps them, in settings.json and in the snapshot.
    assert_eq!(leecher.terminate(), 0, "{}", leecher.log_text());
    leecher.restart();
    let settings = std::fs::read_to_string(
        work.path()
            .join(format!("leecher/torrents/{ih}/settings.json")),
    )
    .unwrap();
    assert!(settings.contains("0 1-ff00:0:130 0"), "{settings}");
    let t = wait(&leecher, &ih, "reloaded", |t| state(t) == "seeding");
    assert_eq!(t["path_rules"]["sequence"], "0 1-ff00:0:130 0");
    assert!(t["path_rules"]["acl"].is_null());

    // Bad rules: refused with the rule named, nothing changed.
    let (status, v) = leecher.call("PUT", &rules, Some(json!({ "acl": "+ 1" })));
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("acl: "), "{v}");
    let (code, _, err) = leecher.cli(&["path-rules", &ih, "--sequence", "1-ff00:0:120#"]);
    assert_ne!(code, 0);
    assert!(err.contains("sequence"), "{err}");
    assert_eq!(
        leecher.torrent(&ih)["path_rules"]["sequence"],
        "0 1-ff00:0:130 0"
    );
}
