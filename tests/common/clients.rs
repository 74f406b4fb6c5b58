//! Real BitTorrent clients for the interop tests: libtorrent (python3-libtorrent, driven by
//! tests/interop/lt_peer.py), Transmission (transmission-daemon + transmission-remote) and
//! aria2 (aria2c), plus our binary as a TCP-only seeder or leecher. They come from Debian
//! packages installed by scripts/install-deps.sh; a missing one fails the test saying so.
//!
//! Everything runs on loopback with DHT, LPD, PEX, UPnP, uTP and trackers off: peers are
//! connected directly, so the only thing exercised is the peer wire protocol.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{bin, make_torrent, run, write_random, Outcome};

/// Debian's python3-libtorrent is built for /usr/bin/python3 (not whatever is first on PATH).
pub const PYTHON: &str = "/usr/bin/python3";
/// A daemon address where nothing listens: our binary runs TCP-only.
pub const NO_DAEMON: &str = "127.0.0.1:1";

/// A child process with its stdout lines on a channel; killed when dropped.
pub struct Client {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr_log: PathBuf,
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Client {
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Client {
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
        Client {
            child,
            lines,
            stderr_log: log,
        }
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The process id (for /proc/PID/status).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stdout line starting with `prefix`.
    pub fn wait_for(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(_) => {}
                Err(_) => panic!(
                    "no {prefix:?} line within {timeout:?} (exit: {:?}); stderr:\n{}",
                    self.child.try_wait().ok().flatten(),
                    self.log()
                ),
            }
        }
    }

    /// Waits for the process to exit; its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {timeout:?}; stderr:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

/// A free TCP port on 127.0.0.1 (closed again; the client binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---- content and torrents -------------------------------------------------------------

/// A tree with nesting and odd sizes.
pub fn multi_file_content(root: &Path) {
    write_random(&root.join("a/b/deep.bin"), 2_000_003, 21);
    write_random(&root.join("a/odd.bin"), 77_777, 22);
    write_random(&root.join("top.bin"), 1_300_001, 23);
}

/// `SAVE/<name>`: a single file or a multi-file tree, content depending on `seed`.
pub fn content(save: &Path, name: &str, multi: bool, seed: u64) -> PathBuf {
    let src = save.join(name);
    if multi {
        multi_file_content(&src);
    } else {
        write_random(&src, 6 * 1024 * 1024 + 12_345, seed);
    }
    src
}

/// Who makes the .torrent: each writes metainfo a little differently.
#[derive(Clone, Copy, Debug)]
pub enum Maker {
    Ours,
    Mktorrent,
    Libtorrent,
    TransmissionCreate,
}

pub fn make(maker: Maker, src: &Path, out: &Path) {
    let tool = |c: &mut Command, name: &str| {
        let o = c
            .output()
            .unwrap_or_else(|e| panic!("{name} is missing ({e}): run scripts/install-deps.sh"));
        assert!(
            o.status.success() && out.exists(),
            "{name} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    };
    match maker {
        Maker::Ours => make_torrent(src, out, Some(64 * 1024)),
        Maker::Mktorrent => tool(
            Command::new("mktorrent")
                .args(["-l", "16", "-a", "http://tracker.invalid/announce", "-o"])
                .arg(out)
                .arg(src),
            "mktorrent",
        ),
        Maker::Libtorrent => tool(
            Command::new(PYTHON)
                .arg(lt_script())
                .arg("create")
                .arg(src)
                .arg(out),
            "python3-libtorrent",
        ),
        Maker::TransmissionCreate => tool(
            Command::new("transmission-create")
                .args(["-s", "32", "-o"])
                .arg(out)
                .arg(src),
            "transmission-create",
        ),
    }
}

// ---- our binary, TCP only ---------------------------------------------------------------

/// Our seeder without SCION (no daemon), dialing `dial` if given; returns it and its TCP
/// listen address.
pub fn our_tcp_seeder(
    torrent: &Path,
    data: &Path,
    dial: Option<&str>,
    work: &Path,
) -> (Client, String) {
    our_tcp_seeder_with(torrent, data, dial, work, &[])
}

/// [`our_tcp_seeder`] with more of the original client's flags.
pub fn our_tcp_seeder_with(
    torrent: &Path,
    data: &Path,
    dial: Option<&str>,
    work: &Path,
    flags: &[&str],
) -> (Client, String) {
    let mut c = Command::new(bin());
    c.arg(format!("-inPath={}", torrent.display()))
        .arg("-seed=true")
        .arg(format!("-file={}", data.display()))
        .args(flags)
        .env("SCION_DAEMON_ADDRESS", NO_DAEMON);
    if let Some(p) = dial {
        c.arg(format!("-peer={p}"));
    }
    let mut p = Client::spawn(c, work.join("our-seeder.log"));
    let line = p.wait_for("seeding", Duration::from_secs(60));
    let addr = tcp_addr(&line);
    (p, addr)
}

/// The `tcp IP:PORT` of a "seeding ... tcp IP:PORT as ..." line.
pub fn tcp_addr(line: &str) -> String {
    let rest = line
        .split(" tcp ")
        .nth(1)
        .unwrap_or_else(|| panic!("no tcp address in {line:?}"));
    rest.split_whitespace().next().unwrap().to_string()
}

/// Our leecher, TCP only, from `peer`; asserts success and that a TCP lane carried bytes.
pub fn our_tcp_leecher(torrent: &Path, out: &Path, peer: &str, work: &Path) -> Outcome {
    our_tcp_leecher_with(torrent, out, peer, work, &[]).0
}

/// [`our_tcp_leecher`] with more of the original client's flags; also its metrics summary.
pub fn our_tcp_leecher_with(
    torrent: &Path,
    out: &Path,
    peer: &str,
    work: &Path,
    flags: &[&str],
) -> (Outcome, serde_json::Value) {
    let json = work.join("our-leecher.json");
    let mut args = vec![
        format!("-inPath={}", torrent.display()),
        format!("-outPath={}", out.display()),
        format!("-peer={peer}"),
        "-seed=false".into(),
        format!("-metricsJson={}", json.display()),
    ];
    args.extend(flags.iter().map(|f| f.to_string()));
    let r = run(
        &args,
        &[("SCION_DAEMON_ADDRESS", NO_DAEMON.to_string())],
        Duration::from_secs(180),
    );
    assert!(
        r.status.success(),
        "our leecher failed ({}):\n{}\n{}",
        r.status,
        r.stdout,
        r.stderr
    );
    let m = super::json(&json);
    let tcp_bytes: u64 = super::lanes(&m)
        .iter()
        .filter(|(path, _)| path.starts_with("tcp "))
        .map(|(_, b)| b)
        .sum();
    assert!(tcp_bytes > 0, "no bytes on a TCP lane: {m}");
    (r, m)
}

// ---- libtorrent -------------------------------------------------------------------------

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

/// libtorrent seeding (`mode` "seed") or downloading ("leech") `torrent` into `save`,
/// connecting to `peer` if given.
pub fn libtorrent(
    mode: &str,
    torrent: &Path,
    save: &Path,
    peer: Option<&str>,
    log: PathBuf,
) -> Client {
    libtorrent_encrypted(mode, torrent, save, peer, log, "")
}

/// [`libtorrent`] with `LT_ENCRYPTION` (see lt_peer.py: "forced", "disabled", or "" for
/// libtorrent's default).
pub fn libtorrent_encrypted(
    mode: &str,
    torrent: &Path,
    save: &Path,
    peer: Option<&str>,
    log: PathBuf,
    encryption: &str,
) -> Client {
    require_libtorrent();
    std::fs::create_dir_all(save).unwrap();
    let mut c = Command::new(PYTHON);
    c.arg(lt_script()).arg(mode).arg(torrent).arg(save);
    c.env("LT_ENCRYPTION", encryption);
    if let Some(p) = peer {
        c.arg(p);
    }
    Client::spawn(c, log)
}

/// A libtorrent seeder, ready; its TCP port.
pub fn libtorrent_seeder(torrent: &Path, save: &Path, work: &Path) -> (Client, u16) {
    libtorrent_seeder_encrypted(torrent, save, work, "")
}

/// A libtorrent seeder with an encryption policy (`LT_ENCRYPTION`), ready; its TCP port.
pub fn libtorrent_seeder_encrypted(
    torrent: &Path,
    save: &Path,
    work: &Path,
    encryption: &str,
) -> (Client, u16) {
    let log = work.join("lt.log");
    let mut lt = libtorrent_encrypted("seed", torrent, save, None, log, encryption);
    let port = lt.wait_for("LISTEN", Duration::from_secs(30));
    let port = port.split_whitespace().nth(1).unwrap().parse().unwrap();
    lt.wait_for("SEEDING", Duration::from_secs(60));
    (lt, port)
}

// ---- Transmission -----------------------------------------------------------------------

/// A transmission-daemon with its own config dir, driven with transmission-remote.
pub struct Transmission {
    _daemon: Client,
    rpc_port: u16,
    pub peer_port: u16,
    log: PathBuf,
}

impl Transmission {
    /// Starts a daemon saving into `download_dir`; plaintext peers are accepted
    /// (`encryption: 1`, "prefer encrypted", is also Transmission's default).
    pub fn start(work: &Path, download_dir: &Path) -> Transmission {
        Self::start_with_encryption(work, download_dir, 1)
    }

    /// [`Transmission::start`] with its `encryption` setting: 0 prefer plaintext, 1 prefer
    /// encrypted, 2 require encryption.
    pub fn start_with_encryption(work: &Path, download_dir: &Path, encryption: u8) -> Transmission {
        let config = work.join("transmission");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::create_dir_all(download_dir).unwrap();
        let (rpc_port, peer_port) = (free_port(), free_port());
        let settings = serde_json::json!({
            "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false,
            "utp-enabled": false, "port-forwarding-enabled": false, "encryption": encryption,
            "rpc-port": rpc_port, "rpc-authentication-required": false,
            "rpc-whitelist-enabled": true, "rpc-whitelist": "127.0.0.1",
            "peer-port": peer_port, "peer-port-random-on-start": false,
            "download-dir": download_dir, "incomplete-dir-enabled": false,
            "rename-partial-files": false, "start-added-torrents": true,
            "speed-limit-up-enabled": false, "speed-limit-down-enabled": false,
            "message-level": 2,
        });
        std::fs::write(config.join("settings.json"), settings.to_string()).unwrap();
        let mut c = Command::new("transmission-daemon");
        c.arg("-f").arg("-g").arg(&config);
        let log = work.join("transmission.log");
        let daemon = Client::spawn(c, log.clone());
        let t = Transmission {
            _daemon: daemon,
            rpc_port,
            peer_port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !t.remote(&["-si"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "transmission-daemon did not answer RPC: {}",
                std::fs::read_to_string(&t.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        t
    }

    fn remote(&self, args: &[&str]) -> std::process::Output {
        Command::new("transmission-remote")
            .arg(self.rpc_port.to_string())
            .args(args)
            .output()
            .expect("transmission-remote is missing: run scripts/install-deps.sh")
    }

    /// Adds a torrent (its data is, or will be, in the download dir).
    pub fn add(&self, torrent: &Path) {
        let o = self.remote(&["-a", torrent.to_str().unwrap()]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.contains("success"),
            "transmission-remote -a failed: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// `transmission-remote -t 1 -i`: the details of the (only) torrent.
    pub fn info(&self) -> String {
        String::from_utf8_lossy(&self.remote(&["-t", "1", "-i"]).stdout).into_owned()
    }

    /// Waits until the torrent is complete and verified ("Percent Done: 100%").
    pub fn wait_complete(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let info = self.info();
            if info.contains("Percent Done: 100%") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Transmission did not complete within {timeout:?}:\n{info}\nlog:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

// ---- aria2 ------------------------------------------------------------------------------

/// aria2c for one torrent; `seed` keeps it seeding, otherwise it exits once complete.
pub fn aria2(torrent: &Path, dir: &Path, seed: bool, work: &Path) -> (Client, u16) {
    aria2_with(torrent, dir, seed, work, &[])
}

/// [`aria2`] with more options (e.g. `--bt-require-crypto=true`).
pub fn aria2_with(
    torrent: &Path,
    dir: &Path,
    seed: bool,
    work: &Path,
    extra: &[&str],
) -> (Client, u16) {
    std::fs::create_dir_all(dir).unwrap();
    let port = free_port();
    let mut c = Command::new("aria2c");
    c.args([
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        "--bt-exclude-tracker=*",
        "--summary-interval=0",
        "--console-log-level=warn",
        "--file-allocation=none",
        "--check-integrity=true",
    ])
    .arg(format!("--listen-port={port}"))
    .arg(format!("--dir={}", dir.display()));
    c.args(extra);
    if seed {
        c.arg("--seed-ratio=0.0");
    } else {
        c.arg("--seed-time=0");
    }
    c.arg(torrent);
    (Client::spawn(c, work.join("aria2.log")), port)
}
