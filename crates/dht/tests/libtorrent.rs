//! Interop with libtorrent's DHT on loopback: three of our `dht_node` processes and one
//! libtorrent session (python3-libtorrent, tests/lt_dht.py) that bootstraps from ours.
//! libtorrent announces and we find its peer; we announce (also to libtorrent) and libtorrent's
//! get_peers finds us.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Debian's python3-libtorrent is built for /usr/bin/python3.
const PYTHON: &str = "/usr/bin/python3";

struct Proc {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn spawn(name: &'static str, mut cmd: Command) -> Proc {
        let log =
            std::env::temp_dir().join(format!("bt-dht-interop-{}-{name}.log", std::process::id()));
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e} (run scripts/install-deps.sh)"));
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            name,
            child,
            stdin,
            lines,
            log,
        }
    }

    fn ours(name: &'static str, bootstrap: Option<&str>) -> (Proc, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dht_node"));
        cmd.args(["--bind", "127.0.0.1:0"]);
        if let Some(b) = bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        let mut p = Proc::spawn(name, cmd);
        let line = p.wait_for(Duration::from_secs(10), |l| l.starts_with("listening "));
        let addr = line.split_whitespace().nth(1).unwrap().to_string();
        (p, addr)
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits for a stdout line matching `f`; `None` on timeout.
    fn try_wait_for(&mut self, timeout: Duration, f: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if f(&l) => return Some(l),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    fn wait_for(&mut self, timeout: Duration, f: impl Fn(&str) -> bool) -> String {
        match self.try_wait_for(timeout, f) {
            Some(l) => l,
            None => panic!(
                "{}: expected line not seen within {timeout:?} (exit: {:?}); stderr tail:\n{}",
                self.name,
                self.child.try_wait().ok().flatten(),
                self.log_tail()
            ),
        }
    }

    fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

#[test]
fn libtorrent_and_our_nodes_find_each_others_peers() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{PYTHON} cannot import libtorrent: install python3-libtorrent (scripts/install-deps.sh)"
    );

    let (mut a, a_addr) = Proc::ours("A", None);
    let (mut b, _) = Proc::ours("B", Some(&a_addr));
    let (mut c, _) = Proc::ours("C", Some(&a_addr));
    b.wait_for(Duration::from_secs(10), |l| l.starts_with("bootstrapped"));
    c.wait_for(Duration::from_secs(10), |l| l.starts_with("bootstrapped"));

    let mut lt_cmd = Command::new(PYTHON);
    lt_cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lt_dht.py"));
    lt_cmd.arg(&a_addr);
    let mut lt = Proc::spawn("libtorrent", lt_cmd);
    let port = lt.wait_for(Duration::from_secs(20), |l| l.starts_with("LISTEN "));
    let lt_addr = format!("127.0.0.1:{}", port.split_whitespace().nth(1).unwrap());
    lt.wait_for(Duration::from_secs(30), |l| l == "BOOTSTRAPPED");

    // libtorrent announces; our node A accepts it (libtorrent got a token from us first).
    let h1 = "1111111111111111111111111111111111111111";
    let lt_peer = lt_addr.as_str();
    lt.send(&format!("add {h1}"));
    a.wait_for(Duration::from_secs(40), |l| {
        l == format!("announced {h1} {lt_peer}")
    });
    // C, which never talked to libtorrent directly, finds libtorrent's peer.
    c.send(&format!("get_peers {h1}"));
    c.wait_for(Duration::from_secs(20), |l| {
        l.starts_with(&format!("peers {h1}")) && l.split_whitespace().any(|w| w == lt_peer)
    });

    // B announces; libtorrent acknowledges our announce_peer (our token handling on its side)…
    let h2 = "2222222222222222222222222222222222222222";
    let our_peer = "127.0.0.1:7002";
    let mut acked = false;
    for _ in 0..5 {
        b.send(&format!("announce {h2} 7002"));
        let done = b.wait_for(Duration::from_secs(30), |l| {
            l.starts_with(&format!("done {h2} announce"))
        });
        let to = done.rsplit("announced=").next().unwrap_or("");
        if to.split(',').any(|x| x == lt_addr) {
            acked = true;
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        acked,
        "libtorrent ({lt_addr}) never acknowledged our announce"
    );
    lt.wait_for(Duration::from_secs(10), |l| {
        l == format!("ANNOUNCED {h2} {our_peer}")
    });
    // …and libtorrent's own get_peers finds us through our nodes' answers.
    lt.send(&format!("get_peers {h2}"));
    lt.wait_for(Duration::from_secs(30), |l| {
        l.starts_with(&format!("PEERS {h2}")) && l.split_whitespace().any(|w| w == our_peer)
    });
    for p in [&mut a, &mut b, &mut c] {
        p.send("quit");
    }
    lt.send("quit");
}
