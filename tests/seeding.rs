//! The seeding side of the original command line (issue 28): a single-shot seeder (and the
//! bwtest servers) stop cleanly on SIGINT/SIGTERM, the seeder then prints its summary and
//! writes `-exportMetricsTo`; `-numPaths` caps the lanes a seeder serves each leecher. A
//! second signal exits at once with 130, as does a download (or a magnet link's metadata
//! fetch) that a signal stopped before it was complete.

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

/// A second signal exits at once with 130, whatever the clean stop is doing: here it waits
/// on an `-exportMetricsTo` server that accepted the POST and never answers (30 s timeout).
#[test]
fn a_second_signal_exits_at_once_with_130() {
    let tn = testnet("two-as");
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent) = random_torrent(dir.path(), 1 << 20, 25, None);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/metrics", silent.local_addr().unwrap());
    let ia = tn.state().ases.keys().next().unwrap().clone();
    let args = seeder_args(&torrent, &data, &ia, &[format!("-exportMetricsTo={url}")]);
    let (mut seed, _) = Running::start(&tn, &ia, &args, "seeding", dir.path());
    seed.signal(libc::SIGINT);
    // The clean stop reached the export: it connected and now waits for an answer.
    let held = accept_within(&silent, Duration::from_secs(20), &seed);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        seed.child.try_wait().unwrap().is_none(),
        "it should still wait for the export: {}",
        seed.stderr()
    );
    let second = Instant::now();
    seed.signal(libc::SIGINT);
    let (status, _) = seed.wait(Duration::from_secs(5));
    assert_eq!(status.code(), Some(130), "{}", seed.stderr());
    assert!(
        second.elapsed() < Duration::from_secs(3),
        "{:?}",
        second.elapsed()
    );
    drop(held);
}

/// A download stopped by SIGINT before it is complete exits 130, says how far it got, and
/// keeps what it verified; here its only seeder has just the first half of the pieces, so
/// it can never finish on its own.
#[test]
fn an_interrupted_incomplete_download_exits_130() {
    let tn = testnet("two-as");
    let dir = tempfile::tempdir().unwrap();
    let piece = 64 * 1024;
    let (data, torrent) = random_torrent(dir.path(), 2 << 20, 26, Some(piece as u32));
    // The seeder's copy: the last 16 of 32 pieces overwritten, so it serves only the first 16.
    let half = dir.path().join("half.bin");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[16 * piece..].iter_mut().for_each(|b| *b = !*b);
    std::fs::write(&half, &bytes).unwrap();
    let ases: Vec<String> = tn.state().ases.keys().cloned().collect();
    let (_seed, addr) = seeder(&tn, &ases[0], &torrent, &half, dir.path(), &[]);
    let out = dir.path().join("out.bin");
    let args: Vec<String> = vec![
        "download".into(),
        "--torrent".into(),
        torrent.display().to_string(),
        "--path".into(),
        out.display().to_string(),
        "--peer".into(),
        addr,
    ];
    let (mut leecher, _) = Running::start(&tn, &ases[1], &args, "downloading", dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while verified_pieces(&data, &out, piece) < 16 {
        assert!(Instant::now() < deadline, "{}", leecher.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        leecher.child.try_wait().unwrap().is_none(),
        "{}",
        leecher.stderr()
    );
    leecher.signal(libc::SIGINT);
    let (status, stdout) = leecher.wait(Duration::from_secs(20));
    let stderr = leecher.stderr();
    assert_eq!(status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(stdout.contains("complete: false"), "{stdout}");
    assert!(
        stderr.contains("stopped by a signal with 16 of 32 pieces verified; run again to resume"),
        "{stderr}"
    );
    assert_eq!(verified_pieces(&data, &out, piece), 16);
}

/// SIGINT while a magnet link's metadata is being fetched (from a peer that accepted the
/// connection and says nothing) stops it cleanly: exit 130, no data file.
#[test]
fn sigint_during_a_magnet_metadata_fetch_exits_130() {
    let tn = testnet("two-as");
    let dir = tempfile::tempdir().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ia = tn.state().ases.keys().next().unwrap().clone();
    let out = dir.path().join("out");
    let args: Vec<String> = vec![
        "download".into(),
        "--torrent".into(),
        format!(
            "magnet:?xt=urn:btih:{}&x.pe={}",
            "ab".repeat(20),
            silent.local_addr().unwrap()
        ),
        "--path".into(),
        out.display().to_string(),
    ];
    let (mut fetcher, _) = Running::start(&tn, &ia, &args, "fetching the metadata", dir.path());
    let _held = accept_within(&silent, Duration::from_secs(20), &fetcher);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        fetcher.child.try_wait().unwrap().is_none(),
        "{}",
        fetcher.stderr()
    );
    fetcher.signal(libc::SIGINT);
    let (status, stdout) = fetcher.wait(Duration::from_secs(10));
    let stderr = fetcher.stderr();
    assert_eq!(status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("stopped by a signal while fetching the metadata"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing was written");
}

/// The first connection to `listener` (which the test holds open, silent), or a panic with
/// the process's log after `timeout`.
fn accept_within(
    listener: &std::net::TcpListener,
    timeout: Duration,
    from: &Running,
) -> std::net::TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((s, _)) => return s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "no connection: {}",
                    from.stderr()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
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
