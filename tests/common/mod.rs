//! Shared helpers for the integration tests: the real local SCION network (pocketscion) and
//! the real `bittorrent-over-scion` binary.

#![allow(dead_code)]

pub mod clients;
pub mod daemons;
pub mod web;
pub mod wire;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use scion_testnet::{Backend, StartOptions, Testnet, Topology};

pub const LEAF_A: &str = "1-ff00:0:111";
pub const LEAF_B: &str = "1-ff00:0:112";

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bittorrent-over-scion"))
}

/// The builtin topology `name` on the backend `SCION_TESTNET_BACKEND` names (default:
/// pocketscion), so any test can be tried on scionproto by hand.
pub fn testnet(name: &str) -> Testnet {
    testnet_on(name, Backend::from_env().expect("SCION_TESTNET_BACKEND"))
}

/// The builtin topology `name` on `backend`.
pub fn testnet_on(name: &str, backend: Backend) -> Testnet {
    let topology = Topology::builtin(name).expect("builtin topology");
    let options = StartOptions {
        backend,
        ..Default::default()
    };
    Testnet::start_with(&topology, options)
        .unwrap_or_else(|e| panic!("testnet {name} on {} starts: {e:#}", backend.name()))
}

pub fn daemon(tn: &Testnet, ia: &str) -> String {
    tn.state().ases[ia].daemon.to_string()
}

/// Deterministic pseudo-random content (xorshift), so failures are reproducible.
pub fn write_random(path: &Path, len: usize, seed: u64) {
    let mut x = seed | 1;
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, data).unwrap();
}

pub fn make_torrent(source: &Path, out: &Path, piece_len: Option<u32>) {
    let mut c = Command::new(bin());
    c.arg("create").arg(source).arg("-o").arg(out);
    if let Some(p) = piece_len {
        c.arg("--piece-length").arg(p.to_string());
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "create failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `len` bytes of [`write_random`] content in `dir/data.bin` and its torrent in `dir/d.torrent`
/// (`piece_len` as for [`make_torrent`]); returns (data, torrent).
pub fn random_torrent(
    dir: &Path,
    len: usize,
    seed: u64,
    piece_len: Option<u32>,
) -> (PathBuf, PathBuf) {
    let data = dir.join("data.bin");
    write_random(&data, len, seed);
    let torrent = dir.join("d.torrent");
    make_torrent(&data, &torrent, piece_len);
    (data, torrent)
}

/// A child process that is killed when dropped.
pub struct Proc {
    pub child: Child,
    pub stderr_log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a seeder in `ia` and waits for its "seeding ... as ADDR" line; returns the address.
pub fn seeder(
    tn: &Testnet,
    ia: &str,
    torrent: &Path,
    data: &Path,
    work: &Path,
    extra: &[&str],
) -> (Proc, String) {
    let log = work.join(format!("seeder-{}.log", rand_suffix()));
    let mut child = Command::new(bin())
        .arg(format!("-inPath={}", torrent.display()))
        .arg("-seed=true")
        .arg(format!("-file={}", data.display()))
        .arg(format!("-local={ia},[127.0.0.1]:0"))
        .args(extra)
        .env("SCION_DAEMON_ADDRESS", daemon(tn, ia))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("seeding") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            panic!(
                "seeder did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    let addr = line.rsplit(" as ").next().unwrap().trim().to_string();
    (
        Proc {
            child,
            stderr_log: log,
        },
        addr,
    )
}

pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary to completion (killed after `timeout`).
/// The info hash of a .torrent, as our `info` command prints it.
pub fn info_hash_of(torrent: &Path) -> [u8; 20] {
    let info = run(
        &["info".into(), torrent.display().to_string()],
        &[],
        Duration::from_secs(30),
    );
    let hex = info
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("info hash:"))
        .unwrap_or_else(|| panic!("no info hash in {}", info.stdout))
        .trim()
        .to_string();
    btscion::client::control::parse_info_hash(&hex).expect("40 hex digits")
}

/// A single-shot `download --torrent TORRENT --path PATH EXTRA...` over IP only (no SCION
/// daemon) that must succeed within two minutes; its output, for what the test reads next.
pub fn download_over_ip(torrent: &Path, path: &Path, extra: &[String]) -> Outcome {
    let mut args = vec![
        "download".to_string(),
        "--torrent".to_string(),
        torrent.display().to_string(),
        "--path".to_string(),
        path.display().to_string(),
        "--sciond=127.0.0.1:9".to_string(),
    ];
    args.extend_from_slice(extra);
    let o = run(&args, &[], Duration::from_secs(120));
    assert!(
        o.status.success(),
        "download failed: {}{}",
        o.stdout,
        o.stderr
    );
    o
}

pub fn run(args: &[String], envs: &[(&str, String)], timeout: Duration) -> Outcome {
    let mut c = Command::new(bin());
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in envs {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let status = child.wait().unwrap();
            let stderr = t_err.join().unwrap();
            panic!("timed out after {timeout:?} ({status}); stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Outcome {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// Runs a leecher in `ia` against `peer` with the original client's flags.
pub fn leech(
    tn: &Testnet,
    ia: &str,
    torrent: &Path,
    out: &Path,
    peer: &str,
    extra: &[&str],
) -> Outcome {
    let mut args = vec![
        format!("-inPath={}", torrent.display()),
        format!("-outPath={}", out.display()),
        format!("-peer={peer}"),
        "-seed=false".to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    run(
        &args,
        &[("SCION_DAEMON_ADDRESS", daemon(tn, ia))],
        Duration::from_secs(600),
    )
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn same_tree(a: &Path, b: &Path) {
    if a.is_file() {
        let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
        assert_eq!(
            x.len(),
            y.len(),
            "{} and {} differ in length",
            a.display(),
            b.display()
        );
        assert!(x == y, "{} and {} differ", a.display(), b.display());
        return;
    }
    let list = |d: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(d)
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let names = list(a);
    // Extra (or missing) files in the copy are a difference too.
    assert_eq!(
        names,
        list(b),
        "{} and {} hold different names",
        a.display(),
        b.display()
    );
    for n in names {
        same_tree(&a.join(&n), &b.join(&n));
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_007
}

/// Pieces of `out` equal to the source and not all zero (what a resume may trust).
pub fn verified_pieces(src: &Path, out: &Path, piece: usize) -> u64 {
    let (Ok(a), Ok(b)) = (std::fs::read(src), std::fs::read(out)) else {
        return 0;
    };
    if a.len() != b.len() {
        return 0;
    }
    a.chunks(piece)
        .zip(b.chunks(piece))
        .filter(|(x, y)| x == y && x.iter().any(|&v| v != 0))
        .count() as u64
}

/// (path, bytes downloaded) of every lane in a `-metricsJson` summary.
pub fn lanes(summary: &serde_json::Value) -> Vec<(String, u64)> {
    summary["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["path"].as_str().unwrap().to_string(),
                l["bytes_down"].as_u64().unwrap(),
            )
        })
        .collect()
}
