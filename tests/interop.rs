//! Interoperability with libtorrent 2.0 (qBittorrent's engine, via python3-libtorrent) over
//! plain TCP (BEP 3/6/10, no encryption): our seeder → libtorrent and libtorrent → our
//! leecher, single- and multi-file, torrents made by mktorrent, by our `create` and by
//! libtorrent itself (hybrid v1/v2 with BEP 47 padding files); and a mixed swarm (a SCION
//! seeder and a TCP seeder feeding one leecher). Transmission and aria2 have their own files.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::clients::*;
use common::*;

/// Our seeder → libtorrent leecher (libtorrent dials us); libtorrent saves under SAVE/<name>.
fn ours_to_libtorrent(maker: Maker, multi: bool) {
    let dir = tempfile::tempdir().unwrap();
    let src = content(dir.path(), "content", multi, 11);
    let torrent = dir.path().join("x.torrent");
    make(maker, &src, &torrent);
    let (_seeder, addr) = our_tcp_seeder(&torrent, &src, None, dir.path());
    let save = dir.path().join("lt");
    let mut lt = libtorrent(
        "leech",
        &torrent,
        &save,
        Some(&addr),
        dir.path().join("lt.log"),
    );
    lt.wait_for("DONE", Duration::from_secs(120));
    same_tree(&src, &save.join("content"));
}

/// libtorrent seeder → our leecher (we dial it; TCP only, no SCION daemon). Returns the work
/// dir and the torrent, for checks on the torrent itself.
fn libtorrent_to_ours(maker: Maker, multi: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("lt");
    let src = content(&seed_dir, "content", multi, 12);
    let torrent = dir.path().join("x.torrent");
    make(maker, &src, &torrent);
    let (_lt, port) = libtorrent_seeder(&torrent, &seed_dir, dir.path());
    let out = dir.path().join("out");
    our_tcp_leecher(&torrent, &out, &format!("127.0.0.1:{port}"), dir.path());
    same_tree(&src, &out);
    assert!(!out.join(".pad").exists(), "BEP 47 padding written to disk");
    (dir, torrent)
}

#[test]
fn our_seeder_to_libtorrent_single_file_our_torrent() {
    ours_to_libtorrent(Maker::Ours, false);
}

#[test]
fn our_seeder_to_libtorrent_multi_file_mktorrent() {
    ours_to_libtorrent(Maker::Mktorrent, true);
}

#[test]
fn our_seeder_to_libtorrent_multi_file_libtorrent_torrent() {
    ours_to_libtorrent(Maker::Libtorrent, true);
}

#[test]
fn libtorrent_seeder_to_us_single_file_mktorrent() {
    libtorrent_to_ours(Maker::Mktorrent, false);
}

#[test]
fn libtorrent_seeder_to_us_multi_file_our_torrent() {
    libtorrent_to_ours(Maker::Ours, true);
}

/// A hybrid torrent from libtorrent 2 pads every file to a piece boundary (BEP 47).
#[test]
fn libtorrent_seeder_to_us_multi_file_libtorrent_torrent() {
    let (_dir, torrent) = libtorrent_to_ours(Maker::Libtorrent, true);
    // Make sure the transfer above really had padding in it.
    let info = run(
        &["info".into(), torrent.display().to_string()],
        &[],
        Duration::from_secs(30),
    );
    assert!(
        info.stdout.contains("padding files"),
        "libtorrent 2 torrents are expected to carry BEP 47 padding: {}",
        info.stdout
    );
}

/// One torrent, a SCION seeder (ours, in one AS) and a TCP seeder (libtorrent); our leecher
/// (other AS) gets both peers and must download correct bytes from both.
#[test]
fn mixed_swarm_scion_and_tcp_seeders() {
    let tn = testnet("two-as");
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("lt");
    let src = seed_dir.join("mixed.bin");
    write_random(&src, 24 * 1024 * 1024, 31);
    let torrent = dir.path().join("mixed.torrent");
    make_torrent(&src, &torrent, Some(64 * 1024));
    let ases: Vec<String> = tn.state().ases.keys().cloned().collect();
    let (_scion_seed, scion_addr) = seeder(&tn, &ases[0], &torrent, &src, dir.path(), &[]);
    let (_lt, port) = libtorrent_seeder(&torrent, &seed_dir, dir.path());
    let out = dir.path().join("out.bin");
    let json = dir.path().join("m.json");
    let r = leech(
        &tn,
        &ases[1],
        &torrent,
        &out,
        &format!("{scion_addr};127.0.0.1:{port}"),
        &[&format!("-metricsJson={}", json.display())],
    );
    assert!(
        r.status.success(),
        "leecher failed:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    same_tree(&src, &out);
    let lanes = lanes(&common::json(&json));
    let sum = |tcp: bool| -> u64 {
        lanes
            .iter()
            .filter(|(path, _)| path.starts_with("tcp ") == tcp)
            .map(|(_, b)| b)
            .sum()
    };
    assert!(
        sum(true) > 0,
        "the TCP (libtorrent) seeder delivered nothing: {lanes:?}"
    );
    assert!(
        sum(false) > 0,
        "the SCION seeder delivered nothing: {lanes:?}"
    );
}
