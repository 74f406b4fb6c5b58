//! Interoperability with real BitTorrent clients over plain TCP (BEP 3/6/10, no encryption):
//! libtorrent (python3-libtorrent) as seeder and as leecher, single- and multi-file torrents
//! made by mktorrent and by our `create`, and a mixed swarm (a SCION seeder and a TCP seeder
//! feeding one leecher). The clients come from scripts/install-deps.sh; a missing client
//! fails the test with a message saying so.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

/// Debian's python3-libtorrent is built for /usr/bin/python3 (not whatever is first on PATH).
const PYTHON: &str = "/usr/bin/python3";
/// A daemon address where nothing listens: our binary runs TCP-only.
const NO_DAEMON: &str = "127.0.0.1:1";

fn lt_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/lt_peer.py")
}

fn require_libtorrent() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3-libtorrent is missing ({PYTHON} -c 'import libtorrent' failed): run scripts/install-deps.sh"
    );
}

/// A child process with its stdout lines on a channel; killed when dropped.
struct Peer {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr_log: PathBuf,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    fn spawn(mut cmd: Command, log: PathBuf) -> Peer {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e} (run scripts/install-deps.sh)"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer {
            child,
            lines,
            stderr_log: log,
        }
    }

    /// Waits for a line starting with `prefix`.
    fn wait_for(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(_) => {}
                Err(_) => {
                    let status = self.child.try_wait().ok().flatten();
                    panic!(
                        "no {prefix:?} line within {timeout:?} (exit: {status:?}); stderr:\n{}",
                        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
                    )
                }
            }
        }
    }
}

fn libtorrent(mode: &str, torrent: &Path, save: &Path, peer: Option<&str>, log: PathBuf) -> Peer {
    require_libtorrent();
    std::fs::create_dir_all(save).unwrap();
    let mut c = Command::new(PYTHON);
    c.arg(lt_script()).arg(mode).arg(torrent).arg(save);
    if let Some(p) = peer {
        c.arg(p);
    }
    Peer::spawn(c, log)
}

/// Our seeder without SCION (no daemon); returns it and its TCP address.
fn our_tcp_seeder(torrent: &Path, data: &Path, work: &Path) -> (Peer, String) {
    let mut c = Command::new(bin());
    c.arg(format!("-inPath={}", torrent.display()))
        .arg("-seed=true")
        .arg(format!("-file={}", data.display()))
        .env("SCION_DAEMON_ADDRESS", NO_DAEMON);
    let mut p = Peer::spawn(c, work.join("our-seeder.log"));
    let line = p.wait_for("seeding", Duration::from_secs(60));
    let addr = tcp_addr(&line);
    (p, addr)
}

/// The `tcp IP:PORT` of a "seeding ... tcp IP:PORT as ..." line.
fn tcp_addr(line: &str) -> String {
    let rest = line
        .split(" tcp ")
        .nth(1)
        .unwrap_or_else(|| panic!("no tcp address in {line:?}"));
    rest.split_whitespace().next().unwrap().to_string()
}

fn mktorrent(src: &Path, out: &Path) {
    let o = Command::new("mktorrent")
        .args(["-l", "16", "-a", "http://tracker.invalid/announce", "-o"])
        .arg(out)
        .arg(src)
        .output()
        .expect("mktorrent is missing: run scripts/install-deps.sh");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn multi_file_content(root: &Path) {
    write_random(&root.join("a/b/deep.bin"), 2_000_003, 21);
    write_random(&root.join("a/odd.bin"), 77_777, 22);
    write_random(&root.join("top.bin"), 1_300_001, 23);
}

enum Maker {
    Ours,
    Mktorrent,
}

fn make(maker: Maker, src: &Path, out: &Path) {
    match maker {
        Maker::Ours => make_torrent(src, out, Some(64 * 1024)),
        Maker::Mktorrent => mktorrent(src, out),
    }
}

/// Our seeder → libtorrent leecher; libtorrent saves under SAVE/<torrent name>.
fn ours_to_libtorrent(maker: Maker, multi: bool) {
    let dir = tempfile::tempdir().unwrap();
    let src = if multi {
        let s = dir.path().join("content");
        multi_file_content(&s);
        s
    } else {
        let s = dir.path().join("single.bin");
        write_random(&s, 6 * 1024 * 1024 + 12_345, 11);
        s
    };
    let torrent = dir.path().join("x.torrent");
    make(maker, &src, &torrent);
    let (_seeder, addr) = our_tcp_seeder(&torrent, &src, dir.path());
    let save = dir.path().join("lt");
    let mut lt = libtorrent(
        "leech",
        &torrent,
        &save,
        Some(&addr),
        dir.path().join("lt.log"),
    );
    lt.wait_for("DONE", Duration::from_secs(120));
    let name = src.file_name().unwrap();
    same_tree(&src, &save.join(name));
}

/// libtorrent seeder → our leecher (TCP only, no SCION daemon).
fn libtorrent_to_ours(maker: Maker, multi: bool) {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("lt");
    let name = if multi { "content" } else { "single.bin" };
    let src = seed_dir.join(name);
    if multi {
        multi_file_content(&src);
    } else {
        write_random(&src, 6 * 1024 * 1024 + 54_321, 12);
    }
    let torrent = dir.path().join("x.torrent");
    make(maker, &src, &torrent);
    let mut lt = libtorrent("seed", &torrent, &seed_dir, None, dir.path().join("lt.log"));
    let port = lt.wait_for("LISTEN", Duration::from_secs(30));
    let port = port.split_whitespace().nth(1).unwrap().to_string();
    lt.wait_for("SEEDING", Duration::from_secs(60));
    let out = dir.path().join("out");
    let json = dir.path().join("m.json");
    let r = run(
        &[
            format!("-inPath={}", torrent.display()),
            format!("-outPath={}", out.display()),
            format!("-peer=127.0.0.1:{port}"),
            "-seed=false".into(),
            format!("-metricsJson={}", json.display()),
        ],
        &[("SCION_DAEMON_ADDRESS", NO_DAEMON.to_string())],
        Duration::from_secs(120),
    );
    assert!(
        r.status.success(),
        "our leecher failed ({}):\n{}\n{}",
        r.status,
        r.stdout,
        r.stderr
    );
    same_tree(&src, &out);
    let m = common::json(&json);
    let tcp_bytes: u64 = m["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["path"].as_str().unwrap_or("").starts_with("tcp "))
        .map(|l| l["bytes_down"].as_u64().unwrap_or(0))
        .sum();
    assert!(tcp_bytes > 0, "no bytes on a TCP lane: {m}");
}

#[test]
fn our_seeder_to_libtorrent_single_file_our_torrent() {
    ours_to_libtorrent(Maker::Ours, false);
}

#[test]
fn our_seeder_to_libtorrent_multi_file_mktorrent() {
    ours_to_libtorrent(Maker::Mktorrent, true);
}

#[test]
fn libtorrent_seeder_to_us_single_file_mktorrent() {
    libtorrent_to_ours(Maker::Mktorrent, false);
}

#[test]
fn libtorrent_seeder_to_us_multi_file_our_torrent() {
    libtorrent_to_ours(Maker::Ours, true);
}

/// One torrent, a SCION seeder (ours, in AS 112) and a TCP seeder (libtorrent); our leecher
/// (AS 111) gets both peers and must download correct bytes from both.
#[test]
fn mixed_swarm_scion_and_tcp_seeders() {
    let tn = testnet("two-as");
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("lt");
    let src = seed_dir.join("mixed.bin");
    write_random(&src, 24 * 1024 * 1024, 31);
    let torrent = dir.path().join("mixed.torrent");
    make_torrent(&src, &torrent, Some(64 * 1024));
    let ases: Vec<String> = tn.state().ases.keys().cloned().collect();
    let (_scion_seed, scion_addr) = seeder(&tn, &ases[0], &torrent, &src, dir.path(), &[]);
    let mut lt = libtorrent("seed", &torrent, &seed_dir, None, dir.path().join("lt.log"));
    let port = lt.wait_for("LISTEN", Duration::from_secs(30));
    let port = port.split_whitespace().nth(1).unwrap().to_string();
    lt.wait_for("SEEDING", Duration::from_secs(60));
    let out = dir.path().join("out.bin");
    let json = dir.path().join("m.json");
    let r = leech(
        &tn,
        &ases[1],
        &torrent,
        &out,
        &format!("{scion_addr};127.0.0.1:{port}"),
        &[&format!("-metricsJson={}", json.display())],
    );
    assert!(
        r.status.success(),
        "leecher failed:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    same_tree(&src, &out);
    let m = common::json(&json);
    let lanes = m["lanes"].as_array().unwrap();
    let sum = |tcp: bool| -> u64 {
        lanes
            .iter()
            .filter(|l| l["path"].as_str().unwrap_or("").starts_with("tcp ") == tcp)
            .map(|l| l["bytes_down"].as_u64().unwrap_or(0))
            .sum()
    };
    assert!(
        sum(true) > 0,
        "the TCP (libtorrent) seeder delivered nothing: {m}"
    );
    assert!(sum(false) > 0, "the SCION seeder delivered nothing: {m}");
}
