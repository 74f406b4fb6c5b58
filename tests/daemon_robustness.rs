//! The daemon (a real process, TCP only, no SCION needed) against careless and hostile use of
//! its API and of its download root: settings values past any clock, saved settings that an
//! older version accepted, and symbolic links in the download root that lead out of it.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use common::daemons::{state, Daemon};
use common::{make_torrent, write_random, LEAF_A, LEAF_B};
use serde_json::{json, Value};

/// A daemon whose download root is `work/root`.
fn start(work: &Path) -> Daemon {
    Daemon::start(
        &work.join("state"),
        &[format!("--download-root={}", work.join("root").display())],
        &[],
    )
}

fn put_settings(d: &Daemon, body: Value) -> (u16, Value) {
    d.call("PUT", "/api/v1/settings", Some(body))
}

#[test]
fn a_seed_time_past_any_clock_is_refused_and_a_saved_one_does_not_stop_a_restart() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    write_random(&root.join("data.bin"), 100_000, 7);
    make_torrent(&root.join("data.bin"), &root.join("d.torrent"), Some(16384));
    let mut d = start(work.path());
    let ih = d.add_torrent_path("d.torrent", "");
    d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");

    // The value that used to overflow the seeding deadline (and crash the event loop).
    let (status, v) = put_settings(
        &d,
        json!({ "seed_policy": { "stop_at_ratio": null, "stop_after_secs": u64::MAX } }),
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["kind"], "bad_request", "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("stop_after_secs"),
        "the answer names the field: {v}"
    );
    let s = d.ok("GET", "/api/v1/settings", None);
    assert_eq!(s["seed_policy"]["stop_after_secs"], Value::Null, "{s}");

    // The longest allowed time is accepted, saved, and the torrent goes on seeding.
    let longest = 100 * 365 * 24 * 3600u64;
    let (status, v) = put_settings(
        &d,
        json!({ "seed_policy": { "stop_at_ratio": null, "stop_after_secs": longest } }),
    );
    assert_eq!(status, 204, "{v}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(state(&d.torrent(&ih)), "seeding");
    assert_eq!(d.terminate(), 0, "log:\n{}", d.log_text());

    // A value past the range in client.json (an older version saved it, or a hand edit): the
    // daemon starts, says which value it ignored, uses the default and keeps seeding.
    let saved = d.data_dir.join("client.json");
    let mut settings: Value =
        serde_json::from_slice(&std::fs::read(&saved).expect("client.json was saved")).unwrap();
    // The store wraps what it saves in {"format": N, "data": ...}.
    assert_eq!(settings["data"]["seed_policy"]["stop_after_secs"], longest);
    settings["data"]["seed_policy"]["stop_after_secs"] = json!(u64::MAX);
    std::fs::write(&saved, settings.to_string()).unwrap();
    d.restart();
    d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(state(&d.torrent(&ih)), "seeding");
    let s = d.ok("GET", "/api/v1/settings", None);
    assert_eq!(s["seed_policy"]["stop_after_secs"], Value::Null, "{s}");
    assert!(
        d.log_text().contains("stop_after_secs"),
        "the log says which setting was ignored:\n{}",
        d.log_text()
    );
    assert_eq!(d.terminate(), 0, "log:\n{}", d.log_text());
}

/// The files under `dir` with their contents, sorted.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn symlinks_in_the_download_root_never_lead_a_write_or_a_delete_outside_it() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let elsewhere = work.path().join("elsewhere");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("victim.txt"), b"precious").unwrap();
    let before = contents(&elsewhere);

    // Torrents whose names match links that lead out of the root.
    let src = work.path().join("src");
    write_random(&src.join("escape/victim.txt"), 40_000, 1);
    write_random(&src.join("escape/sub/b.bin"), 30_000, 2);
    write_random(&src.join("evilfile"), 40_000, 3);
    make_torrent(
        &src.join("escape"),
        &root.join("escape.torrent"),
        Some(16384),
    );
    make_torrent(
        &src.join("evilfile"),
        &root.join("evil.torrent"),
        Some(16384),
    );
    symlink(&elsewhere, root.join("escape")).unwrap();
    symlink(elsewhere.join("victim.txt"), root.join("evilfile")).unwrap();

    let d = start(work.path());
    for torrent in ["escape.torrent", "evil.torrent"] {
        let (status, v) = d.call(
            "POST",
            "/api/v1/torrents",
            Some(json!({ "torrent_path": torrent, "out_dir": "" })),
        );
        assert_eq!(status, 409, "{torrent}: {v}");
        assert_eq!(v["kind"], "data_conflict", "{torrent}: {v}");
        assert!(
            v["error"].as_str().unwrap_or("").contains("symbolic link"),
            "{torrent}: the answer says why: {v}"
        );
    }
    assert_eq!(
        contents(&elsewhere),
        before,
        "nothing written outside the root"
    );
    assert!(d.snapshot()["torrents"].as_array().unwrap().is_empty());

    // A torrent added while its directory was real, whose directory is then swapped for a link
    // out of the root: removing it with its data deletes nothing there.
    std::fs::remove_file(root.join("escape")).unwrap();
    let ih = d.add_torrent_path("escape.torrent", "");
    assert!(root.join("escape/victim.txt").is_file());
    std::fs::rename(root.join("escape"), work.path().join("moved")).unwrap();
    symlink(&elsewhere, root.join("escape")).unwrap();
    let (status, v) = d.call(
        "DELETE",
        &format!("/api/v1/torrents/{ih}?delete_data=true"),
        None,
    );
    assert!((200..300).contains(&status), "{status}: {v}");
    assert_eq!(
        contents(&elsewhere),
        before,
        "nothing deleted outside the root"
    );
    assert!(
        root.join("escape").symlink_metadata().is_ok(),
        "the link itself is the user's and stays"
    );
}

#[test]
fn data_under_a_link_that_stays_inside_the_root_is_found() {
    // A link inside the root to a directory inside the root is no escape: a torrent whose
    // data lies behind it seeds from it.
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    write_random(&root.join("real/data.bin"), 70_000, 9);
    make_torrent(
        &root.join("real/data.bin"),
        &root.join("d.torrent"),
        Some(16384),
    );
    symlink("real", root.join("alias")).unwrap();
    let d = start(work.path());
    let ih = d.add_torrent_path("d.torrent", "alias");
    let t = d.wait_torrent(&ih, Duration::from_secs(60), |t| {
        state(t) == "seeding" || state(t) == "error"
    });
    assert_eq!(state(&t), "seeding", "{t}");
}

#[test]
fn a_second_torrent_with_the_same_data_path_is_refused_and_can_go_elsewhere() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    // Two different torrents whose data is named the same.
    write_random(&root.join("same.bin"), 50_000, 1);
    make_torrent(&root.join("same.bin"), &root.join("a.torrent"), Some(16384));
    let other = work.path().join("src/same.bin");
    write_random(&other, 60_000, 2);
    make_torrent(&other, &root.join("b.torrent"), Some(16384));
    let d = start(work.path());
    let a = d.add_torrent_path("a.torrent", "");
    d.wait_torrent(&a, Duration::from_secs(60), |t| state(t) == "seeding");

    let (status, v) = d.call(
        "POST",
        "/api/v1/torrents",
        Some(json!({ "torrent_path": "b.torrent", "out_dir": "" })),
    );
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["kind"], "data_conflict", "{v}");
    assert!(v["error"].as_str().unwrap().contains("share files"), "{v}");
    // Placed apart it is fine; removing it with its data leaves the first one's alone.
    let b = d.add_torrent_path("b.torrent", "elsewhere");
    let (status, v) = d.call(
        "DELETE",
        &format!("/api/v1/torrents/{b}?delete_data=true"),
        None,
    );
    assert!((200..300).contains(&status), "{status}: {v}");
    assert!(!root.join("elsewhere/same.bin").exists());
    assert_eq!(
        std::fs::metadata(root.join("same.bin")).unwrap().len(),
        50_000
    );
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(state(&d.torrent(&a)), "seeding");
}

/// A single-file torrent's bytes: `name` (any length), `length` bytes in pieces of
/// `piece_len` (hashes that match nothing: the data never needs to verify here).
fn torrent_bytes(name: &str, length: u64, piece_len: u64) -> Vec<u8> {
    let pieces = length.div_ceil(piece_len) as usize;
    let mut info = format!(
        "d6:lengthi{length}e4:name{}:{name}12:piece lengthi{piece_len}e6:pieces{}:",
        name.len(),
        pieces * 20
    )
    .into_bytes();
    info.extend(std::iter::repeat_n(7u8, pieces * 20));
    info.extend_from_slice(b"e");
    let mut t = b"d4:info".to_vec();
    t.extend_from_slice(&info);
    t.extend_from_slice(b"e");
    t
}

fn torrent_named(name: &str) -> Vec<u8> {
    torrent_bytes(name, 10, 16384)
}

#[test]
fn data_the_filesystem_cannot_hold_is_the_callers_problem_not_a_server_error() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a-file"), b"x").unwrap();
    std::fs::write(root.join("short.torrent"), torrent_named("short.bin")).unwrap();
    std::fs::write(root.join("long.torrent"), torrent_named(&"n".repeat(300))).unwrap();
    let d = start(work.path());
    for (torrent, out_dir) in [("short.torrent", "a-file"), ("long.torrent", "")] {
        let (status, v) = d.call(
            "POST",
            "/api/v1/torrents",
            Some(json!({ "torrent_path": torrent, "out_dir": out_dir })),
        );
        assert_eq!(
            (status, v["kind"].as_str()),
            (409, Some("data_conflict")),
            "{torrent}: {v}"
        );
    }
    assert_eq!(std::fs::read(root.join("a-file")).unwrap(), b"x");
    assert!(d.snapshot()["torrents"].as_array().unwrap().is_empty());
}

#[test]
fn a_paused_torrent_takes_no_disk_space_until_it_is_resumed() {
    use std::os::unix::fs::MetadataExt;
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let size = 64u64 << 20;
    std::fs::write(
        root.join("big.torrent"),
        torrent_bytes("big.bin", size, 1 << 20),
    )
    .unwrap();
    let d = start(work.path());
    let v = d.ok(
        "POST",
        "/api/v1/torrents",
        Some(json!({ "torrent_path": "big.torrent", "out_dir": "", "paused": true })),
    );
    let ih = v["info_hash"].as_str().unwrap().to_string();
    d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "paused");
    let m = std::fs::metadata(root.join("big.bin")).unwrap();
    assert_eq!(m.len(), size, "the file has its length");
    assert!(
        m.blocks() * 512 < 1 << 20,
        "paused: {} bytes on disk",
        m.blocks() * 512
    );
    d.ok("POST", &format!("/api/v1/torrents/{ih}/resume"), None);
    let m = std::fs::metadata(root.join("big.bin")).unwrap();
    assert!(
        m.blocks() * 512 >= size,
        "resumed: {} bytes on disk",
        m.blocks() * 512
    );
}

#[test]
fn the_seeding_policy_pauses_a_torrent_once_its_time_is_up() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    write_random(&root.join("data.bin"), 50_000, 3);
    make_torrent(&root.join("data.bin"), &root.join("d.torrent"), Some(16384));
    let d = start(work.path());
    let ih = d.add_torrent_path("d.torrent", "");
    d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");
    let (status, v) = put_settings(
        &d,
        json!({ "seed_policy": { "stop_at_ratio": null, "stop_after_secs": 1 } }),
    );
    assert_eq!(status, 204, "{v}");
    let t = d.wait_torrent(&ih, Duration::from_secs(30), |t| state(t) == "paused");
    assert!(
        t["error"]
            .as_str()
            .unwrap_or("")
            .contains("seeding goal reached"),
        "{t}"
    );
    // With the policy lifted and resumed by hand, it seeds again.
    let (status, v) = put_settings(
        &d,
        json!({ "seed_policy": { "stop_at_ratio": null, "stop_after_secs": null } }),
    );
    assert_eq!(status, 204, "{v}");
    d.ok("POST", &format!("/api/v1/torrents/{ih}/resume"), None);
    d.wait_torrent(&ih, Duration::from_secs(30), |t| state(t) == "seeding");
}

#[test]
fn a_seed_file_truncated_behind_the_seeders_back_does_not_stop_it() {
    // Over QUIC/SCION the seeder copies blocks out of its map in user space, where a page past
    // the file's end raises SIGBUS (over TCP the kernel's copy fails with EFAULT instead).
    let tn = common::testnet("three-paths");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let size = 24usize << 20;
    write_random(&root.join("data.bin"), size, 11);
    make_torrent(
        &root.join("data.bin"),
        &root.join("d.torrent"),
        Some(256 << 10),
    );
    let original = std::fs::read(root.join("data.bin")).unwrap();
    let mut seeder = Daemon::start(
        &work.path().join("state"),
        &[
            format!("--download-root={}", root.display()),
            format!("--local={LEAF_A},[127.0.0.1]:0"),
            format!("--sciond={}", common::daemon(&tn, LEAF_A)),
        ],
        &[],
    );
    let ih = seeder.add_torrent_path("d.torrent", "");
    seeder.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");
    let (status, v) = put_settings(&seeder, json!({ "limits": { "upload_bps": 3_000_000 } }));
    assert_eq!(status, 204, "{v}");
    let scion = seeder.snapshot()["local_scion"]
        .as_str()
        .unwrap()
        .to_string();

    let lroot = work.path().join("lroot");
    std::fs::create_dir_all(&lroot).unwrap();
    std::fs::copy(root.join("d.torrent"), lroot.join("d.torrent")).unwrap();
    let leecher = Daemon::start(
        &work.path().join("leecher"),
        &[
            format!("--download-root={}", lroot.display()),
            format!("--local={LEAF_B},[127.0.0.1]:0"),
            format!("--sciond={}", common::daemon(&tn, LEAF_B)),
        ],
        &[],
    );
    leecher.ok(
        "POST",
        "/api/v1/torrents",
        Some(json!({ "torrent_path": "d.torrent", "out_dir": "", "peers": [scion] })),
    );
    leecher.wait_torrent(&ih, Duration::from_secs(60), |t| {
        t["progress"].as_f64().unwrap_or(0.0) > 0.05
    });
    // Someone cuts the seeded file while it is being read from its map.
    std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("data.bin"))
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        seeder.child.try_wait().unwrap().is_none(),
        "the seeder died; log:\n{}",
        seeder.log_text()
    );
    seeder.snapshot();
    assert!(
        seeder.log_text().contains("shrank"),
        "the seeder says why it refuses:\n{}",
        seeder.log_text()
    );
    // The leecher keeps only what verified: every piece it has is the original's.
    let t = leecher.torrent(&ih);
    assert_ne!(state(&t), "seeding", "{t}");
    let have = t["pieces_have"].as_u64().unwrap();
    let got = std::fs::read(lroot.join("data.bin")).unwrap();
    let same = original
        .chunks(256 << 10)
        .zip(got.chunks(256 << 10))
        .filter(|(a, b)| a == b)
        .count() as u64;
    assert!(
        same >= have,
        "{have} pieces verified, {same} equal the original"
    );
}

/// A torrent of far more files than the process may open at once (`ulimit -n 256`): files are
/// opened when used and closed by a process-wide pool, so seeding and downloading it work.
/// Before, the downloading daemon held one descriptor per file from the add on and failed
/// with "Too many open files" (and a 100,000-file torrent also ran out of maps).
#[test]
fn a_torrent_of_more_files_than_descriptors_seeds_and_downloads() {
    const FILES: usize = 3000;
    let work = tempfile::tempdir().unwrap();
    let seed_root = work.path().join("seed");
    let many = seed_root.join("many");
    for i in 0..FILES {
        // 300 to 1,299 bytes, several files per 16 KiB piece.
        write_random(
            &many.join(format!("d{}/f{i}.bin", i % 17)),
            300 + (i * 7919) % 1000,
            i as u64 + 1,
        );
    }
    make_torrent(&many, &seed_root.join("many.torrent"), Some(16384));
    let small = [(common::daemons::NOFILE_LIMIT, "256".to_string())];
    let seeder = Daemon::start(
        &work.path().join("seeder"),
        &[
            format!("--download-root={}", seed_root.display()),
            "--tcp-listen=127.0.0.1:0".to_string(),
        ],
        &small,
    );
    let ih = seeder.add_torrent_path("many.torrent", "");
    seeder.wait_torrent(&ih, Duration::from_secs(120), |t| state(t) == "seeding");
    let tcp = seeder.snapshot()["tcp_listen"]
        .as_str()
        .expect("a TCP listener")
        .to_string();

    let leech_root = work.path().join("leech");
    std::fs::create_dir_all(&leech_root).unwrap();
    std::fs::copy(
        seed_root.join("many.torrent"),
        leech_root.join("many.torrent"),
    )
    .unwrap();
    let leecher = Daemon::start(
        &work.path().join("leecher"),
        &[format!("--download-root={}", leech_root.display())],
        &small,
    );
    let v = leecher.ok(
        "POST",
        "/api/v1/torrents",
        Some(json!({ "torrent_path": "many.torrent", "out_dir": "", "peers": [tcp] })),
    );
    assert_eq!(v["info_hash"], ih.as_str());
    let t = leecher.wait_torrent(&ih, Duration::from_secs(240), |t| {
        state(t) == "seeding" || state(t) == "error"
    });
    assert_eq!(
        state(&t),
        "seeding",
        "{t}\nleecher log:\n{}",
        leecher.log_text()
    );
    common::same_tree(&many, &leech_root.join("many"));
    for d in [&seeder, &leecher] {
        assert!(
            !d.log_text().contains("Too many open files"),
            "{}",
            d.log_text()
        );
    }
}
