//! Port mapping (UPnP-IGD, NAT-PMP, PCP) against Debian's real `miniupnpd` playing the home
//! router. Three hosts: this test's own network namespace is a LAN host running our daemon
//! (no routes of the machine are changed: the daemon is told the gateway), a "router"
//! namespace runs miniupnpd (nftables backend) between the LAN link (10.81.N.0/24) and a WAN
//! link (7.7.N.0/24, public-looking: miniupnpd refuses to map behind a private address), and
//! a "wan" namespace is a host on the Internet side. A mapping is read back from miniupnpd's
//! nftables chain and used: a TCP connection from the WAN host to the router's external
//! address reaches our daemon's listener. A hostile "router" of our own (garbage SSDP,
//! NAT-PMP and PCP answers, an endless description) must give a clear status and no crash.
//! Needs root for `ip netns` and nftables (CI runs as root); fails, never skips, without it.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::clients::{content, make, tcp_addr, Client, Maker, NO_DAEMON, PYTHON};
use common::daemons::Daemon;
use serde_json::Value;

/// The router's nftables: miniupnpd's chains (it adds rules to them, it does not create
/// them), hooked into forwarding and NAT. Traffic forwarded to the LAN is masqueraded so our
/// host, whose routes are the machine's, answers the WAN host through the router.
const RULES: &str = r#"
table inet filter {
    chain forward {
        type filter hook forward priority 0; policy accept;
        jump miniupnpd
    }
    chain miniupnpd {
    }
    chain prerouting {
        type nat hook prerouting priority -100; policy accept;
        jump prerouting_miniupnpd
    }
    chain postrouting {
        type nat hook postrouting priority 100; policy accept;
        jump postrouting_miniupnpd
        oifname "lan0" masquerade
    }
    chain prerouting_miniupnpd {
    }
    chain postrouting_miniupnpd {
    }
}
"#;

/// A home network: our end of the LAN link here, the router and the WAN host in namespaces.
struct Home {
    router: String,
    wan: String,
    net: u8,
    link: String,
    /// miniupnpd, or our hostile device, in the router namespace.
    device: Option<Client>,
}

fn run(cmd: &mut Command) -> String {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (run scripts/install-deps.sh)"));
    assert!(
        o.status.success(),
        "{cmd:?} failed (this test needs root for network namespaces): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

impl Home {
    fn new(net: u8) -> Home {
        let pid = std::process::id();
        let home = Home {
            router: format!("bts-pm-r-{pid}-{net}"),
            wan: format!("bts-pm-w-{pid}-{net}"),
            net,
            link: format!("btpm{net}"),
            device: None,
        };
        // A link left over by an earlier run that was killed would be in the way.
        let _ = Command::new("ip")
            .args(["link", "del", &home.link])
            .output();
        let (r, w) = (home.router.as_str(), home.wan.as_str());
        ip(&["netns", "add", r]);
        ip(&["netns", "add", w]);
        ip(&[
            "link", "add", &home.link, "type", "veth", "peer", "name", "lan0", "netns", r,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{}/24", home.ours()),
            "dev",
            &home.link,
        ]);
        ip(&["link", "set", &home.link, "up"]);
        ip(&[
            "-n",
            r,
            "addr",
            "add",
            &format!("{}/24", home.gateway()),
            "dev",
            "lan0",
        ]);
        ip(&[
            "-n", r, "link", "add", "wan0", "type", "veth", "peer", "name", "wan1", "netns", w,
        ]);
        ip(&[
            "-n",
            r,
            "addr",
            "add",
            &format!("{}/24", home.external()),
            "dev",
            "wan0",
        ]);
        ip(&[
            "-n",
            w,
            "addr",
            "add",
            &format!("7.7.{net}.2/24"),
            "dev",
            "wan1",
        ]);
        for (ns, dev) in [(r, "lan0"), (r, "wan0"), (r, "lo"), (w, "wan1"), (w, "lo")] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        home.in_router(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        home
    }

    /// Our address on the LAN.
    fn ours(&self) -> String {
        format!("10.81.{}.1", self.net)
    }

    fn gateway(&self) -> String {
        format!("10.81.{}.2", self.net)
    }

    /// The router's WAN address, what the world sees.
    fn external(&self) -> String {
        format!("7.7.{}.1", self.net)
    }

    fn in_router(&self, args: &[&str]) -> String {
        run(Command::new("ip")
            .args(["netns", "exec", &self.router])
            .args(args))
    }

    /// miniupnpd with UPnP-IGD, NAT-PMP and PCP on, mapping for LAN hosts only.
    fn start_miniupnpd(&mut self, work: &Path) {
        let rules = work.join("rules.nft");
        std::fs::write(&rules, RULES).unwrap();
        self.in_router(&["nft", "-f", &rules.display().to_string()]);
        let conf = work.join("miniupnpd.conf");
        let config = format!(
            "ext_ifname=wan0\nlistening_ip=lan0\nhttp_port=5000\nenable_natpmp=yes\n\
             enable_upnp=yes\nsecure_mode=yes\nsystem_uptime=yes\n\
             lease_file={leases}\nmin_lifetime=2\n\
             uuid=3e8c1a1e-1d2b-4c1a-9b7e-0000000000{net:02x}\n\
             allow 1024-65535 10.81.{net}.0/24 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n",
            leases = work.join("leases").display(),
            net = self.net,
        );
        std::fs::write(&conf, config).unwrap();
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.router, "miniupnpd", "-d", "-f"])
            .arg(&conf);
        let mut device = Client::spawn(c, work.join("miniupnpd.log"));
        // Its log goes to stderr; wait for the NAT-PMP/PCP socket (opened after HTTP's).
        let deadline = Instant::now() + Duration::from_secs(30);
        while !device.log().contains("Listening for NAT-PMP/PCP") {
            assert!(device.is_running(), "miniupnpd ended: {}", device.log());
            assert!(
                Instant::now() < deadline,
                "miniupnpd not ready: {}",
                device.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.device = Some(device);
    }

    /// The DNAT rules miniupnpd holds (its `prerouting_miniupnpd` chain).
    fn nat_rules(&self) -> String {
        self.in_router(&[
            "nft",
            "list",
            "chain",
            "inet",
            "filter",
            "prerouting_miniupnpd",
        ])
    }

    /// Whether miniupnpd forwards `proto` `port` on the WAN side to us (its rules match the
    /// IP header's protocol byte: 0x6 TCP, 0x11 UDP).
    fn forwards(&self, proto: &str, port: u64) -> bool {
        let byte = match proto {
            "tcp" => "@nh,72,8 0x6 ",
            _ => "@nh,72,8 0x11 ",
        };
        let ours = format!("dnat ip to {}:{port}", self.ours());
        self.nat_rules()
            .lines()
            .any(|l| l.contains(&format!("dport {port} ")) && l.contains(&ours) && l.contains(byte))
    }

    /// A TCP connection from the WAN host to the router's external address and `port`.
    fn connect_from_wan(&self, port: u64) -> Result<(), String> {
        let script = format!(
            "import socket\nsocket.create_connection(('{}', {port}), timeout=10).close()\n",
            self.external()
        );
        let o = Command::new("ip")
            .args(["netns", "exec", &self.wan, PYTHON, "-c", &script])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        match o.status.success() {
            true => Ok(()),
            false => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
        }
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        self.device = None;
        // Deleting the namespaces deletes the veth pairs with them.
        for ns in [&self.router, &self.wan] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Our daemon on the LAN with port mapping by `methods`, the DHT on, leases of `lease` s.
fn daemon(work: &Path, home: &Home, methods: &str, lease: u32) -> Daemon {
    let args = [
        format!("--download-root={}", work.join("root").display()),
        format!("--tcp-listen={}:0", home.ours()),
        format!("--dht={}:0", home.ours()),
        "--port-mapping".to_string(),
        format!("--port-mapping-gateway={}", home.gateway()),
        format!("--port-mapping-methods={methods}"),
        format!("--port-mapping-lease={lease}"),
    ];
    Daemon::start(
        &work.join("state"),
        &args,
        &[("SCION_DAEMON_ADDRESS", NO_DAEMON.to_string())],
    )
}

/// The snapshot's mappings once `done` holds for them (both the TCP and the DHT's).
fn wait_mappings(d: &Daemon, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let snap = d.snapshot();
        let list = snap["port_mapping"].as_array().cloned().unwrap_or_default();
        if list.len() == 2 && done(&list) {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "port mappings never {what}: {list:#?}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn mapping<'a>(list: &'a [Value], protocol: &str) -> &'a Value {
    list.iter()
        .find(|m| m["protocol"] == protocol)
        .unwrap_or_else(|| panic!("no {protocol} mapping in {list:#?}"))
}

/// Maps with `method`, sees the mappings in miniupnpd's rules and used from the WAN side,
/// renewed past their lease, and gone after the daemon stopped.
fn maps_renews_and_removes(net: u8, method: &str) {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut home = Home::new(net);
    home.start_miniupnpd(w);
    let mut d = daemon(w, &home, method, 4);

    let list = wait_mappings(&d, "mapped", |l| l.iter().all(|m| m["state"] == "mapped"));
    let tcp_port = d.ok("GET", "/api/v1/settings", None)["tcp_listen"]
        .as_str()
        .and_then(|a| a.rsplit(':').next()?.parse::<u64>().ok())
        .expect("the daemon's TCP port");
    let (tcp, udp) = (mapping(&list, "tcp"), mapping(&list, "udp"));
    assert_eq!(tcp["internal_port"], tcp_port);
    assert_eq!(tcp["purpose"], "bittorrent");
    assert_eq!(udp["purpose"], "dht");
    for m in [tcp, udp] {
        assert_eq!(m["method"], method, "{m}");
        assert_eq!(m["external_ip"], home.external(), "{m}");
        assert_eq!(m["gateway"], home.gateway(), "{m}");
        assert!(m["lease_expires_unix_ms"].as_u64().is_some(), "{m}");
        assert_eq!(m["last_error"], Value::Null, "{m}");
    }
    let udp_port = udp["internal_port"].as_u64().unwrap();
    // miniupnpd maps the port we ask for when it is free (it is, on a fresh router).
    assert_eq!(tcp["external_port"], tcp_port);
    assert!(home.forwards("tcp", tcp_port), "{}", home.nat_rules());
    assert!(home.forwards("udp", udp_port), "{}", home.nat_rules());
    // The CLI shows them.
    let (code, out, err) = d.cli(&["settings"]);
    assert_eq!(code, 0, "{err}");
    let line = format!(
        "port_mapping: tcp {tcp_port} (bittorrent): mapped to {}:{tcp_port} by {method}",
        home.external()
    );
    assert!(
        out.contains(&line),
        "`settings` should show {line:?}:\n{out}"
    );
    home.connect_from_wan(tcp_port).unwrap_or_else(|e| {
        panic!("the WAN host cannot reach our daemon through the mapping: {e}")
    });

    // 4 s leases renewed every 2 s: after two renewals each the first lease has run out, and
    // the gateway still forwards the ports.
    let renewed = |l: &[Value]| {
        l.iter()
            .all(|m| m["renewals"].as_u64() >= Some(2) && m["state"] == "mapped")
    };
    wait_mappings(&d, "renewed twice", renewed);
    assert!(home.forwards("tcp", tcp_port), "{}", home.nat_rules());
    assert!(home.forwards("udp", udp_port), "{}", home.nat_rules());

    assert_eq!(d.terminate(), 0, "{}", d.log_text());
    let rules = home.nat_rules();
    assert!(
        !home.forwards("tcp", tcp_port) && !home.forwards("udp", udp_port),
        "the mappings should be removed at shutdown: {rules}\n{}",
        d.log_text()
    );
    assert!(
        home.connect_from_wan(tcp_port).is_err(),
        "the port should be closed again"
    );
}

#[test]
fn upnp_igd_maps_renews_and_removes() {
    maps_renews_and_removes(1, "upnp");
}

#[test]
fn nat_pmp_maps_renews_and_removes() {
    maps_renews_and_removes(2, "natpmp");
}

#[test]
fn pcp_maps_renews_and_removes() {
    maps_renews_and_removes(3, "pcp");
}

/// A "router" of our own in the namespace: garbage on every port a client asks. SSDP
/// answers: junk, then two IGDs whose descriptions are an endless body and broken XML;
/// NAT-PMP/PCP: a datagram of neither protocol.
const HOSTILE: &str = r#"
import socket, threading, http.server, sys
gw = sys.argv[1]

def ssdp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 1900))
    while True:
        _, frm = s.recvfrom(4096)
        s.sendto(b"\xff\xfe garbage \x00" * 50, frm)
        for path in ("huge", "broken"):
            s.sendto(("HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
                      "LOCATION: http://%s:5000/%s\r\n\r\n" % (gw, path)).encode(), frm)

def pmp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 5351))
    while True:
        _, frm = s.recvfrom(4096)
        s.sendto(b"\x07\x99", frm)

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        try:
            if self.path == "/huge":
                for _ in range(4096):
                    self.wfile.write(b"<a>" * 1024)
            else:
                self.wfile.write(b"<root><device><serviceList><service><serviceType>")
        except OSError:
            pass
    def log_message(self, *a):
        pass

threading.Thread(target=ssdp, daemon=True).start()
threading.Thread(target=pmp, daemon=True).start()
srv = http.server.ThreadingHTTPServer(("0.0.0.0", 5000), H)
print("READY", flush=True)
srv.serve_forever()
"#;

#[test]
fn a_hostile_gateway_gets_a_clear_status_and_no_crash() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut home = Home::new(4);
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        &home.router,
        PYTHON,
        "-c",
        HOSTILE,
        &home.gateway(),
    ]);
    let mut device = Client::spawn(c, w.join("hostile.log"));
    device.wait_for("READY", Duration::from_secs(30));
    home.device = Some(device);

    let mut d = daemon(w, &home, "pcp,natpmp,upnp", 3600);
    let list = wait_mappings(&d, "failed", |l| l.iter().all(|m| m["state"] == "failed"));
    for m in &list {
        let e = m["last_error"].as_str().unwrap_or_default();
        for said in [
            "pcp: malformed answer",
            "natpmp: malformed answer",
            "over 65536 bytes",
            "not usable XML",
        ] {
            assert!(e.contains(said), "the error should say {said:?}: {e}");
        }
        assert_eq!(m["external_port"], Value::Null, "{m}");
        assert_eq!(m["lease_expires_unix_ms"], Value::Null, "{m}");
    }
    let (_, out, _) = d.cli(&["settings"]);
    assert!(
        out.contains("port_mapping: tcp ") && out.contains(": failed: pcp: malformed answer"),
        "`settings` should show the failure: {out}"
    );
    // The daemon goes on serving, and stops cleanly.
    assert_eq!(d.call("GET", "/api/v1/settings", None).0, 200);
    assert_eq!(d.terminate(), 0, "{}", d.log_text());
}

#[test]
fn a_single_shot_seed_maps_its_port_and_removes_it_at_exit() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut home = Home::new(5);
    home.start_miniupnpd(w);
    let src = content(&w.join("data"), "single.bin", false, 21);
    make(Maker::Ours, &src, &w.join("single.torrent"));

    let mut c = Command::new(common::bin());
    c.args(["seed", "--torrent"])
        .arg(w.join("single.torrent"))
        .arg("--path")
        .arg(&src)
        .arg(format!("--tcp-listen={}:0", home.ours()))
        .args(["--port-mapping", "--port-mapping-methods=natpmp"])
        .arg(format!("--port-mapping-gateway={}", home.gateway()))
        .env("SCION_DAEMON_ADDRESS", NO_DAEMON);
    let mut seeder = Client::spawn(c, w.join("seed.log"));
    let line = seeder.wait_for("seeding", Duration::from_secs(60));
    let port: u64 = tcp_addr(&line)
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the seeder's TCP port");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !home.forwards("tcp", port) {
        assert!(
            Instant::now() < deadline,
            "the seeder's port never mapped: {}\n{}",
            home.nat_rules(),
            seeder.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    home.connect_from_wan(port)
        .unwrap_or_else(|e| panic!("the WAN host cannot reach the seeder: {e}"));

    let pid = seeder.pid().to_string();
    run(Command::new("kill").args(["-TERM", &pid]));
    let status = seeder.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "{status}: {}", seeder.log());
    assert!(
        !home.forwards("tcp", port),
        "the mapping should be removed at exit: {}\n{}",
        home.nat_rules(),
        seeder.log()
    );
}
