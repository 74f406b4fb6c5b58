//! A local SCION network on one machine, for tests, demos and benchmarks.
//!
//! Two backends ([`Backend`]): pocketscion in router mode over the UDP underlay (the
//! default: every AS gets one router socket and one SCION daemon, scionproto's
//! `DaemonService`, all on 127.0.0.1 with ports the OS picks), or scionproto's own border
//! router, control service, daemon and dispatcher per AS (processes, on an address range of
//! 127.0.0.0/8 of their own). See `testnet/README.md` for the binary, the state file and the
//! topology format.
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
mod scionproto;
mod shaper;
mod state;
mod testnet;
mod topology;

pub use control::{request as control_request, Request as ControlRequest};
pub use scionproto::{scionproto_binary, SCIONPROTO_BIN_ENV, SCIONPROTO_VERSION};
pub use state::{AsState, LinkState, TestnetState};
pub use testnet::{Backend, StartOptions, Testnet};
pub use topology::{parse_ia, AsSpec, Interface, LinkKind, LinkSpec, Topology};
