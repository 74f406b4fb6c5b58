//! The DHT (BEP 5 over UDP/IP) as the daemon's way to find peers for a magnet link that
//! carries nothing but the info hash: between two of our daemons, and with libtorrent seeding
//! and announcing to our node. No trackers, no peer addresses anywhere: a download that
//! completes found its peer through the DHT.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::clients::{free_port, Client, PYTHON};
use common::daemons::{state, Daemon};
use common::{info_hash_of, make_torrent, same_tree, write_random};

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP-only daemon (no SCION daemon there) with a DHT node on `dht_port`.
fn daemon(dir: &Path, dht_port: u16, bootstrap: Option<u16>, root: Option<&Path>) -> Daemon {
    let mut args = vec![
        "--sciond=127.0.0.1:9".to_string(),
        format!("--tcp-listen=127.0.0.1:{}", free_port()),
        format!("--dht=127.0.0.1:{dht_port}"),
    ];
    if let Some(b) = bootstrap {
        args.push(format!("--dht-bootstrap=127.0.0.1:{b}"));
    }
    if let Some(r) = root {
        args.push(format!("--download-root={}", r.display()));
    }
    Daemon::start(dir, &args, &[])
}

fn bare_magnet(torrent: &Path) -> (String, String) {
    let ih = btscion::client::control::info_hash_hex(&info_hash_of(torrent));
    (format!("magnet:?xt=urn:btih:{ih}"), ih)
}

#[test]
fn a_daemon_finds_another_through_the_dht_from_a_bare_magnet_link() {
    let dir = tempfile::tempdir().unwrap();
    let seed_root = dir.path().join("seed");
    let src = seed_root.join("content");
    write_random(&src.join("a.bin"), 2_000_003, 41);
    write_random(&src.join("b/c.bin"), 700_000, 42);
    let torrent = seed_root.join("x.torrent");
    make_torrent(&src, &torrent, Some(32 * 1024));
    let (seed_dht, leech_dht) = (free_udp_port(), free_udp_port());
    let seeder = daemon(&dir.path().join("seeder"), seed_dht, None, Some(&seed_root));
    let ih = seeder.add_torrent_path("x.torrent", "");
    seeder.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");

    let mut leecher = daemon(&dir.path().join("leecher"), leech_dht, Some(seed_dht), None);
    let (link, _) = bare_magnet(&torrent);
    let out = leecher.cli(&["add", &link]);
    assert_eq!(out.0, 0, "{out:?}");
    leecher.wait_torrent(&ih, Duration::from_secs(120), |t| state(t) == "seeding");
    same_tree(&src, &leecher.data_dir.join("downloads/content"));
    // The routing table outlives the process: the next start needs no bootstrap node.
    assert_eq!(leecher.terminate(), 0);
    assert!(dir.path().join("leecher/dht.dat").exists());
}

#[test]
fn a_bare_magnet_link_is_downloaded_from_libtorrent_found_through_the_dht() {
    let dir = tempfile::tempdir().unwrap();
    let lt_dir = dir.path().join("lt");
    let src = lt_dir.join("content");
    write_random(&src.join("one.bin"), 1_500_000, 43);
    write_random(&src.join("two/three.bin"), 333_333, 44);
    let torrent = dir.path().join("x.torrent");
    make_torrent(&src, &torrent, Some(32 * 1024));
    let our_dht = free_udp_port();
    let ours = daemon(&dir.path().join("ours"), our_dht, None, None);

    // libtorrent seeds, bootstraps from our node and announces the torrent to it.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/lt_magnet.py");
    let mut c = Command::new(PYTHON);
    c.arg(script)
        .arg("seed")
        .arg(&torrent)
        .arg(&lt_dir)
        .arg("--dht")
        .arg(format!("127.0.0.1:{our_dht}"));
    let mut lt = Client::spawn(c, dir.path().join("lt.log"));
    lt.wait_for("SEEDING", Duration::from_secs(60));

    let (link, ih) = bare_magnet(&torrent);
    let out = ours.cli(&["add", &link]);
    assert_eq!(out.0, 0, "{out:?}");
    let t = ours.wait_torrent(&ih, Duration::from_secs(120), |t| state(t) == "seeding");
    same_tree(&src, &ours.data_dir.join("downloads/content"));
    assert!(t["peers_known"].as_u64() >= Some(1), "{t:#}");
}

/// A DHT node of the test's own: it answers every query (so our node keeps it in its table and
/// asks it in lookups, it being the only node there is) and records the info hash of every
/// `get_peers` and `announce_peer` it is sent, as hex.
struct DhtSpy {
    port: u16,
    asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl DhtSpy {
    fn start() -> DhtSpy {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = asked.clone();
        // The thread ends with the test process; the socket stays open until then.
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                let Ok(msg) = bt_bencode::Decoder::LENIENT.decode(&buf[..n]) else {
                    continue;
                };
                let Some(msg) = msg.as_dict() else { continue };
                let q = msg.get(b"q").and_then(|v| v.as_bytes()).unwrap_or_default();
                let args = msg.get(b"a").and_then(|v| v.as_dict());
                let ih = args
                    .and_then(|a| a.get(b"info_hash"))
                    .and_then(|v| v.as_bytes());
                if let (b"get_peers" | b"announce_peer", Some(ih)) = (q, ih) {
                    let hex: String = ih.iter().map(|b| format!("{b:02x}")).collect();
                    seen.lock().unwrap().push(hex);
                }
                let Some(t) = msg.get(b"t").and_then(|v| v.as_bytes()) else {
                    continue;
                };
                let mut r = bt_bencode::DictWriter::new();
                r.bytes("id", [0x5a; 20])
                    .bytes("nodes", b"")
                    .bytes("token", b"tok");
                let mut answer = bt_bencode::DictWriter::new();
                answer.bytes("t", t).bytes("y", b"r").dict("r", r);
                let _ = sock.send_to(&answer.finish(), from);
            }
        });
        DhtSpy { port, asked }
    }

    fn was_asked_about(&self, ih: &str) -> bool {
        self.asked.lock().unwrap().iter().any(|h| h == ih)
    }
}

/// BEP 27: a private torrent is never looked up or announced in the DHT, while a public one
/// seeding beside it is (the control: the spy node hears what our node sends).
#[test]
fn a_private_torrent_never_reaches_the_dht() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    write_random(&root.join("public.bin"), 300_000, 45);
    write_random(&root.join("private.bin"), 300_000, 46);
    make_torrent(&root.join("public.bin"), &root.join("public.torrent"), None);
    let private =
        btscion::torrent::meta::create(&root.join("private.bin"), None, vec![], true, None)
            .unwrap();
    std::fs::write(root.join("private.torrent"), private).unwrap();

    let spy = DhtSpy::start();
    let d = daemon(
        &dir.path().join("d"),
        free_udp_port(),
        Some(spy.port),
        Some(&root),
    );
    let private_ih = d.add_torrent_path("private.torrent", "");
    let public_ih = d.add_torrent_path("public.torrent", "");
    for ih in [&private_ih, &public_ih] {
        d.wait_torrent(ih, Duration::from_secs(60), |t| state(t) == "seeding");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !spy.was_asked_about(&public_ih) {
        assert!(
            std::time::Instant::now() < deadline,
            "the spy node never heard of the public torrent: the test cannot tell anything"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Both torrents started looking for peers together; give a leak the time to arrive.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !spy.was_asked_about(&private_ih),
        "the private torrent {private_ih} went to the DHT"
    );
}
