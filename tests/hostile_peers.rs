//! Hostile peers over BitTorrent-over-TCP, played by the test with raw sockets, against our
//! single-shot seeder and our leecher. After each attack an honest leecher (our binary) must
//! still download byte-identically, and the seeder must still be running.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::clients::*;
use common::*;

const PIECE: usize = 64 * 1024;
const LEN: usize = 2_000_000;

struct Swarm {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    src: PathBuf,
    torrent: PathBuf,
    info_hash: [u8; 20],
}

fn swarm() -> Swarm {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let src = path.join("data.bin");
    write_random(&src, LEN, 77);
    let torrent = path.join("x.torrent");
    make_torrent(&src, &torrent, Some(PIECE as u32));
    let info_hash = info_hash_of(&torrent);
    Swarm {
        _dir: dir,
        dir: path,
        src,
        torrent,
        info_hash,
    }
}

fn seeder(s: &Swarm) -> (Client, String, u32) {
    let (c, addr) = our_tcp_seeder(&s.torrent, &s.src, None, &s.dir);
    let pid = c.pid();
    (c, addr, pid)
}

/// An honest download from `peers` (`;`-separated) must give the source bytes.
fn honest_download(s: &Swarm, peers: &str, name: &str) {
    let out = s.dir.join(name);
    our_tcp_leecher(&s.torrent, &out, peers, &s.dir);
    same_tree(&s.src, &out);
}

fn handshake(info_hash: [u8; 20], peer_id: [u8; 20]) -> Vec<u8> {
    let mut hs = vec![19u8];
    hs.extend_from_slice(b"BitTorrent protocol");
    hs.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0x04]); // extensions + fast
    hs.extend_from_slice(&info_hash);
    hs.extend_from_slice(&peer_id);
    hs
}

fn msg(id: u8, body: &[u8]) -> Vec<u8> {
    let mut m = ((body.len() + 1) as u32).to_be_bytes().to_vec();
    m.push(id);
    m.extend_from_slice(body);
    m
}

fn request(id: u8, index: u32, begin: u32, length: u32) -> Vec<u8> {
    let mut b = index.to_be_bytes().to_vec();
    b.extend(begin.to_be_bytes());
    b.extend(length.to_be_bytes());
    msg(id, &b)
}

/// Connects and sends our handshake; reads the seeder's (68 bytes) if `read_back`.
fn connect(addr: &str, info_hash: [u8; 20], peer_id: [u8; 20], read_back: bool) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&handshake(info_hash, peer_id)).unwrap();
    if read_back {
        let mut theirs = [0u8; 68];
        s.read_exact(&mut theirs).unwrap();
        assert_eq!(&theirs[28..48], &info_hash);
    }
    s
}

/// Whether the peer closed the connection within `t` (reads and discards until EOF).
fn closed_within(s: &mut TcpStream, t: Duration) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let end = Instant::now() + t;
    let mut buf = vec![0u8; 1 << 16];
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("process {pid} is gone: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .contains("(zombie)")
}

fn id(tag: u8) -> [u8; 20] {
    let mut p = *b"-HO0001-000000000000";
    p[19] = tag;
    p
}

/// Malformed and out-of-range messages: each connection is closed by the seeder, which keeps
/// serving honest peers.
#[test]
fn malformed_and_out_of_range_messages_close_only_that_connection() {
    let s = swarm();
    let (_seed, addr, pid) = seeder(&s);
    let pieces = LEN.div_ceil(PIECE) as u32;
    let last_len = (LEN - (pieces as usize - 1) * PIECE) as u32;
    let attacks: Vec<(&str, Vec<u8>)> = vec![
        ("huge length prefix", vec![0xff, 0xff, 0xff, 0xf0, 7]),
        ("wrong length for a fixed-size message", msg(4, &[0, 0])),
        ("bitfield of the wrong size", msg(5, &[0xff; 3])),
        (
            "bitfield with spare bits set",
            msg(5, &vec![0xff; pieces.div_ceil(8) as usize]),
        ),
        (
            "request past a piece end",
            request(6, 0, PIECE as u32 - 100, 16384),
        ),
        (
            "request past the last piece's end",
            request(6, pieces - 1, last_len, 1),
        ),
        ("zero-length request", request(6, 0, 0, 0)),
        ("request longer than allowed", request(6, 0, 0, 1 << 20)),
        (
            "a block we never asked for, too large",
            msg(7, &vec![0; 1 << 20]),
        ),
    ];
    for (i, (what, bytes)) in attacks.iter().enumerate() {
        let mut c = connect(&addr, s.info_hash, id(i as u8), true);
        c.write_all(&msg(2, &[])).unwrap(); // interested
        let _ = c.write_all(bytes);
        assert!(
            closed_within(&mut c, Duration::from_secs(10)),
            "{what}: connection not closed"
        );
        assert!(alive(pid), "{what}: the seeder died");
    }
    // A piece index past the end is skipped by the decoder (the stream stays in sync, see
    // `WireError::is_fatal`): the message is ignored, the connection stays usable.
    let ignored: Vec<(&str, Vec<u8>)> = vec![
        ("have past the last piece", msg(4, &pieces.to_be_bytes())),
        (
            "request of a piece that does not exist",
            request(6, pieces, 0, 16384),
        ),
    ];
    for (i, (what, bytes)) in ignored.iter().enumerate() {
        let mut c = connect(&addr, s.info_hash, id(100 + i as u8), true);
        c.write_all(&msg(2, &[])).unwrap(); // interested
        c.write_all(bytes).unwrap();
        assert!(
            !closed_within(&mut c, Duration::from_secs(2)),
            "{what}: an ignorable message closed the connection"
        );
        // Still usable: a valid message after it is accepted, then a fatal one closes it.
        c.write_all(&msg(3, &[])).unwrap(); // not interested
        c.write_all(&[0xff, 0xff, 0xff, 0xf0, 7]).unwrap();
        assert!(
            closed_within(&mut c, Duration::from_secs(10)),
            "{what}: the connection was not in sync afterwards"
        );
        assert!(alive(pid), "{what}: the seeder died");
    }
    honest_download(&s, &addr, "after-malformed.bin");
}

/// Request and cancel floods, Have floods and spoofed (shared) peer ids, all at once, from
/// connections that never read: the seeder's memory stays bounded, it stays up, and an
/// honest leecher still downloads.
#[test]
fn floods_and_a_peer_that_never_reads_keep_memory_bounded() {
    let s = swarm();
    let (_seed, addr, pid) = seeder(&s);
    let pieces = LEN.div_ceil(PIECE) as u32;
    let before = rss_kib(pid);
    let mut conns = Vec::new();
    // The same peer id on several connections (lanes of one "peer" to the seeder).
    for tag in 0..4u8 {
        let mut c = connect(&addr, s.info_hash, id(200), false);
        c.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut flood = msg(2, &[]);
        for round in 0..50_000u32 {
            let index = round % pieces;
            let begin = (round % 4) * 16384;
            flood.extend(request(6, index, begin, 16384));
            flood.extend(request(8, index, begin, 16384)); // cancel
            flood.extend(msg(4, &(round % pieces).to_be_bytes())); // have
            if tag == 0 && round % 3 == 0 {
                flood.extend(request(6, index, begin, 16384)); // and leave it queued
            }
        }
        // The seeder may close a flooding connection: that is allowed, dying is not.
        let _ = c.write_all(&flood);
        conns.push(c);
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib(pid);
    assert!(alive(pid), "the seeder died under the floods");
    eprintln!("seeder RSS {before} KiB before, {after} KiB after the floods");
    assert!(
        after < before + 64 * 1024,
        "seeder RSS grew from {before} KiB to {after} KiB for peers that never read"
    );
    honest_download(&s, &addr, "after-floods.bin");
    drop(conns);
}

/// Our leecher against a hostile "seeder" played by the test (it says it has everything and
/// answers every request with one corrupt byte per block) and an honest seeder: the download
/// completes byte-identically.
#[test]
fn leecher_survives_a_lying_seeder_next_to_an_honest_one() {
    let s = swarm();
    let (_seed, honest, _) = seeder(&s);
    let liar = TcpListener::bind("127.0.0.1:0").unwrap();
    let liar_addr = liar.local_addr().unwrap().to_string();
    let data = std::fs::read(&s.src).unwrap();
    let info_hash = s.info_hash;
    let pieces = LEN.div_ceil(PIECE) as u32;
    std::thread::spawn(move || {
        for conn in liar.incoming() {
            let Ok(mut c) = conn else { return };
            let data = data.clone();
            std::thread::spawn(move || {
                let mut hs = [0u8; 68];
                if c.read_exact(&mut hs).is_err() {
                    return;
                }
                let mut out = handshake(info_hash, id(66));
                out.extend(msg(14, &[])); // have all
                out.extend(msg(1, &[])); // unchoke
                out.extend(msg(13, &(pieces - 1).to_be_bytes())); // a suggest: noise
                out.extend([0, 0, 0, 0]); // a keep-alive
                if c.write_all(&out).is_err() {
                    return;
                }
                loop {
                    let mut len = [0u8; 4];
                    if c.read_exact(&mut len).is_err() {
                        return;
                    }
                    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
                    if c.read_exact(&mut body).is_err() {
                        return;
                    }
                    if body.first() == Some(&6) && body.len() == 13 {
                        let f = |i: usize| u32::from_be_bytes(body[i..i + 4].try_into().unwrap());
                        let (index, begin, length) = (f(1), f(5), f(9));
                        let off = index as usize * PIECE + begin as usize;
                        let Some(block) = data.get(off..off + length as usize) else {
                            return;
                        };
                        let mut block = block.to_vec();
                        block[0] ^= 0x5a;
                        let mut b = index.to_be_bytes().to_vec();
                        b.extend(begin.to_be_bytes());
                        b.extend(block);
                        if c.write_all(&msg(7, &b)).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    honest_download(&s, &format!("{liar_addr};{honest}"), "with-a-liar.bin");
}

/// A download whose output lies on a filesystem too small for it ends at start with exit
/// code 5 and says why (a 1 MiB tmpfs in a private mount namespace; needs root and unshare,
/// which CI has: the test fails if it cannot mount).
#[test]
fn too_small_disk_fails_at_start_with_exit_code_5() {
    let s = swarm();
    let mnt = s.dir.join("tiny");
    std::fs::create_dir(&mnt).unwrap();
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs -o size=1m tmpfs \"$0\" || exit 77; \
             exec \"$1\" -inPath=\"$2\" -outPath=\"$0/out.bin\" -peer=127.0.0.1:9 -seed=false",
        )
        .arg(&mnt)
        .arg(bin())
        .arg(&s.torrent)
        .env("SCION_DAEMON_ADDRESS", NO_DAEMON)
        .output()
        .expect("unshare (util-linux) is needed: run scripts/install-deps.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(77),
        "cannot mount a private tmpfs (needs root and unshare): {stderr}"
    );
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("disk full"), "{stderr}");
}

/// Hostile peers over QUIC/SCION (the lanes' ALPN, played by the test with quinn over SCION)
/// against our single-shot seeder: malformed and out-of-range messages, a huge length prefix,
/// a second stream on a lane, a request flood from a peer that never reads; each such lane is
/// closed, the seeder's memory stays bounded, and an honest leecher in another AS still
/// downloads byte-identically over SCION.
#[test]
fn hostile_lanes_over_quic_scion_are_closed_and_the_seeder_keeps_serving() {
    use btscion::discovery::scion_http::ScionQuicEndpoint;
    use btscion::quic::config::ALPN;

    let tn = testnet("two-as");
    let ases: Vec<String> = tn.state().ases.keys().cloned().collect();
    let s = swarm();
    let (seed, addr) = common::seeder(&tn, &ases[0], &s.torrent, &s.src, &s.dir, &[]);
    let pid = seed.child.id();
    let target: btscion::scion::ScionAddr = addr.parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let attacker = rt
        .block_on(ScionQuicEndpoint::bind_alpn(
            &daemon(&tn, &ases[1]),
            None,
            0,
            ALPN,
            false,
        ))
        .unwrap();
    let pieces = LEN.div_ceil(PIECE) as u32;
    let info_hash = s.info_hash;

    // A lane: the handshake both ways, then `interested`.
    let lane = |tag: u8| {
        rt.block_on(async {
            let conn = attacker.connect(target).await.expect("a QUIC connection");
            let (mut send, mut recv) = conn.open_bi().await.unwrap();
            send.write_all(&handshake(info_hash, id(tag)))
                .await
                .unwrap();
            let mut theirs = [0u8; 68];
            recv.read_exact(&mut theirs).await.unwrap();
            assert_eq!(&theirs[28..48], &info_hash);
            send.write_all(&msg(2, &[])).await.unwrap();
            (conn, send, recv)
        })
    };
    // Whether the seeder closes the connection within `t` (draining what it sends meanwhile).
    let closed_within = |conn: &quinn::Connection, recv: &mut quinn::RecvStream, t: Duration| {
        rt.block_on(async {
            tokio::time::timeout(t, async {
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    tokio::select! {
                        _ = conn.closed() => return,
                        r = recv.read(&mut buf) => if !matches!(r, Ok(Some(_))) {
                            conn.closed().await;
                            return;
                        }
                    }
                }
            })
            .await
            .is_ok()
        })
    };

    let attacks: Vec<(&str, Vec<u8>)> = vec![
        ("huge length prefix", vec![0xff, 0xff, 0xff, 0xf0, 7]),
        ("wrong length for a fixed-size message", msg(4, &[0, 0])),
        (
            "request past a piece end",
            request(6, 0, PIECE as u32 - 100, 16384),
        ),
        ("request longer than allowed", request(6, 0, 0, 1 << 20)),
        (
            "a block we never asked for, too large",
            msg(7, &vec![0; 1 << 20]),
        ),
    ];
    for (i, (what, bytes)) in attacks.iter().enumerate() {
        let (conn, mut send, mut recv) = lane(i as u8);
        let _ = rt.block_on(send.write_all(bytes));
        assert!(
            closed_within(&conn, &mut recv, Duration::from_secs(10)),
            "{what}: lane not closed"
        );
        assert!(alive(pid), "{what}: the seeder died");
    }

    // A second stream on a lane: the lane is closed with the code for it.
    let (conn, _send, mut recv) = lane(50);
    rt.block_on(async {
        let (mut s2, _r2) = conn.open_bi().await.unwrap();
        s2.write_all(&msg(2, &[])).await.unwrap();
    });
    assert!(
        closed_within(&conn, &mut recv, Duration::from_secs(10)),
        "second stream: lane not closed"
    );
    let reason = rt.block_on(conn.closed());
    assert!(
        matches!(&reason, quinn::ConnectionError::ApplicationClosed(c)
            if c.error_code == btscion::net::LaneCloseCode::SecondStream.var_int()),
        "{reason:?}"
    );

    // Request floods from lanes that never read: flow control and the unread bound keep the
    // seeder's memory in check, and it stays up.
    let before = rss_kib(pid);
    let mut flooders = Vec::new();
    for tag in 0..4u8 {
        let (conn, mut send, recv) = lane(60 + tag);
        let mut flood = Vec::new();
        for round in 0..20_000u32 {
            let index = round % pieces;
            flood.extend(request(6, index, (round % 4) * 16384, 16384));
            flood.extend(request(8, index, (round % 4) * 16384, 16384));
            flood.extend(msg(4, &index.to_be_bytes()));
        }
        // Written in the background: the seeder may stop reading or close, which is allowed.
        rt.spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(20), send.write_all(&flood)).await;
            send
        });
        flooders.push((conn, recv));
    }
    std::thread::sleep(Duration::from_secs(3));
    let after = rss_kib(pid);
    assert!(alive(pid), "the seeder died under the floods");
    eprintln!("seeder RSS {before} KiB before, {after} KiB after the QUIC floods");
    assert!(
        after < before + 64 * 1024,
        "seeder RSS grew from {before} KiB to {after} KiB for QUIC peers that never read"
    );

    let out = s.dir.join("after-quic-attacks.bin");
    let r = leech(&tn, &ases[1], &s.torrent, &out, &addr, &[]);
    assert!(r.status.success(), "honest download failed: {}", r.stderr);
    same_tree(&s.src, &out);
    drop(flooders);
}

/// A peer that answers a magnet link's metadata request with an info dictionary whose hash
/// matches but which makes no usable torrent (piece length 0): the single-shot download must
/// end with exit 3 and say so, not wait for ever (it did: a failed fetch left nothing to poll).
#[test]
fn metadata_that_matches_the_hash_but_is_unusable_ends_the_download_with_exit_3() {
    use sha1::{Digest, Sha1};
    let info: &[u8] = b"d6:lengthi1e4:name1:x12:piece lengthi0e6:pieces0:e";
    let info_hash: [u8; 20] = Sha1::digest(info).into();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        // This peer speaks plaintext only: an encrypted (MSE) first try is closed, and the
        // client falls back to a plaintext connection.
        let mut s = loop {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            let mut theirs = [0u8; 68];
            s.read_exact(&mut theirs).unwrap();
            if theirs.starts_with(b"\x13BitTorrent protocol") {
                assert_eq!(&theirs[28..48], &info_hash);
                break s;
            }
        };
        s.write_all(&handshake(info_hash, id(9))).unwrap();
        let ext = format!("d1:md11:ut_metadatai3ee13:metadata_sizei{}ee", info.len());
        let mut body = vec![0u8];
        body.extend_from_slice(ext.as_bytes());
        s.write_all(&msg(20, &body)).unwrap();
        // Messages until the request for metadata piece 0; the answer goes to the id the
        // client's own extension handshake named.
        let mut their_id = None;
        loop {
            let mut len = [0u8; 4];
            if s.read_exact(&mut len).is_err() {
                return false;
            }
            let mut m = vec![0u8; u32::from_be_bytes(len) as usize];
            s.read_exact(&mut m).unwrap();
            if m.len() < 2 || m[0] != 20 {
                continue;
            }
            let text = String::from_utf8_lossy(&m[2..]).into_owned();
            if m[1] == 0 {
                let at = text.find("11:ut_metadatai").expect("ut_metadata offered") + 15;
                let digits: String = text[at..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                their_id = Some(digits.parse::<u8>().unwrap());
            } else if m[1] == 3 && text.contains("8:msg_typei0e") {
                let header = format!("d8:msg_typei1e5:piecei0e10:total_sizei{}ee", info.len());
                let mut body = vec![their_id.expect("their handshake came first")];
                body.extend_from_slice(header.as_bytes());
                body.extend_from_slice(info);
                s.write_all(&msg(20, &body)).unwrap();
                // Keep the connection open: the download must end on its own.
                std::thread::sleep(Duration::from_secs(5));
                return true;
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let hex: String = info_hash.iter().map(|b| format!("{b:02x}")).collect();
    let r = run(
        &[
            "download".into(),
            "--torrent".into(),
            format!("magnet:?xt=urn:btih:{hex}&x.pe=127.0.0.1:{port}"),
            "--path".into(),
            dir.path().join("out").display().to_string(),
        ],
        &[("SCION_DAEMON_ADDRESS", NO_DAEMON.to_string())],
        Duration::from_secs(60),
    );
    assert!(
        peer.join().unwrap(),
        "the client never asked for the metadata"
    );
    assert_eq!(r.status.code(), Some(3), "stderr:\n{}", r.stderr);
    assert!(
        r.stderr.contains("unusable metadata"),
        "stderr:\n{}",
        r.stderr
    );
}
