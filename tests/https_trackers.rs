//! HTTPS trackers with real components on loopback: Debian's opentracker behind stunnel,
//! with certificates from a test CA made here with the openssl CLI. Our daemons and our
//! single-shot download announce over HTTPS and find a seeder; a daemon that does not know
//! the CA says "unknown_issuer"; a certificate for another name says "name_mismatch"; the
//! scrape's counters match the swarm.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::clients::*;
use common::daemons::{state, Daemon};
use common::*;

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl CLI (Debian package openssl)");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA (`<name>.pem`, `<name>.key`).
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A server certificate `<name>.pem` + `<name>.key` for `san`, signed by CA `ca`.
fn make_server_cert(dir: &Path, name: &str, ca: &str, san: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// Debian's opentracker on 127.0.0.1 (TCP and UDP on one port), tracking `info_hash`.
fn opentracker(dir: &Path, info_hash: &[u8; 20]) -> (Client, u16) {
    use std::os::unix::fs::PermissionsExt;
    let dir = dir.join("opentracker");
    std::fs::create_dir_all(&dir).unwrap();
    // It chroots into the directory and drops to "nobody", who must read the list.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let hex: String = info_hash.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(dir.join("whitelist.txt"), format!("{hex}\n")).unwrap();
    let port = free_port();
    let mut c = Command::new("opentracker");
    c.args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-P", &port.to_string()])
        .arg("-d")
        .arg(&dir)
        .args(["-w", "whitelist.txt", "-u", "nobody"]);
    let p = Client::spawn(c, dir.join("opentracker.log"));
    wait_tcp(port, "opentracker", || p.log());
    (p, port)
}

fn wait_tcp(port: u16, what: &str, log: impl Fn() -> String) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not start (scripts/install-deps.sh installs it); log:\n{}",
        log()
    );
}

/// stunnel in front of `backend`: one TLS port per certificate named; returns the ports.
fn stunnel(dir: &Path, backend: u16, certs: &[&str]) -> (Client, Vec<u16>) {
    let mut conf = String::from("foreground = yes\npid =\n");
    let mut ports = Vec::new();
    for name in certs {
        let port = free_port();
        let (cert, key) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        conf += &format!(
            "[{name}]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{backend}\ncert = {}\nkey = {}\n",
            cert.display(),
            key.display()
        );
        ports.push(port);
    }
    let conf_path = dir.join("stunnel.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut c = Command::new("stunnel4");
    c.arg(&conf_path);
    let p = Client::spawn(c, dir.join("stunnel.log"));
    for port in &ports {
        wait_tcp(*port, "stunnel4", || p.log());
    }
    (p, ports)
}

fn create_torrent(src: &Path, out: &Path, announce: &[&str]) {
    let mut c = Command::new(bin());
    c.arg("create")
        .arg(src)
        .arg("-o")
        .arg(out)
        .args(["--piece-length", "65536"]);
    for a in announce {
        c.args(["--announce", a]);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn find_tracker<'a>(t: &'a serde_json::Value, url: &str) -> Option<&'a serde_json::Value> {
    t["trackers"]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["url"] == url))
}

fn tracker<'a>(t: &'a serde_json::Value, url: &str) -> &'a serde_json::Value {
    find_tracker(t, url).unwrap_or_else(|| panic!("no tracker {url} in {t:#}"))
}

/// The whole HTTPS story against opentracker behind stunnel: the torrent lists a tracker whose
/// certificate names another host (tier 1) and a good one (tier 2), both from a test CA.
/// Daemons given the CA with --tracker-ca find each other through the good one (the other
/// says name_mismatch); a daemon without it says unknown_issuer for both; the leecher's scrape
/// shows the swarm (1 seeder, 1 leecher); a single-shot download with --tracker-ca finds the
/// seeder too.
#[test]
fn daemons_and_single_shot_announce_over_https_and_tls_failures_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    make_ca(&pki, "test-ca");
    make_server_cert(&pki, "good", "test-ca", "IP:127.0.0.1,DNS:localhost");
    make_server_cert(&pki, "wrong-name", "test-ca", "DNS:elsewhere.example");
    let ca = pki.join("test-ca.pem");

    let seed_root = dir.path().join("seed");
    let src = seed_root.join("content.bin");
    write_random(&src, 2 * 1024 * 1024 + 321, 91);
    let plain = dir.path().join("plain.torrent");
    make_torrent(&src, &plain, Some(64 * 1024));
    let (_ot, ot_port) = opentracker(dir.path(), &info_hash_of(&plain));
    let (_tls, ports) = stunnel(&pki, ot_port, &["good", "wrong-name"]);
    let good = format!("https://127.0.0.1:{}/announce", ports[0]);
    let wrong = format!("https://127.0.0.1:{}/announce", ports[1]);
    let torrent = seed_root.join("x.torrent");
    // One tier each: the wrong one first, so it is always tried.
    create_torrent(&src, &torrent, &[&wrong, &good]);

    let start = |name: &str, root: Option<&Path>, with_ca: bool| {
        let mut args = vec![
            "--sciond=127.0.0.1:9".to_string(),
            format!("--tcp-listen=127.0.0.1:{}", free_port()),
        ];
        if let Some(r) = root {
            args.push(format!("--download-root={}", r.display()));
        }
        if with_ca {
            args.push(format!("--tracker-ca={}", ca.display()));
        }
        Daemon::start(&dir.path().join(name), &args, &[])
    };
    let seeder = start("seeder", Some(&seed_root), true);
    let ih = seeder.add_torrent_path("x.torrent", "");
    seeder.wait_torrent(&ih, Duration::from_secs(60), |t| {
        find_tracker(t, &good).is_some_and(|s| s["state"] == "working")
    });
    // Its scrape, right after its first announce, saw the swarm: itself, seeding.
    let t = seeder.wait_torrent(&ih, Duration::from_secs(30), |t| {
        find_tracker(t, &good).is_some_and(|s| !s["scrape"].is_null())
    });
    let s = tracker(&t, &good);
    assert_eq!(
        (&s["scrape"]["seeders"], &s["scrape"]["leechers"]),
        (&1.into(), &0.into()),
        "{s:#}"
    );
    let w = tracker(&t, &wrong);
    assert_eq!(w["state"], "backing_off", "{w:#}");
    assert_eq!(w["tls_error"], "name_mismatch", "{w:#}");

    // Without the CA: both trackers fail, as unknown issuer, and say so.
    let stranger = start("stranger", None, false);
    let out = stranger.cli(&["add", torrent.to_str().unwrap()]);
    assert_eq!(out.0, 0, "{out:?}");
    let t = stranger.wait_torrent(&ih, Duration::from_secs(60), |t| {
        t["trackers"]
            .as_array()
            .is_some_and(|l| l.len() == 2 && l.iter().all(|s| !s["tls_error"].is_null()))
    });
    for url in [&good, &wrong] {
        let s = tracker(&t, url);
        assert_eq!(s["tls_error"], "unknown_issuer", "{s:#}");
        assert!(
            s["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("unknown issuer")),
            "{s:#}"
        );
    }
    drop(stranger);

    // With the CA: the leecher finds the seeder over HTTPS and downloads.
    let leecher = start("leecher", None, true);
    let out = leecher.cli(&["add", torrent.to_str().unwrap()]);
    assert_eq!(out.0, 0, "{out:?}");
    leecher.wait_torrent(&ih, Duration::from_secs(120), |t| {
        let peers = t["peers"].as_array().unwrap();
        assert!(peers.iter().all(|p| p["source"] == "tracker"), "{t:#}");
        state(t) == "seeding"
    });
    same_tree(&src, &leecher.data_dir.join("downloads/content.bin"));
    // Its scrape saw the swarm: the seeder and itself (as a leecher or, if the scrape came
    // after it finished, as a second seeder).
    let t = leecher.wait_torrent(&ih, Duration::from_secs(30), |t| {
        find_tracker(t, &good).is_some_and(|s| !s["scrape"].is_null())
    });
    let s = tracker(&t, &good);
    let (seeders, leechers) = (
        s["scrape"]["seeders"].as_u64(),
        s["scrape"]["leechers"].as_u64(),
    );
    assert!(
        matches!((seeders, leechers), (Some(1), Some(1)) | (Some(2), Some(0))),
        "{s:#}"
    );
    assert!(s["scrape_error"].is_null(), "{s:#}");
    // `show` prints the counters.
    let out = leecher.cli(&["show", &ih]);
    assert_eq!(out.0, 0, "{out:?}");
    let shown = format!(
        "{} seeders, {} leechers",
        seeders.unwrap_or(0),
        leechers.unwrap_or(0)
    );
    assert!(out.1.contains(&good) && out.1.contains(&shown), "{}", out.1);

    // A single-shot download with --tracker-ca finds the seeder through the same tracker.
    let dl = dir.path().join("single.bin");
    download_over_ip(&torrent, &dl, &[format!("--tracker-ca={}", ca.display())]);
    same_tree(&src, &dl);
}

/// A --tracker-ca file that is not there, or holds no certificate, stops the daemon and the
/// single-shot download with a usage error that names the file.
#[test]
fn a_bad_tracker_ca_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "no certificate here\n").unwrap();
    for file in [dir.path().join("missing.pem"), junk] {
        let o = Command::new(bin())
            .arg("daemon")
            .arg(format!("--data-dir={}", dir.path().join("d").display()))
            .arg("--http=127.0.0.1:0")
            .arg(format!("--tracker-ca={}", file.display()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{err}");
        assert!(
            err.contains("--tracker-ca") && err.contains(&*file.display().to_string()),
            "{err}"
        );
    }
}
