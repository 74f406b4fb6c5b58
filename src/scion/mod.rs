//! SCION end-host building blocks: addresses, paths, the SCION/UDP packet codec and a client for
//! the SCION daemon. Everything here except the daemon client is pure and socket-free.

pub mod addr;
pub mod daemon;
pub mod meta;
pub mod packet;
pub mod path;

pub use addr::{parse_ia, AddrParseError, Ia, PeerAddr, ScionAddr};
pub use daemon::{BlockingDaemonClient, DaemonClient, DaemonError};
pub use meta::{Geo, LinkType, PathMeta};
pub use path::{PathFingerprint, PathInterface, ScionPath};
