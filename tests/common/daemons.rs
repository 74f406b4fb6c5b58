//! Real `bittorrent-over-scion daemon` processes for end-to-end tests, driven over their HTTP
//! API (and the CLI client), and restarted or killed on demand.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::bin;

/// A running daemon; killed (SIGKILL) when dropped.
pub struct Daemon {
    pub child: Child,
    /// `127.0.0.1:PORT` of its API.
    pub api: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    starts: u32,
    /// Sent as `Authorization: Bearer` on every call: the `BTS_HTTP_TOKEN` it was started with.
    token: Option<String>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// A daemon with its state in `data_dir`, its download root at `root` and BitTorrent over
    /// TCP on an ephemeral loopback port (no SCION network).
    pub fn start_tcp(data_dir: &Path, root: &Path) -> Daemon {
        Daemon::start(
            data_dir,
            &[
                format!("--download-root={}", root.display()),
                "--tcp-listen=127.0.0.1:0".to_string(),
            ],
            &[],
        )
    }

    /// Starts `daemon --data-dir DATA --http 127.0.0.1:0 ARGS` and waits for its ready line.
    pub fn start(data_dir: &Path, args: &[String], envs: &[(&str, String)]) -> Daemon {
        let mut all = vec![
            "daemon".to_string(),
            format!("--data-dir={}", data_dir.display()),
            "--http=127.0.0.1:0".to_string(),
        ];
        all.extend(args.iter().cloned());
        let envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let log = data_dir.with_extension("log");
        let token = envs
            .iter()
            .find(|(k, _)| k == "BTS_HTTP_TOKEN")
            .map(|(_, v)| v.clone());
        let (child, api) = spawn(&all, &envs, &log, 0);
        Daemon {
            child,
            api,
            data_dir: data_dir.to_path_buf(),
            log,
            args: all,
            envs,
            starts: 1,
            token,
        }
    }

    /// Kills the process at once (no state saved) and starts it again with the same flags.
    pub fn kill9_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.restart();
    }

    /// Starts the process again after it exited.
    pub fn restart(&mut self) {
        let (child, api) = spawn(&self.args, &self.envs, &self.log, self.starts);
        self.child = child;
        self.api = api;
        self.starts += 1;
    }

    /// SIGTERM, then waits for the exit code.
    pub fn terminate(&mut self) -> i32 {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not stop on SIGTERM; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    /// An API call with a JSON body (or none); returns status and parsed body (Null if empty).
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        if let Some(t) = &self.token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let bytes = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                v.to_string().into_bytes()
            }
            None => Vec::new(),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut r = agent
            .run(b.body(bytes).unwrap())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}; log:\n{}", self.log_text()));
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        let v = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    /// A call that must succeed (2xx); returns its body.
    pub fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path} answered {status}: {v}"
        );
        v
    }

    /// Adds a .torrent that lies in the download root (its data under `out_dir` there);
    /// returns the info hash.
    pub fn add_torrent_path(&self, torrent: &str, out_dir: &str) -> String {
        let v = self.ok(
            "POST",
            "/api/v1/torrents",
            Some(serde_json::json!({ "torrent_path": torrent, "out_dir": out_dir })),
        );
        v["info_hash"].as_str().expect("an info hash").to_string()
    }

    pub fn snapshot(&self) -> Value {
        self.ok("GET", "/api/v1/snapshot", None)
    }

    /// One torrent's detail.
    pub fn torrent(&self, ih: &str) -> Value {
        self.ok("GET", &format!("/api/v1/torrents/{ih}"), None)
    }

    /// One torrent's files (`GET .../files`): path, size, priority, progress each.
    pub fn files(&self, ih: &str) -> Vec<Value> {
        match self.ok("GET", &format!("/api/v1/torrents/{ih}/files"), None) {
            Value::Array(list) => list,
            other => panic!("files of {ih} is not a list: {other}"),
        }
    }

    /// Polls one torrent's detail until `done` says so; panics with the last detail and the
    /// log after `timeout`.
    pub fn wait_torrent(
        &self,
        ih: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.torrent(ih);
            if done(&t) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "torrent {ih} did not get there in {timeout:?}: {t:#}\nlog:\n{}",
                tail(&self.log_text(), 60)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs the CLI client against this daemon; returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let o = Command::new(bin())
            .args(args)
            .arg(format!("--api=http://{}", self.api))
            .env_remove("BTS_HTTP_TOKEN")
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}

/// A state name as the API writes it.
pub fn state(t: &Value) -> &str {
    t["state"].as_str().unwrap_or("")
}

/// Bytes a torrent's detail shows downloaded over its SCION lanes.
pub fn scion_bytes_down(t: &Value) -> u64 {
    t["lanes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["transport"] == "scion")
        .filter_map(|l| l["bytes_down"].as_u64())
        .sum()
}

/// Whether a torrent's detail lists peers and every one came from `source` or dialled us.
pub fn peers_all_from(t: &Value, source: &str) -> bool {
    let peers = t["peers"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    !peers.is_empty()
        && peers
            .iter()
            .all(|p| p["source"] == source || p["source"] == "incoming")
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn spawn(args: &[String], envs: &[(String, String)], log: &Path, starts: u32) -> (Child, String) {
    let (child, line) = spawn_ready(args, envs, Some(log)).unwrap_or_else(|why| {
        panic!(
            "daemon (start {starts}) printed no ready line ({why}); log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    });
    (child, api_of(&line))
}

/// `127.0.0.1:PORT` from the ready line `daemon listening on http://127.0.0.1:PORT (...)`.
pub fn api_of(ready_line: &str) -> String {
    ready_line
        .strip_prefix("daemon listening on http://")
        .and_then(|s| s.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected ready line {ready_line:?}"))
        .to_string()
}

/// In a daemon's `envs`: not passed on, but the soft and hard `RLIMIT_NOFILE` it runs with
/// (as `ulimit -n N` would set).
pub const NOFILE_LIMIT: &str = "TEST_RLIMIT_NOFILE";

/// Runs the binary with `args` (the `daemon` subcommand and its flags) and waits up to 60 s
/// for its first line on stdout, the ready line; stderr goes to `log` (appended) or nowhere.
pub fn spawn_ready(
    args: &[String],
    envs: &[(String, String)],
    log: Option<&Path>,
) -> Result<(Child, String), String> {
    let stderr = match log {
        Some(log) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        ),
        None => Stdio::null(),
    };
    let mut c = Command::new(bin());
    c.args(args)
        .env_remove("BTS_HTTP_TOKEN")
        .stdout(Stdio::piped())
        .stderr(stderr);
    for (k, v) in envs {
        if k == NOFILE_LIMIT {
            let n: libc::rlim_t = v.parse().expect("a descriptor count");
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs in the forked child.
            unsafe {
                c.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                })
            };
        } else {
            c.env(k, v);
        }
    }
    let mut child = c.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) => Ok((child, line)),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e.to_string())
        }
    }
}
