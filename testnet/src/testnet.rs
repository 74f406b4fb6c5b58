//! The running testnet: pocketscion on a thread of its own with its own tokio runtime, so
//! callers need no runtime and their own (e.g. tokio-uring) threads are never borrowed.

use std::{
    future::Future,
    path::PathBuf,
    sync::{mpsc, Arc},
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{anyhow, Context};
use sciparse::path::ScionPath;
use tokio::{runtime::Handle, sync::oneshot};

use crate::{
    control, daemon, launch,
    links::LinkTable,
    state::TestnetState,
    topology::{parse_ia, Topology},
};

/// How long shutdown waits for pocketscion's tasks before abandoning them.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// Options for [`Testnet::start_with`].
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Write the state as JSON here once the network is ready, and again on every link change.
    pub state_file: Option<PathBuf>,
}

/// A running local SCION network. Stops when dropped.
pub struct Testnet {
    state: TestnetState,
    links: Arc<LinkTable>,
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the testnet thread hands back once the network is up.
struct Ready {
    state: TestnetState,
    links: Arc<LinkTable>,
    handle: Handle,
}

impl Testnet {
    /// Starts the network; returns once routers are bound and every daemon answers.
    pub fn start(topology: &Topology) -> anyhow::Result<Testnet> {
        Self::start_with(topology, StartOptions::default())
    }

    /// [`Testnet::start`] with options.
    pub fn start_with(topology: &Topology, options: StartOptions) -> anyhow::Result<Testnet> {
        let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<Ready>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let topology = topology.clone();

        let thread = std::thread::Builder::new()
            .name("scion-testnet".into())
            .spawn(move || run(topology, options, ready_tx, stop_rx))
            .context("cannot spawn the testnet thread")?;

        let ready = match ready_rx.recv() {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(anyhow!("the testnet thread died while starting"));
            }
        };
        Ok(Testnet {
            state: ready.state,
            links: ready.links,
            handle: ready.handle,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Addresses and links as they were when the network became ready.
    pub fn state(&self) -> &TestnetState {
        &self.state
    }

    /// The current state: like [`Testnet::state`], with up-to-date link `up` flags.
    pub fn snapshot(&self) -> TestnetState {
        self.links.snapshot()
    }

    /// Takes the link with an end at `ia#interface` down (`up = false`) or up again. A down
    /// link drops packets in both directions; the router before it answers with SCMP
    /// external-interface-down.
    pub fn set_link(&self, ia: &str, interface: u16, up: bool) -> anyhow::Result<()> {
        self.links.set(ia, interface, up)
    }

    /// Packets dropped so far by the link shaper on the direction of a link that leaves
    /// `ia#interface` (its queue was full, or random `loss`). `None` if that link direction is
    /// not shaped or the topology shapes no link at all.
    pub fn link_drops(&self, ia: &str, interface: u16) -> Option<u64> {
        self.links.dropped(ia, interface)
    }

    /// Paths from `src` to `dst` as `src`'s daemon returns them (next hop included).
    pub fn paths(&self, src: &str, dst: &str) -> anyhow::Result<Vec<ScionPath>> {
        let (src, dst) = (parse_ia(src)?, parse_ia(dst)?);
        let daemon = self.state.as_state(&src.to_string())?.daemon;
        self.run(async move { daemon::paths(daemon, src, dst).await })?
    }

    /// Stops the network and waits for its thread.
    pub fn stop(self) {
        drop(self);
    }

    /// Runs `fut` on the testnet's runtime and waits for it from this (any) thread. Spawning
    /// and a std channel, rather than `block_on`, work even inside a caller's runtime.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let (tx, rx) = mpsc::channel();
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| anyhow!("the testnet is shutting down"))
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Body of the testnet thread.
fn run(
    topology: Topology,
    options: StartOptions,
    ready: mpsc::Sender<anyhow::Result<Ready>>,
    stop: oneshot::Receiver<()>,
) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("scion-testnet-rt")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(anyhow!(e).context("cannot build the testnet runtime")));
            return;
        }
    };

    rt.block_on(async move {
        let launched = match start_network(&topology, options).await {
            Ok(launched) => launched,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let (runtime, state, links) = launched;
        let msg = Ready {
            state,
            links,
            handle: Handle::current(),
        };
        if ready.send(Ok(msg)).is_ok() {
            // Until stop() or drop; a dropped sender ends the wait as well.
            let _ = stop.await;
        }
        // Not `stop_and_join`: in pocketscion 0.8.6 it aborts its tasks and then panics on
        // joining them ("task was cancelled"). Dropping the runtime aborts them just the same.
        drop(runtime);
    });
    // pocketscion spawns its daemon servers outside its join set: only shutting the tokio
    // runtime down closes their sockets.
    rt.shutdown_timeout(SHUTDOWN_TIMEOUT);
}

type Started = (
    pocketscion::runtime::PocketScionRuntime,
    TestnetState,
    Arc<LinkTable>,
);

async fn start_network(topology: &Topology, options: StartOptions) -> anyhow::Result<Started> {
    let launched = launch::launch(topology).await?;
    let listener = control::bind().await?;
    let mut state = launched.state;
    state.control = Some(listener.local_addr()?);

    let links = Arc::new(LinkTable::new(
        launched.pocket,
        state.clone(),
        options.state_file,
        launched.shaper,
    ));
    links.write_state_file(&state)?;
    tokio::spawn(control::serve(listener, links.clone()));
    Ok((launched.runtime, state, links))
}
