//! `bwtest` with scion-apps' bwtester protocol, end to end over real local SCION networks.
//!
//! Backends: the `pocketscion_*` tests and the hostile-peer tests run on pocketscion (in
//! process); the `scionproto_*` tests run on scionproto's own routers, control services,
//! daemons and shim dispatchers (binaries in `$SCIONPROTO_BIN`, see testnet/README.md), where
//! end hosts must use the dispatched ports 31000-32767.
//!
//! `scionproto_interop_with_scion_apps` runs scion-apps' own `bwtestclient` and `bwtestserver`
//! (release v0.6.0, which speaks the same protocol as their main branch and runs on
//! scionproto v0.14's dispatcher-less end-host stack: its snet already binds plain UDP
//! sockets in the port range the daemon names). They are built from the module at that tag,
//! as scripts/install-deps.sh does:
//!
//! ```sh
//! go mod download github.com/netsec-ethz/scion-apps@v0.6.0
//! cd "$(go env GOMODCACHE)/github.com/netsec-ethz/scion-apps@v0.6.0" &&
//!   GOBIN=$HOME/.cache/bittorrent-over-scion/scion-apps-v0.6.0/bin \
//!   go install ./bwtester/bwtestclient ./bwtester/bwtestserver
//! ```
//!
//! and found in `$SCION_APPS_BIN`, in that directory, or on `PATH` (as `bwtestclient` or
//! `scion-bwtestclient`); a missing binary fails the test with that hint.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use btscion::bwtest::bwtester::{
    Parameters, Request, ResultReply, TestResult, REQUEST_NEW, REQUEST_RESULT,
};
use btscion::bwtest::bwtester_client::{self, ClientConfig, ClientError, Retries};
use btscion::bwtest::scion_udp::{ask_daemon, Route, Socket};
use btscion::scion::{ScionAddr, ScionPath};
use common::{bin, daemon, run, testnet_on, Proc, LEAF_A, LEAF_B};
use scion_testnet::{Backend, Testnet};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

// ---------------------------------------------------------------------------------------------
// The binaries

/// Starts `bwtest --server --protocol bwtester` in `ia`; returns it and its address.
fn our_server(tn: &Testnet, ia: &str, extra: &[&str]) -> (Proc, ScionAddr, mpsc::Receiver<String>) {
    let log = std::env::temp_dir().join(format!(
        "bwtester-server-{}-{}.log",
        std::process::id(),
        rand::random::<u32>()
    ));
    let mut child = Command::new(bin())
        .args(["bwtest", "--server", "--protocol", "bwtester"])
        .args(extra)
        .env("SCION_DAEMON_ADDRESS", daemon(tn, ia))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let lines = stdout_lines(child.stdout.take().unwrap());
    let addr = wait_for(
        &lines,
        "bwtester server listening on",
        Duration::from_secs(30),
    )
    .unwrap_or_else(|| {
        panic!(
            "the server did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    let addr = addr
        .split_whitespace()
        .nth(4)
        .unwrap()
        .parse::<ScionAddr>()
        .unwrap();
    (
        Proc {
            child,
            stderr_log: log,
        },
        addr,
        lines,
    )
}

fn stdout_lines(out: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line containing `what`, skipping others.
fn wait_for(lines: &mpsc::Receiver<String>, what: &str, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match lines.recv_timeout(left) {
            Ok(l) if l.contains(what) => return Some(l),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Everything the server printed so far.
fn printed(lines: &mpsc::Receiver<String>) -> Vec<String> {
    std::iter::from_fn(|| lines.recv_timeout(Duration::from_millis(100)).ok()).collect()
}

/// Our client in `ia` against `server`.
fn our_client(tn: &Testnet, ia: &str, server: &ScionAddr, args: &[&str]) -> common::Outcome {
    let mut a = vec!["bwtest".to_string(), "-s".into(), server.to_string()];
    a.extend(args.iter().map(|s| s.to_string()));
    run(
        &a,
        &[("SCION_DAEMON_ADDRESS", daemon(tn, ia))],
        Duration::from_secs(60),
    )
}

// ---------------------------------------------------------------------------------------------
// bwtestclient's report

#[derive(Debug, Clone, PartialEq)]
struct Direction {
    attempted_bps: i64,
    achieved_bps: i64,
    loss_percent: f64,
    /// Interarrival min/avg/max/mdev, ms.
    interarrival: [f64; 4],
}

/// The "S->C results" and "C->S results" sections of bwtestclient's output (ours or theirs),
/// checking that each is exactly its four lines.
fn report(stdout: &str) -> (Direction, Direction) {
    let lines: Vec<&str> = stdout.lines().collect();
    let section = |title: &str| -> Direction {
        let at = lines
            .iter()
            .position(|l| *l == title)
            .unwrap_or_else(|| panic!("no {title:?} in:\n{stdout}"));
        assert_eq!(lines[at - 1], "", "a blank line before {title}:\n{stdout}");
        let field = |i: usize, prefix: &str| -> &str {
            lines
                .get(at + i)
                .and_then(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("line {i} of {title} is not {prefix:?}:\n{stdout}"))
        };
        let bps = |s: &str| -> i64 { s.split(" bps / ").next().unwrap().parse().unwrap() };
        let attempted_bps = bps(field(1, "Attempted bandwidth: "));
        let achieved_bps = bps(field(2, "Achieved bandwidth: "));
        let loss_percent = field(3, "Loss rate: ")
            .strip_suffix('%')
            .unwrap()
            .parse()
            .unwrap();
        let ia: Vec<f64> = field(4, "Interarrival time min/avg/max/mdev = ")
            .strip_suffix(" ms")
            .unwrap()
            .split('/')
            .map(|v| v.parse().unwrap())
            .collect();
        Direction {
            attempted_bps,
            achieved_bps,
            loss_percent,
            interarrival: [ia[0], ia[1], ia[2], ia[3]],
        }
    };
    (section("S->C results"), section("C->S results"))
}

/// The lines before the results: notices, then the parameters as bwtestclient shows them.
fn assert_parameters(stdout: &str, cs: &str, sc: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "Test parameters:")
        .unwrap_or_else(|| panic!("no parameters in:\n{stdout}"));
    assert_eq!(lines[at - 1], "");
    assert_eq!(lines[at + 1], format!("client->server: {cs}"), "{stdout}");
    assert_eq!(lines[at + 2], format!("server->client: {sc}"), "{stdout}");
}

/// Achieved close to attempted, no loss to speak of, interarrival times that fit the rate.
fn assert_good(d: &Direction, bps: i64, packet_gap_ms: f64, what: &str) {
    assert_eq!(d.attempted_bps, bps, "{what}: {d:?}");
    assert!(
        d.achieved_bps as f64 >= 0.97 * bps as f64 && d.achieved_bps <= bps,
        "{what}: achieved {} of {bps} bit/s",
        d.achieved_bps
    );
    assert!(d.loss_percent <= 3.0, "{what}: loss {}%", d.loss_percent);
    let [min, avg, max, _] = d.interarrival;
    assert!(
        min >= 0.0 && min <= avg && avg <= max,
        "{what}: interarrival {:?}",
        d.interarrival
    );
    assert!(
        (avg - packet_gap_ms).abs() <= 0.25 * packet_gap_ms,
        "{what}: average interarrival {avg} ms, paced at {packet_gap_ms} ms"
    );
}

/// A test across two ASes both ways round (client in `a`, server in `b`, then the reverse):
/// 8 Mbit/s of 1000-byte packets client->server, 12 Mbit/s of 1200-byte server->client.
fn across(tn: &Testnet, a: &str, b: &str, server_args: &[&str]) {
    for (client_ia, server_ia) in [(a, b), (b, a)] {
        let (_server, addr, lines) = our_server(tn, server_ia, server_args);
        let o = our_client(
            tn,
            client_ia,
            &addr,
            &["-cs", "3,1000,?,8Mbps", "-sc", "3,1200,?,12Mbps"],
        );
        assert!(
            o.status.success(),
            "{client_ia} -> {server_ia}: {}\n{}",
            o.stdout,
            o.stderr
        );
        assert_parameters(
            &o.stdout,
            "3 seconds, 1000 bytes, 3000 packets",
            "3 seconds, 1200 bytes, 3750 packets",
        );
        let (s2c, c2s) = report(&o.stdout);
        assert_good(&s2c, 12_000_000, 0.8, "server->client");
        assert_good(&c2s, 8_000_000, 1.0, "client->server");
        // It crossed ASes on a daemon path, and the server saw the test through.
        assert!(o.stderr.contains(" over 1-ff00:0:"), "{}", o.stderr);
        let log = printed(&lines).join("\n");
        assert!(log.contains("Received request: N "), "{log}");
        assert!(log.contains("Test finished for "), "{log}");
    }
}

#[test]
fn pocketscion_client_and_server_across_ases_and_in_one() {
    let tn = testnet_on("three-paths", Backend::Pocketscion);
    // Free ports (pocketscion delivers to any port; 40002 may be taken by a parallel test).
    across(&tn, LEAF_A, LEAF_B, &["--listen", ":0"]);
    // Within one AS (the empty path), the `?` forms and the default parameters.
    let (_server, addr, _lines) = our_server(&tn, LEAF_A, &["--listen", ":0"]);
    let o = our_client(&tn, LEAF_A, &addr, &["-sc", "2Mbps"]);
    assert!(o.status.success(), "{}\n{}", o.stdout, o.stderr);
    assert!(o
        .stdout
        .starts_with("Only sc parameter set, using same values for cs\n"));
    assert_parameters(
        &o.stdout,
        "3 seconds, 1000 bytes, 750 packets",
        "3 seconds, 1000 bytes, 750 packets",
    );
    let (s2c, c2s) = report(&o.stdout);
    assert_good(&s2c, 2_000_000, 4.0, "server->client");
    assert_good(&c2s, 2_000_000, 4.0, "client->server");
    let o = our_client(&tn, LEAF_A, &addr, &[]);
    assert!(o.status.success(), "{}\n{}", o.stdout, o.stderr);
    assert_parameters(
        &o.stdout,
        "3 seconds, 1000 bytes, 30 packets",
        "3 seconds, 1000 bytes, 30 packets",
    );
    let (s2c, _) = report(&o.stdout);
    assert_good(&s2c, 80_000, 3000.0 / 29.0, "default parameters");
    // A parameter string bwtestclient refuses: usage error, nothing sent.
    let o = our_client(&tn, LEAF_A, &addr, &["-cs", "3,1000,30,1Gbps"]);
    assert_eq!(o.status.code(), Some(2), "{}", o.stderr);
    assert!(o
        .stderr
        .contains("computed target bandwidth does not match"));
}

/// The transit ASes named in the client's "over PATH" line.
fn transits_used(stderr: &str) -> Vec<&'static str> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("bwtester: control"))
        .unwrap_or_else(|| panic!("no path line: {stderr}"));
    ["1-ff00:0:110", "1-ff00:0:120", "1-ff00:0:130"]
        .into_iter()
        .filter(|t| line.contains(t))
        .collect()
}

/// `bwtest --sequence` takes the one path the sequence allows, whichever it is (each of two
/// runs a different one), and a sequence that allows none is an error naming it.
#[test]
fn pocketscion_sequence_picks_the_only_path_it_allows() {
    let tn = testnet_on("three-paths", Backend::Pocketscion);
    let (_server, addr, _lines) = our_server(&tn, LEAF_B, &["--listen", ":0"]);
    for transit in ["1-ff00:0:130", "1-ff00:0:120"] {
        let seq = format!("0 {transit} 0");
        let o = our_client(&tn, LEAF_A, &addr, &["--sequence", &seq, "-cs", "1Mbps"]);
        assert!(o.status.success(), "{seq}: {}\n{}", o.stdout, o.stderr);
        assert_eq!(transits_used(&o.stderr), [transit], "{}", o.stderr);
        let (s2c, c2s) = report(&o.stdout);
        assert_good(&s2c, 1_000_000, 8.0, "server->client");
        assert_good(&c2s, 1_000_000, 8.0, "client->server");
    }
    let o = our_client(&tn, LEAF_A, &addr, &["--sequence", "0 1-ff00:0:999 0"]);
    assert!(!o.status.success(), "{}", o.stdout);
    assert!(o.stderr.contains("1-ff00:0:999"), "{}", o.stderr);
}

#[test]
fn scionproto_client_and_server_across_ases() {
    let tn = testnet_on("three-paths", Backend::Scionproto);
    // The default port, 40002, is outside the dispatched range: the server takes a free pair
    // inside it and says so.
    across(&tn, LEAF_A, LEAF_B, &[]);
}

// ---------------------------------------------------------------------------------------------
// scion-apps' own bwtester

fn scion_apps_bin(name: &str) -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::var_os("SCION_APPS_BIN")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    dirs.push(PathBuf::from(home).join(".cache/bittorrent-over-scion/scion-apps-v0.6.0/bin"));
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    for d in &dirs {
        for n in [name.to_string(), format!("scion-{name}")] {
            let p = d.join(&n);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "scion-apps' {name} not found in $SCION_APPS_BIN, \
         ~/.cache/bittorrent-over-scion/scion-apps-v0.6.0/bin or PATH; install it with \
         scripts/install-deps.sh (see the top of tests/bwtester.rs)"
    );
}

/// A free pair of ports inside scionproto's dispatched range (a moment ago).
fn free_pair() -> u16 {
    for _ in 0..200 {
        let p = 31100 + (rand::random::<u16>() % 1600);
        let a = std::net::UdpSocket::bind((LO, p));
        let b = std::net::UdpSocket::bind((LO, p + 1));
        if a.is_ok() && b.is_ok() {
            return p;
        }
    }
    panic!("no free port pair in 31100-32701");
}

#[test]
fn scionproto_interop_with_scion_apps() {
    let their_client = scion_apps_bin("bwtestclient");
    let their_server = scion_apps_bin("bwtestserver");
    let tn = testnet_on("two-as", Backend::Scionproto);
    let (core, leaf) = ("1-ff00:0:110", "1-ff00:0:112");

    // Their client (in the leaf AS) against our server (in the core AS).
    let (_server, addr, lines) = our_server(&tn, core, &[]);
    let o = Command::new(&their_client)
        .args([
            "-s",
            &addr.to_string(),
            "-cs",
            "3,1000,?,8Mbps",
            "-sc",
            "3,1200,?,12Mbps",
        ])
        .env("SCION_DAEMON_ADDRESS", daemon(&tn, leaf))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "their client: {stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (s2c, c2s) = report(&stdout);
    assert_good(&s2c, 12_000_000, 0.8, "our server -> their client");
    assert_good(&c2s, 8_000_000, 1.0, "their client -> our server");
    let log = printed(&lines).join("\n");
    assert!(log.contains("Test finished for 1-ff00:0:112,"), "{log}");

    // Our client (in the leaf AS) against their server (in the core AS).
    let port = free_pair();
    let log = std::env::temp_dir().join(format!("bwtestserver-{}.log", std::process::id()));
    let server = Command::new(&their_server)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("SCION_DAEMON_ADDRESS", daemon(&tn, core))
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Proc {
        child: server,
        stderr_log: log.clone(),
    };
    std::thread::sleep(Duration::from_secs(1));
    let their_addr: ScionAddr = format!("{core},[127.0.0.1]:{port}").parse().unwrap();
    let o = our_client(
        &tn,
        leaf,
        &their_addr,
        &["-cs", "3,1000,?,8Mbps", "-sc", "3,1200,?,12Mbps"],
    );
    assert!(
        o.status.success(),
        "our client: {}\n{}\ntheir server: {}",
        o.stdout,
        o.stderr,
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let (s2c, c2s) = report(&o.stdout);
    assert_good(&s2c, 12_000_000, 0.8, "their server -> our client");
    assert_good(&c2s, 8_000_000, 1.0, "our client -> their server");
    let their_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        their_log.contains("Received request: R 1-ff00:0:112,"),
        "{their_log}"
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile servers

/// A fake bwtester server in `ia`: `answer` decides the reply to each request (`None`: none).
struct FakeServer {
    addr: ScionAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u32>>,
}

impl FakeServer {
    fn start(
        tn: &Testnet,
        ia: &str,
        answer: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static,
    ) -> FakeServer {
        let d = ask_daemon(&daemon(tn, ia), None).unwrap();
        let mut s = Socket::bind_first_free(d.ia, LO, &d.port_candidates, &[]).unwrap();
        let addr = s.local();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut requests = 0;
            while !stop2.load(Ordering::Relaxed) {
                let Some(d) = s.recv(Instant::now() + Duration::from_millis(50)).unwrap() else {
                    continue;
                };
                requests += 1;
                let (src, path, from) = (d.src, d.path.to_vec(), d.from);
                if let Some(reply) = answer(d.payload) {
                    let route = Route::reply(&addr, src, &path, from).unwrap();
                    s.send(&route, &reply).unwrap();
                }
            }
            requests
        });
        FakeServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops it; the number of datagrams it got.
    fn requests(mut self) -> u32 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs the library client (so retry bounds can be short) in `ia` against `server`.
fn library_client(
    tn: &Testnet,
    ia: &str,
    server: ScionAddr,
    cs: &str,
    retries: Retries,
) -> (
    Result<bwtester_client::ClientOutcome, ClientError>,
    Vec<String>,
    Duration,
) {
    let (c, s) = bwtester_client::plan(Some(cs), None, &mut |_| {}).unwrap();
    let cfg = ClientConfig {
        daemon: daemon(tn, ia),
        server,
        local_host: LO,
        local_port: 0,
        client_to_server: c,
        server_to_client: s,
        retries,
        policy: Default::default(),
        preference: Default::default(),
        choose: None,
    };
    let mut notices = Vec::new();
    let start = Instant::now();
    let r = bwtester_client::run(&cfg, &mut |l| notices.push(l.to_string()));
    (r, notices, start.elapsed())
}

#[test]
fn silent_server_is_a_clear_error_within_the_retry_budget() {
    let tn = testnet_on("three-paths", Backend::Pocketscion);
    let silent = FakeServer::start(&tn, LEAF_B, |_| None);
    let start = Instant::now();
    let o = our_client(&tn, LEAF_A, &silent.addr, &["-cs", "1,100,10,?"]);
    let took = start.elapsed();
    assert_eq!(o.status.code(), Some(4), "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains(&format!(
            "no usable reply from the bwtester server at {} to the 'N' request after 5 tries \
             (5 without a reply within 1s, 0 malformed)",
            silent.addr
        )),
        "{}",
        o.stderr
    );
    // Five tries of one second each, and not much more.
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(9),
        "{took:?}"
    );
    assert_eq!(silent.requests(), 5);

    // Nothing listening at all: the same, also within the budget.
    let nobody: ScionAddr = format!("{LEAF_B},[127.0.0.1]:9").parse().unwrap();
    let start = Instant::now();
    let o = our_client(&tn, LEAF_A, &nobody, &["-cs", "1,100,10,?"]);
    assert_eq!(o.status.code(), Some(4), "{}", o.stderr);
    assert!(o.stderr.contains("after 5 tries"), "{}", o.stderr);
    assert!(start.elapsed() < Duration::from_secs(9));
}

#[test]
fn garbage_and_lying_servers_are_clear_errors() {
    let tn = testnet_on("three-paths", Backend::Pocketscion);

    // Garbage for every request: "Incorrect server response" five times, then an error.
    let garbage = FakeServer::start(&tn, LEAF_B, |_| Some(b"N\x00junk".to_vec()));
    let o = our_client(&tn, LEAF_A, &garbage.addr, &["-cs", "1,100,10,?"]);
    assert_eq!(o.status.code(), Some(4), "{}\n{}", o.stdout, o.stderr);
    // Five tries, each malformed (a reply may also be late on a loaded machine: a timeout).
    let notices = o
        .stdout
        .matches("Incorrect server response, trying again")
        .count();
    let counts = o
        .stderr
        .split("after 5 tries (")
        .nth(1)
        .unwrap_or_else(|| panic!("{}\n{}", o.stdout, o.stderr));
    let (timeouts, malformed) = {
        let n: Vec<usize> = counts
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .take(3)
            .collect();
        (n[0], n[2])
    };
    assert_eq!(
        (timeouts + malformed, malformed),
        (5, notices),
        "{}",
        o.stderr
    );
    assert!(malformed >= 3, "{}", o.stderr);
    assert!(
        o.stderr.contains("malformed; last: reply of 6 bytes)"),
        "{}",
        o.stderr
    );
    drop(garbage);

    // A server that accepts, sends nothing, and then reports more packets than we sent.
    let liar = FakeServer::start(&tn, LEAF_B, |req| match req.first() {
        Some(&REQUEST_NEW) => Some(vec![REQUEST_NEW, 0]),
        Some(&REQUEST_RESULT) => Some(
            ResultReply::Ready(TestResult {
                num_packets_received: 1_000_000,
                correctly_received: 1_000_000,
                prg_key: req[1..].to_vec(),
                ..Default::default()
            })
            .encode(),
        ),
        _ => None,
    });
    let o = our_client(&tn, LEAF_A, &liar.addr, &["-cs", "1,100,10,?"]);
    assert_eq!(o.status.code(), Some(4), "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stderr
            .contains("reports an impossible result: 1000000 packets correct but we sent 10"),
        "{}",
        o.stderr
    );
    drop(liar);

    // A result for another key: bwtestclient's complaint, five times, then an error.
    let wrong_key = FakeServer::start(&tn, LEAF_B, |req| match req.first() {
        Some(&REQUEST_NEW) => Some(vec![REQUEST_NEW, 0]),
        Some(&REQUEST_RESULT) => Some(
            ResultReply::Ready(TestResult {
                prg_key: vec![7; 16],
                ..Default::default()
            })
            .encode(),
        ),
        _ => None,
    });
    let o = our_client(&tn, LEAF_A, &wrong_key.addr, &["-cs", "1,100,10,?"]);
    assert_eq!(o.status.code(), Some(4), "{}", o.stderr);
    assert_eq!(
        o.stdout
            .matches("PRG Key returned from server incorrect, this should never happen")
            .count(),
        5
    );
    assert!(
        o.stderr.contains("to the 'R' request after 5 tries"),
        "{}",
        o.stderr
    );
    drop(wrong_key);

    // "Not found" is final.
    let forgetful = FakeServer::start(&tn, LEAF_B, |req| match req.first() {
        Some(&REQUEST_NEW) => Some(vec![REQUEST_NEW, 0]),
        Some(&REQUEST_RESULT) => Some(ResultReply::NotFound.encode()),
        _ => None,
    });
    let o = our_client(&tn, LEAF_A, &forgetful.addr, &["-cs", "1,100,10,?"]);
    assert_eq!(o.status.code(), Some(4), "{}", o.stderr);
    assert!(
        o.stderr.contains("results could not be found"),
        "{}",
        o.stderr
    );
    drop(forgetful);

    // Endless "busy" and endless "not ready" end at our bounds (short ones here).
    let short = Retries {
        max_busy_wait: Duration::from_secs(2),
        max_result_wait: Some(Duration::from_secs(2)),
        ..Retries::default()
    };
    let busy = FakeServer::start(&tn, LEAF_B, |_| Some(vec![REQUEST_NEW, 1]));
    let (r, _, took) = library_client(&tn, LEAF_A, busy.addr, "1,100,10,?", short.clone());
    assert!(
        matches!(r, Err(ClientError::Waited { what, .. }) if what.contains("another client")),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(busy.requests() >= 2);
    let stalling = FakeServer::start(&tn, LEAF_B, |req| match req.first() {
        Some(&REQUEST_NEW) => Some(vec![REQUEST_NEW, 0]),
        _ => Some(ResultReply::RetryIn(1).encode()),
    });
    let (r, notices, took) = library_client(&tn, LEAF_A, stalling.addr, "1,100,10,?", short);
    assert!(
        matches!(
            r,
            Err(ClientError::Waited {
                what: "the result",
                ..
            })
        ),
        "{r:?}"
    );
    assert!(notices
        .iter()
        .any(|n| n == "We need to sleep for 1 seconds before we can get the results"));
    assert!(took < Duration::from_secs(8), "{took:?}");
}

// ---------------------------------------------------------------------------------------------
// Hostile clients

/// A raw client socket in `ia` and its route to `server`'s control port.
fn raw_client(tn: &Testnet, ia: &str, server: ScionAddr) -> (Socket, Route, ScionPath) {
    let d = ask_daemon(&daemon(tn, ia), Some(server.ia)).unwrap();
    let s = Socket::bind_first_free(d.ia, LO, &d.port_candidates, &[]).unwrap();
    let path = d.paths[0].clone();
    let route = Route::over(&s.local(), server, &path).unwrap();
    (s, route, path)
}

/// Sends `request` and returns the reply within `wait`, if any.
fn ask(s: &mut Socket, route: &Route, request: &[u8], wait: Duration) -> Option<Vec<u8>> {
    s.send(route, request).unwrap();
    let deadline = Instant::now() + wait;
    while let Some(d) = s.recv(deadline).unwrap() {
        if d.src == route.dst {
            return Some(d.payload.to_vec());
        }
    }
    None
}

fn params(duration_ns: i64, size: i64, packets: i64, port: u16) -> Parameters {
    Parameters {
        duration_ns,
        packet_size: size,
        num_packets: packets,
        prg_key: vec![9; 16],
        port,
    }
}

fn new_request(cs: Parameters, sc: Parameters) -> Vec<u8> {
    Request::New {
        client_to_server: cs,
        server_to_client: sc,
    }
    .encode()
}

#[test]
fn absurd_and_garbage_clients_are_refused() {
    let tn = testnet_on("three-paths", Backend::Pocketscion);
    let (_server, addr, lines) = our_server(
        &tn,
        LEAF_B,
        &["--max-bandwidth", "100Mbps", "--listen", ":0"],
    );
    let (mut s, route, _) = raw_client(&tn, LEAF_A, addr);
    let dp = addr.port + 1;
    let me = s.local().port;
    let ok = params(1_000_000_000, 100, 10, me);
    let wait = Duration::from_millis(700);

    let mut truncated = new_request(ok.clone(), params(1_000_000_000, 100, 10, dp));
    truncated.truncate(truncated.len() - 3);
    let mut short_key = params(1_000_000_000, 100, 10, dp);
    short_key.prg_key = vec![1, 2, 3];
    let refused: Vec<(&str, Vec<u8>, &str)> = vec![
        ("garbage", b"hello".to_vec(), "neither 'N' nor 'R'"),
        ("empty", Vec::new(), "empty datagram"),
        ("truncated", truncated, "server->client parameters"),
        (
            "short key",
            new_request(ok.clone(), short_key),
            "PRG key of 3 bytes",
        ),
        (
            "billions of packets",
            new_request(
                ok.clone(),
                params(300_000_000_000, 1000, i64::MAX / 8000, dp),
            ),
            "packets (at least 1, at most 10000000)",
        ),
        (
            "an instant flood",
            new_request(ok.clone(), params(1, 1000, 1000, dp)),
            "more than this server's limit of 100000000 bit/s",
        ),
        (
            "negative duration",
            new_request(params(-1, 100, 10, me), params(1_000_000_000, 100, 10, dp)),
            "duration -1 ns is not positive",
        ),
        (
            "another data port",
            new_request(ok.clone(), params(1_000_000_000, 100, 10, dp + 7)),
            "this server's data port is",
        ),
        (
            "jumbo packets",
            new_request(ok.clone(), params(1_000_000_000, 66_000, 10, dp)),
            "do not fit a UDP datagram",
        ),
        (
            "200 Mbit/s",
            new_request(ok.clone(), params(1_000_000_000, 1000, 25_000, dp)),
            "200000000 bit/s asked",
        ),
    ];
    for (what, request, why) in &refused {
        assert_eq!(
            ask(&mut s, &route, request, wait),
            None,
            "{what} was answered"
        );
        let line = wait_for(&lines, why, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{what}: the server did not say {why:?}"));
        assert!(
            line.starts_with("Refused test from") || line.starts_with("Ignored from"),
            "{what}: {line}"
        );
    }
    // A result nobody has: "not found".
    let mut r = vec![REQUEST_RESULT];
    r.extend_from_slice(&[5; 16]);
    assert_eq!(
        ask(&mut s, &route, &r, wait),
        Some(ResultReply::NotFound.encode())
    );

    // A client that starts a test and walks away: others are asked to wait meanwhile, and
    // the server is free again when the test is over.
    let started = new_request(
        params(2_000_000_000, 100, 20, me),
        params(2_000_000_000, 100, 20, dp),
    );
    assert_eq!(
        ask(&mut s, &route, &started, wait),
        Some(vec![REQUEST_NEW, 0])
    );
    // Asking again (our reply was lost, say) is answered "started" again.
    assert_eq!(
        ask(&mut s, &route, &started, wait),
        Some(vec![REQUEST_NEW, 0])
    );
    let (mut other, other_route, _) = raw_client(&tn, LEAF_A, addr);
    let other_port = other.local().port;
    let busy = ask(
        &mut other,
        &other_route,
        &new_request(
            params(1_000_000_000, 100, 10, other_port),
            params(1_000_000_000, 100, 10, dp),
        ),
        wait,
    )
    .expect("a busy reply");
    assert!(
        busy[0] == REQUEST_NEW && (1..=4).contains(&busy[1]),
        "{busy:?}"
    );
    assert!(wait_for(&lines, "Test finished for", Duration::from_secs(6)).is_some());
    // The walked-away client's result: nothing of its 20 packets arrived.
    let mut r = vec![REQUEST_RESULT];
    r.extend_from_slice(&[9; 16]);
    match ask(&mut s, &route, &r, wait).map(|b| ResultReply::decode(&b, &[9; 16])) {
        Some(Ok(ResultReply::Ready(res))) => assert_eq!(res.correctly_received, 0),
        other => panic!("{other:?}"),
    }

    // After all that, a real client gets a real test.
    let o = our_client(&tn, LEAF_A, &addr, &["-cs", "2,1000,?,4Mbps"]);
    assert!(o.status.success(), "{}\n{}", o.stdout, o.stderr);
    let (s2c, c2s) = report(&o.stdout);
    assert_good(&s2c, 4_000_000, 2.0, "after the hostile clients");
    assert_good(&c2s, 4_000_000, 2.0, "after the hostile clients");
}
