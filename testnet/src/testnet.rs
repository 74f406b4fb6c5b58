//! The running testnet: its backend (pocketscion, or scionproto's processes) driven from a
//! thread of its own with its own tokio runtime, so callers need no runtime and their own
//! (e.g. tokio-uring) threads are never borrowed.

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
    links::{Driver, LinkTable},
    scionproto,
    state::TestnetState,
    topology::{parse_ia, Topology},
};

/// How long shutdown waits for pocketscion's tasks before abandoning them.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// What runs the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// pocketscion, a SCION simulator in this process (fast to start).
    #[default]
    Pocketscion,
    /// scionproto's border router, control service, daemon and dispatcher, one set of
    /// processes per AS (binaries from `$SCIONPROTO_BIN` or `PATH`, see
    /// [`crate::scionproto_binary`]).
    Scionproto,
}

impl Backend {
    /// Names as the binary's `--backend` takes them.
    pub const NAMES: [&'static str; 2] = ["pocketscion", "scionproto"];

    /// The backend named by `SCION_TESTNET_BACKEND` (`pocketscion` or `scionproto`), or
    /// pocketscion when unset; an unknown name is an error.
    pub fn from_env() -> anyhow::Result<Backend> {
        match std::env::var("SCION_TESTNET_BACKEND") {
            Ok(name) if !name.is_empty() => name.parse(),
            _ => Ok(Backend::Pocketscion),
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Pocketscion => "pocketscion",
            Backend::Scionproto => "scionproto",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Backend> {
        match s {
            "pocketscion" => Ok(Backend::Pocketscion),
            "scionproto" => Ok(Backend::Scionproto),
            _ => Err(anyhow!(
                "unknown testnet backend '{s}' (known: {})",
                Backend::NAMES.join(", ")
            )),
        }
    }
}

/// Options for [`Testnet::start_with`].
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Write the state as JSON here once the network is ready, and again on every link change.
    pub state_file: Option<PathBuf>,
    /// What runs the network (default: pocketscion).
    pub backend: Backend,
}

/// A running local SCION network. Stops when dropped.
pub struct Testnet {
    backend: Backend,
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
        let backend = options.backend;
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
            backend,
            state: ready.state,
            links: ready.links,
            handle: ready.handle,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// What runs this network.
    pub fn backend(&self) -> Backend {
        self.backend
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
    /// external-interface-down (scionproto: once its BFD session has timed out, ~0.6 s).
    pub fn set_link(&self, ia: &str, interface: u16, up: bool) -> anyhow::Result<()> {
        self.links.set(ia, interface, up)
    }

    /// Stops the SCION daemon of `ia` (`running = false`: SIGKILL, its address then refuses
    /// connections) or starts it again on the same address, with the path database it had
    /// (returns once it answers). scionproto backend only; on pocketscion an error.
    pub fn set_daemon(&self, ia: &str, running: bool) -> anyhow::Result<()> {
        let (links, ia) = (self.links.clone(), ia.to_string());
        // On the testnet's runtime: a started daemon dies with the thread that started it.
        self.run(async move { links.set_daemon(&ia, running).await })?
    }

    /// Packets dropped so far by the link shaper on the direction of a link that leaves
    /// `ia#interface` (its queue was full, or random `loss`; scionproto: tc's count, down
    /// time included). `None` if that link direction is not shaped or the topology shapes no
    /// link at all.
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
        let (running, state, links) = launched;
        let msg = Ready {
            state,
            links,
            handle: Handle::current(),
        };
        if ready.send(Ok(msg)).is_ok() {
            // Until stop() or drop; a dropped sender ends the wait as well.
            let _ = stop.await;
        }
        match running {
            // Not `stop_and_join`: in pocketscion 0.8.6 it aborts its tasks and then panics on
            // joining them ("task was cancelled"). Dropping the runtime aborts them just the
            // same.
            Running::Pocket(runtime) => drop(runtime),
            // From this thread: the services die with it (parent-death signal) anyway.
            Running::Scionproto(net) => net.stop(),
        }
    });
    // pocketscion spawns its daemon servers outside its join set: only shutting the tokio
    // runtime down closes their sockets.
    rt.shutdown_timeout(SHUTDOWN_TIMEOUT);
}

/// What the testnet thread keeps running until stop.
enum Running {
    Pocket(pocketscion::runtime::PocketScionRuntime),
    Scionproto(Arc<scionproto::Network>),
}

type Started = (Running, TestnetState, Arc<LinkTable>);

async fn start_network(topology: &Topology, options: StartOptions) -> anyhow::Result<Started> {
    let (running, driver, mut state) = match options.backend {
        Backend::Pocketscion => {
            let launched = launch::launch(topology).await?;
            let driver = Driver::Pocket {
                pocket: launched.pocket,
                shaper: launched.shaper,
            };
            (Running::Pocket(launched.runtime), driver, launched.state)
        }
        Backend::Scionproto => {
            let (net, state) = scionproto::launch(topology).await?;
            let net = Arc::new(net);
            let driver = Driver::Scionproto(net.clone());
            (Running::Scionproto(net), driver, state)
        }
    };
    let listener = control::bind().await?;
    state.control = Some(listener.local_addr()?);

    let links = Arc::new(LinkTable::new(driver, state.clone(), options.state_file));
    links.write_state_file(&state)?;
    tokio::spawn(control::serve(listener, links.clone()));
    Ok((running, state, links))
}
