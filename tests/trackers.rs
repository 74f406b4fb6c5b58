//! Trackers with real components on loopback: our announcer against Debian's opentracker (a
//! libtorrent seeder announced there), and libtorrent against our `tracker` subcommand,
//! downloading from our seeder that it found only through the tracker.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bt_tracker::client::{
    self, AnnouncerConfig, BoxFuture, PeersNotTaken, TorrentLink, TrackerState, TransferStats,
};
use bt_tracker::udp::Retransmit;
use bt_tracker::PeerAddr;
use common::clients::*;
use common::*;

/// Collects the peers an announcer hands over.
struct Found {
    peers: Mutex<Vec<PeerAddr>>,
    left: u64,
}

impl TorrentLink for Found {
    fn stats(&self) -> Option<TransferStats> {
        Some(TransferStats {
            left: self.left,
            ..Default::default()
        })
    }
    fn add_peers(&self, peers: Vec<PeerAddr>) -> BoxFuture<'_, Result<usize, PeersNotTaken>> {
        Box::pin(async move {
            let mut p = self.peers.lock().unwrap();
            let n = peers.len();
            p.extend(peers);
            Ok(n)
        })
    }
}

fn announcer_config(port: u16) -> AnnouncerConfig {
    AnnouncerConfig {
        port,
        http_timeout: Duration::from_secs(5),
        udp_retransmit: Retransmit {
            base: Duration::from_secs(1),
            max_retransmits: 2,
        },
        min_interval: Duration::from_millis(500),
        backoff_base: Duration::from_millis(500),
        backoff_max: Duration::from_secs(2),
        ..Default::default()
    }
}

/// Announces to `url` until `want` is among the peers (re-announcing), or panics; then waits
/// for the tracker's scrape and returns its counters.
async fn find_peer(
    info_hash: [u8; 20],
    url: &str,
    my_port: u16,
    left: u64,
    want: PeerAddr,
) -> client::ScrapeCounts {
    let link = Arc::new(Found {
        peers: Mutex::new(Vec::new()),
        left,
    });
    let h = client::spawn(
        info_hash,
        vec![vec![url.to_string()]],
        announcer_config(my_port),
        link.clone(),
    );
    for _ in 0..60 {
        if link.peers.lock().unwrap().contains(&want) {
            let mut status = h.subscribe();
            let scrape = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    if let Some(c) = status.borrow_and_update().trackers[0].scrape {
                        return c;
                    }
                    let _ = status.changed().await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("no scrape from {url}: {:#?}", h.status()));
            h.stop().await;
            return scrape;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        h.announce_now();
    }
    panic!(
        "{want} not found via {url}; got {:?}; status {:#?}",
        link.peers.lock().unwrap(),
        h.status()
    );
}

fn lt_tracker_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/lt_tracker.py")
}

/// libtorrent seeding or leeching `torrent` with only `urls` as peer sources; and its port.
fn lt_with_trackers(
    mode: &str,
    torrent: &Path,
    save: &Path,
    urls: &[String],
    log: PathBuf,
) -> (Client, u16) {
    let ok = Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3-libtorrent is missing: run scripts/install-deps.sh"
    );
    let mut c = Command::new(PYTHON);
    c.arg(lt_tracker_script())
        .arg(mode)
        .arg(torrent)
        .arg(save)
        .args(urls);
    let mut p = Client::spawn(c, log);
    let line = p.wait_for("LISTEN", Duration::from_secs(30));
    let port = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("LISTEN port");
    (p, port)
}

struct OpenTracker {
    _dir: tempfile::TempDir,
    _proc: Client,
    port: u16,
}

/// Debian's opentracker (whitelist build) on 127.0.0.1, TCP and UDP on one port, tracking
/// `info_hash`.
fn opentracker(info_hash: &[u8; 20]) -> OpenTracker {
    let dir = tempfile::tempdir().unwrap();
    // opentracker chroots into the directory and drops to "nobody", who must read the list.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let hex: String = info_hash.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(dir.path().join("whitelist.txt"), format!("{hex}\n")).unwrap();
    let port = free_port();
    let mut c = Command::new("opentracker");
    c.args([
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-P",
        &port.to_string(),
    ])
    .arg("-d")
    .arg(dir.path())
    .args(["-w", "whitelist.txt", "-u", "nobody"]);
    let p = Client::spawn(c, dir.path().join("opentracker.log"));
    // Ready when it answers over TCP.
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return OpenTracker {
                _dir: dir,
                _proc: p,
                port,
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("opentracker did not start (is the Debian package installed? run scripts/install-deps.sh); log:\n{}", p.log());
}

fn content_and_torrent(dir: &Path) -> (PathBuf, PathBuf) {
    let src = dir.join("seed").join("content.bin");
    write_random(&src, 3 * 1024 * 1024 + 777, 31);
    let torrent = dir.join("x.torrent");
    make_torrent(&src, &torrent, Some(64 * 1024));
    (src, torrent)
}

fn our_announcer_finds_libtorrent_via_opentracker(udp: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (src, torrent) = content_and_torrent(dir.path());
    let ih = info_hash_of(&torrent);
    let ot = opentracker(&ih);
    let url = if udp {
        format!("udp://127.0.0.1:{}", ot.port)
    } else {
        format!("http://127.0.0.1:{}/announce", ot.port)
    };
    let (mut lt, lt_port) = lt_with_trackers(
        "seed",
        &torrent,
        src.parent().unwrap(),
        std::slice::from_ref(&url),
        dir.path().join("lt.log"),
    );
    lt.wait_for("ANNOUNCED", Duration::from_secs(30));
    let want: PeerAddr = format!("127.0.0.1:{lt_port}").parse().unwrap();
    let scrape = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(find_peer(ih, &url, 40001, 1000, want));
    // The scrape (BEP 48 over HTTP, BEP 15 over UDP) saw the swarm: libtorrent seeding, us
    // leeching.
    assert_eq!(
        (scrape.seeders, scrape.leechers),
        (1, 1),
        "{url}: {scrape:?}"
    );
}

#[test]
fn our_announcer_finds_libtorrent_via_opentracker_http() {
    our_announcer_finds_libtorrent_via_opentracker(false);
}

#[test]
fn our_announcer_finds_libtorrent_via_opentracker_udp() {
    our_announcer_finds_libtorrent_via_opentracker(true);
}

/// Our `tracker` subcommand; its HTTP and UDP addresses.
fn our_tracker(dir: &Path) -> (Client, String, String) {
    let mut c = Command::new(bin());
    c.args([
        "tracker",
        "--http",
        "127.0.0.1:0",
        "--udp",
        "127.0.0.1:0",
        "--interval",
        "2",
    ]);
    let mut p = Client::spawn(c, dir.join("tracker.log"));
    let line = p.wait_for("tracker http", Duration::from_secs(30));
    let w: Vec<&str> = line.split_whitespace().collect();
    // "tracker http ADDR udp ADDR"
    (
        p,
        format!("http://{}/announce", w[2]),
        format!("udp://{}", w[4]),
    )
}

/// libtorrent downloads from our single-shot seeder, which it knows only through our tracker
/// (our announcer announced the seeder over `seeder_url`; libtorrent uses `lt_url`); and our
/// announcer sees libtorrent in the swarm.
fn libtorrent_downloads_via_our_tracker(lt_over_udp: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (src, torrent) = content_and_torrent(dir.path());
    let ih = info_hash_of(&torrent);
    let (_tracker, http, udp) = our_tracker(dir.path());
    let (lt_url, seeder_url) = if lt_over_udp {
        (udp, http)
    } else {
        (http, udp)
    };

    let (_seeder, seeder_addr) = our_tcp_seeder(&torrent, &src, None, dir.path());
    let seeder_port: u16 = seeder_addr.rsplit(':').next().unwrap().parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let link = Arc::new(Found {
        peers: Mutex::new(Vec::new()),
        left: 0,
    });
    let seeder_announcer = rt.block_on(async {
        let h = client::spawn(
            ih,
            vec![vec![seeder_url.clone()]],
            announcer_config(seeder_port),
            link.clone(),
        );
        let mut rx = h.subscribe();
        tokio::time::timeout(
            Duration::from_secs(20),
            rx.wait_for(|s| s.trackers[0].state == TrackerState::Working),
        )
        .await
        .expect("seeder announce")
        .expect("announcer alive");
        h
    });

    let save = dir.path().join("lt");
    let (mut lt, lt_port) = lt_with_trackers(
        "leech",
        &torrent,
        &save,
        std::slice::from_ref(&lt_url),
        dir.path().join("lt.log"),
    );
    lt.wait_for("DONE", Duration::from_secs(120));
    assert_eq!(
        std::fs::read(save.join("content.bin")).unwrap(),
        std::fs::read(&src).unwrap()
    );

    // libtorrent is in the swarm: our announcer (the other protocol) gets its address.
    let want: PeerAddr = format!("127.0.0.1:{lt_port}").parse().unwrap();
    rt.block_on(async {
        find_peer(ih, &seeder_url, 40002, 1000, want).await;
        seeder_announcer.stop().await;
    });
}

#[test]
fn libtorrent_downloads_from_our_seeder_found_via_our_http_tracker() {
    libtorrent_downloads_via_our_tracker(false);
}

#[test]
fn libtorrent_downloads_from_our_seeder_found_via_our_udp_tracker() {
    libtorrent_downloads_via_our_tracker(true);
}

/// Two daemons that were given no peers at all: the seeder announces to opentracker, the
/// leecher finds it there and downloads. The torrent lists a dead tracker first; its status
/// says why it failed while the working one delivers.
#[test]
fn a_daemon_finds_another_daemon_through_opentracker() {
    use common::daemons::{state, Daemon};
    let dir = tempfile::tempdir().unwrap();
    let seed_root = dir.path().join("seed");
    let src = seed_root.join("content.bin");
    write_random(&src, 5 * 1024 * 1024 + 99, 77);
    // The info hash does not depend on the trackers: a torrent without any names it for the
    // whitelist, then the real one lists a dead tracker and opentracker in two tiers.
    let plain = dir.path().join("plain.torrent");
    make_torrent(&src, &plain, Some(64 * 1024));
    let ot = opentracker(&info_hash_of(&plain));
    let dead = format!("http://127.0.0.1:{}/announce", free_port());
    let live = format!("udp://127.0.0.1:{}", ot.port);
    let torrent = seed_root.join("x.torrent");
    let o = Command::new(bin())
        .arg("create")
        .arg(&src)
        .arg("-o")
        .arg(&torrent)
        .args([
            "--piece-length",
            "65536",
            "--announce",
            &dead,
            "--announce",
            &live,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tcp_only = |name: &str, root: Option<&Path>| {
        let mut args = vec![
            // No SCION daemon there: TCP only, as an IP-only client would be.
            "--sciond=127.0.0.1:9".to_string(),
            format!("--tcp-listen=127.0.0.1:{}", free_port()),
        ];
        if let Some(r) = root {
            args.push(format!("--download-root={}", r.display()));
        }
        Daemon::start(&dir.path().join(name), &args, &[])
    };
    let seeder = tcp_only("seeder", Some(&seed_root));
    let leecher = tcp_only("leecher", None);
    let ih = seeder.add_torrent_path("x.torrent", "");
    seeder.wait_torrent(&ih, Duration::from_secs(60), |t| {
        t["trackers"]
            .as_array()
            .is_some_and(|v| v.iter().any(|s| s["state"] == "working"))
    });
    let out = leecher.cli(&["add", torrent.to_str().unwrap()]);
    assert_eq!(out.0, 0, "{out:?}");
    // Every peer the leecher is seen connected to came from the tracker.
    leecher.wait_torrent(&ih, Duration::from_secs(120), |t| {
        let peers = t["peers"].as_array().unwrap();
        assert!(peers.iter().all(|p| p["source"] == "tracker"), "{t:#}");
        state(t) == "seeding"
    });
    same_tree(&src, &leecher.data_dir.join("downloads/content.bin"));
    // The dead tracker says why it is not used.
    let t = leecher.wait_torrent(&ih, Duration::from_secs(30), |t| {
        let trackers = t["trackers"].as_array().unwrap();
        let state_of = |url: &str| {
            trackers
                .iter()
                .find(|s| s["url"] == url)
                .map(|s| s["state"].clone())
        };
        state_of(&dead) == Some("backing_off".into()) && state_of(&live) == Some("working".into())
    });
    // The working tracker is where the leecher's peer came from.
    let live_status = t["trackers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["url"] == live.as_str())
        .unwrap();
    assert!(live_status["peers_received"].as_u64() >= Some(1), "{t:#}");
    let dead_status = t["trackers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["url"] == dead.as_str())
        .unwrap();
    assert!(
        dead_status["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{t:#}"
    );
}

/// The single-shot commands use the torrent's trackers too: a seeder and a leecher given no
/// peers find each other through opentracker (HTTP); a torrent whose only tracker is dead
/// fails with a message that names it.
#[test]
fn single_shot_seed_and_download_find_each_other_through_opentracker() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("seed").join("content.bin");
    write_random(&src, 2 * 1024 * 1024 + 5, 78);
    let plain = dir.path().join("plain.torrent");
    make_torrent(&src, &plain, Some(64 * 1024));
    let ot = opentracker(&info_hash_of(&plain));
    let url = format!("http://127.0.0.1:{}/announce", ot.port);
    let torrent = dir.path().join("x.torrent");
    let create = |announce: &str, out: &Path| {
        let o = Command::new(bin())
            .arg("create")
            .arg(&src)
            .arg("-o")
            .arg(out)
            .args(["--piece-length", "65536", "--announce", announce])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    create(&url, &torrent);
    let seed_port = free_port();
    let _seeder = Client::spawn(
        {
            let mut c = Command::new(bin());
            c.arg("seed")
                .arg("--torrent")
                .arg(&torrent)
                .arg("--path")
                .arg(&src)
                .arg(format!("--tcp-listen=127.0.0.1:{seed_port}"))
                .arg("--sciond=127.0.0.1:9");
            c
        },
        dir.path().join("seeder.log"),
    );
    let out = dir.path().join("out.bin");
    let o = run(
        &[
            "download".into(),
            "--torrent".into(),
            torrent.display().to_string(),
            "--path".into(),
            out.display().to_string(),
            "--sciond=127.0.0.1:9".into(),
        ],
        &[],
        Duration::from_secs(120),
    );
    assert!(
        o.status.success(),
        "download failed: {}{}",
        o.stdout,
        o.stderr
    );
    same_tree(&src, &out);

    // Only a dead tracker: exit 4, and the message says what the tracker did.
    let dead = format!("http://127.0.0.1:{}/announce", free_port());
    let lonely = dir.path().join("dead.torrent");
    create(&dead, &lonely);
    let o = run(
        &[
            "download".into(),
            "--torrent".into(),
            lonely.display().to_string(),
            "--path".into(),
            dir.path().join("nothing.bin").display().to_string(),
            "--sciond=127.0.0.1:9".into(),
        ],
        &[],
        Duration::from_secs(120),
    );
    assert_eq!(o.status.code(), Some(4), "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains(&dead) && o.stderr.contains("backing_off"),
        "the failure does not name the dead tracker: {}",
        o.stderr
    );
}

/// A fake HTTP tracker on a thread: answers every request with `body` (after reading the
/// request head), or, without a body, accepts and never answers.
fn fake_http_tracker(body: Option<Vec<u8>>) -> String {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().map_while(Result::ok) {
            let Some(body) = &body else {
                held.push(stream); // silent: keep it open, say nothing
                continue;
            };
            let mut reader = std::io::BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let mut s = reader.into_inner();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    url
}

/// A whole daemon against hostile trackers, all the torrent lists (one tier each): truncated
/// bencode, a compact list of the wrong length, a body over the size cap, one that never
/// answers, and one that answers with 5,000 peers. The download still completes from a peer
/// given by hand; each tracker's status says what was wrong; at most 1,000 peers are taken
/// from the huge answer.
#[test]
fn a_daemon_survives_hostile_trackers_and_says_why_each_failed() {
    use common::daemons::{state, Daemon};
    let dir = tempfile::tempdir().unwrap();
    let seed_root = dir.path().join("seed");
    let src = seed_root.join("content.bin");
    write_random(&src, 3 * 1024 * 1024 + 7, 79);
    let mut huge = b"d8:intervali1800e5:peers30000:".to_vec();
    for i in 0..5000u32 {
        // 127.0.0.1 on ports nobody listens on (refused at once).
        huge.extend_from_slice(&[127, 0, 0, 1]);
        huge.extend_from_slice(&(20000 + (i % 20000) as u16).to_be_bytes());
    }
    huge.push(b'e');
    let mut oversized = b"d5:peers1000000:".to_vec();
    oversized.resize(oversized.len() + 1_000_000, 0);
    oversized.push(b'e');
    let trackers = [
        (
            fake_http_tracker(Some(b"d8:intervali1800e5:peers".to_vec())),
            "not bencode",
        ),
        (
            fake_http_tracker(Some(b"d8:intervali1800e5:peers5:abcdee".to_vec())),
            "multiple of the 6-byte",
        ),
        (fake_http_tracker(Some(oversized)), "larger than"),
        (fake_http_tracker(None), "no answer within"),
    ];
    let huge_url = fake_http_tracker(Some(huge));
    let torrent = seed_root.join("x.torrent");
    let mut c = Command::new(bin());
    c.arg("create")
        .arg(&src)
        .arg("-o")
        .arg(&torrent)
        .args(["--piece-length", "65536"]);
    for (url, _) in &trackers {
        c.args(["--announce", url]);
    }
    c.args(["--announce", &huge_url]);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let tcp_only = |name: &str, root: Option<&Path>| {
        let tcp = format!("127.0.0.1:{}", free_port());
        let mut args = vec![
            "--sciond=127.0.0.1:9".to_string(),
            format!("--tcp-listen={tcp}"),
        ];
        if let Some(r) = root {
            args.push(format!("--download-root={}", r.display()));
        }
        (Daemon::start(&dir.path().join(name), &args, &[]), tcp)
    };
    let (seeder, seeder_tcp) = tcp_only("seeder", Some(&seed_root));
    let (leecher, _) = tcp_only("leecher", None);
    let ih = seeder.add_torrent_path("x.torrent", "");
    seeder.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");
    let out = leecher.cli(&["add", torrent.to_str().unwrap(), "--peer", &seeder_tcp]);
    assert_eq!(out.0, 0, "{out:?}");
    leecher.wait_torrent(&ih, Duration::from_secs(120), |t| state(t) == "seeding");
    same_tree(&src, &leecher.data_dir.join("downloads/content.bin"));

    // Every hostile tracker has been tried (the silent one takes the 20 s HTTP timeout) and
    // says why it failed; the huge answer was taken, capped.
    let t = leecher.wait_torrent(&ih, Duration::from_secs(90), |t| {
        let list = t["trackers"].as_array().unwrap();
        list.iter()
            .any(|s| s["url"] == huge_url.as_str() && s["state"] == "working")
    });
    let list = t["trackers"].as_array().unwrap();
    for (url, why) in &trackers {
        let s = list.iter().find(|s| s["url"] == url.as_str()).unwrap();
        assert_eq!(s["state"], "backing_off", "{s:#}");
        let err = s["last_error"].as_str().unwrap_or_default();
        assert!(err.contains(why), "{url}: expected {why:?} in {err:?}");
    }
    let h = list.iter().find(|s| s["url"] == huge_url.as_str()).unwrap();
    assert_eq!(h["last_peers"].as_u64(), Some(1000), "{h:#}");
    // The daemon is still fine and serves its API.
    assert_eq!(state(&leecher.torrent(&ih)), "seeding");
}

/// A daemon leeching a torrent whose only tracker answers with no peers asks it again on the
/// short schedule (15 s, then 30 s …), not after the tracker's 30-minute interval: the test's
/// tracker counts the announces.
#[test]
fn a_daemon_asks_a_tracker_without_peers_again_within_seconds() {
    use common::daemons::Daemon;
    use std::io::{BufRead, Write};
    use std::sync::atomic::{AtomicU32, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    let announces = Arc::new(AtomicU32::new(0));
    let counted = announces.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = std::io::BufReader::new(stream);
            let mut line = String::new();
            let mut first = true;
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if first && line.starts_with("GET /announce") {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                first = false;
                line.clear();
            }
            let body = b"d8:intervali1800e5:peers0:e";
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let mut s = reader.into_inner();
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("content.bin");
    write_random(&src, 256 * 1024, 5);
    let torrent = dir.path().join("x.torrent");
    let o = Command::new(bin())
        .arg("create")
        .arg(&src)
        .arg("-o")
        .arg(&torrent)
        .args(["--announce", &url])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let leecher = Daemon::start(
        &dir.path().join("leecher"),
        &[
            "--sciond=127.0.0.1:9".to_string(),
            format!("--tcp-listen=127.0.0.1:{}", free_port()),
        ],
        &[],
    );
    let out = leecher.cli(&["add", torrent.to_str().unwrap()]);
    assert_eq!(out.0, 0, "{out:?}");
    let ih: String = info_hash_of(&torrent)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let t = leecher.wait_torrent(&ih, Duration::from_secs(30), |t| {
        t["trackers"][0]["empty_answers"].as_u64() >= Some(1)
    });
    let first = std::time::Instant::now();
    // The next attempt is due in 15 s, not in 1800.
    let s = &t["trackers"][0];
    let due_in_ms =
        s["next_attempt_unix_ms"].as_u64().unwrap() - s["last_success_unix_ms"].as_u64().unwrap();
    assert!((14_000..=16_000).contains(&due_in_ms), "{s:#}");
    while announces.load(Ordering::SeqCst) < 2 {
        assert!(
            first.elapsed() < Duration::from_secs(25),
            "no second announce within 25 s: {:#}",
            leecher.torrent(&ih)["trackers"]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let t = leecher.wait_torrent(&ih, Duration::from_secs(10), |t| {
        t["trackers"][0]["empty_answers"].as_u64() >= Some(2)
    });
    // Then 30 s.
    let s = &t["trackers"][0];
    let due_in_ms =
        s["next_attempt_unix_ms"].as_u64().unwrap() - s["last_success_unix_ms"].as_u64().unwrap();
    assert!((29_000..=31_000).contains(&due_in_ms), "{s:#}");
}
