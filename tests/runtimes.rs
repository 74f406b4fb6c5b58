//! A seeder on several io_uring runtimes (`-runtimes=N`) on the real local SCION network:
//! every leecher, in the seeder's AS and across ASes (where every packet arrives from the
//! border router's underlay address, so only the connection id can steer it), downloads
//! byte-identical data, and the connections are served by more than one runtime.

mod common;

use std::path::PathBuf;
use std::time::Duration;

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
    let (seed, addr) = seeder(
        &tn,
        LEAF_A,
        &torrent,
        &data,
        dir.path(),
        &["-runtimes=2", "-logLevel=INFO"],
    );
    // Five leechers beside the seeder (one lane each) and three in the other AS (a lane per
    // path, three paths): 14 connections, each steered by its connection id.
    let leechers: Vec<(&str, PathBuf)> = (0..8)
        .map(|i| {
            let ia = if i < 5 { LEAF_A } else { LEAF_B };
            (ia, dir.path().join(format!("out{i}.bin")))
        })
        .collect();
    std::thread::scope(|s| {
        let runs: Vec<_> = leechers
            .iter()
            .map(|(ia, out)| {
                let (tn, torrent, addr) = (&tn, &torrent, &addr);
                s.spawn(move || leech(tn, ia, torrent, out, addr, &[]))
            })
            .collect();
        for (r, (ia, out)) in runs.into_iter().zip(&leechers) {
            let r = r.join().unwrap();
            assert!(r.status.success(), "leecher in {ia} failed: {}", r.stderr);
            same_tree(&data, out);
        }
    });
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
    assert!(served(false) > 0, "runtime 0 served no lane:\n{log}");
    assert!(
        log.contains("runtime{index=1}") && log.contains("seeding on"),
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
