//! A local SCION network on one machine, for tests, demos and benchmarks.
//!
//! Built on pocketscion in router mode over the UDP underlay: every AS gets one router
//! socket and one SCION daemon (scionproto `DaemonService`), all on 127.0.0.1 with ports the OS
//! picks. See `testnet/README.md` for the binary, the state file and the topology format.
//!
//! ```no_run
//! use scion_testnet::{Testnet, Topology};
//!
//! let net = Testnet::start(&Topology::builtin("three-paths")?)?;
//! let daemon = net.state().as_state("1-ff00:0:111")?.daemon;
//! net.set_link("1-ff00:0:111", 2, false)?;
//! # Ok::<(), anyhow::Error>(())
//! ```

mod control;
pub mod daemon;
mod launch;
mod links;
mod shaper;
mod state;
mod testnet;
mod topology;

pub use control::{request as control_request, Request as ControlRequest};
pub use state::{AsState, LinkState, TestnetState};
pub use testnet::{StartOptions, Testnet};
pub use topology::{parse_ia, AsSpec, Interface, LinkKind, LinkSpec, Topology};
