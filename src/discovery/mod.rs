//! Peer discovery as front ends of the client: like the HTTP API they only read snapshots and
//! send commands (`AddPeers` with their source), each on a thread of its own. Trackers
//! ([`trackers`], over IP and, with [`scion_http`], over QUIC/SCION) and the mainline DHT over
//! UDP/IP and over SCION ([`dht`], [`scion_udp`]), and Local Service Discovery on the LAN
//! ([`lsd`]). [`portmap`] finds no peers: it asks the home gateway to forward our ports
//! (UPnP-IGD, NAT-PMP, PCP) so that peers can reach us.

pub mod dht;
pub mod lsd;
pub mod portmap;
pub mod scion_http;
pub mod scion_udp;
pub mod trackers;

pub use dht::{spawn_dht, spawn_scion_dht, DhtOptions, ScionDhtOptions};
pub use lsd::spawn_lsd;
pub use portmap::{spawn_port_mapping, PortMapOptions};
pub use trackers::{spawn_trackers, tracker_tls};

use crate::client::control::{TorrentSnapshot, TorrentState};

/// Whether a torrent is looking for peers: it fetches its metadata, downloads or seeds.
fn wants_peers(t: &TorrentSnapshot) -> bool {
    matches!(
        t.state,
        TorrentState::FetchingMetadata | TorrentState::Downloading | TorrentState::Seeding
    )
}
