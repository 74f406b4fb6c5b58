//! A single-shot seeder on several io_uring runtimes (`--runtimes N`, `-runtimes=N`; see
//! [`crate::client::runtimes`]): each extra runtime seeds its own copy of the torrent's
//! session over the shared storage. Runtime 0 is the one the command started: it keeps the TCP
//! listener, the trackers, the DHT and the progress display; the others only serve the QUIC
//! connections the kernel steers to them.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use super::exit::{self, CliError};
use super::run::connect_daemon;
use crate::client::control::PeerSource;
use crate::client::paths::PathService;
use crate::client::runtimes::{self, tuning};
use crate::client::{Client, EngineOptions, LiveTorrent};
use crate::engine::quic::StopWhen;
use crate::engine::tcp::TcpHub;
use crate::lanes::policy::PathPolicy;
use crate::net::steering::Mailboxes;
use crate::net::{uring, ScionNet};
use crate::scion::ScionAddr;
use crate::storage::{HashPool, MmapStorage};
use crate::torrent::meta::Metainfo;
use crate::wire::bitfield::Bitfield;

/// What every extra runtime seeds.
#[derive(Clone)]
pub struct SeedJob {
    pub meta: Arc<Metainfo>,
    pub storage: Arc<MmapStorage>,
    pub have: Bitfield,
    pub data_path: std::path::PathBuf,
    pub local: ScionAddr,
    pub sciond: String,
    pub policy: PathPolicy,
    pub opts: EngineOptions,
    pub pool: Arc<HashPool>,
}

/// Binds runtimes 1..count to the port of `first` (runtime 0's socket, bound already) and
/// starts a seeding thread per runtime.
pub fn start(first: &impl AsRawFd, count: u8, job: SeedJob) -> Result<Arc<Mailboxes>, CliError> {
    let addr = job.local.socket_addr();
    runtimes::spawn(first, addr, count, move |index, socket, mail| {
        seed(index, count, socket, job.clone(), mail)
    })
    .map_err(super::run::client_err)
}

/// One extra runtime: a client seeding the job's torrent on its own socket, until the process
/// ends.
async fn seed(
    index: u8,
    count: u8,
    socket: std::net::UdpSocket,
    job: SeedJob,
    mail: Arc<Mailboxes>,
) -> Result<(), CliError> {
    let (daemon, _) = connect_daemon(&job.sciond).await?;
    let started = Instant::now();
    let paths = PathService::new(Some(daemon), job.policy.clone());
    let mut client = Client::new(
        job.pool,
        paths,
        TcpHub::new(Default::default()),
        job.opts,
        started,
    );
    client.local_scion = Some(job.local);
    client.sciond = Some(job.sciond);
    let mut net = ScionNet::new(job.local, &tuning(index, count), true)
        .map_err(|e| exit::other(e.to_string()))?;
    client.add_live(
        LiveTorrent {
            meta: job.meta,
            torrent_bytes: Vec::new(),
            storage: job.storage,
            have: job.have,
            out_dir: job.data_path.clone(),
            data_path: job.data_path,
            peers: Vec::new(),
            source: PeerSource::Cli,
            stop_when: StopWhen::Never,
        },
        started,
    );
    tracing::info!("seeding on {}", job.local);
    let socket = tokio_uring::net::UdpSocket::from_std(socket);
    uring::run_shared(socket, &mut net, &mut client, Some((index, mail)))
        .await
        .map_err(|e| exit::other(e.to_string()))
}
