//! The SCION daemon client against the real thing: pocketscion's daemons on the local testnet
//! (three-paths topology: 1-ff00:0:111 and 1-ff00:0:112 joined by three link-disjoint paths),
//! and scionproto's; the `paths` command that shows what the daemon gives.

mod common;

use std::collections::BTreeSet;

use btscion::scion::{
    daemon::{BlockingDaemonClient, DaemonClient, DaemonError},
    packet, parse_ia, Ia,
};
use common::Backend;
use scion_testnet::{StartOptions, Testnet, Topology};

const SRC: &str = "1-ff00:0:111";
const DST: &str = "1-ff00:0:112";

fn ia(s: &str) -> Ia {
    parse_ia(s).unwrap()
}

fn three_paths() -> Testnet {
    Testnet::start(&Topology::builtin("three-paths").expect("topology")).expect("testnet")
}

#[test]
fn local_ia_port_range_and_interfaces() {
    local_ia_port_range_and_interfaces_on(&three_paths());
}

#[test]
fn three_interface_disjoint_paths_with_first_hops() {
    three_interface_disjoint_paths_with_first_hops_on(&three_paths());
}

#[test]
fn paths_command_shows_the_three_disjoint_paths() {
    paths_command_on(&three_paths(), 1280);
}

/// The same three on scionproto's daemons (one network): their AS, port range (31000-32767),
/// interfaces, the three disjoint paths with first hops, and `paths` showing them with MTU
/// 1472 and scionproto's ~6 h expiry.
#[test]
fn scionproto_daemon_answers_and_the_paths_command() {
    let topology = Topology::builtin("three-paths").expect("topology");
    let options = StartOptions {
        backend: Backend::Scionproto,
        ..Default::default()
    };
    let net = Testnet::start_with(&topology, options).expect("testnet");
    local_ia_port_range_and_interfaces_on(&net);
    three_interface_disjoint_paths_with_first_hops_on(&net);
    paths_command_on(&net, 1472);
    a_port_outside_the_dispatched_range_is_warned_about(&net);
}

/// A seeder told to bind a port outside the AS's dispatched range (31000-32767) binds it as
/// told but warns: routers deliver there only through a dispatcher
/// on the host (scionproto v0.14.0's router happens to deliver anyway).
fn a_port_outside_the_dispatched_range_is_warned_about(net: &Testnet) {
    let st = net.state().as_state(SRC).unwrap().clone();
    let work = tempfile::tempdir().unwrap();
    let (data, torrent) = common::random_torrent(work.path(), 100_000, 3, None);
    // An ephemeral port (Linux: 32768-60999), free for TCP and, almost surely, UDP.
    let port = common::clients::free_port();
    assert!(!(31000..=32767).contains(&port), "{port}");
    let mut cmd = std::process::Command::new(common::bin());
    cmd.arg("seed")
        .arg("--torrent")
        .arg(&torrent)
        .arg("--path")
        .arg(&data)
        .arg("--local")
        .arg(format!("{SRC},[127.0.0.1]:{port}"))
        .env("SCION_DAEMON_ADDRESS", st.daemon.to_string());
    let mut seeder = common::clients::Client::spawn(cmd, work.path().join("seed.log"));
    let line = seeder.wait_for("seeding", std::time::Duration::from_secs(30));
    assert!(line.ends_with(&format!("[127.0.0.1]:{port}")), "{line}");
    let log = seeder.log();
    assert!(
        log.contains(&format!(
            "port {port} is outside the dispatched port range 31000-32767"
        )),
        "no warning: {log}"
    );
}

/// `bittorrent-over-scion paths DST` (and with `--refresh`) in SRC: the three paths with their
/// interfaces, hop count, the daemon's MTU, an expiry in the future within what the backend
/// issues (pocketscion ~24 h, scionproto ~6 h) and the AS's router as next hop.
fn paths_command_on(net: &Testnet, mtu: u16) {
    let st = net.state().as_state(SRC).unwrap().clone();
    let max_expiry = match net.backend() {
        Backend::Pocketscion => 24 * 3600 + 60,
        Backend::Scionproto => 6 * 3600,
    };
    for refresh in [false, true] {
        let mut args = vec!["paths".to_string(), DST.to_string()];
        if refresh {
            args.push("--refresh".into());
        }
        let out = common::run(
            &args,
            &[("SCION_DAEMON_ADDRESS", st.daemon.to_string())],
            std::time::Duration::from_secs(30),
        );
        assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            lines[0],
            format!("3 path(s) from {SRC} to {DST}:"),
            "{}",
            out.stdout
        );
        // Each path: its line, then indented details (summary, steps, geo, notes).
        let blocks: Vec<Vec<&str>> = out
            .stdout
            .split("\n[")
            .skip(1)
            .map(|b| b.lines().collect())
            .collect();
        assert_eq!(blocks.len(), 3, "{}", out.stdout);
        let mut first_interfaces = BTreeSet::new();
        for (k, block) in blocks.iter().enumerate() {
            let path = format!("[{}", block[0]);
            let details = block[1].trim_start();
            path_metadata_shown(net.backend(), &path, details, &block[2..]);
            assert!(path.starts_with(&format!("[{k}] {SRC}#")), "{path}");
            assert!(path.contains(&format!(" > {DST}#")), "{path}");
            first_interfaces.insert(path[4..].split(' ').next().unwrap().to_string());
            assert!(details.contains("hops 2 "), "{details}");
            if net.backend() == Backend::Pocketscion {
                assert!(
                    details.contains("latency unknown  bandwidth unknown"),
                    "{details}"
                );
            }
            assert!(details.contains(&format!("mtu {mtu} ")), "{details}");
            assert!(
                details.ends_with(&format!("next hop {}", st.router)),
                "{details}"
            );
            let expires: u64 = details
                .split("expires in ")
                .nth(1)
                .and_then(|r| r.split('s').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no expiry in {details}"));
            assert!(
                expires > max_expiry - 3600 && expires <= max_expiry,
                "expiry {expires} s: {details}"
            );
        }
        assert_eq!(
            first_interfaces.len(),
            3,
            "three disjoint paths:\n{}",
            out.stdout
        );
    }
}

/// The lines under a path's summary: its three steps, geo and notes. scionproto's daemons
/// give what three-paths.toml announces for the path's core; pocketscion's give none of it,
/// and `paths` says unknown, never 0.
fn path_metadata_shown(backend: Backend, path: &str, summary: &str, lines: &[&str]) {
    let lines: Vec<&str> = lines.iter().map(|l| l.trim_start()).collect();
    assert_eq!(lines.len(), 5, "{path}: {lines:#?}");
    let core = path
        .split(" > ")
        .nth(1)
        .and_then(|i| i.split('#').next())
        .unwrap();
    let want: [&str; 5] = match (backend, core) {
        (Backend::Pocketscion, _) => [
            "type unknown  latency unknown  bandwidth unknown",
            "internal hops unknown  latency unknown  bandwidth unknown",
            "type unknown  latency unknown  bandwidth unknown",
            " unknown | ",
            "notes  1-ff00:0:111 unknown | ",
        ],
        (Backend::Scionproto, "1-ff00:0:110") => [
            "type direct  latency 2.0 ms  bandwidth 1000000 kbit/s",
            "internal hops 1  latency 0.5 ms  bandwidth 10000000 kbit/s",
            "type direct  latency 3.0 ms  bandwidth 1000000 kbit/s",
            "(Zürich) | ",
            r#"1-ff00:0:110 "core 110, path 1" | "#,
        ],
        (Backend::Scionproto, "1-ff00:0:120") => [
            "type multihop  latency 4.0 ms  bandwidth 400000 kbit/s",
            "internal hops 2  latency 1.0 ms  bandwidth 4000000 kbit/s",
            "type multihop  latency 4.0 ms  bandwidth 400000 kbit/s",
            "(Lausanne) | ",
            r#"1-ff00:0:120 "core 120, path 2" | "#,
        ],
        (Backend::Scionproto, _) => [
            "type opennet  latency 10.0 ms  bandwidth 100000 kbit/s",
            "internal hops 3  latency 1.5 ms  bandwidth 1000000 kbit/s",
            "type opennet  latency 12.0 ms  bandwidth 100000 kbit/s",
            "(Genève) | ",
            r#"1-ff00:0:130 "core 130, path 3" | "#,
        ],
    };
    assert!(
        lines[0].starts_with(&format!("link {SRC}#")),
        "{path}: {lines:#?}"
    );
    assert!(
        lines[1].starts_with(&format!("in {core} #")),
        "{path}: {lines:#?}"
    );
    assert!(
        lines[2].starts_with(&format!("link {core}#")),
        "{path}: {lines:#?}"
    );
    assert!(lines[3].starts_with("geo  "), "{path}: {lines:#?}");
    assert!(lines[4].starts_with("notes  "), "{path}: {lines:#?}");
    for (line, want) in lines.iter().zip(want) {
        assert!(line.contains(want), "{path}: {line:?} lacks {want:?}");
    }
    if backend == Backend::Pocketscion {
        assert_eq!(lines[3].matches(" unknown").count(), 4, "{}", lines[3]);
    }
    if backend == Backend::Scionproto {
        // The sums: the path's latency and its bottleneck.
        let (latency, bandwidth) = match core {
            "1-ff00:0:110" => ("5.5 ms", 1_000_000),
            "1-ff00:0:120" => ("9.0 ms", 400_000),
            _ => ("23.5 ms", 100_000),
        };
        let want = format!("latency {latency}  bandwidth {bandwidth} kbit/s  next hop");
        assert!(summary.contains(&want), "{summary} lacks {want}");
        assert!(lines[3].contains(&format!("{SRC}#")) && lines[3].contains("(Bern)"));
        assert!(
            lines[4].ends_with(r#"1-ff00:0:112 "leaf 112""#),
            "{}",
            lines[4]
        );
    }
}

fn local_ia_port_range_and_interfaces_on(net: &Testnet) {
    let st = net.state().as_state(SRC).unwrap().clone();
    let c = BlockingDaemonClient::connect(&st.daemon.to_string()).unwrap();

    assert_eq!(c.local_ia().unwrap(), ia(SRC));
    let info = c.as_info(None).unwrap();
    assert_eq!(info.ia, ia(SRC));
    assert!(!info.core);
    assert!(c.as_info(Some(ia("1-ff00:0:110"))).unwrap().core);

    let (lo, hi) = c.port_range().unwrap();
    assert!(lo <= hi);
    if let Some(expected) = st.port_range {
        assert_eq!((lo, hi), expected);
    }

    let ifs = c.interfaces().unwrap();
    assert_eq!(
        ifs.keys().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([1, 2, 3])
    );
    for (id, addr) in &ifs {
        assert_eq!(Some(addr), st.routers.get(id), "interface {id}");
        assert!(addr.ip().is_loopback());
    }
}

fn three_interface_disjoint_paths_with_first_hops_on(net: &Testnet) {
    let st = net.state().as_state(SRC).unwrap().clone();
    let c = BlockingDaemonClient::connect(&st.daemon.to_string()).unwrap();

    for refresh in [false, true] {
        let paths = c.paths(ia(DST), refresh).unwrap();
        assert_eq!(paths.len(), 3, "{paths:#?}");
        for p in &paths {
            assert_eq!((p.src_ia, p.dst_ia), (ia(SRC), ia(DST)));
            assert!(!p.is_local());
            assert_eq!(p.first_hop, Some(st.router), "first hop of {p}");
            assert_eq!(p.hop_count(), 2, "{p}");
            assert_eq!(p.interfaces.len(), 4, "{p}");
            assert_eq!(p.interfaces[0].ia, ia(SRC));
            assert_eq!(p.interfaces[3].ia, ia(DST));
            assert!(p.expiry.is_some_and(|e| e > std::time::SystemTime::now()));
            // The raw hop fields agree with the interface metadata.
            let hops = packet::path_interfaces(&p.raw).unwrap();
            assert_eq!(hops.first().map(|h| h.1), Some(p.interfaces[0].id), "{p}");
            assert_eq!(hops.last().map(|h| h.0), Some(p.interfaces[3].id), "{p}");
        }
        for (i, a) in paths.iter().enumerate() {
            for b in &paths[i + 1..] {
                assert!(!a.shares_link_with(b), "{a} and {b} share a link");
                assert_ne!(a.fingerprint(), b.fingerprint());
            }
        }
        // Path k leaves 111 on interface k and enters 112 on interface k.
        let mut ks: Vec<_> = paths
            .iter()
            .map(|p| (p.interfaces[0].id, p.interfaces[3].id))
            .collect();
        ks.sort();
        assert_eq!(ks, vec![(1, 1), (2, 2), (3, 3)]);
    }

    // Fingerprints are stable across requests.
    let a: BTreeSet<_> = c
        .paths(ia(DST), false)
        .unwrap()
        .iter()
        .map(|p| p.fingerprint())
        .collect();
    let b: BTreeSet<_> = c
        .paths(ia(DST), true)
        .unwrap()
        .iter()
        .map(|p| p.fingerprint())
        .collect();
    assert_eq!(a, b);

    // To the local AS: one empty path, sent directly to the host.
    let local = c.paths(ia(SRC), false).unwrap();
    assert_eq!(local.len(), 1);
    assert!(local[0].is_local() && local[0].first_hop.is_none());

    // The other direction works from the other AS's daemon.
    let st2 = net.state().as_state(DST).unwrap().clone();
    let c2 = BlockingDaemonClient::connect(&st2.daemon.to_string()).unwrap();
    assert_eq!(c2.local_ia().unwrap(), ia(DST));
    let back = c2.paths(ia(SRC), false).unwrap();
    assert_eq!(back.len(), 3);
    assert!(back.iter().all(|p| p.first_hop == Some(st2.router)));
}

/// The product runs on tokio-uring; the async client must work on its runtime (a
/// current-thread tokio runtime underneath).
#[test]
fn async_client_on_tokio_uring_runtime() {
    let net = three_paths();
    let daemon = net.state().as_state(SRC).unwrap().daemon.to_string();
    let body = |daemon: String| async move {
        let c = DaemonClient::connect(&daemon).await.unwrap();
        assert_eq!(c.local_ia().await.unwrap(), ia(SRC));
        let paths = c.paths(ia(DST), false).await.unwrap();
        assert_eq!(paths.len(), 3);
        // Concurrent calls share the one connection.
        let c2 = c.clone();
        let (a, b) = tokio::join!(c.port_range(), c2.interfaces());
        assert!(a.is_ok() && b.is_ok());
        // The blocking helper inside a runtime: an error, not a panic or a deadlock.
        assert!(matches!(
            BlockingDaemonClient::connect(&daemon),
            Err(DaemonError::Runtime(_))
        ));
    };
    // The product needs io_uring; a machine without it must fail this test, not pass it on
    // another runtime.
    if let Err(e) = std::panic::catch_unwind(|| tokio_uring::start(async {})) {
        panic!(
            "io_uring is unavailable (kernel too old, or blocked by seccomp/sysctl \
             kernel.io_uring_disabled): the product cannot run here: {e:?}"
        );
    }
    tokio_uring::start(body(daemon));
}

#[test]
fn daemon_gone_is_a_clear_error() {
    let net = three_paths();
    let daemon = net.state().as_state(SRC).unwrap().daemon.to_string();
    let c = BlockingDaemonClient::connect(&daemon).unwrap();
    assert_eq!(c.local_ia().unwrap(), ia(SRC));
    drop(net);
    let e = c.paths(ia(DST), true).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("cannot reach SCION daemon at {daemon}")),
        "{e}"
    );
}

/// scionproto: the leecher's SCION daemon is not running when a download starts (stopped
/// through the testnet; nothing listens on its address): exit 6 at once, naming the daemon's
/// address.
#[test]
fn scionproto_no_daemon_at_start_is_a_clear_error() {
    let net = common::testnet_on("three-paths", Backend::Scionproto);
    let work = tempfile::tempdir().unwrap();
    let (_data, torrent) = common::random_torrent(work.path(), 100_000, 4, None);
    let daemon = net.state().as_state(SRC).unwrap().daemon.to_string();
    net.set_daemon(SRC, false).expect("daemon stops");
    let peer = format!("{DST},[127.0.0.1]:31000");
    let r = common::run(
        &[
            format!("-inPath={}", torrent.display()),
            format!("-outPath={}", work.path().join("out.bin").display()),
            format!("-peer={peer}"),
            "-seed=false".to_string(),
        ],
        &[("SCION_DAEMON_ADDRESS", daemon.clone())],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(r.status.code(), Some(6), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains(&format!("cannot reach SCION daemon at {daemon}")),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}
