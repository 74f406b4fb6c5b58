//! Trackers over SCION on the real local SCION network: our `tracker` serves HTTP over
//! QUIC/SCION; one seeding daemon and four leeching daemons in the five ASes of `three-paths`
//! know nothing but the tracker's SCION URL from the .torrent's announce list. With the
//! seeder's upload capped so that it is the bottleneck, all four finish byte-identically and
//! get a large share of the data from each other. The original client's single-shot commands
//! find each other through the same tracker, and `-exportMetricsTo=http://[ISD-AS,IP]:PORT/…`
//! POSTs the per-path CSV over QUIC/SCION.

mod common;

use std::time::Duration;

use btscion::discovery::scion_http::ScionQuicEndpoint;
use common::clients::Client;
use common::daemons::{peers_all_from, scion_bytes_down, state, Daemon};
use common::{
    daemon, info_hash_of, same_tree, seeder, testnet, testnet_on, write_random, Backend, LEAF_A,
    LEAF_B,
};
use serde_json::json;

const SIZE: u64 = 12 * 1024 * 1024;
/// The seeder's upload cap: alone it would need SIZE·4 / CAP ≈ 24 s.
const CAP: u64 = 2 * 1024 * 1024;

fn create(src: &std::path::Path, out: &std::path::Path, announce: &str) {
    let o = std::process::Command::new(common::bin())
        .args([
            "create",
            "--piece-length",
            "65536",
            "--announce",
            announce,
            "-o",
        ])
        .arg(out)
        .arg(src)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `1-ff00:0:111,[127.0.0.1]:PORT` + `/announce` → `http://[1-ff00:0:111,127.0.0.1]:PORT/announce`.
fn scion_url(addr: &str, path: &str) -> String {
    let (ia_host, port) = addr.rsplit_once(':').unwrap();
    format!("http://[{}]:{port}{path}", ia_host.replace(['[', ']'], ""))
}

/// Our tracker serving only over SCION in `ia`; its announce URL.
fn scion_tracker(
    tn: &scion_testnet::Testnet,
    ia: &str,
    work: &std::path::Path,
) -> (Client, String) {
    let mut cmd = std::process::Command::new(common::bin());
    cmd.args(["tracker", "--scion", "0", "--interval", "5", "--sciond"])
        .arg(daemon(tn, ia));
    let mut tracker = Client::spawn(cmd, work.join("tracker.log"));
    let line = tracker.wait_for("tracker http", Duration::from_secs(30));
    let scion = line.rsplit(' ').next().unwrap().to_string();
    assert!(scion.starts_with(ia), "{line}");
    (tracker, scion_url(&scion, "/announce"))
}

#[test]
fn four_leechers_find_each_other_through_a_tracker_over_scion() {
    four_leechers_through_a_scion_tracker(&testnet("three-paths"));
}

/// The same on scionproto's routers, control services and daemons.
#[test]
fn scionproto_four_leechers_find_each_other_through_a_tracker_over_scion() {
    four_leechers_through_a_scion_tracker(&testnet_on("three-paths", Backend::Scionproto));
}

/// A capped seeder in LEAF_A and four leechers in the four other ASes, all daemons, know only
/// the tracker's SCION URL: every leecher finishes byte-identical with peers only from the
/// tracker, bytes over SCION lanes, and most of the data from each other.
fn four_leechers_through_a_scion_tracker(tn: &scion_testnet::Testnet) {
    let ases: Vec<String> = tn.state().ases.keys().cloned().collect();
    assert!(ases.len() >= 5, "{ases:?}");
    let work = tempfile::tempdir().unwrap();
    let (_tracker, url) = scion_tracker(tn, LEAF_A, work.path());

    let root = work.path().join("seed-root");
    let src = root.join("big.bin");
    write_random(&src, SIZE as usize, 71);
    let torrent = root.join("big.torrent");
    create(&src, &torrent, &url);
    let ih = btscion::client::control::info_hash_hex(&info_hash_of(&torrent));
    let node_args = |ia: &str| {
        vec![
            format!("--local={ia},[127.0.0.1]:0"),
            format!("--sciond={}", daemon(tn, ia)),
        ]
    };

    let mut seeder_args = node_args(LEAF_A);
    seeder_args.push(format!("--download-root={}", root.display()));
    let seeder = Daemon::start(&work.path().join("seeder"), &seeder_args, &[]);
    let body =
        json!({ "torrent_path": "big.torrent", "out_dir": "", "limits": { "upload_bps": CAP } });
    seeder.ok("POST", "/api/v1/torrents", Some(body));
    seeder.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");

    let leechers: Vec<Daemon> = ases
        .iter()
        .filter(|a| *a != LEAF_A)
        .take(4)
        .enumerate()
        .map(|(i, ia)| {
            let d = Daemon::start(
                &work.path().join(format!("leecher{i}")),
                &node_args(ia),
                &[],
            );
            let out = d.cli(&["add", torrent.to_str().unwrap()]);
            assert_eq!(out.0, 0, "{out:?}");
            d
        })
        .collect();
    for d in &leechers {
        let t = d.wait_torrent(&ih, Duration::from_secs(240), |t| state(t) == "seeding");
        same_tree(&src, &d.data_dir.join("downloads/big.bin"));
        let trackers = t["trackers"].as_array().unwrap();
        assert!(
            trackers.iter().any(|tr| tr["state"] == "working"),
            "the SCION tracker answered: {t:#}"
        );
        assert!(
            peers_all_from(&t, "tracker"),
            "every peer came from the tracker (or dialled us): {t:#}"
        );
        assert!(
            scion_bytes_down(&t) > 0,
            "bytes came over SCION lanes: {t:#}"
        );
    }
    // The seeder sent far less than the four copies the leechers received: the rest they
    // got from each other.
    let seeded = seeder.torrent(&ih)["bytes_up"].as_u64().unwrap();
    let received: u64 = leechers
        .iter()
        .map(|d| d.torrent(&ih)["bytes_down"].as_u64().unwrap())
        .sum();
    let shared: u64 = leechers
        .iter()
        .map(|d| d.torrent(&ih)["bytes_up"].as_u64().unwrap())
        .sum();
    assert!(received >= 4 * SIZE, "{received}");
    assert!(
        seeded < 3 * SIZE && shared > SIZE,
        "leechers should fetch a large share from each other: seeder sent {seeded}, leechers \
         sent {shared}, leechers received {received} (4 × {SIZE})"
    );
    eprintln!(
        "seeder sent {:.1} MiB, leechers to each other {:.1} MiB of {:.1} MiB received",
        seeded as f64 / 1048576.0,
        shared as f64 / 1048576.0,
        received as f64 / 1048576.0
    );
}

/// Single-shot seed and download (the original client's flags) with no `-peer`: they meet
/// through the tracker over SCION, and the download POSTs its per-path CSV to an HTTP server
/// over QUIC/SCION in a third AS.
#[test]
fn single_shot_commands_use_a_scion_tracker_and_post_metrics_over_scion() {
    let tn = testnet("three-paths");
    let ases: Vec<String> = tn.state().ases.keys().cloned().collect();
    let third = ases
        .iter()
        .find(|a| *a != LEAF_A && *a != LEAF_B)
        .unwrap()
        .clone();
    let work = tempfile::tempdir().unwrap();
    let (_tracker, url) = scion_tracker(&tn, &third, work.path());
    let src = work.path().join("data.bin");
    write_random(&src, 3_000_000, 72);
    let torrent = work.path().join("data.torrent");
    create(&src, &torrent, &url);
    let (_seed, _addr) = seeder(&tn, LEAF_A, &torrent, &src, work.path(), &[]);

    // The metrics sink: HTTP/1.1 over QUIC/SCION, answering one POST.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sink = rt
        .block_on(ScionQuicEndpoint::bind(&daemon(&tn, &third), None, 0, true))
        .unwrap();
    let sink_url = scion_url(&sink.local_addr().to_string(), "/metrics");
    let received = rt.spawn(async move {
        let (incoming, from) = sink.accept_incoming().await.expect("a connection");
        let conn = incoming.await.expect("a handshake");
        let (mut send, mut recv) = conn.accept_bi().await.expect("a stream");
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        // Headers, then Content-Length bytes of body.
        let body_len = loop {
            let n = recv.read(&mut buf).await.unwrap().unwrap_or(0);
            assert!(
                n > 0,
                "the request ended early: {:?}",
                String::from_utf8_lossy(&req)
            );
            req.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&req).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .expect("a content-length");
                break end + 4 + len;
            }
        };
        while req.len() < body_len {
            let n = recv.read(&mut buf).await.unwrap().unwrap_or(0);
            assert!(n > 0);
            req.extend_from_slice(&buf[..n]);
        }
        send.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let _ = send.finish();
        let _ = conn.closed().await;
        (from, String::from_utf8(req).unwrap())
    });

    let out = work.path().join("out");
    let r = common::run(
        &[
            format!("-inPath={}", torrent.display()),
            format!("-outPath={}", out.display()),
            "-seed=false".into(),
            format!("-exportMetricsTo={sink_url}"),
        ],
        &[("SCION_DAEMON_ADDRESS", daemon(&tn, LEAF_B))],
        Duration::from_secs(180),
    );
    assert!(
        r.status.success(),
        "download failed: {}\n{}",
        r.stdout,
        r.stderr
    );
    same_tree(&src, &out);
    let (from, req) = rt.block_on(received).unwrap();
    assert!(
        from.to_string().starts_with(LEAF_B),
        "the POST came over SCION from {from}"
    );
    assert!(req.starts_with("POST /metrics HTTP/1.1\r\n"), "{req}");
    let body = req.split("\r\n\r\n").nth(1).unwrap();
    let mut lines = body.lines();
    assert!(
        lines.next().unwrap().starts_with("path,bytes_down,"),
        "{body}"
    );
    let down: u64 = lines
        // The first field is the quoted path.
        .map(|l| {
            l.split_once("\",")
                .unwrap()
                .1
                .split(',')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert!(
        down >= 3_000_000,
        "the CSV accounts for the download: {body}"
    );
}
