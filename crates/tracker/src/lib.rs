//! BitTorrent trackers over IP and SCION.
//!
//! * [`http`], [`udp`]: sans-IO codecs (pure functions, never panic; fuzzable); bencode is
//!   `bt-bencode`'s, read with [`http::DECODER`].
//! * [`client`]: an async announcer per torrent (BEP 12 tiers, HTTP and UDP, back-off, status).
//! * [`server`]: an in-memory tracker serving HTTP and UDP, mixing IP and SCION peers.

pub mod client;
pub mod http;
pub mod server;
pub mod udp;

pub use scion_addr::{PeerAddr, ScionAddr};

/// A torrent's v1 info hash.
pub type InfoHash = [u8; 20];
