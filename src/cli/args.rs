//! Command-line arguments: the modern subcommands (clap) and the shared transfer options that
//! the original client's flags map onto.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::path_select::{PathFilterArgs, PathSelectArgs};
use crate::lanes::{PathPolicy, Preference};

#[derive(Parser, Debug)]
#[command(
    name = "bittorrent-over-scion",
    version,
    about = "BitTorrent over QUIC/SCION (multipath) — seeder and leecher",
    long_about = "BitTorrent over QUIC/SCION (multipath) — seeder and leecher.\n\n\
The original client's flags are accepted too, e.g.\n  \
bittorrent-over-scion -inPath=x.torrent -seed=true -file=x.bin -local=\"1-ff00:0:112,[127.0.0.1]:43000\"\n  \
bittorrent-over-scion -inPath=x.torrent -outPath=out.bin -peer=\"1-ff00:0:112,[127.0.0.1]:43000\" -seed=false\n\n\
Original flags: -inPath .torrent file; -file source data (seeder); -seed seed if true; -local own SCION address \
ISD-AS,[IP]:Port; -peer remote SCION address (several separated by ';'); -outPath output (leecher); \
-logLevel DEBUG|INFO|WARN|ERROR; -numPaths max paths per peer (default: all disjoint paths, up to 8); \
-printMetrics print the summary; -exportMetricsTo FILE.csv per-path rows; -enableDht runs the DHT over SCION \
(-dhtPort, default a free port of the AS's range; -dhtBootstrapAddr ISD-AS,[IP]:port, repeatable; also the torrent's nodes); \
-dialBackStartPort: accepted for compatibility, unused \
(lanes are opened by the leecher, no dial-back).\n\n\
Exit codes: 0 ok, 1 other error, 2 bad usage or address, 3 bad torrent, 4 peer unreachable or no path, \
5 storage error (disk full, permissions), 6 SCION daemon unreachable."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Download a torrent from SCION peers.
    Download(TransferCli),
    /// Seed a torrent over SCION.
    Seed(TransferCli),
    /// Make a .torrent from a file or directory.
    Create(CreateArgs),
    /// Print a torrent's contents.
    Info {
        /// The .torrent file.
        torrent: PathBuf,
    },
    /// List the SCION paths to a destination AS.
    Paths {
        /// Destination ISD-AS, e.g. 1-ff00:0:112.
        destination: String,
        #[command(flatten)]
        scion: ScionOpts,
        /// Ask the daemon to refresh its paths.
        #[arg(long)]
        refresh: bool,
        /// Only the paths these rules allow (as for downloads).
        #[arg(long, value_parser = clap::value_parser!(PathPolicy))]
        path_policy: Option<PathPolicy>,
        #[command(flatten)]
        filter: PathFilterArgs,
    },
    /// Bandwidth test over SCION: ours over QUIC, or scion-apps' bwtester protocol.
    Bwtest(BwtestArgs),
    /// Run an in-memory BitTorrent tracker (HTTP and UDP/BEP 15; IP and SCION peers).
    Tracker(TrackerArgs),
    /// Run many torrents in one long-lived process, driven through an HTTP API.
    Daemon(DaemonArgs),
    /// Run a bare DHT node over SCION (a bootstrap node for an AS): it answers and routes, and
    /// looks up nothing itself.
    DhtNode(DhtNodeArgs),
    #[command(flatten)]
    Remote(RemoteCommand),
}

#[derive(Args, Debug, Clone)]
pub struct ScionOpts {
    /// SCION daemon gRPC address [env: SCION_DAEMON_ADDRESS, default 127.0.0.1:30255].
    #[arg(long)]
    pub sciond: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct TransferCli {
    /// The .torrent file, or (download) a magnet link: its metadata is fetched from its peers
    /// first.
    #[arg(long, short = 't')]
    pub torrent: PathBuf,
    /// Write the metadata fetched for a magnet link as a .torrent file.
    #[arg(long, value_name = "FILE")]
    pub save_torrent: Option<PathBuf>,
    /// Where the data is (seed) or goes (download): the file for a single-file torrent, the
    /// directory for a multi-file torrent.
    #[arg(long, short = 'o')]
    pub path: PathBuf,
    /// Remote peer, SCION `ISD-AS,[IP]:Port` (QUIC over SCION) or `IP:Port` / `[IPv6]:Port`
    /// (BitTorrent over TCP); repeatable.
    #[arg(long = "peer")]
    pub peers: Vec<String>,
    /// Own SCION address `ISD-AS,[IP]:Port` (default: the daemon's AS, 127.0.0.1, a free port).
    #[arg(long)]
    pub local: Option<String>,
    /// Where to accept plain BitTorrent over TCP, `IP:Port` (default: the SCION socket's IP and
    /// port number, or a free port; 127.0.0.1 and a free port when SCION is off).
    #[arg(long)]
    pub tcp_listen: Option<String>,
    /// Send a keep-alive to a TCP peer after this many seconds without sending [default: 90].
    #[arg(long, value_name = "SECS")]
    pub keepalive: Option<f64>,
    /// Drop a TCP peer that sent nothing for this many seconds [default: 180].
    #[arg(long, value_name = "SECS")]
    pub peer_timeout: Option<f64>,
    /// MSE/PE encryption of BitTorrent over TCP: disabled, enabled (accept both, dial
    /// encrypted first and plain if that fails) or required (RC4 only, both ways)
    /// [default: enabled].
    #[arg(long, value_name = "POLICY", value_parser = clap::value_parser!(bt_mse::Policy))]
    pub encryption: Option<bt_mse::Policy>,
    /// Also trust the CA certificates in this PEM file for https:// trackers (a private CA);
    /// repeatable. The system's roots and webpki's are always trusted.
    #[arg(long = "tracker-ca", value_name = "FILE")]
    pub tracker_ca: Vec<PathBuf>,
    /// Local Service Discovery (BEP 14): announce the torrent on the local network and take
    /// the peers announced there, on --tcp-listen's interface(s) (see `daemon --help`).
    #[arg(long, requires = "tcp_listen")]
    pub lsd: bool,
    #[command(flatten)]
    pub port_mapping: super::portmap::PortMapArgs,
    /// Maximum paths (lanes) per peer (default: all link-disjoint paths, up to 8).
    #[arg(long)]
    pub num_paths: Option<usize>,
    /// Which paths lanes may use, e.g. "deny=2; max-hops=4; min-mtu=1280" (rules: deny=ISD|ISD-AS,
    /// allow=ISD|ISD-AS, max-hops=N, min-mtu=N).
    #[arg(long, value_parser = clap::value_parser!(PathPolicy))]
    pub path_policy: Option<PathPolicy>,
    #[command(flatten)]
    pub select: PathSelectArgs,
    /// Print the end summary.
    #[arg(long)]
    pub print_metrics: bool,
    /// Write per-path metrics as CSV.
    #[arg(long)]
    pub export_metrics: Option<PathBuf>,
    /// Write the metrics as JSON.
    #[arg(long)]
    pub metrics_json: Option<PathBuf>,
    /// Keep seeding after the download completes.
    #[arg(long)]
    pub keep_seeding: bool,
    /// Seed on this many io_uring runtimes (threads), each with its own socket on the SCION
    /// port; QUIC connections are spread over them by connection id [default: 1].
    #[arg(long, value_name = "N")]
    pub runtimes: Option<u8>,
    /// Log level: DEBUG, INFO, WARN, ERROR.
    #[arg(long, default_value = "INFO")]
    pub log_level: String,
    #[command(flatten)]
    pub scion: ScionOpts,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// File or directory to make a torrent of.
    pub source: PathBuf,
    /// Output .torrent path.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Piece length in bytes (power of two, 16 KiB..256 MiB; default from the size).
    #[arg(long)]
    pub piece_length: Option<u32>,
    /// Tracker URL (repeatable; more than one makes an announce-list).
    #[arg(long = "announce")]
    pub announce: Vec<String>,
    /// Set the private flag (BEP 27).
    #[arg(long)]
    pub private: bool,
    #[arg(long)]
    pub comment: Option<String>,
}

#[derive(Args, Debug, Clone)]
#[command(after_help = "Two protocols:\n  \
quic (ours, the default with --server and --peer): goodput and latency under load, one QUIC \
connection per path.\n    bwtest --server [--local ADDR]\n    bwtest --peer ADDR [--duration 5] [--paths 3]\n  \
bwtester (scion-apps' bwtestclient/bwtestserver, the default with -s): interoperates with their \
servers (e.g. SCIONLab's) and clients.\n    bwtest -s 1-ff00:0:112,[127.0.0.1]:40002 [-cs 3,1000,30,80kbps] [-sc ...] [--local ADDR]\n    \
bwtest --server --protocol bwtester [--listen ADDR] [--max-bandwidth 1Gbps]\n\n\
bwtester parameters (-cs client->server, -sc server->client): duration (s),packet size (bytes),packets,bandwidth \
(N[k|M|G|T]bps); ? is computed from the others (with several ?, all but the last take defaults); \
a bandwidth alone (-cs 10Mbps) means ?,?,?,10Mbps; only one of -cs/-sc given: the other takes the \
same. Go-style single-dash flags (-cs, -sc, -local, -listen) work as in scion-apps.")]
pub struct BwtestArgs {
    /// Run the server side.
    #[arg(long, visible_alias = "serve", conflicts_with_all = ["peer", "server_addr"])]
    pub server: bool,
    /// Server address `ISD-AS,[IP]:Port` (client side; QUIC unless --protocol bwtester).
    #[arg(long)]
    pub peer: Option<String>,
    /// bwtester server's control address `ISD-AS,[IP]:Port` (bwtestclient's -s; its data port
    /// is one more).
    #[arg(
        short = 's',
        long = "server-addr",
        value_name = "ADDR",
        conflicts_with = "peer"
    )]
    pub server_addr: Option<String>,
    /// quic or bwtester [default: bwtester with -s, else quic].
    #[arg(long, value_parser = ["quic", "bwtester"])]
    pub protocol: Option<String>,
    /// Own SCION address (server: where to listen; `--listen` too). bwtester also takes
    /// `IP:Port` and `:Port` as scion-apps does. bwtester server default: port 40002 if the
    /// AS delivers there, else a free port pair inside the AS's dispatched range.
    #[arg(long, visible_alias = "listen")]
    pub local: Option<String>,
    /// Seconds to measure (quic).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Paths to use at once, one QUIC connection each (quic).
    #[arg(long)]
    pub paths: Option<usize>,
    /// bwtester client->server parameters (default 3,1000,30,80kbps).
    #[arg(long = "cs", value_name = "PARAMS", allow_hyphen_values = true)]
    pub cs: Option<String>,
    /// bwtester server->client parameters (default 3,1000,30,80kbps).
    #[arg(long = "sc", value_name = "PARAMS", allow_hyphen_values = true)]
    pub sc: Option<String>,
    /// bwtester server: refuse tests asking more than this per direction, N[k|M|G|T]bps.
    #[arg(long, value_name = "BW")]
    pub max_bandwidth: Option<String>,
    /// Which paths the client may use, as for downloads (deny=, allow=, max-hops=, min-mtu=).
    #[arg(long, value_parser = clap::value_parser!(PathPolicy))]
    pub path_policy: Option<PathPolicy>,
    #[command(flatten)]
    pub select: PathSelectArgs,
    #[command(flatten)]
    pub scion: ScionOpts,
}

/// scion-apps' bwtester tools take Go flags: a single dash for long names (`-cs 3,1000,?,8Mbps`,
/// `-sc=...`, `-local`, `-listen`). In the arguments of `bwtest`, those become clap's
/// double-dash long options; everything else is left alone.
pub fn go_style_bwtest_flags(argv: Vec<String>) -> Vec<String> {
    const GO_FLAGS: [&str; 6] = ["cs", "sc", "local", "listen", "sequence", "preference"];
    let Some(pos) = argv.iter().position(|a| a == "bwtest") else {
        return argv;
    };
    // Only when `bwtest` is the subcommand (the first argument that is not an option).
    if argv[1..pos].iter().any(|a| !a.starts_with('-')) {
        return argv;
    }
    let mut out = argv[..=pos].to_vec();
    // A value of a converted flag (`-cs -1,...` must not be looked at as a flag).
    let mut value_next = false;
    let mut rest = argv[pos + 1..].iter();
    for a in rest.by_ref() {
        if a == "--" {
            out.push(a.clone());
            break;
        }
        let go_flag = a
            .strip_prefix('-')
            .filter(|r| !value_next && !r.starts_with('-'))
            .filter(|r| GO_FLAGS.contains(&r.split('=').next().unwrap_or(r)));
        match go_flag {
            Some(_) => {
                value_next = !a.contains('=');
                out.push(format!("-{a}"));
            }
            None => {
                value_next = false;
                out.push(a.clone());
            }
        }
    }
    out.extend(rest.cloned());
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Download,
    Seed,
}

/// Everything a seed or download needs, from either command line.
#[derive(Debug, Clone, Default)]
pub struct TransferArgs {
    pub mode: Mode,
    pub torrent: Option<PathBuf>,
    /// Seeder's data (`-file`).
    pub file: Option<PathBuf>,
    /// Leecher's output (`-outPath`).
    pub out: Option<PathBuf>,
    pub peers: Vec<String>,
    pub local: Option<String>,
    pub tcp_listen: Option<String>,
    /// Keep-alive interval for TCP peers, seconds.
    pub keepalive: Option<f64>,
    /// Silent-peer timeout for TCP peers, seconds.
    pub peer_timeout: Option<f64>,
    /// MSE/PE policy for TCP peers (`--encryption`); None: the default.
    pub encryption: Option<bt_mse::Policy>,
    /// `--tracker-ca` files (extra roots for https:// trackers).
    pub tracker_ca: Vec<PathBuf>,
    /// `--lsd`: Local Service Discovery on --tcp-listen's interface(s).
    pub lsd: bool,
    /// `--port-mapping` and its options (no DHT over IP here: the TCP port only).
    pub port_mapping: super::portmap::PortMapArgs,
    pub num_paths: Option<usize>,
    pub print_metrics: bool,
    pub export_metrics: Option<PathBuf>,
    pub metrics_json: Option<PathBuf>,
    pub enable_dht: bool,
    pub keep_seeding: bool,
    /// io_uring runtimes for seeding (`--runtimes`).
    pub runtimes: Option<u8>,
    pub log_level: String,
    pub sciond: Option<String>,
    /// `--path-policy` with `--sequence` and `--acl` added.
    pub path_policy: PathPolicy,
    pub preference: Preference,
    /// Choose the path to each SCION peer's AS by hand (`-i`).
    pub interactive: bool,
    /// Where to write a magnet link's fetched metadata.
    pub save_torrent: Option<PathBuf>,
    /// The DHT over SCION's port (`-dhtPort`; 0 or none: a free port of the AS's range).
    pub dht_port: Option<u16>,
    /// `-dhtBootstrapAddr` (repeatable), `ISD-AS,[IP]:port`.
    pub dht_bootstrap: Vec<String>,
}

impl TransferArgs {
    pub fn from_cli(mode: Mode, c: TransferCli) -> Self {
        let (file, out) = match mode {
            Mode::Seed => (Some(c.path), None),
            Mode::Download => (None, Some(c.path)),
        };
        Self {
            mode,
            torrent: Some(c.torrent),
            file,
            out,
            peers: c.peers,
            local: c.local,
            tcp_listen: c.tcp_listen,
            keepalive: c.keepalive,
            peer_timeout: c.peer_timeout,
            encryption: c.encryption,
            tracker_ca: c.tracker_ca,
            lsd: c.lsd,
            port_mapping: c.port_mapping,
            num_paths: c.num_paths,
            print_metrics: c.print_metrics,
            export_metrics: c.export_metrics,
            metrics_json: c.metrics_json,
            enable_dht: false,
            keep_seeding: c.keep_seeding,
            runtimes: c.runtimes,
            log_level: c.log_level,
            sciond: c.scion.sciond,
            path_policy: c.select.filter.policy(c.path_policy.unwrap_or_default()),
            preference: c.select.filter.preference(),
            interactive: c.select.interactive,
            save_torrent: c.save_torrent,
            dht_port: None,
            dht_bootstrap: Vec::new(),
        }
    }

    /// Whether the torrent is given as a magnet link.
    pub fn torrent_is_magnet(&self) -> bool {
        self.torrent
            .as_ref()
            .and_then(|p| p.to_str())
            .is_some_and(|s| s.starts_with("magnet:"))
    }
}

#[derive(Args, Debug, Clone)]
pub struct DhtNodeArgs {
    /// UDP port (0: a free one of the AS's dispatched range); the original client uses 7000.
    #[arg(long, default_value_t = 7000)]
    pub port: u16,
    /// Host IP to bind [default: 127.0.0.1].
    #[arg(long)]
    pub host: Option<std::net::IpAddr>,
    /// Another node to join through, `ISD-AS,[IP]:Port` (repeatable).
    #[arg(long = "bootstrap", value_name = "ADDR")]
    pub bootstrap: Vec<String>,
    /// Keep the routing table in this file between runs.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    #[command(flatten)]
    pub scion: ScionOpts,
}

#[derive(Args, Debug, Clone)]
pub struct TrackerArgs {
    /// Serve HTTP announces/scrapes on this address, e.g. 0.0.0.0:6969.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,
    /// Serve UDP (BEP 15) on this address, e.g. 0.0.0.0:6969.
    #[arg(long, value_name = "ADDR")]
    pub udp: Option<std::net::SocketAddr>,
    /// Announce interval told to clients; peers expire after 1.5 intervals.
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    pub interval: u64,
    /// Only track the info hashes listed in FILE (40 hex digits per line, # comments).
    #[arg(long, value_name = "FILE")]
    pub allow: Option<PathBuf>,
    /// Most peers returned per announce.
    #[arg(long, default_value_t = 200)]
    pub numwant_max: usize,
    /// Entries one host (IP address, or ISD-AS and host) may hold in one swarm; more from the
    /// same host are answered but not recorded (a flood of fake ports cannot fill a swarm).
    #[arg(long, default_value_t = bt_tracker::server::DEFAULT_MAX_PEERS_PER_HOST as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_peers_per_host: u64,
    /// UDP worker threads (one SO_REUSEPORT socket each) [default: number of CPUs].
    #[arg(long)]
    pub udp_threads: Option<usize>,
    /// Serve HTTP over QUIC/SCION on this UDP port in the SCION daemon's AS (0: a free port of
    /// the AS's dispatched range). Clients use http://[ISD-AS,IP]:PORT/announce.
    #[arg(long, value_name = "PORT")]
    pub scion: Option<u16>,
    /// Host IP the SCION side binds [default: 127.0.0.1].
    #[arg(long, value_name = "IP")]
    pub scion_host: Option<std::net::IpAddr>,
    #[command(flatten)]
    pub sciond: ScionOpts,
}

#[derive(Args, Debug, Clone)]
pub struct DaemonArgs {
    /// Where state lives (torrent list, .torrent files, fast-resume data)
    /// [default: $XDG_DATA_HOME/bittorrent-over-scion, else ~/.local/share/bittorrent-over-scion].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Everything downloaded goes under this directory; API callers cannot name a path
    /// outside it [default: <data-dir>/downloads].
    #[arg(long)]
    pub download_root: Option<PathBuf>,
    /// A watch folder: .torrent and .magnet files dropped here are added (their data under
    /// the download root), then moved into DIR/.added/ (or DIR/.invalid/ when they cannot be).
    #[arg(long, value_name = "DIR")]
    pub watch_dir: Option<PathBuf>,
    /// Address of the HTTP API; a non-loopback address needs --http-token.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub http: std::net::SocketAddr,
    /// Require `Authorization: Bearer TOKEN` on every API call.
    #[arg(long, env = "BTS_HTTP_TOKEN", hide_env_values = true)]
    pub http_token: Option<String>,
    /// Own SCION address `ISD-AS,[IP]:Port`.
    #[arg(long)]
    pub local: Option<String>,
    /// Where to accept BitTorrent over TCP, `IP:Port`.
    #[arg(long)]
    pub tcp_listen: Option<String>,
    /// MSE/PE encryption of BitTorrent over TCP: disabled, enabled or required (see
    /// `download --help`); overrides the saved setting, which PUT /api/v1/settings changes
    /// [default: the saved setting, else enabled].
    #[arg(long, value_name = "POLICY", value_parser = clap::value_parser!(bt_mse::Policy))]
    pub encryption: Option<bt_mse::Policy>,
    /// Also trust the CA certificates in this PEM file for https:// trackers (a private CA);
    /// repeatable. The system's roots and webpki's are always trusted.
    #[arg(long = "tracker-ca", value_name = "FILE")]
    pub tracker_ca: Vec<PathBuf>,
    /// Run a mainline DHT node (BEP 5, over UDP/IP) on this address, e.g. 0.0.0.0:6881; its
    /// routing table is kept in the data dir.
    #[arg(long, value_name = "ADDR")]
    pub dht: Option<std::net::SocketAddr>,
    /// A DHT node to ask while the routing table is empty, `IP:Port` (repeatable).
    #[arg(long = "dht-bootstrap", value_name = "ADDR", requires = "dht")]
    pub dht_bootstrap: Vec<std::net::SocketAddr>,
    /// Run a DHT node over SCION (the original client's DHT) on this UDP port of --local's host
    /// (0: a free port of the AS's range); its routing table is kept in the data dir.
    #[arg(long, value_name = "PORT")]
    pub dht_scion: Option<u16>,
    /// A DHT node over SCION to ask while the table is empty, `ISD-AS,[IP]:Port` (repeatable).
    #[arg(
        long = "dht-scion-bootstrap",
        value_name = "ADDR",
        requires = "dht_scion"
    )]
    pub dht_scion_bootstrap: Vec<String>,
    /// Local Service Discovery (BEP 14): announce public torrents to peers on the local
    /// network (multicast 239.192.152.143:6771, [ff15::efc0:988f]:6771) and take theirs; on
    /// --tcp-listen's interface, or on every interface when it listens on 0.0.0.0 (IPv4) or
    /// [::] (IPv4 and IPv6).
    #[arg(long, requires = "tcp_listen")]
    pub lsd: bool,
    #[command(flatten)]
    pub port_mapping: super::portmap::PortMapArgs,
    /// io_uring runtimes (threads), each with its own socket on the SCION port: QUIC
    /// connections are spread over them by connection id; runtimes past the first serve the
    /// complete torrents (see README, "Several runtimes on one port").
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=i64::from(crate::net::steering::MAX_RUNTIMES)))]
    pub runtimes: u8,
    /// Most torrent data files open at once, over all torrents (each open file is a map, and
    /// a descriptor while it is written); the least recently used are closed past it
    /// [default: 512, or a quarter of the descriptor limit if that is lower].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(crate::storage::pool::MIN_OPEN_FILES as i64..))]
    pub max_open_files: Option<u32>,
    /// Log level: DEBUG, INFO, WARN, ERROR.
    #[arg(long, default_value = "INFO")]
    pub log_level: String,
    #[command(flatten)]
    pub scion: ScionOpts,
}

/// How the daemon commands reach a running daemon.
#[derive(Args, Debug, Clone)]
pub struct ApiOpts {
    /// The daemon's API.
    #[arg(long, env = "BTS_API", default_value = "http://127.0.0.1:7878")]
    pub api: String,
    /// The daemon's --http-token.
    #[arg(long, env = "BTS_HTTP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A daemon torrent's own path rules, as text: the daemon checks them (a bad one is refused
/// with the rule and the problem named).
#[derive(Args, Debug, Clone, Default)]
pub struct PathRulesArgs {
    /// scionproto path sequence its lanes' paths must match, e.g. "0 1-ff00:0:120 0".
    #[arg(long, value_name = "SEQUENCE")]
    pub sequence: Option<String>,
    /// scionproto ACL, entries separated by ';', e.g. "- 1-ff00:0:130; +".
    #[arg(long, value_name = "ACL", allow_hyphen_values = true)]
    pub acl: Option<String>,
    /// Path policy rules as --path-policy, e.g. "max-hops=4".
    #[arg(long, value_name = "RULES")]
    pub path_policy: Option<String>,
    /// Order of the candidate paths: comma-separated latency, bandwidth, hops, mtu.
    #[arg(long, value_name = "ORDER")]
    pub preference: Option<String>,
}

/// Commands for a running daemon (`bittorrent-over-scion daemon`), through its HTTP API.
#[derive(Subcommand, Debug, Clone)]
pub enum RemoteCommand {
    /// Add a torrent to the daemon (a .torrent file, read here and uploaded, or a magnet link).
    Add {
        /// A .torrent file or a magnet link.
        torrent: String,
        /// Output directory, relative to the daemon's download root [default: its category's
        /// save path, else the root].
        #[arg(long)]
        out_dir: Option<String>,
        /// Its category (one that exists).
        #[arg(long)]
        category: Option<String>,
        /// A tag; repeatable.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Add without starting.
        #[arg(long)]
        paused: bool,
        /// A peer to dial (SCION `ISD-AS,[IP]:Port` or `IP:Port`); repeatable.
        #[arg(long = "peer")]
        peers: Vec<String>,
        #[command(flatten)]
        rules: PathRulesArgs,
        #[command(flatten)]
        api: ApiOpts,
    },
    /// Replace a torrent's path rules while it runs (a rule not given is removed); its lanes
    /// move to the paths the new rules allow.
    PathRules {
        /// Info hash or a unique prefix of it.
        torrent: String,
        #[command(flatten)]
        rules: PathRulesArgs,
        #[command(flatten)]
        api: ApiOpts,
    },
    /// List the daemon's torrents.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        api: ApiOpts,
    },
    /// Show one torrent: files, peers, lanes.
    Show {
        /// Info hash or a unique prefix of it.
        torrent: String,
        #[command(flatten)]
        api: ApiOpts,
    },
    /// Pause a torrent.
    Pause {
        /// Info hash or a unique prefix of it.
        torrent: String,
        #[command(flatten)]
        api: ApiOpts,
    },
    /// Resume a paused torrent.
    Resume {
        /// Info hash or a unique prefix of it.
        torrent: String,
        #[command(flatten)]
        api: ApiOpts,
    },
    /// Start (resume) a torrent; with --force, run it regardless of the queue's limits
    /// (--force=false puts it back under them).
    Start {
        /// Info hash or a unique prefix of it.
        torrent: String,
        #[arg(
            long,
            value_name = "BOOL",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "true"
        )]
        force: Option<bool>,
        #[command(flatten)]
        api: ApiOpts,
    },
    /// Move a torrent in the queue: top, up, down or bottom.
    Queue {
        /// Info hash or a unique prefix of it.
        torrent: String,
        #[arg(value_parser = ["top", "up", "down", "bottom"])]
        to: String,
        #[command(flatten)]
        api: ApiOpts,
    },
    /// Hash all of a torrent's data again (state `checking`); pieces that no longer verify
    /// are downloaded again.
    Recheck {
        /// Info hash or a unique prefix of it.
        torrent: String,
        #[command(flatten)]
        api: ApiOpts,
    },
    /// Categories. Without NAME: list them (with --torrent: take that torrent out of its
    /// category). With NAME: create it or set its save path; with --delete, delete it; with
    /// --torrent, put that torrent in it (its data does not move).
    Category {
        name: Option<String>,
        /// Where torrents added into it go, relative to the daemon's download root [default:
        /// the root].
        #[arg(long, value_name = "PATH", conflicts_with_all = ["delete", "torrent"])]
        save_path: Option<String>,
        #[arg(long, requires = "name", conflicts_with = "torrent")]
        delete: bool,
        /// Info hash (or a unique prefix, or the name) of a torrent to put in it.
        #[arg(long, value_name = "TORRENT")]
        torrent: Option<String>,
        #[command(flatten)]
        api: ApiOpts,
    },
    /// Move a torrent's data to another directory of the daemon's download root (while it
    /// runs; across filesystems it is copied and verified first).
    Move {
        /// Info hash or a unique prefix of it.
        torrent: String,
        /// The new directory, relative to the daemon's download root.
        out_dir: String,
        #[command(flatten)]
        api: ApiOpts,
    },
    /// Add tags to a torrent (with --remove: remove them; with --set: replace them all).
    Tag {
        /// Info hash or a unique prefix of it.
        torrent: String,
        tags: Vec<String>,
        #[arg(long, conflicts_with = "set")]
        remove: bool,
        #[arg(long)]
        set: bool,
        #[command(flatten)]
        api: ApiOpts,
    },
    /// Remove a torrent from the daemon.
    #[command(visible_alias = "rm")]
    Remove {
        /// Info hash or a unique prefix of it.
        torrent: String,
        /// Delete the downloaded data too.
        #[arg(long)]
        delete_data: bool,
        #[command(flatten)]
        api: ApiOpts,
    },
    /// Show the daemon's global settings; with --encryption, change its encryption policy
    /// first.
    Settings {
        /// MSE/PE policy for TCP peers: disabled, enabled or required (for connections made
        /// or accepted from now on; the daemon saves it).
        #[arg(long, value_name = "POLICY", value_parser = clap::value_parser!(bt_mse::Policy))]
        encryption: Option<bt_mse::Policy>,
        #[command(flatten)]
        queue: QueueArgs,
        #[command(flatten)]
        api: ApiOpts,
    },
    /// Give a running torrent more peers to dial.
    AddPeer {
        /// Info hash or a unique prefix of it.
        torrent: String,
        /// SCION `ISD-AS,[IP]:Port` or `IP:Port`.
        #[arg(required = true)]
        peers: Vec<String>,
        #[command(flatten)]
        api: ApiOpts,
    },
    /// List a torrent's files: index, priority, size, progress, path.
    Files {
        /// Info hash or a unique prefix of it.
        torrent: String,
        #[command(flatten)]
        api: ApiOpts,
    },
    /// Set the priority of some of a torrent's files (indexes as `files` shows them); a
    /// skipped file is not downloaded. With --sequential / --first-last-piece, set those too.
    Prio {
        /// Info hash or a unique prefix of it.
        torrent: String,
        /// File indexes.
        indexes: Vec<usize>,
        #[command(flatten)]
        level: PrioLevel,
        /// Fetch pieces in order (true) or rarest first (false).
        #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
        sequential: Option<bool>,
        /// Fetch each wanted file's first and last piece first.
        #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
        first_last_piece: Option<bool>,
        #[command(flatten)]
        api: ApiOpts,
    },
}

/// One file priority for `prio`.
#[derive(Args, Debug, Clone, Default)]
#[group(required = false, multiple = false)]
pub struct PrioLevel {
    /// Do not download these files (not created on disk).
    #[arg(long)]
    pub skip: bool,
    #[arg(long)]
    pub low: bool,
    #[arg(long)]
    pub normal: bool,
    #[arg(long)]
    pub high: bool,
}

/// The queue settings `settings` can change (each left out stays).
#[derive(Args, Debug, Clone, Default)]
pub struct QueueArgs {
    /// Turn queueing on or off.
    #[arg(long, value_name = "BOOL")]
    pub queueing: Option<bool>,
    /// Downloads running at once while queueing is on (`none`: no limit).
    #[arg(long, value_name = "N|none", value_parser = parse_slots)]
    pub max_active_downloads: Option<Slots>,
    /// Seeds running at once while queueing is on (`none`: no limit).
    #[arg(long, value_name = "N|none", value_parser = parse_slots)]
    pub max_active_seeds: Option<Slots>,
    /// A download with no payload for this many seconds holds no slot (`none`: it does).
    #[arg(long, value_name = "SECS|none", value_parser = parse_slots)]
    pub stalled_after_secs: Option<Slots>,
}

/// A number, or no limit (`none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots(pub Option<u64>);

fn parse_slots(s: &str) -> Result<Slots, String> {
    match s {
        "none" => Ok(Slots(None)),
        n => n
            .parse()
            .map(|n| Slots(Some(n)))
            .map_err(|_| format!("{n:?} is neither a number nor none")),
    }
}
