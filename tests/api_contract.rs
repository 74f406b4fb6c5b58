//! The API as a contract: schemathesis (PyPI, pinned and installed by scripts/install-deps.sh)
//! generates requests from docs/openapi.yaml — valid ones, invalid ones, unknown methods,
//! missing and wrong tokens, and sequences that follow the document's links — against a real
//! daemon (TCP only, no SCION needed), and checks every answer: no 5xx, the status and content
//! type are documented, bodies and event-stream events match their schemas, invalid input is
//! refused, a wrong token is refused. Bounded: a fixed seed and a fixed number of cases per
//! operation, so a run takes about a minute and fails the same way twice.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::daemons::{state, Daemon};
use common::{make_torrent, write_random};

const TOKEN: &str = "contract-token";
/// Test cases per operation and phase.
const CASES_PER_OPERATION: &str = "25";
const SEED: &str = "20261207";

/// The pinned schemathesis that scripts/install-deps.sh installed (`SCHEMATHESIS`, exported by
/// scripts/scionproto-env.sh). Missing is a failure, never a skip.
fn schemathesis() -> PathBuf {
    let path = std::env::var_os("SCHEMATHESIS").map(PathBuf::from).expect(
        "SCHEMATHESIS is not set: run scripts/install-deps.sh, then `. scripts/scionproto-env.sh`",
    );
    assert!(
        path.is_file(),
        "{} is missing: run scripts/install-deps.sh",
        path.display()
    );
    path
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A torrent of `len` random bytes in the download root, added paused.
fn add_paused(d: &Daemon, root: &Path, name: &str, len: usize, seed: u64) -> String {
    write_random(&root.join(name), len, seed);
    let torrent = format!("{name}.torrent");
    make_torrent(&root.join(name), &root.join(&torrent), Some(16384));
    let v = d.ok(
        "POST",
        "/api/v1/torrents",
        Some(serde_json::json!({ "torrent_path": torrent, "paused": true })),
    );
    v["info_hash"].as_str().expect("an info hash").to_string()
}

#[test]
fn the_daemon_answers_as_its_openapi_document_says() {
    let st = schemathesis();
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let d = Daemon::start(
        &work.path().join("state"),
        &[format!("--download-root={}", root.display())],
        &[("BTS_HTTP_TOKEN", TOKEN.to_string())],
    );
    let kept = add_paused(&d, &root, "kept.bin", 300_000, 1);
    let removable = add_paused(&d, &root, "removable.bin", 40_000, 2);

    let out = Command::new(&st)
        .arg("--config-file")
        .arg(repo_file("tests/schemathesis.toml"))
        .arg("run")
        .arg(repo_file("docs/openapi.yaml"))
        .args(["--checks", "all", "--max-examples", CASES_PER_OPERATION])
        .args(["--seed", SEED, "--workers", "1", "--no-color"])
        .env("BTS_CONTRACT_URL", format!("http://{}", d.api))
        .env("BTS_CONTRACT_TOKEN", TOKEN)
        .env("BTS_CONTRACT_TORRENT", &kept)
        .env("BTS_CONTRACT_REMOVABLE", &removable)
        .current_dir(work.path())
        .output()
        .expect("schemathesis runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found contract violations ({}):\n{report}\ndaemon log:\n{}",
        out.status,
        d.log_text()
    );
    // It really ran: every operation of the document was exercised.
    let (tested, total) = tested_operations(&report);
    assert!(
        total >= 17 && tested == total,
        "{tested} of {total} operations tested:\n{report}"
    );

    // The daemon is alive, answers, and the torrent every operation used is still there.
    let t = d.torrent(&kept);
    assert_ne!(state(&t), "error", "{t}");
    assert!(
        d.log_text().lines().all(|l| !l.contains("panicked")),
        "the daemon panicked:\n{}",
        d.log_text()
    );
}

/// `Selected: S/TOTAL` and `Tested: N` from schemathesis' summary: (N, TOTAL).
fn tested_operations(report: &str) -> (usize, usize) {
    let field = |prefix: &str| {
        report
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::to_owned))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{report}"))
    };
    let selected = field("Selected: ");
    let total = selected
        .split('/')
        .nth(1)
        .and_then(|t| t.trim().parse().ok());
    let tested = field("Tested: ").trim().parse().ok();
    match (tested, total) {
        (Some(n), Some(t)) => (n, t),
        _ => panic!("unreadable summary in:\n{report}"),
    }
}
