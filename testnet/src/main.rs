//! `scion-testnet`: run a local SCION network, flip its links, show its paths.

use std::{io::Write, path::PathBuf};

use anyhow::Context;
use clap::{ArgGroup, Args, Parser, Subcommand};
use scion_testnet::{
    control_request, daemon, parse_ia, Backend, ControlRequest, StartOptions, Testnet,
    TestnetState, Topology,
};
use tracing_subscriber::EnvFilter;

/// A local SCION network on loopback: pocketscion (router mode, UDP underlay), or
/// scionproto's router, control service, daemon and dispatcher per AS.
#[derive(Parser, Debug)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the network and run until SIGINT/SIGTERM (the default command).
    Run(RunArgs),
    /// Take a link down or up in a running testnet.
    Link(LinkArgs),
    /// Stop or start again one AS's SCION daemon in a running testnet (scionproto backend).
    Daemon(DaemonArgs),
    /// Print the paths between two ASes, as the source AS's daemon returns them.
    Paths(PathsArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Topology file, or a builtin name (two-as, three-paths, three-paths-capped).
    #[arg(long)]
    topology: Option<String>,
    /// Where to write the state JSON (addresses of daemons, routers, control socket).
    #[arg(long)]
    state: Option<PathBuf>,
    /// What runs the network: pocketscion (simulator, default) or scionproto (its router,
    /// control service, daemon and dispatcher; binaries from $SCIONPROTO_BIN or PATH).
    #[arg(long, default_value = "pocketscion")]
    backend: Backend,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("direction").required(true).args(["down", "up"])))]
struct LinkArgs {
    /// State file of the running testnet.
    #[arg(long)]
    state: PathBuf,
    /// ISD-AS at one end of the link.
    #[arg(long = "as")]
    ia: String,
    /// Interface id of the link in that AS.
    #[arg(long)]
    interface: u16,
    /// Take the link down.
    #[arg(long)]
    down: bool,
    /// Bring the link up.
    #[arg(long)]
    up: bool,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("action").required(true).args(["stop", "start"])))]
struct DaemonArgs {
    /// State file of the running testnet.
    #[arg(long)]
    state: PathBuf,
    /// Stop (SIGKILL) the SCION daemon of this ISD-AS.
    #[arg(long, value_name = "IA")]
    stop: Option<String>,
    /// Start the SCION daemon of this ISD-AS again, on the same address; returns once it
    /// answers.
    #[arg(long, value_name = "IA")]
    start: Option<String>,
}

#[derive(Args, Debug)]
struct PathsArgs {
    /// State file of the running testnet.
    #[arg(long)]
    state: PathBuf,
    /// Source ISD-AS.
    src: String,
    /// Destination ISD-AS.
    dst: String,
}

fn main() {
    // pocketscion logs anyhow errors; with RUST_BACKTRACE set (as it often is) each would
    // carry a full backtrace. Keep panic backtraces, drop the library ones.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();

    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Run(args)) => run(args),
        None => run(cli.run),
        Some(Command::Link(args)) => link(args),
        Some(Command::Daemon(args)) => daemon_cmd(args),
        Some(Command::Paths(args)) => paths(args),
    };
    if let Err(e) = result {
        eprintln!("scion-testnet: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let topology = args.topology.context(
        "--topology FILE|NAME is required (builtins: two-as, three-paths, three-paths-capped)",
    )?;
    let topology = Topology::from_arg(&topology)?;
    let state_file = args.state.context("--state STATE.json is required")?;

    let net = Testnet::start_with(
        &topology,
        StartOptions {
            state_file: Some(state_file.clone()),
            backend: args.backend,
        },
    )?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "testnet ready: state in {}", state_file.display())?;
    stdout.flush()?;
    drop(stdout);

    wait_for_signal()?;
    eprintln!("scion-testnet: shutting down");
    net.stop();
    Ok(())
}

/// Blocks until SIGINT or SIGTERM.
fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        anyhow::Ok(())
    })
}

fn link(args: LinkArgs) -> anyhow::Result<()> {
    let state = TestnetState::read(&args.state)?;
    let control = state
        .control
        .context("the state file has no control address")?;
    let up = args.up;
    let request = ControlRequest::SetLink {
        ia: args.ia.clone(),
        interface: args.interface,
        up,
    };
    control_request(control, &request)?;
    println!(
        "link at {}#{} is {}",
        args.ia,
        args.interface,
        if up { "up" } else { "down" }
    );
    Ok(())
}

fn daemon_cmd(args: DaemonArgs) -> anyhow::Result<()> {
    let state = TestnetState::read(&args.state)?;
    let control = state
        .control
        .context("the state file has no control address")?;
    let (ia, running) = match (args.stop, args.start) {
        (Some(ia), None) => (ia, false),
        (None, Some(ia)) => (ia, true),
        _ => anyhow::bail!("give one of --stop IA and --start IA"),
    };
    let address = state.as_state(&parse_ia(&ia)?.to_string())?.daemon;
    let request = ControlRequest::SetDaemon {
        ia: ia.clone(),
        running,
    };
    control_request(control, &request)?;
    println!(
        "daemon of {ia} at {address} is {}",
        if running { "running" } else { "stopped" }
    );
    Ok(())
}

fn paths(args: PathsArgs) -> anyhow::Result<()> {
    let state = TestnetState::read(&args.state)?;
    let (src, dst) = (parse_ia(&args.src)?, parse_ia(&args.dst)?);
    let daemon_addr = state.as_state(&src.to_string())?.daemon;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let paths = rt.block_on(daemon::paths(daemon_addr, src, dst))?;
    if paths.is_empty() {
        println!("no paths from {src} to {dst}");
    }
    for (n, path) in paths.iter().enumerate() {
        let mut hops = String::new();
        path.format_interfaces(&mut hops)?;
        let next_hop = path
            .next_hop()
            .map_or_else(|| "-".to_string(), |a| a.to_string());
        let expiry = path
            .expiration()
            .and_then(|e| chrono::DateTime::from_timestamp(i64::from(e), 0))
            .map_or_else(|| "-".to_string(), |t| t.to_rfc3339());
        let mtu = path
            .metadata()
            .map_or_else(|| "-".to_string(), |m| m.mtu.to_string());
        println!("[{n}] hops: [{hops}] next_hop: {next_hop} mtu: {mtu} expires: {expiry}");
    }
    Ok(())
}
