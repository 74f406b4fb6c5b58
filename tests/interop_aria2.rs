//! Interoperability with aria2 over plain TCP. aria2 has no way to be told a peer, so our
//! client dials aria2's listen port in both directions; aria2 accepts plaintext by default.

mod common;

use std::time::Duration;

use common::clients::*;
use common::*;

/// Our seeder → aria2 leecher (aria2 exits 0 once the download is complete and verified).
fn ours_to_aria2(maker: Maker, multi: bool) {
    let dir = tempfile::tempdir().unwrap();
    let src = content(&dir.path().join("src"), "content", multi, 51);
    let torrent = dir.path().join("x.torrent");
    make(maker, &src, &torrent);
    let downloads = dir.path().join("aria2");
    let (mut aria, port) = aria2(&torrent, &downloads, false, dir.path());
    let (_seeder, _) = our_tcp_seeder(
        &torrent,
        &src,
        Some(&format!("127.0.0.1:{port}")),
        dir.path(),
    );
    let status = aria.wait_exit(Duration::from_secs(120));
    assert!(status.success(), "aria2 failed ({status}):\n{}", aria.log());
    same_tree(&src, &downloads.join("content"));
}

/// aria2 seeder → our leecher.
fn aria2_to_ours(maker: Maker, multi: bool) {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("aria2");
    let src = content(&seed_dir, "content", multi, 52);
    let torrent = dir.path().join("x.torrent");
    make(maker, &src, &torrent);
    let (_aria, port) = aria2(&torrent, &seed_dir, true, dir.path());
    let out = dir.path().join("out");
    // aria2 hashes the data before it serves; our leecher redials until it answers.
    our_tcp_leecher(&torrent, &out, &format!("127.0.0.1:{port}"), dir.path());
    same_tree(&src, &out);
}

#[test]
fn our_seeder_to_aria2_multi_file_our_torrent() {
    ours_to_aria2(Maker::Ours, true);
}

/// (Not a libtorrent 2 torrent: aria2 1.36 computes a different info hash for hybrid v1/v2
/// torrents, so it cannot join their swarms with any client.)
#[test]
fn our_seeder_to_aria2_single_file_transmission_torrent() {
    ours_to_aria2(Maker::TransmissionCreate, false);
}

#[test]
fn aria2_seeder_to_us_single_file_mktorrent() {
    aria2_to_ours(Maker::Mktorrent, false);
}

#[test]
fn aria2_seeder_to_us_multi_file_our_torrent() {
    aria2_to_ours(Maker::Ours, true);
}
