//! The binary's contract, as scripts use it: start, wait for `testnet ready`, read
//! STATE.json, flip a link with `link`, list paths with `paths`, stop on SIGTERM.

mod common;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use common::{path_via, Host};
use scion_testnet::{daemon, parse_ia, TestnetState};

const BIN: &str = env!("CARGO_BIN_EXE_scion-testnet");

/// Kills the child if the test fails before stopping it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(topology: &str, state: &Path) -> Running {
    let mut child = Command::new(BIN)
        .args(["--topology", topology, "--state"])
        .arg(state)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn scion-testnet");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("testnet ready") {
                let _ = tx.send(line);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("no 'testnet ready' line");
    running
}

fn cli(args: &[&str], state: &Path) -> Output {
    let (head, tail) = args.split_at(1);
    Command::new(BIN)
        .args(head)
        .arg("--state")
        .arg(state)
        .args(tail)
        .output()
        .expect("run scion-testnet")
}

#[test]
fn run_link_paths_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("STATE.json");
    let mut net = start("three-paths", &state_file);
    let state = TestnetState::read(&state_file).unwrap();
    assert_eq!(state.ases.len(), 5);
    assert_eq!(state.links.len(), 6);
    assert!(state.links.iter().all(|l| l.up));

    // paths subcommand: three lines, one per path.
    let out = cli(&["paths", "1-ff00:0:111", "1-ff00:0:112"], &state_file);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");

    // link --down: recorded in the state file, and packets over that link stop.
    let down = ["link", "--as", "1-ff00:0:111", "--interface", "1", "--down"];
    let out = cli(&down, &state_file);
    assert!(out.status.success(), "{out:?}");
    let after = TestnetState::read(&state_file).unwrap();
    assert!(!after.link("1-ff00:0:111", 1).unwrap().up);
    assert_eq!(after.links.iter().filter(|l| !l.up).count(), 1);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (src, dst) = (
        parse_ia("1-ff00:0:111").unwrap(),
        parse_ia("1-ff00:0:112").unwrap(),
    );
    let paths = rt
        .block_on(daemon::paths(
            state.as_state("1-ff00:0:111").unwrap().daemon,
            src,
            dst,
        ))
        .unwrap();
    let (client, server) = (Host::new("1-ff00:0:111"), Host::new("1-ff00:0:112"));
    client.send(&server, path_via(&paths, 1), b"down");
    assert!(server.recv(Duration::from_millis(400)).is_none());
    client.send(&server, path_via(&paths, 2), b"up");
    assert!(server.recv(Duration::from_secs(3)).is_some());

    // A daemon stop needs the scionproto backend: a clear error here.
    let out = cli(&["daemon", "--stop", "1-ff00:0:111"], &state_file);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs the scionproto backend"),
        "{out:?}"
    );

    // Bad requests fail with a message, and the testnet keeps running.
    let bad = ["link", "--as", "1-ff00:0:111", "--interface", "9", "--down"];
    let out = cli(&bad, &state_file);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no link"));

    let out = cli(
        &["link", "--as", "1-ff00:0:111", "--interface", "1", "--up"],
        &state_file,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(TestnetState::read(&state_file)
        .unwrap()
        .links
        .iter()
        .all(|l| l.up));

    // SIGTERM: clean exit, sockets closed.
    let pid = net.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = net.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let control = state.control.unwrap();
    assert!(std::net::TcpStream::connect(control).is_err());
}

#[test]
fn bad_arguments_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("STATE.json");
    for args in [
        vec!["--topology", "no-such-topology", "--state"],
        vec!["--topology", "/no/such/file.toml", "--state"],
    ] {
        let out = Command::new(BIN).args(&args).arg(&state).output().unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("scion-testnet:"));
    }
    // No state file: the link command says so instead of panicking.
    let out = cli(
        &["link", "--as", "1-ff00:0:111", "--interface", "1", "--down"],
        &state,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read state file"));
}
