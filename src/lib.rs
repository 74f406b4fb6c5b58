//! bittorrent-over-scion: BitTorrent over QUIC/SCION (multipath) and TCP.

pub mod api;
pub mod bwtest;
pub mod cli;
pub mod client;
pub mod daemon;
pub mod discovery;
pub mod engine;
pub mod lanes;
pub mod metrics;
pub mod net;
pub mod quic;
pub mod scion;
pub mod storage;
pub mod store;
pub mod torrent;
pub mod watch;
pub mod web_assets;
pub mod wire;
