//! MSE/PE (message stream encryption) over TCP with real clients, each forced to encrypt:
//! libtorrent (in/out_enc_policy pe_forced, allowed_enc_level rc4) both ways, Transmission
//! (`encryption` 2, required) both ways, aria2 (`--bt-require-crypto`, arc4) downloading from
//! us. Our side runs with `-encryption=required`. Then the policies refusing (a plaintext peer
//! under `required`, an MSE peer under `disabled`, with the typed reason in our log) and
//! hostile handshakes against a seeder that must stay up for an honest peer.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::clients::*;
use common::*;

/// Our TCP-only seeder with an encryption policy; its TCP address.
fn our_seeder(
    torrent: &Path,
    data: &Path,
    dial: Option<&str>,
    work: &Path,
    policy: &str,
) -> (Client, String) {
    let flag = format!("-encryption={policy}");
    our_tcp_seeder_with(torrent, data, dial, work, &[flag.as_str()])
}

/// Our leecher with `-encryption=required` from `peer`: succeeds, and every TCP byte came
/// over an RC4 lane.
fn our_encrypted_leecher(torrent: &Path, out: &Path, peer: &str, work: &Path) {
    let flags = ["-encryption=required"];
    let (_, summary) = our_tcp_leecher_with(torrent, out, peer, work, &flags);
    let lanes = lanes(&summary);
    let rc4: u64 = lanes
        .iter()
        .filter(|(p, _)| p.starts_with("tcp ") && p.ends_with("(rc4)"))
        .map(|(_, b)| b)
        .sum();
    let plain: u64 = lanes
        .iter()
        .filter(|(p, _)| p.starts_with("tcp ") && !p.ends_with("(rc4)"))
        .map(|(_, b)| b)
        .sum();
    assert!(rc4 > 0 && plain == 0, "lanes: {lanes:?}");
}

/// libtorrent, forced to encrypt, downloads `torrent` from `addr`: the same bytes as `src`.
fn libtorrent_forced_downloads(src: &Path, torrent: &Path, addr: &str, work: &Path) {
    let save = work.join("lt");
    let log = work.join("lt.log");
    let mut lt = libtorrent_encrypted("leech", torrent, &save, Some(addr), log, "forced");
    lt.wait_for("DONE", Duration::from_secs(120));
    same_tree(src, &save.join("content"));
}

/// Waits until our log says `what` (a refusal is logged with its typed reason).
fn wait_for_log(c: &Client, what: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !c.log().contains(what) {
        assert!(
            Instant::now() < deadline,
            "no {what:?} in our log within {timeout:?}:\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn libtorrent_forced_downloads_from_us() {
    let dir = tempfile::tempdir().unwrap();
    let src = content(dir.path(), "content", true, 61);
    let torrent = dir.path().join("x.torrent");
    make(Maker::Ours, &src, &torrent);
    let (_seeder, addr) = our_seeder(&torrent, &src, None, dir.path(), "required");
    libtorrent_forced_downloads(&src, &torrent, &addr, dir.path());
}

#[test]
fn libtorrent_forced_seeds_to_us() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("lt");
    let src = content(&seed_dir, "content", false, 62);
    let torrent = dir.path().join("x.torrent");
    make(Maker::Mktorrent, &src, &torrent);
    let (_lt, port) = libtorrent_seeder_encrypted(&torrent, &seed_dir, dir.path(), "forced");
    let out = dir.path().join("out");
    our_encrypted_leecher(&torrent, &out, &format!("127.0.0.1:{port}"), dir.path());
    same_tree(&src, &out);
}

#[test]
fn transmission_required_downloads_from_us() {
    let dir = tempfile::tempdir().unwrap();
    let src = content(&dir.path().join("src"), "content", false, 63);
    let torrent = dir.path().join("x.torrent");
    make(Maker::Ours, &src, &torrent);
    let downloads = dir.path().join("tr");
    let tr = Transmission::start_with_encryption(dir.path(), &downloads, 2);
    tr.add(&torrent);
    let peer = format!("127.0.0.1:{}", tr.peer_port);
    let (_seeder, _) = our_seeder(&torrent, &src, Some(&peer), dir.path(), "required");
    tr.wait_complete(Duration::from_secs(120));
    same_tree(&src, &downloads.join("content"));
}

#[test]
fn transmission_required_seeds_to_us() {
    let dir = tempfile::tempdir().unwrap();
    let downloads = dir.path().join("tr");
    let src = content(&downloads, "content", true, 64);
    let torrent = dir.path().join("x.torrent");
    make(Maker::Ours, &src, &torrent);
    let tr = Transmission::start_with_encryption(dir.path(), &downloads, 2);
    tr.add(&torrent);
    tr.wait_complete(Duration::from_secs(60));
    let out = dir.path().join("out");
    let peer = format!("127.0.0.1:{}", tr.peer_port);
    our_encrypted_leecher(&torrent, &out, &peer, dir.path());
    same_tree(&src, &out);
}

#[test]
fn aria2_requiring_crypto_downloads_from_us() {
    let dir = tempfile::tempdir().unwrap();
    let src = content(&dir.path().join("src"), "content", false, 65);
    let torrent = dir.path().join("x.torrent");
    make(Maker::Ours, &src, &torrent);
    let downloads = dir.path().join("aria2");
    let (mut aria, port) = aria2_with(
        &torrent,
        &downloads,
        false,
        dir.path(),
        &["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"],
    );
    let peer = format!("127.0.0.1:{port}");
    let (_seeder, _) = our_seeder(&torrent, &src, Some(&peer), dir.path(), "required");
    let status = aria.wait_exit(Duration::from_secs(120));
    assert!(status.success(), "aria2 failed ({status}):\n{}", aria.log());
    same_tree(&src, &downloads.join("content"));
}

/// Our seeder with policy `ours` refuses libtorrent with policy `theirs`, and its log says
/// `why`.
fn our_seeder_refuses(ours: &str, theirs: &str, seed: u64, why: &str) {
    let dir = tempfile::tempdir().unwrap();
    let src = content(dir.path(), "content", false, seed);
    let torrent = dir.path().join("x.torrent");
    make(Maker::Ours, &src, &torrent);
    let (seeder, addr) = our_seeder(&torrent, &src, None, dir.path(), ours);
    let save = dir.path().join("lt");
    let log = dir.path().join("lt.log");
    let _lt = libtorrent_encrypted("leech", &torrent, &save, Some(&addr), log, theirs);
    wait_for_log(&seeder, why, Duration::from_secs(60));
}

/// `required` refuses libtorrent speaking plain BitTorrent, and says why.
#[test]
fn required_refuses_a_plaintext_peer() {
    our_seeder_refuses(
        "required",
        "disabled",
        66,
        "plain BitTorrent handshake refused: encryption is required",
    );
}

/// `disabled` refuses libtorrent that only speaks MSE, and says why.
#[test]
fn disabled_refuses_mse() {
    our_seeder_refuses(
        "disabled",
        "forced",
        67,
        "MSE handshake refused: encryption is disabled",
    );
}

/// Reads until the peer closes; how long that took.
fn closed_after(s: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(n) if n > 0 => continue,
            _ if start.elapsed() < limit => return start.elapsed(),
            r => panic!("still open after {limit:?}: {r:?}"),
        }
    }
}

/// Hostile handshakes cost the seeder a closed connection each, no more: garbage where the
/// sync mark should be and an oversized PadC are refused before the deadline, a stalled
/// handshake is cut at the deadline; afterwards an honest encrypted peer still downloads.
#[test]
fn hostile_handshakes_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let src = content(dir.path(), "content", false, 68);
    let torrent = dir.path().join("x.torrent");
    make(Maker::Ours, &src, &torrent);
    let (mut seeder, addr) = our_seeder(&torrent, &src, None, dir.path(), "enabled");
    let deadline = Duration::from_secs(10);

    // A key, then 600 bytes with no HASH('req1', S) in them (past the 532-byte window).
    let mut s = TcpStream::connect(&addr).unwrap();
    let mut hello = vec![0x5a; 96];
    hello.extend([0u8; 600]);
    s.write_all(&hello).unwrap();
    let t = closed_after(&mut s, Duration::from_secs(30));
    assert!(t < deadline, "garbage after the key: closed after {t:?}");

    // A well-formed MSE start for our torrent, with PadC of 600 bytes (at most 512).
    let mut s = TcpStream::connect(&addr).unwrap();
    let mut a = bt_mse::Initiator::with_pads(
        info_hash_of(&torrent),
        bt_mse::CryptoSet::BOTH,
        Vec::new(),
        0,
        600,
        &mut rand::rng(),
    )
    .unwrap();
    s.write_all(&a.take_output()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while got.len() < 96 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before sending its key");
        got.extend_from_slice(&buf[..n]);
    }
    let _ = a.feed(&got);
    s.write_all(&a.take_output()).unwrap();
    let t = closed_after(&mut s, Duration::from_secs(30));
    assert!(t < deadline, "oversized PadC: closed after {t:?}");

    // Half a key, then silence: cut at the deadline, not before.
    let mut s = TcpStream::connect(&addr).unwrap();
    let start = Instant::now();
    s.write_all(&[0x42; 50]).unwrap();
    closed_after(&mut s, Duration::from_secs(40));
    let t = start.elapsed();
    assert!(
        t >= deadline - Duration::from_millis(500),
        "stall cut after {t:?}"
    );

    assert!(seeder.is_running(), "the seeder died:\n{}", seeder.log());
    libtorrent_forced_downloads(&src, &torrent, &addr, dir.path());
}

/// Dialling under `required`, a plain-only peer is a failed dial whose typed reason reaches
/// the user: the download gives up as unreachable (exit 4) naming the encryption handshake.
#[test]
fn required_dial_to_a_plaintext_peer_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("lt");
    let src = content(&seed_dir, "content", false, 69);
    let torrent = dir.path().join("x.torrent");
    make(Maker::Ours, &src, &torrent);
    let (_lt, port) = libtorrent_seeder_encrypted(&torrent, &seed_dir, dir.path(), "disabled");
    let r = run(
        &[
            format!("-inPath={}", torrent.display()),
            format!("-outPath={}", dir.path().join("out").display()),
            format!("-peer=127.0.0.1:{port}"),
            "-seed=false".into(),
            "-encryption=required".into(),
        ],
        &[("SCION_DAEMON_ADDRESS", NO_DAEMON.to_string())],
        Duration::from_secs(120),
    );
    assert_eq!(r.status.code(), Some(4), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("last TCP error: connection closed during the encryption handshake"),
        "{}",
        r.stderr
    );
}

/// Under `enabled` (the default) a dial starts with MSE and, refused by a plain-only peer,
/// is made again in plain BitTorrent: the download works over plain lanes only.
#[test]
fn enabled_falls_back_to_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("lt");
    let src = content(&seed_dir, "content", false, 70);
    let torrent = dir.path().join("x.torrent");
    make(Maker::Ours, &src, &torrent);
    let (_lt, port) = libtorrent_seeder_encrypted(&torrent, &seed_dir, dir.path(), "disabled");
    let out = dir.path().join("out");
    let r = our_tcp_leecher(&torrent, &out, &format!("127.0.0.1:{port}"), dir.path());
    same_tree(&src, &out);
    let lanes = lanes(&common::json(&dir.path().join("our-leecher.json")));
    assert!(
        lanes.iter().all(|(p, _)| !p.ends_with("(rc4)")),
        "{lanes:?}"
    );
    assert!(
        r.stderr.contains("MSE failed") && r.stderr.contains("dialling plain BitTorrent"),
        "no fallback in the log:\n{}",
        r.stderr
    );
}
