//! A seeder and a daemon on several io_uring runtimes (`-runtimes=N`, `daemon --runtimes N`)
//! on the real local SCION network: every leecher, in the seeder's AS and across ASes (where
//! every packet arrives from the border router's underlay address, so only the connection id
//! can steer it), downloads byte-identical data, and the connections are served by more than
//! one runtime.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::daemons::{state, Daemon};
use common::*;

/// The seeder's log without ANSI colour codes.
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn a_seeder_on_two_runtimes_serves_leechers_in_its_as_and_across_ases() {
    let tn = testnet("three-paths");
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent) = random_torrent(dir.path(), 12 << 20, 11, None);
    let (csv, json) = (dir.path().join("seed.csv"), dir.path().join("seed.json"));
    let (mut seed, addr) = seeder(
        &tn,
        LEAF_A,
        &torrent,
        &data,
        dir.path(),
        &[
            "-runtimes=2",
            "-logLevel=INFO",
            &format!("-exportMetricsTo={}", csv.display()),
            &format!("-metricsJson={}", json.display()),
        ],
    );
    // Runtime 1 gets the torrent from runtime 0 a moment after the start line; a connection
    // steered to it before that is refused and dialled again (onto either runtime), so fast
    // leechers could all end up on runtime 0. Start them once both runtimes serve.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !plain(&std::fs::read_to_string(&seed.stderr_log).unwrap_or_default())
        .lines()
        .any(|l| l.contains("runtime{index=1}") && l.contains("seeding on this runtime"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "runtime 1 never served the torrent:\n{}",
            std::fs::read_to_string(&seed.stderr_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eight_leechers(&tn, dir.path(), &torrent, &data, &addr);
    // Stopped by SIGINT, its summary covers the lanes of both runtimes (a row for every lane
    // either runtime closed) and at least one whole copy went out (the leechers also trade
    // pieces among themselves, so not necessarily eight).
    let pid = libc::pid_t::try_from(seed.child.id()).unwrap();
    // SAFETY: kill(2) with the pid of our own child, still unreaped (we hold it).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = seed.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let summary = common::json(&json);
    let lanes = summary["lanes"].as_array().unwrap();
    let up: u64 = lanes.iter().map(|l| l["bytes_up"].as_u64().unwrap()).sum();
    assert!(up >= 12 << 20, "lanes uploaded {up}: {summary}");
    assert_eq!(summary["bytes_up"].as_u64(), Some(up), "{summary}");
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count() - 1;
    assert_eq!(rows, lanes.len(), "a CSV row per lane");
    let log = plain(&std::fs::read_to_string(&seed.stderr_log).unwrap());
    let served = |by_runtime_1: bool| {
        log.lines()
            .filter(|l| l.contains("lane closed"))
            .filter(|l| l.contains("runtime{index=1}") == by_runtime_1)
            .count()
    };
    // A connection lands on a runtime by the first byte of a random connection id: all 14 on
    // one runtime has a chance of 2^-13.
    assert!(served(true) > 0, "runtime 1 served no lane:\n{log}");
    assert_eq!(
        lanes.len(),
        served(true) + served(false),
        "a summary row for every lane closed on either runtime:\n{log}"
    );
    assert!(served(false) > 0, "runtime 0 served no lane:\n{log}");
    assert!(
        log.contains("runtime{index=1}") && log.contains("seeding on"),
        "runtime 1 did not start:\n{log}"
    );
}

/// Five leechers beside the seeder in LEAF_A (one lane each) and three in LEAF_B (a lane per
/// path, three paths): 14 connections, each steered to a runtime by its connection id. Each
/// must get the data.
fn eight_leechers(
    tn: &Testnet,
    dir: &std::path::Path,
    torrent: &std::path::Path,
    data: &std::path::Path,
    addr: &str,
) {
    let leechers: Vec<(&str, PathBuf)> = (0..8)
        .map(|i| {
            let ia = if i < 5 { LEAF_A } else { LEAF_B };
            (ia, dir.join(format!("out{i}.bin")))
        })
        .collect();
    std::thread::scope(|s| {
        let runs: Vec<_> = leechers
            .iter()
            .map(|(ia, out)| s.spawn(move || leech(tn, ia, torrent, out, addr, &[])))
            .collect();
        for (r, (ia, out)) in runs.into_iter().zip(&leechers) {
            let r = r.join().unwrap();
            assert!(r.status.success(), "leecher in {ia} failed: {}", r.stderr);
            same_tree(data, out);
        }
    });
}

#[test]
fn a_daemon_on_two_runtimes_serves_complete_torrents_from_both_and_shows_one_client() {
    let tn = testnet("three-paths");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let (data, _) = random_torrent(&root, 12 << 20, 21, None);
    let mut d = Daemon::start(
        &dir.path().join("state"),
        &[
            format!("--local={LEAF_A},[127.0.0.1]:0"),
            format!("--download-root={}", root.display()),
            format!("--sciond={}", daemon(&tn, LEAF_A)),
            "--runtimes=2".into(),
        ],
        &[],
    );
    let ih = d.add_torrent_path("d.torrent", "");
    d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");
    let addr = d.snapshot()["local_scion"].as_str().unwrap().to_string();
    eight_leechers(&tn, dir.path(), &root.join("d.torrent"), &data, &addr);

    // What runtime 1 uploaded shows in the API beside runtime 0's (its snapshot is merged at
    // most a second later), and the torrent's upload total and ratio count both.
    let size = 12u64 << 20;
    let by_runtime = |t: &serde_json::Value| -> Vec<u64> {
        t["uploaded_by_runtime"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    let t = d.wait_torrent(&ih, Duration::from_secs(20), |t| {
        let up = by_runtime(t);
        up.len() == 2 && up.iter().all(|b| *b > 0) && up.iter().sum::<u64>() >= size
    });
    let up = by_runtime(&t);
    let total = t["bytes_up"].as_u64().unwrap();
    assert_eq!(total, up[0] + up[1], "{t:#}");
    let ratio = t["ratio"].as_f64().unwrap();
    assert!((ratio - total as f64 / size as f64).abs() < 1e-9, "{t:#}");

    // Paused, it is served nowhere: a new leecher finds no runtime that answers for it.
    d.ok("POST", &format!("/api/v1/torrents/{ih}/pause"), None);
    std::thread::sleep(Duration::from_millis(1500));
    let late = leech(
        &tn,
        LEAF_A,
        &root.join("d.torrent"),
        &dir.path().join("late.bin"),
        &addr,
        &[],
    );
    assert!(
        !late.status.success(),
        "a paused torrent was served: {}",
        late.stdout
    );

    assert_eq!(d.terminate(), 0, "log:\n{}", d.log_text());
    let log = plain(&d.log_text());
    assert!(
        log.contains("runtime{index=1}") && log.contains("serving complete torrents"),
        "runtime 1 did not start:\n{log}"
    );
}

#[test]
fn runtimes_is_for_seeding_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent) = random_torrent(dir.path(), 1 << 16, 3, None);
    let t = format!("-inPath={}", torrent.display());
    for (args, why) in [
        (
            vec![
                t.clone(),
                "-seed=false".into(),
                "-outPath=x".into(),
                "-peer=127.0.0.1:1".into(),
                "-runtimes=2".into(),
            ],
            "for seeding",
        ),
        (
            vec![
                t.clone(),
                "-seed=true".into(),
                format!("-file={}", data.display()),
                "-runtimes=0".into(),
            ],
            "from 1 to 64",
        ),
        (
            vec![
                t.clone(),
                "-seed=true".into(),
                format!("-file={}", data.display()),
                "-runtimes=65".into(),
            ],
            "from 1 to 64",
        ),
    ] {
        let r = run(&args, &[], Duration::from_secs(30));
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(why), "{args:?}: {}", r.stderr);
    }
}
