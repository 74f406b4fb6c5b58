//! Interoperability with Transmission 3 (transmission-daemon, driven by transmission-remote)
//! over plain TCP. Transmission never dials loopback peers it learns about (it treats 127/8 as
//! "martian"), so in both directions our client dials Transmission's peer port; Transmission
//! accepts plaintext in its default "prefer encryption" mode.

mod common;

use std::time::Duration;

use common::clients::*;
use common::*;

/// Our seeder → Transmission leecher: we dial it, it downloads into its download dir.
fn ours_to_transmission(maker: Maker, multi: bool) {
    let dir = tempfile::tempdir().unwrap();
    let src = content(&dir.path().join("src"), "content", multi, 41);
    let torrent = dir.path().join("x.torrent");
    make(maker, &src, &torrent);
    let downloads = dir.path().join("tr");
    let tr = Transmission::start(dir.path(), &downloads);
    tr.add(&torrent);
    let peer = format!("127.0.0.1:{}", tr.peer_port);
    let (_seeder, _) = our_tcp_seeder(&torrent, &src, Some(&peer), dir.path());
    tr.wait_complete(Duration::from_secs(120));
    same_tree(&src, &downloads.join("content"));
}

/// Transmission seeder → our leecher.
fn transmission_to_ours(maker: Maker, multi: bool) {
    let dir = tempfile::tempdir().unwrap();
    let downloads = dir.path().join("tr");
    let src = content(&downloads, "content", multi, 42);
    let torrent = dir.path().join("x.torrent");
    make(maker, &src, &torrent);
    let tr = Transmission::start(dir.path(), &downloads);
    tr.add(&torrent);
    // Transmission checks the data it finds before it seeds.
    tr.wait_complete(Duration::from_secs(60));
    let out = dir.path().join("out");
    our_tcp_leecher(
        &torrent,
        &out,
        &format!("127.0.0.1:{}", tr.peer_port),
        dir.path(),
    );
    same_tree(&src, &out);
}

#[test]
fn our_seeder_to_transmission_single_file_our_torrent() {
    ours_to_transmission(Maker::Ours, false);
}

#[test]
fn our_seeder_to_transmission_multi_file_transmission_torrent() {
    ours_to_transmission(Maker::TransmissionCreate, true);
}

#[test]
fn transmission_seeder_to_us_single_file_mktorrent() {
    transmission_to_ours(Maker::Mktorrent, false);
}

/// (Not a libtorrent 2 multi-file torrent: Transmission 3 rejects those as "invalid or
/// corrupt", because their BEP 47 padding files repeat a path.)
#[test]
fn transmission_seeder_to_us_multi_file_transmission_torrent() {
    transmission_to_ours(Maker::TransmissionCreate, true);
}
