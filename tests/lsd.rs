//! Local Service Discovery (BEP 14) against real libtorrent on a real link: libtorrent runs in
//! a network namespace joined to ours by a veth pair (a two-host LAN), our daemon runs here
//! with `--tcp-listen` on our end of the link and `--lsd`. Neither side is told the other's
//! address: each must find the other by multicast, in both directions (we find libtorrent's
//! seeder; libtorrent finds ours). Needs root for `ip netns` (CI runs as root); fails, never
//! skips, without it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::clients::{content, make, Client, Maker, NO_DAEMON, PYTHON};
use common::daemons::{state, Daemon};
use common::same_tree;

/// A network namespace linked to ours by a veth pair on 10.79.`net`.0/24 (we are .1, it is
/// .2) and fd79:`net`::/64 (::1 and ::2).
struct Lan {
    ns: String,
    net: u8,
    v6: bool,
}

impl Lan {
    fn new(net: u8, v6: bool) -> Lan {
        let ns = format!("bts-lsd-{}-{net}", std::process::id());
        let (here, there) = (format!("btl{net}a"), format!("btl{net}b"));
        let lan = Lan { ns, net, v6 };
        // A link left over by an earlier run that was killed would be in the way.
        let _ = Command::new("ip").args(["link", "del", &here]).output();
        lan.ip(&["netns", "add", &lan.ns]);
        lan.ip(&[
            "link", "add", &here, "type", "veth", "peer", "name", &there, "netns", &lan.ns,
        ]);
        lan.ip(&["addr", "add", &format!("10.79.{net}.1/24"), "dev", &here]);
        lan.ip(&["link", "set", &here, "up"]);
        let theirs = format!("10.79.{net}.2/24");
        lan.ip(&["-n", &lan.ns, "addr", "add", &theirs, "dev", &there]);
        lan.ip(&["-n", &lan.ns, "link", "set", &there, "up"]);
        lan.ip(&["-n", &lan.ns, "link", "set", "lo", "up"]);
        if v6 {
            // nodad: usable at once, not "tentative" for the next seconds.
            let (ours, theirs) = (format!("fd79:{net}::1/64"), format!("fd79:{net}::2/64"));
            lan.ip(&["-6", "addr", "add", &ours, "dev", &here, "nodad"]);
            lan.ip(&[
                "-n", &lan.ns, "-6", "addr", "add", &theirs, "dev", &there, "nodad",
            ]);
        }
        lan
    }

    fn ip(&self, args: &[&str]) {
        let o = Command::new("ip")
            .args(args)
            .output()
            .expect("iproute2's ip: run scripts/install-deps.sh");
        assert!(
            o.status.success(),
            "ip {} failed (this test needs root for network namespaces): {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn ours(&self) -> String {
        match self.v6 {
            true => format!("fd79:{}::1", self.net),
            false => format!("10.79.{}.1", self.net),
        }
    }

    fn theirs(&self) -> String {
        match self.v6 {
            true => format!("fd79:{}::2", self.net),
            false => format!("10.79.{}.2", self.net),
        }
    }

    /// `ours()` with a port, as a socket address is written.
    fn ours_at(&self, port: &str) -> String {
        match self.v6 {
            true => format!("[{}]:{port}", self.ours()),
            false => format!("{}:{port}", self.ours()),
        }
    }

    /// libtorrent seeding `torrent` from `<work>/lt` in the namespace, ready.
    fn libtorrent_seeder(&self, torrent: &Path, work: &Path) -> Client {
        let mut lt = self.libtorrent("seed", torrent, &work.join("lt"), work.join("lt.log"));
        lt.wait_for("LISTEN", Duration::from_secs(30));
        lt.wait_for("SEEDING", Duration::from_secs(60));
        lt
    }

    /// libtorrent with LSD on (tests/interop/lt_lsd.py), in the namespace.
    fn libtorrent(&self, mode: &str, torrent: &Path, save: &Path, log: PathBuf) -> Client {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/lt_lsd.py");
        std::fs::create_dir_all(save).unwrap();
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, PYTHON])
            .arg(script)
            .arg(mode)
            .arg(torrent)
            .arg(save)
            .arg(self.theirs());
        Client::spawn(c, log)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair with it.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

fn daemon(work: &Path, lan: &Lan) -> Daemon {
    let args = [
        format!("--download-root={}", work.join("root").display()),
        format!("--tcp-listen={}", lan.ours_at("0")),
        "--lsd".to_string(),
    ];
    Daemon::start(
        &work.join("state"),
        &args,
        &[("SCION_DAEMON_ADDRESS", NO_DAEMON.to_string())],
    )
}

#[test]
fn we_find_a_libtorrent_seeder_on_the_lan_by_lsd_alone() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let lan = Lan::new(1, false);
    let src = content(&w.join("lt"), "shared", true, 7);
    let root = w.join("root");
    std::fs::create_dir_all(&root).unwrap();
    make(Maker::Libtorrent, &src, &root.join("shared.torrent"));

    let mut lt = lan.libtorrent_seeder(&root.join("shared.torrent"), w);

    // No peer, tracker or DHT given, and libtorrent's seeder never dials out: only our
    // hearing its announce can bring the two together.
    let d = daemon(w, &lan);
    let ih = d.add_torrent_path("shared.torrent", "dl");
    d.wait_torrent(&ih, Duration::from_secs(90), |t| state(t) == "seeding");
    same_tree(&src, &root.join("dl/shared"));
    let peer = lt.wait_for("PEER", Duration::from_secs(5));
    assert!(
        peer.contains(&lan.ours_at("")),
        "libtorrent's peer should be our daemon on {}: {peer}",
        lan.ours()
    );
}

#[test]
fn a_libtorrent_leecher_on_the_lan_finds_our_seeder_by_lsd() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let lan = Lan::new(2, false);
    let root = w.join("root");
    let src = content(&root.join("data"), "single.bin", false, 9);
    make(Maker::Ours, &src, &root.join("single.torrent"));

    // libtorrent is told nothing about us and joins the group first: it must hear our
    // announce (sent when the torrent starts seeding, repeated 2 s and 4 s later).
    let d = daemon(w, &lan);
    let save = w.join("lt-dl");
    let mut lt = lan.libtorrent(
        "leech",
        &root.join("single.torrent"),
        &save,
        w.join("lt.log"),
    );
    lt.wait_for("LISTEN", Duration::from_secs(30));
    let ih = d.add_torrent_path("single.torrent", "data");
    d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");
    let tcp = d.ok("GET", "/api/v1/settings", None)["tcp_listen"]
        .as_str()
        .expect("the daemon's TCP address")
        .to_string();
    let heard = lt.wait_for("LSD_PEER", Duration::from_secs(60));
    assert!(
        heard.contains(&tcp),
        "libtorrent should have taken our daemon's TCP address {tcp} from our announce: {heard}"
    );
    lt.wait_for("DONE", Duration::from_secs(90));
    same_tree(&src, &save.join("single.bin"));
}

#[test]
fn over_ipv6_each_side_finds_the_other() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let lan = Lan::new(3, true);
    let src = content(&w.join("lt"), "v6.bin", false, 11);
    let root = w.join("root");
    std::fs::create_dir_all(&root).unwrap();
    make(Maker::Ours, &src, &root.join("v6.torrent"));

    let mut lt = lan.libtorrent_seeder(&root.join("v6.torrent"), w);

    // On our IPv6 address of the link (not [::], which would announce on every interface of
    // the machine running the test): the IPv6 group only.
    let args = [
        format!("--download-root={}", root.display()),
        format!("--tcp-listen={}", lan.ours_at("0")),
        "--lsd".to_string(),
    ];
    let d = Daemon::start(
        &w.join("state"),
        &args,
        &[("SCION_DAEMON_ADDRESS", NO_DAEMON.to_string())],
    );
    let ih = d.add_torrent_path("v6.torrent", "dl");
    // libtorrent's seeder never dials out, so the download means we heard it over IPv6.
    d.wait_torrent(&ih, Duration::from_secs(90), |t| state(t) == "seeding");
    same_tree(&src, &root.join("dl/v6.bin"));
    // And it heard our announce for the torrent while we were downloading.
    let heard = lt.wait_for("LSD_PEER", Duration::from_secs(30));
    assert!(
        heard.contains(&lan.ours()) || heard.contains("fe80:"),
        "libtorrent should have heard us over IPv6: {heard}"
    );
}

/// A listener in the namespace that prints `IH <hex>` for every info hash announced on the
/// IPv4 group — a bare LAN host, nothing of ours.
fn group_listener(lan: &Lan, log: PathBuf) -> Client {
    let script = format!(
        r#"
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("0.0.0.0", 6771))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             struct.pack("4s4s", socket.inet_aton("239.192.152.143"), socket.inet_aton("{ip}")))
print("LISTENING", flush=True)
while True:
    data, frm = s.recvfrom(2000)
    for line in data.decode("latin-1").splitlines():
        if line.lower().startswith("infohash:"):
            print("IH", line.split(":", 1)[1].strip().lower(), flush=True)
"#,
        ip = lan.theirs()
    );
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &lan.ns, PYTHON, "-c", &script]);
    Client::spawn(c, log)
}

#[test]
fn a_private_torrent_is_never_announced_on_the_lan() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let lan = Lan::new(4, false);
    let root = w.join("root");
    let public = content(&root.join("data"), "public.bin", false, 12);
    let private = content(&root.join("data"), "private.bin", false, 13);
    make(Maker::Ours, &public, &root.join("public.torrent"));
    let bytes =
        btscion::torrent::meta::create(&private, Some(1 << 16), vec![], true, None).unwrap();
    std::fs::write(root.join("private.torrent"), bytes).unwrap();

    let mut heard = group_listener(&lan, w.join("listener.log"));
    heard.wait_for("LISTENING", Duration::from_secs(30));
    let d = daemon(w, &lan);
    let private_ih = d.add_torrent_path("private.torrent", "data");
    let public_ih = d.add_torrent_path("public.torrent", "data");
    for ih in [&private_ih, &public_ih] {
        d.wait_torrent(ih, Duration::from_secs(60), |t| state(t) == "seeding");
    }
    // The public torrent is announced three times in its first 6 s (the control: the listener
    // hears what we send); the private one, seeding just as long, never.
    for _ in 0..3 {
        let line = heard.wait_for("IH", Duration::from_secs(30));
        assert_eq!(
            line,
            format!("IH {public_ih}"),
            "only the public torrent may be announced"
        );
    }
}

#[test]
fn a_single_shot_download_finds_a_libtorrent_seeder_by_lsd() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let lan = Lan::new(5, false);
    let src = content(&w.join("lt"), "single.bin", false, 14);
    make(Maker::Ours, &src, &w.join("single.torrent"));
    let _seeder = lan.libtorrent_seeder(&w.join("single.torrent"), w);

    // No -peer, no tracker, no DHT: without --lsd this is refused as having no source of peers.
    let out = w.join("out");
    let args = [
        "download".to_string(),
        format!("--torrent={}", w.join("single.torrent").display()),
        format!("--path={}", out.display()),
        format!("--tcp-listen={}", lan.ours_at("0")),
        "--lsd".to_string(),
    ];
    let envs = [("SCION_DAEMON_ADDRESS", NO_DAEMON.to_string())];
    let o = common::run(&args, &envs, Duration::from_secs(120));
    assert!(
        o.status.success(),
        "download failed: {}\n{}",
        o.stdout,
        o.stderr
    );
    same_tree(&src, &out);
    let o = common::run(&args[..4], &envs, Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(2), "without --lsd: {}", o.stderr);
    assert!(o.stderr.contains("--lsd"), "{}", o.stderr);
}
