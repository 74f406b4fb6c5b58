//! `bwtest` with scion-apps' bwtester protocol: the client (`bwtest -s ADDR -cs .. -sc ..`,
//! printing what their `scion-bwtestclient` prints) and the server (`bwtest --server
//! --protocol bwtester [--listen ADDR]`, answering their client and ours).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

use super::args::BwtestArgs;
use super::exit::{self, CliError};
use super::run::{daemon_address, default_source_ip, parse_local, parse_scion};
use crate::bwtest::bwtester::{Report, DEFAULT_SERVER_PORT};
use crate::bwtest::bwtester_client::{self, ClientConfig, ClientError, Retries};
use crate::bwtest::bwtester_server::{self, Limits, Server};
use crate::bwtest::scion_udp::{ask_daemon, Socket};
use crate::scion::Ia;

/// Which protocol `bwtest` speaks for these arguments; refuses options of the other one.
pub fn is_bwtester(b: &BwtestArgs) -> Result<bool, CliError> {
    let bwtester = match b.protocol.as_deref() {
        Some("bwtester") => true,
        Some(_) if b.server_addr.is_some() => {
            return Err(exit::usage(
                "-s names a bwtester server; use --peer for the quic protocol",
            ))
        }
        Some(_) => false,
        None => b.server_addr.is_some(),
    };
    if bwtester && (b.duration.is_some() || b.paths.is_some()) {
        return Err(exit::usage(
            "--duration and --paths are options of the quic protocol; the bwtester protocol \
             takes -cs and -sc (duration,packet size,packets,bandwidth)",
        ));
    }
    if !bwtester && (b.cs.is_some() || b.sc.is_some() || b.max_bandwidth.is_some()) {
        return Err(exit::usage(
            "-cs, -sc and --max-bandwidth are options of the bwtester protocol \
             (-s ADDR, or --protocol bwtester)",
        ));
    }
    Ok(bwtester)
}

pub fn run(b: BwtestArgs) -> Result<(), CliError> {
    if b.server {
        server(b)
    } else {
        client(b)
    }
}

/// `--local`/`--listen` as bwtester takes it: a SCION address (`ISD-AS,[]:Port` for the
/// default IP), `IP:Port`, or `:Port`. Returns the AS if one was named, the IP and the port.
fn parse_listen(s: &str, daemon: &str) -> Result<(Option<Ia>, IpAddr, u16), CliError> {
    if s.contains(',') {
        let a = parse_local(s, daemon)?;
        return Ok((Some(a.ia), a.host, a.port));
    }
    if let Some(port) = s.strip_prefix(':') {
        let port = port
            .parse()
            .map_err(|e| exit::usage(format!("invalid local address {s:?}: port: {e}")))?;
        return Ok((None, default_host(daemon), port));
    }
    let a: SocketAddr = s.parse().map_err(|_| {
        exit::usage(format!(
            "invalid local address {s:?}: expected ISD-AS,[IP]:Port, IP:Port or :Port"
        ))
    })?;
    Ok((None, a.ip(), a.port()))
}

/// The IP the kernel uses towards the daemon (scion-apps takes "the default local IP"), or
/// 127.0.0.1.
fn default_host(daemon: &str) -> IpAddr {
    default_source_ip(daemon).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn client_error(e: ClientError) -> CliError {
    match e {
        ClientError::Daemon(m) => exit::daemon(m),
        ClientError::Usage(m) => exit::usage(m),
        ClientError::Setup(m) | ClientError::Io(m) => exit::other(m),
        ClientError::Choice(e) => exit::usage(e.to_string()),
        e @ (ClientError::NoPath { .. }
        | ClientError::NoPathInPolicy { .. }
        | ClientError::NoAnswer { .. }
        | ClientError::Waited { .. }
        | ClientError::ResultNotFound(_)
        | ClientError::ImpossibleResult { .. }) => exit::unreachable(e.to_string()),
    }
}

fn client(b: BwtestArgs) -> Result<(), CliError> {
    let daemon = daemon_address(&b.scion.sciond);
    let server_str = b
        .server_addr
        .as_deref()
        .or(b.peer.as_deref())
        .ok_or_else(|| {
            exit::usage("bwtest needs -s ISD-AS,[IP]:Port (the bwtester server) or --server")
        })?;
    let server = parse_scion(server_str, "server address")?;
    let (local_ia, local_host, local_port) = match &b.local {
        Some(l) => parse_listen(l, &daemon)?,
        None => (None, default_host(&daemon), 0),
    };
    let (cs, sc) =
        bwtester_client::plan(b.cs.as_deref(), b.sc.as_deref(), &mut |l| println!("{l}"))
            .map_err(|e| exit::usage(format!("bwtest parameters: {e}")))?;
    println!("\nTest parameters:");
    println!(
        "client->server: {} seconds, {} bytes, {} packets",
        cs.duration_s, cs.packet_size, cs.num_packets
    );
    println!(
        "server->client: {} seconds, {} bytes, {} packets",
        sc.duration_s, sc.packet_size, sc.num_packets
    );
    let cfg = ClientConfig {
        daemon,
        server,
        local_host,
        local_port,
        client_to_server: cs,
        server_to_client: sc,
        retries: Retries::default(),
        policy: b
            .select
            .filter
            .policy(b.path_policy.clone().unwrap_or_default()),
        preference: b.select.filter.preference(),
        choose: b
            .select
            .interactive
            .then_some(super::path_select::choose_on_terminal),
    };
    if let Some(ia) = local_ia {
        let ours = ask_daemon(&cfg.daemon, None)
            .map_err(|e| exit::daemon(e.to_string()))?
            .ia;
        if ia != ours {
            return Err(exit::usage(format!(
                "local address is in AS {ia} but the SCION daemon serves AS {ours}"
            )));
        }
    }
    let out = bwtester_client::run(&cfg, &mut |l| println!("{l}")).map_err(client_error)?;
    eprintln!(
        "bwtester: control {} and data {} -> {} over {}",
        out.control, out.data, server, out.path
    );
    if out.received.foreign > 0 {
        eprintln!(
            "bwtester: ignored {} datagrams on the data socket from other senders than {} \
             (e.g. {})",
            out.received.foreign,
            server.with_port(server.port.wrapping_add(1)),
            out.received
                .foreign_example
                .map(|a| a.to_string())
                .unwrap_or_default()
        );
    }
    if out.path.mtu > 0 {
        for (dir, p) in [
            ("client->server", &out.client_to_server),
            ("server->client", &out.server_to_client),
        ] {
            // SCION common and address headers (IPv4 hosts), path, UDP: an estimate.
            let overhead = 36 + out.path.raw.len() + 8;
            if p.packet_size as usize + overhead > usize::from(out.path.mtu) {
                eprintln!(
                    "bwtester: note: {dir} packets of {} bytes exceed the path MTU of {} bytes \
                     with their SCION headers; routers may drop them",
                    p.packet_size, out.path.mtu
                );
            }
        }
    }
    println!("\nS->C results");
    print!(
        "{}",
        Report::new(&out.server_to_client, &out.received.result)
    );
    println!("\nC->S results");
    print!("{}", Report::new(&out.client_to_server, &out.server_result));
    Ok(())
}

/// `N[k|M|G|T][bps]`, bits per second.
fn parse_bandwidth(s: &str) -> Result<i64, CliError> {
    let bad = || exit::usage(format!("invalid bandwidth {s:?}: expected e.g. 100Mbps"));
    let t = s.trim().strip_suffix("bps").unwrap_or(s.trim());
    let (num, unit) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1_000),
        Some('M') => (&t[..t.len() - 1], 1_000_000),
        Some('G') => (&t[..t.len() - 1], 1_000_000_000),
        Some('T') => (&t[..t.len() - 1], 1_000_000_000_000),
        _ => (t, 1),
    };
    let n: i64 = num.parse().map_err(|_| bad())?;
    n.checked_mul(unit).filter(|v| *v > 0).ok_or_else(bad)
}

/// Binds the control port and the data port after it: `port`, or (0) a free pair inside the
/// AS's range.
fn bind_pair(
    ia: Ia,
    host: IpAddr,
    port: u16,
    candidates: &[u16],
) -> Result<(Socket, Socket), CliError> {
    let pair = |p: u16| -> std::io::Result<(Socket, Socket)> {
        let cc = Socket::bind(ia, host, p)?;
        let dp = bwtester_server::data_port(cc.local().port).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no port after it")
        })?;
        let dc = Socket::bind(ia, host, dp)?;
        Ok((cc, dc))
    };
    if port != 0 {
        return pair(port).map_err(|e| {
            exit::other(format!(
                "cannot bind the control port {port} and the data port after it on {host}: {e}"
            ))
        });
    }
    let mut last = None;
    for &p in candidates.iter().chain(std::iter::repeat_n(&0, 20)) {
        match pair(p) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(exit::other(format!(
        "no free pair of ports (control, data = control + 1) on {host}: {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}

fn server(b: BwtestArgs) -> Result<(), CliError> {
    let daemon = daemon_address(&b.scion.sciond);
    let answers = ask_daemon(&daemon, None).map_err(|e| exit::daemon(e.to_string()))?;
    let ia = answers.ia;
    let (listen_ia, host, port, explicit) = match &b.local {
        Some(l) => {
            let (i, h, p) = parse_listen(l, &daemon)?;
            (i, h, p, true)
        }
        None => (None, default_host(&daemon), DEFAULT_SERVER_PORT, false),
    };
    if let Some(l) = listen_ia.filter(|l| *l != ia) {
        return Err(exit::usage(format!(
            "listen address is in AS {l} but the SCION daemon serves AS {ia}"
        )));
    }
    let range = answers.port_range;
    let inside = |p: u16| range.is_none_or(|(lo, hi)| lo <= p && p <= hi);
    let port = if !explicit && !bwtester_server::default_port_fits(range) {
        let (lo, hi) = range.unwrap_or((0, 0));
        println!(
            "Port {DEFAULT_SERVER_PORT} is outside AS {ia}'s dispatched port range {lo}-{hi}: \
             its routers would deliver there only through a dispatcher on port 30041. \
             Listening on a free port pair inside the range instead (--listen chooses)."
        );
        0
    } else {
        port
    };
    if port != 0 && !(inside(port) && inside(port.saturating_add(1))) {
        let (lo, hi) = range.unwrap_or((0, 0));
        eprintln!(
            "warning: ports {port} and {} are not both inside AS {ia}'s dispatched range \
             {lo}-{hi}: routers deliver to them only through a dispatcher listening on \
             {host}:30041",
            port.saturating_add(1)
        );
    }
    let (cc, dc) = bind_pair(ia, host, port, &answers.port_candidates)?;
    let limits = Limits {
        max_bandwidth_bps: match &b.max_bandwidth {
            Some(bw) => parse_bandwidth(bw)?,
            None => bwtester_server::DEFAULT_MAX_BANDWIDTH,
        },
        ..Limits::default()
    };
    let data = dc.local().port;
    let mut server = Server::new(cc, dc, limits.clone()).map_err(|e| exit::other(e.to_string()))?;
    // Before the ready line: a signal after it stops the server cleanly.
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let set = stop.clone();
    super::signals::on_first_signal(move || set.store(true, Ordering::Release))
        .map_err(|e| exit::other(format!("signal handlers: {e}")))?;
    println!(
        "bwtester server listening on {} (data port {data}, at most {} bit/s and {} packets \
         per direction)",
        server.local(),
        limits.max_bandwidth_bps,
        limits.max_packets
    );
    server
        .serve(&stop, &mut |ev| println!("{ev}"))
        .map_err(|e| exit::other(format!("control socket: {e}")))?;
    println!("bwtester server stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{go_style_bwtest_flags, Cli, Command};
    use clap::Parser;

    fn ia(s: &str) -> Ia {
        crate::scion::parse_ia(s).unwrap()
    }

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    fn bwtest(s: &[&str]) -> BwtestArgs {
        let cli = Cli::try_parse_from(go_style_bwtest_flags(argv(s))).unwrap();
        match cli.command {
            Command::Bwtest(b) => b,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bwtestclient_command_lines_parse() {
        let b = bwtest(&[
            "bts",
            "bwtest",
            "-s",
            "1-ff00:0:112,[127.0.0.1]:40002",
            "-cs",
            "3,1000,?,8Mbps",
            "-sc=?,1000,30,80kbps",
            "-local",
            "127.0.0.1:0",
        ]);
        assert_eq!(
            b.server_addr.as_deref(),
            Some("1-ff00:0:112,[127.0.0.1]:40002")
        );
        assert_eq!(b.cs.as_deref(), Some("3,1000,?,8Mbps"));
        assert_eq!(b.sc.as_deref(), Some("?,1000,30,80kbps"));
        assert_eq!(b.local.as_deref(), Some("127.0.0.1:0"));
        assert!(is_bwtester(&b).unwrap());
        let b = bwtest(&[
            "bts",
            "bwtest",
            "--server-addr=1-ff00:0:112,127.0.0.1:40002",
            "--cs",
            "1Mbps",
        ]);
        assert!(is_bwtester(&b).unwrap());
        // A value that looks like a Go flag stays a value.
        let b = bwtest(&[
            "bts",
            "bwtest",
            "-s",
            "1-ff00:0:112,[127.0.0.1]:1",
            "-cs",
            "-local",
        ]);
        assert_eq!(b.cs.as_deref(), Some("-local"));
        assert!(b.local.is_none());
    }

    #[test]
    fn server_and_quic_command_lines_parse() {
        let b = bwtest(&[
            "bts",
            "bwtest",
            "--server",
            "--protocol",
            "bwtester",
            "-listen",
            ":40002",
        ]);
        assert!(b.server && is_bwtester(&b).unwrap());
        assert_eq!(b.local.as_deref(), Some(":40002"));
        let b = bwtest(&[
            "bts",
            "bwtest",
            "--serve",
            "--protocol=bwtester",
            "--listen",
            "127.0.0.1:31000",
        ]);
        assert!(b.server && is_bwtester(&b).unwrap());
        // The quic mode's flags as they always were.
        let b = bwtest(&[
            "bts",
            "bwtest",
            "--server",
            "--local",
            "1-ff00:0:112,[127.0.0.1]:40000",
        ]);
        assert!(!is_bwtester(&b).unwrap());
        let b = bwtest(&[
            "bts",
            "bwtest",
            "--peer",
            "1-ff00:0:112,[127.0.0.1]:40000",
            "--paths",
            "3",
            "--duration",
            "2",
        ]);
        assert!(!is_bwtester(&b).unwrap());
        assert_eq!((b.paths, b.duration), (Some(3), Some(2.0)));
        // Options of the other protocol are refused.
        let b = bwtest(&[
            "bts",
            "bwtest",
            "-s",
            "1-ff00:0:112,[127.0.0.1]:1",
            "--duration",
            "2",
        ]);
        assert!(is_bwtester(&b).is_err());
        let b = bwtest(&[
            "bts",
            "bwtest",
            "--peer",
            "1-ff00:0:112,[127.0.0.1]:1",
            "-cs",
            "1Mbps",
        ]);
        assert!(is_bwtester(&b).is_err());
        // Other subcommands are untouched.
        let a = argv(&["bts", "download", "-cs"]);
        assert_eq!(go_style_bwtest_flags(a.clone()), a);
    }

    #[test]
    fn listen_forms_and_bandwidths() {
        let (i, h, p) = parse_listen(":40002", "127.0.0.1:30255").unwrap();
        assert_eq!((i, h, p), (None, IpAddr::V4(Ipv4Addr::LOCALHOST), 40002));
        let (i, h, p) = parse_listen("1-ff00:0:112,[127.0.0.2]:31000", "127.0.0.1:30255").unwrap();
        assert_eq!(
            (i, h, p),
            (
                Some(ia("1-ff00:0:112")),
                "127.0.0.2".parse().unwrap(),
                31000
            )
        );
        assert_eq!(parse_listen("10.0.0.1:5", "x").unwrap().2, 5);
        assert!(parse_listen("nonsense", "127.0.0.1:30255").is_err());
        assert_eq!(parse_bandwidth("1Gbps").unwrap(), 1_000_000_000);
        assert_eq!(parse_bandwidth("80kbps").unwrap(), 80_000);
        assert_eq!(parse_bandwidth("500M").unwrap(), 500_000_000);
        assert!(parse_bandwidth("0").is_err());
        assert!(parse_bandwidth("fast").is_err());
        assert!(parse_bandwidth("99999999999T").is_err());
    }
}
