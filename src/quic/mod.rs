//! QUIC on top of quinn-proto, sans-IO. The drivers in [`crate::net`] feed it datagrams.

pub mod config;
pub mod endpoint;
pub mod remotes;

pub use config::QuicTuning;
pub use endpoint::{Outgoing, QuicEndpoint, QuicEvent};

#[cfg(test)]
mod pipe_tests;
