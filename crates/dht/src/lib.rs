//! A sans-IO mainline DHT (BEP 5, with BEP 32 IPv6 and BEP 43 read-only) over UDP/IP and over
//! SCION/UDP.
//!
//! # Why one engine for both
//! The well-kept Rust DHTs (librqbit-dht, mainline) own their sockets and hard-code
//! `SocketAddr`: neither can carry SCION addresses (ISD-AS + host + port) in `nodes`/`values`
//! nor send over a SCION socket. Rather than run one crate for IP and a second, hand-written DHT
//! for SCION, [`Dht`] is written once, generic over [`DhtAddr`], and implemented for
//! [`std::net::SocketAddr`] and [`scion_addr::ScionAddr`]. Everything protocol-related (KRPC,
//! routing table, lookups, tokens, peer store, rate limits, persistence) is shared and tested
//! once; only the compact address form differs.
//!
//! # Wire forms
//! * IP: BEP 5/32 — `nodes` = 26-byte (id + IPv4 + port), `nodes6` = 38-byte entries, `values`
//!   = list of 6/18-byte strings.
//! * SCION: as netsys-lab/dht (the original client's DHT, a fork of anacrolix/dht) — the
//!   address is ISD-AS (8 bytes big-endian) + IPv4/IPv6 + port; `nodes` holds 34-byte entries
//!   (hosts with IPv4 addresses), `nodes6` 46-byte entries (IPv6 hosts), `values` a list of
//!   14/26-byte strings, and `ip` the 14/26-byte form. Tokens cover ISD-AS and host.
//!
//! # Driving it
//! The engine does no I/O and reads no clock: feed [`Dht::handle_datagram`] and
//! [`Dht::handle_timeout`], drain [`Dht::poll_transmit`] and [`Dht::poll_event`], and wake up at
//! [`Dht::poll_timeout`]. [`udp::UdpDriver`] (feature `udp`) does this for a tokio UDP socket;
//! over SCION the client's socket does it, routing datagrams with [`looks_like_krpc`].

pub mod addr;
mod demux;
mod engine;
mod id;
pub mod krpc;
pub mod lookup;
mod nodes;
pub mod peer_store;
mod persist;
pub mod rate_limit;
pub mod table;
pub mod tokens;
#[cfg(feature = "udp")]
pub mod udp;

pub use addr::{DhtAddr, Family};
pub use demux::looks_like_krpc;
pub use engine::{Config, Dht, DhtError, DhtEvent, Limits, Stats, ALPHA, MAX_LOOKUP_TIME};
pub use id::{Id, InfoHash};
pub use krpc::{decode, KrpcError, Message, NodeInfo, Want};
pub use lookup::{LookupId, LookupKind};
pub use nodes::{parse_bootstrap_addr, parse_node_entry, parse_torrent_nodes, NodesError};
pub use table::K;
