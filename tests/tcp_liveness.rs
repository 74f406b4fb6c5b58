//! Keep-alives and silent-peer timeouts on BitTorrent-over-TCP connections, against a raw
//! TCP peer played by the test. The defaults (keep-alive after 90 s quiet, drop after 180 s of
//! silence) are shortened with `-keepAlive=1 -peerTimeout=3` so the test takes seconds; the
//! same code path runs with the defaults (and the clock logic has unit tests in
//! src/engine/liveness.rs).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::clients::*;
use common::*;

/// A seeder with short liveness settings; its TCP address and the torrent's info hash.
fn seeder(dir: &std::path::Path) -> (Client, String, [u8; 20]) {
    let src = dir.join("data.bin");
    write_random(&src, 1_000_000, 61);
    let torrent = dir.join("x.torrent");
    make_torrent(&src, &torrent, Some(64 * 1024));
    let hash = info_hash_of(&torrent);
    let mut c = Command::new(bin());
    c.arg(format!("-inPath={}", torrent.display()))
        .arg("-seed=true")
        .arg(format!("-file={}", src.display()))
        .arg("-keepAlive=1")
        .arg("-peerTimeout=3")
        .env("SCION_DAEMON_ADDRESS", NO_DAEMON);
    let mut s = Client::spawn(c, dir.join("seeder.log"));
    let addr = tcp_addr(&s.wait_for("seeding", Duration::from_secs(60)));
    (s, addr, hash)
}

/// Connects and completes the BitTorrent handshake (plain, no extensions).
fn connect(addr: &str, info_hash: [u8; 20]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut hs = vec![19u8];
    hs.extend_from_slice(b"BitTorrent protocol");
    hs.extend_from_slice(&[0; 8]);
    hs.extend_from_slice(&info_hash);
    hs.extend_from_slice(b"-TE0001-liveness0000");
    s.write_all(&hs).unwrap();
    let mut theirs = [0u8; 68];
    s.read_exact(&mut theirs).unwrap();
    assert_eq!(
        &theirs[28..48],
        &info_hash,
        "the seeder answers for our torrent"
    );
    s
}

/// Reads one message; `None` at EOF. Returns its payload (empty for a keep-alive).
fn read_message(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    if s.read_exact(&mut len).is_err() {
        return None;
    }
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

#[test]
fn quiet_connection_gets_keepalives_and_a_silent_peer_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (seeder, addr, hash) = seeder(dir.path());
    let mut s = connect(&addr, hash);
    let silent_since = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut keepalives = 0;
    let closed_after = loop {
        match read_message(&mut s) {
            Some(m) if m.is_empty() => keepalives += 1,
            Some(_) => {} // bitfield and the like
            None => break silent_since.elapsed(),
        }
    };
    assert!(
        keepalives >= 1,
        "no keep-alive on a connection quiet for {closed_after:?}"
    );
    assert!(
        closed_after >= Duration::from_secs(3) && closed_after < Duration::from_secs(15),
        "a peer silent for 3 s must be dropped after the timeout, not before \
         (closed after {closed_after:?})"
    );
    // The log line and the close race; give the log a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !seeder.log().contains("peer silent for too long") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        seeder.log().contains("peer silent for too long"),
        "the seeder says why it closed the lane:\n{}",
        seeder.log()
    );
    // Still seeding: a new connection is served.
    let _again = connect(&addr, hash);
}

#[test]
fn a_peer_that_sends_keepalives_stays_connected() {
    let dir = tempfile::tempdir().unwrap();
    let (_seeder, addr, hash) = seeder(dir.path());
    let mut s = connect(&addr, hash);
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    // Twice the timeout, with a keep-alive from us every second.
    while start.elapsed() < Duration::from_secs(6) {
        s.write_all(&[0, 0, 0, 0])
            .expect("the seeder keeps a connection whose peer sends keep-alives");
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            let mut buf = [0u8; 4096];
            match s.read(&mut buf) {
                Ok(0) => panic!(
                    "the seeder closed a live connection after {:?}",
                    start.elapsed()
                ),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("connection failed after {:?}: {e}", start.elapsed()),
            }
        }
    }
}
