//! Magnet links (BEP 9 ut_metadata) against libtorrent 2.0 over TCP, both ways: our single-shot
//! `download` of a magnet link that carries only the info hash and libtorrent's address fetches
//! the metadata from libtorrent, then the data; and libtorrent, given a magnet link and our
//! address, fetches the metadata from our seeder, then the data.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::clients::*;
use common::*;

fn lt_magnet_script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/lt_magnet.py")
}

#[test]
fn our_download_of_a_magnet_link_gets_metadata_and_data_from_libtorrent() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("lt");
    let src = content(&seed_dir, "content", true, 21);
    let torrent = dir.path().join("x.torrent");
    make(Maker::Mktorrent, &src, &torrent);
    let mut c = Command::new(PYTHON);
    c.arg(lt_magnet_script())
        .arg("seed")
        .arg(&torrent)
        .arg(&seed_dir);
    let mut lt = Client::spawn(c, dir.path().join("lt.log"));
    let port: u16 = lt
        .wait_for("LISTEN", Duration::from_secs(30))
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let magnet = lt.wait_for("MAGNET", Duration::from_secs(30));
    let magnet = magnet.split_whitespace().nth(1).unwrap().to_string();
    lt.wait_for("SEEDING", Duration::from_secs(60));

    let out = dir.path().join("out");
    let saved = dir.path().join("fetched.torrent");
    let r = run(
        &[
            "download".into(),
            "--torrent".into(),
            format!("{magnet}&x.pe=127.0.0.1:{port}"),
            "--path".into(),
            out.display().to_string(),
            "--save-torrent".into(),
            saved.display().to_string(),
        ],
        &[("SCION_DAEMON_ADDRESS", NO_DAEMON.to_string())],
        Duration::from_secs(180),
    );
    assert!(
        r.status.success(),
        "magnet download failed ({}):\n{}\n{}",
        r.status,
        r.stdout,
        r.stderr
    );
    let fetch_line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("fetching the metadata of"))
        .unwrap_or_else(|| panic!("no fetch line in:\n{}", r.stdout));
    // Without a SCION daemon the line says so, as the download's own start line does.
    assert!(
        fetch_line.ends_with(" as none (no SCION daemon)"),
        "{fetch_line}"
    );
    same_tree(&src, &out);
    // The saved .torrent is the same torrent (same info hash) as libtorrent's.
    assert_eq!(info_hash_of(&saved), info_hash_of(&torrent));
}

#[test]
fn libtorrent_fetches_metadata_and_data_of_a_magnet_link_from_our_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let src = content(dir.path(), "content", true, 22);
    let torrent = dir.path().join("x.torrent");
    make(Maker::Ours, &src, &torrent);
    let (_seeder, addr) = our_tcp_seeder(&torrent, &src, None, dir.path());
    let ih = info_hash_of(&torrent);
    let magnet = format!(
        "magnet:?xt=urn:btih:{}",
        btscion::client::control::info_hash_hex(&ih)
    );
    let save = dir.path().join("lt");
    std::fs::create_dir_all(&save).unwrap();
    let lt_torrent = dir.path().join("lt-fetched.torrent");
    let mut c = Command::new(PYTHON);
    c.arg(lt_magnet_script())
        .arg("fetch")
        .arg(&magnet)
        .arg(&save)
        .arg(&addr)
        .arg("--download")
        .arg("--save-torrent")
        .arg(&lt_torrent);
    let mut lt = Client::spawn(c, dir.path().join("lt.log"));
    let meta = lt.wait_for("METADATA", Duration::from_secs(60));
    assert!(
        meta.contains(&btscion::client::control::info_hash_hex(&ih)),
        "{meta}"
    );
    lt.wait_for("DONE", Duration::from_secs(120));
    same_tree(&src, &save.join("content"));
    assert_eq!(info_hash_of(&lt_torrent), ih);
}
