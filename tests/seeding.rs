//! The seeding side of the original command line (issue 28): a single-shot seeder (and the
//! bwtest servers) stop cleanly on SIGINT/SIGTERM, the seeder then prints its summary and
//! writes `-exportMetricsTo`; `-numPaths` caps the lanes a seeder serves each leecher.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// The binary, running, with everything it printed on stdout so far.
struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr_log: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Starts the binary in `ia` and waits for a stdout line starting with `ready`; returns
    /// it with the line.
    fn start(tn: &Testnet, ia: &str, args: &[String], ready: &str, work: &Path) -> (Self, String) {
        let stderr_log = work.join(format!("{}.log", ready.replace(' ', "-")));
        let mut child = Command::new(bin())
            .args(args)
            .env("SCION_DAEMON_ADDRESS", daemon(tn, ia))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let (all, ready_prefix) = (stdout.clone(), ready.to_string());
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.starts_with(&ready_prefix) {
                    let _ = tx.send(line.clone());
                }
                let mut all = all.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "no {ready:?} line: {}",
                    std::fs::read_to_string(&stderr_log).unwrap_or_default()
                )
            });
        let running = Running {
            child,
            stdout,
            stderr_log,
        };
        (running, line)
    }

    /// Sends `sig` to the process itself (not to a shell around it).
    fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) with the pid of our own child, still unreaped (we hold it).
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
    }

    /// Waits for the exit (killed after `timeout`); returns its status and stdout.
    fn wait(&mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "still running {timeout:?} after the signal; stderr:\n{}",
                    std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader thread sees EOF once the process is gone.
        std::thread::sleep(Duration::from_millis(200));
        let out = self.stdout.lock().unwrap().clone();
        (status, out)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

fn seeder_args(torrent: &Path, data: &Path, ia: &str, extra: &[String]) -> Vec<String> {
    let mut a = vec![
        format!("-inPath={}", torrent.display()),
        "-seed=true".to_string(),
        format!("-file={}", data.display()),
        format!("-local={ia},[127.0.0.1]:0"),
    ];
    a.extend(extra.iter().cloned());
    a
}

/// The original client's seeder flags: it serves a download; on SIGINT it prints its summary
/// (-printMetrics), writes the per-connection CSV (-exportMetricsTo) with the leecher's
/// address, path and the bytes it uploaded, and exits 0.
#[test]
fn a_seeder_prints_its_summary_and_writes_its_csv_on_sigint() {
    let tn = testnet("two-as");
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent) = random_torrent(dir.path(), 4 << 20, 21, None);
    let csv = dir.path().join("seed.csv");
    let extra = [
        "-printMetrics".to_string(),
        format!("-exportMetricsTo={}", csv.display()),
    ];
    let ases: Vec<String> = tn.state().ases.keys().cloned().collect();
    let (seed_ia, leech_ia) = (&ases[0], &ases[1]);
    let args = seeder_args(&torrent, &data, seed_ia, &extra);
    let (mut seed, line) = Running::start(&tn, seed_ia, &args, "seeding", dir.path());
    let addr = line.rsplit(" as ").next().unwrap().trim().to_string();
    let out = dir.path().join("out.bin");
    let r = leech(&tn, leech_ia, &torrent, &out, &addr, &[]);
    assert!(r.status.success(), "leecher: {}\n{}", r.stdout, r.stderr);
    same_tree(&data, &out);

    seed.signal(libc::SIGINT);
    let (status, stdout) = seed.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{stdout}\n{}", seed.stderr());
    assert!(stdout.contains("== summary: data.bin =="), "{stdout}");
    let uploaded: u64 = stdout
        .lines()
        .find_map(|l| l.split(", uploaded ").nth(1))
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'uploaded N bytes' in {stdout}"));
    assert!(uploaded >= 4 << 20, "uploaded {uploaded}: {stdout}");
    assert!(stdout.contains(&format!("peer {leech_ia},")), "{stdout}");

    let text = std::fs::read_to_string(&csv).expect("the seeder wrote its CSV");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "path");
    assert_eq!(header.last(), Some(&"peer"));
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<String>> = lines.map(csv_fields).collect();
    assert!(!rows.is_empty(), "{text}");
    let up: u64 = rows
        .iter()
        .map(|r| r[col("bytes_up")].parse::<u64>().unwrap())
        .sum();
    assert_eq!(up, uploaded, "the rows add up to the summary: {text}");
    for r in &rows {
        assert!(r[col("peer")].starts_with(leech_ia.as_str()), "{r:?}");
        assert!(!r[col("path")].is_empty(), "{r:?}");
        assert!(r[col("seconds")].parse::<f64>().unwrap() > 0.0, "{r:?}");
    }
}

/// SIGTERM too, with nobody served: exit 0 and a CSV of just its header.
#[test]
fn an_idle_seeder_stops_cleanly_on_sigterm() {
    let tn = testnet("two-as");
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent) = random_torrent(dir.path(), 1 << 20, 22, None);
    let csv = dir.path().join("seed.csv");
    let ia = tn.state().ases.keys().next().unwrap().clone();
    let extra = [format!("-exportMetricsTo={}", csv.display())];
    let args = seeder_args(&torrent, &data, &ia, &extra);
    let (mut seed, _) = Running::start(&tn, &ia, &args, "seeding", dir.path());
    seed.signal(libc::SIGTERM);
    let (status, stdout) = seed.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{stdout}\n{}", seed.stderr());
    assert!(
        !stdout.contains("== summary"),
        "no -printMetrics, no summary: {stdout}"
    );
    let text = std::fs::read_to_string(&csv).expect("CSV written");
    assert_eq!(text.lines().count(), 1, "{text}");
}

/// `download --keep-seeding`: once complete it seeds until SIGINT, then prints its summary
/// (complete) and exits 0.
#[test]
fn a_download_that_keeps_seeding_stops_cleanly_on_sigint() {
    let tn = testnet("two-as");
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent) = random_torrent(dir.path(), 2 << 20, 24, Some(64 * 1024));
    let ases: Vec<String> = tn.state().ases.keys().cloned().collect();
    let (_seed, addr) = seeder(&tn, &ases[0], &torrent, &data, dir.path(), &[]);
    let out = dir.path().join("out.bin");
    let args: Vec<String> = vec![
        "download".into(),
        "--torrent".into(),
        torrent.display().to_string(),
        "--path".into(),
        out.display().to_string(),
        "--peer".into(),
        addr,
        "--keep-seeding".into(),
    ];
    let (mut leecher, _) = Running::start(&tn, &ases[1], &args, "downloading", dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while verified_pieces(&data, &out, 64 * 1024) < 32 {
        assert!(Instant::now() < deadline, "{}", leecher.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Still running: it keeps seeding.
    std::thread::sleep(Duration::from_millis(500));
    assert!(leecher.child.try_wait().unwrap().is_none());
    leecher.signal(libc::SIGINT);
    let (status, stdout) = leecher.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{stdout}\n{}", leecher.stderr());
    assert!(stdout.contains("complete: true"), "{stdout}");
    same_tree(&data, &out);
}

/// `-numPaths 1` on the seeder: a leecher that opens a lane on each of the three paths gets
/// its data on exactly one of them.
#[test]
fn a_seeder_with_num_paths_1_serves_a_leecher_on_one_lane() {
    let tn = testnet("three-paths");
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent) = random_torrent(dir.path(), 8 << 20, 23, None);
    let (_seed, addr) = seeder(&tn, LEAF_B, &torrent, &data, dir.path(), &["-numPaths=1"]);
    let out = dir.path().join("out.bin");
    let metrics = dir.path().join("m.json");
    let r = leech(
        &tn,
        LEAF_A,
        &torrent,
        &out,
        &addr,
        &[&format!("-metricsJson={}", metrics.display())],
    );
    assert!(r.status.success(), "{}\n{}", r.stdout, r.stderr);
    same_tree(&data, &out);
    let l = lanes(&json(&metrics));
    assert!(l.len() >= 3, "the leecher opened a lane per path: {l:?}");
    assert_eq!(
        l.iter().filter(|(_, b)| *b > 0).count(),
        1,
        "data on one lane: {l:?}"
    );
}

/// The bwtest servers (ours and scion-apps' bwtester protocol) stop on SIGINT with exit 0.
#[test]
fn bwtest_servers_stop_cleanly_on_sigint() {
    let tn = testnet("two-as");
    let dir = tempfile::tempdir().unwrap();
    let ia = tn.state().ases.keys().next().unwrap().clone();
    let local = format!("{ia},[127.0.0.1]:0");
    let servers = [
        (
            vec!["bwtest", "--server", "--local", &local],
            "bwtest server listening",
        ),
        (
            vec!["bwtest", "--server", "--protocol", "bwtester"],
            "bwtester server listening",
        ),
    ];
    for (args, ready) in servers {
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        let (mut server, _) = Running::start(&tn, &ia, &args, ready, dir.path());
        server.signal(libc::SIGINT);
        let (status, stdout) = server.wait(Duration::from_secs(10));
        assert_eq!(
            status.code(),
            Some(0),
            "{ready}: {stdout}\n{}",
            server.stderr()
        );
        assert!(stdout.contains("server stopped"), "{stdout}");
    }
}

/// The fields of one CSV row (quoted fields may hold commas).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}
