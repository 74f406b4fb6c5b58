//! Two real daemons on the real local SCION network (pocketscion), driven only through the HTTP
//! API and the CLI client: one seeds three torrents over SCION and TCP, the other downloads all
//! three at once, with pause/resume, remove, a peer added while running, rate limits, `kill -9`
//! at random moments and a clean restart that trusts its fast-resume data.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::daemons::{state, Daemon};
use common::{
    daemon, make_torrent, same_tree, testnet, testnet_on, write_random, Backend, LEAF_A, LEAF_B,
};
use data_encoding::BASE64;
use serde_json::{json, Value};

const MIB: usize = 1024 * 1024;

struct Swarm {
    _tn: common::Testnet,
    seeder: Daemon,
    leecher: Daemon,
    /// The seeder's SCION and TCP addresses.
    scion: String,
    tcp: String,
}

fn seed_root(work: &Path) -> PathBuf {
    work.join("seed-root")
}

/// On `tn` (three-paths), a seeder daemon in LEAF_A seeding `torrents` (prepared by
/// [`make_data`] under `work`'s seed root) over SCION and TCP, and an empty leecher daemon in
/// LEAF_B.
fn swarm(tn: common::Testnet, work: &Path, torrents: &[&str]) -> Swarm {
    let seeder = Daemon::start(
        &work.join("seeder"),
        &[
            format!("--local={LEAF_A},[127.0.0.1]:0"),
            format!("--download-root={}", seed_root(work).display()),
            format!("--sciond={}", daemon(&tn, LEAF_A)),
        ],
        &[],
    );
    for name in torrents {
        let (status, v) = seeder.call(
            "POST",
            "/api/v1/torrents",
            Some(json!({ "torrent_path": format!("torrents/{name}.torrent"), "out_dir": "" })),
        );
        assert_eq!(status, 201, "seeder add {name}: {v}");
    }
    let snap = wait_snapshot(&seeder, |s| {
        let list = s["torrents"].as_array().unwrap();
        s["local_scion"].is_string()
            && list.len() == torrents.len()
            && list.iter().all(|t| state(t) == "seeding")
    });
    let scion = snap["local_scion"].as_str().unwrap().to_string();
    let tcp = snap["tcp_listen"].as_str().unwrap().to_string();
    let leecher = Daemon::start(
        &work.join("leecher"),
        &[
            format!("--local={LEAF_B},[127.0.0.1]:0"),
            format!("--sciond={}", daemon(&tn, LEAF_B)),
        ],
        &[],
    );
    wait_snapshot(&leecher, |s| s["local_scion"].is_string());
    Swarm {
        _tn: tn,
        seeder,
        leecher,
        scion,
        tcp,
    }
}

fn wait_snapshot(d: &Daemon, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = d.snapshot();
        if ok(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "snapshot never got there: {s:#}\nlog:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes data under the seed root and its .torrent into `<root>/torrents/<name>.torrent`.
fn make_data(work: &Path, name: &str, files: &[(&str, usize)], piece: u32) -> PathBuf {
    let root = seed_root(work);
    for (i, (rel, len)) in files.iter().enumerate() {
        write_random(&root.join(rel), *len, 7 + i as u64 * 31 + name.len() as u64);
    }
    let top = root.join(files[0].0.split('/').next().unwrap());
    let torrent = root.join("torrents").join(format!("{name}.torrent"));
    std::fs::create_dir_all(torrent.parent().unwrap()).unwrap();
    make_torrent(&top, &torrent, Some(piece));
    torrent
}

fn open_lanes(t: &Value) -> Vec<&Value> {
    t["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["open"].as_bool() == Some(true))
        .collect()
}

fn have(t: &Value) -> u64 {
    t["pieces_have"].as_u64().unwrap()
}

fn progress(t: &Value) -> f64 {
    t["progress"].as_f64().unwrap()
}

fn add_api(d: &Daemon, torrent: &Path, extra: Value) -> String {
    let mut body = json!({ "torrent_base64": BASE64.encode(&std::fs::read(torrent).unwrap()) });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, v) = d.call("POST", "/api/v1/torrents", Some(body));
    assert_eq!(status, 201, "add: {v}");
    v["info_hash"].as_str().unwrap().to_string()
}

fn cli_ok(d: &Daemon, args: &[&str]) -> String {
    let (code, out, err) = d.cli(args);
    assert_eq!(code, 0, "{args:?} failed ({code}): {out}{err}");
    out
}

#[test]
fn a_daemon_downloads_three_torrents_from_another_driven_by_api_and_cli() {
    three_torrents_driven_by_api_and_cli(testnet("three-paths"));
}

/// The same on scionproto's routers, control services and daemons.
#[test]
fn scionproto_a_daemon_downloads_three_torrents_from_another_driven_by_api_and_cli() {
    three_torrents_driven_by_api_and_cli(testnet_on("three-paths", Backend::Scionproto));
}

/// Three torrents (a big single file, a multi-file tree, a small file) from a seeding daemon to
/// a downloading one, over SCION and TCP at once, driven through the API and the CLI client:
/// pause and resume, a peer added while running (charlie's only one, over SCION), removal
/// mid-download and re-adding (then over SCION only); all byte-identical.
fn three_torrents_driven_by_api_and_cli(tn: common::Testnet) {
    let work = tempfile::tempdir().unwrap();
    // Data first (the seeder adds it at start): a big single file, a multi-file tree, a small
    // single file.
    let alpha = make_data(work.path(), "alpha", &[("alpha.bin", 40 * MIB)], 256 * 1024);
    let bravo = make_data(
        work.path(),
        "bravo",
        &[
            ("bravo/a.bin", 6 * MIB),
            ("bravo/sub/b.bin", 3 * MIB + 123),
            ("bravo/c.txt", 1000),
        ],
        64 * 1024,
    );
    let charlie = make_data(
        work.path(),
        "charlie",
        &[("charlie.bin", 5 * MIB + 7)],
        64 * 1024,
    );
    let backend = tn.backend();
    let s = swarm(tn, work.path(), &["alpha", "bravo", "charlie"]);
    let (seeder, leecher) = (&s.seeder, &s.leecher);
    let root = seed_root(work.path());

    // alpha: through the API, over SCION and TCP, slowed down so there is a middle to act in.
    let a = add_api(
        leecher,
        &alpha,
        json!({ "peers": [s.scion, s.tcp], "limits": { "download_bps": 6_000_000 } }),
    );
    // bravo: through the CLI client.
    let out = cli_ok(
        leecher,
        &[
            "add",
            bravo.to_str().unwrap(),
            "--peer",
            &s.scion,
            "--peer",
            &s.tcp,
        ],
    );
    let b = out.split_whitespace().nth(1).unwrap().to_string();
    // charlie: no peers yet.
    let c = add_api(leecher, &charlie, json!({}));

    // Both transports carry alpha's bytes; SCION lanes name their path.
    let t = leecher.wait_torrent(&a, Duration::from_secs(120), |t| {
        let lanes = t["lanes"].as_array().unwrap();
        progress(t) > 0.1
            && lanes.iter().any(|l| {
                l["transport"] == "scion"
                    && l["bytes_down"].as_u64() > Some(0)
                    && l["path"]["hops"].as_array().is_some_and(|h| !h.is_empty())
            })
            && lanes
                .iter()
                .any(|l| l["transport"] == "tcp" && l["bytes_down"].as_u64() > Some(0))
    });
    assert!(progress(&t) < 0.9, "alpha was not slowed down: {t:#}");
    api_paths_show_the_metadata(leecher, backend);
    // Each peer shows the client it named in its extension handshake, over SCION and TCP.
    for p in t["peers"].as_array().unwrap() {
        assert!(
            p["client"]
                .as_str()
                .is_some_and(|c| c.starts_with("bittorrent-over-scion")),
            "{p}"
        );
    }
    // The CLI names each SCION lane by the core AS its path crosses.
    let shown = cli_ok(leecher, &["show", &a]);
    assert!(
        ["110", "120", "130"]
            .iter()
            .any(|c| shown.contains(&format!("via 1-ff00:0:{c}"))),
        "{shown}"
    );

    // Pause: lanes close and nothing more arrives.
    cli_ok(leecher, &["pause", &a]);
    let t = leecher.wait_torrent(&a, Duration::from_secs(20), |t| {
        state(t) == "paused" && open_lanes(t).is_empty()
    });
    std::thread::sleep(Duration::from_secs(1));
    let paused_at = have(&leecher.torrent(&a));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        have(&leecher.torrent(&a)),
        paused_at,
        "a paused torrent kept downloading: {t:#}"
    );

    // charlie has no peer to get data from, until one is added while it runs.
    let t = leecher.torrent(&c);
    assert_eq!(have(&t), 0, "charlie got data without a peer: {t:#}");
    assert_eq!(t["peers_known"].as_u64(), Some(0));
    let out = cli_ok(leecher, &["add-peer", &c, &s.scion]);
    assert!(out.contains("1 new peer"), "{out}");

    cli_ok(leecher, &["resume", &a]);
    leecher.wait_torrent(&a, Duration::from_secs(60), |t| {
        state(t) == "downloading" && have(t) > paused_at
    });

    // Remove alpha mid-download (keeping its data): the seeder's lanes for it close.
    let before = have(&leecher.torrent(&a));
    assert!(
        (before as f64) < 0.95 * leecher.torrent(&a)["pieces_total"].as_f64().unwrap(),
        "alpha finished too early to test removal"
    );
    cli_ok(leecher, &["remove", &a]);
    let (status, _) = leecher.call("GET", &format!("/api/v1/torrents/{a}"), None);
    assert_eq!(status, 404, "a removed torrent is still listed");
    seeder.wait_torrent(&a, Duration::from_secs(20), |t| open_lanes(t).is_empty());

    // Added again without a limit: what is on disk is found by the check, the rest arrives.
    let a2 = add_api(leecher, &alpha, json!({ "peers": [s.scion] }));
    assert_eq!(a2, a);
    let t = leecher.wait_torrent(&a, Duration::from_secs(60), |t| state(t) != "checking");
    assert!(
        t["pieces_resumed"].as_u64().unwrap() + 2 >= before,
        "the re-added torrent did not find its data ({before} pieces before): {t:#}"
    );

    for ih in [&a, &b, &c] {
        leecher.wait_torrent(ih, Duration::from_secs(300), |t| state(t) == "seeding");
    }
    let downloads = s.leecher.data_dir.join("downloads");
    for name in ["alpha.bin", "bravo", "charlie.bin"] {
        same_tree(&root.join(name), &downloads.join(name));
    }

    // The list as the CLI prints it names all three.
    let out = cli_ok(leecher, &["ls"]);
    for name in ["alpha.bin", "bravo", "charlie.bin"] {
        assert!(out.contains(name), "ls lacks {name}:\n{out}");
    }
}

/// `GET /api/v1/paths` of the leecher (in LEAF_B): the three paths to the seeder's AS (LEAF_A)
/// with what the daemon
/// knows of them. scionproto's daemons give what three-paths.toml announces (checked on the
/// path through 1-ff00:0:120: 4 + 1 + 4 ms, 400 Mbit/s links, multihop, 2 internal hops, its
/// notes and places); pocketscion's give MTU and expiry only, and the rest is null, never 0.
fn api_paths_show_the_metadata(leecher: &Daemon, backend: Backend) {
    let (status, v) = leecher.call("GET", "/api/v1/paths", None);
    assert_eq!(status, 200, "{v}");
    let dest = v
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["ia"] == LEAF_A)
        .unwrap_or_else(|| panic!("no paths to {LEAF_A}: {v:#}"));
    let paths = dest["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 3, "{dest:#}");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for kp in paths {
        let p = &kp["path"];
        assert!(p["mtu"].as_u64().is_some_and(|m| m >= 1280), "{p}");
        assert!(
            p["expiry_unix_ms"].as_u64().is_some_and(|e| e > now_ms),
            "{p}"
        );
        assert_eq!(p["steps"].as_array().unwrap().len(), 3, "{p}");
        assert_eq!(p["notes"].as_array().unwrap().len(), 3, "{p}");
        if backend == Backend::Pocketscion {
            for k in ["latency_ms", "bandwidth_kbps"] {
                assert!(p[k].is_null(), "{k}: {p}");
            }
            for step in p["steps"].as_array().unwrap() {
                for k in ["latency_ms", "bandwidth_kbps", "link_type", "internal_hops"] {
                    assert!(step[k].is_null(), "{k}: {p}");
                }
            }
            assert!(p["hops"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["geo"].is_null()));
            assert!(p["notes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n["note"].is_null()));
        } else {
            assert!(p["latency_ms"].as_f64().is_some(), "{p}");
            assert!(p["bandwidth_kbps"].as_u64().is_some(), "{p}");
        }
    }
    if backend == Backend::Scionproto {
        let p = &paths
            .iter()
            .find(|kp| kp["path"]["hops"][1]["ia"] == "1-ff00:0:120")
            .unwrap_or_else(|| panic!("no path via 1-ff00:0:120: {dest:#}"))["path"];
        assert_eq!(p["latency_ms"], json!(9.0), "{p}");
        assert_eq!(p["bandwidth_kbps"], json!(400_000), "{p}");
        let steps = &p["steps"];
        assert_eq!(
            steps[0],
            json!({ "kind": "link", "latency_ms": 4.0, "bandwidth_kbps": 400_000,
                    "link_type": "multihop", "internal_hops": null }),
            "{p}"
        );
        assert_eq!(
            steps[1],
            json!({ "kind": "internal", "latency_ms": 1.0, "bandwidth_kbps": 4_000_000,
                    "link_type": null, "internal_hops": 2 }),
            "{p}"
        );
        assert_eq!(steps[2]["link_type"], "multihop", "{p}");
        assert_eq!(p["hops"][0]["geo"]["address"], "Basel", "{p}");
        assert_eq!(p["hops"][2]["geo"]["address"], "Lausanne", "{p}");
        assert_eq!(
            p["notes"][1],
            json!({ "ia": "1-ff00:0:120", "note": "core 120, path 2" })
        );
    }
}

/// `bts_torrent_pieces{kind=...}` of one torrent, from `/metrics`.
fn pieces_metric(d: &Daemon, ih: &str, kind: &str) -> Option<u64> {
    let (status, text) = d.call("GET", "/metrics", None);
    assert_eq!(status, 200);
    let text = text.as_str().unwrap_or_default().to_string();
    let want_ih = format!("info_hash=\"{ih}\"");
    let want_kind = format!("kind=\"{kind}\"");
    text.lines()
        .filter(|l| l.starts_with("bts_torrent_pieces{"))
        .find(|l| l.contains(&want_ih) && l.contains(&want_kind))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

#[test]
fn kill_dash_nine_at_twenty_random_moments_loses_no_verified_piece() {
    let work = tempfile::tempdir().unwrap();
    let torrent = make_data(work.path(), "delta", &[("delta.bin", 32 * MIB)], 128 * 1024);
    let Swarm {
        _tn,
        seeder: _seeder,
        mut leecher,
        scion,
        ..
    } = swarm(testnet("three-paths"), work.path(), &["delta"]);
    // Slow enough that most kills land mid-download.
    let ih = add_api(
        &leecher,
        &torrent,
        json!({ "peers": [scion], "limits": { "download_bps": 1_000_000 } }),
    );
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill moments seed {x}");
    let mut mid_download = 0;
    for kill in 0..20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(Duration::from_millis(100 + x % 900));
        // What the metrics say was verified, read right before the kill (the truth at the
        // kill can only be more).
        let before = pieces_metric(&leecher, &ih, "have").expect("the torrent is listed");
        let total = pieces_metric(&leecher, &ih, "total").unwrap();
        if before > 0 && before < total {
            mid_download += 1;
        }
        eprintln!("kill {kill}: {before} of {total} pieces verified");
        leecher.kill9_and_restart();
        let t = leecher.wait_torrent(&ih, Duration::from_secs(120), |t| {
            !matches!(state(t), "checking" | "")
        });
        let resumed = pieces_metric(&leecher, &ih, "resumed").unwrap();
        assert!(
            resumed >= before,
            "kill {kill}: {before} pieces were verified before the kill, only {resumed} after \
             the restart (they would be downloaded again): {t:#}"
        );
    }
    assert!(
        mid_download >= 10,
        "only {mid_download} of 20 kills hit the download in the middle"
    );
    leecher.wait_torrent(&ih, Duration::from_secs(300), |t| state(t) == "seeding");
    same_tree(
        &seed_root(work.path()).join("delta.bin"),
        &leecher.data_dir.join("downloads/delta.bin"),
    );

    // A clean stop and start trusts the fast-resume data: nothing is hashed again.
    assert_eq!(leecher.terminate(), 0, "log:\n{}", leecher.log_text());
    assert_eq!(leecher.terminate(), 0);
    leecher.restart();
    let t = leecher.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");
    assert_eq!(t["pieces_checked"].as_u64(), Some(0), "{t:#}");
    assert_eq!(t["pieces_resumed"], t["pieces_total"], "{t:#}");
    // The limit given at add survived every restart.
    assert_eq!(t["limits"]["download_bps"].as_u64(), Some(1_000_000));
}

/// A magnet link added through the CLI client: it exists before its metadata (named by its
/// `dn`), is still there after a restart, fetches the metadata over SCION from the peer added
/// while it runs, downloads, and after another restart is an ordinary torrent that trusts its
/// resume data.
#[test]
fn a_magnet_link_survives_restarts_and_downloads_over_scion() {
    let work = tempfile::tempdir().unwrap();
    let torrent = make_data(
        work.path(),
        "echo",
        &[("echo/a.bin", 3 * MIB + 5), ("echo/b/c.bin", 2 * MIB)],
        64 * 1024,
    );
    let ih = btscion::client::control::info_hash_hex(&common::info_hash_of(&torrent));
    let Swarm {
        _tn,
        seeder: _seeder,
        mut leecher,
        scion,
        ..
    } = swarm(testnet("three-paths"), work.path(), &["echo"]);
    let link = format!("magnet:?xt=urn:btih:{ih}&dn=echo%20(magnet)");
    let out = cli_ok(&leecher, &["add", &link]);
    assert!(out.contains(&ih), "{out}");
    let t = leecher.torrent(&ih);
    assert_eq!(state(&t), "fetching_metadata", "{t:#}");
    assert_eq!(t["name"], "echo (magnet)");

    assert_eq!(leecher.terminate(), 0);
    leecher.restart();
    let t = leecher.wait_torrent(&ih, Duration::from_secs(30), |t| {
        state(t) == "fetching_metadata"
    });
    assert_eq!(t["name"], "echo (magnet)", "the link was kept: {t:#}");

    cli_ok(&leecher, &["add-peer", &ih, &scion]);
    let t = leecher.wait_torrent(&ih, Duration::from_secs(120), |t| state(t) == "seeding");
    assert_eq!(t["name"], "echo", "the name now comes from the metadata");
    same_tree(
        &seed_root(work.path()).join("echo"),
        &leecher.data_dir.join("downloads/echo"),
    );

    assert_eq!(leecher.terminate(), 0);
    leecher.restart();
    let t = leecher.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");
    assert_eq!(t["pieces_checked"].as_u64(), Some(0), "{t:#}");
    assert_eq!(t["pieces_resumed"], t["pieces_total"], "{t:#}");
}
