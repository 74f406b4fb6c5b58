//! The scionproto backend: scionproto's own router, control service, daemon and dispatcher
//! per AS, checked with scionproto's own `scion` tool (showpaths, ping) and with SCION/UDP
//! packets of our own; links cut with tc go dark the way real links do (BFD, then SCMP
//! external-interface-down from the router), capped links carry their cap.
//!
//! Needs scionproto v0.14.0's binaries (router, control, daemon, dispatcher, scion-pki,
//! scion) in `$SCIONPROTO_BIN` or on `PATH`, and root for tc: without them these tests fail,
//! saying what is missing. Each test starts its own network; they take turns (`TURN`), since
//! about twenty Go processes per network share two cores.

mod common;

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    process::Command,
    sync::Mutex,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::{
    blast::{measure, within},
    path_via, Host,
};
use scion_testnet::{
    daemon, parse_ia, scionproto_binary, Backend, StartOptions, Testnet, TestnetState, Topology,
};
use serde_json::Value;

const A: &str = "1-ff00:0:111";
const B: &str = "1-ff00:0:112";

/// One network at a time.
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn start(topology: &str, state_file: Option<std::path::PathBuf>) -> Testnet {
    let started = Instant::now();
    let net = Testnet::start_with(
        &Topology::builtin(topology).unwrap(),
        StartOptions {
            state_file,
            backend: Backend::Scionproto,
        },
    )
    .unwrap_or_else(|e| panic!("scionproto testnet ({topology}) did not start: {e:#}"));
    println!(
        "{topology} on scionproto ready after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    net
}

/// Runs scionproto's `scion` tool; returns whether it succeeded and its output.
fn scion(args: &[&str]) -> (bool, String) {
    let bin = scionproto_binary("scion").unwrap_or_else(|e| panic!("{e:#}"));
    let out = Command::new(bin).args(args).output().expect("run scion");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn daemon(state: &TestnetState, ia: &str) -> String {
    state.as_state(ia).unwrap().daemon.to_string()
}

/// The AS's own address: its shim dispatcher answers SCMP echo there (port 30041).
fn host_of(state: &TestnetState, ia: &str) -> String {
    format!("{ia},{}", state.as_state(ia).unwrap().daemon.ip())
}

/// `scion showpaths --format json`: the paths' AS sequences and statuses.
fn showpaths(state: &TestnetState, src: &str, dst: &str) -> Vec<(Vec<String>, String)> {
    let d = daemon(state, src);
    let (ok, out) = scion(&["showpaths", dst, "--sciond", &d, "--format", "json"]);
    assert!(ok, "showpaths {src} -> {dst} failed: {out}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["paths"]
        .as_array()
        .unwrap_or_else(|| panic!("no paths in {out}"))
        .iter()
        .map(|p| {
            let mut ases: Vec<String> = p["hops"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["isd_as"].as_str().unwrap().to_string())
                .collect();
            ases.dedup();
            (ases, p["status"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// `scion ping` from `src` to `dst`'s address, `count` echos, over paths through `via` (an
/// ISD-AS) if given.
fn ping(
    state: &TestnetState,
    src: &str,
    dst: &str,
    count: u32,
    via: Option<&str>,
) -> (bool, String) {
    let d = daemon(state, src);
    let to = host_of(state, dst);
    let count = count.to_string();
    let mut args = vec![
        "ping",
        to.as_str(),
        "--sciond",
        d.as_str(),
        "-c",
        count.as_str(),
    ];
    let seq = via.map(|ia| format!("0* {ia} 0*"));
    if let Some(seq) = &seq {
        args.extend(["--sequence", seq.as_str()]);
    }
    scion(&args)
}

/// Polls `check` every 0.5 s until it holds, at most `limit`.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn three_paths_between_the_leaves_and_a_link_going_down_and_up() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("STATE.json");
    let net = start("three-paths", Some(state_file.clone()));

    // The same state file as pocketscion's, with scionproto's dispatched port range.
    let state = TestnetState::read(&state_file).unwrap();
    assert_eq!(&state, net.state());
    for (ia, s) in &state.ases {
        assert_eq!(s.port_range, Some((31000, 32767)), "{ia}");
        assert!(s.routers.values().all(|r| *r == s.router), "{ia}");
    }
    assert_eq!(state.as_state(A).unwrap().routers.len(), 3);

    // scionproto's own tool sees three paths each way, one through each core, all alive.
    for (src, dst) in [(A, B), (B, A)] {
        let paths = showpaths(&state, src, dst);
        assert_eq!(paths.len(), 3, "{src} -> {dst}: {paths:?}");
        let cores: BTreeSet<&str> = paths.iter().map(|(ases, _)| ases[1].as_str()).collect();
        assert_eq!(
            cores,
            BTreeSet::from(["1-ff00:0:110", "1-ff00:0:120", "1-ff00:0:130"]),
            "{paths:?}"
        );
        for (ases, status) in &paths {
            assert_eq!(ases.len(), 3, "{ases:?}");
            assert_eq!(status, "alive", "{src} -> {dst} via {ases:?}");
        }
    }
    // Our daemon client agrees; the daemons' answers, pair by pair.
    assert_eq!(net.paths(A, B).unwrap().len(), 3);
    daemons_answer(&net);
    paths_carry_the_announced_metadata(&net);

    // Ping across, and over each path.
    let (ok, out) = ping(&state, A, B, 3, None);
    assert!(ok && out.contains("3 received"), "{out}");
    for core in ["1-ff00:0:110", "1-ff00:0:120", "1-ff00:0:130"] {
        let (ok, out) = ping(&state, A, B, 1, Some(core));
        assert!(ok && out.contains("1 received"), "via {core}: {out}");
    }

    // Link 111#2 - 120#1 down: BFD times out, then the router of 111 answers packets for
    // interface 2 with SCMP external-interface-down, and the path stops working.
    net.set_link(A, 2, false).unwrap();
    assert!(
        !TestnetState::read(&state_file)
            .unwrap()
            .link(A, 2)
            .unwrap()
            .up
    );
    let mut last = String::new();
    let scmp = eventually(Duration::from_secs(15), || {
        let (ok, out) = ping(&state, A, B, 1, Some("1-ff00:0:120"));
        assert!(
            !(ok && out.contains("1 received")),
            "ping over a cut link: {out}"
        );
        last = out;
        last.contains("external interface is down")
    });
    assert!(scmp, "no SCMP external-interface-down: {last}");
    let (ok, out) = ping(&state, A, B, 2, Some("1-ff00:0:120"));
    assert!(!ok, "ping over the down link succeeded: {out}");
    assert!(
        out.contains("0 received") || out.contains("no path"),
        "ping over the down link: {out}"
    );
    // The other two paths are untouched; showpaths no longer reports the cut one alive.
    for core in ["1-ff00:0:110", "1-ff00:0:130"] {
        let (ok, out) = ping(&state, A, B, 1, Some(core));
        assert!(ok && out.contains("1 received"), "via {core}: {out}");
    }
    let paths = showpaths(&state, A, B);
    assert!(
        paths
            .iter()
            .filter(|(ases, _)| ases[1] == "1-ff00:0:120")
            .all(|(_, status)| status != "alive"),
        "{paths:?}"
    );
    assert!(net.link_drops(A, 2).unwrap() > 0);

    // Up again: the path comes back.
    net.set_link("1-ff00:0:120", 1, true).unwrap();
    let mut last = String::new();
    let back = eventually(Duration::from_secs(30), || {
        let (ok, out) = ping(&state, A, B, 1, Some("1-ff00:0:120"));
        last = out;
        ok && last.contains("1 received")
    });
    assert!(back, "the path via 1-ff00:0:120 did not come back: {last}");
}

/// What every daemon of a three-paths network answers: its AS, MTU 1472, the dispatched
/// port range, every interface at the AS's router, and paths to every AS the topology
/// connects (the cores of three-paths reach no other core), 1472 bytes MTU, expiring in
/// about 6 h, through the router.
fn daemons_answer(net: &Testnet) {
    let state = net.state().clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (name, s) in &state.ases {
            let ia = parse_ia(name).unwrap();
            let info = daemon::as_info(s.daemon, ia).await.unwrap();
            assert_eq!(
                (info.isd_as, info.core, info.mtu),
                (ia.to_u64(), s.core, 1472)
            );
            assert_eq!(
                Some(daemon::port_range(s.daemon).await.unwrap()),
                s.port_range
            );
            let ifs = daemon::interfaces(s.daemon).await.unwrap();
            let ids: BTreeSet<u16> = ifs.interfaces.keys().map(|k| *k as u16).collect();
            assert_eq!(ids, s.routers.keys().copied().collect(), "{name}");
            for intf in ifs.interfaces.values() {
                let addr: SocketAddr = intf.address.as_option().unwrap().address.parse().unwrap();
                assert_eq!(addr, s.router, "{name}");
            }
            for (other, o) in &state.ases {
                if other == name {
                    continue;
                }
                let paths = daemon::paths(s.daemon, ia, parse_ia(other).unwrap())
                    .await
                    .unwrap();
                assert_eq!(!paths.is_empty(), !(s.core && o.core), "{name} -> {other}");
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                for p in paths {
                    assert_eq!(p.next_hop(), Some(s.router));
                    assert_eq!(p.metadata().unwrap().mtu, 1472);
                    let left = u64::from(p.expiration().unwrap()).saturating_sub(now);
                    assert!((5 * 3600..=6 * 3600).contains(&left), "expires in {left} s");
                }
            }
        }
    });
}

/// The metadata three-paths.toml announces (staticInfoConfig.json of each control service)
/// reaches the daemons' paths from A to B, link by link and AS by AS, as configured: per core
/// (its path's links' latency, bandwidth and type; its internal latency, bandwidth and hops;
/// its note and place).
fn paths_carry_the_announced_metadata(net: &Testnet) {
    use scion_protobuf::proto::daemon::v1::LinkType;
    let state = net.state().clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = rt
        .block_on(daemon::paths_raw(
            state.as_state(A).unwrap().daemon,
            parse_ia(A).unwrap(),
            parse_ia(B).unwrap(),
        ))
        .unwrap();
    // core: (link latencies, internal latency) in µs, link and internal kbit/s, link type,
    // internal hops, place.
    let announced = [
        (
            "1-ff00:0:110",
            [2000, 500, 3000],
            [1_000_000, 10_000_000],
            LinkType::Direct,
            1,
            "Zürich",
        ),
        (
            "1-ff00:0:120",
            [4000, 1000, 4000],
            [400_000, 4_000_000],
            LinkType::MultiHop,
            2,
            "Lausanne",
        ),
        (
            "1-ff00:0:130",
            [10_000, 1500, 12_000],
            [100_000, 1_000_000],
            LinkType::OpenNet,
            3,
            "Genève",
        ),
    ];
    assert_eq!(answer.paths.len(), 3);
    for p in &answer.paths {
        let core = sciparse::identifier::isd_asn::IsdAsn(p.interfaces[1].isd_as).to_string();
        let (_, lat, bw, kind, hops, place) = announced
            .iter()
            .find(|a| a.0 == core)
            .unwrap_or_else(|| panic!("path via {core}"));
        let micros: Vec<i64> = p
            .latency
            .iter()
            .map(|d| d.seconds * 1_000_000 + i64::from(d.nanos) / 1000)
            .collect();
        assert_eq!(micros, lat.to_vec(), "latency via {core}");
        assert_eq!(
            p.bandwidth,
            vec![bw[0], bw[1], bw[0]],
            "bandwidth via {core}"
        );
        assert_eq!(
            p.link_type.iter().map(|t| t.to_i32()).collect::<Vec<_>>(),
            vec![*kind as i32; 2],
            "link types via {core}"
        );
        assert_eq!(p.internal_hops, vec![*hops], "internal hops via {core}");
        let places: Vec<&str> = p.geo.iter().map(|g| g.address.as_str()).collect();
        assert_eq!(
            places,
            vec!["Bern", place, place, "Basel"],
            "geo via {core}"
        );
        let n = &core[core.len() - 3..];
        let notes = vec![
            "leaf 111".to_string(),
            format!("core {n}, path {}", &n[1..2]),
            "leaf 112".into(),
        ];
        assert_eq!(p.notes, notes, "notes via {core}");
    }
}

#[test]
fn capped_links_carry_their_cap() {
    let _turn = turn();
    let net = start("three-paths-capped", None);
    let range = net.state().as_state(A).unwrap().port_range.unwrap();
    let a = Host::in_port_range(A, range);
    let b = Host::in_port_range(B, range);
    let paths = net.paths(A, B).unwrap();
    assert_eq!(paths.len(), 3);
    let (sent, rate) = measure(&a, &b, path_via(&paths, 1), 100.0, Duration::from_secs(2));
    println!("capped 50 Mbit/s, offered 100: {rate:?} of {sent} sent");
    // tc counts the underlay's IP/UDP and loopback headers too (~3 % at 1.3 kB packets).
    assert!(within(rate.mbit, 50.0, 0.25), "{rate:?} of {sent} sent");
    assert!(rate.packets < sent, "nothing dropped: {rate:?} of {sent}");
    assert!(net.link_drops(A, 1).unwrap() > 0);
}

#[test]
fn two_as_starts_and_a_missing_binary_is_an_error() {
    let _turn = turn();
    let net = start("two-as", None);
    let state = net.state().clone();
    let paths = showpaths(&state, B, "1-ff00:0:110");
    assert_eq!(paths.len(), 1, "{paths:?}");
    let (ok, out) = ping(&state, B, "1-ff00:0:110", 1, None);
    assert!(ok && out.contains("1 received"), "{out}");
    drop(net);

    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scion-testnet"))
        .args(["--backend", "scionproto", "--topology", "two-as", "--state"])
        .arg(empty.path().join("STATE.json"))
        .env("SCIONPROTO_BIN", empty.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`router`") && err.contains("SCIONPROTO_BIN"),
        "{err}"
    );
}

/// Figures for the README: what one uncapped path carries through scionproto's routers, and
/// three at once. `cargo test -p scion-testnet --test scionproto -- --ignored --nocapture`
#[test]
#[ignore]
fn forwarding_figures() {
    let _turn = turn();
    let net = start("three-paths", None);
    let range = net.state().as_state(A).unwrap().port_range.unwrap();
    let paths = net.paths(A, B).unwrap();
    let a = Host::in_port_range(A, range);
    let b = Host::in_port_range(B, range);
    for offered in [100.0, 200.0, 400.0, 800.0] {
        let (sent, rate) = measure(&a, &b, path_via(&paths, 1), offered, Duration::from_secs(2));
        println!("one path, offered {offered}: {rate:?} of {sent} sent");
    }
    let pairs: Vec<(Host, Host)> = (0..3)
        .map(|_| (Host::in_port_range(A, range), Host::in_port_range(B, range)))
        .collect();
    for offered in [100.0, 200.0] {
        let results = std::thread::scope(|s| {
            let runs: Vec<_> = pairs
                .iter()
                .zip(1..=3)
                .map(|((a, b), id)| {
                    let path = path_via(&paths, id);
                    s.spawn(move || measure(a, b, path, offered, Duration::from_secs(2)))
                })
                .collect();
            runs.into_iter()
                .map(|r| r.join().unwrap())
                .collect::<Vec<_>>()
        });
        println!("three paths at once, each offered {offered}: {results:?}");
    }
}
