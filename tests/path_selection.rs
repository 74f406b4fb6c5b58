//! Path selection as SCION users know it, end to end on the three-paths topology (paths via
//! 1-ff00:0:110, 120 and 130 between the leaves 111 and 112): `--sequence`, `--acl` and
//! `--path-policy` together, `--preference` through `paths`, and `-i` through a stdin pipe.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// A `download` subcommand in LEAF_A from `peer`, with `extra` options; the summary goes to
/// `metrics`.
fn download(
    tn: &Testnet,
    torrent: &Path,
    out: &Path,
    peer: &str,
    metrics: &Path,
    extra: &[&str],
) -> Outcome {
    let mut args: Vec<String> = [
        "download",
        "-t",
        &torrent.display().to_string(),
        "-o",
        &out.display().to_string(),
        "--peer",
        peer,
        "--metrics-json",
        &metrics.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    run(
        &args,
        &[("SCION_DAEMON_ADDRESS", daemon(tn, LEAF_A))],
        Duration::from_secs(300),
    )
}

/// The transit AS of each lane that carried bytes.
fn busy_transits(metrics: &Path) -> Vec<String> {
    let mut v: Vec<String> = lanes(&json(metrics))
        .into_iter()
        .filter(|(_, bytes)| *bytes > 0)
        .map(|(p, _)| {
            ["1-ff00:0:110", "1-ff00:0:120", "1-ff00:0:130"]
                .into_iter()
                .find(|t| p.contains(t))
                .unwrap_or("none")
                .to_string()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn sequence_and_acl_leave_exactly_the_path_they_allow() {
    let tn = testnet("three-paths");
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent) = random_torrent(dir.path(), 8 << 20, 31, None);
    let (_seed, addr) = seeder(&tn, LEAF_B, &torrent, &data, dir.path(), &[]);

    // Only the path entering 120 by interface 1: every byte on it, no lane elsewhere.
    let out = dir.path().join("seq.bin");
    let m = dir.path().join("seq.json");
    let seq = "1-ff00:0:111#0 1-ff00:0:120#1,0 1-ff00:0:112";
    let r = download(&tn, &torrent, &out, &addr, &m, &["--sequence", seq]);
    assert!(r.status.success(), "{}", r.stderr);
    same_tree(&data, &out);
    let all = lanes(&json(&m));
    assert!(
        all.iter().all(|(p, _)| p.contains("1-ff00:0:120")),
        "{all:?}"
    );
    assert_eq!(busy_transits(&m), ["1-ff00:0:120"], "{all:?}");

    // The ACL denies 110 and 130: the same single path.
    let out = dir.path().join("acl.bin");
    let m = dir.path().join("acl.json");
    let acl = "- 1-ff00:0:110; - 1-ff00:0:130; +";
    let r = download(&tn, &torrent, &out, &addr, &m, &["--acl", acl]);
    assert!(r.status.success(), "{}", r.stderr);
    same_tree(&data, &out);
    assert_eq!(
        busy_transits(&m),
        ["1-ff00:0:120"],
        "{:?}",
        lanes(&json(&m))
    );

    // A wildcard sequence with --path-policy: both apply, two paths are left.
    let out = dir.path().join("both.bin");
    let m = dir.path().join("both.json");
    let r = download(
        &tn,
        &torrent,
        &out,
        &addr,
        &m,
        &[
            "--sequence",
            "0 (1-ff00:0:110|1-ff00:0:130|1-ff00:0:120) 0",
            "--path-policy",
            "deny=1-ff00:0:130",
        ],
    );
    assert!(r.status.success(), "{}", r.stderr);
    same_tree(&data, &out);
    assert_eq!(
        busy_transits(&m),
        ["1-ff00:0:110", "1-ff00:0:120"],
        "{:?}",
        lanes(&json(&m))
    );

    // The sequence allows only what the policy denies: exit 4, and the message says why.
    let r = download(
        &tn,
        &torrent,
        &dir.path().join("none.bin"),
        &addr,
        &dir.path().join("none.json"),
        &[
            "--sequence",
            "0 1-ff00:0:120 0",
            "--path-policy",
            "deny=1-ff00:0:120",
        ],
    );
    assert_eq!(r.status.code(), Some(4), "{}", r.stderr);
    assert!(
        r.stderr.contains("sequence \"0 1-ff00:0:120 0\""),
        "{}",
        r.stderr
    );

    // A malformed sequence is a usage error naming the problem.
    let r = download(
        &tn,
        &torrent,
        &dir.path().join("bad.bin"),
        &addr,
        &dir.path().join("bad.json"),
        &["--sequence", "1-ff00:0:120#"],
    );
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("interface"), "{}", r.stderr);
}

/// The `[i] path` lines of `paths` output.
fn listed(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with('['))
        .map(str::to_string)
        .collect()
}

/// three-paths plus a core link 110#3 — 120#3: besides the three two-hop paths there are
/// three-hop ones through both cores.
const WITH_CORE_LINK: &str = r#"
name = "three-paths-core"
description = "three-paths with a core link between 110 and 120"
[[as]]
ia = "1-ff00:0:110"
core = true
[[as]]
ia = "1-ff00:0:120"
core = true
[[as]]
ia = "1-ff00:0:130"
core = true
[[as]]
ia = "1-ff00:0:111"
[[as]]
ia = "1-ff00:0:112"
[[link]]
a = "1-ff00:0:110#1"
b = "1-ff00:0:111#1"
[[link]]
a = "1-ff00:0:110#2"
b = "1-ff00:0:112#1"
[[link]]
a = "1-ff00:0:120#1"
b = "1-ff00:0:111#2"
[[link]]
a = "1-ff00:0:120#2"
b = "1-ff00:0:112#2"
[[link]]
a = "1-ff00:0:130#1"
b = "1-ff00:0:111#3"
[[link]]
a = "1-ff00:0:130#2"
b = "1-ff00:0:112#3"
[[link]]
a = "1-ff00:0:110#3"
b = "1-ff00:0:120#3"
"#;

fn paths_cmd(tn: &Testnet, extra: &[&str]) -> Outcome {
    let mut args = vec!["paths".to_string(), LEAF_B.to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    run(
        &args,
        &[("SCION_DAEMON_ADDRESS", daemon(tn, LEAF_A))],
        Duration::from_secs(60),
    )
}

/// Interfaces on a `paths` line: 2 per hop.
fn hops(line: &str) -> usize {
    line.matches('#').count() / 2
}

#[test]
fn preference_orders_the_paths_listing_and_sequence_filters_it() {
    let topo = Topology::from_str(WITH_CORE_LINK).unwrap();
    let backend = Backend::from_env().expect("SCION_TESTNET_BACKEND");
    let tn = Testnet::start_with(
        &topo,
        StartOptions {
            backend,
            ..Default::default()
        },
    )
    .unwrap();
    let all = paths_cmd(&tn, &["--preference", "hops"]);
    assert!(all.status.success(), "{}", all.stderr);
    let lines = listed(&all.stdout);
    let counts: Vec<usize> = lines.iter().map(|l| hops(l)).collect();
    assert!(
        counts.contains(&2) && counts.iter().any(|&h| h > 2),
        "{lines:?}"
    );
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]),
        "fewest hops first: {lines:?}"
    );

    // Only the paths through both cores, in either order (`|` binds tighter than a space,
    // as in scionproto: each side needs its own parentheses).
    let seq = "0 ((1-ff00:0:110 1-ff00:0:120) | (1-ff00:0:120 1-ff00:0:110)) 0";
    let both = paths_cmd(&tn, &["--sequence", seq]);
    assert!(both.status.success(), "{}", both.stderr);
    let through = listed(&both.stdout);
    assert!(!through.is_empty(), "{}", both.stdout);
    assert!(
        through
            .iter()
            .all(|l| hops(l) == 3 && l.contains("1-ff00:0:110") && l.contains("1-ff00:0:120")),
        "{through:?}"
    );
    assert_eq!(
        through.len(),
        counts.iter().filter(|&&h| h == 3).count(),
        "every three-hop path goes through both cores: {lines:?}"
    );
    let bad = paths_cmd(&tn, &["--preference", "speed"]);
    assert_eq!(bad.status.code(), Some(2), "{}", bad.stderr);
}

/// On scionproto the daemon knows each link's announced latency. With the core link, the
/// three-hop paths through 110 and 120 (about 2 + 1 + 4 ms) are faster than the two-hop path
/// through 130 (10 + 12 ms): `--preference latency` puts one of them before it, `hops` puts
/// every two-hop path first. The two orders differ, so each flag is seen to act.
#[test]
fn scionproto_latency_and_hops_preferences_order_differently() {
    let toml = WITH_CORE_LINK
        .replace(
            "b = \"1-ff00:0:111#1\"",
            "b = \"1-ff00:0:111#1\"\nannounce_latency_ms = 2.0",
        )
        .replace(
            "b = \"1-ff00:0:112#1\"",
            "b = \"1-ff00:0:112#1\"\nannounce_latency_ms = 3.0",
        )
        .replace(
            "b = \"1-ff00:0:111#2\"",
            "b = \"1-ff00:0:111#2\"\nannounce_latency_ms = 4.0",
        )
        .replace(
            "b = \"1-ff00:0:112#2\"",
            "b = \"1-ff00:0:112#2\"\nannounce_latency_ms = 4.0",
        )
        .replace(
            "b = \"1-ff00:0:111#3\"",
            "b = \"1-ff00:0:111#3\"\nannounce_latency_ms = 10.0",
        )
        .replace(
            "b = \"1-ff00:0:112#3\"",
            "b = \"1-ff00:0:112#3\"\nannounce_latency_ms = 12.0",
        )
        .replace("core = true", "core = true\ninternal_latency_ms = 0.5")
        .replace(
            "b = \"1-ff00:0:120#3\"",
            "b = \"1-ff00:0:120#3\"\nannounce_latency_ms = 1.0",
        );
    let topo = Topology::from_str(&toml).unwrap();
    let tn = Testnet::start_with(
        &topo,
        StartOptions {
            backend: Backend::Scionproto,
            ..Default::default()
        },
    )
    .unwrap();
    let order = |pref: &str| {
        let r = paths_cmd(&tn, &["--preference", pref]);
        assert!(r.status.success(), "{}", r.stderr);
        listed(&r.stdout)
    };
    let by_hops = order("hops");
    let counts: Vec<usize> = by_hops.iter().map(|l| hops(l)).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{by_hops:?}");
    assert!(counts.iter().any(|&h| h > 2), "{by_hops:?}");
    let by_latency = order("latency");
    assert!(
        by_latency[0].contains("1-ff00:0:110") && hops(&by_latency[0]) == 2,
        "{by_latency:?}"
    );
    let via_130 = by_latency
        .iter()
        .position(|l| l.contains("1-ff00:0:130"))
        .expect("a path via 130");
    assert!(
        by_latency[..via_130].iter().any(|l| hops(l) == 3),
        "a three-hop path is faster than the one via 130: {by_latency:?}"
    );
    assert_ne!(by_hops, by_latency);
}

#[test]
fn interactive_choice_from_a_stdin_pipe() {
    let tn = testnet("three-paths");
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent) = random_torrent(dir.path(), 4 << 20, 32, None);
    let (_seed, addr) = seeder(&tn, LEAF_B, &torrent, &data, dir.path(), &[]);
    // `paths` lists in the order -i offers; pick the one through 130.
    let listing = paths_cmd(&tn, &[]);
    assert!(listing.status.success(), "{}", listing.stderr);
    let pick = listed(&listing.stdout)
        .iter()
        .position(|l| l.contains("1-ff00:0:130"))
        .expect("a path via 130");
    let out = dir.path().join("out.bin");
    let m = dir.path().join("m.json");
    let mut child = Command::new(bin())
        .args(["download", "-i", "-t"])
        .arg(&torrent)
        .arg("-o")
        .arg(&out)
        .args(["--peer", &addr, "--metrics-json"])
        .arg(&m)
        .env("SCION_DAEMON_ADDRESS", daemon(&tn, LEAF_A))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A wrong answer first: asked again, not fatal.
    write!(child.stdin.take().unwrap(), "nine\n{pick}\n").unwrap();
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("Available paths to 1-ff00:0:112"),
        "{stderr}"
    );
    assert!(stderr.contains("Invalid choice \"nine\""), "{stderr}");
    same_tree(&data, &out);
    assert_eq!(
        busy_transits(&m),
        ["1-ff00:0:130"],
        "{:?}",
        lanes(&json(&m))
    );

    // Standard input closed without an answer: a usage error, nothing downloaded.
    let out2 = dir.path().join("none.bin");
    let o = Command::new(bin())
        .args(["download", "-i", "-t"])
        .arg(&torrent)
        .arg("-o")
        .arg(&out2)
        .args(["--peer", &addr])
        .env("SCION_DAEMON_ADDRESS", daemon(&tn, LEAF_A))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("standard input ended"));
}
