//! `bittorrent-over-scion tracker`: a thin runner around the `bt-tracker` crate's server, plus
//! its HTTP-over-QUIC/SCION side on the same swarms.

use std::io::Write;

use bt_tracker::server::{self, parse_allow_list, ServerConfig, TrackerConfig};

use crate::discovery::scion_http::ScionQuicEndpoint;

use super::args::TrackerArgs;
use super::exit::{self, CliError};

/// Serves until the process is killed (the tracker keeps nothing worth saving).
pub fn run(a: TrackerArgs) -> Result<(), CliError> {
    if a.http.is_none() && a.udp.is_none() && a.scion.is_none() {
        return Err(exit::usage(
            "tracker: give --http ADDR, --udp ADDR and/or --scion PORT",
        ));
    }
    if a.interval == 0 {
        return Err(exit::usage("tracker: --interval must be at least 1 second"));
    }
    let allow = match &a.allow {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| exit::usage(format!("cannot read {}: {e}", path.display())))?;
            Some(
                parse_allow_list(&text)
                    .map_err(|e| exit::usage(format!("{}: {e}", path.display())))?,
            )
        }
        None => None,
    };
    let mut config = ServerConfig {
        tracker: TrackerConfig {
            interval: std::time::Duration::from_secs(a.interval),
            numwant_max: a.numwant_max,
            max_peers_per_host: usize::try_from(a.max_peers_per_host).unwrap_or(usize::MAX),
            allow,
            ..Default::default()
        },
        http: a.http,
        udp: a.udp,
        ..Default::default()
    };
    if let Some(n) = a.udp_threads {
        config.udp_threads = n.max(1);
    }
    let running =
        server::start(config).map_err(|e| exit::other(format!("tracker: cannot bind: {e}")))?;
    let scion = match a.scion {
        Some(port) => Some(serve_scion(&a, port, running.shared_tracker())?),
        None => None,
    };
    let show = |a: Option<std::net::SocketAddr>| a.map_or("off".to_string(), |a| a.to_string());
    // One line tests and scripts wait for.
    println!(
        "tracker http {} udp {} scion {}",
        show(running.http_addr),
        show(running.udp_addr),
        scion.map_or("off".to_string(), |s| s.to_string()),
    );
    let _ = std::io::stdout().flush();
    tracing::info!("tracker serving; interval {} s", a.interval);
    loop {
        std::thread::park();
    }
}

/// Binds the SCION side and serves it on a thread of its own; returns its SCION address.
fn serve_scion(
    a: &TrackerArgs,
    port: u16,
    tracker: std::sync::Arc<bt_tracker::server::Tracker>,
) -> Result<crate::scion::ScionAddr, CliError> {
    let sciond = super::run::daemon_address(&a.sciond.sciond);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| exit::other(format!("tracker: {e}")))?;
    let endpoint = rt
        .block_on(ScionQuicEndpoint::bind(&sciond, a.scion_host, port, true))
        .map_err(|e| {
            exit::other(format!(
                "tracker: cannot serve over SCION (SCION daemon {sciond}): {e}"
            ))
        })?;
    let local = endpoint.local_addr();
    std::thread::Builder::new()
        .name("tracker-scion".into())
        .spawn(move || rt.block_on(endpoint.serve_tracker(tracker)))
        .map_err(|e| exit::other(format!("tracker: {e}")))?;
    Ok(local)
}
