//! `bittorrent-over-scion daemon`: one long-lived process running many torrents. The HTTP API
//! runs on a thread of its own; the client's event loop runs on this (the main) thread;
//! SIGINT/SIGTERM become `Command::Shutdown`, after which the process exits 0.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::api::{self, ApiConfig, ApiError};
use crate::cli::args::DaemonArgs;
use crate::cli::exit::{self, CliError};
use crate::client::control::{self, ClientHandle, ClientSide, Command};
use crate::client::ClientConfig;
use crate::store::{ClientStore, Store};

const APP_DIR: &str = "bittorrent-over-scion";

/// What the daemon was started with, for the client.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub data_dir: PathBuf,
    pub http: SocketAddr,
    /// Own SCION address `ISD-AS,[IP]:Port`.
    pub local: Option<String>,
    /// Where to accept BitTorrent over TCP, `IP:Port`.
    pub tcp_listen: Option<String>,
    /// SCION daemon gRPC address.
    pub sciond: Option<String>,
    /// Our DHT nodes' UDP ports, if they run (sent to peers, BEP 5).
    pub dht_port: Option<u16>,
    pub dht_scion_port: Option<u16>,
    /// Where the client hands DHT nodes named by peers (BEP 5 `port`).
    pub dht_ip_nodes: Option<crate::discovery::dht::NodeSender<SocketAddr>>,
    pub dht_scion_nodes: Option<crate::discovery::dht::NodeSender<crate::scion::ScionAddr>>,
    /// io_uring runtimes on the SCION port (`--runtimes`).
    pub runtimes: u8,
    /// `--encryption`, if given (else the saved setting).
    pub encryption: Option<bt_mse::Policy>,
}

/// `$XDG_DATA_HOME/bittorrent-over-scion`, else `~/.local/share/bittorrent-over-scion`.
pub fn default_data_dir() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").and_then(absolute) {
        return Some(xdg.join(APP_DIR));
    }
    let home = std::env::var_os("HOME").and_then(absolute)?;
    Some(home.join(".local/share").join(APP_DIR))
}

pub fn run(args: DaemonArgs) -> Result<(), CliError> {
    if let Some(n) = args.max_open_files {
        crate::storage::pool::set_max_open_files(n as usize);
    }
    let data_dir = match args.data_dir.clone().or_else(default_data_dir) {
        Some(d) => d,
        None => return Err(exit::usage("no data directory: set --data-dir (or HOME)")),
    };
    let tracker_tls = crate::discovery::tracker_tls(&args.tracker_ca)?;
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| exit::storage(format!("cannot create {}: {e}", data_dir.display())))?;
    let store = Store::open(&data_dir).map_err(|e| exit::storage(e.to_string()))?;
    let download_root = args
        .download_root
        .clone()
        .unwrap_or_else(|| data_dir.join("downloads"));

    let (handle, side) = control::channel();
    let mut api_cfg = ApiConfig::new(args.http, download_root.clone(), data_dir.clone());
    api_cfg.token = args.http_token.clone();
    let server = api::spawn(api_cfg, handle.clone()).map_err(|e| match e {
        ApiError::InsecureListen(_) | ApiError::EmptyToken => exit::usage(e.to_string()),
        ApiError::DownloadRoot(..) => exit::storage(e.to_string()),
        ApiError::Bind(..) | ApiError::Runtime(_) => exit::other(e.to_string()),
    })?;
    shutdown_on_signals(handle.clone())
        .map_err(|e| exit::other(format!("signal handlers: {e}")))?;

    let mut cfg = DaemonConfig {
        data_dir,
        http: server.local_addr(),
        local: args.local,
        tcp_listen: args.tcp_listen,
        sciond: args.scion.sciond,
        dht_port: None,
        dht_scion_port: None,
        dht_ip_nodes: None,
        dht_scion_nodes: None,
        runtimes: args.runtimes,
        encryption: args.encryption,
    };
    announce_ready_when_loaded(&handle, &cfg);

    let trackers = crate::discovery::spawn_trackers(handle.clone(), tracker_tls)
        .map_err(|e| exit::other(format!("cannot start the tracker front end: {e}")))?;
    let dht = match args.dht {
        Some(listen) => {
            let opts = crate::discovery::DhtOptions {
                listen,
                bootstrap: args.dht_bootstrap.clone(),
                state_file: Some(cfg.data_dir.join("dht.dat")),
            };
            let (thread, addr, nodes) = crate::discovery::spawn_dht(handle.clone(), opts)
                .map_err(|e| exit::usage(format!("cannot run the DHT on {listen}: {e}")))?;
            tracing::info!(%addr, "DHT over UDP/IP");
            cfg.dht_port = Some(addr.port());
            cfg.dht_ip_nodes = Some(nodes);
            Some(thread)
        }
        None => None,
    };
    let dht_scion = spawn_scion_dht(args.dht_scion, &args.dht_scion_bootstrap, &mut cfg, &handle)?;
    let lsd = crate::cli::single::start_lsd(args.lsd, cfg.tcp_listen.as_deref(), &handle)?;
    let portmap = crate::cli::portmap::start(&args.port_mapping, cfg.dht_port, &handle)?;
    let watch = match &args.watch_dir {
        Some(dir) => Some(
            crate::watch::spawn(dir.clone(), download_root, handle.clone())
                .map_err(|e| exit::storage(format!("watch folder {}: {e}", dir.display())))?,
        ),
        None => None,
    };
    let result = run_client(&cfg, store, side);
    server.stop();
    // The port-mapping thread removes its mappings from the gateway before it ends.
    for t in dht
        .into_iter()
        .chain(dht_scion)
        .chain(lsd)
        .chain(portmap)
        .chain(watch)
    {
        if t.join().is_err() {
            tracing::warn!("a discovery front end panicked");
        }
    }
    // The client is gone; the tracker front end tells the trackers `stopped` and ends.
    if trackers.join().is_err() {
        tracing::warn!("the tracker front end panicked");
    }
    tracing::info!("daemon stopped");
    result
}

/// Starts the DHT over SCION if asked for (`--dht-scion`), on --local's host.
fn spawn_scion_dht(
    port: Option<u16>,
    bootstrap: &[String],
    cfg: &mut DaemonConfig,
    handle: &ClientHandle,
) -> Result<Option<std::thread::JoinHandle<()>>, CliError> {
    let Some(port) = port else {
        return Ok(None);
    };
    let sciond = crate::cli::run::daemon_address(&cfg.sciond);
    let bootstrap = bootstrap
        .iter()
        .map(|b| {
            b.parse::<crate::scion::ScionAddr>()
                .map_err(|e| exit::usage(format!("--dht-scion-bootstrap {b}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let host = match cfg.local.as_deref() {
        Some(l) => Some(crate::cli::run::parse_local(l, &sciond)?.host),
        None => None,
    };
    let opts = crate::discovery::ScionDhtOptions {
        sciond,
        host,
        port,
        bootstrap,
        state_file: Some(cfg.data_dir.join("dht-scion.dat")),
    };
    let (thread, addr, nodes) = crate::discovery::spawn_scion_dht(handle.clone(), opts)
        .map_err(|e| exit::daemon(format!("cannot run the DHT over SCION: {e}")))?;
    tracing::info!(%addr, "DHT over SCION");
    cfg.dht_scion_nodes = Some(nodes);
    cfg.dht_scion_port = Some(addr.port);
    Ok(Some(thread))
}

/// Prints the ready line once the client published its first snapshot (sockets bound, saved
/// torrents loaded), so a script that waits for it never sees a known torrent missing.
fn announce_ready_when_loaded(handle: &ClientHandle, cfg: &DaemonConfig) {
    let mut snapshots = handle.subscribe();
    let line = format!(
        "daemon listening on http://{} (data dir {})",
        cfg.http,
        cfg.data_dir.display()
    );
    let spawned = std::thread::Builder::new()
        .name("bts-ready".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().build();
            if let Ok(rt) = rt {
                // An error means the client is gone (start-up failed): no ready line then.
                if rt.block_on(snapshots.changed()).is_ok() {
                    println!("{line}");
                    let _ = std::io::stdout().flush();
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the ready-line thread: {e}");
    }
}

/// Runs the engine on this thread until a `Shutdown` command (from a signal or the API).
fn run_client(cfg: &DaemonConfig, store: Store, side: ClientSide) -> Result<(), CliError> {
    let sciond = crate::cli::run::daemon_address(&cfg.sciond);
    let local = cfg
        .local
        .as_deref()
        .map(|s| crate::cli::run::parse_local(s, &sciond))
        .transpose()?;
    let tcp_listen = cfg
        .tcp_listen
        .as_deref()
        .map(crate::cli::run::parse_tcp_listen)
        .transpose()?;
    let mut config = ClientConfig::new(cfg.data_dir.clone());
    config.sciond = Some(sciond);
    config.local = local;
    config.tcp_listen = tcp_listen;
    config.store = Some(Box::new(ClientStore::new(store)));
    config.engine.dht_port = cfg.dht_port;
    config.engine.dht_scion_port = cfg.dht_scion_port;
    config.engine.dht_ip_nodes = cfg.dht_ip_nodes.clone();
    config.engine.dht_scion_nodes = cfg.dht_scion_nodes.clone();
    config.engine.encryption = cfg.encryption;
    config.runtimes = cfg.runtimes;
    crate::client::run(config, side).map_err(crate::cli::run::client_err)
}

/// SIGINT/SIGTERM become `Command::Shutdown`; a second signal while shutting down exits at
/// once. Registered before the daemon says it is ready, so no early signal is lost.
fn shutdown_on_signals(handle: ClientHandle) -> std::io::Result<()> {
    crate::cli::signals::on_first_signal(move || {
        // The reply is not awaited: the main thread ends when the client has stopped.
        let (reply, _) = tokio::sync::oneshot::channel();
        handle.notify(Command::Shutdown(reply));
    })
}
