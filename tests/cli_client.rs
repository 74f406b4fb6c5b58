//! The daemon commands of the real binary (`add`, `list`, `show`, `pause`, `resume`, `remove`,
//! `add-peer`, `settings`) against the real API served in-process over a test double of the
//! client loop: output, `--json`, prefixes, and exit codes.

mod api_support;

use std::path::PathBuf;
use std::process::Command;

use api_support::{make_torrent, Fake};
use serde_json::Value;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bittorrent-over-scion"))
}

fn cli(f: &Fake, args: &[&str], token: Option<&str>) -> Out {
    let mut c = Command::new(bin());
    c.args(args)
        .env("BTS_API", &f.base)
        .env_remove("BTS_HTTP_TOKEN");
    if let Some(t) = token {
        c.env("BTS_HTTP_TOKEN", t);
    }
    let o = c.output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn ok(f: &Fake, args: &[&str]) -> String {
    let o = cli(f, args, None);
    assert_eq!(o.code, 0, "{args:?}: {}{}", o.stdout, o.stderr);
    o.stdout
}

#[test]
fn drive_a_torrent_from_the_command_line() {
    let f = Fake::start(None);
    let t = make_torrent(f.dir.path(), "movie.bin", 1);
    let file = f.dir.path().join("movie.torrent");
    std::fs::write(&file, &t).unwrap();

    let out = ok(
        &f,
        &[
            "add",
            file.to_str().unwrap(),
            "--out-dir",
            "films",
            "--paused",
            "--peer",
            "127.0.0.1:7000",
        ],
    );
    let ih = out
        .strip_prefix("added ")
        .and_then(|s| s.strip_suffix(" (paused)\n"))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    assert_eq!(ih.len(), 40);
    assert_eq!(f.seen().out_dirs, vec![f.root.join("films")]);
    assert_eq!(f.seen().peers, vec!["127.0.0.1:7000"]);

    let table = ok(&f, &["list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATE"),
        "{table}"
    );
    assert!(lines[1].starts_with(&ih[..8]), "{table}");
    assert!(lines[1].contains("movie.bin") && lines[1].contains("paused"));
    assert!(
        lines[1].contains("39.1 KiB") && lines[1].contains("25.0%"),
        "{table}"
    );

    let json: Value = serde_json::from_str(&ok(&f, &["ls", "--json"])).unwrap();
    assert_eq!(json[0]["info_hash"], ih.as_str());

    let prefix = &ih[..6];
    let details = ok(&f, &["show", prefix]);
    assert!(details.contains(&format!("info hash:  {ih}")), "{details}");
    assert!(
        details.contains("via 1-ff00:0:110") && details.contains("2/5/9 ms"),
        "{details}"
    );
    let by_name = ok(&f, &["show", "movie.bin", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&by_name).unwrap()["name"],
        "movie.bin"
    );

    assert_eq!(ok(&f, &["resume", prefix]), format!("resumed {ih}\n"));
    assert!(ok(&f, &["list"]).contains("downloading"));
    assert_eq!(ok(&f, &["pause", prefix]), format!("paused {ih}\n"));

    let out = ok(
        &f,
        &["add-peer", prefix, "127.0.0.1:7000", "127.0.0.1:7001"],
    );
    assert_eq!(out, format!("1 new peer(s) for {ih}\n"));

    assert_eq!(
        ok(&f, &["remove", &ih, "--delete-data"]),
        format!("removed (data deleted) {ih}\n")
    );
    assert_eq!(f.seen().removed, vec![(ih.clone(), true)]);
    assert!(ok(&f, &["list"]).contains("(no torrents)"));
}

#[test]
fn exit_codes_follow_the_table() {
    let f = Fake::start(None);
    let garbage = f.dir.path().join("garbage.torrent");
    std::fs::write(&garbage, b"not bencode").unwrap();

    let o = cli(&f, &["show", "ffff"], None);
    assert_eq!(o.code, 4, "unknown torrent: {}", o.stderr);
    let o = cli(&f, &["pause", &"ab".repeat(20)], None);
    assert_eq!(o.code, 4, "unknown torrent: {}", o.stderr);
    assert!(o.stderr.contains("404"), "{}", o.stderr);

    let o = cli(&f, &["add", garbage.to_str().unwrap()], None);
    assert_eq!(o.code, 3, "bad torrent: {}", o.stderr);
    let o = cli(&f, &["add", "/nonexistent.torrent"], None);
    assert_eq!(o.code, 3, "unreadable torrent: {}", o.stderr);

    let t = make_torrent(f.dir.path(), "a.bin", 1);
    let file = f.dir.path().join("a.torrent");
    std::fs::write(&file, &t).unwrap();
    let o = cli(
        &f,
        &["add", file.to_str().unwrap(), "--out-dir", "../up"],
        None,
    );
    assert_eq!(o.code, 2, "path outside the root: {}", o.stderr);
    assert!(o.stderr.contains("'..'"), "{}", o.stderr);
    let o = cli(
        &f,
        &["add", file.to_str().unwrap(), "--peer", "nonsense"],
        None,
    );
    assert_eq!(o.code, 2, "bad peer: {}", o.stderr);

    // Nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = cli(
        &f,
        &["list", "--api", &format!("http://127.0.0.1:{port}")],
        None,
    );
    assert_eq!(o.code, 7, "{}", o.stderr);
    assert!(o.stderr.contains("is the daemon running?"), "{}", o.stderr);
}

#[test]
fn the_token_comes_from_the_flag_or_the_environment() {
    let f = Fake::start(Some("tok"));
    let o = cli(&f, &["list"], None);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("401"), "{}", o.stderr);
    let o = cli(&f, &["list", "--token", "tok"], None);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = cli(&f, &["list"], Some("tok"));
    assert_eq!(o.code, 0, "{}", o.stderr);
}

#[test]
fn settings_shows_and_sets_the_encryption_policy() {
    let f = Fake::start(None);
    assert!(ok(&f, &["settings"]).contains("encryption: enabled\n"));
    let out = ok(&f, &["settings", "--encryption", "required"]);
    assert!(out.contains("encryption: required\n"), "{out}");
    let v: Value = serde_json::from_str(&ok(&f, &["settings", "--json"])).unwrap();
    assert_eq!(v["encryption"], "required");
    let bad = cli(&f, &["settings", "--encryption", "forced"], None);
    assert_eq!(bad.code, 2, "{}{}", bad.stdout, bad.stderr);
    assert!(
        bad.stderr.contains("disabled, enabled or required"),
        "{}",
        bad.stderr
    );
    assert!(ok(&f, &["settings"]).contains("encryption: required\n"));
}
