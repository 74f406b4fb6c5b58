//! Seeder and leecher over QUIC/SCION in different ASes of the real local SCION network.

mod common;

use common::*;

fn lanes_with_bytes(summary: &serde_json::Value) -> usize {
    lanes(summary)
        .iter()
        .filter(|(_, bytes)| *bytes > 0)
        .count()
}

#[test]
fn single_file_64mib_across_ases_is_byte_identical_and_uses_every_path() {
    download_over_three_disjoint_paths(&testnet("three-paths"));
}

/// The same on scionproto's routers, control services and daemons. Also seen on the wire
/// (loopback, by the kernel): no SCION packet of the transfer is longer than the path MTU the
/// daemons give (1472) while QUIC's MTU discovery still climbed above 1300 bytes; and both
/// ends bound a port inside the AS's dispatched range (where real routers deliver).
#[test]
fn scionproto_single_file_64mib_across_ases_is_byte_identical_and_uses_every_path() {
    let tn = testnet_on("three-paths", Backend::Scionproto);
    let sciond = btscion::scion::daemon::BlockingDaemonClient::connect(&daemon(&tn, LEAF_A));
    let paths = sciond
        .unwrap()
        .paths(LEAF_B.parse().unwrap(), false)
        .unwrap();
    let mtu = paths[0].mtu;
    assert!(paths.iter().all(|p| p.mtu == 1472), "scionproto's path MTU");
    let router = tn.state().ases[LEAF_A].router.ip();
    let too_long = wire::LongPackets::start(router, usize::from(mtu));
    let long = wire::LongPackets::start(router, 1300);
    let (seeder, leecher) = download_over_three_disjoint_paths(&tn);
    let (too_long, longest) = too_long.stop();
    let (long, _) = long.stop();
    assert_eq!(
        too_long, 0,
        "SCION packets longer than the path MTU {mtu} crossed loopback (longest {longest})"
    );
    assert!(
        long > 1000,
        "MTU discovery climbed: {long} packets above 1300 bytes"
    );
    let range = tn.state().ases[LEAF_B].port_range.expect("port range");
    assert_eq!(range, (31000, 32767));
    for addr in [seeder, leecher] {
        let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
        assert!(
            (range.0..=range.1).contains(&port),
            "{addr} is outside the dispatched ports {range:?}"
        );
    }
}

/// 64 MiB from a seeder in 112 to a leecher in 111: byte-identical, every lane (one per
/// disjoint path) carried bytes, the metrics files agree. Returns the seeder's and the
/// leecher's SCION addresses.
fn download_over_three_disjoint_paths(tn: &Testnet) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.bin");
    write_random(&data, 64 << 20, 1);
    let torrent = dir.path().join("data.torrent");
    make_torrent(&data, &torrent, Some(256 * 1024));
    let (_seed, addr) = seeder(tn, LEAF_B, &torrent, &data, dir.path(), &[]);
    let out = dir.path().join("out.bin");
    let metrics = dir.path().join("m.json");
    let csv = dir.path().join("m.csv");
    let r = leech(
        tn,
        LEAF_A,
        &torrent,
        &out,
        &addr,
        &[
            &format!("-exportMetricsTo={}", csv.display()),
            &format!("-metricsJson={}", metrics.display()),
        ],
    );
    assert!(
        r.status.success(),
        "leecher failed: {}\n{}",
        r.stdout,
        r.stderr
    );
    same_tree(&data, &out);
    let s = json(&metrics);
    assert_eq!(s["complete"], true);
    assert_eq!(s["pieces_downloaded"].as_u64(), Some(256));
    assert_eq!(
        lanes_with_bytes(&s),
        3,
        "all three disjoint paths carry data: {s}"
    );
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        rows.lines().count(),
        1 + s["lanes"].as_array().unwrap().len()
    );
    assert!(r.stdout.contains("== summary"));
    (addr, s["local"].as_str().unwrap_or_default().to_string())
}

#[test]
fn multi_file_torrent_with_nested_dirs_and_empty_file() {
    let tn = testnet("two-as");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("content");
    write_random(&src.join("a/b/deep.bin"), 1_000_003, 2);
    write_random(&src.join("a/odd.bin"), 77_777, 3);
    write_random(&src.join("top.bin"), 300_001, 4);
    std::fs::write(src.join("a/empty.txt"), b"").unwrap();
    let torrent = dir.path().join("multi.torrent");
    make_torrent(&src, &torrent, Some(32 * 1024));
    let ases: Vec<String> = tn.state().ases.keys().cloned().collect();
    let (_seed, addr) = seeder(&tn, &ases[0], &torrent, &src, dir.path(), &[]);
    let out = dir.path().join("out");
    let r = leech(&tn, &ases[1], &torrent, &out, &addr, &[]);
    assert!(
        r.status.success(),
        "leecher failed: {}\n{}",
        r.stdout,
        r.stderr
    );
    same_tree(&src, &out);
    assert_eq!(std::fs::metadata(out.join("a/empty.txt")).unwrap().len(), 0);
}

#[test]
fn one_seeder_serves_two_leechers_at_once() {
    let tn = testnet("three-paths");
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent) = random_torrent(dir.path(), 8 << 20, 5, None);
    let (_seed, addr) = seeder(&tn, LEAF_B, &torrent, &data, dir.path(), &[]);
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let (t, a) = (torrent.clone(), addr.clone());
            let out = dir.path().join(format!("out{i}.bin"));
            let d = daemon(&tn, LEAF_A);
            std::thread::spawn(move || {
                let args = vec![
                    format!("-inPath={}", t.display()),
                    format!("-outPath={}", out.display()),
                    format!("-peer={a}"),
                    "-seed=false".into(),
                ];
                (
                    run(
                        &args,
                        &[("SCION_DAEMON_ADDRESS", d)],
                        std::time::Duration::from_secs(600),
                    ),
                    out,
                )
            })
        })
        .collect();
    for h in handles {
        let (r, out) = h.join().unwrap();
        assert!(r.status.success(), "leecher failed: {}", r.stderr);
        same_tree(&data, &out);
    }
}

#[test]
fn killed_leecher_resumes_without_downloading_verified_pieces_again() {
    let tn = testnet("two-as");
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent) = random_torrent(dir.path(), 32 << 20, 6, Some(64 * 1024));
    let ases: Vec<String> = tn.state().ases.keys().cloned().collect();
    // Slow the seeder down so that there is time to kill the leecher half-way.
    let (_seed, addr) = seeder(&tn, &ases[0], &torrent, &data, dir.path(), &[]);
    let out = dir.path().join("out.bin");
    let mut child = std::process::Command::new(bin())
        .arg(format!("-inPath={}", torrent.display()))
        .arg(format!("-outPath={}", out.display()))
        .arg(format!("-peer={addr}"))
        .env("SCION_DAEMON_ADDRESS", daemon(&tn, &ases[1]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill as soon as some but not all pieces are on disk.
    let total = 512u64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(20));
        if verified_pieces(&data, &out, 64 * 1024) >= 64 || std::time::Instant::now() > deadline {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = verified_pieces(&data, &out, 64 * 1024);
    assert!(
        before > 0 && before < total,
        "kill point: {before} pieces on disk"
    );
    let metrics = dir.path().join("m.json");
    let r = leech(
        &tn,
        &ases[1],
        &torrent,
        &out,
        &addr,
        &[&format!("-metricsJson={}", metrics.display())],
    );
    assert!(r.status.success(), "restart failed: {}", r.stderr);
    same_tree(&data, &out);
    let s = json(&metrics);
    let resumed = s["pieces_resumed"].as_u64().unwrap();
    let downloaded = s["pieces_downloaded"].as_u64().unwrap();
    assert!(
        resumed >= before,
        "resumed {resumed} < {before} verified before the kill"
    );
    assert_eq!(
        resumed + downloaded,
        total,
        "no verified piece is downloaded twice"
    );
}

#[test]
fn torrent_made_by_mktorrent_downloads() {
    let tn = testnet("two-as");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mk.bin");
    write_random(&data, 3_000_000, 7);
    let torrent = dir.path().join("mk.torrent");
    let st = std::process::Command::new("mktorrent")
        .args(["-l", "18", "-a", "http://tracker.invalid/announce", "-o"])
        .arg(&torrent)
        .arg(&data)
        .output()
        .expect("mktorrent is installed (scripts/install-deps.sh)");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let ases: Vec<String> = tn.state().ases.keys().cloned().collect();
    let (_seed, addr) = seeder(&tn, &ases[0], &torrent, &data, dir.path(), &[]);
    let out = dir.path().join("out.bin");
    let r = leech(&tn, &ases[1], &torrent, &out, &addr, &[]);
    assert!(r.status.success(), "{}", r.stderr);
    same_tree(&data, &out);
}

#[test]
fn bad_inputs_end_with_documented_exit_codes() {
    let tn = testnet("two-as");
    let dir = tempfile::tempdir().unwrap();
    let ases: Vec<String> = tn.state().ases.keys().cloned().collect();
    let d = daemon(&tn, &ases[1]);
    // malformed torrent -> 3
    let bad = dir.path().join("bad.torrent");
    std::fs::write(&bad, b"d8:announce3:foo4:infod4:name").unwrap();
    let r = run(
        &[
            format!("-inPath={}", bad.display()),
            "-outPath=x".into(),
            "-peer=1-ff00:0:110,[127.0.0.1]:1".into(),
        ],
        &[("SCION_DAEMON_ADDRESS", d.clone())],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(r.status.code(), Some(3), "{}", r.stderr);
    assert!(r.stderr.contains("invalid torrent"), "{}", r.stderr);
    // bad address -> 2
    let data = dir.path().join("d.bin");
    write_random(&data, 100_000, 8);
    let torrent = dir.path().join("d.torrent");
    make_torrent(&data, &torrent, None);
    let r = run(
        &[
            format!("-inPath={}", torrent.display()),
            "-outPath=o".into(),
            "-peer=not-an-address".into(),
        ],
        &[("SCION_DAEMON_ADDRESS", d.clone())],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
    // unreachable peer (nobody listens) -> 4
    let out = dir.path().join("o.bin");
    let r = leech(
        &tn,
        &ases[1],
        &torrent,
        &out,
        &format!("{},[127.0.0.1]:9", ases[0]),
        &[],
    );
    assert_eq!(r.status.code(), Some(4), "{}", r.stderr);
    assert!(r.stderr.contains("unreachable"), "{}", r.stderr);
    // a peer seeding another torrent (wrong info hash) -> 4 with the reason
    let other = dir.path().join("other.bin");
    write_random(&other, 100_000, 9);
    let other_t = dir.path().join("other.torrent");
    make_torrent(&other, &other_t, None);
    let (_seed, addr) = seeder(&tn, &ases[0], &other_t, &other, dir.path(), &[]);
    let r = leech(&tn, &ases[1], &torrent, &out, &addr, &[]);
    assert_eq!(r.status.code(), Some(4), "{}", r.stderr);
    assert!(
        r.stderr.contains("info hash") || r.stderr.contains("another torrent"),
        "{}",
        r.stderr
    );
    // daemon unreachable -> 6
    let r = run(
        &[
            format!("-inPath={}", torrent.display()),
            format!("-outPath={}", out.display()),
            format!("-peer={addr}"),
        ],
        &[("SCION_DAEMON_ADDRESS", "127.0.0.1:9".into())],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(r.status.code(), Some(6), "{}", r.stderr);
}

/// A magnet link with only the info hash and the seeder's SCION address (`x.pe`), given to the
/// original client's `-inPath`: the metadata comes over a SCION lane, then the data over every
/// disjoint path. A link whose only peer seeds another torrent ends with exit 4 and the reason.
#[test]
fn a_magnet_link_downloads_over_scion_with_the_original_flags() {
    let tn = testnet("three-paths");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("content");
    write_random(&src.join("a.bin"), 3_000_001, 31);
    write_random(&src.join("sub/b.bin"), 1_234_567, 32);
    let torrent = dir.path().join("m.torrent");
    make_torrent(&src, &torrent, Some(64 * 1024));
    let ih = btscion::client::control::info_hash_hex(&info_hash_of(&torrent));
    let (_seed, addr) = seeder(&tn, LEAF_B, &torrent, &src, dir.path(), &[]);
    let out = dir.path().join("out");
    let metrics = dir.path().join("m.json");
    let magnet = format!("magnet:?xt=urn:btih:{ih}&x.pe={addr}");
    let r = run(
        &[
            format!("-inPath={magnet}"),
            format!("-outPath={}", out.display()),
            format!("-metricsJson={}", metrics.display()),
        ],
        &[("SCION_DAEMON_ADDRESS", daemon(&tn, LEAF_A))],
        std::time::Duration::from_secs(300),
    );
    assert!(
        r.status.success(),
        "magnet download failed: {}\n{}",
        r.stdout,
        r.stderr
    );
    same_tree(&src, &out);
    assert!(
        lanes_with_bytes(&json(&metrics)) >= 2,
        "the data came over several paths: {}",
        json(&metrics)
    );

    // The only peer seeds something else: no metadata, exit 4, and why.
    let other = dir.path().join("other.bin");
    write_random(&other, 100_000, 33);
    let other_t = dir.path().join("other.torrent");
    make_torrent(&other, &other_t, None);
    let (_wrong, wrong_addr) = seeder(&tn, LEAF_B, &other_t, &other, dir.path(), &[]);
    let r = run(
        &[
            format!("-inPath=magnet:?xt=urn:btih:{ih}&x.pe={wrong_addr}"),
            format!("-outPath={}", dir.path().join("out2").display()),
        ],
        &[("SCION_DAEMON_ADDRESS", daemon(&tn, LEAF_A))],
        std::time::Duration::from_secs(120),
    );
    assert_eq!(r.status.code(), Some(4), "{}", r.stderr);
    assert!(
        r.stderr.contains("no peer gave the metadata"),
        "{}",
        r.stderr
    );
}
