//! One start-up path for every client, the daemon's and a single-shot command's: the SCION
//! daemon (or TCP only without one), the SCION/UDP socket, the hash pool, the path service,
//! the TCP listener and the network side of the loop. What differs between the two is data in
//! [`Setup`], not a second copy of this code.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use super::paths::PathService;
use super::{
    bind_local, connect_daemon, listen_tcp, placeholder_socket, runtimes, Client, ClientError,
    EngineOptions, ScionSide,
};
use crate::engine::tcp::TcpHub;
use crate::lanes::PathPolicy;
use crate::net::ScionNet;
use crate::scion::daemon::DaemonClient;
use crate::scion::{Ia, ScionAddr};
use crate::storage::HashPool;

/// What a client starts with.
pub struct Setup {
    /// SCION daemon address.
    pub sciond: String,
    /// Our SCION address; None: 127.0.0.1 with a free port in the AS's range.
    pub local: Option<ScionAddr>,
    /// Whether SCION must come up (a SCION address or peer was asked for); otherwise a
    /// missing SCION daemon means a TCP-only client.
    pub scion_required: bool,
    /// TCP listen address; None: the SCION address's IP and port (or any free port).
    pub tcp_listen: Option<SocketAddr>,
    pub path_policy: PathPolicy,
    pub engine: EngineOptions,
    /// io_uring runtimes asked for on the SCION port (1 without SCION).
    pub runtimes: Option<u8>,
}

/// A client ready for its loop, and what its loop runs on.
pub struct Started {
    pub client: Client,
    /// Runtime 0's SCION/UDP socket (a placeholder nothing is sent on without SCION).
    pub socket: tokio_uring::net::UdpSocket,
    pub net: ScionNet,
    pub local: ScionAddr,
    /// The SCION daemon, when SCION is up.
    pub daemon: Option<DaemonClient>,
    /// The AS the SCION daemon serves, when SCION is up.
    pub ia: Option<Ia>,
    /// io_uring runtimes to run on (1 when SCION is off: only QUIC lanes are spread).
    pub runtimes: u8,
    pub tcp_addr: SocketAddr,
    pub started: Instant,
}

impl Started {
    pub fn scion_on(&self) -> bool {
        self.daemon.is_some()
    }
}

/// Starts a client (call inside the tokio-uring runtime).
pub async fn start(setup: Setup) -> Result<Started, ClientError> {
    let (scion, ia) = match connect_daemon(&setup.sciond).await {
        Ok((daemon, ia)) => {
            let (socket, local) = bind_local(&daemon, ia, setup.local).await?;
            let side = ScionSide {
                socket,
                local,
                daemon: Some(daemon),
            };
            (side, Some(ia))
        }
        Err(e) if !setup.scion_required => {
            tracing::warn!("{e}; continuing without SCION (TCP only)");
            (placeholder_socket()?, None)
        }
        Err(e) => return Err(e),
    };
    let scion_on = scion.daemon.is_some();
    let started = Instant::now();
    let pool = HashPool::new(0)
        .map(Arc::new)
        .map_err(|e| ClientError::Other(format!("cannot start hash workers: {e}")))?;
    let paths = PathService::new(scion.daemon.clone(), setup.path_policy);
    let hub = TcpHub::new(Default::default());
    let mut client = Client::new(pool, paths, hub.clone(), setup.engine, started);
    let want = setup.tcp_listen.unwrap_or(if scion_on {
        scion.local.socket_addr()
    } else {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
    });
    let tcp_addr = listen_tcp(&hub, want, setup.tcp_listen.is_some())?;
    client.tcp_listen = Some(tcp_addr);
    client.local_scion = scion_on.then_some(scion.local);
    client.sciond = scion_on.then_some(setup.sciond);
    let runtimes = runtimes::count(setup.runtimes, scion_on);
    let mut net = ScionNet::new(scion.local, &runtimes::tuning(0, runtimes), true)
        .map_err(|e| ClientError::Other(e.to_string()))?;
    if let Some(daemon) = &scion.daemon {
        net.set_as_mtu(daemon.local_mtu().await);
    }
    Ok(Started {
        client,
        socket: scion.socket,
        net,
        local: scion.local,
        daemon: scion.daemon,
        ia,
        runtimes,
        tcp_addr,
        started,
    })
}
